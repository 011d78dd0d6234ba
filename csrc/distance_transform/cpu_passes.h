// gpudist: the passes of the CPU distance transform, used by distance_transform_cpu.cpp and
// distance_at/distance_at_cpu.cpp.
//
// Pass 1 runs along axis 0 of each item, kWideTile (or kTile) adjacent lines at a time in lockstep
// (first_pass_lanes), which vectorises across the lines; it counts in float when the output is
// float32 and that is exact. The envelope passes follow: along the middle axes, whose lines are
// strided, in tiles of kTile adjacent lines whose n rows are copied into a small buffer (cache
// friendly, prefetchable), processed there and copied back; then along the last, contiguous axis
// one line at a time, finalizing it (square root, convention) as a whole span, where that
// vectorises. Each envelope first tries the windowed form (window_envelope: short distances,
// vectorised across a tile's lanes or a line's elements) and runs the stack envelope
// (envelope_line) on the lines it hands back. Work is spread over at::parallel_for's threads
// (torch.set_num_threads).
//
// Lines whose per-thread scratch (the tile or padded line with its `other`, and envelope_line's
// f, z, v) would exceed kScratchBytes run stream_envelope() instead, in place with a stack that
// holds only the parabolas still needed: scratch no longer grows with the line length.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "distance_transform/distance_transform.h"

