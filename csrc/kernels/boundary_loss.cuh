// gpudist: the per-voxel arithmetic of the fused boundary loss from logits.
//
// For logits z and level-set maps phi of shape (B, C, S) (S voxels per class plane, read at
// class stride S), the softmax p_k = exp(z_k - m) / sum_c exp(z_c - m), m = max_c z_c, and a class
// subset idc (in_idc[k] true for k in idc: C flags, or a ClassMask), the loss of sample b is
//     l_b = sum_{v} dot_v / N,   dot_v = sum_{k in idc} p_kv phi_kv,   N = |idc| * S,
// and its gradient with respect to the logits, for an incoming gradient g_b and scale = g_b / N, is
//     dl/dz_kv = scale * p_kv (phi_kv [k in idc] - dot_v).
// The softmax is recomputed wherever it is needed; nothing of size (B, C, S) is kept.
//
// Like edt_line.cuh, plain C++ / CUDA C with no torch header: the CPU extension runs these
// functions on kLanes = 16 adjacent voxels at once (vectorised across them), the CUDA kernels
// (boundary_loss_kernels.cu) on one voxel per thread. Accumulation is in T (float32 or float64).
#pragma once

#include "edt_line.cuh"

#if !defined(__CUDACC_RTC__)
#include <cstring>
#endif

namespace gpudist {

#if !defined(__CUDACC__) && !defined(__CUDACC_RTC__)
using std::exp;
#endif

// The class subset of at most 64 classes as a bit mask, bit k for class k: passed by value as a
// kernel argument, so that a launch needs no flags in device memory (nothing copied per call,
// safe under CUDA graph capture).
struct ClassMask {
  unsigned long long bits;
  GD_HD bool operator[](index_t c) const { return (bits >> c) & 1ull; }
};
constexpr index_t kMaskClasses = 64;

// exp(x) for the shifted logits x = z - m <= 0 of a softmax, in float32 within 2 ulp: Cody-Waite
// range reduction x = n ln2 + r, a degree-6 polynomial on r (Cephes' expf), then 2^n from the
// exponent bits. Branch free (selects only, written so that gcc if-converts them), so that the
// CPU loops vectorise it, which std::exp does not. x < -87 gives 0 (exp(-87) = 1.6e-38, at the
// bottom of float32's normal range; a softmax loses nothing to it); NaN stays NaN (it fails both
// clamps' comparisons: n = -127, r = NaN).
GD_HD float softmax_exp(float x) {
  const float xc = x < -87.0f ? -87.0f : x;
  const float t = xc * 1.44269504088896341f - 0.5f;
  const int n = int(t > -127.0f ? t : -127.0f);  // round to nearest for xc <= 0: n in [-126, 0]
  const float fn = float(n);
  const float r = (xc - fn * 0.693359375f) - fn * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  const int bits = (n + 127) << 23;  // 2^n
#if defined(__CUDA_ARCH__) || defined(__CUDACC_RTC__)  // device code
  const float pow2n = __int_as_float(bits);
#else
  float pow2n;
  std::memcpy(&pow2n, &bits, sizeof pow2n);
#endif
  return x < -87.0f ? 0.0f : y * pow2n;
}
GD_HD double softmax_exp(double x) { return exp(x); }

// Softmax sums of kLanes adjacent voxels: m (max logit), total (sum_c exp(z_c - m)) and dot
// (sum_{k in idc} exp(z_k - m) phi_k), per lane. z and phi point at class 0 of the first voxel.
// With kKeep, each exp(z_c - m) is also written to `keep` (z's layout) for a second use.
template <int kLanes, bool kKeep, typename T, typename Idc>
GD_HD void softmax_sums(const T* z, const T* phi, index_t stride, index_t classes, Idc in_idc,
                        T* m, T* total, T* dot, T* keep) {
  GD_SIMD for (int l = 0; l < kLanes; ++l) m[l] = z[l];
  for (index_t c = 1; c < classes; ++c) {
    const T* zc = z + c * stride;
    GD_SIMD for (int l = 0; l < kLanes; ++l) m[l] = zc[l] > m[l] ? zc[l] : m[l];
  }
  GD_SIMD for (int l = 0; l < kLanes; ++l) total[l] = dot[l] = T(0);
  for (index_t c = 0; c < classes; ++c) {
    const T* zc = z + c * stride;
    const T* pc = phi + c * stride;
    if (in_idc[c]) {
      GD_SIMD for (int l = 0; l < kLanes; ++l) {
        const T e = softmax_exp(zc[l] - m[l]);
        if (kKeep) keep[c * stride + l] = e;
        total[l] += e;
        dot[l] += e * pc[l];
      }
    } else {
      GD_SIMD for (int l = 0; l < kLanes; ++l) {
        const T e = softmax_exp(zc[l] - m[l]);
        if (kKeep) keep[c * stride + l] = e;
        total[l] += e;
      }
    }
  }
}

// The loss terms dot_v (before the division by N) of the kLanes voxels, written to `terms`.
template <int kLanes, typename T, typename Idc>
GD_HD void boundary_terms(const T* z, const T* phi, index_t stride, index_t classes, Idc in_idc,
                          T* terms) {
  T m[kLanes], total[kLanes];
  softmax_sums<kLanes, false>(z, phi, stride, classes, in_idc, m, total, terms,
                              static_cast<T*>(nullptr));
  GD_SIMD for (int l = 0; l < kLanes; ++l) terms[l] /= total[l];
}

// dl/dz of the kLanes voxels, written to grad (the layout of z): scale * p_k (phi_k [k in idc] -
// dot). kKeep parks the exps in grad between the two loops (the CPU: they stay in cache) instead
// of computing them twice (CUDA: a second global-memory round trip would cost more).
template <int kLanes, bool kKeep, typename T, typename Idc>
GD_HD void boundary_grad(const T* z, const T* phi, index_t stride, index_t classes, Idc in_idc,
                         T scale, T* grad) {
  T m[kLanes], total[kLanes], dot[kLanes];
  softmax_sums<kLanes, kKeep>(z, phi, stride, classes, in_idc, m, total, dot, grad);
  T s[kLanes];  // total becomes scale / total
  GD_SIMD for (int l = 0; l < kLanes; ++l) {
    s[l] = dot[l] / total[l];
    total[l] = scale / total[l];
  }
  for (index_t c = 0; c < classes; ++c) {
    const T* zc = z + c * stride;
    const T* pc = phi + c * stride;
    T* gc = grad + c * stride;
    if (in_idc[c]) {
      GD_SIMD for (int l = 0; l < kLanes; ++l)
        gc[l] = (kKeep ? gc[l] : softmax_exp(zc[l] - m[l])) * total[l] * (pc[l] - s[l]);
    } else {
      GD_SIMD for (int l = 0; l < kLanes; ++l)
        gc[l] = -((kKeep ? gc[l] : softmax_exp(zc[l] - m[l])) * total[l] * s[l]);
    }
  }
}

}  // namespace gpudist
