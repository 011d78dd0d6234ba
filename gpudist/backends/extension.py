"""The compiled extension `gpudist._C`: loading, the fake kernels of its ops for torch.compile, and
the Python wrappers of its ops.

GPUDIST_NO_EXTENSION=1 in the environment, at build time or at import time, leaves it out. A
library built for another torch release (or CUDA version) than the running one is not loaded: one
warning, and gpudist runs on its numba / scipy backends."""

from __future__ import annotations

import importlib.util
import mmap
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .contract import fake_features, fake_metric, fake_multilabel, fake_transform

_BUILD_INFO = b"gpudist-build-info "  # csrc/library.cpp's gpudist_build_info


def built_with(path: str) -> dict[str, str] | None:
    """{"torch": version, "cuda": version or ""} that the library file at `path` records (read
    from the file, without loading it); None when it records none."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            start = data.find(_BUILD_INFO)
            if start < 0:
                return None
            line = data[start + len(_BUILD_INFO):data.find(b"\n", start)].decode()
    except (OSError, ValueError):  # unreadable or empty
        return None
    return dict(field.split("=", 1) for field in line.split())


def mismatch(built: dict[str, str]) -> str | None:
    """Why a library built with `built` (see built_with) cannot run beside the running torch, or
    None when it can: another torch release (its C++ ABI changes between releases), or CUDA
    kernels built for another CUDA version than the running torch's."""
    if built["torch"].split("+")[0] != torch.__version__.split("+")[0]:
        return f"it was built for torch {built['torch']}, this is torch {torch.__version__}"
    if built["cuda"] and built["cuda"] != (torch.version.cuda or ""):
        return (f"its CUDA kernels were built for CUDA {built['cuda']}, this torch "
                f"({torch.__version__}) has CUDA {torch.version.cuda or 'none'}")
    return None


def _load() -> str | None:
    """Imports gpudist._C (registering torch.ops.gpudist.*); why not, or None when it loaded."""
    if os.environ.get("GPUDIST_NO_EXTENSION", "0") == "1":
        return "disabled by GPUDIST_NO_EXTENSION=1"
    spec = importlib.util.find_spec("gpudist._C")
    if spec is None or spec.origin is None:  # built with GPUDIST_NO_EXTENSION=1, or not built
        return "No module named 'gpudist._C'"
    built = built_with(spec.origin)
    why = mismatch(built) if built else None
    if why:
        warnings.warn(f"gpudist: not loading its compiled extension: {why}. Falling back to the "
                      "numba / scipy backends (CPU). Rebuild gpudist against this torch: "
                      "`pip install --no-build-isolation --no-deps --force-reinstall <gpudist "
                      "source>`", RuntimeWarning, stacklevel=3)
        return why
    try:
        from .. import _C  # noqa: F401
    except ImportError as exc:  # the build failed, or a library that does not link
        warnings.warn(f"gpudist: the compiled extension failed to load ({exc}); falling back to "
                      "the numba CPU backend", RuntimeWarning, stacklevel=3)
        return str(exc)
    return None


LOAD_ERROR: str | None = _load()
AVAILABLE = LOAD_ERROR is None
# The library loaded (None when it was not).
EXTENSION_PATH: str | None = None if LOAD_ERROR else sys.modules["gpudist._C"].__file__
CUDA_BLOCK = 128  # threads per block of the EDT kernels (kCudaBlock, cuda_plan.h)


def has_kernel(op: str, device: torch.device | str) -> bool:
    """True when the extension is loaded and has a kernel of `op` ("gpudist::name") for the
    device's type."""
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(torch.device(device).type)
    if not AVAILABLE or key is None:
        return False
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(op, key)
    except RuntimeError:  # the op is not registered (an extension built from older sources)
        return False


def has_cuda_kernels() -> bool:
    """True when the extension was built with its CUDA kernels."""
    return has_kernel("gpudist::distance_transform", "cuda")


