"""Surface elements of binary masks, extracted in torch so they run on the masks' device.

Two surface models, for masks (N, *spatial) of bool:

- "voxel": the border voxels `mask XOR binary_erosion(mask)` (scipy/MONAI/medpy), with the
  erosion's structuring element of the given connectivity (1 = face neighbours, ndim = all
  3^ndim - 1 neighbours) and everything outside the image treated as background, so a voxel on
  the image edge is a border voxel. Each border voxel has weight 1.
- "surfel": DeepMind `surface-distance`'s elements on the corner grid. Every 2^ndim cell of
  voxels (the image padded with background on each side, so the grid has one more point per axis
  than the image, shifted by -1/2 voxel) gets a neighbour code; cells whose code is neither 0 nor
  all-ones are surface elements, weighted by their contour length (2-D) or surfel area (3-D).
"""

from __future__ import annotations

import itertools

import torch

from ..backends import extension

# DeepMind surface-distance (Apache-2.0, Copyright 2018 Google Inc.), lookup_tables.py,
# _NEIGHBOUR_CODE_TO_NORMALS: for each 3-D neighbour code 0..255 the normals of its
# marching-cubes triangles, each component a multiple of 1/8. An area only depends on the
# absolute values, so each normal is stored as three digits |8 n_i| and a code's normals are
# concatenated; codes are separated by spaces.
_NORMALS_3D = (
    "000 111 111 220220 111 202202 111111 400222111 111 111111 202202 400222111 220220 "
    "400222111 400222111 400400 111 022022 111111 040222111 111111 004222111 111111111 "
    "111222222111 111111 022022111 202202111 111333022202 111220220 333022111220 400111222111 "
    "400111222 111 111111 022022 040111222 111111 111202202 022022111 333022111202 111111 "
    "111111111 004222111 222222111111 111220220 400222111111 022333111220 400222111 220220 "
    "040222111 040111222 040040 220220111 333202111220 111040222111 040222111 111220220 "
    "040222111111 333220111202 040222111 220220220220 220220111 111220220 220220 111 111111 "
    "111111 111220220 022022 004222111 022022111 333022111220 111111 111111111 111202202 "
    "400222111111 040222111 222222111111 202333022111 400222111 202202 004222111 111202202 "
    "202333220111 004222111 004004 111111222004 111222004 202202111 004222111111 202202202202 "
    "111202202 202333220111 004222111 111202202 202202 111111 111111111 111022022 "
    "040111222111 022022111 004222111111 022022022022 022022111 111111111 111111111111 "
    "004222111111 111111111 040222111111 111111111 022022111 111111 400222111 222111222111 "
    "333022111202 040222111 333220022111 111222004 111022022 022022 400222111111 111111111 "
    "202202111 111111 220220111 111111 111111 111 111 111111 111111 220220111 111111 "
    "202202111 111111111 400222111111 022022 111022022 111222004 333220022111 040222111 "
    "333022111202 222111222111 400222111 111111 022022111 111111111 040222111111 111111111 "
    "004222111111 111111111111 111111111 022022111 022022022022 004222111111 022022111 "
    "040111222111 111022022 111111111 111111 202202 111202202 004222111 202333220111 "
    "111202202 202202202202 004222111111 202202111 111222004 111111222004 004004 004222111 "
    "202333220111 111202202 004222111 202202 400222111 202333022111 222222111111 040222111 "
    "400222111111 111202202 111111111 111111 333022111220 022022111 004222111 022022 "
    "111220220 111111 111111 111 220220 111220220 220220111 220220220220 040222111 "
    "333220111202 040222111111 111220220 040222111 111040222111 333202111220 220220111 040040 "
    "040111222 040222111 220220 400222111 022333111220 400222111111 111220220 222222111111 "
    "004222111 111111111 111111 333022111202 022022111 111202202 111111 040111222 022022 "
    "111111 111 400111222 400111222111 333022111220 111220220 111333022202 202202111 "
    "022022111 111111 111222222111 111111111 004222111 111111 040222111 111111 022022 111 "
    "400400 400222111 400222111 220220 400222111 202202 111111 111 400222111 111111 202202 "
    "111 220220 111 111 000 "
)


