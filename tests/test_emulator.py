"""The CUDA kernels on the block emulator (tests/cuda_shim: a thread per CUDA thread, barriers,
shared memory, warp exchanges, random start order), compared with scipy; under ThreadSanitizer and
AddressSanitizer too (skipped, with the reason, where the sanitizer's runtime is missing). The
emulator's own warp operations and barriers are checked on a self-test kernel."""

from __future__ import annotations

import os
import sys
import zlib

import numpy as np
import pytest
import torch

from gpudist.backends import extension, scipy_reference

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "cuda_shim"))
import emulator  # noqa: E402
from common import assert_matches, brute_force_metric, multilabel_reference, scipy_edt  # noqa: E402

pytestmark = pytest.mark.skipif(not extension.AVAILABLE,
                                reason="the launch plan comes from gpudist._C (not built)")


@pytest.fixture(scope="module", params=["plain", "tsan", "asan"])
def exe(request):
    try:
        return emulator.build(request.param)
    except emulator.Unavailable as exc:
        pytest.skip(f"{request.param}: {exc}")


@pytest.fixture(params=[1, 2], ids=["gen1", "gen2"])
def generation(request):
    return request.param


def _check(exe, src, num_classes=0, spacing=None, convention="edt", black_border=False,
           dtype=torch.float32, resident=256, free_bytes=None, seed=0, generation=1):
    spacing = spacing or (1.0,) * (src.dim() - 1)
    out = emulator.run_transform(exe, src, num_classes, spacing, convention, black_border, dtype,
                                 resident, free_bytes, seed, generation)
    ref = scipy_reference.distance_transform(src, num_classes, spacing, convention, black_border,
                                            torch.float64)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.double(), ref, rtol=tol, atol=tol,
                               msg=lambda m: f"{tuple(src.shape)} {convention} {spacing} "
                                             f"border={black_border} {dtype} "
                                             f"generation {generation}: {m}")


@pytest.mark.parametrize("shape", [(3, 130), (2, 9, 40), (1, 13, 17, 33), (2, 3, 4, 5, 6)], ids=str)
def test_masks(exe, generation, shape):
    g = torch.Generator().manual_seed(zlib.crc32(repr(shape).encode()))
    spacing = tuple((0.3 + 2.5 * torch.rand(len(shape) - 1, generator=g,
                                            dtype=torch.float64)).tolist())
    mask = torch.rand(shape, generator=g) < 0.7
    for i, (convention, border, dtype) in enumerate(
            [("edt", False, torch.float32), ("edt", True, torch.float64),
             ("sdf", False, torch.float32), ("unsigned", False, torch.float64)]):
        _check(exe, mask, spacing=spacing, convention=convention, black_border=border,
               dtype=dtype, seed=i, generation=generation)


def test_labels_and_rounds(exe, generation):
    """Label maps, and a scratch budget small enough that the envelope passes take rounds."""
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 3, (2, 10, 7, 9), generator=g).to(torch.uint8)
    _check(exe, labels, num_classes=3, spacing=(1.0, 2.5, 0.7), convention="kervadec",
           generation=generation)
    mask = torch.rand((2, 40, 70), generator=g) < 0.8
    _check(exe, mask, spacing=(1.7, 0.6), convention="sdf", free_bytes=4 * 64 * 3 * 42 * 8,
           generation=generation)


def test_spacing_row_per_item(exe, generation):
    """B * ndim spacing values (the kernels read each line's row from the table): masks, label
    maps whose classes share their item's row, and scratch rounds that mix the items' lines."""
    g = torch.Generator().manual_seed(11)
    mask = torch.rand((3, 12, 35), generator=g) < 0.7
    _check(exe, mask, spacing=(1.0, 2.5, 0.3, 0.4, 700.0, 90.0), convention="sdf",
           generation=generation)
    labels = torch.randint(0, 3, (2, 6, 5, 9), generator=g).to(torch.uint8)
    _check(exe, labels, num_classes=3, spacing=(1.0, 2.5, 0.7, 3.0, 0.2, 0.2),
           convention="kervadec", dtype=torch.float64, generation=generation)
    _check(exe, mask, spacing=(1.7, 0.6, 0.6, 1.7, 1.0, 1.0), free_bytes=4 * 64 * 3 * 42 * 8,
           generation=generation)


def test_stack_fallback_and_exact_test(exe, generation):
    """Long distances (the second generation's windowed envelope falls back to the stack, warp
    by warp), isotropic (its division-free test) and anisotropic, 64 lines: two warps."""
    mask = torch.ones((1, 64, 90), dtype=torch.bool)
    mask[0, 5, 7] = mask[0, 60, 80] = mask[0, 33, 3] = False
    mask[0, 40:, :45] = torch.rand((24, 45), generator=torch.Generator().manual_seed(1)) < 0.9
    for spacing in ((1.0, 1.0), (1.3, 0.4)):
        for convention in ("edt", "sdf"):
            _check(exe, mask, spacing=spacing, convention=convention, generation=generation)
    _check(exe, mask, black_border=True, dtype=torch.float64, generation=generation)


