"""The generalised Dice loss (Sudre et al. 2017) as the boundary-loss paper's reference code
computes it, the regional loss the boundary loss is paired with."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import inputs
from .inputs import Reduction


def _regional_target(target: torch.Tensor, pred: torch.Tensor, check: bool) -> torch.Tensor:
    """target as a (B, C, *spatial) float tensor of pred's accumulation dtype, checked."""
    kind, t = inputs.decode_target(target, pred)
    dtype = inputs.acc_dtype(pred.dtype)
    if kind == "labels":
        if check:
            inputs.check_labels(t, pred.shape[1])
        return inputs.one_hot(t, pred.shape[1], dtype)
    if check:
        if kind == "mask":
            inputs.check_mask(t, exclusive=True)
        else:
            inputs.check_finite(t, "target")
            inputs.check_simplex(t, "target")
    return t.to(dtype)


def generalized_dice_loss(pred: torch.Tensor, target: torch.Tensor,
                          idc: Sequence[int] | None = None, *, from_logits: bool = False,
                          reduction: Reduction = "mean", validate: bool = True) -> torch.Tensor:
    """Generalised Dice loss as in the boundary-loss paper's reference code, per image:

        w_k = 1 / (sum_v g_k + 1e-10)^2
        L = 1 - 2 (sum_k w_k sum_v p_k g_k + 1e-10) / (sum_k w_k sum_v (p_k + g_k) + 1e-10)

    over k in idc (default all; the paper uses [0, 1] on binary tasks). An absent class gets the
    weight 1e20, as in the reference.

    Args:
        pred: (B, C, *spatial) probabilities summing to 1 over dim 1, or logits with from_logits.
        target: one-hot mask or soft targets of pred's shape, or integer labels (B, *spatial).

    Returns:
        "mean": scalar batch mean; "sum": sum over the batch; "none": (B,).
    """
    inputs.check_pred(pred, min_channels=2)
    inputs.check_reduction(reduction)
    classes = inputs.resolve_idc(idc, pred.shape[1])
    check = inputs.checking(validate)
    g = _regional_target(target, pred, check)[:, classes].flatten(2)
    if check:
        inputs.check_finite(pred, "pred")
    acc = inputs.acc_dtype(pred.dtype)
    if from_logits:
        p = torch.softmax(pred, dim=1, dtype=acc)
    else:
        if check:
            inputs.check_simplex(pred, "pred")
        p = pred.to(acc)
    p = p[:, classes].flatten(2)
    w = 1.0 / (g.sum(dim=2) + 1e-10) ** 2
    intersection = (w * (p * g).sum(dim=2)).sum(dim=1)
    union = (w * (p.sum(dim=2) + g.sum(dim=2))).sum(dim=1)
    per_sample = 1.0 - 2.0 * (intersection + 1e-10) / (union + 1e-10)
    return inputs.reduce_batch(per_sample, reduction)


class GeneralizedDiceLoss(nn.Module):
    """Generalised Dice loss (Sudre et al. 2017) as used with the boundary loss; see
    `generalized_dice_loss` for the formula, shapes and reductions."""

    def __init__(self, idc: Sequence[int] | None = None, *, from_logits: bool = False,
                 reduction: Reduction = "mean", validate: bool = True) -> None:
        super().__init__()
        self.idc = None if idc is None else list(idc)
        self.from_logits = bool(from_logits)
        self.reduction = inputs.check_reduction(reduction)
        self.validate = bool(validate)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return generalized_dice_loss(pred, target, self.idc, from_logits=self.from_logits,
                                     reduction=self.reduction, validate=self.validate)
