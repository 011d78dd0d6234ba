// gpudist: the CUDA launch plan of gpudist::distance_transform, written once. The extension's
// launcher (distance_transform_cuda.cu) runs it; the CuPy backend (gpudist/backends/cupy_nvrtc.py)
// reads it through the host-only op gpudist::cuda_launch_plan. Plain C++: no torch or CUDA header.
//
// Pass 0 (kernel gd_first_pass_*) runs along the last axis, one thread per line; passes 1 .. nd-1
// (gd_envelope_*) along axes nd-2 .. 0, each thread working through lines of a strided axis with
// its own slice of one shared scratch buffer; the last pass finalizes inline. The passes alternate
// between the output and a temporary of its size, so that the last one writes the output.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kernels/edt_line.cuh"

namespace gpudist {

constexpr index_t kCudaBlock = 128;                      // threads per block of the EDT kernels
constexpr index_t kCudaScratchBytes = index_t(1) << 30;  // cap on the envelope scratch

enum PlanBuffer { kBufferSrc = 0, kBufferOut = 1, kBufferTmp = 2 };

// One kernel launch over the lines of one axis of the whole batch.
struct PassLaunch {
  index_t axis;      // the spatial axis the lines run along
  index_t n;         // elements per line
  index_t inner;     // elements after the axis: the stride of a line (1 for pass 0)
  index_t outer;     // rows of n * inner elements per item
  index_t lines;     // lines of the whole batch
  index_t slots;     // threads that work: the first `slots` of the grid
  index_t blocks;    // blocks of kCudaBlock threads
  index_t in, out;   // PlanBuffer read and written
  index_t finalize;  // 1 on the last pass: it writes the convention's values
};
constexpr int kPassFields = 10;

struct CudaPlan {
  index_t block = kCudaBlock;
  index_t scratch_words = 0;  // 8-byte words of envelope scratch (the largest pass's)
  std::vector<PassLaunch> passes;
};

// Threads that work on `lines` lines on a device holding `resident` threads at once, each with
// `words` scratch words (0: none): no more than the lines, the resident threads or the scratch
// budget allow, and at least one.
inline index_t launch_slots(index_t lines, index_t resident, index_t words,
                            index_t scratch_bytes) {
  index_t slots = lines < resident ? lines : resident;
  if (words > 0) {
    const index_t budget = scratch_bytes / (8 * words);
    slots = slots < budget ? slots : budget;
  }
  return slots > 0 ? slots : 1;
}

// The plan for `items` items of the given spatial extents (all > 0).
inline CudaPlan cuda_launch_plan(const std::vector<index_t>& shape, index_t items,
                                 index_t resident, index_t scratch_bytes) {
  const index_t nd = index_t(shape.size());
  index_t volume = 1;
  for (index_t s : shape) volume *= s;
  CudaPlan plan;
  auto buffer = [&](index_t pass) { return (nd - 1 - pass) % 2 == 0 ? kBufferOut : kBufferTmp; };
  for (index_t pass = 0; pass < nd; ++pass) {
    const index_t axis = nd - 1 - pass;
    const index_t n = shape[axis];
    index_t inner = 1;
    for (index_t b = axis + 1; b < nd; ++b) inner *= shape[b];
    const index_t words = pass == 0 ? 0 : envelope_words(n);
    PassLaunch launch{};
    launch.axis = axis;
    launch.n = n;
    launch.inner = inner;
    launch.outer = volume / (n * inner);
    launch.lines = items * (volume / n);
    launch.slots = launch_slots(launch.lines, resident, words, scratch_bytes);
    launch.blocks = (launch.slots + plan.block - 1) / plan.block;
    launch.in = pass == 0 ? kBufferSrc : buffer(pass - 1);
    launch.out = buffer(pass);
    launch.finalize = pass == nd - 1;
    if (words * launch.slots > plan.scratch_words) plan.scratch_words = words * launch.slots;
    plan.passes.push_back(launch);
  }
  return plan;
}

// The plan as integers, for the op gpudist::cuda_launch_plan: block, scratch_words, the number of
// passes, then kPassFields values per pass in PassLaunch's order. No scratch_bytes: the cap.
inline std::vector<int64_t> cuda_launch_plan_flat(std::vector<int64_t> spatial, int64_t items,
                                                  int64_t resident,
                                                  std::optional<int64_t> scratch_bytes) {
  const CudaPlan plan = cuda_launch_plan(std::vector<index_t>(spatial.begin(), spatial.end()),
                                         items, resident,
                                         scratch_bytes.value_or(kCudaScratchBytes));
  std::vector<int64_t> flat = {plan.block, plan.scratch_words, int64_t(plan.passes.size())};
  for (const PassLaunch& p : plan.passes)
    flat.insert(flat.end(), {p.axis, p.n, p.inner, p.outer, p.lines, p.slots, p.blocks, p.in,
                             p.out, p.finalize});
  return flat;
}

}  // namespace gpudist
