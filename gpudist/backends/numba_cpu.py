"""CPU fallback used when the compiled extension is absent: the per-line algorithm of
csrc/kernels/edt_line.cuh (first pass, stack lower envelope per axis, sign bit carrying the
class), transliterated for numba and parallelised over lines with prange. Only the plain forms:
none of the CPU extension's vectorised variants (lanes, windowed envelope). See that header for
the derivation; a change to it must be mirrored here.

Threads: numba's threading layer is one that survives fork (DataLoader workers fork a parent that
has run gpudist): "forksafe", TBB when installed, else numba's workqueue (on Linux), never GNU
OpenMP, whose forked children abort; set before numba starts its threads, unless
NUMBA_THREADING_LAYER names one. Each call runs on torch.get_num_threads() threads (at most
numba's NUMBA_NUM_THREADS) and holds a lock, since the workqueue is not safe for concurrent
launches."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence

import numba as nb
import numpy as np
import torch

from .contract import check_arguments, fake_transform, is_two_sided, out_sizes

_NONE = 1 << 62  # position offset meaning "no such element"

if "NUMBA_THREADING_LAYER" not in os.environ:
    nb.config.THREADING_LAYER = "forksafe"
_launch = threading.Lock()


def _new_lock() -> None:
    global _launch
    _launch = threading.Lock()  # a lock held by another thread at fork stays held in the child


os.register_at_fork(after_in_child=_new_lock)


@nb.njit(cache=True, nogil=True)
def _inside(v):
    return math.copysign(1.0, v) < 0.0


@nb.njit(cache=True, nogil=True)
def _first_pass_line(src, fg, out, w, two_sided, black_border):
    # Two sweeps (left to right, then right to left) counting the elements since each class was
    # last seen; the second keeps the nearer side and squares it (first_pass_by).
    n = src.shape[0]
    for sweep in range(2):
        since_bg = 0 if black_border else _NONE
        since_fg = _NONE
        for i in range(n):
            x = i if sweep == 0 else n - 1 - i
            inside = src[x] == fg
            if inside:
                since_bg += 1
                since_fg = 0
            else:
                since_fg += 1
                since_bg = 0
            d = since_bg if inside else since_fg
            if sweep == 0:
                out[x] = d
                continue
            d = min(float(out[x]), float(d))
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


def _finalize(stored: np.ndarray, convention: str, scale: float, shift: float) -> None:
    """In place: squared distances with the class in the sign bit -> the convention's values
    (edt_line.cuh's finalize_as, on whole arrays)."""
    inside = np.signbit(stored)
    g = np.abs(stored, out=stored)
    if convention == "edt_squared":
        g *= scale * scale
        return
    d = np.sqrt(g, out=g)
    d *= scale
    if convention == "edt":
        return
    no_boundary = np.isinf(d)
    if convention == "kervadec":
        np.subtract(1.0, d, out=d, where=inside)
    elif convention == "sdf":
        d -= shift
        np.negative(d, out=d, where=inside)
    d[no_boundary] = 0.0


@torch.library.custom_op("gpudist::distance_transform_numba", mutates_args=(),
                         device_types="cpu")
def distance_transform_numba(src: torch.Tensor, num_classes: int, spacing: list[float],
                             convention: str, black_border: bool, dtype: torch.dtype,
                             max_distance: float | None = None) -> torch.Tensor:
    """The transform, as an op (opaque to torch.compile, like the extension's); max_distance is
    checked, then unused (every distance is computed)."""
    check_arguments(src, num_classes, spacing, convention, black_border, dtype, max_distance)
    spatial = tuple(src.shape[1:])
    items = src.shape[0] * max(num_classes, 1)
    out = np.empty((items,) + spatial, dtype=np.float64 if dtype == torch.float64 else np.float32)
    if out.size:
        scale = max(spacing)
        w = [(s / scale) ** 2 for s in spacing]
        two_sided = is_two_sided(convention)
        arr = src.contiguous().numpy()
        if arr.dtype == np.bool_:
            arr = arr.view(np.uint8)
        n_last = spatial[-1]
        with _launch:
            nb.set_num_threads(max(1, min(torch.get_num_threads(), nb.config.NUMBA_NUM_THREADS)))
            _first_pass(arr.reshape(src.shape[0], -1, n_last), num_classes,
                        out.reshape(items, -1, n_last), w[-1], two_sided, black_border)
            for a in range(len(spatial) - 2, -1, -1):
                inner = math.prod(spatial[a + 1:])
                _envelope_pass(out.reshape(-1, spatial[a], inner), w[a], two_sided, black_border)
        _finalize(out, convention, scale, 0.5 * min(spacing))
    return torch.from_numpy(out).reshape(out_sizes(src, num_classes))


distance_transform_numba.register_fake(fake_transform)


def distance_transform(src: torch.Tensor, num_classes: int, spacing: Sequence[float],
                       convention: str, black_border: bool, dtype: torch.dtype,
                       max_distance: float | None = None) -> torch.Tensor:
    """The backend contract (see `contract`), on CPU tensors."""
    if src.device.type != "cpu":
        raise ValueError(f"the numba backend runs on CPU tensors only, got {src.device}")
    return distance_transform_numba(src, num_classes, list(spacing), convention, black_border,
                                    dtype, max_distance)
