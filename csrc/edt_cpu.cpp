// gpudist: CPU implementation of `gpudist::distance_transform`.
//
// Pass 1 runs along the last (contiguous) axis, one line at a time. Every other axis is strided, so
// its lines are processed in tiles of kTile adjacent lines: the tile's n rows of kTile contiguous
// values are copied into a small buffer (cache friendly, prefetchable), the envelope runs on each
// of its lines there, and the result rows are copied back. Tiles are spread over
// at::parallel_for's threads (torch.set_num_threads). The last pass finalizes (square root,
// convention) whole tiles at once, where it vectorises.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>

#include "distance_transform.h"

namespace gpudist {
namespace {

constexpr index_t kTile = 16;

template <typename T, typename L>
void run_passes(const L* src, T* out, const Plan& p) {
  const int nd = static_cast<int>(p.shape.size());
  const index_t n_last = p.shape[nd - 1];
  index_t rows = 1;  // lines along the last axis in one item
  for (int a = 0; a + 1 < nd; ++a) rows *= p.shape[a];

  at::parallel_for(0, p.items * rows, std::max<index_t>(1, 32768 / n_last),
                   [&](index_t begin, index_t end) {
                     for (index_t line = begin; line < end; ++line) {
                       const index_t item = line / rows, r = line % rows;
                       const index_t src_item = p.classes ? item / p.classes : item;
                       const index_t fg = p.classes ? item % p.classes : 1;
                       first_pass_line(src + (src_item * rows + r) * n_last, 1, fg,
                                       out + line * n_last, 1, n_last, p.w[nd - 1], p.two_sided,
                                       p.black_border, nullptr);
                       if (nd == 1) finalize_span(out + line * n_last, n_last, p.fin);
                     }
                   });

  for (int a = nd - 2; a >= 0; --a) {
    const index_t n = p.shape[a];
    index_t inner = 1, outer = p.items;
    for (int b = a + 1; b < nd; ++b) inner *= p.shape[b];
    for (int b = 0; b < a; ++b) outer *= p.shape[b];
    const index_t tiles_per_outer = (inner + kTile - 1) / kTile;
    at::parallel_for(0, outer * tiles_per_outer, 1, [&](index_t begin, index_t end) {
      std::vector<T> tile_in(n * kTile), tile_out(n * kTile);
      std::vector<double> f(n), z(n + 2);
      std::vector<index_t> v(n + 2);
      for (index_t t = begin; t < end; ++t) {
        const index_t o = t / tiles_per_outer, j0 = (t % tiles_per_outer) * kTile;
        const index_t m = std::min(kTile, inner - j0);
        T* base = out + o * n * inner + j0;
        for (index_t i = 0; i < n; ++i)
          std::memcpy(tile_in.data() + i * m, base + i * inner, m * sizeof(T));
        for (index_t j = 0; j < m; ++j)
          envelope_line(tile_in.data() + j, m, tile_out.data() + j, m, n, p.w[a], p.two_sided,
                        p.black_border, f.data(), v.data(), z.data(), 1, nullptr);
        if (a == 0) finalize_span(tile_out.data(), n * m, p.fin);
        for (index_t i = 0; i < n; ++i)
          std::memcpy(base + i * inner, tile_out.data() + i * m, m * sizeof(T));
      }
    });
  }
}

template <typename T>
void dispatch_src(const at::Tensor& src, T* out, const Plan& p) {
  switch (src.scalar_type()) {
    case at::kBool:
      return run_passes(reinterpret_cast<const uint8_t*>(src.const_data_ptr<bool>()), out, p);
    case at::kByte: return run_passes(src.const_data_ptr<uint8_t>(), out, p);
    case at::kInt: return run_passes(src.const_data_ptr<int32_t>(), out, p);
    default: return run_passes(src.const_data_ptr<int64_t>(), out, p);
  }
}

}  // namespace

at::Tensor distance_transform_cpu(const at::Tensor& src_any, int64_t num_classes,
                                  at::ArrayRef<double> spacing, const std::string& convention,
                                  bool black_border, at::ScalarType dtype) {
  TORCH_CHECK_VALUE(src_any.device().is_cpu(), "gpudist: src must be a CPU tensor here");
  const at::Tensor src = src_any.contiguous();
  const Plan plan = make_plan(src, num_classes, spacing, convention, black_border, dtype);
  at::Tensor out = at::empty(plan.out_sizes, src.options().dtype(dtype));
  if (out.numel() == 0) return out;
  if (num_classes > 0 && src.numel() > 0) {
    TORCH_CHECK_VALUE(src.min().item<int64_t>() >= 0, "gpudist: labels must be >= 0");
    TORCH_CHECK_VALUE(src.max().item<int64_t>() < num_classes,
                      "gpudist: labels must be < num_classes (", num_classes, ")");
  }
  if (dtype == at::kFloat)
    dispatch_src(src, out.data_ptr<float>(), plan);
  else
    dispatch_src(src, out.data_ptr<double>(), plan);
  return out;
}

TORCH_LIBRARY_IMPL(gpudist, CPU, m) { m.impl("distance_transform", &distance_transform_cpu); }

}  // namespace gpudist
