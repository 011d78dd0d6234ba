"""Which implementation runs a transform: registry and selection of backends.

Every backend is a function with the contract of the op `gpudist::distance_transform`:
(src, num_classes, spacing, convention, black_border, dtype, max_distance=None) -> Tensor, where
src is a contiguous bool mask (B, *spatial) when num_classes == 0, else labels (B, *spatial)
giving (B, C, *spatial). max_distance bounds the work, not the result: distances beyond it may
come back as +inf (only the extension's CPU kernels use it; `edt` clears beyond it for all).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch

from . import _extension

Backend = Callable[..., torch.Tensor]
NAMES = ("extension", "cupy", "numba", "scipy")


def out_sizes(src: torch.Tensor, num_classes: int) -> list[int]:
    """The contract's output shape: src's, with num_classes inserted at dim 1 for label maps."""
    sizes = list(src.shape)
    if num_classes > 0:
        sizes.insert(1, num_classes)
    return sizes


def fake_transform(src: torch.Tensor, num_classes: int, spacing: list[float], convention: str,
                   black_border: bool, dtype: torch.dtype) -> torch.Tensor:
    """The fake kernel of the Python backends' ops (shapes for torch.compile)."""
    torch._check(src.dim() == len(spacing) + 1, lambda: "src must be (batch, *spatial)")
    return src.new_empty(out_sizes(src, num_classes), dtype=dtype)


def _numba() -> Backend | None:
    try:
        from . import _numba_backend
    except ImportError:  # numba missing or broken
        return None
    return _numba_backend.distance_transform


def _cupy() -> Backend | None:
    if importlib.util.find_spec("cupy") is None:
        return None
    from . import _cupy_backend

    return _cupy_backend.distance_transform


def _scipy() -> Backend:
    from . import _scipy_backend

    return _scipy_backend.distance_transform


def available_backends() -> list[str]:
    """Names of the backends usable in this environment, for `backend=`.

    "extension": the compiled `gpudist._C` (CPU, and CUDA when built with it); "cupy": the same
    CUDA kernels compiled at run time by CuPy (CUDA only); "numba": the CPU fallback; "scipy": the
    float64 reference (any device, through the CPU, slow).
    """
    names = []
    if _extension.AVAILABLE:
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
        if backend in (None, "extension") and _extension.AVAILABLE:
            return _extension.distance_transform
        if backend == "extension":
            raise RuntimeError(f"backend='extension': gpudist._C is not available "
                               f"({_extension.LOAD_ERROR}); reinstall gpudist with a C++ compiler")
        fn = _numba()
        if fn is None:
            raise RuntimeError("no CPU backend: gpudist._C is not built and numba is not "
                               "installed; `pip install numba` or rebuild gpudist")
        return fn
    if device.type == "cuda":
        if backend in (None, "extension") and _extension.has_cuda_kernels():
            return _extension.distance_transform
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