def test_nasty(exe):
    single = torch.zeros(1, 9, 8, 7, dtype=torch.bool)
    single[0, 4, 0, 6] = True
    for mask in (torch.zeros(2, 5, 6, dtype=torch.bool), torch.ones(1, 200, dtype=torch.bool),
                 single, ~single):
        for convention in ("edt", "kervadec"):
            for generation in (1, 2):
                _check(exe, mask, convention=convention, generation=generation)


# --- the variants: multilabel_edt, metric_transform, feature_transform ------------------------

VARIANT_CASES = [((2, 9, 13), (1.3, 0.7)), ((3, 130), (0.6,)), ((1, 7, 1, 11), (0.9, 2.0, 1.1)),
                 ((2, 4, 5, 6, 3), (1.0, 0.4, 1.7, 1.2))]


@pytest.mark.parametrize("shape,spacing", VARIANT_CASES, ids=str)
def test_variants(exe, shape, spacing):
    """Each variant's CUDA passes against its independent reference (scipy per label, brute
    force, scipy's EDT), on 37 resident threads (fewer than the lines: rounds), float32 and
    float64, with and without black_border; items without background included."""
    rng = np.random.default_rng(zlib.crc32(repr(shape).encode()))
    labels = rng.integers(0, 4, shape)
    labels[0] = labels[0] != 0  # one label and the background
    mask = rng.random(shape) < 0.75
    mask[-1] = True  # an item without background
    for i, dtype in enumerate((torch.float32, torch.float64)):
        rtol = 1e-6 if dtype == torch.float32 else 1e-12
        label_dtype = (torch.uint8, torch.int32, torch.int64)[(i + len(shape)) % 3]
        for border in (False, True):
            got = emulator.run_variant(exe, "multilabel", torch.from_numpy(labels).to(label_dtype),
                                       spacing, border, dtype, 37, seed=i)["out"]
            assert_matches(got, np.stack([multilabel_reference(x, spacing, border)
                                          for x in labels]), rtol)
            for metric in ("taxicab", "chessboard"):
                got = emulator.run_variant(exe, metric, torch.from_numpy(mask), spacing, border,
                                           dtype, 37, seed=i)["out"]
                assert_matches(got, np.stack([brute_force_metric(m, spacing, metric, border)
                                              for m in mask]), rtol)
        got = emulator.run_variant(exe, "features", torch.from_numpy(mask), spacing, False, dtype,
                                   37, seed=i)
        dist, feat = got["out"].double().numpy(), got["feat"].numpy()
        assert_matches(dist, np.stack([scipy_edt(m, spacing) for m in mask]), rtol)
        h = np.asarray(spacing).reshape((-1,) + (1,) * (len(shape) - 1))
        for m, d, f in zip(mask, dist, feat):
            if m.all():
                assert (f == -1).all()
                continue
            at = np.stack(np.unravel_index(f, m.shape))
            assert not m[tuple(at)].any()  # a background element
            np.testing.assert_allclose(np.sqrt((((at - np.indices(m.shape)) * h) ** 2).sum(0)),
                                       d, rtol=rtol)
        _, cpu = extension.feature_transform(torch.from_numpy(mask), spacing, dtype)
        np.testing.assert_array_equal(feat, cpu.numpy())  # the same tie rule


def test_variants_squared_and_scratch_rounds(exe):
    """multilabel_edt squared, and a scratch budget small enough that the envelope passes of
    every variant run in rounds of 32 threads."""
    rng = np.random.default_rng(3)
    labels = torch.from_numpy(rng.integers(0, 3, (2, 40, 70))).to(torch.int32)
    mask = labels != 0
    spacing = (1.7, 0.6)
    small = 4 * 32 * 4 * 72 * 8  # 32 threads of 4 arrays of 70 + 2 words
    got = emulator.run_variant(exe, "multilabel", labels, spacing, False, torch.float64, 10**6,
                               small, squared=True)["out"]
    assert_matches(got, np.stack([multilabel_reference(x, spacing, False) ** 2
                                  for x in labels.numpy()]), 1e-12)
    for op in ("chessboard", "features"):
        got = emulator.run_variant(exe, op, mask, spacing, False, torch.float32, 10**6, small)
        if op == "chessboard":
            ref = extension.metric_transform(mask, spacing, op, False, torch.float32)
        else:
            ref, feat = extension.feature_transform(mask, spacing, torch.float32)
            torch.testing.assert_close(got["feat"], feat, rtol=0, atol=0)
        torch.testing.assert_close(got["out"], ref, rtol=0, atol=0)


