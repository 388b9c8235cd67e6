// `framescope profile` end to end against a real (small) system: every deliverable is written
// and readable, each service has samples, the sampled CPU agrees with /proc, Ctrl-C leaves
// valid partial results, and bad setups fail with a clear error and a meaningful exit code.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "src/base/file_util.h"
#include "src/base/json.h"
#include "src/profile/folded.h"
#include "src/profile/pprof.h"
#include "src/regression/run_manifest.h"
#include "src/report/checklist.h"
#include "tests/integration/test_util.h"

namespace fs {
namespace {

using testing::RunShell;
using testing::TempDir;

std::string Fs() { return testing::BinDir() + "/framescope"; }

// `command` running in the background (its own pid: exec'd by sh), its output in `log`.
class Background {
 public:
  Background(const std::string& command, const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      execl("/bin/sh", "sh", "-c", ("exec " + command + " > " + log + " 2>&1").c_str(), nullptr);
      _exit(127);
    }
  }
  ~Background() {
    if (pid_ > 0) Finish(SIGKILL);
  }
  pid_t pid() const { return pid_; }
  std::string Output() const {
    auto text = ReadFile(log_);
    return text.ok() ? *text : "";
  }
  // Whether `text` appears in the output within `timeout_s`.
  bool WaitForOutput(const std::string& text, double timeout_s) const {
    for (double waited = 0; waited < timeout_s; waited += 0.1) {
      if (Output().find(text) != std::string::npos) return true;
      usleep(100000);
    }
    return false;
  }
  // Sends `signal` (0: none), waits for the exit and returns its code.
  int Finish(int signal) {
    if (signal != 0) kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

// The pid state.json gives `service` (-1: none).
pid_t ServicePid(const std::string& state_dir, const std::string& service) {
  auto text = ReadFile(state_dir + "/state.json");
  auto state = text.ok() ? Json::Parse(*text) : StatusOr<Json>(Err("no state.json"));
  if (!state.ok()) return -1;
  for (const Json& s : state->Get("services").AsArray()) {
    if (s.Get("name").AsString() == service) return static_cast<pid_t>(s.Get("pid").AsInt(-1));
  }
  return -1;
}

void CheckFullRun(const std::string& tmp, const std::string& state_);
void CheckWithoutDocsFolder(const std::string& tmp, const std::string& state_);
void CheckOneOutputFails(const std::string& tmp, const std::string& state_);
void CheckInterrupted(const std::string& tmp, const std::string& state_);
void CheckFollowsRestart(const std::string& tmp, const std::string& state_);
void CheckBatchLive(const std::string& tmp, const std::string& state_);

// One system for every check (bringing it up is most of the cost).
TEST(ProfileTest, WritesEveryDeliverableAndCtrlCKeepsPartialResults) {
  TempDir tmp;
  const std::string state = tmp.path() + "/state";
  testing::SystemGuard guard(state);
  auto up = RunShell(Fs() +
                     " up --cameras 2 --fps 10 --api-rate 20 --timeout 240 --heap-profile "
                     "aggregation,api --state-dir " +
                     state);
  ASSERT_EQ(up.exit_code, 0) << up.output;
  {
    SCOPED_TRACE("full run");
    CheckFullRun(tmp.path(), state);
  }
  {
    SCOPED_TRACE("no docs/ folder");
    CheckWithoutDocsFolder(tmp.path(), state);
  }
  {
    SCOPED_TRACE("one output cannot be written");
    CheckOneOutputFails(tmp.path(), state);
  }
  {
    SCOPED_TRACE("Ctrl-C, and a second run meanwhile");
    CheckInterrupted(tmp.path(), state);
  }
  {
    SCOPED_TRACE("batch: live view of the running detection");
    CheckBatchLive(tmp.path(), state);
  }
  {
    SCOPED_TRACE("detection killed while recorded");  // Last: it restarts a service.
    CheckFollowsRestart(tmp.path(), state);
  }
}

// Frame names of a sample, leaf first (inlined frames included).
std::vector<std::string> FrameNames(const profile::Profile& p, const profile::Sample& s) {
  std::map<uint64_t, const profile::Location*> locations;
  std::map<uint64_t, std::string> functions;
  for (const auto& l : p.locations) locations[l.id] = &l;
  for (const auto& f : p.functions) functions[f.id] = f.name;
  std::vector<std::string> out;
  for (uint64_t id : s.location_ids) {
    for (const auto& line : locations.at(id)->lines) out.push_back(functions[line.function_id]);
  }
  return out;
}

// With DWARF unwinding (the default) detection's stacks are whole: each reaches its thread's
// root (main, or start_thread for OpenCV's TBB workers), and the main thread's reach our own
// fs::DetectionService, instead of stopping inside OpenCV (built without frame pointers) under
// [truncated stack]. The TBB workers run the DNN layers that the main thread hands them; their
// stacks hold no frame of ours (about half of detection's samples on 2 CPUs, more on bigger
// hosts), which is why the share of ours is checked on the main thread. The summary's unwind
// counts say how each stack was walked.
void CheckDetectionReachesOurCode(const std::string& out, const Json& detection) {
  auto p = profile::ReadPprofFile(out + "/cpu/detection_profile.prof");
  ASSERT_TRUE(p.ok()) << p.status().message();
  const std::set<std::string> roots = {"main",    "start_thread", "__GI___clone3", "clone3",
                                       "__clone", "clone",        "_start"};
  int64_t all = 0, whole = 0, main_thread = 0, ours = 0;
  for (const auto& s : p->samples) {
    const std::vector<std::string> frames = FrameNames(*p, s);
    const int64_t n = s.values[0];
    all += n;
    if (!frames.empty() && roots.count(frames.back()) != 0) whole += n;
    if (s.num_labels.at("tid") != s.num_labels.at("pid")) continue;
    main_thread += n;
    for (const std::string& f : frames) {
      if (f.find("fs::DetectionService::") == std::string::npos) continue;
      ours += n;
      break;
    }
  }
  ASSERT_GT(main_thread, 50) << "detection's main thread got few samples";
  EXPECT_GT(ours, main_thread * 9 / 10)
      << ours << " of " << main_thread << " main-thread samples reach fs::DetectionService";
  EXPECT_GT(whole, all * 9 / 10) << whole << " of " << all << " samples reach a thread root";
  const Json& unwind = detection.Get("unwind");
  ASSERT_TRUE(unwind.is_object()) << "no unwind counts for detection in summary.json";
  EXPECT_NE(unwind.Get("source").AsString().find("unwind_by_service"), std::string::npos);
  const int64_t full = unwind.Get("full").AsInt(0);
  const int64_t walked = full + unwind.Get("fp_fallback").AsInt(0);
  EXPECT_GT(walked + unwind.Get("truncated").AsInt(0), 0) << unwind.Dump(2);
  EXPECT_GT(full, (walked + unwind.Get("truncated").AsInt(0)) * 9 / 10) << unwind.Dump(2);
}

// The governor budgets framescope's own cost: a busy host (this 2-core machine, with the
// system on it) never lowers the rate by itself, and the pprof header states the rate used.
void CheckGovernor(const Json& summary, const std::string& out) {
  const Json& g = summary.Get("governor");
  EXPECT_GT(g.Get("readings").AsInt(0), 3) << g.Dump(2);
  const auto& changes = g.Get("changes").AsArray();
  for (const Json& c : changes) {
    EXPECT_NE(c.Get("reason").AsString().find("framescope used"), std::string::npos) << c.Dump(2);
  }
  // After a change the header states the time-weighted rate, not the first one.
  const double hz = changes.empty() ? 99 : summary.Get("effective_frequency_hz").AsDouble(0);
  auto p = profile::ReadPprofFile(out + "/cpu/detection_profile.prof");
  ASSERT_TRUE(p.ok());
  EXPECT_NEAR(static_cast<double>(p->period), 1e9 / hz, 1e9 / hz * 1e-3) << g.Dump(2);
}

// Readings of `service` in its memory log (one JSON object per line), by root pid.
std::map<int64_t, size_t> MemoryLogRoots(const std::string& out, const std::string& service) {
  auto text = ReadFile(out + "/memory/" + service + ".log");
  std::map<int64_t, size_t> roots;
  if (!text.ok()) return roots;
  for (size_t at = 0, nl; (nl = text->find('\n', at)) != std::string::npos; at = nl + 1) {
    auto line = Json::Parse(text->substr(at, nl - at));
    if (!line.ok() || line->Get("name").AsString() != service ||
        !(line->Get("rss").AsDouble() > 0) || !line->Get("pids").is_array() ||
        line->Get("pids").AsArray().empty()) {
      continue;
    }
    ++roots[line->Get("pids").AsArray()[0].AsInt()];
  }
  return roots;
}

size_t MemoryLogSamples(const std::string& out, const std::string& service) {
  size_t n = 0;
  for (const auto& [pid, count] : MemoryLogRoots(out, service)) n += count;
  return n;
}

// The services `up --heap-profile aggregation,api` started: their sampled allocation sites in
// analysis.json, a heap profile and flame graph in memory/, a section in index.html; the others
// have no "heap" at all (not a made-up empty one).
void CheckHeapSites(const std::string& out, std::map<std::string, Json>& analysed,
                    const std::string& index) {
  for (const char* name : {"aggregation", "api"}) {
    SCOPED_TRACE(name);
    const Json& heap = analysed[name].Get("heap");
    ASSERT_TRUE(heap.Get("heap_sampled").AsBool()) << heap.Dump(2);
    EXPECT_FALSE(heap.Get("sites").AsArray().empty()) << heap.Dump(2);
    EXPECT_FALSE(heap.Get("sites").AsArray()[0].Get("function").AsString().empty());
    auto p = profile::ReadPprofFile(out + "/" + heap.Get("heap_profile").AsString());
    ASSERT_TRUE(p.ok()) << p.status().message();
    EXPECT_EQ(p->sample_types.size(), 4u);
    EXPECT_TRUE(PathExists(out + "/" + heap.Get("heap_flamegraph").AsString()));
    EXPECT_NE(index.find(std::string("Heap of ") + name), std::string::npos);
  }
  EXPECT_FALSE(analysed["detection"].Has("heap"));
}

// The memory part of an 8 s run at the default 2 s interval: every service read 4+ times (the
// window's start, every 2 s, its end) into its log, analysed in memory/analysis.json and
// summary.json, charted in index.html; not measurable on so short a window, with the reason.
void CheckMemory(const std::string& out, const Json& summary, const std::string& index) {
  const auto& services = summary.Get("services").AsArray();
  auto analysis_text = ReadFile(out + "/memory/analysis.json");
  ASSERT_TRUE(analysis_text.ok());
  auto analysis = Json::Parse(*analysis_text);
  ASSERT_TRUE(analysis.ok()) << *analysis_text;
  std::map<std::string, Json> analysed;
  for (const Json& p : analysis->Get("processes").AsArray()) analysed[p.Get("name").AsString()] = p;
  for (const Json& s : services) {
    const std::string name = s.Get("name").AsString();
    SCOPED_TRACE(name);
    EXPECT_GE(MemoryLogSamples(out, name), 4u);
    ASSERT_EQ(analysed.count(name), 1u) << *analysis_text;
    const Json& a = analysed[name];
    EXPECT_GE(a.Get("samples").AsInt(0), 4) << *analysis_text;
    EXPECT_GT(a.Get("rss_bytes").AsDouble(0), 1e5) << *analysis_text;
    EXPECT_GT(a.Get("rss_start_bytes").AsDouble(0), 1e5) << *analysis_text;
    const bool slope = std::isfinite(a.Get("rss_slope_mb_per_h").AsDouble(NAN));
    EXPECT_TRUE(slope || !a.Get("reason").AsString().empty()) << *analysis_text;
    EXPECT_EQ(s.Get("memory").Get("samples").AsInt(-1), a.Get("samples").AsInt(-2));
  }
  EXPECT_NE(index.find("<h2 id=\"memory\">"), std::string::npos);
  // The memory section's charts (the GPU section after it draws its own).
  const size_t memory_at = index.find("<h2 id=\"memory\">");
  const std::string memory = index.substr(memory_at, index.find("<h2", memory_at + 1) - memory_at);
  size_t lines = 0;
  for (size_t at = memory.find("<polyline"); at != std::string::npos;
       at = memory.find("<polyline", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, services.size()) << "one RSS chart per service";
  CheckHeapSites(out, analysed, index);
}

// The running process's state letter in /proc/PID/stat ('T' while stopped).
char ProcessState(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return '?';
  size_t paren = stat->rfind(')');
  return paren == std::string::npos || paren + 2 >= stat->size() ? '?' : (*stat)[paren + 2];
}

// The detection model's per-layer profile, taken after the recording with detection paused:
// the system's model, weights and batch size, every deliverable written, detection resumed.
void CheckModel(const std::string& out, const std::string& state, const Json& summary,
                const std::string& index) {
  auto text = ReadFile(out + "/models/yolo_profile.json");
  ASSERT_TRUE(text.ok()) << "no models/yolo_profile.json";
  auto model = Json::Parse(*text);
  ASSERT_TRUE(model.ok()) << *text;
  EXPECT_EQ(model->Get("model").AsString(), "/usr/share/darknet/cfg/yolov3-tiny.cfg");
  EXPECT_NE(model->Get("origin").AsString().find("running system"), std::string::npos);
  EXPECT_NE(model->Get("weights").AsString().find("synthesised weights (" + state + "/cache/"),
            std::string::npos)
      << model->Get("weights").AsString();
  EXPECT_EQ(model->Get("batch_size").AsInt(), 4);  // up's default detection.max_batch
  EXPECT_TRUE(model->Get("detection_paused").AsBool());
  EXPECT_EQ(model->Get("runs").AsInt(), 3);
  EXPECT_GT(model->Get("total_inference_time_ms").AsDouble(), 0);
  EXPECT_GT(model->Get("timed_layer_count").AsInt(), 20);
  EXPECT_EQ(summary.Get("model").Get("profile").AsString(), "models/yolo_profile.json");
  auto trace = ReadFile(out + "/models/yolo_trace.json");
  ASSERT_TRUE(trace.ok());
  EXPECT_TRUE(Json::Parse(*trace).ok());
  EXPECT_NE(index.find("<h2 id=\"model\">"), std::string::npos);
  EXPECT_NE(index.find("models/yolo_trace.json"), std::string::npos);
  EXPECT_NE(ProcessState(ServicePid(state, "detection")), 'T') << "detection was left stopped";
}

// GPU telemetry over the recording, from the fake driver's scripted constant readings: the
// averages are exactly its values, the process is named by its service, and the report,
// summary and index carry them.
void CheckGpu(const std::string& out, const Json& summary, const std::string& index) {
  auto text = ReadFile(out + "/gpu/nsight_report.json");
  ASSERT_TRUE(text.ok()) << "no gpu/nsight_report.json";
  auto gpu = Json::Parse(*text);
  ASSERT_TRUE(gpu.ok()) << *text;
  EXPECT_TRUE(gpu->Get("measured").AsBool()) << *text;
  EXPECT_NEAR(gpu->Get("gpu_utilization_avg").AsDouble(-1), 0.37, 1e-9) << *text;
  EXPECT_NEAR(gpu->Get("memory_bandwidth_efficiency").AsDouble(-1), 0.65, 1e-9) << *text;
  ASSERT_EQ(gpu->Get("gpus").AsArray().size(), 1u);
  const Json& g = gpu->Get("gpus").AsArray()[0];
  EXPECT_EQ(g.Get("name").AsString(), "Fake H200");
  EXPECT_GE(g.Get("samples").AsInt(), 5);  // 1 s interval over an 8 s recording
  bool named = false;
  for (const Json& p : g.Get("processes").AsArray())
    named |= p.Get("name").AsString() == "detection";
  EXPECT_TRUE(named) << g.Dump(2);
  EXPECT_NEAR(summary.Get("gpu").Get("gpu_utilization_avg").AsDouble(-1), 0.37, 1e-9);
  EXPECT_NE(index.find("<h2 id=\"gpu\">"), std::string::npos);
}

Json ReadJsonFile(const std::string& path) {
  auto text = ReadFile(path);
  EXPECT_TRUE(text.ok()) << path;
  auto j = text.ok() ? Json::Parse(*text) : StatusOr<Json>(Err("unreadable"));
  EXPECT_TRUE(j.ok()) << path;
  return j.ok() ? *j : Json();
}

// The I/O sections over the recording window: the services' own statements, Redis commands and
// edges, each with its checklist verdict measured (not "not measurable": everything runs).
void CheckIo(const std::string& out, const Json& summary, const std::string& index) {
  const Json db = ReadJsonFile(out + "/io/db_analysis.json");
  int64_t detections_calls = 0;  // aggregation's COPY into its staging table, once per batch
  for (const Json& st : db.Get("statements").AsArray()) {
    if (st.Get("query").AsString().find("COPY aggregation_staging") == 0) {
      detections_calls += st.Get("calls").AsInt();
    }
  }
  EXPECT_GT(detections_calls, 0) << db.Dump(2);
  EXPECT_EQ(db.Get("checklist").Get("verdict").AsString(), "met") << db.Dump(2);
  const Json redis = ReadJsonFile(out + "/io/redis_analysis.json");
  int64_t xadds = 0;
  for (const Json& op : redis.Get("client_pipelining").Get("per_op").AsArray()) {
    if (op.Get("source").AsString() == "detection") xadds += op.Get("commands").AsInt();
  }
  EXPECT_GT(xadds, 0) << redis.Dump(2);
  EXPECT_NE(redis.Get("checklist").Get("verdict").AsString(), "not measurable") << redis.Dump(2);
  const Json net = ReadJsonFile(out + "/io/network_map.json");
  std::set<std::string> busy;
  for (const Json& e : net.Get("edges").AsArray()) {
    if (e.Get("requests").AsDouble() > 0) {
      busy.insert(e.Get("source").AsString() + "->" + e.Get("target").AsString());
    }
  }
  for (const char* edge : {"detection->redis", "aggregation->postgres", "apiclient->api"}) {
    EXPECT_EQ(busy.count(edge), 1u) << edge << " " << net.Dump(2);
  }
  EXPECT_NE(net.Get("checklist").Get("verdict").AsString(), "not measurable") << net.Dump(2);
  auto svg = ReadFile(out + "/io/network_map.svg");
  ASSERT_TRUE(svg.ok());
  EXPECT_NE(svg->find("<svg"), std::string::npos);
  for (const char* part : {"db", "redis", "net"}) {
    EXPECT_FALSE(summary.Get("io").Get(part).Get("checklist").Get("verdict").AsString().empty())
        << part << " " << summary.Dump(2);
    EXPECT_NE(index.find(std::string("<h2 id=\"") + part + "\""), std::string::npos) << part;
  }
}

// run.json of the full run (--repeat 3 --label itest): loads, names the run, carries the
// per-window metrics; index.html and the baseline open with the checklist.
void CheckRunJson(const std::string& out, const std::string& index, const std::string& doc,
                  const std::string& output) {
  EXPECT_NE(output.find("run: " + out + "/run.json (status ok, exit 0)"), std::string::npos)
      << output;
  auto m = regression::LoadRunManifest(out);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->status, "ok");
  EXPECT_EQ(m->exit_code, 0);
  EXPECT_EQ(m->label, "itest");
  EXPECT_EQ(m->repeat, 3);
  EXPECT_FALSE(m->revision.empty());
  EXPECT_EQ(m->framescope_version, "0.1.0");
  EXPECT_EQ(m->config.Get("cameras").AsInt(), 2) << m->config.Dump();
  EXPECT_EQ(m->config_hash, regression::JsonHash(m->config));
  EXPECT_EQ(m->report, "index.html");
  EXPECT_EQ(m->profiles.at("detection"), "cpu/detection_profile.prof");
  // One value per window of CPU (every service), RSS and capture's FPS.
  for (const char* name : {"detection/cpu_cores", "capture/cpu_cores", "capture/rss_mb",
                           "detection/rss_mb", "capture/fps"}) {
    const regression::Metric* metric = m->Find(name);
    ASSERT_NE(metric, nullptr) << name << " in " << RunManifestToJson(*m).Dump(2);
    EXPECT_EQ(metric->values.size(), 3u) << name;
    for (double v : metric->values) EXPECT_GT(v, 0) << name;
  }
  // 2 cameras at 10 FPS.
  for (double fps : m->Find("capture/fps")->values) EXPECT_NEAR(fps, 20, 6);
  for (const char* name : {"model/total_ms", "redis/pipeline_share", "edge/detection->redis/p99_ms",
                           "gpu/utilization"}) {
    EXPECT_NE(m->Find(name), nullptr) << name;
  }
  ASSERT_EQ(m->checklist.size(), std::size(profile::kChecklistIds));
  for (size_t i = 0; i < m->checklist.size(); ++i) {
    EXPECT_EQ(m->checklist[i].id, profile::kChecklistIds[i]);
  }
  // 4.1 reads the schedule back (profile --schedule-out, default profiles/automated): none here.
  EXPECT_EQ(m->checklist[11].verdict, regression::kNotMet) << m->checklist[11].reason;
  EXPECT_EQ(m->checklist[11].value, "no schedule installed");
  // The checklist is the first section of index.html and of the baseline document.
  const size_t table = index.find("<section id=\"checklist\"><h2>Checklist</h2>");
  ASSERT_NE(table, std::string::npos);
  EXPECT_LT(table, index.find("<h2"));
  EXPECT_LT(table, index.find("<table id=\"services\">"));
  EXPECT_NE(index.find("(median of 3 windows, "), std::string::npos);
  EXPECT_EQ(doc.find("<!-- framescope:"), doc.find(profile::kChecklistSectionBegin)) << doc;
  EXPECT_NE(doc.find("| 4.2 Regression detection |"), std::string::npos) << doc;
}

// The batch sweep after the model (detection paused) and the live view of detection's batching
// over the recording window: both batch sizes measured, the live window seen frames.
void CheckBatch(const std::string& out, const Json& summary, const std::string& index) {
  auto text = ReadFile(out + "/models/batch_analysis.json");
  ASSERT_TRUE(text.ok()) << "no models/batch_analysis.json";
  auto batch = Json::Parse(*text);
  ASSERT_TRUE(batch.ok()) << *text;
  std::set<int64_t> sizes;
  for (const Json& r : batch->Get("offline").Get("batches").AsArray()) {
    sizes.insert(r.Get("batch").AsInt());
    EXPECT_GT(r.Get("throughput_images_per_s").AsDouble(), 0) << r.Dump();
  }
  EXPECT_EQ(sizes, (std::set<int64_t>{1, 2})) << *text;
  EXPECT_TRUE(batch->Get("detection_paused_during_sweep").AsBool()) << *text;
  const Json& live = batch->Get("live");
  EXPECT_TRUE(live.Get("measured").AsBool()) << live.Dump(2);
  EXPECT_GT(live.Get("window_s").AsDouble(), 5) << live.Dump(2);  // the 8 s recording
  EXPECT_EQ(summary.Get("batch").Get("report").AsString(), "models/batch_analysis.json");
  EXPECT_TRUE(ReadFile(out + "/models/batch_analysis.html").ok());
  EXPECT_NE(index.find("models/batch_analysis.json"), std::string::npos);
}

void CheckFullRun(const std::string& tmp, const std::string& state_) {
  std::string out = tmp + "/profiles";
  std::string baseline = tmp + "/docs/performance-baseline.md";
  ASSERT_TRUE(MakeDirs(tmp + "/docs").ok());
  // A hand-written section must survive the rewrite of the CPU section.
  ASSERT_TRUE(WriteFileAtomic(baseline, "# Baseline\n\nNotes kept.\n").ok());
  // The GPU telemetry runs through framescope's real NVML loader against the test tree's fake
  // libnvidia-ml.so.1, found through the library search path as the driver's would be.
  const std::string script = tmp + "/fake_nvml.script";
  ASSERT_TRUE(WriteFileAtomic(script, "devices 1\nname 0 Fake H200\nutil 0 37/12\nprocess 0 " +
                                          std::to_string(ServicePid(state_, "detection")) +
                                          " 50 10\ngpm 0 65/30\n")
                  .ok());
  auto r = RunShell(
      "LD_LIBRARY_PATH=" + testing::BinDir() + "/../fake_nvml/full FAKE_NVML_SCRIPT=" + script +
      " " + Fs() + " profile --duration 8 --state-dir " + state_ + " --out " + out +
      " --baseline " + baseline +
      " --model-runs 3 --batches 1,2 --batch-window-seconds 0.2 --repeat 3 --label itest"
      " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("preflight: perf events: ok"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("preflight: NVML: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("preflight: loadgen: 2/2 cameras"), std::string::npos) << r.output;

  auto summary_text = ReadFile(out + "/summary.json");
  ASSERT_TRUE(summary_text.ok());
  auto summary = Json::Parse(*summary_text);
  ASSERT_TRUE(summary.ok()) << *summary_text;
  EXPECT_FALSE(summary->Get("partial").AsBool(true));
  const auto& services = summary->Get("services").AsArray();
  std::set<std::string> names;
  for (const Json& s : services) names.insert(s.Get("name").AsString());
  for (const char* want : {"redis", "postgres", "loadgen", "capture", "detection", "aggregation",
                           "api", "apiclient", "prometheus"}) {
    EXPECT_EQ(names.count(want), 1u) << want << " missing from " << *summary_text;
  }
  auto index = ReadFile(out + "/index.html");
  ASSERT_TRUE(index.ok());
  for (const Json& s : services) {
    const std::string name = s.Get("name").AsString();
    EXPECT_EQ(s.Get("problem").AsString(), "") << name;
    if (s.Get("samples").AsInt(0) == 0) {
      EXPECT_NE(s.Get("note").AsString().find("idle"), std::string::npos) << name;
      continue;
    }
    const std::string prof = out + "/cpu/" + name + "_profile.prof";
    auto p = profile::ReadPprofFile(prof);
    ASSERT_TRUE(p.ok()) << prof << ": " << p.status().message();
    int64_t samples = 0;
    for (const auto& sample : p->samples) {
      EXPECT_EQ(sample.labels.at("service"), name);
      samples += sample.values[0];
    }
    EXPECT_EQ(samples, s.Get("samples").AsInt(-1)) << name;
    auto folded = ReadFile(out + "/cpu/" + name + "_profile.folded");
    ASSERT_TRUE(folded.ok()) << name;
    EXPECT_TRUE(profile::ParseFolded(*folded).ok()) << name;
    auto flame = ReadFile(out + "/flamegraphs/" + name + "_flame.html");
    ASSERT_TRUE(flame.ok()) << name;
    EXPECT_NE(flame->find("<svg"), std::string::npos) << name;
    EXPECT_NE(index->find("flamegraphs/" + name + "_flame.html"), std::string::npos) << name;
  }

  // Detection does most of the work; its sampled CPU agrees with utime+stime from /proc.
  for (const Json& s : services) {
    if (s.Get("name").AsString() != "detection") continue;
    double sampled = s.Get("cpu_ns").AsDouble(0) / 1e9;
    double proc = s.Get("proc_cpu_s").AsDouble(-1);
    ASSERT_GT(proc, 1.0) << *summary_text;
    EXPECT_NEAR(sampled / proc, 1.0, 0.2) << "sampled " << sampled << " s vs /proc " << proc;
    EXPECT_GT(s.Get("samples").AsInt(0), 100);
    EXPECT_FALSE(s.Get("top_self").AsArray().empty());
    EXPECT_FALSE(s.Get("threads").AsArray().empty());
    CheckDetectionReachesOurCode(out, s);
  }
  CheckGovernor(*summary, out);
  CheckMemory(out, *summary, *index);
  CheckModel(out, state_, *summary, *index);
  CheckGpu(out, *summary, *index);
  CheckBatch(out, *summary, *index);
  CheckIo(out, *summary, *index);

  auto doc = ReadFile(baseline);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->rfind("# Baseline\n\nNotes kept.\n", 0), 0u) << *doc;
  EXPECT_NE(doc->find("## CPU"), std::string::npos);
  EXPECT_NE(doc->find("| detection | "), std::string::npos) << *doc;
  EXPECT_NE(doc->find("## Memory"), std::string::npos) << *doc;
  EXPECT_NE(doc->find("## Model: per-layer profile"), std::string::npos) << *doc;
  EXPECT_NE(doc->find("<!-- framescope:gpu:begin -->"), std::string::npos) << *doc;
  EXPECT_NE(doc->find("<!-- framescope:batch:begin -->"), std::string::npos) << *doc;
  CheckRunJson(out, *index, *doc, r.output);
  for (const char* io : {"db", "redis", "net"}) {
    EXPECT_NE(doc->find(std::string("<!-- framescope:") + io + ":begin -->"), std::string::npos)
        << io;
  }
  // A second run replaces the section instead of appending another.
  auto again = RunShell(Fs() + " profile --no-model --no-batch-sweep --duration 3 --state-dir " +
                        state_ + " --out " + out + " --baseline " + baseline);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  auto doc2 = ReadFile(baseline);
  ASSERT_TRUE(doc2.ok());
  EXPECT_EQ(doc2->find("## CPU"), doc2->rfind("## CPU")) << *doc2;
  EXPECT_EQ(doc2->find("## Checklist"), doc2->rfind("## Checklist")) << *doc2;
  EXPECT_EQ(doc2->find("<!-- framescope:"), doc2->find(profile::kChecklistSectionBegin));
  EXPECT_NE(doc2->find("## Memory"), std::string::npos) << *doc2;
  EXPECT_EQ(doc2->find("## Memory"), doc2->rfind("## Memory")) << *doc2;
  EXPECT_NE(doc2->find("Notes kept."), std::string::npos);

  if (access("/usr/bin/go", X_OK) == 0) {
    auto top = RunShell("HOME=" + tmp + " GOCACHE=" + tmp + "/gocache go tool pprof -top " + out +
                        "/cpu/detection_profile.prof");
    EXPECT_EQ(top.exit_code, 0) << top.output;
    EXPECT_NE(top.output.find("flat%"), std::string::npos) << top.output;
  }
}

// Run where no docs/ exists (and without --baseline): the baseline goes to
// OUT/performance-baseline.md and the run succeeds.
void CheckWithoutDocsFolder(const std::string& tmp, const std::string& state_) {
  const std::string cwd = tmp + "/elsewhere";
  ASSERT_TRUE(MakeDirs(cwd).ok());
  auto r = RunShell("cd " + cwd + " && " + Fs() +
                    " profile --no-model --no-batch-sweep --duration 3 --state-dir " + state_ +
                    " --out prof");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto doc = ReadFile(cwd + "/prof/performance-baseline.md");
  ASSERT_TRUE(doc.ok()) << r.output;
  EXPECT_NE(doc->find("## CPU"), std::string::npos) << *doc;
  EXPECT_NE(doc->find("## Memory"), std::string::npos) << *doc;
  EXPECT_FALSE(PathExists(cwd + "/docs"));
  // The table's memory part: 3 s at 2 s gives each service too few readings for a slope.
  EXPECT_NE(r.output.find("RSS slope MB/h (95% CI)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not measurable (only "), std::string::npos) << r.output;
}

// A folder where detection's flame graph should go: that file fails, every other output is
// still written (the summary names the failure), and the run exits 1.
void CheckOneOutputFails(const std::string& tmp, const std::string& state_) {
  const std::string out = tmp + "/blocked";
  ASSERT_TRUE(MakeDirs(out + "/flamegraphs/detection_flame.html").ok());
  auto r = RunShell(Fs() + " profile --no-model --no-batch-sweep --duration 3 --state-dir " +
                    state_ + " --out " + out);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("detection_flame.html"), std::string::npos) << r.output;
  auto summary = ReadFile(out + "/summary.json");
  ASSERT_TRUE(summary.ok()) << r.output;
  auto j = Json::Parse(*summary);
  ASSERT_TRUE(j.ok());
  ASSERT_EQ(j->Get("write_errors").AsArray().size(), 1u) << *summary;
  EXPECT_NE(j->Get("write_errors").AsArray()[0].AsString().find("detection_flame.html"),
            std::string::npos);
  EXPECT_TRUE(profile::ReadPprofFile(out + "/cpu/detection_profile.prof").ok());
  EXPECT_TRUE(PathExists(out + "/flamegraphs/capture_flame.html"));
  EXPECT_TRUE(PathExists(out + "/index.html"));
  EXPECT_TRUE(PathExists(out + "/performance-baseline.md"));
}

// While `first` (pid) records into `out`, a second run fails at once, before recording, naming
// the lock and the first run: into the same folder (the folder's lock), or into another one
// (the system's lock: one run per system).
void CheckSecondRunRefused(const std::string& tmp, const std::string& state_,
                           const std::string& out, pid_t first) {
  const std::string other = tmp + "/second";
  const auto start = std::chrono::steady_clock::now();
  auto same = RunShell(Fs() + " profile --no-model --no-batch-sweep --duration 3 --state-dir " +
                       state_ + " --out " + out);
  auto elsewhere =
      RunShell(Fs() + " profile --no-model --no-batch-sweep --duration 3 --state-dir " + state_ +
               " --out " + other);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << "not at once";
  const std::string holder = "(pid " + std::to_string(first) + ")";
  EXPECT_EQ(same.exit_code, 1) << same.output;
  EXPECT_NE(same.output.find(holder + " is writing to " + out), std::string::npos) << same.output;
  EXPECT_NE(same.output.find(out + "/.framescope-profile.lock"), std::string::npos) << same.output;
  EXPECT_EQ(elsewhere.exit_code, 1) << elsewhere.output;
  EXPECT_NE(elsewhere.output.find(holder + " is profiling the system"), std::string::npos)
      << elsewhere.output;
  EXPECT_NE(elsewhere.output.find("/profile.lock"), std::string::npos) << elsewhere.output;
  EXPECT_EQ(elsewhere.output.find("preflight"), std::string::npos) << elsewhere.output;
  EXPECT_FALSE(PathExists(other + "/summary.json"));
  // The refused run owned its folder: its run.json says it failed; the folder's holder keeps
  // its own (the refused run into `out` wrote nothing there).
  auto refused = regression::LoadRunManifest(other);
  ASSERT_TRUE(refused.ok()) << refused.status().message();
  EXPECT_EQ(refused->status, "failed");
  EXPECT_EQ(refused->exit_code, 1);
  EXPECT_NE(refused->error.find("is profiling the system"), std::string::npos) << refused->error;
  EXPECT_FALSE(PathExists(out + "/run.json"));
}

void CheckInterrupted(const std::string& tmp, const std::string& state_) {
  std::string out = tmp + "/partial";
  Background run(Fs() + " profile --no-model --no-batch-sweep --duration 120 --state-dir " +
                     state_ + " --out " + out + " --baseline " + out + "/baseline.md",
                 tmp + "/partial.log");
  // Both locks are taken before preflight starts.
  ASSERT_TRUE(run.WaitForOutput("preflight:", 30)) << run.Output();
  CheckSecondRunRefused(tmp, state_, out, run.pid());
  ASSERT_TRUE(run.WaitForOutput("profiling ", 60)) << run.Output();
  usleep(3000000);
  const int code = run.Finish(SIGINT);
  const std::string output = run.Output();
  EXPECT_EQ(code, 130) << output;
  auto summary = ReadFile(out + "/summary.json");
  ASSERT_TRUE(summary.ok()) << output;
  auto j = Json::Parse(*summary);
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE(j->Get("partial").AsBool(false));
  EXPECT_TRUE(j->Get("interrupted").AsBool(false));
  EXPECT_LT(j->Get("duration_s").AsDouble(999), 60);
  EXPECT_TRUE(profile::ReadPprofFile(out + "/cpu/detection_profile.prof").ok());
  auto m = regression::LoadRunManifest(out);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->status, "interrupted");
  EXPECT_EQ(m->exit_code, 130);
  EXPECT_NE(m->Find("detection/cpu_cores"), nullptr) << RunManifestToJson(*m).Dump(2);
  // The services were left as they were: all still running.
  auto status = RunShell(Fs() + " status --state-dir " + state_);
  EXPECT_EQ(status.exit_code, 0) << status.output;
}

