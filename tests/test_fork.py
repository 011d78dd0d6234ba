"""The CPU backends after fork: a parent that has run every CPU backend, then a DataLoader whose
workers are forked (Linux's default start method) and run them again, results equal to the
parent's; and numba's thread count following torch.set_num_threads. Each in a fresh interpreter,
so that no earlier test has chosen numba's threading layer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

FORKED_WORKERS = textwrap.dedent("""
    import torch
    from torch.utils.data import DataLoader, Dataset
    import gpudist

    BACKENDS = [b for b in ("extension", "numba", "scipy") if b in gpudist.available_backends()]

    def mask(seed):
        return torch.rand(2, 24, 31, generator=torch.Generator().manual_seed(seed)) > 0.35

    def maps(seed):
        return {b: gpudist.edt(mask(seed), ndim=2, backend=b) for b in BACKENDS}

    class Maps(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return maps(i)

    parent = [maps(i) for i in range(6)]          # the parent uses every backend first
    loader = DataLoader(Maps(), batch_size=None, num_workers=2, multiprocessing_context="fork")
    for i, got in enumerate(loader):
        for b in BACKENDS:
            assert torch.equal(got[b], parent[i][b]), (i, b)
    print("forked ok", BACKENDS)
""")

THREADS = textwrap.dedent("""
    import numba, torch
    import gpudist

    mask = torch.rand(4, 40, 40, generator=torch.Generator().manual_seed(0)) > 0.5
    seen = []
    for n in (1, 2, 3):
        torch.set_num_threads(n)
        gpudist.edt(mask, ndim=2, backend="numba")
        seen.append(numba.get_num_threads())
    print("threads", seen, numba.threading_layer())
""")


def _run(script: str, env: dict[str, str] | None = None) -> str:
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600, env={**os.environ, **(env or {})})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "unsafe" not in run.stderr, run.stderr  # GNU OpenMP's "fork() called from a process..."
    return run.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is Linux's default")
def test_forked_dataloader_workers_match_the_parent_on_every_cpu_backend():
    out = _run(FORKED_WORKERS)
    assert "forked ok" in out and "numba" in out, out


def test_numba_follows_torch_set_num_threads_up_to_its_pool():
    out = _run(THREADS, {"NUMBA_NUM_THREADS": "2"})
    assert "threads [1, 2, 2]" in out, out
    if sys.platform.startswith("linux"):  # fork-safe layers only (not GNU OpenMP)
        assert out.split()[-1] in ("tbb", "workqueue"), out
