// framescope memory: the memory series of processes (RSS, PSS, anonymous, file-backed from
// /proc/PID/smaps_rollup, summed over each process tree), appended to a log as it is sampled,
// and each target's leak rate (Theil–Sen slope of RSS with its 95 % interval) against a limit;
// for processes started with the heap counters library, the reclaim ratio (freed / allocated).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/output.h"
#include "src/base/procfs.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/cli/command.h"
#include "src/memory/heap/heap_profile.h"
#include "src/memory/heap/heap_window.h"
#include "src/memory/leak_rate.h"
#include "src/memory/memory_series.h"
#include "src/report/heap_report.h"
#include "src/system/state.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};

constexpr double kMaxDurationS = 7 * 24 * 3600;

struct Target {
  std::string name;
  pid_t pid = -1;
  bool gone = false;
  memory::HeapWindow heap{""};  // counted only where it was started with the library
  // Sampled allocations per site, where it was started with the library (shared: a Target is
  // copied into its list).
  std::shared_ptr<memory::HeapSiteTracker> sites = nullptr;
  // A service of the running system (state.json here): an exit is followed to its restart.
  std::string state_root = "";
  bool waiting_restart = false;

  // Reads the counters and the sites files the library writes in `dir` for this target.
  void CountHeap(const std::string& dir) {
    heap = memory::HeapWindow(dir);
    sites = std::make_shared<memory::HeapSiteTracker>(dir);
  }
};

struct MemoryFlags {
  std::string duration = "60", out = "profiles", state_dir = kDefaultStateDir;
  double interval = 5, limit = 10, warmup = -1;
  int pid = 0;
  bool json = false, heap = false;
  std::vector<std::string> command;
};

constexpr const char* kMemorySummary =
    "Follows the memory of processes and reports each one's leak rate.\n"
    "Targets: -- CMD ARGS (started and followed; stopped at the end if still running),\n"
    "--pid N (a running process and its descendants), or, with neither, every service of\n"
    "the system `framescope up` started (--state-dir).\n"
    "Every --interval, each target's process tree is read from /proc/PID/smaps_rollup\n"
    "(rss, pss, anon, file = rss - anon, swap; bytes) and appended as one JSON line to\n"
    "OUT/memory/NAME.log: NAME is the command's name, the process's, or \"system\" for\n"
    "the services (one line per service per sample, with the service's name), and\n"
    "\"24h_run\" for --duration 24h (the planning document's log). An existing log is\n"
    "appended to: a restarted run continues the series of the same process (same name\n"
    "and pid); corrupt lines are skipped and counted.\n"
    "The leak rate is the Theil-Sen slope of RSS after the warm-up (default: the first\n"
    "10% of the series), in MB/h (10^6 bytes) with Sen's 95% interval; the verdict\n"
    "against --limit is met (interval below), not met (above), inconclusive (with how\n"
    "much longer a run would likely decide) or not measurable (too few samples).\n"
    "Reclaim ratio: for a command started with --heap, and for the services `up\n"
    "--heap-profile` started, the bytes freed / bytes allocated over the run after the\n"
    "warm-up, counted exactly by libframescope_heap.so (files in OUT/memory/heap-NAME/\n"
    "or <state-dir>/heap/SERVICE/); verdict met at 0.95 or more. C++ has no garbage\n"
    "collector: a low ratio means memory kept (a cache filling, a growing working set,\n"
    "or a leak).\n"
    "Allocation sites (the same processes): the library also samples allocations (every\n"
    "512 KiB on average; FRAMESCOPE_HEAP_SAMPLE_BYTES=N) with their stacks. Per process:\n"
    "OUT/memory/heap-NAME.heap.pb.gz (pprof alloc_/inuse_ objects and space), .growth.pb.gz\n"
    "(bytes in use gained per site), flame graphs .heap.html and .growth.html, and in the\n"
    "analysis heap_growth_mb_per_h and sites (function, stack, growth_mb_per_h with ci95,\n"
    "inuse_bytes), fastest-growing first.\n"
    "A service that exits is followed to its restarted process (a new series).\n"
    "Writes OUT/memory/analysis.json (--json prints it; the command's own output then\n"
    "goes to stderr). Ctrl-C stops and analyses what was collected.\n"
    "Exit codes: 0 ok, 1 failure, 2 bad usage or output, 3 a target's leak rate is over\n"
    "the limit or its reclaim ratio under 0.95 (not met), 130 interrupted (the analysis is "
    "written).";

