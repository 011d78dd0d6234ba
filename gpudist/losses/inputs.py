"""Argument checks and target decoding shared by the losses in `gpudist.losses`.

Checks that read tensor values (NaN, ranges, sums) cost one reduction and a host sync each; they
run when `validate` is true and are skipped under torch.compile, where data-dependent checks
cannot run. Shape, dtype and device checks always run.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..validation import check_one_hot, index_labels, spacing_rows

REDUCTIONS = ("mean", "sum", "none")
Reduction = Literal["mean", "sum", "none"]
TargetKind = Literal["float", "mask", "labels"]


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The accumulation dtype for inputs of `dtype`: float64 stays float64, the rest use float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def checking(validate: bool) -> bool:
    """Whether value checks run: asked for, and not under torch.compile."""
    return bool(validate) and not torch.compiler.is_compiling()


def simplex_tol(dtype: torch.dtype) -> float:
    """Tolerance on |sum_c p_c - 1| and on p outside [0, 1]: 1e-2 for 16-bit floats, else 1e-4."""
    return 1e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-4


def check_pred(pred: object, min_channels: int = 1) -> torch.Tensor:
    """pred as a floating-point (B, C, *spatial) tensor with C >= min_channels."""
    if not isinstance(pred, torch.Tensor):
        raise TypeError(f"pred must be a torch.Tensor, got {type(pred).__name__}")
    if not pred.is_floating_point():
        raise TypeError(f"pred must be a floating-point tensor (probabilities or logits), "
                        f"got {pred.dtype}")
    if pred.dim() < 3:
        raise ValueError(f"pred must be (B, C, *spatial) with at least one spatial dim, "
                         f"got shape {tuple(pred.shape)}")
    if pred.shape[1] < min_channels:
        raise ValueError(f"pred must have at least {min_channels} channels (classes along dim 1), "
                         f"got shape {tuple(pred.shape)}; for one sigmoid channel p pass "
                         f"torch.cat([1 - p, p], dim=1)")
    return pred


def check_finite(x: torch.Tensor, name: str) -> None:
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def check_simplex(probs: torch.Tensor, name: str) -> None:
    """probs in [0, 1] summing to 1 over dim 1, within `simplex_tol`."""
    tol = simplex_tol(probs.dtype)
    sums = probs.sum(dim=1, dtype=acc_dtype(probs.dtype))
    if (probs < -tol).any() or (probs > 1 + tol).any() or ((sums - 1).abs() > tol).any():
        raise ValueError(f"{name} must hold probabilities in [0, 1] summing to 1 over dim 1 "
                         f"(tolerance {tol}); pass softmax=True (from_logits=True) for logits")


def check_unit_interval(probs: torch.Tensor, name: str, hint: str) -> None:
    tol = simplex_tol(probs.dtype)
    if (probs < -tol).any() or (probs > 1 + tol).any():
        raise ValueError(f"{name} must hold probabilities in [0, 1]{hint}")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
                         f"got {reduction!r}")
    return reduction


def check_idc(idc: int | Sequence[int] | None,
              include_background: bool | None = None) -> list[int] | None:
    """idc (an int, a sequence of ints or None) as sorted unique class indices >= 0, checked
    against include_background (None, or a bool that must agree: 0 in idc exactly when True)."""
    if include_background is not None and not isinstance(include_background, bool):
        raise TypeError(f"include_background must be a bool or None, got "
                        f"{type(include_background).__name__}")
    if idc is None:
        return None
    if isinstance(idc, numbers.Integral) and not isinstance(idc, bool):
        values = [idc]
    elif isinstance(idc, Sequence) and not isinstance(idc, (str, bytes)):
        values = list(idc)
    else:
        raise TypeError(f"idc must be a class index, a sequence of class indices or None, "
                        f"got {type(idc).__name__}")
    if not values:
        raise ValueError("idc must not be empty")
    for k in values:
        if not isinstance(k, numbers.Integral) or isinstance(k, bool):
            raise TypeError(f"idc must hold ints, got {type(k).__name__}")
        if k < 0:
            raise ValueError(f"idc values must be >= 0, got {k}")
    if len(set(values)) != len(values):
        raise ValueError(f"idc must not repeat a class, got {values}")
    classes = sorted(int(k) for k in values)
    if include_background is not None and include_background != (0 in classes):
        raise ValueError(f"idc={classes} and include_background={include_background} contradict "
                         f"each other: idc selects the classes exactly (with or without class "
                         f"0); pass one of them, or both in agreement")
    return classes


def resolve_idc(idc: int | Sequence[int] | None, num_classes: int,
                include_background: bool | None = None,
                default_background: bool = True) -> list[int]:
    """The classes a loss supervises, sorted. `idc` (an int or a sequence) selects them exactly;
    otherwise `include_background` False drops class 0 (kept when there is only one class) and
    True keeps every class, None meaning the loss's default (`default_background`)."""
    classes = check_idc(idc, include_background)
    if classes is None:
        keep = default_background if include_background is None else include_background
        return list(range(0 if keep or num_classes == 1 else 1, num_classes))
    if classes[-1] >= num_classes:
        raise ValueError(f"idc values must be in [0, {num_classes}) for pred with {num_classes} "
                         f"classes, got {classes[-1]}")
    return classes


