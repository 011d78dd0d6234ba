"""gpudist.metrics against the peers' own test cases and the peers themselves, for the features
that come from them: MONAI's reductions (`do_metric_reduction`, `aggregate`), keyword names and
`include_background`; torchmetrics' label inputs (`input_format`); DeepMind's surface overlap and
raw surface distances. Each ported case names the file it comes from."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common import blobs
from scipy import ndimage
from gpudist import metrics as M

# DeepMind's package imports scipy.ndimage.filters / .morphology, deprecated in scipy >= 1.14.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _need(module: str):
    return pytest.importorskip(module, reason=f"{module} (reference implementation) is not "
                                              f"installed")


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _pairs(seed: int, batch: int, classes: int, shape: tuple[int, ...]):
    """(B, C, *shape) bool pred and target: random balls, pred a perturbed copy or fresh."""
    rng = np.random.default_rng(seed)
    target = np.zeros((batch, classes) + shape, bool)
    pred = np.zeros_like(target)
    for b, c in np.ndindex(batch, classes):
        target[b, c] = blobs(shape, 2, int(rng.integers(1 << 30)))
        noise = rng.random(shape) < 0.03
        pred[b, c] = (target[b, c] ^ noise) if rng.random() < 0.6 else blobs(shape, 2, b + 7 * c)
    return torch.from_numpy(pred), torch.from_numpy(target)


# ---------------------------------------------------------------------------------------------
# MONAI's reductions: reduce_metric = do_metric_reduction, compute() = aggregate()


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 5), c=st.integers(1, 4), data=st.data())
def test_reduce_metric_equals_monai(b, c, data):
    utils = _need("monai.metrics.utils")
    kinds = st.sampled_from([0.0, 1.5, 2.25, math.nan, math.inf])
    values = torch.tensor(data.draw(st.lists(st.lists(kinds, min_size=c, max_size=c),
                                             min_size=b, max_size=b)), dtype=torch.float32)
    values = values * torch.rand(b, c) + torch.rand(b, c)
    for reduction in M.REDUCTIONS:
        want, want_n = utils.do_metric_reduction(values.clone(), reduction)
        got, got_n = M.reduce_metric(values.clone(), reduction)
        # MONAI's "mean" is shaped (1,), gpudist's a 0-d tensor like its "sum"
        torch.testing.assert_close(got, want.to(got.dtype).reshape(got.shape), equal_nan=True)
        torch.testing.assert_close(got_n, want_n.to(got_n.dtype))
    got_np, n_np = M.reduce_metric(values.numpy(), "mean_batch")  # numpy in, numpy out
    assert isinstance(got_np, np.ndarray) and isinstance(n_np, np.ndarray)


def _monai_and_ours(kind: str):
    """(MONAI metric class, gpudist class, shared kwargs) for one of the three metrics."""
    monai_metrics = _need("monai.metrics")
    if kind == "hd":
        return monai_metrics.HausdorffDistanceMetric, M.HausdorffDistance, {}
    if kind == "asd":
        return (monai_metrics.SurfaceDistanceMetric, M.AverageSurfaceDistance,
                {"symmetric": False})
    return monai_metrics.SurfaceDiceMetric, M.SurfaceDice, {"class_thresholds": [1.0, 2.0]}


@pytest.mark.parametrize("kind", ["hd", "asd", "nsd"])
@pytest.mark.parametrize("include_background", [False, True])
def test_metric_classes_aggregate_equals_monai(kind, include_background):
    """Two updates with both-empty (NaN) and one-empty (inf / 0) items, every reduction."""
    monai_cls, ours_cls, kwargs = _monai_and_ours(kind)
    if include_background:
        kwargs = {**kwargs, "class_thresholds": [0.5, 1.0, 2.0]} if kind == "nsd" else kwargs
    pred, target = _pairs(1, 4, 3, (14, 13))
    pred[0, 1] = target[0, 1] = False  # both empty: NaN, left out
    pred[1, 2] = False  # one empty: inf (HD, ASD) or 0 (NSD), kept
    pred[2] = target[2] = False  # an item with nothing at all
    spacing = (0.8, 1.3)
    for reduction in M.REDUCTIONS:
        theirs = monai_cls(include_background=include_background, reduction=reduction,
                           get_not_nans=True, **kwargs)
        ours = ours_cls(include_background=include_background, reduction=reduction,
                        get_not_nans=True, spacing=spacing, **kwargs)
        for part in (slice(0, 3), slice(3, 4)):
            _quiet(theirs, pred[part].float(), target[part].float(), spacing=spacing)
            ours.update(pred[part], target[part])
        want, want_n = _quiet(theirs.aggregate)
        got, got_n = ours.compute()
        torch.testing.assert_close(got, want.reshape(got.shape), rtol=1e-5, atol=1e-5,
                                   equal_nan=True)
        torch.testing.assert_close(got_n, want_n)
        torch.testing.assert_close(ours.aggregate("sum")[0],
                                   _quiet(theirs.aggregate, "sum")[0].reshape(()), rtol=1e-5,
                                   atol=1e-5)


# Ported from Project-MONAI/MONAI tests/metrics/test_hausdorff_distance.py and
# tests/metrics/test_surface_distance.py: `create_spherical_seg_3d` and the "euclidean" cases
# (the chessboard / taxicab ones wait for those metrics).

def create_spherical_seg_3d(radius=20.0, centre=(49, 49, 49), im_shape=(99, 99, 99),
                            im_spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    image = np.zeros(im_shape, dtype=np.int32)
    spy, spx, spz = np.ogrid[: im_shape[0], : im_shape[1], : im_shape[2]]
    spy = spy.astype(float) * im_spacing[0] - centre[0]
    spx = spx.astype(float) * im_spacing[1] - centre[1]
    spz = spz.astype(float) * im_spacing[2] - centre[2]
    image[(spx * spx + spy * spy + spz * spz) <= radius * radius] = 1
    return image


SPHERE = create_spherical_seg_3d
TEST_SPACING = (0.85, 1.2, 0.9)
# (seg_1, seg_2, spacing, percentile, (directed, undirected) expected values)
MONAI_HD_CASES = [
    (lambda: (SPHERE(), SPHERE()), None, None, (0, 0)),
    (lambda: (SPHERE(20, (20, 20, 20)), SPHERE(20, (19, 19, 19))), None, None,
     (1.7320508075688772, 1.7320508075688772)),
    (lambda: (SPHERE(33, (19, 33, 22)), SPHERE(33, (20, 33, 22))), None, None, (1, 1)),
    (lambda: (SPHERE(20, (20, 33, 22)), SPHERE(40, (20, 33, 22))), None, None,
     (20.09975124224178, 20.223748416156685)),
    (lambda: (np.zeros([99, 99, 99]), SPHERE(40, (20, 33, 22))), None, None, (np.inf, np.inf)),
    (lambda: (SPHERE(), np.zeros([99, 99, 99])), None, None, (np.inf, np.inf)),
    (lambda: (SPHERE(20, (20, 33, 22)), SPHERE(40, (20, 33, 22))), None, 95,
     (19.924858845171276, 20.09975124224178)),
    (lambda: (SPHERE(20, (20, 20, 20), im_spacing=TEST_SPACING),
              SPHERE(20, (19, 19, 19), im_spacing=TEST_SPACING)), TEST_SPACING, None,
     (2.0808651447296143, 2.2671568)),
    (lambda: (SPHERE(15, (20, 33, 22), im_spacing=TEST_SPACING),
              SPHERE(30, (20, 33, 22), im_spacing=TEST_SPACING)), TEST_SPACING, None,
     (15.439640998840332, 15.62594)),
]


def _batched(seg: np.ndarray) -> torch.Tensor:
    """MONAI's test layout: the (H, W, D) segmentation repeated into (2, 3, H, W, D)."""
    return torch.tensor(seg)[None, None].repeat(2, 3, 1, 1, 1)


