"""CPU fallback used when the compiled extension is absent: the per-line algorithm of
csrc/kernels/edt_line.cuh (first pass, lower envelope per axis, sign bit carrying the class),
transliterated for numba and parallelised over lines with prange. Only the plain forms: none of
the CPU extension's vectorised variants (lanes, windowed envelope); the envelope is the in-place
streaming one of csrc/distance_transform/cpu_passes.h (stream_envelope), so scratch stays small
on long lines. See those headers for the derivation; a change to them must be mirrored here."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba as nb
import numpy as np
import torch

from .contract import check_arguments, convention_code, fake_transform, is_two_sided, out_sizes

_NONE = 1 << 62  # position offset meaning "no such element"


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


@nb.njit(cache=True, parallel=True)
def _envelope_pass(out, w, two_sided, black_border):
    # out: (outer, n, inner), lines along axis 1, each transformed in place
    outer, n, inner = out.shape
    for line in nb.prange(outer * inner):
        o, j = line // inner, line % inner
        v = np.empty(64, np.int64)
        f = np.empty(64)
        z = np.empty(64)
        dst = out[o, :, j]
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
        _first_pass(arr.reshape(src.shape[0], -1, n_last), num_classes,
                    out.reshape(items, -1, n_last), w[-1], two_sided, black_border)
        for a in range(len(spatial) - 2, -1, -1):
            inner = math.prod(spatial[a + 1:])
            _envelope_pass(out.reshape(-1, spatial[a], inner), w[a], two_sided, black_border)
        _finalize(out.reshape(-1), convention_code(convention), scale, 0.5 * min(spacing))
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
