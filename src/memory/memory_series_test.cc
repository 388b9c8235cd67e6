#include "src/memory/memory_series.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>

#include "gtest/gtest.h"
#include "src/base/file_util.h"

namespace fs::profile {
namespace {

constexpr char kRollup[] =
    "55d0c0a00000-7ffd1b5fe000 ---p 00000000 00:00 0                          [rollup]\n"
    "Rss:                4000 kB\n"
    "Pss:                2500 kB\n"
    "Pss_Anon:           1500 kB\n"
    "Pss_File:           1000 kB\n"
    "Pss_Shmem:             0 kB\n"
    "Shared_Clean:       2000 kB\n"
    "Private_Dirty:      1500 kB\n"
    "Anonymous:          1500 kB\n"
    "Swap:                 12 kB\n";

TEST(SmapsRollup, NamesEachNumbersSource) {
  MemoryCounters c;
  ASSERT_TRUE(ParseSmapsRollup(kRollup, &c));
  EXPECT_EQ(c.rss, 4000u * 1024);
  EXPECT_EQ(c.pss, 2500u * 1024);
  EXPECT_EQ(c.anon, 1500u * 1024);
  EXPECT_EQ(c.file, 2500u * 1024);  // Rss - Anonymous
  EXPECT_EQ(c.swap, 12u * 1024);
}

TEST(SmapsRollup, RefusesTextWithoutRssOrAnonymous) {
  MemoryCounters c;
  EXPECT_FALSE(ParseSmapsRollup("", &c));
  EXPECT_FALSE(ParseSmapsRollup("Rss: 10 kB\n", &c));
  EXPECT_FALSE(ParseSmapsRollup("Name:\tcat\nVmRSS:\tx kB\n", &c));
}

// Real kernel: touching 64 MiB of anonymous memory shows up in rss, pss and anon.
TEST(ProcessTreeMemory, SeesTouchedAnonymousMemory) {
  auto before = ReadProcessTreeMemory(getpid(), "self");
  ASSERT_TRUE(before.ok()) << before.status().message();
  constexpr size_t kSize = 64 << 20;
  std::unique_ptr<char[]> block(new char[kSize]);
  std::memset(block.get(), 1, kSize);
  auto after = ReadProcessTreeMemory(getpid(), "self");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->pids.front(), getpid());
  EXPECT_GE(after->bytes.anon, before->bytes.anon + kSize * 9 / 10);
  EXPECT_GE(after->bytes.rss, before->bytes.rss + kSize * 9 / 10);
  EXPECT_GE(after->bytes.pss, before->bytes.pss + kSize * 9 / 10);
  EXPECT_GT(after->time_s, 1.6e9);  // realtime seconds
  volatile char sink = block[kSize - 1];
  (void)sink;
}

// The tree sum includes a child's private memory.
TEST(ProcessTreeMemory, SumsChildren) {
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    constexpr size_t kSize = 48 << 20;
    char* p = static_cast<char*>(std::malloc(kSize));
    std::memset(p, 2, kSize);
    (void)!write(ready[1], "r", 1);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  auto self = ReadProcessTreeMemory(child, "child");
  auto tree = ReadProcessTreeMemory(getpid(), "tree");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  ASSERT_TRUE(self.ok() && tree.ok());
  EXPECT_GE(self->bytes.anon, 48u << 20);
  ASSERT_EQ(tree->pids.size(), 2u);
  EXPECT_EQ(tree->pids[1], child);
  EXPECT_GT(tree->bytes.anon, self->bytes.anon);  // plus the parent's own
}

TEST(ProcessTreeMemory, GoneProcessIsAnError) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(ReadProcessTreeMemory(child, "gone").ok());
}

std::string TempDir() {
  char tmpl[] = "/tmp/memseries_XXXXXX";
  return mkdtemp(tmpl);
}

