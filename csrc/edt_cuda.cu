// gpudist: CUDA implementation of `gpudist::distance_transform`, launching the kernels of
// kernels/edt_kernels.cu (the CuPy backend launches the same ones, with the same plan).
//
// Pass 1 runs along the last axis, then one envelope pass per other axis, nd-2 .. 0, the last of
// which finalizes inline. Passes alternate between `out` and a temporary of the same size, chosen
// so that the last one writes `out`. Everything is queued on torch's current stream: no host sync
// (the label range check is the Python API's, in eager mode; an out-of-range label simply matches
// no class here).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "cuda_launch.h"
#include "distance_transform.h"
#include "kernels/edt_kernels.cu"

namespace gpudist {
namespace {

// The kernels of each (src, out) type pair; int64 labels are `long long` on the kernel side.
auto first_pass_kernel(const uint8_t*, float*) { return &gd_first_pass_u8_f32; }
auto first_pass_kernel(const int32_t*, float*) { return &gd_first_pass_i32_f32; }
auto first_pass_kernel(const long long*, float*) { return &gd_first_pass_i64_f32; }
auto first_pass_kernel(const uint8_t*, double*) { return &gd_first_pass_u8_f64; }
auto first_pass_kernel(const int32_t*, double*) { return &gd_first_pass_i32_f64; }
auto first_pass_kernel(const long long*, double*) { return &gd_first_pass_i64_f64; }
auto envelope_kernel(float*) { return &gd_envelope_f32; }
auto envelope_kernel(double*) { return &gd_envelope_f64; }

template <typename T, typename L>
void run_passes(const L* src, at::Tensor& out, const Plan& p) {
  const int nd = static_cast<int>(p.shape.size());
  index_t volume = 1;
  for (index_t s : p.shape) volume *= s;
  const index_t resident = resident_threads(out.get_device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const Finalize& fin = p.fin;

  at::Tensor tmp = nd > 1 ? at::empty_like(out) : out;
  // Pass `pass` (0 = first pass) writes `out` when nd - 1 - pass is even: the last pass does.
  auto buffer = [&](int pass) { return ((nd - 1 - pass) % 2 == 0 ? out : tmp).data_ptr<T>(); };

  index_t n = p.shape[nd - 1];
  index_t lines = p.items * (volume / n);
  const auto first_pass = first_pass_kernel(src, buffer(0));
  const auto first_blocks = blocks_for(launch_slots(lines, resident, 0));
  first_pass<<<static_cast<unsigned>(first_blocks), kBlock, 0, stream>>>(
      src, buffer(0), n, 1, volume / n, lines, p.classes, p.w[nd - 1], p.two_sided,
      p.black_border, nd == 1, fin.convention, fin.scale, fin.shift);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (nd == 1) return;

  // One scratch buffer, sized for the largest envelope pass.
  index_t words = 0;
  for (int a = nd - 2; a >= 0; --a) {
    const index_t n_a = p.shape[a], per_thread = envelope_words(n_a);
    words = std::max(words, launch_slots(p.items * (volume / n_a), resident, per_thread) *
                                per_thread);
  }
  at::Tensor scratch = at::empty({words}, out.options().dtype(at::kDouble));

  for (int a = nd - 2, pass = 1; a >= 0; --a, ++pass) {
    n = p.shape[a];
    lines = p.items * (volume / n);
    index_t inner = 1;
    for (int b = a + 1; b < nd; ++b) inner *= p.shape[b];
    const auto envelope = envelope_kernel(buffer(pass));
    const auto slots = launch_slots(lines, resident, envelope_words(n));
    envelope<<<static_cast<unsigned>(blocks_for(slots)), kBlock, 0, stream>>>(
        buffer(pass - 1), buffer(pass), n, inner, lines, slots, p.w[a], p.two_sided,
        p.black_border, a == 0, fin.convention, fin.scale, fin.shift, scratch.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

template <typename T>
void dispatch_src(const at::Tensor& src, at::Tensor& out, const Plan& p) {
  switch (src.scalar_type()) {
    case at::kBool:
      return run_passes<T>(reinterpret_cast<const uint8_t*>(src.const_data_ptr<bool>()), out, p);
    case at::kByte: return run_passes<T>(src.const_data_ptr<uint8_t>(), out, p);
    case at::kInt: return run_passes<T>(src.const_data_ptr<int32_t>(), out, p);
    default:
      return run_passes<T>(reinterpret_cast<const long long*>(src.const_data_ptr<int64_t>()), out,
                           p);
  }
}

}  // namespace

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
  if (dtype == at::kFloat)
    dispatch_src<float>(src, out, plan);
  else
    dispatch_src<double>(src, out, plan);
  return out;
}

TORCH_LIBRARY_IMPL(gpudist, CUDA, m) { m.impl("distance_transform", &distance_transform_cuda); }

}  // namespace gpudist
