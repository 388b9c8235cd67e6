// Known truth: leak_testprog leaks at a set rate; sampling it through the library must find that
// rate (RSS slope within ±10 %), and its warm-up-only mode must not be called a leak.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/memory/leak_rate.h"

namespace fs::profile {
namespace {

constexpr double kRateKibPerS = 2048;                                // 2 MiB/s
constexpr double kTrueMbPerHour = kRateKibPerS * 1024 * 3600 / 1e6;  // 7549.7 MB/h

// Starts leak_testprog and waits for its "ready"; kills it on destruction.
class TestProg {
 public:
  explicit TestProg(const std::string& mode) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      std::string prog = SelfExeDir() + "/leak_testprog", rate = std::to_string(kRateKibPerS);
      execl(prog.c_str(), prog.c_str(), mode.c_str(), rate.c_str(), "60", nullptr);
      _exit(127);
    }
    close(out[1]);
    char buf[8] = {};
    ready_ = read(out[0], buf, 6) == 6 && std::string(buf) == "ready\n";
    close(out[0]);
  }
  ~TestProg() {
    if (pid_ > 0) kill(pid_, SIGKILL), waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

// Samples `pid` every 200 ms for `seconds`.
std::vector<MemorySample> Follow(pid_t pid, double seconds) {
  std::vector<MemorySample> out;
  int64_t start = MonotonicNs();
  for (int k = 0; MonotonicNs() - start < static_cast<int64_t>(seconds * 1e9); ++k) {
    auto s = ReadProcessTreeMemory(pid, "leak_testprog");
    if (s.ok()) out.push_back(*s);
    std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(start + (k + 1) * 200'000'000LL)));
  }
  return out;
}

TEST(MemoryLeakKnownTruth, RssSlopeWithinTenPercentOfTheTrueRate) {
  TestProg prog("leak");
  ASSERT_TRUE(prog.ready()) << "leak_testprog did not start";
  std::vector<MemorySample> samples = Follow(prog.pid(), 8);
  ASSERT_GE(samples.size(), 35u);
  LeakRate r = EstimateLeakRate(RssSeries(samples));
  std::printf("measured %.1f MB/h, ci95 [%.1f, %.1f], truth %.1f MB/h, %zu samples\n",
              r.slope_mb_per_h, r.ci95_lo, r.ci95_hi, kTrueMbPerHour, r.points);
  EXPECT_NEAR(r.slope_mb_per_h, kTrueMbPerHour, kTrueMbPerHour * 0.10)
      << "ci95 [" << r.ci95_lo << ", " << r.ci95_hi << "] from " << r.points << " samples";
  EXPECT_EQ(r.verdict, LeakVerdict::kNotMet);
  EXPECT_LE(r.ci95_lo, r.slope_mb_per_h);
  EXPECT_GE(r.ci95_hi, r.slope_mb_per_h);
}

TEST(MemoryLeakKnownTruth, WarmupCacheIsNotALeakAfterItsWarmup) {
  TestProg prog("warmup");
  ASSERT_TRUE(prog.ready()) << "leak_testprog did not start";
  std::vector<MemorySample> samples = Follow(prog.pid(), 8);
  ASSERT_GE(samples.size(), 35u);
  // The cache did fill (6 MiB in its first 3 s, less the churn's reused heap)...
  EXPECT_GE(samples.back().bytes.rss, samples.front().bytes.rss + (3u << 20));
  LeakRate whole = EstimateLeakRate(RssSeries(samples), {.warmup_fraction = 0});
  // ...and after its warm-up the slope is near zero and inside its interval.
  LeakRate r = EstimateLeakRate(RssSeries(samples), {.warmup_s = 4});
  std::printf("after warm-up %.1f MB/h, ci95 [%.1f, %.1f] (%s); without %.1f MB/h\n",
              r.slope_mb_per_h, r.ci95_lo, r.ci95_hi, LeakVerdictName(r.verdict),
              whole.slope_mb_per_h);
  EXPECT_NE(r.verdict, LeakVerdict::kNotMet)
      << r.slope_mb_per_h << " [" << r.ci95_lo << ", " << r.ci95_hi << "]";
  EXPECT_LE(r.ci95_lo, 0);
  EXPECT_GE(r.ci95_hi, 0);
  EXPECT_LT(std::abs(r.slope_mb_per_h), kTrueMbPerHour * 0.02);
}

}  // namespace
}  // namespace fs::profile
