// BuildProfile on synthetic samples (no kernel, no symbolizer): merging, labels, periods and the
// cut at implausible return addresses.
#include "src/record/recorder.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace fs::profile {
namespace {

RawSample Sample(uint32_t tid, std::vector<uint64_t> user, uint64_t period = 10000000) {
  RawSample s;
  s.pid = 100;
  s.tid = tid;
  s.period = period;
  s.user_ips = std::move(user);
  return s;
}

TEST(BuildProfileTest, MergesIdenticalStacksPerThreadWithLabels) {
  std::vector<RawSample> raw = {Sample(101, {0x401000, 0x402000}),
                                Sample(101, {0x401000, 0x402000}),
                                Sample(102, {0x401000, 0x402000}, 5000000)};
  Profile p = BuildProfile(raw, {}, {{101, "worker"}, {102, "io"}}, {{100, "capture"}}, 99);
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].values, (std::vector<int64_t>{2, 20000000}));
  EXPECT_EQ(p.samples[0].labels.at("thread"), "worker");
  EXPECT_EQ(p.samples[0].labels.at("service"), "capture");
  EXPECT_EQ(p.samples[0].num_labels.at("tid"), 101);
  EXPECT_EQ(p.samples[1].values, (std::vector<int64_t>{1, 5000000}));
  EXPECT_EQ(p.period, 1000000000 / 99);
  EXPECT_EQ(p.samples[0].location_ids.size(), 2u);
}

TEST(BuildProfileTest, GarbageReturnAddressesCutTheStackVisibly) {
  // Leaf, one good caller, then junk a frame-pointer walk read from a frameless function.
  std::vector<RawSample> raw = {Sample(101, {0x401000, 0x402000, 0x0, 0x403000}),
                                Sample(101, {0x401000, 0xffffffff82000000ULL, 0x404000}),
                                Sample(101, {0x10, 0x401000})};  // A bad leaf is kept.
  Profile p = BuildProfile(raw, {}, {}, {}, 99);
  ASSERT_EQ(p.samples.size(), 3u);
  auto function_of = [&p](uint64_t location_id) -> std::string {
    const Location* l = p.FindLocation(location_id);
    if (l == nullptr || l->lines.empty()) return "";
    return p.FindFunction(l->lines[0].function_id)->name;
  };
  ASSERT_EQ(p.samples[0].location_ids.size(), 3u);
  EXPECT_EQ(function_of(p.samples[0].location_ids[2]), "[truncated stack]");
  ASSERT_EQ(p.samples[1].location_ids.size(), 2u);
  EXPECT_EQ(function_of(p.samples[1].location_ids[1]), "[truncated stack]");
  EXPECT_EQ(p.samples[1].location_ids[1], p.samples[0].location_ids[2]);  // One location.
  EXPECT_EQ(p.samples[2].location_ids.size(), 2u);
}

// A thread renamed while recorded: each sample is labelled with the name it had when taken
// (RawSample::thread_name, from COMM records in time order), not the name at the end; the
// end-of-run names only fill in samples taken when no name was known.
TEST(BuildProfileTest, ThreadNamesAsTheyWereWhenSampled) {
  RawSample early = Sample(101, {0x401000});
  early.thread_name = "starting";
  RawSample late = Sample(101, {0x401000});
  late.thread_name = "serving";
  RawSample unknown = Sample(102, {0x401000});
  Profile p =
      BuildProfile({early, late, late, unknown}, {}, {{101, "serving"}, {102, "io"}}, {}, 99);
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_EQ(p.samples[0].labels.at("thread"), "starting");
  EXPECT_EQ(p.samples[0].values[0], 1);
  EXPECT_EQ(p.samples[1].labels.at("thread"), "serving");
  EXPECT_EQ(p.samples[1].values[0], 2);
  EXPECT_EQ(p.samples[2].labels.at("thread"), "io");
}

// ---------------------------------------------------------------------------------------------
// Record / Recording against the real kernel (cpu-clock), with a busy child of this process.

class BusyChild {
 public:
  BusyChild() : pid_(fork()) {
    if (pid_ == 0) {
      volatile uint64_t i = 0;
      for (;;) i = i + 1;
    }
  }
  ~BusyChild() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

int64_t SampleCount(const Profile& p) {
  int64_t n = 0;
  for (const auto& s : p.samples) n += s.values[0];
  return n;
}

// Per-thread events: the governor's hook is called there too, the rate changes, and the result
// says what a change cannot reach.
TEST(RecordTest, GovernorWorksWithPerThreadEvents) {
  BusyChild child;
  RecordOptions o;
  o.pids = {child.pid()};
  o.system_wide = false;
  o.frequency_hz = 200;
  o.duration_s = 2.5;
  int calls = 0;
  o.adjust_frequency = [&calls](double elapsed_s, int hz) {
    calls++;
    return elapsed_s >= 1 ? 50 : hz;
  };
  auto r = Record(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->system_wide);
  EXPECT_GE(calls, 1);
  EXPECT_EQ(r->final_frequency_hz, 50);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("inherited"), std::string::npos) << r->warnings[0];
  const std::string key = "pid " + std::to_string(child.pid());
  ASSERT_TRUE(r->unwind_by_service.count(key)) << "no unwind counts for " << key;
  EXPECT_GT(r->unwind_by_service.at(key).full + r->unwind_by_service.at(key).truncated, 10u);
}

// TakeWindow hands out the samples polled so far; Finish has only the rest.
TEST(RecordingTest, WindowsSplitTheSamples) {
  BusyChild child;
  RecordOptions o;
  o.pids = {child.pid()};
  o.frequency_hz = 200;
  o.duration_s = 2;
  auto rec = Recording::Start(o);
  ASSERT_TRUE(rec.ok()) << rec.status().message();
  Profile first;
  const auto start = std::chrono::steady_clock::now();
  bool taken = false;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!taken && std::chrono::steady_clock::now() - start > std::chrono::seconds(1)) {
      first = (*rec)->TakeWindow();
      taken = true;
    }
  } while ((*rec)->Poll());
  RecordResult r = (*rec)->Finish();
  ASSERT_TRUE(taken);
  EXPECT_GT(SampleCount(first), 5);
  EXPECT_GT(SampleCount(r.profile), 5);
  EXPECT_EQ(static_cast<int64_t>(r.samples), SampleCount(r.profile));
  EXPECT_GT(first.duration_nanos, 900'000'000);
  EXPECT_EQ(r.profile.time_nanos, first.time_nanos + first.duration_nanos);
}

}  // namespace
}  // namespace fs::profile
