// `framescope batch` end to end on the real yolov3-tiny (small input so it stays short): the JSON
// fields, the chart page, the verdict and exit code, the live view without a running system, and
// bad input refused with exit 2 naming the flag or the model.
#include <gtest/gtest.h>

#include <string>

#include "src/base/file_util.h"
#include "src/base/json.h"
#include "tests/integration/test_util.h"

namespace fs::testing {
namespace {

constexpr const char* kCfg = "/usr/share/darknet/cfg/yolov3-tiny.cfg";

std::string Batch() { return BinDir() + "/framescope batch"; }

TEST(BatchCommand, SweepsTheRealModelAndWritesTheAnalysis) {
  TempDir tmp;
  // No system in this state dir: the live view must say so. A huge budget admits every batch.
  CommandResult r = RunShell(
      "{ " + Batch() + " --model " + kCfg + " --input-size 128 --batches 2,1 --window-seconds " +
      "0.2 --max-windows 4 --latency-budget-ms 100000 --state-dir " + tmp.path() + "/none --out " +
      tmp.path() + "/p --json 2>" + tmp.path() + "/err; }");
  // Batches 1 and 2 can never meet the checklist (4..32): exit 3, not met.
  ASSERT_EQ(r.exit_code, 3) << r.output << *ReadFile(tmp.path() + "/err");
  auto out = Json::Parse(r.output);
  ASSERT_TRUE(out.ok()) << r.output;
  auto file = ReadFile(tmp.path() + "/p/models/batch_analysis.json");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(Json::Parse(*file)->Dump(), out->Dump());
  EXPECT_EQ(out->Get("model").Get("input_width").AsInt(), 128);
  const Json& batches = out->Get("offline").Get("batches");
  ASSERT_EQ(batches.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const Json& b = batches.AsArray()[i];
    EXPECT_EQ(b.Get("batch").AsInt(), i + 1);  // sorted
    EXPECT_GT(b.Get("throughput_images_per_s").AsDouble(), 0);
    EXPECT_GT(b.Get("latency_p50_ms").AsDouble(), 0);
    EXPECT_GE(b.Get("latency_p99_ms").AsDouble(), b.Get("latency_p50_ms").AsDouble());
    EXPECT_GE(b.Get("windows").AsInt(), 1);
    EXPECT_LE(b.Get("windows").AsInt(), 4);
    EXPECT_EQ(b.Get("window_series").size(), static_cast<size_t>(b.Get("windows").AsInt()));
  }
  const Json& best = out->Get("best");
  EXPECT_EQ(best.Get("verdict").AsString(), "not met");
  EXPECT_TRUE(best.Get("best_batch").is_number());
  EXPECT_TRUE(best.Get("gain_over_batch_1").is_number());
  EXPECT_EQ(best.Get("latency_budget_rule").AsString(), "--latency-budget-ms");
  EXPECT_NE(best.Get("reason").AsString().find("4..32"), std::string::npos);
  EXPECT_NE(out->Get("offline").Get("latency_method").AsString().find("cv::dnn::Net::forward"),
            std::string::npos);
  EXPECT_FALSE(out->Get("live").Get("measured").AsBool());
  EXPECT_EQ(out->Get("live").Get("reason").AsString(), "not measurable: no running system");
  auto html = ReadFile(tmp.path() + "/p/models/batch_analysis.html");
  ASSERT_TRUE(html.ok());
  EXPECT_NE(html->find("<polyline class=\"throughput\""), std::string::npos);
}

TEST(BatchCommand, CtrlCWritesWhatWasMeasured) {
  TempDir tmp;
  // Windows of 1 s, up to 10 per batch size: the interrupt at 4 s lands mid-sweep.
  CommandResult r = RunShell("timeout --preserve-status -s INT 4 " + Batch() + " --model " + kCfg +
                             " --input-size 128 --batches 1,2,4,8 --window-seconds 1 --state-dir " +
                             tmp.path() + "/none --out " + tmp.path() + " 2>&1");
  ASSERT_EQ(r.exit_code, 130) << r.output;
  auto file = ReadFile(tmp.path() + "/models/batch_analysis.json");
  ASSERT_TRUE(file.ok()) << r.output;
  auto out = Json::Parse(*file);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->Get("interrupted").AsBool());
  EXPECT_LT(out->Get("offline").Get("batches").size(), 4u) << *file;
}

TEST(BatchCommand, BadInputIsRefusedBeforeAnyWork) {
  TempDir tmp;
  const std::string common = " --state-dir " + tmp.path() + "/none --out " + tmp.path();
  for (const char* list : {"0", "-1", "1,x", "1,,2", "2,2"}) {
    CommandResult r = RunShell(Batch() + " --batches=" + list + common + " 2>&1");
    EXPECT_EQ(r.exit_code, 2) << list << ": " << r.output;
    EXPECT_NE(r.output.find("--batches"), std::string::npos) << r.output;
  }
  CommandResult r = RunShell(Batch() + " --latency-budget-ms -5" + common + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--latency-budget-ms"), std::string::npos) << r.output;
  r = RunShell(Batch() + " --model " + tmp.path() + "/missing.cfg" + common + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--model: cannot load"), std::string::npos) << r.output;
  ASSERT_TRUE(WriteFileAtomic(tmp.path() + "/bad.cfg",
                              "[net]\nwidth=zz\n[convolutional]\nfilters=\n"
                              "this is not a darknet cfg\n")
                  .ok());
  r = RunShell(Batch() + " --model " + tmp.path() + "/bad.cfg" + common + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--model: cannot load"), std::string::npos) << r.output;
  // Nothing was written by the refused runs.
  EXPECT_FALSE(ReadFile(tmp.path() + "/models/batch_analysis.json").ok());
}

// `framescope model` end to end: the JSON and trace written, the exit code saying the checklist
// verdict (3 when 2.2 is not met), bad flags and models refused with exit 2 before any work.
TEST(ModelCommand, ProfilesTheRealModelAndRefusesBadInput) {
  TempDir tmp;
  const std::string model = BinDir() + "/framescope model";
  CommandResult r =
      RunShell("{ " + model + " --model " + kCfg +
               " --input-size 128 --runs 3 --warmup 1 --no-peak --state-dir " + tmp.path() +
               "/none --out " + tmp.path() + "/p --json 2>" + tmp.path() + "/err; }");
  auto out = Json::Parse(r.output);
  ASSERT_TRUE(out.ok()) << r.output << *ReadFile(tmp.path() + "/err");
  const bool met = out->Get("checklist").Get("verdict").AsString() == "met";
  EXPECT_EQ(r.exit_code, met ? 0 : 3) << out->Get("checklist").Dump();
  EXPECT_EQ(out->Get("runs").AsInt(), 3);
  EXPECT_EQ(out->Get("input_width").AsInt(), 128);
  EXPECT_TRUE(out->Get("machine_peak").is_null());
  auto file = ReadFile(tmp.path() + "/p/models/yolo_profile.json");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(Json::Parse(*file)->Dump(), out->Dump());
  auto trace = ReadFile(tmp.path() + "/p/models/yolo_trace.json");
  ASSERT_TRUE(trace.ok());
  EXPECT_TRUE(Json::Parse(*trace).ok());

  // Three convolutions can never be "more than 20 layers": not met, exit 3, files written.
  ASSERT_TRUE(WriteFileAtomic(tmp.path() + "/three.cfg",
                              "[net]\nwidth=32\nheight=32\nchannels=3\n"
                              "[convolutional]\nfilters=8\nsize=3\nstride=1\npad=1\n"
                              "activation=leaky\n"
                              "[convolutional]\nfilters=8\nsize=3\nstride=1\npad=1\n"
                              "activation=leaky\n"
                              "[convolutional]\nfilters=8\nsize=3\nstride=1\npad=1\n"
                              "activation=leaky\n")
                  .ok());
  r = RunShell(model + " --model " + tmp.path() + "/three.cfg --runs 2 --no-peak --out " +
               tmp.path() + "/q --state-dir " + tmp.path() + "/none 2>&1");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("not met (3 timed layers"), std::string::npos) << r.output;
  EXPECT_TRUE(ReadFile(tmp.path() + "/q/models/three_profile.json").ok());

  const std::string common = " --state-dir " + tmp.path() + "/none --out " + tmp.path() + " 2>&1";
  for (const char* bad :
       {"--batch -1", "--runs -2", "--max-seconds 0", "--input-size 0x5", "--weights /w.weights"}) {
    r = RunShell(model + " " + bad + common);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.output;
  }
  r = RunShell(model + " --model " + tmp.path() + "/missing.cfg" + common);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
  ASSERT_TRUE(WriteFileAtomic(tmp.path() + "/bad.cfg",
                              "[net]\nwidth=64\nheight=64\n"
                              "[convolutional]\nfilters=-4\n")
                  .ok());
  r = RunShell(model + " --model " + tmp.path() + "/bad.cfg" + common);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("cannot load"), std::string::npos) << r.output;
  EXPECT_FALSE(ReadFile(tmp.path() + "/models/yolo_profile.json").ok());
  EXPECT_FALSE(ReadFile(tmp.path() + "/models/bad_profile.json").ok());
}

}  // namespace
}  // namespace fs::testing
