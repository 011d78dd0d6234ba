// gpudist: CUDA implementation of the fused boundary loss ops, launching the kernels of
// kernels/boundary_loss_kernels.cu on torch's current stream (no host sync).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "boundary_loss/boundary_loss.h"
#include "cuda_launch.h"
#include "kernels/boundary_loss_kernels.cu"

namespace gpudist {
namespace {

constexpr int kThreads = 256;  // per block
constexpr index_t kMaxGridY = 65535;

auto forward_kernel(float*) { return &gd_boundary_forward_f32; }
auto forward_kernel(double*) { return &gd_boundary_forward_f64; }
auto backward_kernel(float*) { return &gd_boundary_backward_f32; }
auto backward_kernel(double*) { return &gd_boundary_backward_f64; }

index_t blocks(index_t threads) { return (threads + kThreads - 1) / kThreads; }

// The class flags on the logits' device.
at::Tensor idc_flags(const LossPlan& p, const at::Tensor& logits) {
  at::Tensor flags = at::empty({p.classes}, at::TensorOptions().dtype(at::kByte));
  std::copy(p.in_idc.begin(), p.in_idc.end(), flags.data_ptr<uint8_t>());
  return flags.to(logits.device(), /*non_blocking=*/true);
}

}  // namespace

at::Tensor boundary_loss_forward_cuda(const at::Tensor& logits_any, const at::Tensor& phi_any,
                                      at::IntArrayRef idc) {
  TORCH_CHECK_VALUE(logits_any.is_cuda(), "gpudist: logits must be a CUDA tensor here");
  const c10::cuda::CUDAGuard guard(logits_any.device());
  const LossPlan plan = make_loss_plan(logits_any, phi_any, idc);
  const at::Tensor logits = logits_any.contiguous(), phi = phi_any.contiguous();
  if (plan.samples == 0 || plan.voxels == 0) return at::zeros({plan.samples}, logits.options());
  // Enough threads per sample to fill the device once across all samples.
  const index_t resident = resident_threads(logits.get_device());
  const index_t rows = std::min(plan.samples, kMaxGridY);
  const index_t slots = std::max<index_t>(1, std::min(plan.voxels, resident / rows));
  at::Tensor partial = at::empty({plan.samples, slots}, logits.options().dtype(at::kDouble));
  const at::Tensor flags = idc_flags(plan, logits);
  const dim3 grid(static_cast<unsigned>(blocks(slots)), static_cast<unsigned>(rows));
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "boundary_loss_forward_cuda", [&] {
    forward_kernel(static_cast<scalar_t*>(nullptr))<<<grid, kThreads, 0,
                                                      c10::cuda::getCurrentCUDAStream()>>>(
        logits.const_data_ptr<scalar_t>(), phi.const_data_ptr<scalar_t>(),
        flags.const_data_ptr<uint8_t>(), plan.classes, plan.voxels, plan.samples, slots,
        partial.data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
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
  const at::Tensor flags = idc_flags(plan, logits);
  const index_t threads =
      std::min(plan.samples * plan.voxels, resident_threads(logits.get_device()));
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "boundary_loss_backward_cuda", [&] {
    backward_kernel(static_cast<scalar_t*>(nullptr))<<<static_cast<unsigned>(blocks(threads)),
                                                       kThreads, 0,
                                                       c10::cuda::getCurrentCUDAStream()>>>(
        logits.const_data_ptr<scalar_t>(), phi.const_data_ptr<scalar_t>(),
        flags.const_data_ptr<uint8_t>(), plan.classes, plan.voxels, plan.samples,
        scale.const_data_ptr<scalar_t>(), grad.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad;
}

TORCH_LIBRARY_IMPL(gpudist, CUDA, m) {
  m.impl("boundary_loss_forward", &boundary_loss_forward_cuda);
  m.impl("boundary_loss_backward", &boundary_loss_backward_cuda);
}

}  // namespace gpudist
