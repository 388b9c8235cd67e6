// BuildProfile on synthetic samples: merging, labels, periods and the cuts at junk frames
// (implausible return addresses, cycles) without a symbolizer; with the symbolizer of a live
// symbolizer_testprog, the locations of leaves and return addresses, and the cut at data.
#include "src/record/recorder.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <thread>

#include "src/symbolize/test_program.h"

namespace fs::profile {
namespace {

RawSample Sample(uint32_t tid, std::vector<uint64_t> user, uint64_t period = 10000000,
                 uint32_t pid = 100) {
  RawSample s;
  s.pid = pid;
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

// The outermost (non-inlined) function of a location; "" if it has none.
std::string FunctionOf(const Profile& p, uint64_t location_id) {
  const Location* l = p.FindLocation(location_id);
  if (l == nullptr || l->lines.empty()) return "";
  return p.FindFunction(l->lines.back().function_id)->name;
}

TEST(BuildProfileTest, GarbageReturnAddressesCutTheStackVisibly) {
  // Leaf, one good caller, then junk a frame-pointer walk read from a frameless function.
  std::vector<RawSample> raw = {Sample(101, {0x401000, 0x402000, 0x0, 0x403000}),
                                Sample(101, {0x401000, 0xffffffff82000000ULL, 0x404000}),
                                Sample(101, {0x10, 0x401000})};  // A bad leaf is kept.
  Profile p = BuildProfile(raw, {}, {}, {}, 99);
  ASSERT_EQ(p.samples.size(), 3u);
  auto function_of = [&p](uint64_t location_id) { return FunctionOf(p, location_id); };
  ASSERT_EQ(p.samples[0].location_ids.size(), 3u);
  EXPECT_EQ(function_of(p.samples[0].location_ids[2]), "[truncated stack]");
  ASSERT_EQ(p.samples[1].location_ids.size(), 2u);
  EXPECT_EQ(function_of(p.samples[1].location_ids[1]), "[truncated stack]");
  EXPECT_EQ(p.samples[1].location_ids[1], p.samples[0].location_ids[2]);  // One location.
  EXPECT_EQ(p.samples[2].location_ids.size(), 2u);
}

TEST(BuildProfileTest, StackEndingInACycleIsCutAfterOnePeriod) {
  // A frame-pointer chain that loops repeats the same frames until the kernel's depth limit.
  std::vector<uint64_t> loop = {0x401000, 0x402000, 0x403000};
  for (int i = 0; i < 20; ++i) {
    loop.push_back(0x404000);
    loop.push_back(0x405000);
  }
  std::vector<uint64_t> one_frame_loop = {0x401000, 0x402000};
  one_frame_loop.resize(60, 0x406000);
  // Recursion repeats too, but reaches its callers below the repeats: kept whole.
  std::vector<uint64_t> recursion = {0x401000};
  recursion.resize(40, 0x406000);
  recursion.push_back(0x407000);
  recursion.push_back(0x408000);
  Profile p = BuildProfile({Sample(101, loop), Sample(101, one_frame_loop), Sample(101, recursion)},
                           {}, {}, {}, 99);
  ASSERT_EQ(p.samples.size(), 3u);
  ASSERT_EQ(p.samples[0].location_ids.size(), 6u);  // Leaf, 0x402000, 0x403000, one period, cut.
  EXPECT_EQ(FunctionOf(p, p.samples[0].location_ids[5]), "[truncated stack]");
  EXPECT_EQ(p.FindLocation(p.samples[0].location_ids[4])->address, 0x405000u - 1);
  ASSERT_EQ(p.samples[1].location_ids.size(), 4u);
  EXPECT_EQ(FunctionOf(p, p.samples[1].location_ids[3]), "[truncated stack]");
  EXPECT_EQ(p.samples[2].location_ids.size(), recursion.size());
}

// BuildProfile over the symbolizer of a live symbolizer_testprog (frame pointers).
class SymbolizedBuildProfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(prog_.ready());
    auto symbolizer = Symbolizer::ForProcess(prog_.pid());
    ASSERT_TRUE(symbolizer.ok()) << symbolizer.status().message();
    symbolizer_ = std::move(symbolizer).value();
  }
  uint64_t Address(const std::string& key) const { return prog_.Value(key); }
  Profile Build(const std::vector<std::vector<uint64_t>>& stacks) const {
    std::vector<RawSample> raw;
    for (const auto& stack : stacks) {  // One thread each: no two samples merge.
      raw.push_back(Sample(101 + static_cast<uint32_t>(raw.size()), stack, 10000000, prog_.pid()));
    }
    Profile p = BuildProfile(raw, {{prog_.pid(), symbolizer_.get()}}, {}, {}, 99);
    EXPECT_EQ(p.samples.size(), stacks.size());
    return p;
  }
  static std::vector<std::string> Functions(const Profile& p, const profile::Sample& s) {
    std::vector<std::string> names;
    for (uint64_t id : s.location_ids) names.push_back(FunctionOf(p, id));
    return names;
  }

