// gpudist::distance_at on the CPU: per item, the transform's first pass (cpu_passes.h) from the
// sites, then a direct search outward from each query element.
// Compiled twice (cpu_ops.h), registered by cpu_ops.cpp.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "cpu_ops.h"
#include "distance_at/distance_at.h"
#include "distance_transform/cpu_passes.h"
#include "distance_transform/distance_transform.h"

namespace gpudist {
namespace {

using cpu::first_pass;
using cpu::run_passes;

// The plan of item r of p alone: one item, its row of spacing.
Plan one_item(const Plan& p, index_t r) {
  Plan one = p;
  const double* w = p.weights(r);
  one.w.assign(w, w + p.shape.size());
  one.fins = {p.fin_of(r)};
  one.caps = {p.cap_of(r)};
  one.rows = 1;
  one.items = 1;
  return one;
}

// Squared distance, in pass units, from the element at c to the nearest site, by direct search
// over c, a first pass along axis 0 run with unit weight (|c| = the squared element count to the
// nearest site along axis 0): min over offsets t along `axis`
// (coordinate `at` on it, outward from 0) of w t^2 plus the same search one axis down, stopping
// once w t^2 reaches the best so far. Exact below `cap`; a result of cap or more comes back as
// cap. The work grows with the distance found (about d^(nd-1) elements read, counted in
// `reads`), so it pays where the distances asked for are short. p: the item's plan (one_item).
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
  if (axis == 1) {  // the reads of axis 0 inline: this loop runs for every column searched
    const double w0 = p.w[0];
    index_t count = 0;
    for (index_t t = 0; x - t >= 0 || x + t < n; ++t) {
      const double wt = w * double(t) * double(t);
      if (wt >= best) break;
      if (x - t >= 0) {
        best = std::min(best, wt + w0 * double(std::fabs(c[-t * s])));
        ++count;
      }
      if (t > 0 && x + t < n) {
        best = std::min(best, wt + w0 * double(std::fabs(c[t * s])));
        ++count;
      }
    }
    reads += count;
    return best;
  }
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

// The search of one item (see distance_at): its plan (one_item), first-pass counts c, the
// strides of its axes.
template <typename T, typename C>
struct ItemSearch {
  const Plan& p;
  const std::vector<index_t>& stride;
  const C* c;

