#include "src/session/governor.h"

#include <gtest/gtest.h>

#include <memory>

namespace fs::profile {
namespace {

// Synthetic costs: the test sets how much CPU framescope "used" per second and how busy the
// host "was"; the governor reads them as it would read the clock and /proc/stat.
class FakeCost : public CostReader {
 public:
  double cost_pct = 1.0;  // Our CPU, % of one core, per one-second reading.
  double host_pct = 50.0;
  double SelfCpuSeconds() override {
    cpu_s_ += cost_pct / 100.0;
    return cpu_s_;
  }
  double HostCpuPercent() override { return host_pct; }

 private:
  double cpu_s_ = 0;
};

struct Harness {
  explicit Harness(GovernorOptions o = {}) {
    auto c = std::make_unique<FakeCost>();
    cost = c.get();
    governor = std::make_unique<Governor>(o, std::move(c));
    hz = o.requested_hz;
  }
  // `seconds` one-second readings, applying each returned rate as the recorder does.
  void Run(int seconds) {
    for (int i = 0; i < seconds; ++i) hz = governor->Adjust(++t, hz);
  }
  FakeCost* cost;
  std::unique_ptr<Governor> governor;
  int hz;
  double t = 0;
};

TEST(GovernorTest, OwnCostUnderBudgetKeepsTheRequestedRate) {
  Harness h;
  h.cost->cost_pct = 1.0;
  h.Run(30);
  EXPECT_EQ(h.hz, 99);
  GovernorReport r = h.governor->Report(h.t);
  EXPECT_TRUE(r.changes.empty());
  EXPECT_EQ(r.readings, 29);  // The first reading only primes.
  EXPECT_NEAR(r.mean_cost_pct, 1.0, 1e-9);
  EXPECT_DOUBLE_EQ(r.effective_hz, 99);
}

TEST(GovernorTest, LowersWhenOwnCostExceedsBudgetAndRestoresWhenItFalls) {
  Harness h;
  h.cost->cost_pct = 5.0;  // 2.5x the 2 % budget.
  h.Run(4);                // One priming reading, then three over budget.
  ASSERT_LT(h.hz, 99);
  EXPECT_GE(h.hz, 19);
  EXPECT_NE(1000 % h.hz, 0) << h.hz << " Hz samples in lockstep with millisecond timers";
  const int lowered = h.hz;
  GovernorReport r = h.governor->Report(h.t);
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0].from_hz, 99);
  EXPECT_EQ(r.changes[0].to_hz, lowered);
  EXPECT_NE(r.changes[0].reason.find("5.00% of one core"), std::string::npos)
      << r.changes[0].reason;
  EXPECT_NE(r.changes[0].reason.find("lowered"), std::string::npos);

  // Framescope's cost falls (e.g. fewer samples to unwind): the rate comes back.
  h.cost->cost_pct = 0.3;
  h.Run(10);
  EXPECT_EQ(h.hz, 99);
  r = h.governor->Report(h.t);
  ASSERT_EQ(r.changes.size(), 2u);
  EXPECT_NE(r.changes.back().reason.find("restored"), std::string::npos);
  EXPECT_EQ(r.changes.back().to_hz, 99);
  // Time-weighted: strictly between the lowered and the requested rate.
  EXPECT_GT(r.effective_hz, lowered);
  EXPECT_LT(r.effective_hz, 99);
}

// Every rate the governor picks on its own has a period that is not a whole number of
// milliseconds (ends in 9), down to the default floor.
TEST(GovernorTest, LoweredRatesDoNotAliasWithMillisecondTimers) {
  Harness h;
  h.cost->cost_pct = 3;  // Over the 2 % budget at any rate: lowered step by step to the floor.
  h.Run(40);
  GovernorReport r = h.governor->Report(h.t);
  ASSERT_GE(r.changes.size(), 2u);
  for (const auto& c : r.changes) EXPECT_EQ(c.to_hz % 10, 9) << c.to_hz << " Hz";
  EXPECT_EQ(h.hz, 19);
  EXPECT_EQ(NonAliasingRate(25), 19);
  EXPECT_EQ(NonAliasingRate(66), 59);
  EXPECT_EQ(NonAliasingRate(99), 99);
}

TEST(GovernorTest, NeverBelowTheFloor) {
  GovernorOptions o;
  o.min_hz = 40;
  Harness h(o);
  h.cost->cost_pct = 50;
  h.Run(30);
  EXPECT_EQ(h.hz, 40);
}

TEST(GovernorTest, OneSlowSecondDoesNotMoveTheRate) {
  Harness h;
  h.cost->cost_pct = 1.0;
  h.Run(5);
  h.cost->cost_pct = 4.5;  // e.g. a new child process symbolized: one second only.
  h.Run(1);
  h.cost->cost_pct = 1.0;
  h.Run(10);
  EXPECT_EQ(h.hz, 99);
  EXPECT_TRUE(h.governor->Report(h.t).changes.empty());
}

TEST(GovernorTest, BusyHostWarnsButDoesNotLowerTheRate) {
  Harness h;
  h.cost->cost_pct = 1.0;
  h.cost->host_pct = 97;  // The workload keeps the host busy; framescope itself is cheap.
  h.Run(30);
  EXPECT_EQ(h.hz, 99);
  GovernorReport r = h.governor->Report(h.t);
  EXPECT_TRUE(r.changes.empty());
  EXPECT_DOUBLE_EQ(r.effective_hz, 99);
  EXPECT_EQ(r.host_readings, 30);
  EXPECT_EQ(r.host_readings_above, 30);
  EXPECT_DOUBLE_EQ(r.host_peak_pct, 97);
  ASSERT_EQ(r.warnings.size(), 1u);  // One episode, one warning.
  EXPECT_NE(r.warnings[0].find("above 80%"), std::string::npos) << r.warnings[0];
  EXPECT_NE(r.warnings[0].find("not lowered"), std::string::npos) << r.warnings[0];
}

TEST(GovernorTest, QuietHostGivesNoWarning) {
  Harness h;
  h.cost->host_pct = 60;
  h.Run(10);
  GovernorReport r = h.governor->Report(h.t);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.host_readings_above, 0);
}

TEST(GovernorTest, ZeroBudgetTurnsRateChangesOff) {
  GovernorOptions o;
  o.max_overhead_pct = 0;
  Harness h(o);
  h.cost->cost_pct = 50;
  h.Run(10);
  EXPECT_EQ(h.hz, 99);
}

}  // namespace
}  // namespace fs::profile