@pytest.mark.parametrize("case", range(len(MONAI_HD_CASES)))
def test_monai_hausdorff_distance_cases(case):
    make, spacing, percentile, expected = MONAI_HD_CASES[case]
    seg_1, seg_2 = (_batched(s) for s in make())
    for directed, value in zip((True, False), expected):
        metric = M.HausdorffDistance(percentile=percentile, directed=directed,
                                     include_background=False, distance_metric="euclidean")
        metric.update(seg_1, seg_2, spacing=spacing)
        result = metric.aggregate(reduction="mean")
        np.testing.assert_allclose(value, result.numpy(), rtol=1e-6)


# (seg_1, seg_2, spacing, (symmetric, directed) expected values)
MONAI_ASD_CASES = [
    (lambda: (SPHERE(), SPHERE()), None, (0, 0)),
    (lambda: (SPHERE(33, (19, 33, 22)), SPHERE(33, (20, 33, 22))), None,
     (0.350217, 0.3483278807706289)),
    (lambda: (SPHERE(20, (20, 33, 22)), SPHERE(40, (20, 33, 22))), None,
     (15.117741, 12.040033513150455)),
    (lambda: (np.zeros([99, 99, 99]), SPHERE(40, (20, 33, 22))), None, (np.inf, np.inf)),
    (lambda: (SPHERE(33, (42, 45, 52), im_spacing=TEST_SPACING),
              SPHERE(33, (43, 45, 52), im_spacing=TEST_SPACING)), TEST_SPACING,
     (0.4951, 0.4951)),
]


