// The program fork_testprog's children exec in the exec test: it burns CPU in one function
// with a name no other test program has, so a profile can only name it when the exec'd image
// was symbolized with its own binary.
//
// Usage: exec_testprog MS   (burns MS milliseconds of CPU time)
#include <time.h>

#include <cstdlib>

extern "C" __attribute__((noinline, noipa)) void ExecHotLoop(long n) {
  for (volatile long i = 0; i < n;) {
    i = i + 1;  // Not ++i: increments of volatiles are deprecated in C++20.
  }
}

int main(int argc, char** argv) {
  const double ms = argc > 1 ? std::atof(argv[1]) : 500;
  timespec ts;
  auto cpu_ms = [&ts] {
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
  };
  const double end = cpu_ms() + ms;
  while (cpu_ms() < end) ExecHotLoop(5000);
  return 0;
}
