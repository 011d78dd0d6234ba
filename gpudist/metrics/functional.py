"""Surface distance metrics of batched segmentations: Hausdorff (HD, HD95), ASSD, surface Dice,
DeepMind's surface overlap and the raw surface distances.

Inputs (`input_format`, as torchmetrics): binary masks (B, C, *spatial) ("one-hot", default),
integer labels (B, *spatial) with `num_classes` ("index"), or one of each ("mixed"); a pred of
probabilities or scores is binarised by `threshold` (a number: pred >= threshold, as MONAI's
AsDiscrete; "argmax": the one-hot of the argmax over classes, as torchmetrics). Masks are torch
tensors (CPU or CUDA) or numpy arrays of bool, integer or floating point values 0/1. Outputs are
(B, C') on the input's device, float32 (float64 with `dtype=torch.float64`), in the physical units
of `spacing`; numpy in, numpy out. C' = C, or C - 1 with `include_background=False` (the default,
as MONAI's and torchmetrics'), which drops class 0 unless it is the only class. Every class of a
one-hot input is one binary mask: its classes may overlap. `distance_metric` takes MONAI's and
torchmetrics' names: "euclidean", "chessboard" or "taxicab" (`edt`'s metric transforms, with
the spacing, which MONAI ignores for these two; the last two run on the CPU backends only).

Conventions:

- Surfaces (`surface=`):
  - "voxel" (MONAI's default, medpy, torchmetrics): border voxels `mask XOR erode(mask)`, face
    connectivity by default (`connectivity=ndim` for the full 3^ndim neighbourhood), voxels on
    the image edge counting as border; each border voxel weighs 1.
  - "surfel" (DeepMind `surface-distance`, MONAI `SurfaceDiceMetric(use_subvoxels=True)`):
    surface elements on the voxel-corner grid, weighted by their contour length (2-D) or area
    (3-D), with DeepMind's neighbour-code tables. 2-D and 3-D only.
- Distances: d_{A->B} = EDT(~border_B)[border_A], exact, from one batched call per direction
  (`distance_at` on the CPU, `gpudist.edt` elsewhere) over every (b, c), a spacing per batch
  item included, each item cropped to a window around its foreground first.
- HD = max(max d_{P->T}, max d_{T->P}); `directed=True` uses d_{P->T} only (pred -> target).
- Percentile HD (HDp, e.g. HD95), `percentile_mode`:
  - "per_direction" (default; MONAI, DeepMind): max(Q_p(d_{P->T}), Q_p(d_{T->P})).
  - "pooled" (medpy `hd95`): Q_p of both distance sets pooled. It can hide a far outlier that
    makes up a small part of the pooled set.
  Q_p follows the surface model: "voxel" takes the unweighted percentile with linear
  interpolation (torch.quantile, MONAI, numpy); "surfel" the length/area-weighted percentile
  without interpolation, the first sorted distance whose cumulative weight fraction reaches p/100
  (DeepMind `compute_robust_hausdorff`).
- ASSD = (sum w d_{P->T} + sum w d_{T->P}) / (sum w_P + sum w_T), the pooled mean (MONAI
  `symmetric=True`, medpy 0.5.2 `assd`); ASD (`symmetric=False`) is the mean of d_{P->T}
  (MONAI's directed default). w = 1 per voxel, or the surfel size.
- Surface Dice (NSD) at tolerance tau: (sum_{d_{P->T} <= tau} w + sum_{d_{T->P} <= tau} w) /
  (sum w_P + sum w_T): counts of border voxels (MONAI default) or surfel sizes (DeepMind
  `compute_surface_dice_at_tolerance`).

Empty masks (one policy for every metric, applied per (b, c)):

============================  ==========================  ==================
case                          HD, HDp, ASD, ASSD          surface Dice
============================  ==========================  ==================
both pred and target empty    NaN (undefined)             NaN (undefined)
exactly one empty             `empty_distance` (+inf)     0
============================  ==========================  ==================

`empty_distance` is "inf" (default), "diagonal" (the image diagonal sqrt(sum (n_i s_i)^2), a
finite worst case that bounds every distance between surface elements), or a number. A NaN is
only ever the "both empty" marker, never the result of inf arithmetic. `summarize` (and
`SurfaceMetrics.summarize`) averages while reporting how many entries were both-empty (left out)
or one-empty (kept), instead of dropping them silently.

The surface overlap at tolerance tau (DeepMind `compute_surface_overlap_at_tolerance`) is the
pair of directed fractions (sum_{d_{T->P} <= tau} w / sum w_T, sum_{d_{P->T} <= tau} w / sum w_P)
and follows the surface Dice's policy: NaN when both masks are empty, 0 when exactly one is.

Averages over items: `reduce_metric` (and the classes' `reduction`) are MONAI's reductions
(`do_metric_reduction`), which leave the NaN entries out; `summarize` reports the empty counts.

Where the peers differ (the reference tests compare everything else): DeepMind gives HD = inf
and ASD = NaN for the side with no surface, and an overlap of NaN for it, where gpudist gives NaN
(both empty) and `empty_distance` (overlap 0); MONAI's percentile HD is NaN when one mask is
empty (MONAI #9095), gpudist's is `empty_distance`, so MONAI's means drop such an item where
gpudist's are +inf; medpy raises on empty masks; MONAI treats percentile=0 as the maximum,
gpudist as the 0th percentile (the minimum).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from ..validation import choice, is_per_item, output_dtype, spacing_tuple, to_torch
from . import distances
from .distances import Directed
from .inputs import Array, binary_pair, check_input_options
from .surfaces import diagonal

SURFACES = ("voxel", "surfel")
PERCENTILE_MODES = ("per_direction", "pooled")
METRIC_NAMES = ("hd", "hd<p> (e.g. hd95)", "asd", "assd", "nsd", "overlap_target",
                "overlap_pred")
_AT_TOLERANCE = ("nsd", "overlap_target", "overlap_pred")

Spacing = (float | Sequence[float] | Sequence[Sequence[float]] | torch.Tensor | np.ndarray
           | None)


class _Spec(NamedTuple):
    kind: str  # "hd", "asd", "assd", "nsd", "overlap_target" or "overlap_pred"
    percentile: float | None = None
    directed: bool = False


@dataclass(frozen=True)
class _Inputs:
    """How the inputs are read (see `inputs.binary_pair`), checked at construction."""

    include_background: bool = False
    input_format: str = "one-hot"
    num_classes: int | None = None
    threshold: float | str | None = None
    distance_metric: str = "euclidean"

    def __post_init__(self) -> None:
        check_input_options(self.input_format, self.num_classes, self.threshold,
                            self.include_background, self.distance_metric)

    def masks(self, pred: Array, target: Array
              ) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], Array]]:
        return binary_pair(pred, target, include_background=self.include_background,
                           input_format=self.input_format, num_classes=self.num_classes,
                           threshold=self.threshold)


@dataclass(frozen=True)
class Summary:
    """Average of a (B, C) metric over a dim, with the empty-mask cases counted.

    mean: the mean over `dim` of the entries whose masks are not both empty (NaN where none is
        left); entries with exactly one empty mask are included (so +inf propagates).
    n_valid: number of entries averaged.
    n_both_empty: number of entries left out because pred and target were both empty.
    n_one_empty: number of entries averaged in although exactly one mask was empty.
    """

    mean: Array
    n_valid: Array
    n_both_empty: Array
    n_one_empty: Array


def summarize(values: Array, pred_empty: Array, target_empty: Array, *,
              dim: int | None = 0) -> Summary:
    """Mean of a metric over `dim` (None: every entry) that counts, not hides, empty masks.

    Args:
        values: (B, C) metric values (tensor or numpy array: the results have its type).
        pred_empty, target_empty: (B, C) bool, which masks were empty (from `SurfaceMetrics`).
        dim: the dim to average over: 0 gives per-class results (C,), None a scalar.
    """
    values, back = to_torch(values, "values")
    pred_empty, _ = to_torch(pred_empty, "pred_empty")
    target_empty, _ = to_torch(target_empty, "target_empty")
    if values.shape != pred_empty.shape or values.shape != target_empty.shape:
        raise ValueError(f"values, pred_empty and target_empty must have the same shape, got "
                         f"{tuple(values.shape)}, {tuple(pred_empty.shape)} and "
                         f"{tuple(target_empty.shape)}")
    both = pred_empty & target_empty
    one = pred_empty ^ target_empty
    keep = ~both
    dims = tuple(range(values.dim())) if dim is None else (dim,)
    n_valid = keep.sum(dims)
    total = torch.where(keep, values, 0.0).sum(dims)
    mean = torch.where(n_valid > 0, total / n_valid.clamp(min=1), math.nan)
    return Summary(back(mean), back(n_valid), back(both.sum(dims)), back(one.sum(dims)))


@dataclass(frozen=True, eq=False)
class SurfaceMetrics(Mapping[str, Array]):
    """Several metrics from one distance computation: a mapping name -> (B, C) tensor (numpy
    array for numpy input).

    results: the mapping itself (name -> (B, C) values).
    pred_empty, target_empty: (B, C) bool, which masks had no foreground.
    """

    results: dict[str, Array]
    pred_empty: Array
    target_empty: Array

    def __getitem__(self, name: str) -> Array:
        return self.results[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def summarize(self, name: str, *, dim: int | None = 0) -> Summary:
        """`summarize` of one metric with this result's empty masks."""
        return summarize(self.results[name], self.pred_empty, self.target_empty, dim=dim)