  // The distance at element e (a query), counting the values read; `at`: room for its
  // coordinates (one per axis).
  T distance(index_t e, index_t* at, index_t& reads) const {
    const int nd = static_cast<int>(p.shape.size());
    if (nd == 1) return T(c[e]);  // the first pass finalized it
    index_t rest = e;
    for (int a = 0; a < nd; ++a) {
      at[a] = rest / stride[a];
      rest %= stride[a];
    }
    const double d2 = search_nearest(c + e, at, p, stride.data(), nd - 1, double(INFINITY),
                                     reads);
    return T(std::sqrt(d2) * p.fins[0].scale);
  }
};

// distance_at over at::parallel_for's threads: item by item when there are at least as many
// items as threads (one item per thread: the item's first pass with unit weight into the
// thread's scratch, one item's volume of squared counts in C = float while they are exact in
// it, reused, so it stays in cache for the searches), else one item at a time with its first
// pass and its queries spread over the threads. Then search_nearest from each query element,
// in row-major order. An item whose searches read more than kSearchReads values per element
// (queries far from every site) is redone with the full transform, which is then cheaper.
// Items without a site give +inf at once. Returns (dist, count) as distance_at.h lays them out.
template <typename T, typename C>
std::tuple<at::Tensor, at::Tensor> distance_at(const uint8_t* sites, const uint8_t* query,
                                               const Plan& p, const at::TensorOptions& options) {
  constexpr index_t kSearchReads = 16;
  const int nd = static_cast<int>(p.shape.size());
  index_t volume = 1;
  std::vector<index_t> stride(nd, 1);
  for (int a = nd - 1; a >= 0; --a) {
    stride[a] = volume;
    volume *= p.shape[a];
  }
  const index_t budget = kSearchReads * volume;
  std::vector<std::vector<T>> found(p.items);
  // Item r's distances into found[r], with c as the room for its first-pass counts: the first
  // pass and the searches run over every thread, or inline on this one when nested in the
  // parallel loop over items (at::parallel_for does not nest).
  auto search_item = [&](index_t r, C* c) {
    const uint8_t* s = sites + r * volume;
    const uint8_t* q = query + r * volume;
    std::vector<index_t> list;  // the queries, in row-major order
    for (index_t e = next_nonzero(q, 0, volume); e < volume; e = next_nonzero(q, e + 1, volume))
      list.push_back(e);
    found[r].assign(list.size(), T(INFINITY));
    if (list.empty() || next_nonzero(s, 0, volume) == volume) return;  // no query, or no site
    const Plan item = one_item(p, r);
    Plan counts = item;  // squared counts along axis 0; for nd == 1 (w = 1) the finished transform
    counts.w[0] = 1.0;
    first_pass(s, c, counts, volume, nullptr, /*mask_fg=*/0);  // the sites are true
    const ItemSearch<T, C> search{item, stride, c};
    std::atomic<index_t> reads{0};
    at::parallel_for(0, index_t(list.size()), 1024, [&](index_t begin, index_t end) {
      index_t mine = 0;
      std::vector<index_t> at(nd);
      for (index_t i = begin; i < end && reads.load(std::memory_order_relaxed) <= budget; ++i) {
        found[r][i] = search.distance(list[i], at.data(), mine);
        if (mine > 4096) reads += std::exchange(mine, 0);
      }
      reads += mine;
    });
    if (reads <= budget) return;
    std::vector<T> full(volume);  // far queries: the full transform is cheaper
    run_passes(s, full.data(), item, /*mask_fg=*/0);
    for (size_t i = 0; i < list.size(); ++i) found[r][i] = full[list[i]];
  };
  if (p.items >= at::get_num_threads()) {
    at::parallel_for(0, p.items, 1, [&](index_t begin, index_t end) {
      const std::unique_ptr<C[]> c(new C[volume]);  // not zeroed: the first pass writes it all
      for (index_t r = begin; r < end; ++r) search_item(r, c.get());
    });
  } else {
    const std::unique_ptr<C[]> c(new C[volume]);
    for (index_t r = 0; r < p.items; ++r) search_item(r, c.get());
  }
  index_t width = 0;
  at::Tensor count = at::empty({p.items}, options.dtype(at::kLong));
  for (index_t r = 0; r < p.items; ++r) {
    count.data_ptr<int64_t>()[r] = index_t(found[r].size());
    width = std::max(width, index_t(found[r].size()));
  }
  at::Tensor dist = at::empty({p.items, width}, options);
  T* out = dist.data_ptr<T>();
  for (index_t r = 0; r < p.items; ++r) {
    T* row = std::copy(found[r].begin(), found[r].end(), out + r * width);
    std::fill(row, out + (r + 1) * width, T(INFINITY));
  }
  return {dist, count};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> distance_at_cpu(const at::Tensor& sites_any,
                                                   const at::Tensor& query_any,
                                                   at::ArrayRef<double> spacing,
                                                   at::ScalarType dtype) {
  TORCH_CHECK_VALUE(sites_any.device().is_cpu(), "gpudist: sites must be a CPU tensor here");
  TORCH_CHECK_VALUE(sites_any.scalar_type() == at::kBool && query_any.scalar_type() == at::kBool,
                    "gpudist: sites and query must be bool masks");
  TORCH_CHECK_VALUE(query_any.sizes() == sites_any.sizes() &&
                        query_any.device() == sites_any.device(),
                    "gpudist: query must have the shape and device of sites");
  const at::Tensor sites = sites_any.contiguous(), query = query_any.contiguous();
  const Plan plan = make_plan(sites, 0, spacing, "edt", false, dtype, std::nullopt, "sites");
  const at::TensorOptions options = sites.options().dtype(dtype);
  if (sites.numel() == 0)
    return {at::empty({plan.items, 0}, options), at::zeros({plan.items}, options.dtype(at::kLong))};
  const auto* s = reinterpret_cast<const uint8_t*>(sites.const_data_ptr<bool>());
  const auto* q = reinterpret_cast<const uint8_t*>(query.const_data_ptr<bool>());
  // Squared counts up to (2^12)^2 are exact in float; in 1-D the first pass finalizes, in C.
  const bool narrow = plan.shape.size() > 1 && plan.shape[0] < (index_t(1) << 12);
  if (dtype == at::kFloat)
    return narrow ? distance_at<float, float>(s, q, plan, options)
                  : distance_at<float, double>(s, q, plan, options);
  return narrow ? distance_at<double, float>(s, q, plan, options)
                : distance_at<double, double>(s, q, plan, options);
}

}  // namespace gpudist
