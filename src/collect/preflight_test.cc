#include "src/collect/preflight.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace fs::profile {
namespace {

TEST(PreflightTest, LoadgenFpsTakesTheLastLinePerCameraOfThisRun) {
  std::string log =
      "2026-11-24T19:00:00.000Z I loadgen: camera=cam00 FPS: 12.0\n"  // Earlier run.
      "2026-11-24T19:25:04.846Z I loadgen: camera=cam00 FPS: 29.0\n"
      "2026-11-24T19:25:04.846Z I loadgen: camera=cam01 FPS: 30.0\n"
      "garbage camera= FPS: \n"
      "2026-11-24T19:25:09.846Z I loadgen: camera=cam00 FPS: 30.0\n"
      "no timestamp camera=cam02 FPS: 30.0\n"
      "2026-11-24T19:25:09.846Z I loadgen: camera=cam03 FPS: nan-ish\n";
  double since = 0;
  ASSERT_TRUE(ParseLogTimestamp("2026-11-24T19:25:00.000Z", &since));
  auto fps = ParseLoadgenFps(log, since);
  ASSERT_EQ(fps.size(), 2u);
  EXPECT_DOUBLE_EQ(fps["cam00"].fps, 30.0);
  EXPECT_DOUBLE_EQ(fps["cam01"].fps, 30.0);
  EXPECT_NEAR(fps["cam00"].at_s - since, 9.846, 1e-6);
}

TEST(PreflightTest, TimestampParsing) {
  double t = 0;
  ASSERT_TRUE(ParseLogTimestamp("1970-01-01T00:01:00.500Z rest", &t));
  EXPECT_DOUBLE_EQ(t, 60.5);
  EXPECT_FALSE(ParseLogTimestamp("1970-01-01 00:01:00", &t));
  EXPECT_FALSE(ParseLogTimestamp("", &t));
}

TEST(PreflightTest, PerfEventsOnOurselvesOrAClearError) {
  auto line = CheckPerfEvents(getpid());
  if (line.ok()) {
    EXPECT_NE(line->find("perf events: ok"), std::string::npos);
  } else {
    EXPECT_NE(line.status().message().find("Fix:"), std::string::npos);
  }
  auto dead = CheckPerfEvents(999999999);
  EXPECT_FALSE(dead.ok());
}

}  // namespace
}  // namespace fs::profile
