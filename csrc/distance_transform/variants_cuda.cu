// gpudist::multilabel_edt, gpudist::metric_transform and gpudist::feature_transform on CUDA: the
// kernels of kernels/edt_variant_kernels.cu, launched as cuda_plan.h's cuda_variant_plan() plans
// them, in place on the output, on torch's current stream with no host sync. Arguments, checks
// and results as the CPU ops (multilabel_cpu.cpp, metric_cpu.cpp, features_cpu.cpp).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "cuda_launch.h"
#include "distance_transform/cuda_plan.h"
#include "distance_transform/distance_transform.h"
#include "distance_transform/variant_args.h"
#include "kernels/edt_variant_kernels.cu"

namespace gpudist {
namespace {

auto multilabel_kernel(const uint8_t*, float*) { return &gd_multilabel_u8_f32; }
auto multilabel_kernel(const int32_t*, float*) { return &gd_multilabel_i32_f32; }
auto multilabel_kernel(const long long*, float*) { return &gd_multilabel_i64_f32; }
auto multilabel_kernel(const uint8_t*, double*) { return &gd_multilabel_u8_f64; }
auto multilabel_kernel(const int32_t*, double*) { return &gd_multilabel_i32_f64; }
auto multilabel_kernel(const long long*, double*) { return &gd_multilabel_i64_f64; }
auto metric_kernel(float*) { return &gd_metric_f32; }
auto metric_kernel(double*) { return &gd_metric_f64; }
auto features_kernel(float*) { return &gd_features_f32; }
auto features_kernel(double*) { return &gd_features_f64; }
auto finalize_kernel(float*) { return &gd_finalize_f32; }
auto finalize_kernel(double*) { return &gd_finalize_f64; }

// The plan of variant `op` for src (B, *spatial) on its device, whose passes launch `kernel`.
template <typename Kernel>
CudaPlan plan_for(const at::Tensor& src, index_t op, Kernel kernel) {
  const int device = src.get_device();
  std::vector<index_t> shape(src.sizes().begin() + 1, src.sizes().end());
  return cuda_variant_plan(shape, src.size(0), op,
                           resident_threads(device, kernel, int(kCudaBlock)),
                           scratch_budget(free_device_bytes(device)));
}

// The scratch buffer of a plan, on like's device.
at::Tensor scratch_for(const CudaPlan& plan, const at::Tensor& like) {
  return at::empty({plan.scratch_words}, like.options().dtype(at::kDouble));
}

// The per-item spacing table of a variant's kernels (line_spacing_table; none when shared):
// the pass weights, or (`raw`) the spacing itself, which the metric kernels take.
at::Tensor table_for(const VariantArgs& args, bool raw, const at::Tensor& like) {
  return line_spacing_table(raw ? args.spacing : args.w, args.fins(), like);
}

// LineSpacing for the `lines` lines (or values) of one launch along `axis`.
LineSpacing spacing_args(const at::Tensor& table, const VariantArgs& args, index_t lines,
                         index_t axis) {
  return line_spacing(table, args.rows, static_cast<index_t>(args.shape.size()), lines, axis);
}

template <typename T, typename L>
void run_multilabel(const L* labels, at::Tensor& out, const VariantArgs& args, bool black_border,
                    int convention) {
  const auto kernel = multilabel_kernel(labels, static_cast<T*>(nullptr));
  const CudaPlan plan = plan_for(out, kVariantMultilabel, kernel);
  const at::Tensor scratch = scratch_for(plan, out);
  const at::Tensor table = table_for(args, false, out);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for (const PassLaunch& l : plan.passes) {
    const LineSpacing sp = spacing_args(table, args, l.lines, l.axis);
    kernel<<<unsigned(l.blocks), unsigned(plan.block), 0, stream>>>(
        labels, out.data_ptr<T>(), l.n, l.inner, l.lines, l.slots, args.w[l.axis], black_border,
        l.axis == 0, l.finalize, convention, args.scales[0], scratch.data_ptr<double>(), sp.rows,
        sp.row_lines, sp.row_stride, sp.axis);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

at::Tensor multilabel_edt_cuda(const at::Tensor& labels_any, at::ArrayRef<double> spacing,
                               bool black_border, bool squared, at::ScalarType dtype) {
  const VariantArgs args = variant_args(labels_any, "labels", spacing, dtype);
  check_labels(labels_any);
  const c10::cuda::CUDAGuard guard(labels_any.device());
  const at::Tensor labels = labels_any.contiguous();
  at::Tensor out = at::empty(labels.sizes(), labels.options().dtype(dtype));
  if (out.numel() == 0) return out;
  const int convention = squared ? kEdtSquared : kEdt;
  with_src_data(labels, [&](auto* s) {
    if (dtype == at::kFloat)
      run_multilabel<float>(s, out, args, black_border, convention);
    else
      run_multilabel<double>(s, out, args, black_border, convention);
  });
  return out;
}

template <typename T>
void run_metric(const uint8_t* src, at::Tensor& out, const VariantArgs& args, int metric,
                bool black_border) {
  const auto kernel = metric_kernel(static_cast<T*>(nullptr));
  const CudaPlan plan =
      plan_for(out, metric == kTaxicab ? kVariantTaxicab : kVariantChessboard, kernel);
  const at::Tensor scratch = scratch_for(plan, out);
  const at::Tensor table = table_for(args, true, out);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for (const PassLaunch& l : plan.passes) {
    const LineSpacing sp = spacing_args(table, args, l.lines, l.axis);
    kernel<<<unsigned(l.blocks), unsigned(plan.block), 0, stream>>>(
        src, out.data_ptr<T>(), l.n, l.inner, l.lines, l.slots, args.spacing[l.axis], metric,
        black_border, l.axis == 0, scratch.data_ptr<double>(), sp.rows, sp.row_lines,
        sp.row_stride, sp.axis);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

at::Tensor metric_transform_cuda(const at::Tensor& src_any, at::ArrayRef<double> spacing,
                                 const std::string& metric, bool black_border,
                                 at::ScalarType dtype) {
  const VariantArgs args = variant_args(src_any, "src", spacing, dtype);
  check_mask(src_any);
  const int code = metric_code(metric);
  const c10::cuda::CUDAGuard guard(src_any.device());
  const at::Tensor src = src_any.contiguous();
  at::Tensor out = at::empty(src.sizes(), src.options().dtype(dtype));
  if (out.numel() == 0) return out;
  const auto* s = reinterpret_cast<const uint8_t*>(src.const_data_ptr<bool>());
  if (dtype == at::kFloat)
    run_metric<float>(s, out, args, code, black_border);
  else
    run_metric<double>(s, out, args, code, black_border);
  return out;
}

template <typename T>
void run_features(const uint8_t* src, at::Tensor& out, at::Tensor& feat, const VariantArgs& args) {
  const auto kernel = features_kernel(static_cast<T*>(nullptr));
  const CudaPlan plan = plan_for(out, kVariantFeatures, kernel);
  const at::Tensor scratch = scratch_for(plan, out);
  const at::Tensor table = table_for(args, false, out);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  auto* fp = reinterpret_cast<long long*>(feat.data_ptr<int64_t>());
  for (const PassLaunch& l : plan.passes) {
    const LineSpacing sp = spacing_args(table, args, l.lines, l.axis);
    kernel<<<unsigned(l.blocks), unsigned(plan.block), 0, stream>>>(
        src, out.data_ptr<T>(), fp, l.n, l.inner, l.outer, l.lines, l.slots, args.w[l.axis],
        l.axis == 0, scratch.data_ptr<double>(), sp.rows, sp.row_lines, sp.row_stride, sp.axis);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const index_t count = out.numel();
  const index_t blocks = std::min<index_t>((count + kCudaBlock - 1) / kCudaBlock, 65536);
  const LineSpacing sp = spacing_args(table, args, count, 0);  // row_lines: one item's values
  finalize_kernel(static_cast<T*>(nullptr))<<<unsigned(blocks), unsigned(kCudaBlock), 0,
                                                 stream>>>(out.data_ptr<T>(), count, kEdt,
                                                           args.scales[0], 0.0, sp.rows,
                                                           sp.row_lines, sp.row_stride, sp.axis);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor> feature_transform_cuda(const at::Tensor& src_any,
                                                          at::ArrayRef<double> spacing,
                                                          at::ScalarType dtype) {
  const VariantArgs args = variant_args(src_any, "src", spacing, dtype);
  check_mask(src_any);
  const c10::cuda::CUDAGuard guard(src_any.device());
  const at::Tensor src = src_any.contiguous();
  at::Tensor out = at::empty(src.sizes(), src.options().dtype(dtype));
  at::Tensor feat = at::empty(src.sizes(), src.options().dtype(at::kLong));
  if (out.numel() == 0) return {out, feat};
  const auto* s = reinterpret_cast<const uint8_t*>(src.const_data_ptr<bool>());
  if (dtype == at::kFloat)
    run_features<float>(s, out, feat, args);
  else
    run_features<double>(s, out, feat, args);
  return {out, feat};
}

}  // namespace

TORCH_LIBRARY_IMPL(gpudist, CUDA, m) {
  m.impl("multilabel_edt", &multilabel_edt_cuda);
  m.impl("metric_transform", &metric_transform_cuda);
  m.impl("feature_transform", &feature_transform_cuda);
}

}  // namespace gpudist
