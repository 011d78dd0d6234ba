"""Surface distance metrics of batched segmentations: Hausdorff (HD, HD95), ASSD and surface Dice.

- `functional`: the metric functions (`surface_metrics`, `hausdorff_distance`, ...), their
  conventions and empty-mask policy (its docstring), and `summarize`;
- `classes`: accumulating, torchmetrics-style classes over the functions (`HausdorffDistance`,
  `AverageSurfaceDistance`, `SurfaceDice`), loaded on first use (they import torchmetrics);
- `surfaces`: the surface elements of masks (border voxels, DeepMind's surfels);
- `distances`: the distances between the surfaces of mask pairs, and their per-row reductions.
"""

from typing import TYPE_CHECKING, Any

from .functional import (
    Summary,
    SurfaceMetrics,
    average_surface_distance,
    hausdorff_distance,
    summarize,
    surface_dice,
    surface_metrics,
)

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
    "SurfaceDice",
    "SurfaceMetrics",
    "Summary",
    "average_surface_distance",
    "hausdorff_distance",
    "summarize",
    "surface_dice",
    "surface_metrics",
]
