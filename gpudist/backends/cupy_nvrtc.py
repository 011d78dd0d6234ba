"""CuPy backend: the CUDA kernels of csrc/kernels, compiled at run time by NVRTC (cupy.RawModule).

The same source as the extension's CUDA kernels (edt_kernels.cu and edt_variant_kernels.cu with
their headers inlined), run by the same launch plans (csrc/distance_transform/cuda_plan.h, read
through the extension's host-only ops `gpudist::cuda_launch_plan` and
`gpudist::cuda_variant_plan`, so the CPU build of `gpudist._C` is needed), on torch's current
stream, reading and writing torch-allocated memory in place (zero-copy). Wrapped as the custom
ops `gpudist::distance_transform_cupy`, `gpudist::multilabel_edt_cupy`,
`gpudist::metric_transform_cupy` and `gpudist::feature_transform_cupy`, opaque to torch.compile.
CuPy is optional: `gpudist[cupy]`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from . import extension
from .contract import (
    check_arguments,
    check_feature_arguments,
    check_metric_arguments,
    check_multilabel_arguments,
    convention_code,
    fake_features,
    fake_metric,
    fake_multilabel,
    fake_transform,
    is_two_sided,
    out_sizes,
)
from .extension import PassLaunch

NVRTC_OPTIONS = ("--std=c++17",)
SRC_CODES = {torch.bool: "u8", torch.uint8: "u8", torch.int32: "i32", torch.int64: "i64"}
OUT_CODES = {torch.float32: "f32", torch.float64: "f64"}
METRIC_CODES = {"taxicab": 1, "chessboard": 2}  # enum Metric, csrc/kernels/edt_metrics.cuh
KERNEL_FILES = ("edt_kernels.cu", "edt_variant_kernels.cu")
VARIANT_KERNEL_NAMES = tuple(
    f"gd_{kind}_{o}" for o in ("f32", "f64")
    for kind in ["multilabel_u8", "multilabel_i32", "multilabel_i64", "metric", "features",
                 "finalize"])
KERNEL_NAMES = tuple(f"gd_{kind}{gen}_{s}{o}" for gen in ("", "2")
                     for kind, s in [("first_pass", f"{s}_") for s in ("u8", "i32", "i64")]
                     + [("envelope", "")] for o in ("f32", "f64")) + VARIANT_KERNEL_NAMES


def kernel_dir() -> str:
    """gpudist/kernels in an installed package, else csrc/kernels of the source tree."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = os.path.join(package, "kernels")
    if os.path.isfile(os.path.join(installed, "edt_kernels.cu")):
        return installed
    return os.path.join(os.path.dirname(package), "csrc", "kernels")


def kernel_source() -> tuple[str, tuple[str, ...]]:
    """The exact NVRTC source (KERNEL_FILES with every local header inlined once, so that CuPy's
    cache key covers them) and options."""
    directory = kernel_dir()
    seen: set[str] = set()

    def inline(name: str) -> str:
        seen.add(name)
        with open(os.path.join(directory, name)) as f:
            text = f.read().replace("#pragma once\n", "")
        return re.sub(r'^#include "([^"]+)"[^\n]*$',
                      lambda m: "" if m.group(1) in seen else inline(m.group(1)), text,
                      flags=re.MULTILINE)

    return "\n".join(inline(name) for name in KERNEL_FILES), NVRTC_OPTIONS


def spacing_table(rows: Sequence[Sequence[float]], raw: bool = False) -> np.ndarray:
    """The kernels' per-item spacing table (LineSpacing, csrc/kernels/edt_line.cuh): per row the
    nd pass weights (s / scale)^2 (`raw`: the spacing itself, as the metric kernels take it),
    then scale (the row's largest) and shift (half its smallest), as the extension's launchers
    build it (csrc/cuda_launch.h's line_spacing_table)."""
    return np.array([[s if raw else (s / max(row)) ** 2 for s in row]
                     + [max(row), 0.5 * min(row)] for row in rows], dtype=np.float64)


