// The coalescing model's memory trace: kernels.cpp compiled with -fsanitize=thread (gcc's
// instrumentation only) calls these hooks on every load and store, instead of ThreadSanitizer's
// runtime (not linked into the model build); each forwards the access and its instruction's
// address to the emulator (gd_emu::record). Compiled without instrumentation.
#include <cstddef>

namespace gd_emu {
void record(const void* addr, unsigned size, bool write, const void* pc);
}

#define GD_HOOK(KIND, N, WRITE)                                                        \
  extern "C" void __tsan_##KIND##N(void* addr) {                                      \
    gd_emu::record(addr, N, WRITE, __builtin_return_address(0));                       \
  }                                                                                    \
  extern "C" void __tsan_unaligned_##KIND##N(void* addr) {                            \
    gd_emu::record(addr, N, WRITE, __builtin_return_address(0));                       \
  }
GD_HOOK(read, 1, false)
GD_HOOK(read, 2, false)
GD_HOOK(read, 4, false)
GD_HOOK(read, 8, false)
GD_HOOK(read, 16, false)
GD_HOOK(write, 1, true)
GD_HOOK(write, 2, true)
GD_HOOK(write, 4, true)
GD_HOOK(write, 8, true)
GD_HOOK(write, 16, true)
#undef GD_HOOK

extern "C" {
void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_read_range(void*, std::size_t) {}
void __tsan_write_range(void*, std::size_t) {}
void __tsan_vptr_read(void**) {}
void __tsan_vptr_update(void**, void*) {}
}
