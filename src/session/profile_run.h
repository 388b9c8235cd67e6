// A profiling session of the system `framescope up` started: output paths checked, preflight
// (perf events, NVML, the load generator's FPS), one recording of every service at once under
// the overhead governor, then per-service pprof + folded + flame graph, summary.json, index.html
// and the CPU section of the baseline document; every service's memory is read every
// memory_interval_s while recording, appended to OUT/memory/<service>.log, and analysed
// (OUT/memory/analysis.json, the memory sections of the reports). The recording is cut into
// --repeat windows (boundaries taken by the same loop) for per-window CPU, RSS and FPS, and every
// run that owns OUT ends by writing OUT/run.json (src/session/run_record.h), failed or not;
// index.html and the baseline open with the checklist (src/report/checklist.h).
//
//   CheckOutputs ─▶ LoadTargets ─▶ Preflight ─▶ Record (governor) ─▶ per-service reports
//        exit 2        exit 1        exit 3         exit 1            every file tried, exit 1
//
// One run at a time: a flock on OUT/.framescope-profile.lock from CheckOutputs on, and one on
// STATE/profile.lock from LoadTargets on, held to the end; a second run fails at once (exit 1).
// While recording, state.json is read 4x a second: a service the supervisor restarted (a new
// pid) is followed to its new process under the same service and the restart is reported.
//
// `framescope profile` is a thin CLI over RunProfile(); other subcommands and tests call it too.
#ifndef FRAMESCOPE_SESSION_PROFILE_RUN_H_
#define FRAMESCOPE_SESSION_PROFILE_RUN_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "src/gpu/gpu_sampler.h"
#include "src/model/batch_analysis.h"
#include "src/record/recorder.h"
#include "src/regression/run_manifest.h"
#include "src/report/checklist.h"
#include "src/report/cpu_report.h"
#include "src/report/memory_report.h"
#include "src/session/io_run.h"
#include "src/session/model_run.h"

