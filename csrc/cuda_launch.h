// gpudist: launch sizing shared by the CUDA launchers (nvcc only): what the device holds at once
// and what memory is free, asked of the device (no host sync).
#pragma once

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>

#include "kernels/edt_line.cuh"

namespace gpudist {

// Threads of `kernel`, in blocks of `block`, the device holds at once: multiprocessors * the
// blocks per multiprocessor of the occupancy API (registers and shared memory counted) * block.
template <typename Kernel>
index_t resident_threads(int device, Kernel kernel, int block) {
  int sms = 0, per_sm = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &per_sm, reinterpret_cast<const void*>(kernel), block, 0));
  return index_t(sms) * (per_sm > 0 ? per_sm : 1) * block;
}

// Device memory a new allocation can get: free on the device plus what torch's caching allocator
// holds unused.
inline index_t free_device_bytes(int device) {
  size_t free = 0, total = 0;
  C10_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  // [0]: the aggregate of every pool (StatType::AGGREGATE)
  const int64_t cached = stats.reserved_bytes[0].current - stats.allocated_bytes[0].current;
  return index_t(free) + (cached > 0 ? cached : 0);
}

}  // namespace gpudist
