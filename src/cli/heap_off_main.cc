// framescope heap-off: the rollback of heap profiling (the planning document's "stop profiling,
// remove the hooks, restore normal operation"). The supervisor restarts every service that runs
// with libframescope_heap.so preloaded, one at a time, without it, while this command measures
// the system's frame rate before, during and after, then checks that no process of the system
// maps the library any more.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/clients/prom_text.h"
#include "src/memory/heap/heap_counters.h"
#include "src/system/state.h"
#include "src/system/supervisor.h"

namespace fs {
namespace {

constexpr int kFailed = 1;
constexpr int kBadUsage = 2;
constexpr int kInterrupted = 130;
constexpr int64_t kSecondNs = 1'000'000'000;
constexpr int64_t kTickNs = kSecondNs / 5;   // one FPS reading and one look at state.json
constexpr int64_t kMinWindowNs = kSecondNs;  // the shortest window a dip is measured over
constexpr const char* kFpsSource = "detection's framescope_frames_out_total, all cameras";

constexpr const char* kHelp =
    "Rolls heap profiling back: every service that `up --heap-profile` (or the config key\n"
    "heap_profile) started with libframescope_heap.so preloaded is restarted without it,\n"
    "one at a time and each healthy before the next, so the rest of the system keeps\n"
    "serving. The system's recorded settings say heap_profile = [] afterwards, so a later\n"
    "`up` without --heap-profile is accepted and a crashed service comes back without the\n"
    "library. Reports each service's restart time, the total, and the system's FPS (frames\n"
    "detection passes on per second) over --window seconds before, the lowest over 1 s\n"
    "windows during, and over --window seconds after; then checks /proc/PID/maps of every\n"
    "service for the library. Progress goes to stderr, the report to stdout.\n"
    "Ctrl-C before the restarts begin changes nothing; once they have begun, the supervisor\n"
    "finishes them in the background (`framescope status` shows them).\n"
    "Exit codes: 0 rolled back, or nothing to roll back (not running, or no service has\n"
    "the library); 1 a restart failed, a process still maps the library, or the\n"
    "supervisor did not finish within --timeout; 2 bad usage; 130 interrupted.";

struct Options {
  std::string state_dir = kDefaultStateDir;
  bool json = false;
  int window_s = 3;
  int timeout_s = 900;  // the planning document's budget for a rollback: 15 minutes
};

// The system's frame rate from detection's framescope_frames_out_total: the end of the frame
// pipeline, so a restart of capture or detection shows as a dip, and one of aggregation or api
// does not (they carry detections, not frames). The count is kept cumulative across a detection
// restart, whose new process counts from 0; what the old one did after its last reading is lost,
// so a dip across a detection restart reads, if anything, deeper than it was.
class FrameRate {
 public:
  explicit FrameRate(std::string port_file) : port_file_(std::move(port_file)) {}

  // One reading; none when detection does not answer (it is restarting).
  void Sample() {
    const Json port_file = ReadPortFile();
    const int64_t pid = port_file.Get("pid").AsInt(0);
    if (pid <= 0) return;
    auto resp = HttpGet("127.0.0.1", static_cast<int>(port_file.Get("metrics_port").AsInt()),
                        "/metrics", 500);
    // The supervisor removes the port file before it starts the next process, which writes its
    // own once it listens: the same pid after the scrape means that process answered it.
    if (!resp.ok() || resp->status != 200 || ReadPortFile().Get("pid").AsInt(0) != pid) return;
    auto samples = ParsePromText(resp->body);
    if (!samples.ok()) return;
    const double raw = SumSamples(*samples, "framescope_frames_out_total");
    if (pid != last_pid_) offset_ += last_raw_;
    last_pid_ = pid;
    last_raw_ = raw;
    points_.push_back({MonotonicNs(), offset_ + raw});
  }

  // Frames per second between the first and the last reading in [from, to].
  std::optional<double> Average(int64_t from_ns, int64_t to_ns) const {
    auto first = std::find_if(points_.begin(), points_.end(),
                              [from_ns](const Point& p) { return p.t_ns >= from_ns; });
    auto last = std::find_if(points_.rbegin(), points_.rend(),
                             [to_ns](const Point& p) { return p.t_ns <= to_ns; });
    if (first == points_.end() || last == points_.rend() || last->t_ns <= first->t_ns) {
      return std::nullopt;
    }
    return Rate(*first, *last);
  }

