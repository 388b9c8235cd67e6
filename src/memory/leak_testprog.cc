// A program with a known leak rate, for the memory tests (issue 11's known-truth check).
//
//   leak_testprog leak   KIB_PER_S [SECONDS]   leaks KIB_PER_S for SECONDS (default 120)
//   leak_testprog warmup KIB_PER_S [SECONDS]   grows at that rate for the first 3 s, then flat
//   leak_testprog reclaim PERCENT [SECONDS]    frees PERCENT % of what it allocates, steadily
//
// The leak: LeakOneBlock allocates a 256 KiB block and touches every byte (so it is resident),
// on an absolute schedule (block k at start + k * period), so resident memory grows at exactly
// KIB_PER_S KiB per second. Alongside, ChurnOnce allocates and frees 1 MiB in mixed sizes every
// period (what a healthy service does), which must not look like a leak. Prints "ready" once
// started. The first blocks reuse heap memory the churn freed (already resident), so RSS starts
// rising a little after the start: the tests' warm-up covers that.
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// 256 KiB less malloc's chunk header: the mmap'd chunk is then exactly 64 pages.
constexpr size_t kBlock = (256 << 10) - 64;
constexpr double kBlockKib = 256;
constexpr double kWarmupS = 3;

std::vector<void*>* g_leaked = new std::vector<void*>;  // reachable, yet never freed

__attribute__((noinline)) void LeakOneBlock() {
  void* p = std::malloc(kBlock);
  std::memset(p, 0x5a, kBlock);
  g_leaked->push_back(p);
}

__attribute__((noinline)) void ChurnOnce(unsigned* seed) {
  std::vector<char*> live;
  size_t total = 0;
  while (total < (1u << 20)) {
    size_t size = 1024 + rand_r(seed) % (64 << 10);
    char* p = static_cast<char*>(std::malloc(size));
    std::memset(p, 1, size);
    live.push_back(p);
    total += size;
  }
  for (char* p : live) std::free(p);
}

// The reclaim mode's truth: every cycle allocates kCycleBlocks blocks of one size and frees the
// first `percent` of them, so freed / allocated bytes is percent / 100 exactly (one size: the
// same usable size each), over any window of whole cycles; 500 cycles a second make a window of
// seconds hold 10^5 allocations, so a partial cycle at either end moves the ratio < 0.1 %.
// The kept blocks are chained through their first word: reachable, with no container that
// would allocate (and free) behind the count.
constexpr int kCycleBlocks = 100;
constexpr size_t kReclaimBlock = 64;
void* volatile g_kept = nullptr;
void* g_cycle[kCycleBlocks];  // global: the compiler cannot elide the malloc/free pairs

__attribute__((noinline)) void ReclaimCycle(int percent) {
  for (void*& p : g_cycle) {
    p = std::malloc(kReclaimBlock);
    std::memset(p, 0x11, kReclaimBlock);
  }
  for (int i = 0; i < kCycleBlocks; ++i) {
    if (i < percent) {
      std::free(g_cycle[i]);
    } else {
      *static_cast<void**>(g_cycle[i]) = g_kept;
      g_kept = g_cycle[i];
    }
  }
}

void SleepUntil(const timespec& start, double offset_s) {
  timespec t = start;
  auto whole = static_cast<time_t>(offset_s);
  t.tv_sec += whole;
  t.tv_nsec += static_cast<long>((offset_s - static_cast<double>(whole)) * 1e9);
  if (t.tv_nsec >= 1000000000) t.tv_sec += 1, t.tv_nsec -= 1000000000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nullptr) != 0) {
  }
}

// Says "ready", then runs step(offset_s) at start + k * period for `seconds`.
template <typename Step>
void RunPaced(double period, double seconds, Step step) {
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  std::printf("ready\n");
  std::fflush(stdout);
  for (double k = 0; k * period < seconds; ++k) {
    SleepUntil(start, k * period);
    step(k * period);
  }
}

}  // namespace

int Reclaim(int percent, double seconds) {
  RunPaced(1.0 / 500, seconds, [percent](double) { ReclaimCycle(percent); });
  return 0;
}

int main(int argc, char** argv) {
  std::string mode = argc >= 3 ? argv[1] : "";
  if (mode == "reclaim") {
    int percent = std::atoi(argv[2]);
    double seconds = argc > 3 ? std::atof(argv[3]) : 120;
    if (percent < 0 || percent > 100 || !(seconds > 0)) return 2;
    return Reclaim(percent, seconds);
  }
  if (mode != "leak" && mode != "warmup") {
    std::fprintf(stderr,
                 "usage: leak_testprog leak|warmup KIB_PER_S [SECONDS] | reclaim PERCENT "
                 "[SECONDS]\n");
    return 2;
  }
  bool warmup_only = std::string(argv[1]) == "warmup";
  double rate_kib = std::atof(argv[2]);
  double seconds = argc > 3 ? std::atof(argv[3]) : 120;
  if (!(rate_kib > 0) || !(seconds > 0)) return 2;
  unsigned seed = 42;
  RunPaced(kBlockKib / rate_kib, seconds, [&](double at_s) {
    if (!warmup_only || at_s < kWarmupS) LeakOneBlock();
    ChurnOnce(&seed);
  });
  return 0;
}
