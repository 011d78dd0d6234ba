// gpudist::metric_transform on the CPU: the exact taxicab and chessboard distance transforms of a
// batch of masks (scipy's distance_transform_cdt metrics), with spacing.
//
//   metric_transform(src, spacing, metric, black_border, dtype) -> out
//
//   src:          (B, *spatial) bool mask, true = foreground.
//   spacing:      one positive finite value per spatial axis, or one such row per item (B * nd
//                 values, row-major).
//   metric:       "taxicab" | "chessboard".
//   black_border: the outside of the array is background.
//   out:          (B, *spatial) of dtype: the distance from each foreground element to the nearest
//                 background element in that metric, in units of spacing; 0 on the background;
//                 +inf in an item without background.
//
// One line at a time, in place, with the per-line functions of kernels/edt_metrics.cuh.
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "distance_transform/distance_transform.h"
#include "distance_transform/variant_args.h"
#include "kernels/edt_metrics.cuh"

namespace gpudist {
namespace {

template <typename T>
void metric_passes(const uint8_t* src, T* out, const VariantArgs& args, index_t items, int metric,
                   bool black_border) {
  cpu_variant_passes(args, items, 2, [&](const PassLine& p, LineScratch& scratch) {
    const double h = args.spacing_of(p.item)[p.a];
    T* line = out + p.at;
    if (p.a == 0)
      metric_first_pass_line(src + p.at, p.inner, line, p.inner, p.n, h, black_border);
    else if (metric == kTaxicab)
      taxicab_line(line, p.inner, p.n, h, black_border);
    else
      chessboard_line(line, p.inner, line, p.inner, p.n, h, black_border, scratch.indices(0),
                      scratch.doubles(0), scratch.indices(1), 1);
  });
}

at::Tensor metric_transform_cpu(const at::Tensor& src_any, at::ArrayRef<double> spacing,
                                const std::string& metric, bool black_border,
                                at::ScalarType dtype) {
  const VariantArgs args = variant_args(src_any, "src", spacing, dtype);
  check_mask(src_any);
  const int code = metric_code(metric);
  const at::Tensor src = src_any.contiguous();
  at::Tensor out = at::empty(src.sizes(), src.options().dtype(dtype));
  if (out.numel() == 0) return out;
  const auto* s = reinterpret_cast<const uint8_t*>(src.const_data_ptr<bool>());
  if (dtype == at::kFloat)
    metric_passes(s, out.data_ptr<float>(), args, src.size(0), code, black_border);
  else
    metric_passes(s, out.data_ptr<double>(), args, src.size(0), code, black_border);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gpudist, CPU, m) { m.impl("metric_transform", &metric_transform_cpu); }

}  // namespace gpudist
