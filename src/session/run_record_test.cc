#include "src/session/run_record.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "src/collect/preflight.h"

namespace fs::profile {
namespace {

using regression::ChecklistRow;
using regression::RunManifest;

Json ModelProfile() {
  Json p = Json::MakeObject();
  p["total_inference_time_ms"] = 41.5;
  p["total_counter"] = "getPerfProfile sum";
  Json layers = Json::MakeArray();
  for (auto [name, ms, fused] : {std::tuple{"conv_0", 3.5, false}, std::tuple{"bn_0", 0.0, true},
                                 std::tuple{"conv_2", 9.25, false}}) {
    Json l = Json::MakeObject();
    l["name"] = name;
    l["median_ms"] = ms;
    l["fused"] = fused;
    layers.Push(l);
  }
  p["layer_timings"] = layers;
  Json c = Json::MakeObject();
  c["verdict"] = "not met";
  c["reason"] = "13 timed layers; 41.5 ms per image";
  p["checklist"] = c;
  return p;
}

Json Checklist(const char* verdict, const char* reason) {
  Json j = Json::MakeObject();
  Json c = Json::MakeObject();
  c["verdict"] = verdict;
  c["reason"] = reason;
  j["checklist"] = c;
  return j;
}

// A run that measured: two services over three windows, a model, the I/O analysers.
ProfileRunResult MeasuredRun() {
  ProfileRunResult r;
  r.started_at = "2026-12-02T07:00:00Z";
  r.report.started_at = r.started_at;
  r.report.duration_s = 9;
  r.report.preflight = {"perf events: ok (cpu-clock)", "NVML: absent (libnvidia-ml.so.1)",
                        "loadgen: 2/2 cameras delivering >= 10.0 FPS"};
  r.config = Json::MakeObject();
  r.config["cameras"] = 2;
  r.config["fps"] = 10;
  r.config["postgres_url"] = "postgresql://fs:hunter2@127.0.0.1/db";
  r.windows.bounds_s = {0, 3, 6, 9};
  r.windows.services = {{"capture", {0.25, 0.5, 0.75}, {120, 121, 122}},
                        {"redis", {0.01, 0.02, 0.03}, {}}};
  r.windows.capture_fps = {19.5, 20, 20.5};
  ServiceCpu capture;
  capture.name = "capture";
  capture.samples = 100;
  capture.proc_cpu_s = 4.5;
  capture.prof_file = "cpu/capture_profile.prof";
  capture.flame_file = "flamegraphs/capture_flame.html";
  capture.top_self = {{"sws_scale", "libswscale", 900'000'000, 90, 0, 0}};
  r.report.services = {capture};
  ServiceMemory leak, flat;
  leak.name = "capture";
  leak.rate.verdict = LeakVerdict::kNotMet;
  leak.rate.slope_mb_per_h = 42;
  flat.name = "redis";
  flat.rate.verdict = LeakVerdict::kNotMeasurable;
  flat.rate.slope_mb_per_h = std::numeric_limits<double>::quiet_NaN();
  flat.rate.reason = "too few points";
  r.memory.services = {leak, flat};
  r.model.name = "yolo";
  r.model.profile = ModelProfile();
  IoResults io;
  io.db.emplace();
  io.db->window_measured = true;
  io::WindowedStatement st;
  st.key.queryid = 77;
  st.mean_ms = 130.5;
  st.query = "SELECT 1";
  io.db->window.statements = {st};
  io.redis.emplace();
  io.redis->clients.total.commands = 100;
  io.redis->clients.total.pipelined = 85;
  io.net.emplace();
  io::NetEdge edge;
  edge.source = "api";
  edge.target = "postgres";
  edge.total.p99 = BucketQuantile{0.0245, 0.01, 0.025};
  io.net->edges = {edge};
  io.db_json = Checklist("not met", "worst statement mean 130.50 ms");
  io.redis_json = Checklist("met", "85 % pipelined");
  io.net_json = Checklist("not measurable", "no histogram could be read");
  r.io = std::move(io);
  return r;
}

const regression::Metric* Find(const RunManifest& m, const std::string& name) {
  return m.Find(name);
}

TEST(RunRecord, MetricsNamedByTheContractWithTheirValues) {
  const RunManifest m = BuildRunManifest(MeasuredRun(), {});
  ASSERT_NE(Find(m, "capture/cpu_cores"), nullptr);
  EXPECT_EQ(Find(m, "capture/cpu_cores")->values, (std::vector<double>{0.25, 0.5, 0.75}));
  EXPECT_EQ(Find(m, "capture/cpu_cores")->group, "capture");
  EXPECT_EQ(Find(m, "capture/rss_mb")->values, (std::vector<double>{120, 121, 122}));
  EXPECT_EQ(Find(m, "capture/rss_slope_mb_per_h")->values, std::vector<double>{42});
  EXPECT_TRUE(Find(m, "capture/fps")->higher_is_better);
  EXPECT_EQ(Find(m, "model/total_ms")->values, std::vector<double>{41.5});
  EXPECT_EQ(Find(m, "model/layer/conv_2_ms")->values, std::vector<double>{9.25});
  const std::string statement =
      "postgres/" + regression::JsonHash(Json(std::string("\nSELECT 1"))) + "/mean_ms";
  ASSERT_NE(Find(m, statement), nullptr) << "statements are named by their text, not queryid";
  EXPECT_EQ(Find(m, statement)->values, std::vector<double>{130.5});
  EXPECT_NE(Find(m, statement)->counter.find("SELECT 1"), std::string::npos);
  EXPECT_DOUBLE_EQ(Find(m, "redis/pipeline_share")->values.at(0), 0.85);
  EXPECT_DOUBLE_EQ(Find(m, "edge/api->postgres/p99_ms")->values.at(0), 24.5);
  EXPECT_EQ(m.profiles.at("capture"), "cpu/capture_profile.prof");
  EXPECT_EQ(m.status, "ok");
  EXPECT_EQ(m.report, "index.html");
  EXPECT_EQ(m.repeat, 3);
  // It is a valid run.json.
  auto back = regression::RunManifestFromJson(regression::RunManifestToJson(m));
  ASSERT_TRUE(back.ok()) << back.status().message();
}

TEST(RunRecord, WhatWasNotMeasuredIsAbsent) {
  const RunManifest m = BuildRunManifest(MeasuredRun(), {});
  EXPECT_EQ(Find(m, "redis/rss_mb"), nullptr);              // No reading in any window.
  EXPECT_EQ(Find(m, "redis/rss_slope_mb_per_h"), nullptr);  // Not measurable: NaN, not 0.
  EXPECT_EQ(Find(m, "model/layer/bn_0_ms"), nullptr);       // Fused: no time of its own.
  EXPECT_EQ(Find(m, "loadgen/fps"), nullptr);
  EXPECT_EQ(Find(m, "gpu/utilization"), nullptr);
  EXPECT_EQ(Find(m, "batch/gain"), nullptr);
  for (const regression::Metric& metric : m.metrics) {
    EXPECT_FALSE(metric.values.empty()) << metric.name;
  }
}

TEST(RunRecord, ConfigSecretsRedactedAndHashed) {
  const RunManifest m = BuildRunManifest(MeasuredRun(), {});
  const std::string config = m.config.Dump();
  EXPECT_EQ(config.find("hunter2"), std::string::npos) << config;
  EXPECT_NE(config.find("127.0.0.1"), std::string::npos) << config;
  EXPECT_EQ(m.config_hash, regression::JsonHash(m.config));
  Json secret = Json::MakeObject();
  secret["redis_password"] = "swordfish";
  EXPECT_EQ(RedactSecrets(secret).Get("redis_password").AsString(), "***");
}

TEST(RunRecord, ChecklistRowsReuseTheSectionsVerdicts) {
  ProfileRunOptions o;
  o.label = "nightly";
  const RunManifest m = BuildRunManifest(MeasuredRun(), o);
  EXPECT_EQ(m.label, "nightly");
  ASSERT_EQ(m.checklist.size(), std::size(kChecklistIds));
  for (size_t i = 0; i < m.checklist.size(); ++i) {
    EXPECT_EQ(m.checklist[i].id, kChecklistIds[i]);
    // Every measured verdict names the counter behind it.
    if (m.checklist[i].verdict != regression::kNotMeasurable) {
      EXPECT_FALSE(m.checklist[i].counter.empty()) << m.checklist[i].id;
    }
  }
  auto row = [&m](const std::string& id) {
    for (const ChecklistRow& r : m.checklist) {
      if (r.id == id) return r;
    }
    return ChecklistRow{};
  };
  EXPECT_EQ(row("0.1").verdict, regression::kMet);
  EXPECT_EQ(row("0.2").verdict, regression::kNotMet);  // 2 cameras at 10 FPS.
  EXPECT_EQ(row("1.2").verdict, regression::kNotMet);  // capture grows 42 MB/h.
  EXPECT_EQ(row("2.1").verdict, regression::kNotMeasurable);
  EXPECT_EQ(row("2.2").verdict, regression::kNotMet);
  EXPECT_EQ(row("2.2").value, "13 timed layers; 41.5 ms per image");
  EXPECT_EQ(row("3.1").verdict, regression::kNotMet);
  EXPECT_EQ(row("3.2").verdict, regression::kMet);
  EXPECT_EQ(row("3.3").verdict, regression::kNotMeasurable);
  EXPECT_EQ(row("3.3").reason, "no histogram could be read");
  EXPECT_EQ(row("4.1").reason, "no schedule information");
  EXPECT_EQ(row("4.2").verdict, regression::kNotMeasurable);
  o.automation = {true, "systemd timer framescope-profile.timer", "v1", "no change", ""};
  const RunManifest scheduled = BuildRunManifest(MeasuredRun(), o);
  EXPECT_EQ(scheduled.checklist[11].verdict, regression::kMet);
  EXPECT_EQ(scheduled.checklist[12].value, "baseline v1, last verdict: no change");
}

// 2.1 has two goals: utilisation and memory bandwidth; met needs both.
TEST(RunRecord, GpuRowNeedsBothGoals) {
  ProfileRunResult r = MeasuredRun();
  gpu::GpuTelemetry t;
  t.interval_s = 1;
  t.duration_s = 3;
  gpu::GpuTimeline g;
  g.name = "Test GPU";
  for (double at : {0.0, 1.0, 2.0}) {
    gpu::GpuSample sample;
    sample.t_s = at;
    sample.utilization_gpu = 60;
    sample.optional[gpu::kDramBwUtil] = 50;
    g.samples.push_back(sample);
  }
  t.gpus = {g};
  r.gpu = t;
  ChecklistRow row = BuildChecklist(r, {})[5];
  ASSERT_EQ(row.id, "2.1");
  EXPECT_EQ(row.verdict, regression::kNotMet) << row.value;  // 50 % bandwidth < 70 %.
  EXPECT_NE(row.value.find("utilisation 60.0%"), std::string::npos) << row.value;
  EXPECT_DOUBLE_EQ(BuildRunManifest(r, {}).Find("gpu/utilization")->values.at(0), 0.6);
  for (gpu::GpuSample& sample : r.gpu->gpus[0].samples) sample.optional.clear();
  row = BuildChecklist(r, {})[5];
  EXPECT_EQ(row.verdict, regression::kMet) << row.value;
  EXPECT_NE(row.reason.find("memory bandwidth efficiency not measurable"), std::string::npos);
}

TEST(RunRecord, WindowMeansKeepEachReadingInItsWindowAndPadNothing) {
  const std::vector<double> bounds = {100, 110, 120, 130};
  // 105 and 109 in the first, 110 (a boundary) in the second, nothing in the third, 130 after.
  const std::vector<TimedValue> readings = {{105, 1}, {109, 3}, {110, 10}, {99, 50}, {130, 70}};
  EXPECT_EQ(WindowMeans(bounds, readings), (std::vector<double>{2, 10}));
  EXPECT_TRUE(WindowMeans({100}, readings).empty());
}

TEST(RunRecord, LoadgenReportsEveryLineNotOnlyTheLatest) {
  const std::string log =
      "2026-12-02T07:00:01.000Z I loadgen: camera=cam00 FPS: 30.0\n"
      "2026-12-02T07:00:01.000Z I loadgen: camera=cam01 FPS: 29.0\n"
      "2026-12-02T07:00:06.000Z I loadgen: camera=cam00 FPS: 28.0\n"
      "2026-12-02T06:59:00.000Z I loadgen: camera=cam00 FPS: 1.0\n"  // Before `since`.
      "garbage\n";
  double since = 0;
  ASSERT_TRUE(ParseLogTimestamp("2026-12-02T07:00:00.000Z", &since));
  const std::vector<TimedValue> r = LoadgenFpsReports(log, since);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[2].value, 28);
  EXPECT_EQ(WindowMeans({since, since + 5, since + 10}, r), (std::vector<double>{29.5, 28}));
}

TEST(RunRecord, FailedAndInterruptedRunsAreHistoryToo) {
  ProfileRunResult r;
  r.outcome = ProfileOutcome::kNoSystem;
  r.errors = {"no running system in /tmp/x (start it with `framescope up`)"};
  RunManifest m = BuildRunManifest(r, {});
  EXPECT_EQ(m.status, "failed");
  EXPECT_EQ(m.exit_code, 1);
  EXPECT_NE(m.error.find("no running system"), std::string::npos);
  EXPECT_TRUE(m.metrics.empty());
  EXPECT_EQ(m.report, "");
  ASSERT_EQ(m.checklist.size(), std::size(kChecklistIds));
  EXPECT_EQ(m.checklist[2].verdict, regression::kNotMeasurable);
  EXPECT_NE(m.checklist[2].reason.find("no running system"), std::string::npos);
  r.outcome = ProfileOutcome::kPreflightFailed;
  r.errors = {"preflight: perf events refused (perf_event_paranoid 4)"};
  m = BuildRunManifest(r, {});
  EXPECT_EQ(m.exit_code, 3);
  EXPECT_EQ(m.checklist[0].verdict, regression::kNotMet);
  r.outcome = ProfileOutcome::kInterrupted;
  m = BuildRunManifest(r, {});
  EXPECT_EQ(m.status, "interrupted");
  EXPECT_EQ(m.exit_code, 130);
}

// A flame graph that could not be written fails 1.3, not 1.1 (the profiles were written).
TEST(RunRecord, WriteFailureCountsAgainstItsOwnItem) {
  ProfileRunResult r = MeasuredRun();
  r.report.write_errors = {"flamegraphs/capture_flame.html: is a directory"};
  const std::vector<ChecklistRow> rows = BuildChecklist(r, {});
  EXPECT_EQ(rows[2].verdict, regression::kMet) << rows[2].reason;
  EXPECT_EQ(rows[4].verdict, regression::kNotMet);
  EXPECT_EQ(rows[4].reason, "flamegraphs/capture_flame.html: is a directory");
}

TEST(RunRecord, LargestFindingsNameTheirNumbers) {
  const std::vector<Finding> f = LargestFindings(MeasuredRun());
  auto has = [&f](const std::string& kind, const std::string& what, double value) {
    for (const Finding& x : f) {
      if (x.kind == kind && x.what == what && std::fabs(x.value - value) < 1e-9) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("CPU (service)", "capture", 0.5));
  EXPECT_TRUE(has("CPU (function, self)", "capture: sws_scale", 0.1));
  EXPECT_TRUE(has("memory growth", "capture", 42));
  EXPECT_TRUE(has("slowest model layer", "conv_2", 9.25));
  EXPECT_TRUE(has("worst edge p99", "api->postgres", 24.5));
  EXPECT_TRUE(has("slowest statement", "SELECT 1 (queryid 77)", 130.5));
}

}  // namespace
}  // namespace fs::profile
