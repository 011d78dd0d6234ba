"""A synthetic, highly unbalanced segmentation task: small lesions on textured backgrounds with
look-alike distractors, in 2-D or 3-D.

Each image has:
- a background texture: Gaussian-filtered noise at a fine and a coarse scale plus a smooth
  illumination ramp, with white noise on top;
- 1-3 lesions (the foreground, label 1): ellipsoids of radii 2-5 voxels, brighter than the
  background by `contrast`, with blurred edges and their own inner texture;
- 1-3 distractors (labelled background): bright thin bars of the lesions' intensity, and faint
  blobs of the lesions' size at half their contrast, so that neither intensity nor size alone
  separates a lesion from the rest.

The lesions cover about 0.5-3% of the pixels of a 64x64 image (`foreground_fraction` reports it).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage


def _ellipsoid(shape: tuple[int, ...], center: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Bool mask of the axis-aligned ellipsoid with `center` and `radii` (voxels)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, center, radii))
    return r2 <= 1.0


def _bar(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Bool mask of a thin straight bar (length 8-16, width 1-2 voxels) at a random angle."""
    ndim = len(shape)
    start = rng.uniform(8, np.array(shape) - 8)
    direction = rng.normal(size=ndim)
    direction /= np.linalg.norm(direction)
    length, width = rng.uniform(8, 16), rng.uniform(0.6, 1.1)
    grids = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    rel = grids - start
    t = np.clip(rel @ direction, 0, length)
    dist = np.linalg.norm(rel - t[..., None] * direction, axis=-1)
    return dist <= width


def _texture(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    fine = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    coarse = ndimage.gaussian_filter(rng.normal(size=shape), 6.0)
    tex = fine / fine.std() + coarse / coarse.std()
    ramp = sum(rng.uniform(-1, 1) * np.linspace(-1, 1, n).reshape(
        [-1 if i == a else 1 for i in range(len(shape))]) for a, n in enumerate(shape))
    return tex + ramp


def make_image(shape: tuple[int, ...], rng: np.random.Generator,
               contrast: float = 3.0, noise: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """One image and its labels: float32 `shape` intensities and int64 `shape` labels (0/1)."""
    image = _texture(shape, rng)
    labels = np.zeros(shape, dtype=np.int64)
    margin = 6
    for _ in range(rng.integers(1, 4)):
        center = rng.uniform(margin, np.array(shape) - margin)
        mask = _ellipsoid(shape, center, rng.uniform(2, 5, size=len(shape)))
        inner = ndimage.gaussian_filter(rng.normal(size=shape), 1.0)
        image += contrast * ndimage.gaussian_filter(mask.astype(float), 0.7) * (1 + 0.3 * inner)
        labels[mask] = 1
    for _ in range(rng.integers(1, 4)):
        if rng.random() < 0.5:
            distractor, strength = _bar(shape, rng), contrast
        else:
            center = rng.uniform(margin, np.array(shape) - margin)
            distractor = _ellipsoid(shape, center, rng.uniform(2, 5, size=len(shape)))
            strength = 0.5 * contrast
        distractor &= labels == 0
        image += strength * ndimage.gaussian_filter(distractor.astype(float), 0.7)
    image += noise * rng.normal(size=shape)
    image = (image - image.mean()) / image.std()
    return image.astype(np.float32), labels


def make_dataset(n: int, size: int = 64, ndim: int = 2, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` images: float32 (n, 1, *[size] * ndim) and int64 labels (n, *[size] * ndim)."""
    rng = np.random.default_rng(seed)
    pairs = [make_image((size,) * ndim, rng) for _ in range(n)]
    images = torch.from_numpy(np.stack([p[0] for p in pairs]))[:, None]
    labels = torch.from_numpy(np.stack([p[1] for p in pairs]))
    return images, labels


def foreground_fraction(labels: torch.Tensor) -> float:
    """Fraction of foreground voxels in integer labels (any shape)."""
    return float((labels > 0).float().mean())
