"""Seeded test masks and the benchmark case lists.

The generators return boolean numpy arrays of one spatial shape (any number of dims) and take a
`numpy.random.Generator`, so tests and benchmarks can rebuild the same masks from a seed:

    rng = np.random.default_rng(0)
    mask = blobs((256, 256), rng)

A `Case` names a full (batch..., spatial...) shape, a generator and its parameters; `Case.mask()`
draws every batch item from one generator seeded with `Case.seed`, so the items differ from each
other but the whole array is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Shape = tuple[int, ...]


def _ball_volume(radius: float, ndim: int) -> float:
    return math.pi ** (ndim / 2) / math.gamma(ndim / 2 + 1) * radius**ndim


def balls(shape: Shape, rng: np.random.Generator, *, count: int,
          radius: tuple[float, float]) -> np.ndarray:
    """Union of `count` balls, uniform random centres, radii uniform in `radius` (voxels)."""
    mask = np.zeros(shape, bool)
    centres = rng.uniform(0, shape, size=(count, len(shape)))
    radii = rng.uniform(radius[0], radius[1], size=count)
    for c, r in zip(centres, radii):
        lo = [max(0, math.floor(ci - r)) for ci in c]
        hi = [min(n, math.ceil(ci + r) + 1) for ci, n in zip(c, shape)]
        grids = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi))]
        d2 = sum((g - ci) ** 2 for g, ci in zip(grids, c))
        mask[tuple(slice(a, b) for a, b in zip(lo, hi))] |= d2 <= r * r
    return mask


def blobs(shape: Shape, rng: np.random.Generator, *, fill: float = 0.3,
          radius: tuple[float, float] = (0.03, 0.1)) -> np.ndarray:
    """Random overlapping balls covering about `fill` of the array; radii as fractions of the
    smallest side (organs, cells)."""
    side = min(shape)
    r = (radius[0] * side, radius[1] * side)
    mean_volume = _ball_volume((r[0] + r[1]) / 2, len(shape))
    count = max(1, math.ceil(-math.log(1 - fill) * math.prod(shape) / mean_volume))
    return balls(shape, rng, count=count, radius=r)


def lesions(shape: Shape, rng: np.random.Generator, *, count: int = 8,
            radius: tuple[float, float] = (1.5, 5.0)) -> np.ndarray:
    """A few small balls (radii in voxels) in a large, mostly empty array."""
    return balls(shape, rng, count=count, radius=radius)


def ball(shape: Shape, rng: np.random.Generator | None = None, *,
         radius: float = 1 / 3) -> np.ndarray:
    """One ball centred in the array, radius a fraction of the smallest side (rng unused)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum((g - (n - 1) / 2) ** 2 for g, n in zip(grids, shape))
    return d2 <= (radius * min(shape)) ** 2


def shell(shape: Shape, rng: np.random.Generator | None = None, *, radius: float = 1 / 3,
          thickness: float = 2.0) -> np.ndarray:
    """A centred spherical shell `thickness` voxels thick, background inside and out (rng
    unused)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    d = np.sqrt(sum((g - (n - 1) / 2) ** 2 for g, n in zip(grids, shape)))
    r = radius * min(shape)
    return (d <= r) & (d > r - thickness)


def lines(shape: Shape, rng: np.random.Generator, *, count: int = 8) -> np.ndarray:
    """`count` one-voxel-thin straight segments between random points (vessels, contours)."""
    mask = np.zeros(shape, bool)
    hi = np.asarray(shape) - 1
    for _ in range(count):
        p0, p1 = rng.uniform(0, hi), rng.uniform(0, hi)
        steps = math.ceil(2 * np.linalg.norm(p1 - p0)) + 2
        pts = np.rint(p0 + np.linspace(0, 1, steps)[:, None] * (p1 - p0)).astype(np.intp)
        mask[tuple(pts.T)] = True
    return mask


def noise(shape: Shape, rng: np.random.Generator, *, density: float) -> np.ndarray:
    """Independent voxels, foreground with probability `density`."""
    return rng.random(shape, dtype=np.float32) < density


def specks(shape: Shape, rng: np.random.Generator, *, fraction: float,
           radius: tuple[float, float] = (0.5, 2.0)) -> np.ndarray:
    """Mostly foreground, with small background specks (balls of `radius` voxels) covering about
    `fraction` of the array: many sites at medium distances, the boundary loss's regime."""
    mean_volume = _ball_volume(max(1.0, (radius[0] + radius[1]) / 2), len(shape))
    count = max(1, math.ceil(-math.log(1 - fraction) * math.prod(shape) / mean_volume))
    return ~balls(shape, rng, count=count, radius=radius)