def _spacing_args(buffers: dict[str, Any], rows: Sequence[Sequence[float]], lines: int,
                  axis: int) -> tuple[Any, ...]:
    """LineSpacing's four kernel arguments: the table ("rows" in buffers, with several rows) or
    a null pointer, one item's lines, the row stride and the axis."""
    return (buffers["rows"] if len(rows) > 1 else np.uint64(0), np.int64(lines // len(rows)),
            np.int64(len(rows[0]) + 2), np.int64(axis))


def kernel_args(launch: PassLaunch, buffers: dict[str, Any], src_dtype: torch.dtype,
                num_classes: int, rows: Sequence[Sequence[float]], convention: str,
                black_border: bool, dtype: torch.dtype,
                generation: int = 1) -> tuple[str, tuple[Any, ...]]:
    """The kernel name and arguments of one launch of the plan, as the extension's launcher
    passes them (csrc/distance_transform/distance_transform_cuda.cu); `rows` the spacing's rows
    (contract.rows_of_spacing: one, or one per source item); `buffers` maps "src", "out", "tmp",
    "scratch" and, with several rows, "rows" (their spacing_table) to what the kernel gets for
    them (device pointers or arrays); generation 2: the second generation's kernels (same
    arguments)."""
    first = rows[0]
    scale = max(first)
    w = (first[launch.axis] / scale) ** 2
    fin = (np.int32(convention_code(convention)), np.float64(scale),
           np.float64(0.5 * min(first)))
    common = (np.float64(w), np.int32(is_two_sided(convention)), np.int32(bool(black_border)),
              np.int32(launch.finalize)) + fin
    spacing = _spacing_args(buffers, rows, launch.lines, launch.axis)
    geometry = (np.int64(launch.n), np.int64(launch.inner))
    out = OUT_CODES[dtype]
    gen = "2" if generation == 2 else ""
    if launch.src == "src":
        return (f"gd_first_pass{gen}_{SRC_CODES[src_dtype]}_{out}",
                (buffers["src"], buffers[launch.dst]) + geometry
                + (np.int64(launch.outer), np.int64(launch.lines), np.int64(num_classes))
                + common + spacing)
    return (f"gd_envelope{gen}_{out}",
            (buffers[launch.src], buffers[launch.dst]) + geometry
            + (np.int64(launch.lines), np.int64(launch.slots)) + common
            + (buffers["scratch"],) + spacing)


def variant_kernel_name(op: str, src_dtype: torch.dtype, dtype: torch.dtype) -> str:
    """The kernel of the passes of variant `op` (extension.VARIANT_OPS) for these dtypes."""
    if op == "multilabel":
        return f"gd_multilabel_{SRC_CODES[src_dtype]}_{OUT_CODES[dtype]}"
    return f"gd_{'metric' if op in METRIC_CODES else 'features'}_{OUT_CODES[dtype]}"


def variant_kernel_args(op: str, launch: PassLaunch, buffers: dict[str, Any],
                        src_dtype: torch.dtype, rows: Sequence[Sequence[float]],
                        black_border: bool, dtype: torch.dtype,
                        squared: bool = False) -> tuple[str, tuple[Any, ...]]:
    """The kernel name and arguments of one launch of a variant's plan (`op` in
    extension.VARIANT_OPS; extension.cuda_variant_plan), as the extension's launcher passes them
    (csrc/distance_transform/variants_cuda.cu); `rows` the spacing's rows (one, or one per
    item); `buffers` maps "src", "out", "scratch" (and "feat" for "features"; "rows", the
    spacing_table, raw for the metrics, with several rows) to what the kernel gets for them;
    squared: multilabel only."""
    first_row = rows[0]
    scale = max(first_row)
    w = np.float64((first_row[launch.axis] / scale) ** 2)
    name = variant_kernel_name(op, src_dtype, dtype)
    head = (np.int64(launch.n), np.int64(launch.inner))
    lines = (np.int64(launch.lines), np.int64(launch.slots))
    first, border = np.int32(launch.axis == 0), np.int32(bool(black_border))
    spacing = _spacing_args(buffers, rows, launch.lines, launch.axis)
    if op == "multilabel":
        convention = np.int32(convention_code("edt_squared" if squared else "edt"))
        return (name, (buffers["src"], buffers["out"]) + head + lines
                + (w, border, first, np.int32(launch.finalize), convention, np.float64(scale),
                   buffers["scratch"]) + spacing)
    if op in METRIC_CODES:
        return (name, (buffers["src"], buffers["out"]) + head + lines
                + (np.float64(first_row[launch.axis]), np.int32(METRIC_CODES[op]), border,
                   first, buffers["scratch"]) + spacing)
    return (name, (buffers["src"], buffers["out"], buffers["feat"]) + head
            + (np.int64(launch.outer),) + lines + (w, first, buffers["scratch"]) + spacing)


def finalize_kernel_args(buffers: dict[str, Any], count: int, rows: Sequence[Sequence[float]],
                         dtype: torch.dtype) -> tuple[str, tuple[int, ...], tuple[Any, ...]]:
    """The kernel name, grid and arguments of the launch that turns the feature transform's
    squared distances in "out" (`count` values, of len(rows) items with several rows) into
    distances (variants_cuda.cu)."""
    grid = (max(1, min(-(-count // extension.CUDA_BLOCK), 65536)),)
    return (f"gd_finalize_{OUT_CODES[dtype]}", grid,
            (buffers["out"], np.int64(count), np.int32(convention_code("edt")),
             np.float64(max(rows[0])), np.float64(0.0)) + _spacing_args(buffers, rows, count, 0))


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


@functools.cache
def blocks_per_sm(name: str, device_index: int) -> int:
    """Blocks of the plan's block size of kernel `name` that one multiprocessor holds at once
    (the driver's occupancy API)."""
    import cupy

    kernel = _module(device_index).get_function(name)
    block = extension.CUDA_BLOCK
    with cupy.cuda.Device(device_index):
        try:
            return max(1, cupy.cuda.driver.occupancyMaxActiveBlocksPerMultiprocessor(
                kernel.kernel.ptr, block, 0))
        except AttributeError:  # a CuPy without it: registers (allocated per warp by 256)
            props = torch.cuda.get_device_properties(device_index)
            per_warp = -(-kernel.num_regs * 32 // 256) * 256
            return max(1, min(props.max_threads_per_multi_processor // block,
                              props.regs_per_multiprocessor // (per_warp * (block // 32))))


def resident(device: torch.device, kind: str, dtype: torch.dtype = torch.float32,
             generation: int = 1) -> int:
    """Threads of the envelope (kind "envelope") or first-pass ("first_pass") kernel the device
    holds at once, as the extension's launcher asks it (csrc/cuda_launch.h)."""
    gen = "2" if generation == 2 else ""
    name = (f"gd_envelope{gen}_{OUT_CODES[dtype]}" if kind == "envelope"
            else f"gd_first_pass{gen}_u8_{OUT_CODES[dtype]}")
    return _resident_of(name, device)


def _resident_of(name: str, device: torch.device) -> int:
    """Threads of kernel `name` the device holds at once (csrc/cuda_launch.h)."""
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return sms * blocks_per_sm(name, device.index) * extension.CUDA_BLOCK


def free_bytes(device: torch.device) -> int:
    """Device memory free, plus what torch's caching allocator holds unused."""
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


class Launches:
    """The kernel launches of one transform, ready to run (`calls`, one per pass) inside
    `context()` (the device and torch's current stream); `out` is written by the last."""

    def __init__(self, src: torch.Tensor, num_classes: int, rows: Sequence[Sequence[float]],
                 convention: str, black_border: bool, dtype: torch.dtype) -> None:
        self.device = src.device
        self.out = torch.empty(out_sizes(src, num_classes), dtype=dtype, device=src.device)
        self.calls: list[Any] = []
        if self.out.numel() == 0:
            return
        generation = extension.cuda_kernel_generation()
        plan = extension.cuda_launch_plan(
            src.shape[1:], src.shape[0] * max(num_classes, 1),
            resident(src.device, "envelope", dtype, generation), free_bytes(src.device),
            resident(src.device, "first_pass", dtype, generation), generation, dtype)
        self._buffers = {"src": src, "out": self.out}  # kept alive with the launches
        if len(plan.passes) > 1:
            self._buffers["tmp"] = torch.empty_like(self.out)
        if plan.scratch_words:
            self._buffers["scratch"] = torch.empty(plan.scratch_words, dtype=torch.float64,
                                                   device=src.device)
        if len(rows) > 1:
            self._buffers["rows"] = torch.from_numpy(spacing_table(rows)).to(src.device)
        with self.context():
            views = {name: _as_cupy(t) for name, t in self._buffers.items()}
            module = _module(src.device.index)
            for launch in plan.passes:
                name, args = kernel_args(launch, views, src.dtype, num_classes, rows,
                                         convention, black_border, dtype, generation)
                self.calls.append(functools.partial(module.get_function(name), (launch.blocks,),
                                                    (plan.block,), args))

    def context(self) -> Any:
        """The device and torch's current stream, as CuPy's current ones."""
        return _context(self.device)


def _context(device: torch.device) -> Any:
    """The device and torch's current stream, as CuPy's current ones."""
    import cupy

    stack = contextlib.ExitStack()
    stack.enter_context(cupy.cuda.Device(device.index))
    stack.enter_context(_stream(device))
    return stack


@torch.library.custom_op("gpudist::distance_transform_cupy", mutates_args=(), device_types="cuda")
def distance_transform_cupy(src: torch.Tensor, num_classes: int, spacing: list[float],
                            convention: str, black_border: bool, dtype: torch.dtype,
                            max_distance: float | None = None) -> torch.Tensor:
    """The op `gpudist::distance_transform` (same contract) run by the NVRTC-compiled kernels;
    max_distance is checked, then unused (every distance is computed)."""
    rows = check_arguments(src, num_classes, spacing, convention, black_border, dtype,
                           max_distance)
    launches = Launches(src.contiguous(), num_classes, rows, convention, black_border, dtype)
    with launches.context():
        for call in launches.calls:
            call()
    return launches.out


distance_transform_cupy.register_fake(fake_transform)


def distance_transform(src: torch.Tensor, num_classes: int, spacing: Sequence[float],
                       convention: str, black_border: bool, dtype: torch.dtype,
                       max_distance: float | None = None) -> torch.Tensor:
    """The backend contract (see `contract`), on CUDA tensors."""
    return distance_transform_cupy(src, num_classes, list(spacing), convention, black_border,
                                   dtype, max_distance)


def _run_variant(op: str, src: torch.Tensor, rows: Sequence[Sequence[float]],
                 black_border: bool, dtype: torch.dtype,
                 squared: bool = False) -> dict[str, torch.Tensor]:
    """Runs variant `op` (extension.VARIANT_OPS) on the contiguous CUDA tensor src with the
    spacing's `rows`: its "out" (and "feat" for "features"), as the extension's launcher does
    (variants_cuda.cu)."""
    device = src.device
    buffers = {"src": src, "out": torch.empty(src.shape, dtype=dtype, device=device)}
    if op == "features":
        buffers["feat"] = torch.empty(src.shape, dtype=torch.int64, device=device)
    if src.numel() == 0:
        return buffers
    resident = _resident_of(variant_kernel_name(op, src.dtype, dtype), device)
    plan = extension.cuda_variant_plan(src.shape[1:], src.shape[0], op, resident,
                                       free_bytes(device))
    buffers["scratch"] = torch.empty(max(plan.scratch_words, 1), dtype=torch.float64,
                                     device=device)
    if len(rows) > 1:
        table = spacing_table(rows, raw=op in METRIC_CODES)
        buffers["rows"] = torch.from_numpy(table).to(device)
    with _context(device):
        views = {key: _as_cupy(t) for key, t in buffers.items()}
        module = _module(device.index)
        for launch in plan.passes:
            name, args = variant_kernel_args(op, launch, views, src.dtype, rows, black_border,
                                             dtype, squared)
            module.get_function(name)((launch.blocks,), (plan.block,), args)
        if op == "features":
            name, grid, args = finalize_kernel_args(views, src.numel(), rows, dtype)
            module.get_function(name)(grid, (extension.CUDA_BLOCK,), args)
    return buffers


@torch.library.custom_op("gpudist::multilabel_edt_cupy", mutates_args=(), device_types="cuda")
def multilabel_edt_cupy(labels: torch.Tensor, spacing: list[float], black_border: bool,
                        squared: bool, dtype: torch.dtype) -> torch.Tensor:
    """The op gpudist::multilabel_edt (same contract) run by the NVRTC-compiled kernels."""
    rows = check_multilabel_arguments(labels, spacing, dtype)
    return _run_variant("multilabel", labels.contiguous(), rows, black_border, dtype,
                        squared)["out"]


multilabel_edt_cupy.register_fake(fake_multilabel)


@torch.library.custom_op("gpudist::metric_transform_cupy", mutates_args=(), device_types="cuda")
def metric_transform_cupy(src: torch.Tensor, spacing: list[float], metric: str,
                          black_border: bool, dtype: torch.dtype) -> torch.Tensor:
    """The op gpudist::metric_transform (same contract) run by the NVRTC-compiled kernels."""
    rows = check_metric_arguments(src, spacing, metric, dtype)
    return _run_variant(metric, src.contiguous(), rows, black_border, dtype)["out"]


metric_transform_cupy.register_fake(fake_metric)


@torch.library.custom_op("gpudist::feature_transform_cupy", mutates_args=(),
                         device_types="cuda")
def feature_transform_cupy(src: torch.Tensor, spacing: list[float],
                           dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The op gpudist::feature_transform (same contract) run by the NVRTC-compiled kernels."""
    rows = check_feature_arguments(src, spacing, dtype)
    out = _run_variant("features", src.contiguous(), rows, False, dtype)
    return out["out"], out["feat"]


feature_transform_cupy.register_fake(fake_features)


def multilabel_edt(labels: torch.Tensor, spacing: Sequence[float], black_border: bool,
                   squared: bool, dtype: torch.dtype) -> torch.Tensor:
    """The multi-label backend contract (see `contract`), on CUDA tensors."""
    return multilabel_edt_cupy(labels, list(spacing), black_border, squared, dtype)


def metric_transform(src: torch.Tensor, spacing: Sequence[float], metric: str,
                     black_border: bool, dtype: torch.dtype) -> torch.Tensor:
    """The metric backend contract (see `contract`), on CUDA tensors."""
    return metric_transform_cupy(src, list(spacing), metric, black_border, dtype)


def feature_transform(src: torch.Tensor, spacing: Sequence[float],
                      dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The feature backend contract (see `contract`), on CUDA tensors."""
    return feature_transform_cupy(src, list(spacing), dtype)