// `framescope batch` on the running system (a short sweep at 128x128): the live view reads
// detection's /metrics while it runs (2 cameras, 10 fps each: about 20 frames/s offered), the
// sweep pauses detection and resumes it.
void CheckBatchLive(const std::string& tmp, const std::string& state_) {
  // Braces: the progress on stderr goes to a file, standard output is the JSON alone.
  auto r = RunShell("{ " + Fs() + " batch --state-dir " + state_ +
                    " --input-size 128 --batches 1,2 --window-seconds 0.2 --max-windows 3 "
                    "--live-seconds 3 --json --out " +
                    tmp + "/batch 2>" + tmp + "/batch.err; }");
  ASSERT_EQ(r.exit_code, 3) << r.output << *ReadFile(tmp + "/batch.err");  // 1, 2: never met
  auto out = Json::Parse(r.output);
  ASSERT_TRUE(out.ok()) << r.output;
  EXPECT_TRUE(out->Get("detection_paused_during_sweep").AsBool());
  const Json& live = out->Get("live");
  ASSERT_TRUE(live.Get("measured").AsBool()) << live.Dump(2);
  EXPECT_GT(live.Get("batches").AsDouble(), 0) << live.Dump(2);
  // max_batch 4, but a batch holds at most one frame per camera: 2.
  EXPECT_GE(live.Get("mean_batch_size").AsDouble(), 1) << live.Dump(2);
  EXPECT_LE(live.Get("mean_batch_size").AsDouble(), 2) << live.Dump(2);
  EXPECT_GT(live.Get("offered_fps").AsDouble(), 8) << live.Dump(2);
  EXPECT_LT(live.Get("offered_fps").AsDouble(), 30) << live.Dump(2);
  EXPECT_TRUE(live.Get("queue_wait").Get("p50_ms").Get("value").is_number()) << live.Dump(2);
  EXPECT_LE(live.Get("recommended_max_batch").AsInt(99), 2) << live.Dump(2);
  EXPECT_EQ(live.Get("current_max_batch").AsInt(), 4) << live.Dump(2);
  EXPECT_NE(live.Get("recommendation").AsString().find("Caveat: the sweep ran at 128x128"),
            std::string::npos)
      << live.Dump(2);
  // Resumed: detection is not left stopped.
  auto stat = ReadFile("/proc/" + std::to_string(ServicePid(state_, "detection")) + "/stat");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->find(") T "), std::string::npos) << *stat;
}

