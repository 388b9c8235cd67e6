#include "src/model/batch_sweep.h"

#include <atomic>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace fs::model {
namespace {

WindowStats W(double throughput, double p99) {
  WindowStats w;
  w.throughput_ips = throughput;
  w.p99_ms = p99;
  return w;
}

TEST(WindowsStable, ThreeWindowsWithinTenPercentOnBoth) {
  EXPECT_TRUE(WindowsStable({W(100, 10), W(105, 10.3), W(96, 9.5)}, 3, 0.10));
  // Only the last three count: an unsteady start does not matter.
  EXPECT_TRUE(WindowsStable({W(40, 30), W(100, 10), W(105, 10.3), W(96, 9.5)}, 3, 0.10));
}

TEST(WindowsStable, DriftingThroughputIsNotStable) {
  // Each window 15 % faster than the one before.
  EXPECT_FALSE(WindowsStable({W(100, 10), W(115, 10), W(132, 10)}, 3, 0.10));
  // 10 % steps: each within 10 % of the mean, but the last is 21 % above the first, which
  // perf_analyzer's max/min test rejects; 100..110 is its limit.
  EXPECT_FALSE(WindowsStable({W(100, 10), W(110, 10), W(121, 10)}, 3, 0.10));
  EXPECT_TRUE(WindowsStable({W(100, 10), W(110, 10), W(104, 10)}, 3, 0.10));
}

TEST(WindowsStable, NoisyLatencyAloneIsNotStable) {
  // Throughput steady, p99 jumping: both must agree (perf_analyzer checks both).
  EXPECT_FALSE(WindowsStable({W(100, 10), W(100, 14), W(100, 10)}, 3, 0.10));
}

TEST(WindowsStable, TooFewWindows) {
  EXPECT_FALSE(WindowsStable({W(100, 10), W(100, 10)}, 3, 0.10));
  EXPECT_FALSE(WindowsStable({}, 3, 0.10));
}

SweepOptions Fast() {
  SweepOptions o;
  o.warmup_forwards = 1;
  o.min_window_forwards = 2;
  o.window_seconds = 0.2;
  o.max_windows = 6;
  o.max_seconds_per_batch = 100;
  return o;
}

TEST(MeasureBatch, SteadyTimesAreStableAfterThreeWindows) {
  int calls = 0;
  // 0.1 s per forward at any batch: a window is 2 forwards (0.2 s).
  auto forward = [&](int) -> StatusOr<double> {
    ++calls;
    return 0.1;
  };
  auto r = MeasureBatch(forward, 4, Fast());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->stable);
  EXPECT_EQ(r->windows.size(), 3u);
  EXPECT_EQ(calls, 1 + 3 * 2);  // warm-up + three windows
  EXPECT_NEAR(r->throughput_ips, 40.0, 1e-9);
  EXPECT_NEAR(r->p50_ms, 100.0, 1e-9);
  EXPECT_EQ(r->forwards, 6);
}

TEST(MeasureBatch, NoisyTimesStopAtMaxWindowsAndAreUnstable) {
  // Windows alternate 0.1 s and 0.2 s per forward: never three alike.
  int calls = 0;
  auto forward = [&](int) -> StatusOr<double> {
    int window = (calls++ - 1) / 2;  // after one warm-up call
    return window % 2 == 0 ? 0.1 : 0.2;
  };
  SweepOptions o = Fast();
  o.window_seconds = 0;
  auto r = MeasureBatch(forward, 1, o);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->stable);
  EXPECT_EQ(r->windows.size(), 6u);
  EXPECT_NE(r->unstable_reason.find("after 6 windows"), std::string::npos) << r->unstable_reason;
  // The numbers are over the last three windows (0.2, 0.1, 0.2 s per forward).
  EXPECT_NEAR(r->throughput_ips, 6.0 / 1.0, 1e-9);
}