  // The lowest rate over any window of at least kMinWindowNs between readings that overlaps
  // [from, to]; a window is longer where detection did not answer.
  std::optional<double> Minimum(int64_t from_ns, int64_t to_ns) const {
    std::optional<double> lowest;
    for (size_t i = 0, j = 0; i < points_.size(); ++i) {
      j = std::max(j, i + 1);
      while (j < points_.size() && points_[j].t_ns - points_[i].t_ns < kMinWindowNs) ++j;
      if (j == points_.size()) break;
      if (points_[j].t_ns < from_ns || points_[i].t_ns > to_ns) continue;
      double r = Rate(points_[i], points_[j]);
      lowest = lowest ? std::min(*lowest, r) : r;
    }
    return lowest;
  }

 private:
  struct Point {
    int64_t t_ns;
    double frames;
  };
  static double Rate(const Point& a, const Point& b) {
    return (b.frames - a.frames) * kSecondNs / static_cast<double>(b.t_ns - a.t_ns);
  }
  // {"pid", "metrics_port", ...} as the service wrote it; null while it is restarting.
  Json ReadPortFile() const {
    auto text = ReadFile(port_file_);
    if (!text.ok()) return Json();
    auto j = Json::Parse(*text);
    return j.ok() ? *j : Json();
  }

