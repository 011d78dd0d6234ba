// gpudist: host-side plan of one distance transform, shared by the CPU and CUDA implementations of
// the op `gpudist::distance_transform` (schema in ops.cpp).
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

Plan make_plan(const at::Tensor& src, int64_t num_classes, at::ArrayRef<double> spacing,
               const std::string& convention, bool black_border, at::ScalarType dtype,
               std::optional<double> max_distance);

at::Tensor distance_transform_cpu(const at::Tensor& src, int64_t num_classes,
                                  at::ArrayRef<double> spacing, const std::string& convention,
                                  bool black_border, at::ScalarType dtype,
                                  std::optional<double> max_distance);

}  // namespace gpudist