# ---------------------------------------------------------------------------------------------
# Argument checks


def _spacing_rows(spacing: Spacing, batch: int, classes: int, ndim: int,
                  device: torch.device) -> torch.Tensor:
    """(B * C, ndim) float64 spacing, one row per (b, c), from any accepted `spacing` form."""
    if is_per_item(spacing):
        rows = spacing.tolist() if isinstance(spacing, (torch.Tensor, np.ndarray)) else spacing
        if len(rows) != batch:
            raise ValueError(f"spacing per batch item must have B = {batch} rows, got "
                             f"{len(rows)}")
        values = [spacing_tuple(r, ndim) for r in rows]
    else:
        values = [spacing_tuple(spacing, ndim)] * batch
    table = torch.tensor(values, dtype=torch.float64, device=device).reshape(batch, ndim)
    return table.repeat_interleave(classes, 0)


def check_percentile(p: Any, name: str = "percentile") -> float:
    """p as a float in [0, 100], else TypeError / ValueError naming `name`."""
    if not isinstance(p, numbers.Real) or isinstance(p, bool):
        raise TypeError(f"{name} must be a number between 0 and 100, got {type(p).__name__}")
    if not 0 <= p <= 100:
        raise ValueError(f"{name} must be between 0 and 100, got {p}")
    return float(p)


