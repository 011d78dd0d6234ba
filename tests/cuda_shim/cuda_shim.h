// CPU stand-ins for the CUDA C keywords and built-ins the kernels use, so that g++ builds its
// kernels as plain functions. The host driver (tests/test_cuda_source.py) sets blockIdx/threadIdx
// and calls a kernel once per thread of the grid. The kernels use no shared memory or barriers, so
// running the threads one after another is a valid schedule.
#pragma once

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct gd_dim3 {
  unsigned x, y, z;
};
extern "C" {
inline gd_dim3 blockIdx{0, 0, 0}, threadIdx{0, 0, 0}, blockDim{1, 1, 1}, gridDim{1, 1, 1};
}
