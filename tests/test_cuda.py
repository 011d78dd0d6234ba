"""GPU-only tests of the CUDA backends ("extension" built with CUDA, "cupy"): every output element
written (allocator poisoned first), a volume large enough for a bounded grid, torch.compile,
streams, CuPy zero-copy. The transform tests of test_edt.py / test_signed.py run on these
backends too (conftest.py crosses them with every target).

Marked `cuda`; skipped, with the reason shown, where torch sees no CUDA device.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

import gpudist
from gpudist.backends import extension, scipy_reference

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="no CUDA device (torch.cuda.is_available() is False)"),
]

CONVENTIONS = ("edt", "edt_squared", "kervadec", "sdf", "unsigned")
HAS_CUPY = importlib.util.find_spec("cupy") is not None


def _op(backend: str):
    if backend == "extension":
        if not extension.has_cuda_kernels():
            pytest.skip("gpudist._C was built without CUDA kernels")
        return torch.ops.gpudist.distance_transform.default
    if not HAS_CUPY:
        pytest.skip("CuPy is not installed (pip install gpudist[cupy])")
    from gpudist.backends import cupy_nvrtc

    return cupy_nvrtc.distance_transform_cupy


BACKENDS = ("extension", "cupy")


def _poison_allocator() -> None:
    """Fills freed blocks of torch's caching allocator with NaN, so unwritten outputs show."""
    blocks = [torch.full((1 << k,), float("nan"), device="cuda") for k in range(7, 27)]
    del blocks


def _check(op, src, num_classes=0, spacing=None, convention="edt", black_border=False,
           dtype=torch.float32):
    spacing = list(spacing or (1.0,) * (src.dim() - 1))
    _poison_allocator()
    out = op(src, num_classes, spacing, convention, black_border, dtype)
    ref = scipy_reference.distance_transform(src.cpu(), num_classes, spacing, convention,
                                            black_border, torch.float64)
    assert out.device == src.device and out.dtype == dtype and out.is_contiguous()
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.cpu().double(), ref, rtol=tol, atol=tol,
                               msg=lambda m: f"{tuple(src.shape)} {convention} {spacing} "
                                             f"border={black_border} {dtype}: {m}")


