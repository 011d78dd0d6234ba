"""Builds and drives the CUDA block emulator (emulator.h, emulator.cpp, kernels.cpp): the launch
plan of gpudist's CUDA transform, with the CuPy backend's kernel arguments, run by a CPU
executable that gives every CUDA thread a thread of its own.

Flavors: "plain"; "tsan" and "asan" (ThreadSanitizer, AddressSanitizer); "model" (the memory
trace of the coalescing model: kernels.cpp instrumented by gcc's -fsanitize=thread, its hooks in
trace_hooks.cpp instead of the sanitizer's runtime). Every flavor is built with FMA contraction
(-mfma -ffp-contract=fast), as the GPU computes a * b + c.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KERNELS = os.path.join(ROOT, "csrc", "kernels")
CACHE = os.path.join(ROOT, "build", "emulator")
COMMON = ["-std=c++17", "-O1", "-g", "-pthread", "-mfma", "-ffp-contract=fast", "-Wall",
          "-Wextra", "-Werror", f"-I{KERNELS}", f"-I{HERE}"]
FLAVORS = {"plain": [], "tsan": ["-fsanitize=thread"],
           "asan": ["-fsanitize=address", "-fno-omit-frame-pointer"], "model": []}


class Unavailable(Exception):
    """The flavor cannot be built here (no g++, or no sanitizer runtime); the message says why."""


def _sources() -> list[str]:
    names = ["emulator.h", "emulator.cpp", "kernels.cpp", "kernel_list.inc", "selftest.cu",
             "trace_hooks.cpp"]
    kernels = sorted(f for f in os.listdir(KERNELS))
    return [os.path.join(HERE, n) for n in names] + [os.path.join(KERNELS, k) for k in kernels]


def _run(cmd: list[str]) -> None:
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"{' '.join(cmd)}\n{run.stdout}{run.stderr}")


def _probe(flags: list[str], cxx: str) -> str | None:
    """Why a trivial threaded program does not build and run with `flags`; None when it does."""
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "p.cpp"), os.path.join(tmp, "p")
        with open(src, "w") as f:
            f.write("#include <thread>\nint main(){int x=0;std::thread t([&]{x=1;});t.join();"
                    "return x-1;}\n")
        run = subprocess.run([cxx, "-std=c++17", "-pthread", *flags, "-o", exe, src],
                             capture_output=True, text=True)
        if run.returncode:
            return f"{' '.join(flags)} does not link here: {run.stderr.strip()[:200]}"
        run = subprocess.run([exe], capture_output=True, text=True)
        if run.returncode:
            return f"{' '.join(flags)} programs do not run here: {run.stderr.strip()[:200]}"
    return None


def build(flavor: str) -> str:
    """The emulator executable of `flavor`, built once per source version (under build/)."""
    cxx = shutil.which("g++")
    if cxx is None:
        raise Unavailable("g++ not found")
    digest = hashlib.sha256(repr(COMMON + FLAVORS[flavor]).encode())
    for path in _sources():
        with open(path, "rb") as f:
            digest.update(f.read())
    exe = os.path.join(CACHE, f"emulator-{flavor}-{digest.hexdigest()[:16]}")
    if os.path.exists(exe):
        return exe
    if FLAVORS[flavor]:
        reason = _probe(FLAVORS[flavor], cxx)
        if reason:
            raise Unavailable(reason)
    os.makedirs(CACHE, exist_ok=True)
    tmp = f"{exe}.{os.getpid()}"
    flags = COMMON + FLAVORS[flavor]
    if flavor == "model":
        obj = tmp + ".kernels.o"
        _run([cxx, *flags, "-fsanitize=thread", "-c", "-o", obj, os.path.join(HERE, "kernels.cpp")])
        _run([cxx, *flags, "-o", tmp, os.path.join(HERE, "emulator.cpp"),
              os.path.join(HERE, "trace_hooks.cpp"), obj])
        os.remove(obj)
    else:
        _run([cxx, *flags, "-o", tmp, os.path.join(HERE, "emulator.cpp"),
              os.path.join(HERE, "kernels.cpp")])
    os.replace(tmp, exe)
    return exe


@dataclass(frozen=True)
class Buffer:
    """A device buffer of the launch script, named as the plan names it."""

    name: str


def _token(arg) -> str:
    if isinstance(arg, Buffer):
        return f"b:{arg.name}"
    if isinstance(arg, np.int32):
        return f"i32:{int(arg)}"
    if isinstance(arg, (np.int64, int)):
        return f"i64:{int(arg)}"
    if isinstance(arg, np.uint64):
        return f"u64:{int(arg)}"
    if isinstance(arg, (np.float64, float)):
        return f"f64:{float(arg)!r}"
    raise TypeError(f"no emulator argument for {type(arg)}")


class Script:
    """A launch script (see emulator.cpp): buffers, launches, dumps; run() executes it."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.lines: list[str] = []
        self.dumps: dict[str, tuple[str, np.dtype, tuple[int, ...]]] = {}

    def buffer(self, name: str, data: np.ndarray | None = None, nbytes: int = 0,
               fill: str = "nan") -> Buffer:
        if data is not None:
            path = os.path.join(self.tmp.name, f"{name}.in")
            np.ascontiguousarray(data).tofile(path)
            self.lines.append(f"buffer {name} {data.nbytes} file:{path}")
        else:
            self.lines.append(f"buffer {name} {nbytes} {fill}")
        return Buffer(name)

    def launch(self, kernel: str, grid: Sequence[int], block: int, args: Sequence,
               seed: int) -> None:
        gx, gy = (list(grid) + [1])[:2]
        self.lines.append(f"launch {kernel} {gx} {gy} {block} {seed} {len(args)} "
                          + " ".join(_token(a) for a in args))

    def dump(self, name: str, dtype, shape: tuple[int, ...]) -> None:
        path = os.path.join(self.tmp.name, f"{name}.out")
        self.lines.append(f"dump {name} {path}")
        self.dumps[name] = (path, np.dtype(dtype), shape)

    def model(self, l2_bytes: int) -> None:
        self.lines.append(f"model {int(l2_bytes)}")

    def run(self, exe: str, timeout: float = 600) -> tuple[dict[str, np.ndarray], str]:
        path = os.path.join(self.tmp.name, "script")
        with open(path, "w") as f:
            f.write("\n".join(self.lines) + "\n")
        env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66",
                   ASAN_OPTIONS="detect_leaks=0 halt_on_error=1 exitcode=67")
        run = subprocess.run([exe, path], capture_output=True, text=True, timeout=timeout,
                             env=env)
        if run.returncode:
            raise AssertionError(f"emulator exit status {run.returncode}:\n"
                                 f"{run.stdout[-3000:]}{run.stderr[-6000:]}")
        outs = {name: np.fromfile(p, dtype=dt)[:int(np.prod(shape))].reshape(shape)
                for name, (p, dt, shape) in self.dumps.items()}
        return outs, run.stdout + run.stderr


