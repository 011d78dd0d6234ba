"""The backend contract: what every implementation of the distance transform takes and returns.

A backend is a function with the semantics of the op `gpudist::distance_transform`
(csrc/distance_transform/distance_transform.h):

    fn(src, num_classes, spacing, convention, black_border, dtype, max_distance=None) -> Tensor

- src: contiguous (B, *spatial); a bool mask when num_classes == 0 (True = foreground), else
  uint8 / int32 / int64 labels; a label outside [0, num_classes) belongs to no class (that
  element is background in every class's map).
- spacing: one positive float per spatial axis, each in the normal range of `dtype`, the largest
  at most MAX_SPACING_RATIO[dtype] times the smallest (the range where the passes stay exact);
  or one such row per batch item, flat and row-major (B * ndim values, B = src.shape[0] > 1;
  the classes of label item b use row b), still one transform of the whole batch
  (`rows_of_spacing`); convention: one of `CONVENTIONS`;
  black_border: the outside of the array is background (the edt conventions only); dtype:
  torch.float32 or torch.float64.
- max_distance: a bound on the work, not on the result (edt conventions only): distances beyond
  it may come back as +inf.
- Returns (B, *spatial) for a mask, (B, num_classes, *spatial) for labels, of `dtype`, on src's
  device.

A multi-label backend (`multilabel=True`) has the semantics of the op `gpudist::multilabel_edt`
(csrc/distance_transform/multilabel_cpu.cpp):

    fn(labels, spacing, black_border, squared, dtype) -> Tensor

- labels: contiguous (B, *spatial) bool / uint8 / int32 / int64; 0 is the background.
- spacing (this and the two variants below): positive finite values, one per spatial axis or
  one row of them per item (B * ndim values, row-major; `rows_of_spacing`), one call either way.
- Returns (B, *spatial) of `dtype`: the distance from each element of a nonzero label to the
  nearest element of a different label (0 included; the outside too with black_border), 0 on
  label 0, +inf in an item of a single nonzero label (without black_border).

A metric backend (`metric="taxicab" | "chessboard"`) has the semantics of the op
`gpudist::metric_transform` (csrc/distance_transform/metric_cpu.cpp):

    fn(src, spacing, metric, black_border, dtype) -> Tensor

- src: contiguous (B, *spatial) bool mask; metric: one of `METRICS[1:]`.
- Returns (B, *spatial) of `dtype`: the distance (sum or max over the axes of spacing times the
  index difference) from each foreground element to the nearest background element, 0 on the
  background, +inf in an item without background.

A feature backend (`return_indices=True`) has the semantics of the op
`gpudist::feature_transform` (csrc/distance_transform/features_cpu.cpp):

    fn(src, spacing, dtype) -> (distances, features)

- src: contiguous (B, *spatial) bool mask.
- Returns the "edt" distances (B, *spatial) of `dtype` and int64 features (B, *spatial): the
  row-major flat index, within its item, of a nearest background element (ties: the lowest
  index along each pass's axis, see csrc/kernels/edt_features.cuh); -1 in an item without
  background.

This module is the leaf that every backend imports: the convention table, the argument checks
(the op's `make_plan` checks, with its messages), the output-shape rule and the fake kernel of the
Python backends' ops. It imports no other gpudist module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

Backend = Callable[..., torch.Tensor]

# The conventions in the order of the C++ enum Convention (csrc/kernels/edt_line.cuh): a
# convention's index is its code in the kernels.
CONVENTIONS = ("edt", "edt_squared", "kervadec", "sdf", "unsigned")
# Those that need the distance on both sides of the boundary (the signed maps).
TWO_SIDED = CONVENTIONS[2:]

# The metrics of `edt(metric=...)`, scipy's names (distance_transform_cdt, MONAI's
# distance_metric); all but the first run through the metric backends.
METRICS = ("euclidean", "taxicab", "chessboard")

_LABEL_DTYPES = (torch.uint8, torch.int32, torch.int64)

# The largest ratio of the largest to the smallest spacing, per output dtype. The passes run on
# spacing / max(spacing), with weights w = that squared >= MAX_SPACING_RATIO^-2 (1e-36 and
# 1e-290): every w d^2 with d >= 1 is a normal number of the dtype, and the first pass's "no
# element seen" (3e38 or 1e300 elements) still squares to +inf under w. Farther apart, float32
# underflows and the result is wrong (csrc make_plan checks the same).
MAX_SPACING_RATIO = {torch.float32: 1e18, torch.float64: 1e145}


def check_spacing(spacing: Sequence[float], dtype: torch.dtype, where: str = "") -> None:
    """ValueError unless spacing fits `dtype` (see MAX_SPACING_RATIO); messages as make_plan's,
    ended by `where` (", in row r" for a row of a per-item spacing)."""
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"gpudist: spacing must be positive and finite{where}")
    info = torch.finfo(dtype)
    for s in spacing:
        if not info.tiny <= s <= info.max:
            raise ValueError(f"gpudist: spacing must be in the normal range of {dtype} "
                             f"[{info.tiny:g}, {info.max:g}], got {s:g}{where}")
    bound = MAX_SPACING_RATIO[dtype]
    if max(spacing) > bound * min(spacing):
        raise ValueError(f"gpudist: spacing: the largest value must be at most {bound:g} times "
                         f"the smallest for {dtype} output, got {max(spacing):g} and "
                         f"{min(spacing):g}{where}")


def rows_of_spacing(src: torch.Tensor, spacing: Sequence[float]) -> list[tuple[float, ...]]:
    """The rows of a backend's `spacing` for src (B, *spatial): [spacing] for a shared one, or
    B rows of ndim values for B * ndim values (B > 1), as the op reads it (make_plan)."""
    values, batch, nd = len(spacing), src.shape[0] if src.dim() >= 2 else 0, src.dim() - 1
    if batch > 1 and values == batch * nd:
        return [tuple(spacing[r * nd:(r + 1) * nd]) for r in range(batch)]
    return [tuple(spacing)]


def convention_code(convention: str) -> int:
    """The kernels' code of `convention` (its index in CONVENTIONS)."""
    check_convention(convention)
    return CONVENTIONS.index(convention)


