"""What the tests share: the (backend, device) targets, independent references (brute force,
scipy applied directly), comparisons and input generators. Test modules import this module,
never each other."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import strategies as st
from scipy import ndimage

import gpudist
from gpudist.backends import extension


def brute_force_edt(mask: np.ndarray, spacing, black_border: bool = False) -> np.ndarray:
    """O(N^2): distance from every nonzero element to the nearest zero element (inf if none)."""
    sp = np.asarray(spacing, dtype=np.float64)
    coords = np.array(list(itertools.product(*[range(s) for s in mask.shape])), dtype=np.float64)
    coords = coords.reshape(-1, mask.ndim)
    zeros = coords[(mask == 0).reshape(-1)]
    if black_border:  # every position just outside the array is a zero
        border = [c for c in itertools.product(*[range(-1, s + 1) for s in mask.shape])
                  if any(ci in (-1, s) for ci, s in zip(c, mask.shape))]
        zeros = np.concatenate([zeros, np.array(border, dtype=np.float64).reshape(-1, mask.ndim)])
    out = np.zeros(mask.size)
    fg = (mask != 0).reshape(-1)
    if zeros.size == 0:
        out[fg] = np.inf
    elif fg.any():
        diff = (coords[fg][:, None, :] - zeros[None, :, :]) * sp
        out[fg] = np.sqrt((diff ** 2).sum(-1).min(1))
    return out.reshape(mask.shape)


def scipy_edt(mask: np.ndarray, spacing) -> np.ndarray:
    """scipy directly; inf where no zero exists (scipy would use a phantom point)."""
    if mask.all():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(mask, sampling=spacing)


def multilabel_reference(labels: np.ndarray, spacing, black_border: bool) -> np.ndarray:
    """scipy's EDT of each nonzero label's mask, read on that label (float64)."""
    out = np.zeros(labels.shape)
    for label in np.unique(labels):
        if label == 0:
            continue
        mask = labels == label
        if black_border:
            inner = tuple(slice(1, -1) for _ in range(labels.ndim))
            d = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[inner]
        elif mask.all():
            d = np.full(labels.shape, np.inf)
        else:
            d = ndimage.distance_transform_edt(mask, sampling=spacing)
        out[mask] = d[mask]
    return out


def brute_force_metric(mask: np.ndarray, spacing, metric: str, black_border: bool) -> np.ndarray:
    """min over the background (and, with black_border, the outside) of the sum / max over the
    axes of spacing times |index difference|, in float64."""
    h = np.asarray(spacing, dtype=np.float64)
    grid = np.indices(mask.shape).reshape(mask.ndim, -1).T
    bg = grid[~mask.reshape(-1)]
    combine = np.sum if metric == "taxicab" else np.max
    out = np.zeros(mask.size)
    for i, p in enumerate(grid):
        if not mask.reshape(-1)[i]:
            continue
        d = combine(np.abs(bg - p) * h, axis=1).min() if len(bg) else np.inf
        if black_border:
            d = min(d, min(h[a] * min(p[a] + 1, mask.shape[a] - p[a]) for a in range(mask.ndim)))
        out[i] = d
    return out.reshape(mask.shape)


def scipy_black_border(mask: np.ndarray, spacing) -> np.ndarray:
    """scipy with the outside of the array as background (one padded layer of zeros)."""
    padded = np.pad(mask, 1)
    return scipy_edt(padded, spacing)[tuple(slice(1, -1) for _ in mask.shape)]


def kervadec_phi(mask: np.ndarray, spacing) -> np.ndarray:
    """REFERENCE.md section 1: phi = EDT(neg) * neg - (EDT(pos) - 1) * pos, 0 if no boundary."""
    pos = mask.astype(bool)
    if not pos.any() or pos.all():
        return np.zeros(mask.shape)
    neg = ~pos
    return (ndimage.distance_transform_edt(neg, sampling=spacing) * neg
            - (ndimage.distance_transform_edt(pos, sampling=spacing) - 1) * pos)


# --- the (backend, device) pairs every transform test runs on ---------------------------------


@dataclass(frozen=True)
class Target:
    """One backend on one device: what the transform tests are crossed with (conftest.py)."""

    backend: str
    device: str

    def __str__(self) -> str:
        return f"{self.backend}-{self.device}"

    def put(self, x) -> torch.Tensor:
        """x (numpy array or tensor) as a tensor on this target's device."""
        return (torch.from_numpy(x) if isinstance(x, np.ndarray) else x).to(self.device)