if AVAILABLE:

    torch.library.register_fake("gpudist::distance_transform")(fake_transform)

    torch.library.register_fake("gpudist::multilabel_edt")(fake_multilabel)
    torch.library.register_fake("gpudist::metric_transform")(fake_metric)
    torch.library.register_fake("gpudist::feature_transform")(fake_features)

    @torch.library.register_fake("gpudist::distance_at")
    def _distance_at_fake(sites: torch.Tensor, query: torch.Tensor, spacing: Sequence[float],
                          dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        torch._check(sites.dim() >= 2, lambda: "sites must be (batch, *spatial)")
        torch._check(query.shape == sites.shape, lambda: "query must have the shape of sites")
        items = sites.shape[0]
        width = torch.library.get_ctx().new_dynamic_size()
        return (sites.new_empty((items, width), dtype=dtype),
                sites.new_empty((items,), dtype=torch.int64))

    @torch.library.register_fake("gpudist::voxel_border")
    def _voxel_border_fake(mask: torch.Tensor, connectivity: int) -> torch.Tensor:
        return torch.empty_like(mask, memory_format=torch.contiguous_format)

    @torch.library.register_fake("gpudist::boundary_loss_forward")
    def _boundary_loss_forward_fake(logits: torch.Tensor, phi: torch.Tensor,
                                    idc: Sequence[int]) -> torch.Tensor:
        torch._check(phi.shape == logits.shape, lambda: "phi must have the shape of logits")
        return logits.new_empty((logits.shape[0],))

    @torch.library.register_fake("gpudist::boundary_loss_backward")
    def _boundary_loss_backward_fake(grad: torch.Tensor, logits: torch.Tensor, phi: torch.Tensor,
                                     idc: Sequence[int]) -> torch.Tensor:
        torch._check(phi.shape == logits.shape, lambda: "phi must have the shape of logits")
        return torch.empty_like(logits, memory_format=torch.contiguous_format)



def distance_transform(
    src: torch.Tensor,
    num_classes: int,
    spacing: Sequence[float],
    convention: str,
    black_border: bool,
    dtype: torch.dtype,
    max_distance: float | None = None,
) -> torch.Tensor:
    """The op; max_distance bounds the work only: distances beyond it may come back as +inf."""
    return torch.ops.gpudist.distance_transform.default(
        src, num_classes, list(spacing), convention, black_border, dtype, max_distance
    )


def _has_kernel_for(op: str, x: torch.Tensor) -> None:
    if not has_kernel(f"gpudist::{op}", x.device):
        raise NotImplementedError(f"gpudist::{op}: the extension has no {x.device.type} kernel "
                                  "(built without CUDA kernels?); the CPU backends (extension, "
                                  "numba, scipy) and the CuPy backend run it")


def multilabel_edt(labels: torch.Tensor, spacing: Sequence[float], black_border: bool,
                   squared: bool, dtype: torch.dtype) -> torch.Tensor:
    """The op gpudist::multilabel_edt (see contract), on CPU and CUDA tensors."""
    _has_kernel_for("multilabel_edt", labels)
    return torch.ops.gpudist.multilabel_edt.default(labels, list(spacing), black_border, squared,
                                                    dtype)


def metric_transform(src: torch.Tensor, spacing: Sequence[float], metric: str,
                     black_border: bool, dtype: torch.dtype) -> torch.Tensor:
    """The op gpudist::metric_transform (see contract), on CPU and CUDA tensors."""
    _has_kernel_for("metric_transform", src)
    return torch.ops.gpudist.metric_transform.default(src, list(spacing), metric, black_border,
                                                      dtype)


def feature_transform(src: torch.Tensor, spacing: Sequence[float],
                      dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The op gpudist::feature_transform (see contract), on CPU and CUDA tensors."""
    _has_kernel_for("feature_transform", src)
    return torch.ops.gpudist.feature_transform.default(src, list(spacing), dtype)


def distance_at(sites: torch.Tensor, query: torch.Tensor, spacing: Sequence[float],
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances from the query elements to the nearest site of their item, for bool sites and
    query (B, *spatial): (dist (B, K) of dtype, count (B,) int64), row b holding item b's
    count[b] distances in row-major order (edt(~sites, spacing)[query] of the item; +inf in an
    item without sites), then +inf; spacing: ndim values, or B * ndim (a row per item). Its work
    grows with the distances asked for rather than with the volume: for queries near the sites
    (one surface measured to another)."""
    return torch.ops.gpudist.distance_at.default(sites, query, list(spacing), dtype)


def voxel_border(mask: torch.Tensor, connectivity: int) -> torch.Tensor:
    """Border voxels mask XOR erode(mask) of bool masks (N, *spatial), outside the image
    background (the rule of gpudist.metrics.surfaces.voxel_border); contiguous."""
    return torch.ops.gpudist.voxel_border.default(mask, connectivity)


@dataclass(frozen=True)
class PassLaunch:
    """One kernel launch of the CUDA plan (csrc/distance_transform/cuda_plan.h, PassLaunch)."""

    axis: int  # the spatial axis the lines run along
    n: int  # elements per line
    inner: int  # elements after the axis: a line's stride
    outer: int  # rows of n * inner elements per item
    lines: int
    slots: int  # working threads
    blocks: int
    src: str  # buffer read: "src", "out" or "tmp"
    dst: str  # buffer written
    finalize: bool  # the last pass, which writes the convention's values


@dataclass(frozen=True)
class CudaPlan:
    block: int  # threads per block
    scratch_words: int  # float64 words of envelope scratch
    passes: tuple[PassLaunch, ...]


_BUFFERS = ("src", "out", "tmp")  # enum PlanBuffer


def cuda_kernel_generation() -> int:
    """The CUDA kernels the CUDA backends launch: GPUDIST_CUDA_KERNELS=2 selects the second
    generation (warp-per-line pass 1, windowed envelope with a warp-uniform stack fallback,
    packed stack); 1, the default, today's."""
    value = os.environ.get("GPUDIST_CUDA_KERNELS", "1")
    if value not in ("1", "2"):
        raise ValueError(f"GPUDIST_CUDA_KERNELS must be 1 or 2, got {value!r}")
    return int(value)


def cuda_launch_plan(spatial: Sequence[int], items: int, resident: int,
                     free_bytes: int | None = None, first_resident: int | None = None,
                     generation: int = 1, dtype: torch.dtype = torch.float32) -> CudaPlan:
    """The launches of one CUDA transform of `items` items of extents `spatial` (all > 0), as the
    extension's CUDA launcher runs them (csrc/distance_transform/cuda_plan.h), on a device that
    holds `resident` threads of the envelope kernel at once (`first_resident` of the first-pass
    kernel; default: `resident`) with `free_bytes` of memory free (the envelope scratch takes at
    most min(1 GiB, free_bytes / 4); default: 1 GiB), for the kernels of `generation` (1 or 2)
    writing `dtype` (float32 or float64)."""
    if generation not in (1, 2):
        raise ValueError(f"generation must be 1 or 2, got {generation!r}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return _plan(torch.ops.gpudist.cuda_launch_plan.default(
        list(spatial), items, resident, free_bytes, first_resident, generation, dtype.itemsize))


# The variants of the transform, as the op gpudist::cuda_variant_plan numbers them (VariantOp).
VARIANT_OPS = ("multilabel", "taxicab", "chessboard", "features")


def cuda_variant_plan(spatial: Sequence[int], items: int, op: str, resident: int,
                      free_bytes: int | None = None) -> CudaPlan:
    """The launches of one CUDA variant transform (`op` in VARIANT_OPS: multilabel_edt,
    metric_transform's two metrics, feature_transform) of `items` items of extents `spatial`
    (all > 0), as the extension's launcher runs them (csrc/distance_transform/cuda_plan.h,
    cuda_variant_plan): pass p along axis p, in place on "out" (pass 0 reads "src"), on a device
    that holds `resident` threads of the kernel at once, with `free_bytes` free."""
    if op not in VARIANT_OPS:
        raise ValueError(f"op must be one of {VARIANT_OPS}, got {op!r}")
    return _plan(torch.ops.gpudist.cuda_variant_plan.default(
        list(spatial), items, VARIANT_OPS.index(op), resident, free_bytes))


def _plan(flat: list[int]) -> CudaPlan:
    """A plan from the integers of csrc flat_plan()."""
    block, words, count = flat[:3]
    width = (len(flat) - 3) // count  # kPassFields
    fields = [flat[3 + width * p: 3 + width * (p + 1)] for p in range(count)]
    passes = tuple(PassLaunch(*f[:7], _BUFFERS[f[7]], _BUFFERS[f[8]], bool(f[9])) for f in fields)
    return CudaPlan(block, words, passes)