SHAPES = [(4, 300), (3, 1, 1), (5, 33, 130), (2, 128, 129), (2, 17, 9, 40), (1, 3, 5, 7, 9)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_random_masks(backend, shape):
    op = _op(backend)
    g = torch.Generator().manual_seed(len(shape) * 1000 + shape[-1])
    spacing = (0.3 + 2.5 * torch.rand(len(shape) - 1, generator=g, dtype=torch.float64)).tolist()
    for density in (0.5, 0.95):
        mask = (torch.rand(shape, generator=g) < density).cuda()
        for convention in CONVENTIONS:
            for dtype in (torch.float32, torch.float64):
                _check(op, mask, 0, spacing, convention, False, dtype)
                if convention.startswith("edt"):
                    _check(op, mask, 0, spacing, convention, True, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("label_dtype", [torch.uint8, torch.int32, torch.int64])
def test_labels(backend, label_dtype):
    op = _op(backend)
    labels = torch.randint(0, 3, (2, 40, 33, 7), generator=torch.Generator().manual_seed(1))
    for convention in ("kervadec", "sdf", "unsigned"):
        _check(op, labels.to(label_dtype).cuda(), 4, (1.0, 2.5, 0.7), convention)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("generation", ["1", "2"])
def test_spacing_row_per_item(backend, generation, monkeypatch):
    """B * ndim spacing values: each line reads its item's row from the kernels' table (masks and
    label maps, both kernel generations; scipy_reference applies row b to item b)."""
    monkeypatch.setenv("GPUDIST_CUDA_KERNELS", generation)
    op = _op(backend)
    g = torch.Generator().manual_seed(3)
    mask = (torch.rand(4, 37, 65, generator=g) < 0.8).cuda()
    rows = [1.0, 2.5, 0.3, 0.4, 700.0, 90.0, 1.0, 1.0]
    for convention in CONVENTIONS:
        _check(op, mask, 0, rows, convention)
    labels = torch.randint(0, 3, (2, 20, 9, 33), generator=g).cuda()
    _check(op, labels, 3, (1.0, 2.5, 0.7, 3.0, 0.2, 0.2), "kervadec", dtype=torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_anisotropic(backend):
    """Big enough for a bounded grid and the scratch budget; exact at scale (REFERENCE.md 6)."""
    op = _op(backend)
    mask = (torch.rand(1, 160, 192, 224, generator=torch.Generator().manual_seed(2)) < 0.99).cuda()
    _check(op, mask, 0, (2.5, 1.0, 0.7), "edt")
    _check(op, mask, 0, (2.5, 1.0, 0.7), "sdf")


@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_compile(backend):
    op = _op(backend)
    mask = torch.rand(2, 24, 40, device="cuda") < 0.5

    def fn(m):
        return op(m, 0, [1.0, 2.0], "kervadec", False, torch.float32) * 2

    compiled = torch.compile(fn, fullgraph=True)
    torch.testing.assert_close(compiled(mask), fn(mask))


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_default_stream(backend):
    op = _op(backend)
    stream = torch.cuda.Stream()
    mask = torch.rand(4, 64, 96, device="cuda") < 0.9
    torch.cuda.synchronize()
    with torch.cuda.stream(stream):
        if backend == "cupy":
            from gpudist.backends import cupy_nvrtc

            assert cupy_nvrtc._stream(mask.device).ptr == stream.cuda_stream
        busy = torch.randn(4096, 4096, device="cuda") @ torch.randn(4096, 4096, device="cuda")
        out = op(mask, 0, [1.0, 1.0], "edt", False, torch.float32)
    stream.synchronize()
    del busy
    ref = scipy_reference.distance_transform(mask.cpu(), 0, [1.0, 1.0], "edt", False, torch.float64)
    torch.testing.assert_close(out.cpu().double(), ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("per_item", [False, True], ids=["shared", "per_item"])
def test_variants(backend, per_item):
    """multilabel=True, metric= and return_indices=True on CUDA (allocator poisoned first) equal
    the CPU extension's (which the peer tests check against edt, scipy and brute force), on
    volumes with more lines than a round of threads; indices point at a nearest zero. per_item:
    a spacing row per item (the kernels' table)."""
    if backend == "extension" and not extension.has_cuda_kernels():
        pytest.skip("gpudist._C was built without CUDA kernels")
    if backend == "cupy" and not HAS_CUPY:
        pytest.skip("CuPy is not installed (pip install gpudist[cupy])")
    g = torch.Generator().manual_seed(11)
    labels = torch.randint(0, 4, (3, 40, 70, 50), generator=g)
    labels = labels[:, :, :, torch.arange(50) // 5]  # runs of a label, as in a segmentation
    mask = torch.rand((3, 40, 70, 50), generator=g) < 0.9
    spacing = ([[1.5, 0.6, 1.1], [0.3, 0.3, 2.0], [700.0, 90.0, 100.0]] if per_item
               else [1.5, 0.6, 1.1])
    for dtype in (torch.float32, torch.float64):
        tol = 1e-6 if dtype == torch.float32 else 1e-12
        for label_dtype in (torch.uint8, torch.int32, torch.int64):
            for border in (False, True):
                _poison_allocator()
                src = labels.to(label_dtype)
                out = gpudist.edt(src.cuda(), spacing, ndim=3, multilabel=True, dtype=dtype,
                                  black_border=border, backend=backend)
                ref = gpudist.edt(src, spacing, ndim=3, multilabel=True, dtype=dtype,
                                  black_border=border, backend="extension")
                torch.testing.assert_close(out.cpu(), ref, rtol=tol, atol=0)
        for metric in ("taxicab", "chessboard"):
            _poison_allocator()
            out = gpudist.edt(mask.cuda(), spacing, ndim=3, metric=metric, dtype=dtype,
                              backend=backend)
            ref = gpudist.edt(mask, spacing, ndim=3, metric=metric, dtype=dtype,
                              backend="extension")
            torch.testing.assert_close(out.cpu(), ref, rtol=tol, atol=0)
        _poison_allocator()
        dist, idx = gpudist.edt(mask.cuda(), spacing, ndim=3, return_indices=True, dtype=dtype,
                                backend=backend)
        ref, _ = gpudist.edt(mask, spacing, ndim=3, return_indices=True, dtype=dtype,
                             backend="extension")
        torch.testing.assert_close(dist.cpu(), ref, rtol=tol, atol=0)
        idx = idx.cpu()
        items = torch.arange(3).view(3, 1, 1, 1).expand_as(mask)
        assert not mask[items, idx[:, 0], idx[:, 1], idx[:, 2]].any()  # zeros
        h = torch.tensor(spacing, dtype=torch.float64).view(-1, 3, 1, 1, 1)
        grid = torch.stack(torch.meshgrid(*[torch.arange(n) for n in mask.shape[1:]],
                                          indexing="ij"))
        at = (((idx - grid) * h) ** 2).sum(1).sqrt()
        torch.testing.assert_close(at, ref.double(), rtol=tol, atol=0)


@pytest.mark.skipif(not HAS_CUPY, reason="CuPy is not installed (pip install gpudist[cupy])")
def test_cupy_zero_copy():
    import cupy

    from gpudist.backends import cupy_nvrtc

    t = torch.rand(3, 5, device="cuda")
    assert cupy_nvrtc._as_cupy(t).data.ptr == t.data_ptr()
    arr = cupy.asarray(torch.rand(2, 30, 40, device="cuda") < 0.5)
    out = gpudist.edt(arr, ndim=2)  # CuPy in, CuPy out, on the device
    assert isinstance(out, cupy.ndarray)
    ref = gpudist.edt(torch.as_tensor(arr, device="cuda").cpu(), ndim=2, backend="scipy")
    torch.testing.assert_close(torch.as_tensor(out, device="cuda").cpu(), ref)


@pytest.mark.parametrize("classes", [3, 70], ids=["mask", "flags"])
def test_fused_loss_captured_in_a_cuda_graph(classes):
    """Forward and backward of the fused loss captured in a CUDA graph (no host copy per call:
    the class subset is a 64-bit mask argument, or device flags above 64 classes), replayed on new
    inputs, equal to eager calls."""
    if not extension.has_kernel("gpudist::boundary_loss_forward", "cuda"):
        pytest.skip("gpudist._C was built without CUDA kernels")
    from gpudist.losses.fused import boundary_loss_from_logits

    g = torch.Generator(device="cuda").manual_seed(classes)
    shape, idc = (2, classes, 17, 33), [1, classes - 1]
    logits = torch.randn(shape, device="cuda", generator=g).requires_grad_()
    phi = torch.randn(shape, device="cuda", generator=g)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up outside the capture, as torch asks
        for _ in range(2):
            boundary_loss_from_logits(logits, phi, idc).sum().backward()
            logits.grad = None
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        loss = boundary_loss_from_logits(logits, phi, idc)
        loss.sum().backward()
    for _ in range(2):
        new_logits, new_phi = (torch.randn(shape, device="cuda", generator=g) for _ in range(2))
        with torch.no_grad():
            logits.copy_(new_logits)
            phi.copy_(new_phi)
        graph.replay()
        torch.cuda.synchronize()
        eager = new_logits.clone().requires_grad_()
        ref = boundary_loss_from_logits(eager, new_phi, idc)
        ref.sum().backward()
        torch.testing.assert_close(loss, ref.detach())
        torch.testing.assert_close(logits.grad, eager.grad)
