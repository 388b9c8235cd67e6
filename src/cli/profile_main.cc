// framescope profile: the main job. Against the system `up` started (same --state-dir): preflight
// (perf events usable, NVML present or not, loadgen delivering its configured FPS), then one
// recording of every service at once, split per service into pprof + folded + flame graph, with
// summary.json, index.html and the CPU section of the baseline document. An overhead governor
// lowers the sampling rate while the host is busier than --max-host-cpu.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <set>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/procfs.h"
#include "src/cli/cli.h"
#include "src/report/cpu_report.h"
#include "src/report/flamegraph.h"
#include "src/profile/folded.h"
#include "src/profile/pprof.h"
#include "src/collect/preflight.h"
#include "src/record/recorder.h"
#include "src/system/state.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

// Exit codes (also in --help).
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitPreflightOrCoverage = 3;
constexpr int kExitInterrupted = 130;

struct Target {
  std::string name;
  pid_t pid = -1;
  double started_at = 0;
  std::vector<pid_t> pids;              // The service's process tree at start.
  std::map<pid_t, double> cpu_start_s;  // utime+stime per pid when sampling started.
  std::map<pid_t, double> cpu_end_s;    // ... and when it stopped (absent: gone by then).
};

std::string IsoNow() {
  time_t t = time(nullptr);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// Lowers the sampling rate (halving, down to a floor) after the host has been busier than the
// threshold for three consecutive one-second readings. Never raises it again within a run, so
// the profile's rate changes at most a few times and each change is in the report.
class Governor {
 public:
  Governor(double max_host_pct, int min_hz) : max_pct_(max_host_pct), min_hz_(min_hz) {
    ReadHostCpu(&prev_);
    first_ = prev_;
  }

  int Adjust(double elapsed_s, int current_hz) {
    HostCpuTimes now;
    if (!ReadHostCpu(&now)) return current_hz;
    last_pct_ = HostCpuPercent(prev_, now);
    prev_ = now;
    if (max_pct_ <= 0 || last_pct_ < 0) return current_hz;
    busy_ticks_ = last_pct_ > max_pct_ ? busy_ticks_ + 1 : 0;
    if (busy_ticks_ < 3 || current_hz <= min_hz_) return current_hz;
    busy_ticks_ = 0;
    int next = std::max(min_hz_, current_hz / 2);
    events_.push_back("at " + Fixed(elapsed_s, 0) + " s host CPU was " + Fixed(last_pct_, 0) +
                      "% (> " + Fixed(max_pct_, 0) + "%) for 3 s: sampling lowered from " +
                      std::to_string(current_hz) + " to " + std::to_string(next) + " Hz");
    return next;
  }

  double last_pct() const { return last_pct_; }
  double MeanPct() const {
    HostCpuTimes now;
    return ReadHostCpu(&now) ? HostCpuPercent(first_, now) : -1;
  }
  const std::vector<std::string>& events() const { return events_; }

 private:
  double max_pct_;
  int min_hz_;
  HostCpuTimes prev_, first_;
  double last_pct_ = -1;
  int busy_ticks_ = 0;
  std::vector<std::string> events_;
};

// Waits (up to `wait_s`) until every camera has an FPS report from this loadgen run, then checks
// each against the configured rate. Appends the report line; false on a shortfall.
bool CheckLoadgen(const StateDir& dir, const Json& state, const Target& loadgen, double wait_s,
                  double tolerance, std::vector<std::string>* lines, std::string* error) {
  const Json& config = state.Get("config");
  const int cameras = static_cast<int>(config.Get("cameras").AsInt(0));
  const double fps = config.Get("fps").AsDouble(0);
  std::map<std::string, profile::CameraFps> seen;
  int64_t deadline = MonotonicNs() + static_cast<int64_t>(wait_s * 1e9);
  bool waited = false;
  // Waits until every camera's latest report meets the target: right after `up` the first
  // report covers a window the stream started inside, so it reads low until the next one.
  for (;;) {
    auto log = ReadFile(dir.LogFile("loadgen"));
    if (log.ok()) seen = profile::ParseLoadgenFps(*log, loadgen.started_at);
    bool all_ok = static_cast<int>(seen.size()) >= cameras;
    for (const auto& [cam, f] : seen) all_ok &= f.fps >= fps * (1 - tolerance);
    if (all_ok || MonotonicNs() > deadline || g_stop.load()) break;
    if (!waited) {
      fprintf(stderr,
              "preflight: waiting up to %.0f s for every camera's FPS report to reach %.1f...\n",
              wait_s, fps * (1 - tolerance));
      waited = true;
    }
    usleep(500000);
  }
  std::vector<std::string> short_cams;
  double min_fps = 1e9;
  for (const auto& [cam, f] : seen) {
    min_fps = std::min(min_fps, f.fps);
    if (f.fps < fps * (1 - tolerance)) short_cams.push_back(cam + " " + Fixed(f.fps, 1));
  }
  if (static_cast<int>(seen.size()) < cameras) {
    *error = "loadgen: only " + std::to_string(seen.size()) + " of " + std::to_string(cameras) +
             " cameras reported their FPS in " + dir.LogFile("loadgen") +
             " (is it still starting? see `framescope logs loadgen`)";
    return false;
  }
  if (!short_cams.empty()) {
    std::string list;
    for (const auto& c : short_cams) list += (list.empty() ? "" : ", ") + c;
    *error = "loadgen: cameras below " + Fixed(fps * (1 - tolerance), 1) + " FPS (configured " +
             Fixed(fps, 1) + "): " + list +
             ". The host cannot generate the configured load; lower --cameras/--fps in `up`, or "
             "pass --fps-tolerance";
    return false;
  }
  lines->push_back("loadgen: " + std::to_string(seen.size()) + "/" + std::to_string(cameras) +
                   " cameras delivering >= " + Fixed(min_fps, 1) + " FPS (configured " +
                   Fixed(fps, 1) + ", tolerance " + Fixed(tolerance * 100, 0) + "%; from " +
                   dir.LogFile("loadgen") + ")");
  return true;
}

Status WriteServiceFiles(const std::string& out_dir, const std::string& name,
                         const profile::Profile& p, profile::ServiceCpu* s) {
  s->prof_file = "cpu/" + name + "_profile.prof";
  s->folded_file = "cpu/" + name + "_profile.folded";
  s->flame_file = "flamegraphs/" + name + "_flame.html";
  RETURN_IF_ERROR(profile::WritePprofFile(out_dir + "/" + s->prof_file, p));
  RETURN_IF_ERROR(WriteFileAtomic(out_dir + "/" + s->folded_file, profile::ToFolded(p)));
  profile::FlamegraphOptions fo;
  fo.title = name + " — CPU (cpu-clock, " + std::to_string(s->samples) + " samples)";
  return profile::WriteFlamegraphFile(out_dir + "/" + s->flame_file, p, fo);
}

}  // namespace