@pytest.mark.parametrize("case", range(len(MONAI_ASD_CASES)))
def test_monai_surface_distance_cases(case):
    make, spacing, expected = MONAI_ASD_CASES[case]
    seg_1, seg_2 = (_batched(s) for s in make())
    for symmetric, value in zip((True, False), expected):
        metric = M.AverageSurfaceDistance(symmetric=symmetric, include_background=False)
        metric.update(seg_1, seg_2, spacing=spacing)
        np.testing.assert_allclose(value, metric.aggregate().numpy(), rtol=1e-5)


@pytest.mark.parametrize("spacing", [None, TEST_SPACING])
def test_monai_both_empty_aggregates_to_zero_with_no_counts(spacing):
    """MONAI's TEST_CASES_NANS (HD and surface distance): metric and not_nans 0."""
    empty = torch.zeros(1, 1, 99, 99, 99)
    for cls in (M.HausdorffDistance, M.AverageSurfaceDistance):
        metric = cls(include_background=False, get_not_nans=True)
        metric.update(empty, empty, spacing=spacing)
        result, not_nans = metric.aggregate()
        assert result.item() == 0 and not_nans.item() == 0


def _monai_surface_dice_case(shape: tuple[int, ...], start: int, shift: int):
    """Ported from MONAI tests/metrics/test_surface_dice.py: a half-plane in item 0 moved by
    `shift` voxels along the last axis, item 1 all background; one-hot (2, 2, *shape)."""
    predictions = torch.zeros((2,) + shape, dtype=torch.int64)
    labels = torch.zeros_like(predictions)
    predictions[0, ..., start:] = 1
    labels[0, ..., start + shift:] = 1
    one_hot = [torch.nn.functional.one_hot(x, num_classes=2).movedim(-1, 1)
               for x in (predictions, labels)]
    return one_hot[0], one_hot[1]


@pytest.mark.parametrize("spacing", [None, (0.85, 1.2)])
def test_monai_surface_dice_2d_case(spacing):
    """MONAI's test_tolerance_euclidean_distance(_with_spacing): NSD at tolerance 0 of two
    480x640 half-planes 10 px apart, and the aggregate (mean over classes, then items): 0.828,
    where pooling every entry would give 0.771."""
    pred, target = _monai_surface_dice_case((480, 640), 50, 10)
    metric = M.SurfaceDice(class_thresholds=[0, 0], include_background=True, get_not_nans=True)
    metric.update(pred, target, spacing=spacing)
    res0 = M.surface_dice(pred, target, class_thresholds=[0, 0], include_background=True,
                          spacing=spacing)
    expected = np.zeros((2, 2))
    expected[0, 1] = 1 - (478 + 480 + 9 * 2) / (480 * 4 + 588 * 2 + 578 * 2)
    expected[0, 0] = 1 - (478 + 480 + 9 * 2) / (480 * 4 + 48 * 2 + 58 * 2)
    expected[1, 0] = 1
    expected[1, 1] = np.nan
    np.testing.assert_allclose(res0.numpy(), expected, rtol=1e-6)
    agg, not_nans = metric.compute()
    np.testing.assert_allclose(agg.item(), np.nanmean(np.nanmean(expected, axis=1), axis=0),
                               rtol=1e-6)
    assert agg.item() == pytest.approx(0.8282, abs=1e-4) and not_nans.item() == 2
    nan = torch.isnan(res0)  # the pooled mean gpudist's "mean" gave before:
    assert M.summarize(res0, nan, nan, dim=None).mean.item() == pytest.approx(0.7709, abs=1e-4)
    for tol, bigger in ((1, 0), (9, 1), (10, 9)):
        lo = M.surface_dice(pred, target, [bigger] * 2, include_background=True,
                            spacing=spacing)
        hi = M.surface_dice(pred, target, [tol] * 2, include_background=True, spacing=spacing)
        assert (hi[0] > lo[0]).all() or tol == bigger