def _normals_3d() -> torch.Tensor:
    """(256, 4, 3) float64 absolute normals, zero-padded to 4 per code."""
    out = torch.zeros(256, 4, 3, dtype=torch.float64)
    for code, entry in enumerate(_NORMALS_3D.split()):
        digits = [int(ch) for ch in entry]
        for j in range(len(digits) // 3):
            out[code, j] = torch.tensor(digits[3 * j:3 * j + 3], dtype=torch.float64) / 8
    return out


_NORMALS = _normals_3d()


def element_size_table(spacing: torch.Tensor) -> torch.Tensor:
    """Contour length (2-D) or surfel area (3-D) of each neighbour code, as DeepMind computes it.

    Args:
        spacing: (G, ndim) float64 voxel sizes, ndim 2 or 3.

    Returns:
        (G, 2 ** 2 ** ndim) float64: row g maps a neighbour code to its element size under
        spacing[g] (0 for the codes 0 and all-ones).
    """
    if spacing.shape[1] == 3:
        s0, s1, s2 = (s[:, None, None] for s in spacing.unbind(1))
        normals = _NORMALS.to(spacing.device)
        n0 = normals[..., 0] * s1 * s2  # (G, 256, 4), DeepMind's order of operations
        n1 = normals[..., 1] * s0 * s2
        n2 = normals[..., 2] * s0 * s1
        area = torch.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
        return ((area[..., 0] + area[..., 1]) + area[..., 2]) + area[..., 3]
    # 2-D: bits 8, 4, 2, 1 = top-left, top-right, bottom-left, bottom-right (axis 0 downwards).
    s0, s1 = spacing.unbind(1)
    diag = 0.5 * torch.sqrt(s0 ** 2 + s1 ** 2)
    zero = torch.zeros_like(s0)
    by_code = [zero, diag, diag, s1, diag, s0, 2 * diag, diag,
               diag, 2 * diag, s0, diag, s1, diag, diag, zero]
    return torch.stack(by_code, 1)


def _offsets(ndim: int) -> list[tuple[int, ...]]:
    return list(itertools.product((0, 1), repeat=ndim))


def surfel_codes(mask: torch.Tensor) -> torch.Tensor:
    """Neighbour codes on the corner grid: (N, *spatial) bool -> (N, *(spatial + 1)) uint8.

    The code of corner i sums 2^(2^ndim - 1 - k) over the voxels i - 1 + o inside the mask, where
    o in {0, 1}^ndim is the k-th offset in row-major order (DeepMind's kernels
    [[8, 4], [2, 1]] and [[[128, 64], [32, 16]], [[8, 4], [2, 1]]]).
    """
    ndim = mask.dim() - 1
    spatial = mask.shape[1:]
    padded = mask.new_zeros((mask.shape[0],) + tuple(n + 2 for n in spatial), dtype=torch.uint8)
    padded[(slice(None),) + tuple(slice(1, n + 1) for n in spatial)] = mask
    codes = mask.new_zeros((mask.shape[0],) + tuple(n + 1 for n in spatial), dtype=torch.uint8)
    top = 2 ** ndim - 1
    for k, off in enumerate(_offsets(ndim)):
        window = padded[(slice(None),) + tuple(slice(o, o + n + 1) for o, n in zip(off, spatial))]
        codes |= window << (top - k)
    return codes


def surfel_border(codes: torch.Tensor, ndim: int) -> torch.Tensor:
    """Surface elements: corners whose code is neither 0 nor all-ones."""
    return (codes != 0) & (codes != 2 ** 2 ** ndim - 1)


def _shift_slices(offset: tuple[int, ...], spatial: tuple[int, ...]) -> tuple[tuple, tuple]:
    """Index pairs (dst, src) with dst[i] = src[i + offset] where both are inside the image."""
    dst = (slice(None),) + tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(offset, spatial))
    src = (slice(None),) + tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(offset, spatial))
    return dst, src


def voxel_border(mask: torch.Tensor, connectivity: int) -> torch.Tensor:
    """Border voxels `mask XOR erode(mask)`: (N, *spatial) bool -> (N, *spatial) bool.

    A mask voxel is a border voxel when one of its neighbours within `connectivity` (the number
    of axes along which the neighbour may differ by one, as scipy's generate_binary_structure)
    is background or outside the image. The extension's kernel where it has one for the device
    (one pass), else the same rule in torch.
    """
    if extension.has_kernel("gpudist::voxel_border", mask.device):
        return extension.voxel_border(mask, connectivity)
    if mask.numel() == 0:
        return mask.clone()
    ndim = mask.dim() - 1
    spatial = tuple(mask.shape[1:])
    eroded = mask.clone()
    if connectivity == ndim:  # the full 3^ndim cube is separable: erode along each axis in turn
        for axis in range(ndim):
            before = eroded.clone()
            for step in (1, -1):
                offset = tuple(step if a == axis else 0 for a in range(ndim))
                dst, src = _shift_slices(offset, spatial)
                eroded[dst] &= before[src]
    else:
        for offset in itertools.product((-1, 0, 1), repeat=ndim):
            if 1 <= sum(map(abs, offset)) <= connectivity:
                dst, src = _shift_slices(offset, spatial)
                eroded[dst] &= mask[src]
    for axis, n in enumerate(spatial):  # outside the image is background
        eroded.narrow(axis + 1, 0, 1).zero_()
        eroded.narrow(axis + 1, n - 1, 1).zero_()
    return mask ^ eroded


def diagonal(spatial: tuple[int, ...], spacing: torch.Tensor) -> torch.Tensor:
    """Physical diagonal sqrt(sum (n_i s_i)^2) of the image, per row of spacing (G, ndim)."""
    extent = torch.tensor(spatial, dtype=torch.float64, device=spacing.device)
    return torch.sqrt(((extent * spacing) ** 2).sum(1))
