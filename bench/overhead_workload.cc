// A fixed amount of CPU-bound work for overhead_benchmark: THREADS threads each run ITERATIONS
// rounds of a three-deep call chain (Outer -> Middle -> Inner, frame pointers kept, so every
// profiler can unwind it), then it prints how long the work took and when it ended:
//   work_s=<seconds> end_monotonic_ns=<CLOCK_MONOTONIC ns>
// Usage: overhead_workload THREADS ITERATIONS
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

int64_t Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// noinline keeps the chain visible to every unwinder; the xorshift keeps the loop from being
// folded into a closed form.
__attribute__((noinline)) uint64_t Inner(uint64_t x) {
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

__attribute__((noinline)) uint64_t Middle(uint64_t x) { return Inner(x) + Inner(x + 1); }

__attribute__((noinline)) uint64_t Outer(long rounds, uint64_t seed) {
  uint64_t acc = seed;
  for (long r = 0; r < rounds; ++r) acc += Middle(acc | 1);
  return acc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: overhead_workload THREADS ITERATIONS\n");
    return 2;
  }
  int threads = atoi(argv[1]);
  long iterations = atol(argv[2]);
  if (threads < 1 || iterations < 1) {
    fprintf(stderr, "overhead_workload: THREADS and ITERATIONS must be >= 1\n");
    return 2;
  }
  std::vector<uint64_t> results(threads);
  int64_t start = Now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&results, t, iterations] { results[t] = Outer(iterations, t + 1); });
  }
  for (auto& th : pool) th.join();
  int64_t end = Now();
  uint64_t sum = 0;
  for (uint64_t r : results) sum += r;
  printf("work_s=%.6f end_monotonic_ns=%lld checksum=%llu\n", (end - start) * 1e-9,
         static_cast<long long>(end), static_cast<unsigned long long>(sum));
  return 0;
}
