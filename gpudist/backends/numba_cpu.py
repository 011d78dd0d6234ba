"""CPU fallback used when the compiled extension is absent: the per-line algorithm of
csrc/kernels/edt_line.cuh (first pass, lower envelope per axis, sign bit carrying the class),
transliterated for numba and parallelised over lines with prange. Only the plain forms: none of
the CPU extension's vectorised variants (lanes, windowed envelope). The envelope runs on a
contiguous copy of each line with a full stack (lower_envelope) and, on lines whose scratch would
pass 2 MiB, in place with the streaming stack of csrc/distance_transform/cpu_passes.h
(stream_envelope), so scratch stays bounded (the copy is 2-3x faster on short lines). See those
headers for the derivation; a change to them must be mirrored here.

Threads: numba's threading layer is one that survives fork (DataLoader workers fork a parent that
has run gpudist): "forksafe", TBB when installed, else numba's workqueue (on Linux), never GNU
OpenMP, whose forked children abort; set before numba starts its threads, unless
NUMBA_THREADING_LAYER names one. Each call runs on torch.get_num_threads() threads (at most
numba's NUMBA_NUM_THREADS) and holds a lock, since the workqueue is not safe for concurrent
launches."""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator, Sequence

import numba as nb
import numpy as np
import torch

from .contract import (
    check_arguments,
    check_feature_arguments,
    check_metric_arguments,
    check_multilabel_arguments,
    convention_code,
    fake_features,
    fake_metric,
    fake_multilabel,
    fake_transform,
    is_two_sided,
    out_sizes,
)

_NONE = 1 << 62  # position offset meaning "no such element"
_SCRATCH_BYTES = 2 << 20  # per line, above which an envelope streams (cpu_passes.h kScratchBytes)

if "NUMBA_THREADING_LAYER" not in os.environ:
    nb.config.THREADING_LAYER = "forksafe"
_launch = threading.Lock()


def _new_lock() -> None:
    global _launch
    _launch = threading.Lock()  # a lock held by another thread at fork stays held in the child


os.register_at_fork(after_in_child=_new_lock)


@contextlib.contextmanager
def _parallel() -> Iterator[None]:
    """numba's parallel loops on torch.get_num_threads() threads (at most NUMBA_NUM_THREADS),
    one launch at a time."""
    with _launch:
        nb.set_num_threads(max(1, min(torch.get_num_threads(), nb.config.NUMBA_NUM_THREADS)))
        yield


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
def _meet(p, fp, q, fq, w):
    return 0.5 * ((p + q) + (fq - fp) / (w * (q - p)))


@nb.njit(cache=True, nogil=True)
def _stream_envelope(line, w, targets_inside, border_sites, zero_others, v, f, z):
    # cpu_passes.h's stream_envelope: the lower envelope in place, each element written once no
    # site still to come can lower it, parabolas owning only written elements dropped from the
    # bottom (b); v, f, z are the stack, grown (and returned) only when the live part outgrows
    # them.
    n = line.shape[0]
    b, k, done = 0, -1, 0
    prev = not border_sites
    cur = n > 0 and _inside(line[0]) == targets_inside
    for q in range(-1, n + 1):
        site = False
        fq = 0.0
        if q < 0 or q >= n:
            site = border_sites
        else:
            nxt = (_inside(line[q + 1]) == targets_inside) if q + 1 < n else not border_sites
            if cur:
                fq = abs(line[q])
                site = not math.isinf(fq)  # inf: no element of the other class on this line
            else:
                site = prev or nxt
            prev = cur
            cur = nxt
        if site:
            s = -math.inf
            while k >= b:
                s = _meet(v[k], f[k], q, fq, w)
                if s > z[k]:
                    break
                k -= 1
            if k < b:
                s = -math.inf
            if k + 1 == v.shape[0]:  # full: move the live parabolas down, or grow
                live = k - b + 1
                if b == 0:
                    v = np.concatenate((v, np.empty_like(v)))
                    f = np.concatenate((f, np.empty_like(f)))
                    z = np.concatenate((z, np.empty_like(z)))
                else:
                    for i in range(live):
                        v[i], f[i], z[i] = v[b + i], f[b + i], z[b + i]
                    k -= b
                    b = 0
            k += 1
            v[k], f[k], z[k] = q, fq, s
        if q < 0:
            continue
        last = q >= n - 1  # every site is pushed once q = n - 1 (and n) are
        if q == n - 1 and border_sites:
            last = False  # the border site n comes next
        nxt_site = min(q + 1, n)
        while done < nxt_site:
            x = done
            if _inside(line[x]) != targets_inside:
                if zero_others:
                    line[x] = 0.0
                done += 1
                continue
            g = math.inf
            if k >= b:
                while b < k and z[b + 1] < x:
                    b += 1
                g = f[b] + w * (x - v[b]) * (x - v[b])
                if not last and g > w * (nxt_site - x) * (nxt_site - x):
                    break
            elif not last:
                break
            line[x] = -g if targets_inside else g
            done += 1
    return v, f, z


