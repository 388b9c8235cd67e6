#include "src/session/run_record.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "src/collect/preflight.h"
#include "src/config/config.h"
#include "src/gpu/gpu_report.h"
#include "src/io/net_edges.h"
#include "src/io/pg_stats.h"
#include "src/session/build_info.h"

namespace fs::profile {
namespace {

using regression::ChecklistRow;
using regression::Metric;

constexpr const char* kProcCpuCounter =
    "/proc/PID/stat utime+stime of the service's process tree / window seconds";
constexpr const char* kRssCounter =
    "/proc/PID/smaps_rollup Rss of the service's process tree, mean of the readings in the window";
constexpr const char* kSlopeCounter =
    "Theil-Sen slope of RSS (/proc/PID/smaps_rollup) over the recording, warm-up excluded";
constexpr const char* kCaptureFpsCounter =
    "capture /metrics framescope_frames_in_total (every camera), delta / window seconds";
constexpr const char* kLoadgenFpsCounter =
    "loadgen log 'camera=camNN FPS: X' lines in the window, mean over cameras";
constexpr const char* kStatementCounter =
    "pg_stat_statements total_exec_time / calls over the recording window";
constexpr const char* kPipelineCounter =
    "client counters framescope_redis_*: commands sent with another before the replies were read "
    "/ commands";

void Add(std::vector<Metric>* out, std::string name, std::string group, std::string unit,
         std::string counter, bool higher, std::vector<double> values) {
  if (values.empty()) return;  // Not measured: absent, never 0.
  out->push_back({std::move(name), std::move(group), std::move(unit), std::move(counter), higher,
                  std::move(values)});
}

void ServiceMetrics(const ProfileRunResult& r, std::vector<Metric>* out) {
  for (const ServiceWindows& w : r.windows.services) {
    Add(out, w.name + "/cpu_cores", w.name, "cores", kProcCpuCounter, false, w.cpu_cores);
    Add(out, w.name + "/rss_mb", w.name, "MB", kRssCounter, false, w.rss_mb);
  }
  for (const ServiceMemory& m : r.memory.services) {
    const LeakRate& rate = m.rate;
    if (rate.verdict == LeakVerdict::kNotMeasurable || !std::isfinite(rate.slope_mb_per_h))
      continue;
    Add(out, m.name + "/rss_slope_mb_per_h", m.name, "MB/h", kSlopeCounter, false,
        {rate.slope_mb_per_h});
  }
  Add(out, "capture/fps", "capture", "fps", kCaptureFpsCounter, true, r.windows.capture_fps);
  Add(out, "loadgen/fps", "loadgen", "fps", kLoadgenFpsCounter, true, r.windows.loadgen_fps);
}

void ModelMetrics(const ProfileRunResult& r, std::vector<Metric>* out) {
  if (!r.model.name.empty() && r.model.ok()) {
    const Json& p = r.model.profile;
    Add(out, "model/total_ms", "model", "ms",
        p.Get("total_counter").AsString() + ", one forward of batch " +
            std::to_string(p.Get("batch_size").AsInt(1)),
        false, {p.Get("total_inference_time_ms").AsDouble()});
    for (const Json& l : p.Get("layer_timings").AsArray()) {
      if (l.Get("fused").AsBool()) continue;  // Ran inside its convolution: no time of its own.
      Add(out, "model/layer/" + l.Get("name").AsString() + "_ms", "model", "ms",
          "cv::dnn::Net::getPerfProfile ticks of the layer, median over runs", false,
          {l.Get("median_ms").AsDouble()});
    }
  }
  if (r.batch && r.batch->choice.gain) {
    Add(out, "batch/gain", "model", "x",
        "batch sweep: best batch's throughput / batch 1's (images/s, detection paused)", true,
        {*r.batch->choice.gain});
  }
}

void IoMetrics(const ProfileRunResult& r, std::vector<Metric>* out) {
  if (!r.io) return;
  // A statement is named by a hash of its database and normalised text, not its queryid: the
  // queryid hashes table OIDs, which change when the database is rebuilt (`down --purge`), and
  // runs must pair up across that. One entry per name (the costliest: they come sorted).
  std::set<std::string> seen;
  if (r.io->db && r.io->db->window_measured) {
    for (const io::WindowedStatement& s : r.io->db->window.statements) {
      const std::string name =
          "postgres/" + regression::JsonHash(Json(s.database + "\n" + s.query)) + "/mean_ms";
      if (seen.insert(name).second) {
        Add(out, name, "postgres", "ms",
            std::string(kStatementCounter) + ": " + io::SqueezeQuery(s.query, 100), false,
            {s.mean_ms});
      }
    }
  }
  if (r.io->redis) {
    if (auto share = r.io->redis->clients.total.Efficiency()) {
      Add(out, "redis/pipeline_share", "redis", "share", kPipelineCounter, true, {*share});
    }
  }
  if (r.io->net) {
    for (const io::NetEdge& e : r.io->net->edges) {
      const std::string name = "edge/" + e.source + "->" + e.target + "/p99_ms";
      if (!e.total.p99 || !seen.insert(name).second) continue;
      Add(out, name, "edge", "ms",
          std::string(e.server_side ? io::kServerHistogram : io::kClientHistogram) +
              " bucket quantile p99 over the window",
          false, {e.total.p99->value * 1000});
    }
  }
}

void GpuMetrics(const ProfileRunResult& r, std::vector<Metric>* out) {
  if (!r.gpu) return;
  const Json j = gpu::GpuReportJson(*r.gpu);
  const Json& util = j.Get("gpu_utilization_avg");
  if (!util.is_number()) return;
  Add(out, "gpu/utilization", "gpu", "share", j.Get("gpu_utilization_avg_counter").AsString(), true,
      {util.AsDouble()});
}

// ---- checklist rows ----

ChecklistRow Row(const char* id, const char* item, const char* goal) {
  ChecklistRow row;
  row.id = id;
  row.item = item;
  row.goal = goal;
  row.verdict = regression::kNotMeasurable;
  return row;
}

ChecklistRow NotMeasurable(ChecklistRow row, const std::string& why) {
  row.verdict = regression::kNotMeasurable;
  row.value.clear();
  row.reason = why;
  return row;
}

// Why a row has nothing: the run ended before that part (and the run's first error), or the
// part was switched off.
std::string EndedEarly(const ProfileRunResult& r) {
  return "the run ended before recording" + (r.errors.empty() ? "" : ": " + r.errors.front());
}

const std::string* PreflightLine(const ProfileRunResult& r, const std::string& prefix) {
  for (const std::string& l : r.report.preflight) {
    if (l.rfind(prefix, 0) == 0) return &l;
  }
  return nullptr;
}

ChecklistRow ToolsRow(const ProfileRunResult& r) {
  ChecklistRow row = Row("0.1", "Profiling tools verified",
                         "perf events open, the GPU library loads (or its absence is reported)");
  row.counter = "perf_event_open(cpu-clock) on a service; dlopen(libnvidia-ml.so.1)";
  const std::string* perf = PreflightLine(r, "perf events");
  if (perf == nullptr) {
    if (r.outcome == ProfileOutcome::kPreflightFailed && !r.errors.empty() &&
        r.errors.front().find("perf") != std::string::npos) {
      row.verdict = regression::kNotMet;
      row.value = r.errors.front();
      return row;
    }
    return NotMeasurable(row, EndedEarly(r));
  }
  row.value = *perf;
  if (const std::string* gpu = PreflightLine(r, "NVML")) row.value += "; " + *gpu;
  row.verdict = regression::kMet;
  return row;
}

ChecklistRow LoadRow(const ProfileRunResult& r) {
  ChecklistRow row = Row("0.2", "System under load", "10 cameras at 30 FPS each");
  row.counter = "loadgen's log: the latest 'camera=camNN FPS: X' line per camera (preflight)";
  const std::string* line = PreflightLine(r, "loadgen");
  if (line == nullptr) {
    for (const std::string& e : r.errors) {
      if (e.find("loadgen") == std::string::npos) continue;
      row.verdict = regression::kNotMet;
      row.value = e;
      return row;
    }
    return NotMeasurable(row, EndedEarly(r));
  }
  if (line->find("not part of this system") != std::string::npos) {
    return NotMeasurable(row, *line);
  }
  const int64_t cameras = r.config.Get("cameras").AsInt(0);
  const double fps = r.config.Get("fps").AsDouble(0);
  row.value = *line;
  const bool met = cameras >= 10 && fps >= 30;
  row.verdict = met ? regression::kMet : regression::kNotMet;
  if (!met) {
    row.reason = "the system runs " + std::to_string(cameras) + " cameras at " + Fixed(fps, 0) +
                 " FPS, below the goal's 10 at 30";
  }
  return row;
}

// The first output that could not be written whose path contains `what`; "" when none.
std::string FirstWriteError(const ProfileRunResult& r, const std::string& what) {
  for (const std::string& e : r.report.write_errors) {
    if (e.find(what) != std::string::npos) return e;
  }
  return "";
}

ChecklistRow CpuProfilesRow(const ProfileRunResult& r) {
  ChecklistRow row = Row("1.1", "A CPU profile for every service", "cpu/<service>_profile.prof");
  row.counter = "cpu-clock samples (perf_event_open) per service";
  if (r.report.services.empty()) return NotMeasurable(row, EndedEarly(r));
  int with = 0;
  std::string idle;
  for (const ServiceCpu& s : r.report.services) {
    if (!s.prof_file.empty()) ++with;
    if (s.samples == 0 && s.problem.empty()) idle += (idle.empty() ? "" : ", ") + s.name;
  }
  row.value = std::to_string(with) + " of " + std::to_string(r.report.services.size()) +
              " services" + (idle.empty() ? "" : " (no samples, idle: " + idle + ")");
  const std::string unwritten = FirstWriteError(r, "_profile.prof");
  const bool met = r.coverage_failures == 0 && unwritten.empty();
  row.verdict = met ? regression::kMet : regression::kNotMet;
  if (!met) {
    row.reason = r.coverage_failures > 0
                     ? std::to_string(r.coverage_failures) + " service(s) not fully recorded"
                     : unwritten;
  }
  return row;
}

ChecklistRow MemoryRow(const ProfileRunResult& r) {
  ChecklistRow row =
      Row("1.2", "Memory leaks", "RSS growth under 10 MB/h per service (the document: 24 h run)");
  row.counter = kSlopeCounter;
  if (r.memory.services.empty()) return NotMeasurable(row, EndedEarly(r));
  const ServiceMemory* worst = nullptr;
  std::string undecided;
  bool not_met = false, all_met = true;
  for (const ServiceMemory& m : r.memory.services) {
    const LeakRate& rate = m.rate;
    not_met |= rate.verdict == LeakVerdict::kNotMet;
    all_met &= rate.verdict == LeakVerdict::kMet;
    if (rate.verdict != LeakVerdict::kMet && rate.verdict != LeakVerdict::kNotMet) {
      undecided += (undecided.empty() ? "" : "; ") + m.name + " " + VerdictText(rate);
    }
    if (rate.verdict == LeakVerdict::kNotMeasurable || !std::isfinite(rate.slope_mb_per_h))
      continue;
    if (worst == nullptr || rate.slope_mb_per_h > worst->rate.slope_mb_per_h) worst = &m;
  }
  if (worst != nullptr) row.value = "largest " + SlopeText(worst->rate) + " (" + worst->name + ")";
  if (not_met || all_met) {
    row.verdict = not_met ? regression::kNotMet : regression::kMet;
    row.reason = undecided;
    return row;
  }
  return NotMeasurable(
      row, "undecided over this run's " + Fixed(r.report.duration_s, 0) + " s: " + undecided);
}

ChecklistRow FlameRow(const ProfileRunResult& r) {
  ChecklistRow row = Row("1.3", "Interactive flame graphs", "flamegraphs/<service>_flame.html");
  row.counter = "cpu-clock samples per service, rendered as HTML with inline SVG";
  if (r.report.services.empty()) return NotMeasurable(row, EndedEarly(r));
  int with = 0, sampled = 0;
  for (const ServiceCpu& s : r.report.services) {
    sampled += s.samples > 0 ? 1 : 0;
    with += s.flame_file.empty() ? 0 : 1;
  }
  const std::string unwritten = FirstWriteError(r, "_flame.html");
  const bool write_failed = !unwritten.empty();
  row.value = std::to_string(with) + " flame graphs for " + std::to_string(sampled) +
              " services with samples";
  const bool met = with == sampled && sampled > 0 && !write_failed;
  row.verdict = met ? regression::kMet : regression::kNotMet;
  if (!met) row.reason = write_failed ? unwritten : "none recorded";
  return row;
}

ChecklistRow GpuRow(const ProfileRunResult& r) {
  ChecklistRow row = Row("2.1", "GPU utilisation",
                         "gpu_utilization_avg > 0.4 (and memory "
                         "bandwidth efficiency > 0.7)");
  row.counter = "NVML utilization.gpu, sampled over the recording (gpu/nsight_report.json)";
  if (!r.gpu) {
    return NotMeasurable(row, r.report.services.empty()
                                  ? EndedEarly(r)
                                  : "GPU telemetry was off (--gpu-interval 0)");
  }
  const Json j = gpu::GpuReportJson(*r.gpu);
  const Json& util = j.Get("gpu_utilization_avg");
  if (!util.is_number()) {
    const std::string why = j.Get("gpu_utilization_avg_reason").AsString();
    return NotMeasurable(row, why.empty() ? j.Get("unavailable_reason").AsString() : why);
  }
  row.counter = j.Get("gpu_utilization_avg_counter").AsString();
  row.value = "utilisation " + Fixed(util.AsDouble() * 100, 1) + "%";
  row.verdict = j.Get("verdicts").Get("gpu_utilization_avg").AsString();
  // The second goal: met only when both are; a bandwidth figure that cannot be read is named.
  const Json& bw = j.Get("memory_bandwidth_efficiency");
  if (bw.is_number()) {
    row.counter += "; " + j.Get("memory_bandwidth_efficiency_counter").AsString();
    row.value += ", memory bandwidth efficiency " + Fixed(bw.AsDouble() * 100, 1) + "%";
    if (j.Get("verdicts").Get("memory_bandwidth_efficiency").AsString() == regression::kNotMet) {
      row.verdict = regression::kNotMet;
    }
  } else {
    row.reason = "memory bandwidth efficiency not measurable: " +
                 j.Get("memory_bandwidth_efficiency_reason").AsString();
  }
  return row;
}

ChecklistRow ModelRow(const ProfileRunResult& r) {
  ChecklistRow row = Row("2.2", "Model inference profile", "more than 20 layers, under 50 ms");
  row.counter = "cv::dnn::Net::getPerfProfile per layer (models/yolo_profile.json)";
  if (r.model.name.empty()) {
    return NotMeasurable(
        row, r.report.services.empty() ? EndedEarly(r) : "the model was not profiled (--no-model)");
  }
  if (!r.model.ok()) return NotMeasurable(row, r.model.profile.Get("error").AsString());
  const Json& c = r.model.profile.Get("checklist");
  row.value = c.Get("reason").AsString();
  row.verdict = c.Get("verdict").AsString();
  return row;
}

ChecklistRow BatchRow(const ProfileRunResult& r) {
  ChecklistRow row =
      Row("2.3", "Batch analysis", "best batch size in 4..32, throughput gain over batch 1 > 2.0");
  row.counter = "batch sweep: images/s and p99 per batch size, detection paused";
  if (!r.batch_error.empty()) return NotMeasurable(row, r.batch_error);
  if (!r.batch) {
    return NotMeasurable(row, r.report.services.empty()
                                  ? EndedEarly(r)
                                  : "the batch sweep did not run (--no-batch-sweep)");
  }
  const model::BatchChoice& c = r.batch->choice;
  if (c.verdict == "not measurable") return NotMeasurable(row, c.reason);
  row.value = c.reason;
  row.verdict = c.verdict;
  return row;
}

// 3.1 .. 3.3: the analyser's own checklist object ({verdict, reason}).
ChecklistRow IoRow(ChecklistRow row, const ProfileRunResult& r, const Json IoResults::*analysis,
                   const char* counter) {
  row.counter = counter;  // The value names the exact series; this is its source.
  if (!r.io) {
    return NotMeasurable(
        row, r.report.services.empty() ? EndedEarly(r) : "the I/O analysis was off (--no-io)");
  }
  if (!r.io->error.empty()) return NotMeasurable(row, r.io->error);
  const Json& c = ((*r.io).*analysis).Get("checklist");
  const std::string verdict = c.Get("verdict").AsString();
  if (verdict != regression::kMet && verdict != regression::kNotMet) {
    return NotMeasurable(row, c.Get("reason").AsString());
  }
  row.value = c.Get("reason").AsString();
  row.verdict = verdict;
  return row;
}

ChecklistRow AutomationRow(ChecklistRow row, const AutomationFacts& a, bool is_41) {
  row.counter = "framescope schedule: the installed timer or crontab entry, the last compare";
  if (!a.known) return NotMeasurable(row, a.reason.empty() ? "no schedule information" : a.reason);
  if (is_41) {
    row.value = a.schedule_entry.empty() ? "no schedule installed" : a.schedule_entry;
    row.verdict = a.schedule_entry.empty() ? regression::kNotMet : regression::kMet;
    return row;
  }
  if (a.baseline_label.empty()) {
    row.value = "no baseline pinned";
    row.verdict = regression::kNotMet;
    return row;
  }
  row.value = "baseline " + a.baseline_label +
              (a.last_verdict.empty() ? ", not compared yet" : ", last verdict: " + a.last_verdict);
  row.verdict = regression::kMet;
  return row;
}

// ---- findings ----

void CpuFindings(const ProfileRunResult& r, std::vector<Finding>* out) {
  std::vector<Finding> services, functions;
  const double secs = r.report.duration_s;
  for (const ServiceCpu& s : r.report.services) {
    if (s.proc_cpu_s > 0 && secs > 0) {
      services.push_back({"CPU (service)", s.name, s.proc_cpu_s / secs, "cores",
                          "/proc utime+stime over the recording"});
    }
    for (const FunctionCost& f : s.top_self) {
      if (f.self_ns <= 0 || secs <= 0) continue;
      functions.push_back({"CPU (function, self)", s.name + ": " + f.name,
                           static_cast<double>(f.self_ns) / 1e9 / secs, "cores",
                           "cpu-clock samples (self time)"});
    }
  }
  for (std::vector<Finding>* v : {&services, &functions}) {
    std::sort(v->begin(), v->end(),
              [](const Finding& a, const Finding& b) { return a.value > b.value; });
    if (v->size() > 3) v->resize(3);
    out->insert(out->end(), v->begin(), v->end());
  }
}

// The largest of `metrics` whose name matches `prefix` and `suffix`, as a finding.
void LargestMetric(const std::vector<Metric>& metrics, const std::string& prefix,
                   const std::string& suffix, const char* kind, std::vector<Finding>* out) {
  const Metric* best = nullptr;
  for (const Metric& m : metrics) {
    if (m.name.rfind(prefix, 0) != 0 || m.name.size() < prefix.size() + suffix.size() ||
        m.name.compare(m.name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    if (best == nullptr || m.values.front() > best->values.front()) best = &m;
  }
  if (best == nullptr) return;
  const std::string what =
      best->name.substr(prefix.size(), best->name.size() - prefix.size() - suffix.size());
  out->push_back({kind, what, best->values.front(), best->unit, best->counter});
}

}  // namespace

std::vector<double> WindowMeans(const std::vector<double>& bounds,
                                const std::vector<TimedValue>& readings) {
  std::vector<double> out;
  for (size_t k = 1; k < bounds.size(); ++k) {
    double sum = 0;
    int n = 0;
    for (const TimedValue& r : readings) {
      if (r.at_s < bounds[k - 1] || r.at_s >= bounds[k]) continue;
      sum += r.value;
      ++n;
    }
    if (n > 0) out.push_back(sum / n);
  }
  return out;
}

std::vector<TimedValue> LoadgenFpsReports(const std::string& log, double since_s) {
  std::vector<TimedValue> out;
  for (size_t pos = 0; pos < log.size();) {
    size_t eol = log.find('\n', pos);
    if (eol == std::string::npos) eol = log.size();
    for (const auto& [camera, f] : ParseLoadgenFps(log.substr(pos, eol - pos), since_s)) {
      out.push_back({f.at_s, f.fps});
    }
    pos = eol + 1;
  }
  return out;
}

std::vector<Metric> RunMetrics(const ProfileRunResult& r) {
  std::vector<Metric> out;
  ServiceMetrics(r, &out);
  ModelMetrics(r, &out);
  IoMetrics(r, &out);
  GpuMetrics(r, &out);
  return out;
}

std::vector<ChecklistRow> BuildChecklist(const ProfileRunResult& r, const ProfileRunOptions& o) {
  return {
      ToolsRow(r),
      LoadRow(r),
      CpuProfilesRow(r),
      MemoryRow(r),
      FlameRow(r),
      GpuRow(r),
      ModelRow(r),
      BatchRow(r),
      IoRow(Row("3.1", "PostgreSQL statements", "no statement with a mean over 100 ms"), r,
            &IoResults::db_json,
            "pg_stat_statements over the recording window (io/db_analysis.json)"),
      IoRow(Row("3.2", "Redis pipelining", "pipeline efficiency over 80 %"), r,
            &IoResults::redis_json,
            "the clients' framescope_redis_* counters; Redis INFO stats (io/redis_analysis.json)"),
      IoRow(Row("3.3", "Network latency map", "service-to-service p99 under 5 ms"), r,
            &IoResults::net_json,
            "Prometheus histograms, bucket counts over the window (io/network_map.json)"),
      AutomationRow(Row("4.1", "Continuous profiling", "a run every 6 h into profiles/automated/"),
                    o.automation, true),
      AutomationRow(Row("4.2", "Regression detection",
                        "baseline vs current revision, alert on > 10 % regression"),
                    o.automation, false)};
}

std::vector<Finding> LargestFindings(const ProfileRunResult& r) {
  std::vector<Finding> out;
  CpuFindings(r, &out);
  const std::vector<Metric> metrics = RunMetrics(r);
  LargestMetric(metrics, "", "/rss_slope_mb_per_h", "memory growth", &out);
  LargestMetric(metrics, "model/layer/", "_ms", "slowest model layer", &out);
  LargestMetric(metrics, "edge/", "/p99_ms", "worst edge p99", &out);
  if (r.io && r.io->db && r.io->db->window_measured) {
    const auto& st = r.io->db->window.statements;
    const auto slowest = std::max_element(
        st.begin(), st.end(), [](const auto& a, const auto& b) { return a.mean_ms < b.mean_ms; });
    if (slowest != st.end()) {
      std::string query = slowest->query.substr(0, 80);
      std::replace(query.begin(), query.end(), '\n', ' ');
      out.push_back({"slowest statement",
                     query + " (queryid " + std::to_string(slowest->key.queryid) + ")",
                     slowest->mean_ms, "ms", kStatementCounter});
    }
  }
  return out;
}

Json RedactSecrets(const Json& config) {
  if (config.is_string()) return RedactUrl(config.AsString());
  if (config.is_array()) {
    Json out = Json::MakeArray();
    for (const Json& v : config.AsArray()) out.Push(RedactSecrets(v));
    return out;
  }
  if (!config.is_object()) return config;
  Json out = Json::MakeObject();
  for (const auto& [key, v] : config.AsObject()) {
    const bool secret = key.find("password") != std::string::npos ||
                        key.find("secret") != std::string::npos ||
                        key.find("token") != std::string::npos;
    out[key] = secret && !v.is_null() ? Json("***") : RedactSecrets(v);
  }
  return out;
}

regression::RunManifest BuildRunManifest(const ProfileRunResult& r, const ProfileRunOptions& o) {
  regression::RunManifest m;
  m.status = ProfileStatus(r.outcome);
  for (const std::string& e : r.errors) m.error += (m.error.empty() ? "" : "; ") + e;
  m.exit_code = ProfileExitCode(r.outcome);
  m.started_at = r.started_at;
  m.finished_at = r.finished_at;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) m.host = host;
  m.duration_s = r.report.duration_s;
  m.repeat = r.windows.windows() > 0 ? r.windows.windows() : o.repeat;
  m.revision = FramescopeRevision();
  m.label = o.label.empty() ? m.revision : o.label;
  m.framescope_version = FramescopeVersion();
  if (!r.config.is_null()) {
    m.config = RedactSecrets(r.config);
    m.config_hash = regression::JsonHash(m.config);
  }
  if (!r.report.services.empty()) m.report = "index.html";
  m.metrics = RunMetrics(r);
  for (const ServiceCpu& s : r.report.services) {
    if (!s.prof_file.empty()) m.profiles[s.name] = s.prof_file;
  }
  m.checklist = r.checklist.empty() ? BuildChecklist(r, o) : r.checklist;
  return m;
}

}  // namespace fs::profile
