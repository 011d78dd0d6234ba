// gpudist: CUDA implementation of the fused boundary loss ops, launching the kernels of
// kernels/boundary_loss_kernels.cu on torch's current stream (no host sync).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>

#include "boundary_loss/boundary_loss.h"
#include "cuda_launch.h"
#include "kernels/boundary_loss_kernels.cu"

namespace gpudist {
namespace {

constexpr int kThreads = 256;  // per block
constexpr index_t kMaxGridY = 65535;

index_t blocks(index_t threads) { return (threads + kThreads - 1) / kThreads; }

// Runs launch(kernel pair, class argument): the ClassMask kernels for at most 64 classes, else the
// flags kernels with the flags set on the logits' device by one fill per class of idc (kernel
// launches with scalar arguments: no host memory, no copy, safe under CUDA graph capture).
template <typename T, typename Launch>
void with_classes(const LossPlan& p, const at::Tensor& logits, Launch launch) {
  if (p.classes <= kMaskClasses) {
    ClassMask mask{0};
    for (index_t c = 0; c < p.classes; ++c) mask.bits |= p.in_idc[c] ? 1ull << c : 0ull;
    if constexpr (std::is_same_v<T, float>)
      launch(&gd_boundary_forward_f32, &gd_boundary_backward_f32, mask);
    else
      launch(&gd_boundary_forward_f64, &gd_boundary_backward_f64, mask);
    return;
  }
  at::Tensor flags = at::zeros({p.classes}, logits.options().dtype(at::kByte));
  for (index_t c = 0; c < p.classes; ++c)
    if (p.in_idc[c]) flags.narrow(0, c, 1).fill_(1);
  const unsigned char* f = flags.const_data_ptr<uint8_t>();
  if constexpr (std::is_same_v<T, float>)
    launch(&gd_boundary_forward_flags_f32, &gd_boundary_backward_flags_f32, f);
  else
    launch(&gd_boundary_forward_flags_f64, &gd_boundary_backward_flags_f64, f);
}

}  // namespace

at::Tensor boundary_loss_forward_cuda(const at::Tensor& logits_any, const at::Tensor& phi_any,
                                      at::IntArrayRef idc) {
  TORCH_CHECK_VALUE(logits_any.is_cuda(), "gpudist: logits must be a CUDA tensor here");
  const c10::cuda::CUDAGuard guard(logits_any.device());
  const LossPlan plan = make_loss_plan(logits_any, phi_any, idc);
  const at::Tensor logits = logits_any.contiguous(), phi = phi_any.contiguous();
  if (plan.samples == 0 || plan.voxels == 0) return at::zeros({plan.samples}, logits.options());
  at::Tensor partial;
  const int device = logits.get_device();
  const index_t rows = std::min(plan.samples, kMaxGridY);
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "boundary_loss_forward_cuda", [&] {
    with_classes<scalar_t>(plan, logits, [&](auto forward, auto, auto classes) {
      // Enough threads per sample to fill the device once across all samples.
      const index_t resident = resident_threads(device, forward, kThreads);
      const index_t slots = std::max<index_t>(1, std::min(plan.voxels, resident / rows));
      partial = at::empty({plan.samples, slots}, logits.options().dtype(at::kDouble));
      const dim3 grid(static_cast<unsigned>(blocks(slots)), static_cast<unsigned>(rows));
      forward<<<grid, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
          logits.const_data_ptr<scalar_t>(), phi.const_data_ptr<scalar_t>(), classes,
          plan.classes, plan.voxels, plan.samples, slots, partial.data_ptr<double>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return partial.sum(1).div_(plan.count).to(logits.scalar_type());
}

at::Tensor boundary_loss_backward_cuda(const at::Tensor& grad_out_any,
                                       const at::Tensor& logits_any, const at::Tensor& phi_any,
                                       at::IntArrayRef idc) {
  TORCH_CHECK_VALUE(logits_any.is_cuda(), "gpudist: logits must be a CUDA tensor here");
  const c10::cuda::CUDAGuard guard(logits_any.device());
  const LossPlan plan = make_loss_plan(logits_any, phi_any, idc);
  check_loss_grad(grad_out_any, logits_any, plan);
  const at::Tensor logits = logits_any.contiguous(), phi = phi_any.contiguous();
  at::Tensor grad = at::empty(logits.sizes(), logits.options());
  if (grad.numel() == 0) return grad;
  // g_b / N, divided in double as on the CPU.
  const at::Tensor scale =
      grad_out_any.to(at::kDouble).div(plan.count).to(logits.scalar_type()).contiguous();
  const int device = logits.get_device();
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "boundary_loss_backward_cuda", [&] {
    with_classes<scalar_t>(plan, logits, [&](auto, auto backward, auto classes) {
      const index_t threads = std::min(plan.samples * plan.voxels,
                                       resident_threads(device, backward, kThreads));
      backward<<<static_cast<unsigned>(blocks(threads)), kThreads, 0,
                 c10::cuda::getCurrentCUDAStream()>>>(
          logits.const_data_ptr<scalar_t>(), phi.const_data_ptr<scalar_t>(), classes,
          plan.classes, plan.voxels, plan.samples, scale.const_data_ptr<scalar_t>(),
          grad.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return grad;
}

TORCH_LIBRARY_IMPL(gpudist, CUDA, m) {
  m.impl("boundary_loss_forward", &boundary_loss_forward_cuda);
  m.impl("boundary_loss_backward", &boundary_loss_backward_cuda);
}

}  // namespace gpudist
