"""Accumulating metric classes for the surface metrics, torchmetrics-style.

Each class subclasses `torchmetrics.Metric` when torchmetrics is installed, so its states are
gathered across processes under DDP (`torch.distributed`) like any torchmetrics metric; without
torchmetrics it is a plain accumulator with the same `update` / `compute` / `summary` / `reset`,
which gathers with `torch.distributed.all_gather_object` when a process group is initialized.

State: every update appends its (B, C) values and a (B, C) code of which masks were empty, so
`compute` (mean over the non-both-empty entries, as in `gpudist.metrics.summarize`) and `summary`
(the same with the empty counts) see every item of every process.
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
    summarize,
    surface_metrics,
    tolerance_values,
)

REDUCTIONS = ("mean", "mean_batch", "none")


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
    """update / compute / summary over the states `values` and `empty`."""

    higher_is_better: bool | None = False

    def __init__(self, *, spacing: Spacing, surface: str, connectivity: int, dtype: Any,
                 reduction: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reduction = choice(reduction, "reduction", REDUCTIONS)
        self.spacing = spacing
        self.surface = surface
        self.connectivity = connectivity
        self.distance_dtype = dtype
        self.add_state("values", default=[], dist_reduce_fx="cat")
        self.add_state("empty", default=[], dist_reduce_fx="cat")

    def _metric(self, pred: Any, target: Any, spacing: Spacing) -> SurfaceMetrics:
        raise NotImplementedError

    def update(self, pred: Any, target: Any, spacing: Spacing = None) -> None:
        """Adds a batch: pred, target (B, C, *spatial) binary masks; `spacing` (optional)
        overrides the constructor's for this batch (e.g. (B, ndim) per item)."""
        result = self._metric(pred, target, self.spacing if spacing is None else spacing)
        (name,) = result.keys()
        self.values.append(result[name])
        self.empty.append(result.pred_empty.to(torch.int64)
                          + 2 * result.target_empty.to(torch.int64))

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

    def compute(self) -> torch.Tensor:
        """The metric over everything added: "mean" a scalar, "mean_batch" one value per class
        (C,), "none" every item (N, C). Means leave out items whose masks are both empty (NaN)
        and keep one-empty items (+inf, or `empty_distance`)."""
        if self.reduction == "none":
            with self._synced():
                return self._states()[0]
        return self.summary(None if self.reduction == "mean" else 0).mean


class _HausdorffDistanceLogic(_SurfaceMetricMixin):
    """Accumulating `gpudist.metrics.hausdorff_distance` (HD, or HD95 with percentile=95).

    Args: as `hausdorff_distance`, plus reduction ("mean", "mean_batch" or "none") and the
    keyword arguments of `torchmetrics.Metric` when torchmetrics is installed.
    """

    def __init__(self, percentile: float | None = None, directed: bool = False, *,
                 spacing: Spacing = None, surface: str = "voxel", connectivity: int = 1,
                 percentile_mode: str = "per_direction", empty_distance: str | float = "inf",
                 dtype: Any = None, reduction: str = "mean_batch", **kwargs: Any) -> None:
        super().__init__(spacing=spacing, surface=surface, connectivity=connectivity,
                         dtype=dtype, reduction=reduction, **kwargs)
        self.percentile = None if percentile is None else check_percentile(percentile)
        self.directed = bool(directed)
        self.percentile_mode = choice(percentile_mode, "percentile_mode", PERCENTILE_MODES)
        self.empty_distance = empty_distance

    def _metric(self, pred: Any, target: Any, spacing: Spacing) -> SurfaceMetrics:
        return surface_metrics(pred, target, (hd_name(self.percentile),), spacing=spacing,
                               surface=self.surface, connectivity=self.connectivity,
                               directed=self.directed, percentile_mode=self.percentile_mode,
                               empty_distance=self.empty_distance, dtype=self.distance_dtype)


class _AverageSurfaceDistanceLogic(_SurfaceMetricMixin):
    """Accumulating `gpudist.metrics.average_surface_distance` (ASSD, or ASD pred -> target).

    Args: as `average_surface_distance`, plus reduction and torchmetrics' keyword arguments.
    """

    def __init__(self, symmetric: bool = True, *, spacing: Spacing = None,
                 surface: str = "voxel", connectivity: int = 1,
                 empty_distance: str | float = "inf", dtype: Any = None,
                 reduction: str = "mean_batch", **kwargs: Any) -> None:
        super().__init__(spacing=spacing, surface=surface, connectivity=connectivity,
                         dtype=dtype, reduction=reduction, **kwargs)
        self.symmetric = bool(symmetric)
        self.empty_distance = empty_distance

    def _metric(self, pred: Any, target: Any, spacing: Spacing) -> SurfaceMetrics:
        return surface_metrics(pred, target, ("assd" if self.symmetric else "asd",),
                               spacing=spacing, surface=self.surface,
                               connectivity=self.connectivity,
                               empty_distance=self.empty_distance, dtype=self.distance_dtype)


class _SurfaceDiceLogic(_SurfaceMetricMixin):
    """Accumulating `gpudist.metrics.surface_dice` (NSD at `tolerance`, one or one per class).

    Args: as `surface_dice`, plus reduction and torchmetrics' keyword arguments.
    """

    higher_is_better = True

    def __init__(self, tolerance: float | Sequence[float], *, spacing: Spacing = None,
                 surface: str = "voxel", connectivity: int = 1, dtype: Any = None,
                 reduction: str = "mean_batch", **kwargs: Any) -> None:
        super().__init__(spacing=spacing, surface=surface, connectivity=connectivity,
                         dtype=dtype, reduction=reduction, **kwargs)
        tolerance_values(tolerance)  # checked now rather than at the first update
        self.tolerance = tolerance

    def _metric(self, pred: Any, target: Any, spacing: Spacing) -> SurfaceMetrics:
        return surface_metrics(pred, target, ("nsd",), tolerance=self.tolerance,
                               spacing=spacing, surface=self.surface,
                               connectivity=self.connectivity, dtype=self.distance_dtype)


# The public classes: the logic above on torchmetrics.Metric, or on the plain accumulator.


class HausdorffDistance(_HausdorffDistanceLogic, _Base):
    __doc__ = _HausdorffDistanceLogic.__doc__


class AverageSurfaceDistance(_AverageSurfaceDistanceLogic, _Base):
    __doc__ = _AverageSurfaceDistanceLogic.__doc__


class SurfaceDice(_SurfaceDiceLogic, _Base):
    __doc__ = _SurfaceDiceLogic.__doc__
