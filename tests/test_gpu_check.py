"""benchmarks/gpu_check.py --dry-run, as CI runs it without a GPU: the import of the in-place
build, the case list, the NVRTC compile (where cuda.bindings is installed) and the launch plans,
then "no CUDA device" and exit status 0. The build step is skipped (make test has just built the
extension) and so is the coalescing model (a minute or more of emulation; test_emulator.py checks
it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gpudist.backends import extension

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(not extension.AVAILABLE, reason="gpudist._C is not built")
def test_dry_run(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path))
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py"),
                          "--dry-run", "--skip-build", "--skip-model"], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)  # not the tree: its own sys.path
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert out.rstrip().splitlines()[-1].startswith("no CUDA device"), out
    assert f"gpudist from {os.path.join(ROOT, 'gpudist')}" in out
    rows = [json.loads(line) for line in open(tmp_path / "gpu_check.jsonl")]
    kinds = {r["kind"] for r in rows}
    assert {"import", "case", "plan"} <= kinds, kinds
    plans = [r for r in rows if r["kind"] == "plan" and "slots" in r]
    assert all(r["slots"] % 32 == 0 or r["slots"] == r["lines"] for r in plans)
    kernels = [r for r in rows if r["kind"] == "kernel"]
    if kernels:  # cuda.bindings present: both generations compiled, registers known
        assert {r["kernel"] for r in kernels} >= {"gd_envelope_f32", "gd_envelope2_f32"}
