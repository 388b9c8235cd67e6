#include "src/model/batch_live.h"

#include <cmath>
#include <string>

#include "gtest/gtest.h"

namespace fs::model {
namespace {

// Detection's /metrics at the start and the end of a 10 s window. Window deltas:
//   batch sizes: 10 batches of 1, 10 of 2, 20 of 4 (sum 110, count 40: mean 2.75);
//   queue wait: 80 in (10, 25] ms, 118 in (25, 50] ms, 2 above 50 ms;
//   frames in: 90 (two cameras), skipped newest-first: 10, lost to Redis: 50 (not a skip).
// The inference stage is a decoy with the same buckets: it must not be read as queue wait.
constexpr const char* kStart = R"(# TYPE framescope_batch_size histogram
framescope_batch_size_bucket{le="1"} 10
framescope_batch_size_bucket{le="2"} 10
framescope_batch_size_bucket{le="3"} 10
framescope_batch_size_bucket{le="4"} 20
framescope_batch_size_bucket{le="+Inf"} 20
framescope_batch_size_sum 50
framescope_batch_size_count 20
framescope_stage_latency_seconds_bucket{service="detection",stage="queue_wait",le="0.005"} 0
framescope_stage_latency_seconds_bucket{service="detection",stage="queue_wait",le="0.01"} 10
framescope_stage_latency_seconds_bucket{service="detection",stage="queue_wait",le="0.025"} 10
framescope_stage_latency_seconds_bucket{service="detection",stage="queue_wait",le="0.05"} 10
framescope_stage_latency_seconds_bucket{service="detection",stage="queue_wait",le="+Inf"} 10
framescope_stage_latency_seconds_count{service="detection",stage="queue_wait"} 10
framescope_stage_latency_seconds_bucket{service="detection",stage="inference",le="0.005"} 0
framescope_stage_latency_seconds_bucket{service="detection",stage="inference",le="+Inf"} 0
framescope_frames_in_total{service="detection",camera="cam0"} 100
framescope_frames_in_total{service="detection",camera="cam1"} 100
framescope_frames_dropped_total{service="detection",camera="cam0",reason="skipped_newest_first"} 5
framescope_frames_dropped_total{service="detection",camera="cam1",reason="skipped_newest_first"} 5
framescope_frames_dropped_total{service="detection",camera="cam0",reason="redis_unavailable"} 0
)";

constexpr const char* kEnd = R"(framescope_batch_size_bucket{le="1"} 20
framescope_batch_size_bucket{le="2"} 30
framescope_batch_size_bucket{le="3"} 30
framescope_batch_size_bucket{le="4"} 60
framescope_batch_size_bucket{le="+Inf"} 60
framescope_batch_size_sum 160
framescope_batch_size_count 60
framescope_stage_latency_seconds_bucket{service="detection",stage="queue_wait",le="0.005"} 0
framescope_stage_latency_seconds_bucket{service="detection",stage="queue_wait",le="0.01"} 10
framescope_stage_latency_seconds_bucket{service="detection",stage="queue_wait",le="0.025"} 90
framescope_stage_latency_seconds_bucket{service="detection",stage="queue_wait",le="0.05"} 208
framescope_stage_latency_seconds_bucket{service="detection",stage="queue_wait",le="+Inf"} 210
framescope_stage_latency_seconds_count{service="detection",stage="queue_wait"} 210
framescope_stage_latency_seconds_bucket{service="detection",stage="inference",le="0.005"} 500
framescope_stage_latency_seconds_bucket{service="detection",stage="inference",le="+Inf"} 500
framescope_frames_in_total{service="detection",camera="cam0"} 150
framescope_frames_in_total{service="detection",camera="cam1"} 140
framescope_frames_dropped_total{service="detection",camera="cam0",reason="skipped_newest_first"} 10
framescope_frames_dropped_total{service="detection",camera="cam1",reason="skipped_newest_first"} 10
framescope_frames_dropped_total{service="detection",camera="cam0",reason="redis_unavailable"} 50
)";

std::vector<PromSample> Parse(const char* text) {
  auto s = ParsePromText(text);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? *s : std::vector<PromSample>{};
}

BatchResult R(int batch, double throughput, double p99) {
  BatchResult r;
  r.batch = batch;
  r.throughput_ips = throughput;
  r.p99_ms = p99;
  return r;
}

LiveContext TwoCameras(double budget_ms) {
  LiveContext c;
  c.max_batch = 4;
  c.max_wait_ms = 10;
  c.cameras = 2;
  c.budget_ms = budget_ms;
  return c;
}

