// gpudist::voxel_border on the CPU: planes spread over at::parallel_for's threads, each plane's
// voxels reading their neighbours through precomputed linear offsets, a neighbour at a time.
#include <ATen/Parallel.h>
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "voxel_border/voxel_border.h"

namespace gpudist {
namespace {

using index_t = int64_t;

at::Tensor voxel_border_cpu(const at::Tensor& mask_any, int64_t connectivity) {
  TORCH_CHECK_VALUE(mask_any.scalar_type() == at::kBool, "gpudist: mask must be a bool tensor");
  const int nd = static_cast<int>(mask_any.dim()) - 1;
  TORCH_CHECK_VALUE(nd >= 1, "gpudist: mask must be (N, *spatial) with a spatial dim");
  TORCH_CHECK_VALUE(connectivity >= 1 && connectivity <= nd,
                    "gpudist: connectivity must be between 1 and the number of spatial dims");
  const at::Tensor mask = mask_any.contiguous();
  at::Tensor out = at::empty(mask.sizes(), mask.options());
  if (mask.numel() == 0) return out;
  std::vector<index_t> shape(nd), stride(nd);
  index_t volume = 1;
  for (int a = nd - 1; a >= 0; --a) {
    shape[a] = mask.size(a + 1);
    stride[a] = volume;
    volume *= shape[a];
  }
  // The neighbour offsets within `connectivity`, as linear deltas.
  std::vector<index_t> delta;
  std::vector<int> step(nd, -1);
  for (bool more = true; more;) {
    int moved = 0;
    index_t d = 0;
    for (int a = 0; a < nd; ++a) {
      moved += step[a] != 0;
      d += step[a] * stride[a];
    }
    if (moved >= 1 && moved <= connectivity) delta.push_back(d);
    more = false;
    for (int a = nd - 1; a >= 0 && !more; --a) {
      if (step[a] < 1) {
        ++step[a];
        more = true;
      } else {
        step[a] = -1;
      }
    }
  }
  // Planes of the last two axes (the whole line in 1-D), spread over the threads. A plane on
  // the image's edge along an outer axis is all edge: border = mask. Inside one, the voxels
  // from row 1, column 1 to row r - 2, column n - 2 form one contiguous span, done in chunks of
  // kChunk bytes: b = AND of the neighbours, neighbour by neighbour over the chunk (bool bytes
  // are 0 or 1; this vectorises), then b = m & !b; then the edge rows and columns are set to m.
  constexpr index_t kChunk = 4096;
  const index_t n = shape[nd - 1], r = nd > 1 ? shape[nd - 2] : 1, plane = r * n;
  const index_t planes = mask.size(0) * (volume / plane);
  const auto* src = reinterpret_cast<const uint8_t*>(mask.const_data_ptr<bool>());
  auto* dst = reinterpret_cast<uint8_t*>(out.mutable_data_ptr<bool>());
  at::parallel_for(0, planes, std::max<index_t>(1, 4 * kChunk / plane), [&](index_t begin,
                                                                          index_t end) {
    for (index_t l = begin; l < end; ++l) {
      const uint8_t* m = src + l * plane;
      uint8_t* b = dst + l * plane;
      bool edge = n <= 2 || (nd > 1 && r <= 2);
      for (index_t rest = l % (volume / plane), a = nd - 3; a >= 0; --a) {
        const index_t x = rest % shape[a];
        rest /= shape[a];
        edge |= x == 0 || x == shape[a] - 1;
      }
      if (edge) {
        std::copy(m, m + plane, b);
        continue;
      }
      const index_t first = nd > 1 ? n + 1 : 1, last = nd > 1 ? plane - n - 1 : n - 1;
      for (index_t c0 = first; c0 < last; c0 += kChunk) {
        const index_t len = std::min(kChunk, last - c0);
        const uint8_t* mc = m + c0;
        uint8_t* bc = b + c0;
        const uint8_t* neighbour = mc + delta[0];
        for (index_t x = 0; x < len; ++x) bc[x] = neighbour[x];
        for (size_t k = 1; k < delta.size(); ++k) {
          neighbour = mc + delta[k];
          for (index_t x = 0; x < len; ++x) bc[x] &= neighbour[x];
        }
        for (index_t x = 0; x < len; ++x) bc[x] = mc[x] & (bc[x] ^ 1);
      }
      if (nd == 1) {
        b[0] = m[0];
        b[n - 1] = m[n - 1];
        continue;
      }
      std::copy(m, m + n, b);  // the edge rows, then the edge columns
      std::copy(m + plane - n, m + plane, b + plane - n);
      for (index_t row = n; row < plane - n; row += n) {
        b[row] = m[row];
        b[row + n - 1] = m[row + n - 1];
      }
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gpudist, CPU, m) { m.impl("voxel_border", &voxel_border_cpu); }

}  // namespace gpudist
