"""Build of gpudist's extension `gpudist._C`.

The extension is compiled against the torch already installed, so torch is no build requirement
(an isolated build would fetch another torch, often a CUDA one, and compile against it): build
with `pip install --no-build-isolation .`. Without an importable torch, every command that builds
the extension stops at once and says what to install; `sdist` and `egg_info` need no torch.

The CPU kernels are always built: for baseline x86-64, plus an AVX2 + FMA copy chosen at run time
(csrc/cpu_ops.h), so one build runs on any x86-64. The CUDA kernels are added when a CUDA toolkit
and a CUDA build of torch are present, or when GPUDIST_FORCE_CUDA=1; no visible GPU is needed.
GPUDIST_NO_EXTENSION=1 skips the extension (gpudist then runs on its numba CPU backend). The
extension records the torch (and CUDA) it was built with, checked when gpudist loads it, and a
wheel with the extension requires that torch release (torch==X.Y.Z). The torch-free kernel sources
in csrc/kernels are also shipped as package data (gpudist/kernels) for the CuPy backend's NVRTC.
"""

import glob
import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join("csrc", "kernels")
DEPENDENCIES = ["numpy>=1.24", "scipy>=1.10", "numba>=0.59"]
TORCH_FREE_COMMANDS = {"sdist", "egg_info", "clean", "check", "--help", "--version", "--name"}
NO_TORCH = """
gpudist: torch is not importable by {python}, and gpudist's extension is compiled against the
torch you have. If this is `pip install` in an isolated build environment (pip's default), install
torch first, then build without isolation:

    pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu   # CPU-only machine
    # (or keep your CUDA build of torch)
    pip install numpy scipy numba ninja setuptools wheel
    pip install --no-build-isolation .

(GPUDIST_NO_EXTENSION=1 builds gpudist without its extension: numba CPU backend only.)
"""


class BuildPyWithKernels(build_py):
    """Copies csrc/kernels into the built package as gpudist/kernels."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "gpudist", "kernels")
        os.makedirs(target, exist_ok=True)
        for path in glob.glob(os.path.join(HERE, KERNELS, "*")):
            shutil.copy(path, target)


def _sources(pattern):
    """csrc's files matching pattern, one folder deep (csrc/kernels holds included sources only)."""
    found = glob.glob(os.path.join("csrc", pattern)) + glob.glob(os.path.join("csrc", "*", pattern))
    return sorted(p for p in found if not p.startswith(KERNELS + os.sep))


def builds_extension():
    """False for GPUDIST_NO_EXTENSION=1 and for the commands that only describe or pack the
    sources (sdist, egg_info: these need no torch)."""
    if os.getenv("GPUDIST_NO_EXTENSION", "0") == "1":
        print("gpudist: GPUDIST_NO_EXTENSION=1, building no extension (numba CPU backend only)")
        return False
    return not TORCH_FREE_COMMANDS.intersection(sys.argv[1:])


def import_torch():
    """torch, or exit at once with what to install when it is not importable."""
    try:
        import torch
    except ImportError:
        sys.stderr.write(NO_TORCH.format(python=sys.executable))
        sys.exit(1)
    return torch


def extension_modules(torch):
    from torch.utils import cpp_extension

    force_cuda = os.getenv("GPUDIST_FORCE_CUDA", "0") == "1"
    with_cuda = force_cuda or (torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None)
    sources = _sources("*.cpp")
    # at::parallel_for is an inline `#pragma omp parallel` in torch's headers: without -fopenmp the
    # CPU kernels would run on one thread. The link resolves to the libgomp.so.1 torch loads.
    openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []
    cxx = ["-O3", "-std=c++17", "-fno-math-errno", "-fno-trapping-math"] + openmp
    nvcc = ["-O3", "-std=c++17", "--expt-relaxed-constexpr"]
    define_macros = [("Py_LIMITED_API", "0x030A0000")]
    if with_cuda:
        sources += _sources("*.cu")
        define_macros.append(("WITH_CUDA", None))
        if not os.getenv("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
            os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0+PTX"
        build = cpp_extension.CUDAExtension
        extra = {"cxx": cxx, "nvcc": nvcc}
    else:
        build = cpp_extension.CppExtension
        extra = {"cxx": cxx}
    ext = build(
        "gpudist._C",
        sources,
        include_dirs=[os.path.join(HERE, "csrc")],
        define_macros=define_macros,
        extra_compile_args=extra,
        extra_link_args=openmp,
        py_limited_api=True,
    )
    built_with = {"torch": torch.__version__, "cuda": torch.version.cuda if with_cuda else ""}

    class BuildExtension(cpp_extension.BuildExtension):
        """torch's, plus the header gpudist_build_info.h (the torch and CUDA versions built with,
        read by csrc/library.cpp), generated in the build folder."""

        def build_extensions(self):
            generated = os.path.join(os.path.abspath(self.build_temp), "generated")
            header = os.path.join(generated, "gpudist_build_info.h")
            text = ("// Generated by setup.py: what gpudist._C was built with.\n#pragma once\n"
                    f'#define GPUDIST_BUILT_TORCH "{built_with["torch"]}"\n'
                    f'#define GPUDIST_BUILT_CUDA "{built_with["cuda"]}"\n')
            os.makedirs(generated, exist_ok=True)
            if not os.path.exists(header) or open(header).read() != text:
                with open(header, "w") as f:
                    f.write(text)
            for e in self.extensions:
                e.include_dirs.append(generated)
            super().build_extensions()

    return [ext], {"build_ext": BuildExtension}


ext_modules, cmdclass, torch_requirement = [], {}, "torch>=2.4"
if builds_extension():
    torch = import_torch()
    ext_modules, cmdclass = extension_modules(torch)
    # _C links the C++ symbols of this torch release, whose ABI changes between releases.
    torch_requirement = "torch==" + torch.__version__.split("+")[0]
cmdclass["build_py"] = BuildPyWithKernels
setup(
    install_requires=[torch_requirement] + DEPENDENCIES,
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    package_data={"gpudist": ["kernels/*"]},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
