"""The conventions of the last pass, on numpy arrays (for the numba backend; the compiled kernels
apply the same rules in csrc/kernels/edt_line.cuh, `finalize_as`)."""

from __future__ import annotations

import numpy as np

TWO_SIDED = ("kervadec", "sdf", "unsigned")


def is_two_sided(convention: str) -> bool:
    return convention in TWO_SIDED


def check_black_border(convention: str, black_border: bool) -> None:
    """The op's rule (csrc/ops.cpp make_plan): the border counts for the plain EDT only."""
    if black_border and is_two_sided(convention):
        raise ValueError(f"gpudist: black_border applies to the edt conventions only, "
                         f"not {convention!r}")


def finalize_(stored: np.ndarray, convention: str, scale: float, shift: float) -> None:
    """In place: squared distances with the class in the sign bit -> the convention's values."""
    inside = np.signbit(stored)
    g = np.abs(stored, out=stored)
    if convention == "edt_squared":
        g *= scale * scale
        return
    d = np.sqrt(g, out=g)
    d *= scale
    if convention == "edt":
        return
    no_boundary = np.isinf(d)
    if convention == "kervadec":
        np.subtract(1.0, d, out=d, where=inside)
    elif convention == "sdf":
        d -= shift
        np.negative(d, out=d, where=inside)
    d[no_boundary] = 0.0
