// gpudist: CUDA kernels of the exact separable Euclidean distance transform.
//
// Plain CUDA C (no torch header), compiled by nvcc into the extension (distance_transform_cuda.cu
// includes this file) and by NVRTC in the CuPy backend (gpudist/backends/cupy_nvrtc.py). Every kernel runs the
// per-line functions of edt_line.cuh, one thread per line, with a grid-stride loop over the lines
// of a bounded grid.
//
// Layout: a volume of `rows` rows, each of n elements along the processed axis times `inner`
// elements after it (row r, position x, column j at (r * n + x) * inner + j). Line `line` is
// (r, j) = (line / inner, line % inner): adjacent threads take adjacent columns, so every access
// to a strided axis (inner > 1) is coalesced. The launchers run pass 1 along the last axis
// (inner = 1: one line per thread, its reads cached sector by sector) and the envelope passes on
// the strided axes nd-2 .. 0, the last of which finalizes inline (`finalize`).
//
// The envelope needs scratch f, z (double) and v (index_t) of n + 2 values each per working thread.
// They live in one global buffer of envelope_words(n) 8-byte words per working thread (`slots`),
// interleaved: value i of thread t at [i * slots + t], so a warp's scratch accesses coalesce.
// How many threads work, in how many blocks, and which buffers each pass reads and writes is the
// launch plan's (csrc/distance_transform/cuda_plan.h).
#include "edt_line.cuh"

namespace gpudist {

// Pass 1 over `lines` lines of out, whose rows are r = item * outer + o. Label maps (classes > 0):
// item reads src row (item / classes) * outer + o with fg = item % classes; masks (read as bytes)
// read src row r with fg = 1.
template <typename L, typename T>
__device__ void first_pass(const L* src, T* out, index_t n, index_t inner, index_t outer,
                           index_t lines, index_t classes, double w_all, int two_sided,
                           int black_border, int finalize, int convention, double scale,
                           double shift, LineSpacing spacing) {
  const index_t threads = index_t(gridDim.x) * blockDim.x;
  for (index_t line = index_t(blockIdx.x) * blockDim.x + threadIdx.x; line < lines;
       line += threads) {
    double w = w_all;
    Finalize fin{convention, scale, shift};
    spacing.of(line, w, fin);
    const index_t r = line / inner, j = line % inner;
    const index_t item = r / outer;
    const index_t src_r = classes ? (item / classes) * outer + r % outer : r;
    const index_t fg = classes ? item % classes : 1;
    const L* s = src + src_r * n * inner + j;
    T* o = out + r * n * inner + j;
    if (finalize)  // two calls, so that each inlines with a known `fin` (no stack copy of it)
      first_pass_line(s, inner, fg, o, inner, n, w, two_sided != 0, black_border != 0, &fin);
    else
      first_pass_line(s, inner, fg, o, inner, n, w, two_sided != 0, black_border != 0, nullptr);
  }
}

// One envelope pass over `lines` lines, from `in` to `out` (distinct buffers), by the first
// `slots` threads of the grid.
template <typename T>
__device__ void envelope_pass(const T* in, T* out, index_t n, index_t inner, index_t lines,
                              index_t slots, double w_all, int two_sided, int black_border,
                              int finalize, int convention, double scale, double shift,
                              double* scratch, LineSpacing spacing) {
  const index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= slots) return;
  double* f = scratch + t;
  double* z = scratch + (n + 2) * slots + t;
  index_t* v = reinterpret_cast<index_t*>(scratch + (2 * n + 4) * slots) + t;
  for (index_t line = t; line < lines; line += slots) {
    double w = w_all;
    Finalize fin{convention, scale, shift};
    spacing.of(line, w, fin);
    const index_t base = (line / inner) * n * inner + line % inner;
    if (finalize)
      envelope_line(in + base, inner, out + base, inner, n, w, two_sided != 0, black_border != 0,
                    f, v, z, slots, &fin);
    else
      envelope_line(in + base, inner, out + base, inner, n, w, two_sided != 0, black_border != 0,
                    f, v, z, slots, nullptr);
  }
}

