// Integration tests for the sampler against a real kernel (cpu-clock needs no hardware PMU),
// plus unit tests of the ring reader on synthetic rings.
#include "src/collect/sampler.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "src/base/file_util.h"

namespace fs::profile {
namespace {

// ---------------------------------------------------------------------------------------------
// DrainRing on a synthetic ring.

class FakeRing {
 public:
  explicit FakeRing(uint64_t size) : data_(size, 0) { std::memset(&meta_, 0, sizeof(meta_)); }
  void SetPosition(uint64_t pos) { meta_.data_head = meta_.data_tail = pos; }
  // Appends raw bytes at data_head, wrapping at the end of the data area.
  void Append(const std::vector<uint8_t>& bytes) {
    for (uint8_t b : bytes) data_[meta_.data_head++ % data_.size()] = b;
  }
  // Drains and applies everything (as Sampler::Stop does); returns the samples kept.
  size_t Drain(RingSink* sink, uint64_t regs_user_mask = 0) {
    DrainRing(&meta_, data_.data(), data_.size(), sink, regs_user_mask);
    return ApplyRingEvents(sink, UINT64_MAX);
  }
  // Only parses into sink->pending (one ring of a poll).
  size_t Parse(RingSink* sink) { return DrainRing(&meta_, data_.data(), data_.size(), sink); }
  uint64_t tail() const { return meta_.data_tail; }
  uint64_t head() const { return meta_.data_head; }

 private:
  perf_event_mmap_page meta_;
  std::vector<uint8_t> data_;
};

class RecordBuilder {
 public:
  explicit RecordBuilder(uint32_t type, uint16_t misc = 0) {
    Put(perf_event_header{type, misc, 0});
  }
  template <typename T>
  RecordBuilder& Put(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
    return *this;
  }
  std::vector<uint8_t> Build() {
    while (bytes_.size() % 8) bytes_.push_back(0);
    uint16_t size = static_cast<uint16_t>(bytes_.size());
    std::memcpy(bytes_.data() + offsetof(perf_event_header, size), &size, sizeof(size));
    return bytes_;
  }