  TestProgram prog_{FS_SYMBOLIZER_TESTPROG_FP};
  std::unique_ptr<Symbolizer> symbolizer_;
};

// The return address of the call that ends EndsInNoReturnCall is the first instruction of
// FollowsNoReturnCall: a leaf there is FollowsNoReturnCall, a caller there EndsInNoReturnCall,
// whichever BuildProfile sees first.
TEST_F(SymbolizedBuildProfileTest, LeafAndCallerAtOneAddressKeepTheirOwnFunctions) {
  const uint64_t ra = Address("call_ra");
  ASSERT_EQ(ra, Address("next_function")) << "the test program's layout changed";
  const std::vector<uint64_t> as_leaf = {ra, Address("inlined_ra")};
  const std::vector<uint64_t> as_caller = {Address("noinline"), ra};
  const std::string follows = "framescope_testprog::FollowsNoReturnCall(int)";
  const std::string ends = "framescope_testprog::EndsInNoReturnCall(int)";
  for (bool leaf_first : {true, false}) {
    SCOPED_TRACE(leaf_first ? "leaf first" : "caller first");
    Profile p = leaf_first ? Build({as_leaf, as_caller}) : Build({as_caller, as_leaf});
    ASSERT_EQ(p.samples.size(), 2u);
    const profile::Sample& leaf = p.samples[leaf_first ? 0 : 1];
    const profile::Sample& caller = p.samples[leaf_first ? 1 : 0];
    EXPECT_EQ(Functions(p, leaf),
              (std::vector<std::string>{follows, "framescope_testprog::InliningCaller(int)"}));
    EXPECT_EQ(Functions(p, caller),
              (std::vector<std::string>{"framescope_testprog::NoInlineWork(int)", ends}));
    EXPECT_NE(leaf.location_ids[0], caller.location_ids[1]);
    // A return address is interned at address - 1, inside the call instruction.
    EXPECT_EQ(p.FindLocation(leaf.location_ids[0])->address, ra);
    EXPECT_EQ(p.FindLocation(caller.location_ids[1])->address, ra - 1);
  }
}

// Frame-pointer walks through frameless code read "return addresses" in data (heap, anonymous
// memory): the stack ends there under one "[truncated stack]" frame.
TEST_F(SymbolizedBuildProfileTest, FramesInDataEndTheStack) {
  const uint64_t anon = Address("anon");
  ASSERT_NE(anon, 0u);
  const std::string work = "framescope_testprog::NoInlineWork(int)";
  const std::string caller = "framescope_testprog::InliningCaller(int)";
  const std::string cut = "[truncated stack]";
  Profile p = Build({
      {Address("noinline"), Address("inlined_ra"), anon + 0x300, anon + 0xa00, anon + 0x300},
      {Address("noinline"), Address("inlined_ra"), Address("data"), Address("call_ra")},
      {anon + 0x10, Address("inlined_ra")},  // A leaf is the sampled pc: never cut.
  });
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_EQ(Functions(p, p.samples[0]), (std::vector<std::string>{work, caller, cut}));
  EXPECT_EQ(Functions(p, p.samples[1]), (std::vector<std::string>{work, caller, cut}));
  EXPECT_EQ(Functions(p, p.samples[2]), (std::vector<std::string>{"", caller}));
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

// A process that starts mid-recording (a restarted service's new pid) is followed: its samples
// carry the service label given to Follow, and the first target's exit does not end the
// recording while the followed one lives.
TEST(RecordingTest, FollowsAProcessStartedMidRecording) {
  auto first = std::make_unique<BusyChild>();
  RecordOptions o;
  o.pids = {first->pid()};
  o.services = {{first->pid(), "svc"}};
  o.frequency_hz = 200;
  o.duration_s = 2.5;
  auto rec = Recording::Start(o);
  ASSERT_TRUE(rec.ok()) << rec.status().message();
  const pid_t first_pid = first->pid();
  std::unique_ptr<BusyChild> second;
  const auto start = std::chrono::steady_clock::now();
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!second && std::chrono::steady_clock::now() - start > std::chrono::seconds(1)) {
      first.reset();  // Killed and reaped: "the service exited".
      second = std::make_unique<BusyChild>();
      const Status followed = (*rec)->Follow({second->pid()}, "svc");
      if (followed.message().find("per-thread") != std::string::npos) {
        GTEST_SKIP() << "system-wide events refused (needs root or CAP_PERFMON)";
      }
      ASSERT_TRUE(followed.ok()) << followed.message();
      // A process gone before it could be followed is an error, not "followed".
      auto gone = std::make_unique<BusyChild>();
      const pid_t gone_pid = gone->pid();
      gone.reset();
      EXPECT_FALSE((*rec)->Follow({gone_pid}, "svc").ok());
    }
  } while ((*rec)->Poll());
  RecordResult r = (*rec)->Finish();
  ASSERT_TRUE(second);
  EXPECT_GE(r.elapsed_s, 2.4) << "the first target's exit ended the recording";
  std::map<int64_t, int64_t> by_pid;
  for (const auto& s : r.profile.samples) {
    EXPECT_EQ(s.labels.at("service"), "svc");
    by_pid[s.num_labels.at("pid")] += s.values[0];
  }
  EXPECT_GT(by_pid[first_pid], 20);
  EXPECT_GT(by_pid[second->pid()], 20);
  EXPECT_EQ(r.exited, std::vector<pid_t>{first_pid});
  ASSERT_TRUE(r.unwind_by_service.count("svc"));
  EXPECT_EQ(r.unwind_by_service.size(), 1u) << "the followed pid counted under its own key";
}

// Per-thread events cannot follow a new process: Follow says so and nothing changes.
TEST(RecordingTest, FollowIsRefusedWithPerThreadEvents) {
  BusyChild child, other;
  RecordOptions o;
  o.pids = {child.pid()};
  o.system_wide = false;
  o.duration_s = 1;
  auto rec = Recording::Start(o);
  ASSERT_TRUE(rec.ok()) << rec.status().message();
  Status s = (*rec)->Follow({other.pid()}, "svc");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("per-thread"), std::string::npos) << s.message();
  while ((*rec)->Poll()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  RecordResult r = (*rec)->Finish();
  for (const auto& sample : r.profile.samples) {
    EXPECT_EQ(sample.num_labels.at("pid"), child.pid());
  }
}

}  // namespace
}  // namespace fs::profile
