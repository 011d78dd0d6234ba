"""The CPU kernels' two compiled sets (csrc/cpu_ops.h): the AVX2 + FMA set is the one registered
where the CPU has both, and the baseline x86-64 set (forced by GPUDIST_CPU_ISA=baseline, in a
subprocess) passes the exactness tests of the transform, distance_at and the fused loss too."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from gpudist.backends import extension

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(not extension.AVAILABLE,
                                reason=f"gpudist._C is not loaded ({extension.LOAD_ERROR})")


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return set(next((line.split(":", 1)[1].split() for line in f
                             if line.startswith("flags")), []))
    except OSError:
        return set()


def _isa(env: dict[str, str]) -> str:
    run = subprocess.run([sys.executable, "-c", "from gpudist import _C; print(_C.CPU_ISA)"],
                         capture_output=True, text=True, env={**os.environ, **env}, check=True)
    return run.stdout.strip()


@pytest.mark.skipif(platform.machine() != "x86_64" or not sys.platform.startswith("linux"),
                    reason="reads x86-64 Linux's /proc/cpuinfo")
def test_avx2_set_where_the_cpu_has_avx2_and_fma_and_baseline_when_forced():
    from gpudist import _C

    assert _C.CPU_ISA == ("avx2" if {"avx2", "fma"} <= _cpu_flags() else "baseline")
    assert _isa({"GPUDIST_CPU_ISA": "baseline"}) == "baseline"


@pytest.mark.slow
def test_baseline_set_passes_the_exactness_tests():
    tests = [str(HERE / "test_edt.py"), str(HERE / "test_distance_at.py"),
             str(HERE / "test_losses.py")]
    select = ("(extension-cpu and (float32_equals_scipy or windowed or max_distance or anisotropic"
              " or nasty)) or (distance_at and not cuda) or fused_matches_unfused")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          *tests, "-k", select], capture_output=True, text=True, cwd=HERE.parent,
                         env={**os.environ, "GPUDIST_CPU_ISA": "baseline"}, timeout=1200)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "deselected" in run.stdout, run.stdout[-500:]
