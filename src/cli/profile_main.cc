// framescope profile: a thin CLI over RunProfile() (src/session/profile_run.h): flags in, a
// progress line while recording, a table and the exit code out.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>

#include "src/base/flags.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/gpu/gpu_report.h"
#include "src/model/batch_sweep.h"
#include "src/session/profile_run.h"
#include "src/session/schedule.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};

// A bad flag value (the run's own outcomes map to exit codes in profile::ProfileExitCode).
constexpr int kExitUsage = 2;

constexpr const char* kSummary =
    "Profiles every service of the system `framescope up` started (same --state-dir), without\n"
    "changing them. Output paths are checked first (a missing --baseline folder fails at once,\n"
    "exit 2). Preflight: perf events usable (else the fix), NVML present or reported absent,\n"
    "the load generator delivering its configured FPS. Then one cpu-clock recording of every\n"
    "service's processes at once, written per service:\n"
    "  OUT/cpu/<service>_profile.prof (pprof) and .folded, OUT/cpu/system_profile.prof,\n"
    "  OUT/flamegraphs/<service>_flame.html, OUT/summary.json, OUT/index.html,\n"
    "and the CPU section of the baseline document (default OUT/performance-baseline.md; other\n"
    "sections are kept).\n"
    "Memory, over the same window: every --memory-interval (2 s) each service's process tree\n"
    "is read from /proc/PID/smaps_rollup and appended to OUT/memory/<service>.log (one JSON\n"
    "line per reading, as `framescope memory` writes). At the end each service's RSS at start\n"
    "and end and its leak rate (Theil-Sen slope of RSS in MB/h with a 95% interval, verdict\n"
    "against 10 MB/h: met, not met, inconclusive with how much longer a run would decide, or\n"
    "not measurable) go to OUT/memory/analysis.json, each service's \"memory\" in summary.json,\n"
    "the memory section of index.html (with an RSS-over-time chart per service) and the\n"
    "memory section of the baseline document. A restarted service starts a new series.\n"
    "GPU, over the same window: NVML (libnvidia-ml.so.1, loaded at run time) is sampled every\n"
    "--gpu-interval (1 s) into OUT/gpu/nsight_report.json: gpu_utilization_avg (utilization.gpu)\n"
    "and memory_bandwidth_efficiency (GPM DRAM bandwidth utilisation only), each naming its\n"
    "counter, or null with the reason (no driver, no GPU, counter not supported).\n"
    "Model, after recording (--no-model to skip): detection is paused (SIGSTOP, resumed after)\n"
    "while the machine's peak is measured and the system's detection model is profiled per\n"
    "layer as `framescope model` does: OUT/models/yolo_profile.json, yolo_trace.json; then\n"
    "the batch sweep of `framescope batch` (--batches; --no-batch-sweep to skip), with the\n"
    "live view of detection's batching over the recording window:\n"
    "OUT/models/batch_analysis.json and .html.\n"
    "I/O, over the same window (--no-io to skip; read-only, nothing in the database changes):\n"
    "pg_stat_statements snapshots at the window's start and end give every statement's calls\n"
    "and mean time; those over --slow-ms get their generic plan and HypoPG index advice, as\n"
    "`framescope db` does (which can also --apply and verify). Redis: pipelining per client\n"
    "service from their own counters, the server's commands per read, per-command latency from\n"
    "LATENCY HISTOGRAM, as `framescope redis`. The latency map of every service-to-service\n"
    "edge from the client histograms (Prometheus, or the services' /metrics), as `framescope\n"
    "net`: OUT/io/db_analysis.json, redis_analysis.json, network_map.json and .svg.\n"
    "Runs that can be compared: OUT/run.json (format framescope-run/1) names the run's times,\n"
    "host, duration, --label (default: the git revision framescope was built from), that\n"
    "revision, framescope's version, the system's configuration (secrets redacted) and its\n"
    "hash, and every metric measured, each with its counter: per-service CPU (cores) and RSS,\n"
    "FPS, memory slope, model total and per-layer times, batch gain, statement means, Redis\n"
    "pipeline share, edge p99s, GPU utilisation. --repeat N cuts the recording into N equal\n"
    "windows, each giving one value of CPU, RSS and FPS, so one run carries its own variance\n"
    "(`framescope compare` tests two runs' windows). A run that fails once OUT is writable\n"
    "(no system, preflight refused, Ctrl-C) writes run.json too, with its status, error and\n"
    "exit code. index.html and the baseline document open with the checklist (0.1 .. 4.2:\n"
    "goal, measured value, counter, met / not met / not measurable here and why), the\n"
    "largest findings and the spread of every per-window metric.\n"
    "A failed output does not stop the others: all are tried, each failure is reported,\n"
    "exit 1.\n"
    "Unwinding: dwarf by default. The services' hot code (OpenCV, libstdc++, libc, gstreamer)\n"
    "comes from distribution packages built without frame pointers, so a frame-pointer walk\n"
    "stops inside them (over 90% of detection's samples end in [truncated stack]); DWARF\n"
    "unwinding copies --stack-bytes (16 KiB) of user stack per sample and walks it with the\n"
    "binaries' CFI, reaching the thread's root: main() and our own functions on detection's\n"
    "main thread, start_thread on OpenCV's worker threads. --unwind fp is cheaper and enough\n"
    "for code built with -fno-omit-frame-pointer throughout.\n"
    "Overhead governor: budgets framescope's OWN CPU (--max-overhead-pct of one core, read\n"
    "every second): over budget for 3 s lowers the rate (not below --min-frequency), well\n"
    "under restores it toward --frequency. Host CPU above --max-host-cpu is reported as an\n"
    "early warning and never lowers the rate (host load includes the profiled workload).\n"
    "Every rate change is in the report with its time and reason, with the effective rate.\n"
    "A service the supervisor restarts while recording is followed to its new pid (the\n"
    "restart is in the report). One run at a time: a second run on the same system or\n"
    "output folder fails at once (locks STATE/profile.lock, OUT/.framescope-profile.lock).\n"
    "Outputs are regular files replaced atomically; a symlink, device or FIFO in their place\n"
    "is refused before recording (a --baseline of /dev/null discards the section).\n"
    "Ctrl-C stops early and writes partial results (a second Ctrl-C quits without\n"
    "writing). Exit codes: 0 ok, 1 error (incl. an\n"
    "output not written, another run holding a lock, a model profile or batch sweep that\n"
    "could not be taken), 2 bad flag value or unusable output\n"
    "path, 3 preflight or coverage failure (a service that used CPU but got no samples, or\n"
    "exited and was not followed to a restart), 130 interrupted (partial results written).";

