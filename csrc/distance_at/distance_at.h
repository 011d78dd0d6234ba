// gpudist::distance_at: the distance transform read at chosen elements only.
//
//   distance_at(src, query, spacing, dtype) -> out
//
//   src:     (B, *spatial) bool mask, any layout: the transform's foreground (true) and sites
//            (false), as distance_transform's "edt" convention.
//   query:   bool mask of src's shape and device: the elements to read.
//   spacing: one positive finite value per spatial axis, or one such row per item (B * nd
//            values, row-major), as distance_transform's.
//   dtype:   float32 or float64.
//   out:     (query.sum(),) the edt of src at the query elements, in row-major order (that of
//            query.nonzero()); +inf in items without background.
//
// Its work grows with the distances asked for, not with the volume beyond one linear pass: for
// queries near the background, such as the surface elements of the surface metrics. CPU only
// (distance_at_cpu.cpp); on CUDA the callers read a full distance_transform.
#pragma once