def check_activation(softmax: bool, sigmoid: bool, from_logits: bool = False,
                     other_act: Callable | None = None) -> str:
    """The activation named by the flags: "softmax" (softmax=True or from_logits=True, its older
    name), "sigmoid", "other" (a callable other_act) or "none" (pred holds probabilities)."""
    if other_act is not None and not callable(other_act):
        raise TypeError(f"other_act must be None or callable, got {type(other_act).__name__}")
    chosen = [name for name, on in (("softmax", softmax or from_logits), ("sigmoid", sigmoid),
                                    ("other", other_act is not None)) if on]
    if len(chosen) > 1:
        raise ValueError(f"softmax (from_logits), sigmoid and other_act are exclusive: set at "
                         f"most one of them, got {' and '.join(chosen)}")
    return chosen[0] if chosen else "none"


@dataclass(frozen=True)
class Options:
    """The arguments every loss shares, checked once: the class selection (`idc`,
    `include_background`), the activation ("softmax", "sigmoid", "other" with `other_act`, or
    "none") and MONAI's `to_onehot_y`."""

    idc: list[int] | None
    include_background: bool | None
    activation: str
    to_onehot_y: bool
    other_act: Callable | None = None

    @classmethod
    def of(cls, idc: int | Sequence[int] | None, include_background: bool | None,
           softmax: bool, sigmoid: bool, from_logits: bool = False, to_onehot_y: bool = False,
           other_act: Callable | None = None) -> Options:
        return cls(check_idc(idc, include_background), include_background,
                   check_activation(softmax, sigmoid, from_logits, other_act), bool(to_onehot_y),
                   other_act)

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments that pass these options on to a loss function."""
        out = dict(idc=self.idc, include_background=self.include_background,
                   softmax=self.activation == "softmax", sigmoid=self.activation == "sigmoid",
                   to_onehot_y=self.to_onehot_y)
        if self.other_act is not None:
            out["other_act"] = self.other_act
        return out


class OptionsMixin:
    """The shared options of a loss module as read-only attributes (`self.options` holds them)."""

    options: Options

    @property
    def idc(self) -> list[int] | None:
        return self.options.idc

    @property
    def include_background(self) -> bool | None:
        return self.options.include_background

    @property
    def softmax(self) -> bool:
        return self.options.activation == "softmax"

    from_logits = softmax  # the older name of softmax=True

    @property
    def sigmoid(self) -> bool:
        return self.options.activation == "sigmoid"

    @property
    def to_onehot_y(self) -> bool:
        return self.options.to_onehot_y


def decode_target(target: object, pred: torch.Tensor, to_onehot_y: bool = False,
                  check: bool = False) -> tuple[TargetKind, torch.Tensor]:
    """What `target` is, judged by shape and dtype against pred (B, C, *spatial):

    - "float": floating point, pred's shape (distance maps, soft or one-hot targets);
    - "mask": bool or integer, pred's shape (a one-hot or multi-label mask);
    - "labels": integer (B, *spatial), or (B, 1, *spatial) when C > 1; returned as (B, *spatial).

    `to_onehot_y=True` (MONAI's flag; labels are recognised without it) insists on labels and also
    takes them in a floating-point dtype (MONAI's one_hot casts them), checked to be whole
    numbers when `check`. With one channel MONAI ignores the flag, with a warning; so does this.
    """
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if target.device != pred.device:
        raise ValueError(f"target must be on pred's device ({pred.device}), got {target.device}")
    if target.is_complex():
        raise TypeError(f"target must hold real values, got {target.dtype}")
    batch, channels, spatial = pred.shape[0], pred.shape[1], pred.shape[2:]
    if to_onehot_y and channels == 1:
        warnings.warn("single channel prediction, `to_onehot_y=True` ignored.", stacklevel=3)
        to_onehot_y = False
    if to_onehot_y:
        if target.shape not in ((batch, *spatial), (batch, 1, *spatial)):
            raise ValueError(f"to_onehot_y=True expects class labels of shape "
                             f"{(batch, 1, *spatial)} or {(batch, *spatial)}, got shape "
                             f"{tuple(target.shape)}")
        labels = target.reshape(batch, *spatial)
        if labels.is_floating_point() or labels.dtype == torch.bool:
            if check and labels.is_floating_point() and not (labels == labels.round()).all():
                raise ValueError("target labels must be whole numbers (class indices)")
            labels = labels.to(torch.int64)
        return "labels", index_labels(labels)
    if target.shape == pred.shape:
        return ("float" if target.is_floating_point() else "mask"), target
    integer = not target.is_floating_point() and target.dtype != torch.bool
    if integer and target.shape == (batch, *spatial):
        if channels == 1:
            raise ValueError("target labels need pred with C > 1 channels; for one channel pass "
                             "a 0/1 target of pred's shape")
        return "labels", index_labels(target)
    if integer and channels > 1 and target.shape == (batch, 1, *spatial):
        return "labels", index_labels(target[:, 0])
    raise ValueError(f"target must have pred's shape {tuple(pred.shape)}, or be integer labels of "
                     f"shape {(batch, *spatial)}, got {target.dtype} of shape "
                     f"{tuple(target.shape)}")


def probabilities(pred: torch.Tensor, activation: str, other_act: Callable | None, check: bool,
                  acc: torch.dtype, simplex: bool) -> torch.Tensor:
    """pred as probabilities in the accumulation dtype: softmax over dim 1 (skipped for one
    channel, as MONAI does), sigmoid, other_act's output taken as is, or checked as given
    (summing to 1 over dim 1 with `simplex`, else each in [0, 1])."""
    if check:
        check_finite(pred, "pred")
    if activation == "sigmoid":
        return torch.sigmoid(pred.to(acc))
    if activation == "softmax":
        return torch.softmax(pred, dim=1, dtype=acc) if pred.shape[1] > 1 else pred.to(acc)
    if activation == "other":
        return other_act(pred).to(acc)
    if check and simplex:
        check_simplex(pred, "pred")
    elif check:
        check_unit_interval(pred, "pred", " (pass softmax=True or sigmoid=True for logits)")
    return pred.to(acc)


def map_spacing(spacing: Any,
                pred: torch.Tensor) -> tuple[float, ...] | list[tuple[float, ...]]:
    """The voxel spacing of the maps a loss computes for pred (B, C, *spatial), in the form the
    transforms take: one positive number per spatial axis (1.0 each for None) for the whole
    batch, or one such tuple per batch item (a (B, ndim) tensor/array or B tuples)."""
    return spacing_rows(spacing, pred.dim() - 2, pred.shape[0])


def check_labels(labels: torch.Tensor, num_classes: int) -> None:
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"target labels must be in [0, {num_classes}) for pred with "
                         f"{num_classes} classes, got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")


def check_mask(mask: torch.Tensor, exclusive: bool) -> None:
    """mask holds 0/1; with `exclusive`, exactly one class per voxel along dim 1."""
    check_one_hot(mask, "target mask", exclusive, "(a one-hot encoding)")


def one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, *spatial) labels -> (B, num_classes, *spatial) one-hot of `dtype`."""
    classes = torch.arange(num_classes, device=labels.device)
    return (labels.unsqueeze(1) == classes.view((1, -1) + (1,) * (labels.dim() - 1))).to(dtype)


def reduce_batch(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample
