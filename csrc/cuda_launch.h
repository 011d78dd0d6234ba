// gpudist: what the CUDA launchers share (nvcc only): launch sizing (what the device holds at
// once and what memory is free, asked of the device, no host sync) and the per-item spacing
// table the kernels read.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>

#include <vector>

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

// The kernels' per-item spacing table (LineSpacing, kernels/edt_line.cuh) on like's device: per
// row r its nd per-axis values (values[r * nd ...]), then fins[r]'s scale and shift. One row (a
// shared spacing) needs none: an undefined tensor, no host-to-device copy, so that the launches
// can be captured in a CUDA graph. gpudist/backends/cupy_nvrtc.py's spacing_table is its twin.
inline at::Tensor line_spacing_table(const std::vector<double>& values,
                                     const std::vector<Finalize>& fins, const at::Tensor& like) {
  if (fins.size() <= 1) return at::Tensor();
  const size_t nd = values.size() / fins.size();
  std::vector<double> table;
  for (size_t r = 0; r < fins.size(); ++r) {
    table.insert(table.end(), values.begin() + r * nd, values.begin() + (r + 1) * nd);
    table.push_back(fins[r].scale);
    table.push_back(fins[r].shift);
  }
  return at::tensor(table, at::dtype(at::kDouble)).to(like.device());
}

// The LineSpacing of one launch over `lines` lines (or values) of `rows` rows' items, nd spatial
// dims, along `axis`, reading `table` (line_spacing_table; undefined: no table).
inline LineSpacing line_spacing(const at::Tensor& table, index_t rows, index_t nd, index_t lines,
                                index_t axis) {
  return {table.defined() ? table.const_data_ptr<double>() : nullptr, lines / rows, nd + 2,
          axis};
}

}  // namespace gpudist
