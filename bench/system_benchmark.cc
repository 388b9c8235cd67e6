// System benchmark (`make bench`): brings the reference system up at N cameras × F FPS,
// measures each service over a window, and compares detection's pipeline FPS with raw
// OpenCV DNN forward() FPS on the same model, measured in the same run under the same load
// (detection is paused with SIGSTOP while the raw model runs, so both see capture + loadgen
// competing for the same cores). Prints a table and, with --json-out, writes JSON.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "bench/bench_util.h"
#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/clients/prom_text.h"

namespace fs {
namespace {

using bench::CpuSeconds;
using bench::Fmt;
using bench::MetricDelta;
using bench::RunCommand;

struct Snapshot {
  int64_t t_ns = 0;
  std::map<std::string, double> cpu_s;   // service -> utime+stime seconds
  std::map<std::string, double> rss_mb;  // service -> VmRSS
  std::map<std::string, std::vector<PromSample>> metrics;
};

// Direct children of `pid` (from /proc/*/stat).
std::vector<int> Children(int pid) {
  std::vector<int> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string n = e.path().filename();
    if (n.empty() || !isdigit(static_cast<unsigned char>(n[0]))) continue;
    auto stat = ReadFile("/proc/" + n + "/stat");
    if (!stat.ok()) continue;
    auto paren = stat->rfind(')');
    if (paren == std::string::npos || paren + 4 >= stat->size()) continue;
    if (atoi(stat->c_str() + paren + 4) == pid) out.push_back(atoi(n.c_str()));
  }
  return out;
}

// CPU of a process tree (PostgreSQL: the postmaster and its backends): the live processes'
// utime+stime plus the reaped children's cutime+cstime, which the kernel folds into the
// parent when it waits for them.
double TreeCpuSeconds(int pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return NAN;
  const char* p = stat->c_str() + stat->rfind(')') + 2;
  double reaped = 0;
  for (int field = 3; field <= 17 && *p; ++field) {
    if (field == 16 || field == 17) reaped += strtod(p, nullptr);
    p = strchr(p, ' ');
    if (!p) break;
    ++p;
  }
  double total = CpuSeconds(pid) + reaped / static_cast<double>(sysconf(_SC_CLK_TCK));
  for (int c : Children(pid)) {
    double cpu = CpuSeconds(c);
    if (!std::isnan(cpu)) total += cpu;
  }
  return total;
}

// Proportional set size of a process tree: shared memory (PostgreSQL's shared buffers) is
// divided among the processes mapping it instead of being counted once per backend.
double TreePssMb(int pid) {
  double kb = 0;
  std::vector<int> pids = Children(pid);
  pids.push_back(pid);
  for (int p : pids) {
    auto rollup = ReadFile("/proc/" + std::to_string(p) + "/smaps_rollup");
    if (!rollup.ok()) continue;
    auto pos = rollup->find("\nPss:");
    if (pos != std::string::npos) kb += strtod(rollup->c_str() + pos + 5, nullptr);
  }
  return kb / 1024.0;
}

double RssMb(int pid) {
  auto status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  if (!status.ok()) return NAN;
  auto pos = status->find("VmRSS:");
  return pos == std::string::npos ? NAN : strtod(status->c_str() + pos + 6, nullptr) / 1024.0;
}

Snapshot Take(const Json& state) {
  Snapshot s;
  s.t_ns = MonotonicNs();
  for (const auto& svc : state.Get("services").AsArray()) {
    std::string name = svc.Get("name").AsString();
    int pid = static_cast<int>(svc.Get("pid").AsInt());
    bool tree = name == "postgres";  // the work happens in the backends
    s.cpu_s[name] = tree ? TreeCpuSeconds(pid) : CpuSeconds(pid);
    s.rss_mb[name] = tree ? TreePssMb(pid) : RssMb(pid);
    int port = static_cast<int>(svc.Get("metrics_port").AsInt());
    if (port > 0) {
      auto r = HttpGet("127.0.0.1", port, "/metrics", 3000);
      if (r.ok()) {
        auto parsed = ParsePromText(r->body);
        if (parsed.ok()) s.metrics[name] = *parsed;
      }
    }
  }
  return s;
}

// b - a for every sample present in both (counters and histogram buckets).
}  // namespace

