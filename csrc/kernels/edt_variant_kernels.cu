// gpudist: CUDA kernels of the variants of the transform: the multi-label EDT
// (edt_multilabel.cuh), the taxicab and chessboard transforms (edt_metrics.cuh) and the feature
// transform (edt_features.cuh), from the same per-line functions as the CPU ops.
//
// Plain CUDA C (no torch header), compiled by nvcc into the extension (variants_cuda.cu includes
// this file) and by NVRTC in the CuPy backend (gpudist/backends/cupy_nvrtc.py). Every pass runs
// along one axis of the whole batch, IN PLACE on the output, one thread per line: thread t < slots
// of the grid works lines t, t + slots, ... Line `line` of a pass along an axis of n elements
// with `inner` elements after it starts at (line / inner) * n * inner + line % inner and has
// stride inner, so adjacent threads take adjacent columns and every access to a strided axis
// coalesces. Pass 0 (`first`) runs along axis 0 and reads the input; passes 1 .. nd-1 along axes
// 1 .. nd-1, in the order of the CPU ops. The plan (which threads work, how much scratch) is
// cuda_variant_plan() of csrc/distance_transform/cuda_plan.h.
//
// Spacing: every kernel takes LineSpacing's arguments last (edt_line.cuh): with a null table the
// launch's w (h for the metrics) and scale hold for every line, else each line reads its item's
// row (nd per-axis values, scale, shift).
//
// Scratch: variant_words(op, n) 8-byte words per working thread (cuda_plan.h): arrays of
// n + 2 values, value i of array a of thread t at [(a * (n + 2) + i) * slots + t], so that a
// warp's scratch accesses coalesce.
#include "edt_features.cuh"
#include "edt_metrics.cuh"

namespace gpudist {

// The start of line `line` of a pass (see the top of this file).
__device__ __forceinline__ index_t variant_line_base(index_t line, index_t n, index_t inner) {
  return (line / inner) * n * inner + line % inner;
}

// Array a of thread t's scratch (see the top of this file).
template <typename S>
__device__ __forceinline__ S* scratch_array(double* scratch, int a, index_t n, index_t slots,
                                            index_t t) {
  return reinterpret_cast<S*>(scratch + a * (n + 2) * slots) + t;
}

// One pass of the multi-label EDT (multilabel_edt): the first along axis 0 (first != 0), an
// envelope pass otherwise; the last finalizes (kEdt or kEdtSquared, scale).
template <typename L, typename T>
__device__ void multilabel_pass(const L* labels, T* out, index_t n, index_t inner, index_t lines,
                                index_t slots, double w_all, int black_border, int first,
                                int finalize, int convention, double scale, double* scratch,
                                LineSpacing spacing) {
  const index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= slots) return;
  for (index_t line = t; line < lines; line += slots) {
    double w = w_all;
    Finalize fin{convention, scale, 0.0};
    spacing.of(line, w, fin);
    const Finalize* last = finalize ? &fin : nullptr;
    const index_t base = variant_line_base(line, n, inner);
    if (first)
      multilabel_first_pass_line(labels + base, inner, out + base, inner, n, w, black_border != 0,
                                 last);
    else
      multilabel_envelope_line(labels + base, inner, out + base, inner, out + base, inner, n, w,
                               black_border != 0, scratch_array<double>(scratch, 0, n, slots, t),
                               scratch_array<index_t>(scratch, 2, n, slots, t),
                               scratch_array<double>(scratch, 1, n, slots, t), slots, last);
  }
}

// One pass of the taxicab (metric kTaxicab) or chessboard (kChessboard) transform, spacing h of
// the pass's axis, on bool masks read as bytes.
template <typename T>
__device__ void metric_pass(const unsigned char* src, T* out, index_t n, index_t inner,
                            index_t lines, index_t slots, double h_all, int metric,
                            int black_border, int first, double* scratch, LineSpacing spacing) {
  const index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= slots) return;
  for (index_t line = t; line < lines; line += slots) {
    double h = h_all;
    Finalize unused{0, 0.0, 0.0};
    spacing.of(line, h, unused);
    const index_t base = variant_line_base(line, n, inner);
    if (first)
      metric_first_pass_line(src + base, inner, out + base, inner, n, h, black_border != 0);
    else if (metric == kTaxicab)
      taxicab_line(out + base, inner, n, h, black_border != 0);
    else
      chessboard_line(out + base, inner, out + base, inner, n, h, black_border != 0,
                      scratch_array<index_t>(scratch, 0, n, slots, t),
                      scratch_array<double>(scratch, 1, n, slots, t),
                      scratch_array<index_t>(scratch, 2, n, slots, t), slots);
  }
}