def transform_script(src: torch.Tensor, num_classes: int, spacing: Sequence[float],
                     convention: str, black_border: bool, dtype: torch.dtype, resident: int,
                     free_bytes: int | None = None, seed: int = 0,
                     model_l2: int | None = None, generation: int = 1) -> tuple[Script, list]:
    """The script of one transform: the launch plan (csrc/distance_transform/cuda_plan.h) with
    the CuPy backend's kernel names and arguments for kernels of `generation`; the output
    dumped as "out"."""
    from gpudist.backends import contract, cupy_nvrtc, extension

    plan = extension.cuda_launch_plan(src.shape[1:], src.shape[0] * max(num_classes, 1),
                                      resident, free_bytes, None, generation, dtype)
    sizes = tuple(contract.out_sizes(src, num_classes))
    out_dtype = np.dtype(str(dtype).removeprefix("torch."))
    script = Script()
    nbytes = int(np.prod(sizes)) * out_dtype.itemsize
    data = src.numpy()
    buffers = {"src": script.buffer("src", data.view(np.uint8) if data.dtype == bool else data),
               "out": script.buffer("out", nbytes=nbytes),
               "tmp": script.buffer("tmp", nbytes=nbytes),
               "scratch": script.buffer("scratch", nbytes=8 * max(plan.scratch_words, 1))}
    rows = contract.rows_of_spacing(src, spacing)
    if len(rows) > 1:
        buffers["rows"] = script.buffer("rows", cupy_nvrtc.spacing_table(rows))
    if model_l2 is not None:
        script.model(model_l2)
    for i, launch in enumerate(plan.passes):
        name, args = cupy_nvrtc.kernel_args(launch, buffers, src.dtype, num_classes, rows,
                                            convention, black_border, dtype, generation)
        script.launch(name, (launch.blocks,), plan.block, args, seed + i)
    script.dump("out", out_dtype, sizes)
    return script, list(plan.passes)


