"""One-shot check of gpudist's CUDA backends on a GPU machine (no internet needed).

Needs CUDA torch, CuPy, scipy and nvcc. Steps, each with a time limit (under 8 minutes in all):
  1. builds the extension in place with its CUDA kernels (setup.py build_ext --inplace),
  2. runs `pytest -m cuda`,
  3. compares every CUDA backend with scipy (float64) on fresh random and nasty inputs, outputs
     poisoned before each run, every element checked; the timed cases are checked against CuPy,
  4. times the gpudist backends against cupyx.scipy.ndimage.distance_transform_edt (CuPy looped
     over the images of a batch), then the fused boundary loss against the unfused expression
     (bench_losses.py), and prints one table, last, with each EDT case's minimal bytes moved
     (read the bool mask, write float32 distances) and the time that takes at the measured
     device-to-device copy bandwidth.

Usage: python benchmarks/gpu_check.py [--skip-build] [--skip-pytest]
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL = 1e-6


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def build() -> None:
    step("build: setup.py build_ext --inplace (CUDA kernels, sm_90)")
    env = dict(os.environ, GPUDIST_FORCE_CUDA="1", TORCH_CUDA_ARCH_LIST="9.0",
               MAX_JOBS=str(os.cpu_count() or 4))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=ROOT, env=env,
                   check=True, timeout=300)
    print(f"built in {time.perf_counter() - t0:.0f} s")


def run_pytest() -> None:
    step("pytest -m cuda")
    subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-x", "tests"], cwd=ROOT,
                   timeout=180, check=False)


def poison() -> None:
    """Leaves NaN in the blocks torch's caching allocator hands out next."""
    blocks = [torch.full((1 << k,), float("nan"), device="cuda") for k in range(7, 29)]
    del blocks


def backends() -> dict:
    from gpudist.backends import cupy_nvrtc, extension

    found = {}
    if extension.has_cuda_kernels():
        found["extension"] = torch.ops.gpudist.distance_transform.default
    else:
        print("WARNING: gpudist._C has no CUDA kernels; 'extension' skipped")
    found["cupy"] = cupy_nvrtc.distance_transform_cupy
    return found


def mismatches(out: torch.Tensor, ref: torch.Tensor) -> tuple[int, float]:
    """Elements outside rtol (inf and NaN must match exactly), and the largest relative error."""
    out, ref = out.double().cpu(), ref.double().cpu()
    finite = torch.isfinite(ref)
    bad = ~finite & ~((out == ref) | (out.isnan() & ref.isnan()))
    err = (out - ref).abs() / ref.abs().clamp_min(1e-6)
    bad |= finite & ~(err <= RTOL)
    return int(bad.sum()), float(err[finite].max()) if finite.any() else 0.0


