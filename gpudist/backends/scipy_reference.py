"""Reference backend: scipy.ndimage.distance_transform_edt in float64, one image at a time.

Slow, single-threaded and independent of gpudist's own algorithm: the tests compare every other
backend with it. It states the conventions in their plainest form."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from .contract import (
    check_arguments,
    check_feature_arguments,
    check_metric_arguments,
    check_multilabel_arguments,
)


def _edt(mask: np.ndarray, spacing: Sequence[float], black_border: bool) -> np.ndarray:
    """Distance from each nonzero element to the nearest zero; inf when there is none."""
    if black_border:
        padded = np.pad(mask, 1, constant_values=False)
        inner = tuple(slice(1, -1) for _ in range(mask.ndim))
        return ndimage.distance_transform_edt(padded, sampling=spacing)[inner]
    if mask.all():  # scipy would measure to a phantom point off the grid
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(mask, sampling=spacing)


def _one(mask: np.ndarray, spacing: Sequence[float], convention: str,
         black_border: bool) -> np.ndarray:
    if convention == "edt":
        return _edt(mask, spacing, black_border)
    if convention == "edt_squared":
        return _edt(mask, spacing, black_border) ** 2
    if not mask.any() or mask.all():  # a single class: no boundary, the map is 0
        return np.zeros(mask.shape)
    d_out = _edt(~mask, spacing, False)  # outside: distance to the nearest foreground element
    d_in = _edt(mask, spacing, False)  # inside: distance to the nearest background element
    if convention == "kervadec":
        return d_out * ~mask - (d_in - 1) * mask
    if convention == "sdf":
        half = 0.5 * min(spacing)
        return np.where(mask, half - d_in, d_out - half)
    return d_out + d_in  # "unsigned"


def distance_transform(src: torch.Tensor, num_classes: int, spacing: Sequence[float],
                       convention: str, black_border: bool, dtype: torch.dtype,
                       max_distance: float | None = None) -> torch.Tensor:
    """The backend contract (see `contract`), on any device, through the CPU; every distance is
    computed, which the work bound max_distance allows."""
    rows = check_arguments(src, num_classes, spacing, convention, black_border, dtype,
                           max_distance)
    arr = src.detach().cpu().numpy()
    if num_classes:
        classes = np.arange(num_classes).reshape((1, num_classes) + (1,) * (arr.ndim - 1))
        masks = arr[:, None] == classes
    else:
        masks = arr.astype(bool)
    spatial = arr.shape[1:]
    flat = masks.reshape((math.prod(masks.shape[:masks.ndim - len(spatial)]),) + spatial)
    out = np.empty(flat.shape)
    if flat.size:
        per_row = len(flat) // len(rows)  # the items of one row's source items
        for i, mask in enumerate(flat):
            out[i] = _one(mask, rows[i // per_row], convention, black_border)
    return torch.from_numpy(out.reshape(masks.shape)).to(device=src.device, dtype=dtype)


def multilabel_edt(labels: torch.Tensor, spacing: Sequence[float], black_border: bool,
                   squared: bool, dtype: torch.dtype) -> torch.Tensor:
    """The multi-label contract (see `contract`): scipy's EDT of each nonzero label's mask, read
    on that label's elements."""
    rows = check_multilabel_arguments(labels, spacing, dtype)
    arr = labels.detach().cpu().numpy()
    out = np.zeros(arr.shape)
    for i, item in enumerate(arr):
        for label in np.unique(item):
            if label == 0:
                continue
            mask = item == label
            out[i][mask] = _edt(mask, rows[i % len(rows)], black_border)[mask]
    if squared:
        out **= 2
    return torch.from_numpy(out).to(device=labels.device, dtype=dtype)


def metric_transform(src: torch.Tensor, spacing: Sequence[float], metric: str,
                     black_border: bool, dtype: torch.dtype) -> torch.Tensor:
    """The metric contract (see `contract`): scipy.ndimage.distance_transform_cdt times the
    spacing, which must be isotropic (scipy's takes no sampling; NotImplementedError else)."""
    rows = check_metric_arguments(src, spacing, metric, dtype)
    if any(len(set(row)) > 1 for row in rows):
        raise NotImplementedError("backend='scipy': scipy's distance_transform_cdt takes no "
                                  "sampling, so metric='taxicab'/'chessboard' needs an isotropic "
                                  "spacing here; the extension and numba backends take any")
    arr = src.detach().cpu().numpy()
    out = np.empty(arr.shape)
    inner = tuple(slice(1, -1) for _ in range(arr.ndim - 1))
    for i, mask in enumerate(arr):
        if black_border:
            out[i] = ndimage.distance_transform_cdt(np.pad(mask, 1), metric=metric)[inner]
        elif mask.all():
            out[i] = np.inf
        else:
            out[i] = ndimage.distance_transform_cdt(mask, metric=metric)
        out[i] *= rows[i % len(rows)][0]
    return torch.from_numpy(out).to(device=src.device, dtype=dtype)


def feature_transform(src: torch.Tensor, spacing: Sequence[float],
                      dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The feature contract (see `contract`): scipy's distance_transform_edt with return_indices
    (scipy's tie rule, which may pick another of equidistant elements than gpudist's)."""
    rows = check_feature_arguments(src, spacing, dtype)
    arr = src.detach().cpu().numpy()
    out = np.full(arr.shape, np.inf)
    feat = np.full(arr.shape, -1, dtype=np.int64)
    for i, mask in enumerate(arr):
        if mask.all():
            continue
        d, idx = ndimage.distance_transform_edt(mask, sampling=rows[i % len(rows)],
                                                return_indices=True)
        out[i] = d
        feat[i] = np.ravel_multi_index(tuple(idx), mask.shape)
    return (torch.from_numpy(out).to(device=src.device, dtype=dtype),
            torch.from_numpy(feat).to(src.device))
