// The statistics of a verdict against values worked out by hand (and printed in scipy's
// documentation), then on synthetic repetitions: how often noise alone is called a regression,
// and how often a planted change is found.
#include "src/regression/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

namespace fs::regression {
namespace {

TEST(MannWhitneyTest, ExactPValuesWorkedOutByHand) {
  // 4 vs 4 fully separated: 1 of the C(8,4) = 70 orderings per tail, two-sided 2/70.
  MannWhitney r = MannWhitneyU({1, 2, 3, 4}, {5, 6, 7, 8});
  EXPECT_EQ(r.method, kExactMethod);
  EXPECT_DOUBLE_EQ(r.u, 0);
  EXPECT_NEAR(r.p, 2.0 / 70, 1e-12);
  // U = 1: orderings with U <= 1 are 2 of 70 per tail: p = 4/70.
  r = MannWhitneyU({1, 2, 3, 5}, {4, 6, 7, 8});
  EXPECT_DOUBLE_EQ(r.u, 1);
  EXPECT_NEAR(r.p, 4.0 / 70, 1e-12);
  // Direction does not matter (two-sided).
  EXPECT_NEAR(MannWhitneyU({5, 6, 7, 8}, {1, 2, 3, 4}).p, 2.0 / 70, 1e-12);
  // 3 vs 3 fully separated: 2/20, never below 0.05.
  EXPECT_NEAR(MannWhitneyU({1, 2, 3}, {4, 5, 6}).p, 0.1, 1e-12);
  // 3 vs 3 interleaved: U = 3; the 20 orderings have U = 0..9 with counts 1,1,2,3,3,3,3,2,1,1,
  // so P(U >= 6) = 7/20 and p = 0.7.
  EXPECT_NEAR(MannWhitneyU({1, 3, 5}, {2, 4, 6}).p, 0.7, 1e-12);
  // U at its mean: p = 1 (capped, as both tails hold it).
  EXPECT_NEAR(MannWhitneyU({1, 4}, {2, 3}).p, 1.0, 1e-12);
}

// scipy.stats.mannwhitneyu's documented example (Conover: ages of males and females):
// U1 = 17, exact p = 0.1111 (= 2 * 7/126: U <= 3 has 1+1+2+3 orderings of C(9,4) = 126).
TEST(MannWhitneyTest, ScipyDocumentationExample) {
  MannWhitney r = MannWhitneyU({19, 22, 16, 29, 24}, {20, 11, 17, 12});
  EXPECT_DOUBLE_EQ(r.u, 17);
  EXPECT_EQ(r.method, kExactMethod);
  EXPECT_NEAR(r.p, 14.0 / 126, 1e-12);
}

// With ties the normal approximation is used. Worked by hand: ranks of {1,2,2,3,3} among
// {1,2,2,3,3,3,4,4,5,6} sum to 16, U = 1; ties (2, 3, 2 values) give sum(t^3 - t) = 36;
// var = 25/12 * (11 - 36/90) = 22.0833; z = (12.5 - 1 - 0.5) / 4.6993 = 2.3408; p = 0.019244.
// (scipy's asymptotic p for the documented example above is 0.11134688653314041.)
TEST(MannWhitneyTest, NormalApproximationWithTieCorrection) {
  MannWhitney r = MannWhitneyU({1, 2, 2, 3, 3}, {3, 4, 4, 5, 6});
  EXPECT_EQ(r.method, kNormalMethod);
  EXPECT_DOUBLE_EQ(r.u, 1);
  EXPECT_NEAR(r.p, 0.0192436, 1e-6);
  // Every value equal: no evidence at all.
  EXPECT_DOUBLE_EQ(MannWhitneyU({2, 2, 2, 2}, {2, 2, 2, 2}).p, 1.0);
  // Large samples leave the exact path; the documented asymptotic value is matched there too
  // by the same formula (checked here through a sample pair just past kExactMaxN).
  std::vector<double> a, b;
  for (int i = 0; i < kExactMaxN + 1; ++i) {
    a.push_back(i);
    b.push_back(i + 0.5);
  }
  EXPECT_EQ(MannWhitneyU(a, b).method, kNormalMethod);
}

TEST(MannWhitneyTest, MinimumRepetitions) {
  EXPECT_NEAR(MinimumPValue(3, 3), 0.1, 1e-12);
  EXPECT_NEAR(MinimumPValue(4, 4), 2.0 / 70, 1e-12);
  EXPECT_EQ(RepetitionsNeeded(0.05), 4);
  EXPECT_EQ(RepetitionsNeeded(0.01), 5);
  EXPECT_EQ(HolmAdjust({0.01, 0.04, 0.03}), (std::vector<double>{0.03, 0.06, 0.06}));
}

TEST(MedianChangeTest, IntervalOnKnownData) {
  RelativeChange c = MedianChange({10, 10, 10, 10, 10}, {12, 12, 12, 12, 12});
  EXPECT_NEAR(c.change, 0.2, 1e-12);
  EXPECT_NEAR(c.lo, 0.2, 1e-12);
  EXPECT_NEAR(c.hi, 0.2, 1e-12);
  // Bootstrap medians of {11..15} lie in [11, 15], and the middle three almost always.
  c = MedianChange({10, 10, 10, 10, 10}, {11, 12, 13, 14, 15});
  EXPECT_NEAR(c.change, 0.3, 1e-12);
  EXPECT_GE(c.lo, 0.1);
  EXPECT_LE(c.lo, 0.2 + 1e-12);
  EXPECT_GE(c.hi, 0.4 - 1e-12);
  EXPECT_LE(c.hi, 0.5);
  // Deterministic: the same seed gives the same interval.
  RelativeChange again = MedianChange({10, 10, 10, 10, 10}, {11, 12, 13, 14, 15});
  EXPECT_EQ(c.lo, again.lo);
  EXPECT_EQ(c.hi, again.hi);
  // A zero baseline: an infinite change, never NaN.
  EXPECT_TRUE(std::isinf(MedianChange({0, 0, 0}, {1, 1, 1}).change));
}

TEST(JudgeTest, TooFewRepetitionsIsInconclusiveAndSaysHowMany) {
  Judgement j = Judge({1, 1.01, 0.99}, {2, 2.01, 1.99}, false, {});
  EXPECT_EQ(j.verdict, kInconclusive);
  EXPECT_NE(j.reason.find("needs >= 4 repetitions per side"), std::string::npos) << j.reason;
  j = Judge({1, 1.01, 0.99, 1.02}, {2, 2.01, 1.99, 2.02}, false, {});
  EXPECT_EQ(j.verdict, kRegression);
  // Higher is better: the same data is an improvement.
  EXPECT_EQ(Judge({1, 1.01, 0.99, 1.02}, {2, 2.01, 1.99, 2.02}, true, {}).verdict, kImprovement);
  // Significant but within the threshold: no change.
  EXPECT_EQ(Judge({1, 1.001, 0.999, 1.002}, {1.05, 1.051, 1.049, 1.052}, false, {}).verdict,
            kNoChange);
}

// A leak rate below 0 that turns into a leak is a rise (it was "-581 %, improvement").
TEST(JudgeTest, NegativeAndZeroBaselinesKeepTheDirection) {
  Judgement j = Judge({-1.0, -1.05, -1.1, -1.02}, {5.0, 5.05, 5.1, 5.02}, false, {});
  EXPECT_GT(j.change.change, 5);
  EXPECT_GT(j.change.lo, 0);
  EXPECT_EQ(j.verdict, kRegression);
  j = Judge({-2.0, -2.01, -2.02, -2.03}, {-1.0, -1.01, -1.02, -1.03}, false, {});
  EXPECT_NEAR(j.change.change, 0.5, 0.01);  // -2 -> -1 rose by half of |-2|
  EXPECT_EQ(j.verdict, kRegression);
  // A zero baseline: no relative change; the test and the direction decide, and it says so.
  j = Judge({0, 0, 0, 0}, {-1, -1.1, -1.2, -1.3}, false, {});
  EXPECT_TRUE(std::isinf(j.change.change) && j.change.change < 0);
  EXPECT_EQ(j.verdict, kImprovement);
  EXPECT_NE(j.reason.find("baseline median is 0"), std::string::npos) << j.reason;
}

// +33 % with p = 0.2 at 4 vs 4 is not "no change": the test could not tell.
TEST(JudgeTest, ALargeChangeThatIsNotSignificantIsInconclusive) {
  Judgement j = Judge({10, 14, 9, 12}, {16, 11, 13, 17}, false, {});
  EXPECT_GE(j.p, 0.05);
  EXPECT_GT(j.change.change, 0.10);
  EXPECT_EQ(j.verdict, kInconclusive);
  EXPECT_NE(j.reason.find("underpowered"), std::string::npos) << j.reason;
  // Within the threshold and not significant: no change.
  EXPECT_EQ(Judge({10, 10.4, 9.9, 10.2}, {10.3, 10.1, 10.2, 10.5}, false, {}).verdict, kNoChange);
}

// Synthetic repetitions: lognormal noise, as run times on a shared machine look (skewed, tails).
struct Trials {
  int regression = 0, improvement = 0, rejected = 0, total = 0;
};

Trials Simulate(double shift, double sigma, int n, int trials, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> noise(0.0, sigma);
  Trials t;
  for (int i = 0; i < trials; ++i) {
    std::vector<double> base, cur;
    for (int k = 0; k < n; ++k) base.push_back(100 * noise(rng));
    for (int k = 0; k < n; ++k) cur.push_back(100 * (1 + shift) * noise(rng));
    // 200 bootstrap resamples instead of 2000: the interval plays no part in the verdict, and
    // 8000 comparisons take a minute with 2000 in a debug build.
    Judgement j = Judge(base, cur, false, {.bootstrap_resamples = 200});
    t.regression += j.verdict == kRegression;
    t.improvement += j.verdict == kImprovement;
    t.rejected += j.test.p < 0.05;
    ++t.total;
  }
  return t;
}

double Rate(int k, int n) { return static_cast<double>(k) / n; }

// The same workload against itself: noise alone must be flagged at most alpha of the time.
// Noise sigma 0.25 (a ~25 % spread, far above the 10 % threshold) so the threshold alone
// cannot hide false alarms: the test's p does the work.
TEST(FalseAlarmTest, SameDistributionIsRarelyFlagged) {
  for (double sigma : {0.05, 0.25}) {
    Trials t = Simulate(0.0, sigma, 9, 2000, 42);
    printf(
        "false alarms, n=9 per side, noise sigma %.2f, %d trials: regression %.4f, "
        "improvement %.4f, MWU p<0.05 %.4f\n",
        sigma, t.total, Rate(t.regression, t.total), Rate(t.improvement, t.total),
        Rate(t.rejected, t.total));
    EXPECT_LE(Rate(t.regression, t.total), 0.05);
    EXPECT_LE(Rate(t.improvement, t.total), 0.05);
    // The exact test rejects at most alpha of the time (a little less: p is discrete); 2000
    // trials measure the rate to +-0.5 points.
    EXPECT_GE(Rate(t.rejected, t.total), 0.035);
    EXPECT_LE(Rate(t.rejected, t.total), 0.065);
  }
}

TEST(PlantedChangeTest, ThirtyPercentIsFoundThreePercentIsNot) {
  Trials big = Simulate(0.30, 0.10, 9, 2000, 7);
  printf("planted +30 %%, n=9, noise sigma 0.10: flagged regression in %.4f of %d trials\n",
         Rate(big.regression, big.total), big.total);
  EXPECT_GE(Rate(big.regression, big.total), 0.95);
  Trials small = Simulate(0.03, 0.03, 9, 2000, 8);
  printf(
      "planted +3 %%, n=9, noise sigma 0.03: flagged regression in %.4f of %d trials, "
      "MWU p<0.05 in %.4f\n",
      Rate(small.regression, small.total), small.total, Rate(small.rejected, small.total));
  EXPECT_EQ(small.regression, 0);
}

}  // namespace
}  // namespace fs::regression
