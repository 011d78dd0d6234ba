"""Peak extra memory of gpudist.edt on the CPU: the resident-set high-water mark during the call,
beyond the memory held before it (the input) and the output it returns. Each case runs in a fresh
subprocess: a warm-up call on a tiny mask (loads the extension, compiles numba), then the high-
water mark is reset (/proc/self/clear_refs) and read before and after (VmHWM in
/proc/self/status). Linux only.

    python benchmarks/bench_memory.py [--backends extension numba] [--threads 1 2]

Masks: random with 1% background, except a first half (in memory order) with only two background
elements (long distances).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASES = [(2, 2**24), (2**24, 2), (64, 256, 256), (192, 192, 192)]

CHILD = r"""
import json, sys, torch, gpudist
backend, threads, shape = sys.argv[1], int(sys.argv[2]), tuple(json.loads(sys.argv[3]))
torch.set_num_threads(threads)
def hwm():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))
gpudist.edt(torch.ones((2,) * len(shape), dtype=torch.bool), backend=backend)  # load, compile
gen = torch.Generator().manual_seed(0)
mask = torch.rand(shape, generator=gen) < 0.99
flat, half = mask.view(-1), mask.numel() // 2
flat[:half] = True
flat[[3, half - 3]] = False
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the high-water mark restarts from the current resident set
before = hwm()
out = gpudist.edt(mask, backend=backend)
print(json.dumps(dict(input=mask.nbytes, output=out.nbytes, extra=hwm() - before - out.nbytes)))
"""


def measure(backend: str, threads: int, shape: tuple[int, ...]) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, backend, str(threads), json.dumps(shape)],
                         capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"{backend} {shape} {threads} threads failed:\n{run.stderr}")
    return json.loads(run.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["extension", "numba"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    mib = 2**20
    print(f"{'backend':<10} {'shape':<16} {'threads':>7} {'input MiB':>10} {'output MiB':>11} "
          f"{'extra MiB':>10}")
    for backend in args.backends:
        for shape in CASES:
            for threads in args.threads:
                r = measure(backend, threads, shape)
                print(f"{backend:<10} {str(shape):<16} {threads:>7} {r['input'] / mib:>10.1f} "
                      f"{r['output'] / mib:>11.1f} {r['extra'] / mib:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
