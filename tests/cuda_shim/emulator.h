// A CPU block emulator for CUDA kernels, for tests: g++ builds the kernel sources with these
// stand-ins for the CUDA keywords and built-ins, and emulator.cpp runs every CUDA thread of a block
// as a thread of its own (started in a random order), with
//   __syncthreads()                       a barrier of the block's threads (exited ones excused),
//   GD_SHARED(T, name, count)             `count` T of the block's arena (poisoned per block),
//   __shfl*_sync / __ballot_sync / ...    an exchange through 32 slots per warp, between two warp
//                                         barriers; every lane of the mask must take part (a lane
//                                         that has exited, or one that never arrives, is an error).
// Blocks run one after another. Kernels see blockIdx / threadIdx (per thread), blockDim, gridDim.
#pragma once

#include <cstddef>
#include <cstring>

#define GD_EMULATOR 1  // edt_line.cuh: compile the device-only (warp) functions too

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define GD_SHARED(T, name, count) \
  T* name = static_cast<T*>(gd_emu::shared_alloc(sizeof(T) * (count), alignof(T)))

struct gd_dim3 {
  unsigned x, y, z;
};
extern thread_local gd_dim3 threadIdx, blockIdx;
extern gd_dim3 blockDim, gridDim;

namespace gd_emu {
enum Op { kShflIdx, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll };
void sync_block();
void sync_warp(unsigned mask);
unsigned long long exchange(unsigned mask, unsigned long long value, Op op, int arg, int width);
void* shared_alloc(std::size_t bytes, std::size_t align);

template <typename T>
unsigned long long bits_of(T v) {
  static_assert(sizeof(T) <= 8, "at most 8 bytes per lane");
  unsigned long long b = 0;
  std::memcpy(&b, &v, sizeof v);
  return b;
}
template <typename T>
T value_of(unsigned long long b) {
  T v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}
}  // namespace gd_emu

inline void __syncthreads() { gd_emu::sync_block(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { gd_emu::sync_warp(mask); }
template <typename T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return gd_emu::value_of<T>(gd_emu::exchange(mask, gd_emu::bits_of(v), gd_emu::kShflIdx, src,
                                              width));
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return gd_emu::value_of<T>(gd_emu::exchange(mask, gd_emu::bits_of(v), gd_emu::kShflUp,
                                              int(delta), width));
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return gd_emu::value_of<T>(gd_emu::exchange(mask, gd_emu::bits_of(v), gd_emu::kShflDown,
                                              int(delta), width));
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return gd_emu::value_of<T>(gd_emu::exchange(mask, gd_emu::bits_of(v), gd_emu::kShflXor,
                                              lane_mask, width));
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return unsigned(gd_emu::exchange(mask, pred != 0, gd_emu::kBallot, 0, 32));
}
inline int __any_sync(unsigned mask, int pred) {
  return int(gd_emu::exchange(mask, pred != 0, gd_emu::kAny, 0, 32));
}
inline int __all_sync(unsigned mask, int pred) {
  return int(gd_emu::exchange(mask, pred != 0, gd_emu::kAll, 0, 32));
}
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __ffs(unsigned v) { return __builtin_ffs(int(v)); }
inline int __clz(unsigned v) { return v ? __builtin_clz(v) : 32; }
