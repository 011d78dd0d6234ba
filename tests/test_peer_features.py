"""What users bring from scipy, edt and Kervadec's reference code (issue 14): scipy's `sampling`
name, per-item spacing in the transforms and losses, the batch-dim message of one_hot_to_dist;
each against scipy (or the peer) on every (backend, device) target."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gpudist
from scipy import ndimage
from common import (
    assert_close_map,
    assert_matches,
    brute_force_metric,
    kervadec_phi,
    multilabel_reference,
    one_hot,
    scipy_edt,
)

# --- scipy's `sampling` -------------------------------------------------------------------------


def test_sampling_is_scipy_alias_of_spacing(target):
    mask = np.random.default_rng(0).random((7, 9)) < 0.6
    expected = scipy_edt(mask, (0.5, 2.0))
    assert_matches(gpudist.edt(target.put(mask), sampling=(0.5, 2.0), backend=target.backend),
                   expected)
    sd = gpudist.signed_distance(target.put(mask), sampling=(0.5, 2.0), backend=target.backend)
    assert_close_map(sd, kervadec_phi(mask, (0.5, 2.0)))
    oh = one_hot(mask[None].astype(np.int64), 2)
    maps = gpudist.one_hot_to_dist(target.put(oh), sampling=(0.5, 2.0), backend=target.backend)
    assert_close_map(maps[0, 1], kervadec_phi(mask, (0.5, 2.0)))
    labels = gpudist.labels_to_dist(target.put(mask[None].astype(np.int64)), 2,
                                    sampling=(0.5, 2.0), backend=target.backend)
    assert_close_map(labels, maps.cpu().numpy())


@pytest.mark.parametrize("call", [
    lambda: gpudist.edt(torch.ones(3, 3), (1.0, 1.0), sampling=(1.0, 1.0)),
    lambda: gpudist.signed_distance(torch.ones(3, 3), 1.0, sampling=1.0),
    lambda: gpudist.one_hot_to_dist(torch.ones(1, 1, 3), 1.0, sampling=1.0),
    lambda: gpudist.labels_to_dist(torch.zeros(1, 3, dtype=torch.int64), 2, 1.0, sampling=1.0),
])
def test_spacing_and_sampling_together_is_an_error(call):
    with pytest.raises(TypeError, match="spacing or its alias sampling"):
        call()


# --- one_hot_to_dist on a single (C, *spatial) sample -------------------------------------------


def test_single_sample_without_batch_dim_says_add_a_batch_dim():
    sample = torch.from_numpy(one_hot(np.array([[0, 1, 1], [0, 0, 1]])[None], 2)[0])  # (2, 2, 3)
    with pytest.raises(ValueError, match=r"expected \(B, C, \*spatial\), got shape \(2, 2, 3\) "
                                         r"\(add a batch dim"):
        gpudist.one_hot_to_dist(sample)
    for kwargs in ({"ndim": 2}, {"spacing": (1.0, 2.0)}):  # validate=False: the shape guards
        with pytest.raises(ValueError, match=r"\(add a batch dim"):
            gpudist.one_hot_to_dist(sample, validate=False, **kwargs)
    with pytest.raises(ValueError, match=r"\(add a batch dim"):
        gpudist.labels_to_dist(torch.zeros(4, 5, dtype=torch.int64), 2, (1.0, 1.0))
    out = gpudist.one_hot_to_dist(sample[None], ndim=2)
    assert out.shape == (1, 2, 2, 3)


# --- per-item spacing ---------------------------------------------------------------------------


@st.composite
def batches(draw):
    """A batch of B random masks of 1-3 dims and one spacing per item (some equal)."""
    nd = draw(st.integers(1, 3))
    b = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 8), min_size=nd, max_size=nd)))
    seed = draw(st.integers(0, 2**32 - 1))
    mask = np.random.default_rng(seed).random((b,) + shape) < draw(st.sampled_from([0.2, 0.7]))
    pool = [tuple(draw(st.lists(st.floats(0.1, 10.0), min_size=nd, max_size=nd)))
            for _ in range(2)]
    rows = [pool[draw(st.integers(0, 1))] for _ in range(b)]
    return mask, rows


@settings(max_examples=40, deadline=None)
@given(data=batches(), form=st.sampled_from(["tuples", "tensor", "array"]))
def test_per_item_spacing_equals_scipy_per_item(target, data, form):
    mask, rows = data
    spacing = {"tuples": rows, "tensor": torch.tensor(rows), "array": np.array(rows)}[form]
    x = target.put(mask)
    out = gpudist.edt(x, spacing, ndim=mask.ndim - 1, backend=target.backend)
    sd = gpudist.signed_distance(x, spacing, ndim=mask.ndim - 1, backend=target.backend)
    labels = mask.astype(np.int64)
    oh = gpudist.one_hot_to_dist(target.put(one_hot(labels, 2)), spacing, backend=target.backend)
    lab = gpudist.labels_to_dist(target.put(labels), 2, spacing, backend=target.backend)
    for i, row in enumerate(rows):
        assert_matches(out[i], scipy_edt(mask[i], row))
        assert_close_map(sd[i], kervadec_phi(mask[i], row))
        assert_close_map(oh[i, 1], kervadec_phi(mask[i], row))
        assert_close_map(oh[i, 0], kervadec_phi(~mask[i], row))
    assert_close_map(lab, oh.cpu().numpy())


def test_per_item_spacing_over_several_batch_dims(target):
    mask = np.random.default_rng(1).random((2, 3, 6, 5)) < 0.5
    rows = np.random.default_rng(2).uniform(0.2, 3.0, (2, 3, 2))
    out = gpudist.edt(target.put(mask), rows, ndim=2, backend=target.backend)
    flat = gpudist.edt(target.put(mask), rows.reshape(6, 2), ndim=2, backend=target.backend)
    for i in np.ndindex(2, 3):
        assert_matches(out[i], scipy_edt(mask[i], tuple(rows[i])))
    assert torch.equal(out, flat)


def test_per_item_spacing_is_one_backend_call(monkeypatch):
    """A (B, ndim) spacing of distinct rows reaches the backend once, as B * ndim values, for
    masks and for label maps (whose classes share their item's row)."""
    from gpudist import distance

    calls = []
    resolve = distance.resolve

    def counting(backend, device):
        fn = resolve(backend, device)
        return lambda src, c, spacing, *rest: calls.append(len(spacing)) or fn(src, c, spacing,
                                                                                *rest)

    monkeypatch.setattr(distance, "resolve", counting)
    rng = np.random.default_rng(4)
    mask = rng.random((3, 7, 6)) < 0.5
    rows = rng.uniform(0.2, 3.0, (3, 2))
    out = gpudist.edt(mask, rows, ndim=2)
    labels = gpudist.labels_to_dist(mask.astype(np.int64), 2, rows)
    oh = gpudist.one_hot_to_dist(one_hot(mask.astype(np.int64), 2), rows)
    assert calls == [6, 6, 12]  # the one-hot's B * C items each get their item's row
    for i, row in enumerate(rows):
        assert_matches(out[i], scipy_edt(mask[i], tuple(row)))
        assert_close_map(labels[i, 1], kervadec_phi(mask[i], tuple(row)))
    assert_close_map(oh, labels)


@pytest.mark.parametrize("variant", [dict(metric="taxicab"), dict(multilabel=True),
                                     dict(return_indices=True)], ids=str)
def test_per_item_spacing_is_one_variant_call(monkeypatch, variant):
    """edt's variants take a (B, ndim) spacing of distinct rows in one backend call too, as
    B * ndim values, each item with its row."""
    from gpudist import distance

    calls = []
    resolve_variant = distance.resolve_variant

    def counting(op, backend, device):
        fn = resolve_variant(op, backend, device)
        return lambda src, spacing, *rest: calls.append(len(spacing)) or fn(src, spacing, *rest)

    monkeypatch.setattr(distance, "resolve_variant", counting)
    rng = np.random.default_rng(5)
    mask = rng.random((3, 7, 6)) < 0.6
    rows = rng.uniform(0.2, 3.0, (3, 2))
    out = gpudist.edt(mask, rows, ndim=2, dtype=torch.float64, **variant)
    assert calls == [6]
    for i, row in enumerate(rows):
        one = gpudist.edt(mask[i], tuple(row), dtype=torch.float64, **variant)
        if isinstance(out, tuple):
            for a, b in zip(out, one):
                np.testing.assert_array_equal(a[i], b)
        else:
            np.testing.assert_array_equal(out[i], one)


def test_per_item_spacing_bad_shapes():
    mask = torch.ones(2, 4, 4)
    with pytest.raises(ValueError, match="B = 2 rows, got 3"):
        gpudist.edt(mask, [(1.0, 1.0)] * 3, ndim=2)
    with pytest.raises(ValueError, match="one value per spatial axis"):
        gpudist.edt(mask, torch.ones(2, 3), ndim=2)
    with pytest.raises(ValueError, match="positive and finite"):
        gpudist.edt(mask, [(1.0, 1.0), (1.0, -1.0)], ndim=2)


@pytest.mark.parametrize("loss", ["boundary", "hausdorff", "hausdorff_one_sided", "log_hausdorff"])
def test_losses_take_per_item_spacing(loss):
    from gpudist import losses

    rng = np.random.default_rng(3)
    pred = torch.from_numpy(rng.standard_normal((3, 2, 9, 7)))
    target = torch.from_numpy(rng.integers(0, 2, (3, 9, 7)))
    rows = [(1.0, 2.0), (0.5, 0.5), (1.0, 2.0)]
    make = {
        "boundary": lambda sp: losses.BoundaryLoss(softmax=True, spacing=sp, reduction="none"),
        "hausdorff": lambda sp: losses.HausdorffDTLoss(softmax=True, spacing=sp,
                                                       reduction="none"),
        "hausdorff_one_sided": lambda sp: losses.HausdorffDTLoss(
            softmax=True, spacing=sp, reduction="none", variant="one_sided"),
        "log_hausdorff": lambda sp: losses.LogHausdorffDTLoss(softmax=True, spacing=sp,
                                                              reduction="none"),
    }[loss]
    batched = make(rows)(pred, target)
    for i, row in enumerate(rows):
        single = make(row)(pred[i:i + 1], target[i:i + 1])
        torch.testing.assert_close(batched[i:i + 1], single, rtol=1e-6, atol=0)
    torch.testing.assert_close(make(torch.tensor(rows))(pred, target), batched)


# --- multi-label EDT (seung-lab edt's default for integer labels) -------------------------------


@st.composite
def label_maps(draw, max_dims=3, max_side=12):
    """Random label maps of 1 to 3 dims (few labels, in runs and speckle) and a spacing."""
    nd = draw(st.integers(1, max_dims))
    shape = tuple(draw(st.lists(st.integers(1, max_side), min_size=nd, max_size=nd)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = rng.integers(0, draw(st.integers(1, 5)), shape)
    if draw(st.booleans()):  # blocks of 3 of one label, as in a segmentation
        labels = labels[np.ix_(*[np.arange(s) // 3 for s in shape])]
    spacing = tuple(draw(st.lists(st.floats(0.1, 10.0), min_size=nd, max_size=nd)))
    return labels, spacing


@settings(max_examples=60, deadline=None)
@given(data=label_maps(), black_border=st.booleans())
def test_multilabel_equals_scipy_per_label(target, data, black_border):
    labels, spacing = data
    expected = multilabel_reference(labels, spacing, black_border)
    out = gpudist.edt(target.put(labels), spacing, multilabel=True, black_border=black_border,
                      backend=target.backend)
    assert_matches(out, expected)
    sq = gpudist.edt(target.put(labels), spacing, multilabel=True, black_border=black_border,
                     squared=True, dtype=torch.float64, backend=target.backend)
    assert_matches(sq, expected ** 2, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(data=label_maps(), black_border=st.booleans())
def test_multilabel_equals_edt_package(data, black_border):
    edt = pytest.importorskip("edt")
    labels, spacing = data
    expected = edt.edt(np.ascontiguousarray(labels.astype(np.uint32)),
                       anisotropy=spacing[0] if len(spacing) == 1 else spacing,  # 1-D: a number
                       black_border=black_border)
    for backend in gpudist.available_backends():
        out = gpudist.edt(labels, spacing, multilabel=True, black_border=black_border,
                          backend=backend)
        assert_matches(out, expected.astype(np.float64), rtol=1e-5)  # edt computes in float32


inf = np.inf
# seung-lab edt's own cases (automated_test.py: test_one_d, test_one_d_black_border, test_two_d):
# labels, squared distances, black_border, anisotropy.
EDT_CASES = [
    ([1], [inf], False, 1.0),
    ([1], [1], True, 1.0),
    ([5], [1], True, 1.0),
    ([0, 1, 1, 1, 0], [0, 1, 4, 1, 0], False, 1.0),
    ([0, 1, 1, 1, 1], [0, 1, 4, 9, 16], False, 1.0),
    ([1, 1, 1, 1, 0], [16, 9, 4, 1, 0], False, 1.0),
    ([1, 1, 1, 1], [inf] * 4, False, 2.0),
    ([1, 1, 1, 1], [4, 16, 16, 4], True, 2.0),
    ([1, 1, 1, 1, 1, 0, 2, 2, 2, 2, 2, 1, 1, 1, 1, 3],
     [25, 16, 9, 4, 1, 0, 1, 4, 9, 4, 1, 1, 4, 4, 1, 1], False, 1.0),
    ([1, 1, 1, 1, 1, 0, 2, 2, 2, 2, 2, 1, 1, 1, 1, 3],
     [1, 4, 9, 4, 1, 0, 1, 4, 9, 4, 1, 1, 4, 4, 1, 1], True, 1.0),
    ([[1, 0], [0, 1]], [[1, 0], [0, 1]], False, (1.0, 1.0)),
    ([[1, 1], [1, 1]], [[inf, inf], [inf, inf]], False, (1.0, 1.0)),
    ([[1] * 5] * 5, [[25] * 5, [36, 100, 100, 100, 36], [36, 144, 225, 144, 36],
                     [36, 100, 100, 100, 36], [25] * 5], True, (5.0, 6.0)),
    ([[1] * 5, [1] * 5, [1, 1, 2, 1, 1], [1] * 5, [1] * 5],
     [[1] * 5, [1, 2, 1, 2, 1], [1] * 5, [1, 2, 1, 2, 1], [1] * 5], True, (1.0, 1.0)),
    ([[1] * 6] * 3 + [[2] * 6] * 3,
     [[1] * 6, [1, 4, 4, 4, 4, 1], [1] * 6, [1] * 6, [1, 4, 4, 4, 4, 1], [1] * 6], True,
     (1.0, 1.0)),
    ([[0] * 7, [1] * 7, [1] * 7, [2] * 7, [2] * 7, [2] * 5 + [3, 2], [2] * 7],
     [[0] * 7, [1] * 7, [1] * 7, [1] * 7, [1, 4, 4, 4, 2, 1, 1], [1, 4, 4, 4, 1, 1, 1],
      [1] * 7], True, (1.0, 1.0)),
]


@pytest.mark.parametrize("labels, expected, black_border, anisotropy", EDT_CASES)
def test_multilabel_edt_package_cases(target, labels, expected, black_border, anisotropy):
    out = gpudist.edt(target.put(np.array(labels)), anisotropy, multilabel=True, squared=True,
                      black_border=black_border, backend=target.backend)
    assert_matches(out, np.array(expected, dtype=np.float64))


def test_multilabel_batch_and_dtypes(target):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, (3, 6, 7))
    expected = np.stack([multilabel_reference(item, (1.0, 2.0), False) for item in labels])
    for dtype in (np.uint8, np.int16, np.int32, np.int64, np.uint32):
        out = gpudist.edt(target.put(labels.astype(dtype)), (1.0, 2.0), ndim=2, multilabel=True,
                          backend=target.backend)
        assert_matches(out, expected)
    bool_map = gpudist.edt(target.put(labels > 0), ndim=2, multilabel=True,
                           backend=target.backend)
    assert_matches(bool_map, np.stack([scipy_edt(m, (1.0, 1.0)) for m in labels > 0]))
    rows = [(1.0, 2.0), (0.5, 1.0), (1.0, 2.0)]
    per_item = gpudist.edt(target.put(labels), rows, ndim=2, multilabel=True,
                           backend=target.backend)
    for i, row in enumerate(rows):
        assert_matches(per_item[i], multilabel_reference(labels[i], row, False))
    with pytest.raises(TypeError, match="integer labels"):
        gpudist.edt(torch.ones(3, 3), multilabel=True)


# --- taxicab and chessboard (scipy's distance_transform_cdt) ------------------------------------


@settings(max_examples=60, deadline=None)
@given(data=label_maps(max_side=9), metric=st.sampled_from(["taxicab", "chessboard"]),
       black_border=st.booleans())
def test_metric_equals_brute_force(target, data, metric, black_border):
    labels, spacing = data
    mask = labels != 0
    out = gpudist.edt(target.put(mask), spacing, metric=metric, black_border=black_border,
                      dtype=torch.float64, backend=target.backend)
    assert_matches(out, brute_force_metric(mask, spacing, metric, black_border), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(data=label_maps(max_side=20), metric=st.sampled_from(["taxicab", "chessboard"]),
       scale=st.sampled_from([1.0, 0.5, 3.0]))
def test_metric_equals_scipy_cdt(data, metric, scale):
    labels, _ = data
    mask = labels != 0
    if mask.all():
        return  # scipy's cdt has no background to measure to (it returns -1)
    expected = ndimage.distance_transform_cdt(mask, metric=metric) * scale
    for backend in gpudist.available_backends():
        out = gpudist.edt(mask, scale, metric=metric, backend=backend)
        assert_matches(out, expected.astype(np.float64))


# scipy's own case (scipy/ndimage/tests/test_morphology.py, test_distance_transform_cdt*): its
# 9 x 9 data, compared with scipy's result.
CDT_DATA = np.array([[0, 0, 0, 0, 0, 0, 0, 0, 0],
                     [0, 0, 1, 1, 1, 1, 1, 0, 0],
                     [0, 0, 1, 1, 1, 1, 1, 0, 0],
                     [0, 0, 1, 1, 1, 1, 1, 0, 0],
                     [0, 0, 1, 1, 1, 1, 1, 0, 0],
                     [0, 0, 0, 1, 1, 1, 0, 0, 0],
                     [0, 0, 0, 0, 1, 0, 0, 0, 0],
                     [0, 0, 0, 0, 0, 0, 0, 0, 0],
                     [0, 0, 0, 0, 0, 0, 0, 0, 0]], bool)


@pytest.mark.parametrize("metric", ["taxicab", "chessboard"])
def test_metric_scipy_cdt_case(target, metric):
    out = gpudist.edt(target.put(CDT_DATA), metric=metric, backend=target.backend)
    assert_matches(out, ndimage.distance_transform_cdt(CDT_DATA, metric=metric).astype(float))


def test_metric_bad_arguments():
    with pytest.raises(ValueError, match="metric must be one of"):
        gpudist.edt(torch.ones(3), metric="cityblock")
    with pytest.raises(ValueError, match="squared=True is for metric='euclidean'"):
        gpudist.edt(torch.ones(3), metric="taxicab", squared=True)
    with pytest.raises(ValueError, match="do not combine"):
        gpudist.edt(torch.ones(3, dtype=torch.int64), metric="taxicab", multilabel=True)
    with pytest.raises(NotImplementedError, match="isotropic"):
        gpudist.edt(torch.ones(3, 3), (1.0, 2.0), metric="taxicab", backend="scipy")


# --- the feature transform (scipy's return_indices) ---------------------------------------------


def unique_nearest(mask: np.ndarray, spacing) -> np.ndarray:
    """Where exactly one zero element is nearest (no tie), by brute force in float64."""
    grid = np.indices(mask.shape).reshape(mask.ndim, -1).T
    bg = grid[~mask.reshape(-1)]
    h = np.asarray(spacing, dtype=np.float64)
    d2 = (((grid[:, None, :] - bg[None]) * h) ** 2).sum(-1)
    return ((d2 == d2.min(1, keepdims=True)).sum(1) == 1).reshape(mask.shape)


@settings(max_examples=60, deadline=None)
@given(data=label_maps(max_side=10))
def test_indices_point_at_a_nearest_zero(target, data):
    labels, spacing = data
    mask = labels != 0
    dist, idx = gpudist.edt(target.put(mask), spacing, return_indices=True,
                            dtype=torch.float64, backend=target.backend)
    assert idx.dtype == torch.int64 and idx.shape == (mask.ndim,) + mask.shape
    dist, idx = dist.cpu().numpy(), idx.cpu().numpy()
    assert_matches(dist, scipy_edt(mask, spacing), rtol=1e-12)
    if mask.all():
        assert (idx == -1).all()
        return
    assert not mask[tuple(idx)].any()  # every index is a zero element
    h = np.asarray(spacing).reshape((-1,) + (1,) * mask.ndim)
    at_index = np.sqrt((((idx - np.indices(mask.shape)) * h) ** 2).sum(0))
    np.testing.assert_allclose(at_index, dist, rtol=1e-12)
    _, expected = ndimage.distance_transform_edt(mask, sampling=spacing, return_indices=True)
    unique = unique_nearest(mask, spacing)
    np.testing.assert_array_equal(idx[:, unique], expected[:, unique])


def test_indices_batched_and_per_item_spacing(target):
    rng = np.random.default_rng(7)
    mask = rng.random((2, 3, 6, 7)) < 0.8
    rows = rng.uniform(0.5, 2.0, (2, 3, 2))
    dist, idx = gpudist.edt(target.put(mask), rows, ndim=2, return_indices=True,
                            dtype=torch.float64, backend=target.backend)
    assert idx.shape == (2, 3, 2, 6, 7)
    for i in np.ndindex(2, 3):
        d, ix = gpudist.edt(mask[i], tuple(rows[i]), return_indices=True, dtype=torch.float64,
                            backend=target.backend)
        np.testing.assert_array_equal(idx[i].cpu().numpy(), ix)
        np.testing.assert_array_equal(dist[i].cpu().numpy(), d)


def test_indices_scipy_case(target):
    # scipy's 9 x 9 data of test_distance_transform_edt01 (test_morphology.py): the indices
    # equal scipy's where the nearest zero is unique; everywhere they give scipy's distance
    data = CDT_DATA
    dist, idx = gpudist.edt(target.put(data), return_indices=True, dtype=torch.float64,
                            backend=target.backend)
    expected_d, expected_i = ndimage.distance_transform_edt(data, return_indices=True)
    assert_matches(dist, expected_d, rtol=1e-12)
    unique = unique_nearest(data, (1.0, 1.0))
    np.testing.assert_array_equal(idx.cpu().numpy()[:, unique], expected_i[:, unique])
    ft = np.indices(data.shape) - idx.cpu().numpy()
    np.testing.assert_allclose(np.sqrt((ft ** 2).sum(0)), expected_d)


def test_return_indices_bad_arguments():
    with pytest.raises(ValueError, match="black_border=False"):
        gpudist.edt(torch.ones(3, 3), return_indices=True, black_border=True)
    with pytest.raises(ValueError, match="do not combine"):
        gpudist.edt(torch.ones(3, 3, dtype=torch.int64), return_indices=True, multilabel=True)
    with pytest.raises(ValueError, match="squared=True"):
        gpudist.edt(torch.ones(3, 3), return_indices=True, squared=True)