// "90", "90s", "30m", "24h", "2d": seconds; finite, positive, at most 7 days.
StatusOr<double> ParseDuration(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  std::string unit = end ? end : "";
  double scale = unit.empty() || unit == "s" ? 1
                 : unit == "m"               ? 60
                 : unit == "h"               ? 3600
                 : unit == "d"               ? 86400
                                             : 0;
  if (end == text.c_str() || errno != 0 || scale == 0 || !std::isfinite(v) || v <= 0 ||
      v * scale > kMaxDurationS) {
    return Err("--duration '" + text +
               "' must be a positive number of seconds, or with a suffix s/m/h/d, at most 7d");
  }
  return v * scale;
}

// Parses and validates; returns -1 to go on, else the exit code.
int ParseMemoryFlags(int argc, char** argv, MemoryFlags* f, double* duration_s) {
  FlagSet flags("framescope memory", kMemorySummary);
  flags.String("duration", &f->duration, "how long to follow: seconds or 30m, 24h, 2d (max 7d)");
  flags.Double("interval", &f->interval, "seconds between samples, 0.05..3600");
  flags.Folder("out", &f->out, "output folder (the log and analysis go to OUT/memory/)");
  flags.Int("pid", &f->pid, "follow this running process and its descendants");
  flags.String("state-dir", &f->state_dir, "the running system's state dir (services mode)");
  flags.Double("limit", &f->limit, "leak-rate limit in MB/h (10^6 bytes per hour)");
  flags.Double("warmup", &f->warmup, "seconds excluded at the start (default: 10% of the run)");
  flags.Bool("json", &f->json, "print the analysis as JSON on standard output");
  flags.Bool("heap", &f->heap,
             "with -- CMD: count its allocations (reclaim ratio) and sample their sites");
  flags.AllowPositional("[-- CMD ARGS...]");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  f->command = flags.positional();
  auto usage = [](const std::string& message) {
    fprintf(stderr, "framescope memory: %s\n", message.c_str());
    return 2;
  };
  if (f->pid != 0 && !f->command.empty()) return usage("give --pid or -- CMD, not both");
  if ((f->pid != 0 || !f->command.empty()) && flags.WasSet("state-dir")) {
    return usage("--state-dir follows the running system's services; not with --pid or -- CMD");
  }
  if (f->heap && f->command.empty()) {
    return usage("--heap starts the command with the heap counters library: give -- CMD");
  }
  if (flags.WasSet("pid") && f->pid <= 0) return usage("--pid must be a process id (1 or more)");
  auto duration = ParseDuration(f->duration);
  if (!duration.ok()) return usage(duration.status().message());
  *duration_s = *duration;
  if (f->interval < 0.05 || f->interval > 3600 || f->interval >= *duration_s) {
    return usage("--interval must be 0.05..3600 seconds and shorter than --duration");
  }
  if (!(f->limit > 0)) return usage("--limit must be positive (MB/h)");
  if (flags.WasSet("warmup") && (f->warmup < 0 || f->warmup >= *duration_s)) {
    return usage("--warmup must be 0 or more seconds and shorter than --duration");
  }
  return -1;
}