namespace gpudist::cpu {

constexpr index_t kTile = 16;
// Pass 1 runs kWideTile lines in lockstep where the batch has enough of them: 40 -> 15 ms for the
// first pass of (12, 103, 93, 101) on one thread (measured with kTile, 64 and 128 lanes).
constexpr index_t kWideTile = 128;
constexpr int kChunk = 16;
// Windowed envelope (window_envelope): offsets up to kReach (middle axes, a tile's 16 lanes in
// lockstep) or kLineReach (last axis, one line) elements, then the lines whose minima it has not
// settled go to the stack envelope. Any value is exact. Measured (1 thread, after the four-offset
// relax): the last axis at 64 instead of 32 takes to-lines2d 21 -> 15.5 ms and specks010 28 -> 25
// ms, to-lesions3d unchanged; 128 helps to-lines2d a little more and slows to-lesions3d by 10%.
// The middle axes stay at 32: a tile runs to the largest minimum of its 16 lanes.
constexpr index_t kReach = 32;
constexpr index_t kLineReach = 64;
constexpr index_t kPad = kLineReach + kChunk;  // +inf around a contiguous line: no bounds checks
// Per-thread scratch above which an envelope pass streams its lines (stream_envelope).
constexpr index_t kScratchBytes = index_t(2) << 20;
constexpr index_t kEnvelopeBytes = 24;  // envelope_line()'s f, z and v per element of a line

// The parabolas of stream_envelope(): roots v, costs f and the abscissas z where each takes over
// from the previous one; the live ones are [bottom, top]. Storage is reused across lines and
// grows only when the live parabolas outgrow it.
struct EnvelopeStack {
  std::vector<double> f, z;
  std::vector<index_t> v;
  index_t bottom = 0, top = -1;
  EnvelopeStack() : f(1024), z(1024), v(1024) {}
  // Makes room for one more parabola above top: moves the live ones down, or grows.
  void reserve_one() {
    const index_t cap = static_cast<index_t>(v.size());
    if (top + 1 < cap) return;
    if (bottom > 0) {
      const index_t live = top - bottom + 1;
      std::memmove(f.data(), f.data() + bottom, live * sizeof(double));
      std::memmove(z.data(), z.data() + bottom, live * sizeof(double));
      std::memmove(v.data(), v.data() + bottom, live * sizeof(index_t));
      top -= bottom;
      bottom = 0;
      return;
    }
    f.resize(2 * cap);
    z.resize(2 * cap);
    v.resize(2 * cap);
  }
};

// lower_envelope() of edt_line.cuh (same sites, costs and results; see there) over the line
// line[x * stride], x < n, in place and streaming: sites are pushed left to right, and an
// element is written as soon as its value is final, i.e. no site still to come can lower it
// (every site from `next` on costs >= w (next - x)^2 at x). Written elements are behind the
// scan, whose costs are already read; their class stays in the sign bit, which is all the scan
// and a second call (the other class) read. Parabolas that own only written elements are
// dropped from the bottom: a parabola pushed later that hides the lowest live one hides it from
// the first unwritten element on, where the dropped ones are beaten anyway. So the stack holds
// the parabolas between the first unwritten element and the scan, few unless many elements at
// once wait for a distant site. Writes stored (signed, squared) values.
template <typename T>
void stream_envelope(T* line, index_t stride, index_t n, double w, bool targets_inside,
                     bool border_sites, bool zero_others, EnvelopeStack& st) {
  const double inf = inf_value();
  double* f = st.f.data();
  double* z = st.z.data();
  index_t* v = st.v.data();
  index_t& b = st.bottom;
  index_t& k = st.top;
  b = 0;
  k = -1;
  auto target = [&](index_t x) { return is_inside(line[x * stride]) == targets_inside; };
  auto push = [&](index_t q, double fq) {
    double s = -inf;
    while (k >= b) {
      s = meet(v[k], f[k], q, fq, w);
      if (s > z[k]) break;
      --k;
    }
    if (k < b) s = -inf;
    st.reserve_one();
    f = st.f.data();
    z = st.z.data();
    v = st.v.data();
    ++k;
    v[k] = q;
    f[k] = fq;
    z[k] = s;
  };
  index_t done = 0;  // elements [0, done) are written
  // Writes elements from `done` on while final given that every site before `next` is pushed
  // (all: every site is).
  auto flush = [&](index_t next, bool all) {
    for (; done < next; ++done) {
      T* o = line + done * stride;
      if (!target(done)) {
        if (zero_others) store(o, 0.0, is_inside(*o), nullptr);
        continue;
      }
      double g = inf;  // no site on this line
      if (k >= b) {
        while (b < k && z[b + 1] < double(done)) ++b;
        const double dx = double(done - v[b]);
        g = f[b] + w * dx * dx;
        const double ahead = double(next - done);
        if (!all && g > w * ahead * ahead) return;
      } else if (!all) {
        return;
      }
      store(o, g, targets_inside, nullptr);
    }
  };
  if (border_sites) push(-1, 0.0);
  bool prev = !border_sites;  // a missing neighbour keeps an end of the line a site
  bool cur = n > 0 && target(0);
  for (index_t q = 0; q < n; ++q) {
    const bool next = q + 1 < n ? target(q + 1) : !border_sites;
    if (cur) {
      const double fq = fabs(double(line[q * stride]));
      if (!isinf(fq)) push(q, fq);  // inf: no element of the other class on this line yet
    } else if (prev || next) {
      push(q, 0.0);
    }
    prev = cur;
    cur = next;
    flush(q + 1, false);
  }
  if (border_sites) push(n, 0.0);
  flush(n, true);
}

// envelope_line() in place with bounded scratch: stream_envelope() for each class it computes.
template <typename T>
void stream_envelope_line(T* line, index_t stride, index_t n, double w, bool two_sided,
                          bool black_border, EnvelopeStack& st) {
  stream_envelope(line, stride, n, w, true, black_border, !two_sided, st);
  if (two_sided) stream_envelope(line, stride, n, w, false, false, false, st);
}

// Pass 1 over m adjacent lines of one item at s, o (stride inner): in lockstep, kLanes lines at a
// time, then kTile at a time, the last (fewer than kTile) one by one.
template <index_t kLanes, typename T, typename L>
void first_pass_tile(const L* s, T* o, index_t m, const Plan& p, double w, index_t n,
                     index_t inner, index_t fg, bool narrow) {
  index_t j = 0;
  for (; j + kLanes <= m; j += kLanes) {
    if (narrow)
      first_pass_lanes<kLanes, float>(s + j, inner, fg, o + j, inner, n, w, p.two_sided,
                                      p.black_border);
    else
      first_pass_lanes<kLanes>(s + j, inner, fg, o + j, inner, n, w, p.two_sided,
                               p.black_border);
  }
  if constexpr (kLanes > kTile) {
    first_pass_tile<kTile>(s + j, o + j, m - j, p, w, n, inner, fg, narrow);
    return;
  }
  for (; j < m; ++j)
    first_pass_line(s + j, inner, fg, o + j, inner, n, w, p.two_sided, p.black_border, nullptr);
}

// Whether the `volume` elements of one item's source s are all of one class (foreground:
// == fg), and which (inside). Reads blocks of 4096 elements up to the first block holding both.
template <typename L>
bool single_class(const L* s, index_t volume, index_t fg, bool& inside) {
  const L cls = L(fg);
  inside = index_t(cls) == fg && s[0] == cls;  // a class L cannot hold is absent
  if (index_t(cls) != fg) return true;
  for (index_t b = 0; b < volume; b += 4096) {
    const index_t e = std::min(volume, b + 4096);
    unsigned char differs = 0;
    for (index_t i = b; i < e; ++i) differs |= (s[i] == cls) != inside;
    if (differs) return false;
  }
  return true;
}

// First pass of the items whose skip flag is 0 (all items without skip). mask_fg: the value of a
// mask's foreground elements (1; 0 where the mask's true elements are the sites).
template <typename T, typename L>
void first_pass(const L* src, T* out, const Plan& p, index_t volume,
                const char* skip = nullptr, index_t mask_fg = 1) {
  const int nd = static_cast<int>(p.shape.size());
  const index_t n = p.shape[0], inner = volume / n;
  // Tiles of kWideTile lines where that leaves every thread several: a strided line's rows are
  // far apart (pages apart in 3-D), and wide tiles keep more of them in flight.
  const index_t width =
      p.items * (inner / kWideTile) >= 8 * at::get_num_threads() ? kWideTile : kTile;
  const index_t tiles = (inner + width - 1) / width;
  // A float output can count in float (twice the lanes per instruction) while element counts
  // and every finite w d^2 stay exact or finite in it.
  const bool narrow = sizeof(T) == sizeof(float) && n < (index_t(1) << 24) &&
                      p.max_weight(0) * double(n) * double(n) < 1e30;
  at::parallel_for(0, p.items * tiles, 1, [&](index_t begin, index_t end) {
    for (index_t t = begin; t < end; ++t) {
      const index_t item = t / tiles, j0 = (t % tiles) * width;
      if (skip && skip[item]) continue;
      const index_t fg = p.classes ? item % p.classes : mask_fg;
      const L* s = src + (p.classes ? item / p.classes : item) * volume + j0;
      T* o = out + item * volume + j0;
      const index_t m = std::min(width, inner - j0);
      const double w = p.weights(item)[0];
      if (width == kWideTile)
        first_pass_tile<kWideTile>(s, o, m, p, w, n, inner, fg, narrow);
      else
        first_pass_tile<kTile>(s, o, m, p, w, n, inner, fg, narrow);
      if (nd == 1) finalize_span(o, n, p.fin_of(item));  // then inner == 1: o is the item's line
    }
  });
}

// The envelope pass along a middle axis a of the items whose skip flag is 0.
template <typename T>
void strided_envelope_pass(T* out, const Plan& p, int a, const char* skip) {
  const int nd = static_cast<int>(p.shape.size());
  const index_t n = p.shape[a];
  index_t inner = 1, outer = p.items;
  for (int b = a + 1; b < nd; ++b) inner *= p.shape[b];
  for (int b = 0; b < a; ++b) outer *= p.shape[b];
  const index_t per_item = outer / p.items;  // outer indices of one item
  if (index_t(3 * kTile * sizeof(T) + kEnvelopeBytes) * n > kScratchBytes) {  // tiles, f, z, v
    at::parallel_for(0, outer * inner, 1, [&](index_t begin, index_t end) {
      EnvelopeStack st;
      for (index_t l = begin; l < end; ++l) {
        const index_t item = l / inner / per_item;
        if (!skip[item])
          stream_envelope_line(out + (l / inner) * n * inner + l % inner, inner, n,
                               p.weights(item)[a], p.two_sided, p.black_border, st);
      }
    });
    return;
  }
  const index_t tiles = (inner + kTile - 1) / kTile;
  at::parallel_for(0, outer * tiles, 1, [&](index_t begin, index_t end) {
    std::vector<T> tile_in(n * kTile), tile_out(n * kTile), other(n * kTile);
    std::vector<double> f(n + 2), z(n + 2);
    std::vector<index_t> v(n + 2);
    for (index_t t = begin; t < end; ++t) {
      const index_t o = t / tiles, j0 = (t % tiles) * kTile, item = o / per_item;
      if (skip[item]) continue;
      const index_t m = std::min(kTile, inner - j0);
      const double w = p.weights(item)[a];
      T* base = out + o * n * inner + j0;
      for (index_t i = 0; i < n; ++i)
        std::memcpy(tile_in.data() + i * m, base + i * inner, m * sizeof(T));
      const unsigned done = m < kTile ? 0u
                                      : window_envelope<kTile, kTile>(
                                            tile_in.data(), tile_out.data(), n, w,
                                            p.two_sided, p.black_border, kReach,
                                            p.cap_of(item), 0, other.data());
      for (index_t j = 0; j < m; ++j)
        if (!(done >> j & 1u))
          envelope_line(tile_in.data() + j, m, tile_out.data() + j, m, n, w, p.two_sided,
                        p.black_border, f.data(), v.data(), z.data(), 1, nullptr);
      for (index_t i = 0; i < n; ++i)
        std::memcpy(base + i * inner, tile_out.data() + i * m, m * sizeof(T));
    }
  });
}

// Whether every |line[x]|, x < n, is at most limit: whether window_envelope() with that limit
// would have settled the line (a lane), given its results.
template <typename T>
bool settles_within(const T* line, index_t stride, index_t n, double limit) {
  T most = T(0);
  GD_SIMD
  for (index_t x = 0; x < n; ++x) most = std::max(most, T(fabs(line[x * stride])));
  return double(most) <= limit;
}

// The envelope pass along the last axis of the items whose skip flag is 0, finalizing them.
template <typename T>
void last_envelope_pass(T* out, const Plan& p, index_t volume, const char* skip) {
  const int nd = static_cast<int>(p.shape.size());
  const index_t n = p.shape[nd - 1], lines = volume / n;  // lines per item
  if (index_t(2 * sizeof(T) + kEnvelopeBytes) * n > kScratchBytes) {  // padded, other, f, z, v
    at::parallel_for(0, p.items * lines, 1, [&](index_t begin, index_t end) {
      EnvelopeStack st;
      for (index_t l = begin; l < end; ++l) {
        const index_t item = l / lines;
        if (skip[item]) continue;
        T* o = out + l * n;
        stream_envelope_line(o, 1, n, p.weights(item)[nd - 1], p.two_sided, p.black_border, st);
        finalize_span(o, n, p.fin_of(item));
      }
    });
    return;
  }
  at::parallel_for(0, p.items * lines, std::max<index_t>(1, 4096 / n),
                   [&](index_t begin, index_t end) {
                     // The line, between kPad values of +inf on each side.
                     std::vector<T> padded(n + 2 * kPad, T(INFINITY)), other(n);
                     T* line = padded.data() + kPad;
                     std::vector<double> f(n + 2), z(n + 2);
                     std::vector<index_t> v(n + 2);
                     // Lines next to each other mostly settle alike: the window is tried
                     // only after a line whose results show it would have settled.
                     bool try_window = true;
                     for (index_t l = begin; l < end; ++l) {
                       const index_t item = l / lines;
                       if (skip[item]) continue;
                       T* o = out + l * n;
                       const double w = p.weights(item)[nd - 1];
                       std::memcpy(line, o, n * sizeof(T));
                       const bool settled =
                           try_window && window_envelope<kChunk, 1>(
                                             line, o, n, w, p.two_sided, p.black_border, kLineReach,
                                             p.cap_of(item), kPad, other.data());
                       if (!settled) {
                         envelope_line(line, 1, o, 1, n, w, p.two_sided, p.black_border,
                                       f.data(), v.data(), z.data(), 1, nullptr);
                         // What window_envelope() settles: minima up to w (kLineReach + 1)^2.
                         try_window = settles_within(
                             o, 1, n, w * double(kLineReach + 1) * double(kLineReach + 1));
                       }
                       finalize_span(o, n, p.fin_of(item));
                     }
                   });
}

// The transform of every item of src into out. Items of a single class (single_class(): no
// boundary, nothing to measure; all foreground with black_border excepted) get their one value
// at once, the finalized stored value of their elements after the passes (foreground -inf,
// background +inf two-sided, +0 one-sided), and skip the passes. mask_fg: as first_pass()'s.
template <typename T, typename L>
void run_passes(const L* src, T* out, const Plan& p, index_t mask_fg = 1) {
  const int nd = static_cast<int>(p.shape.size());
  index_t volume = 1;
  for (index_t s : p.shape) volume *= s;
  std::vector<char> skip(p.items, 0);
  at::parallel_for(0, p.items, 1, [&](index_t begin, index_t end) {
    for (index_t item = begin; item < end; ++item) {
      const index_t fg = p.classes ? item % p.classes : mask_fg;
      const L* s = src + (p.classes ? item / p.classes : item) * volume;
      bool inside = false;
      if (!single_class(s, volume, fg, inside) || (inside && p.black_border)) continue;
      const double stored = inside ? -inf_value() : p.two_sided ? inf_value() : 0.0;
      std::fill(out + item * volume, out + (item + 1) * volume,
                finalize(T(stored), p.fin_of(item)));
      skip[item] = 1;
    }
  });
  first_pass(src, out, p, volume, skip.data(), mask_fg);
  for (int a = 1; a + 1 < nd; ++a) strided_envelope_pass(out, p, a, skip.data());
  if (nd > 1) last_envelope_pass(out, p, volume, skip.data());
}

}  // namespace gpudist::cpu