def check_vs_scipy(fns: dict) -> bool:
    from gpudist.backends import scipy_reference

    step("correctness vs scipy (float64), every element")
    g = torch.Generator().manual_seed(int(time.time()))
    cases = []
    for shape, spacing in [((64, 300), (1.0,)), ((8, 256, 256), (1.0, 1.0)),
                           ((4, 97, 130), (2.5, 0.7)), ((1, 128, 128, 128), (2.5, 1.0, 0.7)),
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
    ok = True
    for src, classes, spacing in cases:
        convs = ("kervadec", "sdf", "unsigned") if classes else (
            "edt", "edt_squared", "kervadec", "sdf", "unsigned")
        for conv in convs:
            borders = (False, True) if conv.startswith("edt") else (False,)
            for border in borders:
                ref = scipy_reference.distance_transform(src, classes, spacing, conv, border,
                                                        torch.float64)
                for name, fn in fns.items():
                    for dtype in (torch.float32, torch.float64):
                        poison()
                        out = fn(src.cuda(), classes, list(spacing), conv, border, dtype)
                        bad, err = mismatches(out, ref)
                        if bad:
                            ok = False
                            print(f"FAIL {name} {tuple(src.shape)} {src.dtype} C={classes} {conv} "
                                  f"border={border} {dtype}: {bad} bad, max rel err {err:.2e}")
    print("all match" if ok else "MISMATCHES above")
    return ok


def timed(fn, reps: int) -> float:
    """Median seconds of fn(), synchronized before and after inside the timed region."""
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def copy_bandwidth() -> float:
    src = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    t = timed(lambda: dst.copy_(src), 20)
    return 2 * src.numel() / t  # read + write


def benchmark(fns: dict) -> list[str]:
    import cupy
    from cupyx.scipy import ndimage as cnd

    step("timing")
    bandwidth = copy_bandwidth()
    kwargs = ({"float64_distances": False}
              if "float64_distances" in inspect.signature(cnd.distance_transform_edt).parameters
              else {})
    cases = [("128 x 256^2 (2-D batch)", (128, 256, 256), 2), ("256^3", (1, 256, 256, 256), 3),
             ("512^3", (1, 512, 512, 512), 3), ("4x4 x 128^3", (16, 128, 128, 128), 3)]
    rows = [f"copy bandwidth (device to device): {bandwidth / 1e9:.0f} GB/s",
            f"{'case':<24}{'backend':<11}{'median ms':>10}{'min bytes':>11}{'floor ms':>9}"
            f"{'x floor':>8}{'vs CuPy':>8}  check vs CuPy"]
    for label, shape, nd in cases:
        mask = torch.rand(shape, device="cuda") < 0.9
        voxels = mask.numel()
        floor = voxels * 5 / bandwidth  # read 1 byte of mask, write 4 bytes of float32
        images = cupy.asarray(mask.reshape((-1,) + shape[-nd:]))
        ref = []

        def cupy_loop():
            ref[:] = [cnd.distance_transform_edt(images[i], **kwargs) for i in range(len(images))]

        cupy_loop()
        reps = 5 if voxels >= 1 << 27 else 10
        t_cupy = timed(cupy_loop, reps)
        expected = torch.as_tensor(cupy.stack(ref), device="cuda").reshape(shape)
        rows.append(f"{label:<24}{'cupyx':<11}{t_cupy * 1e3:>10.2f}{voxels * 5 / 1e6:>9.0f}MB"
                    f"{floor * 1e3:>9.3f}{t_cupy / floor:>8.1f}{1.0:>8.2f}  (reference)")
        for name, fn in fns.items():
            def run():
                return fn(mask, 0, [1.0] * nd, "edt", False, torch.float32)

            poison()
            bad, err = mismatches(run(), expected)
            t = timed(run, reps)
            rows.append(f"{'':<24}{name:<11}{t * 1e3:>10.2f}{'':>11}{'':>9}{t / floor:>8.1f}"
                        f"{t_cupy / t:>8.2f}  {'ok' if not bad else f'{bad} BAD'} "
                        f"(max rel {err:.1e})")
        del images, ref, expected
        cupy.get_default_memory_pool().free_all_blocks()
        torch.cuda.empty_cache()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--skip-pytest", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no GPU (torch.cuda.is_available() is False); nothing to check")
        return 2
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    t0 = time.perf_counter()
    if not args.skip_build:
        build()
    if not args.skip_pytest:
        run_pytest()
    fns = backends()  # imports gpudist after the build
    ok = check_vs_scipy(fns)
    rows = benchmark(fns)
    step("fused boundary loss vs the unfused expression (benchmarks/bench_losses.py)")
    try:
        subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_losses.py"),
                        "--device", "cuda", "--repeats", "10"], cwd=ROOT, timeout=120,
                       check=False)
    except subprocess.TimeoutExpired:
        print("bench_losses.py: over 120 s, stopped")
    step(f"summary ({time.perf_counter() - t0:.0f} s in all)")
    print("\n".join(rows))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
