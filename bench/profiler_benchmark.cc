// Profiler benchmark (`make bench`): what `framescope record` costs, measured side by side with
// Linux perf in one run on the same system and load.
//
//  1. Overhead on the running system. The reference system is brought up (own temp state dir),
//     warmed up, then measured in phases of equal length: no profiler; `framescope record
//     --service <all>` (frame pointers); the same with `--unwind dwarf` (when record has it);
//     `perf record -g -p <all pids>`; `perf record --call-graph dwarf -p ...`; no profiler
//     again (drift check; the loss is taken against the mean of the two baselines). Each phase
//     reads detection's frames_out counter and capture->published latency histogram from its
//     /metrics at the start and end of the window, so FPS and p99 are over that window only.
//     The profiler runs from --lead-seconds before the window to --tail-seconds after it, so
//     its attach and its post-processing fall outside the window. Its CPU in the window comes
//     from /proc/<pid>/stat; its total CPU and peak RSS from wait4()'s rusage.
//  2. Post-processing of the same-length recordings: framescope record's time from the end of
//     the recording to the profile + folded written (its "symbolized in", and its wall time
//     minus the recording) plus `framescope flamegraph`, against `perf record`'s own tail
//     (build-id collection) plus `perf report --stdio` (and `perf script | wc -l`): wall, CPU
//     and peak RSS of each child.
//  3. Symbolizer throughput (Symbolizer::ForProcess + Lookup) on ~20k distinct code addresses
//     spread over the detection process's executable mappings: cold (empty caches), warm (the
//     same Symbolizer again) and warm shared cache (a new Symbolizer, process-wide cache full).
//
// Every exit path kills the profilers it started (their own process groups) and takes the
// system down.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/clients/prom_text.h"
#include "src/symbolize/symbolizer.h"

