// gpudist::boundary_loss_forward / _backward on the CPU. Work is split into blocks of
// kBlockVoxels voxels of one sample, spread over at::parallel_for's threads; inside a block the
// functions of kernels/boundary_loss.cuh run on kLanes adjacent voxels at a time (vectorised across
// them, the softmax exp included). The forward sums each block in double and the blocks of a sample
// in a fixed order, so the result does not depend on the thread count. Compiled twice (cpu_ops.h),
// registered by cpu_ops.cpp.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "boundary_loss/boundary_loss.h"
#include "cpu_ops.h"

namespace gpudist {
namespace {

constexpr int kLanes = 16;
constexpr index_t kBlockVoxels = 2048;

// Calls fn(offset, lanes) over the voxel runs [v0, v1) of one sample: kLanes at a time, then one.
template <typename Fn>
void for_each_run(index_t v0, index_t v1, Fn&& fn) {
  index_t v = v0;
  for (; v + kLanes <= v1; v += kLanes) fn(v, std::integral_constant<int, kLanes>());
  for (; v < v1; ++v) fn(v, std::integral_constant<int, 1>());
}

template <typename T>
void forward(const T* z, const T* phi, const LossPlan& p, T* out) {
  const index_t blocks = (p.voxels + kBlockVoxels - 1) / kBlockVoxels;
  std::vector<double> partial(p.samples * blocks);
  at::parallel_for(0, p.samples * blocks, 1, [&](index_t begin, index_t end) {
    for (index_t u = begin; u < end; ++u) {
      const index_t base = (u / blocks) * p.classes * p.voxels;
      const index_t v0 = (u % blocks) * kBlockVoxels;
      double sum = 0.0;
      for_each_run(v0, std::min(p.voxels, v0 + kBlockVoxels), [&](index_t v, auto lanes) {
        constexpr int L = decltype(lanes)::value;
        T terms[L];
        boundary_terms<L>(z + base + v, phi + base + v, p.voxels, p.classes, p.in_idc.data(),
                          terms);
        for (int l = 0; l < L; ++l) sum += terms[l];
      });
      partial[u] = sum;
    }
  });
  for (index_t b = 0; b < p.samples; ++b) {
    double sum = 0.0;
    for (index_t k = 0; k < blocks; ++k) sum += partial[b * blocks + k];
    out[b] = T(sum / p.count);
  }
}

template <typename T>
void backward(const T* grad_out, const T* z, const T* phi, const LossPlan& p, T* grad) {
  const index_t blocks = (p.voxels + kBlockVoxels - 1) / kBlockVoxels;
  at::parallel_for(0, p.samples * blocks, 1, [&](index_t begin, index_t end) {
    for (index_t u = begin; u < end; ++u) {
      const index_t b = u / blocks, base = b * p.classes * p.voxels;
      const index_t v0 = (u % blocks) * kBlockVoxels;
      const T scale = T(double(grad_out[b]) / p.count);
      for_each_run(v0, std::min(p.voxels, v0 + kBlockVoxels), [&](index_t v, auto lanes) {
        boundary_grad<decltype(lanes)::value, true>(z + base + v, phi + base + v, p.voxels, p.classes,
                                              p.in_idc.data(), scale, grad + base + v);
      });
    }
  });
}

void check_cpu(const at::Tensor& logits) {
  TORCH_CHECK_VALUE(logits.device().is_cpu(), "gpudist: logits must be a CPU tensor here");
}

}  // namespace

at::Tensor boundary_loss_forward_cpu(const at::Tensor& logits_any, const at::Tensor& phi_any,
                                     at::IntArrayRef idc) {
  check_cpu(logits_any);
  const LossPlan plan = make_loss_plan(logits_any, phi_any, idc);
  const at::Tensor logits = logits_any.contiguous(), phi = phi_any.contiguous();
  at::Tensor out = at::zeros({plan.samples}, logits.options());
  if (plan.samples == 0 || plan.voxels == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "boundary_loss_forward", [&] {
    forward(logits.const_data_ptr<scalar_t>(), phi.const_data_ptr<scalar_t>(), plan,
            out.data_ptr<scalar_t>());
  });
  return out;
}

at::Tensor boundary_loss_backward_cpu(const at::Tensor& grad_out_any, const at::Tensor& logits_any,
                                      const at::Tensor& phi_any, at::IntArrayRef idc) {
  check_cpu(logits_any);
  const LossPlan plan = make_loss_plan(logits_any, phi_any, idc);
  check_loss_grad(grad_out_any, logits_any, plan);
  const at::Tensor logits = logits_any.contiguous(), phi = phi_any.contiguous();
  const at::Tensor grad_out = grad_out_any.contiguous();
  at::Tensor grad = at::empty(logits.sizes(), logits.options());
  if (grad.numel() == 0) return grad;
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "boundary_loss_backward", [&] {
    backward(grad_out.const_data_ptr<scalar_t>(), logits.const_data_ptr<scalar_t>(),
             phi.const_data_ptr<scalar_t>(), plan, grad.data_ptr<scalar_t>());
  });
  return grad;
}

}  // namespace gpudist
