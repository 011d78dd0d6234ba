// gpudist: the op schema, the checks shared by every backend, and the Python module stub.
#include <Python.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "boundary_loss.h"
#include "distance_transform.h"

extern "C" {
// `import gpudist._C` loads this library, whose static initialisers register the ops.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}
}

namespace gpudist {

namespace {
int parse_convention(const std::string& name) {
  if (name == "edt") return kEdt;
  if (name == "edt_squared") return kEdtSquared;
  if (name == "kervadec") return kKervadec;
  if (name == "sdf") return kSdf;
  if (name == "unsigned") return kUnsigned;
  TORCH_CHECK_VALUE(false, "gpudist: unknown convention '", name, "'");
}
}  // namespace

Plan make_plan(const at::Tensor& src, int64_t num_classes, at::ArrayRef<double> spacing,
               const std::string& convention, bool black_border, at::ScalarType dtype,
               std::optional<double> max_distance) {
  const int64_t nd = static_cast<int64_t>(spacing.size());
  TORCH_CHECK_VALUE(nd >= 1, "gpudist: spacing must have one value per spatial axis (>= 1)");
  TORCH_CHECK_VALUE(src.dim() == nd + 1, "gpudist: src must be (batch, *spatial) with ", nd,
                    " spatial dims, got ", src.dim(), " dims");
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble,
                    "gpudist: dtype must be float32 or float64");
  TORCH_CHECK_VALUE(num_classes >= 0, "gpudist: num_classes must be >= 0");
  const auto st = src.scalar_type();
  if (num_classes == 0) {
    TORCH_CHECK_VALUE(st == at::kBool, "gpudist: a mask src must be bool, got ", st);
  } else {
    TORCH_CHECK_VALUE(st == at::kByte || st == at::kInt || st == at::kLong,
                      "gpudist: labels must be uint8, int32 or int64, got ", st);
  }
  Plan plan;
  double scale = 0.0, smallest = INFINITY;
  for (double s : spacing) {
    TORCH_CHECK_VALUE(std::isfinite(s) && s > 0, "gpudist: spacing must be positive and finite");
    scale = std::max(scale, s);
    smallest = std::min(smallest, s);
  }
  for (int64_t a = 0; a < nd; ++a) {
    plan.shape.push_back(src.size(a + 1));
    const double s = spacing[a] / scale;
    plan.w.push_back(s * s);
  }
  plan.classes = num_classes;
  plan.items = src.size(0) * std::max<int64_t>(num_classes, 1);
  plan.fin.convention = parse_convention(convention);
  plan.fin.scale = scale;
  plan.fin.shift = 0.5 * smallest;
  plan.two_sided = is_two_sided(plan.fin.convention);
  TORCH_CHECK_VALUE(!(black_border && plan.two_sided),
                    "gpudist: black_border applies to the edt conventions only, not '",
                    convention, "'");
  plan.black_border = black_border;
  if (max_distance) {
    TORCH_CHECK_VALUE(*max_distance >= 0, "gpudist: max_distance must be >= 0");  // NaN too
    TORCH_CHECK_VALUE(!plan.two_sided, "gpudist: max_distance applies to the edt conventions only");
    // In the passes' units (squared, spacing / scale), with room for float32 rounding so that
    // every distance up to max_distance is still computed exactly.
    const double d = *max_distance / scale;
    plan.cap = d * d * (1.0 + 1e-5);
  }
  plan.out_sizes = src.sizes().vec();
  if (num_classes > 0) plan.out_sizes.insert(plan.out_sizes.begin() + 1, num_classes);
  return plan;
}

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

TORCH_LIBRARY(gpudist, m) {
  // src: bool mask (B, *spatial) when num_classes == 0, else labels (B, *spatial) -> (B, C, *spatial).
  // max_distance (edt conventions): a bound on the work, not on the result: distances beyond it
  // may come back as +inf instead of exact (the CPU skips them; CUDA computes them all).
  m.def(
      "distance_transform(Tensor src, int num_classes, float[] spacing, str convention, "
      "bool black_border, ScalarType dtype, float? max_distance=None) -> Tensor");
  // The edt of a bool mask src (B, *spatial) at the elements where query is true, as a 1-D tensor
  // in row-major order (that of query.nonzero()). The work grows with the distances asked for,
  // not with the volume beyond one linear pass: for queries near the background (the CPU only).
  m.def("distance_at(Tensor src, Tensor query, float[] spacing, ScalarType dtype) -> Tensor");
  // The fused boundary loss from logits (B, C, *spatial) against maps phi of the same shape and
  // dtype (float32 or float64): per-sample losses (B,) = sum_{k in idc, v} softmax(logits)_kv
  // phi_kv / (|idc| S), and their gradient with respect to the logits for an incoming grad (B,).
  m.def("boundary_loss_forward(Tensor logits, Tensor phi, int[] idc) -> Tensor");
  m.def("boundary_loss_backward(Tensor grad, Tensor logits, Tensor phi, int[] idc) -> Tensor");
}
