"""Exact Euclidean distance transforms and signed distance maps, batched, in any dimension.

Conventions shared by every function here:

- The last `ndim` dims of the input are spatial; leading dims form a batch and each batch item is
  transformed on its own (scipy would treat a stacked array as one volume).
- `spacing` (alias `sampling`, scipy's name) is the physical size of a voxel: one positive
  finite number, or one per spatial axis; or one per batch item: a (B, ndim) tensor or array (B
  the number of items) or a sequence of B tuples. Every transform takes a per-item spacing in
  the same single pass over the batch as a shared one.
- Distances are Euclidean between voxel centres, in the units of `spacing`, exact: equal to
  scipy.ndimage.distance_transform_edt in float64, to the precision of the output dtype.
- Outputs are float32 (float64 when the input is float64, or with `dtype=`), contiguous, on the
  input's device; torch tensors give tensors and numpy arrays give numpy arrays.
- A mask element is foreground when nonzero (NaN is nonzero, as in scipy).
- Inputs need at least one spatial dim: a 0-d input is a ValueError (scipy would return a
  1-element result).
- A distance that overflows the output dtype is +inf (-inf where a signed map negates it).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .backends import resolve
from .backends.contract import METRICS, TWO_SIDED, out_sizes
from .backends.registry import resolve_variant
from .validation import (
    check_integer_dtype,
    check_mask_dtype,
    check_one_hot,
    choice,
    index_labels,
    optional_real,
    output_dtype,
    positive_int,
    spacing_alias,
    spacing_rows,
    spatial_ndim,
    to_torch,
)

CONVENTIONS = TWO_SIDED  # the signed maps: "kervadec", "sdf", "unsigned"

Array = Any  # torch.Tensor or numpy.ndarray


Spacing = "tuple[float, ...] | list[tuple[float, ...]]"  # one for all items, or one per item


def _flat(spacing: Spacing, nd: int) -> list[float]:
    """A backend's `spacing`: a tuple's values, or a list of B tuples (one per item) flat, B * nd
    values row-major (one row when they are all equal; nd ones for an empty batch)."""
    if isinstance(spacing, tuple):
        return list(spacing)
    if not spacing:  # an empty batch
        return [1.0] * nd
    if len(set(spacing)) == 1:
        return list(spacing[0])
    return [s for row in spacing for s in row]


def _run(src: torch.Tensor, num_classes: int, spacing: Spacing, convention: str,
         black_border: bool, dtype: torch.dtype, backend: str | None,
         max_distance: float | None = None) -> torch.Tensor:
    """The backend's transform of src (B, *spatial) in one call; `spacing` a tuple, or a list of
    B tuples (one per item)."""
    fn = resolve(backend, src.device)
    return fn(src, num_classes, _flat(spacing, src.dim() - 1), convention, black_border, dtype,
              max_distance)


def _repeat_rows(spacing: Spacing, times: int) -> Spacing:
    """A per-item spacing repeated for `times` consecutive items each (the classes of an item)."""
    return spacing if isinstance(spacing, tuple) else [r for r in spacing for _ in range(times)]


def _reserve(sizes: Any, dtype: torch.dtype, device: torch.device) -> None:
    """Fails at once when an output of `sizes` cannot be allocated, before a large input is
    copied for it (the backend allocates its own)."""
    try:
        torch.empty(sizes, dtype=dtype, device=device)
    except (RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        size = math.prod(sizes) * dtype.itemsize
        raise MemoryError(f"gpudist: cannot allocate the output, {tuple(sizes)} {dtype} "
                          f"({size / 2**30:.1f} GiB), on {device}") from exc


def _batched_mask(x: torch.Tensor, ndim: int, dtype: torch.dtype) -> torch.Tensor:
    """x as a contiguous bool tensor (B, *spatial), B = product of the leading dims, once an
    output of x's shape and `dtype` is known to fit."""
    spatial = x.shape[x.dim() - ndim:]
    if x.dtype != torch.bool or not x.is_contiguous():
        _reserve(x.shape, dtype, x.device)
    mask = x if x.dtype == torch.bool else x != 0
    return mask.reshape((math.prod(x.shape[:x.dim() - ndim]),) + tuple(spatial)).contiguous()


