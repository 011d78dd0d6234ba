"""Build of gpudist's extension `gpudist._C`.

The CPU kernels are always built. The CUDA kernels are added when a CUDA toolkit and a CUDA build of
torch are present, or when GPUDIST_FORCE_CUDA=1; no visible GPU is needed. GPUDIST_NO_EXTENSION=1
skips the extension (gpudist then runs on its numba CPU backend). On x86-64 the CPU kernels use AVX2
when the building machine has it (GPUDIST_PORTABLE=1: baseline x86-64). The torch-free kernel sources in
csrc/kernels are also shipped as package data (gpudist/kernels) for the CuPy backend's NVRTC.
"""

import glob
import os
import platform
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join("csrc", "kernels")


class BuildPyWithKernels(build_py):
    """Copies csrc/kernels into the built package as gpudist/kernels."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "gpudist", "kernels")
        os.makedirs(target, exist_ok=True)
        for path in glob.glob(os.path.join(HERE, KERNELS, "*")):
            shutil.copy(path, target)


def cpu_flags():
    """-mavx2 -mfma when the building x86-64 Linux CPU has them (the CPU kernels' windowed loops
    run ~20% faster with 8-wide vectors); GPUDIST_PORTABLE=1 builds for baseline x86-64, for a
    build that moves to other machines."""
    if os.getenv("GPUDIST_PORTABLE", "0") == "1" or platform.machine() not in ("x86_64", "AMD64"):
        return []
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return []
    return ["-mavx2", "-mfma"] if {"avx2", "fma"} <= set(flags) else []


def _sources(pattern):
    """csrc's files matching pattern, one folder deep (csrc/kernels holds included sources only)."""
    found = glob.glob(os.path.join("csrc", pattern)) + glob.glob(os.path.join("csrc", "*", pattern))
    return sorted(p for p in found if not p.startswith(KERNELS + os.sep))


def extension_modules():
    if os.getenv("GPUDIST_NO_EXTENSION", "0") == "1":
        print("gpudist: GPUDIST_NO_EXTENSION=1, building no extension (numba CPU backend only)")
        return [], {}
    import torch
    from torch.utils import cpp_extension

    force_cuda = os.getenv("GPUDIST_FORCE_CUDA", "0") == "1"
    with_cuda = force_cuda or (torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None)
    sources = _sources("*.cpp")
    # at::parallel_for is an inline `#pragma omp parallel` in torch's headers: without -fopenmp the
    # CPU kernels would run on one thread. The link resolves to the libgomp.so.1 torch loads.
    openmp = ["-fopenmp"] if sys.platform.startswith("linux") else []
    cxx = ["-O3", "-std=c++17", "-fno-math-errno", "-fno-trapping-math"] + cpu_flags() + openmp
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
    return [ext], {"build_ext": cpp_extension.BuildExtension}


ext_modules, cmdclass = extension_modules()
cmdclass["build_py"] = BuildPyWithKernels
setup(
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    package_data={"gpudist": ["kernels/*"]},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