@pytest.mark.slow
def test_monai_surface_dice_3d_case():
    """MONAI's test_tolerance_euclidean_distance_3d: (2, 2, 200, 110, 80), shifted by 10."""
    pred, target = _monai_surface_dice_case((200, 110, 80), 20, 10)
    res0 = M.surface_dice(pred, target, [0, 0], include_background=True)
    expected = np.zeros((2, 2))
    expected[0, 1] = 1 - (200 * 110 + 198 * 108 + 9 * 200 * 2 + 9 * 108 * 2) / (
        200 * 110 * 4 + (58 + 48) * 200 * 2 + (58 + 48) * 108 * 2)
    expected[0, 0] = 1 - (200 * 110 + 198 * 108 + 9 * 200 * 2 + 9 * 108 * 2) / (
        200 * 110 * 4 + (28 + 18) * 200 * 2 + (28 + 18) * 108 * 2)
    expected[1, 0] = 1
    expected[1, 1] = np.nan
    np.testing.assert_allclose(res0.numpy(), expected, rtol=1e-6)
    for tol in (1, 10, 11):
        res = M.surface_dice(pred, target, [tol, tol], include_background=True)
        assert (res[0] > res0[0]).all()
    torch.testing.assert_close(M.surface_dice(pred, target, 10, include_background=True),
                               M.surface_dice(pred, target, 11, include_background=True),
                               equal_nan=True)


def test_monai_surface_dice_all_distances():
    """MONAI's test_tolerance_all_distances, Euclidean part: two 3-voxel lines."""
    predictions = torch.zeros((1, 10, 10), dtype=torch.int64)
    labels = torch.zeros_like(predictions)
    predictions[0, 1:4, 1] = 1
    labels[0, 5:8, 6] = 1
    kw = dict(input_format="index", num_classes=2, include_background=True)
    for thresholds, expected in (([0, 0], [[1 - (8 + 4) / (36 * 2 + 8 + 4), 0]]),
                                 ([2.8, 5.5], [[1 - 3 / (36 * 2 + 8 + 4), 1 - (2 + 2) / 6]]),
                                 ([3, 6], [[1 - 1 / (36 * 2 + 8 + 4), 1 - 2 / 6]])):
        res = M.surface_dice(predictions, labels, class_thresholds=thresholds, **kw)
        np.testing.assert_array_almost_equal(res.numpy(), expected)
    with pytest.raises(ValueError, match="distance_metric must be one of"):
        M.SurfaceDice([1, 1], distance_metric="cityblock")


@pytest.mark.parametrize("distance_metric", ["chessboard", "taxicab"])
def test_monai_chessboard_and_taxicab_metrics(distance_metric):
    """MONAI's distance_metric (scipy's distance_transform_cdt on the edges, unit spacing)."""
    monai_metrics = _need("monai.metrics")
    rng = np.random.default_rng(11)
    for shape in ((2, 2, 17, 13), (1, 2, 9, 8, 7)):
        pred = torch.from_numpy(rng.random(shape) < 0.3)
        target = torch.from_numpy(rng.random(shape) < 0.3)
        kw = dict(include_background=True, distance_metric=distance_metric)
        for ours, theirs in (
                (M.hausdorff_distance(pred, target, **kw),
                 monai_metrics.compute_hausdorff_distance(pred, target, **kw)),
                (M.hausdorff_distance(pred, target, percentile=95, **kw),
                 monai_metrics.compute_hausdorff_distance(pred, target, percentile=95, **kw)),
                (M.average_surface_distance(pred, target, **kw),
                 monai_metrics.compute_average_surface_distance(pred, target, symmetric=True,
                                                                **kw)),
                (M.surface_dice(pred, target, [1.0, 2.0], **kw),
                 monai_metrics.compute_surface_dice(pred, target, [1.0, 2.0], **kw))):
            np.testing.assert_allclose(np.asarray(ours, np.float64),
                                       np.asarray(theirs, np.float64), rtol=1e-5)


