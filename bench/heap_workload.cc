// A fixed amount of allocation-heavy work for heap_benchmark, shaped like a service rather than
// a malloc/free loop: THREADS threads each run OPS operations, drawn from a seeded generator
// (same work every run), over
//   - a pool of live blocks replaced at random (medium lifetimes),
//   - short-lived C++ objects (std::string, a growing std::vector: operator new/delete and
//     the reallocations of growth),
//   - realloc and calloc of pool blocks,
//   - long-lived blocks kept until the end (a cache that only fills),
//   - blocks handed to the next thread and freed there (a producer/consumer queue),
// with sizes from 16 B to 1 MiB (mostly small; the largest cross glibc's mmap threshold), each
// block written to, as real code does. It then prints how long the work took, when it ended,
// how many allocation calls it made itself and its own peak RSS:
//   work_s=<s> end_monotonic_ns=<ns> alloc_calls=<n> self_maxrss_kb=<kb> checksum=<x>
// Usage: heap_workload THREADS OPS
#include <sys/resource.h>
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

int64_t Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Rng {
  uint64_t s;
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
};

// Skewed to small blocks, as in most C++ services: 60 % 16-128 B, 25 % to 1 KiB, 10 % to
// 8 KiB, 4 % to 64 KiB, 1 % to 1 MiB (above glibc's 128 KiB mmap threshold at first).
size_t DrawSize(Rng& r) {
  uint64_t p = r.Below(100);
  if (p < 60) return 16 + r.Below(113);
  if (p < 85) return 129 + r.Below(896);
  if (p < 95) return 1025 + r.Below(7168);
  if (p < 99) return 8193 + r.Below(57344);
  return 65537 + r.Below(983040);
}

// Writes the head of the block (and a byte per page of a large one): the work real code does
// with what it allocates, and enough that an allocator cannot hand out untouched pages.
uint64_t Touch(void* p, size_t n, uint64_t v) {
  auto* b = static_cast<unsigned char*>(p);
  memset(b, static_cast<int>(v), n < 64 ? n : 64);
  for (size_t i = 4096; i < n; i += 4096) b[i] = static_cast<unsigned char>(v);
  return b[0];
}

// Blocks passed from thread t to thread t+1, freed by the receiver.
struct Mailbox {
  std::mutex mu;
  std::vector<void*> blocks;
};

constexpr size_t kPool = 1024;

struct Worker {
  Rng rng;
  std::vector<void*> pool = std::vector<void*>(kPool, nullptr);
  std::vector<void*> kept;  // long-lived: freed only at the end
  uint64_t alloc_calls = 0;
  uint64_t checksum = 0;

  void* Alloc(size_t n) {
    ++alloc_calls;
    void* p = malloc(n);
    if (p == nullptr) abort();
    checksum += Touch(p, n, rng.s);
    return p;
  }
  void Replace(size_t slot, void* p) {
    free(pool[slot]);
    pool[slot] = p;
  }
  void ShortLived() {
    // Longer than the small-string buffer: the string allocates.
    std::string url = "rtsp://127.0.0.1:8554/camera-" + std::to_string(rng.Below(100000));
    ++alloc_calls;
    std::vector<uint32_t> v;
    size_t n = rng.Below(200), cap = 0;
    for (size_t i = 0; i < n; ++i) {
      v.push_back(static_cast<uint32_t>(i));
      if (v.capacity() != cap) {  // a growth step: a new block, the old one freed
        cap = v.capacity();
        ++alloc_calls;
      }
    }
    checksum += url.size() + (v.empty() ? 0 : v.back());
  }
  void Realloc(size_t slot) {
    size_t n = DrawSize(rng);
    ++alloc_calls;
    void* p = realloc(pool[slot], n);
    if (p == nullptr) abort();
    pool[slot] = p;
    checksum += Touch(p, n, rng.s);
  }
  void Calloc(size_t slot) {
    size_t n = DrawSize(rng);
    ++alloc_calls;
    void* p = calloc(1, n);
    if (p == nullptr) abort();
    checksum += static_cast<unsigned char*>(p)[n - 1];
    Replace(slot, p);
  }
  void Handoff(Mailbox& out, Mailbox& in) {
    void* p = Alloc(DrawSize(rng));
    {
      std::lock_guard<std::mutex> l(out.mu);
      out.blocks.push_back(p);
    }
    std::vector<void*> got;
    {
      std::lock_guard<std::mutex> l(in.mu);
      got.swap(in.blocks);
    }
    for (void* b : got) free(b);
  }

  void Run(long ops, Mailbox& out, Mailbox& in) {
    for (long i = 0; i < ops; ++i) {
      uint64_t p = rng.Below(100);
      size_t slot = rng.Below(kPool);
      if (p < 50) {
        Replace(slot, Alloc(DrawSize(rng)));
      } else if (p < 75) {
        ShortLived();
      } else if (p < 85) {
        Realloc(slot);
      } else if (p < 90) {
        Calloc(slot);
      } else if (p < 95) {
        kept.push_back(Alloc(16 + rng.Below(1009)));
      } else {
        Handoff(out, in);
      }
    }
  }
  void FreeAll() {
    for (void* p : pool) free(p);
    for (void* p : kept) free(p);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: heap_workload THREADS OPS\n");
    return 2;
  }
  int threads = atoi(argv[1]);
  long ops = atol(argv[2]);
  if (threads < 1 || ops < 1) {
    fprintf(stderr, "heap_workload: THREADS and OPS must be >= 1\n");
    return 2;
  }
  std::vector<Worker> workers(threads);
  std::vector<Mailbox> boxes(threads);
  for (int t = 0; t < threads; ++t) workers[t].rng.s = 0x9E3779B97F4A7C15ull * (t + 1);
  int64_t start = Now();
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] { workers[t].Run(ops, boxes[(t + 1) % threads], boxes[t]); });
  }
  for (auto& th : pool) th.join();
  uint64_t calls = 0, checksum = 0;
  for (auto& w : workers) {
    w.FreeAll();
    calls += w.alloc_calls;
    checksum += w.checksum;
  }
  for (auto& b : boxes) {
    for (void* p : b.blocks) free(p);
  }
  int64_t end = Now();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  printf("work_s=%.6f end_monotonic_ns=%lld alloc_calls=%llu self_maxrss_kb=%ld checksum=%llu\n",
         static_cast<double>(end - start) / 1e9, static_cast<long long>(end),
         static_cast<unsigned long long>(calls), ru.ru_maxrss,
         static_cast<unsigned long long>(checksum));
  return 0;
}
