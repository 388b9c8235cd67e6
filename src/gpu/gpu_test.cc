// The GPU telemetry through the fake libnvidia-ml.so.1 (fake_nvml.cc): the real loader finds it
// through LD_LIBRARY_PATH and the real sampler reads its scripted values.
//
// The dynamic loader reads LD_LIBRARY_PATH once, at process start, so a test that needs one
// build of the fake runs its body in a child copy of this binary started with that path (and
// FAKE_NVML_SCRIPT): SCENARIO() re-runs the current test there and checks that it passed.
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "src/base/file_util.h"
#include "src/base/json.h"
#include "src/gpu/gpu_report.h"
#include "src/gpu/gpu_sampler.h"
#include "src/gpu/nvml_loader.h"
#include "tests/integration/test_util.h"

namespace fs::gpu {
namespace {

using Result = fs::testing::CommandResult;
using TempDir = fs::testing::TempDir;
Result Shell(const std::string& command) { return fs::testing::RunShell(command); }

// The environment that makes `variant` ("full" / "minimal") of the fake the libnvidia-ml.so.1
// the loader finds, scripted by `script` (written into `dir`).
std::string FakeEnv(const TempDir& dir, const std::string& variant, const std::string& script) {
  const std::string script_path = dir.path() + "/nvml.script";
  std::ofstream(script_path) << script;
  return "LD_LIBRARY_PATH='" + std::string(FAKE_NVML_DIR) + "/" + variant + "' FAKE_NVML_SCRIPT='" +
         script_path + "'";
}

bool InChild() { return getenv("FS_GPU_TEST_CHILD") != nullptr; }

// Runs the current test in a child with the fake; the child must pass exactly this one test.
void RunInChild(const std::string& variant, const std::string& script) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  TempDir dir;
  Result r = Shell(FakeEnv(dir, variant, script) + " FS_GPU_TEST_CHILD=1 /proc/" +
                   std::to_string(getpid()) + "/exe --gtest_filter='" + info->test_suite_name() +
                   "." + info->name() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[  PASSED  ] 1 test."), std::string::npos) << r.output;
}

#define SCENARIO(variant, script) \
  if (!InChild()) {               \
    RunInChild(variant, script);  \
    return;                       \
  }

const GpuSample* Last(const GpuTimeline& g) {
  return g.samples.empty() ? nullptr : &g.samples.back();
}

// utilization.gpu 10, 30, 50, 70 on GPU 0 and 20, 40, 60, 80 on GPU 1: mean 45 % -> 0.45.
// GPM DRAM bandwidth on GPU 0 only, 60/80/70 over the three intervals four samples span -> 0.70;
// utilization.memory (50 %) must not leak into it.
TEST(GpuSamplerTest, ScriptedSeriesGiveExactAverages) {
  SCENARIO("full",
           "devices 2\nname 0 Fake H100\nname 1 Fake A10\n"
           "util 0 10/50 30/50 50/50 70/50\nutil 1 20/0 40/0 60/0 80/0\n"
           "memory 0 1000 8000\nmemory 1 2000 4000\n"
           "power 0 150500\nclocks 0 1980 2619\ntemperature 0 61\npcie 0 300 700\n"
           "gpm 0 60/30 80/40 70/35\n");
  SamplerOptions o;
  o.gpm_min_gap_s = 0;
  GpuSampler sampler(o);
  for (int i = 0; i < 4; ++i) sampler.SampleOnce(i * 0.5);
  GpuTelemetry t = sampler.Stop();
  ASSERT_EQ(t.unavailable, "");
  ASSERT_EQ(t.gpus.size(), 2u);
  EXPECT_EQ(t.gpus[0].name, "Fake H100");
  ASSERT_EQ(t.gpus[0].samples.size(), 4u);
  const Measured util = GpuUtilizationAvg(t.gpus, t.unavailable);
  ASSERT_TRUE(util.value.has_value());
  EXPECT_DOUBLE_EQ(*util.value, 0.45);
  EXPECT_EQ(util.samples, 8u);
  EXPECT_NE(util.counter.find("utilization.gpu"), std::string::npos);
  const Measured bw = MemoryBandwidthEfficiency(t.gpus, t.unavailable);
  ASSERT_TRUE(bw.value.has_value()) << bw.reason;
  EXPECT_DOUBLE_EQ(*bw.value, 0.70);
  EXPECT_EQ(bw.samples, 3u);
  EXPECT_EQ(bw.gpus, 1u);  // GPU 1 has no GPM: it is not counted in
  EXPECT_NE(bw.counter.find("DRAM_BW_UTIL"), std::string::npos);
  EXPECT_DOUBLE_EQ(*MemoryBusyTimeAvg({t.gpus[0]}, "").value, 0.5);
  const GpuSample& s = *Last(t.gpus[0]);
  EXPECT_EQ(s.memory_used_bytes, 1000u);
  EXPECT_EQ(s.memory_total_bytes, 8000u);
  EXPECT_DOUBLE_EQ(s.optional.at(kPowerW), 150.5);
  EXPECT_DOUBLE_EQ(s.optional.at(kClockSmMhz), 1980);
  EXPECT_DOUBLE_EQ(s.optional.at(kClockMemMhz), 2619);
  EXPECT_DOUBLE_EQ(s.optional.at(kTemperatureC), 61);
  EXPECT_DOUBLE_EQ(s.optional.at(kPcieTxKbS), 300);
  EXPECT_DOUBLE_EQ(s.optional.at(kPcieRxKbS), 700);
  EXPECT_DOUBLE_EQ(s.optional.at(kSmOccupancy), 35);
  EXPECT_EQ(t.gpus[0].samples[0].optional.count(kDramBwUtil), 0u);  // GPM needs two snapshots
  // GPU 1: no GPM support and no optional reading given: each listed with NVML's answer.
  EXPECT_NE(t.gpus[1].not_available.at(kDramBwUtil).find("does not support GPM"),
            std::string::npos);
  EXPECT_NE(t.gpus[1].not_available.at(kPowerW).find("Not Supported (code 3)"), std::string::npos);
  EXPECT_EQ(t.gpus[0].not_available.count(kPowerW), 0u);

  const Json j = GpuReportJson(t);
  EXPECT_DOUBLE_EQ(j.Get("gpu_utilization_avg").AsDouble(), 0.45);
  EXPECT_DOUBLE_EQ(j.Get("memory_bandwidth_efficiency").AsDouble(), 0.70);
  EXPECT_EQ(j.Get("verdicts").Get("gpu_utilization_avg").AsString(), "met");
  EXPECT_EQ(j.Get("verdicts").Get("memory_bandwidth_efficiency").AsString(), "not met");
  const Json& g1 = j.Get("gpus").AsArray()[1];
  EXPECT_TRUE(g1.Get("memory_bandwidth_efficiency").is_null());
  EXPECT_NE(g1.Get("memory_bandwidth_efficiency_reason").AsString().find("GPM"), std::string::npos);
  EXPECT_DOUBLE_EQ(g1.Get("gpu_utilization_avg").AsDouble(), 0.5);
  EXPECT_EQ(j.Get("gpus").AsArray()[0].Get("timeline").size(), 4u);
  // Reads back as JSON.
  auto parsed = Json::Parse(j.Dump(2));
  ASSERT_TRUE(parsed.ok());
  EXPECT_DOUBLE_EQ(parsed->Get("gpus")
                       .AsArray()[0]
                       .Get("timeline")
                       .AsArray()[3]
                       .Get("utilization_gpu_percent")
                       .AsDouble(),
                   70);
}

TEST(GpuSamplerTest, ProcessUtilisationIsMappedToServiceNames) {
  SCENARIO("full", "util 0 90/10\nprocess 0 4242 60 7\nprocess 0 999 20 3\n");
  SamplerOptions o;
  o.process_names = {{4242, "detection"}};
  GpuSampler sampler(o);
  sampler.SampleOnce(0);
  sampler.SetProcessNames({{4242, "detection"}, {999, "capture"}});
  sampler.SampleOnce(1);
  GpuTelemetry t = sampler.Stop();
  ASSERT_EQ(t.gpus.size(), 1u);
  ASSERT_EQ(t.gpus[0].samples.size(), 2u);
  ASSERT_EQ(t.gpus[0].samples[0].processes.size(), 2u);
  EXPECT_EQ(t.gpus[0].samples[0].processes[0].name, "detection");
  EXPECT_EQ(t.gpus[0].samples[0].processes[1].name, "pid 999");  // not in the map yet
  EXPECT_EQ(t.gpus[0].samples[1].processes[1].name, "capture");
  const Json j = GpuReportJson(t);
  const Json& procs = j.Get("gpus").AsArray()[0].Get("processes");
  ASSERT_EQ(procs.size(), 3u);  // capture, detection, pid 999 (by name)
  EXPECT_EQ(procs.AsArray()[1].Get("name").AsString(), "detection");
  EXPECT_DOUBLE_EQ(procs.AsArray()[1].Get("sm_util_avg_percent").AsDouble(), 60);
  EXPECT_DOUBLE_EQ(procs.AsArray()[1].Get("memory_util_avg_percent").AsDouble(), 7);
  EXPECT_EQ(procs.AsArray()[1].Get("samples").AsInt(), 2);
}

// An old driver: none of the optional functions. Each is listed with the reason, the required
// readings still give exact averages, and bandwidth is null (never utilization.memory).
TEST(GpuSamplerTest, MissingOptionalFunctionsAreListedAndBandwidthIsNull) {
  SCENARIO("minimal", "util 0 25/80 75/80\nmemory 0 5 10\npower 0 100000\ngpm 0 50/50\n");
  GpuSampler sampler;
  sampler.SampleOnce(0);
  sampler.SampleOnce(1);
  GpuTelemetry t = sampler.Stop();
  ASSERT_EQ(t.gpus.size(), 1u);
  const GpuTimeline& g = t.gpus[0];
  for (const char* key : {kPowerW, kClockSmMhz, kTemperatureC, kPcieTxKbS, kProcessUtilization,
                          kDramBwUtil, kSmOccupancy}) {
    ASSERT_EQ(g.not_available.count(key), 1u) << key;
    EXPECT_EQ(g.not_available.at(key).rfind("not available: libnvidia-ml.so.1 does not export", 0),
              0u)
        << g.not_available.at(key);
  }
  EXPECT_TRUE(g.samples[1].optional.empty());
  EXPECT_DOUBLE_EQ(*GpuUtilizationAvg(t.gpus, "").value, 0.5);
  const Json j = GpuReportJson(t);
  EXPECT_DOUBLE_EQ(j.Get("gpu_utilization_avg").AsDouble(), 0.5);
  EXPECT_TRUE(j.Get("memory_bandwidth_efficiency").is_null());
  EXPECT_NE(j.Get("memory_bandwidth_efficiency_reason").AsString().find("nvmlGpm"),
            std::string::npos);
  EXPECT_EQ(j.Get("verdicts").Get("memory_bandwidth_efficiency").AsString(), "not measurable");
  EXPECT_DOUBLE_EQ(j.Get("gpus").AsArray()[0].Get("memory_busy_time_avg").AsDouble(), 0.8);
}

TEST(GpuSamplerTest, FailingInitGivesNullsWithNvmlsReason) {
  SCENARIO("full", "init_error 9\nutil 0 50/50\n");
  EXPECT_EQ(ProbeLine(),
            "NVML: unavailable: nvmlInit_v2 failed: Driver Not Loaded (code 9) (is the NVIDIA "
            "kernel driver loaded? nvidia-smi says the same)");
  GpuSampler sampler;
  sampler.Start(0.01);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  GpuTelemetry t = sampler.Stop();
  EXPECT_TRUE(t.gpus.empty());
  EXPECT_NE(t.unavailable.find("nvmlInit_v2 failed: Driver Not Loaded (code 9)"),
            std::string::npos);
  const Json j = GpuReportJson(t);
  EXPECT_FALSE(j.Get("measured").AsBool());
  EXPECT_TRUE(j.Get("gpu_utilization_avg").is_null());
  EXPECT_TRUE(j.Get("memory_bandwidth_efficiency").is_null());
  EXPECT_EQ(j.Get("gpu_utilization_avg_reason").AsString(), t.unavailable);
  EXPECT_EQ(j.Get("verdicts").Get("gpu_utilization_avg").AsString(), "not measurable");
}

// GPU 1 falls off the bus after 3 samples while the background thread samples every 5 ms:
// its timeline stops at exactly 3 with the reason, GPU 0 goes on, nothing crashes.
TEST(GpuSamplerTest, DeviceLostMidRunEndsItsTimelineWithTheReason) {
  SCENARIO("full",
           "devices 2\nutil 0 40/0\nutil 1 10/0 20/0 30/0 90/0\nlost_after 1 3\n"
           "power 1 1000\ngpm 1 10/10\n");
  GpuSampler sampler;
  sampler.Start(0.005);
  for (int i = 0; i < 400 && sampler.Snapshot().gpus[0].samples.size() < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  GpuTelemetry t = sampler.Stop();
  ASSERT_EQ(t.gpus.size(), 2u);
  EXPECT_GE(t.gpus[0].samples.size(), 8u);
  EXPECT_FALSE(t.gpus[0].lost_at_s.has_value());
  const GpuTimeline& lost = t.gpus[1];
  ASSERT_EQ(lost.samples.size(), 3u);
  ASSERT_TRUE(lost.lost_at_s.has_value());
  // Lost in the 4th round of samples (one SampleOnce time for every GPU), not later.
  EXPECT_DOUBLE_EQ(*lost.lost_at_s, t.gpus[0].samples[3].t_s);
  EXPECT_NE(lost.lost_reason.find("nvmlDeviceGetUtilizationRates: GPU is lost (code 15)"),
            std::string::npos)
      << lost.lost_reason;
  EXPECT_DOUBLE_EQ(*GpuUtilizationAvg({lost}, "").value, 0.2);
  EXPECT_GT(t.duration_s, 0.035);
  EXPECT_DOUBLE_EQ(t.interval_s, 0.005);
  const Json j = GpuReportJson(t);
  EXPECT_DOUBLE_EQ(j.Get("gpus").AsArray()[1].Get("lost_at_s").AsDouble(), *lost.lost_at_s);
}

TEST(GpuSamplerTest, NoLibraryGivesNullsWithTheReason) {
  SamplerOptions o;
  o.library = "libframescope-no-such-nvml.so.1";
  GpuSampler sampler(o);
  sampler.SampleOnce(0);
  GpuTelemetry t = sampler.Stop();
  EXPECT_NE(t.unavailable.find("libframescope-no-such-nvml.so.1 not found"), std::string::npos)
      << t.unavailable;
  const Json j = GpuReportJson(t);
  EXPECT_TRUE(j.Get("gpu_utilization_avg").is_null());
  EXPECT_TRUE(j.Get("memory_bandwidth_efficiency").is_null());
  EXPECT_NE(j.Get("memory_bandwidth_efficiency_reason").AsString().find("not measurable here"),
            std::string::npos);
  EXPECT_EQ(ProbeLine(o.library).rfind("NVML: unavailable: libframescope-no-such-nvml.so.1 not "
                                       "found",
                                       0),
            0u);
}

TEST(NvmlLoaderTest, LibraryWithoutNvmlsFunctionsIsNamedAsSuch) {
  auto lib = NvmlLibrary::Load("libm.so.6");  // loads; has no nvmlInit_v2
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.status().message().rfind("libm.so.6 has no nvmlInit_v2", 0), 0u)
      << lib.status().message();
}

TEST(NvmlLoaderTest, ProbeLineNamesTheGpus) {
  SCENARIO("full", "devices 2\nname 0 Fake H200\nname 1 Fake L4\n");
  EXPECT_EQ(ProbeLine(), "NVML: present (libnvidia-ml.so.1; 2 GPUs: Fake H200, Fake L4)");
}

// The real `framescope gpu` binary against the fake: a constant series, so the averages are
// exact whatever the number of samples in the second.
TEST(GpuCliTest, WritesNsightReportFromTheFake) {
  TempDir dir;
  Result r = Shell(FakeEnv(dir, "full", "util 0 42/90\nmemory 0 1 2\ngpm 0 75/20\n") + " " +
                   FRAMESCOPE_BIN + " gpu --duration 1 --interval-ms 150 --out " + dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto text = ReadFile(dir.path() + "/gpu/nsight_report.json");
  ASSERT_TRUE(text.ok()) << r.output;
  auto j = Json::Parse(*text);
  ASSERT_TRUE(j.ok());
  EXPECT_DOUBLE_EQ(j->Get("gpu_utilization_avg").AsDouble(), 0.42);
  EXPECT_DOUBLE_EQ(j->Get("memory_bandwidth_efficiency").AsDouble(), 0.75);
  EXPECT_DOUBLE_EQ(j->Get("interval_s").AsDouble(), 0.15);
  EXPECT_GE(j->Get("duration_s").AsDouble(), 1.0);
  const size_t samples = j->Get("gpus").AsArray()[0].Get("timeline").size();
  EXPECT_GE(samples, 5u);
  EXPECT_LE(samples, 8u);
  EXPECT_NE(r.output.find("gpu_utilization_avg 0.42"), std::string::npos) << r.output;
}

TEST(GpuCliTest, WithoutNvmlWritesNullsAndSaysSo) {
  TempDir dir;
  Result r = Shell(FakeEnv(dir, "full", "init_error 9\n") + " " + FRAMESCOPE_BIN +
                   " gpu --duration 0.3 --interval-ms 100 --json --out " + dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto text = ReadFile(dir.path() + "/gpu/nsight_report.json");
  ASSERT_TRUE(text.ok()) << r.output;
  auto j = Json::Parse(*text);
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE(j->Get("gpu_utilization_avg").is_null());
  EXPECT_NE(j->Get("gpu_utilization_avg_reason").AsString().find("Driver Not Loaded"),
            std::string::npos);
  EXPECT_NE(r.output.find("GPU telemetry not measurable"), std::string::npos) << r.output;
}

// Ctrl-C during a long run: what was sampled is written, exit 130.
TEST(GpuCliTest, InterruptWritesWhatWasSampled) {
  TempDir dir;
  Result r =
      Shell(FakeEnv(dir, "full", "util 0 30/0\n") + " timeout --preserve-status -s INT 0.6 " +
            FRAMESCOPE_BIN + " gpu --duration 60 --interval-ms 100 --out " + dir.path());
  ASSERT_EQ(r.exit_code, 130) << r.output;
  auto j = Json::Parse(ReadFile(dir.path() + "/gpu/nsight_report.json").value());
  ASSERT_TRUE(j.ok());
  EXPECT_DOUBLE_EQ(j->Get("gpu_utilization_avg").AsDouble(), 0.3);
  EXPECT_LT(j->Get("duration_s").AsDouble(), 5);
}

TEST(GpuCliTest, BadFlagsAreUsageErrors) {
  EXPECT_EQ(Shell(std::string(FRAMESCOPE_BIN) + " gpu --interval-ms 10").exit_code, 2);
  EXPECT_EQ(Shell(std::string(FRAMESCOPE_BIN) + " gpu --duration 0").exit_code, 2);
  EXPECT_EQ(Shell(std::string(FRAMESCOPE_BIN) + " gpu --out /proc/no/such").exit_code, 2);
  EXPECT_EQ(Shell(std::string(FRAMESCOPE_BIN) + " gpu --help").exit_code, 0);
}

}  // namespace
}  // namespace fs::gpu
