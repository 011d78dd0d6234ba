"""Accumulating metric classes for the surface metrics, torchmetrics-style.

Each class subclasses `torchmetrics.Metric` when torchmetrics is installed, so its states are
gathered across processes under DDP (`torch.distributed`) like any torchmetrics metric; without
torchmetrics it is a plain accumulator with the same `update` / `compute` / `summary` / `reset`,
which gathers with `torch.distributed.all_gather_object` when a process group is initialized.

State: every update appends its (B, C) values and a (B, C) code of which masks were empty, so
`compute` / `aggregate` (MONAI's reductions, `gpudist.metrics.reduce_metric`) and `summary` (the
mean with the empty counts, `gpudist.metrics.summarize`) see every item of every process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ..validation import choice
from .functional import (
    PERCENTILE_MODES,
    Spacing,
    Summary,
    SurfaceMetrics,
    check_percentile,
    hd_name,
    one_tolerance,
    summarize,
    surface_metrics,
    tolerance_values,
)
from .inputs import check_input_options
from .reduction import REDUCTIONS, reduce_metric


class _PlainMetric:
    """The part of `torchmetrics.Metric` the surface metrics use: list states, reset, gather."""

    def __init__(self) -> None:
        self._state_names: list[str] = []

    def add_state(self, name: str, default: list, dist_reduce_fx: str | None = None) -> None:
        self._state_names.append(name)
        setattr(self, name, list(default))

    def reset(self) -> None:
        for name in self._state_names:
            setattr(self, name, [])

    @contextlib.contextmanager
    def _synced(self) -> Iterator[None]:
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            yield
            return
        local = {name: getattr(self, name) for name in self._state_names}
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, {k: [t.cpu() for t in v] for k, v in local.items()})
        for name in self._state_names:
            setattr(self, name, [t for part in gathered for t in part[name]])
        try:
            yield
        finally:
            for name, value in local.items():
                setattr(self, name, value)


try:
    import torchmetrics

    class _TorchmetricsBase(torchmetrics.Metric):
        is_differentiable = False
        full_state_update = False

        def _synced(self) -> contextlib.AbstractContextManager:
            # Inside compute() torchmetrics has already synced the states.
            return contextlib.nullcontext() if self._is_synced else self.sync_context()

    _Base: type = _TorchmetricsBase
    HAS_TORCHMETRICS = True
except ImportError:
    _Base = _PlainMetric
    HAS_TORCHMETRICS = False


class _SurfaceMetricMixin:
    """update / compute / aggregate / summary over the states `values` and `empty`."""

    higher_is_better: bool | None = False

    def __init__(self, *, include_background: bool = False, distance_metric: str = "euclidean",
                 spacing: Spacing = None, surface: str = "voxel", connectivity: int = 1,
                 input_format: str = "one-hot", num_classes: int | None = None,
                 threshold: float | str | None = None, dtype: Any = None,
                 reduction: str = "mean", get_not_nans: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_input_options(input_format, num_classes, threshold, include_background,
                            distance_metric)
        self.reduction = choice(reduction, "reduction", REDUCTIONS)
        self.get_not_nans = bool(get_not_nans)
        self.spacing = spacing
        self.options = dict(include_background=include_background,
                            distance_metric=distance_metric, surface=surface,
                            connectivity=connectivity, input_format=input_format,
                            num_classes=num_classes, threshold=threshold, dtype=dtype)
        self.add_state("values", default=[], dist_reduce_fx="cat")
        self.add_state("empty", default=[], dist_reduce_fx="cat")

    def _metric(self, pred: Any, target: Any, spacing: Spacing) -> SurfaceMetrics:
        raise NotImplementedError

    def update(self, pred: Any, target: Any, spacing: Spacing = None) -> None:
        """Adds a batch: pred, target as the function takes them (masks (B, C, *spatial), or
        labels / probabilities per `input_format` and `threshold`); `spacing` (optional)
        overrides the constructor's for this batch (e.g. (B, ndim) per item)."""
        result = self._metric(pred, target, self.spacing if spacing is None else spacing)
        (name,) = result.keys()
        self.values.append(torch.as_tensor(result[name]))
        self.empty.append(torch.as_tensor(result.pred_empty).to(torch.int64)
                          + 2 * torch.as_tensor(result.target_empty).to(torch.int64))

    def _states(self) -> tuple[torch.Tensor, torch.Tensor]:
        values, empty = self.values, self.empty
        if isinstance(values, list):
            if not values:
                raise RuntimeError(f"{type(self).__name__}.compute() called before update()")
            values, empty = torch.cat(values), torch.cat(empty)
        return values, empty

    def summary(self, dim: int | None = 0) -> Summary:
        """`gpudist.metrics.summarize` of everything added (on every process): the mean over
        `dim` of the items (0: per class (C,); None: one scalar) with the empty counts."""
        with self._synced():
            values, empty = self._states()
        return summarize(values, (empty & 1).bool(), (empty & 2).bool(), dim=dim)

    def aggregate(self, reduction: str | None = None) -> Any:
        """MONAI's `aggregate`: the (N, C) values of everything added (on every process) reduced
        by `reduction` (default: the constructor's), as `gpudist.metrics.reduce_metric`: NaN
        entries (both masks empty) left out, +inf kept. Returns the result, or (result,
        not_nans) with get_not_nans=True."""
        with self._synced():
            values = self._states()[0]
        out, not_nans = reduce_metric(values, self.reduction if reduction is None else reduction)
        return (out, not_nans) if self.get_not_nans else out

    def compute(self) -> Any:
        """`aggregate()` with the constructor's reduction (MONAI's default "mean": the mean over
        each item's classes, then over the items)."""
        return self.aggregate()


