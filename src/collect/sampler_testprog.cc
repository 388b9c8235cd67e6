// Workload for sampler_test: burns CPU in BurnA and BurnB in a 3:1 ratio by iterations on the
// main thread, and on a second thread ("late_burner") started after a delay so the test can
// prove that threads created after Sampler::Start are followed.
//
// Usage: sampler_testprog DURATION_MS LATE_DELAY_MS   (LATE_DELAY_MS < 0: no late thread)
//        sampler_testprog DURATION_MS -1 SHORT_THREAD_MS
// The second form (for system-wide sampling) burns in a sequence of short-lived threads, each
// using SHORT_THREAD_MS of CPU and exiting, and forks a child process that burns for half the
// duration; it prints "child <pid>".
// Protocol on stdout: "A <hex addr>", "B <hex addr>", "ready"; then it waits for one byte on
// stdin before burning; the late thread prints "late <tid>" once named.
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

// extern "C" keeps `nm` output unmangled; noipa stops GCC from folding the identical bodies
// (they must stay identical so an iteration costs the same in both); aligned(64) gives both
// loops the same placement relative to cache lines and decode windows, which otherwise skews
// the per-iteration cost by up to ~2x (seen: 85/15 instead of 75/25).
#define BURN_ATTR __attribute__((noinline, noipa, aligned(64)))

extern "C" BURN_ATTR void BurnA(long n) {
  for (volatile long i = 0; i < n;) {
    i = i + 1;  // Not ++i: increments of volatiles are deprecated in C++20.
  }
}

extern "C" BURN_ATTR void BurnB(long n) {
  for (volatile long i = 0; i < n;) {
    i = i + 1;  // Not ++i: increments of volatiles are deprecated in C++20.
  }
}

namespace {

constexpr long kChunk = 50000;

void BurnUntil(std::chrono::steady_clock::time_point deadline) {
  while (std::chrono::steady_clock::now() < deadline) {
    BurnA(3 * kChunk);
    BurnB(kChunk);
  }
}

double ThreadCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

int ShortThreads(long duration_ms, long thread_ms) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(duration_ms);
  pid_t child = fork();
  if (child == 0) {
    BurnUntil(start + std::chrono::milliseconds(duration_ms / 2));
    _exit(0);
  }
  std::printf("child %d\n", static_cast<int>(child));
  std::fflush(stdout);
  while (std::chrono::steady_clock::now() < deadline) {
    std::thread t([thread_ms] {
      const double end = ThreadCpuMs() + static_cast<double>(thread_ms);
      while (ThreadCpuMs() < end) BurnA(kChunk / 10);
    });
    t.join();
  }
  int status = 0;
  waitpid(child, &status, 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s DURATION_MS LATE_DELAY_MS [SHORT_THREAD_MS]\n", argv[0]);
    return 2;
  }
  const long duration_ms = std::atol(argv[1]);
  const long late_delay_ms = std::atol(argv[2]);
  std::printf("A %p\nB %p\nready\n", reinterpret_cast<void*>(&BurnA),
              reinterpret_cast<void*>(&BurnB));
  std::fflush(stdout);
  char go = 0;
  if (read(STDIN_FILENO, &go, 1) != 1) return 3;
  if (argc == 4) return ShortThreads(duration_ms, std::atol(argv[3]));

  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(duration_ms);
  std::thread late;
  if (late_delay_ms >= 0 && late_delay_ms < duration_ms) {
    BurnUntil(start + std::chrono::milliseconds(late_delay_ms));
    late = std::thread([deadline] {
      pthread_setname_np(pthread_self(), "late_burner");
      std::printf("late %ld\n", static_cast<long>(syscall(SYS_gettid)));
      std::fflush(stdout);
      BurnUntil(deadline);
    });
  }
  BurnUntil(deadline);
  if (late.joinable()) late.join();
  return 0;
}
