"""Which implementation runs a transform: the registry of backends and the choice among them.

Every backend follows `contract` (the op `gpudist::distance_transform`'s semantics). The
optional ones (numba, CuPy, scipy) are imported on first use, so that `import gpudist` loads
none of them.
"""

from __future__ import annotations

import importlib.util

import torch

from . import extension
from .contract import Backend

NAMES = ("extension", "cupy", "numba", "scipy")


def _numba() -> Backend | None:
    try:
        from . import numba_cpu
    except ImportError:  # numba missing or broken
        return None
    return numba_cpu.distance_transform


def _cupy() -> Backend | None:
    if importlib.util.find_spec("cupy") is None:
        return None
    from . import cupy_nvrtc

    return cupy_nvrtc.distance_transform


def _scipy() -> Backend:
    from . import scipy_reference

    return scipy_reference.distance_transform


def available_backends() -> list[str]:
    """Names of the backends usable in this environment, for `backend=`.

    "extension": the compiled `gpudist._C` (CPU, and CUDA when built with it); "cupy": the same
    CUDA kernels compiled at run time by CuPy (CUDA only); "numba": the CPU fallback; "scipy": the
    float64 reference (any device, through the CPU, slow).
    """
    names = []
    if extension.AVAILABLE:
        names.append("extension")
    if importlib.util.find_spec("cupy") is not None:
        names.append("cupy")
    if _numba() is not None:
        names.append("numba")
    names.append("scipy")
    return names


def resolve(backend: str | None, device: torch.device) -> Backend:
    """The backend function for `device`: the named one, or the fastest available when None."""
    if backend is not None and backend not in NAMES:
        raise ValueError(f"backend must be one of {', '.join(map(repr, NAMES))} or None, "
                         f"got {backend!r}")
    if backend == "scipy":
        return _scipy()
    if backend == "cupy" and device.type != "cuda":
        raise ValueError(f"backend='cupy' runs on CUDA tensors, got a tensor on {device}")
    if device.type == "cpu":
        if backend in (None, "extension") and extension.AVAILABLE:
            return extension.distance_transform
        if backend == "extension":
            raise RuntimeError(f"backend='extension': gpudist._C is not available "
                               f"({extension.LOAD_ERROR}); reinstall gpudist with a C++ compiler")
        fn = _numba()
        if fn is None:
            raise RuntimeError("no CPU backend: gpudist._C is not built and numba is not "
                               "installed; `pip install numba` or rebuild gpudist")
        return fn
    if device.type == "cuda":
        if backend in (None, "extension") and extension.has_cuda_kernels():
            return extension.distance_transform
        if backend in (None, "cupy") and _cupy() is not None:
            return _cupy()
        if backend == "cupy":
            raise RuntimeError("backend='cupy': CuPy is not installed; "
                               "`pip install gpudist[cupy]` (cupy-cuda13x)")
        why = "" if backend == "extension" else " and CuPy is not installed"
        raise RuntimeError(f"no CUDA backend for {device}: gpudist._C was built without CUDA "
                           f"kernels{why}; `pip install gpudist[cupy]`, or rebuild gpudist with "
                           "a CUDA toolkit and a CUDA build of torch")
    raise ValueError(f"gpudist runs on CPU and CUDA tensors, got a tensor on {device}")



def resolve_variant(op: str, backend: str | None, device: torch.device) -> Backend:
    """The function `op` ("multilabel_edt", "metric_transform" or "feature_transform", see
    `contract`) of the backend `resolve` picks for `device`."""
    fn = resolve(backend, device)
    if fn is extension.distance_transform:
        return getattr(extension, op)
    if fn is _scipy():
        from . import scipy_reference

        return getattr(scipy_reference, op)
    if fn is _numba():
        from . import numba_cpu

        return getattr(numba_cpu, op)
    from . import cupy_nvrtc

    return getattr(cupy_nvrtc, op)
