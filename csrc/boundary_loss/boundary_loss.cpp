// gpudist::boundary_loss_forward / _backward: the argument checks shared by their CPU and CUDA
// implementations.
#include "boundary_loss/boundary_loss.h"

namespace gpudist {

LossPlan make_loss_plan(const at::Tensor& logits, const at::Tensor& phi, at::IntArrayRef idc) {
  TORCH_CHECK_VALUE(logits.dim() >= 3, "gpudist: logits must be (B, C, *spatial), got ",
                    logits.dim(), " dims");
  const auto st = logits.scalar_type();
  TORCH_CHECK_VALUE(st == at::kFloat || st == at::kDouble,
                    "gpudist: logits must be float32 or float64, got ", st);
  TORCH_CHECK_VALUE(phi.sizes() == logits.sizes(), "gpudist: phi must have the shape of logits ",
                    logits.sizes(), ", got ", phi.sizes());
  TORCH_CHECK_VALUE(phi.scalar_type() == st, "gpudist: phi must have the dtype of logits (", st,
                    "), got ", phi.scalar_type());
  TORCH_CHECK_VALUE(phi.device() == logits.device(), "gpudist: phi must be on logits' device (",
                    logits.device(), "), got ", phi.device());
  LossPlan plan;
  plan.samples = logits.size(0);
  plan.classes = logits.size(1);
  plan.voxels = 1;
  for (int64_t d = 2; d < logits.dim(); ++d) plan.voxels *= logits.size(d);
  TORCH_CHECK_VALUE(!idc.empty(), "gpudist: idc must not be empty");
  plan.in_idc.assign(plan.classes, 0);
  for (int64_t k : idc) {
    TORCH_CHECK_VALUE(k >= 0 && k < plan.classes, "gpudist: idc values must be in [0, ",
                      plan.classes, "), got ", k);
    TORCH_CHECK_VALUE(!plan.in_idc[k], "gpudist: idc values must be unique, got ", k, " twice");
    plan.in_idc[k] = 1;
  }
  plan.count = double(idc.size()) * double(plan.voxels);
  return plan;
}

void check_loss_grad(const at::Tensor& grad, const at::Tensor& logits, const LossPlan& plan) {
  TORCH_CHECK_VALUE(grad.dim() == 1 && grad.size(0) == plan.samples &&
                        grad.scalar_type() == logits.scalar_type() &&
                        grad.device() == logits.device(),
                    "gpudist: grad must be (B,) = (", plan.samples, ",) with the dtype (",
                    logits.scalar_type(), ") and device (", logits.device(),
                    ") of logits, got ", grad.sizes(), " ", grad.scalar_type(), " on ",
                    grad.device());
}

}  // namespace gpudist