// A log file name from a target's name: letters, digits, '.', '_' and '-' only.
std::string SafeName(const std::string& name) {
  std::string out;
  for (char c : name)
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
  return out.empty() || out[0] == '.' ? "process" + out : out;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The targets before anything starts: --pid's process, the running services, or a placeholder
// for the command (its pid comes when it starts).
StatusOr<std::vector<Target>> ResolveTargets(const MemoryFlags& f) {
  if (!f.command.empty()) return std::vector<Target>{{Basename(f.command[0]), -1}};
  if (f.pid > 0) {
    ProcStat st;
    if (!ReadProcStat(f.pid, &st)) return Err("no process " + std::to_string(f.pid));
    return std::vector<Target>{{st.comm, f.pid}};
  }
  ASSIGN_OR_RETURN(StateDir dir, ResolveStateDir(f.state_dir));
  auto state = ReadState(dir);
  if (!state.ok() || !SupervisorRunning(*state)) {
    return Err("no running system in " + dir.root +
               " (start it with `framescope up`, pass --state-dir, --pid or -- CMD)");
  }
  // The services `up --heap-profile` started with the library have their counters there.
  auto config = ConfigFromJson(state->Get("config"));
  std::vector<Target> out;
  for (const Json& s : state->Get("services").AsArray()) {
    pid_t pid = static_cast<pid_t>(s.Get("pid").AsInt(-1));
    std::string name = s.Get("name").AsString();
    if (pid <= 0) continue;
    out.push_back({name, pid});
    out.back().state_root = dir.root;
    if (config.ok() && HeapProfiled(*config, name)) {
      out.back().CountHeap(dir.HeapDir(name));
    }
  }
  if (out.empty()) return Err("no service of the system in " + dir.root + " is running");
  return out;
}

std::string LogName(const MemoryFlags& f, double duration_s, const std::vector<Target>& t) {
  if (duration_s == 86400) return "24h_run";  // the planning document's name for the 24 h run
  return SafeName(f.command.empty() && f.pid == 0 ? "system" : t.front().name);
}

// Sleeps until `deadline_ns` (monotonic) or a stop request, in steps that notice Ctrl-C.
void SleepUntil(int64_t deadline_ns) {
  while (!g_stop.load()) {
    int64_t left = deadline_ns - MonotonicNs();
    if (left <= 0) return;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<int64_t>(left, 100'000'000)));
  }
}

// A service that exited: its restarted process if the supervisor has one running (a new
// series; the earlier one stays in the log), else it is waited for; false when the system is
// no longer up (the target is then gone).
bool FollowRestart(Target* t) {
  auto state = ReadState(StateDir{t->state_root});
  if (!state.ok() || !SupervisorRunning(*state)) return false;
  for (const Json& s : state->Get("services").AsArray()) {
    const pid_t pid = static_cast<pid_t>(s.Get("pid").AsInt(-1));
    if (s.Get("name").AsString() != t->name || pid <= 0 || pid == t->pid) continue;
    if (s.Get("state").AsString() != "running") continue;
    fprintf(stderr, "\n%s restarted (pid %d -> %d): following the new process\n", t->name.c_str(),
            t->pid, pid);
    t->pid = pid;
    t->waiting_restart = false;
    return true;
  }
  if (!t->waiting_restart) {
    fprintf(stderr, "\n%s (pid %d) exited: waiting for its restart\n", t->name.c_str(), t->pid);
  }
  t->waiting_restart = true;
  return true;
}

// One sample of every live target into the log; a target that is gone keeps its series. The
// heap counters are read from `heap_window` on (the warm-up is left out of the reclaim ratio
// too); those of a target that exited are read once more (its file keeps its final counts).
Status SampleOnce(std::vector<Target>* targets, profile::MemoryLog* log, bool heap_window,
                  double t_s, size_t* samples, uint64_t* rss) {
  *rss = 0;
  for (Target& t : *targets) {
    if (t.gone) continue;
    auto s = profile::ReadProcessTreeMemory(t.pid, t.name);
    if (heap_window) t.heap.Read(t.pid);
    if (heap_window && t.sites) t.sites->Read(t.pid, t_s);
    if (!s.ok() && !t.state_root.empty() && FollowRestart(&t)) {
      if (t.waiting_restart) continue;
      s = profile::ReadProcessTreeMemory(t.pid, t.name);
    }
    if (!s.ok()) {
      t.gone = true;
      fprintf(stderr, "\n%s (pid %d) exited; its series so far is kept\n", t.name.c_str(), t.pid);
      continue;
    }
    RETURN_IF_ERROR(log->Append(*s));
    ++*samples;
    *rss += s->bytes.rss;
  }
  return Status::Ok();
}

