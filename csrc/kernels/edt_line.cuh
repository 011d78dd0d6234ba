// gpudist: the per-line algorithm of the exact separable Euclidean distance transform.
//
// Plain C++ / CUDA C with no torch (or any other) header on the device side, so that the same
// functions run in the CPU extension (gcc), in the CUDA extension (nvcc) and in the CuPy backend
// (NVRTC). Every function works on one line of a volume, addressed by a base pointer and a stride.
//
// The transform is separable (Saito & Toriwaki 1994; Meijster et al. 2000):
//   1. first_pass_lanes() along one axis: 1-D squared distance from each element to the nearest
//      element of the opposite class (or to the nearest background element),
//   2. envelope_line() along every other axis: the lower envelope of the parabolas
//      f(y) + w (x - y)^2 (Felzenszwalb & Huttenlocher 2012), with w = spacing^2 of that axis,
//   3. finalize() on the output of the last pass: square root, spacing scale, sign convention.
//
// Between passes every element holds a squared distance g >= 0 whose SIGN BIT carries its class:
// foreground (mask == true) elements are stored as -g (also -0.0), background as +g. Background
// elements of a one-sided transform (plain EDT) hold +0.
//
// Arithmetic is in double: the parabola intersections of the envelope need it to stay exact (a
// float32 intersection picks the wrong parabola at 256^3 with anisotropic spacing); values are
// stored in the output type T (float or double). Indices are 64-bit throughout.
//
// Users: csrc/distance_transform/cpu_passes.h (CPU), kernels/edt_kernels.cu (CUDA, NVRTC),
// csrc/distance_at/distance_at_cpu.cpp. Mirror: gpudist/backends/numba_cpu.py transliterates
// first_pass_lanes<1>, lower_envelope and finalize_as for the numba fallback (the plain forms only;
// the vectorised variants, windowed envelope and lanes, are CPU speed-ups it does without): a
// change to those three must be made there too; tests compare both with scipy.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GD_HD __host__ __device__ __forceinline__
#else
#include <cmath>
#define GD_HD inline
#endif

// Marks a CPU loop over independent elements to be vectorised (gcc keeps some fixed-length
// loops of min/max blends scalar without it).
// GD_SIMD_OR(m): the same for a loop whose only dependence is the running bitwise or m.
#if defined(_OPENMP) && !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
#define GD_SIMD _Pragma("omp simd")
#define GD_SIMD_PRAGMA(text) _Pragma(#text)
#define GD_SIMD_OR(m) GD_SIMD_PRAGMA(omp simd reduction(| : m))
#else
#define GD_SIMD
#define GD_SIMD_OR(m)
#endif

