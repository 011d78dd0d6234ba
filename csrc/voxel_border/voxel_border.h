// gpudist::voxel_border: the border voxels of a batch of masks, the surface model "voxel" of the
// surface metrics (gpudist/metrics/surfaces.py holds the same rule in torch for other devices).
//
//   voxel_border(mask, connectivity) -> border
//
//   mask:         (N, *spatial) bool, any layout, at least one spatial dim.
//   connectivity: 1..ndim, the neighbours that count: those differing by one along at most
//                 `connectivity` axes (scipy's generate_binary_structure).
//   border:       (N, *spatial) bool, contiguous: mask XOR erode(mask), everything outside the
//                 image background, so a mask voxel on the image edge is a border voxel.
//
// CPU only (voxel_border_cpu.cpp).
#pragma once