// Samples every `interval_s` until `duration_s`, Ctrl-C, or every target is gone.
StatusOr<size_t> Follow(std::vector<Target>* targets, profile::MemoryLog* log, double duration_s,
                        double interval_s, double warmup_s) {
  size_t samples = 0;
  const int64_t start = MonotonicNs();
  for (int64_t k = 0; !g_stop.load(); ++k) {
    int64_t due = start + static_cast<int64_t>(static_cast<double>(k) * interval_s * 1e9);
    if (static_cast<double>(due - start) / 1e9 > duration_s) break;
    SleepUntil(due);
    if (g_stop.load()) break;
    uint64_t rss = 0;
    bool heap_window = static_cast<double>(due - start) / 1e9 >= warmup_s;
    RETURN_IF_ERROR(SampleOnce(targets, log, heap_window, static_cast<double>(due - start) / 1e9,
                               &samples, &rss));
    if (std::all_of(targets->begin(), targets->end(), [](const Target& t) { return t.gone; }))
      break;
    fprintf(stderr, "\rsampling %.0f/%.0f s, %zu samples, RSS %.1f MB   ",
            static_cast<double>(MonotonicNs() - start) / 1e9, duration_s, samples,
            static_cast<double>(rss) / 1e6);
    fflush(stderr);
  }
  fprintf(stderr, "\n");
  return samples;
}

// The reclaim ratio's fields: null (with the reason) where it was not measured.
void AddReclaim(const memory::HeapWindow& window, Json* j) {
  const memory::ReclaimRatio r = window.Result();
  const bool counted = window.counted();
  (*j)["heap_counted"] = counted;
  (*j)["allocated_bytes"] = counted ? Json(r.allocated_bytes) : Json();
  (*j)["freed_bytes"] = counted ? Json(r.freed_bytes) : Json();
  (*j)["reclaim_ratio"] = r.value ? Json(*r.value) : Json();
  (*j)["reclaim_verdict"] = memory::ReclaimVerdict(r);
  if (!r.why_absent.empty()) (*j)["reclaim_reason"] = r.why_absent;
}

Json AnalyseOne(const std::vector<profile::MemorySample>& series, const std::string& name,
                const MemoryFlags& f) {
  profile::LeakRateOptions opts;
  opts.limit_mb_per_h = f.limit;
  opts.warmup_s = f.warmup;
  return profile::LeakRateJson(name, series,
                               profile::EstimateLeakRate(profile::RssSeries(series), opts));
}

// Each target's samples in the whole log: a resumed log continues the series of the same
// process (same root pid); an earlier process of the same name is not mixed in.
// The sampled sites of a target started with the library: profiles and flame graphs in
// OUT/memory, their fields (paths relative to OUT) into `p`. The series already starts after the
// warm-up.
Status AddHeapSites(const Target& t, const MemoryFlags& f, Json* p) {
  if (!t.sites) return Status::Ok();
  profile::LeakRateOptions opts;
  opts.limit_mb_per_h = f.limit;
  opts.warmup_s = 0;
  ASSIGN_OR_RETURN(Json heap, profile::WriteHeapOutputs(*t.sites, f.out, "memory",
                                                        "heap-" + SafeName(t.name), opts));
  for (const auto& [key, value] : heap.AsObject()) (*p)[key] = value;
  return Status::Ok();
}

StatusOr<Json> Analyse(const profile::LoadedLog& log, const std::vector<Target>& targets,
                       const std::string& log_path, const MemoryFlags& f) {
  Json out = Json::MakeObject();
  out["log"] = log_path;
  out["corrupt_lines"] = static_cast<uint64_t>(log.corrupt_lines);
  out["limit_mb_per_h"] = f.limit;
  Json processes = Json::MakeArray();
  for (const Target& t : targets) {
    Json p = AnalyseOne(profile::SamplesNamed(log.samples, t.name, t.pid), t.name, f);
    AddReclaim(t.heap, &p);
    RETURN_IF_ERROR(AddHeapSites(t, f, &p));
    processes.Push(p);
  }
  out["processes"] = processes;
  out["reclaim_target"] = memory::kReclaimTarget;
  out["reclaim_explanation"] = memory::ReclaimExplanation();
  return out;
}

// The reclaim ratio's part of a row ("0.750 not met", "-" where not counted) and, for a counted
// process, its bytes or why there is no ratio.
std::string ReclaimCell(const Json& p) {
  if (!p.Get("heap_counted").AsBool()) return "-";
  char text[64];
  if (!p.Get("reclaim_ratio").is_number()) return "not measured";
  snprintf(text, sizeof(text), "%.3f %s", p.Get("reclaim_ratio").AsDouble(),
           p.Get("reclaim_verdict").AsString().c_str());
  return text;
}

