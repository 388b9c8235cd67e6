#include "src/model/batch_analysis.h"

#include <cmath>

#include "gtest/gtest.h"

namespace fs::model {
namespace {

std::vector<PromSample> Parse(const std::string& text) {
  auto s = ParsePromText(text);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? *s : std::vector<PromSample>{};
}

// Every field the report renders survives the JSON file: a report built from an earlier run's
// batch_analysis.json says what that run said.
TEST(BatchAnalysisJson, RoundTrips) {
  BatchAnalysis a;
  a.model_path = "/m/yolov3-tiny.cfg";
  a.model_origin = "--model";
  a.weights_note = "zero-filled";
  a.input_width = a.input_height = 416;
  a.threads = 2;
  a.detection_paused = true;
  a.options.batches = {1, 2, 4};
  auto forward = [](int batch) -> StatusOr<double> { return 0.05 + 0.01 * batch; };
  a.options.window_seconds = 0;
  auto results = RunSweep(forward, a.options);
  ASSERT_TRUE(results.ok());
  a.results = *results;
  a.results[2].stable = false;
  a.results[2].unstable_reason = "time cap";
  a.choice = ChooseBestBatch(a.results, {100, "test"});
  const std::string q =
      "framescope_stage_latency_seconds_bucket{service=\"detection\","
      "stage=\"queue_wait\",le=";
  const std::string end =
      "framescope_batch_size_bucket{le=\"1\"} 3\nframescope_batch_size_bucket{le=\"+Inf\"} 5\n"
      "framescope_batch_size_sum 9\nframescope_batch_size_count 5\n" +
      q + "\"0.01\"} 2\n" + q + "\"+Inf\"} 6\n" +
      "framescope_frames_in_total{service=\"detection\",camera=\"a\"} 20\n";
  a.live = AnalyseLiveBatch({}, Parse(end), 2, {4, 10, 2, 100, ""}, a.results);
  ASSERT_TRUE(a.live.measured);
  const Json j = BatchAnalysisToJson(a);
  auto parsed = Json::Parse(j.Dump(2));
  ASSERT_TRUE(parsed.ok());
  auto back = BatchAnalysisFromJson(*parsed);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(BatchAnalysisToJson(*back).Dump(2), j.Dump(2));
  // The p99 of the queue wait is above the last finite bucket: "+Inf" survives too.
  EXPECT_TRUE(std::isinf(back->live.queue_wait_p99_ms.bucket_hi));

  a.live = LiveNotMeasurable("not measurable: no running system");
  back = BatchAnalysisFromJson(BatchAnalysisToJson(a));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->live.reason, "not measurable: no running system");
  EXPECT_FALSE(BatchAnalysisFromJson(Json::MakeObject()).ok());
}

}  // namespace
}  // namespace fs::model
