"""The op gpudist::distance_at (distances from query elements to the nearest site, by search; the
surface metrics' distances) against scipy, its far-query fallback, bad arguments and its
registration. The tests draw masks `src` as the transform's input (true = foreground) and pass
their sites, ~src."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common import masks, scipy_edt
from gpudist.backends import extension

needs_distance_at = pytest.mark.skipif(
    not extension.has_kernel("gpudist::distance_at", "cpu"),
    reason="the extension is not built")


def _check(src, query, spacing, dtype: torch.dtype, rows=None) -> None:
    """distance_at(~src, query) equals scipy's edt of each item src[b] (spacing, or rows[b] when
    given) read at query[b] in row-major order, padded with +inf; the counts are query's."""
    src, query = torch.as_tensor(src), torch.as_tensor(query)
    dist, count = extension.distance_at(~src, query, spacing, dtype)
    values = [scipy_edt(m.numpy(), spacing if rows is None else rows[b])[q.numpy()]
              for b, (m, q) in enumerate(zip(src, query))]
    width = max((len(v) for v in values), default=0)
    expected = np.full((len(values), width), np.inf)
    for b, v in enumerate(values):
        expected[b, :len(v)] = v
    assert dist.dtype == dtype and count.dtype == torch.int64
    assert count.tolist() == [len(v) for v in values]
    assert dist.shape == expected.shape
    np.testing.assert_allclose(dist.double().numpy(), expected,
                               rtol=1e-6 if dtype == torch.float32 else 1e-12)


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
    _check(items, query, spacing, dtype)


@needs_distance_at
def test_distance_at_surfaces_far_and_near():
    """The metrics' case: sparse sites (a shell) and queries on another shell, some far away;
    thin lines; non-contiguous inputs."""
    grid = np.stack(np.meshgrid(*[np.arange(40)] * 3, indexing="ij"))
    radius = np.sqrt(((grid - 20.0) ** 2).sum(0))
    shell = (radius >= 12) & (radius < 13)
    far = np.zeros_like(shell)
    far[0, 0, :5] = True
    sites = np.stack([shell, far, shell])
    query = np.stack([(radius >= 15) & (radius < 16) | far, shell, np.ones_like(shell)])
    spacing = (1.0, 0.8, 1.5)
    src, q = torch.from_numpy(~sites), torch.from_numpy(query)
    for a, b in ((src, q), (src.transpose(1, 3).contiguous().transpose(1, 3), q.mT.contiguous().mT)):
        _check(a, b, spacing, torch.float64)


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
    _check(src, query, spacing, dtype)


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
    _check(src, query, (1.2, 0.9, 1.0), dtype)


@needs_distance_at
@pytest.mark.parametrize("threads", [1, 2])
def test_distance_at_within_one_item(threads):
    """Fewer items than threads: one item at a time, its queries spread over the threads (also
    the fall back to the full transform when they are far), equal to the reference."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        spacing = (1.2, 0.9, 1.0)
        far = torch.ones(1, 48, 40, 44, dtype=torch.bool)
        far[0, 0, 0, 0] = False
        near = torch.rand((1, 30, 70, 50), generator=torch.Generator().manual_seed(2)) < 0.97
        for src in (far, near):
            query = torch.rand(src.shape, generator=torch.Generator().manual_seed(3)) < 0.5
            _check(src, query, spacing, torch.float64)
    finally:
        torch.set_num_threads(old)


@needs_distance_at
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 40), (3, 17, 23), (4, 9, 8, 11)], ids=str)
def test_distance_at_takes_a_spacing_row_per_item(shape, dtype):
    """B * ndim spacing values: item b searched with row b (rows 1e4 apart: each its own scale),
    in one call; items whose queries are far take the full transform with their own row."""
    rng = np.random.default_rng(len(shape))
    b, nd = shape[0], len(shape) - 1
    src = torch.from_numpy(rng.random(shape) < 0.9)
    src[-1] = True
    src[-1].view(-1)[0] = False  # one far site: that item falls back to the full transform
    query = torch.from_numpy(rng.random(shape) < 0.5)
    rows = [tuple(rng.uniform(0.2, 3.0, nd)) for _ in range(b)]
    rows[1] = tuple(1e4 * s for s in rows[1])
    _check(src, query, [s for row in rows for s in row], dtype, rows)


@needs_distance_at
def test_distance_at_rejects_bad_arguments():
    at = extension.distance_at
    m = torch.ones(2, 5, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="sites and query must be bool masks"):
        at(m.byte(), m, (1.0, 1.0), torch.float32)
    with pytest.raises(ValueError, match="query must have the shape and device of sites"):
        at(m, m[:, :4], (1.0, 1.0), torch.float32)
    with pytest.raises(ValueError, match="spacing must be positive and finite"):
        at(m, m, (1.0, -1.0), torch.float32)
    with pytest.raises(ValueError, match="spacing must be positive and finite, in row 1"):
        at(m, m, (1.0, 1.0, 1.0, 0.0), torch.float32)
    with pytest.raises(ValueError, match="sites must be .* with 1 spatial dims, got 3 dims"):
        at(m, m, (1.0,), torch.float32)


@needs_distance_at
@pytest.mark.parametrize("shape", [(0, 5, 5), (2, 0, 5), (3, 4, 0)], ids=str)
def test_distance_at_size_zero(shape):
    """No item, or items without elements: (B, 0) distances and zero counts."""
    m = torch.ones(shape, dtype=torch.bool)
    dist, count = extension.distance_at(m, m, (1.0, 1.0), torch.float32)
    assert dist.shape == (shape[0], 0) and dist.dtype == torch.float32
    assert count.tolist() == [0] * shape[0]


@needs_distance_at
def test_distance_at_opcheck():
    g = torch.Generator().manual_seed(0)
    sites = torch.rand(2, 6, 7, generator=g) < 0.2
    query = torch.rand(2, 6, 7, generator=g) < 0.4
    torch.library.opcheck(torch.ops.gpudist.distance_at.default,
                          (sites, query, [1.0, 2.0], torch.float32),
                          test_utils=("test_schema", "test_faketensor"))
