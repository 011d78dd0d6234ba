"""Argument checks and target decoding shared by the losses in `gpudist.losses`.

Checks that read tensor values (NaN, ranges, sums) cost one reduction and a host sync each; they
run when `validate` is true and are skipped under torch.compile, where data-dependent checks
cannot run. Shape, dtype and device checks always run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from ..validation import check_one_hot, index_labels

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
                         f"(tolerance {tol}); pass from_logits=True for logits")


def check_unit_interval(probs: torch.Tensor, name: str, hint: str) -> None:
    tol = simplex_tol(probs.dtype)
    if (probs < -tol).any() or (probs > 1 + tol).any():
        raise ValueError(f"{name} must hold probabilities in [0, 1]{hint}")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
                         f"got {reduction!r}")
    return reduction


def resolve_idc(idc: Sequence[int] | None, num_classes: int) -> list[int]:
    """The class indices, sorted: all classes when None; unique ints in [0, num_classes)."""
    if idc is None:
        return list(range(num_classes))
    if isinstance(idc, (str, bytes)) or not isinstance(idc, Sequence):
        raise TypeError(f"idc must be a sequence of class indices or None, "
                        f"got {type(idc).__name__}")
    values = list(idc)
    if not values:
        raise ValueError("idc must not be empty")
    for k in values:
        if not isinstance(k, int) or isinstance(k, bool):
            raise TypeError(f"idc must hold ints, got {type(k).__name__}")
        if not 0 <= k < num_classes:
            raise ValueError(f"idc values must be in [0, {num_classes}) for pred with "
                             f"{num_classes} classes, got {k}")
    if len(set(values)) != len(values):
        raise ValueError(f"idc must not repeat a class, got {values}")
    return sorted(values)


def decode_target(target: object, pred: torch.Tensor) -> tuple[TargetKind, torch.Tensor]:
    """What `target` is, judged by shape and dtype against pred (B, C, *spatial):

    - "float": floating point, pred's shape (distance maps, soft or one-hot targets);
    - "mask": bool or integer, pred's shape (a one-hot or multi-label mask);
    - "labels": integer (B, *spatial), or (B, 1, *spatial) when C > 1; returned as (B, *spatial).
    """
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if target.device != pred.device:
        raise ValueError(f"target must be on pred's device ({pred.device}), got {target.device}")
    if target.is_complex():
        raise TypeError(f"target must hold real values, got {target.dtype}")
    batch, channels, spatial = pred.shape[0], pred.shape[1], pred.shape[2:]
    if target.shape == pred.shape:
        return ("float" if target.is_floating_point() else "mask"), target
    integer = not target.is_floating_point() and target.dtype != torch.bool
    if integer and target.shape == (batch, *spatial):
        return "labels", index_labels(target)
    if integer and channels > 1 and target.shape == (batch, 1, *spatial):
        return "labels", index_labels(target[:, 0])
    raise ValueError(f"target must have pred's shape {tuple(pred.shape)}, or be integer labels of "
                     f"shape {(batch, *spatial)}, got {target.dtype} of shape "
                     f"{tuple(target.shape)}")


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
