// The kernels of edt_kernels.cu and boundary_loss_kernels.cu as a ctypes-loadable library, plus
// the EDT launch geometry.
#include "cuda_shim.h"
#include "boundary_loss_kernels.cu"
#include "edt_kernels.cu"

extern "C" long long shim_launch_slots(long long lines, long long resident, long long words) {
  return gpudist::launch_slots(lines, resident, words);
}
extern "C" long long shim_blocks_for(long long slots) { return gpudist::blocks_for(slots); }
extern "C" long long shim_envelope_words(long long n) { return gpudist::envelope_words(n); }
extern "C" long long shim_block() { return gpudist::kBlock; }
