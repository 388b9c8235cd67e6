#include "src/session/profile_run.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/output.h"
#include "src/base/procfs.h"
#include "src/collect/preflight.h"
#include "src/gpu/gpu_report.h"
#include "src/gpu/nvml_loader.h"
#include "src/memory/heap/heap_profile.h"
#include "src/memory/leak_rate.h"
#include "src/memory/memory_series.h"
#include "src/profile/folded.h"
#include "src/profile/pprof.h"
#include "src/report/batch_chart.h"
#include "src/report/flamegraph.h"
#include "src/report/gpu_chart.h"
#include "src/report/heap_report.h"
#include "src/report/model_report.h"
#include "src/session/baseline_doc.h"
#include "src/session/batch_run.h"
#include "src/session/governor.h"
#include "src/session/io_run.h"
#include "src/session/io_targets.h"
#include "src/session/run_record.h"
#include "src/system/state.h"

namespace fs::profile {
namespace {

struct Target {
  std::string name;
  pid_t pid = -1;
  double started_at = 0;
  std::vector<pid_t> pids;               // The service's process tree at start.
  std::map<pid_t, double> cpu_start_s;   // utime+stime per pid when sampling started.
  std::map<pid_t, double> cpu_end_s;     // ... and when it stopped (or last seen alive).
  std::vector<ServiceRestart> restarts;  // `pid` is the latest (followed or not) process.
  std::optional<MemoryLog> memory_log;   // OUT/memory/<name>.log; closed after a failed write.
  std::vector<MemorySample> memory;      // This run's readings, every pid it had.
  // A service `up --heap-profile` started with the library: its sampled allocation sites, read
  // with each memory reading (a restart starts a new image, whose sites start over).
  std::shared_ptr<memory::HeapSiteTracker> heap_sites;
  // utime+stime per pid at the last window boundary (--repeat), to take each window's CPU.
  std::map<pid_t, double> window_cpu_s;
};

// Relative to the output folder.
std::string MemoryLogFile(const Target& t) { return "memory/" + t.name + ".log"; }

// What the stages share: the run's options, its progress sink and the result being built.
struct Session {
  const ProfileRunOptions& options;
  const ProgressSink& progress;
  ProfileRunResult& result;
  StateDir dir;
  Json state;
  std::vector<Target> targets;
  LiveWindow live_batching;  // detection's /metrics at the recording's start and end
  IoWindows io;              // PostgreSQL, Redis and the edges over the recording window
  std::optional<io::MetricsEndpoint> capture;  // capture's /metrics, for FPS per window
  double capture_frames = -1;                  // Its frames counter at the last boundary.

