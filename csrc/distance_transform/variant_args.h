// gpudist: the argument checks and pass weights shared by the variants of the transform, on the
// CPU (multilabel_cpu.cpp, metric_cpu.cpp, features_cpu.cpp) and on CUDA (variants_cuda.cu).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "distance_transform/distance_transform.h"

namespace gpudist {

// The spatial shape of a (B, *spatial) input, its spacing's largest value and the pass weights
// (s_a / scale)^2, after checking the input (named `name`), the spacing and the dtype.
struct VariantArgs {
  std::vector<index_t> shape;
  std::vector<double> w;
  double scale = 0.0;
};

inline VariantArgs variant_args(const at::Tensor& src, const char* name,
                                at::ArrayRef<double> spacing, at::ScalarType dtype) {
  const int64_t nd = static_cast<int64_t>(spacing.size());
  TORCH_CHECK_VALUE(nd >= 1, "gpudist: spacing must have one value per spatial axis (>= 1)");
  TORCH_CHECK_VALUE(src.dim() == nd + 1, "gpudist: ", name, " must be (batch, *spatial) with ",
                    nd, " spatial dims, got ", src.dim(), " dims");
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble,
                    "gpudist: dtype must be float32 or float64");
  VariantArgs args;
  for (double s : spacing) {
    TORCH_CHECK_VALUE(std::isfinite(s) && s > 0, "gpudist: spacing must be positive and finite");
    args.scale = std::max(args.scale, s);
  }
  for (int64_t a = 0; a < nd; ++a) {
    args.shape.push_back(src.size(a + 1));
    args.w.push_back((spacing[a] / args.scale) * (spacing[a] / args.scale));
  }
  return args;
}

// The input of metric_transform and feature_transform: a bool mask.
inline void check_mask(const at::Tensor& src) {
  TORCH_CHECK_VALUE(src.scalar_type() == at::kBool, "gpudist: a mask src must be bool");
}

// The input of multilabel_edt: labels of a type with_src_data() reads.
inline void check_labels(const at::Tensor& labels) {
  const auto st = labels.scalar_type();
  TORCH_CHECK_VALUE(st == at::kBool || st == at::kByte || st == at::kInt || st == at::kLong,
                    "gpudist: labels must be bool, uint8, int32 or int64");
}

// The Metric code (kernels/edt_metrics.cuh: kTaxicab 1, kChessboard 2) of metric_transform's
// `metric`.
inline int metric_code(const std::string& metric) {
  TORCH_CHECK_VALUE(metric == "taxicab" || metric == "chessboard",
                    "gpudist: metric must be 'taxicab' or 'chessboard', got '", metric, "'");
  return metric == "taxicab" ? 1 : 2;
}

}  // namespace gpudist
