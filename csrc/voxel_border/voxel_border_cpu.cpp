// gpudist::voxel_border on the CPU: bands of rows spread over at::parallel_for's threads, their
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
  // Bands of about kChunk bytes of rows of the planes of the last two axes (a 1-D line is one
  // plane of one row), spread over the threads. A plane on the image's edge along an outer
  // axis is all edge: border = mask. Else a band's interior rows (all but the plane's first and
  // last), from column 1 of the first to column n - 2 of the last, form one contiguous span,
  // done in chunks of kChunk bytes: b = AND of the neighbours, neighbour by neighbour over the
  // chunk (bool bytes are 0 or 1; this vectorises), then b = m & !b. Every read stays inside
  // the plane or a neighbouring plane; the span's column 0 and n - 1 voxels (their +-1
  // neighbours are in the next or previous row) and the edge rows are then set to m.
  constexpr index_t kChunk = 4096;
  const index_t n = shape[nd - 1], r = nd > 1 ? shape[nd - 2] : 1, plane = r * n;
  const index_t planes = mask.size(0) * (volume / plane);
  const index_t band = std::max<index_t>(1, kChunk / n), bands = (r + band - 1) / band;
  const auto* src = reinterpret_cast<const uint8_t*>(mask.const_data_ptr<bool>());
  auto* dst = reinterpret_cast<uint8_t*>(out.mutable_data_ptr<bool>());
  at::parallel_for(0, planes * bands, 4, [&](index_t begin, index_t end) {
    for (index_t u = begin; u < end; ++u) {
      const index_t l = u / bands, r0 = (u % bands) * band, r1 = std::min(r, r0 + band);
      const uint8_t* m = src + l * plane;
      uint8_t* b = dst + l * plane;
      bool edge = n <= 2 || (nd > 1 && r <= 2);
      for (index_t rest = l % (volume / plane), a = nd - 3; a >= 0; --a) {
        const index_t x = rest % shape[a];
        rest /= shape[a];
        edge |= x == 0 || x == shape[a] - 1;
      }
      // The band's interior rows [i0, i1): all but the plane's first and last (the line in 1-D).
      const index_t i0 = nd > 1 ? std::max<index_t>(r0, 1) : r0;
      const index_t i1 = nd > 1 ? std::min(r1, r - 1) : r1;
      if (edge || i0 >= i1) {
        std::copy(m + r0 * n, m + r1 * n, b + r0 * n);
        continue;
      }
      std::copy(m + r0 * n, m + i0 * n, b + r0 * n);  // the edge rows
      std::copy(m + i1 * n, m + r1 * n, b + i1 * n);
      for (index_t c0 = i0 * n + 1, last = i1 * n - 1; c0 < last; c0 += kChunk) {
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
      for (index_t row = i0 * n; row < i1 * n; row += n) {  // the edge columns
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
