"""Issue 13's edge cases, each on every backend (the fast ones and the scipy reference): layouts,
empty and 0-d inputs, long lines (bounded scratch, exact), the spacing range, overflow,
out-of-range labels, argument types."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

import gpudist
from common import Target, assert_close_map, assert_matches, blobs, scipy_edt, targets, to_numpy

EVERY = targets() + [Target("scipy", "cpu")]
CPU = [t for t in EVERY if t.device == "cpu"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(params=EVERY, ids=str)
def every(request):
    return request.param


@pytest.fixture(params=CPU, ids=str)
def every_cpu(request):
    return request.param


def signed_reference(mask, spacing, convention):
    """The scipy reference backend's map (float64)."""
    return gpudist.signed_distance(mask, spacing, convention=convention, dtype=torch.float64,
                                   backend="scipy")


# --- 1. numpy layouts ---------------------------------------------------------------------------

def test_negative_stride_on_a_size_one_axis(every_cpu):
    img = blobs((1, 13, 17), 3, seed=1)
    flipped = np.flip(img, 0)  # stride < 0 on the size-1 axis; numpy still calls it contiguous
    assert flipped.strides[0] < 0 and flipped.flags.c_contiguous
    out = gpudist.edt(flipped, backend=every_cpu.backend)
    assert_matches(out, scipy_edt(img, (1, 1, 1)))
    out = gpudist.signed_distance(np.ones((1, 4), bool)[::-1], backend=every_cpu.backend)
    assert (out == 0).all()
    labels = np.flip(img.astype(np.int64), 0)
    maps = gpudist.labels_to_dist(labels, 2, backend=every_cpu.backend)
    assert maps.shape == (1, 2, 13, 17)


def test_read_only_arrays_give_no_warning(every_cpu):
    mask = np.broadcast_to(blobs((9, 11), 2, seed=2), (3, 9, 11))
    assert not mask.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = gpudist.edt(mask, ndim=2, backend=every_cpu.backend)
        gpudist.labels_to_dist(np.broadcast_to(np.arange(4) % 2, (2, 4)), 2,
                               backend=every_cpu.backend)
    assert_matches(out[1], scipy_edt(mask[1], (1, 1)))


# --- 2. zero-size spatial dims ------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 0, 3), (0, 4, 3), (3, 4, 0)])
def test_zero_size_inputs_give_empty_results(every, shape):
    mask = every.put(torch.ones(shape, dtype=torch.bool))
    b = every.backend
    assert gpudist.edt(mask, ndim=2, backend=b).shape == shape
    assert gpudist.signed_distance(mask, ndim=2, backend=b).shape == shape
    labels = every.put(torch.zeros(shape, dtype=torch.int64))
    assert gpudist.labels_to_dist(labels, 3, backend=b).shape == (shape[0], 3) + shape[1:]
    assert gpudist.one_hot_to_dist(mask[:, None].expand(-1, 2, -1, -1), validate=False,
                                   backend=b).shape == (shape[0], 2) + shape[1:]


# --- 3. metrics on empty batch, class or spatial dims (fixed earlier; kept pinned) ---------------

@pytest.mark.parametrize("metric", ["hausdorff_distance", "average_surface_distance"])
def test_metrics_on_empty_dims(metric):
    fn = getattr(gpudist.metrics, metric)
    z = torch.zeros(1, 1, 9, 9, 9)
    assert fn(z[:, 1:], z[:, 1:]).shape == (1, 0)
    assert fn(z[:0], z[:0]).shape == (0, 1)
    e = torch.zeros(2, 3, 0, 5)
    assert fn(e, e, include_background=True).shape == (2, 3)


# --- 4. long lines: streamed in place, exact, bounded scratch -----------------------------------

# Lines longer than these take the streaming envelope (cpu_passes.h, kScratchBytes = 2 MiB):
# the last axis beyond 65536 (float32) elements, a middle axis beyond 9709. The numba fallback
# (first pass along the last axis) streams the other axes beyond 74898 (float32) elements.
LONG_LAST, LONG_MIDDLE, LONG_FIRST = 70_001, 10_007, 80_003