def tolerance_values(tolerance: Any) -> list[float]:
    """`tolerance` as a list of floats (one, or one per class), each finite and >= 0."""
    if tolerance is None:
        raise ValueError("tolerance is required for the surface Dice ('nsd') and the overlaps")
    if isinstance(tolerance, (torch.Tensor, np.ndarray)):
        tolerance = tolerance.tolist()
    values = ([tolerance] if isinstance(tolerance, numbers.Real)
              else list(tolerance) if isinstance(tolerance, Sequence) else None)
    if not values or any(not isinstance(v, numbers.Real) or isinstance(v, bool) for v in values):
        raise TypeError(f"tolerance must be a number or a sequence of one number per class, "
                        f"got {tolerance!r}")
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError(f"tolerance values must be finite and >= 0, got {values}")
    return [float(v) for v in values]


def _tolerance_rows(tolerance: Any, batch: int, classes: int,
                    device: torch.device) -> torch.Tensor:
    """(B * C,) float64 tolerance: one number for every class, or one per class kept."""
    values = tolerance_values(tolerance)
    if len(values) not in (1, classes):
        raise ValueError(f"tolerance must be one number or one per class kept ({classes}; "
                         f"include_background=False leaves class 0 out), got {len(values)}")
    row = torch.tensor(values, dtype=torch.float64, device=device).expand(classes)
    return row.repeat(batch)