struct CliFlags {
  profile::ProfileRunOptions run;
  std::string batches = "1,2,4,8,16,32";
  std::string unwind = "dwarf";
  int stack_bytes = 16384;
  bool json = false;
  std::string schedule_out = "profiles/automated";
};

// The first flag whose value is out of range, named with what it must be; "" when all are good.
std::string InvalidFlag(const CliFlags& f) {
  const profile::ProfileRunOptions& o = f.run;
  if (std::string bad = profile::InvalidRecordingLength(o.duration_s, o.repeat); !bad.empty()) {
    return bad;
  }
  const std::pair<bool, const char*> rules[] = {
      {o.frequency_hz >= 1 && o.frequency_hz <= 10000, "--frequency must be 1..10000 Hz"},
      {o.min_frequency_hz >= 1 && o.min_frequency_hz <= o.frequency_hz,
       "--min-frequency must be 1..--frequency Hz"},
      {o.top >= 1, "--top must be >= 1"},
      {o.model_runs >= 0 && o.model_runs <= 10000, "--model-runs must be 0..10000"},
      {o.sweep.window_seconds >= 0 && o.sweep.window_seconds <= 600,
       "--batch-window-seconds must be 0..600"},
      {o.gpu_interval_s == 0 || (o.gpu_interval_s >= 0.1 && o.gpu_interval_s <= 3600),
       "--gpu-interval must be 0 (off) or 0.1..3600 seconds"},
      {o.model_max_seconds > 0 && o.model_max_seconds <= 3600,
       "--model-max-seconds must be > 0 and at most 3600"},
      {o.fps_tolerance >= 0 && o.fps_tolerance < 1, "--fps-tolerance must be in [0, 1)"},
      {o.fps_wait_s >= 0 && o.fps_wait_s <= 3600, "--fps-wait must be 0..3600 seconds"},
      {o.memory_interval_s >= 0.1 && o.memory_interval_s <= 3600,
       "--memory-interval must be 0.1..3600 seconds"},
      {o.io_options.slow_ms > 0 && o.io_options.slow_ms <= 3.6e6,
       "--slow-ms must be > 0 and at most 3600000"},
      {o.max_overhead_pct >= 0, "--max-overhead-pct must be >= 0"},
      {o.max_host_cpu_pct >= 0, "--max-host-cpu must be >= 0"},
      {f.unwind == "fp" || f.unwind == "dwarf", "--unwind must be dwarf or fp"},
      {f.stack_bytes >= static_cast<int>(profile::kMinStackBytes) &&
           f.stack_bytes <= static_cast<int>(profile::kMaxStackBytes) && f.stack_bytes % 8 == 0,
       "--stack-bytes must be a multiple of 8 in 512..65528"},
      {o.baseline != "-",
       "--baseline - is not allowed: the baseline is a document updated in place (use a path, "
       "or /dev/null to skip it)"},
  };
  for (const auto& [ok, message] : rules) {
    if (!ok) return message;
  }
  return "";
}