@nb.njit(cache=True, parallel=True)
def _first_pass(src, classes, out, w, two_sided, black_border):
    # src: (items_src, rows, n); out: (items, rows, n)
    items, rows = out.shape[0], out.shape[1]
    for line in nb.prange(items * rows):
        item, r = line // rows, line % rows
        src_item = item // classes if classes else item
        fg = item % classes if classes else 1
        _first_pass_line(src[src_item, r], fg, out[item, r], w, two_sided, black_border)


@nb.njit(cache=True, nogil=True)
def _envelope_push(k, q, fq, w, f, v, z):
    s = -math.inf
    while k >= 0:
        p = v[k]
        s = 0.5 * ((p + q) + (fq - f[k]) / (w * (q - p)))
        if s > z[k]:
            break
        k -= 1
    if k < 0:
        s = -math.inf
    k += 1
    v[k] = q
    f[k] = fq
    z[k] = s
    return k


@nb.njit(cache=True, nogil=True)
def _lower_envelope(inp, out, w, targets_inside, border_sites, zero_others, f, v, z):
    # edt_line.cuh's lower_envelope (the same sites and tests): reads inp, writes out; f, v, z
    # hold n + 2 values each.
    n = inp.shape[0]
    k = -1
    if border_sites:
        k = _envelope_push(k, -1, 0.0, w, f, v, z)
    any_target = False
    prev = not border_sites
    cur = n > 0 and _inside(inp[0]) == targets_inside
    for q in range(n):
        nxt = (_inside(inp[q + 1]) == targets_inside) if q + 1 < n else not border_sites
        any_target |= cur
        if cur:
            fq = abs(inp[q])
            if not math.isinf(fq):  # inf: no element of the other class on this line yet
                k = _envelope_push(k, q, fq, w, f, v, z)
        elif prev or nxt:
            k = _envelope_push(k, q, 0.0, w, f, v, z)
        prev = cur
        cur = nxt
    if border_sites:
        k = _envelope_push(k, n, 0.0, w, f, v, z)
    if not any_target and not zero_others:
        return
    j = 0
    next_z = z[1] if k > 0 else math.inf
    for x in range(n):
        if _inside(inp[x]) != targets_inside:
            if zero_others:
                out[x] = 0.0
            continue
        g = math.inf  # no site on this line
        if k >= 0:
            while next_z < x:
                j += 1
                next_z = z[j + 1] if j < k else math.inf
            g = f[j] + w * (x - v[j]) * (x - v[j])
        out[x] = -g if targets_inside else g


@nb.njit(cache=True, parallel=True)
def _envelope_pass(out, w, two_sided, black_border):
    # out: (outer, n, inner), lines along axis 1, each transformed in place: from a contiguous
    # copy with a full stack (lower_envelope) while that scratch stays within _SCRATCH_BYTES,
    # else streamed in place (stream_envelope, bounded scratch), as cpu_passes.h decides.
    outer, n, inner = out.shape
    copy = n * (out.itemsize + 24) <= _SCRATCH_BYTES
    for line in nb.prange(outer * inner):
        o, j = line // inner, line % inner
        dst = out[o, :, j]
        if copy:
            inp = dst.copy()
            f = np.empty(n + 2)
            z = np.empty(n + 2)
            v = np.empty(n + 2, np.int64)
            _lower_envelope(inp, dst, w, True, black_border, not two_sided, f, v, z)
            if two_sided:
                _lower_envelope(inp, dst, w, False, False, False, f, v, z)
        else:
            v = np.empty(64, np.int64)
            f = np.empty(64)
            z = np.empty(64)
            v, f, z = _stream_envelope(dst, w, True, black_border, not two_sided, v, f, z)
            if two_sided:
                _stream_envelope(dst, w, False, False, False, v, f, z)


