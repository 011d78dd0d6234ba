// gpudist: CPU implementation of `gpudist::distance_transform`.
//
// Pass 1 runs along axis 0 of each item, kTile adjacent lines at a time in lockstep
// (first_pass_lanes), which vectorises across the lines; it counts in float when the output is
// float32 and that is exact. The envelope passes follow: along the middle axes, whose lines are
// strided, in tiles of kTile adjacent lines whose n rows are copied into a small buffer (cache
// friendly, prefetchable), processed there and copied back; then along the last, contiguous axis
// one line at a time, finalizing it (square root, convention) as a whole span, where that
// vectorises. Each envelope first tries the windowed form (window_envelope: short distances,
// vectorised across a tile's lanes or a line's elements) and runs the stack envelope
// (envelope_line) on the lines it hands back. Work is spread over at::parallel_for's threads
// (torch.set_num_threads).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "distance_transform.h"

namespace gpudist {
namespace {

constexpr index_t kTile = 16;
constexpr int kChunk = 16;
// Windowed envelope (window_envelope) on lines whose values are all within this many elements
// of a site; farther, the stack envelope is cheaper. Any value is exact; 32 measured fastest.
constexpr index_t kReach = 32;
constexpr index_t kPad = kReach + kChunk;  // +inf around a contiguous line: no bounds checks

template <typename T, typename L>
void first_pass(const L* src, T* out, const Plan& p, index_t volume) {
  const int nd = static_cast<int>(p.shape.size());
  const index_t n = p.shape[0], inner = volume / n;
  const index_t tiles = (inner + kTile - 1) / kTile;
  // A float output can count in float (twice the lanes per instruction) while element counts
  // and every finite w d^2 stay exact or finite in it.
  const bool narrow = sizeof(T) == sizeof(float) && n < (index_t(1) << 24) &&
                      p.w[0] * double(n) * double(n) < 1e30;
  at::parallel_for(0, p.items * tiles, 1, [&](index_t begin, index_t end) {
    for (index_t t = begin; t < end; ++t) {
      const index_t item = t / tiles, j0 = (t % tiles) * kTile;
      const index_t m = std::min(kTile, inner - j0);
      const index_t fg = p.classes ? item % p.classes : 1;
      const L* s = src + (p.classes ? item / p.classes : item) * volume + j0;
      T* o = out + item * volume + j0;
      if (m == kTile && narrow) {
        first_pass_lanes<kTile, float>(s, inner, fg, o, inner, n, p.w[0], p.two_sided,
                                       p.black_border);
      } else if (m == kTile) {
        first_pass_lanes<kTile>(s, inner, fg, o, inner, n, p.w[0], p.two_sided, p.black_border);
      } else {
        for (index_t j = 0; j < m; ++j)
          first_pass_line(s + j, inner, fg, o + j, inner, n, p.w[0], p.two_sided, p.black_border,
                          nullptr);
      }
      if (nd == 1) finalize_span(o, n, p.fin);  // then inner == 1: o is the item's line
    }
  });
}

template <typename T>
void strided_envelope_pass(T* out, const Plan& p, int a) {
  const int nd = static_cast<int>(p.shape.size());
  const index_t n = p.shape[a];
  index_t inner = 1, outer = p.items;
  for (int b = a + 1; b < nd; ++b) inner *= p.shape[b];
  for (int b = 0; b < a; ++b) outer *= p.shape[b];
  const index_t tiles = (inner + kTile - 1) / kTile;
  at::parallel_for(0, outer * tiles, 1, [&](index_t begin, index_t end) {
    std::vector<T> tile_in(n * kTile), tile_out(n * kTile), other(n * kTile);
    std::vector<double> f(n + 2), z(n + 2);
    std::vector<index_t> v(n + 2);
    for (index_t t = begin; t < end; ++t) {
      const index_t o = t / tiles, j0 = (t % tiles) * kTile;
      const index_t m = std::min(kTile, inner - j0);
      T* base = out + o * n * inner + j0;
      for (index_t i = 0; i < n; ++i)
        std::memcpy(tile_in.data() + i * m, base + i * inner, m * sizeof(T));
      const unsigned done = m < kTile ? 0u
                                      : window_envelope<kTile, kTile>(
                                            tile_in.data(), tile_out.data(), n, p.w[a],
                                            p.two_sided, p.black_border, kReach, p.cap, 0,
                                            other.data());
      for (index_t j = 0; j < m; ++j)
        if (!(done >> j & 1u))
          envelope_line(tile_in.data() + j, m, tile_out.data() + j, m, n, p.w[a], p.two_sided,
                        p.black_border, f.data(), v.data(), z.data(), 1, nullptr);
      for (index_t i = 0; i < n; ++i)
        std::memcpy(base + i * inner, tile_out.data() + i * m, m * sizeof(T));
    }
  });
}

template <typename T>
void last_envelope_pass(T* out, const Plan& p, index_t volume) {
  const int nd = static_cast<int>(p.shape.size());
  const index_t n = p.shape[nd - 1];
  at::parallel_for(0, p.items * (volume / n), std::max<index_t>(1, 4096 / n),
                   [&](index_t begin, index_t end) {
                     // The line, between kPad values of +inf on each side.
                     std::vector<T> padded(n + 2 * kPad, T(INFINITY)), other(n);
                     T* line = padded.data() + kPad;
                     std::vector<double> f(n + 2), z(n + 2);
                     std::vector<index_t> v(n + 2);
                     for (index_t l = begin; l < end; ++l) {
                       T* o = out + l * n;
                       std::memcpy(line, o, n * sizeof(T));
                       if (!window_envelope<kChunk, 1>(line, o, n, p.w[nd - 1], p.two_sided,
                                                       p.black_border, kReach, p.cap, kPad,
                                                       other.data()))
                         envelope_line(line, 1, o, 1, n, p.w[nd - 1], p.two_sided,
                                       p.black_border, f.data(), v.data(), z.data(), 1, nullptr);
                       finalize_span(o, n, p.fin);
                     }
                   });
}

template <typename T, typename L>
void run_passes(const L* src, T* out, const Plan& p) {
  const int nd = static_cast<int>(p.shape.size());
  index_t volume = 1;
  for (index_t s : p.shape) volume *= s;
  first_pass(src, out, p, volume);
  for (int a = 1; a + 1 < nd; ++a) strided_envelope_pass(out, p, a);
  if (nd > 1) last_envelope_pass(out, p, volume);
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

// Squared distance, in pass units, from the element at g to the nearest background element, by
// direct search over c, a first pass along axis 0 run with unit weight (|c| = the squared element
// count to the nearest background element along axis 0): min over offsets t along `axis`
// (coordinate `at` on it, outward from 0) of w t^2 plus the same search one axis down, stopping
// once w t^2 reaches the best so far. Exact below `cap`; a result of cap or more comes back as
// cap. The work grows with the distance found (about d^(nd-1) elements read, counted in
// `reads`), so it pays where the distances asked for are short.
template <typename C>
double search_nearest(const C* c, const index_t* at, const Plan& p, const index_t* stride,
                      int axis, double cap, index_t& reads) {
  if (axis == 0) {
    ++reads;
    return std::min(cap, p.w[0] * double(std::fabs(*c)));
  }
  const index_t n = p.shape[axis], s = stride[axis], x = at[axis];
  const double w = p.w[axis];
  double best = cap;
  for (index_t t = 0; x - t >= 0 || x + t < n; ++t) {
    const double wt = w * double(t) * double(t);
    if (wt >= best) break;
    if (x - t >= 0)
      best = std::min(best, wt + search_nearest(c - t * s, at, p, stride, axis - 1, best - wt,
                                                reads));
    if (t > 0 && x + t < n)
      best = std::min(best, wt + search_nearest(c + t * s, at, p, stride, axis - 1, best - wt,
                                                reads));
  }
  return best;
}

// The first index in [from, to) where bytes is nonzero, else `to`; eight bytes at a time.
inline index_t next_nonzero(const uint8_t* bytes, index_t from, index_t to) {
  for (uint64_t word; from + 8 <= to; from += 8) {
    std::memcpy(&word, bytes + from, 8);
    if (word) break;
  }
  while (from < to && !bytes[from]) ++from;
  return from;
}

// distance_at, item by item over at::parallel_for's threads (a single item runs on one thread):
// the item's first pass with unit weight into the thread's scratch (one item's volume of squared
// counts, in C = float while they are exact in it, reused, so it stays in cache for the
// searches), then search_nearest from each query element, in row-major order. An item whose
// searches read more than kSearchReads values per element (queries far from every background
// element) is redone with the full transform, which is then cheaper. Items without background
// give +inf at once.
template <typename T, typename C>
at::Tensor distance_at(const uint8_t* src, const uint8_t* query, const Plan& p,
                       const at::TensorOptions& options) {
  constexpr index_t kSearchReads = 16;
  const int nd = static_cast<int>(p.shape.size());
  index_t volume = 1;
  std::vector<index_t> stride(nd, 1);
  for (int a = nd - 1; a >= 0; --a) {
    stride[a] = volume;
    volume *= p.shape[a];
  }
  Plan item = p;
  item.items = 1;
  Plan counts = item;  // squared counts along axis 0; for nd == 1 (w = 1) the finished transform
  counts.w[0] = 1.0;
  std::vector<std::vector<T>> found(p.items);
  at::parallel_for(0, p.items, 1, [&](index_t begin, index_t end) {
    std::vector<C> c(volume);
    std::vector<T> full;
    std::vector<index_t> at(nd);
    for (index_t r = begin; r < end; ++r) {
      const uint8_t* s = src + r * volume;
      const uint8_t* q = query + r * volume;
      const bool has_site = std::memchr(s, 0, volume) != nullptr;
      if (has_site) first_pass(s, c.data(), counts, volume);  // nested: runs on this thread
      index_t reads = 0;
      const index_t budget = kSearchReads * volume;
      for (index_t e = next_nonzero(q, 0, volume); e < volume; e = next_nonzero(q, e + 1, volume)) {
        if (!has_site || nd == 1) {
          found[r].push_back(has_site ? T(c[e]) : T(INFINITY));
          continue;
        }
        index_t rest = e;  // the element's coordinates
        for (int a = 0; a < nd; ++a) {
          at[a] = rest / stride[a];
          rest %= stride[a];
        }
        const double d2 = search_nearest(c.data() + e, at.data(), p, stride.data(), nd - 1,
                                         double(INFINITY), reads);
        found[r].push_back(T(std::sqrt(d2) * p.fin.scale));
        if (reads > budget) break;
      }
      if (reads > budget) {
        full.resize(volume);
        run_passes(s, full.data(), item);
        found[r].clear();
        for (index_t e = next_nonzero(q, 0, volume); e < volume;
             e = next_nonzero(q, e + 1, volume))
          found[r].push_back(full[e]);
      }
    }
  });
  std::vector<index_t> offset(p.items + 1, 0);
  for (index_t r = 0; r < p.items; ++r) offset[r + 1] = offset[r] + index_t(found[r].size());
  at::Tensor out = at::empty({offset[p.items]}, options);
  for (index_t r = 0; r < p.items; ++r)
    std::copy(found[r].begin(), found[r].end(), out.data_ptr<T>() + offset[r]);
  return out;
}

}  // namespace

at::Tensor distance_at_cpu(const at::Tensor& src_any, const at::Tensor& query_any,
                           at::ArrayRef<double> spacing, at::ScalarType dtype) {
  TORCH_CHECK_VALUE(src_any.device().is_cpu(), "gpudist: src must be a CPU tensor here");
  TORCH_CHECK_VALUE(src_any.scalar_type() == at::kBool && query_any.scalar_type() == at::kBool,
                    "gpudist: src and query must be bool masks");
  TORCH_CHECK_VALUE(query_any.sizes() == src_any.sizes() && query_any.device() == src_any.device(),
                    "gpudist: query must have the shape and device of src");
  const at::Tensor src = src_any.contiguous(), query = query_any.contiguous();
  const Plan plan = make_plan(src, 0, spacing, "edt", false, dtype, std::nullopt);
  const at::TensorOptions options = src.options().dtype(dtype);
  if (src.numel() == 0) return at::empty({0}, options);
  const auto* s = reinterpret_cast<const uint8_t*>(src.const_data_ptr<bool>());
  const auto* q = reinterpret_cast<const uint8_t*>(query.const_data_ptr<bool>());
  // Squared counts up to (2^12)^2 are exact in float; in 1-D the first pass finalizes, in C.
  const bool narrow = plan.shape.size() > 1 && plan.shape[0] < (index_t(1) << 12);
  if (dtype == at::kFloat)
    return narrow ? distance_at<float, float>(s, q, plan, options)
                  : distance_at<float, double>(s, q, plan, options);
  return narrow ? distance_at<double, float>(s, q, plan, options)
                : distance_at<double, double>(s, q, plan, options);
}

at::Tensor distance_transform_cpu(const at::Tensor& src_any, int64_t num_classes,
                                  at::ArrayRef<double> spacing, const std::string& convention,
                                  bool black_border, at::ScalarType dtype,
                                  std::optional<double> max_distance) {
  TORCH_CHECK_VALUE(src_any.device().is_cpu(), "gpudist: src must be a CPU tensor here");
  const at::Tensor src = src_any.contiguous();
  const Plan plan =
      make_plan(src, num_classes, spacing, convention, black_border, dtype, max_distance);
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

TORCH_LIBRARY_IMPL(gpudist, CPU, m) {
  m.impl("distance_transform", &distance_transform_cpu);
  m.impl("distance_at", &distance_at_cpu);
}

}  // namespace gpudist