  bool Stopped() const { return options.stop != nullptr && options.stop->load(); }
  void Say(const std::string& line) const {
    if (progress.message) progress.message(line);
  }
  bool Fail(ProfileOutcome outcome, const std::string& error) {
    result.outcome = outcome;
    result.errors.push_back(error);
    return false;
  }
};

}  // namespace

std::string InvalidRecordingLength(double duration_s, int repeat) {
  constexpr double kMaxDurationS = 7 * 24 * 3600;
  if (!(duration_s > 0 && duration_s <= kMaxDurationS)) {
    return "--duration must be > 0 seconds and at most 604800 (7 days)";
  }
  if (repeat < 1 || repeat > 1000) return "--repeat must be 1..1000";
  if (duration_s / repeat < 0.2) {
    return "--duration / --repeat must leave windows of at least 0.2 seconds";
  }
  return "";
}

std::string BaselinePath(const ProfileRunOptions& options) {
  return options.baseline.empty() ? options.out_dir + "/performance-baseline.md" : options.baseline;
}

Status CheckOutputs(const std::string& out_dir, const std::string& baseline) {
  for (const char* sub : {"", "/cpu", "/flamegraphs", "/memory", "/models", "/gpu", "/io"}) {
    RETURN_IF_ERROR(MakeDirs(out_dir + sub).Annotate("output folder"));
    RETURN_IF_ERROR(CheckFolderWritable(out_dir + sub));
  }
  // The baseline's folder is not created: a mistyped path should fail, not grow a tree. Its
  // other sections are kept, so it must be readable as well as replaceable.
  RETURN_IF_ERROR(fs::CheckOutputs(
      {out_dir + "/summary.json", out_dir + "/index.html", out_dir + "/" + regression::kRunFile,
       out_dir + "/cpu/system_profile.prof", out_dir + "/memory/analysis.json", baseline}));
  if (KindOfOutput(baseline) == OutputKind::kFile && PathExists(baseline)) {
    RETURN_IF_ERROR(ReadFile(baseline).status().Annotate("baseline (its other sections are kept)"));
  }
  return Status::Ok();
}

namespace {

bool LoadTargets(Session& s) {
  auto dir = ResolveStateDir(s.options.state_dir);
  if (!dir.ok()) return s.Fail(ProfileOutcome::kNoSystem, dir.status().message());
  s.dir = *dir;
  auto state = ReadState(s.dir);
  if (!state.ok() || !SupervisorRunning(*state)) {
    return s.Fail(ProfileOutcome::kNoSystem, "no running system in " + s.dir.root +
                                                 " (start it with `framescope up " +
                                                 "--state-dir " + s.dir.root + "`)");
  }
  s.state = std::move(*state);
  s.result.config = s.state.Get("config");
  for (const Json& j : s.state.Get("services").AsArray()) {
    Target t;
    t.name = j.Get("name").AsString();
    t.pid = static_cast<pid_t>(j.Get("pid").AsInt(-1));
    t.started_at = j.Get("started_at").AsDouble(0);
    if (j.Get("heap_dir").is_string()) {
      t.heap_sites = std::make_shared<memory::HeapSiteTracker>(j.Get("heap_dir").AsString());
    }
    if (t.pid <= 0 || j.Get("state").AsString() != "running") {
      return s.Fail(ProfileOutcome::kPreflightFailed,
                    "preflight: service " + t.name + " is not running (state: " +
                        j.Get("state").AsString() + "); see `framescope status`");
    }
    s.targets.push_back(std::move(t));
  }
  if (s.targets.empty()) {
    return s.Fail(ProfileOutcome::kNoSystem, "the system in " + s.dir.root + " has no services");
  }
  return true;
}

// Polls loadgen's log until every camera's latest FPS report meets the target, or `wait_s`
// passes: right after `up` the first report covers a window the stream started inside, so it
// reads low until the next one.
std::map<std::string, CameraFps> WaitForFps(Session& s, const Target& loadgen, int cameras,
                                            double want_fps) {
  std::map<std::string, CameraFps> seen;
  const int64_t deadline = MonotonicNs() + static_cast<int64_t>(s.options.fps_wait_s * 1e9);
  bool waited = false;
  for (;;) {
    auto log = ReadFile(s.dir.LogFile("loadgen"));
    if (log.ok()) seen = ParseLoadgenFps(*log, loadgen.started_at);
    bool all_ok = static_cast<int>(seen.size()) >= cameras;
    for (const auto& [cam, f] : seen) all_ok &= f.fps >= want_fps;
    if (all_ok || MonotonicNs() > deadline || s.Stopped()) return seen;
    if (!waited) {
      s.Say("preflight: waiting up to " + Fixed(s.options.fps_wait_s, 0) +
            " s for every camera's FPS report to reach " + Fixed(want_fps, 1) + "...");
      waited = true;
    }
    usleep(500000);
  }
}

bool CheckLoadgen(Session& s, const Target& loadgen) {
  const Json& config = s.state.Get("config");
  const int cameras = static_cast<int>(config.Get("cameras").AsInt(0));
  const double fps = config.Get("fps").AsDouble(0);
  const double tolerance = s.options.fps_tolerance;
  const double want = fps * (1 - tolerance);
  std::map<std::string, CameraFps> seen = WaitForFps(s, loadgen, cameras, want);
  if (s.Stopped()) return s.Fail(ProfileOutcome::kInterrupted, "interrupted during preflight");
  const std::string log = s.dir.LogFile("loadgen");
  if (static_cast<int>(seen.size()) < cameras) {
    return s.Fail(ProfileOutcome::kPreflightFailed,
                  "preflight: loadgen: only " + std::to_string(seen.size()) + " of " +
                      std::to_string(cameras) + " cameras reported their FPS in " + log +
                      " (is it still starting? see `framescope logs loadgen`)");
  }
  std::string short_cams;
  double min_fps = 1e9;
  for (const auto& [cam, f] : seen) {
    min_fps = std::min(min_fps, f.fps);
    if (f.fps < want) short_cams += (short_cams.empty() ? "" : ", ") + cam + " " + Fixed(f.fps, 1);
  }
  if (!short_cams.empty()) {
    return s.Fail(ProfileOutcome::kPreflightFailed,
                  "preflight: loadgen: cameras below " + Fixed(want, 1) + " FPS (configured " +
                      Fixed(fps, 1) + "): " + short_cams +
                      ". The host cannot generate the configured load; lower --cameras/--fps "
                      "in `up`, or pass --fps-tolerance");
  }
  s.result.report.preflight.push_back(
      "loadgen: " + std::to_string(seen.size()) + "/" + std::to_string(cameras) +
      " cameras delivering >= " + Fixed(min_fps, 1) + " FPS (configured " + Fixed(fps, 1) +
      ", tolerance " + Fixed(tolerance * 100, 0) + "%; from " + log + ")");
  return true;
}

bool Preflight(Session& s) {
  std::vector<std::string>& lines = s.result.report.preflight;
  auto perf = CheckPerfEvents(s.targets.front().pid);
  if (!perf.ok()) {
    return s.Fail(ProfileOutcome::kPreflightFailed, "preflight: " + perf.status().message());
  }
  lines.push_back(*perf);
  lines.push_back(gpu::ProbeLine());
  const Target* loadgen = nullptr;
  for (const Target& t : s.targets) {
    if (t.name == "loadgen") loadgen = &t;
  }
  if (loadgen == nullptr) {
    lines.push_back("loadgen: not part of this system (real cameras): FPS check skipped");
  } else if (!CheckLoadgen(s, *loadgen)) {
    return false;
  }
  for (const std::string& line : lines) s.Say("preflight: " + line);
  return true;
}

// Our own CPU between the first and last progress tick: sampling only, without attaching and
// loading symbols before, or symbolizing after. Measured in every mode, governor or not.
class SelfCpuTicks {
 public:
  void Tick(double elapsed_s) {
    double cpu = ProcessCpuSeconds();
    if (cpu < 0) return;
    if (first_s_ < 0) {
      first_s_ = elapsed_s;
      first_cpu_ = cpu;
    }
    last_s_ = elapsed_s;
    last_cpu_ = cpu;
  }
  // % of one core; -1 when under 2 s apart (too short to tell).
  double Pct() const {
    if (last_s_ - first_s_ < 2) return -1;
    return (last_cpu_ - first_cpu_) / (last_s_ - first_s_) * 100;
  }