def test_empty_batch_class_and_spatial_dims_give_empty_results():
    """Issue 13: (B, C) results of size 0 (and all-NaN for a spatial dim of size 0), as MONAI."""
    monai_metrics = _need("monai.metrics")
    z = torch.zeros(1, 1, 9, 9, 9)
    cases = [(z[:, 1:], (1, 0)), (torch.zeros(0, 2, 5, 5), (0, 2)),
             (torch.zeros(1, 2, 0, 5), (1, 2))]
    for x, shape in cases:
        want = monai_metrics.compute_hausdorff_distance(x, x, include_background=True)
        for fn in (M.hausdorff_distance, M.average_surface_distance):
            got = fn(x, x, include_background=True)
            assert got.shape == want.shape == shape
            torch.testing.assert_close(got, want, equal_nan=True)
        assert M.surface_dice(x, x, 1.0, include_background=True).shape == shape
        assert M.surface_overlap(x, x, 1.0, include_background=True).pred.shape == shape
        assert M.surface_distances(x, x, include_background=True).pred_count.shape == shape
        labels = torch.zeros((x.shape[0],) + x.shape[2:], dtype=torch.int64)
        assert M.hausdorff_distance(labels, labels, input_format="index", num_classes=2,
                                    include_background=True).shape == (x.shape[0], 2)


# ---------------------------------------------------------------------------------------------
# torchmetrics: include_background, input_format="index" / "mixed", argmax of probabilities


@pytest.mark.parametrize("input_format", ["one-hot", "index", "mixed"])
@pytest.mark.parametrize("include_background", [False, True])
@pytest.mark.parametrize("directed", [False, True])
def test_label_inputs_equal_torchmetrics(input_format, include_background, directed):
    seg = _need("torchmetrics.functional.segmentation")
    gen = torch.Generator().manual_seed(int(directed) + 2 * int(include_background))
    # square images: torchmetrics' own EDT mis-indexes non-square ones (torchmetrics #3300)
    target = torch.randint(0, 3, (3, 16, 16), generator=gen)
    pred = torch.where(torch.rand(3, 16, 16, generator=gen) < 0.2,
                       torch.randint(0, 3, (3, 16, 16), generator=gen), target)
    one_hot = [torch.nn.functional.one_hot(x, 3).movedim(-1, 1) for x in (pred, target)]
    inputs = {"one-hot": one_hot, "index": (pred, target), "mixed": (one_hot[0], target)}
    p, t = inputs[input_format]
    kw = dict(include_background=include_background, directed=directed,
              input_format=input_format)
    want = seg.hausdorff_distance(p, t, num_classes=3, spacing=[0.7, 1.2], **kw)
    got = M.hausdorff_distance(p, t, num_classes=3, spacing=(0.7, 1.2), **kw)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    if input_format == "mixed":  # the other way round, and probabilities through the argmax
        torch.testing.assert_close(M.hausdorff_distance(pred, one_hot[1], num_classes=3,
                                                        spacing=(0.7, 1.2), **kw), want)
        probs = one_hot[0] * 0.7 + 0.1
        torch.testing.assert_close(M.hausdorff_distance(probs, t, threshold="argmax",
                                                        spacing=(0.7, 1.2), **kw), want)
        want_soft = seg.hausdorff_distance(probs, t, num_classes=3, spacing=[0.7, 1.2], **kw)
        torch.testing.assert_close(want_soft, want)  # torchmetrics argmaxes floats itself


def test_single_class_is_kept_without_background_as_peers_do():
    seg = _need("torchmetrics.functional.segmentation")
    monai_metrics = _need("monai.metrics")
    pred, target = _pairs(3, 2, 1, (12, 12))
    ours = M.hausdorff_distance(pred, target)
    assert ours.shape == (2, 1)
    torch.testing.assert_close(ours, seg.hausdorff_distance(pred.long(), target.long(),
                                                            num_classes=1))
    torch.testing.assert_close(ours, monai_metrics.compute_hausdorff_distance(pred, target))


def test_threshold_equals_monai_as_discrete():
    """threshold=0.5: pred >= 0.5, as MONAI's AsDiscrete(threshold=0.5) before its metric."""
    transforms = _need("monai.transforms")
    monai_metrics = _need("monai.metrics")
    pred, target = _pairs(4, 2, 3, (15, 14))
    gen = torch.Generator().manual_seed(0)
    probs = torch.where(pred, 0.5 + 0.5 * torch.rand(pred.shape, generator=gen),
                        0.5 * torch.rand(pred.shape, generator=gen))
    probs[pred & (torch.rand(pred.shape, generator=gen) < 0.2)] = 0.5  # ties: >= keeps them
    binary = transforms.AsDiscrete(threshold=0.5)(probs)
    want = _quiet(monai_metrics.compute_hausdorff_distance, binary, target, percentile=95,
                  spacing=(1.0, 0.6))
    got = M.hausdorff_distance(probs, target, threshold=0.5, percentile=95, spacing=(1.0, 0.6))
    torch.testing.assert_close(got, want.to(got.dtype), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="binary mask"):
        M.hausdorff_distance(probs, target)
    with pytest.raises(ValueError, match="threshold must be None, 'argmax' or a finite number"):
        M.hausdorff_distance(probs, target, threshold=math.nan)


