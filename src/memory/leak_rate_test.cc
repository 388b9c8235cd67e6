#include "src/memory/leak_rate.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace fs::profile {
namespace {

constexpr double kMbPerHourToBytesPerSec = 1e6 / 3600.0;

// n points every `dt` seconds on bytes = base + rate * t, plus N(0, noise) bytes.
std::vector<SeriesPoint> Line(size_t n, double dt, double rate_mb_h, double noise_bytes = 0,
                              unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, noise_bytes > 0 ? noise_bytes : 1);
  std::vector<SeriesPoint> s;
  for (size_t i = 0; i < n; ++i) {
    double t = 1.7e9 + static_cast<double>(i) * dt;  // realtime-sized times, as the log has
    double b = 50e6 + rate_mb_h * kMbPerHourToBytesPerSec * (t - 1.7e9);
    s.push_back({t, b + (noise_bytes > 0 ? noise(rng) : 0)});
  }
  return s;
}

TEST(LeakRate, ExactLineGivesExactSlopeAndPointInterval) {
  LeakRate r = EstimateLeakRate(Line(100, 5, 18));
  EXPECT_NEAR(r.slope_mb_per_h, 18, 1e-6);
  EXPECT_NEAR(r.ci95_lo, 18, 1e-6);
  EXPECT_NEAR(r.ci95_hi, 18, 1e-6);
  EXPECT_EQ(r.verdict, LeakVerdict::kNotMet);
  EXPECT_EQ(r.points, 90u);  // the first 10 % of the span is warm-up
  EXPECT_NEAR(r.duration_s, 89 * 5, 1e-6);
  EXPECT_STREQ(LeakVerdictName(r.verdict), "not met");
  EXPECT_EQ(EstimateLeakRate(Line(100, 5, 2)).verdict, LeakVerdict::kMet);
}

TEST(LeakRate, OutliersDoNotMoveTheilSen) {
  std::vector<SeriesPoint> s = Line(100, 5, 4);
  for (size_t i = 10; i < s.size(); i += 5) s[i].bytes += (i % 2 ? 1 : -1) * 3e9;  // 18 spikes
  LeakRate r = EstimateLeakRate(s);
  EXPECT_NEAR(r.slope_mb_per_h, 4, 1e-6);
  EXPECT_EQ(r.verdict, LeakVerdict::kMet);
}

// Coverage: over many noisy series the 95 % interval holds the true slope about 95 % of the time.
TEST(LeakRate, NoisyIntervalCoversTheTruth) {
  int covered = 0;
  constexpr int kTrials = 300;
  for (int k = 0; k < kTrials; ++k) {
    LeakRate r = EstimateLeakRate(Line(60, 10, 6, 200e3, 1000 + k));
    ASSERT_LT(r.ci95_lo, r.ci95_hi);
    covered += r.ci95_lo <= 6 && 6 <= r.ci95_hi;
  }
  EXPECT_GE(covered, kTrials * 90 / 100);
  EXPECT_LE(covered, kTrials * 99 / 100);  // not a uselessly wide interval either
}

TEST(LeakRate, StraddlingTheLimitIsInconclusiveWithTimeToDecide) {
  LeakRate r = EstimateLeakRate(Line(60, 10, 8, 400e3, 7));
  ASSERT_EQ(r.verdict, LeakVerdict::kInconclusive)
      << r.ci95_lo << " " << r.slope_mb_per_h << " " << r.ci95_hi;
  EXPECT_LT(r.ci95_lo, 10);
  EXPECT_GT(r.ci95_hi, 10);
  EXPECT_GT(r.extra_time_s, 0);
  EXPECT_TRUE(std::isfinite(r.extra_time_s));
  // A run that long (and a bit) with the same noise and sampling decides: the interval shrank.
  double longer = (r.duration_s + r.extra_time_s) * 1.5;
  LeakRate decided =
      EstimateLeakRate(Line(static_cast<size_t>(longer / 10 / 0.9), 10, 8, 400e3, 7));
  EXPECT_EQ(decided.verdict, LeakVerdict::kMet) << decided.ci95_hi;
}

TEST(LeakRate, TooFewPointsIsNotMeasurableNeverZero) {
  LeakRate r = EstimateLeakRate(Line(8, 5, 18));
  EXPECT_EQ(r.verdict, LeakVerdict::kNotMeasurable);
  EXPECT_NE(r.reason.find("samples after the warm-up"), std::string::npos);
  EXPECT_TRUE(std::isnan(r.slope_mb_per_h));
  EXPECT_EQ(EstimateLeakRate({}).verdict, LeakVerdict::kNotMeasurable);
  std::vector<SeriesPoint> same(20, {5.0, 1e6});
  LeakRate flat_time = EstimateLeakRate(same, {.warmup_fraction = 0});
  EXPECT_EQ(flat_time.verdict, LeakVerdict::kNotMeasurable);
  EXPECT_FALSE(flat_time.reason.empty());
  std::vector<SeriesPoint> nan_series = Line(20, 5, 1);
  for (auto& p : nan_series) p.bytes = std::nan("");
  EXPECT_EQ(EstimateLeakRate(nan_series).verdict, LeakVerdict::kNotMeasurable);
}

// A cache that fills for the first 60 s of 100 then stays flat: the warm-up hides its growth.
TEST(LeakRate, WarmupExcludesACacheFilling) {
  std::vector<SeriesPoint> s = Line(100, 1, 0);
  for (auto& p : s) p.bytes += std::min(p.t_s - s.front().t_s, 60.0) * 1e6;  // 3600 MB/h
  EXPECT_EQ(EstimateLeakRate(s).verdict, LeakVerdict::kNotMet);  // 10 % warm-up is too short
  LeakRate r = EstimateLeakRate(s, {.warmup_s = 60});
  EXPECT_NEAR(r.slope_mb_per_h, 0, 1e-6);
  EXPECT_EQ(r.verdict, LeakVerdict::kMet);
  EXPECT_EQ(EstimateLeakRate(s, {.warmup_fraction = 0.65}).verdict, LeakVerdict::kMet);
}

// A day at 5 s (17 280 points) is thinned before the O(n^2) pairs: still exact on a line.
TEST(LeakRate, LongSeriesIsThinnedAndStaysExact) {
  LeakRate r = EstimateLeakRate(Line(17280, 5, 3));
  EXPECT_NEAR(r.slope_mb_per_h, 3, 1e-6);
  EXPECT_EQ(r.verdict, LeakVerdict::kMet);
  EXPECT_GT(r.points, 15000u);
}

TEST(LeakRate, RssSeriesTakesRss) {
  MemorySample a;
  a.time_s = 3;
  a.bytes.rss = 7;
  a.bytes.pss = 1;
  auto s = RssSeries({a});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].t_s, 3);
  EXPECT_EQ(s[0].bytes, 7);
}

}  // namespace
}  // namespace fs::profile
