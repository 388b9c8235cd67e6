// Workload for the ordering tests: a burst of short-lived child processes, optionally each
// exec'ing another program.
//
// Usage: fork_testprog N CHILD_MS [PROG ARGS...]
// Prints "ready", waits for one byte on stdin, then forks N children one after another; each
// burns CHILD_MS of its own CPU time in BurnChild and exits (or, with PROG, execs PROG ARGS
// after burning). After the last child it prints "child <pid>" for each child and
// "rusage_children_ns <n>" (getrusage(RUSAGE_CHILDREN): utime + stime of the reaped children).
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

extern "C" __attribute__((noinline, noipa)) void BurnChild(long n) {
  for (volatile long i = 0; i < n;) {
    i = i + 1;  // Not ++i: increments of volatiles are deprecated in C++20.
  }
}

namespace {

double ProcessCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

long long Ns(const timeval& tv) {
  return static_cast<long long>(tv.tv_sec) * 1000000000LL + tv.tv_usec * 1000LL;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s N CHILD_MS [PROG ARGS...]\n", argv[0]);
    return 2;
  }
  const long n = std::atol(argv[1]);
  const double child_ms = std::atof(argv[2]);
  std::printf("ready\n");
  std::fflush(stdout);
  char go = 0;
  if (read(STDIN_FILENO, &go, 1) != 1) return 3;
  std::vector<pid_t> children;
  for (long i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid < 0) return 4;
    if (pid == 0) {
      const double end = ProcessCpuMs() + child_ms;
      while (ProcessCpuMs() < end) BurnChild(5000);
      if (argc > 3) {
        execv(argv[3], argv + 3);
        _exit(127);
      }
      _exit(0);
    }
    children.push_back(pid);
    int status = 0;
    waitpid(pid, &status, 0);
  }
  for (pid_t pid : children) std::printf("child %d\n", static_cast<int>(pid));
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  std::printf("rusage_children_ns %lld\n", Ns(ru.ru_utime) + Ns(ru.ru_stime));
  return 0;
}
