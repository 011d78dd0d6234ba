// The block emulator's runtime (see emulator.h) and its driver: `emulator SCRIPT` runs a launch
// script written by tests/cuda_shim/emulator.py, one command a line:
//   buffer ID BYTES FILL        FILL: nan (bytes 0xff), zero, or file:PATH (BYTES bytes of it)
//   launch NAME GX GY BX SEED N ARG...   ARG: b:ID (a buffer's address), i32:V, i64:V, u64:V,
//                                        f64:V; blocks in a random order (SEED), BX threads each
//   dump ID PATH
//   model L2_BYTES              from here on: the coalescing model (a build with trace hooks)
// With the model, every launch prints one line:
//   model NAME requests=R sectors=S bytes=B dram_read=DR dram_write=DW
// where a request is one warp's execution of one memory instruction (the k-th execution of an
// instruction by each lane of the warp: exact for converged code; where lanes leave a loop at
// different iterations it pairs accesses of different iterations, so sectors/request is an upper
// bound there), S the 32-byte sectors its lanes touch, B the bytes they ask for, and DR/DW the
// bytes an LRU cache of L2_BYTES (write-back, sector-granular, fed warp-by-warp round-robin)
// reads from and writes to DRAM.
// Errors (a deadlock, a warp op whose mask names an exited lane, shared memory overflow) print a
// message and exit with status 70.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <list>
#include <map>
#include <new>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "emulator.h"

thread_local gd_dim3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0};
gd_dim3 blockDim{1, 1, 1}, gridDim{1, 1, 1};

using Kernel = void (*)(void**);
extern "C" Kernel gd_emu_kernel(const char* name);  // the kernels' translation unit

namespace gd_emu {
namespace {

constexpr std::size_t kArenaBytes = 48 * 1024;  // static shared memory per block
constexpr auto kTimeout = std::chrono::seconds(20);

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "emulator error: %s (block %u,%u thread %u)\n", what.c_str(), blockIdx.x,
               blockIdx.y, threadIdx.x);
  std::fflush(stderr);
  std::_Exit(70);
}

struct Warp {
  std::mutex m;
  std::condition_variable cv;
  unsigned live = 0;     // lanes that have not exited
  unsigned arrived = 0;  // lanes waiting at the current warp barrier
  unsigned waiting = 0;  // the masks of the groups waiting
  unsigned long long slot[32] = {};
};

struct Block {
  std::mutex m;
  std::condition_variable cv;
  int live = 0, arrived = 0;
  unsigned long generation = 0;
  std::vector<std::unique_ptr<Warp>> warps;
  std::unique_ptr<unsigned char[]> arena;
};

Block* g_block = nullptr;
thread_local std::size_t tl_shared = 0;  // this thread's next shared offset

struct Access {
  const void* pc;
  std::uintptr_t addr;
  unsigned size;
  bool write;
};
std::vector<std::pair<std::uintptr_t, std::uintptr_t>> g_global;  // [begin, end) of buffers
thread_local std::vector<Access>* tl_log = nullptr;

int lane() { return int(threadIdx.x % 32); }
Warp& warp() { return *g_block->warps[threadIdx.x / 32]; }

// Waits until the lanes of `mask` (this lane among them) have all arrived.
void warp_barrier(Warp& w, unsigned mask, std::unique_lock<std::mutex>& lock) {
  const unsigned bit = 1u << lane();
  if (!(mask & bit)) fail("a warp op by a lane outside its mask");
  if ((mask & w.live) != mask) fail("a warp op whose mask names an exited lane");
  w.arrived |= bit;
  w.waiting |= mask;
  if ((w.arrived & mask) == mask) {
    w.arrived &= ~mask;
    w.waiting &= ~mask;
    w.cv.notify_all();
    return;
  }
  if (!w.cv.wait_for(lock, kTimeout, [&] { return !(w.arrived & bit); }))
    fail("deadlock: a warp op some lane of its mask never reached");
}

}  // namespace