// One pass of the feature transform: squared distances in pass units into out, the flat index
// within its item of a nearest background element into feat; items hold outer * inner * n
// elements. gd_finalize_* then turns the squared distances into distances.
template <typename T>
__device__ void feature_pass(const unsigned char* src, T* out, long long* feat, index_t n,
                             index_t inner, index_t outer, index_t lines, index_t slots,
                             double w_all, int first, double* scratch, LineSpacing spacing) {
  const index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= slots) return;
  const index_t volume = outer * inner * n;
  for (index_t line = t; line < lines; line += slots) {
    double w = w_all;
    Finalize unused{0, 0.0, 0.0};
    spacing.of(line, w, unused);
    const index_t at = variant_line_base(line, n, inner);
    const index_t base = at - (line / (outer * inner)) * volume;  // within the item
    if (first)
      feature_first_pass_line(src + at, inner, out + at, feat + at, inner, base, n, w);
    else
      feature_envelope_line(src + at, inner, out + at, feat + at, inner, base, n, w,
                            scratch_array<double>(scratch, 0, n, slots, t),
                            scratch_array<index_t>(scratch, 2, n, slots, t),
                            scratch_array<double>(scratch, 1, n, slots, t),
                            scratch_array<long long>(scratch, 3, n, slots, t), slots);
  }
}

// finalize() of `count` stored values in place, grid-stride; with a spacing table, value i
// takes the scale and shift of row i / row_lines (row_lines: the values of one item).
template <typename T>
__device__ void finalize_values(T* data, index_t count, int convention, double scale,
                                double shift, LineSpacing spacing) {
  const index_t threads = index_t(gridDim.x) * blockDim.x;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += threads) {
    double unused = 0.0;
    Finalize fin{convention, scale, shift};
    spacing.of(i, unused, fin);
    data[i] = finalize(data[i], fin);
  }
}

}  // namespace gpudist

// Explicit instantiations under plain C names (NVRTC looks them up as written): labels u8 (also
// bool) / i32 / i64, output f32 / f64; the last four arguments are LineSpacing's.
#define GD_MULTILABEL(NAME, L, T)                                                              \
  extern "C" __global__ void NAME(const L* labels, T* out, long long n, long long inner,       \
                                  long long lines, long long slots, double w, int black_border, \
                                  int first, int finalize, int convention, double scale,        \
                                  double* scratch, GD_SPACING_ARGS) {                           \
    gpudist::multilabel_pass(labels, out, n, inner, lines, slots, w, black_border, first,       \
                             finalize, convention, scale, scratch, GD_SPACING);                 \
  }
GD_MULTILABEL(gd_multilabel_u8_f32, unsigned char, float)
GD_MULTILABEL(gd_multilabel_i32_f32, int, float)
GD_MULTILABEL(gd_multilabel_i64_f32, long long, float)
GD_MULTILABEL(gd_multilabel_u8_f64, unsigned char, double)
GD_MULTILABEL(gd_multilabel_i32_f64, int, double)
GD_MULTILABEL(gd_multilabel_i64_f64, long long, double)
#undef GD_MULTILABEL

#define GD_METRIC(NAME, T)                                                                     \
  extern "C" __global__ void NAME(const unsigned char* src, T* out, long long n,               \
                                  long long inner, long long lines, long long slots, double h,  \
                                  int metric, int black_border, int first, double* scratch,     \
                                  GD_SPACING_ARGS) {                                            \
    gpudist::metric_pass(src, out, n, inner, lines, slots, h, metric, black_border, first,      \
                         scratch, GD_SPACING);                                                  \
  }
GD_METRIC(gd_metric_f32, float)
GD_METRIC(gd_metric_f64, double)
#undef GD_METRIC

#define GD_FEATURES(NAME, T)                                                                   \
  extern "C" __global__ void NAME(const unsigned char* src, T* out, long long* feat,           \
                                  long long n, long long inner, long long outer,                \
                                  long long lines, long long slots, double w, int first,        \
                                  double* scratch, GD_SPACING_ARGS) {                           \
    gpudist::feature_pass(src, out, feat, n, inner, outer, lines, slots, w, first, scratch,     \
                          GD_SPACING);                                                          \
  }
GD_FEATURES(gd_features_f32, float)
GD_FEATURES(gd_features_f64, double)
#undef GD_FEATURES

#define GD_FINALIZE(NAME, T)                                                                   \
  extern "C" __global__ void NAME(T* data, long long count, int convention, double scale,      \
                                  double shift, GD_SPACING_ARGS) {                             \
    gpudist::finalize_values(data, count, convention, scale, shift, GD_SPACING);               \
  }
GD_FINALIZE(gd_finalize_f32, float)
GD_FINALIZE(gd_finalize_f64, double)
#undef GD_FINALIZE
