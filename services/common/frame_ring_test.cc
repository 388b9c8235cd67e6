#include "services/common/frame_ring.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

namespace fs {
namespace {

constexpr uint32_t kW = 32;
constexpr uint32_t kH = 24;
constexpr size_t kBytes = size_t{kW} * kH * 3;

// Every byte of a frame is a function of its seq, so a frame mixing two writes is detectable.
void FillPattern(uint8_t* p, size_t n, uint64_t seq) {
  const uint64_t base = (seq + 1) * 0x9E3779B97F4A7C15ULL;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t word = base ^ (i * 0x100000001B3ULL);
    memcpy(p + i, &word, 8);
  }
}

bool CheckPattern(const uint8_t* p, size_t n, uint64_t seq) {
  std::vector<uint8_t> want(n);
  FillPattern(want.data(), n, seq);
  return memcmp(p, want.data(), n) == 0;
}

int64_t TsFor(uint64_t seq) { return static_cast<int64_t>(seq) * 1000 + 7; }

class FrameRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // /dev/shm is where production rings live; fall back to the gtest temp dir.
    std::string root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : ::testing::TempDir();
    std::string tmpl = root + "/frame_ring_test.XXXXXX";
    char* dir = mkdtemp(tmpl.data());
    ASSERT_NE(dir, nullptr) << strerror(errno);
    dir_ = dir;
    path_ = dir_ + "/cam00.ring";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  FrameRingWriter MakeWriter(uint32_t slots) {
    auto w = FrameRingWriter::Create(path_, slots, kW, kH, /*camera_index=*/3);
    EXPECT_TRUE(w.ok()) << w.status().message();
    return std::move(w).value();
  }
  FrameRingReader MakeReader() {
    auto r = FrameRingReader::Open(path_);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return std::move(r).value();
  }
  static void WriteFrame(FrameRingWriter* w, uint64_t seq) {
    uint8_t* dst = w->BeginWrite();
    FillPattern(dst, kBytes, seq);
    w->CommitWrite(TsFor(seq), 640 + static_cast<uint32_t>(seq % 7), 360);
  }
  static void WriteFrames(FrameRingWriter* w, int n) {
    for (int i = 0; i < n; ++i) WriteFrame(w, w->frames_written());
  }

  std::string dir_;
  std::string path_;
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(kBytes);
};

TEST_F(FrameRingTest, HeaderFieldsRoundTrip) {
  FrameRingWriter w = MakeWriter(8);
  FrameRingReader r = MakeReader();
  EXPECT_EQ(r.width(), kW);
  EXPECT_EQ(r.height(), kH);
  EXPECT_EQ(r.camera_index(), 3u);
  EXPECT_EQ(r.slot_count(), 8u);
  EXPECT_EQ(r.frame_bytes(), kBytes);
  EXPECT_EQ(w.frame_bytes(), kBytes);
  EXPECT_EQ(r.write_seq(), 0u);
  FrameMeta meta;
  uint64_t n = 99;
  EXPECT_FALSE(r.ReadNext(buf_.data(), &meta, &n));
  EXPECT_FALSE(r.ReadLatest(buf_.data(), &meta, &n));
  EXPECT_EQ(n, 99u);  // untouched on false
}

TEST_F(FrameRingTest, FifoReadsEveryFrameAcrossWrapAround) {
  FrameRingWriter w = MakeWriter(4);
  FrameRingReader r = MakeReader();
  FrameMeta meta;
  uint64_t dropped = 0;
  // 3 laps of a 4-slot ring, reading each frame right after it is written.
  for (uint64_t seq = 0; seq < 12; ++seq) {
    WriteFrame(&w, seq);
    ASSERT_TRUE(r.ReadNext(buf_.data(), &meta, &dropped)) << seq;
    EXPECT_EQ(meta.seq, seq);
    EXPECT_EQ(dropped, 0u);
    EXPECT_EQ(meta.capture_ts_ns, TsFor(seq));
    EXPECT_EQ(meta.camera_index, 3u);
    EXPECT_EQ(meta.width, kW);
    EXPECT_EQ(meta.height, kH);
    EXPECT_EQ(meta.source_width, 640 + seq % 7);
    EXPECT_EQ(meta.source_height, 360u);
    EXPECT_TRUE(CheckPattern(buf_.data(), kBytes, seq));
    EXPECT_FALSE(r.ReadNext(buf_.data(), &meta, &dropped));
  }
  EXPECT_EQ(w.frames_written(), 12u);
  EXPECT_EQ(r.write_seq(), 12u);
}