_COMMON_ARGS = """and, keyword-only: include_background (default False),
    distance_metric, spacing, surface, connectivity, input_format, num_classes, threshold and
    dtype as the function takes them; reduction (MONAI's: "mean", the default, "sum",
    "mean_batch", "sum_batch", "mean_channel", "sum_channel", "none"); get_not_nans (compute()
    then returns (value, not_nans)); and the keyword arguments of `torchmetrics.Metric` when
    torchmetrics is installed."""


class _HausdorffDistanceLogic(_SurfaceMetricMixin):
    __doc__ = f"""Accumulating `gpudist.metrics.hausdorff_distance` (HD, or HD95 with
    percentile=95); `compute()` equals MONAI's `HausdorffDistanceMetric.aggregate()`.

    Args: percentile, directed, percentile_mode, empty_distance, {_COMMON_ARGS}
    """

    def __init__(self, percentile: float | None = None, directed: bool = False, *,
                 percentile_mode: str = "per_direction", empty_distance: str | float = "inf",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.percentile = None if percentile is None else check_percentile(percentile)
        self.directed = bool(directed)
        self.percentile_mode = choice(percentile_mode, "percentile_mode", PERCENTILE_MODES)
        self.empty_distance = empty_distance

    def _metric(self, pred: Any, target: Any, spacing: Spacing) -> SurfaceMetrics:
        return surface_metrics(pred, target, (hd_name(self.percentile),), spacing=spacing,
                               directed=self.directed, percentile_mode=self.percentile_mode,
                               empty_distance=self.empty_distance, **self.options)


class _AverageSurfaceDistanceLogic(_SurfaceMetricMixin):
    __doc__ = f"""Accumulating `gpudist.metrics.average_surface_distance` (ASSD, or with
    symmetric=False the ASD pred -> target; MONAI's default is symmetric=False);
    `compute()` equals MONAI's `SurfaceDistanceMetric.aggregate()`.

    Args: symmetric, empty_distance, {_COMMON_ARGS}
    """

    def __init__(self, symmetric: bool = True, *, empty_distance: str | float = "inf",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.symmetric = bool(symmetric)
        self.empty_distance = empty_distance

    def _metric(self, pred: Any, target: Any, spacing: Spacing) -> SurfaceMetrics:
        return surface_metrics(pred, target, ("assd" if self.symmetric else "asd",),
                               spacing=spacing, empty_distance=self.empty_distance,
                               **self.options)


class _SurfaceDiceLogic(_SurfaceMetricMixin):
    __doc__ = f"""Accumulating `gpudist.metrics.surface_dice` (NSD at `tolerance`, or MONAI's
    `class_thresholds`: one number or one per class kept); `compute()` equals MONAI's
    `SurfaceDiceMetric.aggregate()`.

    Args: tolerance / class_thresholds, {_COMMON_ARGS}
    """

    higher_is_better = True

    def __init__(self, tolerance: float | Sequence[float] | None = None, *,
                 class_thresholds: Sequence[float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tolerance = one_tolerance(tolerance, class_thresholds)
        tolerance_values(self.tolerance)  # checked now rather than at the first update

    def _metric(self, pred: Any, target: Any, spacing: Spacing) -> SurfaceMetrics:
        return surface_metrics(pred, target, ("nsd",), tolerance=self.tolerance,
                               spacing=spacing, **self.options)


# The public classes: the logic above on torchmetrics.Metric, or on the plain accumulator.


class HausdorffDistance(_HausdorffDistanceLogic, _Base):
    __doc__ = _HausdorffDistanceLogic.__doc__


class AverageSurfaceDistance(_AverageSurfaceDistanceLogic, _Base):
    __doc__ = _AverageSurfaceDistanceLogic.__doc__


class SurfaceDice(_SurfaceDiceLogic, _Base):
    __doc__ = _SurfaceDiceLogic.__doc__
