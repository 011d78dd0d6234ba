// gpudist::distance_transform: the argument checks and plan shared by its CPU and CUDA
// implementations (the Python backends run the same checks, gpudist/backends/contract.py).
#include "distance_transform/distance_transform.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <utility>

namespace gpudist {

namespace {
// "torch.uint8", as Python prints the dtype (the Python backends' messages say the same).
std::string dtype_name(at::ScalarType st) {
  return "torch." + std::string(c10::getDtypeNames(st).first);
}

// The names of enum Convention; gpudist/backends/contract.py's CONVENTIONS lists them in order.
int parse_convention(const std::string& name) {
  if (name == "edt") return kEdt;
  if (name == "edt_squared") return kEdtSquared;
  if (name == "kervadec") return kKervadec;
  if (name == "sdf") return kSdf;
  if (name == "unsigned") return kUnsigned;
  TORCH_CHECK_VALUE(false, "gpudist: unknown convention '", name, "'");
}

// Checks one row of spacing (gpudist/backends/contract.py's check_spacing, with its messages)
// and returns its largest and smallest values. Each value must be in the normal range of dtype
// and the ratio at most 1e18 (float32) or 1e145 (float64), where every weight
// (spacing / scale)^2 >= 1e-36 or 1e-290 keeps w d^2 normal and the passes exact. `where` ends
// the messages ("" for a shared spacing, ", in row r" for one row of a per-item spacing).
std::pair<double, double> check_spacing_row(at::ArrayRef<double> spacing, at::ScalarType dtype,
                                            const std::string& where) {
  double scale = 0.0, smallest = INFINITY;
  for (double s : spacing) {
    TORCH_CHECK_VALUE(std::isfinite(s) && s > 0, "gpudist: spacing must be positive and finite",
                      where);
    scale = std::max(scale, s);
    smallest = std::min(smallest, s);
  }
  const bool f32 = dtype == at::kFloat;
  const double tiny = f32 ? double(FLT_MIN) : DBL_MIN, huge = f32 ? double(FLT_MAX) : DBL_MAX;
  const double ratio = f32 ? 1e18 : 1e145;
  const std::string dname = dtype_name(dtype);
  for (double s : spacing) {
    if (!(tiny <= s && s <= huge)) {
      char msg[160];
      std::snprintf(msg, sizeof msg,
                    "gpudist: spacing must be in the normal range of %s [%g, %g], got %g",
                    dname.c_str(), tiny, huge, s);
      TORCH_CHECK_VALUE(false, msg, where);
    }
  }
  if (scale > ratio * smallest) {
    char msg[200];
    std::snprintf(msg, sizeof msg,
                  "gpudist: spacing: the largest value must be at most %g times the smallest for "
                  "%s output, got %g and %g", ratio, dname.c_str(), scale, smallest);
    TORCH_CHECK_VALUE(false, msg, where);
  }
  return {scale, smallest};
}
}  // namespace

Plan make_plan(const at::Tensor& src, int64_t num_classes, at::ArrayRef<double> spacing,
               const std::string& convention, bool black_border, at::ScalarType dtype,
               std::optional<double> max_distance, const char* src_name) {
  const int64_t values = static_cast<int64_t>(spacing.size());
  TORCH_CHECK_VALUE(values >= 1, "gpudist: spacing must have one value per spatial axis (>= 1)");
  const bool rows_per_item = spacing_per_item(src, values);
  const int64_t nd = rows_per_item ? src.dim() - 1 : values;
  TORCH_CHECK_VALUE(src.dim() == nd + 1, "gpudist: ", src_name,
                    " must be (batch, *spatial) with ", nd, " spatial dims, got ", src.dim(),
                    " dims (or one row of spacing per batch item: B * ndim values)");
  TORCH_CHECK_VALUE(dtype == at::kFloat || dtype == at::kDouble,
                    "gpudist: dtype must be float32 or float64");
  TORCH_CHECK_VALUE(num_classes >= 0, "gpudist: num_classes must be >= 0");
  const auto st = src.scalar_type();
  if (num_classes == 0) {
    TORCH_CHECK_VALUE(st == at::kBool, "gpudist: a mask ", src_name, " must be bool, got ",
                      dtype_name(st));
  } else {
    TORCH_CHECK_VALUE(st == at::kByte || st == at::kInt || st == at::kLong,
                      "gpudist: labels must be uint8, int32 or int64, got ", dtype_name(st));
  }
  Plan plan;
  plan.rows = rows_per_item ? src.size(0) : 1;
  const int conv = parse_convention(convention);
  for (int64_t r = 0; r < plan.rows; ++r) {
    const at::ArrayRef<double> row = spacing.slice(r * nd, nd);
    const auto [scale, smallest] =
        check_spacing_row(row, dtype, rows_per_item ? ", in row " + std::to_string(r) : "");
    for (double s : row) plan.w.push_back((s / scale) * (s / scale));
    plan.fins.push_back(Finalize{conv, scale, 0.5 * smallest});
  }
  for (int64_t a = 0; a < nd; ++a) plan.shape.push_back(src.size(a + 1));
  plan.classes = num_classes;
  plan.items = src.size(0) * std::max<int64_t>(num_classes, 1);
  plan.two_sided = is_two_sided(conv);
  TORCH_CHECK_VALUE(!(black_border && plan.two_sided),
                    "gpudist: black_border applies to the edt conventions only, not '",
                    convention, "'");
  plan.black_border = black_border;
  if (max_distance) {
    TORCH_CHECK_VALUE(*max_distance >= 0, "gpudist: max_distance must be >= 0");  // NaN too
    TORCH_CHECK_VALUE(!plan.two_sided, "gpudist: max_distance applies to the edt conventions only");
  }
  for (const Finalize& fin : plan.fins) {
    // In the passes' units (squared, spacing / scale), with room for float32 rounding so that
    // every distance up to max_distance is still computed exactly.
    const double d = max_distance ? *max_distance / fin.scale : INFINITY;
    plan.caps.push_back(max_distance ? d * d * (1.0 + 1e-5) : INFINITY);
  }
  plan.out_sizes = src.sizes().vec();
  if (num_classes > 0) plan.out_sizes.insert(plan.out_sizes.begin() + 1, num_classes);
  return plan;
}

}  // namespace gpudist
