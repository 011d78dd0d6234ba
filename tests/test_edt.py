"""gpudist.edt against independent references: brute force on tiny inputs, scipy in float64 on
random and nasty inputs, in 1-D to 4-D, with anisotropic spacing, on every CPU backend."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gpudist
from reference import brute_force_edt, scipy_edt

RTOL = 1e-6  # float32 rounding of scipy's float64 result


def assert_matches(out, expected, rtol=RTOL):
    out = out.numpy() if isinstance(out, torch.Tensor) else out
    np.testing.assert_array_equal(np.isinf(out), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(out[finite], expected[finite], rtol=rtol, atol=0)


@st.composite
def masks(draw, max_dims=4, max_side=9):
    nd = draw(st.integers(1, max_dims))
    shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=nd, max_size=nd)))
    density = draw(st.sampled_from([0.02, 0.3, 0.7, 0.98]))
    seed = draw(st.integers(0, 2**32 - 1))
    mask = np.random.default_rng(seed).random(shape) < density
    spacing = tuple(draw(st.lists(st.floats(0.05, 20.0), min_size=nd, max_size=nd)))
    return mask, spacing


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
def test_float32_equals_scipy_float64(backend, data):
    mask, spacing = data
    out = gpudist.edt(torch.from_numpy(mask), spacing, backend=backend)
    assert out.dtype == torch.float32
    assert_matches(out, scipy_edt(mask, spacing))


def blobs(shape, count, seed):
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    mask = np.zeros(shape, bool)
    for _ in range(count):
        centre = [rng.uniform(0, s) for s in shape]
        radius = rng.uniform(1, max(2, max(shape) / 4))
        mask |= sum((g - c) ** 2 for g, c in zip(grid, centre)) < radius ** 2
    return mask


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.5, 1.0, 0.7), (1e3, 1.0, 1e-3)])
def test_volume_with_anisotropic_spacing(backend, spacing):
    # REFERENCE.md section 6: float32 parabola intersections fail here; double ones do not.
    mask = ~blobs((40, 56, 48), 12, seed=1)
    assert_matches(gpudist.edt(mask, spacing, backend=backend), scipy_edt(mask, spacing))


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
def test_nasty_cases(backend, name, shape):
    mask = NASTY[name](shape)
    for spacing in [(1.0,) * len(shape), tuple(np.linspace(0.3, 3.0, len(shape)))]:
        assert_matches(gpudist.edt(mask, spacing, backend=backend), scipy_edt(mask, spacing))
        assert_matches(gpudist.edt(mask, spacing, black_border=True, backend=backend),
                       brute_force_edt(mask, spacing, True) if mask.size < 600
                       else _scipy_black_border(mask, spacing))


@st.composite
def wide_masks(draw):
    """3-D masks whose last two axes are long enough for the CPU's windowed envelope (chunks of
    16 elements, tiles of 16 lines), with spacings that put the distances along them on both
    sides of its reach (32 elements): some lines and lanes take the window, others fall back."""
    shape = (draw(st.integers(1, 6)), draw(st.integers(16, 40)), draw(st.integers(16, 70)))
    density = draw(st.sampled_from([0.05, 0.5, 0.9, 0.995]))
    mask = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random(shape) < density
    spacing = (draw(st.floats(0.5, 3.0)),) + tuple(
        draw(st.sampled_from([1.0, 0.3, 0.06, 0.031, 0.03, 0.015, 7.0])) for _ in range(2))
    return mask, spacing


@settings(max_examples=60, deadline=None)
@given(data=wide_masks(), black_border=st.booleans())
def test_windowed_envelope_equals_scipy(backend, data, black_border):
    mask, spacing = data
    out = gpudist.edt(torch.from_numpy(mask), spacing, black_border=black_border, backend=backend)
    assert_matches(out, _scipy_black_border(mask, spacing) if black_border
                   else scipy_edt(mask, spacing))


@pytest.mark.parametrize("black_border", [False, True])
def test_window_reach_boundary(backend, black_border):
    """Rows 1.. of an image share their background columns and row 0 is background, so element
    (r, x) ends at min(r^2, (x - nearest background column)^2): with runs of 63 to 66 foreground
    columns the windowed envelope needs offsets just below, at and just above its reach (32), or
    hands the row over."""
    mask = np.ones((4, 40, 96), bool)
    mask[:, 0] = False
    for image, (a, b) in zip(mask, [(0, 64), (0, 65), (3, 70), (10, 73)]):
        image[:, [a, b]] = False
    for spacing in [(1.0, 1.0), (1.0, 0.5), (2.0, 1.0), (1.0, 1.03)]:
        expected = np.stack([_scipy_black_border(m, spacing) if black_border
                             else scipy_edt(m, spacing) for m in mask])
        assert_matches(gpudist.edt(mask, spacing, ndim=2, black_border=black_border,
                                   backend=backend), expected)


@settings(max_examples=60, deadline=None)
@given(data=st.one_of(masks(max_side=24), wide_masks()), black_border=st.booleans(),
       squared=st.booleans(), q=st.floats(0.0, 1.0))
def test_max_distance_is_exact_up_to_it_and_inf_beyond(backend, data, black_border, squared, q):
    mask, spacing = data
    ref = _scipy_black_border(mask, spacing) if black_border else scipy_edt(mask, spacing)
    values = ref[np.isfinite(ref) & (ref > 0)]
    # A bound among the distances present, so that some fall on each side of it.
    max_distance = float(np.quantile(values, q)) if values.size else 10.0 * q
    out = gpudist.edt(torch.from_numpy(mask), spacing, black_border=black_border,
                      squared=squared, max_distance=max_distance, backend=backend).numpy()
    if squared:
        out = np.sqrt(out)
    near = np.isclose(ref, max_distance, rtol=1e-6, atol=0)  # either side of the rounding
    expected = np.where(ref > max_distance, np.inf, ref)
    assert_matches(np.where(near, ref, out), np.where(near, ref, expected))
    assert np.all((out[near] == np.inf) | np.isclose(out[near], ref[near], rtol=1e-6))


def test_huge_max_distance_equals_no_bound(backend):
    """A bound far beyond the image must not make the windowed envelope try offsets past it."""
    mask = np.ones((2, 60, 300), bool)
    mask[0, 30, 150] = False  # item 1 has no background: all +inf
    out = gpudist.edt(mask, (1.0, 0.5), ndim=2, max_distance=1e30, backend=backend)
    assert_matches(out, np.stack([scipy_edt(m, (1.0, 0.5)) for m in mask]))


def _scipy_black_border(mask, spacing):
    padded = np.pad(mask, 1)
    return scipy_edt(padded, spacing)[tuple(slice(1, -1) for _ in mask.shape)]


def test_extreme_spacing_ratio(backend):
    mask = blobs((30, 40), 5, seed=3)
    for spacing in [(1e3, 1.0), (1.0, 1e3), (1e-3, 1.0), (1e-30, 1e-30), (1e30, 1e30)]:
        assert_matches(gpudist.edt(mask, spacing, backend=backend), scipy_edt(mask, spacing))


def test_squared(backend):
    mask = blobs((20, 30), 4, seed=4)
    spacing = (0.7, 1.9)
    out = gpudist.edt(mask, spacing, squared=True, backend=backend)
    np.testing.assert_allclose(out, scipy_edt(mask, spacing) ** 2, rtol=2 * RTOL)


# --- batching, layouts, dtypes ------------------------------------------------------------------

def test_batch_items_are_independent(backend):
    # scipy on the stack would treat it as one 3-D volume and mix the items.
    items = [blobs((24, 31), 3, seed=s) for s in range(5)] + [np.ones((24, 31), bool)]
    stack = np.stack(items).reshape(2, 3, 24, 31)
    out = gpudist.edt(stack, (1.5, 0.5), ndim=2, backend=backend)
    for i, item in enumerate(items):
        assert_matches(out.reshape(6, 24, 31)[i], scipy_edt(item, (1.5, 0.5)))
    assert np.isinf(out[1, 2]).all()  # the item without background


def test_ndim_all_dims_by_default(backend):
    mask = blobs((6, 10, 12), 3, seed=5)
    assert_matches(gpudist.edt(mask, backend=backend), scipy_edt(mask, (1, 1, 1)))


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32,
                                   torch.int64, torch.float16, torch.bfloat16, torch.float32,
                                   torch.float64])
def test_input_dtypes(backend, dtype):
    rng = np.random.default_rng(6)
    values = rng.integers(-2, 3, (17, 19)) * (rng.random((17, 19)) < 0.6)
    if dtype in (torch.bool, torch.uint8):
        values = np.abs(values)
    x = torch.from_numpy(values).to(dtype)
    out = gpudist.edt(x, (1.0, 2.0), backend=backend)
    assert out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert_matches(out, scipy_edt(values != 0, (1.0, 2.0)))


def test_nan_is_foreground(backend):
    x = torch.tensor([0.0, float("nan"), 1.0, 0.0])
    assert gpudist.edt(x, backend=backend).tolist() == [0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, "float64", np.float32])
def test_output_dtype_argument(backend, dtype):
    mask = blobs((10, 12), 2, seed=7)
    out = gpudist.edt(torch.from_numpy(mask), dtype=dtype, backend=backend)
    assert out.dtype == {torch.float32: torch.float32, torch.float64: torch.float64,
                         "float64": torch.float64, np.float32: torch.float32}[dtype]
    assert_matches(out, scipy_edt(mask, (1, 1)))


def test_non_contiguous_and_channels_last(backend):
    base = torch.from_numpy(blobs((2, 3, 20, 26), 6, seed=8))
    for x in [base.transpose(2, 3), base[:, :, ::2, 1::3], base.to(memory_format=torch.channels_last),
              base.permute(3, 1, 0, 2)]:
        out = gpudist.edt(x, (0.8, 1.3), ndim=2, backend=backend)
        assert out.shape == x.shape and out.is_contiguous()
        xs = x.numpy()
        for idx in np.ndindex(xs.shape[:2]):
            assert_matches(out[idx], scipy_edt(xs[idx], (0.8, 1.3)))


def test_numpy_in_numpy_out_with_negative_strides(backend):
    mask = blobs((15, 21), 3, seed=9)[::-1, ::-2]
    out = gpudist.edt(mask, backend=backend)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert_matches(out, scipy_edt(np.ascontiguousarray(mask), (1, 1)))


@pytest.mark.parametrize("shape,ndim", [((0, 5, 6), 2), ((3, 0, 4), 2), ((4, 0), 1), ((0,), 1)])
def test_empty_inputs(backend, shape, ndim):
    out = gpudist.edt(torch.ones(shape, dtype=torch.bool), ndim=ndim, backend=backend)
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
    with pytest.raises(ValueError, match="ndim must be between 1 and mask.dim"):
        gpudist.edt(torch.tensor(1.0))


def test_other_devices_are_refused():
    with pytest.raises(ValueError, match="gpudist runs on CPU and CUDA tensors"):
        gpudist.edt(torch.ones(3, 3, device="meta"))


# --- 64-bit indexing ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif("extension" not in gpudist.available_backends(), reason="needs gpudist._C")
def test_line_longer_than_2_pow_31():
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


# --- distance_at: the edt read at query elements, by search (surface metrics) -----------------

needs_distance_at = pytest.mark.skipif(
    not gpudist._extension.has_kernel("gpudist::distance_at", "cpu"),
    reason="the extension is not built")


def _distance_at_reference(mask: np.ndarray, query: np.ndarray, spacing) -> np.ndarray:
    """scipy per item, read at the queries in row-major order."""
    return np.concatenate([scipy_edt(m, spacing)[q] for m, q in zip(mask, query)])


@needs_distance_at
@settings(max_examples=60, deadline=None)
@given(data=masks(max_dims=4, max_side=12), batch=st.integers(1, 3),
       query_density=st.sampled_from([0.0, 0.05, 0.5, 1.0]), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_distance_at_equals_scipy(data, batch, query_density, seed, dtype):
    """Random items (one of them without background when drawn so), queries anywhere, float32
    and float64, every dimension count, spacing ratios up to 400."""
    mask, spacing = data
    rng = np.random.default_rng(seed)
    items = np.stack([mask] + [rng.permutation(mask.ravel()).reshape(mask.shape)
                               for _ in range(batch - 1)])
    if batch > 1 and rng.random() < 0.3:
        items[-1] = True
    query = rng.random(items.shape) < query_density
    got = gpudist._extension.distance_at(torch.from_numpy(items), torch.from_numpy(query),
                                         spacing, dtype)
    expected = _distance_at_reference(items, query, spacing)
    assert got.dtype == dtype and got.shape == expected.shape
    np.testing.assert_allclose(got.double().numpy(), expected,
                               rtol=1e-6 if dtype == torch.float32 else 1e-12)


@needs_distance_at
def test_distance_at_surfaces_far_and_near():
    """The metrics' case: sparse sites (a shell) and queries on another shell, some far away;
    thin lines; non-contiguous inputs."""
    grid = np.stack(np.meshgrid(*[np.arange(40)] * 3, indexing="ij"))
    radius = np.sqrt(((grid - 20.0) ** 2).sum(0))
    shell = (radius >= 12) & (radius < 13)
    far = np.zeros_like(shell)
    far[0, 0, :5] = True
    sites = np.stack([~shell, ~far, ~shell])
    query = np.stack([(radius >= 15) & (radius < 16) | far, shell, np.ones_like(shell)])
    spacing = (1.0, 0.8, 1.5)
    expected = _distance_at_reference(sites, query, spacing)
    src, q = torch.from_numpy(sites), torch.from_numpy(query)
    for a, b in ((src, q), (src.transpose(1, 3).contiguous().transpose(1, 3), q.mT.contiguous().mT)):
        got = gpudist._extension.distance_at(a, b, spacing, torch.float64)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


@needs_distance_at
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,spacing", [((3, 300), (0.1234567,)), ((2, 1, 70), (3.3, 0.0123)),
                                           ((1, 5000, 2), (0.7, 1.1))])
def test_distance_at_line_lengths_and_precision(shape, spacing, dtype):
    """1-D (the first pass is the whole transform), a size-1 axis, and an axis 0 too long for
    float counts (5000^2 > 2^24): float64 results stay exact to float64."""
    g = torch.Generator().manual_seed(len(shape))
    src = torch.rand(shape, generator=g) < 0.995
    query = torch.rand(shape, generator=g) < 0.5
    got = gpudist._extension.distance_at(src, query, spacing, dtype)
    expected = _distance_at_reference(src.numpy(), query.numpy(), spacing)
    np.testing.assert_allclose(got.double().numpy(), expected,
                               rtol=1e-6 if dtype == torch.float32 else 1e-12)


@needs_distance_at
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_distance_at_far_queries_take_the_full_transform(dtype):
    """Every element queried, the only background elements in a corner: the searches would read
    about d^2 values each, so the item is redone with the full transform (same results); the
    other item stays on the search path."""
    src = torch.ones(2, 48, 40, 44, dtype=torch.bool)
    src[0, 0, 0, 0] = src[0, 0, 1, 0] = False
    src[1, ::3, ::3, ::3] = False
    query = torch.ones_like(src)
    spacing = (1.2, 0.9, 1.0)
    got = gpudist._extension.distance_at(src, query, spacing, dtype)
    expected = _distance_at_reference(src.numpy(), query.numpy(), spacing)
    np.testing.assert_allclose(got.double().numpy(), expected,
                               rtol=1e-6 if dtype == torch.float32 else 1e-12)


@needs_distance_at
def test_distance_at_rejects_bad_arguments():
    at = gpudist._extension.distance_at
    m = torch.ones(2, 5, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="src and query must be bool masks"):
        at(m.byte(), m, (1.0, 1.0), torch.float32)
    with pytest.raises(ValueError, match="query must have the shape and device of src"):
        at(m, m[:, :4], (1.0, 1.0), torch.float32)
    with pytest.raises(ValueError, match="spacing must be positive and finite"):
        at(m, m, (1.0, -1.0), torch.float32)
    with pytest.raises(ValueError, match="with 1 spatial dims, got 3 dims"):
        at(m, m, (1.0,), torch.float32)
    assert at(m[:0], m[:0], (1.0, 1.0), torch.float32).shape == (0,)


@needs_distance_at
def test_distance_at_opcheck():
    g = torch.Generator().manual_seed(0)
    src = torch.rand(2, 6, 7, generator=g) < 0.8
    query = torch.rand(2, 6, 7, generator=g) < 0.4
    torch.library.opcheck(torch.ops.gpudist.distance_at.default,
                          (src, query, [1.0, 2.0], torch.float32),
                          test_utils=("test_schema", "test_faketensor"))
