"""One-shot, decisive check of gpudist's CUDA backends on a GPU machine (no internet needed).

    python benchmarks/gpu_check.py            # on a GPU machine (make gpu-check); under 8 minutes
    python benchmarks/gpu_check.py --dry-run  # here: every step that needs no GPU, then exits 0

Needs torch, scipy, and for the GPU steps CuPy and nvcc. Every step runs in a child process of
its own (`--child NAME`) under a time limit; a step that fails or runs out of time is reported and
the next one runs. Every result row is printed (and flushed) the moment it is measured and, when
$OUT is set, appended as one JSON object per line to $OUT/gpu_check.jsonl; a cut run keeps what it
measured.

On a GPU, in this order:
  info       versions (torch, driver, runtime, CuPy, NVRTC), device properties;
  cupy       the CuPy backend (NVRTC, needs no CUDA build: it runs first, while the extension's
             CUDA build runs in the background): kernel registers and occupancy, launch plans,
             every case vs scipy / cupyx, times vs cupyx, per-pass CUDA-event times against the
             measured copy bandwidth; the variants (multilabel, taxicab, chessboard, features)
             vs the CPU extension, with their times;
  extension  the same for the extension, once its in-place CUDA build is done, then again with
             the second-generation kernels (GPUDIST_CUDA_KERNELS=2);
  sanitizer  compute-sanitizer memcheck on one small case of each backend;
  pytest     `pytest -m cuda tests` (every failure shown, no -x);
  loss       the fused boundary loss vs the unfused expression (bench_losses.py).

--dry-run: the in-place build, the import of that build (its path printed), the case list, the
NVRTC compile of the CuPy source (registers and occupancy on an H200 from the ptxas report), the
launch plans on an H200, then the line "no CUDA device: ..." and exit status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # gpudist from this tree (its in-place build), not an installed copy
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [
    os.environ.get("PYTHONPATH")] if p]))
RTOL = 1e-6
START = time.perf_counter()

# Step time limits (seconds); the whole GPU run stays under 8 minutes.
LIMITS = {"build": 300, "info": 60, "cupy": 150, "extension": 120, "gen2": 110, "sanitizer": 90,
          "pytest": 120, "loss": 60}
BUDGET = 470  # seconds: steps that would start later are skipped

# H200 (sm_90) figures for the dry run's occupancy, plans and coalescing model.
H200 = {"name": "H200 (assumed)", "sms": 132, "threads_per_sm": 2048, "regs_per_sm": 65536,
        "blocks_per_sm": 32, "free_bytes": 140 << 30, "l2_bytes": 50 << 20}

# The coalescing model's cases: the four headline cases with their inner extents kept (the
# per-warp access patterns) and outer extents cut so that the emulator runs them in seconds.
MODEL_CASES = [("2-D batch 128 x 256^2", (2, 256, 256)), ("256^3", (1, 16, 64, 256)),
               ("512^3", (1, 8, 32, 512)), ("16 x 128^3", (2, 16, 32, 128))]

# The timed cases: (label, shape, num_classes, spacing, convention, dtype, generator).
CASES = [
    ("2-D batch 128 x 256^2, noise 0.9", (128, 256, 256), 0, (1.0, 1.0), "edt", "f32", "noise"),
    ("256^3 noise 0.9", (1, 256, 256, 256), 0, (1.0,) * 3, "edt", "f32", "noise"),
    ("512^3 noise 0.9", (1, 512, 512, 512), 0, (1.0,) * 3, "edt", "f32", "noise"),
    ("16 x 128^3 noise 0.9", (16, 128, 128, 128), 0, (1.0,) * 3, "edt", "f32", "noise"),
    ("256^3 blobs", (1, 256, 256, 256), 0, (1.0,) * 3, "edt", "f32", "blobs"),
    ("256^3 two-sided (unsigned)", (1, 256, 256, 256), 0, (1.0,) * 3, "unsigned", "f32",
     "blobs"),
    ("256^3 anisotropic (2.5, 1, 0.7)", (1, 256, 256, 256), 0, (2.5, 1.0, 0.7), "edt", "f32",
     "noise"),
    ("256^3 float64", (1, 256, 256, 256), 0, (1.0,) * 3, "edt", "f64", "noise"),
    ("label map (2, 128^3), 4 classes", (2, 128, 128, 128), 4, (1.0,) * 3, "unsigned", "f32",
     "labels"),
]


def emit(kind: str, text: str, **row) -> None:
    """Prints one result line now and appends it to $OUT/gpu_check.jsonl when $OUT is set."""
    print(text, flush=True)
    out = os.environ.get("OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        row = {"kind": kind, "t": round(time.perf_counter() - START, 2), **row}
        with open(os.path.join(out, "gpu_check.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")


def step(title: str) -> None:
    print(f"\n=== {title} ({time.perf_counter() - START:.0f} s) ===", flush=True)


def run_limited(cmd: list[str], limit: float, name: str, **kw) -> int | None:
    """Runs cmd (output streamed) under a time limit; None when it ran out of time."""
    try:
        rc = subprocess.run(cmd, cwd=ROOT, env=kw.pop("env", ENV), timeout=limit, **kw).returncode
    except subprocess.TimeoutExpired:
        emit("step", f"{name}: stopped after {limit:.0f} s", step=name, status="timeout")
        return None
    emit("step", f"{name}: exit status {rc}", step=name, status="ok" if rc == 0 else "failed",
         rc=rc)
    return rc


def child(name: str, limit: float, *extra: str, title: str | None = None, **env: str) -> int | None:
    step(title or name)
    return run_limited([sys.executable, os.path.abspath(__file__), "--child", name, *extra],
                       limit, title or name, env=dict(ENV, **env))


def build_cmd(cuda: bool, build_lib: str | None = None) -> tuple[list[str], dict]:
    """setup.py build_ext (in place, or into build_lib), with the CUDA kernels when `cuda`."""
    env = dict(ENV, MAX_JOBS=str(os.cpu_count() or 4))
    if cuda:
        env.update(GPUDIST_FORCE_CUDA="1", TORCH_CUDA_ARCH_LIST="9.0")
    cmd = [sys.executable, "setup.py", "build_ext"]
    cmd += ["--build-lib", build_lib] if build_lib else ["--inplace"]
    return cmd, env


# --- the parts that need no GPU ---------------------------------------------------------------


def occupancy(regs: int, block: int, dev: dict = H200) -> int:
    """Blocks of `block` threads resident per SM for a kernel of `regs` registers per thread
    (registers allocated per warp in units of 256; no shared memory)."""
    warps = -(-block // 32)
    per_warp = -(-regs * 32 // 256) * 256
    return min(dev["blocks_per_sm"], dev["threads_per_sm"] // block,
               dev["regs_per_sm"] // (per_warp * warps))


def nvrtc_report(arch: str = "sm_90") -> dict[str, int] | None:
    """Compiles the CuPy backend's exact source with NVRTC (cuda.bindings; no GPU needed) and
    returns the registers of each kernel from the ptxas report; None when NVRTC is missing."""
    from gpudist.backends import cupy_nvrtc

    try:
        from cuda.bindings import nvrtc
    except ImportError:
        emit("nvrtc", "NVRTC: cuda.bindings not installed (pip install cuda-bindings "
             "nvidia-cuda-nvrtc); compile skipped", status="skipped")
        return None
    source, options = cupy_nvrtc.kernel_source()
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), b"edt_kernels.cu", 0, [], [])
    opts = [o.encode() for o in options] + [f"--gpu-architecture={arch}".encode(),
                                            b"--ptxas-options=-v"]
    t0 = time.perf_counter()
    (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    _, size = nvrtc.nvrtcGetProgramLogSize(prog)
    log = b" " * size
    nvrtc.nvrtcGetProgramLog(prog, log)
    log = log.decode(errors="replace")
    ok = err == nvrtc.nvrtcResult.NVRTC_SUCCESS
    _, major, minor = nvrtc.nvrtcVersion()
    emit("nvrtc", f"NVRTC {major}.{minor} compiled the CuPy source for {arch}: "
         f"{'ok' if ok else 'FAILED'} in {time.perf_counter() - t0:.1f} s",
         status="ok" if ok else "failed", arch=arch, version=f"{major}.{minor}")
    if not ok:
        print(log)
        return {}
    regs, current = {}, None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line) or re.search(
            r"Function properties for (\w+)", line)
        if m:
            current = m.group(1)
        m = re.search(r"Used (\d+) registers", line)
        if m and current:
            regs[current] = int(m.group(1))
    return regs


def print_kernels(regs: dict[str, int], resident_of, device: str) -> None:
    from gpudist.backends.extension import CUDA_BLOCK

    for name in sorted(regs):
        blocks = resident_of(name)
        emit("kernel", f"  {name:<24} {regs[name]:>3} registers  {blocks:>2} blocks of "
             f"{CUDA_BLOCK} per SM = {blocks * CUDA_BLOCK:>4} threads/SM ({device})",
             kernel=name, registers=regs[name], blocks_per_sm=blocks, block=CUDA_BLOCK)


def print_plans(resident: int, first_resident: int, free_bytes: int) -> None:
    from gpudist.backends import extension

    for label, shape, classes, *_ in CASES:
        items = shape[0] * max(classes, 1)
        plan = extension.cuda_launch_plan(shape[1:], items, resident, free_bytes, first_resident)
        for p in plan.passes:
            rounds = -(-p.lines // p.slots)
            emit("plan", f"  {label:<34} axis {p.axis} n={p.n:<4} lines={p.lines:<8} "
                 f"slots={p.slots:<7} blocks={p.blocks:<5} rounds={rounds:<3} "
                 f"{p.src}->{p.dst}", case=label, axis=p.axis, n=p.n, lines=p.lines,
                 slots=p.slots, blocks=p.blocks, rounds=rounds)
        emit("plan", f"  {label:<34} scratch {plan.scratch_words * 8 / 2**20:.0f} MB",
             case=label, scratch_mb=plan.scratch_words * 8 / 2**20)


def model(resident: int) -> None:
    """Per pass of both kernel generations: 32-byte sectors per warp request, the bytes per voxel
    those requests move (L1 transactions) and the modeled DRAM bytes per voxel (an LRU L2 holding
    the H200's L2 share of one block of resident threads: L2 * block / resident threads)."""
    import torch

    sys.path.insert(0, os.path.join(ROOT, "tests", "cuda_shim"))
    import emulator
    from gpudist.backends.extension import CUDA_BLOCK

    try:
        exe = emulator.build("model")
    except (emulator.Unavailable, RuntimeError) as exc:
        emit("model", f"model: not built ({exc})", status="skipped")
        return
    l2 = H200["l2_bytes"] * CUDA_BLOCK // resident
    emit("model", f"  L2 share modeled: {l2 / 1024:.0f} KiB per block of {CUDA_BLOCK}; floor: "
         "read 1 byte of mask, write 4 bytes of float32 = 5 bytes/voxel", l2_bytes=l2)
    for (label, shape), generation in [(c, g) for c in MODEL_CASES for g in (1, 2)]:
        mask = torch.rand(shape, generator=torch.Generator().manual_seed(0)) < 0.9
        voxels = mask.numel()
        t0 = time.perf_counter()
        passes = emulator.model_transform(exe, mask, (1.0,) * (len(shape) - 1), "edt",
                                          torch.float32, resident, l2, H200["free_bytes"],
                                          generation=generation)
        total = 0.0
        for p in passes:
            dram = (p.dram_read + p.dram_write) / voxels
            total += dram
            emit("model", f"  {label:<22} {str(shape):<18} {p.kernel:<23} axis {p.axis}: "
                 f"{p.sectors_per_request:5.1f} sectors/request, "
                 f"{32 * p.sectors / voxels:6.1f} B/voxel in requests, {dram:5.1f} B/voxel DRAM",
                 case=label, model_shape=shape, kernel=p.kernel, axis=p.axis,
                 generation=generation,
                 sectors_per_request=p.sectors_per_request,
                 request_bytes_per_voxel=32 * p.sectors / voxels, dram_bytes_per_voxel=dram)
        emit("model", f"  {label:<22} generation {generation}: {total:5.1f} B/voxel DRAM = "
             f"{total / 5:.1f} x the floor ({time.perf_counter() - t0:.1f} s)", case=label,
             generation=generation, dram_bytes_per_voxel=total, x_floor=total / 5)


def dry_run(args) -> int:
    if not args.skip_build:
        step("build in place (setup.py build_ext --inplace)")
        import torch
        cuda = torch.version.cuda is not None and shutil.which("nvcc") is not None
        cmd, env = build_cmd(cuda)
        if run_limited(cmd, LIMITS["build"], "build", env=env) != 0:
            return 1
    step("import of the in-place build")
    import gpudist
    from gpudist.backends import extension

    emit("import", f"gpudist from {os.path.dirname(gpudist.__file__)}; extension "
         f"{'loaded' if extension.AVAILABLE else 'NOT loaded: ' + str(extension.LOAD_ERROR)}"
         f"{' from ' + extension.EXTENSION_PATH if extension.AVAILABLE else ''}; CUDA kernels: "
         f"{extension.has_cuda_kernels()}", path=gpudist.__file__,
         extension=extension.EXTENSION_PATH if extension.AVAILABLE else None)
    if not os.path.dirname(gpudist.__file__).startswith(ROOT):
        emit("import", f"ERROR: gpudist imported from outside {ROOT}", status="failed")
        return 1
    if not extension.AVAILABLE:
        return 1
    step("cases")
    for label, shape, classes, spacing, conv, dtype, gen in CASES:
        emit("case", f"  {label:<34} {str(shape):<22} classes={classes} spacing={spacing} "
             f"{conv} {dtype} {gen}", case=label, shape=shape)
    step("NVRTC compile of the CuPy source; registers and occupancy on an H200 (ptxas report)")
    regs = nvrtc_report()
    occ = {name: occupancy(r, extension.CUDA_BLOCK) for name, r in (regs or {}).items()}
    if regs:
        print_kernels(regs, occ.__getitem__, H200["name"])
    if regs == {}:
        return 1
    step("launch plans on an H200 (occupancy from the registers above, 140 GiB free)")
    block, sms = extension.CUDA_BLOCK, H200["sms"]
    envelope = min((b for n, b in occ.items() if "envelope" in n), default=16)
    first = min((b for n, b in occ.items() if "first_pass" in n), default=16)
    print_plans(sms * envelope * block, sms * first * block, H200["free_bytes"])
    if not args.skip_model:
        step("coalescing model (block emulator, tests/cuda_shim; noise 0.9, float32 edt)")
        model(sms * envelope * block)
    step("done")
    print("no CUDA device: the dry run did every step that needs none; exit 0", flush=True)
    return 0


# --- the GPU steps (children) -----------------------------------------------------------------


def timed_events(fn, reps: int) -> float:
    """Median milliseconds of fn() between CUDA events on the current stream."""
    import torch

    fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def copy_bandwidth() -> float:
    """Device-to-device copy bandwidth, bytes/s (read + write counted)."""
    import torch

    src = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = timed_events(lambda: dst.copy_(src), 10)
    return 2 * src.numel() / (ms * 1e-3)


def make_input(shape, classes: int, gen: str, seed: int = 0):
    import torch

    g = torch.Generator(device="cuda").manual_seed(seed)
    if gen == "noise":
        return torch.rand(shape, device="cuda", generator=g) < 0.9
    coarse = torch.rand((shape[0], 1) + tuple(max(2, s // 16) for s in shape[1:]), device="cuda",
                        generator=g)
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(shape) - 1]
    smooth = torch.nn.functional.interpolate(coarse, size=shape[1:], mode=mode)[:, 0]
    if gen == "blobs":
        return smooth < 0.45
    return (smooth * classes).long().clamp_(0, classes - 1).to(torch.uint8)  # labels


def cupyx_reference(src, classes: int, spacing, convention: str, dtype):
    """cupyx.scipy.ndimage.distance_transform_edt looped over the images (and classes):
    "edt" = edt(mask); "unsigned" = edt(mask) + edt(~mask)."""
    import cupy
    import torch
    from cupyx.scipy import ndimage as cnd

    f64 = dtype == torch.float64
    kw = {"sampling": tuple(spacing), "float64_distances": f64}
    images = cupy.asarray(src)
    out = []
    for i in range(images.shape[0]):
        for k in range(max(classes, 1)):
            m = images[i] == k if classes else images[i]
            d = cnd.distance_transform_edt(m, **kw)
            if convention == "unsigned":
                d = d + cnd.distance_transform_edt(~m, **kw)
            out.append(d)
    shape = (src.shape[0],) + ((classes,) if classes else ()) + tuple(src.shape[1:])
    return torch.as_tensor(cupy.stack(out), device="cuda").reshape(shape).to(dtype)


def mismatches(out, ref) -> tuple[int, float]:
    """Elements outside RTOL (inf and NaN must match exactly), and the largest relative error."""
    import torch

    out, ref = out.double(), ref.double()
    finite = torch.isfinite(ref)
    bad = ~finite & ~((out == ref) | (out.isnan() & ref.isnan()))
    err = (out - ref).abs() / ref.abs().clamp_min(1e-6)
    bad |= finite & ~(err <= RTOL)
    return int(bad.sum()), float(err[finite].max()) if finite.any() else 0.0


def poison() -> None:
    """Leaves NaN in the blocks torch's caching allocator hands out next."""
    import torch

    blocks = [torch.full((1 << k,), float("nan"), device="cuda") for k in range(7, 29)]
    del blocks


def backend_fn(name: str):
    import torch

    if name == "extension":
        return torch.ops.gpudist.distance_transform.default
    from gpudist.backends import cupy_nvrtc

    return cupy_nvrtc.distance_transform_cupy


def check_vs_scipy(name: str, fn, deadline: float) -> None:
    """Every element of small and nasty cases vs scipy (float64), outputs poisoned first."""
    import torch

    from gpudist.backends import scipy_reference

    g = torch.Generator().manual_seed(int(time.time()))
    cases = []
    for shape, spacing in [((64, 300), (1.0,)), ((8, 256, 256), (1.0, 1.0)),
                           ((4, 97, 130), (2.5, 0.7)), ((1, 96, 128, 112), (2.5, 1.0, 0.7)),
                           ((2, 33, 1, 65), (1.0, 3.0, 0.5)), ((1, 3, 5, 7, 9), (1.0,) * 4)]:
        for density in (0.5, 0.97):
            cases.append((torch.rand(shape, generator=g) < density, 0, spacing))
    labels = torch.randint(0, 4, (2, 40, 50, 60), generator=g)
    cases += [(labels.to(dt), 5, (1.0, 2.0, 0.5)) for dt in (torch.uint8, torch.int32, torch.int64)]
    single = torch.zeros(1, 64, 64, dtype=torch.bool)
    single[0, 0, 63] = True
    cases += [(torch.zeros(2, 20, 30, dtype=torch.bool), 0, (1.0, 1.0)),
              (torch.ones(2, 20, 30, dtype=torch.bool), 0, (1.0, 1.0)),
              (single, 0, (1.0, 1.0)), (~single, 0, (0.5, 2.0))]
    failures = checked = 0
    for src, classes, spacing in cases:
        convs = ("kervadec", "sdf", "unsigned") if classes else (
            "edt", "edt_squared", "kervadec", "sdf", "unsigned")
        for conv in convs:
            for border in (False, True) if conv.startswith("edt") else (False,):
                if time.perf_counter() > deadline:
                    emit("scipy", f"{name}: vs scipy stopped at its deadline after {checked} "
                         f"checks", backend=name, status="timeout", checked=checked)
                    return
                ref = scipy_reference.distance_transform(src, classes, spacing, conv, border,
                                                        torch.float64)
                for dtype in (torch.float32, torch.float64):
                    poison()
                    out = fn(src.cuda(), classes, list(spacing), conv, border, dtype).cpu()
                    bad, err = mismatches(out, ref)
                    checked += 1
                    if bad:
                        failures += 1
                        emit("scipy", f"FAIL {name} {tuple(src.shape)} {src.dtype} C={classes} "
                             f"{conv} border={border} {dtype}: {bad} bad, max rel {err:.1e}",
                             backend=name, shape=tuple(src.shape), convention=conv,
                             border=border, dtype=str(dtype), bad=bad, status="failed")
    emit("scipy", f"{name}: {checked} checks vs scipy, {failures} failed", backend=name,
         checked=checked, failed=failures, status="ok" if not failures else "failed")


def per_pass_ms(src, classes, spacing, convention, dtype) -> list[float]:
    """CUDA-event milliseconds of each kernel of the launch plan (the CuPy backend's launches,
    the same kernels and plan as the extension's)."""
    import torch

    from gpudist.backends import cupy_nvrtc

    launches = cupy_nvrtc.Launches(src, classes, [tuple(spacing)], convention, False, dtype)
    times = [[] for _ in launches.calls]
    with launches.context():
        for rep in range(4):
            events = [torch.cuda.Event(enable_timing=True) for _ in range(len(launches.calls) + 1)]
            events[0].record()
            for i, call in enumerate(launches.calls):
                call()
                events[i + 1].record()
            events[-1].synchronize()
            if rep:
                for i in range(len(launches.calls)):
                    times[i].append(events[i].elapsed_time(events[i + 1]))
    return [statistics.median(t) for t in times]


def kernel_report(name: str) -> None:
    """Registers and occupancy of the kernels as loaded on this device (CuPy: RawKernel
    attributes and the driver's occupancy; the extension: the same source through nvcc)."""
    import torch

    from gpudist.backends import cupy_nvrtc

    if not name.startswith("cupy"):
        return
    module = cupy_nvrtc._module(torch.cuda.current_device())
    regs = {}
    for k in cupy_nvrtc.KERNEL_NAMES:
        regs[k] = module.get_function(k).num_regs
    print_kernels(regs, lambda k: cupy_nvrtc.blocks_per_sm(k, torch.cuda.current_device()),
                  torch.cuda.get_device_name())
    free = cupy_nvrtc.free_bytes(torch.device("cuda"))
    print_plans(cupy_nvrtc.resident(torch.device("cuda"), "envelope"),
                cupy_nvrtc.resident(torch.device("cuda"), "first_pass"), free)


def check_variants(backend: str) -> None:
    """multilabel=True, metric= and return_indices=True of `backend` on CUDA (outputs poisoned
    first) vs the CPU extension's, with their times: a row per variant."""
    import torch

    import gpudist

    g = torch.Generator().manual_seed(int(time.time()))
    labels = torch.randint(0, 4, (2, 64, 96, 80), generator=g)[..., torch.arange(80) // 8]
    mask = torch.rand((2, 64, 96, 80), generator=g) < 0.95
    spacing = [1.5, 0.6, 1.1]
    variants = [("multilabel", labels.to(torch.int32), {"multilabel": True}),
                ("taxicab", mask, {"metric": "taxicab"}),
                ("chessboard", mask, {"metric": "chessboard"}),
                ("features", mask, {"return_indices": True})]
    for kind, src, kw in variants:
        try:
            def run(x, b, kw=kw):
                return gpudist.edt(x, spacing, ndim=3, backend=b, **kw)

            cuda = src.cuda()
            poison()
            out = run(cuda, backend)
            ref = run(src, "extension")
            if kind == "features":
                (out, out_idx), (ref, ref_idx) = out, ref
                other = int((out_idx.cpu() != ref_idx).any(0).sum())  # ties may differ
            else:
                other = 0
            bad, err = mismatches(out.cpu(), ref)
            ms = timed_events(lambda: run(cuda, backend), 5)
            emit("variant", f"{backend}: {kind:<11} {tuple(src.shape)} {ms:8.2f} ms  "
                 f"{'ok' if not bad else f'{bad} BAD'} vs the CPU (max rel {err:.1e})"
                 + (f", {other} indices differ from the CPU's" if kind == "features" else ""),
                 backend=backend, variant=kind, ms=ms, bad=bad, max_rel=err,
                 indices_differ=other, status="ok" if not bad else "failed")
        except Exception as exc:  # noqa: BLE001 - reported, and the next variant runs
            emit("variant", f"{backend}: {kind} ERROR {type(exc).__name__}: {exc}",
                 backend=backend, variant=kind, status="error", error=str(exc))


def child_backend(name: str, quick: bool) -> int:
    import torch

    from gpudist.backends.extension import cuda_kernel_generation

    generation = cuda_kernel_generation()
    deadline = START + LIMITS["gen2" if generation == 2 else name] - 10
    fn = backend_fn(name)
    name = f"{name}/gen{generation}"
    if name.startswith("extension"):
        from gpudist.backends import extension

        emit("import", f"extension from {extension.EXTENSION_PATH}; CUDA kernels: "
             f"{extension.has_cuda_kernels()}", path=extension.EXTENSION_PATH)
        if not extension.has_cuda_kernels():
            return 1
    kernel_report(name)
    bandwidth = copy_bandwidth()
    emit("bandwidth", f"copy bandwidth (device to device, read + write): {bandwidth / 1e9:.0f} "
         "GB/s", gbps=bandwidth / 1e9)
    emit("header", f"{'case':<36}{'backend':<10}{'ms':>9}{'cupyx ms':>10}{'vs cupyx':>9}"
         f"{'floor ms':>9}{'x floor':>8}  check / per-pass ms (bytes/voxel-pass x floor)")
    cases = CASES[:2] if quick else CASES
    for label, shape, classes, spacing, conv, dt, gen in cases:
        if time.perf_counter() > deadline - 30:
            emit("time", f"{name}: {label}: skipped (step deadline)", case=label, status="skipped")
            continue
        try:
            dtype = torch.float64 if dt == "f64" else torch.float32
            src = make_input(shape, classes, gen)
            out_elems = src.numel() * max(classes, 1)
            floor_bytes = src.numel() * src.element_size() + out_elems * dtype.itemsize
            floor_ms = floor_bytes / bandwidth * 1e3

            def run():
                return fn(src, classes, list(spacing), conv, False, dtype)

            poison()
            out = run()
            ref = cupyx_reference(src, classes, spacing, conv, dtype)
            bad, err = mismatches(out, ref)
            del out
            reps = 3 if out_elems >= 1 << 27 else 10
            t = timed_events(run, reps)
            t_ref = timed_events(lambda: cupyx_reference(src, classes, spacing, conv, dtype),
                                 2 if out_elems >= 1 << 27 else 4)
            try:  # the CuPy backend's launches of the same kernels and plan
                passes = per_pass_ms(src, classes, list(spacing), conv, dtype)
            except Exception as exc:  # noqa: BLE001 - no CuPy: the row without per-pass times
                passes = []
                print(f"  per-pass times unavailable: {type(exc).__name__}: {exc}", flush=True)
            # per pass: read the previous values (or the source), write T values
            pass_floor = [(src.element_size() if i == 0 else dtype.itemsize) + dtype.itemsize
                          for i in range(len(passes))]
            pp = " ".join(f"{ms:.2f}({ms * 1e-3 * bandwidth / out_elems / fl:.1f}x)"
                          for ms, fl in zip(passes, pass_floor))
            check = "ok" if not bad else f"{bad} BAD"
            emit("time", f"{label:<36}{name:<10}{t:>9.2f}{t_ref:>10.2f}{t_ref / t:>9.2f}"
                 f"{floor_ms:>9.3f}{t / floor_ms:>8.1f}  {check} (max rel {err:.1e}) / {pp}",
                 case=label, backend=name, ms=t, cupyx_ms=t_ref, vs_cupyx=t_ref / t,
                 floor_ms=floor_ms, x_floor=t / floor_ms, bad=bad, max_rel=err,
                 pass_ms=passes, pass_floor_bytes_per_voxel=pass_floor)
            del src, ref
        except Exception as exc:  # noqa: BLE001 - reported, and the next case runs
            emit("time", f"{label:<36}{name:<10} ERROR {type(exc).__name__}: {exc}", case=label,
                 backend=name, status="error", error=str(exc))
        torch.cuda.empty_cache()
        try:
            import cupy

            cupy.get_default_memory_pool().free_all_blocks()
        except ImportError:
            pass
    if not quick:
        check_vs_scipy(name, fn, deadline)
        if generation == 1:  # the variants have one generation of kernels
            check_variants(name.split("/")[0])
    return 0


def child_info() -> int:
    import torch

    p = torch.cuda.get_device_properties(0)
    emit("info", f"torch {torch.__version__} (CUDA {torch.version.cuda}), python "
         f"{sys.version.split()[0]}", torch=torch.__version__, cuda=torch.version.cuda)
    emit("device", f"device {p.name}: {p.multi_processor_count} SMs, "
         f"{p.max_threads_per_multi_processor} threads/SM, {p.total_memory / 2**30:.0f} GiB, "
         f"L2 {getattr(p, 'L2_cache_size', 0) / 2**20:.0f} MiB, sm_{p.major}{p.minor}",
         name=p.name, sms=p.multi_processor_count,
         threads_per_sm=p.max_threads_per_multi_processor, memory=p.total_memory,
         l2=getattr(p, "L2_cache_size", None), cc=f"{p.major}.{p.minor}")
    try:
        import cupy

        rt = cupy.cuda.runtime
        emit("info", f"CuPy {cupy.__version__}, driver {rt.driverGetVersion()}, runtime "
             f"{rt.runtimeGetVersion()}, NVRTC {cupy.cuda.nvrtc.getVersion()}",
             cupy=cupy.__version__, driver=rt.driverGetVersion(),
             runtime=rt.runtimeGetVersion(), nvrtc=list(cupy.cuda.nvrtc.getVersion()))
    except ImportError:
        emit("info", "CuPy not installed: the cupy step will fail", cupy=None)
    nvcc = shutil.which("nvcc")
    if nvcc:
        version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
        emit("info", f"nvcc: {version.strip().splitlines()[-1]}", nvcc=version.strip())
    return 0


def child_small() -> int:
    """One small case of each backend, for compute-sanitizer."""
    import torch

    mask = torch.rand((2, 33, 40, 20), device="cuda") < 0.7
    for name in ("cupy", "extension"):
        try:
            fn = backend_fn(name)
            for conv in ("edt", "sdf"):
                fn(mask, 0, [1.0, 2.0, 0.5], conv, False, torch.float32)
            torch.cuda.synchronize()
            print(f"{name}: ran", flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"{name}: {type(exc).__name__}: {exc}", flush=True)
    return 0


def gpu_run(args) -> int:
    child("info", LIMITS["info"])
    # The extension's CUDA build, in the background, into build/gpu_check (not in place yet: the
    # CuPy step imports the in-place extension, whose file must not change under it).
    build_proc = None
    lib = os.path.join(ROOT, "build", "gpu_check")
    if not args.skip_build:
        step("extension build (background): setup.py build_ext --build-lib build/gpu_check")
        cmd, env = build_cmd(True, lib)
        log = open(os.path.join(ROOT, "build", "gpu_check.log") if os.path.isdir(
            os.path.join(ROOT, "build")) else os.devnull, "w")
        build_proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        build_start = time.perf_counter()
    have_ext = any(f.startswith("_C") for f in os.listdir(os.path.join(ROOT, "gpudist")))
    if have_ext:  # the plan op is in any build of the extension, CPU-only too
        child("cupy", LIMITS["cupy"], *(["--quick"] if args.quick else []))
    if build_proc is not None:
        step("extension build: waiting")
        left = LIMITS["build"] - (time.perf_counter() - build_start)
        try:
            rc = build_proc.wait(timeout=max(1.0, left))
        except subprocess.TimeoutExpired:
            build_proc.kill()
            rc = None
        emit("step", f"build: {'stopped (time limit)' if rc is None else f'exit status {rc}'} "
             f"after {time.perf_counter() - build_start:.0f} s", step="build",
             status="ok" if rc == 0 else "failed", rc=rc)
        if rc == 0:
            for root, _, files in os.walk(lib):
                for f in files:
                    if f.startswith("_C") and f.endswith((".so", ".pyd")):
                        shutil.copy(os.path.join(root, f), os.path.join(ROOT, "gpudist", f))
                        emit("build", f"copied {f} in place", file=f)
    if not have_ext:
        child("cupy", LIMITS["cupy"], *(["--quick"] if args.quick else []))
    child("extension", LIMITS["extension"], *(["--quick"] if args.quick else []))
    # The second generation of kernels (GPUDIST_CUDA_KERNELS=2), the same cases and checks.
    child("extension", LIMITS["gen2"], *(["--quick"] if args.quick else []),
          title="extension, second-generation kernels (GPUDIST_CUDA_KERNELS=2)",
          GPUDIST_CUDA_KERNELS="2")
    sanitizer = shutil.which("compute-sanitizer") or next(
        (p for p in ("/usr/local/cuda/bin/compute-sanitizer",) if os.path.exists(p)), None)
    if sanitizer and time.perf_counter() - START < BUDGET - LIMITS["sanitizer"]:
        step("compute-sanitizer memcheck (one small case per backend)")
        run_limited([sanitizer, "--tool", "memcheck", "--error-exitcode", "3", sys.executable,
                     os.path.abspath(__file__), "--child", "small"], LIMITS["sanitizer"],
                    "sanitizer")
    elif not sanitizer:
        emit("step", "compute-sanitizer not found: memcheck skipped", step="sanitizer",
             status="skipped")
    if time.perf_counter() - START < BUDGET - LIMITS["pytest"]:
        step("pytest -m cuda tests")
        run_limited([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-rfEs", "-p",
                     "no:cacheprovider", "tests"], LIMITS["pytest"], "pytest")
    if time.perf_counter() - START < BUDGET - LIMITS["loss"]:
        step("fused boundary loss vs the unfused expression (bench_losses.py)")
        run_limited([sys.executable, os.path.join(ROOT, "benchmarks", "bench_losses.py"),
                     "--device", "cuda", "--repeats", "10"], LIMITS["loss"], "loss")
    step(f"done in {time.perf_counter() - START:.0f} s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="every step that needs no GPU; exits 0 without a CUDA device")
    parser.add_argument("--skip-build", action="store_true", help="use the extension as built")
    parser.add_argument("--quick", action="store_true", help="two timed cases, no scipy sweep")
    parser.add_argument("--skip-model", action="store_true",
                        help="dry run: no coalescing model (it builds and runs the emulator)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "info":
        return child_info()
    if args.child == "small":
        return child_small()
    if args.child:
        return child_backend(args.child, args.quick)
    import torch

    if args.dry_run:
        return dry_run(args)
    if not torch.cuda.is_available():
        print("no CUDA device (torch.cuda.is_available() is False): nothing to check; "
              "--dry-run runs the steps that need none", flush=True)
        return 2
    return gpu_run(args)


if __name__ == "__main__":
    sys.exit(main())
