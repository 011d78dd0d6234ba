// gpudist: the argument checks and pass weights shared by the variants of the transform, on the
// CPU (multilabel_cpu.cpp, metric_cpu.cpp, features_cpu.cpp) and on CUDA (variants_cuda.cu), and
// the CPU ops' loop over the lines of their passes.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "distance_transform/distance_transform.h"

namespace gpudist {

// The spatial shape of a (B, *spatial) input and its spacing, in rows: one shared by every item
// (rows == 1), or one per item (rows == B: `spacing` held B * nd values, row-major), each with
// its largest value (scale) and pass weights (s_a / scale)^2.
struct VariantArgs {
  std::vector<index_t> shape;
  index_t rows = 1;
  std::vector<double> spacing;  // rows x nd, as given
  std::vector<double> w;        // rows x nd: (spacing / scale)^2
  std::vector<double> scales;   // per row: its largest spacing

  index_t row_of(index_t item) const { return rows == 1 ? 0 : item; }
  const double* spacing_of(index_t item) const {
    return spacing.data() + row_of(item) * shape.size();
  }
  const double* weights(index_t item) const { return w.data() + row_of(item) * shape.size(); }
  double scale_of(index_t item) const { return scales[row_of(item)]; }
  index_t volume() const {  // elements of one item
    index_t v = 1;
    for (index_t s : shape) v *= s;
    return v;
  }
  // Per row, the scale and shift (half the smallest spacing; unused by the variants'
  // conventions) of the CUDA kernels' spacing table (cuda_launch.h's line_spacing_table), laid
  // out as the transform's.
  std::vector<Finalize> fins() const {
    const size_t nd = shape.size();
    std::vector<Finalize> out;
    for (index_t r = 0; r < rows; ++r) {
      const auto row = spacing.begin() + r * nd;
      out.push_back(Finalize{kEdt, scales[r], 0.5 * *std::min_element(row, row + nd)});
    }
    return out;
  }
};

// Checks the input (named `name`), the spacing (nd values, or B * nd for B = src.size(0) > 1
// items) and the dtype, and reads off the VariantArgs.
inline VariantArgs variant_args(const at::Tensor& src, const char* name,
                                at::ArrayRef<double> spacing, at::ScalarType dtype) {
  const int64_t values = static_cast<int64_t>(spacing.size());
  TORCH_CHECK_VALUE(values >= 1, "gpudist: spacing must have one value per spatial axis (>= 1)");
  const bool per_item = spacing_per_item(src, values);
  const int64_t nd = per_item ? src.dim() - 1 : values;
  TORCH_CHECK_VALUE(src.dim() == nd + 1, "gpudist: ", name, " must be (batch, *spatial) with ",
                    nd, " spatial dims, got ", src.dim(),
                    " dims (or one row of spacing per batch item: B * ndim values)");
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble,
                    "gpudist: dtype must be float32 or float64");
  VariantArgs args;
  args.rows = per_item ? src.size(0) : 1;
  args.spacing.assign(spacing.begin(), spacing.end());
  for (index_t r = 0; r < args.rows; ++r) {
    double scale = 0.0;
    for (int64_t a = 0; a < nd; ++a) {
      const double s = spacing[r * nd + a];
      TORCH_CHECK_VALUE(std::isfinite(s) && s > 0, "gpudist: spacing must be positive and finite",
                        per_item ? ", in row " + std::to_string(r) : std::string());
      scale = std::max(scale, s);
    }
    for (int64_t a = 0; a < nd; ++a) {
      const double s = spacing[r * nd + a];
      args.w.push_back((s / scale) * (s / scale));
    }
    args.scales.push_back(scale);
  }
  for (int64_t a = 0; a < nd; ++a) args.shape.push_back(src.size(a + 1));
  return args;
}

// One line of a CPU variant pass along axis `a`: n elements of stride `inner`, starting at `at`
// in the batch (`in_item` within item `item`); `last`: the last pass.
struct PassLine {
  int a;
  index_t n, inner, at, in_item, item;
  bool last;
};

// A thread's scratch for the lines of one pass: `arrays` arrays of n + 2 doubles and as many of
// n + 2 indices.
struct LineScratch {
  LineScratch(int arrays, index_t n) : size(n + 2), d(arrays * size), i(arrays * size) {}
  double* doubles(int k) { return d.data() + k * size; }
  index_t* indices(int k) { return i.data() + k * size; }
  index_t size;
  std::vector<double> d;
  std::vector<index_t> i;
};

// The CPU passes of a variant over `items` items of args.shape: axis 0 first, then 1 .. nd-1,
// each pass calling line(PassLine, LineScratch&) on every line, lines over threads.
template <typename Line>
void cpu_variant_passes(const VariantArgs& args, index_t items, int arrays, Line&& line) {
  const std::vector<index_t>& shape = args.shape;
  const int nd = static_cast<int>(shape.size());
  const index_t volume = args.volume();
  for (int a = 0; a < nd; ++a) {
    const index_t n = shape[a];
    index_t inner = 1;
    for (int b = a + 1; b < nd; ++b) inner *= shape[b];
    const index_t per_item = volume / n;  // lines of one item
    at::parallel_for(0, items * per_item, std::max<index_t>(1, 4096 / n),
                     [&](index_t begin, index_t end) {
                       LineScratch scratch(arrays, n);
                       for (index_t l = begin; l < end; ++l) {
                         const index_t at = (l / inner) * n * inner + l % inner;
                         const index_t item = l / per_item;
                         line(PassLine{a, n, inner, at, at - item * volume, item, a + 1 == nd},
                              scratch);
                       }
                     });
  }
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