// detection killed (SIGKILL) 1.5 s into a recording: the supervisor restarts it under a new pid,
// which the run follows: detection's samples come from both pids, the restart is in
// summary.json and the output, and the run is complete (exit 0, not partial).
void CheckFollowsRestart(const std::string& tmp, const std::string& state_) {
  const std::string out = tmp + "/restart";
  Background run(Fs() + " profile --no-model --no-batch-sweep --duration 8 --state-dir " + state_ +
                     " --out " + out,
                 tmp + "/restart.log");
  ASSERT_TRUE(run.WaitForOutput("profiling ", 60)) << run.Output();
  usleep(1500000);
  const pid_t old_pid = ServicePid(state_, "detection");
  ASSERT_GT(old_pid, 0);
  ASSERT_EQ(kill(old_pid, SIGKILL), 0);
  const int code = run.Finish(0);
  const std::string output = run.Output();
  const pid_t new_pid = ServicePid(state_, "detection");
  ASSERT_GT(new_pid, 0) << output;
  ASSERT_NE(new_pid, old_pid) << output;
  EXPECT_EQ(code, 0) << output;
  const std::string restarted = "detection: pid " + std::to_string(old_pid) + " exited (seen at ";
  EXPECT_NE(output.find("restart: " + restarted), std::string::npos) << output;
  EXPECT_NE(output.find("restarted as pid " + std::to_string(new_pid)), std::string::npos)
      << output;
  EXPECT_EQ(output.find("coverage"), std::string::npos) << output;

  auto text = ReadFile(out + "/summary.json");
  ASSERT_TRUE(text.ok()) << output;
  auto summary = Json::Parse(*text);
  ASSERT_TRUE(summary.ok());
  EXPECT_FALSE(summary->Get("partial").AsBool(true)) << *text;
  const Json* detection = nullptr;
  for (const Json& s : summary->Get("services").AsArray()) {
    if (s.Get("name").AsString() == "detection") detection = &s;
  }
  ASSERT_NE(detection, nullptr) << *text;
  EXPECT_EQ(detection->Get("problem").AsString(), "") << detection->Dump(2);
  const auto& restarts = detection->Get("restarts").AsArray();
  ASSERT_EQ(restarts.size(), 1u) << detection->Dump(2);
  EXPECT_EQ(restarts[0].Get("old_pid").AsInt(0), old_pid);
  EXPECT_EQ(restarts[0].Get("new_pid").AsInt(0), new_pid);
  EXPECT_TRUE(restarts[0].Get("followed").AsBool(false)) << restarts[0].Dump(2);
  std::set<int64_t> pids;
  for (const Json& p : detection->Get("pids").AsArray()) pids.insert(p.AsInt(0));
  EXPECT_TRUE(pids.count(old_pid) && pids.count(new_pid)) << detection->Dump(2);
  // The profile itself has samples of both processes, labelled detection.
  auto p = profile::ReadPprofFile(out + "/cpu/detection_profile.prof");
  ASSERT_TRUE(p.ok()) << p.status().message();
  std::map<int64_t, int64_t> by_pid;
  for (const auto& s : p->samples) by_pid[s.num_labels.at("pid")] += s.values[0];
  EXPECT_GT(by_pid[old_pid], 10) << detection->Dump(2);
  EXPECT_GT(by_pid[new_pid], 10) << detection->Dump(2);
  EXPECT_EQ(restarts[0].Get("old_pid_samples").AsInt(-1), by_pid[old_pid]);
  EXPECT_EQ(restarts[0].Get("new_pid_samples").AsInt(-1), by_pid[new_pid]);
  // Memory: both processes' readings are in the log; the analysed series is the new one's only.
  std::map<int64_t, size_t> roots = MemoryLogRoots(out, "detection");
  EXPECT_GE(roots[old_pid], 1u);
  EXPECT_GE(roots[new_pid], 1u);
  EXPECT_EQ(roots.size(), 2u);
  const Json& memory = detection->Get("memory");
  EXPECT_EQ(static_cast<size_t>(memory.Get("samples").AsInt(-1)), roots[new_pid]) << memory.Dump(2);
  EXPECT_EQ(static_cast<size_t>(memory.Get("earlier_samples").AsInt(-1)), roots[old_pid]);
}