 private:
  double first_s_ = -1, first_cpu_ = 0, last_s_ = -1, last_cpu_ = 0;
};

// /proc CPU of every target's processes, to cross-check the sampled CPU over the same window.
void SnapshotCpu(std::vector<Target>& targets, bool at_start) {
  for (Target& t : targets) {
    for (pid_t p : t.pids) {
      ProcStat st;
      if (ReadProcStat(p, &st)) (at_start ? t.cpu_start_s : t.cpu_end_s)[p] = st.cpu_s;
    }
  }
}

RecordOptions MakeRecordOptions(Session& s, Governor& governor, SelfCpuTicks& ticks) {
  const ProfileRunOptions& o = s.options;
  RecordOptions opts;
  opts.frequency_hz = o.frequency_hz;
  opts.duration_s = o.duration_s;
  opts.unwind = o.unwind;
  opts.stack_bytes = o.stack_bytes;
  opts.stop = o.stop;
  opts.allow_vanished = true;  // A PostgreSQL worker in the tree may exit before we attach.
  for (Target& t : s.targets) {
    t.pids = ProcessTree(t.pid);
    for (pid_t p : t.pids) {
      opts.pids.push_back(p);
      opts.services[p] = t.name;
    }
  }
  opts.after_attach = [&s] { SnapshotCpu(s.targets, true); };
  opts.after_stop = [&s] { SnapshotCpu(s.targets, false); };
  // The rate in force, for the progress line (the recorder calls adjust_frequency first).
  auto hz = std::make_shared<int>(o.frequency_hz);
  opts.adjust_frequency = [&governor, hz](double elapsed, int current) {
    *hz = governor.Adjust(elapsed, current);
    return *hz;
  };
  opts.progress = [&s, &ticks, hz](double elapsed, size_t samples) {
    ticks.Tick(elapsed);
    if (s.progress.recording) {
      s.progress.recording({s.targets.size(), elapsed, s.options.duration_s, samples, *hz});
    }
  };
  return opts;
}

// pprof has one `period` for the whole profile; each sample carries its own (the rate in force
// when it was taken), so CPU time is right. After rate changes the header states the
// time-weighted rate and a comment lists the changes, instead of the first rate alone.
void DescribeRate(const CpuReport& report, Profile* profile) {
  if (report.governor.changes.empty() || report.governor.effective_hz <= 0) return;
  profile->period = std::llround(1e9 / report.governor.effective_hz);
  std::string c = "sampling rate: " + RateText(report) + ":";
  for (const RateChange& ch : report.governor.changes) {
    c += " at " + Fixed(ch.at_s, 0) + " s " + std::to_string(ch.from_hz) + " -> " +
         std::to_string(ch.to_hz) + " Hz;";
  }
  profile->comments.push_back(c);
}

std::string PerThreadNote(const RecordResult& rec, const GovernorReport& g) {
  if (rec.system_wide) return "";
  if (g.readings == 0) {
    return "Per-thread fallback (system-wide events were refused): the recorder did not "
           "consult the governor, so the rate stayed at " +
           std::to_string(rec.final_frequency_hz) +
           " Hz; framescope's own CPU is still measured and shown above.";
  }
  return "Per-thread fallback (system-wide events were refused): the recorder consulted the "
         "governor " +
         std::to_string(g.readings) +
         " times and applied its rate to the events it opened; threads created after the start "
         "keep the rate they inherited (a kernel limit), so after a rate change the effective "
         "rate above holds for the first threads only (the recorder's warnings say so).";
}

void FillRunReport(Session& s, const RecordResult& rec, const Governor& governor,
                   const SelfCpuTicks& ticks) {
  CpuReport& r = s.result.report;
  const ProfileRunOptions& o = s.options;
  r.duration_s = rec.elapsed_s;
  r.requested_s = o.duration_s;
  r.interrupted = s.Stopped();
  r.frequency_hz = o.frequency_hz;
  r.final_frequency_hz = rec.final_frequency_hz > 0 ? rec.final_frequency_hz : o.frequency_hz;
  r.unwind = o.unwind == Unwind::kDwarf ? "dwarf" : "fp";
  r.kernel_frames = rec.kernel_frames;
  r.lost = rec.lost;
  r.malformed = rec.malformed;
  r.discarded_bytes = rec.discarded_bytes;
  r.samples_without_frames = rec.samples_without_frames;
  r.host_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  r.governor = governor.Report(rec.elapsed_s);
  r.governor.note = PerThreadNote(rec, r.governor);
  r.warnings = rec.warnings;
  r.profiler_sampling_cpu_pct = ticks.Pct();
}

// utime+stime of the target's processes over the window; -1 when none was read at both ends.
double ProcCpuSeconds(const Target& t) {
  double total = 0;
  bool measured = false;
  for (const auto& [p, start] : t.cpu_start_s) {
    auto end = t.cpu_end_s.find(p);
    if (end == t.cpu_end_s.end()) continue;
    total += end->second - start;
    measured = true;
  }
  return measured ? total : -1;
}

// A service with no samples is idle or a coverage gap: one whose /proc CPU should have given
// >= 10 samples (P(0 | Poisson 10) < 1e-4) is a gap. So is an exit not followed to a restarted
// process; one followed is not. Returns true for a coverage failure.
bool CheckCoverage(const Target& t, bool exited, double hz, ServiceCpu* s) {
  for (const ServiceRestart& r : s->restarts) {
    if (r.followed) continue;
    s->problem = RestartText(t.name, r);
    return true;
  }
  if (exited) {  // Between the last look at it and the end: not seen by WatchRestarts.
    s->problem = "pid " + std::to_string(t.pid) +
                 " exited while recording (samples up to the exit are kept)";
    return true;
  }
  if (!s->restarts.empty()) {
    s->note = "restarted during recording (followed: samples from " +
              std::to_string(s->restarts.size() + 1) + " pids)";
  }
  if (s->samples > 0) return false;
  if (s->proc_cpu_s < 0) {
    s->problem = "no samples and the process is gone";
    return true;
  }
  const double expected = s->proc_cpu_s * hz;
  if (expected >= 10) {
    s->problem = "no samples although /proc shows " + Fixed(s->proc_cpu_s, 2) + " s CPU (~" +
                 Fixed(expected, 0) + " samples expected): coverage gap";
    return true;
  }
  s->note = "idle: no samples; /proc shows " + Fixed(s->proc_cpu_s, 2) + " s CPU (~" +
            Fixed(expected, 1) + " samples expected)";
  return false;
}

// Writes one service's pprof, folded stacks and flame graph; a failure is noted and the
// other files are still written.
void WriteServiceFiles(Session& s, const Profile& p, ServiceCpu* svc) {
  const std::string& out = s.options.out_dir;
  svc->prof_file = "cpu/" + svc->name + "_profile.prof";
  svc->folded_file = "cpu/" + svc->name + "_profile.folded";
  svc->flame_file = "flamegraphs/" + svc->name + "_flame.html";
  FlamegraphOptions fo;
  fo.title = svc->name + " — CPU (cpu-clock, " + std::to_string(svc->samples) + " samples)";
  for (const Status& st : {WritePprofFile(out + "/" + svc->prof_file, p),
                           WriteOutput(out + "/" + svc->folded_file, ToFolded(p)),
                           WriteFlamegraphFile(out + "/" + svc->flame_file, p, fo)}) {
    if (!st.ok()) s.result.report.write_errors.push_back(st.message());
  }
}

// How many of a service's samples came from each restarted and restarting pid (label "pid").
void CountRestartSamples(const Profile& service, std::vector<ServiceRestart>& restarts) {
  for (ServiceRestart& r : restarts) r.old_samples = r.new_samples = 0;
  for (const Sample& sample : service.samples) {
    auto pid = sample.num_labels.find("pid");
    if (pid == sample.num_labels.end() || sample.values.empty()) continue;
    for (ServiceRestart& r : restarts) {
      if (pid->second == r.old_pid) r.old_samples += sample.values[0];
      if (r.new_pid > 0 && pid->second == r.new_pid) r.new_samples += sample.values[0];
    }
  }
}

void SummarizeServices(Session& s, const RecordResult& rec) {
  CpuReport& r = s.result.report;
  std::map<std::string, Profile> parts = SplitByService(rec.profile);
  std::set<pid_t> exited(rec.exited.begin(), rec.exited.end());
  const double hz = r.governor.effective_hz > 0 ? r.governor.effective_hz : r.final_frequency_hz;
  for (const Target& t : s.targets) {
    auto part = parts.find(t.name);
    ServiceCpu svc;
    if (part != parts.end()) svc = SummarizeCpu(t.name, part->second, s.options.top);
    svc.name = t.name;
    svc.pids = t.pids;
    svc.proc_cpu_s = ProcCpuSeconds(t);
    if (auto u = rec.unwind_by_service.find(t.name); u != rec.unwind_by_service.end()) {
      svc.unwind = {
          true, u->second.full, u->second.fp_fallback, u->second.truncated,
          s.options.unwind == Unwind::kDwarf ? static_cast<int64_t>(u->second.to_root) : -1};
    }
    svc.restarts = t.restarts;
    if (part != parts.end()) CountRestartSamples(part->second, svc.restarts);
    if (CheckCoverage(t, exited.count(t.pid) != 0, hz, &svc)) {
      ++s.result.coverage_failures;
      r.partial_reasons.push_back(
          svc.problem.rfind(t.name + ": ", 0) == 0 ? svc.problem : t.name + ": " + svc.problem);
    }
    if (svc.samples > 0) WriteServiceFiles(s, part->second, &svc);
    r.services.push_back(std::move(svc));
  }
  if (r.interrupted) r.partial_reasons.insert(r.partial_reasons.begin(), "stopped early (Ctrl-C)");
  r.partial = !r.partial_reasons.empty();
}

// The heap profiles and flame graphs of a heap-profiled service in OUT/memory, and their JSON;
// a failed write is reported and the JSON says so.
Json HeapOutputs(const Session& s, const Target& t, const LeakRateOptions& opts) {
  auto heap = WriteHeapOutputs(*t.heap_sites, s.options.out_dir, "memory", t.name, opts);
  if (heap.ok()) return *heap;
  s.result.report.write_errors.push_back(heap.status().message());
  Json j = Json::MakeObject();
  j["heap_sampled"] = false;
  j["heap_reason"] = heap.status().message();
  return j;
}

// Each service's series (its latest process: a restart starts a new one) and leak rate.
MemoryReport AnalyseMemory(const Session& s) {
  MemoryReport m;
  m.interval_s = s.options.memory_interval_s;
  for (const Target& t : s.targets) {
    ServiceMemory svc;
    svc.name = t.name;
    svc.log_file = MemoryLogFile(t);
    if (!t.memory.empty() && !t.memory.back().pids.empty()) {
      svc.samples = SamplesNamed(t.memory, t.name, t.memory.back().pids.front());
    }
    svc.earlier_samples = t.memory.size() - svc.samples.size();
    LeakRateOptions opts;
    opts.limit_mb_per_h = m.limit_mb_per_h;
    svc.rate = EstimateLeakRate(RssSeries(svc.samples), opts);
    if (t.heap_sites) svc.heap = HeapOutputs(s, t, opts);
    m.services.push_back(std::move(svc));
  }
  return m;
}

// summary.json: the CPU report with each service's memory analysis as its "memory" object.
Json SummaryJson(const CpuReport& r, const MemoryReport& memory) {
  Json summary = CpuReportToJson(r);
  Json services = Json::MakeArray();
  for (Json svc : summary.Get("services").AsArray()) {
    for (const ServiceMemory& m : memory.services) {
      if (m.name == svc.Get("name").AsString()) svc["memory"] = ServiceMemoryJson(m);
    }
    services.Push(std::move(svc));
  }
  summary["services"] = std::move(services);
  Json about = Json::MakeObject();  // The per-service numbers are in each service's "memory".
  about["limit_mb_per_h"] = memory.limit_mb_per_h;
  about["interval_s"] = memory.interval_s;
  about["analysis"] = "memory/analysis.json";
  summary["memory"] = std::move(about);
  return summary;
}

// The model's files (when it was profiled) and its summary.json object.
Json WriteModelFiles(Session& s, std::vector<Status>* written) {
  const ModelRun& m = s.result.model;
  Json j = Json::MakeObject();
  if (m.name.empty()) return Json();
  const std::string& out = s.options.out_dir;
  j["profile"] = ModelProfilePath(m.name);
  written->push_back(WriteOutput(out + "/" + ModelProfilePath(m.name), m.profile.Dump(2) + "\n"));
  if (!m.ok()) {
    j["error"] = m.profile.Get("error");
    return j;
  }
  j["trace"] = ModelTracePath(m.name);
  written->push_back(WriteOutput(out + "/" + ModelTracePath(m.name), m.trace.Dump() + "\n"));
  for (const char* key :
       {"total_inference_time_ms", "forward_wall_ms", "batch_size", "checklist"}) {
    j[key] = m.profile.Get(key);
  }
  return j;
}

constexpr const char* kGpuReport = "gpu/nsight_report.json";

// OUT/gpu/nsight_report.json (when sampled) and its summary.json object.
Json WriteGpuFiles(Session& s, std::vector<Status>* written) {
  if (!s.result.gpu) return Json();
  Json report = gpu::GpuReportJson(*s.result.gpu);
  written->push_back(WriteOutput(s.options.out_dir + "/" + kGpuReport, report.Dump(2) + "\n"));
  Json j = Json::MakeObject();
  j["report"] = kGpuReport;
  for (const char* key : {"gpu_utilization_avg", "memory_bandwidth_efficiency", "verdicts"}) {
    j[key] = report.Get(key);
  }
  if (!report.Get("measured").AsBool()) j["reason"] = report.Get("unavailable_reason");
  return j;
}

constexpr const char* kBatchReport = "models/batch_analysis.json";

// OUT/models/batch_analysis.json and .html (when the sweep ran) and summary.json's object.
Json WriteBatchFiles(Session& s, std::vector<Status>* written) {
  Json j = Json::MakeObject();
  if (!s.result.batch_error.empty()) {
    j["error"] = s.result.batch_error;
    return j;
  }
  if (!s.result.batch) return Json();
  const model::BatchAnalysis& a = *s.result.batch;
  const std::string& out = s.options.out_dir;
  written->push_back(
      WriteOutput(out + "/" + kBatchReport, model::BatchAnalysisToJson(a).Dump(2) + "\n"));
  written->push_back(WriteOutput(out + "/models/batch_analysis.html", RenderBatchPage(a)));
  j["report"] = kBatchReport;
  j["verdict"] = a.choice.verdict;
  j["reason"] = a.choice.reason;
  return j;
}

std::vector<BaselineSection> BaselineSections(const Session& s) {
  const ModelRun& m = s.result.model;
  std::vector<BaselineSection> sections = {
      {kChecklistSectionBegin, kChecklistSectionEnd,
       RenderBaselineChecklistSection(s.result.checklist, s.result.findings, RunMetrics(s.result)),
       /*first=*/true},
      {kCpuSectionBegin, kCpuSectionEnd, RenderBaselineCpuSection(s.result.report)},
      {kMemorySectionBegin, kMemorySectionEnd, RenderBaselineMemorySection(s.result.memory)}};
  if (!m.name.empty()) {
    sections.push_back(
        {kModelSectionBegin, kModelSectionEnd,
         RenderBaselineModelSection(m.profile, ModelProfilePath(m.name), ModelTracePath(m.name))});
  }
  if (s.result.batch) {
    sections.push_back(
        {kBatchSectionBegin, kBatchSectionEnd, RenderBaselineBatchSection(*s.result.batch)});
  }
  if (s.result.gpu) {
    sections.push_back(
        {kGpuSectionBegin, kGpuSectionEnd, RenderBaselineGpuSection(*s.result.gpu, kGpuReport)});
  }
  if (s.result.io) {
    for (BaselineSection& io : IoBaselineSections(*s.result.io)) sections.push_back(std::move(io));
  }
  return sections;
}

std::string MoreHtml(const Session& s) {
  const ModelRun& m = s.result.model;
  std::string h = RenderMemoryHtml(s.result.memory);
  if (!m.name.empty()) {
    h += RenderModelHtml(m.profile, ModelProfilePath(m.name), ModelTracePath(m.name));
  }
  if (s.result.batch) h += RenderBatchHtml(*s.result.batch, kBatchReport);
  if (!s.result.batch_error.empty()) {
    h += "<h2 id=\"batch\">Batch analysis</h2>\n<p>Not measured: " +
         HtmlEscape(s.result.batch_error) + "</p>\n";
  }
  if (s.result.gpu) h += RenderGpuHtml(*s.result.gpu, kGpuReport);
  if (s.result.io) h += IoHtml(*s.result.io);
  return h;
}

// summary.json, index.html, the baseline's sections and each analyser's files: each is tried
// whatever happened to the others, and every failure is reported.
void WriteReports(Session& s, const RecordResult& rec) {
  CpuReport& r = s.result.report;
  const std::string& out = s.options.out_dir;
  if (Status st = WritePprofFile(out + "/cpu/system_profile.prof", rec.profile); !st.ok()) {
    r.write_errors.push_back(st.message());
  }
  const MemoryReport& memory = s.result.memory;
  std::vector<Status> written;
  Json summary = SummaryJson(r, memory);
  if (Json model = WriteModelFiles(s, &written); !model.is_null()) summary["model"] = model;
  if (Json batch = WriteBatchFiles(s, &written); !batch.is_null()) summary["batch"] = batch;
  if (Json gpu = WriteGpuFiles(s, &written); !gpu.is_null()) summary["gpu"] = gpu;
  if (s.result.io) summary["io"] = WriteIoFiles(out, *s.result.io, &written);
  s.result.summary_json = summary.Dump(2) + "\n";
  // The checklist sees what was measured; a file that fails to write below is not in it.
  s.result.checklist = BuildChecklist(s.result, s.options);
  s.result.findings = LargestFindings(s.result);
  const std::string checklist =
      RenderChecklistHtml(s.result.checklist, s.result.findings, RunMetrics(s.result));
  written.push_back(
      WriteOutput(out + "/memory/analysis.json", MemoryReportToJson(memory).Dump(2) + "\n"));
  written.push_back(WriteOutput(out + "/summary.json", s.result.summary_json));
  written.push_back(WriteOutput(out + "/index.html", RenderIndexHtml(r, MoreHtml(s), checklist)));
  written.push_back(WriteBaseline(s.result.baseline_path, BaselineSections(s)));
  for (const Status& st : written) {
    if (!st.ok()) r.write_errors.push_back(st.message());
  }
  for (const std::string& e : r.write_errors) s.result.errors.push_back(e);
}

// The batch sweep of the detection model (detection paused) and the live view of its batching
// over the recording window.
void ProfileBatch(Session& s) {
  ModelFlags f;
  f.state_dir = s.dir.root;
  auto source = ResolveModelSource(f);
  if (!source.ok()) {
    s.result.batch_error = source.status().message();
    return;
  }
  auto net = model::ModelNet::Load(source->spec);
  if (!net.ok()) {
    s.result.batch_error = net.status().message();
    return;
  }
  BatchRunOptions o;
  o.sweep = s.options.sweep;
  o.stop = s.options.stop;
  o.on_batch = [&s](const model::BatchResult& r) {
    s.Say("batch " + std::to_string(r.batch) + ": " + Fixed(r.throughput_ips, 2) +
          " images/s, p99 " + Fixed(r.p99_ms, 1) + " ms" + (r.stable ? "" : " (unstable)"));
  };
  o.message = [&s](const std::string& line) { s.Say("batch: " + line); };
  auto a = RunBatchAnalysis(&*net, *source, o, &s.live_batching);
  if (a.ok()) {
    s.result.batch = std::move(*a);
  } else {
    s.result.batch_error = a.status().message();
  }
}

// The detection model's per-layer profile, detection paused meanwhile (after the recording, so
// the CPU profile saw the system as it runs).
ModelRun ProfileModel(Session& s) {
  ModelFlags f;
  f.state_dir = s.dir.root;
  auto source = ResolveModelSource(f);
  const std::string name = source.ok() ? ModelReportName(source->spec.model_path) : "model";
  if (!source.ok()) return ModelRun::Error(name, source.status().message());
  if (s.Stopped()) return ModelRun::Error(name, "not measured: the run was interrupted first");
  ModelRunOptions o;
  if (s.options.model_runs > 0) o.layers.min_runs = o.layers.max_runs = s.options.model_runs;
  o.layers.max_seconds = s.options.model_max_seconds;
  o.layers.stop = s.options.stop;
  return RunModelProfile(*source, o, [&s](const std::string& line) { s.Say("model: " + line); });
}

bool AliveWithCpu(pid_t pid, double* cpu_s) {
  ProcStat st;
  if (!ReadProcStat(pid, &st) || st.state == 'Z' || st.state == 'X') return false;
  *cpu_s = st.cpu_s;
  return true;
}

// Records target `t`'s restarted process tree (root `pid`) under its service from now on.
void FollowRestart(Session& s, Recording* rec, Target& t, pid_t pid, double at_s,
                   ServiceRestart* restart) {
  restart->new_pid = pid;
  restart->restarted_at_s = at_s;
  t.pid = pid;
  const std::vector<pid_t> tree = ProcessTree(pid);
  Status followed =
      rec != nullptr ? rec->Follow(tree, t.name) : Err("seen after the recording ended");
  restart->followed = followed.ok();
  restart->error = followed.ok() ? "" : followed.message();
  if (followed.ok()) {
    for (pid_t p : tree) {
      if (std::find(t.pids.begin(), t.pids.end(), p) != t.pids.end()) continue;
      t.pids.push_back(p);
      ProcStat st;
      if (ReadProcStat(p, &st)) t.cpu_start_s[p] = st.cpu_s;  // /proc CPU from now on.
    }
  }
  s.Say(RestartText(t.name, *restart));
}

// A service the supervisor restarts gets a new pid in state.json: that process is followed
// (rec: null once the recording stopped, when a restart is only noted). A service's exit is
// noted when seen; its last CPU reading stands for its /proc CPU at the end.
void WatchRestarts(Session& s, Recording* rec) {
  const double at_s = rec != nullptr ? rec->elapsed_s() : s.result.report.duration_s;
  std::map<std::string, pid_t> pids;  // service -> pid in state.json (<= 0: restarting)
  if (auto state = ReadState(s.dir); state.ok()) {
    for (const Json& j : state->Get("services").AsArray()) {
      pids[j.Get("name").AsString()] = static_cast<pid_t>(j.Get("pid").AsInt(-1));
    }
  }
  for (Target& t : s.targets) {
    const bool open = !t.restarts.empty() && t.restarts.back().new_pid <= 0;
    double cpu_s = 0;
    const bool alive = AliveWithCpu(t.pid, &cpu_s);
    if (alive) t.cpu_end_s[t.pid] = cpu_s;
    auto now = pids.find(t.name);
    const bool restarted = now != pids.end() && now->second > 0 && now->second != t.pid;
    if (!open && (!alive || restarted)) {
      ServiceRestart r;
      r.old_pid = t.pid;
      r.exited_at_s = at_s;
      t.restarts.push_back(r);
    }
    if (restarted) FollowRestart(s, rec, t, now->second, at_s, &t.restarts.back());
  }
}

// Opens (appends to: a rerun continues it) every service's memory log before anything is
// recorded; one that cannot be opened (a symlink, not a regular file) is a bad output path.
bool OpenMemoryLogs(Session& s) {
  for (Target& t : s.targets) {
    auto log = MemoryLog::Open(s.options.out_dir + "/" + MemoryLogFile(t));
    if (!log.ok()) return s.Fail(ProfileOutcome::kBadOutputPath, log.status().message());
    t.memory_log = std::move(*log);
  }
  return true;
}

// One reading of every service's process tree, under its current pid (the restart watch moves
// it to a restarted process), appended to its log. A service between exit and restart has no
// reading. A failed append is reported once and that log closed; the readings are still kept.
void SampleMemory(Session& s) {
  for (Target& t : s.targets) {
    auto sample = ReadProcessTreeMemory(t.pid, t.name);
    if (!sample.ok()) continue;
    if (t.heap_sites) t.heap_sites->Read(t.pid, sample->time_s);
    t.memory.push_back(*sample);
    if (!t.memory_log) continue;
    if (Status st = t.memory_log->Append(*sample); !st.ok()) {
      s.result.report.write_errors.push_back(st.message());
      t.memory_log.reset();
    }
  }
}

// capture's frames received so far (every camera), or -1 when its /metrics did not answer.
double CaptureFrames(const Session& s) {
  if (!s.capture) return -1;
  const std::vector<io::ServiceScrape> scraped = io::ScrapeServices({*s.capture}, 1000);
  if (scraped.empty() || !scraped[0].ok) return -1;
  double frames = -1;
  for (const PromSample& p : scraped[0].samples) {
    if (p.name == "framescope_frames_in_total") frames = std::max(frames, 0.0) + p.value;
  }
  return frames;
}

// One window boundary (--repeat): each service's /proc CPU and capture's frame counter since
// the previous boundary; the first boundary only sets the starting values.
void TakeBoundary(Session& s, double elapsed_s) {
  RunWindows& w = s.result.windows;
  const bool first = w.bounds_s.empty();
  const double window_s = first ? 0 : elapsed_s - w.bounds_s.back();
  for (size_t i = 0; i < s.targets.size(); ++i) {
    Target& t = s.targets[i];
    double cpu_s = 0;
    bool read = false;
    for (pid_t p : t.pids) {
      ProcStat st;
      if (!ReadProcStat(p, &st)) continue;
      // A pid first seen since the last boundary (a followed restart) counts from when it was
      // followed; one with no reading at all, from now.
      auto prev = t.window_cpu_s.find(p);
      auto start = t.cpu_start_s.find(p);
      const double from = prev != t.window_cpu_s.end()   ? prev->second
                          : start != t.cpu_start_s.end() ? start->second
                                                         : st.cpu_s;
      cpu_s += st.cpu_s - from;
      read = true;
      t.window_cpu_s[p] = st.cpu_s;
    }
    if (!first && read && window_s > 0) w.services[i].cpu_cores.push_back(cpu_s / window_s);
  }
  const double frames = CaptureFrames(s);
  // A counter that went down (capture restarted) gives no value for this window.
  if (!first && window_s > 0 && frames >= 0 && s.capture_frames >= 0 &&
      frames >= s.capture_frames) {
    w.capture_fps.push_back((frames - s.capture_frames) / window_s);
  }
  s.capture_frames = frames;
  w.bounds_s.push_back(elapsed_s);
  w.bounds_epoch.push_back(static_cast<double>(WallNs()) / 1e9);
}

// The first boundary, and where capture's counters are (none: no capture, no capture/fps).
void StartWindows(Session& s, double elapsed_s) {
  RunWindows& w = s.result.windows;
  w.requested = s.options.repeat;
  for (const Target& t : s.targets) w.services.push_back({t.name, {}, {}});
  if (auto io = ResolveIoTargets(s.dir.root); io.ok()) {
    for (const io::MetricsEndpoint& e : io->services) {
      if (e.name == "capture") s.capture = e;
    }
  }
  TakeBoundary(s, elapsed_s);
}

// The last boundary when the recording ends. A last window cut under half its length by Ctrl-C
// is dropped rather than reported as a full window's value, unless it is the only one: then it
// is the whole recording, and one value beats none.
void EndWindows(Session& s, double elapsed_s) {
  const RunWindows& w = s.result.windows;
  const double window_s = s.options.duration_s / std::max(1, s.options.repeat);
  if (w.bounds_s.empty() || elapsed_s <= w.bounds_s.back()) return;
  if (w.bounds_s.size() == 1 || elapsed_s - w.bounds_s.back() >= 0.5 * window_s) {
    TakeBoundary(s, elapsed_s);
  }
}

// Each service's mean RSS per window from the memory readings already taken, and loadgen's FPS
// reports per window from its log (each line parsed by the preflight's own parser).
void FillWindowsFromReadings(Session& s) {
  RunWindows& w = s.result.windows;
  for (size_t i = 0; i < s.targets.size(); ++i) {
    std::vector<TimedValue> rss;
    for (const MemorySample& m : s.targets[i].memory) {
      rss.push_back({m.time_s, static_cast<double>(m.bytes.rss) / 1e6});
    }
    w.services[i].rss_mb = WindowMeans(w.bounds_epoch, rss);
  }
  auto log = ReadFile(s.dir.LogFile("loadgen"));
  if (!log.ok() || w.bounds_epoch.empty()) return;
  w.loadgen_fps = WindowMeans(w.bounds_epoch, LoadgenFpsReports(*log, w.bounds_epoch.front()));
}

// Record() with the restart watch, the memory readings and the window boundaries between polls.
StatusOr<RecordResult> RecordWatchingRestarts(Session& s, const RecordOptions& opts) {
  ASSIGN_OR_RETURN(std::unique_ptr<Recording> recording, Recording::Start(opts));
  int64_t next_watch_ns = 0, next_memory_ns = 0;
  const auto memory_ns = static_cast<int64_t>(s.options.memory_interval_s * 1e9);
  const double window_s = s.options.duration_s / std::max(1, s.options.repeat);
  StartWindows(s, recording->elapsed_s());
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // 4x a second: reading and parsing state.json takes well under a millisecond.
    if (MonotonicNs() >= next_watch_ns) {
      WatchRestarts(s, recording.get());
      next_watch_ns = MonotonicNs() + 250'000'000;
    }
    if (const int64_t now = MonotonicNs(); now >= next_memory_ns) {
      SampleMemory(s);
      // On the schedule set by the first reading; one that ran late is not caught up in a burst.
      next_memory_ns =
          next_memory_ns == 0 ? now + memory_ns : std::max(next_memory_ns + memory_ns, now);
    }
    // Boundaries 1 .. repeat-1 here; the last one when the recording ends.
    const int windows = s.result.windows.windows();
    if (windows + 1 < s.options.repeat && recording->elapsed_s() >= (windows + 1) * window_s) {
      TakeBoundary(s, recording->elapsed_s());
    }
  } while (recording->Poll());
  SampleMemory(s);  // The window's end, before symbolizing.
  EndWindows(s, recording->elapsed_s());
  RecordResult result = recording->Finish();
  s.result.report.duration_s = result.elapsed_s;
  WatchRestarts(s, nullptr);  // Exits in the last moments.
  return result;
}

// GPU samples over the recording window, per-process utilisation named by service.
std::unique_ptr<gpu::GpuSampler> StartGpu(const Session& s) {
  if (s.options.gpu_interval_s <= 0) return nullptr;
  gpu::SamplerOptions o;
  for (const Target& t : s.targets) o.process_names[static_cast<uint32_t>(t.pid)] = t.name;
  auto sampler = std::make_unique<gpu::GpuSampler>(o);
  sampler->Start(s.options.gpu_interval_s);
  return sampler;
}

StatusOr<RecordResult> RecordServices(Session& s, Governor& governor, SelfCpuTicks& ticks) {
  RecordOptions opts = MakeRecordOptions(s, governor, ticks);
  s.result.report.started_at = IsoNowUtc();
  HostCpuTimes host_start, host_end;
  const bool host = ReadHostCpu(&host_start);
  std::unique_ptr<gpu::GpuSampler> gpu = StartGpu(s);
  if (s.options.batch_sweep) s.live_batching.Begin(s.dir.root);
  if (s.options.io) {
    IoRunOptions io = s.options.io_options;
    io.stop = s.options.stop;
    s.io.Begin(s.dir.root, io);
  }
  auto rec = RecordWatchingRestarts(s, opts);
  if (s.options.io) s.io.End();
  if (s.options.batch_sweep) s.live_batching.End();
  if (gpu) s.result.gpu = gpu->Stop();
  if (rec.ok() && host && ReadHostCpu(&host_end)) {
    s.result.report.host_cpu_pct = HostCpuPercent(host_start, host_end);
  }
  return rec;
}

// An exclusive flock on `path`, held while this object lives. The kernel drops it when the
// process ends, however it ends, so a crash leaves nothing stale; the file stays, holding the
// pid of its last holder for the message of a run that finds it taken.
class RunLock {
 public:
  RunLock() = default;
  ~RunLock() {
    if (fd_ >= 0) close(fd_);
  }
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  // `what` completes "another `framescope profile` (pid N) ...".
  Status Take(const std::string& path, const std::string& what) {
    // A symlink or FIFO planted there is refused, never followed.
    auto opened = OpenRegularFileForUpdate(path);
    if (!opened.ok()) {
      return Err("cannot use " + path + " as a lock file: " + opened.status().message() +
                 "; remove it");
    }
    fd_ = *opened;
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) return Err("cannot lock " + path + ": " + strerror(errno));
      char holder[32] = {};
      const ssize_t n = pread(fd_, holder, sizeof(holder) - 1, 0);
      std::string pid = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return Err("another `framescope profile` (pid " + (pid.empty() ? "unknown" : pid) + ") " +
                 what + " (it holds " + path + "); wait for it to end, or stop it");
    }
    const std::string pid = std::to_string(getpid()) + "\n";
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
      return Err("cannot write " + path + ": " + strerror(errno));
    }
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

