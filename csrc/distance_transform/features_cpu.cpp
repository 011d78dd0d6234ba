// gpudist::feature_transform on the CPU: the Euclidean distance transform of a batch of masks
// with, for every element, the flat index of a nearest background element (scipy's
// return_indices).
//
//   feature_transform(src, spacing, dtype) -> (distances, features)
//
//   src:       (B, *spatial) bool mask, true = foreground.
//   spacing:   one positive finite value per spatial axis, or one such row per item (B * nd
//              values, row-major).
//   distances: (B, *spatial) of dtype, as distance_transform(..., "edt").
//   features:  (B, *spatial) int64: the row-major flat index, within its item, of a nearest
//              background element (itself on the background; ties as in
//              kernels/edt_features.cuh); -1 in an item without background.
//
// One line at a time, in place, with the per-line functions of kernels/edt_features.cuh.
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "distance_transform/distance_transform.h"
#include "distance_transform/variant_args.h"
#include "kernels/edt_features.cuh"

namespace gpudist {
namespace {

template <typename T>
void feature_passes(const uint8_t* src, T* out, long long* feat, const VariantArgs& args,
                    index_t items) {
  cpu_variant_passes(args, items, 2, [&](const PassLine& p, LineScratch& scratch) {
    const double w = args.weights(p.item)[p.a];
    const index_t at = p.at;
    if (p.a == 0)
      feature_first_pass_line(src + at, p.inner, out + at, feat + at, p.inner, p.in_item, p.n,
                              w);
    else
      feature_envelope_line(src + at, p.inner, out + at, feat + at, p.inner, p.in_item, p.n, w,
                            scratch.doubles(0), scratch.indices(0), scratch.doubles(1),
                            scratch.indices(1), 1);
  });
  const index_t volume = args.volume();
  // One span per spacing row: the whole batch, or each item with its own scale.
  const index_t span = args.rows == 1 ? items * volume : volume;
  for (index_t r = 0; r < args.rows; ++r)
    finalize_span(out + r * span, span, Finalize{kEdt, args.scales[r], 0.0});
}

std::tuple<at::Tensor, at::Tensor> feature_transform_cpu(const at::Tensor& src_any,
                                                         at::ArrayRef<double> spacing,
                                                         at::ScalarType dtype) {
  const VariantArgs args = variant_args(src_any, "src", spacing, dtype);
  check_mask(src_any);
  const at::Tensor src = src_any.contiguous();
  at::Tensor out = at::empty(src.sizes(), src.options().dtype(dtype));
  at::Tensor feat = at::empty(src.sizes(), src.options().dtype(at::kLong));
  if (out.numel() == 0) return {out, feat};
  const auto* s = reinterpret_cast<const uint8_t*>(src.const_data_ptr<bool>());
  auto* fp = reinterpret_cast<long long*>(feat.data_ptr<int64_t>());
  if (dtype == at::kFloat)
    feature_passes(s, out.data_ptr<float>(), fp, args, src.size(0));
  else
    feature_passes(s, out.data_ptr<double>(), fp, args, src.size(0));
  return {out, feat};
}

}  // namespace

TORCH_LIBRARY_IMPL(gpudist, CPU, m) { m.impl("feature_transform", &feature_transform_cpu); }

}  // namespace gpudist
