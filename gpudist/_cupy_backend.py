"""CuPy backend: the CUDA kernels of csrc/kernels, compiled at run time by NVRTC (cupy.RawModule).

The same source as the extension's CUDA kernels (edt_kernels.cu with edt_line.cuh inlined), launched
with the same geometry and pass order as csrc/edt_cuda.cu, on torch's current stream, reading and
writing torch-allocated memory in place (zero-copy). Wrapped as the custom op
`gpudist::distance_transform_cupy`, opaque to torch.compile. CuPy is optional: `gpudist[cupy]`.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import _backends

BLOCK = 128  # threads per block, injected as GD_BLOCK
NVRTC_OPTIONS = ("--std=c++17",)
CONVENTIONS = {"edt": 0, "edt_squared": 1, "kervadec": 2, "sdf": 3, "unsigned": 4}
SRC_CODES = {torch.bool: "u8", torch.uint8: "u8", torch.int32: "i32", torch.int64: "i64"}
OUT_CODES = {torch.float32: "f32", torch.float64: "f64"}
SCRATCH_BYTES = 1 << 30  # GD_SCRATCH_BYTES of edt_kernels.cu


def kernel_dir() -> str:
    """gpudist/kernels in an installed package, else csrc/kernels of the source tree."""
    here = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(here, "kernels")
    if os.path.isfile(os.path.join(installed, "edt_kernels.cu")):
        return installed
    return os.path.join(os.path.dirname(here), "csrc", "kernels")


def kernel_source() -> tuple[str, tuple[str, ...]]:
    """The exact NVRTC source (edt_line.cuh inlined, so CuPy's cache key covers it) and options."""
    directory = kernel_dir()
    with open(os.path.join(directory, "edt_line.cuh")) as f:
        header = f.read().replace("#pragma once\n", "")
    with open(os.path.join(directory, "edt_kernels.cu")) as f:
        kernels = f.read()
    include = '#include "edt_line.cuh"\n'
    assert include in kernels, "edt_kernels.cu must include edt_line.cuh"
    source = f"#define GD_BLOCK {BLOCK}\n" + kernels.replace(include, header)
    return source, NVRTC_OPTIONS


# Launch geometry: mirrors envelope_words / launch_slots / blocks_for of edt_kernels.cu.
def envelope_words(n: int) -> int:
    return 3 * n + 6


def launch_slots(lines: int, resident: int, words: int) -> int:
    slots = min(lines, resident)
    if words > 0:
        slots = min(slots, SCRATCH_BYTES // (8 * words))
    return max(1, slots)


def blocks_for(slots: int) -> int:
    return -(-slots // BLOCK)


@dataclass(frozen=True)
class Launch:
    """One kernel launch: args hold numpy scalars and the buffer names "src", "out", "tmp",
    "scratch", replaced by device pointers by whoever launches."""

    kernel: str
    blocks: int
    args: tuple[Any, ...]


def launch_plan(src_shape: Sequence[int], src_dtype: torch.dtype, num_classes: int,
                spacing: Sequence[float], convention: str, black_border: bool,
                dtype: torch.dtype, resident: int) -> tuple[list[Launch], int]:
    """The launches of one transform (as csrc/edt_cuda.cu) and its scratch size in 8-byte words.

    src is (B, *spatial); the output (B[, C], *spatial). Pass 1 runs along the last axis, the
    envelope passes along axes nd-2 .. 0; buffers alternate so that the last pass writes "out".
    """
    shape = [int(s) for s in src_shape[1:]]
    nd = len(shape)
    scale = max(spacing)
    w = [(s / scale) ** 2 for s in spacing]
    conv = CONVENTIONS[convention]
    fin = (np.int32(conv), np.float64(scale), np.float64(0.5 * min(spacing)))
    two_sided = np.int32(conv >= CONVENTIONS["kervadec"])
    border = np.int32(bool(black_border))
    items = int(src_shape[0]) * max(num_classes, 1)
    volume = math.prod(shape)
    out_code = OUT_CODES[dtype]
    buffers = ["out" if (nd - 1 - p) % 2 == 0 else "tmp" for p in range(nd)]

    n = shape[-1]
    lines = items * volume // n
    launches = [Launch(
        f"gd_first_pass_{SRC_CODES[src_dtype]}_{out_code}",
        blocks_for(launch_slots(lines, resident, 0)),
        ("src", buffers[0], np.int64(n), np.int64(1), np.int64(volume // n), np.int64(lines),
         np.int64(num_classes), np.float64(w[-1]), two_sided, border, np.int32(nd == 1)) + fin)]
    scratch = 0
    for p, a in enumerate(range(nd - 2, -1, -1), start=1):
        n = shape[a]
        lines = items * volume // n
        slots = launch_slots(lines, resident, envelope_words(n))
        scratch = max(scratch, slots * envelope_words(n))
        launches.append(Launch(
            f"gd_envelope_{out_code}", blocks_for(slots),
            (buffers[p - 1], buffers[p], np.int64(n), np.int64(math.prod(shape[a + 1:])),
             np.int64(lines), np.int64(slots), np.float64(w[a]), two_sided, border,
             np.int32(a == 0)) + fin
            + ("scratch",)))
    return launches, scratch


@functools.cache
def _module(device_index: int) -> Any:
    import cupy

    source, options = kernel_source()
    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(code=source, options=options)
        module.compile()
    return module


def _stream(device: torch.device) -> Any:
    """torch's current stream on `device`, as a CuPy stream."""
    import cupy

    ts = torch.cuda.current_stream(device)
    if hasattr(ts, "__cuda_stream__") and hasattr(cupy.cuda.Stream, "from_external"):
        return cupy.cuda.Stream.from_external(ts)
    return cupy.cuda.ExternalStream(ts.cuda_stream, device.index)


def _as_cupy(t: torch.Tensor) -> Any:
    """A flat CuPy view of the contiguous CUDA tensor t, sharing its memory."""
    import cupy

    mem = cupy.cuda.UnownedMemory(t.data_ptr(), t.numel() * t.element_size(), t, t.device.index)
    arr = cupy.ndarray((t.numel(),), dtype=str(t.dtype).removeprefix("torch."),
                       memptr=cupy.cuda.MemoryPointer(mem, 0))
    assert arr.data.ptr == t.data_ptr(), "CuPy view does not alias the torch tensor"
    return arr


@torch.library.custom_op("gpudist::distance_transform_cupy", mutates_args=(), device_types="cuda")
def distance_transform_cupy(src: torch.Tensor, num_classes: int, spacing: list[float],
                            convention: str, black_border: bool,
                            dtype: torch.dtype) -> torch.Tensor:
    """The op `gpudist::distance_transform` (same contract) run by the NVRTC-compiled kernels."""
    import cupy

    if src.dim() != len(spacing) + 1:
        raise ValueError("gpudist: src must be (batch, *spatial)")
    src = src.contiguous()
    if (src.dtype not in SRC_CODES or (src.dtype == torch.bool) != (num_classes == 0)
            or dtype not in OUT_CODES or convention not in CONVENTIONS):
        raise ValueError("gpudist: bad src dtype, dtype or convention for the cupy backend")
    device = src.device
    out = torch.empty(_backends.out_sizes(src, num_classes), dtype=dtype, device=device)
    if out.numel() == 0:
        return out
    props = torch.cuda.get_device_properties(device)
    resident = props.multi_processor_count * props.max_threads_per_multi_processor
    launches, words = launch_plan(src.shape, src.dtype, num_classes, spacing, convention,
                                  black_border, dtype, resident)
    buffers = {"src": src, "out": out}
    if len(launches) > 1:
        buffers["tmp"] = torch.empty_like(out)
    if words:
        buffers["scratch"] = torch.empty(words, dtype=torch.float64, device=device)
    with cupy.cuda.Device(device.index), _stream(device):
        views = {name: _as_cupy(t) for name, t in buffers.items()}
        module = _module(device.index)
        for launch in launches:
            args = tuple(views[a] if isinstance(a, str) else a for a in launch.args)
            module.get_function(launch.kernel)((launch.blocks,), (BLOCK,), args)
    return out


distance_transform_cupy.register_fake(_backends.fake_transform)


def distance_transform(src: torch.Tensor, num_classes: int, spacing: Sequence[float],
                       convention: str, black_border: bool, dtype: torch.dtype,
                       max_distance: float | None = None) -> torch.Tensor:
    """The backend contract; max_distance is a work bound the kernels do not use."""
    return distance_transform_cupy(src, num_classes, list(spacing), convention, black_border, dtype)