def _empty_value(empty_distance: Any, image_diagonal: torch.Tensor) -> torch.Tensor:
    """(N,) float64 value of a distance metric when exactly one mask is empty."""
    if empty_distance == "inf":
        return torch.full_like(image_diagonal, math.inf)
    if empty_distance == "diagonal":
        return image_diagonal
    if (isinstance(empty_distance, numbers.Real) and not isinstance(empty_distance, bool)
            and empty_distance >= 0):
        return torch.full_like(image_diagonal, float(empty_distance))
    raise ValueError(f"empty_distance must be 'inf', 'diagonal' or a number >= 0, got "
                     f"{empty_distance!r}")


_HD_PERCENTILE = re.compile(r"hd(\d[\d.eE+-]*)")


def hd_name(percentile: float | None) -> str:
    """The metric name of the HD ("hd") or of its percentile version ("hd95", "hd99.5")."""
    if percentile is None:
        return "hd"
    p = check_percentile(percentile)
    return f"hd{int(p)}" if p == int(p) else f"hd{p!r}"


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_metrics(metrics: Sequence[str], directed: bool) -> dict[str, _Spec]:
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics:
        raise TypeError(f"metrics must be a non-empty sequence of names among "
                        f"{', '.join(METRIC_NAMES)}, got {metrics!r}")
    specs = {}
    for name in metrics:
        match = _HD_PERCENTILE.fullmatch(name) if isinstance(name, str) else None
        if name == "hd":
            specs[name] = _Spec("hd", None, directed)
        elif match and _is_float(match.group(1)):
            specs[name] = _Spec("hd", check_percentile(float(match.group(1)), f"metric {name!r}"),
                                directed)
        elif name in ("asd", "overlap_pred"):  # from pred's surface only
            specs[name] = _Spec(name, None, True)
        elif name in ("assd", "nsd", "overlap_target"):
            specs[name] = _Spec(name)
        else:
            raise ValueError(f"unknown metric {name!r}; choose among {', '.join(METRIC_NAMES)}")
    return specs


def _check_connectivity(connectivity: Any, surface: str, ndim: int) -> None:
    if surface == "surfel" and ndim not in (2, 3):
        raise ValueError(f"surface='surfel' needs 2-D or 3-D masks, got {ndim} spatial dims")
    if (not isinstance(connectivity, numbers.Integral) or isinstance(connectivity, bool)
            or not 1 <= connectivity <= ndim):
        raise ValueError(f"connectivity must be an int between 1 and {ndim}, got "
                         f"{connectivity!r}")


# ---------------------------------------------------------------------------------------------
# Computation


@dataclass(frozen=True)
class _Pair:
    """A checked (pred, target) pair as N = B * C rows of bool masks, with their spacing rows."""

    pred: torch.Tensor  # (N, *spatial)
    target: torch.Tensor
    spacing: torch.Tensor  # (N, ndim) float64
    batch: int
    classes: int
    back: Callable[[torch.Tensor], Array]


def _pair(pred: Array, target: Array, inputs: _Inputs, spacing: Spacing, surface: str,
          connectivity: int) -> _Pair:
    p, t, back = inputs.masks(pred, target)
    choice(surface, "surface", SURFACES)
    batch, classes = p.shape[:2]
    spatial = tuple(p.shape[2:])
    _check_connectivity(connectivity, surface, len(spatial))
    rows = _spacing_rows(spacing, batch, classes, len(spatial), p.device)
    n = batch * classes
    return _Pair(p.reshape((n,) + spatial), t.reshape((n,) + spatial), rows, batch, classes,
                 back)