TEST(ProfileFlagsTest, BadFlagsAndNoSystemFailClearly) {
  TempDir empty;
  auto usage = RunShell(Fs() + " profile --duration 0 --state-dir " + empty.path());
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  auto unwind = RunShell(Fs() + " profile --unwind lbr --state-dir " + empty.path());
  EXPECT_EQ(unwind.exit_code, 2) << unwind.output;
  auto repeat = RunShell(Fs() + " profile --repeat 0 --state-dir " + empty.path());
  EXPECT_EQ(repeat.exit_code, 2) << repeat.output;
  EXPECT_NE(repeat.output.find("--repeat must be 1..1000"), std::string::npos) << repeat.output;
  auto none = RunShell(Fs() + " profile --duration 1 --state-dir " + empty.path() + " --out " +
                       empty.path() + "/out");
  EXPECT_EQ(none.exit_code, 1) << none.output;
  EXPECT_NE(none.output.find("no running system"), std::string::npos) << none.output;
  // A failed run is history too: OUT was writable, so run.json says what happened.
  auto failed = regression::LoadRunManifest(empty.path() + "/out");
  ASSERT_TRUE(failed.ok()) << failed.status().message();
  EXPECT_EQ(failed->status, "failed");
  EXPECT_EQ(failed->exit_code, 1);
  EXPECT_NE(failed->error.find("no running system"), std::string::npos) << failed->error;
  EXPECT_TRUE(failed->metrics.empty());
  EXPECT_EQ(failed->checklist.size(), std::size(profile::kChecklistIds));
  // An output folder that does not exist fails before anything runs (no system needed here:
  // the paths are checked first), with exit 2 and the path in the message.
  auto missing =
      RunShell(Fs() + " profile --duration 60 --state-dir " + empty.path() + " --out " +
               empty.path() + "/out --baseline " + empty.path() + "/no/such/dir/baseline.md");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("no/such/dir"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("does not exist"), std::string::npos) << missing.output;
  // An unusable output path is found before OUT is known writable: no run.json of its own
  // (the one there is still the no-system run's, exit 1).
  EXPECT_EQ(regression::LoadRunManifest(empty.path() + "/out")->exit_code, 1);
  // A symlink where the baseline should go is not replaced.
  ASSERT_EQ(symlink("/etc/hostname", (empty.path() + "/link.md").c_str()), 0);
  auto link = RunShell(Fs() + " profile --duration 60 --state-dir " + empty.path() + " --out " +
                       empty.path() + "/out --baseline " + empty.path() + "/link.md");
  EXPECT_EQ(link.exit_code, 2) << link.output;
  EXPECT_NE(link.output.find("not a regular file"), std::string::npos) << link.output;
  auto help = RunShell(Fs() + " profile --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("Exit codes"), std::string::npos);
  for (const char* flag : {"--repeat", "--label", "run.json"}) {
    EXPECT_NE(help.output.find(flag), std::string::npos) << flag;
  }
}

// `framescope record --pid` of a process that exits while recorded keeps its samples.
TEST(RecordExitTest, PidExitingMidRecordKeepsItsSamples) {
  TempDir tmp;
  std::string out = tmp.path() + "/exit.prof";
  // The 3:1 workload burns 1.5 s of CPU once it reads its go byte, then exits; the recording
  // asks for 10 s.
  auto r = RunShell("(sleep 0.5; echo g) | " + testing::BinDir() +
                    "/sampler_testprog 1500 200 & pid=$!; " + Fs() + " record --pid $pid " +
                    "--duration 10 -o " + out + "; wait");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("a target exited while recording"), std::string::npos) << r.output;
  auto p = profile::ReadPprofFile(out);
  ASSERT_TRUE(p.ok()) << p.status().message();
  int64_t samples = 0;
  for (const auto& s : p->samples) samples += s.values[0];
  EXPECT_GT(samples, 100) << r.output;  // ~1.5 s at 99 Hz (~150 samples).
}