// The fastest-growing sampled sites of a process started with the library.
void PrintTopSites(const Json& p, const std::string& root, FILE* out) {
  if (!p.Get("heap_sampled").AsBool()) {
    if (p.Has("heap_reason")) {
      fprintf(out, "  heap sites: %s\n", p.Get("heap_reason").AsString().c_str());
    }
    return;
  }
  const Json& growth = p.Get("heap_growth_mb_per_h");
  char growth_text[64] = "growth not measurable";
  if (growth.is_number())
    snprintf(growth_text, sizeof(growth_text), "%+.1f MB/h", growth.AsDouble());
  fprintf(out, "  heap in use (sampled every %.0f KiB): %s; flame graph %s\n",
          p.Get("sample_interval_bytes").AsDouble() / 1024, growth_text,
          (root + "/" + p.Get("heap_flamegraph").AsString()).c_str());
  size_t shown = 0;
  for (const Json& site : p.Get("sites").AsArray()) {
    if (shown++ == 3) break;
    const Json& g = site.Get("growth_mb_per_h");
    char rate[32] = "n/a";
    if (g.is_number()) snprintf(rate, sizeof(rate), "%+.1f", g.AsDouble());
    fprintf(out, "    %10s MB/h %8.1f MB in use  %s\n", rate,
            site.Get("inuse_bytes").AsDouble() / 1e6, site.Get("function").AsString().c_str());
  }
}

void PrintReclaimDetail(const Json& p, FILE* out) {
  if (!p.Get("heap_counted").AsBool()) return;
  if (p.Has("reclaim_reason")) {
    fprintf(out, "  reclaim ratio: %s\n", p.Get("reclaim_reason").AsString().c_str());
  } else {
    fprintf(out, "  heap: %.1f MB allocated, %.1f MB freed in the window\n",
            p.Get("allocated_bytes").AsDouble() / 1e6, p.Get("freed_bytes").AsDouble() / 1e6);
  }
}

void PrintTable(const Json& analysis, const std::string& root, FILE* out) {
  fprintf(out, "%-20s %12s %14s %24s  %-14s %s\n", "name", "RSS now MB", "slope MB/h", "ci95 MB/h",
          "verdict", "reclaim");
  bool low_reclaim = false;
  for (const Json& p : analysis.Get("processes").AsArray()) {
    const Json& ci = p.Get("ci95");
    char ci_text[64] = "-";
    if (ci.is_array()) {
      snprintf(ci_text, sizeof(ci_text), "[%.1f, %.1f]", ci.AsArray()[0].AsDouble(),
               ci.AsArray()[1].AsDouble());
    }
    fprintf(out, "%-20s %12.1f %14.1f %24s  %-14s %s\n", p.Get("name").AsString().c_str(),
            p.Get("rss_bytes").AsDouble(NAN) / 1e6, p.Get("rss_slope_mb_per_h").AsDouble(NAN),
            ci_text, p.Get("verdict").AsString().c_str(), ReclaimCell(p).c_str());
    PrintReclaimDetail(p, out);
    PrintTopSites(p, root, out);
    low_reclaim |= p.Get("reclaim_verdict").AsString() == "not met";
    if (p.Has("reason")) fprintf(out, "  %s\n", p.Get("reason").AsString().c_str());
    if (p.Get("extra_time_s").is_number()) {
      double extra = p.Get("extra_time_s").AsDouble();
      fprintf(out, "  about %.1f %s more would likely decide it (if the slope holds)\n",
              extra >= 7200  ? extra / 3600
              : extra >= 120 ? extra / 60
                             : extra,
              extra >= 7200  ? "h"
              : extra >= 120 ? "min"
                             : "s");
    }
  }
  if (low_reclaim) fprintf(out, "%s\n", analysis.Get("reclaim_explanation").AsString().c_str());
  if (analysis.Get("corrupt_lines").AsInt() > 0) {
    fprintf(out, "skipped %lld corrupt line(s) of %s\n",
            static_cast<long long>(analysis.Get("corrupt_lines").AsInt()),
            analysis.Get("log").AsString().c_str());
  }
}