 private:
  std::vector<uint8_t> bytes_;
};

std::vector<uint8_t> SampleRecord(uint32_t pid, uint32_t tid, std::vector<uint64_t> chain,
                                  uint64_t time = 1000) {
  RecordBuilder b(PERF_RECORD_SAMPLE);
  b.Put(pid).Put(tid).Put(time).Put(uint64_t{10101010}).Put(uint64_t{chain.size()});
  for (uint64_t ip : chain) b.Put(ip);
  return b.Build();
}

// sample_id_all's trailer of non-sample records for sample_type TID | TIME: pid, tid, time.
RecordBuilder& SampleId(RecordBuilder& b, uint32_t pid, uint32_t tid, uint64_t time) {
  return b.Put(pid).Put(tid).Put(time);
}

// PERF_RECORD_FORK / EXIT: pid, ppid, tid, ptid, time, then the sample_id trailer.
std::vector<uint8_t> TaskRecord(uint32_t type, uint32_t pid, uint32_t ppid, uint32_t tid,
                                uint32_t ptid, uint64_t time) {
  RecordBuilder b(type);
  b.Put(pid).Put(ppid).Put(tid).Put(ptid).Put(time);
  return SampleId(b, pid, tid, time).Build();
}

// PERF_RECORD_COMM: pid, tid, the name NUL-padded to 8 bytes, then the trailer.
std::vector<uint8_t> CommRecord(uint32_t pid, uint32_t tid, const std::string& name, uint64_t time,
                                uint16_t misc = 0) {
  RecordBuilder b(PERF_RECORD_COMM, misc);
  b.Put(pid).Put(tid);
  std::string padded = name;
  padded.resize((name.size() / 8 + 1) * 8, '\0');
  for (char c : padded) b.Put(c);
  return SampleId(b, pid, tid, time).Build();
}

const uint64_t kUserCtx = static_cast<uint64_t>(PERF_CONTEXT_USER);

TEST(DrainRingTest, ParsesRecordsThatWrapAroundTheEnd) {
  FakeRing ring(256);
  ring.SetPosition(1000 * 256 + 200);  // 56 bytes before the end: the sample wraps.
  const uint64_t kKernel = static_cast<uint64_t>(PERF_CONTEXT_KERNEL);
  const uint64_t kUser = static_cast<uint64_t>(PERF_CONTEXT_USER);
  ring.Append(SampleRecord(
      7, 8,
      {kKernel, 0xffffffff81000010, 0xffffffff81000020, kUser, 0x401000, 0x402000, 0x403000}));
  ring.Append(RecordBuilder(PERF_RECORD_LOST).Put(uint64_t{1}).Put(uint64_t{5}).Build());
  ring.Append(CommRecord(7, 9, "worker", 1001));
  ring.Append(TaskRecord(PERF_RECORD_FORK, 7, 7, 10, 9, 1002));
  RingSink sink;
  EXPECT_EQ(ring.Drain(&sink), 1u);
  EXPECT_EQ(ring.tail(), ring.head());
  ASSERT_EQ(sink.samples.size(), 1u);
  const RawSample& s = sink.samples[0];
  EXPECT_EQ(s.pid, 7u);
  EXPECT_EQ(s.tid, 8u);
  EXPECT_EQ(s.time_ns, 1000u);
  EXPECT_EQ(s.period, 10101010u);
  EXPECT_EQ(s.kernel_ips, (std::vector<uint64_t>{0xffffffff81000010, 0xffffffff81000020}));
  EXPECT_EQ(s.user_ips, (std::vector<uint64_t>{0x401000, 0x402000, 0x403000}));
  EXPECT_EQ(sink.stats.lost, 5u);
  EXPECT_EQ(sink.comms[9], "worker");
  EXPECT_EQ(sink.comms[10], "worker");  // Inherited from its creator by the FORK record.
  EXPECT_TRUE(sink.forked_tids.count(10));
  EXPECT_EQ(sink.stats.malformed, 0u);
}

TEST(DrainRingTest, ZeroSizeRecordAbandonsTheRing) {
  FakeRing ring(256);
  ring.Append(SampleRecord(1, 1, {kUserCtx, 0x1}));
  ring.Append(std::vector<uint8_t>(16, 0));  // header.size == 0
  ring.Append(SampleRecord(1, 1, {kUserCtx, 0x2}));
  RingSink sink;
  EXPECT_EQ(ring.Drain(&sink), 1u);
  EXPECT_EQ(sink.stats.malformed, 1u);
  // No way to find the next record: the rest is dropped, and the bytes are counted.
  EXPECT_EQ(sink.stats.discarded_bytes, 16u + SampleRecord(1, 1, {kUserCtx, 0x2}).size());
  EXPECT_EQ(ring.tail(), ring.head());  // The rest is skipped, not re-read forever.
}

TEST(DrainRingTest, OversizedRecordAndBadCallchainAreCounted) {
  FakeRing ring(256);
  std::vector<uint8_t> huge = SampleRecord(1, 1, {});
  uint16_t size = 4096;  // Larger than the ring.
  std::memcpy(huge.data() + offsetof(perf_event_header, size), &size, sizeof(size));
  ring.Append(huge);
  RingSink sink;
  EXPECT_EQ(ring.Drain(&sink), 0u);
  EXPECT_EQ(sink.stats.malformed, 1u);

  // A callchain whose nr claims more entries than the record holds: that record is skipped,
  // the records after it are still read.
  RecordBuilder b(PERF_RECORD_SAMPLE);
  b.Put(uint32_t{1}).Put(uint32_t{1}).Put(uint64_t{0}).Put(uint64_t{0}).Put(uint64_t{1000});
  ring.Append(b.Build());
  ring.Append(RecordBuilder(PERF_RECORD_COMM).Put(uint32_t{1}).Build());  // Too short.
  ring.Append(SampleRecord(1, 1, {kUserCtx, 0x7}));
  EXPECT_EQ(ring.Drain(&sink), 1u);
  EXPECT_EQ(sink.stats.malformed, 3u);
  EXPECT_EQ(sink.samples.back().user_ips, (std::vector<uint64_t>{0x7}));
  EXPECT_EQ(ring.tail(), ring.head());
}

TEST(DrainRingTest, PartialRecordWaitsForMoreData) {
  FakeRing ring(256);
  std::vector<uint8_t> rec = SampleRecord(1, 2, {kUserCtx, 0x5});
  // The header announces the full size but head only covers half: not parsed, not an error,
  // and the tail stays at the record so the next drain reads it whole.
  ring.Append(std::vector<uint8_t>(rec.begin(), rec.begin() + 16));
  RingSink sink;
  EXPECT_EQ(ring.Drain(&sink), 0u);
  EXPECT_EQ(sink.stats.malformed, 0u);
  EXPECT_EQ(ring.tail(), 0u);
  ring.Append(std::vector<uint8_t>(rec.begin() + 16, rec.end()));
  EXPECT_EQ(ring.Drain(&sink), 1u);
  ASSERT_EQ(sink.samples.size(), 1u);
  EXPECT_EQ(sink.samples[0].tid, 2u);
  EXPECT_EQ(sink.samples[0].user_ips, (std::vector<uint64_t>{0x5}));
  EXPECT_EQ(sink.stats.malformed, 0u);
  EXPECT_EQ(ring.tail(), ring.head());
}

// System-wide filtering, as Sampler sets it up: target 7.
RingSink FilteredSink() {
  RingSink sink;
  sink.filter_pids = true;
  AddTarget(&sink, 7);
  return sink;
}

// A child's samples on one CPU's ring are read before its FORK record on another's, even a
// poll earlier: they must still count as the target's.
TEST(DrainRingTest, ChildSamplesReadBeforeTheirForkAreKept) {
  FakeRing cpu0(1024), cpu1(1024);
  cpu0.Append(SampleRecord(50, 50, {kUserCtx, 0x1}, /*time=*/200));
  cpu1.Append(TaskRecord(PERF_RECORD_FORK, 50, 7, 50, 7, /*time=*/100));
  RingSink sink = FilteredSink();
  // Poll 1 reads cpu0 only up to its horizon (the FORK is not yet published on cpu1).
  cpu0.Parse(&sink);
  EXPECT_EQ(ApplyRingEvents(&sink, 150), 0u);
  // Poll 2: the FORK arrives; the sample waited in pending.
  cpu1.Parse(&sink);
  cpu0.Append(SampleRecord(50, 50, {kUserCtx, 0x2}, 300));
  cpu0.Parse(&sink);
  EXPECT_EQ(ApplyRingEvents(&sink, 1000), 2u);
  EXPECT_EQ(sink.filtered, 0u);
  EXPECT_EQ(sink.children.at(50), 7u);
  ASSERT_EQ(sink.samples.size(), 2u);
  EXPECT_EQ(sink.samples[0].time_ns, 200u);  // In time order.
  // The child has its own image, forked from the target's (it shares its mappings).
  const ProcessImage& child = sink.images.at(sink.samples[0].image);
  EXPECT_EQ(child.pid, 50u);
  EXPECT_EQ(child.parent, sink.image_of_pid.at(7));
}

// After its EXIT, a pid the kernel hands to an unrelated process is no longer the target's.
TEST(DrainRingTest, ExitedPidReusedByAnotherProcessIsFiltered) {
  FakeRing cpu0(2048), cpu1(2048);
  cpu1.Append(TaskRecord(PERF_RECORD_FORK, 50, 7, 50, 7, 100));
  cpu0.Append(SampleRecord(50, 50, {kUserCtx, 0x1}, 150));
  cpu1.Append(TaskRecord(PERF_RECORD_EXIT, 50, 7, 50, 7, 200));
  cpu0.Append(SampleRecord(50, 50, {kUserCtx, 0x2}, 300));  // pid 50 reused by a stranger.
  cpu0.Append(SampleRecord(7, 8, {kUserCtx, 0x3}, 350));    // A thread of the target.
  cpu1.Append(TaskRecord(PERF_RECORD_EXIT, 7, 1, 7, 1, 400));
  cpu0.Append(SampleRecord(7, 7, {kUserCtx, 0x4}, 500));  // pid 7 reused too.
  RingSink sink = FilteredSink();
  cpu0.Parse(&sink);
  cpu1.Parse(&sink);
  EXPECT_EQ(ApplyRingEvents(&sink, UINT64_MAX), 2u);
  ASSERT_EQ(sink.samples.size(), 2u);
  EXPECT_EQ(sink.samples[0].user_ips, (std::vector<uint64_t>{0x1}));
  EXPECT_EQ(sink.samples[1].user_ips, (std::vector<uint64_t>{0x3}));
  EXPECT_EQ(sink.filtered, 2u);
  EXPECT_EQ(sink.pids.count(50), 0u);
  EXPECT_EQ(sink.pids.count(7), 0u);
}

// Samples carry the thread's name at their time, and an exec starts a new image.
TEST(DrainRingTest, NamesAndImagesAsTheyWereWhenSampled) {
  FakeRing ring(2048);
  ring.Append(CommRecord(7, 8, "before", 50));
  ring.Append(SampleRecord(7, 8, {kUserCtx, 0x1}, 100));
  ring.Append(CommRecord(7, 8, "renamed", 200));
  ring.Append(SampleRecord(7, 8, {kUserCtx, 0x2}, 300));
  ring.Append(CommRecord(7, 8, "newprog", 400, PERF_RECORD_MISC_COMM_EXEC));
  ring.Append(SampleRecord(7, 8, {kUserCtx, 0x3}, 500));
  RingSink sink = FilteredSink();
  EXPECT_EQ(ring.Drain(&sink), 3u);
  ASSERT_EQ(sink.samples.size(), 3u);
  EXPECT_EQ(sink.samples[0].thread_name, "before");
  EXPECT_EQ(sink.samples[1].thread_name, "renamed");
  EXPECT_EQ(sink.samples[2].thread_name, "newprog");
  EXPECT_EQ(sink.samples[0].image, sink.samples[1].image);
  EXPECT_NE(sink.samples[2].image, sink.samples[1].image);
  const ProcessImage& exec = sink.images.at(sink.samples[2].image);
  EXPECT_TRUE(exec.exec);
  EXPECT_EQ(exec.pid, 7u);
  EXPECT_EQ(exec.time_ns, 400u);
}

// After a rate change, samples of the events that were changed carry the new period; in
// per-thread mode a thread that inherited its event keeps the kernel's (its own) period.
TEST(DrainRingTest, RateChangesCorrectThePeriodOfChangedEventsOnly) {
  FakeRing ring(2048);
  ring.Append(SampleRecord(7, 7, {kUserCtx, 0x1}, 100));
  ring.Append(SampleRecord(7, 7, {kUserCtx, 0x2}, 300));
  ring.Append(SampleRecord(7, 9, {kUserCtx, 0x3}, 300));  // Inherited event.
  RingSink sink;
  AddTarget(&sink, 7);
  sink.all_events_own = false;
  sink.own_event_tids = {7};
  sink.period_changes.push_back({200, 5000});
  EXPECT_EQ(ring.Drain(&sink), 3u);
  EXPECT_EQ(sink.samples[0].period, 10101010u);
  EXPECT_EQ(sink.samples[1].period, 5000u);
  EXPECT_EQ(sink.samples[2].period, 10101010u);
}

// DWARF-mode records: callchain, then {abi, regs[17]} and {size, data[size], dyn_size}.
struct DwarfFields {
  uint64_t abi = PERF_SAMPLE_REGS_ABI_64;
  size_t nregs = kNumUserRegs;
  std::vector<uint8_t> stack;  // data[size]; size = stack.size()
  uint64_t dyn_size = 0;
  bool has_dyn_size = true;
  std::optional<uint64_t> size_override;  // A lying size field.
};

std::vector<uint8_t> DwarfSampleRecord(uint32_t tid, const DwarfFields& f) {
  RecordBuilder b(PERF_RECORD_SAMPLE);
  b.Put(uint32_t{1}).Put(tid).Put(uint64_t{1000}).Put(uint64_t{10101010});
  b.Put(uint64_t{2}).Put(static_cast<uint64_t>(PERF_CONTEXT_USER)).Put(uint64_t{0x401000});
  b.Put(f.abi);
  if (f.abi != 0) {
    for (size_t i = 0; i < f.nregs; ++i) b.Put(uint64_t{0x1000 + i});
  }
  b.Put(f.size_override.value_or(f.stack.size()));
  for (uint8_t c : f.stack) b.Put(c);
  if (!f.stack.empty() && f.has_dyn_size) b.Put(f.dyn_size);
  return b.Build();
}

std::vector<uint8_t> StackBytes(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 7 + 1);
  return v;
}

TEST(DrainRingTest, ParsesUserRegsAndStackAcrossTheWrap) {
  FakeRing ring(1024);
  ring.SetPosition(77 * 1024 + 1000);  // The record wraps inside the stack data.
  DwarfFields f;
  f.stack = StackBytes(128);
  f.dyn_size = 40;
  ring.Append(DwarfSampleRecord(5, f));
  f.abi = PERF_SAMPLE_REGS_ABI_NONE;  // A kernel thread: no registers, no stack.
  f.stack.clear();
  ring.Append(DwarfSampleRecord(6, f));
  RingSink sink;
  EXPECT_EQ(ring.Drain(&sink, kUserRegsMask), 2u);
  EXPECT_EQ(sink.stats.malformed, 0u);
  ASSERT_EQ(sink.samples.size(), 2u);
  const RawSample& s = sink.samples[0];
  EXPECT_EQ(s.tid, 5u);
  EXPECT_EQ(s.user_ips, (std::vector<uint64_t>{0x401000}));
  EXPECT_EQ(s.regs_abi, uint64_t{PERF_SAMPLE_REGS_ABI_64});
  ASSERT_EQ(s.user_regs.size(), static_cast<size_t>(kNumUserRegs));
  EXPECT_EQ(s.user_regs[kRegAx], 0x1000u);
  EXPECT_EQ(s.user_regs[kRegIp], 0x1008u);
  EXPECT_EQ(s.user_regs[kRegR15], 0x1010u);
  std::vector<uint8_t> want = StackBytes(128);
  want.resize(40);  // Cut to dyn_size.
  EXPECT_EQ(s.user_stack, want);
  EXPECT_EQ(sink.samples[1].regs_abi, 0u);
  EXPECT_TRUE(sink.samples[1].user_regs.empty());
  EXPECT_TRUE(sink.samples[1].user_stack.empty());
}

TEST(DrainRingTest, BadUserStackSizesAreMalformed) {
  struct Case {
    const char* name;
    DwarfFields f;
  };
  std::vector<Case> cases;
  DwarfFields base;
  base.stack = StackBytes(64);
  base.dyn_size = 64;
  {
    Case c{"dyn_size > size", base};
    c.f.dyn_size = 65;
    cases.push_back(c);
  }
  {
    Case c{"size past the record", base};
    c.f.size_override = 72;
    cases.push_back(c);
  }
  {
    Case c{"size near 2^64", base};
    c.f.size_override = ~uint64_t{0} - 3;
    cases.push_back(c);
  }
  {
    Case c{"missing dyn_size", base};
    c.f.has_dyn_size = false;
    cases.push_back(c);
  }
  {
    Case c{"registers cut short", base};
    c.f.nregs = 3;
    c.f.stack.clear();
    c.f.size_override = std::nullopt;
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    FakeRing ring(4096);
    ring.Append(DwarfSampleRecord(1, c.f));
    RingSink sink;
    EXPECT_EQ(ring.Drain(&sink, kUserRegsMask), 0u) << c.name;
    EXPECT_EQ(sink.stats.malformed, 1u) << c.name;
    EXPECT_EQ(ring.tail(), ring.head()) << c.name;
  }
  // A record without the DWARF fields at all, read as a DWARF record.
  FakeRing ring(4096);
  ring.Append(SampleRecord(1, 1, {static_cast<uint64_t>(PERF_CONTEXT_USER), 0x1}));
  RingSink sink;
  EXPECT_EQ(ring.Drain(&sink, kUserRegsMask), 0u);
  EXPECT_EQ(sink.stats.malformed, 1u);
}

// Random corruption of valid DWARF records (sizes, counts, truncation): under ASan this
// proves every length is checked against the record before it is used.
TEST(DrainRingTest, FuzzedDwarfRecordsNeverReadOutOfBounds) {
  std::mt19937_64 rng(42);
  DwarfFields f;
  f.stack = StackBytes(256);
  f.dyn_size = 200;
  const std::vector<uint8_t> valid = DwarfSampleRecord(3, f);
  size_t parsed = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> rec = valid;
    int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      size_t at = rng() % rec.size();
      switch (rng() % 3) {
        case 0:
          rec[at] = static_cast<uint8_t>(rng());
          break;
        case 1: {  // Overwrite an aligned u64 with a nasty value.
          static const uint64_t kNasty[] = {
              0, 1, 8, 255, 256, 4096, 65535, ~uint64_t{0}, uint64_t{1} << 63};
          size_t off = (at / 8) * 8;
          if (off + 8 <= rec.size()) std::memcpy(&rec[off], &kNasty[rng() % 9], 8);
          break;
        }
        default:  // Truncate (header size follows, so the record is self-consistent).
          rec.resize(std::max<size_t>(sizeof(perf_event_header), at / 8 * 8));
          break;
      }
    }
    uint16_t size = static_cast<uint16_t>(rec.size());
    std::memcpy(rec.data() + offsetof(perf_event_header, size), &size, sizeof(size));
    rec[offsetof(perf_event_header, type)] = PERF_RECORD_SAMPLE;
    FakeRing ring(1024);
    ring.SetPosition(rng() % 4096);
    ring.Append(rec);
    RingSink sink;
    parsed += ring.Drain(&sink, kUserRegsMask);
    ASSERT_EQ(ring.tail(), ring.head());
    for (const RawSample& s : sink.samples) {
      ASSERT_LE(s.user_stack.size(), rec.size());
      ASSERT_LE(s.user_regs.size(), static_cast<size_t>(kNumUserRegs));
    }
  }
  EXPECT_GT(parsed, 0u);  // Some mutations (in register values, stack bytes) stay valid.
}

