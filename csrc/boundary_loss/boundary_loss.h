// gpudist::boundary_loss_forward / boundary_loss_backward: the fused boundary loss from logits.
//
//   boundary_loss_forward(logits, phi, idc) -> loss
//   boundary_loss_backward(grad, logits, phi, idc) -> grad_logits
//
//   logits: (B, C, *spatial) float32 or float64, any layout.
//   phi:    level-set maps of logits' shape, dtype and device.
//   idc:    the supervised classes: unique indices in [0, C), at least one.
//   loss:   (B,) = sum_{k in idc, v} softmax(logits, 1)_kv phi_kv / (|idc| S), S = prod(spatial);
//           0 for an empty spatial extent.
//   grad:   (B,) the incoming gradient of loss, logits' dtype and device.
//   grad_logits: (B, C, *spatial) contiguous, d(sum_b grad_b loss_b) / d logits.
//
// The per-voxel arithmetic is kernels/boundary_loss.cuh's; boundary_loss_cpu.cpp and
// boundary_loss_cuda.cu (kernels/boundary_loss_kernels.cu) run it.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "kernels/boundary_loss.cuh"

namespace gpudist {

// (B, C, S) views of logits and maps, and the class subset, checked once.
struct LossPlan {
  index_t samples = 0, classes = 0, voxels = 0;
  std::vector<unsigned char> in_idc;  // C flags
  double count = 0;                   // N = |idc| * S, the number of terms per sample
};

// Checks logits (B, C, *spatial), float32 or float64, phi of the same shape, dtype and device,
// and idc (unique class indices in [0, C), at least one).
LossPlan make_loss_plan(const at::Tensor& logits, const at::Tensor& phi, at::IntArrayRef idc);

// Checks the backward's incoming gradient: (B,), with the dtype and device of logits.
void check_loss_grad(const at::Tensor& grad, const at::Tensor& logits, const LossPlan& plan);

}  // namespace gpudist