namespace fs::profile {

// What `framescope schedule` knows about the automation (checklist 4.1 and 4.2); the caller
// fills it, a plain run leaves it unknown and the rows say "not measurable here".
struct AutomationFacts {
  bool known = false;
  std::string schedule_entry;  // The installed timer or crontab entry ("" when none).
  std::string baseline_label;  // `schedule install --baseline LABEL` ("" when none).
  std::string last_verdict;    // The last comparison's verdict ("regression", "no change", ...).
  std::string reason;          // Why not measurable, when !known.
};

struct ProfileRunOptions {
  std::string state_dir;             // Of the running system (`framescope up --state-dir`).
  std::string out_dir = "profiles";  // Created if missing.
  std::string baseline;              // "": OUT/performance-baseline.md. Its folder must exist.
  double duration_s = 60;
  int frequency_hz = 99;
  Unwind unwind = Unwind::kDwarf;
  // kDwarf: user stack copied per sample. 16 KiB: with 8 KiB, OpenCV DNN's deep frames cut
  // detection's main-thread stacks at Detector::Infer, before our callers (measured).
  uint32_t stack_bytes = 16384;
  double max_overhead_pct = 2;   // Governor: our own CPU budget, % of one core (0: off).
  double max_host_cpu_pct = 80;  // Host CPU early-warning threshold (0: off); never slows us.
  int min_frequency_hz = 19;     // The governor's floor.
  double fps_tolerance = 0.1;    // Allowed loadgen FPS shortfall vs configured.
  double fps_wait_s = 30;        // Wait for loadgen's FPS reports to reach the configured rate.
  int top = 15;                  // Functions per service in the report tables.
  // Seconds between memory readings of every service (smaps_rollup over its process tree),
  // appended to OUT/memory/<service>.log as they are taken.
  double memory_interval_s = 2;
  // After recording: the detection model's per-layer profile (framescope model), detection
  // paused meanwhile; OUT/models/<name>_profile.json and _trace.json, and report sections.
  bool model = true;
  // After the model: the batch sweep (framescope batch) with detection paused, and the live view
  // of detection's batching over the recording window; OUT/models/batch_analysis.json + .html.
  bool batch_sweep = true;
  model::SweepOptions sweep;
  // Seconds between GPU samples (NVML) while recording, into OUT/gpu/nsight_report.json; 0: off.
  double gpu_interval_s = 1;
  int model_runs = 0;             // Timed forwards; 0: until the median settles.
  double model_max_seconds = 20;  // Cap on the timed forwards.
  // PostgreSQL statements, Redis and the service-to-service edges over the recording window,
  // into OUT/io and the report's I/O sections (read-only: nothing in the database changes).
  bool io = true;
  IoRunOptions io_options;
  // The recording is cut into `repeat` equal windows, each giving one value of every per-window
  // metric (CPU, RSS, FPS), so one run carries its own variance (run.json, the spread table).
  int repeat = 5;
  std::string label;  // run.json's label; "": the revision framescope was built from.
  AutomationFacts automation;
  const std::atomic<bool>* stop = nullptr;  // Ctrl-C: stop early, keep partial results.
};

// Where a run ended; the CLI maps each to its exit code.
enum class ProfileOutcome {
  kOk,
  kBadOutputPath,    // Checked before anything else runs: nothing recorded.
  kNoSystem,         // No running system / no services.
  kBusy,             // Another profile run writes to the output folder or profiles the system.
  kPreflightFailed,  // A service not running, perf events refused, loadgen short of its FPS.
  kRecordFailed,
  kWriteFailed,  // Some outputs could not be written (every other one was).
  // A service used CPU but got no samples, or exited while recorded and was not followed to
  // its restarted process.
  kCoverageGap,
  // The model's per-layer profile or the batch sweep could not be taken (the rest is written).
  kAnalysisFailed,
  kInterrupted,  // *stop was set: partial results written (or none, if in preflight).
};

// One service's per-window values (--repeat), in window order; a window without a reading
// has no value (never a made-up 0), so the vectors may be shorter than the window count.
struct ServiceWindows {
  std::string name;
  // utime+stime of the service's process tree (/proc/PID/stat, children and restarts followed
  // as the CPU cross-check does) over the window / the window's seconds.
  std::vector<double> cpu_cores;
  std::vector<double> rss_mb;  // Mean RSS (MB = 10^6 bytes) of the memory readings in the window.
};

// The recording cut into windows: boundaries read by the recording loop (no thread of its own).
struct RunWindows {
  int requested = 0;
  std::vector<double> bounds_s;      // Recording clock (s since it started) of each boundary.
  std::vector<double> bounds_epoch;  // The same boundaries, CLOCK_REALTIME seconds.
  std::vector<ServiceWindows> services;
  // capture's framescope_frames_in_total (all cameras) over the window / its seconds.
  std::vector<double> capture_fps;
  // Mean of loadgen's per-camera "camera=camNN FPS: X" log lines timed inside the window.
  std::vector<double> loadgen_fps;
  int windows() const { return bounds_s.size() < 2 ? 0 : static_cast<int>(bounds_s.size()) - 1; }
};

struct ProfileRunResult {
  ProfileOutcome outcome = ProfileOutcome::kOk;
  std::vector<std::string> errors;       // What failed, why, what to do; one line each.
  CpuReport report;                      // Filled once recording ran.
  MemoryReport memory;                   // Likewise: every service's RSS series and leak rate.
  ModelRun model;                        // The model's per-layer profile (name empty: not run).
  std::optional<gpu::GpuTelemetry> gpu;  // Sampled over the recording (absent: not asked).
  std::optional<model::BatchAnalysis> batch;  // The batch analysis (absent: not run)...
  std::string batch_error;                    // ...or why it failed.
  std::optional<IoResults> io;  // PostgreSQL, Redis and the edge map (absent: not asked).
  std::string summary_json;     // As written to OUT/summary.json.
  std::string baseline_path;    // Resolved.
  int coverage_failures = 0;
  RunWindows windows;
  // The checklist and the largest findings, as the reports and run.json show them.
  std::vector<regression::ChecklistRow> checklist;
  std::vector<Finding> findings;
  Json config;                          // The running system's configuration (state.json), as read.
  std::string started_at, finished_at;  // ISO 8601 UTC: RunProfile's start and end.
  std::string run_json;                 // OUT/run.json when written ("" when not).
};

struct RecordingProgress {
  size_t services = 0;
  double elapsed_s = 0, duration_s = 0;
  size_t samples = 0;
  int hz = 0;  // The rate in force.
};

// Progress for a terminal or a log; every member may be empty.
struct ProgressSink {
  std::function<void(const std::string& line)> message;     // Preflight lines, waits.
  std::function<void(const RecordingProgress&)> recording;  // About once a second.
};

// Also writes OUT/run.json (src/session/run_record.h) once OUT is known writable and this run
// holds it: a run that failed (no system, preflight refused) or was interrupted is history too.
ProfileRunResult RunProfile(const ProfileRunOptions& options, const ProgressSink& progress);

// What is wrong with a recording of `duration_s` cut into `repeat` windows ("" when nothing):
// the limits `profile` and `schedule install` both enforce (a longer run is continuous
// profiling's job; the recording loop takes window boundaries at its 0.1 s pace).
std::string InvalidRecordingLength(double duration_s, int repeat);

// The exit code `framescope profile` returns for an outcome (also run.json's exit_code):
// 0 ok, 1 error, 2 bad output path, 3 preflight or coverage failure, 130 interrupted.
int ProfileExitCode(ProfileOutcome outcome);
// run.json's status: "ok", "interrupted" or "failed" (every other outcome).
const char* ProfileStatus(ProfileOutcome outcome);

// The baseline path RunProfile uses: options.baseline, or OUT/performance-baseline.md.
std::string BaselinePath(const ProfileRunOptions& options);

// Creates OUT (and cpu/, flamegraphs/, memory/) and checks that every output can be written: each
// folder exists and accepts a new file, the baseline's folder exists (it is not created: a
// mistyped path should fail, not grow a tree), and no output is a symlink, device or FIFO.
Status CheckOutputs(const std::string& out_dir, const std::string& baseline);

}  // namespace fs::profile

#endif  // FRAMESCOPE_SESSION_PROFILE_RUN_H_