// ---------------------------------------------------------------------------------------------
// Real kernel: sampler_testprog as the target.

std::string TestProg() { return SelfExeDir() + "/sampler_testprog"; }

// A child running sampler_testprog with pipes on stdin/stdout.
struct Child {
  pid_t pid = -1;
  int to_child = -1;
  FILE* from_child = nullptr;
  uint64_t addr_a = 0, addr_b = 0;

  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (to_child >= 0) close(to_child);
    if (from_child) fclose(from_child);
  }
  // short_thread_ms > 0: the short-lived-threads + child-process form of the program.
  bool Spawn(int duration_ms, int late_delay_ms, int short_thread_ms = 0) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return false;
    std::string prog = TestProg();
    std::string d = std::to_string(duration_ms), l = std::to_string(late_delay_ms);
    std::string t = std::to_string(short_thread_ms);
    pid = fork();
    if (pid == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      if (short_thread_ms > 0) {
        execl(prog.c_str(), prog.c_str(), d.c_str(), l.c_str(), t.c_str(), nullptr);
      } else {
        execl(prog.c_str(), prog.c_str(), d.c_str(), l.c_str(), nullptr);
      }
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_child = in[1];
    from_child = fdopen(out[0], "r");
    char key[8];
    unsigned long long v = 0;
    for (int i = 0; i < 2; ++i) {
      if (std::fscanf(from_child, "%7s %llx", key, &v) != 2) return false;
      (key[0] == 'A' ? addr_a : addr_b) = v;
    }
    char ready[16];
    return std::fscanf(from_child, "%15s", ready) == 1 && std::string(ready) == "ready";
  }
  void Go() { ASSERT_EQ(write(to_child, "g", 1), 1); }
  bool Exited() {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      return true;
    }
    return false;
  }
  std::string RestOfOutput() {
    std::string s;
    char buf[256];
    while (std::fgets(buf, sizeof(buf), from_child)) s += buf;
    return s;
  }
};

