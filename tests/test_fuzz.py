"""A seeded random differential test: every CPU backend against scipy.ndimage in float64 on random
cases (1-4 spatial dims plus batch dims, every density, input and output dtypes, isotropic and
anisotropic spacing over many scales, layouts: non-contiguous, channels-last, negative strides;
edt, squared, black_border, the signed maps, label and one-hot inputs).

Case i runs with seed GPUDIST_FUZZ_SEED + i (default 13000), GPUDIST_FUZZ_CASES cases (default
150). A failure names its seed and parameters; replay it alone with
    GPUDIST_FUZZ_SEED=<seed> GPUDIST_FUZZ_CASES=1 python -m pytest -q tests/test_fuzz.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from scipy import ndimage

import gpudist
from common import assert_close_map, assert_matches

SEED = int(os.environ.get("GPUDIST_FUZZ_SEED", "13000"))
CASES = int(os.environ.get("GPUDIST_FUZZ_CASES", "150"))
BACKENDS = [b for b in ("extension", "numba", "scipy") if b in gpudist.available_backends()]
MASK_DTYPES = [np.bool_, np.uint8, np.int32, np.int64, np.float16, np.float32, np.float64]
LABEL_DTYPES = [np.uint8, np.int16, np.int32, np.int64]


def edt_ref(mask, spacing, black_border=False):
    """float64 distance from each nonzero element to the nearest zero (inf if none)."""
    if black_border:
        inner = tuple(slice(1, -1) for _ in mask.shape)
        return ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[inner]
    if mask.all():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(mask, sampling=spacing)


def signed_ref(mask, spacing, convention):
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    d_out, d_in = edt_ref(~mask, spacing), edt_ref(mask, spacing)
    if convention == "kervadec":
        return np.where(mask, 1 - d_in, d_out)
    if convention == "sdf":
        half = 0.5 * min(spacing)
        return np.where(mask, half - d_in, d_out - half)
    return d_out + d_in


def per_item(fn, masks, nd):
    """fn over each (*spatial) item of masks (*batch, *spatial)."""
    flat = masks.reshape((-1,) + masks.shape[masks.ndim - nd:])
    return np.stack([fn(m) for m in flat]).reshape(masks.shape) if flat.shape[0] else \
        np.zeros(masks.shape)


def layout(x: np.ndarray, rng: np.random.Generator, name: str):
    """x with the same values in another memory layout (or as a tensor)."""
    if name == "permuted" and x.ndim > 1:
        order = rng.permutation(x.ndim)
        return np.ascontiguousarray(x.transpose(order)).transpose(np.argsort(order))
    if name == "strided":
        big = np.zeros(tuple(2 * s for s in x.shape), x.dtype)
        big[tuple(slice(None, None, 2) for _ in x.shape)] = x
        return big[tuple(slice(None, None, 2) for _ in x.shape)]
    if name == "flipped":
        return np.flip(np.flip(x).copy())
    if name == "channels_last" and x.ndim == 4:
        return torch.from_numpy(x).to(memory_format=torch.channels_last)
    if name == "tensor":
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


def draw_case(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    nd = int(rng.integers(1, 5))
    side = {1: 40, 2: 14, 3: 8, 4: 5}[nd]
    batch = tuple(int(b) for b in rng.integers(1, 3, int(rng.integers(0, 3))))
    spatial = tuple(int(s) for s in rng.integers(1, side + 1, nd))
    if rng.random() < 0.5:
        spacing = float(10 ** rng.uniform(-8, 8))
        sp = (spacing,) * nd
    else:
        base = 10 ** rng.uniform(-8, 8)
        sp = tuple(float(base * 10 ** rng.uniform(0, 3)) for _ in range(nd))  # ratio to 1000
        spacing = sp
    return dict(
        seed=seed, fn=str(rng.choice(["edt", "edt", "signed", "labels", "one_hot"])), nd=nd,
        shape=batch + spatial, density=float(rng.choice([0.0, 0.02, 0.3, 0.7, 0.98, 1.0])),
        mask_dtype=np.dtype(rng.choice(MASK_DTYPES)).name,
        label_dtype=np.dtype(rng.choice(LABEL_DTYPES)).name, classes=int(rng.integers(1, 5)),
        out_dtype=[None, "float32", "float64"][int(rng.integers(0, 3))], spacing=spacing, sp=sp,
        squared=bool(rng.random() < 0.3), black_border=bool(rng.random() < 0.3),
        convention=str(rng.choice(["kervadec", "sdf", "unsigned"])),
        layout=str(rng.choice(["plain", "permuted", "strided", "flipped", "channels_last",
                               "tensor"])),
        values=int(rng.integers(0, 2**31)))


def run_case(case: dict, backend: str) -> None:
    rng = np.random.default_rng(case["values"])
    shape, nd, sp = case["shape"], case["nd"], case["sp"]
    fg = rng.random(shape) < case["density"]
    out_dtype = case["out_dtype"]
    wide = out_dtype == "float64" or (out_dtype is None and case["mask_dtype"] == "float64"
                                      and case["fn"] in ("edt", "signed", "one_hot"))
    rtol = 1e-12 if wide else 1e-6
    kw = dict(dtype=out_dtype, backend=backend)
    if case["fn"] in ("edt", "signed"):
        dt = np.dtype(case["mask_dtype"])
        if dt == np.bool_:
            x = fg
        else:  # nonzero values of either sign, NaN included for floats (nonzero, as in scipy)
            pool = [1, 3, 200] if dt.kind == "u" else [-5, 1, 7]
            if dt.kind == "f":
                pool = [-2.5, 0.5, 1e3, np.nan]
            x = np.where(fg, rng.choice(pool, shape), 0).astype(dt)
        x = layout(x, rng, case["layout"])
        if case["fn"] == "edt":
            out = gpudist.edt(x, case["spacing"], ndim=nd, squared=case["squared"],
                              black_border=case["black_border"], **kw)
            ref = per_item(lambda m: edt_ref(m, sp, case["black_border"]), fg, nd)
            assert_matches(out, ref ** 2 if case["squared"] else ref, rtol=rtol)
        else:
            out = gpudist.signed_distance(x, case["spacing"], ndim=nd,
                                          convention=case["convention"], **kw)
            ref = per_item(lambda m: signed_ref(m, sp, case["convention"]), fg, nd)
            if wide:
                assert_matches(out, ref, rtol=rtol)
            else:
                assert_close_map(out, ref)
        assert tuple(out.shape) == shape
        return
    # label maps: (B, *spatial) labels, or their one-hot (B, C, *spatial)
    shape = (int(np.prod(shape[:len(shape) - nd])),) + shape[len(shape) - nd:]
    c = case["classes"]
    labels = rng.integers(0, c, shape).astype(case["label_dtype"])
    one_hot = labels[:, None] == np.arange(c).reshape((1, c) + (1,) * nd)
    if case["fn"] == "labels":
        out = gpudist.labels_to_dist(layout(labels, rng, case["layout"]), c, case["spacing"],
                                     convention=case["convention"], **kw)
    else:
        x = layout(one_hot.astype(case["mask_dtype"]), rng, case["layout"])
        out = gpudist.one_hot_to_dist(x, case["spacing"], convention=case["convention"], **kw)
    ref = per_item(lambda m: signed_ref(m, sp, case["convention"]), one_hot, nd)
    assert tuple(out.shape) == one_hot.shape
    if wide:
        assert_matches(out, ref, rtol=rtol)
    else:
        assert_close_map(out, ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_cases_match_scipy(backend):
    for seed in range(SEED, SEED + CASES):
        case = draw_case(seed)
        try:
            run_case(case, backend)
        except Exception as exc:  # name the case, and how to replay it
            raise AssertionError(
                f"fuzz case failed on backend={backend!r}: {case}\nreplay: GPUDIST_FUZZ_SEED="
                f"{seed} GPUDIST_FUZZ_CASES=1 python -m pytest -q tests/test_fuzz.py") from exc