def is_two_sided(convention: str) -> bool:
    return convention in TWO_SIDED


def check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"gpudist: unknown convention '{convention}'")


def check_arguments(src: torch.Tensor, num_classes: int, spacing: Sequence[float],
                    convention: str, black_border: bool, dtype: torch.dtype,
                    max_distance: float | None = None) -> list[tuple[float, ...]]:
    """The op's argument checks (csrc make_plan), with its messages: ValueError when one fails.
    Returns the spacing's rows (`rows_of_spacing`)."""
    rows = _spacing_rows_and_dtype(src, "src", spacing, dtype)
    if num_classes < 0:
        raise ValueError("gpudist: num_classes must be >= 0")
    if num_classes == 0 and src.dtype != torch.bool:
        raise ValueError(f"gpudist: a mask src must be bool, got {src.dtype}")
    if num_classes > 0 and src.dtype not in _LABEL_DTYPES:
        raise ValueError(f"gpudist: labels must be uint8, int32 or int64, got {src.dtype}")
    for r, row in enumerate(rows):
        check_spacing(row, dtype, f", in row {r}" if len(rows) > 1 else "")
    check_convention(convention)
    two_sided = is_two_sided(convention)
    if black_border and two_sided:
        raise ValueError(f"gpudist: black_border applies to the edt conventions only, not "
                         f"'{convention}'")
    if max_distance is not None:
        if not max_distance >= 0:  # NaN too
            raise ValueError("gpudist: max_distance must be >= 0")
        if two_sided:
            raise ValueError("gpudist: max_distance applies to the edt conventions only")
    return rows


def _spacing_rows_and_dtype(src: torch.Tensor, name: str, spacing: Sequence[float],
                            dtype: torch.dtype) -> list[tuple[float, ...]]:
    """The checks every op makes first (make_plan, variant_args.h), in their order: a spacing,
    src (named `name`) of one more dim than a row of it, a float dtype. Returns the rows."""
    if len(spacing) < 1:
        raise ValueError("gpudist: spacing must have one value per spatial axis (>= 1)")
    rows = rows_of_spacing(src, spacing)
    nd = len(rows[0])
    if src.dim() != nd + 1:
        raise ValueError(f"gpudist: {name} must be (batch, *spatial) with {nd} spatial dims, "
                         f"got {src.dim()} dims (or one row of spacing per batch item: "
                         f"B * ndim values)")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError("gpudist: dtype must be float32 or float64")
    return rows


