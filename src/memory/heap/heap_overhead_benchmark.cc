// Hot-path cost of libframescope_heap.so: heap_testprog's fixed alloc/free loop (the loop's own
// nanoseconds, so process start-up is excluded) without the library, with it reporting
// (FRAMESCOPE_HEAP_DIR set) and with it loaded but off. Interleaved repetitions; prints the
// median ratio to the run without the library and its range.
//
//   heap_overhead_benchmark [STEPS [REPS]]     defaults: 20000000 steps, 5 repetitions
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "src/base/file_util.h"

namespace {

// The loop's nanoseconds from heap_testprog's {"ns":N,...} line; -1 on failure.
double RunOnce(const std::string& env, long steps) {
  std::string cmd = env + " " + fs::SelfExeDir() + "/heap_testprog bench " + std::to_string(steps);
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return -1;
  long long ns = -1;
  if (fscanf(f, "{\"ns\":%lld", &ns) != 1) ns = -1;
  return pclose(f) == 0 ? static_cast<double>(ns) : -1;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  long steps = argc > 1 ? atol(argv[1]) : 20000000;
  int reps = argc > 2 ? atoi(argv[2]) : 5;
  char dir[] = "/tmp/heap_overhead.XXXXXX";
  if (steps <= 0 || reps <= 0 || mkdtemp(dir) == nullptr) {
    fprintf(stderr, "usage: heap_overhead_benchmark [STEPS [REPS]]\n");
    return 2;
  }
  std::string lib = "LD_PRELOAD=" + fs::SelfExeDir() + "/libframescope_heap.so";
  struct Variant {
    const char* name;
    std::string env;
    std::vector<double> ns;
  } variants[] = {{"without library", "", {}},
                  {"library, counting", lib + " FRAMESCOPE_HEAP_DIR=" + dir, {}},
                  {"library, off (no dir)", lib, {}}};
  for (int r = 0; r < reps; ++r) {
    for (auto& v : variants) {
      double ns = RunOnce(v.env, steps);
      if (ns <= 0) {
        fprintf(stderr, "heap_overhead_benchmark: heap_testprog failed (%s)\n", v.name);
        return 1;
      }
      v.ns.push_back(ns);
    }
  }
  std::string rm = std::string("rm -rf ") + dir;
  if (system(rm.c_str()) != 0) fprintf(stderr, "could not remove %s\n", dir);
  printf("%ld malloc+free steps, %d interleaved repetitions\n", steps, reps);
  for (const auto& v : variants) {
    std::vector<double> ratio;
    for (int r = 0; r < reps; ++r) ratio.push_back(v.ns[r] / variants[0].ns[r]);
    auto [lo, hi] = std::minmax_element(ratio.begin(), ratio.end());
    printf("%-22s %6.2f ns/step  ratio %.3f (range %.3f-%.3f)\n", v.name,
           Median(v.ns) / static_cast<double>(steps), Median(ratio), *lo, *hi);
  }
  return 0;
}