@pytest.mark.parametrize("density", [0.5, 0.999, 0.99999])
def test_long_last_axis(every_cpu, density):
    mask = np.random.default_rng(4).random((3, LONG_LAST)) < density
    mask[2] = True
    mask[2, [17, LONG_LAST - 9]] = False  # far from everything in between
    for spacing in [(1.0, 1.0), (3.0, 0.01)]:
        out = gpudist.edt(mask, spacing, backend=every_cpu.backend)
        assert_matches(out, scipy_edt(mask, spacing))
    out = gpudist.edt(mask[1:2], black_border=True, backend=every_cpu.backend)
    assert_matches(out, ndimage.distance_transform_edt(np.pad(mask[1:2], 1))[1:-1, 1:-1])


@pytest.mark.parametrize("convention", ["kervadec", "sdf", "unsigned"])
def test_long_lines_signed(every_cpu, convention):
    mask = np.random.default_rng(5).random((2, LONG_LAST)) < 0.9
    mask[1] = np.arange(LONG_LAST) % 20000 < 9000  # long runs of either class
    out = gpudist.signed_distance(mask, (2.0, 0.5), convention=convention,
                                  backend=every_cpu.backend)
    assert_close_map(out, to_numpy(signed_reference(mask, (2.0, 0.5), convention)))


def test_long_middle_axis(every_cpu):
    mask = np.random.default_rng(6).random((3, LONG_MIDDLE, 3)) < 0.995
    out = gpudist.edt(mask, (1.0, 0.7, 1.3), backend=every_cpu.backend)
    assert_matches(out, scipy_edt(mask, (1.0, 0.7, 1.3)))
    out = gpudist.signed_distance(mask, (1.0, 0.7, 1.3), convention="sdf",
                                  backend=every_cpu.backend)
    assert_close_map(out, to_numpy(signed_reference(mask, (1.0, 0.7, 1.3), "sdf")))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_long_first_axis(every_cpu, dtype):
    mask = np.random.default_rng(8).random((LONG_FIRST, 2)) < 0.999
    mask[:, 1] = True
    mask[[5, LONG_FIRST - 30], 1] = False
    out = gpudist.edt(mask, (0.3, 2.0), dtype=dtype, backend=every_cpu.backend)
    assert_matches(out, scipy_edt(mask, (0.3, 2.0)))
    out = gpudist.signed_distance(mask, (0.3, 2.0), convention="sdf", dtype=dtype,
                                  backend=every_cpu.backend)
    assert_close_map(out, to_numpy(signed_reference(mask, (0.3, 2.0), "sdf")))


@pytest.mark.parametrize("threads", [1, 2])
def test_wide_first_pass_tiles_and_their_remainders(threads):
    """The extension's pass 1 runs 128 lines in lockstep where the batch has 8 such tiles per
    thread, then 16, then one by one: widths of 128 k + 16 + 5 and 128 k + 7, mask and labels,
    one- and two-sided, both dtypes, against scipy."""
    if "extension" not in gpudist.available_backends():
        pytest.skip("gpudist._C is not built")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rng = np.random.default_rng(threads)
        for shape in [(3, 9, 6, 128 * 6 + 21), (1, 40, 128 * 17 + 7)]:
            mask = rng.random(shape) < 0.9
            spacing = (1.3, 0.7, 1.1)[:len(shape) - 1]
            for dtype in (torch.float32, torch.float64):
                out = gpudist.edt(mask, spacing, ndim=len(shape) - 1, dtype=dtype,
                                  backend="extension")
                assert_matches(out, np.stack([scipy_edt(m, spacing) for m in mask]))
                out = gpudist.signed_distance(mask, spacing, ndim=len(shape) - 1,
                                              convention="sdf", dtype=dtype, backend="extension")
                expected = np.stack([signed_reference(m, spacing, "sdf") for m in mask])
                assert_close_map(out, expected)
        labels = torch.from_numpy(rng.integers(0, 3, (2, 11, 128 * 9 + 30)))
        out = gpudist.labels_to_dist(labels, 3, spacing=(0.9, 1.2), backend="extension")
        for c in range(3):
            expected = np.stack([signed_reference(x, (0.9, 1.2), "kervadec")
                                 for x in (labels == c).numpy()])
            assert_close_map(out[:, c], expected)
    finally:
        torch.set_num_threads(old)