namespace fs {
namespace {

using bench::CpuSeconds;
using bench::Fmt;
using bench::MetricDelta;
using bench::RunCommand;

constexpr const char* kPerf = "/usr/bin/perf";

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

// Sleeps up to `seconds`; false when interrupted (Ctrl-C / SIGTERM).
bool SleepFor(double seconds) {
  int64_t end = MonotonicNs() + static_cast<int64_t>(seconds * 1e9);
  while (!g_stop.load()) {
    int64_t left = end - MonotonicNs();
    if (left <= 0) return true;
    usleep(static_cast<useconds_t>(std::min<int64_t>(left / 1000, 100000)));
  }
  return false;
}

double Seconds(int64_t from_ns, int64_t to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e9;
}

// Busy (non-idle, non-iowait) CPU seconds of the whole machine, from /proc/stat.
double MachineBusySeconds() {
  auto stat = ReadFile("/proc/stat");
  if (!stat.ok()) return NAN;
  unsigned long long v[10] = {};
  if (sscanf(stat->c_str(), "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
             &v[3], &v[4], &v[5], &v[6], &v[7]) < 8)
    return NAN;
  double busy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
  return busy / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

// ---- children in their own process groups, reaped with wait4() for their rusage ----------

std::set<pid_t> g_children;  // live children (process group leaders)

struct Spawned {
  pid_t pid = -1;
  int64_t start_ns = 0;
  std::string log;  // stdout+stderr go here ("" = /dev/null)
};

struct Finished {
  bool ok = false;  // exited with status 0
  int status = 0;
  double wall_s = NAN;
  double cpu_s = NAN;      // user + system, the child and the children it reaped
  double maxrss_mb = NAN;  // ru_maxrss: the largest RSS of the child or any reaped child
  std::string output;      // the log's contents
};

Spawned Spawn(const std::vector<std::string>& argv, const std::string& log,
              const std::map<std::string, std::string>& env = {}) {
  Spawned s;
  s.log = log;
  s.start_ns = MonotonicNs();
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    FILE* f = fopen(log.empty() ? "/dev/null" : log.c_str(), "w");
    if (f) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    execv(args[0], args.data());
    fprintf(stderr, "cannot run %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  if (pid > 0) {
    setpgid(pid, pid);
    g_children.insert(pid);
  }
  s.pid = pid;
  return s;
}

Finished Reap(const Spawned& s, bool block = true) {
  Finished f;
  if (s.pid <= 0) {
    f.output = "fork failed";
    return f;
  }
  int status = 0;
  struct rusage ru {};
  pid_t r;
  do {
    r = wait4(s.pid, &status, block ? 0 : WNOHANG, &ru);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return f;  // still running (non-blocking)
  g_children.erase(s.pid);
  kill(-s.pid, SIGKILL);  // anything the child left in its group (perf's `sleep`)
  f.wall_s = Seconds(s.start_ns, MonotonicNs());
  f.status = status;
  f.ok = r == s.pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  f.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  f.maxrss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
  if (!s.log.empty()) {
    auto text = ReadFile(s.log);
    if (text.ok()) f.output = *text;
  }
  return f;
}

std::string ExitString(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// SIGINT to each live child's group (profilers keep what they recorded), SIGKILL after 5 s.
void KillChildren() {
  for (pid_t pid : g_children) kill(-pid, SIGINT);
  for (int i = 0; i < 50 && !g_children.empty(); ++i) {
    for (auto it = g_children.begin(); it != g_children.end();) {
      int st;
      if (waitpid(*it, &st, WNOHANG) == *it) {
        kill(-*it, SIGKILL);
        it = g_children.erase(it);
      } else {
        ++it;
      }
    }
    if (!g_children.empty()) usleep(100000);
  }
  for (pid_t pid : g_children) {
    kill(-pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
  }
  g_children.clear();
}

// ---- the system ----------------------------------------------------------------------------

struct Service {
  std::string name;
  int pid = 0;
  int metrics_port = 0;
};

// Takes the system down and kills our children on every way out of main.
struct Cleanup {
  std::string fsbin, state_dir, tmp_dir;
  bool keep = false;
  bool up = false;
  ~Cleanup() {
    KillChildren();
    if (up) {
      int code = 0;
      RunCommand(fsbin + " down --state-dir " + state_dir, &code);
      if (code != 0) fprintf(stderr, "warning: framescope down exited %d\n", code);
    }
    if (!tmp_dir.empty() && !keep) {
      std::error_code ec;
      std::filesystem::remove_all(tmp_dir, ec);
    } else if (!tmp_dir.empty()) {
      printf("kept %s\n", tmp_dir.c_str());
    }
  }
};

struct Snapshot {
  int64_t t_ns = 0;
  std::vector<PromSample> detection;
  double services_cpu_s = 0;
  double profiler_cpu_s = NAN;
  double machine_busy_s = NAN;
};

Snapshot Take(const std::vector<Service>& services, int profiler_pid) {
  Snapshot s;
  s.t_ns = MonotonicNs();
  for (const auto& svc : services) {
    double c = CpuSeconds(svc.pid);
    if (!std::isnan(c)) s.services_cpu_s += c;
    if (svc.name == "detection" && svc.metrics_port > 0) {
      auto r = HttpGet("127.0.0.1", svc.metrics_port, "/metrics", 3000);
      if (r.ok()) {
        auto parsed = ParsePromText(r->body);
        if (parsed.ok()) s.detection = *parsed;
      }
    }
  }
  if (profiler_pid > 0) s.profiler_cpu_s = CpuSeconds(profiler_pid);
  s.machine_busy_s = MachineBusySeconds();
  return s;
}

// ---- phases --------------------------------------------------------------------------------

struct Phase {
  std::string name;      // "baseline", "framescope fp", ...
  std::string profiler;  // "" = none, "framescope", "perf"
  std::vector<std::string> argv;
  std::string out_file;  // profile / perf.data written
  double record_s = 0;   // how long the profiler was told to record
  std::map<std::string, std::string> env;
  // Results.
  bool measured = false;
  std::string note;
  double fps = NAN, p50_ms = NAN, p99_ms = NAN, services_cpu_pct = NAN, window_s = NAN;
  // Machine CPU not used by the services' main processes nor the profiler (PostgreSQL
  // backends, this benchmark, and anything else running on the box: a quietness check).
  double other_cpu_pct = NAN;
  double prof_cpu_window_pct = NAN;  // profiler CPU inside the window, % of one core
  Finished done;                     // the profiler's wall, total CPU, peak RSS, output
  double post_s = NAN;               // wall after the recording ended (wall - lead - record)
  double symbolized_s = NAN;         // framescope: its own "symbolized in"
  long long samples = -1;
  double output_mb = NAN;
  long long perf_wakeups = -1;  // perf: "Woken up N times to write data"
  bool perf_busy_poll = false;  // perf spun on poll() (a monitored thread exited)
};

double FileMb(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<double>(st.st_size) / 1048576.0 : NAN;
}

// Runs one phase; false only when interrupted.
bool RunPhase(Phase* ph, const std::vector<Service>& services, double lead_s, double phase_s,
              const std::string& log) {
  printf("  phase %-20s %s\n", ph->name.c_str(),
         ph->profiler.empty() ? "" : ("(" + ph->profiler + " recording)").c_str());
  fflush(stdout);
  Spawned prof;
  if (!ph->argv.empty()) {
    prof = Spawn(ph->argv, log, ph->env);
    if (!SleepFor(lead_s)) return false;
    Finished early = Reap(prof, /*block=*/false);
    if (!std::isnan(early.wall_s)) {
      ph->done = early;
      ph->note = "profiler exited before the window (" + ExitString(early.status) +
                 "): " + Tail(early.output, 600);
      printf("    %s\n", ph->note.c_str());
      return true;
    }
  }
  Snapshot a = Take(services, prof.pid);
  if (!SleepFor(phase_s)) return false;
  Snapshot b = Take(services, prof.pid);
  double dt = Seconds(a.t_ns, b.t_ns);
  auto det = MetricDelta(a.detection, b.detection);
  ph->window_s = dt;
  ph->fps = SumSamples(det, "framescope_frames_out_total") / dt;
  ph->p50_ms = HistogramQuantile(det, "framescope_end_to_end_latency_seconds", 0.5) * 1000;
  ph->p99_ms = HistogramQuantile(det, "framescope_end_to_end_latency_seconds", 0.99) * 1000;
  ph->services_cpu_pct = (b.services_cpu_s - a.services_cpu_s) / dt * 100;
  ph->prof_cpu_window_pct = (b.profiler_cpu_s - a.profiler_cpu_s) / dt * 100;
  ph->other_cpu_pct = (b.machine_busy_s - a.machine_busy_s) / dt * 100 - ph->services_cpu_pct -
                      (prof.pid > 0 ? ph->prof_cpu_window_pct : 0);
  ph->measured = a.detection.size() > 0 && b.detection.size() > 0;
  if (!ph->measured) ph->note = "detection /metrics not readable";
  if (prof.pid > 0) {
    // The profiler stops on its own (--duration / `sleep`); wait for it, bounded.
    int64_t deadline = MonotonicNs() + static_cast<int64_t>((ph->record_s + 300) * 1e9);
    while (true) {
      Finished f = Reap(prof, /*block=*/false);
      if (!std::isnan(f.wall_s)) {
        ph->done = f;
        break;
      }
      if (g_stop.load()) return false;
      if (MonotonicNs() > deadline) {
        kill(-prof.pid, SIGKILL);
        ph->done = Reap(prof);
        ph->note = "profiler killed: did not finish within 300 s after recording";
        break;
      }
      usleep(20000);
    }
    ph->post_s = ph->done.wall_s - ph->record_s;
    if (!ph->done.ok) {
      ph->measured = false;
      ph->note =
          "profiler failed (" + ExitString(ph->done.status) + "): " + Tail(ph->done.output, 600);
    }
    const std::string& o = ph->done.output;
    if (ph->profiler == "framescope") {
      auto pos = o.find("recorded ");
      if (pos != std::string::npos) ph->samples = atoll(o.c_str() + pos + 9);
      pos = o.find("symbolized in ");
      if (pos != std::string::npos) ph->symbolized_s = strtod(o.c_str() + pos + 14, nullptr);
      ph->output_mb = FileMb(ph->out_file);
      std::string folded = ph->out_file.substr(0, ph->out_file.size() - 5) + ".folded";
      if (!std::isnan(FileMb(folded))) ph->output_mb += FileMb(folded);
    } else {
      auto pos = o.rfind("MB ");  // [ perf record: Captured and wrote 0.5 MB F (65 samples) ]
      auto paren = o.find('(', pos == std::string::npos ? 0 : pos);
      if (pos != std::string::npos && paren != std::string::npos)
        ph->samples = atoll(o.c_str() + paren + 1);
      ph->output_mb = FileMb(ph->out_file);
      pos = o.find("Woken up ");
      if (pos != std::string::npos) ph->perf_wakeups = atoll(o.c_str() + pos + 9);
      // perf 6.1 `record -p` keeps polling the ring buffers of a thread that exited and
      // spins at up to a core (millions of wake-ups); normal is a few per second.
      if (ph->perf_wakeups > 100 * static_cast<long long>(ph->record_s + 1)) {
        ph->perf_busy_poll = true;
        std::string n = "perf busy-polled (woken up " + std::to_string(ph->perf_wakeups) +
                        " times; happens when a monitored thread exits while perf 6.1 records "
                        "with -p): its CPU is real, but not what sampling costs";
        ph->note = ph->note.empty() ? n : ph->note + "; " + n;
      }
    }
  }
  printf("    detection %.2f FPS, capture->published p99 %.0f ms", ph->fps, ph->p99_ms);
  if (prof.pid > 0) {
    printf(", profiler %.1f%% of a core in the window, %.1f s CPU total, peak RSS %.0f MB",
           ph->prof_cpu_window_pct, ph->done.cpu_s, ph->done.maxrss_mb);
  }
  printf("\n");
  if (!ph->note.empty()) printf("    note: %s\n", ph->note.c_str());
  fflush(stdout);
  return true;
}

Json PhaseJson(const Phase& ph, double baseline_fps) {
  Json o = Json::MakeObject();
  o["name"] = ph.name;
  o["profiler"] = ph.profiler.empty() ? Json(nullptr) : Json(ph.profiler);
  o["measured"] = ph.measured;
  if (!ph.note.empty()) o["note"] = ph.note;
  if (!ph.argv.empty()) {
    std::string cmd;
    for (const auto& a : ph.argv) cmd += (cmd.empty() ? "" : " ") + a;
    o["command"] = cmd;
  }
  o["window_s"] = ph.window_s;
  o["detection_fps"] = ph.fps;
  o["fps_loss_percent"] = (baseline_fps - ph.fps) / baseline_fps * 100;
  o["capture_to_published_p50_ms"] = ph.p50_ms;
  o["capture_to_published_p99_ms"] = ph.p99_ms;
  o["services_cpu_percent_of_one_core"] = ph.services_cpu_pct;
  o["other_cpu_percent_of_one_core"] = ph.other_cpu_pct;
  if (!ph.profiler.empty()) {
    o["profiler_cpu_in_window_percent_of_one_core"] = ph.prof_cpu_window_pct;
    o["profiler_cpu_total_s"] = ph.done.cpu_s;
    o["profiler_peak_rss_mb"] = ph.done.maxrss_mb;
    o["profiler_wall_s"] = ph.done.wall_s;
    o["record_s"] = ph.record_s;
    o["after_recording_s"] = ph.post_s;
    if (!std::isnan(ph.symbolized_s)) o["symbolized_s"] = ph.symbolized_s;
    o["samples"] = static_cast<int64_t>(ph.samples);
    o["output_mb"] = ph.output_mb;
    if (ph.profiler == "perf") {
      o["perf_wakeups"] = static_cast<int64_t>(ph.perf_wakeups);
      o["perf_busy_poll"] = ph.perf_busy_poll;
      o["perf_output_tail"] = Tail(ph.done.output, 400);
    }
  }
  return o;
}

Json FinishedJson(const Finished& f) {
  Json o = Json::MakeObject();
  o["ok"] = f.ok;
  o["wall_s"] = f.wall_s;
  o["cpu_s"] = f.cpu_s;
  o["peak_rss_mb"] = f.maxrss_mb;
  if (!f.ok) o["error"] = Tail(f.output, 400);
  return o;
}

// ---- symbolizer throughput -----------------------------------------------------------------

struct Range {
  uint64_t start, end;
  std::string path;
};

std::vector<Range> ExecutableMappings(int pid) {
  std::vector<Range> out;
  auto maps = ReadFile("/proc/" + std::to_string(pid) + "/maps");
  if (!maps.ok()) return out;
  size_t pos = 0;
  while (pos < maps->size()) {
    size_t eol = maps->find('\n', pos);
    if (eol == std::string::npos) eol = maps->size();
    std::string line = maps->substr(pos, eol - pos);
    pos = eol + 1;
    unsigned long long start = 0, end = 0;
    char perms[8] = {};
    int path_at = 0;
    if (sscanf(line.c_str(), "%llx-%llx %7s %*s %*s %*s %n", &start, &end, perms, &path_at) < 3)
      continue;
    if (perms[2] != 'x' || path_at <= 0 || path_at >= static_cast<int>(line.size())) continue;
    std::string path = line.substr(static_cast<size_t>(path_at));
    if (path.empty() || path[0] != '/') continue;
    out.push_back({start, end, path});
  }
  return out;
}

Json SymbolizerBench(int pid, int count) {
  Json o = Json::MakeObject();
  std::vector<Range> ranges = ExecutableMappings(pid);
  uint64_t total = 0;
  for (const auto& r : ranges) total += r.end - r.start;
  if (ranges.empty() || total < static_cast<uint64_t>(count)) {
    o["error"] = "no executable mappings in /proc/" + std::to_string(pid) + "/maps";
    return o;
  }
  // Evenly spaced through the executable bytes of every module (so big modules, OpenCV, get
  // most), shuffled so lookups do not walk each module in address order.
  std::vector<uint64_t> addrs;
  uint64_t step = total / static_cast<uint64_t>(count);
  size_t ri = 0;
  uint64_t base = 0;  // executable bytes before ranges[ri]
  for (int i = 0; i < count; ++i) {
    uint64_t g = static_cast<uint64_t>(i) * step + step / 2;
    while (ri < ranges.size() && g >= base + (ranges[ri].end - ranges[ri].start)) {
      base += ranges[ri].end - ranges[ri].start;
      ++ri;
    }
    if (ri == ranges.size()) break;
    addrs.push_back(ranges[ri].start + (g - base));
  }
  std::shuffle(addrs.begin(), addrs.end(), std::mt19937_64(42));
  std::set<std::string> modules;
  for (const auto& r : ranges) modules.insert(r.path);
  o["pid"] = pid;
  o["addresses"] = static_cast<int64_t>(addrs.size());
  o["modules"] = static_cast<int64_t>(modules.size());
  o["executable_mb"] = static_cast<double>(total) / 1048576.0;

  auto pass = [&](profile::Symbolizer* s, size_t* resolved, size_t* frames) {
    *resolved = 0;
    *frames = 0;
    int64_t t0 = MonotonicNs();
    for (uint64_t a : addrs) {
      profile::Symbolized r = s->Lookup(a, false);
      *resolved += r.resolved();
      *frames += r.frames.size();
    }
    return Seconds(t0, MonotonicNs());
  };
  profile::Symbolizer::ClearSharedCache();
  int64_t t0 = MonotonicNs();
  auto sym = profile::Symbolizer::ForProcess(pid);
  double open_s = Seconds(t0, MonotonicNs());
  if (!sym.ok()) {
    o["error"] = sym.status().message();
    return o;
  }
  size_t resolved = 0, frames = 0;
  double cold_s = pass(sym->get(), &resolved, &frames);
  size_t r2 = 0, f2 = 0;
  double warm_s = pass(sym->get(), &r2, &f2);
  int64_t t1 = MonotonicNs();
  auto sym2 = profile::Symbolizer::ForProcess(pid);
  double open2_s = Seconds(t1, MonotonicNs());
  double shared_s = NAN;
  if (sym2.ok()) shared_s = pass(sym2->get(), &r2, &f2);
  double n = static_cast<double>(addrs.size());
  o["for_process_cold_s"] = open_s;
  o["for_process_warm_s"] = open2_s;
  o["resolved_fraction"] = static_cast<double>(resolved) / n;
  o["frames_per_address"] = static_cast<double>(frames) / n;
  o["cold_lookups_per_s"] = n / cold_s;
  o["cold_including_for_process_lookups_per_s"] = n / (cold_s + open_s);
  o["warm_lookups_per_s"] = n / warm_s;
  o["warm_shared_cache_lookups_per_s"] = n / shared_s;
  o["cold_s"] = cold_s;
  o["warm_s"] = warm_s;
  o["warm_shared_cache_s"] = shared_s;
  return o;
}

}  // namespace

int ProfilerBenchmarkMain(int argc, char** argv) {
  int cameras = 10, warmup = 20, frequency = 99, max_batch = 4, symbolizer_addresses = 20000;
  double fps = 30, phase_s = 20, lead_s = 3, tail_s = 1, settle_s = 5;
  bool keep = false, skip_symbolizer = false;
  std::string resolution = "640x360", json_out = "build/bench/profiler.json";
  FlagSet flags("profiler_benchmark",
                "Overhead and post-processing cost of `framescope record` against `perf record`\n"
                "on the running reference system (side by side in one run), and the\n"
                "symbolizer's lookup throughput. Writes --json-out atomically.");
  flags.Int("cameras", &cameras, "cameras");
  flags.Double("fps", &fps, "FPS per camera");
  flags.String("resolution", &resolution, "WxH");
  flags.Int("max-batch", &max_batch, "detection max batch");
  flags.Int("warmup", &warmup, "seconds to let the system settle before the first phase");
  flags.Double("phase-seconds", &phase_s, "measurement window of each phase");
  flags.Double("lead-seconds", &lead_s, "profiler start (attach) before each window");
  flags.Double("tail-seconds", &tail_s, "profiler keeps recording this long after each window");
  flags.Double("settle-seconds", &settle_s, "pause after a profiler exits, before the next phase");
  flags.Int("frequency", &frequency, "sampling frequency, Hz, for both profilers");
  flags.Int("symbolizer-addresses", &symbolizer_addresses, "distinct addresses to symbolize");
  flags.Bool("skip-symbolizer", &skip_symbolizer, "do not run the symbolizer throughput part");
  flags.Bool("keep", &keep, "keep the temp dir (state, logs, profiles, perf.data)");
  flags.String("json-out", &json_out, "results JSON (\"\" = none)");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (!(phase_s >= 1 && lead_s >= 0 && tail_s >= 0 && frequency >= 1)) {
    fprintf(stderr, "profiler_benchmark: bad --phase-seconds/--lead-seconds/--frequency\n");
    return 2;
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string bin = SelfExeDir();
  std::string fsbin = bin + "/framescope";
  char tmpl[] = "/tmp/fs-profbench-XXXXXX";
  if (!mkdtemp(tmpl)) {
    perror("profiler_benchmark: mkdtemp");
    return 1;
  }
  Cleanup cleanup;
  cleanup.fsbin = fsbin;
  cleanup.tmp_dir = tmpl;
  cleanup.state_dir = cleanup.tmp_dir + "/state";
  cleanup.keep = keep;
  const std::string& tmp = cleanup.tmp_dir;
  const std::string& state_dir = cleanup.state_dir;

  // What the tools can do here.
  std::string help = RunCommand(fsbin + " record --help", &code);
  if (code != 0) {
    fprintf(stderr, "profiler_benchmark: %s record --help failed:\n%s", fsbin.c_str(),
            help.c_str());
    return 1;
  }
  bool fs_dwarf = help.find("--unwind") != std::string::npos;
  std::string perf_version = RunCommand(std::string(kPerf) + " --version", &code);
  bool have_perf = code == 0;
  while (!perf_version.empty() && perf_version.back() == '\n') perf_version.pop_back();
  if (!have_perf) printf("perf not usable (%s): perf phases not measured\n", perf_version.c_str());

  printf("bringing up %d cameras x %.0f FPS x %s (state in %s) ...\n", cameras, fps,
         resolution.c_str(), state_dir.c_str());
  fflush(stdout);
  cleanup.up = true;
  auto state = bench::BringUpSystem(fsbin, state_dir, cameras, fps, resolution, max_batch);
  if (!state.ok() || g_stop.load()) {
    fprintf(stderr, "%s\n", state.ok() ? "interrupted" : state.status().message().c_str());
    return 1;
  }
  std::vector<Service> services;
  std::string names, pids;
  int det_pid = 0;
  for (const auto& s : state->Get("services").AsArray()) {
    Service svc{s.Get("name").AsString(), static_cast<int>(s.Get("pid").AsInt()),
                static_cast<int>(s.Get("metrics_port").AsInt())};
    if (svc.pid <= 0) continue;
    services.push_back(svc);
    names += (names.empty() ? "" : ",") + svc.name;
    pids += (pids.empty() ? "" : ",") + std::to_string(svc.pid);
    if (svc.name == "detection") det_pid = svc.pid;
  }
  if (det_pid <= 0) {
    fprintf(stderr, "profiler_benchmark: no detection service in %s/state.json\n",
            state_dir.c_str());
    return 1;
  }
  printf("services: %s (pids %s)\n", names.c_str(), pids.c_str());
  printf("warming up %d s, then 6 phases of %.0f s (profilers start %.0f s before each window)\n",
         warmup, phase_s, lead_s);
  fflush(stdout);
  if (!SleepFor(warmup)) return 130;

  // Phases. Both profilers record lead + window + tail seconds.
  double record_s = lead_s + phase_s + tail_s;
  char rec[32];
  snprintf(rec, sizeof(rec), "%g", record_s);
  std::string freq = std::to_string(frequency);
  // perf record copies every sampled binary into its build-id cache, $HOME/.debug, by default
  // (that is part of its post-processing time, so it stays on); a private HOME keeps the copies
  // in the temp dir instead of the user's cache.
  std::string perf_home = tmp + "/perf-home";
  std::filesystem::create_directories(perf_home);
  std::map<std::string, std::string> perf_env{{"HOME", perf_home}};
  std::vector<Phase> phases(6);
  phases[0].name = "baseline 1";
  phases[1].name = "framescope fp";
  phases[1].profiler = "framescope";
  phases[1].out_file = tmp + "/fs-fp.prof";
  phases[1].argv = {fsbin,         "record",  "--service",  names,
                    "--state-dir", state_dir, "--duration", rec,
                    "--frequency", freq,      "-o",         phases[1].out_file};
  phases[2].name = "framescope dwarf";
  phases[2].profiler = "framescope";
  phases[2].out_file = tmp + "/fs-dwarf.prof";
  phases[2].argv = phases[1].argv;
  phases[2].argv.back() = phases[2].out_file;
  phases[2].argv.insert(phases[2].argv.end() - 2, {"--unwind", "dwarf"});
  phases[3].name = "perf fp (-g)";
  phases[3].profiler = "perf";
  phases[3].out_file = tmp + "/perf-fp.data";
  phases[3].argv = {kPerf, "record",           "-F", freq,         "-g", "-p", pids,
                    "-o",  phases[3].out_file, "--", "/bin/sleep", rec};
  phases[4].name = "perf dwarf";
  phases[4].profiler = "perf";
  phases[4].out_file = tmp + "/perf-dwarf.data";
  phases[4].argv = {kPerf,   "record",     "-F", freq, "--call-graph",
                    "dwarf", "-p",         pids, "-o", phases[4].out_file,
                    "--",    "/bin/sleep", rec};
  phases[5].name = "baseline 2";
  for (auto& ph : phases) {
    if (!ph.profiler.empty()) {
      ph.record_s = record_s;
      if (ph.profiler == "perf") ph.env = perf_env;
    }
  }
  for (size_t i = 0; i < phases.size(); ++i) {
    Phase& ph = phases[i];
    if (ph.name == "framescope dwarf" && !fs_dwarf) {
      ph.note = "not measured: record has no --unwind dwarf";
      printf("  phase %-20s %s\n", ph.name.c_str(), ph.note.c_str());
      ph.argv.clear();
      continue;
    }
    if (ph.profiler == "perf" && !have_perf) {
      ph.note = "not measured: perf not usable";
      ph.argv.clear();
      continue;
    }
    if (!RunPhase(&ph, services, lead_s, phase_s, tmp + "/phase" + std::to_string(i) + ".log"))
      return 130;
    if (!ph.profiler.empty() && !SleepFor(settle_s)) return 130;
  }

  // ---- post-processing, with the system still running (as record's own was) -------------
  printf("post-processing (system still running) ...\n");
  fflush(stdout);
  Json post = Json::MakeObject();
  struct PostPair {
    const char* name;
    const Phase* fs;
    const Phase* perf;
  };
  std::vector<PostPair> pairs = {{"fp", &phases[1], &phases[3]}, {"dwarf", &phases[2], &phases[4]}};
  std::map<std::string, double> totals;  // for the printout
  for (const auto& pp : pairs) {
    Json o = Json::MakeObject();
    bool fs_ok = pp.fs->done.ok, perf_ok = pp.perf->done.ok;
    double fs_total = NAN, perf_total = NAN, fs_rss = NAN, perf_rss = NAN, fs_cpu = NAN,
           perf_cpu = NAN;
    if (fs_ok) {
      Spawned s = Spawn({fsbin, "flamegraph", pp.fs->out_file, "-o",
                         pp.fs->out_file.substr(0, pp.fs->out_file.size() - 5) + ".html"},
                        tmp + "/flamegraph-" + pp.name + ".log");
      Finished f = Reap(s);
      Json fo = Json::MakeObject();
      fo["record_after_recording_s"] = pp.fs->post_s;
      fo["record_symbolized_s"] = pp.fs->symbolized_s;
      fo["record_peak_rss_mb"] = pp.fs->done.maxrss_mb;
      fo["record_cpu_total_s"] = pp.fs->done.cpu_s;
      fo["flamegraph"] = FinishedJson(f);
      if (f.ok) {
        fs_total = pp.fs->post_s + f.wall_s;
        fs_rss = std::max(pp.fs->done.maxrss_mb, f.maxrss_mb);
        fs_cpu = pp.fs->done.cpu_s + f.cpu_s;
      }
      fo["total_s"] = fs_total;
      fo["total_cpu_s"] = fs_cpu;
      fo["peak_rss_mb"] = fs_rss;
      o["framescope"] = fo;
    } else {
      o["framescope"] = pp.fs->note.empty() ? "not measured: no profile" : pp.fs->note;
    }
    if (perf_ok) {
      Spawned s = Spawn({kPerf, "report", "--stdio", "-i", pp.perf->out_file}, "", perf_env);
      Finished rep = Reap(s);
      Spawned s2 =
          Spawn({"/bin/sh", "-c",
                 std::string(kPerf) + " script -i " + pp.perf->out_file + " 2>/dev/null | wc -l"},
                tmp + "/perf-script-" + pp.name + ".log", perf_env);
      Finished scr = Reap(s2);
      Json po = Json::MakeObject();
      po["record_after_recording_s"] = pp.perf->post_s;
      po["record_peak_rss_mb"] = pp.perf->done.maxrss_mb;
      po["record_cpu_total_s"] = pp.perf->done.cpu_s;
      po["report"] = FinishedJson(rep);
      po["script_wc"] = FinishedJson(scr);
      if (scr.ok) po["script_lines"] = atof(scr.output.c_str());
      if (rep.ok) {
        perf_total = pp.perf->post_s + rep.wall_s;
        perf_rss = std::max(pp.perf->done.maxrss_mb, rep.maxrss_mb);
        perf_cpu = pp.perf->done.cpu_s + rep.cpu_s;
      }
      po["total_s"] = perf_total;
      po["total_cpu_s"] = perf_cpu;
      po["peak_rss_mb"] = perf_rss;
      o["perf"] = po;
    } else {
      o["perf"] = pp.perf->note.empty() ? "not measured: no perf.data" : pp.perf->note;
    }
    o["time_ratio_framescope_vs_perf"] = fs_total / perf_total;
    o["peak_rss_ratio_framescope_vs_perf"] = fs_rss / perf_rss;
    o["cpu_ratio_framescope_vs_perf"] = fs_cpu / perf_cpu;
    post[pp.name] = o;
    if (g_stop.load()) return 130;
  }

  // ---- symbolizer throughput (detection paused so it does not compete) --------------------
  Json symb = Json::MakeObject();
  if (!skip_symbolizer) {
    printf("symbolizer throughput on detection (pid %d, paused meanwhile) ...\n", det_pid);
    fflush(stdout);
    kill(det_pid, SIGSTOP);
    symb = SymbolizerBench(det_pid, symbolizer_addresses);
    kill(det_pid, SIGCONT);
  }

  // ---- results ----------------------------------------------------------------------------
  double b1 = phases[0].fps, b2 = phases[5].fps, base = (b1 + b2) / 2;
  double p99_base = (phases[0].p99_ms + phases[5].p99_ms) / 2;
  auto loss = [&](const Phase& p) { return (base - p.fps) / base * 100; };
  Json result = Json::MakeObject();
  char date[32];
  time_t now = time(nullptr);
  strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  result["date"] = date;
  result["cameras"] = cameras;
  result["fps"] = fps;
  result["resolution"] = resolution;
  result["phase_s"] = phase_s;
  result["lead_s"] = lead_s;
  result["tail_s"] = tail_s;
  result["frequency_hz"] = frequency;
  result["services"] = names;
  result["perf_version"] = perf_version;
  result["framescope_has_unwind_dwarf"] = fs_dwarf;
  result["cpus"] = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  Json jph = Json::MakeArray();
  for (const auto& ph : phases) jph.Push(PhaseJson(ph, base));
  result["phases"] = jph;
  Json jb = Json::MakeObject();
  jb["first_fps"] = b1;
  jb["last_fps"] = b2;
  jb["mean_fps"] = base;
  jb["drift_percent"] = (b2 - b1) / base * 100;
  jb["noise_percent"] = std::fabs(b2 - b1) / base * 100;
  jb["first_p99_ms"] = phases[0].p99_ms;
  jb["last_p99_ms"] = phases[5].p99_ms;
  result["baseline"] = jb;
  Json ratios = Json::MakeObject();
  ratios["fp_fps_loss_framescope_vs_perf"] = loss(phases[1]) / loss(phases[3]);
  ratios["dwarf_fps_loss_framescope_vs_perf"] =
      phases[2].measured ? loss(phases[2]) / loss(phases[4]) : NAN;
  ratios["fp_profiler_cpu_framescope_vs_perf"] =
      phases[1].prof_cpu_window_pct / phases[3].prof_cpu_window_pct;
  ratios["dwarf_profiler_cpu_framescope_vs_perf"] =
      phases[2].measured ? phases[2].prof_cpu_window_pct / phases[4].prof_cpu_window_pct : NAN;
  result["ratios"] = ratios;
  result["postprocessing"] = post;
  result["symbolizer"] = symb;

  printf("\n== profiler overhead: %d cameras x %.0f FPS x %s, %.0f s phases, %d Hz, %d CPUs ==\n",
         cameras, fps, resolution.c_str(), phase_s, frequency,
         static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  printf("%-18s %8s %8s %7s %10s %10s %8s %8s %7s %10s\n", "phase", "det FPS", "loss %", "p99 ms",
         "prof CPU%", "prof CPU s", "peak MB", "samples", "out MB", "other CPU%");
  for (const auto& ph : phases) {
    if (ph.window_s != ph.window_s) {  // not run
      printf("%-18s %s\n", ph.name.c_str(), ph.note.c_str());
      continue;
    }
    bool p = !ph.profiler.empty();
    printf("%-18s %8s %8s %7s %10s %10s %8s %8s %7s %10s%s%s\n", ph.name.c_str(),
           Fmt("%.2f", ph.fps).c_str(), Fmt("%+.1f", loss(ph)).c_str(),
           Fmt("%.0f", ph.p99_ms).c_str(), p ? Fmt("%.1f", ph.prof_cpu_window_pct).c_str() : "",
           p ? Fmt("%.2f", ph.done.cpu_s).c_str() : "",
           p ? Fmt("%.0f", ph.done.maxrss_mb).c_str() : "",
           p && ph.samples >= 0 ? Fmt("%.0f", static_cast<double>(ph.samples)).c_str() : "",
           p ? Fmt("%.2f", ph.output_mb).c_str() : "", Fmt("%.0f", ph.other_cpu_pct).c_str(),
           ph.measured ? "" : "  (failed)",
           ph.perf_busy_poll ? "  (perf busy-polled, see note)" : "");
  }
  printf(
      "baseline %.2f / %.2f FPS (mean %.2f, drift %+.1f%%), "
      "p99 %.0f / %.0f ms (mean %.0f)\n",
      b1, b2, base, (b2 - b1) / base * 100, phases[0].p99_ms, phases[5].p99_ms, p99_base);
  printf(
      "run-to-run noise |baseline 2 - baseline 1| = %.1f%% of FPS: a loss below that is not "
      "distinguishable from zero in this run\n",
      std::fabs(b2 - b1) / base * 100);
  // On a quiet box "other" is PostgreSQL's backends plus this benchmark: 5-20 % of a core.
  constexpr double kNotQuietPct = 30;
  double worst_other = 0;
  std::string worst_phase;
  for (const auto& ph : phases) {
    if (ph.other_cpu_pct > worst_other) {
      worst_other = ph.other_cpu_pct;
      worst_phase = ph.name;
    }
  }
  result["box_quiet"] = worst_other <= kNotQuietPct;
  result["max_other_cpu_percent_of_one_core"] = worst_other;
  if (worst_other > kNotQuietPct) {
    printf(
        "WARNING: the box was not quiet: other CPU reached %.0f%% of a core (%s); on %d CPUs "
        "that load, not the profilers, dominates the FPS differences\n",
        worst_other, worst_phase.c_str(), static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  }
  printf(
      "prof CPU%% = profiler process CPU inside the window, %% of one core; prof CPU s = its "
      "total CPU incl. start-up and post-processing; peak MB = its max RSS;\n"
      "other CPU%% = machine CPU outside the services' main processes and the profiler "
      "(PostgreSQL backends, this benchmark, anything else on the box)\n");
  printf("FPS loss ratio framescope/perf: fp %s, dwarf %s;  profiler CPU ratio: fp %s, dwarf %s\n",
         Fmt("%.2f", ratios.Get("fp_fps_loss_framescope_vs_perf").AsDouble()).c_str(),
         phases[2].measured
             ? Fmt("%.2f", ratios.Get("dwarf_fps_loss_framescope_vs_perf").AsDouble()).c_str()
             : "not measured",
         Fmt("%.2f", ratios.Get("fp_profiler_cpu_framescope_vs_perf").AsDouble()).c_str(),
         phases[2].measured
             ? Fmt("%.2f", ratios.Get("dwarf_profiler_cpu_framescope_vs_perf").AsDouble()).c_str()
             : "not measured");

  printf("\n== post-processing of a %.0f s recording of every service (system running) ==\n",
         record_s);
  for (const auto& pp : pairs) {
    const Json& o = post.Get(pp.name);
    const Json& f = o.Get("framescope");
    const Json& p = o.Get("perf");
    if (f.is_object()) {
      printf(
          "%-5s framescope: record after recording %s s (symbolized in %s s) + flamegraph %s s "
          "= %s s; peak RSS %s MB (record), %s MB (flamegraph)\n",
          pp.name, Fmt("%.2f", f.Get("record_after_recording_s").AsDouble()).c_str(),
          Fmt("%.2f", f.Get("record_symbolized_s").AsDouble()).c_str(),
          Fmt("%.2f", f.Get("flamegraph").Get("wall_s").AsDouble()).c_str(),
          Fmt("%.2f", f.Get("total_s").AsDouble()).c_str(),
          Fmt("%.0f", f.Get("record_peak_rss_mb").AsDouble()).c_str(),
          Fmt("%.0f", f.Get("flamegraph").Get("peak_rss_mb").AsDouble()).c_str());
    } else {
      printf("%-5s framescope: %s\n", pp.name, f.AsString().c_str());
    }
    if (p.is_object()) {
      printf(
          "%-5s perf:       record after recording %s s + report --stdio %s s (%s s CPU) = %s "
          "s; peak RSS %s MB (record), %s MB (report); script|wc %s s, %s MB\n",
          pp.name, Fmt("%.2f", p.Get("record_after_recording_s").AsDouble()).c_str(),
          Fmt("%.2f", p.Get("report").Get("wall_s").AsDouble()).c_str(),
          Fmt("%.2f", p.Get("report").Get("cpu_s").AsDouble()).c_str(),
          Fmt("%.2f", p.Get("total_s").AsDouble()).c_str(),
          Fmt("%.0f", p.Get("record_peak_rss_mb").AsDouble()).c_str(),
          Fmt("%.0f", p.Get("report").Get("peak_rss_mb").AsDouble()).c_str(),
          Fmt("%.2f", p.Get("script_wc").Get("wall_s").AsDouble()).c_str(),
          Fmt("%.0f", p.Get("script_wc").Get("peak_rss_mb").AsDouble()).c_str());
      if (pp.perf->perf_busy_poll)
        printf("      (perf record's CPU includes its busy-polling; compare wall times)\n");
      if (!p.Get("report").Get("ok").AsBool())
        printf("      perf report failed: %s\n", p.Get("report").Get("error").AsString().c_str());
    } else {
      printf("%-5s perf:       %s\n", pp.name, p.AsString().c_str());
    }
    printf(
        "%-5s ratio framescope/perf: wall time %s, CPU %s (%s s / %s s: record's whole run + "
        "flamegraph / report), peak memory %s\n",
        pp.name, Fmt("%.2f", o.Get("time_ratio_framescope_vs_perf").AsDouble()).c_str(),
        Fmt("%.2f", o.Get("cpu_ratio_framescope_vs_perf").AsDouble()).c_str(),
        Fmt("%.2f", f.Get("total_cpu_s").AsDouble()).c_str(),
        Fmt("%.2f", p.Get("total_cpu_s").AsDouble()).c_str(),
        Fmt("%.2f", o.Get("peak_rss_ratio_framescope_vs_perf").AsDouble()).c_str());
  }

  if (!skip_symbolizer) {
    printf(
        "\n== symbolizer: %s distinct addresses over %s modules (%s MB of code) of detection "
        "==\n",
        Fmt("%.0f", symb.Get("addresses").AsDouble()).c_str(),
        Fmt("%.0f", symb.Get("modules").AsDouble()).c_str(),
        Fmt("%.1f", symb.Get("executable_mb").AsDouble()).c_str());
    if (symb.Get("error").is_string()) {
      printf("failed: %s\n", symb.Get("error").AsString().c_str());
    } else {
      printf(
          "ForProcess %s s cold, %s s warm; %.0f%% resolved to a function, %.2f frames/address\n",
          Fmt("%.3f", symb.Get("for_process_cold_s").AsDouble()).c_str(),
          Fmt("%.3f", symb.Get("for_process_warm_s").AsDouble()).c_str(),
          symb.Get("resolved_fraction").AsDouble() * 100,
          symb.Get("frames_per_address").AsDouble());
      printf(
          "lookups/s: cold %s (%s incl. ForProcess), warm %s, warm shared cache (new "
          "Symbolizer) %s\n",
          Fmt("%.0f", symb.Get("cold_lookups_per_s").AsDouble()).c_str(),
          Fmt("%.0f", symb.Get("cold_including_for_process_lookups_per_s").AsDouble()).c_str(),
          Fmt("%.0f", symb.Get("warm_lookups_per_s").AsDouble()).c_str(),
          Fmt("%.0f", symb.Get("warm_shared_cache_lookups_per_s").AsDouble()).c_str());
    }
  }

  if (!json_out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(json_out).parent_path(), ec);
    if (auto st = WriteFileAtomic(json_out, result.Dump(2) + "\n"); !st.ok()) {
      fprintf(stderr, "%s\n", st.message().c_str());
      return 1;
    }
    printf("\nraw JSON: %s\n", json_out.c_str());
  }
  return 0;
}

}  // namespace fs

int main(int argc, char** argv) { return fs::ProfilerBenchmarkMain(argc, argv); }
