"""CPU fallback used when the compiled extension is absent: the same separable algorithm as
csrc/kernels/edt_line.cuh (first pass, lower envelope per axis, sign bit carrying the class),
written for numba and parallelised over lines with prange. See that header for the derivation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba as nb
import numpy as np
import torch

from . import _backends, _finalize

_NONE = 1 << 62  # position offset meaning "no such element"


@nb.njit(cache=True, nogil=True)
def _inside(v):
    return math.copysign(1.0, v) < 0.0


@nb.njit(cache=True, nogil=True)
def _first_pass_line(src, fg, out, w, two_sided, black_border):
    n = src.shape[0]
    last_bg = -1 if black_border else -_NONE
    last_fg = -_NONE
    for x in range(n):
        inside = src[x] == fg
        other = last_bg if inside else last_fg
        if inside:
            last_fg = x
        else:
            last_bg = x
        out[x] = x - other
    next_bg = n if black_border else _NONE
    next_fg = _NONE
    for x in range(n - 1, -1, -1):
        inside = src[x] == fg
        other = next_bg if inside else next_fg
        if inside:
            next_fg = x
        else:
            next_bg = x
        d = min(float(out[x]), float(other - x))
        g = 0.0
        if inside or two_sided:
            g = math.inf if d > n else w * d * d
        out[x] = -g if inside else g


@nb.njit(cache=True, nogil=True)
def _lower_envelope(line, out, w, targets_inside, border_sites, f, v, z):
    n = line.shape[0]
    targets = 0
    prev = not border_sites
    cur = n > 0 and _inside(line[0]) == targets_inside
    for x in range(n):
        nxt = (_inside(line[x + 1]) == targets_inside) if x + 1 < n else not border_sites
        targets += cur
        if cur:
            f[x] = abs(line[x])
        else:
            f[x] = 0.0 if (prev or nxt) else math.inf
        prev = cur
        cur = nxt
    if targets == 0:
        return
    k = -1
    first = -1 if border_sites else 0
    last = n if border_sites else n - 1
    for q in range(first, last + 1):
        fq = 0.0 if (q < 0 or q >= n) else f[q]
        if math.isinf(fq):
            continue
        s = -math.inf
        while k >= 0:
            p = v[k]
            fp = 0.0 if (p < 0 or p >= n) else f[p]
            s = 0.5 * ((p + q) + (fq - fp) / (w * (q - p)))
            if s > z[k]:
                break
            k -= 1
        if k < 0:
            s = -math.inf
        k += 1
        v[k] = q
        z[k] = s
    j = 0
    next_z = z[1] if k > 0 else math.inf
    for x in range(n):
        if _inside(line[x]) != targets_inside:
            continue
        g = math.inf  # no site on this line
        if k >= 0:
            while next_z < x:
                j += 1
                next_z = z[j + 1] if j < k else math.inf
            p = v[j]
            fp = 0.0 if (p < 0 or p >= n) else f[p]
            g = fp + w * (x - p) * (x - p)
        out[x] = -g if targets_inside else g


@nb.njit(cache=True, parallel=True)
def _first_pass(src, classes, out, w, two_sided, black_border):
    # src: (items_src, rows, n); out: (items, rows, n)
    items, rows = out.shape[0], out.shape[1]
    for line in nb.prange(items * rows):
        item, r = line // rows, line % rows
        src_item = item // classes if classes else item
        fg = item % classes if classes else 1
        _first_pass_line(src[src_item, r], fg, out[item, r], w, two_sided, black_border)


@nb.njit(cache=True, parallel=True)
def _envelope_pass(out, w, two_sided, black_border):
    # out: (outer, n, inner), lines along axis 1
    outer, n, inner = out.shape
    for line in nb.prange(outer * inner):
        o, j = line // inner, line % inner
        inp = out[o, :, j].copy()
        f = np.empty(n)
        z = np.empty(n + 2)
        v = np.empty(n + 2, np.int64)
        dst = out[o, :, j]
        _lower_envelope(inp, dst, w, True, black_border, f, v, z)
        if two_sided:
            _lower_envelope(inp, dst, w, False, False, f, v, z)
        else:
            for x in range(n):
                if not _inside(inp[x]):
                    dst[x] = 0.0


@torch.library.custom_op("gpudist::distance_transform_numba", mutates_args=(),
                         device_types="cpu")
def distance_transform_numba(src: torch.Tensor, num_classes: int, spacing: list[float],
                             convention: str, black_border: bool,
                             dtype: torch.dtype) -> torch.Tensor:
    """The transform, as an op (opaque to torch.compile, like the extension's)."""
    _finalize.check_black_border(convention, black_border)
    spatial = tuple(src.shape[1:])
    items = src.shape[0] * max(num_classes, 1)
    out = np.empty((items,) + spatial, dtype=np.float64 if dtype == torch.float64 else np.float32)
    if out.size:
        scale = max(spacing)
        w = [(s / scale) ** 2 for s in spacing]
        two_sided = _finalize.is_two_sided(convention)
        arr = src.contiguous().numpy()
        if arr.dtype == np.bool_:
            arr = arr.view(np.uint8)
        n_last = spatial[-1]
        _first_pass(arr.reshape(src.shape[0], -1, n_last), num_classes,
                    out.reshape(items, -1, n_last), w[-1], two_sided, black_border)
        for a in range(len(spatial) - 2, -1, -1):
            inner = math.prod(spatial[a + 1:])
            _envelope_pass(out.reshape(-1, spatial[a], inner), w[a], two_sided, black_border)
        _finalize.finalize_(out, convention, scale, 0.5 * min(spacing))
    return torch.from_numpy(out).reshape(_backends.out_sizes(src, num_classes))


distance_transform_numba.register_fake(_backends.fake_transform)


def distance_transform(src: torch.Tensor, num_classes: int, spacing: Sequence[float],
                       convention: str, black_border: bool, dtype: torch.dtype,
                       max_distance: float | None = None) -> torch.Tensor:
    """Same contract as the extension's op `gpudist::distance_transform` (CPU tensors only);
    every distance is computed, which the work bound max_distance allows."""
    if src.device.type != "cpu":
        raise ValueError(f"the numba backend runs on CPU tensors only, got {src.device}")
    return distance_transform_numba(src, num_classes, list(spacing), convention, black_border,
                                    dtype)
