"""gpudist.edt against independent references: brute force on tiny inputs, scipy in float64 on
random and nasty inputs, in 1-D to 4-D, with anisotropic spacing, on every (backend, device)
target present (conftest.py)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gpudist
from common import (
    RTOL,
    assert_matches,
    available_memory,
    blobs,
    brute_force_edt,
    masks,
    scipy_black_border,
    scipy_edt,
    to_numpy,
    wide_masks,
)


# --- exactness ----------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(data=masks(max_side=7), black_border=st.booleans())
def test_every_backend_equals_brute_force(data, black_border):
    mask, spacing = data
    expected = brute_force_edt(mask, spacing, black_border)
    for backend in gpudist.available_backends():
        out = gpudist.edt(mask, spacing, black_border=black_border, dtype=torch.float64,
                          backend=backend)
        assert_matches(out, expected, rtol=1e-12 if backend == "scipy" else 1e-9)


@settings(max_examples=80, deadline=None)
@given(data=masks(max_side=24))
def test_float32_equals_scipy_float64(target, data):
    mask, spacing = data
    out = gpudist.edt(target.put(mask), spacing, backend=target.backend)
    assert out.dtype == torch.float32
    assert_matches(out, scipy_edt(mask, spacing))


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 1.0, 0.7), (1e3, 1.0, 1e-3)])
def test_volume_with_anisotropic_spacing(target, spacing):
    # REFERENCE.md section 6: float32 parabola intersections fail here; double ones do not.
    mask = ~blobs((40, 56, 48), 12, seed=1)
    assert_matches(gpudist.edt(target.put(mask), spacing, backend=target.backend),
                   scipy_edt(mask, spacing))


NASTY = {
    "single background voxel": lambda s: np.pad(np.zeros((1,) * len(s), bool),
                                                [(1, n - 2) for n in s], constant_values=True),
    "single foreground voxel": lambda s: ~np.pad(np.ones((1,) * len(s), bool),
                                                 [(1, n - 2) for n in s]),
    "all foreground": lambda s: np.ones(s, bool),
    "all background": lambda s: np.zeros(s, bool),
    "checkerboard": lambda s: np.indices(s).sum(0) % 2 == 0,
    "thin line": lambda s: np.indices(s)[0] != s[0] // 2,
    "diagonal line": lambda s: np.indices(s)[0] != np.indices(s)[-1],
    "corner": lambda s: np.indices(s).sum(0) != 0,
    "far corner": lambda s: np.indices(s).sum(0) != sum(n - 1 for n in s),
}


@pytest.mark.parametrize("name,shape", [
    (name, shape) for name in NASTY
    for shape in [(1,), (2,), (13,), (1, 7), (9, 1), (11, 13), (5, 1, 6), (7, 8, 9), (3, 4, 1, 5)]
    if min(shape) >= 3 or not name.startswith("single")  # a single voxel needs a padded one
])
def test_nasty_cases(target, name, shape):
    mask = NASTY[name](shape)
    x = target.put(mask)
    for spacing in [(1.0,) * len(shape), tuple(np.linspace(0.3, 3.0, len(shape)))]:
        assert_matches(gpudist.edt(x, spacing, backend=target.backend), scipy_edt(mask, spacing))
        assert_matches(gpudist.edt(x, spacing, black_border=True, backend=target.backend),
                       brute_force_edt(mask, spacing, True) if mask.size < 600
                       else scipy_black_border(mask, spacing))


@settings(max_examples=60, deadline=None)
@given(data=wide_masks(), black_border=st.booleans())
def test_windowed_envelope_equals_scipy(target, data, black_border):
    mask, spacing = data
    out = gpudist.edt(target.put(mask), spacing, black_border=black_border,
                      backend=target.backend)
    assert_matches(out, scipy_black_border(mask, spacing) if black_border
                   else scipy_edt(mask, spacing))


@pytest.mark.parametrize("black_border", [False, True])
def test_window_reach_boundary(target, black_border):
    """Rows 1.. of an image share their background columns and row 0 is background, so element
    (r, x) ends at min(r^2, (x - nearest background column)^2): with runs of 63 to 66 and of 127
    to 130 foreground columns the windowed envelope of the last axis needs offsets just below, at
    and just above half and all of its reach (64), or hands the row over."""
    mask = np.ones((8, 72, 160), bool)
    mask[:, 0] = False
    runs = [(0, 64), (0, 65), (3, 70), (10, 73), (0, 128), (0, 129), (3, 134), (10, 137)]
    for image, (a, b) in zip(mask, runs):
        image[:, [a, b]] = False
    for spacing in [(1.0, 1.0), (1.0, 0.5), (2.0, 1.0), (1.0, 1.03)]:
        expected = np.stack([scipy_black_border(m, spacing) if black_border
                             else scipy_edt(m, spacing) for m in mask])
        assert_matches(gpudist.edt(target.put(mask), spacing, ndim=2, black_border=black_border,
                                   backend=target.backend), expected)


@settings(max_examples=60, deadline=None)
@given(data=st.one_of(masks(max_side=24), wide_masks()), black_border=st.booleans(),
       squared=st.booleans(), q=st.floats(0.0, 1.0))
def test_max_distance_is_exact_up_to_it_and_inf_beyond(target, data, black_border, squared, q):
    mask, spacing = data
    ref = scipy_black_border(mask, spacing) if black_border else scipy_edt(mask, spacing)
    values = ref[np.isfinite(ref) & (ref > 0)]
    # A bound among the distances present, so that some fall on each side of it.
    max_distance = float(np.quantile(values, q)) if values.size else 10.0 * q
    out = to_numpy(gpudist.edt(target.put(mask), spacing, black_border=black_border,
                               squared=squared, max_distance=max_distance,
                               backend=target.backend))
    if squared:
        out = np.sqrt(out)
    near = np.isclose(ref, max_distance, rtol=1e-6, atol=0)  # either side of the rounding
    expected = np.where(ref > max_distance, np.inf, ref)
    assert_matches(np.where(near, ref, out), np.where(near, ref, expected))
    assert np.all((out[near] == np.inf) | np.isclose(out[near], ref[near], rtol=1e-6))


def test_huge_max_distance_equals_no_bound(target):
    """A bound far beyond the image must not make the windowed envelope try offsets past it."""
    mask = np.ones((2, 60, 300), bool)
    mask[0, 30, 150] = False  # item 1 has no background: all +inf
    out = gpudist.edt(target.put(mask), (1.0, 0.5), ndim=2, max_distance=1e30,
                      backend=target.backend)
    assert_matches(out, np.stack([scipy_edt(m, (1.0, 0.5)) for m in mask]))


def test_extreme_spacing_ratio(target):
    mask = blobs((30, 40), 5, seed=3)
    for spacing in [(1e3, 1.0), (1.0, 1e3), (1e-3, 1.0), (1e-30, 1e-30), (1e30, 1e30)]:
        assert_matches(gpudist.edt(target.put(mask), spacing, backend=target.backend),
                       scipy_edt(mask, spacing))


def test_squared(target):
    mask = blobs((20, 30), 4, seed=4)
    spacing = (0.7, 1.9)
    out = gpudist.edt(target.put(mask), spacing, squared=True, backend=target.backend)
    np.testing.assert_allclose(to_numpy(out), scipy_edt(mask, spacing) ** 2, rtol=2 * RTOL)


# --- batching, layouts, dtypes ------------------------------------------------------------------

def test_batch_items_are_independent(target):
    # scipy on the stack would treat it as one 3-D volume and mix the items.
    items = [blobs((24, 31), 3, seed=s) for s in range(5)] + [np.ones((24, 31), bool)]
    stack = np.stack(items).reshape(2, 3, 24, 31)
    out = to_numpy(gpudist.edt(target.put(stack), (1.5, 0.5), ndim=2, backend=target.backend))
    for i, item in enumerate(items):
        assert_matches(out.reshape(6, 24, 31)[i], scipy_edt(item, (1.5, 0.5)))
    assert np.isinf(out[1, 2]).all()  # the item without background


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("squared,black_border", [(False, False), (True, False), (False, True)])
def test_single_class_items_among_others(target, ndim, dtype, squared, black_border):
    # The CPU gives items of one class their value without running the passes (all foreground
    # with black_border excepted); here they sit between items that run them, in one batch.
    shape, spacing = (9, 12, 7)[:ndim], (0.7, 1.3, 2.0)[:ndim]
    items = [np.ones(shape, bool), blobs(shape, 3, seed=21), np.zeros(shape, bool),
             blobs(shape, 2, seed=22), np.ones(shape, bool)]
    out = gpudist.edt(target.put(np.stack(items)), spacing, ndim=ndim, squared=squared,
                      black_border=black_border, dtype=dtype, backend=target.backend)
    assert out.dtype == dtype
    reference = scipy_black_border if black_border else scipy_edt
    for item, got in zip(items, out):
        expected = reference(item, spacing)
        assert_matches(got, expected ** 2 if squared else expected)


def test_ndim_all_dims_by_default(target):
    mask = blobs((6, 10, 12), 3, seed=5)
    assert_matches(gpudist.edt(target.put(mask), backend=target.backend),
                   scipy_edt(mask, (1, 1, 1)))


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32,
                                   torch.int64, torch.float16, torch.bfloat16, torch.float32,
                                   torch.float64])
def test_input_dtypes(target, dtype):
    rng = np.random.default_rng(6)
    values = rng.integers(-2, 3, (17, 19)) * (rng.random((17, 19)) < 0.6)
    if dtype in (torch.bool, torch.uint8):
        values = np.abs(values)
    x = target.put(torch.from_numpy(values).to(dtype))
    out = gpudist.edt(x, (1.0, 2.0), backend=target.backend)
    assert out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert_matches(out, scipy_edt(values != 0, (1.0, 2.0)))


def test_nan_is_foreground(target):
    x = target.put(torch.tensor([0.0, float("nan"), 1.0, 0.0]))
    assert gpudist.edt(x, backend=target.backend).tolist() == [0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, "float64", np.float32])
def test_output_dtype_argument(target, dtype):
    mask = blobs((10, 12), 2, seed=7)
    out = gpudist.edt(target.put(mask), dtype=dtype, backend=target.backend)
    assert out.dtype == {torch.float32: torch.float32, torch.float64: torch.float64,
                         "float64": torch.float64, np.float32: torch.float32}[dtype]
    assert_matches(out, scipy_edt(mask, (1, 1)))


def test_non_contiguous_and_channels_last(target):
    base = target.put(blobs((2, 3, 20, 26), 6, seed=8))
    for x in [base.transpose(2, 3), base[:, :, ::2, 1::3], base.to(memory_format=torch.channels_last),
              base.permute(3, 1, 0, 2)]:
        out = gpudist.edt(x, (0.8, 1.3), ndim=2, backend=target.backend)
        assert out.shape == x.shape and out.is_contiguous()
        xs = to_numpy(x)
        for idx in np.ndindex(xs.shape[:2]):
            assert_matches(out[idx], scipy_edt(xs[idx], (0.8, 1.3)))


def test_numpy_in_numpy_out_with_negative_strides(cpu_target):
    mask = blobs((15, 21), 3, seed=9)[::-1, ::-2]
    out = gpudist.edt(mask, backend=cpu_target.backend)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert_matches(out, scipy_edt(np.ascontiguousarray(mask), (1, 1)))


@pytest.mark.parametrize("shape,ndim", [((0, 5, 6), 2), ((3, 0, 4), 2), ((4, 0), 1), ((0,), 1)])
def test_empty_inputs(target, shape, ndim):
    out = gpudist.edt(target.put(torch.ones(shape, dtype=torch.bool)), ndim=ndim,
                      backend=target.backend)
    assert out.shape == shape and out.dtype == torch.float32


def test_thread_count_does_not_change_results():
    mask = torch.from_numpy(blobs((3, 33, 35, 30), 9, seed=10))
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = gpudist.edt(mask, (1.0, 0.5, 2.0), ndim=3)
        torch.set_num_threads(2)
        two = gpudist.edt(mask, (1.0, 0.5, 2.0), ndim=3)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,match", [
    (dict(spacing=(1.0,)), ValueError, "spacing must have one value per spatial axis"),
    (dict(spacing=(1.0, 0.0)), ValueError, "spacing values must be positive and finite"),
    (dict(spacing=(1.0, -2.0)), ValueError, "spacing values must be positive and finite"),
    (dict(spacing=(1.0, float("nan"))), ValueError, "spacing values must be positive"),
    (dict(spacing=(1.0, float("inf"))), ValueError, "spacing values must be positive"),
    (dict(spacing="1,1"), TypeError, "spacing must be a number or a sequence"),
    (dict(spacing=(1.0, "a")), TypeError, "spacing values must be real numbers"),
    (dict(ndim=0), ValueError, "ndim must be between 1 and"),
    (dict(ndim=3), ValueError, "ndim must be between 1 and"),
    (dict(ndim=1.5), TypeError, "ndim must be an int"),
    (dict(dtype=torch.int32), TypeError, "dtype must be float32 or float64"),
    (dict(max_distance=-1.0), ValueError, "max_distance must be >= 0"),
    (dict(max_distance=float("nan")), ValueError, "max_distance must be >= 0"),
    (dict(max_distance="2"), TypeError, "max_distance must be a real number or None"),
    (dict(backend="gpu"), ValueError, "backend must be one of"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        gpudist.edt(torch.ones(4, 5, dtype=torch.bool), **kwargs)


@pytest.mark.parametrize("mask,match", [
    (torch.ones(3, 3, dtype=torch.complex64), "mask must hold bool, integer or floating-point"),
    (np.ones((3, 3), dtype=object), "mask must hold bool, integer or floating-point"),
    ([[1, 0], [0, 1]], "mask must be a torch.Tensor, a numpy.ndarray or a cupy.ndarray"),
])
def test_bad_mask_types(mask, match):
    with pytest.raises(TypeError, match=match):
        gpudist.edt(mask)


def test_zero_dim_mask():
    with pytest.raises(ValueError, match="mask must have at least 1 spatial dim, got a 0-d"):
        gpudist.edt(torch.tensor(1.0))


def test_other_devices_are_refused():
    with pytest.raises(ValueError, match="gpudist runs on CPU and CUDA tensors"):
        gpudist.edt(torch.ones(3, 3, device="meta"))


# --- 64-bit indexing ----------------------------------------------------------------------------

LONG_LINE_BYTES = 12 * 2**30  # the 2 GiB mask, its 8 GiB output and the checks' chunks


@pytest.mark.slow
@pytest.mark.skipif("extension" not in gpudist.available_backends(), reason="needs gpudist._C")
def test_line_longer_than_2_pow_31():
    free = available_memory()
    if free is None or free < LONG_LINE_BYTES:
        pytest.skip(f"needs {LONG_LINE_BYTES / 2**30:.0f} GiB of available memory, this machine "
                    f"has {'an unknown amount' if free is None else f'{free / 2**30:.1f} GiB'}")
    n = 2**31 + 7
    zeros = [3, 2**31 + 2]
    mask = torch.ones(n, dtype=torch.bool)
    mask[zeros] = False
    out = gpudist.edt(mask, 0.5)
    del mask
    values = out.numpy()
    chunk = 2**27
    for start in range(0, n, chunk):
        i = np.arange(start, min(start + chunk, n), dtype=np.float64)
        expected = np.minimum(np.abs(i - zeros[0]), np.abs(i - zeros[1])) * 0.5
        error = np.abs(values[start:start + chunk] - expected)
        assert (error <= RTOL * expected).all(), f"wrong distances in [{start}, {start + chunk})"
    assert values[2**31 + 2] == 0 and values[-1] == 0.5 * (n - 1 - zeros[1])
