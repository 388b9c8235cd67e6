// Helpers shared by the benchmarks (`make bench`).
#ifndef FRAMESCOPE_BENCH_BENCH_UTIL_H_
#define FRAMESCOPE_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <cmath>
#include <cstdint>
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

// Median and range of a series; NaNs are dropped (all NaN when nothing is left).
struct Spread {
  double median = NAN, lo = NAN, hi = NAN;
};
Spread Summarize(std::vector<double> v);
Json SpreadJson(const Spread& s);  // {"median", "min", "max"}

// The number after `key` in `text` (a JSON `"key": v` or a `key=v`); NaN when absent.
double FindNumber(const std::string& text, const std::string& key);

// Starts argv (PATH searched) with stdout and stderr in `out_path` (-1: it could not start).
// The environment is `base` (the inherited one when null) changed by `env`: "NAME=VALUE"
// replaces or adds NAME, a bare "NAME" removes it.
pid_t SpawnWithEnv(const std::vector<std::string>& argv, const std::string& out_path,
                   const std::vector<std::string>& env,
                   const std::vector<std::string>* base = nullptr);

// A child run to completion by RunChild.
struct ChildRun {
  pid_t pid = -1;
  int status = -1;  // exit code, 128 + signal; -1: it could not start
  int64_t start_mono_ns = 0;
  int64_t exit_mono_ns = 0;
  double self_peak_rss_mb = 0;  // the child's own VmHWM, polled every 5 ms
  // wait4's ru_maxrss: the largest peak among the child and the descendants it waited for
  // (a wrapper's helpers, e.g. heaptrack's interpreter and compressor).
  double tree_peak_rss_mb = 0;
  double tree_cpu_s = 0;  // wait4's user + system time, the same processes
};
// SpawnWithEnv (inherited environment), then waits for the child.
ChildRun RunChild(const std::vector<std::string>& argv, const std::string& out_path,
                  const std::vector<std::string>& env = {});

}  // namespace fs::bench

#endif  // FRAMESCOPE_BENCH_BENCH_UTIL_H_