void sync_block() {
  Block& b = *g_block;
  std::unique_lock<std::mutex> lock(b.m);
  const unsigned long gen = b.generation;
  if (++b.arrived == b.live) {
    b.arrived = 0;
    ++b.generation;
    b.cv.notify_all();
    return;
  }
  if (!b.cv.wait_for(lock, kTimeout, [&] { return b.generation != gen; }))
    fail("deadlock: __syncthreads() that some thread never reached");
}

void sync_warp(unsigned mask) {
  Warp& w = warp();
  std::unique_lock<std::mutex> lock(w.m);
  warp_barrier(w, mask, lock);
}

unsigned long long exchange(unsigned mask, unsigned long long value, Op op, int arg, int width) {
  Warp& w = warp();
  std::unique_lock<std::mutex> lock(w.m);
  const int me = lane(), base = me & ~(width - 1);
  w.slot[me] = value;
  warp_barrier(w, mask, lock);
  unsigned long long result = value;
  auto read = [&](int from) {
    if (!(mask >> from & 1u)) fail("a shuffle reads a lane outside its mask");
    return w.slot[from];
  };
  switch (op) {
    case kShflIdx: result = read(base + (arg & (width - 1))); break;
    case kShflUp: result = me - arg >= base ? read(me - arg) : value; break;
    case kShflDown: result = me + arg < base + width ? read(me + arg) : value; break;
    case kShflXor: result = read(base + ((me ^ arg) & (width - 1))); break;
    default: {
      unsigned ballot = 0;
      for (int l = 0; l < 32; ++l)
        if (mask >> l & 1u) ballot |= (w.slot[l] != 0) << l;
      result = op == kBallot ? ballot : op == kAny ? ballot != 0 : ballot == mask;
    }
  }
  warp_barrier(w, mask, lock);  // no lane overwrites its slot before every lane has read
  return result;
}

void* shared_alloc(std::size_t bytes, std::size_t align) {
  tl_shared = (tl_shared + align - 1) / align * align;
  if (tl_shared + bytes > kArenaBytes) fail("shared memory beyond the 48 KiB of a block");
  void* p = g_block->arena.get() + tl_shared;
  tl_shared += bytes;
  return p;
}

// Called by the trace hooks (trace_hooks.cpp) of the model build on every access.
void record(const void* addr, unsigned size, bool write, const void* pc) {
  if (!tl_log) return;
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  for (const auto& r : g_global)
    if (a >= r.first && a < r.second) {
      tl_log->push_back({pc, a, size, write});
      return;
    }
}

namespace {

// The coalescing model of one launch (see the top of the file).
struct Model {
  std::size_t capacity = 0;  // sectors
  long long requests = 0, sectors = 0, bytes = 0, dram_read = 0, dram_write = 0;
  std::list<std::uintptr_t> lru;
  std::unordered_map<std::uintptr_t, std::pair<std::list<std::uintptr_t>::iterator, bool>> lines;