// Parses and validates; returns -1 to go on, else the exit code.
int ParseFlags(int argc, char** argv, CliFlags* f) {
  profile::ProfileRunOptions& o = f->run;
  o.state_dir = kDefaultStateDir;
  FlagSet flags("framescope profile", kSummary);
  flags.Double("duration", &o.duration_s, "seconds to record");
  flags.Folder("out", &o.out_dir, "output directory (created if missing)");
  flags.String("state-dir", &o.state_dir, "the state dir given to `up`");
  flags.Int("frequency", &o.frequency_hz, "samples per second per CPU");
  flags.String("unwind", &f->unwind, "dwarf (CFI over stack copies) or fp (frame pointers)");
  flags.Int("stack-bytes", &f->stack_bytes,
            "with --unwind dwarf: user stack bytes copied per sample, 512..65528, a multiple "
            "of 8 (deeper stacks need more)");
  flags.String("baseline", &o.baseline,
               "baseline document whose CPU section is (re)written (default: "
               "OUT/performance-baseline.md); its folder must exist");
  flags.Double("max-overhead-pct", &o.max_overhead_pct,
               "budget for framescope's own CPU, % of one core (0: never change the rate)");
  flags.Double("max-host-cpu", &o.max_host_cpu_pct,
               "host CPU % above which an early warning is reported (0: off)");
  flags.Int("min-frequency", &o.min_frequency_hz, "the governor's floor, Hz");
  flags.Double("fps-tolerance", &o.fps_tolerance,
               "allowed shortfall of loadgen FPS vs configured (0.1 = 10%)");
  flags.Double("fps-wait", &o.fps_wait_s,
               "seconds to wait for loadgen's FPS reports to reach the configured rate");
  flags.Int("top", &o.top, "functions per service in the report tables");
  flags.Int("repeat", &o.repeat,
            "cut the recording into N equal windows: N values of each service's CPU, RSS and "
            "FPS in run.json (1: one value)");
  flags.String("label", &o.label,
               "run.json's label, to select runs by in `framescope compare label:NAME` "
               "(default: the git revision framescope was built from)");
  flags.Double("memory-interval", &o.memory_interval_s,
               "seconds between memory readings of every service");
  flags.Bool("model", &o.model,
             "after recording, the detection model's per-layer profile (detection paused)");
  flags.Int("model-runs", &o.model_runs, "timed forwards for it (0: until the median settles)");
  flags.Double("model-max-seconds", &o.model_max_seconds, "cap on its timed forwards");
  flags.Bool("batch-sweep", &o.batch_sweep,
             "after the model, the batch sweep (detection paused) and the live batching view");
  flags.String("batches", &f->batches, "batch sizes of the sweep, comma-separated");
  flags.Double("batch-window-seconds", &o.sweep.window_seconds,
               "minimum seconds of forwards per sweep window");
  flags.Double("gpu-interval", &o.gpu_interval_s,
               "seconds between GPU samples (NVML) while recording; 0: no GPU telemetry");
  flags.Bool("io", &o.io, "PostgreSQL, Redis and network analysis over the window (--no-io: skip)");
  flags.Double("slow-ms", &o.io_options.slow_ms,
               "PostgreSQL statements with a mean over this are listed with plan and advice");
  flags.Bool("json", &f->json, "print summary.json to stdout instead of the table");
  flags.Folder("schedule-out", &f->schedule_out,
               "the history `framescope schedule install --out` fills: checklist 4.1 and 4.2 "
               "report its entry, pinned baseline and last verdict");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (std::string bad = InvalidFlag(*f); !bad.empty()) {
    fprintf(stderr, "framescope profile: %s\n", bad.c_str());
    return kExitUsage;
  }
  auto batches = model::ParseBatchList(f->batches);
  if (!batches.ok()) {
    fprintf(stderr, "framescope profile: %s\n", batches.status().message().c_str());
    return kExitUsage;
  }
  o.sweep.batches = *batches;
  o.stack_bytes = static_cast<uint32_t>(f->stack_bytes);
  o.unwind = f->unwind == "fp" ? profile::Unwind::kFramePointer : profile::Unwind::kDwarf;
  return -1;
}

