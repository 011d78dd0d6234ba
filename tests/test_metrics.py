"""gpudist.metrics against MONAI (voxel surfaces), DeepMind surface-distance (surfels) and medpy.

The references run per (b, c) in Python on small random shapes; each test skips, with the reason,
when its reference package is absent (they are in the test extra: monai, medpy,
surface-distance, torchmetrics).
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings

import numpy as np
import pytest
import torch

from gpudist import metrics as M
from gpudist.backends import extension
from gpudist.metrics import classes, distances, surfaces

# DeepMind's package imports scipy.ndimage.filters / .morphology, deprecated in scipy >= 1.14.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ALL = dict(include_background=True)  # the comparisons below cover every class


def _need(module: str):
    return pytest.importorskip(module,
                               reason=f"{module} (reference implementation) is not installed")


# ---------------------------------------------------------------------------------------------
# Random masks


def _blobs(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """A union of `n` random ellipsoids, some touching or crossing the image edge."""
    grid = np.indices(shape).astype(np.float64)
    out = np.zeros(shape, bool)
    for _ in range(n):
        centre = [rng.uniform(-1, s) for s in shape]
        radii = [rng.uniform(1.0, s / 3) for s in shape]
        out |= sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1
    return out


def _pair_batch(seed: int, shape: tuple[int, ...], batch: int = 2,
                classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(B, C, *shape) pred and target: target blobs, pred a perturbed copy or fresh blobs,
    plus a single-voxel item."""
    rng = np.random.default_rng(seed)
    pred = np.zeros((batch, classes) + shape, bool)
    target = np.zeros_like(pred)
    for b in range(batch):
        for c in range(classes):
            target[b, c] = _blobs(rng, shape, 2)
            if rng.random() < 0.5:
                pred[b, c] = target[b, c] ^ (rng.random(shape) < 0.04) | _blobs(rng, shape, 1)
            else:
                pred[b, c] = _blobs(rng, shape, 2)
    pred[-1, -1] = False
    pred[(-1, -1) + tuple(s // 2 for s in shape)] = True  # single voxel
    return pred, target


CASES = [
    pytest.param(0, (23, 29), (0.7, 1.3), id="2d"),
    pytest.param(1, (11, 13, 14), (1.2, 0.8, 2.5), id="3d"),
]


def _loop(fn, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    out = np.empty(pred.shape[:2])
    for b, c in np.ndindex(*pred.shape[:2]):
        out[b, c] = fn(pred[b, c], target[b, c], b, c)
    return out


def _close(ours, ref: np.ndarray, rtol: float = 1e-5) -> None:
    """ours (a tensor, or the numpy array a numpy input gives) equals ref."""
    ours = ours.double().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours)
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# MONAI, voxel surfaces


def _monai(cls_name: str, pred: np.ndarray, target: np.ndarray, spacing, **kwargs) -> np.ndarray:
    monai_metrics = _need("monai.metrics")
    metric = getattr(monai_metrics, cls_name)(include_background=True, reduction="none", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric(y_pred=torch.from_numpy(pred).float(), y=torch.from_numpy(target).float(),
                     spacing=spacing)
    return out.double().numpy()


@pytest.mark.parametrize("seed, shape, spacing", CASES)
def test_voxel_metrics_equal_monai(seed, shape, spacing):
    pred, target = _pair_batch(seed, shape)
    tol = 1.6180339
    ours = M.surface_metrics(pred, target, ("hd", "hd95", "hd80", "assd", "asd", "nsd"),
                             tolerance=tol, spacing=spacing, **ALL)
    _close(ours["hd"], _monai("HausdorffDistanceMetric", pred, target, spacing))
    _close(ours["hd95"], _monai("HausdorffDistanceMetric", pred, target, spacing, percentile=95))
    _close(ours["hd80"], _monai("HausdorffDistanceMetric", pred, target, spacing, percentile=80))
    _close(ours["assd"], _monai("SurfaceDistanceMetric", pred, target, spacing, symmetric=True))
    _close(ours["asd"], _monai("SurfaceDistanceMetric", pred, target, spacing, symmetric=False))
    _close(ours["nsd"], _monai("SurfaceDiceMetric", pred, target, spacing,
                               class_thresholds=[tol] * 3))
    directed = M.hausdorff_distance(pred, target, spacing=spacing, percentile=95, directed=True,
                                    **ALL)
    _close(directed, _monai("HausdorffDistanceMetric", pred, target, spacing, percentile=95,
                            directed=True))


def test_voxel_per_item_spacing_and_per_class_tolerance_equal_monai():
    pred, target = _pair_batch(2, (17, 19))
    spacing = [[0.5, 1.5], [2.0, 0.9]]
    tols = [0.7, 1.9, 3.1]
    _close(M.hausdorff_distance(pred, target, spacing=torch.tensor(spacing), percentile=95, **ALL),
           _monai("HausdorffDistanceMetric", pred, target, spacing, percentile=95))
    _close(M.surface_dice(pred, target, tols, spacing=spacing, **ALL),
           _monai("SurfaceDiceMetric", pred, target, spacing, class_thresholds=tols))


@pytest.mark.parametrize("search", [True, False], ids=["distance_at", "full edt"])
def test_distances_to_surface_equal_scipy_per_row(search, monkeypatch):
    """Each row's distances in row-major order, padded with +inf, with spacings interleaved
    across rows, a row without sites and a row without queries."""
    from scipy import ndimage

    if search and not extension.has_kernel("gpudist::distance_at", "cpu"):
        pytest.skip("the extension is not built")
    if not search:
        monkeypatch.setattr(extension, "has_kernel", lambda op, device: False)
    rng = np.random.default_rng(3)
    sites = rng.random((5, 9, 11)) < 0.1
    sites[3] = False
    queries = rng.random((5, 9, 11)) < 0.3
    queries[1] = False
    spacing = [[1.0, 2.0], [0.5, 0.7], [1.0, 2.0], [0.5, 0.7], [3.0, 0.2]]
    dist, count = distances._distances_to_surface(
        torch.from_numpy(sites), torch.from_numpy(queries),
        torch.tensor(spacing, dtype=torch.float64), torch.float64, "euclidean")
    rows = [(ndimage.distance_transform_edt(~s, sampling=sp) if s.any()
             else np.full(s.shape, np.inf))[q] for s, q, sp in zip(sites, queries, spacing)]
    assert count.tolist() == [len(r) for r in rows] and count[1] == 0
    expected = np.full((5, max(map(len, rows))), np.inf)
    for b, r in enumerate(rows):
        expected[b, :len(r)] = r
    np.testing.assert_allclose(dist.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("surface", ["voxel", "surfel"])
def test_search_and_full_transform_paths_agree(surface, monkeypatch):
    """The CPU's distance_at search and the full-EDT path (CUDA, or no extension) give the same
    metrics, with one spacing and with a spacing per item."""
    if not extension.has_kernel("gpudist::distance_at", "cpu"):
        pytest.skip("the extension is not built")
    pred, target = _pair_batch(4, (21, 18, 9), batch=3)
    pred[1, 2] = False  # an empty class on one side
    spacings = [(0.7, 1.0, 2.2), torch.tensor([[0.7, 1.0, 2.2], [1.5, 0.5, 1.0], [0.7, 1.0, 2.2]])]
    kw = dict(metrics=("hd", "hd95", "assd", "nsd"), tolerance=1.5, surface=surface)
    searched = [M.surface_metrics(pred, target, spacing=s, **kw, **ALL) for s in spacings]
    monkeypatch.setattr(extension, "has_kernel", lambda op, device: False)
    full = [M.surface_metrics(pred, target, spacing=s, **kw, **ALL) for s in spacings]
    for a, b in zip(searched, full):
        for name in kw["metrics"]:
            torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=0, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# DeepMind surface-distance, surfels


def _deepmind(pred: np.ndarray, target: np.ndarray, spacing, what: str, arg=None) -> np.ndarray:
    sd = _need("surface_distance")

    def one(p, t, b, c):
        sp = spacing[b] if np.ndim(spacing) == 2 else spacing
        d = sd.compute_surface_distances(t, p, sp)
        if what == "hd":
            return sd.compute_robust_hausdorff(d, arg)
        if what == "nsd":
            return sd.compute_surface_dice_at_tolerance(d, arg)
        if what == "asd":  # (gt -> pred, pred -> gt): ours is pred -> target
            return sd.compute_average_surface_distance(d)[1]
        a_t, a_p = d["surfel_areas_gt"], d["surfel_areas_pred"]  # assd, from DeepMind's lists
        return (((a_t * d["distances_gt_to_pred"]).sum() + (a_p * d["distances_pred_to_gt"]).sum())
                / (a_t.sum() + a_p.sum()))

    return _loop(one, pred, target)


@pytest.mark.parametrize("seed, shape, spacing", CASES)
def test_surfel_metrics_equal_deepmind(seed, shape, spacing):
    pred, target = _pair_batch(seed + 10, shape)
    tol = 1.2345
    ours = M.surface_metrics(pred, target, ("hd", "hd95", "hd50", "assd", "asd", "nsd"),
                             tolerance=tol, spacing=spacing, surface="surfel", **ALL)
    _close(ours["hd"], _deepmind(pred, target, spacing, "hd", 100))
    _close(ours["hd95"], _deepmind(pred, target, spacing, "hd", 95))
    _close(ours["hd50"], _deepmind(pred, target, spacing, "hd", 50))
    _close(ours["assd"], _deepmind(pred, target, spacing, "assd"))
    _close(ours["asd"], _deepmind(pred, target, spacing, "asd"))
    _close(ours["nsd"], _deepmind(pred, target, spacing, "nsd", tol))


def test_surfel_per_item_spacing_equal_deepmind():
    pred, target = _pair_batch(5, (9, 10, 12), batch=2, classes=2)
    spacing = np.array([[1.0, 2.0, 0.5], [0.6, 0.6, 3.0]])
    _close(M.hausdorff_distance(pred, target, spacing=spacing, percentile=95, surface="surfel",
                                **ALL),
           _deepmind(pred, target, spacing, "hd", 95))
    _close(M.surface_dice(pred, target, 1.1, spacing=spacing, surface="surfel", **ALL),
           _deepmind(pred, target, spacing, "nsd", 1.1))


@pytest.mark.parametrize("kernel", ["extension", "torch"])
@pytest.mark.parametrize("shape", [(9,), (7, 9), (5, 6, 7), (3, 4, 3, 5), (1, 6), (2, 1, 5),
                                   (4, 2, 3), (6, 0), (1,), (2,), (3,), (3, 3), (3, 3, 3),
                                   (5000,), (40, 150), (5, 37, 130), (3, 3, 40, 130),
                                   (7, 5000)])
def test_voxel_border_and_surfel_codes_equal_scipy(shape, kernel, monkeypatch):
    """Border voxels = mask XOR scipy's binary_erosion (border_value 0) for every connectivity,
    from the extension's kernel and from the torch rule, on contiguous and strided masks (planes
    and lines longer than the kernel's 4096-byte chunks too);
    surfel codes = DeepMind's correlate of the zero-padded mask with its kernel."""
    from scipy import ndimage

    if kernel == "extension" and not extension.has_kernel("gpudist::voxel_border", "cpu"):
        pytest.skip("the extension is not built")
    if kernel == "torch":
        monkeypatch.setattr(extension, "has_kernel", lambda op, device: False)
    rng = np.random.default_rng(len(shape))
    masks = rng.random((3,) + shape) < 0.6
    for connectivity in range(1, len(shape) + 1):
        structure = ndimage.generate_binary_structure(len(shape), connectivity)
        ref = np.stack([m ^ ndimage.binary_erosion(m, structure) for m in masks])
        ours = surfaces.voxel_border(torch.from_numpy(masks), connectivity).numpy()
        np.testing.assert_array_equal(ours, ref)
        strided = torch.from_numpy(np.ascontiguousarray(np.swapaxes(masks, 1, -1))).transpose(1, -1)
        np.testing.assert_array_equal(surfaces.voxel_border(strided, connectivity).numpy(), ref)
    if 0 in shape:
        return
    if len(shape) in (2, 3):
        kernel = (np.array([[8, 4], [2, 1]]) if len(shape) == 2
                  else np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]]))
        for m in masks:
            padded = np.zeros(tuple(n + 1 for n in shape), np.uint8)
            padded[tuple(slice(0, n) for n in shape)] = m
            ref = ndimage.correlate(padded, kernel, mode="constant", cval=0)
            ours = surfaces.surfel_codes(torch.from_numpy(m)[None])[0].numpy()
            np.testing.assert_array_equal(ours, ref)


def test_surfel_tables_equal_deepmind():
    lookup = _need("surface_distance.lookup_tables")
    for sp in [(1.0, 1.0, 1.0), (0.7, 1.3, 2.9)]:
        ours = surfaces.element_size_table(torch.tensor([sp], dtype=torch.float64))[0].numpy()
        np.testing.assert_allclose(ours, lookup.create_table_neighbour_code_to_surface_area(sp),
                                   rtol=1e-14)
    for sp in [(1.0, 1.0), (0.7, 2.9)]:
        ours = surfaces.element_size_table(torch.tensor([sp], dtype=torch.float64))[0].numpy()
        np.testing.assert_allclose(ours, lookup.create_table_neighbour_code_to_contour_length(sp),
                                   rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# medpy (voxel surfaces; its hd95 is the pooled percentile; it raises on empty masks)


@pytest.mark.parametrize("seed, shape, spacing", CASES)
@pytest.mark.parametrize("connectivity", [1, 2, "full"])
def test_voxel_metrics_equal_medpy(seed, shape, spacing, connectivity):
    binary = _need("medpy.metric.binary")
    connectivity = len(shape) if connectivity == "full" else connectivity
    pred, target = _pair_batch(seed + 20, shape)
    ours = M.surface_metrics(pred, target, ("hd", "hd95", "assd"), spacing=spacing,
                             connectivity=connectivity, percentile_mode="pooled", **ALL)
    for name, fn in (("hd", binary.hd), ("hd95", binary.hd95), ("assd", binary.assd)):
        ref = _loop(lambda p, t, b, c, fn=fn: fn(p, t, voxelspacing=spacing,
                                                 connectivity=connectivity), pred, target)
        _close(ours[name], ref)


# ---------------------------------------------------------------------------------------------
# Empty masks, border-touching and single-voxel objects


def _edge_cases(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Items: both empty, pred empty, target empty, full image vs. a cleared slab, two single
    voxels in opposite corners."""
    pred = np.zeros((1, 5) + shape, bool)
    target = np.zeros_like(pred)
    target[0, 1][tuple(slice(1, 4) for _ in shape)] = True
    pred[0, 2][tuple(slice(2, 5) for _ in shape)] = True
    pred[0, 3] = True
    target[0, 3] = True
    target[0, 3][..., -2:] = False
    pred[0, 4][(0,) * len(shape)] = True
    target[0, 4][tuple(s - 1 for s in shape)] = True
    return pred, target


@pytest.mark.parametrize("surface", ["voxel", "surfel"])
@pytest.mark.parametrize("shape", [(7, 8), (5, 6, 7)])
def test_empty_mask_policy(surface, shape):
    pred, target = map(torch.from_numpy, _edge_cases(shape))
    spacing = (1.5,) + (1.0,) * (len(shape) - 1)
    res = M.surface_metrics(pred, target, ("hd", "hd95", "assd", "asd", "nsd"), tolerance=1.0,
                            spacing=spacing, surface=surface, **ALL)
    for name in ("hd", "hd95", "assd", "asd"):
        v = res[name][0]
        assert math.isnan(v[0]) and v[1] == math.inf and v[2] == math.inf, name
        assert torch.isfinite(v[3:]).all(), name
    nsd = res["nsd"][0]
    assert math.isnan(nsd[0]) and nsd[1] == 0 and nsd[2] == 0
    assert res.pred_empty.tolist() == [[True, True, False, False, False]]
    assert res.target_empty.tolist() == [[True, False, True, False, False]]
    diag = math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing)))
    worst = M.surface_metrics(pred, target, ("hd", "hd95", "assd"), spacing=spacing,
                              surface=surface, empty_distance="diagonal", **ALL)
    for name in ("hd", "hd95", "assd"):
        v = worst[name][0]
        assert math.isnan(v[0]) and v[1].item() == pytest.approx(diag)
        assert v[2].item() == pytest.approx(diag) and bool((v[3:] <= diag).all())
    fixed = M.hausdorff_distance(pred, target, percentile=95, empty_distance=99.0, **ALL)[0]
    assert fixed[1] == 99.0 and fixed[2] == 99.0
    summary = res.summarize("hd", dim=None)
    assert summary.mean == math.inf
    assert (summary.n_valid, summary.n_both_empty, summary.n_one_empty) == (4, 1, 2)


@pytest.mark.parametrize("shape", [(7, 8), (5, 6, 7)])
def test_edge_cases_equal_references(shape):
    """Full-image masks, objects on the edge and single voxels, and MONAI's and DeepMind's
    empty-mask values where they are consistent (inf for the plain HD, NSD 0 / NaN)."""
    pred, target = _edge_cases(shape)
    spacing = (1.5,) + (1.0,) * (len(shape) - 1)
    voxel = M.surface_metrics(pred, target, ("hd", "hd95", "assd", "nsd"), tolerance=1.0,
                              spacing=spacing, **ALL)
    _close(voxel["hd"], _monai("HausdorffDistanceMetric", pred, target, spacing))
    _close(voxel["nsd"], _monai("SurfaceDiceMetric", pred, target, spacing,
                                class_thresholds=[1.0] * 5), rtol=0)
    _close(voxel["assd"], _monai("SurfaceDistanceMetric", pred, target, spacing, symmetric=True))
    _close(voxel["hd95"][:, 3:], _monai("HausdorffDistanceMetric", pred, target, spacing,
                                        percentile=95)[:, 3:])
    surfel = M.surface_metrics(pred, target, ("hd", "hd95", "nsd"), tolerance=1.0,
                               spacing=spacing, surface="surfel", **ALL)
    sd = _need("surface_distance")
    with pytest.MonkeyPatch.context() as mp:  # DeepMind's np.Inf is gone from numpy >= 2
        mp.setattr(np, "Inf", np.inf, raising=False)
        ref_hd = _deepmind(pred, target, spacing, "hd", 100)
        ref_hd95 = _deepmind(pred, target, spacing, "hd", 95)
        with np.errstate(invalid="ignore"):
            ref_nsd = _deepmind(pred, target, spacing, "nsd", 1.0)
    del sd
    _close(surfel["hd"][:, 1:], ref_hd[:, 1:])  # DeepMind: both empty -> inf, ours NaN
    _close(surfel["hd95"][:, 1:], ref_hd95[:, 1:])
    _close(surfel["nsd"], ref_nsd)


# ---------------------------------------------------------------------------------------------
# Pooled vs per-direction percentile, devices, dtypes, inputs


def test_pooled_percentile_can_hide_an_outlier():
    """A disk and the same disk plus a far 4x4 blob (research brief, case B)."""
    yy, xx = np.mgrid[:200, :200]
    target = ((yy - 60) ** 2 + (xx - 60) ** 2 <= 30 ** 2)[None, None]
    pred = target.copy()
    pred[0, 0, 160:164, 160:164] = True
    per_dir = M.hausdorff_distance(pred, target, percentile=95, **ALL)
    pooled = M.hausdorff_distance(pred, target, percentile=95, percentile_mode="pooled", **ALL)
    assert per_dir.item() > 90 and pooled.item() == 0


def test_surface_dice_counts_distances_equal_to_the_tolerance():
    # Two 4x4 squares one voxel apart: every border voxel lies within one voxel (0.1) of the other
    # border, so NSD at tolerance 0.1 is 1 (as MONAI gives), also with the default float32 output.
    pred = torch.zeros(1, 1, 10, 10, dtype=torch.bool)
    target = torch.zeros_like(pred)
    pred[..., 2:6, 3:7] = True
    target[..., 3:7, 3:7] = True
    for spacing in (0.1, 0.3):
        for dtype in (None, torch.float64):
            nsd = M.surface_dice(pred, target, spacing, spacing=spacing, dtype=dtype, **ALL)
            assert nsd.item() == 1.0


def test_input_forms_and_dtype():
    pred, target = _pair_batch(3, (12, 13), batch=1, classes=2)
    ref = M.surface_metrics(torch.from_numpy(pred), torch.from_numpy(target), ("hd", "assd"),
                            **ALL)
    for p, t in ((torch.from_numpy(pred).to(torch.uint8), torch.from_numpy(target).float()),
                 (torch.from_numpy(pred).float(), torch.from_numpy(target).long())):
        out = M.surface_metrics(p, t, ("hd", "assd"), **ALL)
        assert all(torch.equal(out[k], ref[k]) for k in ref)
    # numpy in, numpy out (as gpudist.edt), with the same values
    out = M.surface_metrics(pred.astype(np.uint8), target.astype(np.float32), ("hd", "assd"),
                            **ALL)
    for k in ref:
        assert isinstance(out[k], np.ndarray) and out[k].dtype == np.float32
        np.testing.assert_array_equal(out[k], ref[k].numpy())
    assert isinstance(out.pred_empty, np.ndarray) and out.pred_empty.dtype == bool
    assert isinstance(out.summarize("hd").mean, np.ndarray)
    d64 = M.surface_metrics(torch.from_numpy(pred), torch.from_numpy(target), ("hd", "assd"),
                            dtype=torch.float64, **ALL)
    assert d64["hd"].dtype == torch.float64 and ref["hd"].dtype == torch.float32
    torch.testing.assert_close(d64["assd"].float(), ref["assd"])
    out = M.hausdorff_distance(torch.from_numpy(pred), torch.from_numpy(target), **ALL)
    assert out.shape == (1, 2) and out.device.type == "cpu"


@pytest.mark.cuda
def test_cuda_equals_cpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    pred, target = _pair_batch(4, (10, 12, 13))
    for surface in ("voxel", "surfel"):
        cpu = M.surface_metrics(pred, target, ("hd", "hd95", "assd", "nsd"), tolerance=1.3,
                                spacing=(1.0, 0.7, 2.0), surface=surface, **ALL)
        gpu = M.surface_metrics(torch.from_numpy(pred).cuda(), torch.from_numpy(target).cuda(),
                                ("hd", "hd95", "assd", "nsd"), tolerance=1.3,
                                spacing=(1.0, 0.7, 2.0), surface=surface, **ALL)
        for k in cpu:
            assert gpu[k].is_cuda
            torch.testing.assert_close(gpu[k].cpu(), cpu[k], equal_nan=True)


@pytest.mark.parametrize("call, match", [
    (lambda p, t: M.hausdorff_distance(p, t[..., :-1]), "pred and target must have the same shape"),
    (lambda p, t: M.hausdorff_distance(p[0, 0], t[0, 0]), r"pred must be \(B, C, \*spatial\)"),
    (lambda p, t: M.hausdorff_distance(p * 2, t), "pred must be a binary mask"),
    (lambda p, t: M.hausdorff_distance(p, t - 0.5), "target must be a binary mask"),
    (lambda p, t: M.hausdorff_distance(p, t, spacing=(1.0, -1.0)), "spacing values must be posi"),
    (lambda p, t: M.hausdorff_distance(p, t, spacing=(1.0, 1.0, 1.0)), "one value per spatial"),
    (lambda p, t: M.hausdorff_distance(p, t, spacing=[[1.0, 1.0]] * 3), "B = 1 rows"),
    (lambda p, t: M.hausdorff_distance(p, t, percentile=101), "percentile must be between 0"),
    (lambda p, t: M.surface_dice(p, t, -1.0), "tolerance values must be finite and >= 0"),
    (lambda p, t: M.surface_dice(p, t, [1.0, 2.0, 3.0]), r"one per class kept \(1;"),
    (lambda p, t: M.surface_metrics(p, t, ("nsd",)), "tolerance is required"),
    (lambda p, t: M.surface_metrics(p, t, ("hd", "dice")), "unknown metric 'dice'"),
    (lambda p, t: M.surface_metrics(p, t, ("hd101",)), "between 0 and 100"),
    (lambda p, t: M.hausdorff_distance(p, t, surface="mesh"), "surface must be one of"),
    (lambda p, t: M.hausdorff_distance(p, t, connectivity=3), "connectivity must be an int"),
    (lambda p, t: M.hausdorff_distance(p, t, percentile_mode="x"), "percentile_mode must be"),
    (lambda p, t: M.hausdorff_distance(p, t, empty_distance="nan"), "empty_distance must be"),
    (lambda p, t: M.hausdorff_distance(p[..., None, None], t[..., None, None], surface="surfel"),
     "2-D or 3-D"),
])
def test_invalid_arguments(call, match):
    pred, target = _pair_batch(6, (6, 7), batch=1, classes=2)
    with pytest.raises((ValueError, TypeError), match=match):
        call(torch.from_numpy(pred).float(), torch.from_numpy(target).float())


# ---------------------------------------------------------------------------------------------
# Accumulating classes, single process and 2-process DDP (gloo)


def _class_cases():
    return [
        lambda base: _cls(base, "HausdorffDistance")(95, **ALL),
        lambda base: _cls(base, "AverageSurfaceDistance")(surface="surfel", spacing=(1.0, 2.0),
                                                           **ALL),
        lambda base: _cls(base, "SurfaceDice")([1.0, 2.0, 1.5], reduction="mean", **ALL),
    ]


def _cls(base: str, name: str):
    if base == "default":
        return getattr(M, name)
    logic = getattr(classes, f"_{name}Logic")
    return type(f"Plain{name}", (logic, classes._PlainMetric), {})


def _batches():
    pred, target = _pair_batch(7, (14, 15), batch=4)
    pred[1, 0] = target[1, 0] = False
    return torch.from_numpy(pred), torch.from_numpy(target)


@pytest.mark.parametrize("base", ["default", "plain"])
def test_metric_classes_accumulate(base):
    pred, target = _batches()
    hd = _cls(base, "HausdorffDistance")(95, reduction="none", **ALL)
    hd.update(pred[:3], target[:3])
    hd.update(pred[3:], target[3:])
    torch.testing.assert_close(hd.compute(),
                               M.hausdorff_distance(pred, target, percentile=95, **ALL),
                               equal_nan=True)
    hd.reset()
    hd.update(pred, target)
    full = M.surface_metrics(pred, target, ("hd95",), **ALL)
    summary = hd.summary()
    expected = full.summarize("hd95")
    torch.testing.assert_close(summary.mean, expected.mean)
    assert summary.n_both_empty.tolist() == [1, 0, 0]


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                         world_size=world)
    try:
        pred, target = _batches()
        results = []
        for base in ("default", "plain"):
            for make in _class_cases():
                metric = make(base)
                metric.update(pred[rank::world], target[rank::world])
                results.append(metric.compute())
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()


def test_metric_classes_ddp_equal_single_process():
    pred, target = _batches()
    single = []
    for base in ("default", "plain"):
        for make in _class_cases():
            metric = make(base)
            metric.update(pred, target)
            single.append(metric.compute())
    with tempfile.TemporaryDirectory() as tmp:
        torch.multiprocessing.spawn(_ddp_worker, args=(2, os.path.join(tmp, "init"), tmp),
                                    nprocs=2, join=True)
        for rank in range(2):
            got = torch.load(os.path.join(tmp, f"rank{rank}.pt"))
            for a, b in zip(got, single):
                torch.testing.assert_close(a, b, equal_nan=True)


@pytest.mark.parametrize("q", [0.0, 0.5, 0.95, 1.0])
def test_quantile_linear_equals_torch_quantile_per_row(q):
    """Directed.quantile_linear (two order statistics from a topk) equals torch.quantile of each
    row's real entries, in any row order: rows of 0, 1 and many entries, ties, +inf entries (the
    other surface empty)."""
    rng = np.random.default_rng(int(q * 100))
    counts = [0, 1, 2, 7, 40, 40, 3]
    width = max(counts) + 5
    dist = torch.full((len(counts), width), math.inf, dtype=torch.float64)
    for r, c in enumerate(counts):
        values = torch.from_numpy(rng.integers(0, 6, c) * 0.7)  # ties
        if r == 5:
            values[: c // 3] = math.inf
        dist[r, :c] = values
    rows = distances.Directed(dist, (dist < math.inf).double(), torch.tensor(counts))
    got = rows.quantile_linear(q)
    for r, c in enumerate(counts):
        if c == 0:
            continue  # the caller replaces rows without entries
        want = torch.quantile(dist[r, :c], q) if r != 5 else None
        if r == 5:  # torch.quantile of +inf entries: numpy's rule, inf where they meet
            sorted_row = dist[r, :c].sort().values
            pos = q * (c - 1)
            lo, hi = sorted_row[math.floor(pos)], sorted_row[min(math.floor(pos) + 1, c - 1)]
            want = lo if lo == hi else torch.lerp(lo, hi, torch.tensor(pos - math.floor(pos),
                                                                       dtype=torch.float64))
        torch.testing.assert_close(got[r], want, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(rows.quantile_linear(q), rows.sorted().quantile_linear(q))
