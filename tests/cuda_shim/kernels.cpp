// The kernels of csrc/kernels as emulator kernels (see emulator.h): gd_emu_kernel(name) returns a
// trampoline that calls kernel `name` with its arguments unpacked from an array of pointers to
// them (as cuLaunchKernel takes them).
#include <cstring>
#include <type_traits>
#include <utility>

#include "emulator.h"
#include "boundary_loss_kernels.cu"
#include "edt_kernels.cu"
#include "edt_variant_kernels.cu"
#include "selftest.cu"

namespace {

template <typename... A, std::size_t... I>
void call_with(void (*kernel)(A...), void** argv, std::index_sequence<I...>) {
  kernel(*static_cast<std::decay_t<A>*>(argv[I])...);
}
template <typename... A>
void call(void (*kernel)(A...), void** argv) {
  call_with(kernel, argv, std::index_sequence_for<A...>{});
}

struct Entry {
  const char* name;
  void (*trampoline)(void**);
};
#define GD_EMU(name) {#name, [](void** argv) { call(&name, argv); }},
const Entry kKernels[] = {
#include "kernel_list.inc"
};
#undef GD_EMU

}  // namespace

extern "C" void (*gd_emu_kernel(const char* name))(void**) {
  for (const Entry& e : kKernels)
    if (std::strcmp(e.name, name) == 0) return e.trampoline;
  return nullptr;
}