  void touch(std::uintptr_t sector, bool write) {
    auto it = lines.find(sector);
    if (it != lines.end()) {
      lru.splice(lru.begin(), lru, it->second.first);
      it->second.second |= write;
      return;
    }
    if (!write) dram_read += 32;
    lru.push_front(sector);
    lines[sector] = {lru.begin(), write};
    if (lines.size() > capacity) {
      auto last = lines.find(lru.back());
      if (last->second.second) dram_write += 32;
      lines.erase(last);
      lru.pop_back();
    }
  }
  void flush() {
    for (auto& kv : lines) dram_write += kv.second.second ? 32 : 0;
    lines.clear();
    lru.clear();
  }
  // One block's logs, threads in order: request k of a warp is the k-th execution of one
  // instruction (pc, load or store) by its lanes.
  void block(const std::vector<std::vector<Access>>& logs) {
    struct Request {
      bool write = false;
      std::vector<std::pair<std::uintptr_t, unsigned>> lanes;
    };
    using Key = std::tuple<const void*, bool, long long>;
    std::vector<std::vector<Request>> per_warp;
    for (std::size_t w0 = 0; w0 < logs.size(); w0 += 32) {
      std::map<Key, std::size_t> index;  // request -> its position in the warp's order
      std::vector<Request> order;
      for (std::size_t t = w0; t < std::min(logs.size(), w0 + 32); ++t) {
        std::map<std::pair<const void*, bool>, long long> seen;
        for (const Access& a : logs[t]) {
          const Key key{a.pc, a.write, seen[{a.pc, a.write}]++};
          auto it = index.find(key);
          if (it == index.end()) {
            it = index.emplace(key, order.size()).first;
            order.emplace_back();
            order.back().write = a.write;
          }
          order[it->second].lanes.push_back({a.addr, a.size});
        }
      }
      per_warp.push_back(std::move(order));
    }
    std::size_t longest = 0;  // round-robin over the warps, request by request
    for (auto& o : per_warp) longest = std::max(longest, o.size());
    for (std::size_t k = 0; k < longest; ++k)
      for (auto& o : per_warp) {
        if (k >= o.size()) continue;
        std::set<std::uintptr_t> touched;
        for (auto& [addr, size] : o[k].lanes) {
          bytes += size;
          for (std::uintptr_t s = addr >> 5; s <= (addr + size - 1) >> 5; ++s) touched.insert(s);
        }
        ++requests;
        sectors += static_cast<long long>(touched.size());
        for (std::uintptr_t s : touched) touch(s, o[k].write);
      }
  }
};

}  // namespace
}  // namespace gd_emu

