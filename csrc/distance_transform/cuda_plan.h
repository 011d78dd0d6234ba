// gpudist: the CUDA launch plan of gpudist::distance_transform, written once. The extension's
// launcher (distance_transform_cuda.cu) runs it; the CuPy backend (gpudist/backends/cupy_nvrtc.py)
// reads it through the host-only op gpudist::cuda_launch_plan. The variants' plan
// (cuda_variant_plan(), run by variants_cuda.cu, read through gpudist::cuda_variant_plan) is at
// the end. Plain C++: no torch or CUDA header.
//
// Pass 0 (kernel gd_first_pass_*) runs along the last axis, one thread per line; passes 1 .. nd-1
// (gd_envelope_*) along axes nd-2 .. 0, each thread working through lines of a strided axis with
// its own slice of one shared scratch buffer; the last pass finalizes inline. The passes alternate
// between the output and a temporary of its size, so that the last one writes the output.
//
// The device's figures come from the launchers: `resident` threads of the envelope kernel (and
// `first_resident` of the first-pass kernel) held at once, from the occupancy API
// (cudaOccupancyMaxActiveBlocksPerMultiprocessor * multiprocessors * block), and the free device
// memory, of which the envelope scratch takes at most scratch_budget(): min(1 GiB, free / 4).
//
// Two generations of kernels run the same passes (GPUDIST_CUDA_KERNELS selects them, 1 the
// default; kernels/edt_kernels.cu): the second runs pass 0 with a warp (32 threads) per line and
// keeps packed stack entries (packed_words(): 8 bytes each for float output, 16 for double)
// where the first keeps f, z and v (envelope_words(): 24 bytes).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kernels/edt_line.cuh"

