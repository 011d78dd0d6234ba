"""Distance-based segmentation losses: the boundary loss (Kervadec et al. 2019), the generalised
Dice loss it is paired with, their published rebalancing schedules, and Karimi & Salcudean's
Hausdorff distance-transform loss.

Shared conventions:

- `pred` is (B, C, *spatial) with any number of spatial dims: probabilities, or logits where the
  loss is told so (`from_logits`, `softmax`, `sigmoid`). float16, bfloat16, float32 and float64
  are accepted; arithmetic is float32 (float64 for float64 pred) and so is the returned loss.
- `target` is one of: a tensor of pred's shape (floating point: distance maps for the boundary
  loss, soft or one-hot targets otherwise; bool or integer: a 0/1 mask), or integer labels of shape
  (B, *spatial) (also (B, 1, *spatial) when C > 1). It must be on pred's device.
- Distance maps the losses need are computed on that device in one batched gpudist call, under
  no_grad (they are constants of the loss).
- `reduction`: "mean" (the batch mean, the papers' value), "sum", or "none" (per sample; shapes in
  each loss's doc).
- `validate=True` checks values (NaN/inf, probability simplex, label range, 0/1 masks) at the cost
  of a host sync per check; checks are skipped under torch.compile. Bad arguments raise TypeError
  or ValueError naming the argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ._fused_boundary import acc_dtype, boundary_loss_from_logits
from ._loss_inputs import (
    Reduction,
    check_finite,
    check_labels,
    check_mask,
    check_pred,
    check_reduction,
    check_simplex,
    check_unit_interval,
    checking,
    decode_target,
    one_hot,
    reduce_batch,
    resolve_idc,
)
from ._validate import choice, spacing_tuple
from .distance import CONVENTIONS, labels_to_dist, one_hot_to_dist

__all__ = [
    "BoundaryLoss",
    "GeneralizedDiceLoss",
    "HausdorffDTLoss",
    "RebalancedLoss",
    "boundary_loss",
    "boundary_maps",
    "generalized_dice_loss",
    "hausdorff_dt_loss",
]

HAUSDORFF_VARIANTS = ("two_sided", "one_sided")
STRATEGIES = ("rebalance", "steal", "increase", "constant")


# ---------------------------------------------------------------------------------------------
# Boundary loss


def boundary_maps(target: torch.Tensor, pred: torch.Tensor, spacing: Any = None, *,
                  convention: str = "kervadec", validate: bool = True) -> torch.Tensor:
    """The level-set maps phi (B, C, *spatial) the boundary loss multiplies pred with.

    pred (B, C, *spatial) only sets the expected shape, the device and the dtype. Floating-point `target` of pred's shape is taken as precomputed maps and returned as is. A
    bool/integer mask of pred's shape or integer labels are turned into maps with `spacing` and
    `convention` (see `gpudist.signed_distance`), in pred's accumulation dtype, without grad.
    """
    choice(convention, "convention", CONVENTIONS)
    kind, t = decode_target(target, pred)
    check = checking(validate)
    if kind == "float":
        if check:
            check_finite(t, "target")
            if ((t == 0) | (t == 1)).all() and (t.sum(dim=1) == 1).all():
                raise ValueError("target looks like a one-hot mask stored as floating point, not "
                                 "distance maps; pass it as a bool or integer tensor to have its "
                                 "maps computed")
        return t
    dtype = acc_dtype(pred.dtype)
    spacing = spacing_tuple(spacing, pred.dim() - 2)
    with torch.no_grad():
        if kind == "labels":
            if check:
                check_labels(t, pred.shape[1])
            return labels_to_dist(t, pred.shape[1], spacing, convention=convention, dtype=dtype,
                                  validate=False)
        if check:
            check_mask(t, exclusive=convention == "kervadec")
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
    check_pred(pred, min_channels=2)
    check_reduction(reduction)
    classes = resolve_idc(idc, pred.shape[1])
    phi = boundary_maps(target, pred, spacing, convention=convention, validate=validate)
    check = checking(validate)
    if check:
        check_finite(pred, "pred")
    if from_logits:
        per_sample = boundary_loss_from_logits(pred, phi, classes)
    else:
        if check:
            check_simplex(pred, "pred")
        acc = acc_dtype(pred.dtype)
        prod = pred[:, classes].to(acc) * phi[:, classes].to(acc)
        per_sample = prod.flatten(1).mean(dim=1)
    return reduce_batch(per_sample, reduction)


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
        self.reduction = check_reduction(reduction)
        self.validate = bool(validate)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return boundary_loss(pred, target, self.idc, from_logits=self.from_logits,
                             spacing=self.spacing, convention=self.convention,
                             reduction=self.reduction, validate=self.validate)


# ---------------------------------------------------------------------------------------------
# Generalised Dice


def _regional_target(target: torch.Tensor, pred: torch.Tensor, check: bool) -> torch.Tensor:
    """target as a (B, C, *spatial) float tensor of pred's accumulation dtype, checked."""
    kind, t = decode_target(target, pred)
    dtype = acc_dtype(pred.dtype)
    if kind == "labels":
        if check:
            check_labels(t, pred.shape[1])
        return one_hot(t, pred.shape[1], dtype)
    if check:
        if kind == "mask":
            check_mask(t, exclusive=True)
        else:
            check_finite(t, "target")
            check_simplex(t, "target")
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
    check_pred(pred, min_channels=2)
    check_reduction(reduction)
    classes = resolve_idc(idc, pred.shape[1])
    check = checking(validate)
    g = _regional_target(target, pred, check)[:, classes].flatten(2)
    if check:
        check_finite(pred, "pred")
    acc = acc_dtype(pred.dtype)
    if from_logits:
        p = torch.softmax(pred, dim=1, dtype=acc)
    else:
        if check:
            check_simplex(pred, "pred")
        p = pred.to(acc)
    p = p[:, classes].flatten(2)
    w = 1.0 / (g.sum(dim=2) + 1e-10) ** 2
    intersection = (w * (p * g).sum(dim=2)).sum(dim=1)
    union = (w * (p.sum(dim=2) + g.sum(dim=2))).sum(dim=1)
    per_sample = 1.0 - 2.0 * (intersection + 1e-10) / (union + 1e-10)
    return reduce_batch(per_sample, reduction)