@nb.njit(cache=True, parallel=True)
def _finalize(stored, convention, scale, shift):
    # In place, on the flat output: squared distances with the class in the sign bit -> the
    # convention's values (edt_line.cuh's finalize_as; conventions by CONVENTIONS index).
    for i in nb.prange(stored.shape[0]):
        s = stored[i]
        g = abs(s)
        if convention == 1:
            stored[i] = g * scale * scale
            continue
        d = math.sqrt(g) * scale
        if convention == 0:
            stored[i] = d
        elif math.isinf(g):  # a single class: no boundary; a finite g whose d overflows stays
            stored[i] = 0.0
        elif convention == 2:
            stored[i] = 1.0 - d if _inside(s) else d
        elif convention == 3:
            stored[i] = shift - d if _inside(s) else d - shift
        else:
            stored[i] = d


@torch.library.custom_op("gpudist::distance_transform_numba", mutates_args=(),
                         device_types="cpu")
def distance_transform_numba(src: torch.Tensor, num_classes: int, spacing: list[float],
                             convention: str, black_border: bool, dtype: torch.dtype,
                             max_distance: float | None = None) -> torch.Tensor:
    """The transform, as an op (opaque to torch.compile, like the extension's); max_distance is
    checked, then unused (every distance is computed). A per-item spacing runs the passes source
    item by source item, each with its row."""
    rows = check_arguments(src, num_classes, spacing, convention, black_border, dtype,
                           max_distance)
    spatial = tuple(src.shape[1:])
    per_src = max(num_classes, 1)  # output items per source item
    out = np.empty((src.shape[0] * per_src,) + spatial,
                   dtype=np.float64 if dtype == torch.float64 else np.float32)
    if out.size:
        arr = src.contiguous().numpy()
        if arr.dtype == np.bool_:
            arr = arr.view(np.uint8)
        with _parallel():
            for row, items in _row_items(rows, src.shape[0]):
                _transform(arr[items], num_classes,
                           out[items.start * per_src:items.stop * per_src], row, convention,
                           black_border)
    return torch.from_numpy(out).reshape(out_sizes(src, num_classes))


def _row_items(rows: list[tuple[float, ...]], batch: int) -> list[tuple[tuple[float, ...], slice]]:
    """Each spacing row with the source items it holds for: all of them for one row, item r
    for row r of a per-item spacing."""
    if len(rows) == 1:
        return [(rows[0], slice(0, batch))]
    return [(row, slice(r, r + 1)) for r, row in enumerate(rows)]


def _transform(arr: np.ndarray, num_classes: int, out: np.ndarray, spacing: tuple[float, ...],
               convention: str, black_border: bool) -> None:
    """The passes over the items of arr (B, *spatial) into out (B * max(num_classes, 1),
    *spatial), in place, with one spacing."""
    spatial = arr.shape[1:]
    scale = max(spacing)
    w = [(s / scale) ** 2 for s in spacing]
    two_sided = is_two_sided(convention)
    n_last = spatial[-1]
    _first_pass(arr.reshape(arr.shape[0], -1, n_last), num_classes,
                out.reshape(out.shape[0], -1, n_last), w[-1], two_sided, black_border)
    for a in range(len(spatial) - 2, -1, -1):
        inner = math.prod(spatial[a + 1:])
        _envelope_pass(out.reshape(-1, spatial[a], inner), w[a], two_sided, black_border)
    _finalize(out.reshape(-1), convention_code(convention), scale, 0.5 * min(spacing))


distance_transform_numba.register_fake(fake_transform)


def distance_transform(src: torch.Tensor, num_classes: int, spacing: Sequence[float],
                       convention: str, black_border: bool, dtype: torch.dtype,
                       max_distance: float | None = None) -> torch.Tensor:
    """The backend contract (see `contract`), on CPU tensors."""
    if src.device.type != "cpu":
        raise ValueError(f"the numba backend runs on CPU tensors only, got {src.device}")
    return distance_transform_numba(src, num_classes, list(spacing), convention, black_border,
                                    dtype, max_distance)


# --- the multi-label transform (csrc/kernels/edt_multilabel.cuh) --------------------------------


@nb.njit(cache=True, nogil=True)
def _run_end(labels, s):
    e = s + 1
    while e < labels.shape[0] and labels[e] == labels[s]:
        e += 1
    return e


