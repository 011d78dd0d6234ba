// gpudist: the per-line algorithm of the multi-label Euclidean distance transform (seung-lab edt's
// default for integer labels): every element of a nonzero label gets its distance to the nearest
// element of a different label (label 0, the background, included); label-0 elements get 0.
//
// Separable like the two-class transform of edt_line.cuh, with runs of equal labels in place of
// the sign-bit classes: along each axis a line splits into maximal runs of one label. For an
// element x of a run [s, e), an element of another label costs 0 and the nearest ones are s - 1
// and e (any element beyond them is farther and costs at least as much: an element of x's label
// past s - 1 or e is farther than the zero-cost s - 1 or e between), so the envelope of a run has
// the sites y in [s, e) with their stored squared distance and zero-cost sites at s - 1 and e
// (at -1 and n only with black_border: the outside is then background). This is edt's boundary
// formulation (squared_edt_1d_parabolic_multi_seg). Values are squared distances >= 0 in pass
// units; the last pass finalizes them with finalize() (kEdt or kEdtSquared).
//
// Users: csrc/distance_transform/multilabel_cpu.cpp. Mirror: gpudist/backends/numba_cpu.py
// (_multilabel_*), tests compare both with edt.edt and with scipy per label.
#pragma once

#include "edt_line.cuh"

namespace gpudist {

// The end of the run of equal labels that starts at s (labels[x * stride] == labels[s * stride]
// for s <= x < end).
template <typename L>
GD_HD index_t run_end(const L* labels, index_t stride, index_t s, index_t n) {
  const L l = labels[s * stride];
  index_t e = s + 1;
  while (e < n && labels[e * stride] == l) ++e;
  return e;
}

// First pass along one line: w d^2, d the 1-D distance (in elements) to the nearest element of a
// different label, +inf when the line holds none (and no black_border); 0 for label 0.
template <typename L, typename T>
GD_HD void multilabel_first_pass_line(const L* labels, index_t label_stride, T* out,
                                      index_t out_stride, index_t n, double w, bool black_border,
                                      const Finalize* fin) {
  const double inf = inf_value();
  for (index_t s = 0; s < n;) {
    const index_t e = run_end(labels, label_stride, s, n);
    const bool zero = labels[s * label_stride] == L(0);
    for (index_t x = s; x < e; ++x) {
      const double left = s > 0 || black_border ? double(x - s + 1) : inf;
      const double right = e < n || black_border ? double(e - x) : inf;
      const double d = left < right ? left : right;
      store(out + x * out_stride, zero ? 0.0 : (isinf(d) ? inf : w * d * d), false, fin);
    }
    s = e;
  }
}

// Adds the parabola rooted at q (cost fq) to a lower envelope of k + 1 parabolas (roots v, costs
// f, starts z, stride ss), dropping those it hides everywhere they were lowest; returns the new k.
GD_HD index_t envelope_push(index_t k, index_t q, double fq, double w, double* f, index_t* v,
                            double* z, index_t ss) {
  const double inf = inf_value();
  double s = -inf;
  while (k >= 0) {
    s = meet(v[k * ss], f[k * ss], q, fq, w);
    if (s > z[k * ss]) break;
    --k;
  }
  if (k < 0) s = -inf;
  ++k;
  v[k * ss] = q;
  f[k * ss] = fq;
  z[k * ss] = s;
  return k;
}

// An envelope pass along one line, in place or not (a run's sites are all read before any of its
// elements is written): out[x] = min over the sites y of x's run of cost(y) + w (x - y)^2 (see
// the top of this file). Scratch f, v, z: n + 2 values each, stride ss.
template <typename L, typename T>
GD_HD void multilabel_envelope_line(const L* labels, index_t label_stride, const T* in,
                                    index_t in_stride, T* out, index_t out_stride, index_t n,
                                    double w, bool black_border, double* f, index_t* v,
                                    double* z, index_t ss, const Finalize* fin) {
  const double inf = inf_value();
  for (index_t s = 0; s < n;) {
    const index_t e = run_end(labels, label_stride, s, n);
    if (labels[s * label_stride] == L(0)) {
      for (index_t x = s; x < e; ++x) store(out + x * out_stride, 0.0, false, fin);
      s = e;
      continue;
    }
    index_t k = -1;
    if (s > 0 || black_border) k = envelope_push(k, s - 1, 0.0, w, f, v, z, ss);
    for (index_t q = s; q < e; ++q) {
      const double fq = double(in[q * in_stride]);
      if (!isinf(fq)) k = envelope_push(k, q, fq, w, f, v, z, ss);
    }
    if (e < n || black_border) k = envelope_push(k, e, 0.0, w, f, v, z, ss);
    index_t j = 0;
    double next_z = k > 0 ? z[ss] : inf;
    for (index_t x = s; x < e; ++x) {
      double g = inf;  // no site: the run fills the line, and so far every line before
      if (k >= 0) {
        while (next_z < double(x)) {
          ++j;
          next_z = j < k ? z[(j + 1) * ss] : inf;
        }
        const double dx = double(x - v[j * ss]);
        g = f[j * ss] + w * dx * dx;
      }
      store(out + x * out_stride, g, false, fin);
    }
    s = e;
  }
}

}  // namespace gpudist