class GeneralizedDiceLoss(nn.Module):
    """Generalised Dice loss (Sudre et al. 2017) as used with the boundary loss; see
    `generalized_dice_loss` for the formula, shapes and reductions."""

    def __init__(self, idc: Sequence[int] | None = None, *, from_logits: bool = False,
                 reduction: Reduction = "mean", validate: bool = True) -> None:
        super().__init__()
        self.idc = None if idc is None else list(idc)
        self.from_logits = bool(from_logits)
        self.reduction = check_reduction(reduction)
        self.validate = bool(validate)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return generalized_dice_loss(pred, target, self.idc, from_logits=self.from_logits,
                                     reduction=self.reduction, validate=self.validate)


# ---------------------------------------------------------------------------------------------
# Rebalancing schedules


class RebalancedLoss(nn.Module):
    """`w_R * regional(pred, target) + w_B * boundary(pred, boundary_target)`, with the weights
    (w_R, w_B) following one of the published schedules; call `step()` once per epoch.

    Weights during epoch e (e = number of `step()` calls so far), from the initial (r0, b0):

    - "rebalance" (paper): alpha = max(floor, r0 - step_size * e), weights (alpha, 1 - alpha);
      defaults r0 = 1, floor = 0.01.
    - "steal" (reference code's StealWeight): (max(floor, r0 - step_size * e), b0 + step_size * e),
      w_B not capped; defaults (1, 0.01), floor = 0.1.
    - "increase" (journal version): (r0, b0 + step_size * e); default (1, 0.01).
    - "constant": (r0, b0); default (1, 0.01) (the README's GDL + 0.01 * L_B).

    The schedule (strategy, initial weights, step size, floor, epoch) is saved in `state_dict()`
    and restored by `load_state_dict()`.
    """

    def __init__(self, regional: Callable[..., torch.Tensor],
                 boundary: Callable[..., torch.Tensor], strategy: str = "rebalance", *,
                 weights: tuple[float, float] | None = None, step_size: float = 0.01,
                 floor: float | None = None) -> None:
        super().__init__()
        self.regional = regional
        self.boundary = boundary
        self._configure(choice(strategy, "strategy", STRATEGIES), weights, step_size, floor, 0)

    def _configure(self, strategy: str, weights: Sequence[float] | None, step_size: float,
                   floor: float | None, epoch: int) -> None:
        if weights is None:
            weights = (1.0, 0.0) if strategy == "rebalance" else (1.0, 0.01)
        if len(weights) != 2 or not all(_is_real(w) and math.isfinite(w) for w in weights):
            raise ValueError(f"weights must be two finite numbers (w_regional, w_boundary), "
                             f"got {weights!r}")
        if strategy == "rebalance" and not math.isclose(weights[0] + weights[1], 1.0):
            raise ValueError(f"weights must sum to 1 for strategy='rebalance', got {weights!r}")
        if not (_is_real(step_size) and math.isfinite(step_size) and step_size >= 0):
            raise ValueError(f"step_size must be a finite number >= 0, got {step_size!r}")
        if floor is None:
            floor = {"rebalance": 0.01, "steal": 0.1}.get(strategy, 0.0)
        if not (_is_real(floor) and 0 <= floor <= weights[0]):
            raise ValueError(f"floor must be a number in [0, weights[0]], got {floor!r}")
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        self.strategy = strategy
        self.initial_weights = (float(weights[0]), float(weights[1]))
        self.step_size = float(step_size)
        self.floor = float(floor)
        self.epoch = epoch

    @property
    def weights(self) -> tuple[float, float]:
        """(w_regional, w_boundary) for the current epoch (rounded to 12 decimals)."""
        r0, b0 = self.initial_weights
        shift = self.step_size * self.epoch
        if self.strategy == "rebalance":
            r = max(self.floor, r0 - shift)
            w = (r, 1.0 - r)
        elif self.strategy == "steal":
            w = (max(self.floor, r0 - shift), b0 + shift)
        elif self.strategy == "increase":
            w = (r0, b0 + shift)
        else:
            w = (r0, b0)
        return (round(w[0], 12), round(w[1], 12))

    def step(self) -> tuple[float, float]:
        """Ends an epoch; returns the weights for the next one."""
        self.epoch += 1
        return self.weights

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                boundary_target: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted sum; `boundary_target` (e.g. precomputed maps) defaults to `target`."""
        w_r, w_b = self.weights
        b_target = target if boundary_target is None else boundary_target
        return w_r * self.regional(pred, target) + w_b * self.boundary(pred, b_target)

    def get_extra_state(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "initial_weights": self.initial_weights,
                "step_size": self.step_size, "floor": self.floor, "epoch": self.epoch}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._configure(choice(state["strategy"], "strategy", STRATEGIES),
                        tuple(state["initial_weights"]), state["step_size"], state["floor"],
                        state["epoch"])

    def extra_repr(self) -> str:
        return f"strategy={self.strategy!r}, epoch={self.epoch}, weights={self.weights}"


def _is_real(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# ---------------------------------------------------------------------------------------------
# Hausdorff distance-transform loss


def _check_hausdorff_options(alpha: float, variant: str, softmax: bool, sigmoid: bool,
                             spacing: Any, monai_compatible: bool) -> None:
    choice(variant, "variant", HAUSDORFF_VARIANTS)
    if not (_is_real(alpha) and math.isfinite(alpha) and alpha > 0):
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
    check_pred(pred)
    check_reduction(reduction)
    _check_hausdorff_options(alpha, variant, softmax, sigmoid, spacing, monai_compatible)
    check = checking(validate)
    if check:
        check_finite(pred, "pred")
    acc = acc_dtype(pred.dtype)
    channels = pred.shape[1]
    kind, t = decode_target(target, pred)
    if kind == "labels":
        if channels == 1:
            raise ValueError("target labels need pred with C > 1 channels; for one channel pass "
                             "a 0/1 target of pred's shape")
        if check:
            check_labels(t, channels)
        g = one_hot(t, channels, acc)
    else:
        if check:
            if kind == "mask":
                check_mask(t, exclusive=False)
            else:
                check_finite(t, "target")
        g = t.to(acc)

    if sigmoid:
        p = torch.sigmoid(pred.to(acc))
    elif softmax and channels > 1:  # softmax over one channel is constant; MONAI skips it
        p = torch.softmax(pred, dim=1, dtype=acc)
    else:
        if check and not softmax:
            check_unit_interval(pred, "pred", " (pass softmax=True or sigmoid=True for logits)")
        p = pred.to(acc)
    if not include_background and channels > 1:
        p, g = p[:, 1:], g[:, 1:]

    field_dtype = torch.float32 if monai_compatible else acc
    sp = spacing_tuple(spacing, pred.dim() - 2)
    with torch.no_grad():
        masks = g > 0.5 if variant == "one_sided" else torch.cat([g > 0.5, p.detach() > 0.5])
        fields = one_hot_to_dist(masks, sp, convention="unsigned", dtype=field_dtype,
                                 validate=False) ** alpha
        weight = fields if variant == "one_sided" else fields[: len(g)] + fields[len(g):]
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
        self.reduction = check_reduction(reduction)
        self.batch = bool(batch)
        self.monai_compatible = bool(monai_compatible)
        self.validate = bool(validate)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return hausdorff_dt_loss(pred, target, self.alpha, variant=self.variant,
                                 include_background=self.include_background,
                                 softmax=self.softmax, sigmoid=self.sigmoid, spacing=self.spacing,
                                 reduction=self.reduction, batch=self.batch,
                                 monai_compatible=self.monai_compatible, validate=self.validate)