TEST(LiveBatch, WindowNumbersAreTheDeltasOfTheTwoScrapes) {
  LiveBatchView v = AnalyseLiveBatch(Parse(kStart), Parse(kEnd), 10, TwoCameras(200), {});
  ASSERT_TRUE(v.measured) << v.reason;
  EXPECT_EQ(v.batches, 40);
  ASSERT_TRUE(v.mean_batch);
  EXPECT_DOUBLE_EQ(*v.mean_batch, 2.75);
  ASSERT_EQ(v.batch_sizes.size(), 3u);  // sizes 1, 2 and (3, 4]; empty buckets left out
  EXPECT_EQ(v.batch_sizes[0].hi, 1);
  EXPECT_EQ(v.batch_sizes[0].count, 10);
  EXPECT_EQ(v.batch_sizes[1].hi, 2);
  EXPECT_EQ(v.batch_sizes[1].count, 10);
  EXPECT_EQ(v.batch_sizes[2].lo, 3);
  EXPECT_EQ(v.batch_sizes[2].hi, 4);
  EXPECT_EQ(v.batch_sizes[2].count, 20);

  EXPECT_EQ(v.queue_wait_count, 200);
  ASSERT_TRUE(v.queue_wait_p50_ms.value);
  // Rank 100 of 200: 20 into the 118 of (25, 50] ms.
  EXPECT_NEAR(*v.queue_wait_p50_ms.value, 25 + 25.0 * 20 / 118, 1e-9);
  EXPECT_DOUBLE_EQ(v.queue_wait_p50_ms.bucket_lo, 25);
  EXPECT_DOUBLE_EQ(v.queue_wait_p50_ms.bucket_hi, 50);
  EXPECT_NEAR(*v.queue_wait_p99_ms.value, 50, 1e-9);  // rank 198: the top of (25, 50]

  EXPECT_EQ(v.frames_in, 90);
  EXPECT_EQ(v.frames_skipped, 10);
  EXPECT_DOUBLE_EQ(*v.skip_share, 0.1);
  EXPECT_DOUBLE_EQ(v.offered_fps, 10);
  EXPECT_FALSE(v.recommended_max_batch);  // no sweep
  EXPECT_NE(v.recommendation.find("no recommendation"), std::string::npos);
}

TEST(LiveBatch, RecommendationFollowsTheRule) {
  // Offered 10 frames/s; batch 1 (11/s) lacks the 20 % headroom, batch 2 (13/s) has it; batch 4
  // cannot form with 2 cameras. max_wait: 1 more frame at 10/s is 100 ms, capped at the budget
  // minus batch 2's p99: 200 - 170 = 30 ms.
  std::vector<BatchResult> sweep = {R(1, 11, 90), R(2, 13, 170), R(4, 40, 150)};
  LiveBatchView v = AnalyseLiveBatch(Parse(kStart), Parse(kEnd), 10, TwoCameras(200), sweep);
  ASSERT_TRUE(v.recommended_max_batch);
  EXPECT_EQ(*v.recommended_max_batch, 2);
  EXPECT_EQ(*v.recommended_max_wait_ms, 30);
  EXPECT_NE(v.recommendation.find("batches formed averaged 2.75"), std::string::npos)
      << v.recommendation;
  EXPECT_EQ(v.recommendation.find("Caveat"), std::string::npos) << v.recommendation;
  LiveContext other = TwoCameras(200);
  other.sweep_mismatch = "the sweep ran at 128x128, detection at 416x416";
  v = AnalyseLiveBatch(Parse(kStart), Parse(kEnd), 10, other, sweep);
  EXPECT_NE(v.recommendation.find("Caveat: the sweep ran at 128x128"), std::string::npos)
      << v.recommendation;
  // A looser budget leaves the arrival time: 100 ms.
  v = AnalyseLiveBatch(Parse(kStart), Parse(kEnd), 10, TwoCameras(1000), sweep);
  EXPECT_EQ(*v.recommended_max_wait_ms, 100);
  // Nothing keeps up: the fastest within the budget, and it says frames will be skipped.
  v = AnalyseLiveBatch(Parse(kStart), Parse(kEnd), 10, TwoCameras(200),
                       {R(1, 5, 90), R(2, 6, 170)});
  EXPECT_EQ(*v.recommended_max_batch, 2);
  EXPECT_NE(v.recommendation.find("highest offline throughput within the 200.0 ms budget"),
            std::string::npos)
      << v.recommendation;
  EXPECT_NE(v.recommendation.find("still be skipped"), std::string::npos) << v.recommendation;
  // Nothing within the budget: the recommendation says so instead of failing.
  v = AnalyseLiveBatch(Parse(kStart), Parse(kEnd), 10, TwoCameras(50),
                       {R(1, 11, 90), R(2, 13, 170)});
  EXPECT_EQ(*v.recommended_max_batch, 2);
  EXPECT_EQ(*v.recommended_max_wait_ms, 0);
  EXPECT_NE(v.recommendation.find("meets the 50.0 ms budget"), std::string::npos)
      << v.recommendation;
}

TEST(LiveBatch, CounterResetCountsTheEndValue) {
  auto d = DeltaSamples(Parse("framescope_frames_in_total{camera=\"a\"} 100\n"),
                        Parse("framescope_frames_in_total{camera=\"a\"} 30\n"
                              "framescope_frames_in_total{camera=\"b\"} 7\n"));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].value, 30);
  EXPECT_EQ(d[1].value, 7);
}

TEST(LiveBatch, NoFramesIsNotMeasurable) {
  LiveBatchView v = AnalyseLiveBatch(Parse(kStart), Parse(kStart), 10, TwoCameras(200), {});
  EXPECT_FALSE(v.measured);
  EXPECT_NE(v.reason.find("no frames"), std::string::npos) << v.reason;
  Json j = LiveBatchJson(v);
  EXPECT_FALSE(j.Get("measured").AsBool());
  EXPECT_TRUE(j.Get("reason").is_string());
}

}  // namespace
}  // namespace fs::model
