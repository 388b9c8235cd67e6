// The DWARF unwinder against a real kernel: unwinder_testprog (no frame pointers) sampled by
// the Sampler in DWARF mode, unwound, and symbolized; plus the frame-pointer contrast, the
// reuse of one Unwinder across samples, bad samples, and throughput.
#include "src/symbolize/unwinder.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "src/collect/sampler.h"
#include "src/symbolize/symbolizer.h"

namespace fs::profile {
namespace {

// A running unwinder_testprog: spawned waiting for "go", killed on destruction.
class Workload {
 public:
  Workload() {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      execl(FS_UNWINDER_TESTPROG, FS_UNWINDER_TESTPROG, "2000", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_child_ = in[1];
    from_child_ = fdopen(out[0], "r");
    char word[16];
    ready_ = std::fscanf(from_child_, "%15s", word) == 1 && std::string(word) == "ready";
  }
  ~Workload() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (to_child_ >= 0) close(to_child_);
    if (from_child_ != nullptr) fclose(from_child_);
  }
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  void Go() { ASSERT_EQ(write(to_child_, "g", 1), 1); }
  // Blocks until the burn is over; the process stays alive (and mapped) until destruction.
  bool WaitDone() {
    char word[16];
    return std::fscanf(from_child_, "%15s", word) == 1 && std::string(word) == "done";
  }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  FILE* from_child_ = nullptr;
  bool ready_ = false;
};

// Samples the whole burn (2 s of the workload's CPU time at 999 Hz: ~2000 samples, so the
// 75/25 split has a standard error of ~1 point). With `unwinder`, unwinds each batch as it is
// taken, the way Record() does, so no stack copy outlives its 100 ms batch.
std::vector<RawSample> SampleBurn(Workload* w, bool dwarf, Unwinder* unwinder) {
  SamplerOptions so;
  so.pids = {w->pid()};
  so.frequency_hz = 999;
  so.dwarf = dwarf;
  auto sampler = Sampler::Start(so);
  EXPECT_TRUE(sampler.ok()) << sampler.status().message();
  if (!sampler.ok()) return {};
  w->Go();
  std::vector<RawSample> all;
  auto take = [&] {
    (*sampler)->Poll();
    for (RawSample& s : (*sampler)->TakeSamples()) {
      if (unwinder != nullptr) unwinder->Unwind(&s);
      all.push_back(std::move(s));
    }
  };
  std::atomic<bool> done{false};
  std::thread waiter([w, &done] {
    w->WaitDone();
    done = true;
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    take();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  waiter.join();
  (*sampler)->Stop();
  take();
  EXPECT_EQ((*sampler)->lost(), 0u);
  EXPECT_EQ((*sampler)->malformed(), 0u);
  return all;
}

struct CallerCounts {
  int burn = 0;       // Samples whose user leaf is Burn.
  int a = 0, b = 0;   // ... whose caller is CallerA / CallerB.
  int with_main = 0;  // ... with main further up.
};

CallerCounts CountCallers(const std::vector<RawSample>& samples, Symbolizer* sym) {
  CallerCounts c;
  for (const RawSample& s : samples) {
    if (s.user_ips.empty() || sym->Describe(s.user_ips[0]) != "Burn") continue;
    c.burn++;
    if (s.user_ips.size() >= 2) {
      std::string caller = sym->Describe(s.user_ips[1], true);
      c.a += caller == "CallerA";
      c.b += caller == "CallerB";
    }
    for (size_t i = 1; i < s.user_ips.size(); ++i) {
      if (sym->Describe(s.user_ips[i], true) == "main") {
        c.with_main++;
        break;
      }
    }
  }
  return c;
}

TEST(UnwinderTest, DwarfFindsCallersOfFramePointerlessCodeInKnownRatio) {
  Workload w;
  ASSERT_TRUE(w.ready());
  auto unwinder = Unwinder::ForProcess(w.pid());
  ASSERT_TRUE(unwinder.ok()) << unwinder.status().message();
  std::vector<RawSample> samples = SampleBurn(&w, true, unwinder->get());
  auto sym = Symbolizer::ForProcess(w.pid());
  ASSERT_TRUE(sym.ok()) << sym.status().message();
  for (const RawSample& s : samples) {
    EXPECT_TRUE(s.user_stack.empty() && s.user_regs.empty()) << "stack copy not released";
  }
  CallerCounts c = CountCallers(samples, sym->get());
  const UnwindStats& st = (*unwinder)->stats();
  printf(
      "[dwarf] %zu samples: %d in Burn (CallerA %d, CallerB %d, main above %d); unwound %llu, "
      "ip-only %llu, no regs %llu, complete %llu, average depth %.1f\n",
      samples.size(), c.burn, c.a, c.b, c.with_main, static_cast<unsigned long long>(st.unwound),
      static_cast<unsigned long long>(st.ip_only), static_cast<unsigned long long>(st.no_regs),
      static_cast<unsigned long long>(st.complete), st.AverageDepth());
  ASSERT_GT(c.burn, 1000);
  // Nearly every Burn sample is attributed to one of its two real callers...
  EXPECT_GT(c.a + c.b, c.burn * 95 / 100);
  EXPECT_GT(c.with_main, c.burn * 95 / 100);
  // ... in the ratio of the work they hand it.
  double a_pct = 100.0 * c.a / (c.a + c.b);
  EXPECT_NEAR(a_pct, 75, 5);
  EXPECT_NEAR(100 - a_pct, 25, 5);
  EXPECT_GT(st.AverageDepth(), 4);  // Burn, Caller, BurnUntil, main, libc start.
}

// Documents why DWARF mode exists: the kernel's frame-pointer walk starts at rbp, which Burn
// never sets, so it cannot know who called Burn.
TEST(UnwinderTest, FramePointersMissTheCallersOfFramePointerlessCode) {
  Workload w;
  ASSERT_TRUE(w.ready());
  std::vector<RawSample> samples = SampleBurn(&w, false, nullptr);
  auto sym = Symbolizer::ForProcess(w.pid());
  ASSERT_TRUE(sym.ok()) << sym.status().message();
  CallerCounts c = CountCallers(samples, sym->get());
  printf("[fp] %d samples in Burn: CallerA %d, CallerB %d\n", c.burn, c.a, c.b);
  ASSERT_GT(c.burn, 1000);
  EXPECT_LT(c.a + c.b, c.burn / 10);
}

// One Unwinder reused across samples (and tids) gives what a fresh Unwinder per sample (perf's
// approach) gives: no thread state leaks from one sample into the next.
TEST(UnwinderTest, ReusedUnwinderMatchesFreshOnes) {
  Workload w;
  ASSERT_TRUE(w.ready());
  std::vector<RawSample> raw = SampleBurn(&w, true, nullptr);  // Stack copies kept.
  ASSERT_GT(raw.size(), 100u);
  auto reused = Unwinder::ForProcess(w.pid());
  ASSERT_TRUE(reused.ok()) << reused.status().message();
  // Every 7th sample, reversed, then once more with a made-up tid.
  std::vector<RawSample> picked;
  for (size_t i = 0; i < raw.size() && picked.size() < 40; i += 7) picked.push_back(raw[i]);
  std::vector<std::vector<uint64_t>> got;
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) {
    RawSample copy = *it;
    (*reused)->Unwind(&copy);
    got.insert(got.begin(), copy.user_ips);
  }
  size_t deep = 0;
  for (size_t i = 0; i < picked.size(); ++i) {
    RawSample fresh_copy = picked[i];
    auto fresh = Unwinder::ForProcess(w.pid());
    ASSERT_TRUE(fresh.ok());
    (*fresh)->Unwind(&fresh_copy);
    EXPECT_EQ(got[i], fresh_copy.user_ips) << "sample " << i;
    deep += fresh_copy.user_ips.size() >= 4;
    RawSample other_tid = picked[i];
    other_tid.tid += 12345;
    (*reused)->Unwind(&other_tid);
    EXPECT_EQ(got[i], other_tid.user_ips) << "sample " << i;
  }
  EXPECT_GT(deep, picked.size() * 9 / 10);
}

TEST(UnwinderTest, BadSamplesKeepWhatTheyHave) {
  Workload w;
  ASSERT_TRUE(w.ready());
  std::vector<RawSample> raw = SampleBurn(&w, true, nullptr);
  ASSERT_FALSE(raw.empty());
  auto unwinder = Unwinder::ForProcess(w.pid());
  ASSERT_TRUE(unwinder.ok()) << unwinder.status().message();
  const RawSample& good = raw.front();
  ASSERT_EQ(good.user_regs.size(), static_cast<size_t>(kNumUserRegs));

  RawSample no_regs = good;  // abi NONE: the kernel callchain stays.
  no_regs.regs_abi = PERF_SAMPLE_REGS_ABI_NONE;
  no_regs.user_ips = {0x1234, 0x5678};
  EXPECT_EQ((*unwinder)->Unwind(&no_regs), 2u);
  EXPECT_EQ(no_regs.user_ips, (std::vector<uint64_t>{0x1234, 0x5678}));
  EXPECT_TRUE(no_regs.user_stack.empty());

  RawSample short_regs = good;  // Wrong register count: treated as no registers.
  short_regs.user_regs.resize(3);
  (*unwinder)->Unwind(&short_regs);
  EXPECT_EQ(short_regs.user_ips, good.user_ips);

  RawSample no_stack = good;  // Nothing copied: the IP and whatever needs no stack.
  no_stack.user_stack.clear();
  ASSERT_GE((*unwinder)->Unwind(&no_stack), 1u);
  EXPECT_EQ(no_stack.user_ips[0], good.user_regs[kRegIp]);

  RawSample wild = good;  // Garbage SP and a truncated copy: no crash, IP kept.
  wild.user_regs[kRegSp] = 0xdeadbeef0;
  wild.user_stack.resize(24);
  ASSERT_GE((*unwinder)->Unwind(&wild), 1u);
  EXPECT_EQ(wild.user_ips[0], good.user_regs[kRegIp]);

  // An IP outside every module: no CFI, so libdwfl may try the x86_64 frame-pointer fallback
  // (rbp) on the copied stack; the IP still comes first.
  RawSample nowhere = good;
  nowhere.user_regs[kRegIp] = 0x10;
  ASSERT_GE((*unwinder)->Unwind(&nowhere), 1u);
  EXPECT_EQ(nowhere.user_ips[0], 0x10u);
}

// The entry point of a function of this binary: its CFI there says "the return address is at
// [rsp]", whatever the compiler did with frame pointers in the body.
extern "C" __attribute__((noinline)) void FpFallbackLeaf() { asm volatile(""); }

// A synthetic sample at FpFallbackLeaf's entry whose [rsp] holds 0 (CFI ends the walk at the
// leaf) but whose rbp chain in the same stack copy leads through two plausible frames.
RawSample CfiStopsAtLeafSample() {
  constexpr uint64_t kSp = 0x7ffd00000000ULL;
  std::vector<uint64_t> words(16, 0);
  words[4] = kSp + 64;  // rbp = kSp + 32: {caller's rbp, return address}
  words[5] = 0x401000;
  words[8] = 0;  // The outermost frame: rbp 0.
  words[9] = 0x402000;
  RawSample s;
  s.pid = static_cast<uint32_t>(getpid());
  s.tid = static_cast<uint32_t>(gettid());
  s.regs_abi = PERF_SAMPLE_REGS_ABI_64;
  s.user_regs.assign(kNumUserRegs, 0);
  s.user_regs[kRegIp] = reinterpret_cast<uint64_t>(&FpFallbackLeaf);
  s.user_regs[kRegSp] = kSp;
  s.user_regs[kRegBp] = kSp + 32;
  s.user_stack.resize(words.size() * sizeof(uint64_t));
  std::memcpy(s.user_stack.data(), words.data(), s.user_stack.size());
  return s;
}

TEST(UnwinderTest, FramePointerChainIsKeptWhenCfiStopsAtTheLeaf) {
  auto unwinder = Unwinder::ForProcess(getpid());
  ASSERT_TRUE(unwinder.ok()) << unwinder.status().message();
  RawSample s = CfiStopsAtLeafSample();
  const uint64_t ip = s.user_regs[kRegIp];
  UnwindMethod method = UnwindMethod::kCfi;
  EXPECT_EQ((*unwinder)->Unwind(&s, &method), 3u);
  EXPECT_EQ(s.user_ips, (std::vector<uint64_t>{ip, 0x401000, 0x402000}));
  EXPECT_EQ(method, UnwindMethod::kFramePointer);
  EXPECT_EQ((*unwinder)->stats().fp_fallback, 1u);
  EXPECT_TRUE(s.user_stack.empty());

  // Without an Unwinder (the process is gone) the same walk is all there is.
  RawSample orphan = CfiStopsAtLeafSample();
  EXPECT_EQ(UnwindByFramePointers(&orphan, &method), 3u);
  EXPECT_EQ(orphan.user_ips, (std::vector<uint64_t>{ip, 0x401000, 0x402000}));
  EXPECT_EQ(method, UnwindMethod::kFramePointer);
}

TEST(UnwinderTest, FramePointerWalkStopsAtJunk) {
  RawSample s = CfiStopsAtLeafSample();
  const uint64_t ip = s.user_regs[kRegIp];
  auto set_word = [&s](size_t i, uint64_t v) { std::memcpy(&s.user_stack[i * 8], &v, 8); };
  set_word(9, 0xffffffff81000000ULL);  // A kernel-range "return address" ends the chain.
  EXPECT_EQ(FramePointerWalk(s, 127), (std::vector<uint64_t>{ip, 0x401000}));
  set_word(4, 0x7ffd00000000ULL);  // A caller frame below this one: not a chain.
  EXPECT_EQ(FramePointerWalk(s, 127), (std::vector<uint64_t>{ip, 0x401000}));
  s.user_regs[kRegBp] = 0x7ffd00000000ULL + 4096;  // Outside the copy: the IP only.
  EXPECT_EQ(FramePointerWalk(s, 127), (std::vector<uint64_t>{ip}));
  s.regs_abi = PERF_SAMPLE_REGS_ABI_NONE;
  EXPECT_TRUE(FramePointerWalk(s, 127).empty());
}

TEST(UnwinderTest, DeadPidIsAClearError) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  auto u = Unwinder::ForProcess(child);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find(std::to_string(child)), std::string::npos);
}

// Not a benchmark with a limit: prints samples/s so the milestone report can quote it.
TEST(UnwinderTest, Throughput) {
  Workload w;
  ASSERT_TRUE(w.ready());
  std::vector<RawSample> raw = SampleBurn(&w, true, nullptr);
  ASSERT_GT(raw.size(), 100u);
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  auto t0 = Clock::now();
  auto unwinder = Unwinder::ForProcess(w.pid());
  ASSERT_TRUE(unwinder.ok());
  double open_ms = seconds(t0) * 1e3;
  constexpr size_t kN = 5000;
  size_t frames = 0;
  auto t1 = Clock::now();
  for (size_t i = 0; i < kN; ++i) {
    RawSample s = raw[i % raw.size()];
    frames += (*unwinder)->Unwind(&s);
  }
  double reused_rate = kN / seconds(t1);
  // perf's way: a new Dwfl (modules, ELF, CFI) for every sample.
  constexpr size_t kFresh = 100;
  auto t2 = Clock::now();
  for (size_t i = 0; i < kFresh; ++i) {
    RawSample s = raw[i % raw.size()];
    auto fresh = Unwinder::ForProcess(w.pid());
    ASSERT_TRUE(fresh.ok());
    (*fresh)->Unwind(&s);
  }
  double fresh_rate = kFresh / seconds(t2);
  printf(
      "[throughput] DWARF unwind (%u-byte stacks): ForProcess %.1f ms; reused Unwinder "
      "%.0f samples/s (average depth %.1f); new Unwinder per sample %.0f samples/s (%.0fx "
      "slower)\n",
      SamplerOptions{}.stack_bytes, open_ms, reused_rate, static_cast<double>(frames) / kN,
      fresh_rate, reused_rate / fresh_rate);
  EXPECT_GT(frames, kN * 3);
}

}  // namespace
}  // namespace fs::profile
