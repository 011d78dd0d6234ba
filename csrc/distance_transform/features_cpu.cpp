// gpudist::feature_transform on the CPU: the Euclidean distance transform of a batch of masks
// with, for every element, the flat index of a nearest background element (scipy's
// return_indices).
//
//   feature_transform(src, spacing, dtype) -> (distances, features)
//
//   src:       (B, *spatial) bool mask, true = foreground.
//   spacing:   one positive finite value per spatial axis.
//   distances: (B, *spatial) of dtype, as distance_transform(..., "edt").
//   features:  (B, *spatial) int64: the row-major flat index, within its item, of a nearest
//              background element (itself on the background; ties as in
//              kernels/edt_features.cuh); -1 in an item without background.
//
// One line at a time, in place, with the per-line functions of kernels/edt_features.cuh.
#include <ATen/Parallel.h>
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
void feature_passes(const uint8_t* src, T* out, long long* feat, const std::vector<index_t>& shape,
                    index_t items, const std::vector<double>& w, const Finalize& fin) {
  const int nd = static_cast<int>(shape.size());
  index_t volume = 1;
  for (index_t s : shape) volume *= s;
  for (int a = 0; a < nd; ++a) {
    const index_t n = shape[a];
    index_t inner = 1;
    for (int b = a + 1; b < nd; ++b) inner *= shape[b];
    at::parallel_for(0, items * (volume / n), std::max<index_t>(1, 4096 / n),
                     [&](index_t begin, index_t end) {
                       std::vector<double> f(n + 1), z(n + 1);
                       std::vector<index_t> v(n + 1);
                       std::vector<long long> fe(n + 1);
                       for (index_t l = begin; l < end; ++l) {
                         const index_t item = l / (volume / n), rest = l % (volume / n);
                         const index_t base = (rest / inner) * n * inner + rest % inner;
                         const index_t at = item * volume + base;
                         if (a == 0)
                           feature_first_pass_line(src + at, inner, out + at, feat + at, inner,
                                                   base, n, w[a]);
                         else
                           feature_envelope_line(src + at, inner, out + at, feat + at, inner,
                                                 base, n, w[a], f.data(), v.data(), z.data(),
                                                 fe.data(), 1);
                       }
                     });
  }
  finalize_span(out, items * volume, fin);
}

std::tuple<at::Tensor, at::Tensor> feature_transform_cpu(const at::Tensor& src_any,
                                                         at::ArrayRef<double> spacing,
                                                         at::ScalarType dtype) {
  const VariantArgs args = variant_args(src_any, "src", spacing, dtype);
  const std::vector<index_t>& shape = args.shape;
  const std::vector<double>& w = args.w;
  const double scale = args.scale;
  check_mask(src_any);
  const at::Tensor src = src_any.contiguous();
  at::Tensor out = at::empty(src.sizes(), src.options().dtype(dtype));
  at::Tensor feat = at::empty(src.sizes(), src.options().dtype(at::kLong));
  if (out.numel() == 0) return {out, feat};
  const Finalize fin{kEdt, scale, 0.0};
  const auto* s = reinterpret_cast<const uint8_t*>(src.const_data_ptr<bool>());
  auto* fp = reinterpret_cast<long long*>(feat.data_ptr<int64_t>());
  if (dtype == at::kFloat)
    feature_passes(s, out.data_ptr<float>(), fp, shape, src.size(0), w, fin);
  else
    feature_passes(s, out.data_ptr<double>(), fp, shape, src.size(0), w, fin);
  return {out, feat};
}

}  // namespace

TORCH_LIBRARY_IMPL(gpudist, CPU, m) { m.impl("feature_transform", &feature_transform_cpu); }

}  // namespace gpudist