int ProfileMain(int argc, char** argv) {
  std::string state_dir = kDefaultStateDir, out_dir = "profiles", unwind = "fp";
  std::string baseline = "docs/performance-baseline.md";
  double duration = 60, max_host_cpu = 80, fps_tolerance = 0.1, fps_wait = 30;
  int frequency = 99, min_frequency = 49, top = 15;
  bool json = false;
  FlagSet flags(
      "framescope profile",
      "Profiles every service of the system `framescope up` started (same --state-dir), without\n"
      "changing them. Preflight: perf events usable (else the fix), NVML present or reported\n"
      "absent, the load generator delivering its configured FPS for every camera. Then one\n"
      "cpu-clock recording of every service's processes at once, written per service:\n"
      "  OUT/cpu/<service>_profile.prof (pprof) and .folded, OUT/cpu/system_profile.prof,\n"
      "  OUT/flamegraphs/<service>_flame.html, OUT/summary.json, OUT/index.html,\n"
      "and the CPU section of the baseline document (--baseline; other sections are kept).\n"
      "Overhead governor: while host CPU stays above --max-host-cpu the rate is halved (down\n"
      "to --min-frequency) and the report says so. Ctrl-C stops early and writes partial\n"
      "results. Exit codes: 0 ok, 1 error, 2 usage, 3 preflight or coverage failure (a\n"
      "service that used CPU but got no samples), 130 interrupted (partial results written).");
  flags.Double("duration", &duration, "seconds to record");
  flags.String("out", &out_dir, "output directory");
  flags.String("state-dir", &state_dir, "the state dir given to `up`");
  flags.Int("frequency", &frequency, "samples per second per CPU");
  flags.String("unwind", &unwind, "fp (frame pointers) or dwarf (stack copies + CFI)");
  flags.String("baseline", &baseline, "baseline document whose CPU section is (re)written");
  flags.Double("max-host-cpu", &max_host_cpu,
               "host CPU % above which the governor lowers the rate (0: off)");
  flags.Int("min-frequency", &min_frequency, "the governor's floor, Hz");
  flags.Double("fps-tolerance", &fps_tolerance,
               "allowed shortfall of loadgen FPS vs configured (0.1 = 10%)");
  flags.Double("fps-wait", &fps_wait,
               "seconds to wait for loadgen's FPS reports to reach the configured rate");
  flags.Int("top", &top, "functions per service in the report tables");
  flags.Bool("json", &json, "print summary.json to stdout instead of the table");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (duration <= 0 || frequency < 1 || frequency > 10000 || min_frequency < 1 ||
      min_frequency > frequency || top < 1 || fps_tolerance < 0 || fps_tolerance >= 1 ||
      (unwind != "fp" && unwind != "dwarf")) {
    fprintf(stderr,
            "framescope profile: need --duration > 0, 1 <= --min-frequency <= --frequency <= "
            "10000, --top >= 1, 0 <= --fps-tolerance < 1, --unwind fp|dwarf\n");
    return kExitUsage;
  }

  auto dir = ResolveStateDir(state_dir);
  if (!dir.ok()) {
    fprintf(stderr, "framescope profile: %s\n", dir.status().message().c_str());
    return kExitError;
  }
  auto state = ReadState(*dir);
  if (!state.ok() || !SupervisorRunning(*state)) {
    fprintf(stderr,
            "framescope profile: no running system in %s (start it with `framescope up "
            "--state-dir %s`)\n",
            dir->root.c_str(), dir->root.c_str());
    return kExitError;
  }

  // ---- Preflight. ----
  std::vector<Target> targets;
  std::vector<std::string> preflight;
  for (const Json& s : state->Get("services").AsArray()) {
    Target t;
    t.name = s.Get("name").AsString();
    t.pid = static_cast<pid_t>(s.Get("pid").AsInt(-1));
    t.started_at = s.Get("started_at").AsDouble(0);
    if (t.pid <= 0 || s.Get("state").AsString() != "running") {
      fprintf(stderr,
              "framescope profile: preflight: service %s is not running (state: %s); see "
              "`framescope status`\n",
              t.name.c_str(), s.Get("state").AsString().c_str());
      return kExitPreflightOrCoverage;
    }
    targets.push_back(std::move(t));
  }
  if (targets.empty()) {
    fprintf(stderr, "framescope profile: the system in %s has no services\n", dir->root.c_str());
    return kExitError;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  auto perf = profile::CheckPerfEvents(targets.front().pid);
  if (!perf.ok()) {
    fprintf(stderr, "framescope profile: preflight: %s\n", perf.status().message().c_str());
    return kExitPreflightOrCoverage;
  }
  preflight.push_back(*perf);
  bool nvml = false;
  preflight.push_back(profile::ProbeNvml(&nvml));
  const Target* loadgen = nullptr;
  for (const Target& t : targets) {
    if (t.name == "loadgen") loadgen = &t;
  }
  if (loadgen != nullptr) {
    std::string error;
    if (!CheckLoadgen(*dir, *state, *loadgen, fps_wait, fps_tolerance, &preflight, &error)) {
      fprintf(stderr, "framescope profile: preflight: %s\n", error.c_str());
      return g_stop.load() ? kExitInterrupted : kExitPreflightOrCoverage;
    }
  } else {
    preflight.push_back("loadgen: not part of this system (real cameras): FPS check skipped");
  }
  for (const std::string& line : preflight) fprintf(stderr, "preflight: %s\n", line.c_str());

  // ---- Record every service at once. ----
  profile::RecordOptions opts;
  opts.frequency_hz = frequency;
  opts.duration_s = duration;
  opts.unwind = unwind == "dwarf" ? profile::Unwind::kDwarf : profile::Unwind::kFramePointer;
  opts.stop = &g_stop;
  opts.allow_vanished = true;  // A PostgreSQL worker in the tree may exit before we attach.
  for (Target& t : targets) {
    t.pids = ProcessTree(t.pid);
    for (pid_t p : t.pids) {
      opts.pids.push_back(p);
      opts.services[p] = t.name;
    }
  }
  // /proc CPU over exactly the sampling window, to cross-check the sampled CPU.
  auto snapshot = [&targets](bool at_start) {
    for (Target& t : targets) {
      for (pid_t p : t.pids) {
        ProcStat st;
        if (ReadProcStat(p, &st)) (at_start ? t.cpu_start_s : t.cpu_end_s)[p] = st.cpu_s;
      }
    }
  };
  opts.after_attach = [&snapshot] { snapshot(true); };
  opts.after_stop = [&snapshot] { snapshot(false); };
  ProcStat self_start;
  ReadProcStat(getpid(), &self_start);
  Governor governor(max_host_cpu, min_frequency);
  int current_hz = frequency;
  opts.adjust_frequency = [&governor, &current_hz](double elapsed, int hz) {
    current_hz = governor.Adjust(elapsed, hz);
    return current_hz;
  };
  double first_tick_s = -1, first_tick_cpu = 0, last_tick_s = -1, last_tick_cpu = 0;
  opts.progress = [&](double elapsed, size_t samples) {
    ProcStat self;
    if (ReadProcStat(getpid(), &self)) {
      if (first_tick_s < 0) {
        first_tick_s = elapsed;
        first_tick_cpu = self.cpu_s;
      }
      last_tick_s = elapsed;
      last_tick_cpu = self.cpu_s;
    }
    // A terminal gets one line redrawn every second; a log file a line every 10 s.
    static const bool tty = isatty(STDERR_FILENO) != 0;
    static int last_line = -1;
    if (!tty && static_cast<int>(elapsed) / 10 == last_line) return;
    last_line = static_cast<int>(elapsed) / 10;
    // The governor reads host CPU only in system-wide mode (per-thread events keep their rate).
    const std::string host =
        governor.last_pct() >= 0 ? ", host CPU " + Fixed(governor.last_pct(), 0) + "%" : "";
    fprintf(stderr, "%sprofiling %zu services: %.0f/%.0f s, %zu samples%s, %d Hz%s",
            tty ? "\r" : "", targets.size(), elapsed, duration, samples, host.c_str(), current_hz,
            tty ? "  " : "\n");
    fflush(stderr);
  };
  const std::string started_at = IsoNow();
  auto result = profile::Record(opts);
  fprintf(stderr, "\n");
  ProcStat self_end;
  ReadProcStat(getpid(), &self_end);
  if (!result.ok()) {
    fprintf(stderr, "framescope profile: %s\n", result.status().message().c_str());
    return kExitError;
  }
  const bool partial = g_stop.load();
  const int64_t post_start = MonotonicNs();

  // ---- Per-service files and the report. ----
  profile::CpuReport report;
  report.started_at = started_at;
  report.duration_s = result->elapsed_s;
  report.requested_s = duration;
  report.partial = partial;
  report.frequency_hz = frequency;
  report.final_frequency_hz =
      result->final_frequency_hz > 0 ? result->final_frequency_hz : frequency;
  report.unwind = unwind;
  report.kernel_frames = result->kernel_frames;
  report.lost = result->lost;
  report.host_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  report.host_cpu_pct = governor.MeanPct();
  report.governor = governor.events();
  report.profiler_cpu_s = self_end.cpu_s - self_start.cpu_s;
  if (last_tick_s - first_tick_s >= 2) {
    report.profiler_sampling_cpu_pct =
        (last_tick_cpu - first_tick_cpu) / (last_tick_s - first_tick_s) * 100;
  }
  report.preflight = preflight;

  for (const char* sub : {"", "/cpu", "/flamegraphs"}) {
    if (Status st = MakeDirs(out_dir + sub); !st.ok()) {
      fprintf(stderr, "framescope profile: %s\n", st.message().c_str());
      return kExitError;
    }
  }
  std::map<std::string, profile::Profile> parts = profile::SplitByService(result->profile);
  std::set<pid_t> exited(result->exited.begin(), result->exited.end());
  int coverage_failures = 0;
  for (const Target& t : targets) {
    auto it = parts.find(t.name);
    profile::ServiceCpu s;
    if (it != parts.end()) s = profile::SummarizeCpu(t.name, it->second, static_cast<size_t>(top));
    s.name = t.name;
    s.pids = t.pids;
    double proc = 0;
    bool measured = false;
    for (const auto& [p, start] : t.cpu_start_s) {
      auto end = t.cpu_end_s.find(p);
      if (end != t.cpu_end_s.end()) {
        proc += end->second - start;
        measured = true;
      }
    }
    s.proc_cpu_s = measured ? proc : -1;
    if (exited.count(t.pid) != 0) {
      s.problem = "exited while recording (samples up to the exit are kept)";
      ++coverage_failures;
    }
    if (s.samples == 0) {
      // An idle service legitimately gets no samples; one whose /proc CPU time should have
      // produced >= 10 samples (P(0 | Poisson 10) < 1e-4) has a coverage gap.
      const double expected = s.proc_cpu_s * report.final_frequency_hz;
      if (!s.problem.empty()) {
        // Already counted: it exited.
      } else if (!measured || expected >= 10) {
        s.problem = measured ? "no samples although /proc shows " + Fixed(s.proc_cpu_s, 2) +
                                   " s CPU (~" + Fixed(expected, 0) +
                                   " samples expected): "
                                   "coverage gap"
                             : "no samples and the process is gone";
        ++coverage_failures;
      } else {
        s.note = "idle: no samples; /proc shows " + Fixed(s.proc_cpu_s, 2) + " s CPU (~" +
                 Fixed(expected, 1) + " samples expected)";
      }
    } else if (Status st = WriteServiceFiles(out_dir, t.name, it->second, &s); !st.ok()) {
      fprintf(stderr, "framescope profile: %s\n", st.message().c_str());
      return kExitError;
    }
    report.services.push_back(std::move(s));
  }
  if (Status st = profile::WritePprofFile(out_dir + "/cpu/system_profile.prof", result->profile);
      !st.ok()) {
    fprintf(stderr, "framescope profile: %s\n", st.message().c_str());
    return kExitError;
  }
  report.postprocess_s =
      result->symbolize_s + static_cast<double>(MonotonicNs() - post_start) / 1e9;
  uint64_t rss = 0, peak = 0;
  if (ReadProcessMemory(getpid(), &rss, &peak)) report.profiler_peak_rss = peak;

  const std::string summary = profile::CpuReportToJson(report).Dump(2) + "\n";
  Status st = WriteFileAtomic(out_dir + "/summary.json", summary);
  if (st.ok()) st = WriteFileAtomic(out_dir + "/index.html", profile::RenderIndexHtml(report));
  if (st.ok() && !baseline.empty()) {
    auto existing = ReadFile(baseline);
    std::string doc = existing.ok() ? *existing : "";
    st = WriteFileAtomic(
        baseline, profile::ReplaceSection(doc, profile::kCpuSectionBegin, profile::kCpuSectionEnd,
                                          profile::RenderBaselineCpuSection(report)));
  }
  if (!st.ok()) {
    fprintf(stderr, "framescope profile: %s\n", st.message().c_str());
    return kExitError;
  }

  if (json) {
    fputs(summary.c_str(), stdout);
  } else {
    printf("%-16s %22s %9s %10s  %s\n", "service", "CPU % of 1 core (95%)", "samples",
           "/proc CPU s", "top self function");
    for (const profile::ServiceCpu& s : report.services) {
      std::string cpu = "0";
      if (s.samples > 0 && report.duration_s > 0) {
        double pct = static_cast<double>(s.cpu_ns) / 1e9 / report.duration_s * 100;
        cpu = Fixed(pct, 1) + " ± " + Fixed(pct * 1.96 / std::sqrt(double(s.samples)), 1);
      }
      std::string what = !s.problem.empty()    ? "PROBLEM: " + s.problem
                         : !s.top_self.empty() ? s.top_self[0].name
                                               : s.note;
      if (what.size() > 70) what = what.substr(0, 67) + "...";
      printf("%-16s %22s %9lld %10s  %s\n", s.name.c_str(), cpu.c_str(),
             static_cast<long long>(s.samples),
             s.proc_cpu_s >= 0 ? Fixed(s.proc_cpu_s, 2).c_str() : "n/a", what.c_str());
    }
    for (const std::string& g : report.governor) printf("governor: %s\n", g.c_str());
    std::string sampling = report.profiler_sampling_cpu_pct >= 0
                               ? Fixed(report.profiler_sampling_cpu_pct, 2) + "% of one core"
                               : "n/a";
    printf(
        "framescope itself: %.2f s CPU from attach to files written (%s while sampling), "
        "peak RSS %.1f MiB; post-processing %.2f s\n",
        report.profiler_cpu_s, sampling.c_str(),
        static_cast<double>(report.profiler_peak_rss) / 1048576.0, report.postprocess_s);
    printf("report: %s/index.html (summary.json beside it)%s%s\n", out_dir.c_str(),
           baseline.empty() ? "" : "; baseline: ", baseline.c_str());
  }
  if (partial) {
    fprintf(stderr, "framescope profile: interrupted after %.1f s: partial results written\n",
            report.duration_s);
    return kExitInterrupted;
  }
  if (coverage_failures > 0) {
    fprintf(stderr, "framescope profile: %d service(s) without samples although they used CPU\n",
            coverage_failures);
    return kExitPreflightOrCoverage;
  }
  return 0;
}

}  // namespace fs
