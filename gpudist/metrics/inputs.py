"""The inputs of the surface metrics as pairs of binary masks (B, C, *spatial): one-hot masks,
integer labels (torchmetrics' `input_format="index"`) or probabilities (a threshold, or the
argmax over classes), background dropped or kept, numpy arrays in and out."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch

from ..validation import check_integer_dtype, check_mask_dtype, choice, to_torch

INPUT_FORMATS = ("one-hot", "index", "mixed")
DISTANCE_METRICS = ("euclidean", "chessboard", "taxicab")

Array = Any  # torch.Tensor or numpy.ndarray


def check_threshold(threshold: Any) -> float | str | None:
    """None, "argmax" or a finite number."""
    if threshold is None or threshold == "argmax":
        return threshold
    if (not isinstance(threshold, numbers.Real) or isinstance(threshold, bool)
            or threshold != threshold or abs(threshold) == float("inf")):
        raise ValueError(f"threshold must be None, 'argmax' or a finite number, got "
                         f"{threshold!r}")
    return float(threshold)


def check_num_classes(num_classes: Any) -> int | None:
    if num_classes is None:
        return None
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")
    return int(num_classes)


def check_distance_metric(distance_metric: Any) -> str:
    """MONAI's and torchmetrics' `distance_metric`: "euclidean", "chessboard" or "taxicab"."""
    return choice(distance_metric, "distance_metric", DISTANCE_METRICS)


def check_input_options(input_format: Any, num_classes: Any, threshold: Any,
                        include_background: Any, distance_metric: Any) -> None:
    """The data-independent checks of the arguments `binary_pair` takes."""
    choice(input_format, "input_format", INPUT_FORMATS)
    check_num_classes(num_classes)
    check_threshold(threshold)
    check_distance_metric(distance_metric)
    if not isinstance(include_background, bool):
        raise TypeError(f"include_background must be a bool, got "
                        f"{type(include_background).__name__}")


def _check_binary(x: torch.Tensor, name: str) -> torch.Tensor:
    """x (0/1 values of any mask dtype) as bool."""
    if x.dtype == torch.bool:
        return x
    if not torch.compiler.is_compiling() and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(f"{name} must be a binary mask holding only 0 and 1 (pass threshold= "
                         f"for probabilities, or input_format='index' for labels)")
    return x != 0


def _from_labels(x: torch.Tensor, name: str, num_classes: int, first: int) -> torch.Tensor:
    """(B, *spatial) integer labels in [0, num_classes) -> (B, C, *spatial) bool for the classes
    first..num_classes-1."""
    check_integer_dtype(x, name)
    if x.dim() < 2:
        raise ValueError(f"{name} must be (B, *spatial) labels with at least one spatial dim, "
                         f"got shape {tuple(x.shape)}")
    if x.numel() and not torch.compiler.is_compiling():
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"{name} labels must be in [0, {num_classes}) for num_classes="
                             f"{num_classes}, got values in [{lo}, {hi}]")
    classes = torch.arange(first, num_classes, device=x.device)
    return x.unsqueeze(1) == classes.view((1, -1) + (1,) * (x.dim() - 1))


def _from_masks(x: torch.Tensor, name: str, threshold: float | str | None,
                first: int) -> torch.Tensor:
    """(B, C, *spatial) masks, or probabilities with `threshold` -> bool, classes first..C-1."""
    check_mask_dtype(x, name)
    if x.dim() < 3:
        raise ValueError(f"{name} must be (B, C, *spatial) with at least one spatial dim, "
                         f"got shape {tuple(x.shape)}")
    if threshold == "argmax":
        if x.shape[1] == 0:
            return x[:, first:].to(torch.bool)
        classes = torch.arange(first, x.shape[1], device=x.device)
        return x.argmax(1, keepdim=True) == classes.view((1, -1) + (1,) * (x.dim() - 2))
    x = x[:, first:]
    return x >= threshold if threshold is not None else _check_binary(x, name)


def binary_pair(pred: Array, target: Array, *, include_background: bool = False,
                input_format: str = "one-hot", num_classes: int | None = None,
                threshold: float | str | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], Array]]:
    """pred and target as bool tensors (B, C', *spatial) of the classes kept, and the function
    that turns a result back into pred's array type (numpy in, numpy out).

    input_format: "one-hot" (both (B, C, *spatial) masks), "index" (both (B, *spatial) integer
        labels in [0, num_classes)), "mixed" (one of each, either way round; C from the one-hot
        one, or num_classes).
    threshold: for a pred of masks: None (0/1 values required), a number (pred >= threshold, as
        MONAI's AsDiscrete) or "argmax" (the one-hot of the argmax over dim 1, as torchmetrics
        does to floating-point inputs).
    include_background: False drops class 0 (MONAI's and torchmetrics' default), except when C is
        1, which is kept (as MONAI and torchmetrics do).
    """
    p, back = to_torch(pred, "pred")
    t, _ = to_torch(target, "target")
    choice(input_format, "input_format", INPUT_FORMATS)
    num_classes = check_num_classes(num_classes)
    threshold = check_threshold(threshold)
    if input_format == "index" and num_classes is None:
        raise ValueError("num_classes is required with input_format='index'")
    if input_format == "index" and threshold is not None:
        raise ValueError("threshold applies to a pred of masks or probabilities, not to labels "
                         "(input_format='index')")
    pred_labels = input_format == "index" or (input_format == "mixed" and p.dim() < t.dim())
    target_labels = input_format == "index" or (input_format == "mixed" and t.dim() < p.dim())
    if input_format == "mixed" and pred_labels == target_labels:
        raise ValueError(f"input_format='mixed' needs one (B, C, *spatial) one-hot tensor and one "
                         f"(B, *spatial) label tensor, got shapes {tuple(p.shape)} and "
                         f"{tuple(t.shape)}")
    if pred_labels and threshold is not None:
        raise ValueError("threshold applies to a pred of masks or probabilities, not to labels")
    one_hot = None if input_format == "index" else t if pred_labels else p
    if one_hot is None:
        channels = num_classes
    else:
        name = "target" if pred_labels else "pred"
        if one_hot.dim() < 3:
            raise ValueError(f"{name} must be (B, C, *spatial) with at least one spatial dim, "
                             f"got shape {tuple(one_hot.shape)}")
        channels = one_hot.shape[1]
        if num_classes is not None and num_classes != channels:
            raise ValueError(f"num_classes ({num_classes}) must equal the classes of {name} "
                             f"({channels}, its dim 1)")
    first = 0 if include_background or channels == 1 else 1
    p = (_from_labels(p, "pred", channels, first) if pred_labels
         else _from_masks(p, "pred", threshold, first))
    t = (_from_labels(t, "target", channels, first) if target_labels
         else _from_masks(t, "target", None, first))
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(p.shape)} and "
                         f"{tuple(t.shape)} (as masks (B, C, *spatial))")
    if p.device != t.device:
        raise ValueError(f"pred and target must be on the same device, got {p.device} and "
                         f"{t.device}")
    return p, t, back
