"""Smoke tests of the training scripts: `examples/unbalanced.py --quick` and a tiny
`benchmarks/bench_training.py`, each in a subprocess as a user runs it, checked on its output.

They run with one torch thread: on a shared, loaded CPU two threads wait on each other at every
parallel region (measured here under load: 3x the wall time of one thread)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["gdl", "gdl+bl rebalance", "gdl+bl steal"]


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_example_quick(tmp_path):
    out = run("examples/unbalanced.py", "--quick", "--out", str(tmp_path))
    report = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    epochs, seeds = report["config"]["epochs"], report["config"]["seeds"]
    assert seeds >= 3 and list(report["runs"]) == METHODS == list(report["summary"])
    for method, runs in report["runs"].items():
        assert list(runs) == [str(s) for s in range(seeds)]
        for r in runs.values():
            assert len(r["dsc"]) == len(r["hd95"]) == len(r["epoch_seconds"]) == epochs
            assert all(0 <= d <= 1 for d in r["dsc"]) and all(h > 0 for h in r["hd95"])
            assert r["final_dsc"] == r["dsc"][-1] and r["seconds_per_epoch"] > 0
    # the schedules, per epoch: rebalance from 0 to 0.99 (alpha 1 -> 0.01), steal from 0.01 up
    rebalance = report["runs"]["gdl+bl rebalance"]["0"]["boundary_weight"]
    steal = report["runs"]["gdl+bl steal"]["0"]["boundary_weight"]
    assert rebalance[0] == 0 and rebalance[-1] == pytest.approx(0.99)
    assert steal[0] == pytest.approx(0.01) and steal[-1] == pytest.approx(1.0)
    # alpha = 1 in the first epoch: rebalance trains exactly as GDL alone until it first steps
    for seed in map(str, range(seeds)):
        assert (report["runs"]["gdl+bl rebalance"][seed]["dsc"][0]
                == pytest.approx(report["runs"]["gdl"][seed]["dsc"][0], abs=1e-6))
    table = out.strip().splitlines()[-len(METHODS):]  # the table is printed last
    assert [line.split("  ")[0] for line in table] == METHODS


def test_bench_training_tiny(tmp_path):
    out = run("benchmarks/bench_training.py", "--size", "32", "--batch", "4", "--steps", "2",
              "--epochs", "1", "--base", "4", "--workers", "1", "--json",
              str(tmp_path / "b.json"))
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["scipy in loader", "gpudist in step",
                                           "gpudist fused"]
    for r in rows:
        assert r["steps_per_epoch"] == 2 and r["s_per_step"] > 0 and r["stall_per_step"] >= 0
        assert r["s_per_epoch"] >= r["stall_per_step"] * 2
    assert out.strip().splitlines()[-1].startswith("gpudist fused")