@pytest.mark.parametrize("call, exc, match", [
    (lambda p, t: M.hausdorff_distance(p, t, input_format="index"), ValueError,
     "num_classes is required"),
    (lambda p, t: M.hausdorff_distance(p, t, input_format="mixed"), ValueError,
     "one .B, C, .spatial. one-hot tensor and one"),
    (lambda p, t: M.hausdorff_distance(p.long().argmax(1), t.long().argmax(1),
                                       input_format="index", num_classes=2), ValueError,
     r"labels must be in \[0, 2\)"),
    (lambda p, t: M.hausdorff_distance(p.float(), t.long().argmax(1), input_format="mixed",
                                       num_classes=4), ValueError, "must equal the classes"),
    (lambda p, t: M.hausdorff_distance(p.long().argmax(1).float(), t.long().argmax(1),
                                       input_format="index", num_classes=3), TypeError,
     "integer class indices"),
    (lambda p, t: M.hausdorff_distance(p, t, input_format="dense"), ValueError, "input_format"),
    (lambda p, t: M.hausdorff_distance(p, t, num_classes=0), ValueError, "num_classes"),
    (lambda p, t: M.hausdorff_distance(p, t, include_background=1), TypeError,
     "include_background must be a bool"),
    (lambda p, t: M.surface_dice(p, t, 1.0, class_thresholds=[1.0]), ValueError, "not both"),
    (lambda p, t: M.HausdorffDistance(reduction="median"), ValueError, "reduction must be one"),
    (lambda p, t: M.reduce_metric(torch.zeros(2, 3, 4)), ValueError, r"\(B, C\) table"),
])
def test_invalid_input_options(call, exc, match):
    pred, target = _pairs(5, 2, 3, (6, 7))
    with pytest.raises(exc, match=match):
        call(pred, target)


# ---------------------------------------------------------------------------------------------
# DeepMind surface-distance: surface_distances (raw) and surface_overlap. Cases ported from
# google-deepmind/surface-distance surface_distance_test.py.


def _deepmind():
    sd = _need("surface_distance")
    if not hasattr(np, "Inf"):  # DeepMind's code uses np.Inf, gone from numpy >= 2
        np.Inf = np.inf
    return sd


def _ours_raw(mask_gt: np.ndarray, mask_pred: np.ndarray, spacing) -> dict[str, np.ndarray]:
    out = M.surface_distances(mask_pred[None, None], mask_gt[None, None], spacing=spacing,
                              surface="surfel", dtype=torch.float64)
    return out.item(0, 0)


def _assert_deepmind_metrics(mask_gt, mask_pred, spacing, asd, hd100, hd95, overlap, nsd):
    """DeepMind's _assert_metrics (places=3), on gpudist's functions; NaN matches NaN."""
    p, t = mask_pred[None, None], mask_gt[None, None]
    kw = dict(spacing=spacing, surface="surfel")
    res = M.surface_metrics(p, t, ("asd", "hd", "hd95", "overlap_target", "overlap_pred", "nsd"),
                            tolerance=1, **kw)
    asd_target = M.average_surface_distance(t, p, symmetric=False, **kw)
    got = [asd_target[0, 0], *(res[k][0, 0] for k in res)]
    np.testing.assert_almost_equal(got, [asd[0], asd[1], hd100, hd95, *overlap, nsd], decimal=3)


def test_deepmind_2d_two_pixels_2mm_away():
    sd = _deepmind()
    mask_gt, mask_pred = np.zeros((128, 128), bool), np.zeros((128, 128), bool)
    mask_gt[50, 70] = 1
    mask_pred[50, 72] = 1
    diag = 0.5 * math.sqrt(2 ** 2 + 1 ** 2)
    expected = {"surfel_areas_gt": [diag] * 4, "surfel_areas_pred": [diag] * 4,
                "distances_gt_to_pred": [1.0, 1.0, 2.0, 2.0],
                "distances_pred_to_gt": [1.0, 1.0, 2.0, 2.0]}
    ours = _ours_raw(mask_gt, mask_pred, (2, 1))
    theirs = sd.compute_surface_distances(mask_gt, mask_pred, spacing_mm=(2, 1))
    assert ours.keys() == theirs.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_allclose(ours[key], value, rtol=1e-15)
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-15)
    _assert_deepmind_metrics(mask_gt, mask_pred, (2, 1), (1.5, 1.5), 2.0, 2.0, (0.5, 0.5), 0.5)


