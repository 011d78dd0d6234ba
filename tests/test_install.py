"""Installs as a user makes them, each in subprocesses on copies of the sources:

- the build requirements hold no torch, and setup.py without an importable torch stops at once with
  what to type, so an isolated `pip install .` never downloads a (CUDA) torch;
- the sdist carries everything needed to build and test, and installs (--no-build-isolation) into
  a fresh venv over the installed torch; from outside the source tree the extension loads, its
  wheel pins the torch it was built with, and a random mask matches scipy;
- an extension built for another torch is not loaded: one warning, the numba / scipy backends.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import site
import subprocess
import sys
import tarfile
import textwrap
import time
import tomllib
from pathlib import Path

import pytest
import torch

from gpudist.backends import extension

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "gpudist", "csrc")
TREE = SOURCES + ("Makefile", "tests", "benchmarks", "examples")  # what a clone has besides
needs_sources = pytest.mark.skipif(not (ROOT / "setup.py").is_file(),
                                   reason="needs gpudist's source tree (setup.py beside tests/)")
needs_built = pytest.mark.skipif(
    not extension.AVAILABLE, reason=f"gpudist._C is not loaded ({extension.LOAD_ERROR})")


def copy_sources(dst: Path, names: tuple[str, ...] = SOURCES) -> Path:
    """The files a build reads (or those named), without build products."""
    ignore = shutil.ignore_patterns("*.so", "__pycache__", ".hypothesis", ".pytest_cache")
    dst.mkdir()
    for name in names:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=ignore)
        else:
            shutil.copy(src, dst / name)
    return dst


def without_torch(tmp: Path) -> dict[str, str]:
    """An environment in which `import torch` fails (a shadowing package that raises), with pip
    reading no configuration (no index, no find-links but those given)."""
    shadow = tmp / "no_torch" / "torch"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('torch is blocked for this test')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PYTHONPATH=str(tmp / "no_torch"), PIP_CONFIG_FILE=os.devnull)
    return env


@needs_sources
def test_build_requirements_hold_no_torch():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert not [r for r in requires if r.lower().startswith("torch")], requires


@needs_sources
@pytest.mark.parametrize("command", ["bdist_wheel", "build_ext", "dist_info"])
def test_setup_without_torch_stops_at_once_with_what_to_type(command, tmp_path):
    src = copy_sources(tmp_path / "src")
    start = time.monotonic()
    run = subprocess.run([sys.executable, "setup.py", command], cwd=src, capture_output=True,
                         text=True, env=without_torch(tmp_path), timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "pip install --no-build-isolation ." in run.stderr
    cpu_torch = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    assert cpu_torch in run.stderr
    assert time.monotonic() - start < 30


@needs_sources
def test_isolated_pip_install_downloads_nothing_and_stops_with_the_message(tmp_path):
    """`pip install .` as typed, with build isolation, offered only setuptools and wheel (and
    their requirements): it must stop with the message, having fetched nothing else."""
    wheels = tmp_path / "wheels"
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-d", str(wheels),
                          "setuptools>=69", "wheel"], capture_output=True, text=True)
    if got.returncode != 0:
        pytest.skip(f"cannot download setuptools and wheel for the build env: {got.stderr[-300:]}")
    src = copy_sources(tmp_path / "src")
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links",
                          str(wheels), "--no-cache-dir", str(src)], capture_output=True, text=True,
                         env=without_torch(tmp_path), timeout=300)
    log = run.stdout + run.stderr
    elapsed = time.monotonic() - start
    assert run.returncode != 0, log
    assert "pip install --no-build-isolation ." in log, log
    installing = [line for line in log.splitlines() if "torch" in line.lower()
                  and ("Collecting" in line or "Downloading" in line or "nvidia" in line)]
    assert not installing, log
    assert elapsed < 120, f"took {elapsed:.0f} s:\n{log}"


def _venv_over_this_python(path: Path) -> Path:
    """A fresh venv whose packages come after this interpreter's (torch, numpy, scipy, numba,
    setuptools, pip); its own site-packages, first, receives the install. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    own = subprocess.run([str(python), "-c", purelib], capture_output=True, text=True,
                         check=True).stdout.strip()
    Path(own, "parent_site_packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


SMOKE = textwrap.dedent("""
    import importlib.metadata, sys
    import numpy as np, torch
    from scipy import ndimage
    import gpudist
    from gpudist import _C
    assert gpudist.__file__.startswith(sys.argv[1]), gpudist.__file__
    assert "extension" in gpudist.available_backends(), gpudist.available_backends()
    mask = torch.rand(3, 19, 26, generator=torch.Generator().manual_seed(0)) > 0.3
    out = gpudist.edt(mask, ndim=2, backend="extension")
    ref = np.stack([ndimage.distance_transform_edt(m) for m in mask.numpy()])
    assert np.array_equal(out.numpy(), ref.astype(np.float32)), np.abs(out.numpy() - ref).max()
    pins = [r for r in importlib.metadata.requires("gpudist") if r.startswith("torch")]
    print("smoke ok", _C.TORCH_VERSION, _C.CPU_ISA, pins)
""")


@pytest.mark.slow
@needs_sources
def test_sdist_installs_in_a_fresh_venv_and_runs_outside_the_tree(tmp_path):
    """Compiles the extension once (a few minutes on two cores)."""
    try:  # the distribution, not a module: the tree's own build/ folder would pass for one
        importlib.metadata.version("build")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the `build` package is not installed (it is in gpudist's test extra)")
    dist = tmp_path / "dist"
    env = without_torch(tmp_path)
    del env["PIP_CONFIG_FILE"]
    tree = copy_sources(tmp_path / "src", TREE)
    # -P: the source tree's own build/ folder (setup.py's) must not shadow the `build` package.
    made = subprocess.run([sys.executable, "-P", "-m", "build", "--sdist", "--no-isolation",
                           "--outdir", str(dist), str(tree)], capture_output=True, text=True,
                          env=env, timeout=300)  # with torch blocked: an sdist needs none
    assert made.returncode == 0, made.stdout + made.stderr
    (sdist,) = dist.glob("gpudist-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    wanted = {str(p.relative_to(ROOT)) for d in ("csrc", "tests", "benchmarks", "examples")
              for p in (ROOT / d).rglob("*")
              if p.suffix in (".h", ".cpp", ".cu", ".cuh", ".py", ".md") and "__pycache__" not in
              p.parts}
    wanted |= {"README.md", "LICENSE", "Makefile", "setup.py", "pyproject.toml", "MANIFEST.in"}
    assert not wanted - names, sorted(wanted - names)
    assert not [n for n in names if n.endswith(".so")]

    python = _venv_over_this_python(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([str(python.parent), os.path.dirname(sys.executable),
                                   env.get("PATH", "")])
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-build-isolation",
                              "--no-deps", "--no-index", str(sdist)], capture_output=True,
                             text=True, env=env, timeout=1500)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "smoke.py").write_text(SMOKE)
    smoke = subprocess.run([str(python), "smoke.py", str(tmp_path / "venv")], cwd=outside,
                           capture_output=True, text=True, env=env, timeout=300)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert f"torch=={torch.__version__.split('+')[0]}" in smoke.stdout, smoke.stdout


