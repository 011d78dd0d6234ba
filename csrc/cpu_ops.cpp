// gpudist: registers the CPU kernels of the ops, the AVX2 + FMA set where the CPU has both and
// GPUDIST_CPU_ISA is not "baseline", else the baseline x86-64 set (cpu_ops.h).
#include "cpu_ops.h"

#include <torch/library.h>

#include <cstdlib>
#include <cstring>

namespace gpudist {
namespace {

const CpuOps kBaselineCpuOps = {
    "baseline", &distance_transform_cpu, &distance_at_cpu, &boundary_loss_forward_cpu,
    &boundary_loss_backward_cpu,
};

const CpuOps& choose() {
#if GPUDIST_AVX2_COPY
  const char* forced = std::getenv("GPUDIST_CPU_ISA");
  const bool baseline = forced != nullptr && std::strcmp(forced, "baseline") == 0;
  if (!baseline && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return kAvx2CpuOps;
#endif
  return kBaselineCpuOps;
}

}  // namespace

const CpuOps& cpu_ops() {
  static const CpuOps& chosen = choose();
  return chosen;
}

TORCH_LIBRARY_IMPL(gpudist, CPU, m) {
  const CpuOps& ops = cpu_ops();
  m.impl("distance_transform", ops.distance_transform);
  m.impl("distance_at", ops.distance_at);
  m.impl("boundary_loss_forward", ops.boundary_loss_forward);
  m.impl("boundary_loss_backward", ops.boundary_loss_backward);
}

}  // namespace gpudist