def test_deepmind_2d_two_squares_shifted_by_one_pixel():
    sd = _deepmind()
    mask_gt = np.zeros((6, 6), bool)
    mask_gt[1:3, 1:3] = True
    mask_pred = np.zeros((6, 6), bool)
    mask_pred[1:4, 1:3] = True
    vertical, horizontal = 2, 1
    diag = 0.5 * math.sqrt(horizontal ** 2 + vertical ** 2)
    areas_gt = [diag, horizontal, diag, vertical, diag, horizontal, diag, vertical]
    areas_pred = [diag, horizontal, diag, vertical, vertical, diag, horizontal, diag, vertical,
                  vertical]
    dist_gt = [0] * 5 + [horizontal] + [0] * 2
    dist_pred = [0] * 5 + [vertical] * 3 + [0] * 2
    order_gt, order_pred = np.lexsort((areas_gt, dist_gt)), np.lexsort((areas_pred, dist_pred))
    ours = _ours_raw(mask_gt, mask_pred, (vertical, horizontal))
    np.testing.assert_allclose(ours["distances_gt_to_pred"], np.array(dist_gt)[order_gt])
    np.testing.assert_allclose(ours["surfel_areas_gt"], np.array(areas_gt)[order_gt])
    np.testing.assert_allclose(ours["distances_pred_to_gt"], np.array(dist_pred)[order_pred])
    np.testing.assert_allclose(ours["surfel_areas_pred"], np.array(areas_pred)[order_pred])
    theirs = sd.compute_surface_distances(mask_gt, mask_pred, (vertical, horizontal))
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-15)
    _assert_deepmind_metrics(
        mask_gt, mask_pred, (vertical, horizontal), sd.compute_average_surface_distance(theirs),
        sd.compute_robust_hausdorff(theirs, 100), sd.compute_robust_hausdorff(theirs, 95),
        sd.compute_surface_overlap_at_tolerance(theirs, 1),
        sd.compute_surface_dice_at_tolerance(theirs, 1))


@pytest.mark.parametrize("ndim", [2, 3])
def test_deepmind_empty_masks(ndim):
    """DeepMind's empty-mask cases; its NaN for the side with no surface is gpudist's
    empty-mask policy value (module docstring): +inf for distances, 0 for the overlap."""
    sd = _deepmind()
    shape, spacing = (128,) * ndim, (3, 2, 1)[:ndim]
    voxel = (50, 60, 70)[:ndim]
    empty, single = np.zeros(shape, bool), np.zeros(shape, bool)
    single[voxel] = True
    inf = np.inf
    for gt, pred, asd, overlap in ((single, empty, (inf, inf), (0.0, 0.0)),
                                   (empty, single, (inf, inf), (0.0, 0.0))):
        theirs = sd.compute_surface_distances(gt, pred, spacing)
        ours = _ours_raw(gt, pred, spacing)
        for key in theirs:  # the raw distances agree exactly: inf to the missing surface
            np.testing.assert_array_equal(ours[key], theirs[key])
        _assert_deepmind_metrics(gt, pred, spacing, asd, inf, inf, overlap, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            their_overlap = sd.compute_surface_overlap_at_tolerance(theirs, 1)
        assert [math.isnan(v) for v in their_overlap] == [not gt.any(), not pred.any()]
    ours = _ours_raw(empty, empty, spacing)
    assert all(len(v) == 0 for v in ours.values())
    nan = math.nan
    _assert_deepmind_metrics(empty, empty, spacing, (nan, nan), nan, nan, (nan, nan), nan)


def test_deepmind_3d_cases():
    sd = _deepmind()
    mask_gt, mask_pred = np.zeros((128, 128, 128), bool), np.zeros((128, 128, 128), bool)
    mask_gt[50, 60, 70] = 1
    mask_pred[50, 60, 72] = 1
    _assert_deepmind_metrics(mask_gt, mask_pred, (3, 2, 1), (1.5, 1.5), 2.0, 2.0, (0.5, 0.5),
                             0.5)
    mask_gt, mask_pred = np.zeros((100, 100, 100), bool), np.zeros((100, 100, 100), bool)
    mask_gt[0:50] = 1
    mask_pred[0:51] = 1
    _assert_deepmind_metrics(mask_gt, mask_pred, (2, 1, 1), (0.322, 0.339), 2.0, 2.0,
                             (0.842, 0.830), 0.836)
    theirs = sd.compute_surface_distances(mask_gt, mask_pred, (2, 1, 1))
    ours = _ours_raw(mask_gt, mask_pred, (2, 1, 1))
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12)


