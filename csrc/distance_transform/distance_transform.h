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
//                 (float64) times the smallest (see make_plan).
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

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "kernels/edt_line.cuh"

namespace gpudist {

// Everything the passes need, read off the op's arguments and checked once. src may have any
// layout; the implementations read it contiguous.
struct Plan {
  std::vector<index_t> shape;  // spatial extents
  std::vector<double> w;       // per-axis (spacing / scale)^2
  index_t items = 0;           // output batch: B, or B * num_classes for label maps
  index_t classes = 0;         // 0: src is a boolean mask; C: src holds labels in [0, C)
  bool two_sided = false;
  bool black_border = false;
  double cap = INFINITY;  // squared, in pass units: results above it may be left +inf
  Finalize fin{};
  std::vector<int64_t> out_sizes;
};

// Checks every argument (TORCH_CHECK_VALUE, messages naming the argument) and derives the plan.
Plan make_plan(const at::Tensor& src, int64_t num_classes, at::ArrayRef<double> spacing,
               const std::string& convention, bool black_border, at::ScalarType dtype,
               std::optional<double> max_distance);

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
