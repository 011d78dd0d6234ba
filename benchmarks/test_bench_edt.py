"""pytest-benchmark suite for `gpudist.edt`: `pytest benchmarks/ --benchmark-only`.

One benchmark per (case, runner): the quick cases of `gpudist bench` (both foundation cases
included), run by each gpudist backend available here and by scipy and edt as baselines, grouped
by case. gpudist's output is checked against scipy (float64, rtol 1e-6) before it is timed.
Set GPUDIST_BENCH_CASES=full for the full case set.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
import torch

from gpudist import bench

CASES = bench.CASE_SETS[os.environ.get("GPUDIST_BENCH_CASES", "quick")]()
THREADS = torch.get_num_threads()
bench.set_threads(THREADS)
RUNNERS = [r for r in bench.discover(THREADS)[0] if r.gpudist or r.name in ("scipy", "edt")]


@functools.cache
def _mask(name: str) -> np.ndarray:
    return next(c for c in CASES if c.name == name).mask()


@functools.cache
def _reference(name: str) -> np.ndarray:
    return bench.reference(_mask(name), next(c for c in CASES if c.name == name))[0]


@pytest.mark.parametrize("runner", RUNNERS, ids=lambda r: r.name)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_edt(benchmark, case: bench.Case, runner: bench.Runner) -> None:
    reason = runner.supports(case)
    if reason:
        pytest.skip(reason)
    x = runner.prepare(_mask(case.name), case)
    sync = bench.synchronizer(runner.device)
    if runner.gpudist:
        out = bench.to_numpy(runner.run(x, case), case)
        np.testing.assert_allclose(out, _reference(case.name), rtol=bench.RTOL, atol=0)

    def call() -> None:
        runner.run(x, case)
        sync()

    benchmark.group = case.name
    benchmark.extra_info.update(shape=list(case.shape), ndim=case.ndim, device=runner.device,
                                version=runner.version, threads=THREADS)
    benchmark.pedantic(call, rounds=3, warmup_rounds=1)
