// Workload for unwinder_test and record_test's DWARF case, built WITHOUT frame pointers
// (-O2 -fomit-frame-pointer -g): one leaf, Burn, called from CallerA with 3 parts of the work and
// from CallerB with 1 part. A profile attributes 75/25 to the callers only if it unwinds
// through Burn (which never touches rbp) with CFI; a frame-pointer walk loses the callers.
//
// Usage: unwinder_testprog CPU_MS
// Protocol: prints "ready", waits for one byte on stdin, burns CPU_MS of its own CPU time (not
// wall time: on a busy host the sample count stays what the test expects), prints "done",
// then exits at EOF on stdin (so a test can still inspect /proc/<pid>/maps after the burn;
// `echo g | unwinder_testprog N` exits right after burning).
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

// noipa: no inlining, cloning or interprocedural shortcuts, so the callers stay real frames.
#define UNWIND_ATTR extern "C" __attribute__((noinline, noipa))

UNWIND_ATTR long Burn(long n) {
  long sum = 0;
  for (volatile long i = 0; i < n;) {
    i = i + 1;  // Not ++i: increments of volatiles are deprecated in C++20.
    sum += 3;
  }
  return sum;
}

// The "+ 1" after the call keeps it a call (a tail call would leave no caller frame to find).
UNWIND_ATTR long CallerA(long n) { return Burn(3 * n) + 1; }
UNWIND_ATTR long CallerB(long n) { return Burn(n) + 1; }

namespace {

constexpr long kChunk = 50000;
volatile long g_sink = 0;

long ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

__attribute__((noinline)) void BurnUntil(long cpu_deadline_ns) {
  while (ThreadCpuNs() < cpu_deadline_ns) {
    g_sink = g_sink + CallerA(kChunk);
    g_sink = g_sink + CallerB(kChunk);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CPU_MS\n", argv[0]);
    return 2;
  }
  const long cpu_ms = std::atol(argv[1]);
  std::printf("ready\n");
  std::fflush(stdout);
  char go = 0;
  if (read(STDIN_FILENO, &go, 1) != 1) return 3;
  BurnUntil(ThreadCpuNs() + cpu_ms * 1000000L);
  std::printf("done\n");
  std::fflush(stdout);
  while (read(STDIN_FILENO, &go, 1) == 1) {
  }
  return 0;
}
