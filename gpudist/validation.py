"""Argument checks and array conversions shared by the public API.

Every check raises TypeError (wrong kind of value) or ValueError (wrong value) with a message that
names the argument and says what was expected.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

_FLOAT_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def to_torch(x: Any, name: str) -> tuple[torch.Tensor, Callable[[torch.Tensor], Any]]:
    """Returns `x` as a tensor and a function that turns a result back into x's type."""
    if isinstance(x, torch.Tensor):
        return x, lambda out: out
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold bool, integer or floating-point values, "
                            f"got {x.dtype}")
        if any(s < 0 for s in x.strides):  # np.ascontiguousarray keeps one on a size-1 axis
            x = np.array(x, order="C", copy=True)
        with warnings.catch_warnings():  # read-only arrays (np.broadcast_to): gpudist never
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")  # writes
            tensor = torch.from_numpy(x)
        return tensor, lambda out: out.numpy()
    if type(x).__module__.split(".")[0] == "cupy":  # zero-copy both ways, no host sync
        import cupy

        return torch.from_dlpack(x), cupy.from_dlpack
    raise TypeError(f"{name} must be a torch.Tensor, a numpy.ndarray or a cupy.ndarray, "
                    f"got {type(x).__name__}")


_INT_DTYPES = {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
               torch.uint16, torch.uint32, torch.uint64}
_MASK_DTYPES = _INT_DTYPES | {torch.bool, torch.float16, torch.bfloat16, torch.float32,
                              torch.float64}


def check_mask_dtype(x: torch.Tensor, name: str) -> None:
    if x.dtype not in _MASK_DTYPES:
        raise TypeError(f"{name} must hold bool, integer or floating-point values, got {x.dtype}")


def check_integer_dtype(x: torch.Tensor, name: str) -> None:
    if x.dtype not in _INT_DTYPES:
        raise TypeError(f"{name} must hold integer class indices, got {x.dtype}")


def check_one_hot(x: torch.Tensor, name: str, exclusive: bool, why: str) -> None:
    """x (B, C, ...) holds only 0 and 1 and, with `exclusive`, exactly one class per voxel along
    dim 1 (`why` ends that message). One reduction each."""
    if x.dtype != torch.bool and not ((x == 0) | (x == 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1")
    if exclusive and not (x.sum(1, dtype=torch.int64) == 1).all():
        raise ValueError(f"{name} must have exactly one class per voxel along dim 1 {why}")


def index_labels(x: torch.Tensor) -> torch.Tensor:
    """Labels as uint8, int32 or int64 (the types the kernels read; torch lacks reductions and
    comparisons for its other unsigned types), converting any other integer type to int64."""
    return x if x.dtype in (torch.uint8, torch.int32, torch.int64) else x.to(torch.int64)


def spatial_ndim(x: torch.Tensor, ndim: int | None, name: str) -> int:
    """The number of trailing spatial dims: `ndim`, or all of x's dims when None."""
    if x.dim() == 0:
        raise ValueError(f"{name} must have at least 1 spatial dim, got a 0-d {name}")
    if ndim is None:
        ndim = x.dim()
    elif not isinstance(ndim, numbers.Integral) or isinstance(ndim, bool):
        raise TypeError(f"ndim must be an int or None, got {type(ndim).__name__}")
    if not 1 <= ndim <= x.dim():
        raise ValueError(f"ndim must be between 1 and {name}.dim() = {x.dim()}, got {ndim}")
    return int(ndim)


def spacing_tuple(spacing: Any, ndim: int) -> tuple[float, ...]:
    """`spacing` as one positive finite float per spatial axis (1.0 each when None)."""
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, (torch.Tensor, np.ndarray)):
        spacing = spacing.tolist()
    if isinstance(spacing, numbers.Real) and not isinstance(spacing, bool):
        values = [spacing] * ndim
    elif isinstance(spacing, Sequence) and not isinstance(spacing, str):
        values = list(spacing)
    else:
        raise TypeError(f"spacing must be a number or a sequence of {ndim} numbers, "
                        f"got {type(spacing).__name__}")
    if len(values) != ndim:
        raise ValueError(f"spacing must have one value per spatial axis ({ndim}), "
                         f"got {len(values)}")
    for v in values:
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            raise TypeError(f"spacing values must be real numbers, got {type(v).__name__}")
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"spacing values must be positive and finite, got {v}")
    return tuple(float(v) for v in values)


def is_per_item(spacing: Any) -> bool:
    """True for a per-item spacing: a 2-D tensor/array, or a sequence of sequences."""
    if isinstance(spacing, (torch.Tensor, np.ndarray)):
        return spacing.ndim >= 2
    return (isinstance(spacing, Sequence) and not isinstance(spacing, str) and len(spacing) > 0
            and all(isinstance(s, (Sequence, torch.Tensor, np.ndarray)) for s in spacing))


def spacing_rows(spacing: Any, ndim: int, batch: int,
                 hint: str = "") -> tuple[float, ...] | list[tuple[float, ...]]:
    """`spacing` for a batch of `batch` items: one tuple (spacing_tuple) shared by every item, or,
    for a per-item spacing ((batch, ndim) tensor/array, (*batch, ndim) tensor/array, or a sequence
    of `batch` tuples), one tuple per item. `hint` ends the messages of a wrong length."""
    if not is_per_item(spacing):
        try:
            return spacing_tuple(spacing, ndim)
        except ValueError as exc:
            raise ValueError(f"{exc}{hint}") from None
    if isinstance(spacing, (torch.Tensor, np.ndarray)):
        if spacing.shape[-1] != ndim:
            raise ValueError(f"spacing per batch item must have one value per spatial axis "
                             f"({ndim}) in its last dim, got shape {tuple(spacing.shape)}{hint}")
        spacing = spacing.reshape(-1, ndim).tolist()
    if len(spacing) != batch:
        raise ValueError(f"spacing per batch item must have B = {batch} rows, got "
                         f"{len(spacing)}{hint}")
    return [spacing_tuple(r, ndim) for r in spacing]


def spacing_alias(spacing: Any, sampling: Any) -> Any:
    """scipy's name `sampling` as an alias of `spacing` (one of them, not both)."""
    if sampling is None:
        return spacing
    if spacing is not None:
        raise TypeError("pass spacing or its alias sampling (scipy's name), not both")
    return sampling


def output_dtype(dtype: Any, x: torch.Tensor) -> torch.dtype:
    """float64 when asked, or when x is float64 and nothing is asked; float32 otherwise."""
    if dtype is None:
        return torch.float64 if x.dtype == torch.float64 else torch.float32
    if isinstance(dtype, torch.dtype):
        name = str(dtype).removeprefix("torch.")
    else:  # numpy types and dtypes, names ("float64")
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
    if name not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64 (or None), got {dtype!r}")
    return _FLOAT_DTYPES[name]


def positive_int(value: Any, name: str) -> int:
    """value as an int >= 1 (Python or numpy integers, not bool)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def optional_real(value: Any, name: str) -> float | None:
    """value as a float >= 0, or None: Python or numpy reals and 0-d tensors, not bool."""
    if value is None:
        return None
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0 \
            and value.dtype not in (torch.bool, np.bool_):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number or None, got {value!r}")
    if not value >= 0:  # NaN too
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def is_real(x: object) -> bool:
    """A real number that is not a bool (int, float, numpy scalars)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def choice(value: Any, name: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value
