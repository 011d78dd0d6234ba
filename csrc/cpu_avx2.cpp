// gpudist: the CPU kernels again, compiled for x86-64 CPUs with AVX2 and FMA (see cpu_ops.h).
//
// Every header the CPU sources include from outside csrc is included first, with the build's own
// (baseline) target, so that torch's and the standard library's inline functions and templates,
// which the linker merges across translation units, never hold AVX2 code. Then the sources are
// included again inside the namespace gpudist_avx2 under the AVX2 + FMA target: distinct symbols,
// so nothing of this copy can be picked by the baseline code.
#include "cpu_ops.h"

#if GPUDIST_AVX2_COPY

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace gpudist_avx2 {
#include "boundary_loss/boundary_loss.cpp"
#include "boundary_loss/boundary_loss_cpu.cpp"
#include "distance_at/distance_at_cpu.cpp"
#include "distance_transform/distance_transform.cpp"
#include "distance_transform/distance_transform_cpu.cpp"
}  // namespace gpudist_avx2
#pragma GCC pop_options

namespace gpudist {
const CpuOps kAvx2CpuOps = {
    "avx2",
    &gpudist_avx2::gpudist::distance_transform_cpu,
    &gpudist_avx2::gpudist::distance_at_cpu,
    &gpudist_avx2::gpudist::boundary_loss_forward_cpu,
    &gpudist_avx2::gpudist::boundary_loss_backward_cpu,
};
}  // namespace gpudist

#endif
