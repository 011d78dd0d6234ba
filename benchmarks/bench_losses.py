"""Fused boundary loss from logits vs the unfused torch expression, forward + backward.

    python benchmarks/bench_losses.py [--device cpu|cuda] [--repeats 10]
    pytest benchmarks/bench_losses.py --benchmark-only     (pytest-benchmark timings)

Unfused (the reference code's expression): `(torch.softmax(z, 1)[:, idc] * phi[:, idc]).mean()`.
Fused: `gpudist.losses.boundary_loss(z, phi, idc, from_logits=True)`, one custom op whose
backward recomputes the softmax. Both are timed in the same run and the ratio printed.

Memory, forward + backward, beyond the inputs:
- "saved": bytes of the tensors autograd keeps between forward and backward that are not the
  inputs' own storage (`torch.autograd.graph.saved_tensors_hooks`);
- "peak": the peak of allocated bytes during forward + backward: `torch.cuda.max_memory_allocated`
  on CUDA; on CPU the running sum of the allocation/free events recorded by
  `torch.profiler.profile(profile_memory=True)`.
Value checks (`validate`) are off so that both sides do the same arithmetic only.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from gpudist.losses import boundary_loss

CASES = [  # (name, shape (B, C, *spatial), idc)
    ("2d 8x4x256x256 idc=all", (8, 4, 256, 256), None),
    ("2d 8x4x256x256 idc=1,2,3", (8, 4, 256, 256), [1, 2, 3]),
    ("2d 8x2x256x256 idc=[1]", (8, 2, 256, 256), [1]),
    ("3d 2x3x64x64x64 idc=all", (2, 3, 64, 64, 64), None),
]


def make_inputs(shape, device: str, dtype=torch.float32):
    gen = torch.Generator(device=device).manual_seed(0)
    z = torch.randn(shape, device=device, dtype=dtype, generator=gen, requires_grad=True)
    phi = torch.randn(shape, device=device, dtype=torch.float32, generator=gen) * 10
    return z, phi


def unfused(z: torch.Tensor, phi: torch.Tensor, idc) -> torch.Tensor:
    p = torch.softmax(z, dim=1)
    if idc is None:
        return (p * phi).mean()
    return (p[:, idc] * phi[:, idc]).mean()


def fused(z: torch.Tensor, phi: torch.Tensor, idc) -> torch.Tensor:
    return boundary_loss(z, phi, idc, from_logits=True, validate=False)


def fwd_bwd(fn: Callable, z: torch.Tensor, phi: torch.Tensor, idc) -> None:
    z.grad = None
    fn(z, phi, idc).backward()


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_both(z, phi, idc, device: str, repeats: int) -> dict[str, list[float]]:
    """Milliseconds per forward + backward, unfused and fused alternating (same noise for both)."""
    times: dict[str, list[float]] = {"unfused": [], "fused": []}
    for fn in (unfused, fused):  # warm-up
        fwd_bwd(fn, z, phi, idc)
    for _ in range(repeats):
        for name, fn in (("unfused", unfused), ("fused", fused)):
            sync(device)
            t0 = time.perf_counter()
            fwd_bwd(fn, z, phi, idc)
            sync(device)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def saved_bytes(fn: Callable, z, phi, idc) -> int:
    """Bytes of saved-for-backward storages other than the inputs'."""
    inputs = {z.untyped_storage().data_ptr(), phi.untyped_storage().data_ptr()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in inputs:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(z, phi, idc)
    return sum(storages.values())


def peak_bytes(fn: Callable, z, phi, idc, device: str) -> int:
    """Peak allocated bytes above the starting point during forward + backward."""
    z.grad = None
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fwd_bwd(fn, z, phi, idc)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fwd_bwd(fn, z, phi, idc)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def run(device: str, repeats: int) -> None:
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"repeats={repeats}; ms of forward + backward, median (min); speedup = unfused / fused "
          f"on medians (mins)")
    header = (f"{'case':28s} {'unfused ms':>15s} {'fused ms':>15s} {'speedup':>13s} "
              f"{'saved MiB u/f':>14s} {'peak MiB u/f':>13s} {'peak f/u':>8s}")
    print(header)
    for name, shape, idc in CASES:
        z, phi = make_inputs(shape, device)
        with torch.no_grad():
            torch.testing.assert_close(fused(z, phi, idc), unfused(z, phi, idc))
        times = time_both(z, phi, idc, device, repeats)
        med = {k: statistics.median(v) for k, v in times.items()}
        low = {k: min(v) for k, v in times.items()}
        s_u, s_f = saved_bytes(unfused, z, phi, idc), saved_bytes(fused, z, phi, idc)
        p_u, p_f = peak_bytes(unfused, z, phi, idc, device), peak_bytes(fused, z, phi, idc, device)
        mib = 2.0 ** 20
        print(f"{name:28s} {med['unfused']:7.2f} ({low['unfused']:5.2f}) "
              f"{med['fused']:7.2f} ({low['fused']:5.2f}) "
              f"{med['unfused'] / med['fused']:5.2f}x ({low['unfused'] / low['fused']:4.2f}x) "
              f"{s_u / mib:6.1f}/{s_f / mib:<6.1f} {p_u / mib:6.1f}/{p_f / mib:<6.1f} "
              f"{p_f / p_u:7.2f}x")


# pytest-benchmark: one mid-sized 2-D case, both sides.
_SHAPE, _IDC = (4, 4, 128, 128), [1, 2, 3]


def test_boundary_unfused_fwd_bwd(benchmark):
    z, phi = make_inputs(_SHAPE, "cpu")
    benchmark(fwd_bwd, unfused, z, phi, _IDC)
    assert torch.isfinite(z.grad).all()


def test_boundary_fused_fwd_bwd(benchmark):
    z, phi = make_inputs(_SHAPE, "cpu")
    benchmark(fwd_bwd, fused, z, phi, _IDC)
    assert torch.isfinite(z.grad).all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (CPU); 1 avoids OpenMP wake-up costs that "
                             "dominate small ops on a loaded machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run(args.device, args.repeats)


if __name__ == "__main__":
    main()
