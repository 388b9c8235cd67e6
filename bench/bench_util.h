// Helpers shared by the benchmarks (`make bench`).
#ifndef FRAMESCOPE_BENCH_BENCH_UTIL_H_
#define FRAMESCOPE_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"
#include "src/clients/prom_text.h"

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

// `framescope up` of the standard load (cameras x fps x resolution, detection batches of up to
// max_batch) in `state_dir`, then its parsed state.json. Errors carry up's output.
StatusOr<Json> BringUpSystem(const std::string& framescope, const std::string& state_dir,
                             int cameras, double fps, const std::string& resolution, int max_batch);

// printf-formats one number; "-" for NaN/inf.
std::string Fmt(const char* fmt, double v);

}  // namespace fs::bench

#endif  // FRAMESCOPE_BENCH_BENCH_UTIL_H_
