"""Checks of the CUDA kernel source that need no GPU.

- nvcc compiles every kernel file for sm_80 and sm_90 with warnings as errors and no register spill;
- NVRTC (cuda.bindings, the compiler CuPy uses) compiles the CuPy backend's exact source + options;
- the launch plan (csrc/distance_transform/cuda_plan.h, through the op gpudist::cuda_launch_plan)
  keeps its invariants;
- the block emulator (tests/cuda_shim): g++ builds the kernels with stand-ins for the CUDA
  built-ins, and the launch plan runs on it with the CuPy backend's kernel arguments, a thread per
  CUDA thread, compared with scipy.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zlib

import numpy as np
import pytest
import torch

from gpudist.backends import contract, cupy_nvrtc, extension, scipy_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The torch-free kernels as gpudist runs them: gpudist/kernels in an installed package, else the
# source tree's csrc/kernels. The torch launchers (csrc/<op>/*.cu) exist in a source tree only.
KERNELS = cupy_nvrtc.kernel_dir()
KERNEL_FILES = sorted(glob.glob(os.path.join(KERNELS, "*.cu")))
LAUNCHERS = sorted(set(glob.glob(os.path.join(ROOT, "csrc", "*", "*.cu"))) - set(KERNEL_FILES))
needs_kernels = pytest.mark.skipif(not KERNEL_FILES, reason=f"no kernel sources in {KERNELS}")
sys.path.insert(0, os.path.join(ROOT, "tests", "cuda_shim"))
import emulator  # noqa: E402
ARCHS = ("sm_80", "sm_90")
F64 = torch.float64
needs_extension = pytest.mark.skipif(not extension.AVAILABLE,
                                     reason="the launch plan comes from gpudist._C (not built)")


def _nvcc() -> str | None:
    return shutil.which("nvcc") or next(
        (p for p in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(p)), None)


@needs_kernels
@pytest.mark.skipif(_nvcc() is None, reason="nvcc not found (install a CUDA toolkit)")
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("path", KERNEL_FILES, ids=os.path.basename)
def test_nvcc_compiles_without_warnings_or_spills(path, arch, tmp_path):
    cmd = [_nvcc(), "-cubin", f"-arch={arch}", "-std=c++17", "-O3", "-Xptxas", "-v", "-Werror",
           "all-warnings", "-o", str(tmp_path / "k.cubin"), path]
    run = subprocess.run(cmd, capture_output=True, text=True)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    spills = [int(s) for s in re.findall(r"(\d+) bytes spill stores", log)]
    assert spills, f"no ptxas report in:\n{log}"
    assert not any(spills), f"register spills:\n{log}"


@pytest.mark.slow
@pytest.mark.skipif(not LAUNCHERS, reason="csrc/ is not beside these tests (an installed copy)")
@pytest.mark.skipif(_nvcc() is None, reason="nvcc not found (install a CUDA toolkit)")
@pytest.mark.parametrize("launcher", LAUNCHERS, ids=os.path.basename)
def test_nvcc_compiles_torch_launcher(launcher, tmp_path):
    """csrc/<op>/*.cu (host and device code) against this torch's headers, as setup.py builds them.
    A CPU torch wheel lacks the generated header c10/cuda/impl/cuda_cmake_macros.h: stubbed."""
    from torch.utils import cpp_extension

    includes = cpp_extension.include_paths()
    macros = os.path.join("c10", "cuda", "impl", "cuda_cmake_macros.h")
    if not any(os.path.exists(os.path.join(d, macros)) for d in includes):
        (tmp_path / os.path.dirname(macros)).mkdir(parents=True)
        (tmp_path / macros).write_text("#pragma once\n")
        includes = [str(tmp_path)] + includes
    cmd = [_nvcc(), "-c", "-arch=sm_90", "-O3", "-std=c++17", "--expt-relaxed-constexpr",
           "-DWITH_CUDA", f"-I{os.path.join(ROOT, 'csrc')}",
           f"-I{sysconfig.get_paths()['include']}", *(f"-I{d}" for d in includes),
           "-o", str(tmp_path / "launcher.o"), launcher]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        return None
    return nvrtc


@pytest.mark.skipif(_nvrtc() is None, reason="cuda.bindings not installed "
                    "(pip install cuda-bindings nvidia-cuda-nvrtc)")
@pytest.mark.parametrize("arch", ARCHS)
def test_nvrtc_compiles_cupy_source(arch):
    nvrtc = _nvrtc()
    source, options = cupy_nvrtc.kernel_source()
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), b"edt_kernels.cu", 0, [], [])
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, err
    opts = [o.encode() for o in options] + [f"--gpu-architecture={arch}".encode()]
    (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    _, size = nvrtc.nvrtcGetProgramLogSize(prog)
    log = b" " * size
    nvrtc.nvrtcGetProgramLog(prog, log)
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, log.decode()
    assert "warning" not in log.decode(), log.decode()
    _, size = nvrtc.nvrtcGetCUBINSize(prog)
    cubin = b" " * size
    nvrtc.nvrtcGetCUBIN(prog, cubin)
    for name in cupy_nvrtc.KERNEL_NAMES:  # both generations
        assert name.encode() in cubin, name


# --- the kernels on the block emulator (tests/cuda_shim) ------------------------------------


@pytest.fixture(scope="module")
def shim():
    """The emulator (plain build): every CUDA thread a thread of its own; test_emulator.py runs
    it under the sanitizers too."""
    if not KERNEL_FILES:
        pytest.skip(f"no kernel sources in {KERNELS}")
    try:
        return emulator.build("plain")
    except emulator.Unavailable as exc:
        pytest.skip(str(exc))


def _check(exe, src, num_classes=0, spacing=None, convention="edt", black_border=False,
           dtype=torch.float32, resident=256):
    spacing = spacing or (1.0,) * (src.dim() - 1)
    out = emulator.run_transform(exe, src, num_classes, spacing, convention, black_border, dtype,
                                 resident)
    ref = scipy_reference.distance_transform(src, num_classes, spacing, convention, black_border,
                                            torch.float64)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.double(), ref, rtol=tol, atol=tol, equal_nan=False,
                               msg=lambda m: f"{tuple(src.shape)} {convention} {spacing} "
                                             f"border={black_border} {dtype}: {m}")


@needs_extension
@pytest.mark.parametrize("spatial", [(1,), (7,), (300,), (5, 6), (1, 130), (9, 1), (17, 33, 40),
                                     (2, 3, 4, 5), (512, 512, 512)], ids=str)
@pytest.mark.parametrize("items", [1, 3, 1000])
@pytest.mark.parametrize("resident", [1, 256, 270336])
@pytest.mark.parametrize("free_bytes", [None, 16384, 1 << 40])
def test_launch_plan_invariants(spatial, items, resident, free_bytes):
    """Pass p runs along axis nd-1-p over every line of the batch; each thread that works has
    lines; the grid holds the working threads; the envelope scratch fits its budget
    (min(1 GiB, free / 4)) or one thread's worth; a pass that needs rounds uses whole blocks
    (whole warps below a block) and no more rounds than the cap forces, spread evenly; buffers
    alternate from src so that the last pass, the only one that finalizes, writes the output."""
    budget = 1 << 30 if free_bytes is None else min(1 << 30, free_bytes // 4)
    first_resident = 2 * resident
    plan = extension.cuda_launch_plan(spatial, items, resident, free_bytes, first_resident)
    nd, volume = len(spatial), int(np.prod(spatial))
    assert [p.axis for p in plan.passes] == list(range(nd - 1, -1, -1))
    assert plan.passes[0].src == "src" and plan.passes[-1].dst == "out"
    words = 0
    for p, launch in enumerate(plan.passes):
        a = launch.axis
        per_thread = 3 * (launch.n + 2) if p > 0 else 0
        assert launch.n == spatial[a] and launch.inner == int(np.prod(spatial[a + 1:]))
        assert launch.outer * launch.n * launch.inner == volume
        assert launch.lines == items * volume // spatial[a]
        held = first_resident if p == 0 else resident
        cap = min(launch.lines, held, budget // (8 * per_thread) if per_thread else held)
        assert 1 <= launch.slots <= max(1, cap)
        assert launch.blocks == -(-launch.slots // plan.block)
        assert launch.finalize == (p == nd - 1)
        if launch.slots < launch.lines:  # rounds: whole units, evenly spread
            unit = plan.block if launch.slots >= plan.block else 32 if launch.slots >= 32 else 1
            assert launch.slots % unit == 0
            rounds = -(-launch.lines // launch.slots)
            assert launch.slots - unit < -(-launch.lines // rounds)
            if cap >= 32:
                unit_cap = plan.block if cap >= plan.block else 32
                assert rounds == -(-launch.lines // (cap // unit_cap * unit_cap))
        else:
            assert launch.slots == launch.lines == cap
        if p > 0:
            assert launch.src == plan.passes[p - 1].dst != launch.dst
            assert launch.slots == 1 or launch.slots * per_thread * 8 <= budget
            words = max(words, launch.slots * per_thread)
    assert plan.scratch_words == words


@needs_extension
@pytest.mark.parametrize("op", extension.VARIANT_OPS)
@pytest.mark.parametrize("spatial", [(1,), (300,), (5, 6), (1, 130), (17, 33, 40), (2, 3, 4, 5)],
                         ids=str)
@pytest.mark.parametrize("resident,free_bytes", [(1, None), (256, 16384), (270336, 1 << 40)])
def test_variant_plan_invariants(op, spatial, resident, free_bytes):
    """The variants' plan: pass p along axis p over every line of the batch, in place on the
    output (pass 0 reads src), the last one finalizing; scratch (none in pass 0 and for taxicab;
    3 or, for features, 4 arrays of n + 2 words per thread) within the budget, slots as
    launch_slots sizes them (the transform's plan checks those rules)."""
    budget = 1 << 30 if free_bytes is None else min(1 << 30, free_bytes // 4)
    items = 3
    plan = extension.cuda_variant_plan(spatial, items, op, resident, free_bytes)
    volume = int(np.prod(spatial))
    assert [p.axis for p in plan.passes] == list(range(len(spatial)))
    words = 0
    for p, launch in enumerate(plan.passes):
        n = spatial[p]
        assert (launch.n, launch.inner) == (n, int(np.prod(spatial[p + 1:])))
        assert launch.lines == items * volume // n
        assert (launch.src, launch.dst) == ("src" if p == 0 else "out", "out")
        assert launch.finalize == (p == len(spatial) - 1)
        per_thread = 0 if p == 0 or op == "taxicab" else (4 if op == "features" else 3) * (n + 2)
        cap = min(launch.lines, resident, budget // (8 * per_thread) if per_thread else resident)
        assert 1 <= launch.slots <= max(1, cap)
        assert launch.blocks == -(-launch.slots // plan.block)
        words = max(words, launch.slots * per_thread)
    assert plan.scratch_words == words
    with pytest.raises(ValueError, match="op must be one of"):
        extension.cuda_variant_plan(spatial, items, "euclidean", resident)


@needs_extension
def test_launch_plan_512_cubed_on_an_h200():
    """The issue's case: 512^3 on 132 SMs at 9 blocks of 128 per SM (the envelope kernels'
    registers), 1 GiB of scratch: 4 even rounds of 512 whole blocks, not 87,041 threads."""
    plan = extension.cuda_launch_plan((512, 512, 512), 1, 132 * 9 * 128, 140 << 30)
    for launch in plan.passes[1:]:
        assert (launch.slots, launch.blocks, -(-launch.lines // launch.slots)) == (65536, 512, 4)
    assert plan.scratch_words * 8 <= 1 << 30


@needs_extension
@pytest.mark.parametrize("dtype,entry", [(torch.float32, 8), (torch.float64, 16)])
def test_launch_plan_second_generation(dtype, entry):
    """Generation 2: a warp per line in pass 0, packed stack entries (8 bytes for float32
    output, 16 for float64) in the envelope passes; bad arguments are named."""
    plan = extension.cuda_launch_plan((40, 50, 60), 3, 1 << 20, 1 << 40, 1 << 20, 2, dtype)
    assert plan.passes[0].slots == 32 * plan.passes[0].lines
    assert plan.scratch_words == max(p.slots * (p.n + 2) * entry // 8 for p in plan.passes[1:])
    with pytest.raises(ValueError, match="generation"):
        extension.cuda_launch_plan((4,), 1, 1, generation=3)
    with pytest.raises(TypeError, match="dtype"):
        extension.cuda_launch_plan((4,), 1, 1, dtype=torch.float16)


def test_kernel_generation_from_the_environment(monkeypatch):
    assert extension.cuda_kernel_generation() in (1, 2)
    monkeypatch.setenv("GPUDIST_CUDA_KERNELS", "2")
    assert extension.cuda_kernel_generation() == 2
    monkeypatch.setenv("GPUDIST_CUDA_KERNELS", "fast")
    with pytest.raises(ValueError, match="GPUDIST_CUDA_KERNELS"):
        extension.cuda_kernel_generation()


SHAPES = [(3, 127), (2, 129), (1, 1), (2, 1, 130), (2, 9, 1), (3, 17, 33), (1, 40, 129),
          (2, 5, 6, 7), (1, 13, 1, 11), (1, 3, 4, 5, 6)]


@needs_extension
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("convention", contract.CONVENTIONS)
def test_shim_masks(shim, shape, convention):
    g = torch.Generator().manual_seed(zlib.crc32(repr((shape, convention)).encode()))
    nd = len(shape) - 1
    spacing = tuple((0.3 + 2.5 * torch.rand(nd, generator=g, dtype=torch.float64)).tolist())
    mask = torch.rand(shape, generator=g) < 0.7
    for dtype in (torch.float32, torch.float64):
        _check(shim, mask, spacing=spacing, convention=convention, dtype=dtype)
        if convention.startswith("edt"):
            _check(shim, mask, spacing=spacing, convention=convention, black_border=True,
                   dtype=dtype)


@needs_extension
@pytest.mark.parametrize("resident", [1, 128, 129, 10**6])
def test_shim_grid_stride(shim, resident):
    mask = torch.rand((3, 21, 140), generator=torch.Generator().manual_seed(resident)) < 0.8
    _check(shim, mask, spacing=(1.7, 0.6), convention="sdf", resident=resident)


@needs_extension
@pytest.mark.parametrize("label_dtype", [torch.uint8, torch.int32, torch.int64])
def test_shim_labels(shim, label_dtype):
    g = torch.Generator().manual_seed(7)
    labels = torch.randint(0, 4, (2, 12, 9, 5), generator=g).to(label_dtype)
    line = torch.randint(0, 3, (3, 130), generator=g).to(label_dtype)
    for convention in ("kervadec", "sdf", "unsigned"):
        _check(shim, labels, num_classes=5, spacing=(1.0, 2.5, 0.7), convention=convention)
        _check(shim, line, num_classes=3, spacing=(0.5,), convention=convention)


@needs_extension
def test_shim_nasty(shim):
    cases = [torch.zeros(2, 5, 6, dtype=torch.bool), torch.ones(2, 5, 6, dtype=torch.bool),
             torch.ones(1, 200, dtype=torch.bool)]
    single = torch.zeros(1, 9, 8, 7, dtype=torch.bool)
    single[0, 4, 0, 6] = True
    cases += [single, ~single]
    for mask in cases:
        for convention in ("edt", "edt_squared", "kervadec", "sdf", "unsigned"):
            for border in (False, True) if convention.startswith("edt") else (False,):
                _check(shim, mask, convention=convention, black_border=border)


@needs_extension
def test_shim_anisotropic_precision(shim):
    """The parabola intersections must be exact at scale (REFERENCE.md section 6)."""
    g = torch.Generator().manual_seed(3)
    mask = torch.rand((1, 64, 96, 80), generator=g) < 0.97
    _check(shim, mask, spacing=(2.5, 1.0, 0.7), convention="edt", resident=4096)


# --- the fused boundary loss kernels on the shim --------------------------------------------


@pytest.mark.parametrize("use_flags", [False, True], ids=["mask", "flags"])
@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=str)
@pytest.mark.parametrize("shape,idc,slots,rows", [((2, 3, 37), [0, 2], 5, 2),
                                                  ((3, 2, 4, 5), [1], 3, 2),
                                                  ((1, 4, 1), [0, 1, 2, 3], 1, 1),
                                                  ((2, 5, 9), [4], 16, 1)])
def test_shim_boundary_loss(shim, dtype, shape, idc, slots, rows, use_flags):
    """The CUDA launcher's kernels (partial sums per thread, grid-stride backward), thread by
    thread, against the softmax expression in float64, including a grid with fewer rows than
    samples and more threads than voxels; the class subset as a 64-bit mask argument or as
    flags in memory."""
    g = torch.Generator().manual_seed(sum(shape) + slots)
    z = (torch.randn(shape, generator=g, dtype=F64) * 4).to(dtype)
    phi = (torch.randn(shape, generator=g, dtype=F64) * 9).to(dtype)
    z[0, 0, 0] = -200.0  # below the exp's range: a zero probability
    b, c, voxels = shape[0], shape[1], z[0, 0].numel()
    suffix = ("flags_" if use_flags else "") + ("f32" if dtype == torch.float32 else "f64")
    zn, pn = np.ascontiguousarray(z.numpy()), np.ascontiguousarray(phi.numpy())
    script = emulator.Script()
    bz, bp = script.buffer("z", zn), script.buffer("phi", pn)
    # the class subset: a ClassMask by value, or flags in device memory
    classes = (script.buffer("flags", np.array([k in idc for k in range(c)], dtype=np.uint8))
               if use_flags else np.uint64(sum(1 << k for k in idc)))
    block = 4
    script.launch(f"gd_boundary_forward_{suffix}", (-(-slots // block), rows), block,
                  (bz, bp, classes, c, voxels, b, slots, script.buffer("partial", nbytes=b * slots * 8)),
                  seed=slots)
    script.dump("partial", np.float64, (b, slots))
    count = len(idc) * voxels
    zz = z.to(F64).requires_grad_()
    ref = (torch.softmax(zz, 1)[:, idc] * phi.to(F64)[:, idc]).flatten(1).sum(1) / count
    upstream = torch.rand(b, generator=g, dtype=F64)
    (ref_grad,) = torch.autograd.grad((ref * upstream).sum(), zz)
    scale = np.ascontiguousarray((upstream / count).to(dtype).numpy())
    script.launch(f"gd_boundary_backward_{suffix}", (2, 1), 3,
                  (bz, bp, classes, c, voxels, b, script.buffer("scale", scale),
                   script.buffer("grad", nbytes=zn.nbytes)), seed=1)
    script.dump("grad", zn.dtype, zn.shape)
    outs, _ = script.run(shim)
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(torch.from_numpy(outs["partial"].sum(1) / count), ref.detach(),
                               rtol=tol, atol=tol)
    torch.testing.assert_close(torch.from_numpy(outs["grad"].copy()).to(F64), ref_grad,
                               rtol=tol * 10, atol=tol * ref_grad.abs().max().item())
