"""Karimi & Salcudean's Hausdorff distance-transform loss (IEEE TMI 2019) and its logarithm
(MONAI's `LogHausdorffDTLoss`), with both distance fields recomputed on pred's device every
call."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..distance import one_hot_to_dist
from ..validation import choice, is_real
from . import inputs
from .inputs import Reduction

HAUSDORFF_VARIANTS = ("two_sided", "one_sided", "reference")


def _check_hausdorff_options(alpha: float, variant: str, spacing: Any,
                             monai_compatible: bool) -> None:
    choice(variant, "variant", HAUSDORFF_VARIANTS)
    if not (is_real(alpha) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    if monai_compatible:
        if spacing is not None:
            raise ValueError("spacing must be None with monai_compatible=True "
                             "(MONAI's field is in voxel units)")
        if variant != "two_sided":
            raise ValueError("variant must be 'two_sided' with monai_compatible=True")


def hausdorff_dt_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, *,
                      variant: str = "two_sided", idc: int | Sequence[int] | None = None,
                      include_background: bool | None = None, softmax: bool = False,
                      sigmoid: bool = False, other_act: Callable | None = None,
                      to_onehot_y: bool = False, spacing: Any = None,
                      reduction: Reduction = "mean", batch: bool = False,
                      monai_compatible: bool = False, validate: bool = True) -> torch.Tensor:
    """Karimi & Salcudean's Hausdorff distance-transform loss, per sample and channel:

        f_bc = mean_v (p - g)^2 (d_g^alpha + d_p^alpha)       ("two_sided", "reference")
        f_bc = mean_v (p - g)^2 d_g^alpha                     ("one_sided")

    d_g and d_p are distance fields of m = (g > 0.5) and of the thresholded prediction
    m = (p > 0.5), computed every call, without grad, in units of `spacing`: for "two_sided" and
    "one_sided" the unsigned field EDT(m) + EDT(~m) (MONAI's: >= 1 voxel spacing at the
    interface, 0 for a mask that is empty or full). "reference" is the boundary-loss reference
    code's `HausdorffLoss` (after SegWithDistMap): the foreground-only EDT(m) (0 outside m and for
    a full mask, where the reference reads scipy's distances to a phantom point off the grid), the
    prediction's mask being argmax(p) == c, and d_p truncated toward zero as the reference's int32
    one-hot made it.

    Args:
        pred: (B, C, *spatial) probabilities (each channel in [0, 1]; channels may overlap), or
            logits with `softmax=True` or `sigmoid=True`, or anything `other_act` maps to the
            values compared with the target (taken as is). "reference" needs C >= 2
            probabilities summing to 1 over dim 1 (or softmax logits).
        target: pred's shape (0/1 mask, one-hot or soft; the field thresholds it at 0.5), or
            integer labels (B, *spatial) / (B, 1, *spatial), one-hot encoded (needs C > 1).
        idc, include_background: the channels kept: idc exactly, or without it all channels but 0
            (include_background=False, the default) or all (True); C == 1 always keeps its
            channel. Given together they must agree (see the package docstring).
        to_onehot_y: MONAI's flag, accepted (labels are recognised without it; with it, labels
            may also be floating point).
        batch: average over (batch, voxels) per channel instead of per sample (MONAI's `batch`).
        monai_compatible: reproduce monai.losses.HausdorffDTLoss exactly: fields in float32 voxel
            units (`spacing` must be None) stored first in the dtype of the tensor MONAI writes
            them into (`torch.zeros_like(img)`: an integer one-hot target truncates its field to
            integers, a float16 one rounds it; MONAI raises for a bool target, taken here as 0/1
            with the exact field), MONAI's warnings for a single channel, and "none" keeps
            MONAI's broadcastable shape (B, C', 1, ...).

    Returns:
        "mean": mean over samples and channels; "sum": their sum; "none": (B, C') per sample and
        channel, (C',) with batch=True (MONAI shapes with monai_compatible), C' = channels kept.
    """
    options = inputs.Options.of(idc, include_background, softmax, sigmoid, False, to_onehot_y,
                                other_act)
    inputs.check_pred(pred, min_channels=2 if variant == "reference" else 1)
    inputs.check_reduction(reduction)
    _check_hausdorff_options(alpha, variant, spacing, monai_compatible)
    if monai_compatible:
        _monai_warnings(options, pred.shape[1])
    check = inputs.checking(validate)
    acc = inputs.acc_dtype(pred.dtype)
    kind, t = inputs.decode_target(target, pred, to_onehot_y, check)
    g = _target_probs(kind, t, pred.shape[1], check, acc)
    p = inputs.probabilities(pred, options.activation, other_act, check, acc,
                             simplex=variant == "reference")
    classes = inputs.resolve_idc(options.idc, pred.shape[1], include_background,
                                 default_background=False)
    fields = _fields(p, g, classes, variant, inputs.map_spacing(spacing, pred),
                     torch.float32 if monai_compatible else acc)
    if monai_compatible:  # the dtypes MONAI stores the fields in before its .float()
        exact = kind == "labels" or t.dtype == torch.bool
        stored = (torch.float32 if exact else t.dtype, pred.dtype)
        fields = [f.to(dtype).float() for f, dtype in zip(fields, stored)]
    weight = sum(f ** alpha for f in fields)
    p, g = p[:, classes], g[:, classes]
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


def log_hausdorff_dt_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 2.0,
                          **kwargs: Any) -> torch.Tensor:
    """log(1 + L) of the Hausdorff DT loss L = `hausdorff_dt_loss(pred, target, alpha, **kwargs)`
    (MONAI's `LogHausdorffDTLoss`), applied after the reduction (elementwise for "none")."""
    return torch.log1p(hausdorff_dt_loss(pred, target, alpha, **kwargs))


def _monai_warnings(options: inputs.Options, channels: int) -> None:
    """The warnings MONAI gives for options it ignores on a single-channel prediction."""
    if channels != 1:
        return
    if options.activation == "softmax":
        warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=3)
    if options.include_background is not True and options.idc is None:
        warnings.warn("single channel prediction, `include_background=False` ignored.",
                      stacklevel=3)


def _target_probs(kind: str, t: torch.Tensor, channels: int, check: bool,
                  acc: torch.dtype) -> torch.Tensor:
    """The decoded target as (B, C, *spatial) values in the accumulation dtype (labels one-hot
    encoded), checked."""
    if kind == "labels":
        if check:
            inputs.check_labels(t, channels)
        return inputs.one_hot(t, channels, acc)
    if check and kind == "mask":
        inputs.check_mask(t, exclusive=False)
    elif check:
        inputs.check_finite(t, "target")
    return t.to(acc)


def _fields(p: torch.Tensor, g: torch.Tensor, classes: list[int], variant: str,
            spacing: tuple[float, ...] | list[tuple[float, ...]],
            dtype: torch.dtype) -> list[torch.Tensor]:
    """[d_g] ("one_sided") or [d_g, d_p] of the kept classes, one batched transform, as constants
    of the loss (no grad); p and g hold every class (the "reference" argmax needs them all)."""
    with torch.no_grad():
        g_mask = g[:, classes] > 0.5
        if variant == "one_sided":
            return [one_hot_to_dist(g_mask, spacing, convention="unsigned", dtype=dtype,
                                    validate=False)]
        if variant == "reference":
            index = torch.tensor(classes, device=p.device).view((1, -1) + (1,) * (p.dim() - 2))
            p_mask = p.argmax(dim=1, keepdim=True) == index
        else:
            p_mask = p[:, classes] > 0.5
        masks = torch.cat([g_mask, p_mask])
        twice = spacing if isinstance(spacing, tuple) else spacing + spacing  # per item
        both = one_hot_to_dist(masks, twice, convention="unsigned", dtype=dtype,
                               validate=False)
        if variant == "reference":  # EDT(m) = the unsigned field inside m; d_p truncated
            both = both * masks
            return [both[: len(g)], both[len(g):].trunc()]
        return [both[: len(g)], both[len(g):]]


class HausdorffDTLoss(inputs.OptionsMixin, nn.Module):
    """Hausdorff distance-transform loss (Karimi & Salcudean, IEEE TMI 2019); see
    `hausdorff_dt_loss` for the formula, shapes and options."""

    def __init__(self, alpha: float = 2.0, *, variant: str = "two_sided",
                 idc: int | Sequence[int] | None = None, include_background: bool | None = None,
                 softmax: bool = False, sigmoid: bool = False, other_act: Callable | None = None,
                 to_onehot_y: bool = False, spacing: Any = None, reduction: Reduction = "mean",
                 batch: bool = False, monai_compatible: bool = False,
                 validate: bool = True) -> None:
        super().__init__()
        self.options = inputs.Options.of(idc, include_background, softmax, sigmoid, False,
                                          to_onehot_y, other_act)
        _check_hausdorff_options(alpha, variant, spacing, monai_compatible)
        self.alpha = alpha
        self.variant = variant
        self.spacing = spacing
        self.reduction = inputs.check_reduction(reduction)
        self.batch = bool(batch)
        self.monai_compatible = bool(monai_compatible)
        self.validate = bool(validate)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return hausdorff_dt_loss(pred, target, self.alpha, variant=self.variant,
                                 **self.options.kwargs(), spacing=self.spacing,
                                 reduction=self.reduction, batch=self.batch,
                                 monai_compatible=self.monai_compatible, validate=self.validate)


class LogHausdorffDTLoss(HausdorffDTLoss):
    """log(1 + L) of the Hausdorff DT loss L (MONAI's `LogHausdorffDTLoss`), after the reduction;
    arguments as `HausdorffDTLoss`."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.log1p(super().forward(pred, target))