// A truncated profile (a real one, cut in half) is refused by every reader with its name.
TEST(CorruptProfileTest, TruncatedProfileIsAClearError) {
  TempDir tmp;
  std::string out = tmp.path() + "/ok.prof";
  auto r = RunShell(Fs() + " record --duration 0 -o " + out +
                    " -- sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto bytes = ReadFile(out);
  ASSERT_TRUE(bytes.ok());
  std::string cut = tmp.path() + "/cut.prof";
  ASSERT_TRUE(WriteFileAtomic(cut, bytes->substr(0, bytes->size() / 2)).ok());
  auto fg = RunShell(Fs() + " flamegraph " + cut + " -o " + tmp.path() + "/cut.html");
  EXPECT_EQ(fg.exit_code, 1) << fg.output;
  EXPECT_NE(fg.output.find("cut.prof"), std::string::npos) << fg.output;
  EXPECT_FALSE(PathExists(tmp.path() + "/cut.html"));
  auto diff = RunShell(Fs() + " diff " + out + " " + cut + " -o " + tmp.path() + "/d.html");
  EXPECT_EQ(diff.exit_code, 1) << diff.output;
  EXPECT_NE(diff.output.find("cut.prof"), std::string::npos) << diff.output;
  EXPECT_FALSE(PathExists(tmp.path() + "/d.html"));
}

}  // namespace
}  // namespace fs
