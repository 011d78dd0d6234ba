"""The generalised Dice loss (Sudre et al. 2017) as the boundary-loss paper's reference code
computes it, the regional loss the boundary loss is paired with."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import inputs
from .inputs import Reduction


def _regional_target(target: torch.Tensor, pred: torch.Tensor, check: bool, to_onehot_y: bool,
                     multilabel: bool) -> torch.Tensor:
    """target as a (B, C, *spatial) float tensor of pred's accumulation dtype, checked: one class
    per voxel, or (multilabel) each channel a 0/1 mask or in [0, 1]."""
    kind, t = inputs.decode_target(target, pred, to_onehot_y, check)
    dtype = inputs.acc_dtype(pred.dtype)
    if kind == "labels":
        if check:
            inputs.check_labels(t, pred.shape[1])
        return inputs.one_hot(t, pred.shape[1], dtype)
    if check:
        if kind == "mask":
            inputs.check_mask(t, exclusive=not multilabel)
        else:
            inputs.check_finite(t, "target")
            if multilabel:
                inputs.check_unit_interval(t, "target", "")
            else:
                inputs.check_simplex(t, "target")
    return t.to(dtype)


def generalized_dice_loss(pred: torch.Tensor, target: torch.Tensor,
                          idc: int | Sequence[int] | None = None, *,
                          include_background: bool | None = None, softmax: bool = False,
                          sigmoid: bool = False, from_logits: bool = False,
                          to_onehot_y: bool = False, reduction: Reduction = "mean",
                          validate: bool = True) -> torch.Tensor:
    """Generalised Dice loss as in the boundary-loss paper's reference code, per image:

        w_k = 1 / (sum_v g_k + 1e-10)^2
        L = 1 - 2 (sum_k w_k sum_v p_k g_k + 1e-10) / (sum_k w_k sum_v (p_k + g_k) + 1e-10)

    over the classes k selected by idc / include_background (default all; the paper uses [0, 1]
    on binary tasks). An absent class gets the weight 1e20, as in the reference.

    Args:
        pred: (B, C, *spatial) probabilities summing to 1 over dim 1, or logits with
            softmax=True (older name: from_logits=True), or independent channels' logits with
            sigmoid=True (multi-label targets allowed).
        target: one-hot mask or soft targets of pred's shape, or integer labels (B, *spatial).
        idc, include_background, to_onehot_y: the class selection and MONAI's flag, as in
            `boundary_loss` (see the package docstring).

    Returns:
        "mean": scalar batch mean; "sum": sum over the batch; "none": (B,).
    """
    activation = inputs.check_activation(softmax, sigmoid, from_logits)
    inputs.check_pred(pred, min_channels=1 if activation == "sigmoid" else 2)
    inputs.check_reduction(reduction)
    classes = inputs.resolve_idc(idc, pred.shape[1], include_background)
    check = inputs.checking(validate)
    g = _regional_target(target, pred, check, to_onehot_y, activation == "sigmoid")
    g = g[:, classes].flatten(2)
    p = inputs.probabilities(pred, activation, None, check, inputs.acc_dtype(pred.dtype),
                             simplex=True)
    p = p[:, classes].flatten(2)
    w = 1.0 / (g.sum(dim=2) + 1e-10) ** 2
    intersection = (w * (p * g).sum(dim=2)).sum(dim=1)
    union = (w * (p.sum(dim=2) + g.sum(dim=2))).sum(dim=1)
    per_sample = 1.0 - 2.0 * (intersection + 1e-10) / (union + 1e-10)
    return inputs.reduce_batch(per_sample, reduction)


class GeneralizedDiceLoss(inputs.OptionsMixin, nn.Module):
    """Generalised Dice loss (Sudre et al. 2017) as used with the boundary loss; see
    `generalized_dice_loss` for the formula, shapes and reductions."""

    def __init__(self, idc: int | Sequence[int] | None = None, *,
                 include_background: bool | None = None, softmax: bool = False,
                 sigmoid: bool = False, from_logits: bool = False, to_onehot_y: bool = False,
                 reduction: Reduction = "mean", validate: bool = True) -> None:
        super().__init__()
        self.options = inputs.Options.of(idc, include_background, softmax, sigmoid, from_logits,
                                          to_onehot_y)
        self.reduction = inputs.check_reduction(reduction)
        self.validate = bool(validate)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return generalized_dice_loss(pred, target, **self.options.kwargs(),
                                     reduction=self.reduction, validate=self.validate)