def _compute(pred: Array, target: Array, specs: dict[str, _Spec], inputs: _Inputs, *,
             tolerance: Any, spacing: Spacing, surface: str, connectivity: int,
             percentile_mode: str, empty_distance: Any, dtype: Any) -> SurfaceMetrics:
    """The metrics of `specs` (name -> spec) for every (b, c): checks, distances, reductions."""
    pair = _pair(pred, target, inputs, spacing, surface, connectivity)
    choice(percentile_mode, "percentile_mode", PERCENTILE_MODES)
    out_dtype = output_dtype(dtype, torch.empty(0))
    worst = _empty_value(empty_distance, diagonal(tuple(pair.pred.shape[1:]), pair.spacing))
    at_tolerance = any(s.kind in _AT_TOLERANCE for s in specs.values())
    tolerances = (_tolerance_rows(tolerance, pair.batch, pair.classes, pair.pred.device)
                  if at_tolerance else None)
    # The tolerance metrics compare distances with the tolerance: in float32 a distance equal to
    # it (0.1 voxel steps of spacing 0.1) could round above it, so they take float64 distances.
    dist = distances.pair_distances(pair.pred, pair.target, pair.spacing, surface=surface,
                                    connectivity=int(connectivity),
                                    symmetric=not all(s.directed for s in specs.values()),
                                    dtype=torch.float64 if at_tolerance else out_dtype,
                                    metric=inputs.distance_metric)
    pairs = _Pairs(dist.pred_to_target, dist.target_to_pred, surface, percentile_mode,
                   tolerances)
    both_empty = dist.pred_empty & dist.target_empty
    one_empty = dist.pred_empty ^ dist.target_empty
    shape = (pair.batch, pair.classes)
    values = {}
    for name, spec in specs.items():
        v = _REDUCERS[spec.kind](pairs, spec)
        fill = torch.zeros_like(worst) if spec.kind in _AT_TOLERANCE else worst
        v = torch.where(both_empty, math.nan, torch.where(one_empty, fill, v))
        values[name] = pair.back(v.to(out_dtype).reshape(shape))
    return SurfaceMetrics(values, pair.back(dist.pred_empty.reshape(shape)),
                          pair.back(dist.target_empty.reshape(shape)))


@dataclass
class _Pairs:
    """The distances of every (b, c) row in both directions, with what the reductions need; the
    surfel percentiles' sorted rows are computed once and shared."""

    pt: Directed  # pred -> target
    tp: Directed | None  # target -> pred (None: directed metrics only)
    surface: str
    percentile_mode: str
    tolerance: torch.Tensor | None  # (N,) float64, for the metrics at a tolerance
    _sorted: dict[str, Directed] = field(default_factory=dict)

    def quantile(self, key: str, q: float) -> torch.Tensor:
        """The q-quantile of the rows of "pt", "tp" or "pooled" (both), per the surface model
        (the weighted one of "surfel" sorts the rows, once per key)."""
        def source() -> Directed:
            return self.pt.cat(self.tp) if key == "pooled" else getattr(self, key)

        if self.surface != "surfel":
            return source().quantile_linear(q)
        if key not in self._sorted:
            self._sorted[key] = source().sorted()
        return self._sorted[key].quantile_weighted(q)


def _hd(d: _Pairs, spec: _Spec) -> torch.Tensor:
    if spec.percentile is None:
        return d.pt.max() if spec.directed else torch.maximum(d.pt.max(), d.tp.max())
    q = spec.percentile / 100
    if spec.directed:
        return d.quantile("pt", q)
    if d.percentile_mode == "pooled":
        return d.quantile("pooled", q)
    return torch.maximum(d.quantile("pt", q), d.quantile("tp", q))


def _asd(d: _Pairs, spec: _Spec) -> torch.Tensor:
    return d.pt.weighted_sum() / d.pt.total_weight()


def _assd(d: _Pairs, spec: _Spec) -> torch.Tensor:
    return ((d.pt.weighted_sum() + d.tp.weighted_sum())
            / (d.pt.total_weight() + d.tp.total_weight()))


def _nsd(d: _Pairs, spec: _Spec) -> torch.Tensor:
    return ((d.pt.weight_within(d.tolerance) + d.tp.weight_within(d.tolerance))
            / (d.pt.total_weight() + d.tp.total_weight()))


def _overlap_target(d: _Pairs, spec: _Spec) -> torch.Tensor:
    return d.tp.weight_within(d.tolerance) / d.tp.total_weight()


def _overlap_pred(d: _Pairs, spec: _Spec) -> torch.Tensor:
    return d.pt.weight_within(d.tolerance) / d.pt.total_weight()


# Each metric kind's value per row, before the empty-mask policy is applied.
_REDUCERS: dict[str, Callable[[_Pairs, _Spec], torch.Tensor]] = {
    "hd": _hd, "asd": _asd, "assd": _assd, "nsd": _nsd, "overlap_target": _overlap_target,
    "overlap_pred": _overlap_pred,
}