@nb.njit(cache=True, nogil=True)
def _multilabel_first_pass_line(labels, out, w, black_border):
    n = labels.shape[0]
    s = 0
    while s < n:
        e = _run_end(labels, s)
        for x in range(s, e):
            left = float(x - s + 1) if (s > 0 or black_border) else math.inf
            right = float(e - x) if (e < n or black_border) else math.inf
            d = min(left, right)
            out[x] = 0.0 if labels[s] == 0 else (math.inf if math.isinf(d) else w * d * d)
        s = e


@nb.njit(cache=True, nogil=True)
def _multilabel_envelope_line(labels, line, w, black_border, f, v, z):
    # in place: a run's sites are read before its elements are written
    n = labels.shape[0]
    s = 0
    while s < n:
        e = _run_end(labels, s)
        if labels[s] == 0:
            line[s:e] = 0.0
            s = e
            continue
        k = -1
        if s > 0 or black_border:
            k = _envelope_push(k, s - 1, 0.0, w, f, v, z)
        for q in range(s, e):
            if not math.isinf(line[q]):
                k = _envelope_push(k, q, float(line[q]), w, f, v, z)
        if e < n or black_border:
            k = _envelope_push(k, e, 0.0, w, f, v, z)
        j = 0
        next_z = z[1] if k > 0 else math.inf
        for x in range(s, e):
            g = math.inf
            if k >= 0:
                while next_z < x:
                    j += 1
                    next_z = z[j + 1] if j < k else math.inf
                g = f[j] + w * (x - v[j]) * (x - v[j])
            line[x] = g
        s = e


@nb.njit(cache=True, parallel=True)
def _multilabel_pass(labels, out, w, black_border, first):
    # labels, out: (outer, n, inner), lines along axis 1
    outer, n, inner = out.shape
    for line in nb.prange(outer * inner):
        o, j = line // inner, line % inner
        lab = labels[o, :, j].copy()
        buf = out[o, :, j].copy()
        if first:
            _multilabel_first_pass_line(lab, buf, w, black_border)
        else:
            f = np.empty(n + 2)
            z = np.empty(n + 2)
            v = np.empty(n + 2, np.int64)
            _multilabel_envelope_line(lab, buf, w, black_border, f, v, z)
        out[o, :, j] = buf


@torch.library.custom_op("gpudist::multilabel_edt_numba", mutates_args=(), device_types="cpu")
def multilabel_edt_numba(labels: torch.Tensor, spacing: list[float], black_border: bool,
                         squared: bool, dtype: torch.dtype) -> torch.Tensor:
    """The multi-label transform (the op gpudist::multilabel_edt), as an op."""
    rows = check_multilabel_arguments(labels, spacing, dtype)
    spatial = tuple(labels.shape[1:])
    out = np.empty(labels.shape, dtype=np.float64 if dtype == torch.float64 else np.float32)
    if out.size:
        arr = labels.contiguous().numpy()
        if arr.dtype == np.bool_:
            arr = arr.view(np.uint8)
        with _parallel():
            for row, items in _row_items(rows, labels.shape[0]):
                scale, part = max(row), out[items]
                for a in range(len(spatial)):
                    shape = (-1, spatial[a], math.prod(spatial[a + 1:]))
                    _multilabel_pass(arr[items].reshape(shape), part.reshape(shape),
                                     (row[a] / scale) ** 2, black_border, a == 0)
                if squared:
                    part *= scale * scale
                else:
                    np.sqrt(part, out=part)
                    part *= scale
    return torch.from_numpy(out)


multilabel_edt_numba.register_fake(fake_multilabel)


def multilabel_edt(labels: torch.Tensor, spacing: Sequence[float], black_border: bool,
                   squared: bool, dtype: torch.dtype) -> torch.Tensor:
    """The multi-label backend contract (see `contract`), on CPU tensors."""
    if labels.device.type != "cpu":
        raise ValueError(f"the numba backend runs on CPU tensors only, got {labels.device}")
    return multilabel_edt_numba(labels, list(spacing), black_border, squared, dtype)


# --- the taxicab and chessboard transforms (csrc/kernels/edt_metrics.cuh) ----------------------