bool TakeLock(Session& s, RunLock* lock, const std::string& path, const std::string& what) {
  Status st = lock->Take(path, what);
  return st.ok() || s.Fail(ProfileOutcome::kBusy, st.message());
}

// OUT/run.json, last: its exit code is the run's. A run.json that cannot be written is an
// output not written (exit 1), like any other.
void WriteRunRecord(Session& s) {
  ProfileRunResult& r = s.result;
  r.finished_at = IsoNowUtc();
  const std::string path = s.options.out_dir + "/" + regression::kRunFile;
  Status st = regression::WriteRunManifest(s.options.out_dir, BuildRunManifest(r, s.options));
  if (st.ok()) {
    r.run_json = path;
    return;
  }
  r.report.write_errors.push_back(st.message());
  r.errors.push_back(st.message());
  if (r.outcome == ProfileOutcome::kOk) r.outcome = ProfileOutcome::kWriteFailed;
}

ProfileOutcome FinalOutcome(const ProfileRunResult& r) {
  if (r.report.interrupted) return ProfileOutcome::kInterrupted;
  if (!r.report.write_errors.empty()) return ProfileOutcome::kWriteFailed;
  if (r.coverage_failures > 0) return ProfileOutcome::kCoverageGap;
  if ((!r.model.name.empty() && !r.model.ok()) || !r.batch_error.empty()) {
    return ProfileOutcome::kAnalysisFailed;
  }
  return ProfileOutcome::kOk;
}

}  // namespace

