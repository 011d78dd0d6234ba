// gpudist::distance_transform: the exact separable Euclidean distance transform of a batch.
//
//   distance_transform(src, num_classes, spacing, convention, black_border, dtype,
//                      max_distance=None) -> out
//
//   src:          (B, *spatial), any layout. num_classes == 0: a bool mask (true = foreground);
//                 num_classes = C > 0: uint8 / int32 / int64 labels; one outside [0, C) belongs
//                 to no class (background in every class's map).
//   spacing:      one positive value per spatial axis (len(spacing) = src.dim() - 1), each in
//                 the normal range of dtype, the largest at most 1e18 (float32) or 1e145
//                 (float64) times the smallest (see make_plan); or one such row per batch item
//                 (B * (src.dim() - 1) values, row-major; label maps: the classes of item b use
//                 row b), all items still in one pass over the batch.
//   convention:   "edt" | "edt_squared" (distance of each foreground element to the nearest
//                 background element) | "kervadec" | "sdf" | "unsigned" (two-sided maps), the
//                 enum Convention of kernels/edt_line.cuh.
//   black_border: the outside of the array is background (edt conventions only).
//   dtype:        float32 or float64, the output's.
//   max_distance: edt conventions only, >= 0: a bound on the work, not the result; distances
//                 beyond it may come back +inf (the CPU skips them, CUDA computes them all).
//   out:          (B, *spatial) for a mask, (B, C, *spatial) for labels (class c's map of item b
//                 at [b, c]); contiguous, on src's device.
//
// Implementations: distance_transform_cpu.cpp (passes in cpu_passes.h) and
// distance_transform_cuda.cu (kernels/edt_kernels.cu, launched by cuda_plan.h's plan).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "kernels/edt_line.cuh"

namespace gpudist {

// Everything the passes need, read off the op's arguments and checked once. src may have any
// layout; the implementations read it contiguous. The spacing comes in rows: one shared by every
// item (rows == 1), or one per source item b (rows == B; the C class maps of b share row b).
struct Plan {
  std::vector<index_t> shape;  // spatial extents
  index_t rows = 1;            // spacing rows
  std::vector<double> w;       // rows x nd: per-axis (spacing / scale)^2, scale the row's largest
  std::vector<Finalize> fins;  // per row: the convention, scale and shift (half the smallest)
  std::vector<double> caps;    // per row, squared, in pass units: results above may be left +inf
  index_t items = 0;           // output batch: B, or B * num_classes for label maps
  index_t classes = 0;         // 0: src is a boolean mask; C: src holds labels in [0, C)
  bool two_sided = false;
  bool black_border = false;
  std::vector<int64_t> out_sizes;

  index_t row_of(index_t item) const { return rows == 1 ? 0 : classes ? item / classes : item; }
  // The nd weights of output item `item`.
  const double* weights(index_t item) const { return w.data() + row_of(item) * shape.size(); }
  const Finalize& fin_of(index_t item) const { return fins[row_of(item)]; }
  double cap_of(index_t item) const { return caps[row_of(item)]; }
  // The largest weight of axis a over the rows.
  double max_weight(int a) const {
    double most = 0.0;
    for (index_t r = 0; r < rows; ++r) most = std::max(most, w[r * shape.size() + a]);
    return most;
  }
};

// Whether `values` spacing values are one row per item of src (B, *spatial): B * (src.dim() - 1)
// of them with B > 1 (else they are one row shared by every item). The ops that take a spacing
// (make_plan, variant_args.h) read it so.
inline bool spacing_per_item(const at::Tensor& src, int64_t values) {
  return src.dim() >= 2 && src.size(0) > 1 && values == src.size(0) * (src.dim() - 1);
}

// Checks every argument (TORCH_CHECK_VALUE, messages naming the argument, src as src_name) and
// derives the plan. spacing: nd values, or B rows of nd values, row-major (B = src.size(0) > 1).
Plan make_plan(const at::Tensor& src, int64_t num_classes, at::ArrayRef<double> spacing,
               const std::string& convention, bool black_border, at::ScalarType dtype,
               std::optional<double> max_distance, const char* src_name = "src");

// Calls fn(pointer) with src's data as the kernels read it: bool masks and uint8 labels as
// const uint8_t*, int32 labels as const int32_t*, int64 labels as const long long* (the
// kernels' 64-bit type on every compiler). src must be contiguous and checked by make_plan.
template <typename Fn>
void with_src_data(const at::Tensor& src, Fn&& fn) {
  switch (src.scalar_type()) {
    case at::kBool: return fn(reinterpret_cast<const uint8_t*>(src.const_data_ptr<bool>()));
    case at::kByte: return fn(src.const_data_ptr<uint8_t>());
    case at::kInt: return fn(src.const_data_ptr<int32_t>());
    default: return fn(reinterpret_cast<const long long*>(src.const_data_ptr<int64_t>()));
  }
}

}  // namespace gpudist
