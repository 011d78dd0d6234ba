// gpudist: the passes of the CPU distance transform, used by distance_transform_cpu.cpp and
// distance_at/distance_at_cpu.cpp.
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
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "distance_transform/distance_transform.h"

namespace gpudist::cpu {

constexpr index_t kTile = 16;
constexpr int kChunk = 16;
// Windowed envelope (window_envelope): offsets up to this many elements, then the lines whose
// minima it has not settled go to the stack envelope. Any value is exact; 32 measured fastest.
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

}  // namespace gpudist::cpu
