"""The op's registration: opcheck, fake kernels, torch.compile, and the numba fallback."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import gpudist

needs_extension = pytest.mark.skipif("extension" not in gpudist.available_backends(),
                                     reason="needs the compiled extension gpudist._C")


def sample_args():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(2, 9, 11, generator=g) > 0.4
    labels = torch.randint(0, 3, (2, 7, 6), generator=g)
    return [
        (mask, 0, [1.0, 2.0], "edt", False, torch.float32),
        (mask, 0, [1.0, 2.0], "edt_squared", True, torch.float64),
        (mask, 0, [0.5, 2.0], "kervadec", False, torch.float32),
        (mask[:, 0], 0, [3.0], "sdf", False, torch.float32),
        (labels, 3, [1.0, 1.5], "unsigned", False, torch.float32),
        (labels.to(torch.int32), 4, [1.0, 1.5], "kervadec", False, torch.float64),
        (mask, 0, [1.0, 2.0], "edt", True, torch.float32, 2.5),
    ]


@needs_extension
@pytest.mark.parametrize("args", sample_args(), ids=lambda a: a[3])
def test_opcheck(args):
    torch.library.opcheck(torch.ops.gpudist.distance_transform.default, args)


@needs_extension
def test_fake_tensor_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        labels = torch.empty(2, 5, 6, dtype=torch.int64)
        out = torch.ops.gpudist.distance_transform(labels, 4, [1.0, 1.0], "kervadec", False,
                                                   torch.float32)
        assert out.shape == (2, 4, 5, 6) and out.dtype == torch.float32


@needs_extension
def test_torch_compile_fullgraph_matches_eager():
    def maps(mask, labels):
        return (gpudist.edt(mask, (1.0, 0.5), ndim=2),
                gpudist.edt(mask, (1.0, 0.5), ndim=2, max_distance=1.2),
                gpudist.signed_distance(mask, 2.0, ndim=2, convention="sdf"),
                gpudist.labels_to_dist(labels, 3, (1.0, 0.5)))

    g = torch.Generator().manual_seed(1)
    mask = torch.rand(2, 3, 12, 10, generator=g) > 0.5
    labels = torch.randint(0, 3, (2, 12, 10), generator=g)
    compiled = torch.compile(maps, fullgraph=True, backend="aot_eager")
    for got, expected in zip(compiled(mask, labels), maps(mask, labels)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


@needs_extension
def test_op_rejects_bad_arguments_itself():
    op = torch.ops.gpudist.distance_transform.default
    mask = torch.ones(1, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="spacing must be positive and finite"):
        op(mask, 0, [0.0], "edt", False, torch.float32)
    with pytest.raises(ValueError, match="the largest value must be at most 1e\\+18 times"):
        op(mask[None], 0, [1e-20, 1.0], "edt", False, torch.float32)
    # a label outside [0, num_classes) belongs to no class (issue 13): no error
    assert op(torch.tensor([[0, 5]]), 3, [1.0], "kervadec", False, torch.float32)[0, 2].eq(0).all()
    with pytest.raises(ValueError, match="black_border applies to the edt conventions only"):
        op(mask, 0, [1.0], "kervadec", True, torch.float32)
    with pytest.raises(ValueError, match="unknown convention"):
        op(mask, 0, [1.0], "nope", False, torch.float32)
    with pytest.raises(ValueError, match="a mask src must be bool"):
        op(mask.float(), 0, [1.0], "edt", False, torch.float32)
    with pytest.raises(ValueError, match="max_distance must be >= 0"):
        op(mask, 0, [1.0], "edt", False, torch.float32, float("nan"))
    with pytest.raises(ValueError, match="max_distance applies to the edt conventions only"):
        op(mask, 0, [1.0], "sdf", False, torch.float32, 2.0)


def test_available_backends_lists_the_reference():
    names = gpudist.available_backends()
    assert "scipy" in names and set(names) <= {"extension", "numba", "scipy", "cupy"}


def _python_without_extension(code: str) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter with GPUDIST_NO_EXTENSION=1."""
    env = dict(os.environ, GPUDIST_NO_EXTENSION="1")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_numba_fallback_without_extension():
    result = _python_without_extension(
        "import gpudist, numpy as np\n"
        "print(gpudist.available_backends())\n"
        "m = np.ones((5, 6), bool); m[2, 3] = False\n"
        "print(float(gpudist.edt(m, (1.0, 2.0))[0, 0]))\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names, value = result.stdout.strip().splitlines()
    assert names == "['numba', 'scipy']"
    assert float(value) == pytest.approx(np.hypot(2.0, 3 * 2.0))
    failed = _python_without_extension(
        "import gpudist, torch; gpudist.edt(torch.ones(3), backend='extension')")
    assert failed.returncode != 0
    assert "backend='extension': gpudist._C is not available" in failed.stderr


@pytest.mark.parametrize("args", sample_args(), ids=lambda a: a[3])
def test_numba_op_opcheck(args):
    """The numba fallback is an op too (opaque to torch.compile), with its own fake kernel."""
    pytest.importorskip("numba")
    from gpudist.backends import numba_cpu  # noqa: F401  (registers gpudist::distance_transform_numba)

    src, num_classes, spacing, convention, black_border, dtype = args[:6]
    torch.library.opcheck(torch.ops.gpudist.distance_transform_numba.default,
                          (src, num_classes, list(spacing), convention, black_border, dtype))


def test_numba_fallback_compiles_fullgraph():
    """Without the extension, distance maps computed inside a compiled loss stay in one graph."""
    pytest.importorskip("numba")
    result = _python_without_extension(
        "import torch, gpudist\n"
        "from gpudist import losses\n"
        "lab = torch.zeros(2, 9, 8, dtype=torch.long); lab[:, 2:5, 3:6] = 1\n"
        "z = torch.randn(2, 2, 9, 8)\n"
        "f = lambda z: losses.boundary_loss(z, lab, [1], from_logits=True)\n"
        "eager, compiled = f(z), torch.compile(f, fullgraph=True)(z)\n"
        "print(gpudist.available_backends(), float((eager - compiled).abs()))\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names, diff = result.stdout.strip().rsplit(" ", 1)
    assert names == "['numba', 'scipy']" and float(diff) < 1e-6


def test_numba_backend_refuses_non_cpu_tensors():
    from gpudist.backends import numba_cpu

    with pytest.raises(ValueError, match="the numba backend runs on CPU tensors only"):
        numba_cpu.distance_transform(torch.ones(1, 4, dtype=torch.bool, device="meta"), 0,
                                          (1.0,), "edt", False, torch.float32)
