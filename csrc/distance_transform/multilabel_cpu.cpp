// gpudist::multilabel_edt on the CPU: the multi-label Euclidean distance transform (seung-lab
// edt's default for integer labels) of a batch of label maps.
//
//   multilabel_edt(labels, spacing, black_border, squared, dtype) -> out
//
//   labels:       (B, *spatial) bool / uint8 / int32 / int64 labels; 0 is the background.
//   spacing:      one positive finite value per spatial axis, or one such row per item (B * nd
//                 values, row-major).
//   black_border: the outside of the array is background.
//   squared:      squared distances.
//   out:          (B, *spatial) of dtype (float32 / float64): the distance from each element of a
//                 nonzero label to the nearest element of another label; 0 on label 0; +inf in an
//                 item of one nonzero label without black_border.
//
// One line at a time, in place, with the per-line functions of kernels/edt_multilabel.cuh.
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "distance_transform/distance_transform.h"
#include "distance_transform/variant_args.h"
#include "kernels/edt_multilabel.cuh"

namespace gpudist {
namespace {

template <typename L, typename T>
void multilabel_passes(const L* labels, T* out, const VariantArgs& args, index_t items,
                       bool black_border, int convention) {
  cpu_variant_passes(args, items, 2, [&](const PassLine& p, LineScratch& scratch) {
    const double w = args.weights(p.item)[p.a];
    const Finalize fin{convention, args.scale_of(p.item), 0.0};
    const Finalize* last = p.last ? &fin : nullptr;
    T* line = out + p.at;
    if (p.a == 0)
      multilabel_first_pass_line(labels + p.at, p.inner, line, p.inner, p.n, w, black_border,
                                 last);
    else
      multilabel_envelope_line(labels + p.at, p.inner, line, p.inner, line, p.inner, p.n, w,
                               black_border, scratch.doubles(0), scratch.indices(0),
                               scratch.doubles(1), 1, last);
  });
}

at::Tensor multilabel_edt_cpu(const at::Tensor& labels_any, at::ArrayRef<double> spacing,
                              bool black_border, bool squared, at::ScalarType dtype) {
  const VariantArgs args = variant_args(labels_any, "labels", spacing, dtype);
  check_labels(labels_any);
  const at::Tensor labels = labels_any.contiguous();
  at::Tensor out = at::empty(labels.sizes(), labels.options().dtype(dtype));
  if (out.numel() == 0) return out;
  const int convention = squared ? kEdtSquared : kEdt;
  with_src_data(labels, [&](auto* s) {
    if (dtype == at::kFloat)
      multilabel_passes(s, out.data_ptr<float>(), args, labels.size(0), black_border, convention);
    else
      multilabel_passes(s, out.data_ptr<double>(), args, labels.size(0), black_border,
                        convention);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gpudist, CPU, m) { m.impl("multilabel_edt", &multilabel_edt_cpu); }

}  // namespace gpudist
