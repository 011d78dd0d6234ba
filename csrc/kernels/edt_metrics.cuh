// gpudist: the per-line algorithm of the exact taxicab (L1) and chessboard (L-infinity) distance
// transforms with spacing (scipy's distance_transform_cdt metrics, MONAI's distance_metric):
//
//   taxicab:    d(x) = min over background y of  sum_a   h_a |x_a - y_a|
//   chessboard: d(x) = min over background y of  max_a   h_a |x_a - y_a|
//
// Both are separable like the Euclidean transform (edt_line.cuh), with a different 1-D step:
// after a first pass (h times the 1-D distance to the nearest background element, 0 on the
// background, +inf when a line has none), each pass along an axis of spacing h computes
//
//   taxicab:    g'(x) = min over y of  g(y) + h |x - y|       (min-plus with a cone: two sweeps)
//   chessboard: g'(x) = min over y of  max(g(y), h |x - y|)   (min-max: a lower envelope of
//               flat-bottomed cones, Meijster, Roerdink & Hesselink 2000, with real values).
//
// Values are distances (not squared), in physical units, no sign bit; with black_border the
// positions -1 and n are background (zero-cost sites).
//
// Users: csrc/distance_transform/metric_cpu.cpp. Mirror: gpudist/backends/numba_cpu.py
// (_metric_*); tests compare both with scipy.ndimage.distance_transform_cdt and brute force.
#pragma once

#include "edt_line.cuh"

namespace gpudist {

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
using std::ceil;
#endif

enum Metric {
  kTaxicab = 1,
  kChessboard = 2,
};

// First pass along one line: h d, d the 1-D distance (in elements) from each foreground element
// (mask != 0) to the nearest background element; 0 on the background; +inf with none.
template <typename L, typename T>
GD_HD void metric_first_pass_line(const L* src, index_t src_stride, T* out, index_t out_stride,
                                  index_t n, double h, bool black_border) {
  const double inf = inf_value();
  double since = black_border ? 0.0 : inf;  // elements since the last background, on the left
  for (index_t x = 0; x < n; ++x) {
    since = src[x * src_stride] ? since + 1.0 : 0.0;
    out[x * out_stride] = T(since);
  }
  since = black_border ? 0.0 : inf;
  for (index_t x = n - 1; x >= 0; --x) {
    since = src[x * src_stride] ? since + 1.0 : 0.0;
    const double left = double(out[x * out_stride]);
    const double d = left < since ? left : since;
    out[x * out_stride] = T(isinf(d) ? inf : h * d);
  }
}

// Taxicab pass along one line, in place: g'(x) = min(g(x), g(x -+ 1) + h), forward then back.
template <typename T>
GD_HD void taxicab_line(T* line, index_t stride, index_t n, double h, bool black_border) {
  double prev = black_border ? 0.0 : inf_value();
  for (index_t x = 0; x < n; ++x) {
    const double g = double(line[x * stride]), c = prev + h;
    prev = c < g ? c : g;
    line[x * stride] = T(prev);
  }
  prev = black_border ? 0.0 : inf_value();
  for (index_t x = n - 1; x >= 0; --x) {
    const double g = double(line[x * stride]), c = prev + h;
    prev = c < g ? c : g;
    line[x * stride] = T(prev);
  }
}

// max(g, h |x - y|): the cost at x of the site y of cost g.
GD_HD double cone(index_t x, index_t y, double g, double h) {
  const double d = h * double(x > y ? x - y : y - x);
  return d > g ? d : g;
}

// The first x > after at which the site u (cost gu) costs no more than the site i < u (cost gi):
// the set of such x is an interval up to +inf starting at max(i + gu/h, (i+u)/2) when gi <= gu,
// else at min(u - gi/h, (i+u)/2); the rounded start is then corrected by evaluating both costs.
GD_HD index_t cone_takeover(index_t i, double gi, index_t u, double gu, double h, index_t after,
                            index_t n) {
  const double mid = 0.5 * double(i + u);
  double start;
  if (gi <= gu) {
    const double a = double(i) + gu / h;
    start = a > mid ? a : mid;
  } else {
    const double a = double(u) - gi / h;
    start = a < mid ? a : mid;
  }
  if (!(start < double(n))) return n;  // also +inf costs
  index_t c = start > double(after + 1) ? index_t(ceil(start)) : after + 1;
  while (c - 1 > after && cone(c - 1, u, gu, h) <= cone(c - 1, i, gi, h)) --c;
  while (c < n && cone(c, u, gu, h) > cone(c, i, gi, h)) ++c;
  return c;
}

// Chessboard pass along one line: out[x] = min over sites y of max(g(y), h |x - y|), the lower
// envelope of the sites' cones (each site is lowest on one interval, as its cone lies below an
// earlier site's on an interval up to +inf). Scratch s (sites), gs (their costs), t (where
// each takes over): n + 2 values each, at stride ss.
// `in` and `out` may be the same line (every site is read before any output is written).
template <typename T>
GD_HD void chessboard_line(const T* in, index_t in_stride, T* out, index_t out_stride, index_t n,
                           double h, bool black_border, index_t* s, double* gs, index_t* t,
                           index_t ss) {
  const double inf = inf_value();
  index_t q = -1;
  auto push = [&](index_t u, double gu) {
    while (q >= 0 && cone(t[q * ss], s[q * ss], gs[q * ss], h) >= cone(t[q * ss], u, gu, h))
      --q;
    if (q < 0) {
      q = 0;
      s[0] = u;
      gs[0] = gu;
      t[0] = 0;
      return;
    }
    const index_t c = cone_takeover(s[q * ss], gs[q * ss], u, gu, h, t[q * ss], n);
    if (c < n) {
      ++q;
      s[q * ss] = u;
      gs[q * ss] = gu;
      t[q * ss] = c;
    }
  };
  if (black_border) push(-1, 0.0);
  for (index_t y = 0; y < n; ++y) {
    const double g = double(in[y * in_stride]);
    if (!isinf(g)) push(y, g);
  }
  if (black_border) push(n, 0.0);
  index_t j = 0;
  for (index_t x = 0; x < n; ++x) {
    if (q < 0) {
      out[x * out_stride] = T(inf);
      continue;
    }
    while (j < q && t[(j + 1) * ss] <= x) ++j;
    out[x * out_stride] = T(cone(x, s[j * ss], gs[j * ss], h));
  }
}

}  // namespace gpudist
