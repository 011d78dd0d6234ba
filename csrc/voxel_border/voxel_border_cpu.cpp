// gpudist::voxel_border on the CPU: lines spread over at::parallel_for's threads, each line's
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
  const index_t n = shape[nd - 1], lines = mask.size(0) * (volume / n);
  const auto* src = reinterpret_cast<const uint8_t*>(mask.const_data_ptr<bool>());
  auto* dst = reinterpret_cast<uint8_t*>(out.mutable_data_ptr<bool>());
  at::parallel_for(0, lines, std::max<index_t>(1, 4096 / n), [&](index_t begin, index_t end) {
    for (index_t l = begin; l < end; ++l) {
      const uint8_t* m = src + l * n;
      uint8_t* b = dst + l * n;
      // A line on the image's edge along another axis: each of its mask voxels is on the edge.
      bool edge = false;
      for (index_t rest = l % (volume / n), a = nd - 2; a >= 0; --a) {
        const index_t x = rest % shape[a];
        rest /= shape[a];
        edge |= x == 0 || x == shape[a] - 1;
      }
      if (edge || n <= 2) {
        for (index_t x = 0; x < n; ++x) b[x] = m[x];
        continue;
      }
      // Interior: b = m & !(m & every neighbour), the AND taken neighbour by neighbour over the
      // whole span into b (bool bytes are 0 or 1), which vectorises.
      // (`last` is a local: a byte store could alias the captured n, which would be reloaded.)
      const index_t last = n - 1;
      for (index_t x = 1; x < last; ++x) b[x] = m[x];
      for (const index_t d : delta) {
        const uint8_t* neighbour = m + d;
        for (index_t x = 1; x < last; ++x) b[x] &= neighbour[x];
      }
      for (index_t x = 1; x < last; ++x) b[x] = m[x] & (b[x] ^ 1);
      b[0] = m[0];
      b[n - 1] = m[n - 1];
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gpudist, CPU, m) { m.impl("voxel_border", &voxel_border_cpu); }

}  // namespace gpudist