TEST_F(FrameRingTest, WriterOverwritesOldestAndSlowReaderCountsExactDrops) {
  FrameRingWriter w = MakeWriter(8);
  FrameRingReader r = MakeReader();
  WriteFrames(&w, 20);  // frames 0..19; slots now hold 12..19
  FrameMeta meta;
  uint64_t dropped = 0;
  ASSERT_TRUE(r.ReadNext(buf_.data(), &meta, &dropped));
  EXPECT_EQ(meta.seq, 12u);  // the oldest frame still in the ring
  EXPECT_EQ(dropped, 12u);   // 0..11 were overwritten before we got to them
  EXPECT_TRUE(CheckPattern(buf_.data(), kBytes, 12));
  for (uint64_t seq = 13; seq < 20; ++seq) {
    ASSERT_TRUE(r.ReadNext(buf_.data(), &meta, &dropped));
    EXPECT_EQ(meta.seq, seq);
    EXPECT_EQ(dropped, 0u);
    EXPECT_TRUE(CheckPattern(buf_.data(), kBytes, seq));
  }
  EXPECT_FALSE(r.ReadNext(buf_.data(), &meta, &dropped));

  // Lapped again by 3 frames more than the ring holds.
  WriteFrames(&w, 11);  // 20..30; ring holds 23..30
  ASSERT_TRUE(r.ReadNext(buf_.data(), &meta, &dropped));
  EXPECT_EQ(meta.seq, 23u);
  EXPECT_EQ(dropped, 3u);
}

TEST_F(FrameRingTest, ReadLatestCountsSkippedFrames) {
  FrameRingWriter w = MakeWriter(8);
  FrameRingReader r = MakeReader();
  FrameMeta meta;
  uint64_t skipped = 0;
  WriteFrames(&w, 5);  // 0..4
  ASSERT_TRUE(r.ReadLatest(buf_.data(), &meta, &skipped));
  EXPECT_EQ(meta.seq, 4u);
  EXPECT_EQ(skipped, 4u);  // 0..3 passed over
  EXPECT_TRUE(CheckPattern(buf_.data(), kBytes, 4));
  EXPECT_FALSE(r.ReadLatest(buf_.data(), &meta, &skipped));

  WriteFrames(&w, 1);  // 5
  ASSERT_TRUE(r.ReadLatest(buf_.data(), &meta, &skipped));
  EXPECT_EQ(meta.seq, 5u);
  EXPECT_EQ(skipped, 0u);

  WriteFrames(&w, 30);  // 6..35, laps the ring several times
  ASSERT_TRUE(r.ReadLatest(buf_.data(), &meta, &skipped));
  EXPECT_EQ(meta.seq, 35u);
  EXPECT_EQ(skipped, 29u);  // 6..34
  EXPECT_TRUE(CheckPattern(buf_.data(), kBytes, 35));

  // ReadNext after ReadLatest continues from the same cursor.
  WriteFrames(&w, 2);  // 36, 37
  uint64_t dropped = 0;
  ASSERT_TRUE(r.ReadNext(buf_.data(), &meta, &dropped));
  EXPECT_EQ(meta.seq, 36u);
  EXPECT_EQ(dropped, 0u);
}

