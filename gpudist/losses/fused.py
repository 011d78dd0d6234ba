"""The fused boundary loss from logits: softmax, product with the level-set maps and the per-sample
mean as one custom op, `gpudist::boundary_loss_from_logits`.

For logits z (B, C, *spatial), maps phi of the same shape, p = softmax(z, dim=1), a class subset
`idc` and N = len(idc) * prod(spatial), the op returns per-sample losses

    l_b = sum_{k in idc, v} p_bkv phi_bkv / N                                  shape (B,)

and its backward computes, for every class k (not only those in idc),

    dl_b/dz_bkv = p_bkv (phi_bkv [k in idc] - sum_{c in idc} p_bcv phi_bcv) / N
    dl_b/dphi_bkv = p_bkv [k in idc] / N

from the logits and maps alone: autograd saves only those two inputs (no new memory) and the
softmax is recomputed in the backward, where the unfused expression keeps the softmax output (and,
for a class subset, copies of the selected operands) alive between forward and backward.

Two implementations compute it:
- native (the extension's CPU and CUDA kernels `gpudist::boundary_loss_forward` / `_backward`,
  csrc/kernels/boundary_loss.cuh): one pass over logits and maps per direction, the softmax
  recomputed per voxel in registers; the forward allocates only the (B,) result, the backward only
  the gradient. Used whenever the extension has kernels for the device.
- torch ops, otherwise (no extension, CuPy-only GPUs), and for the backward under
  create_graph=True, where the out-of-place form keeps the graph differentiable. Its forward's only
  full-size temporary is the softmax; its backward overwrites a recomputed softmax with the
  gradient, class plane by class plane.

Arithmetic is float32 (float64 for float64 logits); the loss has that dtype and each gradient the
dtype of its input. A sample with an empty spatial extent has loss 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..backends import extension
from .inputs import acc_dtype

OP_NAME = "gpudist::boundary_loss_from_logits"


def _numel_per_sample(logits: torch.Tensor, idc: Sequence[int]) -> int:
    """N = len(idc) * prod(spatial), the number of terms averaged per sample; 1 for an empty
    spatial extent, whose (empty) sum then gives a loss of 0, as the native kernels do."""
    return max(1, len(idc) * math.prod(logits.shape[2:]))


def _native(device: torch.device) -> bool:
    """True when the extension has the fused loss kernels for `device`."""
    return extension.has_kernel("gpudist::boundary_loss_forward", device)


@torch.library.custom_op(OP_NAME, mutates_args=())
def boundary_loss_from_logits(logits: torch.Tensor, phi: torch.Tensor,
                              idc: list[int]) -> torch.Tensor:
    """Per-sample boundary loss (B,) of softmax(logits, 1) against maps phi; see the module doc."""
    acc = acc_dtype(logits.dtype)
    if _native(logits.device):
        return torch.ops.gpudist.boundary_loss_forward(logits.to(acc), phi.to(acc), idc)
    p = torch.softmax(logits, dim=1, dtype=acc).flatten(2)
    # (B, C) sums over the voxels as batched dot products (no product tensor), then over idc.
    per_class = torch.einsum("bcv,bcv->bc", p, phi.to(acc).flatten(2))
    index = torch.tensor(list(idc), device=logits.device)
    return per_class.index_select(1, index).sum(dim=1) / _numel_per_sample(logits, idc)


@boundary_loss_from_logits.register_fake
def _(logits: torch.Tensor, phi: torch.Tensor, idc: list[int]) -> torch.Tensor:
    torch._check(logits.dim() >= 3, lambda: "logits must be (B, C, *spatial)")
    torch._check(phi.shape == logits.shape, lambda: "phi must have the shape of logits")
    return logits.new_empty((logits.shape[0],), dtype=acc_dtype(logits.dtype))


def _setup_context(ctx, inputs, output) -> None:
    logits, phi, idc = inputs
    ctx.save_for_backward(logits, phi)
    ctx.idc = list(idc)


def _backward(ctx, grad_out: torch.Tensor):
    logits, phi = ctx.saved_tensors
    idc = ctx.idc
    acc = acc_dtype(logits.dtype)
    grad_logits = grad_phi = None
    if ctx.needs_input_grad[0]:
        if _native(logits.device) and not torch.is_grad_enabled():
            grad_logits = torch.ops.gpudist.boundary_loss_backward(
                grad_out.to(acc).contiguous(), logits.to(acc), phi.to(acc), idc)
        else:
            grad_logits = _grad_logits_torch(grad_out, logits, phi, idc)
        grad_logits = grad_logits.to(logits.dtype)
    if ctx.needs_input_grad[1]:
        p, scale = torch.softmax(logits, dim=1, dtype=acc), _scale(grad_out, logits, idc)
        grad_phi = torch.zeros_like(p)
        for c in idc:
            grad_phi[:, c] = p[:, c] * scale
        grad_phi = grad_phi.to(phi.dtype)
    return grad_logits, grad_phi, None


def _scale(grad_out: torch.Tensor, logits: torch.Tensor, idc: list[int]) -> torch.Tensor:
    """g_b / N in the accumulation dtype, shaped to broadcast over one class plane (B, *spatial)."""
    scale = grad_out.to(acc_dtype(logits.dtype)) / _numel_per_sample(logits, idc)
    return scale.reshape((-1,) + (1,) * (logits.dim() - 2))


def _grad_logits_torch(grad_out: torch.Tensor, logits: torch.Tensor, phi: torch.Tensor,
                       idc: list[int]) -> torch.Tensor:
    """dl/dz in torch ops, in the accumulation dtype."""
    acc = acc_dtype(logits.dtype)
    scale = _scale(grad_out, logits, idc)
    p = torch.softmax(logits, dim=1, dtype=acc)
    phi = phi.to(acc)
    if torch.is_grad_enabled():  # create_graph=True: out of place, so the graph stays valid
        in_idc = torch.tensor([float(k in idc) for k in range(logits.shape[1])], dtype=acc,
                              device=logits.device).view((1, -1) + (1,) * (logits.dim() - 2))
        g = phi * in_idc * scale.unsqueeze(1)
        return p * (g - (p * g).sum(dim=1, keepdim=True))
    # Class by class, so that the only full-size buffer is p, overwritten by the result:
    # s = sum_{c in idc} p_c phi_c, then dz_k = p_k (phi_k [k in idc] - s) g_b / N.
    s = p[:, idc[0]] * phi[:, idc[0]]
    for c in idc[1:]:
        s.addcmul_(p[:, c], phi[:, c])
    neg_s = s.mul_(scale).neg_()
    for k in range(logits.shape[1]):
        p[:, k].mul_(torch.addcmul(neg_s, phi[:, k], scale) if k in idc else neg_s)
    return p


boundary_loss_from_logits.register_autograd(_backward, setup_context=_setup_context)
