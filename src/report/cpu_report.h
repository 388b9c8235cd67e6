// The CPU part of `framescope profile`: one system-wide recording split per service, each
// service summarised (CPU %, threads, top self/cumulative functions with their sampling error),
// and the summary rendered as summary.json, index.html and the CPU section of
// docs/performance-baseline.md.
//
//   Record() ──Profile (label service)──▶ SplitByService ──▶ SummarizeCpu ──▶ CpuReport
//                                                                  │
//               summary.json ◀── CpuReportToJson ◀─────────────────┤
//               index.html   ◀── RenderIndexHtml ◀─────────────────┤
//               baseline.md  ◀── RenderBaselineCpuSection + ReplaceSection
//
// Every number names the counter behind it: "samples" are cpu-clock samples, "CPU s (samples)"
// sums their periods, "CPU s (/proc)" is utime+stime over the same window, read independently.
#ifndef FRAMESCOPE_REPORT_CPU_REPORT_H_
#define FRAMESCOPE_REPORT_CPU_REPORT_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/profile/profile.h"

namespace fs::profile {

// Samples kept by `keep`, with only the locations, functions and mappings they use.
Profile ProfileSubset(const Profile& profile, const std::function<bool(const Sample&)>& keep);

// service label -> that service's profile (samples without the label go under "").
std::map<std::string, Profile> SplitByService(const Profile& profile);

struct FunctionCost {
  std::string name;
  std::string module;
  int64_t self_ns = 0, self_samples = 0;
  int64_t cum_ns = 0, cum_samples = 0;  // Recursion counted once per stack.
};

struct ThreadCost {
  std::string name;  // Thread name (comm); threads with the same name are one row.
  std::vector<int64_t> tids;
  int64_t samples = 0;
  int64_t cpu_ns = 0;
};

struct ServiceCpu {
  std::string name;
  std::vector<pid_t> pids;  // The processes recorded for it (e.g. postgres and its backends).
  int64_t samples = 0;
  int64_t cpu_ns = 0;                  // Sum of sample periods.
  double proc_cpu_s = -1;              // utime+stime over the window from /proc; -1: not read.
  std::vector<ThreadCost> threads;     // By cpu_ns, descending.
  std::vector<FunctionCost> top_self;  // By self_ns, descending.
  std::vector<FunctionCost> top_cum;   // By cum_ns, descending.
  std::string problem;                 // Coverage error ("" when fine).
  std::string note;                    // E.g. "idle: /proc shows 0.00 s CPU".
  // Files written for it, relative to the output dir.
  std::string prof_file, folded_file, flame_file;
};

// Fills samples, cpu_ns, threads and the top `top_n` functions of `profile`.
ServiceCpu SummarizeCpu(const std::string& name, const Profile& profile, size_t top_n);

// Half-width of the 95% confidence interval, in percentage points, of a share measured as
// `part` of `total` samples (binomial normal approximation). 0 when total is 0.
double SharePointsError95(int64_t part, int64_t total);

struct CpuReport {
  std::string started_at;  // ISO 8601 UTC.
  double duration_s = 0;   // Recorded wall time.
  double requested_s = 0;
  bool partial = false;  // Stopped early (Ctrl-C).
  int frequency_hz = 0;  // Requested.
  int final_frequency_hz = 0;
  std::string unwind;  // "fp" or "dwarf".
  bool kernel_frames = false;
  uint64_t lost = 0;  // PERF_RECORD_LOST total.
  int host_cpus = 0;
  double host_cpu_pct = -1;           // Mean busy % of all CPUs over the window, /proc/stat.
  std::vector<std::string> governor;  // What the overhead governor did, one line per action.
  double profiler_cpu_s = -1;         // Our own utime+stime, attach to files written.
  // Our CPU while sampling (between the first and last progress tick: no attach/symbolize
  // work), % of one core; -1 when the run was too short to tell.
  double profiler_sampling_cpu_pct = -1;
  uint64_t profiler_peak_rss = 0;      // Our VmHWM, bytes.
  double postprocess_s = 0;            // Symbolize + write every file.
  std::vector<std::string> preflight;  // "perf events: ok (...)", "NVML: absent ...", ...
  std::vector<ServiceCpu> services;
};

Json CpuReportToJson(const CpuReport& report);
std::string RenderIndexHtml(const CpuReport& report);
// The "## CPU" section of the baseline document (Markdown), between kCpuSectionBegin/End.
std::string RenderBaselineCpuSection(const CpuReport& report);

inline constexpr const char* kCpuSectionBegin = "<!-- framescope:cpu:begin -->";
inline constexpr const char* kCpuSectionEnd = "<!-- framescope:cpu:end -->";

// `document` with the text between `begin` and `end` (markers included) replaced by `section`
// (which carries its own markers); appended when absent, a new document when empty. Text
// outside the markers is kept byte for byte.
std::string ReplaceSection(const std::string& document, const std::string& begin,
                           const std::string& end, const std::string& section);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_CPU_REPORT_H_