namespace gpudist {

constexpr index_t kCudaBlock = 128;                      // threads per block of the EDT kernels
constexpr index_t kCudaWarp = 32;
constexpr index_t kCudaScratchBytes = index_t(1) << 30;  // cap on the envelope scratch

// Bytes of envelope scratch a transform may take with `free_bytes` of device memory free: a
// quarter of it, at most kCudaScratchBytes (the output and its temporary need room too).
inline index_t scratch_budget(index_t free_bytes) {
  const index_t quarter = free_bytes / 4;
  return quarter < kCudaScratchBytes ? quarter : kCudaScratchBytes;
}

enum PlanBuffer { kBufferSrc = 0, kBufferOut = 1, kBufferTmp = 2 };

// One kernel launch over the lines of one axis of the whole batch.
struct PassLaunch {
  index_t axis;      // the spatial axis the lines run along
  index_t n;         // elements per line
  index_t inner;     // elements after the axis: the stride of a line (1 for pass 0)
  index_t outer;     // rows of n * inner elements per item
  index_t lines;     // lines of the whole batch
  index_t slots;     // threads that work: the first `slots` of the grid (in generation 2's
                     // pass 0, 32 per line)
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

// Threads that work on `lines` lines: all of them when the device holds that many threads at once
// (`resident`) and the scratch budget (`words` 8-byte words per thread, 0: none) allows; otherwise
// at most that cap, rounded down to whole blocks (whole warps below a block), with the lines
// spread evenly over the rounds this takes (each thread does `rounds` lines, or one fewer) and
// rounded up again to whole blocks (warps) where that stays within the cap. At least one.
inline index_t launch_slots(index_t lines, index_t resident, index_t words,
                            index_t scratch_bytes, index_t block) {
  index_t cap = lines < resident ? lines : resident;
  if (words > 0) {
    const index_t budget = scratch_bytes / (8 * words);
    cap = cap < budget ? cap : budget;
  }
  if (cap >= lines) return lines;
  auto unit_of = [&](index_t n) { return n >= block ? block : n >= kCudaWarp ? kCudaWarp : 1; };
  cap = cap > 0 ? cap / unit_of(cap) * unit_of(cap) : 1;
  const index_t rounds = (lines + cap - 1) / cap;
  const index_t even = (lines + rounds - 1) / rounds;  // <= cap
  const index_t unit = unit_of(even);  // divides cap, a multiple of unit_of(cap) >= even
  return (even + unit - 1) / unit * unit;
}

// Adds to `plan` the launch of a pass along `axis` of `shape` over `items` items, by
// `threads_per_line` threads per line, each thread that works holding `words` 8-byte words of
// scratch; the threads as launch_slots() sizes them (`resident` held at once).
inline void add_pass(CudaPlan& plan, const std::vector<index_t>& shape, index_t axis,
                     index_t items, index_t threads_per_line, index_t resident, index_t words,
                     index_t scratch_bytes, index_t in, index_t out, bool finalize) {
  index_t volume = 1, inner = 1;
  for (index_t s : shape) volume *= s;
  for (index_t b = axis + 1; b < index_t(shape.size()); ++b) inner *= shape[b];
  PassLaunch launch{};
  launch.axis = axis;
  launch.n = shape[axis];
  launch.inner = inner;
  launch.outer = volume / (launch.n * inner);
  launch.lines = items * (volume / launch.n);
  launch.slots =
      launch_slots(launch.lines * threads_per_line, resident, words, scratch_bytes, plan.block);
  launch.blocks = (launch.slots + plan.block - 1) / plan.block;
  launch.in = in;
  launch.out = out;
  launch.finalize = finalize;
  if (words * launch.slots > plan.scratch_words) plan.scratch_words = words * launch.slots;
  plan.passes.push_back(launch);
}

// The plan for `items` items of the given spatial extents (all > 0).
// `resident` and `first_resident`: threads of the envelope and first-pass kernels the device holds
// at once; scratch_bytes: the scratch budget (scratch_budget()); generation: 1 or 2;
// out_bytes: 4 (float) or 8 (double).
inline CudaPlan cuda_launch_plan(const std::vector<index_t>& shape, index_t items,
                                 index_t resident, index_t first_resident,
                                 index_t scratch_bytes, index_t generation = 1,
                                 index_t out_bytes = 4) {
  const index_t nd = index_t(shape.size());
  CudaPlan plan;
  auto buffer = [&](index_t pass) { return (nd - 1 - pass) % 2 == 0 ? kBufferOut : kBufferTmp; };
  for (index_t pass = 0; pass < nd; ++pass) {
    const index_t axis = nd - 1 - pass;
    const index_t n = shape[axis];
    const index_t words = pass == 0          ? 0
                          : generation == 1  ? envelope_words(n)
                          : out_bytes == 4   ? packed_words<float>(n)
                                             : packed_words<double>(n);
    const index_t threads_per_line = pass == 0 && generation == 2 ? kCudaWarp : 1;
    add_pass(plan, shape, axis, items, threads_per_line, pass == 0 ? first_resident : resident,
             words, scratch_bytes, pass == 0 ? kBufferSrc : buffer(pass - 1), buffer(pass),
             pass == nd - 1);
  }
  return plan;
}

// The variants of the transform (kernels/edt_variant_kernels.cu), as the op
// gpudist::cuda_variant_plan names them.
enum VariantOp { kVariantMultilabel = 0, kVariantTaxicab = 1, kVariantChessboard = 2,
                 kVariantFeatures = 3 };

// 8-byte words of scratch per working thread of a pass of variant `op` along lines of n
// elements: arrays of n + 2 values (edt_variant_kernels.cu), none for pass 0 and for taxicab.
inline index_t variant_words(index_t op, index_t n, bool first) {
  if (first || op == kVariantTaxicab) return 0;
  return (op == kVariantFeatures ? 4 : 3) * (n + 2);
}

// The plan of a variant for `items` items of the given spatial extents (all > 0): pass p runs
// along axis p, in place on the output (pass 0 reads the input), threads and scratch as
// launch_slots() sizes them; the last pass finalizes.
inline CudaPlan cuda_variant_plan(const std::vector<index_t>& shape, index_t items, index_t op,
                                  index_t resident, index_t scratch_bytes) {
  const index_t nd = index_t(shape.size());
  CudaPlan plan;
  for (index_t axis = 0; axis < nd; ++axis)
    add_pass(plan, shape, axis, items, 1, resident, variant_words(op, shape[axis], axis == 0),
             scratch_bytes, axis == 0 ? kBufferSrc : kBufferOut, kBufferOut, axis == nd - 1);
  return plan;
}

// A plan as integers: block, scratch_words, the number of passes, then kPassFields values per
// pass in PassLaunch's order.
inline std::vector<int64_t> flat_plan(const CudaPlan& plan) {
  std::vector<int64_t> flat = {plan.block, plan.scratch_words, int64_t(plan.passes.size())};
  for (const PassLaunch& p : plan.passes)
    flat.insert(flat.end(), {p.axis, p.n, p.inner, p.outer, p.lines, p.slots, p.blocks, p.in,
                             p.out, p.finalize});
  return flat;
}

// The plan as integers (flat_plan()), for the op gpudist::cuda_launch_plan. free_bytes: the
// device memory free (None: enough for the scratch cap); first_resident: None for `resident`;
// generation 1 or 2 and out_bytes 4 or 8, as the Python wrapper checks
// (gpudist/backends/extension.py).
inline std::vector<int64_t> cuda_launch_plan_flat(std::vector<int64_t> spatial, int64_t items,
                                                  int64_t resident,
                                                  std::optional<int64_t> free_bytes,
                                                  std::optional<int64_t> first_resident,
                                                  int64_t generation, int64_t out_bytes) {
  return flat_plan(cuda_launch_plan(
      std::vector<index_t>(spatial.begin(), spatial.end()), items, resident,
      first_resident.value_or(resident),
      free_bytes ? scratch_budget(*free_bytes) : kCudaScratchBytes, generation, out_bytes));
}

// cuda_variant_plan() as integers (flat_plan()), for the op gpudist::cuda_variant_plan; op as
// VariantOp, checked by the Python wrapper.
inline std::vector<int64_t> cuda_variant_plan_flat(std::vector<int64_t> spatial, int64_t items,
                                                   int64_t op, int64_t resident,
                                                   std::optional<int64_t> free_bytes) {
  return flat_plan(cuda_variant_plan(std::vector<index_t>(spatial.begin(), spatial.end()), items,
                                     op, resident,
                                     free_bytes ? scratch_budget(*free_bytes)
                                                : kCudaScratchBytes));
}

}  // namespace gpudist
