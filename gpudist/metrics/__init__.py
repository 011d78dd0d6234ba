"""Surface distance metrics of batched segmentations: Hausdorff (HD, HD95), ASSD, surface Dice,
DeepMind's surface overlap and raw surface distances, and MONAI's reductions over items.

- `functional`: the metric functions (`surface_metrics`, `hausdorff_distance`, ...), their
  conventions and empty-mask policy (its docstring), and `summarize`;
- `reduction`: `reduce_metric`, MONAI's `do_metric_reduction` (mean, sum, mean_batch, ...);
- `classes`: accumulating, torchmetrics-style classes over the functions (`HausdorffDistance`,
  `AverageSurfaceDistance`, `SurfaceDice`), loaded on first use (they import torchmetrics);
- `inputs`: masks, labels or probabilities in, pairs of binary masks out;
- `surfaces`: the surface elements of masks (border voxels, DeepMind's surfels);
- `distances`: the distances between the surfaces of mask pairs, and their per-row reductions.
"""

from typing import TYPE_CHECKING, Any

from .functional import (
    Summary,
    SurfaceDistances,
    SurfaceMetrics,
    SurfaceOverlap,
    average_surface_distance,
    hausdorff_distance,
    summarize,
    surface_dice,
    surface_distances,
    surface_metrics,
    surface_overlap,
)
from .reduction import REDUCTIONS, reduce_metric

_CLASSES = ("AverageSurfaceDistance", "HausdorffDistance", "SurfaceDice")

if TYPE_CHECKING:
    from .classes import AverageSurfaceDistance, HausdorffDistance, SurfaceDice


def __getattr__(name: str) -> Any:
    # The classes load torchmetrics (seconds of imports): on first use, not with gpudist.
    if name in _CLASSES:
        from . import classes

        return getattr(classes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AverageSurfaceDistance",
    "HausdorffDistance",
    "REDUCTIONS",
    "SurfaceDice",
    "SurfaceDistances",
    "SurfaceMetrics",
    "SurfaceOverlap",
    "Summary",
    "average_surface_distance",
    "hausdorff_distance",
    "reduce_metric",
    "summarize",
    "surface_dice",
    "surface_distances",
    "surface_metrics",
    "surface_overlap",
]
