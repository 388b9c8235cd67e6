// Small helpers shared by the subcommands' mains.
#ifndef FRAMESCOPE_CLI_CLI_UTIL_H_
#define FRAMESCOPE_CLI_CLI_UTIL_H_

#include <atomic>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/io/metrics_endpoint.h"

namespace fs {

// "a/b.prof" -> "a/b.html" for ext ".prof" -> ".html"; a path without `ext` gets `new_ext`
// appended.
std::string SwapExtension(const std::string& path, const std::string& ext,
                          const std::string& new_ext);

// SIGINT, SIGTERM and SIGHUP from now on: the first sets *stop (the command stops early and writes
// what it has); a second one ends the process at once, as the default action would, so a stuck
// post-processing step can always be abandoned. A repeat within 1 s of the first is taken as the
// same request delivered twice (timeout(1) signals both the process and its group).
void CatchStopSignals(std::atomic<bool>* stop);

// Waits out a measurement window of `duration_s`, printing "<command>: window N of M s" on
// stderr about every 5 s; returns early once *stop is set (Ctrl-C).
void WaitWindow(const char* command, double duration_s, const std::atomic<bool>& stop);

// The environment that starts a command under libframescope_heap.so (found beside this
// binary) writing into `heap_dir`, which is created empty (an earlier run's files removed).
StatusOr<std::vector<std::string>> HeapPreloadEnv(const std::string& heap_dir);

// Every --metrics value, "[NAME=][http://][127.0.0.1:|localhost:]PORT[/]" (a service's /metrics
// on loopback; NAME defaults to 127.0.0.1:PORT). Replicas of one service share a NAME; the same
// PORT twice would count one endpoint twice and is refused.
StatusOr<std::vector<io::MetricsEndpoint>> ParseMetricsFlags(
    const std::vector<std::string>& values);

}  // namespace fs

#endif  // FRAMESCOPE_CLI_CLI_UTIL_H_