def targets() -> list[Target]:
    """The fast backends present here: the extension and numba on the CPU; on a CUDA machine the
    extension's CUDA kernels (when built with them) and CuPy (when installed)."""
    names = gpudist.available_backends()
    found = [Target(b, "cpu") for b in ("extension", "numba") if b in names]
    if torch.cuda.is_available():
        if extension.has_cuda_kernels():
            found.append(Target("extension", "cuda"))
        if "cupy" in names:
            found.append(Target("cupy", "cuda"))
    return found


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def to_numpy(x) -> np.ndarray:
    """A result (tensor on any device, or numpy array) as a numpy array."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# --- comparisons --------------------------------------------------------------------------------

RTOL = 1e-6  # float32 rounding of scipy's float64 result


def assert_matches(out, expected, rtol=RTOL):
    """out equals expected within rtol, with infinities in the same places."""
    out = to_numpy(out)
    np.testing.assert_array_equal(np.isinf(out), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(out[finite], expected[finite], rtol=rtol, atol=0)


def assert_close_map(out, expected):
    """A signed map: 1 - D can cancel to 0, so the absolute floor is float32 rounding of D."""
    out = to_numpy(out)
    scale = np.abs(expected).max() if expected.size else 0.0
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6 * max(scale, 1.0))


# --- inputs -------------------------------------------------------------------------------------


@st.composite
def masks(draw, max_dims=4, max_side=9):
    """A random mask of 1 to max_dims dims and a spacing per axis (0.05 to 20)."""
    nd = draw(st.integers(1, max_dims))
    shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=nd, max_size=nd)))
    density = draw(st.sampled_from([0.02, 0.3, 0.7, 0.98]))
    seed = draw(st.integers(0, 2**32 - 1))
    mask = np.random.default_rng(seed).random(shape) < density
    spacing = tuple(draw(st.lists(st.floats(0.05, 20.0), min_size=nd, max_size=nd)))
    return mask, spacing


@st.composite
def wide_masks(draw):
    """3-D masks whose last two axes are long enough for the CPU's windowed envelope (chunks of
    16 elements, tiles of 16 lines), with spacings that put the distances along them on both
    sides of its reach (32 elements for the middle axis, 64 for the last): some lines and lanes
    take the window, others fall back."""
    shape = (draw(st.integers(1, 6)), draw(st.integers(16, 40)), draw(st.integers(16, 140)))
    density = draw(st.sampled_from([0.05, 0.5, 0.9, 0.995]))
    mask = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random(shape) < density
    spacing = (draw(st.floats(0.5, 3.0)),) + tuple(
        draw(st.sampled_from([1.0, 0.3, 0.06, 0.031, 0.03, 0.015, 0.008, 7.0])) for _ in range(2))
    return mask, spacing


def blobs(shape, count, seed):
    """A seeded union of `count` random balls."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    mask = np.zeros(shape, bool)
    for _ in range(count):
        centre = [rng.uniform(0, s) for s in shape]
        radius = rng.uniform(1, max(2, max(shape) / 4))
        mask |= sum((g - c) ** 2 for g, c in zip(grid, centre)) < radius ** 2
    return mask


def one_hot(labels, num_classes):
    """(B, *spatial) integer labels -> (B, C, *spatial) uint8 one-hot, in numpy."""
    return np.moveaxis(np.eye(num_classes, dtype=np.uint8)[labels], -1, 1)