# ---------------------------------------------------------------------------------------------
# The public functions. Arguments shared by all of them:
#
#   include_background: keep class 0 (default False, as MONAI and torchmetrics; a single class is
#       always kept). input_format, num_classes, threshold: how pred and target are read (the
#       module docstring). distance_metric: "euclidean" (MONAI's / torchmetrics' name).
#   spacing: voxel size: a number, one per spatial axis, or one row per batch item ((B, ndim)
#       tensor/array or a sequence of B sequences). Default 1.
#   surface: "voxel" (border voxels) or "surfel" (DeepMind's weighted surface elements).
#   connectivity: for "voxel", the erosion's neighbourhood: 1 (faces) to ndim (full).
#   dtype: float32 (default) or float64, the precision of the distances and outputs.


def surface_metrics(pred: Array, target: Array,
                    metrics: Sequence[str] = ("hd", "hd95", "assd", "nsd"), *,
                    include_background: bool = False,
                    tolerance: float | Sequence[float] | None = None, spacing: Spacing = None,
                    surface: str = "voxel", connectivity: int = 1,
                    directed: bool = False, percentile_mode: str = "per_direction",
                    empty_distance: str | float = "inf", distance_metric: str = "euclidean",
                    input_format: str = "one-hot", num_classes: int | None = None,
                    threshold: float | str | None = None, dtype: Any = None) -> SurfaceMetrics:
    """Several surface metrics from one distance computation.

    Args:
        pred, target: (B, C, *spatial) binary masks (bool, or integer/float 0/1), same shape and
            device; or labels / probabilities, see `input_format` and `threshold`.
        metrics: names among "hd" (Hausdorff), "hd<p>" (percentile Hausdorff, e.g. "hd95",
            "hd99.5"), "asd" (mean distance pred -> target), "assd" (pooled symmetric mean),
            "nsd" (surface Dice at `tolerance`), "overlap_target" and "overlap_pred" (DeepMind's
            directed surface overlaps at `tolerance`).
        tolerance: for "nsd" and the overlaps: one number, or one per class kept, >= 0, in the
            units of `spacing`.
        directed: "hd" and "hd<p>" from pred to target only.
        percentile_mode: "per_direction" or "pooled" (see the module docstring).
        empty_distance: the distance metrics' value when exactly one mask is empty: "inf",
            "diagonal" or a number.
        Others: see the comment above the public functions (include_background, spacing, ...).

    Returns:
        `SurfaceMetrics`: name -> (B, C') values, plus which masks were empty.
    """
    return _compute(pred, target, _parse_metrics(metrics, bool(directed)),
                    _Inputs(include_background, input_format, num_classes, threshold,
                            distance_metric),
                    tolerance=tolerance, spacing=spacing, surface=surface,
                    connectivity=connectivity, percentile_mode=percentile_mode,
                    empty_distance=empty_distance, dtype=dtype)


def hausdorff_distance(pred: Array, target: Array, *, include_background: bool = False,
                       distance_metric: str = "euclidean", percentile: float | None = None,
                       directed: bool = False, spacing: Spacing = None, surface: str = "voxel",
                       connectivity: int = 1, percentile_mode: str = "per_direction",
                       empty_distance: str | float = "inf", input_format: str = "one-hot",
                       num_classes: int | None = None, threshold: float | str | None = None,
                       dtype: Any = None) -> Array:
    """Hausdorff distance, or its `percentile` (0-100) version such as HD95, per (b, c).

    Equal to MONAI `compute_hausdorff_distance` / `HausdorffDistanceMetric` with surface="voxel",
    torchmetrics `hausdorff_distance` (no percentile there), DeepMind `compute_robust_hausdorff`
    with surface="surfel" (percentile=100 for the plain HD), and medpy `hd` / `hd95` with
    percentile_mode="pooled", except for the empty-mask policy of the module docstring.
    Arguments as `surface_metrics` (MONAI's names: include_background, distance_metric,
    percentile, directed, spacing).

    Returns:
        (B, C') float32 (or `dtype`) values on the input's device (numpy for numpy input).
    """
    p = None if percentile is None else check_percentile(percentile)
    spec = _Spec("hd", p, bool(directed))
    return _compute(pred, target, {"hd": spec},
                    _Inputs(include_background, input_format, num_classes, threshold,
                            distance_metric),
                    tolerance=None, spacing=spacing, surface=surface,
                    connectivity=connectivity, percentile_mode=percentile_mode,
                    empty_distance=empty_distance, dtype=dtype)["hd"]