def organs(shape: Shape, rng: np.random.Generator, *, classes: int) -> np.ndarray:
    """Organ-like integer labels in [0, classes): background 0 and classes - 1 ellipsoids of
    random sizes (a tenth to a third of each side) and positions, later ones drawn over earlier
    ones."""
    labels = np.zeros(shape, np.int64)
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    for c in range(1, classes):
        centre = rng.uniform(0.25, 0.75, len(shape)) * np.asarray(shape)
        semi = rng.uniform(0.1, 0.33, len(shape)) * np.asarray(shape)
        inside = sum(((g - m) / s) ** 2 for g, m, s in zip(grids, centre, semi)) <= 1.0
        labels[inside] = c
    return labels


def empty(shape: Shape, rng: np.random.Generator | None = None) -> np.ndarray:
    """All background: every distance is 0."""
    return np.zeros(shape, bool)


def full(shape: Shape, rng: np.random.Generator | None = None) -> np.ndarray:
    """All foreground: no background, so gpudist gives +inf (scipy measures to a phantom point)."""
    return np.ones(shape, bool)


GENERATORS: dict[str, Callable[..., np.ndarray]] = {
    f.__name__: f for f in (balls, blobs, lesions, ball, shell, lines, noise, specks, organs,
                            empty, full)
}


