// gpudist: CUDA kernels of the fused boundary loss from logits (the arithmetic is
// boundary_loss.cuh's, one voxel per thread). Plain CUDA C, compiled by nvcc into the extension
// (csrc/boundary_loss_cuda.cu includes this file); no shared memory or barriers.
//
// Layout: logits z, maps phi and the gradient are (samples, classes, voxels), contiguous. The
// class subset comes as a ClassMask argument (gd_boundary_*_f32/f64: at most 64 classes) or as
// `classes` flags in device memory (gd_boundary_*_flags_*: any number of classes); either way
// nothing is copied from the host per call. Adjacent threads take adjacent voxels, so every
// access coalesces.
#include "boundary_loss.cuh"

namespace gpudist {

// Per-thread partial sums of the loss terms: thread t of the x grid (slots threads) adds the terms
// dot_v of voxels v = t, t + slots, ... of each sample b = blockIdx.y, blockIdx.y + gridDim.y, ...
// and writes them to partial[b * slots + t]; the launcher sums them per sample (in a fixed order,
// so the result is deterministic) and divides by N.
template <typename T, typename Idc>
__device__ void boundary_forward(const T* z, const T* phi, Idc in_idc, index_t classes,
                                 index_t voxels, index_t samples, index_t slots,
                                 double* partial) {
  const index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= slots) return;
  for (index_t b = blockIdx.y; b < samples; b += gridDim.y) {
    const index_t base = b * classes * voxels;
    double sum = 0.0;
    for (index_t v = t; v < voxels; v += slots) {
      T term;
      boundary_terms<1>(z + base + v, phi + base + v, voxels, classes, in_idc, &term);
      sum += term;
    }
    partial[b * slots + t] = sum;
  }
}

// dl/dz of every voxel (grid-stride over samples * voxels), scale[b] = g_b / N.
template <typename T, typename Idc>
__device__ void boundary_backward(const T* z, const T* phi, Idc in_idc, index_t classes,
                                  index_t voxels, index_t samples, const T* scale, T* grad) {
  const index_t threads = index_t(gridDim.x) * blockDim.x;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < samples * voxels;
       i += threads) {
    const index_t b = i / voxels, base = b * classes * voxels + i % voxels;
    boundary_grad<1, false>(z + base, phi + base, voxels, classes, in_idc, scale[b], grad + base);
  }
}

}  // namespace gpudist

#define GD_BOUNDARY(SUFFIX, T, IDC)                                                             \
  extern "C" __global__ void gd_boundary_forward_##SUFFIX(                                     \
      const T* z, const T* phi, IDC in_idc, long long classes, long long voxels,               \
      long long samples, long long slots, double* partial) {                                   \
    gpudist::boundary_forward(z, phi, in_idc, classes, voxels, samples, slots, partial);       \
  }                                                                                             \
  extern "C" __global__ void gd_boundary_backward_##SUFFIX(                                    \
      const T* z, const T* phi, IDC in_idc, long long classes, long long voxels,               \
      long long samples, const T* scale, T* grad) {                                            \
    gpudist::boundary_backward(z, phi, in_idc, classes, voxels, samples, scale, grad);         \
  }
GD_BOUNDARY(f32, float, gpudist::ClassMask)
GD_BOUNDARY(f64, double, gpudist::ClassMask)
GD_BOUNDARY(flags_f32, float, const unsigned char*)
GD_BOUNDARY(flags_f64, double, const unsigned char*)
#undef GD_BOUNDARY
