// Kernels that check the block emulator itself (tests/test_emulator.py): shared memory and
// barriers, every warp exchange, and two deliberate bugs it must catch.

// out[6 i + ...] for element i of block-sized tiles: the tile reversed through shared memory,
// the warp's sum (xor shuffles), the ballot of odd values, shuffles up / down by 1, lane 5's.
extern "C" __global__ void gd_selftest(const int* in, int* out) {
  GD_SHARED(int, tile, 1024);
  const unsigned t = threadIdx.x;
  const long long i = (long long)blockIdx.x * blockDim.x + t;
  tile[t] = in[i];
  __syncthreads();
  const int reversed = tile[blockDim.x - 1 - t];
  int sum = tile[t];
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const unsigned odd = __ballot_sync(0xffffffffu, tile[t] & 1);
  const int up = __shfl_up_sync(0xffffffffu, tile[t], 1);
  const int down = __shfl_down_sync(0xffffffffu, tile[t], 1);
  const int five = __shfl_sync(0xffffffffu, tile[t], 5);
  const int all = __all_sync(0xffffffffu, tile[t] >= 0);
  const int any = __any_sync(0xffffffffu, tile[t] > 90);
  const int row[8] = {reversed, sum, int(odd), up, down, five, all, any};
  for (int k = 0; k < 8; ++k) out[8 * i + k] = row[k];
}

// A shuffle whose full mask names a lane that has returned: undefined on a GPU, an error here.
extern "C" __global__ void gd_selftest_exited(int* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_sync(0xffffffffu, int(threadIdx.x), 0);
}

// A shared-memory race (no barrier between the write and the reads): ThreadSanitizer reports it.
extern "C" __global__ void gd_selftest_race(int* out) {
  GD_SHARED(int, x, 1);
  if (threadIdx.x == 0) x[0] = 1;
  out[threadIdx.x] = x[0];
}