@dataclass
class Case:
    """One benchmark input: `shape` is (*batch, *spatial) with `ndim` trailing spatial dims.

    `invert` swaps foreground and background (e.g. distance *to* thin lines or lesions);
    `series` groups cases of growing size into one line of the plot. With `classes` = C > 0 the
    generator draws integer label maps and the last batch dim is the class: item (b, c) is the
    mask `labels_b == c`, as `gpudist.labels_to_dist` transforms it (shape (B, C, *spatial)).
    """

    name: str
    shape: Shape
    ndim: int
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    invert: bool = False
    spacing: tuple[float, ...] | None = None
    series: str | None = None
    seed: int = 0
    classes: int = 0

    @property
    def spatial(self) -> Shape:
        return self.shape[len(self.shape) - self.ndim:]

    @property
    def items(self) -> int:
        """Number of images (product of the batch dims)."""
        return math.prod(self.shape[:len(self.shape) - self.ndim])

    @property
    def voxels(self) -> int:
        return math.prod(self.shape)

    def mask(self) -> np.ndarray:
        """The boolean mask, drawn from `np.random.default_rng(seed)`."""
        rng = np.random.default_rng(self.seed)
        gen = GENERATORS[self.kind]
        out = np.empty((self.items, *self.spatial), bool)
        if self.classes:
            params = self.params | {"classes": self.classes}
            per_class = np.arange(self.classes).reshape((-1,) + (1,) * self.ndim)
            for b in range(self.items // self.classes):
                labels = gen(self.spatial, rng, **params)
                out[b * self.classes:(b + 1) * self.classes] = labels[None] == per_class
        else:
            for i in range(self.items):
                out[i] = gen(self.spatial, rng, **self.params)
        if self.invert:
            np.logical_not(out, out=out)
        return out.reshape(self.shape)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {"name": self.name, "shape": list(self.shape), "ndim": self.ndim,
                "kind": self.kind, "params": self.params, "invert": self.invert,
                "spacing": list(self.spacing) if self.spacing else None, "series": self.series,
                "seed": self.seed, "classes": self.classes, "voxels": self.voxels,
                "min_bytes": self.min_bytes}

    @property
    def min_bytes(self) -> int:
        """Bytes a separable transform must move at the least: the 1-byte mask read, the float32
        output written, and one float32 round trip (read + write) per further axis."""
        return self.voxels * (1 + 4 + 8 * (self.ndim - 1))


def _blobs_sweep(ndim: int, sides: list[int]) -> list[Case]:
    return [Case(f"blobs{ndim}d-{n}", (n,) * ndim, ndim, "blobs", series=f"blobs {ndim}-D")
            for n in sides]


# The two cases of the foundation issue: one 192^3 volume, and 64 images of 256^2.
FOUNDATION = [
    Case("blobs3d-192", (192, 192, 192), 3, "blobs", series="blobs 3-D"),
    Case("blobs2d-64x256", (64, 256, 256), 2, "blobs"),
]


# Where gpudist is weakest (medium distances, many sites per line): mostly-foreground masks with
# background specks at several densities, and organ-like label maps of several classes.
REGIMES = [
    *[Case(f"specks{round(f * 1000):03d}-2d-64x256", (64, 256, 256), 2, "specks", {"fraction": f})
      for f in (0.003, 0.01, 0.03)],
    *[Case(f"specks{round(f * 1000):03d}-3d-192", (192, 192, 192), 3, "specks", {"fraction": f})
      for f in (0.003, 0.03)],
    Case("organs2d-16x6x256", (16, 6, 256, 256), 2, "organs", classes=6),
    Case("organs3d-2x4x128", (2, 4, 128, 128, 128), 3, "organs", classes=4,
         spacing=(2.0, 0.8, 0.8)),
]


def quick_cases() -> list[Case]:
    """A handful of cases that finish in well under two minutes on two cores, scipy included."""
    return [
        *FOUNDATION,
        Case("blobs3d-96", (96, 96, 96), 3, "blobs", series="blobs 3-D"),
        Case("shell3d-128", (128, 128, 128), 3, "shell"),
        Case("to-lesions3d-128", (128, 128, 128), 3, "lesions", invert=True),
        Case("to-lines2d-8x3x256", (8, 3, 256, 256), 2, "lines", invert=True),
        Case("noise50-2d-8x512", (8, 512, 512), 2, "noise", {"density": 0.5}),
        Case("noise99-2d-8x512", (8, 512, 512), 2, "noise", {"density": 0.99}),
        REGIMES[1],
        Case("empty2d-16x256", (16, 256, 256), 2, "empty"),
        Case("full2d-16x256", (16, 256, 256), 2, "full"),
    ]


def full_cases() -> list[Case]:
    """Size sweeps up to 4096^2 and 512^3, batches, realistic and random masks, degenerate ones."""
    ct = (2.5, 0.7, 0.7)
    return [
        *_blobs_sweep(2, [256, 512, 1024, 2048, 4096]),
        FOUNDATION[1],
        Case("blobs2d-16x3x512", (16, 3, 512, 512), 2, "blobs"),
        Case("blobs2d-256x128", (256, 128, 128), 2, "blobs"),
        *_blobs_sweep(3, [64, 96, 128, 192, 256, 384, 512]),
        Case("blobs3d-4x3x96", (4, 3, 96, 96, 96), 3, "blobs"),
        Case("blobs3d-8x128", (8, 128, 128, 128), 3, "blobs"),
        Case("blobs3d-192-aniso", (192, 192, 192), 3, "blobs", spacing=(2.5, 1.0, 0.7)),
        Case("ball3d-256", (256, 256, 256), 3, "ball"),
        Case("shell3d-256", (256, 256, 256), 3, "shell"),
        Case("lesions3d-ct", (128, 512, 512), 3, "lesions", {"count": 12}, spacing=ct),
        Case("to-lesions3d-ct", (128, 512, 512), 3, "lesions", {"count": 12}, invert=True,
             spacing=ct),
        Case("to-lines3d-256", (256, 256, 256), 3, "lines", {"count": 24}, invert=True),
        Case("to-lines2d-8x3x256", (8, 3, 256, 256), 2, "lines", invert=True),
        *[Case(f"noise{round(p * 100):02d}-3d-256", (256, 256, 256), 3, "noise", {"density": p})
          for p in (0.01, 0.5, 0.99)],
        *[Case(f"noise{round(p * 100):02d}-2d-2048", (2048, 2048), 2, "noise", {"density": p})
          for p in (0.01, 0.5, 0.99)],
        *REGIMES,
        Case("blobs4d-4x48", (4, 48, 48, 48, 48), 4, "blobs"),
        Case("empty3d-256", (256, 256, 256), 3, "empty"),
        Case("full3d-256", (256, 256, 256), 3, "full"),
    ]


def smoke_cases() -> list[Case]:
    """Tiny cases for the CLI's own test: 2-D and 3-D, a batch, and one with no background."""
    return [
        Case("blobs2d-3x40", (3, 40, 40), 2, "blobs"),
        Case("noise3d-20", (20, 20, 20), 3, "noise", {"density": 0.9}, spacing=(2.0, 1.0, 0.5)),
        Case("full2d-2x16", (2, 16, 16), 2, "full"),
    ]


CASE_SETS: dict[str, Callable[[], list[Case]]] = {
    "quick": quick_cases, "full": full_cases, "smoke": smoke_cases,
}
