// gpudist::metric_transform on the CPU: the exact taxicab and chessboard distance transforms of a
// batch of masks (scipy's distance_transform_cdt metrics), with spacing.
//
//   metric_transform(src, spacing, metric, black_border, dtype) -> out
//
//   src:          (B, *spatial) bool mask, true = foreground.
//   spacing:      one positive finite value per spatial axis.
//   metric:       "taxicab" | "chessboard".
//   black_border: the outside of the array is background.
//   out:          (B, *spatial) of dtype: the distance from each foreground element to the nearest
//                 background element in that metric, in units of spacing; 0 on the background;
//                 +inf in an item without background.
//
// One line at a time, in place, with the per-line functions of kernels/edt_metrics.cuh.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "distance_transform/distance_transform.h"
#include "distance_transform/variant_args.h"
#include "kernels/edt_metrics.cuh"

namespace gpudist {
namespace {

template <typename T>
void metric_passes(const uint8_t* src, T* out, const std::vector<index_t>& shape, index_t items,
                   at::ArrayRef<double> spacing, int metric, bool black_border) {
  const int nd = static_cast<int>(shape.size());
  index_t volume = 1;
  for (index_t s : shape) volume *= s;
  for (int a = 0; a < nd; ++a) {
    const index_t n = shape[a];
    index_t inner = 1;
    for (int b = a + 1; b < nd; ++b) inner *= shape[b];
    const double h = spacing[a];
    at::parallel_for(0, items * (volume / n), std::max<index_t>(1, 4096 / n),
                     [&](index_t begin, index_t end) {
                       std::vector<index_t> s(n + 2), t(n + 2);
                       std::vector<double> gs(n + 2);
                       for (index_t l = begin; l < end; ++l) {
                         const index_t base = (l / inner) * n * inner + l % inner;
                         T* line = out + base;
                         if (a == 0)
                           metric_first_pass_line(src + base, inner, line, inner, n, h,
                                                  black_border);
                         else if (metric == kTaxicab)
                           taxicab_line(line, inner, n, h, black_border);
                         else
                           chessboard_line(line, inner, line, inner, n, h, black_border,
                                           s.data(), gs.data(), t.data(), 1);
                       }
                     });
  }
}

at::Tensor metric_transform_cpu(const at::Tensor& src_any, at::ArrayRef<double> spacing,
                                const std::string& metric, bool black_border,
                                at::ScalarType dtype) {
  const std::vector<index_t> shape = variant_args(src_any, "src", spacing, dtype).shape;
  check_mask(src_any);
  const int code = metric_code(metric);
  const at::Tensor src = src_any.contiguous();
  at::Tensor out = at::empty(src.sizes(), src.options().dtype(dtype));
  if (out.numel() == 0) return out;
  const auto* s = reinterpret_cast<const uint8_t*>(src.const_data_ptr<bool>());
  if (dtype == at::kFloat)
    metric_passes(s, out.data_ptr<float>(), shape, src.size(0), spacing, code, black_border);
  else
    metric_passes(s, out.data_ptr<double>(), shape, src.size(0), spacing, code, black_border);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gpudist, CPU, m) { m.impl("metric_transform", &metric_transform_cpu); }

}  // namespace gpudist