int SystemBenchmarkMain(int argc, char** argv) {
  int cameras = 10, seconds = 60, warmup = 15, raw_seconds = 15, max_batch = 4, rounds = 3,
      pair_seconds = 20;
  double fps = 30;
  std::string resolution = "640x360", json_out, state_dir = "/tmp/framescope-bench";
  FlagSet flags("system_benchmark", "Measures the reference system under the standard load.");
  flags.Int("cameras", &cameras, "cameras");
  flags.Double("fps", &fps, "FPS per camera");
  flags.String("resolution", &resolution, "WxH");
  flags.Int("seconds", &seconds, "measurement window");
  flags.Int("warmup", &warmup, "seconds to let the system settle before measuring");
  flags.Int("raw-seconds", &raw_seconds, "seconds of raw forward() per pair");
  flags.Int("pair-seconds", &pair_seconds, "seconds of pipeline measurement per pair");
  flags.Int("pairs", &rounds, "interleaved pipeline/raw pairs");
  flags.Int("max-batch", &max_batch, "detection max batch (raw forward uses the same batch)");
  flags.String("state-dir", &state_dir, "state dir for the benchmarked system");
  flags.String("json-out", &json_out, "also write results here");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;

  std::string bin = SelfExeDir();
  std::string fsbin = bin + "/framescope";
  RunCommand(fsbin + " down --state-dir " + state_dir, &code);
  printf("bringing up %d cameras x %.0f FPS x %s ...\n", cameras, fps, resolution.c_str());
  fflush(stdout);
  auto state = bench::BringUpSystem(fsbin, state_dir, cameras, fps, resolution, max_batch);
  if (!state.ok()) {
    fprintf(stderr, "%s\n", state.status().message().c_str());
    return 1;
  }
  printf("warming up %d s, then measuring %d s ...\n", warmup, seconds);
  fflush(stdout);
  sleep(static_cast<unsigned>(warmup));
  Snapshot a = Take(*state);
  for (int i = 0; i < seconds; i += 10) {
    sleep(static_cast<unsigned>(std::min(10, seconds - i)));
    printf("  %d/%d s\n", std::min(i + 10, seconds), seconds);
    fflush(stdout);
  }
  Snapshot b = Take(*state);
  double dt = static_cast<double>(b.t_ns - a.t_ns) / 1e9;

  Json result = Json::MakeObject();
  result["cameras"] = cameras;
  result["fps"] = fps;
  result["resolution"] = resolution;
  result["window_s"] = dt;
  Json services = Json::MakeObject();
  for (const auto& [name, cpu] : b.cpu_s) {
    Json o = Json::MakeObject();
    o["cpu_percent_of_one_core"] = (cpu - a.cpu_s[name]) / dt * 100.0;
    o["rss_mb"] = b.rss_mb[name];
    services[name] = o;
  }
  auto lg = MetricDelta(a.metrics["loadgen"], b.metrics["loadgen"]);
  auto cap = MetricDelta(a.metrics["capture"], b.metrics["capture"]);
  auto det = MetricDelta(a.metrics["detection"], b.metrics["detection"]);
  double sent = SumSamples(lg, "framescope_frames_out_total");
  double decoded = SumSamples(cap, "framescope_frames_in_total");
  double det_frames = SumSamples(det, "framescope_frames_out_total");
  result["loadgen_delivered_fps"] = sent / dt;
  result["capture_decoded_fps"] = decoded / dt;
  result["capture_drop_ratio"] = sent > 0 ? std::max(0.0, 1.0 - decoded / sent) : NAN;
  result["detection_fps"] = det_frames / dt;
  result["detection_skipped_ratio"] =
      decoded > 0 ? SumSamples(det, "framescope_frames_dropped_total") / decoded : NAN;
  result["latency_capture_to_published_p50_ms"] =
      HistogramQuantile(det, "framescope_end_to_end_latency_seconds", 0.5) * 1000;
  result["latency_capture_to_published_p99_ms"] =
      HistogramQuantile(det, "framescope_end_to_end_latency_seconds", 0.99) * 1000;
  // The storage half over the same window.
  auto agg = MetricDelta(a.metrics["aggregation"], b.metrics["aggregation"]);
  auto api = MetricDelta(a.metrics["api"], b.metrics["api"]);
  auto cli = MetricDelta(a.metrics["apiclient"], b.metrics["apiclient"]);
  result["aggregation_rows_per_s"] =
      SumSamples(agg, "framescope_aggregation_rows_inserted_total") / dt;
  result["aggregation_write_failures"] =
      SumSamples(agg, "framescope_aggregation_write_failures_total");
  result["latency_capture_to_stored_p50_ms"] =
      HistogramQuantile(agg, "framescope_end_to_end_latency_seconds", 0.5) * 1000;
  result["latency_capture_to_stored_p99_ms"] =
      HistogramQuantile(agg, "framescope_end_to_end_latency_seconds", 0.99) * 1000;
  result["api_requests_per_s"] = SumSamples(api, "http_responses_total") / dt;
  result["api_server_p50_ms"] = HistogramQuantile(api, "http_request_duration_seconds", 0.5) * 1000;
  result["api_server_p99_ms"] =
      HistogramQuantile(api, "http_request_duration_seconds", 0.99) * 1000;
  double client_total = SumSamples(cli, "framescope_apiclient_responses_total");
  result["apiclient_non_200"] =
      client_total - SumSamples(cli, "framescope_apiclient_responses_total", {{"code", "200"}});
  // Where a batch's time goes inside detection (means over the window).
  Json stages = Json::MakeObject();
  for (const char* stage : {"queue_wait", "preprocess", "inference", "postprocess", "publish"}) {
    std::map<std::string, std::string> m{{"service", "detection"}, {"stage", stage}};
    double n = SumSamples(det, "framescope_stage_latency_seconds_count", m);
    stages[stage] =
        n > 0 ? SumSamples(det, "framescope_stage_latency_seconds_sum", m) / n * 1000 : NAN;
  }
  result["detection_stage_mean_ms"] = stages;
  double batches = SumSamples(det, "framescope_batch_size_count");
  result["mean_batch_size"] =
      batches > 0 ? SumSamples(det, "framescope_batch_size_sum") / batches : NAN;

  // Pipeline vs raw model under the same load. The two are measured in alternating windows
  // (pipeline for --pair-seconds, then detection paused with SIGSTOP while modelbench runs
  // forward() on the same model and batch for --raw-seconds), so slow drifts in what else the
  // shared cores are doing hit both sides of each pair. Reported: the median of the per-pair
  // ratios and their range.
  int det_pid = 0;
  for (const auto& svc : state->Get("services").AsArray()) {
    if (svc.Get("name").AsString() == "detection")
      det_pid = static_cast<int>(svc.Get("pid").AsInt());
  }
  std::string model = state->Get("config").Get("model").AsString();
  std::string cache = state_dir + "/cache";
  Json pairs = Json::MakeArray();
  std::vector<double> ratios;
  for (int round = 1; round <= rounds; ++round) {
    Snapshot p0 = Take(*state);
    sleep(static_cast<unsigned>(pair_seconds));
    Snapshot p1 = Take(*state);
    double pipe_fps = SumSamples(MetricDelta(p0.metrics["detection"], p1.metrics["detection"]),
                                 "framescope_frames_out_total") /
                      (static_cast<double>(p1.t_ns - p0.t_ns) / 1e9);
    kill(det_pid, SIGSTOP);
    std::string raw =
        RunCommand("(" + bin + "/framescope-modelbench --json --model " + model + " --cache-dir " +
                       cache + " --batch " + std::to_string(max_batch) + " --seconds " +
                       std::to_string(raw_seconds) + " 2>/dev/null)",
                   &code);
    kill(det_pid, SIGCONT);
    auto raw_json = Json::Parse(raw.substr(raw.find('{') == std::string::npos ? 0 : raw.find('{')));
    double raw_fps = raw_json.ok() ? raw_json->Get("images_per_s_sustained").AsDouble(NAN) : NAN;
    if (!raw_json.ok()) fprintf(stderr, "modelbench output not understood:\n%s\n", raw.c_str());
    Json pair = Json::MakeObject();
    pair["pipeline_fps"] = pipe_fps;
    pair["raw_forward_fps"] = raw_fps;
    pair["ratio"] = pipe_fps / raw_fps;
    pairs.Push(pair);
    if (std::isfinite(pipe_fps / raw_fps)) ratios.push_back(pipe_fps / raw_fps);
    printf("  pair %d/%d: pipeline %.2f FPS, raw forward() %.2f FPS, ratio %.3f\n", round, rounds,
           pipe_fps, raw_fps, pipe_fps / raw_fps);
    fflush(stdout);
    sleep(3);  // let detection catch up before the next pipeline window
  }
  std::sort(ratios.begin(), ratios.end());
  double median_ratio = ratios.empty() ? NAN : ratios[ratios.size() / 2];
  result["pipeline_vs_raw_pairs"] = pairs;
  result["detection_vs_raw_ratio_median"] = median_ratio;
  result["detection_vs_raw_ratio_min"] = ratios.empty() ? NAN : ratios.front();
  result["detection_vs_raw_ratio_max"] = ratios.empty() ? NAN : ratios.back();
  result["services"] = services;
  RunCommand(fsbin + " down --state-dir " + state_dir, &code);

  printf("\n== reference system: %d cameras x %.0f FPS x %s, %.0f s window ==\n", cameras, fps,
         resolution.c_str(), dt);
  printf("%-12s %14s %10s\n", "service", "CPU % (1 core)", "RSS MB");
  for (const auto& [name, o] : services.AsObject()) {
    printf("%-12s %14.1f %10.1f%s\n", name.c_str(), o.Get("cpu_percent_of_one_core").AsDouble(),
           o.Get("rss_mb").AsDouble(),
           name == "postgres" ? "  (postmaster + backends; memory is PSS, not RSS)" : "");
  }
  printf("loadgen delivered        %8.1f FPS (all cameras)\n",
         result.Get("loadgen_delivered_fps").AsDouble());
  printf("capture decoded          %8.1f FPS, drop ratio %.4f\n",
         result.Get("capture_decoded_fps").AsDouble(), result.Get("capture_drop_ratio").AsDouble());
  printf("detection                %8.1f FPS (mean batch %.2f, skipped newest-first %.3f)\n",
         result.Get("detection_fps").AsDouble(), result.Get("mean_batch_size").AsDouble(),
         result.Get("detection_skipped_ratio").AsDouble());
  printf("detection stage means    ");
  for (const auto& [stage, ms] : stages.AsObject())
    printf("%s %.1f ms  ", stage.c_str(), ms.AsDouble());
  printf("\n");
  printf(
      "pipeline / raw forward() median %.3f over %zu interleaved pairs (range %.3f-%.3f; target >= "
      "0.95)\n",
      median_ratio, ratios.size(), result.Get("detection_vs_raw_ratio_min").AsDouble(),
      result.Get("detection_vs_raw_ratio_max").AsDouble());
  printf("capture->published       p50 %.1f ms, p99 %.1f ms\n",
         result.Get("latency_capture_to_published_p50_ms").AsDouble(),
         result.Get("latency_capture_to_published_p99_ms").AsDouble());
  printf("aggregation              %8.1f rows/s stored, %.0f failed batches\n",
         result.Get("aggregation_rows_per_s").AsDouble(),
         result.Get("aggregation_write_failures").AsDouble());
  printf("capture->stored          p50 %.1f ms, p99 %.1f ms\n",
         result.Get("latency_capture_to_stored_p50_ms").AsDouble(),
         result.Get("latency_capture_to_stored_p99_ms").AsDouble());
  printf("api (apiclient load)     %8.1f req/s, server p50 %.2f ms p99 %.2f ms, %.0f non-200\n",
         result.Get("api_requests_per_s").AsDouble(), result.Get("api_server_p50_ms").AsDouble(),
         result.Get("api_server_p99_ms").AsDouble(), result.Get("apiclient_non_200").AsDouble());
  if (!json_out.empty()) {
    if (auto st = WriteFileAtomic(json_out, result.Dump(2) + "\n"); !st.ok()) {
      fprintf(stderr, "%s\n", st.message().c_str());
    }
  }
  return 0;
}

}  // namespace fs

int main(int argc, char** argv) { return fs::SystemBenchmarkMain(argc, argv); }