MemorySample Sample(double t, uint64_t rss, const std::string& name = "svc") {
  MemorySample s;
  s.time_s = t;
  s.name = name;
  s.pids = {100, 101};
  s.bytes = {rss, rss / 2, rss / 4, rss - rss / 4, 0};
  return s;
}

TEST(MemoryLog, AppendsAndResumesTheSameLog) {
  std::string path = TempDir() + "/a.log";
  {
    auto log = MemoryLog::Open(path);
    ASSERT_TRUE(log.ok()) << log.status().message();
    ASSERT_TRUE(log->Append(Sample(1, 1000)).ok());
    ASSERT_TRUE(log->Append(Sample(2, 2000)).ok());
  }
  {
    auto log = MemoryLog::Open(path);  // a restarted run
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE(log->Append(Sample(3, 3000, "other")).ok());
  }
  auto loaded = LoadMemoryLog(path);
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->samples.size(), 3u);
  EXPECT_EQ(loaded->corrupt_lines, 0u);
  EXPECT_EQ(loaded->samples[1].bytes.rss, 2000u);
  EXPECT_EQ(loaded->samples[1].bytes.file, 1500u);
  EXPECT_EQ(loaded->samples[1].pids, (std::vector<pid_t>{100, 101}));
  EXPECT_EQ(SamplesNamed(loaded->samples, "svc").size(), 2u);
  EXPECT_EQ(SamplesNamed(loaded->samples, "other")[0].time_s, 3);
  EXPECT_EQ(SamplesNamed(loaded->samples, "svc", 100).size(), 2u);
  EXPECT_EQ(SamplesNamed(loaded->samples, "svc", 101).size(), 0u);  // another process
}

// A crash mid-line: the cut line is counted as corrupt, the next run's lines are whole.
TEST(MemoryLog, LineCutByACrashIsSkippedAndCounted) {
  std::string path = TempDir() + "/cut.log";
  {
    std::ofstream f(path);
    f << SampleToJson(Sample(1, 1000)).Dump() << "\n"
      << R"({"t":2,"name":"svc","rs)";
  }
  auto log = MemoryLog::Open(path);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE(log->Append(Sample(3, 3000)).ok());
  auto loaded = LoadMemoryLog(path);
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->samples.size(), 2u);
  EXPECT_EQ(loaded->samples[1].bytes.rss, 3000u);
  EXPECT_EQ(loaded->corrupt_lines, 1u);
}

TEST(MemoryLog, CorruptLinesAreNeverFatal) {
  LoadedLog l = ParseMemoryLog(
      "garbage\n\n[1,2]\n{\"t\":\"x\",\"rss\":1}\n{\"t\":1,\"rss\":-5}\n{\"t\":1}\n"
      "\x01\xff\n{\"t\":5,\"rss\":7}\n");
  EXPECT_EQ(l.corrupt_lines, 6u);
  ASSERT_EQ(l.samples.size(), 1u);
  EXPECT_EQ(l.samples[0].bytes.rss, 7u);
}

TEST(MemoryLog, RefusesSymlinkAndSpecialFiles) {
  std::string dir = TempDir();
  std::string target = dir + "/target";
  { std::ofstream(target) << "keep\n"; }
  ASSERT_EQ(symlink(target.c_str(), (dir + "/link.log").c_str()), 0);
  auto via_link = MemoryLog::Open(dir + "/link.log");
  ASSERT_FALSE(via_link.ok());
  EXPECT_NE(via_link.status().message().find("symlink"), std::string::npos);
  EXPECT_EQ(*ReadFile(target), "keep\n");
  ASSERT_EQ(mkfifo((dir + "/fifo.log").c_str(), 0600), 0);
  EXPECT_FALSE(MemoryLog::Open(dir + "/fifo.log").ok());
  EXPECT_FALSE(MemoryLog::Open(dir).ok());  // a folder
  EXPECT_FALSE(LoadMemoryLog(dir + "/missing.log").ok());
}

}  // namespace
}  // namespace fs::profile