TEST_F(FrameRingTest, ReaderAttachingMidStreamStartsAtNewestFrame) {
  FrameRingWriter w = MakeWriter(8);
  WriteFrames(&w, 10);  // 0..9
  FrameRingReader r = MakeReader();
  EXPECT_EQ(r.write_seq(), 10u);
  FrameMeta meta;
  uint64_t dropped = 77;
  ASSERT_TRUE(r.ReadNext(buf_.data(), &meta, &dropped));
  EXPECT_EQ(meta.seq, 9u);
  EXPECT_EQ(dropped, 0u);  // history before attaching is not this reader's loss
  EXPECT_FALSE(r.ReadNext(buf_.data(), &meta, &dropped));
  WriteFrames(&w, 2);
  ASSERT_TRUE(r.ReadNext(buf_.data(), &meta, &dropped));
  EXPECT_EQ(meta.seq, 10u);
  ASSERT_TRUE(r.ReadNext(buf_.data(), &meta, &dropped));
  EXPECT_EQ(meta.seq, 11u);
  EXPECT_TRUE(CheckPattern(buf_.data(), kBytes, 11));

  FrameRingReader latest = MakeReader();
  uint64_t skipped = 5;
  ASSERT_TRUE(latest.ReadLatest(buf_.data(), &meta, &skipped));
  EXPECT_EQ(meta.seq, 11u);
  EXPECT_EQ(skipped, 0u);
}

TEST_F(FrameRingTest, AbortedWriteLosesOnlyTheOverwrittenSlot) {
  FrameRingWriter w = MakeWriter(2);
  FrameRingReader r = MakeReader();
  WriteFrames(&w, 2);             // 0, 1
  uint8_t* dst = w.BeginWrite();  // seq 2 into the slot holding 0
  memset(dst, 0xAB, kBytes);
  w.AbortWrite();
  EXPECT_EQ(w.frames_written(), 2u);
  FrameMeta meta;
  uint64_t dropped = 0;
  ASSERT_TRUE(r.ReadNext(buf_.data(), &meta, &dropped));
  EXPECT_EQ(meta.seq, 1u);
  EXPECT_EQ(dropped, 1u);  // frame 0 was destroyed by the aborted write
  WriteFrames(&w, 1);      // the sequence number 2 is reused
  ASSERT_TRUE(r.ReadNext(buf_.data(), &meta, &dropped));
  EXPECT_EQ(meta.seq, 2u);
  EXPECT_EQ(dropped, 0u);
  EXPECT_TRUE(CheckPattern(buf_.data(), kBytes, 2));
}

TEST_F(FrameRingTest, ConcurrentWriterAndReaderSeeOnlyConsistentFrames) {
  // Small ring, fast writer: the reader is lapped constantly and often copies a slot while the
  // writer is rewriting it. Every frame returned must be intact and seq strictly increasing,
  // and returned + dropped must account for every frame written.
  constexpr uint64_t kFrames = 40000;
  FrameRingWriter w = MakeWriter(3);
  FrameRingReader r = MakeReader();
  std::atomic<bool> done{false};

  std::thread writer([&] {
    for (uint64_t seq = 0; seq < kFrames; ++seq) {
      WriteFrame(&w, seq);
      if (seq % 64 == 0) std::this_thread::yield();
    }
    done.store(true, std::memory_order_release);
  });

  uint64_t reads = 0, lost = 0, bad = 0;
  int64_t last = -1;
  std::mt19937 rng(42);
  FrameMeta meta;
  for (;;) {
    const bool finished = done.load(std::memory_order_acquire);
    uint64_t missed = 0;
    const bool latest = rng() % 4 == 0;
    const bool got = latest ? r.ReadLatest(buf_.data(), &meta, &missed)
                            : r.ReadNext(buf_.data(), &meta, &missed);
    if (got) {
      ++reads;
      lost += missed;
      if (static_cast<int64_t>(meta.seq) <= last) ++bad;
      if (meta.seq != static_cast<uint64_t>(last + 1) + missed) ++bad;  // exact accounting
      if (!CheckPattern(buf_.data(), kBytes, meta.seq)) ++bad;
      if (meta.capture_ts_ns != TsFor(meta.seq)) ++bad;
      if (meta.source_width != 640 + meta.seq % 7) ++bad;
      last = static_cast<int64_t>(meta.seq);
      if (rng() % 16 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    } else if (finished) {
      break;  // writer done and nothing left to read
    }
  }
  writer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(last, static_cast<int64_t>(kFrames - 1));
  EXPECT_EQ(reads + lost, kFrames);
  EXPECT_GT(reads, 0u);
  printf("stress: %llu frames written, %llu read, %llu lost\n",
         static_cast<unsigned long long>(kFrames), static_cast<unsigned long long>(reads),
         static_cast<unsigned long long>(lost));
}

TEST_F(FrameRingTest, ReaderInAnotherProcess) {
  FrameRingWriter w = MakeWriter(4);
  WriteFrames(&w, 1);  // frame 0
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto r = FrameRingReader::Open(path_);
    if (!r.ok()) _exit(10);
    std::vector<uint8_t> buf(kBytes);
    FrameMeta meta;
    uint64_t dropped = 0;
    uint64_t expect = 0;
    bool first = true;
    // Follow the parent's writes until frame 5. The parent does not wait for us, so the first
    // frame may be any (attach point); after that the accounting must be exact.
    for (int spins = 0; spins < 20000000 && expect < 6; ++spins) {
      if (!r->ReadNext(buf.data(), &meta, &dropped)) continue;
      if (!CheckPattern(buf.data(), kBytes, meta.seq)) _exit(11);
      if (!first && meta.seq != expect + dropped) _exit(12);
      first = false;
      expect = meta.seq + 1;
    }
    _exit(expect == 6 ? 0 : 13);
  }
  for (uint64_t seq = 1; seq < 6; ++seq) {
    usleep(2000);
    WriteFrame(&w, seq);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(FrameRingTest, ReplacedAfterWriterRecreatesRing) {
  FrameRingWriter w = MakeWriter(4);
  FrameRingReader r = MakeReader();
  EXPECT_FALSE(r.Replaced());
  FrameRingWriter w2 = MakeWriter(4);  // e.g. capture restarted
  EXPECT_TRUE(r.Replaced());
  FrameRingReader r2 = MakeReader();
  EXPECT_FALSE(r2.Replaced());
}

// --- Bad files -------------------------------------------------------------------------------

void PatchFile(const std::string& path, off_t offset, const void* bytes, size_t n) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, bytes, n, offset), static_cast<ssize_t>(n));
  close(fd);
}