@pytest.mark.parametrize("shape, spacing", [((21, 17), (0.7, 1.9)), ((9, 12, 10),
                                                                     (1.5, 0.6, 1.1))])
def test_surface_overlap_and_raw_distances_equal_deepmind(shape, spacing):
    """Random batches, per (b, c) against DeepMind; torch in, torch out, numpy in, numpy out."""
    sd = _deepmind()
    pred, target = _pairs(6, 2, 3, shape)
    tol = 1.3
    overlap = M.surface_overlap(pred, target, tol, spacing=spacing, surface="surfel",
                                include_background=True, dtype=torch.float64)
    raw = M.surface_distances(pred.numpy(), target.numpy(), spacing=spacing, surface="surfel",
                              include_background=True, dtype=torch.float64)
    assert isinstance(overlap.pred, torch.Tensor) and isinstance(raw.pred_to_target, np.ndarray)
    for b, c in np.ndindex(2, 3):
        theirs = sd.compute_surface_distances(target[b, c].numpy(), pred[b, c].numpy(), spacing)
        ours = raw.item(b, c)
        for side in ("gt_to_pred", "pred_to_gt"):
            d_ours, d_theirs = ours[f"distances_{side}"], theirs[f"distances_{side}"]
            np.testing.assert_allclose(d_ours, d_theirs, rtol=1e-12)
            # (distance, area) pairs, sorted by both: distances that agree to rounding may tie
            # on one side only, which reorders their areas
            key = "surfel_areas_" + side.split("_")[0]
            a_ours, a_theirs = ours[key], theirs[key]
            o, t = np.lexsort((a_ours, d_ours.round(9))), np.lexsort((a_theirs,
                                                                      d_theirs.round(9)))
            np.testing.assert_allclose(a_ours[o], a_theirs[t], rtol=1e-12)
        want = sd.compute_surface_overlap_at_tolerance(theirs, tol)
        np.testing.assert_allclose((overlap.target[b, c], overlap.pred[b, c]), want, rtol=1e-12)
    beyond = np.arange(raw.pred_to_target.shape[2])[None, None] >= raw.pred_count[..., None]
    assert np.isinf(raw.pred_to_target[beyond]).all() and (raw.pred_areas[beyond] == 0).all()
    voxel = M.surface_overlap(pred, target, tol, spacing=spacing, include_background=True)
    both = M.surface_metrics(pred, target, ("overlap_target", "overlap_pred", "nsd"),
                             tolerance=tol, spacing=spacing, include_background=True)
    torch.testing.assert_close(voxel.target, both["overlap_target"])
    torch.testing.assert_close(voxel.pred, both["overlap_pred"])


@pytest.mark.parametrize("metric", ["taxicab", "chessboard"])
def test_surface_distances_take_distance_metric(metric):
    """surface_distances(distance_metric=...) measures in that metric: each border voxel's
    distance to the other mask's border, by brute force with the spacing."""
    rng = np.random.default_rng(5)
    pred = rng.random((1, 1, 9, 11)) < 0.4
    target = rng.random((1, 1, 9, 11)) < 0.4
    spacing = (1.5, 0.7)
    out = M.surface_distances(pred, target, spacing=spacing, distance_metric=metric,
                              include_background=True, dtype=torch.float64)
    border = [x[0, 0] & ~ndimage.binary_erosion(x[0, 0], border_value=0) for x in (pred, target)]
    h = np.asarray(spacing)
    combine = np.sum if metric == "taxicab" else np.max
    for src, dst, got, count in [(border[0], border[1], out.pred_to_target, out.pred_count),
                                 (border[1], border[0], out.target_to_pred, out.target_count)]:
        a, b = np.argwhere(src), np.argwhere(dst)
        expected = np.sort(combine(np.abs(a[:, None] - b[None]) * h, axis=2).min(1))
        assert int(count[0, 0]) == len(a)
        np.testing.assert_allclose(np.asarray(got)[0, 0, :len(a)], expected, rtol=1e-12)
