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

pytestmark = pytest.mark.skipif(not extension.AVAILABLE,
                                reason="the launch plan comes from gpudist._C (not built)")


@pytest.fixture(scope="module", params=["plain", "tsan", "asan"])
def exe(request):
    try:
        return emulator.build(request.param)
    except emulator.Unavailable as exc:
        pytest.skip(f"{request.param}: {exc}")


def _check(exe, src, num_classes=0, spacing=None, convention="edt", black_border=False,
           dtype=torch.float32, resident=256, free_bytes=None, seed=0):
    spacing = spacing or (1.0,) * (src.dim() - 1)
    out = emulator.run_transform(exe, src, num_classes, spacing, convention, black_border, dtype,
                                 resident, free_bytes, seed)
    ref = scipy_reference.distance_transform(src, num_classes, spacing, convention, black_border,
                                            torch.float64)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.double(), ref, rtol=tol, atol=tol,
                               msg=lambda m: f"{tuple(src.shape)} {convention} {spacing} "
                                             f"border={black_border} {dtype}: {m}")


@pytest.mark.parametrize("shape", [(3, 130), (2, 9, 40), (1, 13, 17, 33), (2, 3, 4, 5, 6)], ids=str)
def test_masks(exe, shape):
    g = torch.Generator().manual_seed(zlib.crc32(repr(shape).encode()))
    spacing = tuple((0.3 + 2.5 * torch.rand(len(shape) - 1, generator=g,
                                            dtype=torch.float64)).tolist())
    mask = torch.rand(shape, generator=g) < 0.7
    for i, (convention, border, dtype) in enumerate(
            [("edt", False, torch.float32), ("edt", True, torch.float64),
             ("sdf", False, torch.float32), ("unsigned", False, torch.float64)]):
        _check(exe, mask, spacing=spacing, convention=convention, black_border=border,
               dtype=dtype, seed=i)


def test_labels_and_rounds(exe):
    """Label maps, and a scratch budget small enough that the envelope passes take rounds."""
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 3, (2, 10, 7, 9), generator=g).to(torch.uint8)
    _check(exe, labels, num_classes=3, spacing=(1.0, 2.5, 0.7), convention="kervadec")
    mask = torch.rand((2, 40, 70), generator=g) < 0.8
    _check(exe, mask, spacing=(1.7, 0.6), convention="sdf", free_bytes=4 * 64 * 3 * 42 * 8)


def test_nasty(exe):
    single = torch.zeros(1, 9, 8, 7, dtype=torch.bool)
    single[0, 4, 0, 6] = True
    for mask in (torch.zeros(2, 5, 6, dtype=torch.bool), torch.ones(1, 200, dtype=torch.bool),
                 single, ~single):
        for convention in ("edt", "kervadec"):
            _check(exe, mask, convention=convention)


def test_model_counts_sectors():
    """The coalescing model on today's kernels: pass 1 (one thread per contiguous line) touches
    a sector per lane per request; the envelope pass along a strided axis reads a warp's 32
    adjacent float32 columns in 4 sectors."""
    try:
        exe = emulator.build("model")
    except emulator.Unavailable as exc:
        pytest.skip(str(exc))
    mask = torch.rand((1, 64, 256), generator=torch.Generator().manual_seed(0)) < 0.9
    first, envelope = emulator.model_transform(exe, mask, (1.0, 1.0), "edt", torch.float32,
                                               resident=1 << 20, l2_bytes=1 << 16,
                                               free_bytes=1 << 34)
    assert first.sectors_per_request > 16
    assert 4 <= envelope.sectors_per_request < 16
    voxels = mask.numel()
    assert first.dram_read + first.dram_write >= 5 * voxels  # at least the floor
