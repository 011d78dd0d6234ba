"""The boundary loss of Kervadec et al. (MIDL 2019): `mean(probs[:, idc] * phi[:, idc])` with phi
the level-set maps of the ground truth, computed on pred's device when not given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..distance import CONVENTIONS, labels_to_dist, one_hot_to_dist
from ..validation import choice, spacing_tuple
from .fused import boundary_loss_from_logits
from . import inputs
from .inputs import Reduction


def boundary_maps(target: torch.Tensor, pred: torch.Tensor, spacing: Any = None, *,
                  convention: str = "kervadec", validate: bool = True) -> torch.Tensor:
    """The level-set maps phi (B, C, *spatial) the boundary loss multiplies pred with.

    pred (B, C, *spatial) only sets the expected shape, the device and the dtype. Floating-point
    `target` of pred's shape is taken as precomputed maps and returned as is. A bool/integer
    mask of pred's shape or integer labels are turned into maps with `spacing` and `convention`
    (see `gpudist.signed_distance`), in pred's accumulation dtype, without grad.
    """
    choice(convention, "convention", CONVENTIONS)
    kind, t = inputs.decode_target(target, pred)
    check = inputs.checking(validate)
    if kind == "float":
        if check:
            inputs.check_finite(t, "target")
            if ((t == 0) | (t == 1)).all() and (t.sum(dim=1) == 1).all():
                raise ValueError("target looks like a one-hot mask stored as floating point, not "
                                 "distance maps; pass it as a bool or integer tensor to have its "
                                 "maps computed")
        return t
    dtype = inputs.acc_dtype(pred.dtype)
    spacing = spacing_tuple(spacing, pred.dim() - 2)
    with torch.no_grad():
        if kind == "labels":
            if check:
                inputs.check_labels(t, pred.shape[1])
            return labels_to_dist(t, pred.shape[1], spacing, convention=convention, dtype=dtype,
                                  validate=False)
        if check:
            inputs.check_mask(t, exclusive=convention == "kervadec")
        return one_hot_to_dist(t, spacing, convention=convention, dtype=dtype, validate=False)


def boundary_loss(pred: torch.Tensor, target: torch.Tensor, idc: Sequence[int] | None = None, *,
                  from_logits: bool = False, spacing: Any = None, convention: str = "kervadec",
                  reduction: Reduction = "mean", validate: bool = True) -> torch.Tensor:
    """Boundary loss `mean over (k in idc, voxels) of probs[:, k] * phi[:, k]`, per sample.

    Args:
        pred: (B, C, *spatial), C >= 2: softmax probabilities over dim 1, or logits with
            `from_logits=True` (then softmax, product and mean run as one fused op whose backward
            recomputes the softmax instead of storing it).
        target: precomputed maps phi (floating point, pred's shape), a one-hot mask (bool/int,
            pred's shape) or integer labels (B, *spatial); see `boundary_maps`.
        idc: the classes to supervise (default all); binary tasks in the paper use [1].
        spacing, convention: for maps computed here ("kervadec" is the paper's phi: 0 on the
            object's boundary voxels, negative inside, positive outside, 0 for an absent class or
            one that fills the image).

    Returns:
        "mean": scalar (the paper's value, can be negative); "sum": the sum of per-sample losses;
        "none": (B,). float32, or float64 for float64 pred.
    """
    inputs.check_pred(pred, min_channels=2)
    inputs.check_reduction(reduction)
    classes = inputs.resolve_idc(idc, pred.shape[1])
    phi = boundary_maps(target, pred, spacing, convention=convention, validate=validate)
    check = inputs.checking(validate)
    if check:
        inputs.check_finite(pred, "pred")
    if from_logits:
        per_sample = boundary_loss_from_logits(pred, phi, classes)
    else:
        if check:
            inputs.check_simplex(pred, "pred")
        acc = inputs.acc_dtype(pred.dtype)
        prod = pred[:, classes].to(acc) * phi[:, classes].to(acc)
        per_sample = prod.flatten(1).mean(dim=1)
    return inputs.reduce_batch(per_sample, reduction)


class BoundaryLoss(nn.Module):
    """Boundary loss of Kervadec et al. (MIDL 2019); see `boundary_loss` for shapes and values.

    `forward(pred, target)`: pred (B, C, *spatial) probabilities (logits with from_logits=True);
    target precomputed maps, a one-hot mask or integer labels (maps then computed on the device).
    """

    def __init__(self, idc: Sequence[int] | None = None, *, from_logits: bool = False,
                 spacing: Any = None, convention: str = "kervadec", reduction: Reduction = "mean",
                 validate: bool = True) -> None:
        super().__init__()
        self.idc = None if idc is None else list(idc)
        self.from_logits = bool(from_logits)
        self.spacing = spacing
        self.convention = choice(convention, "convention", CONVENTIONS)
        self.reduction = inputs.check_reduction(reduction)
        self.validate = bool(validate)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return boundary_loss(pred, target, self.idc, from_logits=self.from_logits,
                             spacing=self.spacing, convention=self.convention,
                             reduction=self.reduction, validate=self.validate)
