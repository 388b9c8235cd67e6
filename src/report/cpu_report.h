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
#include "src/base/stats.h"  // Fixed: every number in the reports
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

// How one service's user stacks were unwound, copied by the session from the recorder's per-sample
// outcome (RecordResult::unwind_by_service): `full` walked past the leaf (CFI in DWARF mode, the
// frame-pointer chain in fp mode), `fp_fallback` CFI stopped at the leaf and the same sample's
// frame-pointer chain was kept, `truncated` neither got past the leaf (or a junk frame cut it).
struct UnwindShare {
  bool measured = false;  // false: the recorder gave no counts for this service.
  uint64_t full = 0, fp_fallback = 0, truncated = 0;
  // Of `full`: DWARF unwinding reached the thread's root (outermost frame); -1 in fp mode,
  // where the kernel's chain does not say whether it ended at the root.
  int64_t to_root = -1;
  uint64_t total() const { return full + fp_fallback + truncated; }
};

// A service's process that exited while recorded, and what the recording did about it: the
// supervisor restarts a service under a new pid, which `profile` then records too (follows)
// under the same service.
struct ServiceRestart {
  pid_t old_pid = 0;
  double exited_at_s = -1;  // Into the recording, when its exit was seen (looked for 4x a second).
  pid_t new_pid = 0;        // The restarted process; 0: none before the recording ended.
  double restarted_at_s = -1;  // When the new pid was seen (and followed from).
  bool followed = false;       // The new process's samples are recorded (from restarted_at_s).
  std::string error;           // Why it was not followed.
  // Samples whose pid label is the old / the new pid (their children count with neither);
  // -1 until counted.
  int64_t old_samples = -1, new_samples = -1;
};

// One line on what happened, naming the service: "detection: pid 12 exited (seen at 2.3 s) and
// was restarted as pid 34 (followed from 2.8 s); samples: 210 from pid 12, 305 from pid 34".
std::string RestartText(const std::string& service, const ServiceRestart& restart);

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
  UnwindShare unwind;
  std::vector<ServiceRestart> restarts;  // Exits seen while recording, in order.
  // Files written for it, relative to the output dir.
  std::string prof_file, folded_file, flame_file;
};

// Fills samples, cpu_ns, threads and the top `top_n` functions of `profile`.
ServiceCpu SummarizeCpu(const std::string& name, const Profile& profile, size_t top_n);

// Half-width of the 95% confidence interval, in percentage points, of a share measured as
// `part` of `total` samples (binomial normal approximation). 0 when total is 0.
double SharePointsError95(int64_t part, int64_t total);

// One sampling-rate change by the overhead governor, at `at_s` into the recording.
struct RateChange {
  double at_s = 0;
  int from_hz = 0, to_hz = 0;
  std::string reason;
};

// What the overhead governor did (src/session/governor.h): it budgets framescope's own CPU and
// only warns about host CPU.
struct GovernorReport {
  int requested_hz = 0, min_hz = 0;
  double max_overhead_pct = 0;  // Budget for our own CPU, % of one core (<= 0: off).
  double host_warn_pct = 0;     // Host CPU early-warning threshold (<= 0: off).
  int readings = 0;             // Once a second; 0: the recorder never consulted it.
  double mean_cost_pct = -1;    // Our CPU over those readings, % of one core.
  double effective_hz = 0;      // Time-weighted rate over the recording.
  std::vector<RateChange> changes;
  int host_readings = 0, host_readings_above = 0;
  double host_peak_pct = -1;
  std::vector<std::string> warnings;  // Host CPU early warnings.
  std::string note;                   // E.g. what happened in the per-thread fallback.
};

struct CpuReport {
  std::string started_at;  // ISO 8601 UTC.
  double duration_s = 0;   // Recorded wall time.
  double requested_s = 0;
  // The results do not cover every service for the whole window: stopped early, or a service
  // exited and was not followed to a new process. `partial_reasons` says which, one line each.
  bool partial = false;
  bool interrupted = false;  // Stopped early (Ctrl-C).
  std::vector<std::string> partial_reasons;
  int frequency_hz = 0;  // Requested.
  int final_frequency_hz = 0;
  std::string unwind;  // "fp" or "dwarf".
  bool kernel_frames = false;
  uint64_t lost = 0;  // PERF_RECORD_LOST total.
  // The recorder's other losses (RecordResult): records skipped as malformed, ring bytes
  // dropped after a header that made the next record unfindable, samples with no frame.
  uint64_t malformed = 0;
  uint64_t discarded_bytes = 0;
  uint64_t samples_without_frames = 0;
  int host_cpus = 0;
  double host_cpu_pct = -1;  // Mean busy % of all CPUs over the window, /proc/stat.
  GovernorReport governor;
  std::vector<std::string> warnings;  // The recorder's (e.g. a rate it could not change).
  double profiler_cpu_s = -1;  // Our own utime+stime, attach to the per-service files written.
  // Our CPU while sampling (between the first and last progress tick: no attach/symbolize
  // work; CLOCK_PROCESS_CPUTIME_ID), % of one core; -1 when the run was too short to tell.
  double profiler_sampling_cpu_pct = -1;
  uint64_t profiler_peak_rss = 0;      // Our VmHWM, bytes.
  double postprocess_s = 0;            // Symbolize + write every file.
  std::vector<std::string> preflight;  // "perf events: ok (...)", "NVML: absent ...", ...
  std::vector<ServiceCpu> services;
  // Outputs that could not be written (the others were): "path: why".
  std::vector<std::string> write_errors;
};

// A Markdown table cell: pipes escaped and newlines flattened (either would break the row),
// cut to `max_chars`.
std::string MdCell(const std::string& s, size_t max_chars = 120);

// What the governor did, in sentences (index.html, the baseline document, the CLI): its budget
// and readings, each rate change with time and reason, the host CPU warning summary.
std::vector<std::string> GovernorLines(const GovernorReport& governor);

// CPU % of one core, with the 95% interval from the Poisson error of the sample count:
// "10.0 ± 2.0" ("0" without samples).
std::string CpuPctWithError(const ServiceCpu& s, double duration_s);

// "99 Hz" or "99 Hz requested, 61.3 Hz effective (2 changes by the overhead governor)".
std::string RateText(const CpuReport& report);

Json CpuReportToJson(const CpuReport& report);
// `more_sections` (HTML, e.g. the memory section) goes after the services and before preflight;
// `first_section` (the checklist) right under the title, before everything else.
std::string RenderIndexHtml(const CpuReport& report, const std::string& more_sections = "",
                            const std::string& first_section = "");
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