// Symbol sizes from `nm -S` (binutils): "<addr> <size> T <name>".
std::map<std::string, uint64_t> SymbolSizes(const std::string& binary) {
  std::map<std::string, uint64_t> sizes;
  FILE* p = popen(("nm -S --defined-only '" + binary + "'").c_str(), "r");
  if (p == nullptr) return sizes;
  char line[512];
  while (std::fgets(line, sizeof(line), p)) {
    unsigned long long addr = 0, size = 0;
    char type = 0;
    char name[256];
    if (std::sscanf(line, "%llx %llx %c %255s", &addr, &size, &type, name) == 4) {
      sizes[name] = size;
    }
  }
  pclose(p);
  return sizes;
}

// Polls like the real recorder would (every 100 ms) until the child exits, plus `extra_ms`.
void PollUntilExit(Sampler* sampler, Child* child, int extra_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!child->Exited() && std::chrono::steady_clock::now() < deadline) {
    sampler->Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int t = 0; t < extra_ms; t += 100) {
    sampler->Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST(SamplerTest, AttributesKnownRatioAndFollowsLateThread) {
  auto sizes = SymbolSizes(TestProg());
  ASSERT_GT(sizes["BurnA"], 0u) << "nm -S found no BurnA in " << TestProg();
  ASSERT_GT(sizes["BurnB"], 0u);

  Child child;
  ASSERT_TRUE(child.Spawn(/*duration_ms=*/3000, /*late_delay_ms=*/500));
  const uint32_t child_pid = static_cast<uint32_t>(child.pid);
  SamplerOptions options;
  options.pids = {child.pid};
  options.frequency_hz = 499;
  auto sampler = Sampler::Start(options);
  ASSERT_TRUE(sampler.ok()) << sampler.status().message();
  const std::map<uint32_t, std::string> names_at_start = (*sampler)->ThreadNames();
  EXPECT_EQ(names_at_start.size(), 1u);
  child.Go();

  timespec cpu0;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
  auto wall0 = std::chrono::steady_clock::now();
  PollUntilExit(sampler->get(), &child, 200);
  timespec cpu1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
  double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  (*sampler)->Stop();

  uint32_t late_tid = 0;
  std::istringstream out(child.RestOfOutput());
  std::string key;
  while (out >> key) {
    if (key == "late") out >> late_tid;
  }
  ASSERT_NE(late_tid, 0u) << "the test program never started its late thread";

  std::vector<RawSample> samples = (*sampler)->TakeSamples();
  size_t in_a = 0, in_b = 0, late = 0, with_user = 0;
  for (const RawSample& s : samples) {
    // inherit also follows child processes (e.g. LeakSanitizer's exit-time tracer under asan).
    if (s.pid != child_pid) continue;
    if (s.tid == late_tid) late++;
    if (s.user_ips.empty()) continue;
    with_user++;
    uint64_t ip = s.user_ips[0];
    if (ip >= child.addr_a && ip < child.addr_a + sizes["BurnA"]) in_a++;
    if (ip >= child.addr_b && ip < child.addr_b + sizes["BurnB"]) in_b++;
  }
  ASSERT_GT(in_a + in_b, 1000u) << samples.size() << " samples";
  double share_a = 100.0 * static_cast<double>(in_a) / static_cast<double>(in_a + in_b);
  double sampler_cpu_s = (cpu1.tv_sec - cpu0.tv_sec) + (cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
  std::printf(
      "attribution: A %.1f%% / B %.1f%% over %zu samples (%zu total, %zu with user frames, %zu "
      "from the late thread, lost %lu, kernel frames %s); test process CPU while polling: "
      "%.2f%% of one core\n",
      share_a, 100.0 - share_a, in_a + in_b, samples.size(), with_user, late,
      static_cast<unsigned long>((*sampler)->lost()), (*sampler)->kernel_frames() ? "on" : "off",
      100.0 * sampler_cpu_s / wall_s);
  EXPECT_NEAR(share_a, 75.0, 5.0);
  EXPECT_GT(late, 100u) << "threads created after Start() must be followed";
  EXPECT_EQ(names_at_start.count(late_tid), 0u);

  auto names = (*sampler)->ThreadNames();
  EXPECT_EQ(names[late_tid], "late_burner");
  EXPECT_FALSE(names[child_pid].empty());
  EXPECT_EQ((*sampler)->malformed(), 0u);
}

TEST(SamplerTest, TargetExitingMidRecordKeepsItsSamples) {
  Child child;
  ASSERT_TRUE(child.Spawn(/*duration_ms=*/800, /*late_delay_ms=*/200));
  const uint32_t child_pid = static_cast<uint32_t>(child.pid);
  auto sampler = Sampler::Start({.pids = {child.pid}, .frequency_hz = 499});
  ASSERT_TRUE(sampler.ok()) << sampler.status().message();
  child.Go();
  PollUntilExit(sampler->get(), &child, 700);  // Keep recording well after it is gone.
  (*sampler)->Stop();
  (*sampler)->Stop();  // Idempotent.
  EXPECT_EQ((*sampler)->Poll(), 0u);
  std::vector<RawSample> samples = (*sampler)->TakeSamples();
  size_t mine = 0;
  for (const RawSample& s : samples) mine += s.pid == child_pid;
  // ~0.8 s of one core plus 0.6 s of a second at 499 Hz; allow a wide margin.
  EXPECT_GT(mine, 200u);
  EXPECT_TRUE((*sampler)->TakeSamples().empty());
}

TEST(SamplerTest, DeadPidIsAClearError) {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  ASSERT_GT(pid, 0);
  waitpid(pid, nullptr, 0);
  auto sampler = Sampler::Start({.pids = {pid}});
  ASSERT_FALSE(sampler.ok());
  EXPECT_NE(sampler.status().message().find("no such process"), std::string::npos)
      << sampler.status().message();
  EXPECT_NE(sampler.status().message().find(std::to_string(pid)), std::string::npos);
}

TEST(SamplerTest, PermissionDeniedAsNobodySaysHowToFix) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to drop to nobody";
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    std::string msg;
    if (setgid(65534) != 0 || setuid(65534) != 0) {
      msg = "setuid failed";
    } else {
      auto sampler = Sampler::Start({.pids = {1}});
      msg = sampler.ok() ? "OK" : sampler.status().message();
    }
    (void)!write(p[1], msg.data(), msg.size());
    _exit(0);
  }
  close(p[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0) msg.append(buf, static_cast<size_t>(n));
  close(p[0]);
  waitpid(pid, nullptr, 0);
  ASSERT_NE(msg, "OK") << "nobody was allowed to sample pid 1";
  ASSERT_NE(msg, "setuid failed");
  EXPECT_TRUE(msg.find("EACCES") != std::string::npos || msg.find("EPERM") != std::string::npos)
      << msg;
  EXPECT_NE(msg.find("pid 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("root"), std::string::npos) << msg;
  EXPECT_NE(msg.find("CAP_PERFMON"), std::string::npos) << msg;
  EXPECT_NE(msg.find("kernel.perf_event_paranoid"), std::string::npos) << msg;
  std::printf("nobody -> pid 1: %s\n", msg.c_str());
}

TEST(SamplerTest, RejectsBadOptions) {
  EXPECT_FALSE(Sampler::Start({}).ok());
  EXPECT_FALSE(Sampler::Start({.pids = {getpid()}, .ring_pages = 3}).ok());
  EXPECT_FALSE(Sampler::Start({.pids = {getpid()}, .frequency_hz = 0}).ok());
  for (uint32_t bytes : {0u, 8u, 504u, 8191u, 65536u, 70000u}) {
    auto s = Sampler::Start({.pids = {getpid()}, .dwarf = true, .stack_bytes = bytes});
    ASSERT_FALSE(s.ok()) << bytes;
    EXPECT_NE(s.status().message().find("stack_bytes"), std::string::npos);
  }
}

// DWARF mode on a real kernel: every user sample carries the 17 registers in the documented
// order (IP agrees with the kernel callchain's first user frame, SP points at the copy) and
// a stack copy no larger than asked for.
TEST(SamplerTest, DwarfModeCopiesRegistersAndStack) {
  Child child;
  ASSERT_TRUE(child.Spawn(/*duration_ms=*/800, /*late_delay_ms=*/-1));
  const uint32_t child_pid = static_cast<uint32_t>(child.pid);  // Exited() resets child.pid.
  SamplerOptions options;
  options.pids = {child.pid};
  options.frequency_hz = 499;
  options.dwarf = true;
  options.stack_bytes = 4096;
  auto sampler = Sampler::Start(options);
  ASSERT_TRUE(sampler.ok()) << sampler.status().message();
  child.Go();
  PollUntilExit(sampler->get(), &child, 100);
  (*sampler)->Stop();
  std::vector<RawSample> samples = (*sampler)->TakeSamples();
  size_t checked = 0;
  size_t bp_above_sp = 0;
  for (const RawSample& s : samples) {
    if (s.pid != child_pid || s.regs_abi == 0) continue;
    ASSERT_EQ(s.regs_abi, uint64_t{PERF_SAMPLE_REGS_ABI_64});
    ASSERT_EQ(s.user_regs.size(), static_cast<size_t>(kNumUserRegs));
    // exclude_callchain_user: the kernel no longer walks user frame pointers in DWARF mode.
    EXPECT_TRUE(s.user_ips.empty());
    EXPECT_LE(s.user_stack.size(), 4096u);
    EXPECT_GT(s.user_stack.size(), 0u);
    // sampler_testprog keeps frame pointers: rbp points into the copied stack (above SP)
    // wherever it runs its own code. A sample in libc or the loader (no frame pointers; rbp
    // may be 0 or any value there) is allowed, hence "nearly all", not "all".
    if (s.user_regs[kRegBp] >= s.user_regs[kRegSp]) bp_above_sp++;
    checked++;
  }
  EXPECT_GT(checked, 200u) << samples.size() << " samples";
  EXPECT_GE(bp_above_sp * 10, checked * 9) << bp_above_sp << " of " << checked;
  EXPECT_EQ((*sampler)->malformed(), 0u);
  EXPECT_EQ((*sampler)->lost(), 0u);
}

}  // namespace
}  // namespace fs::profile

namespace fs::profile {
namespace {

// utime+stime of a process (its exited threads included), seconds; -1 if unreadable.
double ProcCpuSeconds(pid_t pid) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text.ok()) return -1;
  size_t close = text->rfind(')');
  std::istringstream in(text->substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct ShortThreadRun {
  bool system_wide = false;
  double sampled_s = 0;  // Sum of sample periods of the parent process.
  double proc_s = 0;     // utime+stime of the parent process.
  size_t child_samples = 0;
  std::map<uint32_t, uint32_t> children;
  uint32_t child_pid = 0;
};

// 2 s of 1-ms threads (each shorter than a 99 Hz sample period) plus a forked child process.
void RunShortThreads(bool system_wide, ShortThreadRun* run) {
  Child child;
  ASSERT_TRUE(child.Spawn(2000, -1, 1));
  SamplerOptions options;
  options.pids = {child.pid};
  options.frequency_hz = 99;
  options.system_wide = system_wide;
  auto sampler = Sampler::Start(options);
  ASSERT_TRUE(sampler.ok()) << sampler.status().message();
  run->system_wide = (*sampler)->system_wide();
  const pid_t parent = child.pid;  // Exited() resets child.pid.
  child.Go();
  char key[16];
  int child_pid = 0;
  ASSERT_EQ(std::fscanf(child.from_child, "%15s %d", key, &child_pid), 2);
  run->child_pid = static_cast<uint32_t>(child_pid);
  // Read the parent's CPU just before it exits: poll until its child has been reaped.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  double proc = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    double now = ProcCpuSeconds(parent);
    if (now >= 0) proc = now;
    (*sampler)->Poll();
    if (child.Exited()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  (*sampler)->Stop();
  run->proc_s = proc;
  run->children = (*sampler)->ChildProcesses();
  for (const RawSample& s : (*sampler)->TakeSamples()) {
    if (s.pid == static_cast<uint32_t>(child_pid)) run->child_samples++;
    if (s.pid == static_cast<uint32_t>(parent))
      run->sampled_s += static_cast<double>(s.period) / 1e9;
  }
}

TEST(SamplerTest, SystemWideCountsShortThreadsAndChildProcesses) {
  ShortThreadRun wide;
  RunShortThreads(/*system_wide=*/true, &wide);
  if (!wide.system_wide) GTEST_SKIP() << "system-wide events refused here (not root?)";
  ASSERT_GT(wide.proc_s, 0.5);
  // The threads' CPU is all there (tick-based /proc accounting is coarse: +-20%).
  EXPECT_NEAR(wide.sampled_s / wide.proc_s, 1.0, 0.25)
      << "sampled " << wide.sampled_s << " s vs /proc " << wide.proc_s << " s";
  EXPECT_GT(wide.child_samples, 30u);  // ~1 s of the forked child at 99 Hz.
  ASSERT_EQ(wide.children.count(wide.child_pid), 1u);

  // Per-thread events with inherit lose most of it: each thread ends before its first period.
  ShortThreadRun per_thread;
  RunShortThreads(/*system_wide=*/false, &per_thread);
  printf(
      "1-ms threads, 99 Hz: system-wide sampled %.2f s of %.2f s (/proc); per-thread "
      "inherit sampled %.2f s of %.2f s\n",
      wide.sampled_s, wide.proc_s, per_thread.sampled_s, per_thread.proc_s);
  EXPECT_LT(per_thread.sampled_s / per_thread.proc_s, 0.5)
      << "sampled " << per_thread.sampled_s << " s vs /proc " << per_thread.proc_s << " s";
}

// Both modes: one busy thread (its own event in per-thread mode) samples ~8x less often after
// the change, and those samples carry the new period (the kernel keeps reporting the old one).
TEST(SamplerTest, SetFrequencyChangesTheRate) {
  for (bool system_wide : {true, false}) {
    SCOPED_TRACE(system_wide ? "system-wide" : "per-thread");
    Child child;
    ASSERT_TRUE(child.Spawn(3000, -1));
    SamplerOptions options;
    options.pids = {child.pid};
    options.frequency_hz = 400;
    options.system_wide = system_wide;
    auto sampler = Sampler::Start(options);
    ASSERT_TRUE(sampler.ok()) << sampler.status().message();
    child.Go();
    std::vector<RawSample> window;
    auto count_for = [&](int ms) {
      (*sampler)->Poll();
      (*sampler)->TakeSamples();
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      (*sampler)->Poll();
      window.clear();
      for (RawSample& s : (*sampler)->TakeSamples()) {
        if (s.pid == static_cast<uint32_t>(child.pid)) window.push_back(std::move(s));
      }
      return window.size();
    };
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    size_t fast = count_for(1000);
    ASSERT_TRUE((*sampler)->SetFrequency(50).ok());
    EXPECT_EQ((*sampler)->frequency_hz(), 50);
    EXPECT_EQ((*sampler)->inherited_rate_kept(), !system_wide);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    size_t slow = count_for(1000);
    (*sampler)->Stop();
    // One busy thread: ~400 then ~50 samples a second (8x), allowing for a loaded host.
    EXPECT_GT(fast, 4 * slow) << fast << " vs " << slow;
    EXPECT_GT(slow, 10u);
    for (const RawSample& s : window) ASSERT_EQ(s.period, 1000000000u / 50);
  }
}

}  // namespace
}  // namespace fs::profile

namespace fs::profile {
namespace {

TEST(SamplerTest, AllowVanishedSkipsExitedPidsButNotAll) {
  Child child;
  ASSERT_TRUE(child.Spawn(1000, -1));
  for (bool system_wide : {true, false}) {
    SamplerOptions options;
    options.pids = {child.pid, 999999999};
    options.system_wide = system_wide;
    EXPECT_FALSE(Sampler::Start(options).ok());  // Strict by default: a dead pid is an error.
    options.allow_vanished = true;
    auto sampler = Sampler::Start(options);
    EXPECT_TRUE(sampler.ok()) << sampler.status().message();
    options.pids = {999999999};
    EXPECT_FALSE(Sampler::Start(options).ok());  // Nothing left at all.
  }
}

}  // namespace
}  // namespace fs::profile

namespace fs::profile {
namespace {

// fork_testprog with pipes: Spawn waits for its "ready", Finish sends the go byte and returns
// everything it printed once it exits (the sampler polled every 100 ms meanwhile).
struct ForkWorkload {
  pid_t pid = -1;
  int to_child = -1;
  FILE* from_child = nullptr;

  ~ForkWorkload() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (to_child >= 0) close(to_child);
    if (from_child) fclose(from_child);
  }
  bool Spawn(const std::vector<std::string>& args) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return false;
    std::string prog = SelfExeDir() + "/fork_testprog";
    std::vector<char*> argv = {prog.data()};
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid = fork();
    if (pid == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      execv(prog.c_str(), argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_child = in[1];
    from_child = fdopen(out[0], "r");
    char ready[16];
    return std::fscanf(from_child, "%15s", ready) == 1 && std::string(ready) == "ready";
  }
  std::string RunPolling(Sampler* sampler) {
    EXPECT_EQ(write(to_child, "g", 1), 1);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) != pid && std::chrono::steady_clock::now() < deadline) {
      sampler->Poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    pid = -1;
    std::string s;
    char buf[256];
    while (std::fgets(buf, sizeof(buf), from_child)) s += buf;
    return s;
  }
};

// 150 children of 20 ms CPU each, recorded system-wide at 999 Hz: every child's samples must
// be kept (a FORK record read after the child's samples used to drop them: 3-9 children had
// none), and their CPU time must match what the kernel accounted to them (rusage).
TEST(SamplerTest, ShortLivedChildProcessesAreAllSampled) {
  ForkWorkload w;
  ASSERT_TRUE(w.Spawn({"150", "20"}));
  const uint32_t parent = static_cast<uint32_t>(w.pid);
  auto sampler = Sampler::Start({.pids = {w.pid}, .frequency_hz = 999, .system_wide = true});
  ASSERT_TRUE(sampler.ok()) << sampler.status().message();
  if (!(*sampler)->system_wide()) GTEST_SKIP() << "system-wide events refused here (not root?)";
  std::istringstream out(w.RunPolling(sampler->get()));
  (*sampler)->Stop();
  std::map<uint32_t, double> child_s;  // Every child, sampled seconds.
  double rusage_s = 0;
  std::string key;
  while (out >> key) {
    long long v = 0;
    out >> v;
    if (key == "child") child_s[static_cast<uint32_t>(v)] = 0;
    if (key == "rusage_children_ns") rusage_s = static_cast<double>(v) / 1e9;
  }
  ASSERT_EQ(child_s.size(), 150u);
  double sampled_s = 0;
  size_t samples = 0;
  for (const RawSample& s : (*sampler)->TakeSamples()) {
    if (s.pid == parent || !child_s.count(s.pid)) continue;
    child_s[s.pid] += static_cast<double>(s.period) / 1e9;
    sampled_s += static_cast<double>(s.period) / 1e9;
    samples++;
  }
  size_t unsampled = 0;
  for (const auto& [pid, seconds] : child_s) unsampled += seconds == 0;
  std::printf(
      "150 children x 20 ms at 999 Hz: sampled %.3f s (%zu samples) vs rusage %.3f s (ratio "
      "%.3f); %zu children without samples; lost %lu\n",
      sampled_s, samples, rusage_s, sampled_s / rusage_s, unsampled,
      static_cast<unsigned long>((*sampler)->lost()));
  ASSERT_GT(rusage_s, 2.5);
  // ~3000 samples of a 1-ms clock: the sampling error is ~2%; each child also loses up to one
  // partial period at its exit (20 ms x 150 / ~1 ms periods: < 5%).
  EXPECT_NEAR(sampled_s / rusage_s, 1.0, 0.08);
  EXPECT_EQ(unsampled, 0u) << "children whose samples were dropped";
}

}  // namespace
}  // namespace fs::profile