int ProfileExitCode(ProfileOutcome outcome) {
  using O = ProfileOutcome;
  switch (outcome) {
    case O::kOk:
      return 0;
    case O::kBadOutputPath:
      return 2;
    case O::kPreflightFailed:
    case O::kCoverageGap:
      return 3;
    case O::kInterrupted:
      return 130;
    case O::kNoSystem:
    case O::kBusy:
    case O::kRecordFailed:
    case O::kWriteFailed:
    case O::kAnalysisFailed:
      return 1;
  }
  return 1;
}

const char* ProfileStatus(ProfileOutcome outcome) {
  return outcome == ProfileOutcome::kOk            ? "ok"
         : outcome == ProfileOutcome::kInterrupted ? "interrupted"
                                                   : "failed";
}

namespace {

// Everything after the output folder is ours: the system, preflight, recording, reports.
void RunHoldingOutput(Session& s) {
  const ProfileRunOptions& options = s.options;
  ProfileRunResult& result = s.result;
  // One run at a time per system too (two would double the overhead on its services, and each
  // would measure the other).
  RunLock system_lock;
  if (!LoadTargets(s) ||
      !TakeLock(s, &system_lock, s.dir.root + "/profile.lock",
                "is profiling the system in " + s.dir.root) ||
      !OpenMemoryLogs(s) || !Preflight(s)) {
    return;
  }
  GovernorOptions go;
  go.requested_hz = options.frequency_hz;
  go.min_hz = options.min_frequency_hz;
  go.max_overhead_pct = options.max_overhead_pct;
  go.host_warn_pct = options.max_host_cpu_pct;
  Governor governor(go, SystemCostReader());
  SelfCpuTicks ticks;
  const double cpu_start = ProcessCpuSeconds();
  auto rec = RecordServices(s, governor, ticks);
  if (!rec.ok()) {
    s.Fail(ProfileOutcome::kRecordFailed, rec.status().message());
    return;
  }
  FillWindowsFromReadings(s);
  const int64_t post_start = MonotonicNs();
  FillRunReport(s, *rec, governor, ticks);
  DescribeRate(result.report, &rec->profile);
  SummarizeServices(s, *rec);
  result.memory = AnalyseMemory(s);
  if (options.io) result.io = s.io.Analyse();
  CpuReport& r = result.report;
  r.postprocess_s = rec->symbolize_s + static_cast<double>(MonotonicNs() - post_start) / 1e9;
  r.profiler_cpu_s = ProcessCpuSeconds() - cpu_start;
  uint64_t rss = 0, peak = 0;
  if (ReadProcessMemory(getpid(), &rss, &peak)) r.profiler_peak_rss = peak;
  // After the profiler's own cost is taken: the model runs on its own, detection paused.
  if (options.model) result.model = ProfileModel(s);
  if (options.batch_sweep && !s.Stopped()) ProfileBatch(s);
  if (s.Stopped()) r.interrupted = true;  // Ctrl-C during the model or the sweep: exit 130
  if (!result.model.name.empty() && !result.model.ok()) {
    result.errors.push_back("model: not measured: " + result.model.profile.Get("error").AsString());
  }
  if (!result.batch_error.empty()) result.errors.push_back("batch: " + result.batch_error);
  WriteReports(s, *rec);
  result.outcome = FinalOutcome(result);
}

}  // namespace

ProfileRunResult RunProfile(const ProfileRunOptions& options, const ProgressSink& progress) {
  ProfileRunResult result;
  result.started_at = IsoNowUtc();
  result.baseline_path = BaselinePath(options);
  Session s{options, progress, result, {}, Json(), {}, {}, {}, {}, -1};
  if (Status st = CheckOutputs(options.out_dir, result.baseline_path); !st.ok()) {
    s.Fail(ProfileOutcome::kBadOutputPath, st.message());
    return result;
  }
  // One run at a time per output folder: two would overwrite each other's files (run.json
  // included, so a run that finds it taken writes nothing there).
  RunLock out_lock;
  if (!TakeLock(s, &out_lock, options.out_dir + "/.framescope-profile.lock",
                "is writing to " + options.out_dir)) {
    return result;
  }
  RunHoldingOutput(s);
  WriteRunRecord(s);
  return result;
}

}  // namespace fs::profile