// A terminal gets one line redrawn every second; a log file a line every 10 s.
void PrintRecording(const profile::RecordingProgress& p) {
  static const bool tty = isatty(STDERR_FILENO) != 0;
  static int last_line = -1;
  if (!tty && static_cast<int>(p.elapsed_s) / 10 == last_line) return;
  last_line = static_cast<int>(p.elapsed_s) / 10;
  fprintf(stderr, "%sprofiling %zu services: %.0f/%.0f s, %zu samples, %d Hz%s", tty ? "\r" : "",
          p.services, p.elapsed_s, p.duration_s, p.samples, p.hz, tty ? "  " : "\n");
  fflush(stderr);
}

std::string TableCell(const profile::ServiceCpu& s) {
  std::string what = !s.problem.empty()    ? "PROBLEM: " + s.problem
                     : !s.top_self.empty() ? s.top_self[0].name
                                           : s.note;
  return what.size() > 60 ? what.substr(0, 57) + "..." : what;
}

// RSS at the window's start and end and the leak rate per service.
void PrintMemoryTable(const profile::MemoryReport& m) {
  printf("\n%-12s %10s %10s %8s  %s\n", "service", "RSS start", "RSS end", "samples",
         "RSS slope MB/h (95% CI); verdict vs the limit (MB = 10^6 bytes)");
  for (const profile::ServiceMemory& s : m.services) {
    printf("%-12s %10s %10s %8zu  %s; %s\n", s.name.c_str(), profile::RssAt(s, false).c_str(),
           profile::RssAt(s, true).c_str(), s.samples.size(), profile::SlopeText(s.rate).c_str(),
           profile::VerdictText(s.rate).c_str());
  }
}

// The sweep's verdict for checklist 2.3 and the live recommendation, or why there is none.
void PrintBatchLine(const profile::ProfileRunResult& r) {
  if (!r.batch_error.empty()) printf("batch: not measured: %s\n", r.batch_error.c_str());
  if (!r.batch) return;
  printf("batch (2.3): %s. %s\n", r.batch->choice.verdict.c_str(), r.batch->choice.reason.c_str());
  printf("batch live: %s\n", r.batch->live.measured ? r.batch->live.recommendation.c_str()
                                                    : r.batch->live.reason.c_str());
}

// Each GPU average with its counter, or why it is not measurable.
void PrintGpuLine(const std::optional<gpu::GpuTelemetry>& t) {
  if (!t) return;
  const Json j = gpu::GpuReportJson(*t);
  for (const char* key : {"gpu_utilization_avg", "memory_bandwidth_efficiency"}) {
    const Json& v = j.Get(key);
    printf("gpu %s: %s\n", key,
           v.is_number()
               ? (Fixed(v.AsDouble() * 100, 1) + "% (" +
                  j.Get(std::string(key) + "_counter").AsString() + ")")
                     .c_str()
               : ("not measurable: " + j.Get(std::string(key) + "_reason").AsString()).c_str());
  }
}

// The model's totals and its slowest layer, or why it was not profiled.
void PrintModelLine(const ModelRun& m) {
  if (m.name.empty()) return;
  if (!m.ok()) {
    printf("\nmodel: not measured: %s\n", m.profile.Get("error").AsString().c_str());
    return;
  }
  const Json* top = nullptr;
  for (const Json& l : m.profile.Get("layer_timings").AsArray()) {
    if (!top || l.Get("median_ms").AsDouble() > top->Get("median_ms").AsDouble()) top = &l;
  }
  printf("\nmodel: %s ms per forward of batch %lld (sum of layers; forward() %s ms)%s%s\n",
         Fixed(m.profile.Get("total_inference_time_ms").AsDouble(), 2).c_str(),
         static_cast<long long>(m.profile.Get("batch_size").AsInt()),
         Fixed(m.profile.Get("forward_wall_ms").AsDouble(), 2).c_str(),
         top ? (", slowest layer " + top->Get("name").AsString() + " " +
                Fixed(top->Get("percent_of_total").AsDouble(), 1) + "%")
                   .c_str()
             : "",
         ("; " + m.profile.Get("checklist").Get("verdict").AsString() + " for 2.2").c_str());
}

