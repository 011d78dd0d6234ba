"""Karimi & Salcudean's Hausdorff distance-transform loss (IEEE TMI 2019), with both distance
fields recomputed on pred's device every call."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..distance import one_hot_to_dist
from ..validation import choice, is_real, spacing_tuple
from . import inputs
from .inputs import Reduction

HAUSDORFF_VARIANTS = ("two_sided", "one_sided")


def _check_hausdorff_options(alpha: float, variant: str, softmax: bool, sigmoid: bool,
                             spacing: Any, monai_compatible: bool) -> None:
    choice(variant, "variant", HAUSDORFF_VARIANTS)
    if not (is_real(alpha) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    if softmax and sigmoid:
        raise ValueError("softmax and sigmoid are exclusive: set at most one of them")
    if monai_compatible:
        if spacing is not None:
            raise ValueError("spacing must be None with monai_compatible=True "
                             "(MONAI's field is in voxel units)")
        if variant != "two_sided":
            raise ValueError("variant must be 'two_sided' with monai_compatible=True")


def hausdorff_dt_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, *,
                      variant: str = "two_sided", include_background: bool = False,
                      softmax: bool = False, sigmoid: bool = False, spacing: Any = None,
                      reduction: Reduction = "mean", batch: bool = False,
                      monai_compatible: bool = False, validate: bool = True) -> torch.Tensor:
    """Karimi & Salcudean's Hausdorff distance-transform loss, per sample and channel:

        f_bc = mean_v (p - g)^2 (d_g^alpha + d_p^alpha)       ("two_sided")
        f_bc = mean_v (p - g)^2 d_g^alpha                     ("one_sided")

    d_g and d_p are the unsigned distance fields EDT(m) + EDT(~m) of m = (g > 0.5) and of the
    thresholded prediction m = (p > 0.5) (>= 1 voxel spacing at the interface, 0 for a mask that is
    empty or full), computed every call, without grad, in units of `spacing`.

    Args:
        pred: (B, C, *spatial) probabilities (each channel in [0, 1]; channels may overlap), or
            logits with `softmax=True` or `sigmoid=True`.
        target: pred's shape (0/1 mask, one-hot or soft; the field thresholds it at 0.5), or
            integer labels (B, *spatial) / (B, 1, *spatial), one-hot encoded (needs C > 1).
        include_background: keep channel 0 (always kept when C == 1).
        batch: average over (batch, voxels) per channel instead of per sample (MONAI's `batch`).
        monai_compatible: reproduce monai.losses.HausdorffDTLoss (fields in float32 voxel units,
            `spacing` must be None, "none" keeps MONAI's broadcastable shape (B, C', 1, ...)).

    Returns:
        "mean": mean over samples and channels; "sum": their sum; "none": (B, C') per sample and
        channel, (C',) with batch=True (MONAI shapes with monai_compatible), C' = channels kept.
    """
    inputs.check_pred(pred)
    inputs.check_reduction(reduction)
    _check_hausdorff_options(alpha, variant, softmax, sigmoid, spacing, monai_compatible)
    check = inputs.checking(validate)
    acc = inputs.acc_dtype(pred.dtype)
    g = _target_probs(target, pred, check, acc)
    p = _pred_probs(pred, softmax, sigmoid, check, acc)
    if not include_background and pred.shape[1] > 1:
        p, g = p[:, 1:], g[:, 1:]
    weight = _distance_weights(p, g, alpha, variant, spacing_tuple(spacing, pred.dim() - 2),
                               torch.float32 if monai_compatible else acc)
    err = (p - g).square() * weight.to(acc)
    dims = tuple(range(2, err.dim()))
    f = err.mean(dim=(0, *dims)) if batch else err.mean(dim=dims)
    if reduction == "mean":
        return f.mean()
    if reduction == "sum":
        return f.sum()
    if monai_compatible:
        shape = (1 if batch else len(f), f.shape[-1]) + (1,) * len(dims)
        return f.reshape(shape)
    return f


def _target_probs(target: torch.Tensor, pred: torch.Tensor, check: bool,
                  acc: torch.dtype) -> torch.Tensor:
    """target as (B, C, *spatial) values in the accumulation dtype (labels one-hot encoded)."""
    channels = pred.shape[1]
    kind, t = inputs.decode_target(target, pred)
    if kind == "labels":
        if channels == 1:
            raise ValueError("target labels need pred with C > 1 channels; for one channel pass "
                             "a 0/1 target of pred's shape")
        if check:
            inputs.check_labels(t, channels)
        return inputs.one_hot(t, channels, acc)
    if check and kind == "mask":
        inputs.check_mask(t, exclusive=False)
    elif check:
        inputs.check_finite(t, "target")
    return t.to(acc)


def _pred_probs(pred: torch.Tensor, softmax: bool, sigmoid: bool, check: bool,
                acc: torch.dtype) -> torch.Tensor:
    """pred as probabilities in the accumulation dtype: sigmoid, softmax, or checked as given."""
    if check:
        inputs.check_finite(pred, "pred")
    if sigmoid:
        return torch.sigmoid(pred.to(acc))
    if softmax and pred.shape[1] > 1:  # softmax over one channel is constant; MONAI skips it
        return torch.softmax(pred, dim=1, dtype=acc)
    if check and not softmax:
        inputs.check_unit_interval(pred, "pred", " (pass softmax=True or sigmoid=True for logits)")
    return pred.to(acc)


def _distance_weights(p: torch.Tensor, g: torch.Tensor, alpha: float, variant: str,
                      spacing: tuple[float, ...], dtype: torch.dtype) -> torch.Tensor:
    """d_g^alpha (+ d_p^alpha for "two_sided"), the unsigned fields of g > 0.5 and p > 0.5, as
    constants of the loss (no grad)."""
    with torch.no_grad():
        masks = g > 0.5 if variant == "one_sided" else torch.cat([g > 0.5, p.detach() > 0.5])
        fields = one_hot_to_dist(masks, spacing, convention="unsigned", dtype=dtype,
                                 validate=False) ** alpha
        return fields if variant == "one_sided" else fields[: len(g)] + fields[len(g):]


class HausdorffDTLoss(nn.Module):
    """Hausdorff distance-transform loss (Karimi & Salcudean, IEEE TMI 2019); see
    `hausdorff_dt_loss` for the formula, shapes and options."""

    def __init__(self, alpha: float = 2.0, *, variant: str = "two_sided",
                 include_background: bool = False, softmax: bool = False, sigmoid: bool = False,
                 spacing: Any = None, reduction: Reduction = "mean", batch: bool = False,
                 monai_compatible: bool = False, validate: bool = True) -> None:
        super().__init__()
        _check_hausdorff_options(alpha, variant, softmax, sigmoid, spacing, monai_compatible)
        self.alpha = alpha
        self.variant = variant
        self.include_background = bool(include_background)
        self.softmax = bool(softmax)
        self.sigmoid = bool(sigmoid)
        self.spacing = spacing
        self.reduction = inputs.check_reduction(reduction)
        self.batch = bool(batch)
        self.monai_compatible = bool(monai_compatible)
        self.validate = bool(validate)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return hausdorff_dt_loss(pred, target, self.alpha, variant=self.variant,
                                 include_background=self.include_background,
                                 softmax=self.softmax, sigmoid=self.sigmoid, spacing=self.spacing,
                                 reduction=self.reduction, batch=self.batch,
                                 monai_compatible=self.monai_compatible, validate=self.validate)
