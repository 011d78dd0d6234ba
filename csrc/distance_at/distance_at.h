// gpudist::distance_at: the distance transform read at chosen elements only.
//
//   distance_at(sites, query, spacing, dtype) -> (dist, count)
//
//   sites:   (B, *spatial) bool mask, any layout: the elements distances are measured to (true).
//   query:   bool mask of sites' shape and device: the elements to measure from.
//   spacing: one positive finite value per spatial axis, or one such row per item (B * nd
//            values, row-major), as distance_transform's.
//   dtype:   float32 or float64.
//   dist:    (B, K) of dtype, K the largest count: row b holds the Euclidean distances from item
//            b's queries, in row-major order, to the nearest site of item b (+inf in an item
//            without sites), then +inf. Equal to distance_transform(~sites)[query], row by row.
//   count:   (B,) int64, the queries of each item.
//
// Its work grows with the distances asked for, not with the volume beyond one linear pass: for
// queries near the sites, such as one surface's elements measured to another's (the surface
// metrics). CPU only (distance_at_cpu.cpp); on CUDA the callers read a full distance_transform.
#pragma once