// --- Second generation (GPUDIST_CUDA_KERNELS=2): the same passes and plan, other kernels ---
//
// Pass 1: one warp per line (first_pass_warp: coalesced loads and stores), grid-stride over the
// lines by warps. Envelope passes: one thread per line as before; every lane first runs the
// windowed envelope straight from global memory (window_line, offsets up to kWindowReach + 1),
// then the warp votes (__all_sync): only if some line's result may come from a farther site do
// the lanes of those lines rerun it on the stack envelope with packed 8-byte entries
// (lower_envelope_packed; 16 bytes for double). Lanes without a line vote and do nothing else.

template <typename L, typename T>
__device__ void first_pass2(const L* src, T* out, index_t n, index_t outer, index_t lines,
                            index_t classes, double w_all, int two_sided, int black_border,
                            int finalize, int convention, double scale, double shift,
                            LineSpacing spacing) {
  const int lane = int(threadIdx.x % 32);
  const index_t warps = index_t(gridDim.x) * blockDim.x / 32;
  for (index_t line = (index_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; line < lines;
       line += warps) {
    double w = w_all;
    Finalize fin{convention, scale, shift};
    spacing.of(line, w, fin);
    const index_t item = line / outer;
    const index_t src_r = classes ? (item / classes) * outer + line % outer : line;
    const index_t fg = classes ? item % classes : 1;
    if (finalize)  // two calls, so that each inlines with a known `fin` (no stack copy of it)
      first_pass_warp(src + src_r * n, fg, out + line * n, n, w, two_sided != 0,
                      black_border != 0, &fin, lane);
    else
      first_pass_warp(src + src_r * n, fg, out + line * n, n, w, two_sided != 0,
                      black_border != 0, static_cast<const Finalize*>(nullptr), lane);
  }
}

// The lines of thread t of envelope_pass2 (see there), finalized when `finalize`.
template <typename T>
__device__ __forceinline__ void envelope_lines2(const T* in, T* out, index_t n, index_t inner,
                                                index_t lines, index_t slots, double w_all,
                                                bool two_sided, bool black_border, index_t t,
                                                double* scratch, Finalize shared, bool finalize,
                                                LineSpacing spacing) {
  Site<T>* s = reinterpret_cast<Site<T>*>(scratch) + t;
  for (index_t first = t - t % 32; first < lines; first += slots) {
    const index_t line = first + t % 32;
    const bool active = t < slots && line < lines;
    double w = w_all;
    Finalize line_fin = shared;
    if (active) spacing.of(line, w, line_fin);
    const Finalize* fin = finalize ? &line_fin : nullptr;
    const index_t base = active ? (line / inner) * n * inner + line % inner : 0;
    const bool done =
        !active || window_line(in + base, inner, out + base, inner, n, w, black_border, fin);
    if (!__all_sync(kFullWarp, done) && !done) {  // the lanes the window left, on the stack
      lower_envelope_packed(in + base, inner, out + base, inner, n, w, true, black_border,
                            !two_sided, s, slots, fin);
      if (two_sided)
        lower_envelope_packed(in + base, inner, out + base, inner, n, w, false, false, false, s,
                              slots, fin);
    }
  }
}

template <typename T>
__device__ void envelope_pass2(const T* in, T* out, index_t n, index_t inner, index_t lines,
                               index_t slots, double w, int two_sided, int black_border,
                               int finalize, int convention, double scale, double shift,
                               double* scratch, LineSpacing spacing) {
  const index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t - t % 32 >= slots) return;  // a whole warp without lines
  envelope_lines2(in, out, n, inner, lines, slots, w, two_sided != 0, black_border != 0, t,
                  scratch, Finalize{convention, scale, shift}, finalize != 0, spacing);
}

}  // namespace gpudist

