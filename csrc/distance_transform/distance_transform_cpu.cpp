// gpudist::distance_transform on the CPU: the passes of cpu_passes.h over at::parallel_for's
// threads (torch.set_num_threads). Compiled twice (cpu_ops.h), registered by cpu_ops.cpp.
#include "cpu_ops.h"
#include "distance_transform/cpu_passes.h"
#include "distance_transform/distance_transform.h"

namespace gpudist {

at::Tensor distance_transform_cpu(const at::Tensor& src_any, int64_t num_classes,
                                  at::ArrayRef<double> spacing, const std::string& convention,
                                  bool black_border, at::ScalarType dtype,
                                  std::optional<double> max_distance) {
  TORCH_CHECK_VALUE(src_any.device().is_cpu(), "gpudist: src must be a CPU tensor here");
  const at::Tensor src = src_any.contiguous();
  const Plan plan =
      make_plan(src, num_classes, spacing, convention, black_border, dtype, max_distance);
  at::Tensor out = at::empty(plan.out_sizes, src.options().dtype(dtype));
  if (out.numel() == 0) return out;
  with_src_data(src, [&](auto* s) {
    if (dtype == at::kFloat)
      cpu::run_passes(s, out.data_ptr<float>(), plan);
    else
      cpu::run_passes(s, out.data_ptr<double>(), plan);
  });
  return out;
}

}  // namespace gpudist