TEST(MeasureBatch, DriftStopsAtTheTimeCap) {
  double t = 0.1;
  auto forward = [&](int) -> StatusOr<double> { return t *= 1.2; };
  SweepOptions o = Fast();
  o.max_seconds_per_batch = 3;
  o.max_windows = 100;
  auto r = MeasureBatch(forward, 1, o);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->stable);
  EXPECT_NE(r->unstable_reason.find("time cap"), std::string::npos) << r->unstable_reason;
  EXPECT_LT(r->windows.size(), 100u);
}

TEST(MeasureBatch, ErrorsAndStop) {
  auto failing = [](int) -> StatusOr<double> { return Err("forward failed"); };
  EXPECT_FALSE(MeasureBatch(failing, 1, Fast()).ok());
  auto zero = [](int) -> StatusOr<double> { return 0.0; };
  EXPECT_FALSE(MeasureBatch(zero, 1, Fast()).ok());  // would never fill a window
  std::atomic<bool> stop{false};
  int calls = 0;
  auto stopping = [&](int) -> StatusOr<double> {
    if (++calls == 4) stop = true;
    return 0.1;
  };
  auto r = RunSweep(stopping, Fast(), &stop);
  ASSERT_TRUE(r.ok());
  // Batch 1 got one complete window (warm-up + 2 forwards) before the stop; nothing after.
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].windows.size(), 1u);
  EXPECT_FALSE((*r)[0].stable);
  EXPECT_EQ((*r)[0].unstable_reason, "interrupted");
}