  std::string port_file_;
  std::vector<Point> points_;
  double offset_ = 0;
  double last_raw_ = 0;
  int64_t last_pid_ = 0;
};

// Reads the frame rate every tick until `until_ns` or a stop request; true if stopped.
bool SampleUntil(FrameRate* fps, int64_t until_ns, const std::atomic<bool>& stop) {
  while (MonotonicNs() < until_ns) {
    if (stop.load()) return true;
    fps->Sample();
    usleep(static_cast<useconds_t>(kTickNs / 1000));
  }
  return stop.load();
}

// The services whose current process runs with the library (the supervisor records it as
// "heap_dir").
std::vector<std::string> HeapProfiledServices(const Json& state) {
  std::vector<std::string> names;
  for (const auto& s : state.Get("services").AsArray()) {
    if (s.Has("heap_dir")) names.push_back(s.Get("name").AsString());
  }
  return names;
}

// "service (pid N)" for every service process that still maps the library.
std::vector<std::string> StillMapped(const Json& state) {
  std::vector<std::string> found;
  for (const auto& s : state.Get("services").AsArray()) {
    int64_t pid = s.Get("pid").AsInt(-1);
    if (pid <= 0) continue;
    auto maps = ReadFile("/proc/" + std::to_string(pid) + "/maps");
    if (maps.ok() && maps->find(memory::kHeapLibrary) != std::string::npos) {
      found.push_back(s.Get("name").AsString() + " (pid " + std::to_string(pid) + ")");
    }
  }
  return found;
}

struct Outcome {
  Json reload;        // state.json's "reload" once the supervisor finished (or as last seen)
  std::string error;  // what went wrong; "" when the supervisor finished without error
  bool interrupted = false;
};

// "api restarted in 0.52 s (pid 123 -> 456)" from one of "reload"'s services.
std::string RestartLine(const Json& s) {
  char line[256];
  snprintf(line, sizeof(line), "%s restarted in %.2f s (pid %lld -> %lld)",
           s.Get("name").AsString().c_str(), s.Get("restart_s").AsDouble(),
           static_cast<long long>(s.Get("old_pid").AsInt()),
           static_cast<long long>(s.Get("pid").AsInt()));
  return line;
}

// Prints each restart as the supervisor reports it.
void PrintProgress(const Json& reload, size_t total, size_t* printed, std::string* current) {
  const auto& done = reload.Get("services").AsArray();
  for (; *printed < done.size(); ++*printed) {
    fprintf(stderr, "  [%zu/%zu] %s\n", *printed + 1, total, RestartLine(done[*printed]).c_str());
  }
  std::string now = reload.Get("current").AsString();
  if (!now.empty() && now != *current) {
    fprintf(stderr, "  restarting %s ...\n", now.c_str());
  }
  *current = now;
}

// Follows state.json's "reload" until reload `id` is done or failed, sampling the frame rate.
Outcome WaitForReload(const StateDir& dir, int64_t id, size_t total, int64_t deadline_ns,
                      FrameRate* fps, const std::atomic<bool>& stop) {
  Outcome out;
  size_t printed = 0;
  std::string current;
  for (;;) {
    fps->Sample();
    auto state = ReadState(dir);
    if (state.ok() && state->Get("reload").Get("id").AsInt() >= id) {
      out.reload = state->Get("reload");
      PrintProgress(out.reload, total, &printed, &current);
      std::string phase = out.reload.Get("phase").AsString();
      if (phase == "done") return out;
      if (phase == "failed") {
        out.error = out.reload.Get("error").AsString();
        return out;
      }
    }
    if (!state.ok() || !SupervisorRunning(*state)) {
      out.error =
          "the supervisor stopped before it finished (see " + dir.LogFile("supervisor") + ")";
      return out;
    }
    if (stop.load()) {
      out.interrupted = true;
      return out;
    }
    if (MonotonicNs() > deadline_ns) {
      out.error = "not finished within --timeout; the supervisor goes on in the background";
      return out;
    }
    usleep(static_cast<useconds_t>(kTickNs / 1000));
  }
}

Json FpsJson(const std::optional<double>& v) { return v ? Json(std::round(*v * 10) / 10) : Json(); }

std::string FpsText(const Json& v) {
  if (!v.is_number()) return "not measured";
  char b[32];
  snprintf(b, sizeof(b), "%.1f", v.AsDouble());
  return b;
}

void PrintReport(const Json& r) {
  const Json& fps = r.Get("fps");
  if (r.Get("ok").AsBool()) {
    printf("rolled back in %.2f s: no service maps %s; heap_profile is now empty\n",
           r.Get("total_s").AsDouble(), memory::kHeapLibrary);
  } else {
    printf("rollback %s after %.2f s: %s\n",
           r.Get("interrupted").AsBool() ? "interrupted" : "FAILED", r.Get("total_s").AsDouble(),
           r.Get("error").AsString().c_str());
  }
  for (const auto& s : r.Get("services").AsArray()) printf("  %s\n", RestartLine(s).c_str());
  printf(
      "FPS (frames through detection, all cameras): before %s, lowest during %s (1 s windows), "
      "after %s\n",
      FpsText(fps.Get("before")).c_str(), FpsText(fps.Get("min_during")).c_str(),
      FpsText(fps.Get("after")).c_str());
  for (const auto& m : r.Get("still_mapped").AsArray()) {
    printf("  still maps %s: %s\n", memory::kHeapLibrary, m.AsString().c_str());
  }
}

int ParseOptions(int argc, char** argv, Options* o) {
  FlagSet flags("framescope heap-off", kHelp);
  flags.String("state-dir", &o->state_dir, "the state dir given to `up`");
  flags.Bool("json", &o->json, "print the report as JSON on standard output");
  flags.Int("window", &o->window_s,
            "seconds of FPS measured before and after the restarts, 0..300");
  flags.Int("timeout", &o->timeout_s, "seconds to wait for the restarts, 1..86400");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  const char* bad = o->window_s < 0 || o->window_s > 300 ? "--window must be 0..300 seconds"
                    : o->timeout_s < 1 || o->timeout_s > 86400
                        ? "--timeout must be 1..86400 seconds"
                        : nullptr;
  if (bad) {
    fprintf(stderr, "framescope heap-off: %s\n", bad);
    return kBadUsage;
  }
  return -1;  // go on
}

// Exit 0 with a message: a system that is not running, or runs without the library, has no
// hooks to remove.
int NothingToDo(const Options& o, const std::string& why) {
  if (o.json) {
    Json j = Json::MakeObject();
    j["ok"] = true;
    j["rolled_back"] = Json::MakeArray();
    j["message"] = why;
    printf("%s\n", j.Dump(2).c_str());
  } else {
    printf("framescope heap-off: nothing to roll back: %s\n", why.c_str());
  }
  return 0;
}

// When each phase began, for the FPS windows and the total.
struct Times {
  int window_s;
  int64_t before_ns;   // the before window starts
  int64_t request_ns;  // the supervisor is asked; the restarts begin
  int64_t done_ns;     // the supervisor reported the end (or the wait ended)
};

// The report (--json prints it as is): restarts, total, FPS, what still maps the library.
// Settles out->error for an interrupted wait and for a library still mapped.
Json BuildReport(const StateDir& dir, const std::vector<std::string>& targets, const FrameRate& fps,
                 const Times& t, Outcome* out) {
  Json r = Json::MakeObject();
  r["state_dir"] = dir.root;
  r["rolled_back"] = Json::MakeArray();
  for (const auto& n : targets) r["rolled_back"].Push(Json(n));
  r["services"] =
      out->reload.Get("services").is_array() ? out->reload.Get("services") : Json::MakeArray();
  r["total_s"] = static_cast<double>(t.done_ns - t.request_ns) / kSecondNs;
  r["fps"] = Json::MakeObject();
  r["fps"]["source"] = kFpsSource;
  r["fps"]["window_s"] = t.window_s;
  r["fps"]["before"] = FpsJson(fps.Average(t.before_ns, t.request_ns));
  r["fps"]["min_during"] = FpsJson(fps.Minimum(t.request_ns, t.done_ns));
  r["fps"]["after"] = FpsJson(fps.Average(t.done_ns, MonotonicNs()));
  r["still_mapped"] = Json::MakeArray();
  auto state = ReadState(dir);
  for (auto& m : StillMapped(state.ok() ? *state : Json())) {
    r["still_mapped"].Push(Json(m));
  }
  if (out->interrupted && out->error.empty() && out->reload.Get("phase").AsString() != "done") {
    out->error = "the supervisor goes on restarting the rest in the background";
  }
  if (out->error.empty() && !r.Get("still_mapped").AsArray().empty()) {
    out->error = std::string("a process still maps ") + memory::kHeapLibrary;
  }
  r["interrupted"] = out->interrupted;
  r["error"] = out->error;
  r["ok"] = out->error.empty() && !out->interrupted;
  return r;
}

// Runs the rollback on a running system: before window, request, restarts, after window.
int RollBack(const Options& o, const StateDir& dir, const std::vector<std::string>& targets) {
  std::atomic<bool> stop{false};
  CatchStopSignals(&stop);
  FrameRate fps(dir.PortFile("detection"));
  std::string names;
  for (const auto& n : targets) names += (names.empty() ? "" : ", ") + n;
  if (targets.empty()) {
    fprintf(stderr, "heap-off: no process runs with %s, but heap_profile is set: clearing it\n",
            memory::kHeapLibrary);
  } else {
    fprintf(stderr, "heap-off: %zu service(s) run with %s: %s\n", targets.size(),
            memory::kHeapLibrary, names.c_str());
  }
  if (o.window_s > 0) fprintf(stderr, "measuring FPS for %d s before ...\n", o.window_s);
  const int64_t before_ns = MonotonicNs();
  if (SampleUntil(&fps, before_ns + o.window_s * kSecondNs, stop)) {
    fprintf(stderr, "interrupted: nothing changed\n");
    return kInterrupted;
  }
  fps.Sample();
  const int64_t request_ns = MonotonicNs();
  auto id = Supervisor::RequestHeapProfile(dir, {});
  if (!id.ok()) {
    fprintf(stderr, "framescope heap-off: %s\n", id.status().message().c_str());
    return kFailed;
  }
  fprintf(stderr, "restarting them one at a time without the library ...\n");
  Outcome out = WaitForReload(dir, *id, targets.size(),
                              request_ns + int64_t{o.timeout_s} * kSecondNs, &fps, stop);
  const int64_t done_ns = MonotonicNs();
  if (out.error.empty() && !out.interrupted && o.window_s > 0) {
    fprintf(stderr, "measuring FPS for %d s after ...\n", o.window_s);
    out.interrupted = SampleUntil(&fps, done_ns + o.window_s * kSecondNs, stop);
  }
  fps.Sample();
  Json r = BuildReport(dir, targets, fps, {o.window_s, before_ns, request_ns, done_ns}, &out);
  if (o.json) {
    printf("%s\n", r.Dump(2).c_str());
  } else {
    PrintReport(r);
  }
  return out.interrupted ? kInterrupted : out.error.empty() ? 0 : kFailed;
}

}  // namespace

int HeapOffMain(int argc, char** argv) {
  Options o;
  if (int code = ParseOptions(argc, argv, &o); code >= 0) return code;
  auto dir = ResolveStateDir(o.state_dir);
  if (!dir.ok()) {
    fprintf(stderr, "framescope heap-off: --state-dir: %s\n", dir.status().message().c_str());
    return kBadUsage;
  }
  auto state = ReadState(*dir);
  if (!state.ok() && PathExists(dir->StateFile())) {
    fprintf(stderr, "framescope heap-off: %s\n", state.status().message().c_str());
    return kFailed;
  }
  if (!state.ok() || !SupervisorRunning(*state)) {
    return NothingToDo(o, "framescope is not running (state dir " + dir->root + ")");
  }
  const std::string phase = state->Get("phase").AsString();
  const std::string reload = state->Get("reload").Get("phase").AsString();
  if (phase != "running" || reload == "running") {
    fprintf(stderr,
            "framescope heap-off: the system is %s; try again when `framescope status` "
            "shows it running\n",
            phase != "running" ? phase.c_str() : "changing heap_profile");
    return kFailed;
  }
  std::vector<std::string> targets = HeapProfiledServices(*state);
  if (targets.empty() && state->Get("config").Get("heap_profile").AsArray().empty()) {
    return NothingToDo(o, std::string("no service runs with ") + memory::kHeapLibrary);
  }
  return RollBack(o, *dir, targets);
}

}  // namespace fs
