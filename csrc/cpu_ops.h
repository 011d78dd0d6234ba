// gpudist: the CPU ops, compiled twice on x86-64 with gcc: for baseline x86-64 (their own .cpp
// files) and for CPUs with AVX2 and FMA (cpu_avx2.cpp, the same files again in the namespace
// gpudist_avx2, under `#pragma GCC target("avx2,fma")`). cpu_ops.cpp registers one set of the two,
// chosen when the extension loads (__builtin_cpu_supports; GPUDIST_CPU_ISA=baseline forces the
// portable set). Nothing is built with -mavx2 or -march=native, so one build runs on any x86-64.
// The CPU kernels of the EDT variants (multilabel_edt, metric_transform, feature_transform) and
// of the metrics' voxel_border are compiled once, for baseline x86-64, and register themselves
// beside their code.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <tuple>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GPUDIST_AVX2_COPY 1  // cpu_avx2.cpp builds the AVX2 + FMA set
#else
#define GPUDIST_AVX2_COPY 0
#endif

namespace gpudist {

// The CPU kernels of the ops declared in library.cpp (arguments: their headers).
at::Tensor distance_transform_cpu(const at::Tensor& src, int64_t num_classes,
                                  at::ArrayRef<double> spacing, const std::string& convention,
                                  bool black_border, at::ScalarType dtype,
                                  std::optional<double> max_distance);
std::tuple<at::Tensor, at::Tensor> distance_at_cpu(const at::Tensor& sites,
                                                   const at::Tensor& query,
                                                   at::ArrayRef<double> spacing,
                                                   at::ScalarType dtype);
at::Tensor boundary_loss_forward_cpu(const at::Tensor& logits, const at::Tensor& phi,
                                     at::IntArrayRef idc);
at::Tensor boundary_loss_backward_cpu(const at::Tensor& grad, const at::Tensor& logits,
                                      const at::Tensor& phi, at::IntArrayRef idc);

// One compiled set of the CPU kernels.
struct CpuOps {
  const char* isa;  // "baseline" or "avx2"
  decltype(&distance_transform_cpu) distance_transform;
  decltype(&distance_at_cpu) distance_at;
  decltype(&boundary_loss_forward_cpu) boundary_loss_forward;
  decltype(&boundary_loss_backward_cpu) boundary_loss_backward;
};

#if GPUDIST_AVX2_COPY
extern const CpuOps kAvx2CpuOps;  // cpu_avx2.cpp: run only where the CPU has AVX2 and FMA
#endif

// The set registered for the CPU (cpu_ops.cpp), fixed when the extension loads.
const CpuOps& cpu_ops();

}  // namespace gpudist
