// Helpers shared by the benchmarks (`make bench`).
#ifndef FRAMESCOPE_BENCH_BENCH_UTIL_H_
#define FRAMESCOPE_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "services/common/prom_text.h"

namespace fs::bench {

// utime+stime of a live process (all its threads), seconds; NaN once it is gone.
double CpuSeconds(pid_t pid);

// b - a for every sample present in b (counters and histogram buckets), matched by name and
// labels; a sample absent from a counts from 0.
std::vector<PromSample> MetricDelta(const std::vector<PromSample>& a,
                                    const std::vector<PromSample>& b);

// Runs `cmd` with /bin/sh, returns stdout + stderr; *code is the exit status (-1: killed or
// popen failed).
std::string RunCommand(const std::string& cmd, int* code);

// printf-formats one number; "-" for NaN/inf.
std::string Fmt(const char* fmt, double v);

}  // namespace fs::bench

#endif  // FRAMESCOPE_BENCH_BENCH_UTIL_H_