TEST_F(FrameRingTest, OpenMissingFileFails) {
  auto r = FrameRingReader::Open(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(path_), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("no such file"), std::string::npos) << r.status().message();
}

TEST_F(FrameRingTest, OpenWrongMagicFails) {
  { FrameRingWriter w = MakeWriter(4); }
  uint64_t junk = 0x1122334455667788ULL;
  PatchFile(path_, 0, &junk, sizeof(junk));
  auto r = FrameRingReader::Open(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a framescope frame ring"), std::string::npos)
      << r.status().message();
}

TEST_F(FrameRingTest, OpenWrongVersionFails) {
  { FrameRingWriter w = MakeWriter(4); }
  uint32_t version = kFrameRingVersion + 1;
  PatchFile(path_, 8, &version, sizeof(version));
  auto r = FrameRingReader::Open(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("version 2"), std::string::npos) << r.status().message();
}

TEST_F(FrameRingTest, OpenTruncatedFileFails) {
  { FrameRingWriter w = MakeWriter(4); }
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  ASSERT_EQ(truncate(path_.c_str(), st.st_size - 1), 0);
  auto r = FrameRingReader::Open(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("header says " + std::to_string(st.st_size)),
            std::string::npos)
      << r.status().message();

  ASSERT_EQ(truncate(path_.c_str(), 10), 0);  // not even a header
  auto r2 = FrameRingReader::Open(path_);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("truncated"), std::string::npos) << r2.status().message();
}

TEST_F(FrameRingTest, OpenCorruptHeaderFails) {
  { FrameRingWriter w = MakeWriter(4); }
  uint32_t slots = 0;
  PatchFile(path_, 16, &slots, sizeof(slots));
  auto r = FrameRingReader::Open(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("corrupt header"), std::string::npos) << r.status().message();
}

TEST_F(FrameRingTest, CreateRejectsBadArguments) {
  EXPECT_FALSE(FrameRingWriter::Create(path_, 1, kW, kH, 0).ok());
  EXPECT_FALSE(FrameRingWriter::Create(path_, 4, 0, kH, 0).ok());
  auto r = FrameRingWriter::Create(dir_ + "/missing/dir/x.ring", 4, kW, kH, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does the ring directory exist"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace fs
