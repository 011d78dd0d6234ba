// gpudist::distance_transform on CUDA: the kernels of kernels/edt_kernels.cu, launched as
// cuda_plan.h plans them, everything queued on torch's current stream with no host sync (the
// label range check is the Python API's, in eager mode; an out-of-range label simply matches no
// class here).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdlib>

#include "cuda_launch.h"
#include "distance_transform/cuda_plan.h"
#include "distance_transform/distance_transform.h"
#include "kernels/edt_kernels.cu"

namespace gpudist {
namespace {

// The kernels of each (src, out) type pair.
auto first_pass_kernel(const uint8_t*, float*) { return &gd_first_pass_u8_f32; }
auto first_pass_kernel(const int32_t*, float*) { return &gd_first_pass_i32_f32; }
auto first_pass_kernel(const long long*, float*) { return &gd_first_pass_i64_f32; }
auto first_pass_kernel(const uint8_t*, double*) { return &gd_first_pass_u8_f64; }
auto first_pass_kernel(const int32_t*, double*) { return &gd_first_pass_i32_f64; }
auto first_pass_kernel(const long long*, double*) { return &gd_first_pass_i64_f64; }
auto envelope_kernel(float*) { return &gd_envelope_f32; }
auto envelope_kernel(double*) { return &gd_envelope_f64; }
auto first_pass2_kernel(const uint8_t*, float*) { return &gd_first_pass2_u8_f32; }
auto first_pass2_kernel(const int32_t*, float*) { return &gd_first_pass2_i32_f32; }
auto first_pass2_kernel(const long long*, float*) { return &gd_first_pass2_i64_f32; }
auto first_pass2_kernel(const uint8_t*, double*) { return &gd_first_pass2_u8_f64; }
auto first_pass2_kernel(const int32_t*, double*) { return &gd_first_pass2_i32_f64; }
auto first_pass2_kernel(const long long*, double*) { return &gd_first_pass2_i64_f64; }
auto envelope2_kernel(float*) { return &gd_envelope2_f32; }
auto envelope2_kernel(double*) { return &gd_envelope2_f64; }

// GPUDIST_CUDA_KERNELS: 2 selects the second generation of kernels, anything else the first.
int kernel_generation() {
  const char* value = std::getenv("GPUDIST_CUDA_KERNELS");
  return value && value[0] == '2' && value[1] == 0 ? 2 : 1;
}

template <typename T, typename L>
void run_plan(const L* src, at::Tensor& out, const Plan& p) {
  const int device = out.get_device();
  const int block = int(kCudaBlock);
  const int generation = kernel_generation();
  T* const type = nullptr;
  const auto first =
      generation == 2 ? first_pass2_kernel(src, type) : first_pass_kernel(src, type);
  const auto envelope = generation == 2 ? envelope2_kernel(type) : envelope_kernel(type);
  const CudaPlan plan =
      cuda_launch_plan(p.shape, p.items, resident_threads(device, envelope, block),
                       resident_threads(device, first, block),
                       scratch_budget(free_device_bytes(device)), generation, sizeof(T));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const Finalize& fin = p.fins[0];
  // A per-item spacing: the kernels read each line's row from the table (none when shared).
  const at::Tensor table = line_spacing_table(p.w, p.fins, out);
  const index_t nd = static_cast<index_t>(p.shape.size());
  at::Tensor tmp = plan.passes.size() > 1 ? at::empty_like(out) : out;
  at::Tensor scratch = at::empty({plan.scratch_words}, out.options().dtype(at::kDouble));
  auto data = [&](index_t buffer) { return (buffer == kBufferOut ? out : tmp).data_ptr<T>(); };
  for (const PassLaunch& l : plan.passes) {
    const auto grid = static_cast<unsigned>(l.blocks);
    const auto threads = static_cast<unsigned>(plan.block);
    const double w = p.w[l.axis];
    const LineSpacing sp = line_spacing(table, p.rows, nd, l.lines, l.axis);
    if (l.in == kBufferSrc) {
      first<<<grid, threads, 0, stream>>>(
          src, data(l.out), l.n, l.inner, l.outer, l.lines, p.classes, w, p.two_sided,
          p.black_border, l.finalize, fin.convention, fin.scale, fin.shift, sp.rows,
          sp.row_lines, sp.row_stride, sp.axis);
    } else {
      envelope<<<grid, threads, 0, stream>>>(
          data(l.in), data(l.out), l.n, l.inner, l.lines, l.slots, w, p.two_sided,
          p.black_border, l.finalize, fin.convention, fin.scale, fin.shift,
          scratch.data_ptr<double>(), sp.rows, sp.row_lines, sp.row_stride, sp.axis);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

at::Tensor distance_transform_cuda(const at::Tensor& src_any, int64_t num_classes,
                                   at::ArrayRef<double> spacing, const std::string& convention,
                                   bool black_border, at::ScalarType dtype,
                                   std::optional<double> max_distance) {
  TORCH_CHECK_VALUE(src_any.is_cuda(), "gpudist: src must be a CUDA tensor here");
  const c10::cuda::CUDAGuard guard(src_any.device());
  const at::Tensor src = src_any.contiguous();
  // max_distance is checked, then unused: every distance is computed, as the schema allows.
  const Plan plan =
      make_plan(src, num_classes, spacing, convention, black_border, dtype, max_distance);
  at::Tensor out = at::empty(plan.out_sizes, src.options().dtype(dtype));
  if (out.numel() == 0) return out;
  with_src_data(src, [&](auto* s) {
    if (dtype == at::kFloat)
      run_plan<float>(s, out, plan);
    else
      run_plan<double>(s, out, plan);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gpudist, CUDA, m) { m.impl("distance_transform", &distance_transform_cuda); }

}  // namespace gpudist