@needs_built
def test_extension_records_the_torch_it_was_built_with():
    from gpudist import _C

    built = extension.built_with(_C.__file__)
    assert built == {"torch": _C.TORCH_VERSION, "cuda": _C.CUDA_VERSION}
    assert built["torch"] == torch.__version__
    assert extension.mismatch(built) is None


def test_mismatch_names_torch_and_cuda():
    this = torch.__version__
    assert "torch 1.0.0" in extension.mismatch({"torch": "1.0.0", "cuda": ""})
    assert extension.mismatch({"torch": this.split("+")[0] + "+other", "cuda": ""}) is None
    other_cuda = "10.2" if torch.version.cuda != "10.2" else "11.8"
    assert f"CUDA {other_cuda}" in extension.mismatch({"torch": this, "cuda": other_cuda})


@needs_built
def test_extension_built_for_another_torch_is_not_loaded_one_warning_and_fallback():
    script = textwrap.dedent("""
        import warnings
        import numpy as np, torch
        from scipy import ndimage
        torch.__version__ = "2.0.0"          # as if another torch were installed
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import gpudist
            mask = torch.rand(2, 15, 21, generator=torch.Generator().manual_seed(1)) > 0.4
            out = gpudist.edt(mask, ndim=2)
        ours = [str(w.message) for w in caught if "gpudist" in str(w.message)]
        assert len(ours) == 1, ours
        assert "built for torch" in ours[0] and "2.0.0" in ours[0], ours[0]
        assert "extension" not in gpudist.available_backends()
        assert not hasattr(torch.ops.gpudist, "distance_at")   # _C was never loaded
        ref = np.stack([ndimage.distance_transform_edt(m) for m in mask.numpy()])
        assert np.array_equal(out.numpy(), ref.astype(np.float32))
        print("fallback ok", gpudist.available_backends())
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fallback ok" in run.stdout