// Explicit instantiations under plain C names (NVRTC looks them up as written): src type
// u8 (also bool masks) / i32 / i64, output f32 / f64. The last four arguments are LineSpacing's
// (edt_line.cuh; rows null: w, scale and shift hold for every line).

#define GD_FIRST_PASS(NAME, L, T)                                                              \
  extern "C" __global__ void NAME(const L* src, T* out, long long n, long long inner,           \
                                  long long outer, long long lines, long long classes, double w, \
                                  int two_sided, int black_border, int finalize, int convention, \
                                  double scale, double shift, GD_SPACING_ARGS) {                 \
    gpudist::first_pass(src, out, n, inner, outer, lines, classes, w, two_sided, black_border,   \
                        finalize, convention, scale, shift, GD_SPACING);                         \
  }
GD_FIRST_PASS(gd_first_pass_u8_f32, unsigned char, float)
GD_FIRST_PASS(gd_first_pass_i32_f32, int, float)
GD_FIRST_PASS(gd_first_pass_i64_f32, long long, float)
GD_FIRST_PASS(gd_first_pass_u8_f64, unsigned char, double)
GD_FIRST_PASS(gd_first_pass_i32_f64, int, double)
GD_FIRST_PASS(gd_first_pass_i64_f64, long long, double)
#undef GD_FIRST_PASS

#define GD_ENVELOPE(NAME, T)                                                                   \
  extern "C" __global__ void NAME(const T* in, T* out, long long n, long long inner,          \
                                  long long lines, long long slots, double w, int two_sided,  \
                                  int black_border, int finalize, int convention,             \
                                  double scale, double shift, double* scratch,                \
                                  GD_SPACING_ARGS) {                                          \
    gpudist::envelope_pass(in, out, n, inner, lines, slots, w, two_sided, black_border,        \
                           finalize, convention, scale, shift, scratch, GD_SPACING);           \
  }
GD_ENVELOPE(gd_envelope_f32, float)
GD_ENVELOPE(gd_envelope_f64, double)
#undef GD_ENVELOPE

// The second generation, with the first's arguments (`inner` of pass 1 is 1: unused).
#define GD_FIRST_PASS2(NAME, L, T)                                                             \
  extern "C" __global__ void NAME(const L* src, T* out, long long n, long long /*inner*/,       \
                                  long long outer, long long lines, long long classes, double w, \
                                  int two_sided, int black_border, int finalize, int convention, \
                                  double scale, double shift, GD_SPACING_ARGS) {                 \
    gpudist::first_pass2(src, out, n, outer, lines, classes, w, two_sided, black_border,         \
                         finalize, convention, scale, shift, GD_SPACING);                        \
  }
GD_FIRST_PASS2(gd_first_pass2_u8_f32, unsigned char, float)
GD_FIRST_PASS2(gd_first_pass2_i32_f32, int, float)
GD_FIRST_PASS2(gd_first_pass2_i64_f32, long long, float)
GD_FIRST_PASS2(gd_first_pass2_u8_f64, unsigned char, double)
GD_FIRST_PASS2(gd_first_pass2_i32_f64, int, double)
GD_FIRST_PASS2(gd_first_pass2_i64_f64, long long, double)
#undef GD_FIRST_PASS2

#define GD_ENVELOPE2(NAME, T)                                                                  \
  extern "C" __global__ void NAME(const T* in, T* out, long long n, long long inner,          \
                                  long long lines, long long slots, double w, int two_sided,  \
                                  int black_border, int finalize, int convention,             \
                                  double scale, double shift, double* scratch,                \
                                  GD_SPACING_ARGS) {                                          \
    gpudist::envelope_pass2(in, out, n, inner, lines, slots, w, two_sided, black_border,       \
                            finalize, convention, scale, shift, scratch, GD_SPACING);          \
  }
GD_ENVELOPE2(gd_envelope2_f32, float)
GD_ENVELOPE2(gd_envelope2_f64, double)
#undef GD_ENVELOPE2