namespace {

using namespace gd_emu;

// Runs one launch: blocks in a random order, each with blockDim.x threads started in a random
// order, each thread calling the kernel once.
void launch(Kernel kernel, void** argv, unsigned seed, Model* model) {
  std::mt19937 rng(seed);
  std::vector<gd_dim3> blocks;
  for (unsigned y = 0; y < gridDim.y; ++y)
    for (unsigned x = 0; x < gridDim.x; ++x) blocks.push_back({x, y, 0});
  std::shuffle(blocks.begin(), blocks.end(), rng);
  const unsigned n = blockDim.x;
  for (const gd_dim3& b : blocks) {
    Block block;
    block.live = int(n);
    for (unsigned w = 0; w < (n + 31) / 32; ++w) {
      block.warps.push_back(std::make_unique<Warp>());
      const unsigned lanes = std::min(32u, n - 32 * w);
      block.warps.back()->live = lanes == 32 ? ~0u : (1u << lanes) - 1;
    }
    block.arena.reset(new unsigned char[kArenaBytes]);
    std::memset(block.arena.get(), 0xff, kArenaBytes);
    g_block = &block;
    std::vector<std::vector<Access>> logs(model ? n : 0);
    std::vector<unsigned> order(n);
    for (unsigned t = 0; t < n; ++t) order[t] = t;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<unsigned> yields(n);
    for (unsigned& y : yields) y = rng() % 4;
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (unsigned t : order)
      threads.emplace_back([&, t] {
        threadIdx = {t, 0, 0};
        blockIdx = b;
        tl_shared = 0;
        tl_log = model ? &logs[t] : nullptr;
        for (unsigned i = 0; i < yields[t]; ++i) std::this_thread::yield();
        kernel(argv);
        tl_log = nullptr;
        {  // exited: excused from barriers from now on
          std::lock_guard<std::mutex> lock(block.m);
          if (--block.live > 0 && block.arrived == block.live) {
            block.arrived = 0;
            ++block.generation;
            block.cv.notify_all();
          }
        }
        Warp& w = *block.warps[t / 32];
        std::lock_guard<std::mutex> lock(w.m);
        if (w.waiting >> (t % 32) & 1u) fail("a lane exited while its warp waits for it");
        w.live &= ~(1u << (t % 32));
      });
    for (std::thread& th : threads) th.join();
    g_block = nullptr;
    if (model) model->block(logs);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: emulator SCRIPT\n");
    return 2;
  }
  std::ifstream script(argv[1]);
  struct Buffer {  // 256-byte aligned, as cudaMalloc's
    std::unique_ptr<unsigned char[], void (*)(unsigned char*)> data{nullptr, nullptr};
    std::size_t size = 0;
  };
  std::map<std::string, Buffer> buffers;
  std::size_t l2 = 0;
  bool model_on = false;
  std::string line;
  while (std::getline(script, line)) {
    std::istringstream in(line);
    std::string cmd;
    if (!(in >> cmd)) continue;
    if (cmd == "buffer") {
      std::string id, fill;
      std::size_t bytes = 0;
      in >> id >> bytes >> fill;
      Buffer& buf = buffers[id];
      buf.size = bytes ? bytes : 1;
      buf.data = {static_cast<unsigned char*>(::operator new[](buf.size, std::align_val_t(256))),
                  [](unsigned char* p) { ::operator delete[](p, std::align_val_t(256)); }};
      std::memset(buf.data.get(), fill == "zero" ? 0 : 0xff, buf.size);
      if (fill.rfind("file:", 0) == 0) {
        std::ifstream f(fill.substr(5), std::ios::binary);
        f.read(reinterpret_cast<char*>(buf.data.get()), std::streamsize(bytes));
      }
      auto begin = reinterpret_cast<std::uintptr_t>(buf.data.get());
      g_global.push_back({begin, begin + buf.size});
    } else if (cmd == "launch") {
      std::string name;
      unsigned gx, gy, bx, seed, nargs;
      in >> name >> gx >> gy >> bx >> seed >> nargs;
      std::vector<unsigned long long> storage(nargs);
      std::vector<void*> args(nargs);
      for (unsigned i = 0; i < nargs; ++i) {
        std::string a;
        in >> a;
        const std::string kind = a.substr(0, a.find(':')), v = a.substr(a.find(':') + 1);
        void* slot = &storage[i];
        if (kind == "b") {
          void* p = buffers.at(v).data.get();
          std::memcpy(slot, &p, sizeof p);
        } else if (kind == "i32") {
          const int x = std::stoi(v);
          std::memcpy(slot, &x, sizeof x);
        } else if (kind == "i64") {
          const long long x = std::stoll(v);
          std::memcpy(slot, &x, sizeof x);
        } else if (kind == "u64") {
          const unsigned long long x = std::stoull(v);
          std::memcpy(slot, &x, sizeof x);
        } else if (kind == "f64") {
          const double x = std::strtod(v.c_str(), nullptr);
          std::memcpy(slot, &x, sizeof x);
        } else {
          std::fprintf(stderr, "bad argument %s\n", a.c_str());
          return 2;
        }
        args[i] = slot;
      }
      Kernel kernel = gd_emu_kernel(name.c_str());
      if (!kernel) {
        std::fprintf(stderr, "no kernel %s\n", name.c_str());
        return 2;
      }
      gridDim = {gx, gy, 1};
      blockDim = {bx, 1, 1};
      Model model;
      model.capacity = l2 / 32;
      launch(kernel, args.data(), seed, model_on ? &model : nullptr);
      if (model_on) {
        model.flush();
        std::printf("model %s requests=%lld sectors=%lld bytes=%lld dram_read=%lld "
                    "dram_write=%lld\n", name.c_str(), model.requests, model.sectors,
                    model.bytes, model.dram_read, model.dram_write);
      }
    } else if (cmd == "dump") {
      std::string id, path;
      in >> id >> path;
      std::ofstream f(path, std::ios::binary);
      const auto& buf = buffers.at(id);
      f.write(reinterpret_cast<const char*>(buf.data.get()), std::streamsize(buf.size));
    } else if (cmd == "model") {
      in >> l2;
      model_on = true;
    } else {
      std::fprintf(stderr, "bad command %s\n", cmd.c_str());
      return 2;
    }
  }
  return 0;
}
