// gpudist::multilabel_edt on the CPU: the multi-label Euclidean distance transform (seung-lab
// edt's default for integer labels) of a batch of label maps.
//
//   multilabel_edt(labels, spacing, black_border, squared, dtype) -> out
//
//   labels:       (B, *spatial) bool / uint8 / int32 / int64 labels; 0 is the background.
//   spacing:      one positive finite value per spatial axis.
//   black_border: the outside of the array is background.
//   squared:      squared distances.
//   out:          (B, *spatial) of dtype (float32 / float64): the distance from each element of a
//                 nonzero label to the nearest element of another label; 0 on label 0; +inf in an
//                 item of one nonzero label without black_border.
//
// One line at a time, in place, with the per-line functions of kernels/edt_multilabel.cuh.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "distance_transform/distance_transform.h"
#include "distance_transform/variant_args.h"
#include "kernels/edt_multilabel.cuh"

namespace gpudist {
namespace {

template <typename L, typename T>
void multilabel_passes(const L* labels, T* out, const std::vector<index_t>& shape, index_t items,
                       const std::vector<double>& w, bool black_border, const Finalize& fin) {
  const int nd = static_cast<int>(shape.size());
  index_t volume = 1;
  for (index_t s : shape) volume *= s;
  for (int a = 0; a < nd; ++a) {
    const index_t n = shape[a];
    index_t inner = 1;
    for (int b = a + 1; b < nd; ++b) inner *= shape[b];
    const index_t lines = items * (volume / n);
    const Finalize* last = a + 1 == nd ? &fin : nullptr;
    at::parallel_for(0, lines, std::max<index_t>(1, 4096 / n), [&](index_t begin, index_t end) {
      std::vector<double> f(n + 2), z(n + 2);
      std::vector<index_t> v(n + 2);
      for (index_t l = begin; l < end; ++l) {
        const index_t row = l / inner, j = l % inner;  // row: (item, position before axis a)
        const index_t base = row * n * inner + j;
        if (a == 0)
          multilabel_first_pass_line(labels + base, inner, out + base, inner, n, w[a],
                                     black_border, last);
        else
          multilabel_envelope_line(labels + base, inner, out + base, inner, out + base, inner, n,
                                   w[a], black_border, f.data(), v.data(), z.data(), 1, last);
      }
    });
  }
}

at::Tensor multilabel_edt_cpu(const at::Tensor& labels_any, at::ArrayRef<double> spacing,
                              bool black_border, bool squared, at::ScalarType dtype) {
  const VariantArgs args = variant_args(labels_any, "labels", spacing, dtype);
  const std::vector<index_t>& shape = args.shape;
  const std::vector<double>& w = args.w;
  const double scale = args.scale;
  check_labels(labels_any);
  const at::Tensor labels = labels_any.contiguous();
  at::Tensor out = at::empty(labels.sizes(), labels.options().dtype(dtype));
  if (out.numel() == 0) return out;
  const Finalize fin{squared ? kEdtSquared : kEdt, scale, 0.0};
  with_src_data(labels, [&](auto* s) {
    if (dtype == at::kFloat)
      multilabel_passes(s, out.data_ptr<float>(), shape, labels.size(0), w, black_border, fin);
    else
      multilabel_passes(s, out.data_ptr<double>(), shape, labels.size(0), w, black_border, fin);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gpudist, CPU, m) { m.impl("multilabel_edt", &multilabel_edt_cpu); }

}  // namespace gpudist