def test_long_lines_with_many_live_parabolas(every_cpu):
    """A flat last-axis parabola (spacing 1000:1): each element waits for sites up to thousands
    of elements ahead, so the streaming stack holds thousands of parabolas and must grow and
    compact (its first allocation holds 1024)."""
    mask = np.random.default_rng(7).random((12, LONG_LAST)) < 0.6
    out = gpudist.edt(mask, (1000.0, 1.0), backend=every_cpu.backend)
    assert_matches(out, scipy_edt(mask, (1000.0, 1.0)))
    mask = np.ones((40, LONG_LAST), bool)
    mask[np.arange(40), np.arange(40) * 1700] = False  # costs rising along the line
    out = gpudist.edt(mask, (1000.0, 1.0), dtype=torch.float64, backend=every_cpu.backend)
    assert_matches(out, scipy_edt(mask, (1000.0, 1.0)), rtol=1e-12)


PEAK_SCRIPT = r"""
import sys, torch, gpudist
torch.set_num_threads(int(sys.argv[2]))
def hwm():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))
gpudist.edt(torch.ones(2, 8, dtype=torch.bool), backend=sys.argv[1])  # load, compile
mask = torch.rand(2, 2**22) < 0.999
mask[1] = True
mask[1, 5] = False
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the high-water mark restarts from the current RSS
before = hwm()
out = gpudist.edt(mask, backend=sys.argv[1])
print((hwm() - before - out.nbytes) / 2**20)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
@pytest.mark.parametrize("threads", [1, 2])
def test_long_line_scratch_is_bounded(every_cpu, threads):
    """Peak memory beyond the output for 2 lines of 2^22 elements (16 MiB each as float32):
    the per-line buffers of the plain envelope took about 40 bytes per element per thread."""
    if every_cpu.backend == "scipy":
        pytest.skip("the reference makes float64 copies by design")
    run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, every_cpu.backend, str(threads)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    extra_mib = float(run.stdout.split()[-1])
    assert extra_mib < 8 * threads, f"{extra_mib:.1f} MiB beyond the output"


# --- 5. the spacing range -----------------------------------------------------------------------

@pytest.mark.parametrize("spacing,dtype,match", [
    ((1e-20, 1.0), torch.float32, "largest value must be at most 1e\\+18 times the smallest"),
    ((1e-23, 1.0), torch.float32, "largest value must be at most 1e\\+18 times the smallest"),
    ((1e-150, 1.0), torch.float64, "largest value must be at most 1e\\+145 times the smallest"),
    ((1e-39, 1e-39), torch.float32, "spacing must be in the normal range of torch.float32"),
    ((1e39, 1e39), torch.float32, "spacing must be in the normal range of torch.float32"),
])
def test_spacing_outside_the_exact_range_is_refused(every, spacing, dtype, match):
    mask = every.put(torch.ones(1, 3, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match=match):
        gpudist.edt(mask, spacing, ndim=2, dtype=dtype, backend=every.backend)
    with pytest.raises(ValueError, match=match):
        gpudist.signed_distance(mask, spacing, ndim=2, dtype=dtype, backend=every.backend)


@pytest.mark.parametrize("ratio,dtype", [(1e18, torch.float32), (1e145, torch.float64)])
def test_spacing_at_the_edge_of_the_range_is_exact(every, ratio, dtype):
    mask = every.put(torch.ones(1, 3, 32, dtype=torch.bool))
    assert torch.isinf(gpudist.edt(mask, (1 / ratio, 1.0), ndim=2, dtype=dtype,
                                   backend=every.backend)).all()
    m = torch.ones(3, 32, dtype=torch.bool)
    m[0, 0] = False
    out = to_numpy(gpudist.edt(every.put(m), (1 / ratio, 1.0), dtype=dtype,
                               backend=every.backend))
    x = np.arange(32, dtype=np.float64)
    expected = np.sqrt((np.arange(3)[:, None] / ratio) ** 2 + x ** 2)
    assert_matches(out, expected)
    assert out[2, 5] == 5.0


# --- 6. overflow --------------------------------------------------------------------------------

def test_overflow_is_infinite_in_signed_maps(every):
    m = torch.zeros(1, 200, dtype=torch.bool)
    m[0, :10] = True
    inside = torch.ones(1, 200, dtype=torch.bool)
    inside[0, 199] = False
    m, inside = every.put(m), every.put(inside)
    for convention, sign in [("kervadec", -1), ("sdf", -1), ("unsigned", 1)]:
        out = to_numpy(gpudist.signed_distance(m, 1e37, convention=convention,
                                               backend=every.backend))
        assert out[0, 150] == np.inf, convention  # 1.4e39 in float64
        assert np.isfinite(out[0, 10]) and out[0, 10] != 0
        out = to_numpy(gpudist.signed_distance(inside, 1e37, convention=convention,
                                               backend=every.backend))
        assert out[0, 0] == sign * np.inf, convention  # 2e39 inside the mask
    assert to_numpy(gpudist.edt(m, 1e37, squared=True, backend=every.backend))[0, 0] == np.inf


# --- 7. out-of-range labels with validate=False -------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64])
def test_out_of_range_labels_belong_to_no_class(every, dtype):
    labels = torch.from_numpy(np.random.default_rng(8).integers(0, 3, (2, 9, 11)))
    labels[0, 4, 5] = 7  # beyond num_classes
    if dtype != torch.uint8:
        labels[1, 0, 0] = -2
    labels = labels.to(dtype)
    out = to_numpy(gpudist.labels_to_dist(every.put(labels), 3, (1.0, 0.5), validate=False,
                                          convention="sdf", backend=every.backend))
    one_hot = (labels.long()[:, None] == torch.arange(3)[None, :, None, None]).numpy()
    for b in range(2):
        for c in range(3):
            assert_close_map(out[b, c], to_numpy(signed_reference(one_hot[b, c], (1.0, 0.5),
                                                                  "sdf")))


# --- 8. argument types, 0-d inputs, the output checked before a big copy -------------------------

def test_numpy_and_tensor_scalars_are_accepted():
    mask = blobs((12, 14), 3, seed=9)
    ref = gpudist.edt(mask, max_distance=1.5)
    for limit in [np.float32(1.5), np.float64(1.5), torch.tensor(1.5), np.array(1.5)]:
        np.testing.assert_array_equal(gpudist.edt(mask, max_distance=limit), ref)
    with pytest.raises(TypeError, match="max_distance must be a real number"):
        gpudist.edt(mask, max_distance=torch.tensor([1.5]))
    labels = mask.astype(np.int64)[None]
    ref = gpudist.labels_to_dist(labels, 2)
    for k in [np.int64(2), np.int32(2), np.uint8(2)]:
        np.testing.assert_array_equal(gpudist.labels_to_dist(labels, k), ref)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        gpudist.labels_to_dist(labels, np.float64(2.0))
    for dtype in ["float64", np.dtype("float64"), np.float64, torch.float64]:
        assert gpudist.edt(mask, dtype=dtype).dtype == np.float64
    for dtype in ["float32", np.dtype("float32"), np.float32, torch.float32]:
        assert gpudist.edt(mask, dtype=dtype).dtype == np.float32
    for dtype in ["float16", np.dtype("int32"), "double-ish", torch.int32]:
        with pytest.raises(TypeError, match="dtype must be float32 or float64"):
            gpudist.edt(mask, dtype=dtype)


def test_uint64_labels_are_reported_as_they_are():
    labels = torch.tensor([[0, 1, 2**63 + 1]], dtype=torch.uint64)
    with pytest.raises(ValueError, match=r"largest label \(9223372036854775809\)"):
        gpudist.labels_to_dist(labels, 3)
    out = gpudist.labels_to_dist(labels, 3, validate=False)  # belongs to no class
    assert out[0, :2, 2].tolist() == [2.0, 1.0] and (out[0, 2] == 0).all()  # class 2 absent


@pytest.mark.parametrize("fn", [gpudist.edt, gpudist.signed_distance])
def test_zero_dim_inputs_are_refused(fn):
    for x in [torch.tensor(True), np.array(1.0)]:
        with pytest.raises(ValueError, match="mask must have at least 1 spatial dim"):
            fn(x)


def test_output_is_allocated_before_a_large_input_is_copied():
    """An expanded 2^46-element mask: its float32 output (256 TiB) cannot exist, which is said
    before the 64 TiB bool copy is tried."""
    huge = torch.ones(1, dtype=torch.uint8).expand(2**23, 2**23)
    with pytest.raises(MemoryError, match=r"cannot allocate the output, \(8388608, 8388608\)"):
        gpudist.edt(huge)
    with pytest.raises(MemoryError, match="cannot allocate the output"):
        gpudist.labels_to_dist(torch.zeros(1, dtype=torch.int64).expand(2**22, 2**22), 4)