def _check_variant(src: torch.Tensor, name: str, spacing: Sequence[float],
                   dtype: torch.dtype) -> list[tuple[float, ...]]:
    """The checks every variant op makes first (csrc variant_args.h), in its order; returns the
    spacing's rows (`rows_of_spacing`)."""
    rows = _spacing_rows_and_dtype(src, name, spacing, dtype)
    for r, row in enumerate(rows):
        if not all(math.isfinite(s) and s > 0 for s in row):
            where = f", in row {r}" if len(rows) > 1 else ""
            raise ValueError(f"gpudist: spacing must be positive and finite{where}")
    return rows


def check_multilabel_arguments(labels: torch.Tensor, spacing: Sequence[float],
                               dtype: torch.dtype) -> list[tuple[float, ...]]:
    """The op gpudist::multilabel_edt's checks, with its messages: ValueError when one fails.
    Returns the spacing's rows."""
    rows = _check_variant(labels, "labels", spacing, dtype)
    if labels.dtype not in (torch.bool,) + _LABEL_DTYPES:
        raise ValueError("gpudist: labels must be bool, uint8, int32 or int64")
    return rows


def check_metric_arguments(src: torch.Tensor, spacing: Sequence[float], metric: str,
                           dtype: torch.dtype) -> list[tuple[float, ...]]:
    """The op gpudist::metric_transform's checks, with its messages: ValueError when one fails.
    Returns the spacing's rows."""
    rows = _check_variant(src, "src", spacing, dtype)
    if src.dtype != torch.bool:
        raise ValueError("gpudist: a mask src must be bool")
    if metric not in METRICS[1:]:
        raise ValueError(f"gpudist: metric must be 'taxicab' or 'chessboard', got '{metric}'")
    return rows


def check_feature_arguments(src: torch.Tensor, spacing: Sequence[float],
                            dtype: torch.dtype) -> list[tuple[float, ...]]:
    """The op gpudist::feature_transform's checks, with its messages (ValueError). Returns the
    spacing's rows."""
    return check_metric_arguments(src, spacing, "taxicab", dtype)  # the same, bar the metric


def out_sizes(src: torch.Tensor, num_classes: int) -> list[int]:
    """The output shape: src's, with num_classes inserted at dim 1 for label maps."""
    sizes = list(src.shape)
    if num_classes > 0:
        sizes.insert(1, num_classes)
    return sizes


def fake_transform(src: torch.Tensor, num_classes: int, spacing: list[float], convention: str,
                   black_border: bool, dtype: torch.dtype,
                   max_distance: float | None = None) -> torch.Tensor:
    """The fake kernel of the Python backends' ops (shapes for torch.compile)."""
    torch._check(src.dim() == len(rows_of_spacing(src, spacing)[0]) + 1,
                 lambda: "src must be (batch, *spatial)")
    return src.new_empty(out_sizes(src, num_classes), dtype=dtype)


def fake_multilabel(labels: torch.Tensor, spacing: Sequence[float], black_border: bool,
                    squared: bool, dtype: torch.dtype) -> torch.Tensor:
    """The fake kernel of the multilabel_edt ops (shapes for torch.compile)."""
    return labels.new_empty(labels.shape, dtype=dtype)


def fake_metric(src: torch.Tensor, spacing: Sequence[float], metric: str, black_border: bool,
                dtype: torch.dtype) -> torch.Tensor:
    """The fake kernel of the metric_transform ops."""
    return src.new_empty(src.shape, dtype=dtype)


def fake_features(src: torch.Tensor, spacing: Sequence[float],
                  dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The fake kernel of the feature_transform ops."""
    return src.new_empty(src.shape, dtype=dtype), src.new_empty(src.shape, dtype=torch.int64)