@nb.njit(cache=True, nogil=True)
def _metric_first_pass_line(src, out, h, black_border):
    n = src.shape[0]
    since = 0.0 if black_border else math.inf
    for x in range(n):
        since = since + 1.0 if src[x] else 0.0
        out[x] = since
    since = 0.0 if black_border else math.inf
    for x in range(n - 1, -1, -1):
        since = since + 1.0 if src[x] else 0.0
        d = min(float(out[x]), since)
        out[x] = math.inf if math.isinf(d) else h * d


@nb.njit(cache=True, nogil=True)
def _taxicab_line(line, h, black_border):
    n = line.shape[0]
    for sweep in range(2):
        prev = 0.0 if black_border else math.inf
        for i in range(n):
            x = i if sweep == 0 else n - 1 - i
            prev = min(prev + h, float(line[x]))
            line[x] = prev


@nb.njit(cache=True, nogil=True)
def _cone(x, y, g, h):
    return max(h * abs(x - y), g)


@nb.njit(cache=True, nogil=True)
def _cone_takeover(i, gi, u, gu, h, after, n):
    mid = 0.5 * (i + u)
    start = max(i + gu / h, mid) if gi <= gu else min(u - gi / h, mid)
    if not start < n:
        return n
    c = int(math.ceil(start)) if start > after + 1 else after + 1
    while c - 1 > after and _cone(c - 1, u, gu, h) <= _cone(c - 1, i, gi, h):
        c -= 1
    while c < n and _cone(c, u, gu, h) > _cone(c, i, gi, h):
        c += 1
    return c


@nb.njit(cache=True, nogil=True)
def _chessboard_line(line, h, black_border, s, gs, t):
    # in place: every site is read before any output is written
    n = line.shape[0]
    q = -1
    for y in range(-1, n + 1):
        if y < 0 or y >= n:
            if not black_border:
                continue
            gu = 0.0
        else:
            gu = float(line[y])
            if math.isinf(gu):
                continue
        while q >= 0 and _cone(t[q], s[q], gs[q], h) >= _cone(t[q], y, gu, h):
            q -= 1
        if q < 0:
            q = 0
            s[0], gs[0], t[0] = y, gu, 0
            continue
        c = _cone_takeover(s[q], gs[q], y, gu, h, t[q], n)
        if c < n:
            q += 1
            s[q], gs[q], t[q] = y, gu, c
    j = 0
    for x in range(n):
        if q < 0:
            line[x] = math.inf
            continue
        while j < q and t[j + 1] <= x:
            j += 1
        line[x] = _cone(x, s[j], gs[j], h)


@nb.njit(cache=True, parallel=True)
def _metric_pass(src, out, h, chessboard, black_border, first):
    # src, out: (outer, n, inner), lines along axis 1
    outer, n, inner = out.shape
    for line in nb.prange(outer * inner):
        o, j = line // inner, line % inner
        buf = out[o, :, j].copy()
        if first:
            _metric_first_pass_line(src[o, :, j].copy(), buf, h, black_border)
        elif chessboard:
            s = np.empty(n + 2, np.int64)
            t = np.empty(n + 2, np.int64)
            gs = np.empty(n + 2)
            _chessboard_line(buf, h, black_border, s, gs, t)
        else:
            _taxicab_line(buf, h, black_border)
        out[o, :, j] = buf


@torch.library.custom_op("gpudist::metric_transform_numba", mutates_args=(), device_types="cpu")
def metric_transform_numba(src: torch.Tensor, spacing: list[float], metric: str,
                           black_border: bool, dtype: torch.dtype) -> torch.Tensor:
    """The taxicab / chessboard transform (the op gpudist::metric_transform), as an op."""
    rows = check_metric_arguments(src, spacing, metric, dtype)
    spatial = tuple(src.shape[1:])
    out = np.empty(src.shape, dtype=np.float64 if dtype == torch.float64 else np.float32)
    if out.size:
        arr = src.contiguous().numpy().view(np.uint8)
        with _parallel():
            for row, items in _row_items(rows, src.shape[0]):
                for a in range(len(spatial)):
                    shape = (-1, spatial[a], math.prod(spatial[a + 1:]))
                    _metric_pass(arr[items].reshape(shape), out[items].reshape(shape),
                                 float(row[a]), metric == "chessboard", black_border, a == 0)
    return torch.from_numpy(out)


metric_transform_numba.register_fake(fake_metric)


