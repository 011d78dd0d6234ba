// gpudist: the per-line algorithm of the Euclidean feature transform (scipy's
// distance_transform_edt(..., return_indices=True)): with the squared distance of each element,
// the flat index (within its item) of a nearest background element.
//
// The passes of edt_line.cuh with the argmin carried along: the first pass along axis 0 keeps
// the nearer of the background elements to the left and right on the line; each envelope pass
// keeps, for each foreground element, the feature of the site whose parabola wins (a background
// site is its own feature). Ties: the first pass takes the left one; an envelope pass the site of
// the lowest index (at an intersection the earlier parabola stays). Values are squared distances
// >= 0 in pass units (no sign bit: the mask says which elements are background); features are -1
// where a line (and so far every line before) has no background, and stay -1 in an item without
// background. No black_border: a feature is an element of the array.
//
// Users: csrc/distance_transform/features_cpu.cpp. Mirror: gpudist/backends/numba_cpu.py
// (_feature_*); tests compare both with scipy and with brute force.
#pragma once

#include "edt_multilabel.cuh"  // envelope_push

namespace gpudist {

// First pass along one line of an item: for each element x (at flat index base + x * stride),
// g = w d^2 and the flat index of the nearest background element on the line.
template <typename L, typename T>
GD_HD void feature_first_pass_line(const L* src, index_t src_stride, T* out, long long* feat,
                                   index_t stride, index_t base, index_t n, double w) {
  const double inf = inf_value();
  index_t last = -1;  // the last background position on the left
  for (index_t x = 0; x < n; ++x) {
    if (!src[x * src_stride]) last = x;
    feat[x * stride] = last;  // a position for now
  }
  index_t next = -1;  // the first background position on the right
  for (index_t x = n - 1; x >= 0; --x) {
    if (!src[x * src_stride]) next = x;
    const index_t left = feat[x * stride];
    index_t y = left;
    if (next >= 0 && (left < 0 || next - x < x - left)) y = next;
    const double d = double(x - y);
    out[x * stride] = T(y < 0 ? inf : w * d * d);
    feat[x * stride] = y < 0 ? -1 : base + y * stride;
  }
}

// An envelope pass along one line, in place: for each foreground element the lower envelope of
// the parabolas of every site (foreground elements with a finite value, at their cost; background
// elements at cost 0), with the winning site's feature. Scratch f, v, z, fe: n values each, at
// stride ss.
template <typename L, typename T>
GD_HD void feature_envelope_line(const L* src, index_t src_stride, T* out, long long* feat,
                                 index_t stride, index_t base, index_t n, double w, double* f,
                                 index_t* v, double* z, long long* fe, index_t ss) {
  const double inf = inf_value();
  index_t k = -1;
  for (index_t q = 0; q < n; ++q) {
    const bool fg = src[q * src_stride] != 0;
    const double fq = fg ? double(out[q * stride]) : 0.0;
    if (isinf(fq)) continue;
    k = envelope_push(k, q, fq, w, f, v, z, ss);
    fe[k * ss] = fg ? feat[q * stride] : base + q * stride;
  }
  index_t j = 0;
  double next_z = k > 0 ? z[ss] : inf;
  for (index_t x = 0; x < n; ++x) {
    if (!src[x * src_stride]) {
      out[x * stride] = T(0);
      feat[x * stride] = base + x * stride;
      continue;
    }
    if (k < 0) continue;  // no site: stays +inf, -1
    while (next_z < double(x)) {
      ++j;
      next_z = j < k ? z[(j + 1) * ss] : inf;
    }
    const double dx = double(x - v[j * ss]);
    out[x * stride] = T(f[j * ss] + w * dx * dx);
    feat[x * stride] = fe[j * ss];
  }
}

}  // namespace gpudist