namespace gpudist {

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
using std::copysign;
using std::fabs;
using std::isinf;
using std::signbit;
using std::sqrt;
#endif

typedef long long index_t;

// What the last pass writes. Values match the Python API's conventions.
enum Convention {
  kEdt = 0,         // sqrt(g) * scale: distance to the nearest background element
  kEdtSquared = 1,  // g * scale^2
  kKervadec = 2,    // Kervadec et al.'s phi: D outside, 1 - D inside, 0 when no boundary exists
  kSdf = 3,         // D - shift outside, shift - D inside, 0 when no boundary exists
  kUnsigned = 4,    // D everywhere (EDT(m) + EDT(~m)), 0 when no boundary exists
};

// D is the distance to the nearest element of the opposite class. Kervadec, sdf and unsigned need
// it on both sides of the boundary ("two-sided"); the plain EDT only inside the mask.
GD_HD bool is_two_sided(int convention) { return convention >= kKervadec; }

struct Finalize {
  int convention;
  double scale;  // the transform runs on spacing / scale; distances are multiplied back by it
  double shift;  // kSdf only: half a voxel, in physical units
};

// The spacing of the lines of one CUDA pass (kernels/edt_kernels.cu, edt_variant_kernels.cu): the
// launch's own value and fin when `rows` is null (one spacing for the whole batch), else those of
// spacing row line / row_lines (row_lines: the pass's lines of one source item), read from `rows`,
// row_stride = nd + 2 doubles per row: nd per-axis values (the pass weights; the metric
// transform's spacing itself), then scale and shift. Built by csrc/cuda_launch.h's
// line_spacing_table for the extension's launchers and by gpudist/backends/cupy_nvrtc.py's
// spacing_table.
struct LineSpacing {
  const double* rows;
  index_t row_lines, row_stride, axis;
  GD_HD void of(index_t line, double& value, Finalize& fin) const {
    if (rows == nullptr) return;
    const double* r = rows + (line / row_lines) * row_stride;
    value = r[axis];
    fin.scale = r[row_stride - 2];
    fin.shift = r[row_stride - 1];
  }
};

// A kernel's last four arguments, LineSpacing's, and the LineSpacing they make.
#define GD_SPACING_ARGS \
  const double *rows, long long row_lines, long long row_stride, long long axis
#define GD_SPACING gpudist::LineSpacing{rows, row_lines, row_stride, axis}

#if defined(__CUDACC_RTC__)  // NVRTC has no __builtin_huge_val
GD_HD double inf_value() { return __longlong_as_double(0x7ff0000000000000LL); }
#else
GD_HD double inf_value() { return __builtin_huge_val(); }
#endif
template <typename T>
GD_HD bool is_inside(T g) { return signbit(g); }

// The value the last pass writes for an element whose stored value (squared distance g, class in
// the sign bit) is `stored`, under convention C.
template <int C, typename T>
GD_HD T finalize_as(T stored, T scale, T shift) {
  const T g = fabs(stored);
  if (C == kEdtSquared) return g * scale * scale;
  const T d = sqrt(g) * scale;
  if (C == kEdt) return d;
  const bool inside = is_inside(stored);
  T v = d;
  if (C == kKervadec) v = inside ? T(1) - d : d;
  if (C == kSdf) v = inside ? shift - d : d - shift;
  // g infinite: the sample has a single class, no boundary. A finite g whose d overflows T
  // stays +-inf.
  return isinf(g) ? T(0) : v;
}

template <typename T>
GD_HD T finalize(T stored, const Finalize& p) {
  const T scale = T(p.scale), shift = T(p.shift);
  switch (p.convention) {
    case kEdt: return finalize_as<kEdt>(stored, scale, shift);
    case kEdtSquared: return finalize_as<kEdtSquared>(stored, scale, shift);
    case kKervadec: return finalize_as<kKervadec>(stored, scale, shift);
    case kSdf: return finalize_as<kSdf>(stored, scale, shift);
    default: return finalize_as<kUnsigned>(stored, scale, shift);
  }
}

// finalize() over `count` contiguous values, with the convention hoisted out of the loop so that
// it vectorises.
template <typename T>
GD_HD void finalize_span(T* data, index_t count, const Finalize& p) {
  const T scale = T(p.scale), shift = T(p.shift);
#define GD_FINALIZE_LOOP(C) \
  for (index_t i = 0; i < count; ++i) data[i] = finalize_as<C>(data[i], scale, shift)
  switch (p.convention) {
    case kEdt: GD_FINALIZE_LOOP(kEdt); break;
    case kEdtSquared: GD_FINALIZE_LOOP(kEdtSquared); break;
    case kKervadec: GD_FINALIZE_LOOP(kKervadec); break;
    case kSdf: GD_FINALIZE_LOOP(kSdf); break;
    default: GD_FINALIZE_LOOP(kUnsigned);
  }
#undef GD_FINALIZE_LOOP
}

// Stores g with its class in the sign bit, then finalizes it when this is the last pass (fin).
template <typename T>
GD_HD void store(T* out, double g, bool inside, const Finalize* fin) {
  const T v = T(inside ? -g : g);
  *out = fin ? finalize(v, *fin) : v;
}

// Which elements a first pass counts as foreground, as 0 or 1 in its counting type C.
template <typename L, typename C>
struct IsClass {  // src == fg, compared in L (which vectorises); a class L cannot hold is absent
  L fg;
  C fits;
  GD_HD C operator()(L v) const { return C(v == fg) * fits; }
};
template <typename C>
struct IsInside {  // the class a previous pass carries in the sign bit
  template <typename T>
  GD_HD C operator()(T v) const { return C(is_inside(v)); }
};

// First pass over kLanes adjacent lines of n elements in lockstep (element x of lane j at
// x * stride + j), so that a CPU vectorises across lanes; the GPU runs one lane per thread.
// Element x belongs to the foreground when is_fg(src[x * src_stride]) is 1. With black_border
// the positions -1 and n are background. w = spacing^2 of this axis. Writes n values per lane to
// out[x * out_stride]: w d^2, negated for the foreground, with d the 1-D distance to the nearest
// element of the other class (one-sided: 0 for the background). The loops blend with 0/1
// factors instead of branching (that is what lets them vectorise); "none seen yet" is the finite
// kNone, whose square overflows to +inf.
template <int kLanes, typename C, typename L, typename T, typename IsFg>
GD_HD void first_pass_by(const L* __restrict__ src, index_t src_stride, IsFg is_fg,
                         T* __restrict__ out, index_t out_stride, index_t n, double w,
                         bool two_sided, bool black_border) {
  const C kNone = C(sizeof(C) < sizeof(double) ? 3e38 : 1e300);
  const C other_class = two_sided ? C(1) : C(0);  // one-sided: background elements get 0
  // Forward sweep: distance (in elements) to the nearest element of the other class on the left,
  // from one counter per class of the elements since that class was last seen.
  C since_bg[kLanes], since_fg[kLanes];
  for (int j = 0; j < kLanes; ++j) {
    since_bg[j] = black_border ? C(0) : kNone;
    since_fg[j] = kNone;
  }
  for (index_t x = 0; x < n; ++x) {
    const L* s = src + x * src_stride;
    T* o = out + x * out_stride;
    for (int j = 0; j < kLanes; ++j) {
      const C inside = is_fg(s[j]);
      const C bg = since_bg[j] + C(1), fg_ = since_fg[j] + C(1);
      o[j] = T(inside * bg + (C(1) - inside) * fg_);
      since_bg[j] = inside * bg;
      since_fg[j] = (C(1) - inside) * fg_;
    }
  }
  // Backward sweep: the same on the right, then the square of the nearer one, signed.
  for (int j = 0; j < kLanes; ++j) {
    since_bg[j] = black_border ? C(0) : kNone;
    since_fg[j] = kNone;
  }
  for (index_t x = n - 1; x >= 0; --x) {
    const L* s = src + x * src_stride;
    T* o = out + x * out_stride;
    for (int j = 0; j < kLanes; ++j) {
      const C inside = is_fg(s[j]);
      const C bg = since_bg[j] + C(1), fg_ = since_fg[j] + C(1);
      const C right = inside * bg + (C(1) - inside) * fg_;
      since_bg[j] = inside * bg;
      since_fg[j] = (C(1) - inside) * fg_;
      const C left = C(o[j]);
      const C d = (left < right ? left : right) * (inside + (C(1) - inside) * other_class);
      o[j] = T(C(w) * d * d * (C(1) - C(2) * inside));
    }
  }
}

// first_pass_by() on a mask or label map: element x is foreground when src[x * src_stride] == fg
// (a mask holds 0/1 with fg = 1; labels hold class indices).
template <int kLanes, typename C = double, typename L, typename T>
GD_HD void first_pass_lanes(const L* __restrict__ src, index_t src_stride, index_t fg,
                            T* __restrict__ out, index_t out_stride, index_t n, double w,
                            bool two_sided, bool black_border) {
  const IsClass<L, C> is_fg{L(fg), index_t(L(fg)) == fg ? C(1) : C(0)};
  first_pass_by<kLanes, C>(src, src_stride, is_fg, out, out_stride, n, w, two_sided,
                           black_border);
}

// First pass over one line (see first_pass_lanes), finalized when it is the last pass (fin).
template <typename L, typename T>
GD_HD void first_pass_line(const L* src, index_t src_stride, index_t fg, T* out, index_t out_stride,
                           index_t n, double w, bool two_sided, bool black_border,
                           const Finalize* fin) {
  first_pass_lanes<1>(src, src_stride, fg, out, out_stride, n, w, two_sided, black_border);
  if (fin)
    for (index_t x = 0; x < n; ++x) out[x * out_stride] = finalize(out[x * out_stride], *fin);
}

// Abscissa where the parabola rooted at q (cost fq) drops below the one rooted at p < q.
GD_HD double meet(index_t p, double fp, index_t q, double fq, double w) {
  return 0.5 * (double(p + q) + (fq - fp) / (w * double(q - p)));
}

// 8-byte scratch words of one envelope_line() over n elements: f, z and v, n + 2 values each.
GD_HD index_t envelope_words(index_t n) { return 3 * (n + 2); }

// Lower envelope of the parabolas f(y) + w (x - y)^2 for the elements x of one class, the targets
// (Felzenszwalb & Huttenlocher 2012, Algorithm 1). A site y costs its stored squared distance when
// y is a target and 0 otherwise (the nearest element of the other class is y itself). Interior
// elements of a run of non-targets are skipped as sites: a neighbour of the run is as cheap and
// nearer to every target. With border_sites, the positions -1 and n are zero-cost sites too.
// Scratch for the envelope's parabolas, n + 2 values each with stride ss: roots v, costs f and
// z, where each takes over from the previous one. Writes the targets, and the non-targets too (as
// +0) when zero_others.
template <typename T>
GD_HD void lower_envelope(const T* in, index_t in_stride, T* out, index_t out_stride, index_t n,
                          double w, bool targets_inside, bool border_sites, bool zero_others,
                          double* f, index_t* v, double* z, index_t ss, const Finalize* fin) {
  const double inf = inf_value();
  index_t k = -1;  // index of the rightmost parabola of the envelope so far
  // Adds the parabola rooted at q, dropping those it hides everywhere they were lowest.
  auto push = [&](index_t q, double fq) {
    double s = -inf;
    while (k >= 0) {
      const index_t p = v[k * ss];
      s = meet(p, f[k * ss], q, fq, w);
      if (s > z[k * ss]) break;
      --k;
    }
    if (k < 0) s = -inf;
    ++k;
    v[k * ss] = q;
    f[k * ss] = fq;
    z[k * ss] = s;
  };
  if (border_sites) push(-1, 0.0);
  bool any_target = false;
  bool prev = !border_sites;  // a missing neighbour keeps an end of the line a site
  bool cur = n > 0 && is_inside(in[0]) == targets_inside;
  for (index_t q = 0; q < n; ++q) {
    const bool next = q + 1 < n ? is_inside(in[(q + 1) * in_stride]) == targets_inside
                                : !border_sites;
    any_target |= cur;
    if (cur) {
      const double fq = fabs(double(in[q * in_stride]));
      if (!isinf(fq)) push(q, fq);  // inf: no element of the other class on this line yet
    } else if (prev || next) {
      push(q, 0.0);
    }
    prev = cur;
    cur = next;
  }
  if (border_sites) push(n, 0.0);
  if (!any_target && !zero_others) return;

  index_t j = 0;
  double next_z = k > 0 ? z[ss] : inf;  // where the parabola after v[j] takes over
  for (index_t x = 0; x < n; ++x) {
    const bool inside = is_inside(in[x * in_stride]);
    if (inside != targets_inside) {
      if (zero_others) store(out + x * out_stride, 0.0, inside, fin);
      continue;
    }
    double g = inf;  // no site on this line
    if (k >= 0) {
      while (next_z < double(x)) {
        ++j;
        next_z = j < k ? z[(j + 1) * ss] : inf;
      }
      const double dx = double(x - v[j * ss]);
      g = f[j * ss] + w * dx * dx;
    }
    store(out + x * out_stride, g, inside, fin);
  }
}

GD_HD index_t min_index(index_t a, index_t b) { return a < b ? a : b; }

// d[i] = min(d[i], min(|left[i]|, |right[i]|) + wk) for i < kChunk: one offset of
// window_envelope(), in a loop of fixed length that vectorises.
template <int kChunk, typename T>
GD_HD void window_relax(const T* __restrict__ left, const T* __restrict__ right, T* __restrict__ d,
                        T wk) {
  GD_SIMD
  for (int i = 0; i < kChunk; ++i) {
    const T l = fabs(left[i]), r = fabs(right[i]);
    const T v = (l < r ? l : r) + wk;
    d[i] = v < d[i] ? v : d[i];
  }
}

// window_relax() for the four offsets k, k + 1, k + 2, k + 3 (`step` elements apart, shift =
// k's) on both sides of c: their minimum as a tree, then one update of d. d lives in memory,
// and its chain of loads, minima and stores is what bounds the loop: one link per four offsets.
template <int kChunk, typename T>
GD_HD void window_relax4(const T* __restrict__ c, index_t shift, index_t step,
                         T* __restrict__ d, const T* wk) {
  const T* l = c - shift;
  const T* r = c + shift;
  GD_SIMD
  for (int i = 0; i < kChunk; ++i) {
    T u[4];
    for (int j = 0; j < 4; ++j) {
      const T a = fabs(l[i - j * step]), b = fabs(r[i + j * step]);
      u[j] = (a < b ? a : b) + wk[j];
    }
    const T u01 = u[0] < u[1] ? u[0] : u[1], u23 = u[2] < u[3] ? u[2] : u[3];
    const T v = u01 < u23 ? u01 : u23;
    d[i] = v < d[i] ? v : d[i];
  }
}

// Whether some d[i], i < kChunk, is above wk: whether a farther offset may still lower one.
template <int kChunk, typename T>
GD_HD bool any_above(const T* d, T wk) {
  int above = 0;
  GD_SIMD_OR(above)
  for (int i = 0; i < kChunk; ++i) above |= d[i] > wk;
  return above != 0;
}

// The same envelope pass as envelope_line(), over kLanes adjacent lines of n elements (element
// x of lane j at in[x * kLanes + j]), computed directly as
//   g'(x) = min over sites y of cost(y) + w (x - y)^2
// over growing offsets k = |x - y|, kChunk elements at a time: kChunk consecutive elements of
// one line (kLanes == 1) or one position of every lane (kLanes == kChunk); the loops over a chunk
// vectorise on a CPU. A chunk stops at the first k with w k^2 >= each of its current minima: no
// farther site can lower one. With the class in the sign bit, cost(y) = |in[y]| is exact for
// sites of x's class; an element of the other class costs 0, which `other` (two-sided only:
// first_pass_by() along this axis on the sign-bit classes, |other| = w times the squared 1-D
// distance to the nearest element of the other class) supplies up front.
// Taking |in[y]| for such a y instead is harmless: it is only reached once w k^2 >= other[x] >=
// the minimum. One-sided, background elements hold +0 and need no `other`. With border_sites
// (one-sided only) the positions -1 and n are zero-cost sites.
// Fast where the distances along this axis are short, whatever the values coming in. Offsets go
// up to `reach`; a minimum found by then is final when it is at most limit = w (reach + 1)^2
// (a farther site costs at least that), and every minimum is final when the line has no element
// farther than reach. A lane (a line, kLanes == 1) with a minimum that is not final is handed
// back at once: the function returns the lanes done as a bit mask, and the caller runs
// envelope_line() on the others, whose `out` holds garbage.
// With a finite `cap` every lane is done: minima above cap are left +inf (offsets stop once
// w k^2 >= cap), and values up to cap stay exact, as they only ever come from sites with
// values up to cap. Writes the stored (signed, squared) values; `in` and `out` must not
// overlap. With kLanes == 1, `pad` elements before and after the line must be readable and hold
// +inf (no site): offsets up to pad then need no bounds checks. `other`: n * kLanes scratch
// values, used when two_sided.
template <int kChunk, int kLanes, typename T>
GD_HD unsigned window_envelope(const T* __restrict__ in, T* __restrict__ out, index_t n, double w,
                               bool two_sided, bool border_sites, index_t reach, double cap,
                               index_t pad, T* __restrict__ other) {
  static_assert(kLanes == 1 || kLanes == kChunk, "a chunk is part of a line or a position");
  static_assert(kLanes <= 32, "one bit per lane");
  const double inf = inf_value();
  const index_t size = n * kLanes;
  const bool capped = cap < inf;
  // The offsets tried, and the largest minimum they settle: the whole line when it is short.
  const index_t last_k = capped || reach + 1 >= n ? n - 1 : reach;
  const T limit = capped || reach + 1 >= n ? T(inf) : T(w * double(reach + 1) * double(reach + 1));
  const T ceiling = capped ? T(cap) : T(inf);
  unsigned done = kLanes == 32 ? ~0u : (1u << kLanes) - 1u;
  if (two_sided)  // -w d^2 or w d^2 by class: the 1-D distance to the other class, as pass 1
    first_pass_by<kLanes, double>(in, kLanes, IsInside<double>{}, other, kLanes, n, w, true,
                                  false);
  for (index_t e0 = 0; e0 < size; e0 += kChunk) {
    const index_t m = size - e0 < kChunk ? size - e0 : kChunk;  // < kChunk: a line's last chunk
    const index_t first = e0 / kLanes, last = (e0 + m - 1) / kLanes;  // positions spanned
    const T* c = in + e0;
    const T* o = other + e0;
    T d[kChunk];  // lanes handed back and the rest of a short chunk hold 0, below any bound
    if (m == kChunk) {
      GD_SIMD
      for (int i = 0; i < kChunk; ++i) d[i] = fabs(c[i]);
      if (two_sided) {
        GD_SIMD
        for (int i = 0; i < kChunk; ++i) d[i] = fabs(o[i]) < d[i] ? fabs(o[i]) : d[i];
      }
    } else {
      for (int i = 0; i < kChunk; ++i) d[i] = T(0);
      for (index_t i = 0; i < m; ++i)
        d[i] = two_sided && fabs(o[i]) < fabs(c[i]) ? fabs(o[i]) : fabs(c[i]);
    }
    if (border_sites)
      for (index_t i = 0; i < m; ++i) {
        const index_t x = (e0 + i) / kLanes;
        const double left = double(x + 1), right = double(n - x);
        const T b = T(w * (left < right ? left * left : right * right));
        d[i] = b < d[i] ? b : d[i];
      }
    if (kLanes > 1)
      for (int i = 0; i < kChunk; ++i) d[i] = done >> i & 1u ? d[i] : T(0);
    // Offsets up to `within` reach no end of the line (kLanes == 1: of the padding).
    const index_t within = kLanes == 1 ? min_index(e0 + pad, n + pad - e0 - kChunk)
                                       : min_index(first, n - 1 - last);
    const index_t grouped = min_index(within, last_k);  // offsets that may go four at a time
    for (index_t k = 1; k <= last_k;) {
      const T wk = T(w * double(k) * double(k));
      if (!(wk < ceiling) || !any_above<kChunk>(d, wk)) break;
      const index_t shift = k * kLanes;
      if (k + 3 <= grouped) {  // going up to three offsets past the stop is harmless
        const T wks[4] = {wk, T(w * double(k + 1) * double(k + 1)),
                          T(w * double(k + 2) * double(k + 2)),
                          T(w * double(k + 3) * double(k + 3))};
        window_relax4<kChunk>(c, shift, kLanes, d, wks);
        k += 4;
        continue;
      }
      if (k <= within) {
        window_relax<kChunk>(c - shift, c + shift, d, wk);
      } else if (kLanes > 1) {  // one position: the offset reaches past one end, or both
        if (first >= k) window_relax<kChunk>(c - shift, c - shift, d, wk);
        if (last + k < n) window_relax<kChunk>(c + shift, c + shift, d, wk);
      } else {  // the offset reaches past an end of the line for some elements
        for (index_t i = 0; i < m; ++i) {
          const index_t x = (e0 + i) / kLanes;
          if (x >= k && fabs(c[i - shift]) + wk < d[i]) d[i] = fabs(c[i - shift]) + wk;
          if (x + k < n && fabs(c[i + shift]) + wk < d[i]) d[i] = fabs(c[i + shift]) + wk;
        }
      }
      ++k;
    }
    if (any_above<kChunk>(d, limit)) {  // a minimum may come from a site farther than reach
      for (index_t i = 0; i < m; ++i)
        if (!(d[i] <= limit)) done &= kLanes == 1 ? 0u : ~(1u << i);
      if (!done) return 0;
    }
    if (capped)
      for (int i = 0; i < kChunk; ++i) d[i] = d[i] > ceiling ? T(inf) : d[i];
    GD_SIMD
    for (index_t i = 0; i < m; ++i) out[e0 + i] = copysign(d[i], c[i]);  // the class back
  }
  return done;
}

// One envelope pass over a line: reads the previous pass from `in`, writes this pass to `out`
// (the two must not overlap). Background elements of a one-sided transform become +0.
template <typename T>
GD_HD void envelope_line(const T* in, index_t in_stride, T* out, index_t out_stride, index_t n,
                         double w, bool two_sided, bool black_border, double* f, index_t* v,
                         double* z, index_t ss, const Finalize* fin) {
  lower_envelope(in, in_stride, out, out_stride, n, w, true, black_border, !two_sided, f, v, z,
                 ss, fin);
  if (two_sided)
    lower_envelope(in, in_stride, out, out_stride, n, w, false, false, false, f, v, z, ss, fin);
}

// --- Second-generation CUDA per-line logic (GPUDIST_CUDA_KERNELS=2) -----------------------------

// A parabola of the stack envelope, packed: its cost and root, 8 bytes for float output (a
// float32 cost is exact: the costs are values of the output type), 16 for double. The
// intersections z are recomputed from neighbouring entries instead of stored.
template <typename T>
struct Site {
  T f;
  int v;
};

// 8-byte scratch words of one lower_envelope_packed() over n elements.
template <typename T>
GD_HD index_t packed_words(index_t n) {
  return (n + 2) * index_t(sizeof(Site<T>) / 8);
}

// Device code only below (nvcc, NVRTC, and the CPU block emulator of tests/cuda_shim,
// GD_EMULATOR): warp operations. Same results as the first generation: every value is computed
// by the same double expressions.
#if defined(__CUDACC__) || defined(__CUDACC_RTC__) || defined(GD_EMULATOR)

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
using std::floor;
#endif

constexpr unsigned kFullWarp = 0xffffffffu;

// Device only (it calls warp intrinsics, which a __host__ __device__ function may not).
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GD_DEVICE __device__ __forceinline__
#else
#define GD_DEVICE inline
#endif

// first_pass_line() over one contiguous line by the 32 lanes of a warp, element x = base + lane
// of segments base = 0, 32, ...: every load and store of the warp touches 32 adjacent elements.
// The nearest element of the other class to the left (right) comes from the segment's ballots of
// the two classes and, past the segment, from the last (next) one carried across segments.
// The forward sweep parks each element's left distance in out; the backward sweep reads it back
// (the same lane wrote it). All 32 lanes must call it.
template <typename L, typename T>
GD_DEVICE void first_pass_warp(const L* src, index_t fg, T* out, index_t n, double w,
                               bool two_sided, bool black_border, const Finalize* fin,
                               int lane) {
  const double inf = inf_value();
  const L cls = L(fg);
  const bool fits = index_t(L(fg)) == fg;
  const unsigned upto = (2u << lane) - 1u;  // lanes <= lane
  const unsigned from = ~((1u << lane) - 1u);  // lanes >= lane
  index_t last_bg = black_border ? -1 : -2, last_fg = -2;  // -2: none yet
  for (index_t base = 0; base < n; base += 32) {
    const index_t x = base + lane;
    const bool valid = x < n;
    const bool inside = valid && fits && src[valid ? x : 0] == cls;
    const unsigned bg = __ballot_sync(kFullWarp, valid && !inside);
    const unsigned fgb = __ballot_sync(kFullWarp, inside);
    const unsigned other = (inside ? bg : fgb) & upto;
    const index_t carry = inside ? last_bg : last_fg;
    const index_t left = other ? base + 31 - __clz(other) : carry;
    if (valid) out[x] = T(left == -2 ? inf : double(x - left));
    if (bg) last_bg = base + 31 - __clz(bg);
    if (fgb) last_fg = base + 31 - __clz(fgb);
  }
  index_t next_bg = black_border ? n : -2, next_fg = -2;
  for (index_t base = (n - 1) / 32 * 32; base >= 0; base -= 32) {
    const index_t x = base + lane;
    const bool valid = x < n;
    const bool inside = valid && fits && src[valid ? x : 0] == cls;
    const unsigned bg = __ballot_sync(kFullWarp, valid && !inside);
    const unsigned fgb = __ballot_sync(kFullWarp, inside);
    const unsigned other = (inside ? bg : fgb) & from;
    const index_t carry = inside ? next_bg : next_fg;
    const index_t right = other ? base + __ffs(other) - 1 : carry;
    if (valid) {
      const double l = double(out[x]), r = right == -2 ? inf : double(right - x);
      const double d = l < r ? l : r;
      const double g = inside || two_sided ? w * d * d : 0.0;
      store(out + x, g, inside, fin);
    }
    if (bg) next_bg = base + __ffs(bg) - 1;
    if (fgb) next_fg = base + __ffs(fgb) - 1;
  }
}

// The envelope pass of envelope_line() on one line computed directly as
//   g'(x) = min over y of cost(y) + w (x - y)^2,  cost(y) = |in[y]| for y of x's class, else 0
// (the class is the sign bit), over growing offsets k = |x - y| until w k^2 >= the minimum so
// far, up to kWindowReach + 1; with black_border the positions -1 and n are zero-cost sites of
// the foreground. Reads straight from `in` (adjacent threads on adjacent lines: coalesced).
// Decides by its results: returns false when some element's minimum may come from a farther
// site (the offsets stopped at the reach, not at the minimum); the line's `out` is then to be
// recomputed.
constexpr index_t kWindowReach = 8;

template <typename T>
GD_HD bool window_line(const T* in, index_t in_stride, T* out, index_t out_stride, index_t n,
                       double w, bool black_border, const Finalize* fin) {
  bool done = true;
  const index_t reach = n - 1 < kWindowReach + 1 ? n - 1 : kWindowReach + 1;
  for (index_t x = 0; x < n; ++x) {
    const T c = in[x * in_stride];
    const bool inside = is_inside(c);
    double d = fabs(double(c));
    if (black_border && inside) {
      const double left = double(x + 1), right = double(n - x);
      const double b = w * (left < right ? left * left : right * right);
      d = b < d ? b : d;
    }
    index_t k = 1;
    for (; k <= reach; ++k) {
      const double wk = w * double(k) * double(k);
      if (!(wk < d)) break;
      if (x >= k) {
        const T y = in[(x - k) * in_stride];
        const double cost = (is_inside(y) == inside ? fabs(double(y)) : 0.0) + wk;
        d = cost < d ? cost : d;
      }
      if (x + k < n) {
        const T y = in[(x + k) * in_stride];
        const double cost = (is_inside(y) == inside ? fabs(double(y)) : 0.0) + wk;
        d = cost < d ? cost : d;
      }
    }
    // Stopped by the reach: exact only if no farther offset can be below d.
    if (k > reach && reach < n - 1 && w * double(k) * double(k) < d) done = false;
    store(out + x * out_stride, d, inside, fin);
  }
  return done;
}

// Whether the parabola rooted at q (cost fq) takes over from the one at p before the one at p
// took over from the one at r (r < p < q): meet(p, q) > meet(r, p), the push test of
// lower_envelope(). `integral`: w == 1, integer costs below 2^32 and roots below 2^16, where the
// test is made without division, in integer-valued double arithmetic that is exact (numerator
// times the other's denominator: products below 2^50).
GD_HD bool takes_over_later(index_t r, double fr, index_t p, double fp, index_t q, double fq,
                            double w, bool integral) {
  if (integral) {
    const double a = (fq + double(q) * double(q)) - (fp + double(p) * double(p));
    const double b = (fp + double(p) * double(p)) - (fr + double(r) * double(r));
    return a * double(p - r) > b * double(q - p);
  }
  return meet(p, fp, q, fq, w) > meet(r, fr, p, fp, w);
}

// Whether the parabola at q (cost fq) is below the one at p < q from some x' < x on: meet < x.
GD_HD bool took_over_before(index_t p, double fp, index_t q, double fq, double x, double w,
                            bool integral) {
  if (integral)
    return (fq + double(q) * double(q)) - (fp + double(p) * double(p)) <
           2.0 * x * double(q - p);
  return meet(p, fp, q, fq, w) < x;
}

// lower_envelope() with the packed stack `s` (stride ss): the same sites, tests and values.
template <typename T>
GD_HD void lower_envelope_packed(const T* in, index_t in_stride, T* out, index_t out_stride,
                                 index_t n, double w, bool targets_inside, bool border_sites,
                                 bool zero_others, Site<T>* s, index_t ss, const Finalize* fin) {
  const double inf = inf_value();
  bool integral = w == 1.0 && n < (index_t(1) << 16);  // see takes_over_later()
  index_t k = -1;
  auto push = [&](index_t q, double fq) {
    integral = integral && fq < 4294967296.0 && fq == floor(fq);
    while (k > 0) {
      const Site<T> top = s[k * ss], below = s[(k - 1) * ss];
      if (takes_over_later(below.v, double(below.f), top.v, double(top.f), q, fq, w, integral))
        break;
      --k;
    }
    ++k;
    s[k * ss] = Site<T>{T(fq), int(q)};
  };
  if (border_sites) push(-1, 0.0);
  bool any_target = false;
  bool prev = !border_sites;
  bool cur = n > 0 && is_inside(in[0]) == targets_inside;
  for (index_t q = 0; q < n; ++q) {
    const bool next = q + 1 < n ? is_inside(in[(q + 1) * in_stride]) == targets_inside
                                : !border_sites;
    any_target |= cur;
    if (cur) {
      const double fq = fabs(double(in[q * in_stride]));
      if (!isinf(fq)) push(q, fq);
    } else if (prev || next) {
      push(q, 0.0);
    }
    prev = cur;
    cur = next;
  }
  if (border_sites) push(n, 0.0);
  if (!any_target && !zero_others) return;

  index_t j = 0;
  Site<T> at = k >= 0 ? s[0] : Site<T>{T(0), 0};
  for (index_t x = 0; x < n; ++x) {
    const bool inside = is_inside(in[x * in_stride]);
    if (inside != targets_inside) {
      if (zero_others) store(out + x * out_stride, 0.0, inside, fin);
      continue;
    }
    double g = inf;
    if (k >= 0) {
      while (j < k) {
        const Site<T> after = s[(j + 1) * ss];
        if (!took_over_before(at.v, double(at.f), after.v, double(after.f), double(x), w,
                              integral))
          break;
        ++j;
        at = after;
      }
      const double dx = double(x - at.v);
      g = double(at.f) + w * dx * dx;
    }
    store(out + x * out_stride, g, inside, fin);
  }
}

#endif  // device code

}  // namespace gpudist