def metric_transform(src: torch.Tensor, spacing: Sequence[float], metric: str,
                     black_border: bool, dtype: torch.dtype) -> torch.Tensor:
    """The metric backend contract (see `contract`), on CPU tensors."""
    if src.device.type != "cpu":
        raise ValueError(f"the numba backend runs on CPU tensors only, got {src.device}")
    return metric_transform_numba(src, list(spacing), metric, black_border, dtype)


# --- the feature transform (csrc/kernels/edt_features.cuh) ---------------------------------------


@nb.njit(cache=True, nogil=True)
def _feature_first_pass_line(src, out, feat, base, stride, w):
    n = src.shape[0]
    last = -1
    for x in range(n):
        if not src[x]:
            last = x
        feat[x] = last
    nxt = -1
    for x in range(n - 1, -1, -1):
        if not src[x]:
            nxt = x
        left = feat[x]
        y = left
        if nxt >= 0 and (left < 0 or nxt - x < x - left):
            y = nxt
        out[x] = math.inf if y < 0 else w * (x - y) * (x - y)
        feat[x] = -1 if y < 0 else base + y * stride


@nb.njit(cache=True, nogil=True)
def _feature_envelope_line(src, out, feat, base, stride, w, f, v, z, fe):
    n = src.shape[0]
    k = -1
    for q in range(n):
        fg = src[q] != 0
        fq = float(out[q]) if fg else 0.0
        if math.isinf(fq):
            continue
        k = _envelope_push(k, q, fq, w, f, v, z)
        fe[k] = feat[q] if fg else base + q * stride
    j = 0
    next_z = z[1] if k > 0 else math.inf
    for x in range(n):
        if not src[x]:
            out[x] = 0.0
            feat[x] = base + x * stride
            continue
        if k < 0:
            continue
        while next_z < x:
            j += 1
            next_z = z[j + 1] if j < k else math.inf
        out[x] = f[j] + w * (x - v[j]) * (x - v[j])
        feat[x] = fe[j]


@nb.njit(cache=True, parallel=True)
def _feature_pass(src, out, feat, w, first):
    # src, out, feat: (items, outer, n, inner), lines along axis 2; flat indices within an item
    items, outer, n, inner = out.shape
    for line in nb.prange(items * outer * inner):
        i, rest = line // (outer * inner), line % (outer * inner)
        o, j = rest // inner, rest % inner
        base = o * n * inner + j
        s = src[i, o, :, j].copy()
        buf = out[i, o, :, j].copy()
        fb = feat[i, o, :, j].copy()
        if first:
            _feature_first_pass_line(s, buf, fb, base, inner, w)
        else:
            f = np.empty(n + 1)
            z = np.empty(n + 1)
            v = np.empty(n + 1, np.int64)
            fe = np.empty(n + 1, np.int64)
            _feature_envelope_line(s, buf, fb, base, inner, w, f, v, z, fe)
        out[i, o, :, j] = buf
        feat[i, o, :, j] = fb


@torch.library.custom_op("gpudist::feature_transform_numba", mutates_args=(),
                         device_types="cpu")
def feature_transform_numba(src: torch.Tensor, spacing: list[float],
                            dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The feature transform (the op gpudist::feature_transform), as an op."""
    rows = check_feature_arguments(src, spacing, dtype)
    spatial = tuple(src.shape[1:])
    out = np.empty(src.shape, dtype=np.float64 if dtype == torch.float64 else np.float32)
    feat = np.empty(src.shape, dtype=np.int64)
    if out.size:
        arr = src.contiguous().numpy().view(np.uint8)
        with _parallel():
            for row, items in _row_items(rows, src.shape[0]):
                scale, part = max(row), out[items]
                for a in range(len(spatial)):
                    shape = (part.shape[0], -1, spatial[a], math.prod(spatial[a + 1:]))
                    _feature_pass(arr[items].reshape(shape), part.reshape(shape),
                                  feat[items].reshape(shape), (row[a] / scale) ** 2, a == 0)
                np.sqrt(part, out=part)
                part *= scale
    return torch.from_numpy(out), torch.from_numpy(feat)


feature_transform_numba.register_fake(fake_features)


def feature_transform(src: torch.Tensor, spacing: Sequence[float],
                      dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The feature backend contract (see `contract`), on CPU tensors."""
    if src.device.type != "cpu":
        raise ValueError(f"the numba backend runs on CPU tensors only, got {src.device}")
    return feature_transform_numba(src, list(spacing), dtype)