def edt(mask: Array, spacing: Any = None, *, ndim: int | None = None, squared: bool = False,
        black_border: bool = False, max_distance: float | None = None, dtype: Any = None,
        backend: str | None = None, sampling: Any = None, multilabel: bool = False,
        metric: str = "euclidean", return_indices: bool = False) -> Any:
    """Euclidean distance from every nonzero element to the nearest zero element (scipy's rule).

    Args:
        mask: (*batch, *spatial) bool, integer or floating-point tensor or numpy array.
        spacing: voxel size, a number or one value per spatial axis (default 1), or one row per
            batch item ((B, ndim), B the product of the batch dims).
        ndim: number of trailing spatial dims (default: all dims, like scipy).
        squared: return squared distances.
        black_border: treat everything outside the array as zero (background).
        max_distance: distances (not squared) above this number, in the output dtype, are
            returned as +inf; those up to it stay exact. On the CPU the transform then skips
            the work beyond it, which makes short-range maps (surfaces, bands) much cheaper.
        dtype: float32 or float64 output (default float32, float64 for a float64 mask).
        backend: "extension", "cupy", "numba", "scipy" or None for the fastest available.
        sampling: scipy's name for `spacing` (pass one of them).
        multilabel: `mask` holds integer labels (or bool), 0 the background: the distance from
            every element of a nonzero label to the nearest element of a different label (0
            included), as seung-lab edt's `edt.edt(labels, anisotropy=spacing,
            black_border=...)`; 0 on label 0. Every backend.
        metric: "euclidean" (the default), or scipy's `distance_transform_cdt` metrics
            "taxicab" (sum over the axes of spacing times |index difference|) and "chessboard"
            (their max), exact with any spacing; `squared` is then an error. Every backend
            (the scipy one with an isotropic spacing only).
        return_indices: also return the feature transform, as scipy's: for every element the
            index of a nearest zero element (itself on zeros), int64 of shape
            (*batch, ndim, *spatial) (an unbatched mask: scipy's (ndim, *spatial)); -1 in an item
            without zeros. Ties (equidistant zeros) are broken pass by pass: each pass (axis 0
            first) keeps the candidate of the lower index along its axis (up to the rounding of
            the envelope's intersections); scipy may pick another of them (at the same
            distance). Every backend.

    Returns:
        Same shape as `mask`: 0 on zero elements; +inf everywhere in a batch item that has no
        zero element (with black_border the border is a zero, so the map stays finite), and
        beyond max_distance. With return_indices, the pair (distances, indices).
    """
    x, back = to_torch(mask, "mask")
    check_mask_dtype(x, "mask")
    nd = spatial_ndim(x, ndim, "mask")
    limit = optional_real(max_distance, "max_distance")
    batch = math.prod(x.shape[:x.dim() - nd])
    sp = spacing_rows(spacing_alias(spacing, sampling), nd, batch)
    choice(metric, "metric", METRICS)
    out_dtype = output_dtype(dtype, x)
    if (metric != "euclidean") + bool(multilabel) + bool(return_indices) > 1:
        raise ValueError("metric != 'euclidean', multilabel=True and return_indices=True "
                         "do not combine")
    if (metric != "euclidean" or return_indices) and squared:
        raise ValueError("squared=True is for metric='euclidean' without return_indices")
    if return_indices and (black_border or limit is not None):
        raise ValueError("return_indices=True takes black_border=False and max_distance=None "
                         "(a feature is an element of the array, as in scipy)")
    if metric != "euclidean":
        fn = resolve_variant("metric_transform", backend, x.device)
        out = fn(_batched_mask(x, nd, out_dtype), _flat(sp, nd), metric, bool(black_border),
                 out_dtype)
    elif multilabel:
        if x.dtype != torch.bool:
            check_integer_dtype(x, "mask (multilabel=True: integer labels)")
        src = index_labels(x).reshape((batch,) + tuple(x.shape[x.dim() - nd:])).contiguous()
        fn = resolve_variant("multilabel_edt", backend, x.device)
        out = fn(src, _flat(sp, nd), bool(black_border), bool(squared), out_dtype)
    elif return_indices:
        fn = resolve_variant("feature_transform", backend, x.device)
        out, flat = fn(_batched_mask(x, nd, out_dtype), _flat(sp, nd), out_dtype)
        return back(out.reshape(x.shape)), back(_unravel(flat, x.shape, nd))
    else:
        out = _run(_batched_mask(x, nd, out_dtype), 0, sp, "edt_squared" if squared else "edt",
                   bool(black_border), out_dtype, backend, limit)
    if limit is not None:
        out.masked_fill_(out > (limit * limit if squared else limit), math.inf)
    return back(out.reshape(x.shape))


