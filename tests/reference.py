"""Independent references for the tests: brute force, and scipy applied directly."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage


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


def kervadec_phi(mask: np.ndarray, spacing) -> np.ndarray:
    """REFERENCE.md section 1: phi = EDT(neg) * neg - (EDT(pos) - 1) * pos, 0 if no boundary."""
    pos = mask.astype(bool)
    if not pos.any() or pos.all():
        return np.zeros(mask.shape)
    neg = ~pos
    return (ndimage.distance_transform_edt(neg, sampling=spacing) * neg
            - (ndimage.distance_transform_edt(pos, sampling=spacing) - 1) * pos)