def run_transform(exe: str, src: torch.Tensor, num_classes: int, spacing: Sequence[float],
                  convention: str, black_border: bool, dtype: torch.dtype, resident: int,
                  free_bytes: int | None = None, seed: int = 0,
                  generation: int = 1) -> torch.Tensor:
    """gpudist's CUDA transform of src (CPU tensor), run on the emulator."""
    script, _ = transform_script(src, num_classes, spacing, convention, black_border, dtype,
                                 resident, free_bytes, seed, None, generation)
    outs, _ = script.run(exe)
    return torch.from_numpy(outs["out"].copy())


def run_variant(exe: str, op: str, src: torch.Tensor, spacing: Sequence[float],
                black_border: bool, dtype: torch.dtype, resident: int,
                free_bytes: int | None = None, seed: int = 0,
                squared: bool = False) -> dict[str, torch.Tensor]:
    """gpudist's CUDA variant `op` (gpudist.backends.extension.VARIANT_OPS) of src (CPU tensor)
    run on the emulator, with the CuPy backend's plan, kernel names and arguments: "out" (and
    "feat" for "features")."""
    from gpudist.backends import contract, cupy_nvrtc, extension

    plan = extension.cuda_variant_plan(src.shape[1:], src.shape[0], op, resident, free_bytes)
    rows = contract.rows_of_spacing(src, spacing)
    out_dtype = np.dtype(str(dtype).removeprefix("torch."))
    sizes = tuple(src.shape)
    count = int(np.prod(sizes))
    script = Script()
    data = src.numpy()
    buffers = {"src": script.buffer("src", data.view(np.uint8) if data.dtype == bool else data),
               "out": script.buffer("out", nbytes=count * out_dtype.itemsize),
               "feat": script.buffer("feat", nbytes=count * 8),
               "scratch": script.buffer("scratch", nbytes=8 * max(plan.scratch_words, 1))}
    if len(rows) > 1:
        buffers["rows"] = script.buffer("rows", cupy_nvrtc.spacing_table(
            rows, raw=op in cupy_nvrtc.METRIC_CODES))
    for i, launch in enumerate(plan.passes):
        name, args = cupy_nvrtc.variant_kernel_args(op, launch, buffers, src.dtype, rows,
                                                    black_border, dtype, squared)
        script.launch(name, (launch.blocks,), plan.block, args, seed + i)
    if op == "features":
        name, grid, args = cupy_nvrtc.finalize_kernel_args(buffers, count, rows, dtype)
        script.launch(name, grid, plan.block, args, seed + len(plan.passes))
        script.dump("feat", np.int64, sizes)
    script.dump("out", out_dtype, sizes)
    outs, _ = script.run(exe)
    return {name: torch.from_numpy(a.copy()) for name, a in outs.items()}


@dataclass(frozen=True)
class PassModel:
    """The coalescing model of one launch (see emulator.cpp)."""

    kernel: str
    axis: int
    requests: int
    sectors: int
    bytes: int
    dram_read: int
    dram_write: int

    @property
    def sectors_per_request(self) -> float:
        return self.sectors / max(1, self.requests)


def model_transform(exe: str, src: torch.Tensor, spacing: Sequence[float], convention: str,
                    dtype: torch.dtype, resident: int, l2_bytes: int, free_bytes: int,
                    num_classes: int = 0, generation: int = 1) -> list[PassModel]:
    """Runs the transform on the model build; one PassModel per launch."""
    script, passes = transform_script(src, num_classes, spacing, convention, False, dtype,
                                      resident, free_bytes, 0, l2_bytes, generation)
    _, log = script.run(exe)
    rows = [line.split() for line in log.splitlines() if line.startswith("model ")]
    out = []
    for launch, row in zip(passes, rows):
        fields = dict(kv.split("=") for kv in row[2:])
        out.append(PassModel(row[1], launch.axis, *(int(fields[k]) for k in (
            "requests", "sectors", "bytes", "dram_read", "dram_write"))))
    return out