def test_variants_spacing_row_per_item(exe):
    """B * ndim spacing values in every variant (each line reads its item's row from the table,
    the features' finalize each value's): bit-equal to the CPU ops, which take the same rows
    (tests/test_contract.py checks those per item against the references), with and without
    scratch rounds that mix the items' lines."""
    rng = np.random.default_rng(12)
    labels = torch.from_numpy(rng.integers(0, 3, (3, 30, 41))).to(torch.int32)
    mask = labels != 0
    spacing = (1.7, 0.6, 0.3, 0.3, 800.0, 90.0)
    small = 4 * 32 * 4 * 43 * 8  # rounds of 32 threads
    for free in (None, small):
        got = emulator.run_variant(exe, "multilabel", labels, spacing, True, torch.float64,
                                   10**6, free)["out"]
        ref = extension.multilabel_edt(labels, spacing, True, False, torch.float64)
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
        for op in ("taxicab", "chessboard", "features"):
            got = emulator.run_variant(exe, op, mask, spacing, False, torch.float32, 10**6, free)
            if op == "features":
                ref, feat = extension.feature_transform(mask, spacing, torch.float32)
                torch.testing.assert_close(got["feat"], feat, rtol=0, atol=0)
            else:
                ref = extension.metric_transform(mask, spacing, op, False, torch.float32)
            torch.testing.assert_close(got["out"], ref, rtol=0, atol=0)


def test_emulator_exchanges(exe):
    """Shared memory, barriers and every warp exchange against numpy, in 3 blocks of 128."""
    values = np.random.default_rng(0).integers(0, 100, 384).astype(np.int32)
    script = emulator.Script()
    src, out = script.buffer("in", values), script.buffer("out", nbytes=384 * 8 * 4)
    script.launch("gd_selftest", (3,), 128, (src, out), seed=1)
    script.dump("out", np.int32, (384, 8))
    got = script.run(exe)[0]["out"]
    tiles, warps = values.reshape(3, 128), values.reshape(12, 32)
    lanes = np.arange(384) % 32
    np.testing.assert_array_equal(got[:, 0], tiles[:, ::-1].ravel())
    np.testing.assert_array_equal(got[:, 1], np.repeat(warps.sum(1), 32))
    odd = (warps & 1).astype(np.int64) << np.arange(32)
    np.testing.assert_array_equal(got[:, 2].astype(np.uint32), np.repeat(odd.sum(1), 32))
    np.testing.assert_array_equal(got[:, 3], np.where(lanes > 0, np.roll(values, 1), values))
    np.testing.assert_array_equal(got[:, 4], np.where(lanes < 31, np.roll(values, -1), values))
    np.testing.assert_array_equal(got[:, 5], np.repeat(warps[:, 5], 32))
    np.testing.assert_array_equal(got[:, 6], 1)
    np.testing.assert_array_equal(got[:, 7], np.repeat((warps > 90).any(1), 32))


def test_emulator_catches_a_shuffle_with_an_exited_lane(exe):
    script = emulator.Script()
    script.launch("gd_selftest_exited", (1,), 32, (script.buffer("out", nbytes=128),), seed=0)
    with pytest.raises(AssertionError, match="exited"):
        script.run(exe)


def test_tsan_catches_a_shared_memory_race():
    try:
        exe = emulator.build("tsan")
    except emulator.Unavailable as exc:
        pytest.skip(f"tsan: {exc}")
    script = emulator.Script()
    script.launch("gd_selftest_race", (1,), 64, (script.buffer("out", nbytes=256),), seed=0)
    with pytest.raises(AssertionError, match="data race"):
        script.run(exe)


def test_model_counts_sectors():
    """The coalescing model on a float32 edt of a (1, 64, 256) noise mask: today's pass 1 (one
    thread per contiguous line) touches a sector per lane per request, the second generation's
    (a warp per line) at most the 4 of 32 adjacent floats, and moves the floor's 5 bytes/voxel;
    the second generation's envelope (windowed, straight from memory) moves fewer DRAM bytes
    than today's stack in global scratch."""
    try:
        exe = emulator.build("model")
    except emulator.Unavailable as exc:
        pytest.skip(str(exc))
    mask = torch.rand((1, 64, 256), generator=torch.Generator().manual_seed(0)) < 0.9
    (first1, envelope1), (first2, envelope2) = (
        emulator.model_transform(exe, mask, (1.0, 1.0), "edt", torch.float32, resident=1 << 20,
                                 l2_bytes=1 << 16, free_bytes=1 << 34, generation=g)
        for g in (1, 2))
    assert first1.sectors_per_request == 32
    assert first2.sectors_per_request <= 4
    voxels = mask.numel()
    dram = [(p.dram_read + p.dram_write) / voxels for p in (first1, envelope1, first2, envelope2)]
    assert dram[0] >= 5 and dram[2] == 5  # read 1 byte of mask, write 4 bytes
    assert dram[3] < dram[1] / 2
