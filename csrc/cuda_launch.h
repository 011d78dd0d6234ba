// gpudist: launch sizing shared by the CUDA launchers (nvcc only).
#pragma once

#include <c10/cuda/CUDAException.h>

#include "kernels/edt_line.cuh"

namespace gpudist {

// Threads the device holds at once: multiprocessors * threads per multiprocessor.
inline index_t resident_threads(int device) {
  int sms = 0, per_sm = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxThreadsPerMultiProcessor, device));
  return index_t(sms) * per_sm;
}

}  // namespace gpudist
