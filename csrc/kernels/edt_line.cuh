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
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GD_HD __host__ __device__ __forceinline__
#else
#include <cmath>
#define GD_HD inline
#endif

namespace gpudist {

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
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
  return isinf(d) ? T(0) : v;  // infinite: the sample has a single class, no boundary
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

// First pass over kLanes adjacent lines of n elements in lockstep (element x of lane j at
// x * stride + j), so that a CPU vectorises across lanes; the GPU runs one lane per thread.
// Element x belongs to the foreground when src[x * src_stride] == fg (a mask holds 0/1 with fg = 1;
// labels hold class indices). With black_border the positions -1 and n are background.
// w = spacing^2 of this axis. Writes n values per lane to out[x * out_stride]. The loops blend
// with 0/1 factors instead of branching (that is what lets them vectorise); "none seen yet" is the
// finite kNone, whose square overflows to +inf.
template <int kLanes, typename L, typename T>
GD_HD void first_pass_lanes(const L* __restrict__ src, index_t src_stride, index_t fg,
                            T* __restrict__ out, index_t out_stride, index_t n, double w,
                            bool two_sided, bool black_border) {
  const double kNone = 1e300;
  const double other_class = two_sided ? 1.0 : 0.0;  // one-sided: background elements get 0
  const L fg_l = L(fg);  // compared in L, which vectorises; a class L cannot hold is absent
  const double fits = index_t(fg_l) == fg;
  // Forward sweep: distance (in elements) to the nearest element of the other class on the left,
  // from one counter per class of the elements since that class was last seen.
  double since_bg[kLanes], since_fg[kLanes];
  for (int j = 0; j < kLanes; ++j) {
    since_bg[j] = black_border ? 0.0 : kNone;
    since_fg[j] = kNone;
  }
  for (index_t x = 0; x < n; ++x) {
    const L* s = src + x * src_stride;
    T* o = out + x * out_stride;
    for (int j = 0; j < kLanes; ++j) {
      const double inside = double(s[j] == fg_l) * fits;
      const double bg = since_bg[j] + 1.0, fg_ = since_fg[j] + 1.0;
      o[j] = T(inside * bg + (1.0 - inside) * fg_);
      since_bg[j] = inside * bg;
      since_fg[j] = (1.0 - inside) * fg_;
    }
  }
  // Backward sweep: the same on the right, then the square of the nearer one, signed.
  for (int j = 0; j < kLanes; ++j) {
    since_bg[j] = black_border ? 0.0 : kNone;
    since_fg[j] = kNone;
  }
  for (index_t x = n - 1; x >= 0; --x) {
    const L* s = src + x * src_stride;
    T* o = out + x * out_stride;
    for (int j = 0; j < kLanes; ++j) {
      const double inside = double(s[j] == fg_l) * fits;
      const double bg = since_bg[j] + 1.0, fg_ = since_fg[j] + 1.0;
      const double right = inside * bg + (1.0 - inside) * fg_;
      since_bg[j] = inside * bg;
      since_fg[j] = (1.0 - inside) * fg_;
      const double left = double(o[j]);
      const double d = (left < right ? left : right) * (inside + (1.0 - inside) * other_class);
      o[j] = T(w * d * d * (1.0 - 2.0 * inside));
    }
  }
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

}  // namespace gpudist