TEST(RunSweep, ThroughputFollowsTheTimings) {
  // A forward costs 50 ms + 10 ms per image: batching amortises the fixed part.
  auto forward = [](int batch) -> StatusOr<double> { return 0.05 + 0.01 * batch; };
  SweepOptions o = Fast();
  o.batches = {1, 2, 8};
  auto r = RunSweep(forward, o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_NEAR((*r)[0].throughput_ips, 1 / 0.06, 1e-6);
  EXPECT_NEAR((*r)[2].throughput_ips, 8 / 0.13, 1e-6);
  EXPECT_NEAR((*r)[2].p99_ms, 130, 1e-6);
}

BatchResult R(int batch, double throughput, double p99) {
  BatchResult r;
  r.batch = batch;
  r.throughput_ips = throughput;
  r.p99_ms = p99;
  r.stable = true;
  return r;
}

LatencyBudget Budget(double ms) { return {ms, "test"}; }

TEST(ChooseBestBatch, HighestThroughputWithinBudget) {
  std::vector<BatchResult> rs = {R(1, 10, 20), R(4, 30, 60), R(8, 35, 120), R(16, 36, 250)};
  BatchChoice c = ChooseBestBatch(rs, Budget(100));
  ASSERT_TRUE(c.best_batch);
  EXPECT_EQ(*c.best_batch, 4);
  EXPECT_NEAR(*c.gain, 3.0, 1e-9);
  EXPECT_EQ(c.best_unconstrained_batch, 16);
  EXPECT_NEAR(*c.unconstrained_gain, 3.6, 1e-9);
  EXPECT_EQ(c.verdict, "met");
  EXPECT_NE(c.reason.find("batch 4 is the fastest"), std::string::npos) << c.reason;
  EXPECT_EQ(c.reason.find("Not stable"), std::string::npos) << c.reason;
  rs[0].stable = rs[2].stable = false;
  c = ChooseBestBatch(rs, Budget(100));
  EXPECT_NE(c.reason.find("Not stable by the 3-windows-within-10% rule (numbers less firm): batch "
                          "1, 8."),
            std::string::npos)
      << c.reason;
}

TEST(ChooseBestBatch, NoBatchMeetsTheBudget) {
  std::vector<BatchResult> rs = {R(1, 10, 120), R(2, 11, 230)};
  BatchChoice c = ChooseBestBatch(rs, Budget(33.3));
  EXPECT_FALSE(c.best_batch);
  EXPECT_FALSE(c.gain);
  EXPECT_EQ(c.verdict, "not met");
  EXPECT_NE(c.reason.find("No batch size meets the 33.3 ms"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("lowest p99 is 120.0 ms (batch 1)"), std::string::npos) << c.reason;
  EXPECT_EQ(c.best_unconstrained_batch, 2);  // still reported
}

TEST(ChooseBestBatch, TiesGoToTheSmallerBatch) {
  std::vector<BatchResult> rs = {R(1, 10, 10), R(2, 25, 20), R(4, 25, 40)};
  BatchChoice c = ChooseBestBatch(rs, Budget(100));
  EXPECT_EQ(*c.best_batch, 2);
  EXPECT_EQ(c.best_unconstrained_batch, 2);
}

TEST(ChooseBestBatch, VerdictReasonsFromTheNumbers) {
  // CPU-like: batching barely helps.
  std::vector<BatchResult> cpu = {R(1, 10, 100), R(2, 10.4, 195), R(4, 10.6, 390)};
  BatchChoice c = ChooseBestBatch(cpu, Budget(1000));
  EXPECT_EQ(*c.best_batch, 4);
  EXPECT_EQ(c.verdict, "not met");
  EXPECT_NE(c.reason.find("1.06x batch 1"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("needs a gain above 2.0"), std::string::npos) << c.reason;
  EXPECT_EQ(c.reason.find("needs the optimal batch"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("Batching barely raises throughput"), std::string::npos) << c.reason;
  // Both missing: one sentence names both.
  c = ChooseBestBatch({R(1, 10, 100), R(2, 10.4, 195)}, Budget(1000));
  EXPECT_NE(c.reason.find("needs the optimal batch in 4..32 and a gain above 2.0"),
            std::string::npos)
      << c.reason;
  // A big gain at batch 2: outside 4..32.
  std::vector<BatchResult> small = {R(1, 10, 10), R(2, 30, 15), R(4, 20, 40)};
  c = ChooseBestBatch(small, Budget(1000));
  EXPECT_EQ(c.verdict, "not met");
  EXPECT_NE(c.reason.find("needs the optimal batch in 4..32"), std::string::npos) << c.reason;
  EXPECT_EQ(c.reason.find("barely"), std::string::npos) << c.reason;
  // Exactly 2.0 is not above 2.0.
  c = ChooseBestBatch({R(1, 10, 10), R(4, 20, 40)}, Budget(1000));
  EXPECT_EQ(c.verdict, "not met");
  // Batch 1 alone: nothing is said about batching.
  c = ChooseBestBatch({R(1, 10, 10)}, Budget(1000));
  EXPECT_EQ(c.reason.find("Across the sweep"), std::string::npos) << c.reason;
  // No batch 1: no gain to judge.
  c = ChooseBestBatch({R(4, 20, 40)}, Budget(1000));
  EXPECT_EQ(c.verdict, "not measurable");
  EXPECT_FALSE(c.gain);
  c = ChooseBestBatch({}, Budget(1000));
  EXPECT_EQ(c.verdict, "not measurable");
}

TEST(ParseBatchList, AcceptsSortedUniquePositiveSizes) {
  auto r = ParseBatchList("8,1,2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<int>{1, 2, 8}));
  for (const char* bad : {"0", "-1", "1,0", "a", "1,,2", "", "2,2", "1.5", "2000", "4,"}) {
    auto b = ParseBatchList(bad);
    ASSERT_FALSE(b.ok()) << bad;
    EXPECT_NE(b.status().message().find("--batches"), std::string::npos) << b.status().message();
  }
}

TEST(BudgetFromFps, OneFrameInterval) {
  LatencyBudget b = BudgetFromFps(30, "the system's camera rate");
  EXPECT_NEAR(b.ms, 33.333, 1e-3);
  EXPECT_NE(b.rule.find("1000 / 30 fps"), std::string::npos) << b.rule;
}

}  // namespace
}  // namespace fs::model