def average_surface_distance(pred: Array, target: Array, *, include_background: bool = False,
                             symmetric: bool = True, distance_metric: str = "euclidean",
                             spacing: Spacing = None, surface: str = "voxel",
                             connectivity: int = 1, empty_distance: str | float = "inf",
                             input_format: str = "one-hot", num_classes: int | None = None,
                             threshold: float | str | None = None, dtype: Any = None) -> Array:
    """Average symmetric surface distance (ASSD, pooled mean), or with symmetric=False the mean
    distance from pred's surface to target's, per (b, c).

    Equal to MONAI `compute_average_surface_distance(symmetric=...)` / `SurfaceDistanceMetric`
    and medpy `assd` / `asd(pred, target)` with surface="voxel"; with surface="surfel", the
    area-weighted means of DeepMind's `compute_average_surface_distance` (whose second value is
    the pred -> target mean). gpudist's default is symmetric=True (the ASSD), MONAI's False: pass
    it explicitly when porting. Arguments as `surface_metrics`.

    Returns:
        (B, C') float32 (or `dtype`) values on the input's device (numpy for numpy input).
    """
    name = "assd" if symmetric else "asd"
    return _compute(pred, target, _parse_metrics((name,), False),
                    _Inputs(include_background, input_format, num_classes, threshold,
                            distance_metric),
                    tolerance=None, spacing=spacing, surface=surface,
                    connectivity=connectivity, percentile_mode="per_direction",
                    empty_distance=empty_distance, dtype=dtype)[name]


def surface_dice(pred: Array, target: Array, tolerance: float | Sequence[float] | None = None,
                 *, include_background: bool = False,
                 class_thresholds: Sequence[float] | None = None,
                 distance_metric: str = "euclidean", spacing: Spacing = None,
                 surface: str = "voxel", connectivity: int = 1, input_format: str = "one-hot",
                 num_classes: int | None = None, threshold: float | str | None = None,
                 dtype: Any = None) -> Array:
    """Surface Dice (normalized surface distance, NSD) at `tolerance`, per (b, c).

    Equal to MONAI `compute_surface_dice` / `SurfaceDiceMetric(class_thresholds)` with
    surface="voxel" (and surface="surfel" to its use_subvoxels=True) and DeepMind
    `compute_surface_dice_at_tolerance` with surface="surfel". `tolerance` (or MONAI's name
    `class_thresholds`): one number or one per class kept, >= 0, in the units of `spacing`. 0 when
    exactly one mask is empty, NaN when both are. Other arguments as `surface_metrics`.

    Returns:
        (B, C') float32 (or `dtype`) values in [0, 1] on the input's device (numpy for numpy
        input).
    """
    tolerance = one_tolerance(tolerance, class_thresholds)
    return _compute(pred, target, {"nsd": _Spec("nsd")},
                    _Inputs(include_background, input_format, num_classes, threshold,
                            distance_metric),
                    tolerance=tolerance, spacing=spacing, surface=surface,
                    connectivity=connectivity, percentile_mode="per_direction",
                    empty_distance="inf", dtype=dtype)["nsd"]


def one_tolerance(tolerance: Any, class_thresholds: Any) -> Any:
    """`tolerance`, or MONAI's `class_thresholds` under its name; not both."""
    if tolerance is not None and class_thresholds is not None:
        raise ValueError("pass tolerance or class_thresholds (MONAI's name for it), not both")
    return tolerance if class_thresholds is None else class_thresholds


class SurfaceOverlap(NamedTuple):
    """DeepMind's `compute_surface_overlap_at_tolerance` pair, each (B, C'):

    target: the fraction of target's surface (area-weighted) within the tolerance of pred's.
    pred: the fraction of pred's surface within the tolerance of target's.
    """

    target: Array
    pred: Array