// Creates OUT/memory and checks the log and analysis paths; all before any work.
StatusOr<profile::MemoryLog> PrepareOutputs(const std::string& dir, const std::string& log_path,
                                            const std::string& analysis_path) {
  RETURN_IF_ERROR(MakeDirs(dir).Annotate("--out: cannot create " + dir));
  RETURN_IF_ERROR(CheckFolderWritable(dir).Annotate("--out"));
  RETURN_IF_ERROR(CheckOutputs({analysis_path}));
  return profile::MemoryLog::Open(log_path);
}

// `memory --heap -- CMD`: an empty OUT/memory/heap-NAME for the command's counters and the
// environment that preloads the library (ours stays as it is).
StatusOr<std::vector<std::string>> HeapEnvironment(const std::string& out_dir, Target* target) {
  std::string heap_dir = out_dir + "/heap-" + SafeName(target->name);
  ASSIGN_OR_RETURN(std::vector<std::string> env, HeapPreloadEnv(heap_dir));
  target->CountHeap(heap_dir);
  return env;
}

// Loads the log, writes the analysis, prints it; returns the exit code.
int Report(const std::vector<Target>& targets, const std::string& log_path,
           const std::string& analysis_path, const MemoryFlags& f) {
  auto log = profile::LoadMemoryLog(log_path);
  if (!log.ok()) {
    fprintf(stderr, "framescope memory: %s\n", log.status().message().c_str());
    return 1;
  }
  auto analysed = Analyse(*log, targets, log_path, f);
  if (!analysed.ok()) {
    fprintf(stderr, "framescope memory: %s\n", analysed.status().message().c_str());
    return 1;
  }
  const Json& analysis = *analysed;
  if (Status st = WriteOutput(analysis_path, analysis.Dump(2) + "\n"); !st.ok()) {
    fprintf(stderr, "framescope memory: %s\n", st.message().c_str());
    return 1;
  }
  if (f.json) {
    printf("%s\n", analysis.Dump(2).c_str());
  } else {
    PrintTable(analysis, f.out, stdout);
    printf("wrote %s and %s\n", log_path.c_str(), analysis_path.c_str());
  }
  if (g_stop.load()) return 130;
  for (const Json& p : analysis.Get("processes").AsArray()) {
    if (p.Get("verdict").AsString() == "not met") return 3;
    if (p.Get("reclaim_verdict").AsString() == "not met") return 3;
  }
  return 0;
}

}  // namespace

int MemoryMain(int argc, char** argv) {
  MemoryFlags f;
  double duration_s = 0;
  if (int code = ParseMemoryFlags(argc, argv, &f, &duration_s); code >= 0) return code;
  auto targets = ResolveTargets(f);
  if (!targets.ok()) {
    fprintf(stderr, "framescope memory: %s\n", targets.status().message().c_str());
    return 1;
  }
  const std::string dir = f.out + "/memory";
  const std::string log_path = dir + "/" + LogName(f, duration_s, *targets) + ".log";
  const std::string analysis_path = dir + "/analysis.json";
  auto log = PrepareOutputs(dir, log_path, analysis_path);
  if (!log.ok()) {
    fprintf(stderr, "framescope memory: %s\n", log.status().message().c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  CatchStopSignals(&g_stop);
  std::optional<ChildCommand> command;
  if (!f.command.empty()) {
    CommandOptions options{.stdout_to_stderr = f.json};  // ours stays one JSON document
    if (f.heap) {
      auto env = HeapEnvironment(dir, &targets->front());
      if (!env.ok()) {
        fprintf(stderr, "framescope memory: %s\n", env.status().message().c_str());
        return 1;
      }
      options.extra_env = *env;
    }
    auto started = ChildCommand::Start(f.command, options);
    if (!started.ok()) {
      fprintf(stderr, "framescope memory: %s\n", started.status().message().c_str());
      return 1;
    }
    command = std::move(*started);
    targets->front().pid = command->pid();
  }
  // The reclaim window leaves out the same warm-up as the leak rate (default: 10% of the run).
  double warmup_s = f.warmup >= 0 ? f.warmup : 0.1 * duration_s;
  auto samples = Follow(&*targets, &*log, duration_s, f.interval, warmup_s);
  if (command) command->End(/*keep_running=*/false);
  if (!samples.ok()) {
    fprintf(stderr, "framescope memory: %s\n", samples.status().message().c_str());
    return 1;
  }
  return Report(*targets, log_path, analysis_path, f);
}

}  // namespace fs