def _unravel(flat: torch.Tensor, shape: tuple[int, ...], nd: int) -> torch.Tensor:
    """Flat indices (B, *spatial) within an item -> (*batch, nd, *spatial) int64 coordinates
    (-1 where the flat index is -1)."""
    spatial = shape[len(shape) - nd:]
    coords, rest = [], flat
    for n in reversed(spatial):
        coords.append(torch.where(rest < 0, -1, rest % n))
        rest = torch.where(rest < 0, -1, rest // n)
    out = torch.stack(coords[::-1], dim=1)  # (B, nd, *spatial)
    return out.reshape(tuple(shape[:len(shape) - nd]) + (nd,) + tuple(spatial))


def signed_distance(mask: Array, spacing: Any = None, *, ndim: int | None = None,
                    convention: str = "kervadec", dtype: Any = None,
                    backend: str | None = None, sampling: Any = None) -> Array:
    """Signed distance (level-set) map of a mask, per batch item.

    With D(v) the distance from voxel v to the nearest voxel of the other class:

    - "kervadec" (Kervadec et al. 2019, `one_hot2dist`): D outside the mask, 1 - D inside. With
      unit spacing the object's own boundary voxels are 0, the next layer -1, and so on; the 1 is
      in units of `spacing`, so with other spacings the boundary values are 1 - spacing.
    - "sdf": D - h/2 outside and -(D - h/2) inside, h = the smallest spacing: negative inside,
      positive outside. Across the interface along an axis of spacing h the two voxels get -h/2
      and +h/2 and the zero level lies halfway between them (along a coarser axis of spacing s,
      +-(s - h/2)).
    - "unsigned": D everywhere, i.e. EDT(mask) + EDT(~mask) (the field of MONAI's
      HausdorffDTLoss).

    A batch item with no boundary (mask empty, or no background) gets a map of zeros under every
    convention: there is nothing to measure the distance to.

    Args and returns as `edt`; the output has the shape of `mask`.
    """
    x, back = to_torch(mask, "mask")
    check_mask_dtype(x, "mask")
    choice(convention, "convention", CONVENTIONS)
    nd = spatial_ndim(x, ndim, "mask")
    sp = spacing_rows(spacing_alias(spacing, sampling), nd, math.prod(x.shape[:x.dim() - nd]))
    out_dtype = output_dtype(dtype, x)
    out = _run(_batched_mask(x, nd, out_dtype), 0, sp, convention, False, out_dtype, backend)
    return back(out.reshape(x.shape))


def _batch_hint(x: torch.Tensor, layout: str) -> str:
    return (f"; expected {layout}, got shape {tuple(x.shape)} (add a batch dim for a single "
            f"sample: x[None])")


def one_hot_to_dist(one_hot: Array, spacing: Any = None, *, convention: str = "kervadec",
                    dtype: Any = None, validate: bool = True, backend: str | None = None,
                    ndim: int | None = None, sampling: Any = None) -> Array:
    """Distance maps of every (batch, class) of a one-hot tensor in one call.

    Args:
        one_hot: (B, C, *spatial) of 0/1 values (bool, integer or floating point). A single
            (C, *spatial) sample (the signature of Kervadec's `one_hot2dist`) needs a batch dim.
        spacing: voxel size, a number or one value per spatial axis, or one row per batch item
            ((B, ndim) or a sequence of B tuples); `sampling` is its alias (scipy's name).
        convention: "kervadec", "sdf" or "unsigned", as in `signed_distance`.
        validate: check that values are 0/1 and, for "kervadec", that every voxel has exactly one
            class, as the paper's `one_hot2dist` asserts (one reduction; skipped under
            torch.compile, where data-dependent checks cannot run).
        ndim: the number of spatial dims, checked when given (default one_hot.dim() - 2): with
            validate=False, the one guard against a sample without its batch dim.

    Returns:
        (B, C, *spatial) float32 (or `dtype`) maps; an absent class, or one that fills the image,
        gets zeros.
    """
    x, back = to_torch(one_hot, "one_hot")
    check_mask_dtype(x, "one_hot")
    choice(convention, "convention", CONVENTIONS)
    hint = _batch_hint(x, "(B, C, *spatial)")
    if x.dim() < 3:
        raise ValueError(f"one_hot must be (B, C, *spatial) with at least one spatial dim{hint}")
    nd = _check_ndim(ndim, x.dim() - 2, "one_hot", hint)
    if validate and not torch.compiler.is_compiling() and x.numel():
        check_one_hot(x, "one_hot", convention == "kervadec",
                      f"for convention='kervadec'{hint}; pass validate=False to skip this check")
    sp = _repeat_rows(spacing_rows(spacing_alias(spacing, sampling), nd, x.shape[0], hint),
                      x.shape[1])
    out_dtype = output_dtype(dtype, x)
    out = _run(_batched_mask(x, nd, out_dtype), 0, sp, convention, False, out_dtype, backend)
    return back(out.reshape(x.shape))


def _check_ndim(ndim: Any, actual: int, name: str, hint: str) -> int:
    if ndim is None:
        return actual
    if not isinstance(ndim, int) or isinstance(ndim, bool):
        raise TypeError(f"ndim must be an int or None, got {type(ndim).__name__}")
    if ndim != actual:
        raise ValueError(f"{name} has {actual} spatial dims, ndim={ndim} was given{hint}")
    return ndim


def labels_to_dist(labels: Array, num_classes: int, spacing: Any = None, *,
                   convention: str = "kervadec", dtype: Any = None, validate: bool = True,
                   backend: str | None = None, ndim: int | None = None,
                   sampling: Any = None) -> Array:
    """Distance maps of every class of integer label maps, without building a one-hot tensor.

    Args:
        labels: (B, *spatial) integer class indices in [0, num_classes).
        num_classes: C, the number of classes.
        spacing, sampling, convention, dtype, backend: as in `one_hot_to_dist`.
        validate: check 0 <= labels < num_classes (one reduction; skipped under torch.compile).
            Unchecked (validate=False), a label outside [0, num_classes) belongs to no class:
            that voxel is background in every class's map, on every backend.
        ndim: the number of spatial dims, checked when given (default labels.dim() - 1).

    Returns:
        (B, C, *spatial) float32 (or `dtype`) maps, equal to `one_hot_to_dist` of the one-hot
        encoding of `labels`.
    """
    x, back = to_torch(labels, "labels")
    check_integer_dtype(x, "labels")
    choice(convention, "convention", CONVENTIONS)
    num_classes = positive_int(num_classes, "num_classes")
    hint = _batch_hint(x, "(B, *spatial)")
    if x.dim() < 2:
        raise ValueError(f"labels must be (B, *spatial) with at least one spatial dim{hint}")
    nd = _check_ndim(ndim, x.dim() - 1, "labels", hint)
    out_dtype = output_dtype(dtype, torch.empty(0))
    if index_labels(x[:0]).dtype != x.dtype or not x.is_contiguous():  # x will be copied
        _reserve(out_sizes(x, num_classes), out_dtype, x.device)
    unsigned64 = x.dtype == torch.uint64
    x = index_labels(x)
    if validate and not torch.compiler.is_compiling() and x.numel():
        lo, hi = int(x.min()), int(x.max())
        if unsigned64 and lo < 0:  # uint64 labels of 2**63 or more, wrapped by index_labels
            lo, hi = 0, int(x[x < 0].max()) + 2**64
        if lo < 0:
            raise ValueError(f"labels must be >= 0, got a label {lo}")
        if hi >= num_classes:
            raise ValueError(f"num_classes ({num_classes}) must be greater than the largest "
                             f"label ({hi})")
    sp = spacing_rows(spacing_alias(spacing, sampling), nd, x.shape[0], hint)
    out = _run(x.contiguous(), num_classes, sp, convention, False, out_dtype, backend)
    return back(out)