void PrintTable(const profile::ProfileRunResult& result, const std::string& out_dir) {
  const profile::CpuReport& r = result.report;
  printf("%-12s %20s %8s %10s %10s  %s\n", "service", "CPU % of 1 core (95%)", "samples",
         "/proc CPU s", "unwound", "top self function");
  for (const profile::ServiceCpu& s : r.services) {
    std::string full = "n/a";
    if (s.unwind.measured && s.unwind.total() > 0) {
      full = Fixed(100.0 * double(s.unwind.full) / double(s.unwind.total()), 0) + "% full";
    }
    printf("%-12s %20s %8lld %10s %10s  %s\n", s.name.c_str(),
           profile::CpuPctWithError(s, r.duration_s).c_str(), static_cast<long long>(s.samples),
           s.proc_cpu_s >= 0 ? Fixed(s.proc_cpu_s, 2).c_str() : "n/a", full.c_str(),
           TableCell(s).c_str());
  }
  printf(
      "rate: %s; framescope itself: %s of one core while sampling, %.2f s CPU in all, peak "
      "RSS %.1f MiB\n",
      profile::RateText(r).c_str(),
      r.profiler_sampling_cpu_pct >= 0 ? (Fixed(r.profiler_sampling_cpu_pct, 2) + "%").c_str()
                                       : "n/a",
      r.profiler_cpu_s, static_cast<double>(r.profiler_peak_rss) / 1048576.0);
  for (const std::string& line : profile::GovernorLines(r.governor)) printf("%s\n", line.c_str());
  PrintMemoryTable(result.memory);
  PrintModelLine(result.model);
  PrintBatchLine(result);
  PrintGpuLine(result.gpu);
  if (result.io) {
    for (const std::string& line : profile::IoVerdictLines(*result.io))
      printf("%s\n", line.c_str());
  }
  printf("report: %s/index.html (summary.json and run.json beside it); baseline: %s\n",
         out_dir.c_str(), result.baseline_path.c_str());
}

void PrintErrors(const profile::ProfileRunResult& result) {
  for (const std::string& e : result.errors) fprintf(stderr, "framescope profile: %s\n", e.c_str());
  if (const size_t failed = result.report.write_errors.size(); failed > 0) {
    fprintf(stderr,
            "framescope profile: %zu output(s) not written (above); every other output was "
            "written\n",
            failed);
  }
  if (result.outcome == profile::ProfileOutcome::kInterrupted &&
      !result.report.started_at.empty()) {
    fprintf(stderr, "framescope profile: interrupted after %.1f s: partial results written\n",
            result.report.duration_s);
  }
  // Restarts first (followed or not), then every coverage failure by name and what happened.
  for (const profile::ServiceCpu& s : result.report.services) {
    for (const profile::ServiceRestart& r : s.restarts) {
      fprintf(stderr, "framescope profile: restart: %s\n", profile::RestartText(s.name, r).c_str());
    }
  }
  if (result.coverage_failures > 0) {
    fprintf(stderr, "framescope profile: coverage: %d service(s) not fully recorded:\n",
            result.coverage_failures);
    for (const profile::ServiceCpu& s : result.report.services) {
      if (s.problem.empty()) continue;
      const bool named = s.problem.rfind(s.name + ": ", 0) == 0;
      fprintf(stderr, "  %s%s%s\n", named ? "" : s.name.c_str(), named ? "" : ": ",
              s.problem.c_str());
    }
  }
}

}  // namespace

int ProfileMain(int argc, char** argv) {
  CliFlags f;
  if (int code = ParseFlags(argc, argv, &f); code >= 0) return code;
  CatchStopSignals(&g_stop);
  f.run.stop = &g_stop;
  f.run.automation = session::ScheduleFacts(std::filesystem::absolute(f.schedule_out).string());
  profile::ProgressSink progress;
  progress.message = [](const std::string& line) { fprintf(stderr, "%s\n", line.c_str()); };
  progress.recording = PrintRecording;
  profile::ProfileRunResult result = profile::RunProfile(f.run, progress);
  if (!result.report.started_at.empty()) fprintf(stderr, "\n");
  if (!result.report.services.empty()) {
    if (f.json) {
      fputs(result.summary_json.c_str(), stdout);
    } else {
      PrintTable(result, f.run.out_dir);
    }
  }
  PrintErrors(result);
  if (!result.run_json.empty()) {
    fprintf(stderr, "run: %s (status %s, exit %d)\n", result.run_json.c_str(),
            profile::ProfileStatus(result.outcome), profile::ProfileExitCode(result.outcome));
  }
  return profile::ProfileExitCode(result.outcome);
}

}  // namespace fs
