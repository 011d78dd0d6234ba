// gpudist: host-side plan of the fused boundary loss ops `gpudist::boundary_loss_forward` and
// `gpudist::boundary_loss_backward` (schemas in ops.cpp), shared by their CPU and CUDA
// implementations. The arithmetic is in kernels/boundary_loss.cuh.
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
