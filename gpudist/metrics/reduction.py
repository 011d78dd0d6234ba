"""MONAI's metric reductions over a (B, C) table of per-item values, NaN-aware.

`reduce_metric(values, reduction)` equals MONAI's `monai.metrics.utils.do_metric_reduction`
(MONAI 1.6) value for value: NaN entries (in gpudist: both masks empty) are left out and counted
by `not_nans`; +inf entries (one mask empty, with `empty_distance="inf"`) are kept, so a mean
they enter is +inf; a mean with no entry left is 0, not NaN, as in MONAI (its `not_nans` is then
0: read it to tell "no data" from a value of 0).
"""

from __future__ import annotations

from typing import Any

import torch

from ..validation import choice, to_torch

REDUCTIONS = ("none", "mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel")

Array = Any  # torch.Tensor or numpy.ndarray


def _mean(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """total / count where count > 0, else 0."""
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def reduce_metric(values: Array, reduction: str = "mean") -> tuple[Array, Array]:
    """Reduces (B, C) metric values as MONAI does; returns (reduced, not_nans).

    reduction:
        "none": values unchanged; not_nans (B, C), 1.0 where not NaN.
        "mean": the mean over the classes of each item's non-NaN values, then the mean over the
            items that have any; scalar. not_nans: the number of such items.
        "sum": the sum of the non-NaN values; scalar. not_nans: their number.
        "mean_batch" / "sum_batch": per class over the items, (C,); not_nans per class.
        "mean_channel" / "sum_channel": per item over the classes, (B,); not_nans per item.

    Means of no value are 0. Outputs are floating point of the values' dtype (not_nans too),
    on their device; numpy in, numpy out. The scalars are 0-d (MONAI's "mean" is shaped (1,)).
    """
    x, back = to_torch(values, "values")
    choice(reduction, "reduction", REDUCTIONS)
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(f"values must be a floating-point (B, C) table, got {x.dtype} of shape "
                         f"{tuple(x.shape)}")
    valid = ~torch.isnan(x)
    if reduction == "none":
        return back(x), back(valid.to(x.dtype))
    f = torch.where(valid, x, torch.zeros_like(x))
    count = valid.to(x.dtype)
    if reduction == "mean":
        per_item = _mean(f.sum(1), count.sum(1))
        items = (count.sum(1) > 0).to(x.dtype).sum()
        return back(_mean(per_item.sum(), items)), back(items)
    if reduction == "sum":
        return back(f.sum()), back(count.sum())
    dim = 0 if reduction.endswith("_batch") else 1
    total, n = f.sum(dim), count.sum(dim)
    return back(_mean(total, n) if reduction.startswith("mean") else total), back(n)