def surface_overlap(pred: Array, target: Array, tolerance: float | Sequence[float], *,
                    include_background: bool = False, spacing: Spacing = None,
                    surface: str = "voxel", connectivity: int = 1,
                    input_format: str = "one-hot", num_classes: int | None = None,
                    threshold: float | str | None = None, dtype: Any = None) -> SurfaceOverlap:
    """The directed surface overlaps at `tolerance` (one number or one per class kept), per (b, c).

    With surface="surfel", equal to DeepMind `compute_surface_overlap_at_tolerance`, whose
    (gt, pred) pair is (`.target`, `.pred`), except for empty masks: NaN when both are empty and 0
    when exactly one is, where DeepMind gives NaN for the side with no surface. Arguments as
    `surface_metrics`.
    """
    out = _compute(pred, target, _parse_metrics(("overlap_target", "overlap_pred"), False),
                   _Inputs(include_background, input_format, num_classes, threshold),
                   tolerance=tolerance, spacing=spacing, surface=surface,
                   connectivity=connectivity, percentile_mode="per_direction",
                   empty_distance="inf", dtype=dtype)
    return SurfaceOverlap(out["overlap_target"], out["overlap_pred"])


@dataclass(frozen=True)
class SurfaceDistances:
    """The raw distances between the surfaces of every (b, c) pair, with the elements' sizes:
    DeepMind's `compute_surface_distances` for a batch.

    pred_to_target: (B, C', K) distances from each of pred's surface elements to target's
        surface, ascending per (b, c) (ties by size, as DeepMind sorts), +inf beyond
        `pred_count[b, c]` and for every element when target has no surface.
    pred_areas: (B, C', K) the elements' sizes: DeepMind's surfel areas (3-D) or contour lengths
        (2-D) for surface="surfel", 1 per border voxel for "voxel"; 0 beyond the count.
    pred_count: (B, C') int64, the number of pred's surface elements.
    target_to_pred, target_areas, target_count: the same from target's surface.
    """

    pred_to_target: Array
    pred_areas: Array
    pred_count: Array
    target_to_pred: Array
    target_areas: Array
    target_count: Array

    def item(self, b: int, c: int) -> dict[str, Array]:
        """The (b, c) pair as DeepMind's dict: "distances_gt_to_pred", "distances_pred_to_gt",
        "surfel_areas_gt", "surfel_areas_pred" (each of the pair's length)."""
        n_p, n_t = int(self.pred_count[b, c]), int(self.target_count[b, c])
        return {"distances_gt_to_pred": self.target_to_pred[b, c, :n_t],
                "distances_pred_to_gt": self.pred_to_target[b, c, :n_p],
                "surfel_areas_gt": self.target_areas[b, c, :n_t],
                "surfel_areas_pred": self.pred_areas[b, c, :n_p]}


def surface_distances(pred: Array, target: Array, *, include_background: bool = False,
                      spacing: Spacing = None, surface: str = "voxel", connectivity: int = 1,
                      input_format: str = "one-hot", num_classes: int | None = None,
                      threshold: float | str | None = None,
                      distance_metric: str = "euclidean",
                      dtype: Any = None) -> SurfaceDistances:
    """Every surface element's distance to the other surface, and its size, per (b, c).

    With surface="surfel" and dtype=torch.float64, `.item(b, c)` equals DeepMind's
    `compute_surface_distances(target[b, c], pred[b, c], spacing)`; every metric of this module
    is a reduction of these. Arguments as `surface_metrics` (distance_metric: "euclidean",
    "taxicab" or "chessboard", MONAI's, with the spacing).
    """
    pair = _pair(pred, target, _Inputs(include_background, input_format, num_classes,
                                       threshold, distance_metric), spacing, surface,
                 connectivity)
    out_dtype = output_dtype(dtype, torch.empty(0))
    dist = distances.pair_distances(pair.pred, pair.target, pair.spacing, surface=surface,
                                    connectivity=int(connectivity), symmetric=True,
                                    dtype=out_dtype, metric=distance_metric)
    fields = []
    for rows in (dist.pred_to_target, dist.target_to_pred):
        rows = rows.sorted_by_size_then_distance()
        shape = (pair.batch, pair.classes, rows.dist.shape[1])
        fields += [pair.back(rows.dist.to(out_dtype).reshape(shape)),
                   pair.back(rows.weight.to(out_dtype).reshape(shape)),
                   pair.back(rows.count.reshape(shape[:2]))]
    return SurfaceDistances(*fields)
