// The preload library against a program whose allocations are known (heap_testprog), and the
// reader of its counters files against corrupt and truncated input.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "src/base/file_util.h"
#include "src/base/json.h"
#include "src/memory/heap/heap_counters.h"
#include "src/memory/heap/heap_counters_format.h"
#include "src/memory/heap/heap_profile.h"
#include "src/memory/heap/heap_sites.h"

extern char** environ;

namespace fs::memory {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/heap_test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) {
      names.push_back(e.path().filename());
    }
    return names;
  }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
};

// Runs argv (stdout and stderr together) in `cwd` with this process's environment less the
// library's variables, plus `env`. `before_exec(pid)` runs here while the child waits to exec.
RunResult RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                     const std::string& cwd = "/",
                     const std::function<void(pid_t)>& before_exec = nullptr) {
  std::vector<std::string> envs = env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (strncmp(*e, "LD_PRELOAD=", 11) != 0 && strncmp(*e, "FRAMESCOPE_HEAP_DIR=", 20) != 0) {
      envs.emplace_back(*e);
    }
  }
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  for (const auto& e : envs) envp.push_back(const_cast<char*>(e.c_str()));
  args.push_back(nullptr);
  envp.push_back(nullptr);
  int fds[2], go[2];
  if (pipe(fds) != 0 || pipe(go) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    close(go[1]);
    char byte;
    if (read(go[0], &byte, 1) < 0 || chdir(cwd.c_str()) != 0) _exit(126);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  close(go[0]);
  if (before_exec) before_exec(pid);
  close(go[1]);  // the child's read returns: exec
  RunResult r;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) r.out.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string Library() { return SelfExeDir() + "/libframescope_heap.so"; }
std::string TestProg() { return SelfExeDir() + "/heap_testprog"; }

// The JSON line of heap_testprog's output whose "mode" is `mode`.
Json Line(const std::string& out, const std::string& mode) {
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    auto j = Json::Parse(out.substr(start, end - start));
    if (j.ok() && j->Get("mode").AsString() == mode) return *j;
    start = end + 1;
  }
  ADD_FAILURE() << "no " << mode << " line in: " << out;
  return Json();
}

HeapCounters Read(const std::string& path) {
  auto c = ReadHeapCounters(path);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? *c : HeapCounters{};
}

void ExpectWindowMatches(const HeapCounters& a, const HeapCounters& b, const Json& truth) {
  const Json& w = truth.Get("window");
  EXPECT_EQ(b.allocated_bytes - a.allocated_bytes, uint64_t(w.Get("allocated_bytes").AsInt()));
  EXPECT_EQ(b.allocated_calls - a.allocated_calls, uint64_t(w.Get("allocated_calls").AsInt()));
  EXPECT_EQ(b.freed_bytes - a.freed_bytes, uint64_t(w.Get("freed_bytes").AsInt()));
  EXPECT_EQ(b.freed_calls - a.freed_calls, uint64_t(w.Get("freed_calls").AsInt()));
}

// One run of `heap_testprog work` under the library, shared by the tests that read it.
class HeapPreloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PathExists(Library())) << Library();
    run_ = RunProgram({TestProg(), "work", snaps_.path()},
                      {"LD_PRELOAD=" + Library(), "FRAMESCOPE_HEAP_DIR=" + counters_.path()});
    ASSERT_EQ(run_.exit_code, 0) << run_.out;
    work_ = Line(run_.out, "work");
    child_ = Line(run_.out, "child");
  }
  std::string Snap(const std::string& name) const { return snaps_.path() + "/" + name; }
  std::string Counters(const Json& line) const {
    return HeapCountersPath(counters_.path(), static_cast<int>(line.Get("pid").AsInt()));
  }

  TempDir counters_, snaps_;
  RunResult run_;
  Json work_, child_;
};

// 8 threads x 100k malloc/free plus the main thread's calloc, realloc edge cases,
// posix_memalign, aligned_alloc, memalign, valloc and operator new/delete variants.
TEST_F(HeapPreloadTest, WindowCountsEqualTheProgramsTruthExactly) {
  ExpectWindowMatches(Read(Snap("snap0")), Read(Snap("snap1")), work_);
}

TEST_F(HeapPreloadTest, ReclaimRatioMatchesTheProgramsTruth) {
  auto r = ReclaimRatioBetween(Read(Snap("snap0")), Read(Snap("snap1")));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->value.has_value()) << r->why_absent;
  const Json& w = work_.Get("window");
  double truth = w.Get("freed_bytes").AsDouble() / w.Get("allocated_bytes").AsDouble();
  EXPECT_NEAR(*r->value, truth, 0.02);  // the bound; the counts above are exact
  EXPECT_NEAR(truth, 0.75, 0.01);       // every 4th block stays allocated
}

TEST_F(HeapPreloadTest, ThreadExitFlushesPendingCounts) {
  HeapCounters before = Read(Snap("snap1")), after = Read(Snap("snap2"));
  EXPECT_GE(after.allocated_bytes - before.allocated_bytes,
            uint64_t(work_.Get("thread_exit_min_bytes").AsInt()));
}

TEST_F(HeapPreloadTest, ProcessExitFlushesPendingCounts) {
  HeapCounters final_counts = Read(Counters(work_));
  EXPECT_GE(final_counts.allocated_bytes - Read(Snap("snap2")).allocated_bytes,
            uint64_t(work_.Get("exit_min_bytes").AsInt()));
}

TEST_F(HeapPreloadTest, ForkedAndExecdChildHasItsOwnFile) {
  int parent = static_cast<int>(work_.Get("pid").AsInt());
  int child = static_cast<int>(child_.Get("pid").AsInt());
  ASSERT_EQ(child, work_.Get("child_pid").AsInt());
  HeapCounters p = Read(Counters(work_)), c = Read(Counters(child_));
  EXPECT_EQ(p.pid, parent);
  EXPECT_EQ(p.generation, 0u);
  EXPECT_EQ(c.pid, child);
  // Generation 0 was the forked image (made by the fork handler); the exec replaced it.
  EXPECT_EQ(c.generation, 1u);
  EXPECT_GT(c.start_unix_ns, p.start_unix_ns);
  ExpectWindowMatches(Read(Snap("child-snap0")), Read(Snap("child-snap1")), child_);
}

HeapCountersHeader ValidHeader() {
  HeapCountersHeader h{};
  h.magic = kHeapCountersMagic;
  h.version = kHeapCountersVersion;
  h.header_size = sizeof(HeapCountersHeader);
  h.pid = 4242;
  h.generation = 2;
  h.start_unix_ns = 1700000000000000000ULL;
  h.process_start_ticks = 12345;
  h.allocated_bytes = 1000;
  h.allocated_calls = 10;
  h.freed_bytes = 900;
  h.freed_calls = 9;
  return h;
}

// A file left by an earlier process with the same pid (pid reuse) is replaced, and not taken for
// this process's pre-exec image: generation 0, not the stale file's + 1.
TEST(HeapPreloadStaleTest, AStaleFileOfAReusedPidIsNotAnExec) {
  TempDir counters, snaps;
  RunResult r = RunProgram(
      {TestProg(), "child", snaps.path()},
      {"LD_PRELOAD=" + Library(), "FRAMESCOPE_HEAP_DIR=" + counters.path()}, "/", [&](pid_t pid) {
        HeapCountersHeader stale = ValidHeader();
        stale.pid = pid;  // its start time (12345 ticks after boot) is not this process's
        std::ofstream(HeapCountersPath(counters.path(), pid), std::ios::binary)
            .write(reinterpret_cast<const char*>(&stale), sizeof(stale));
      });
  ASSERT_EQ(r.exit_code, 0) << r.out;
  Json child = Line(r.out, "child");
  HeapCounters c =
      Read(HeapCountersPath(counters.path(), static_cast<int>(child.Get("pid").AsInt())));
  EXPECT_EQ(c.generation, 0u);
  EXPECT_NE(c.process_start_ticks, 0u);
  EXPECT_NE(c.process_start_ticks, 12345u);
  ExpectWindowMatches(Read(snaps.path() + "/child-snap0"), Read(snaps.path() + "/child-snap1"),
                      child);
}

// Unset or empty, FRAMESCOPE_HEAP_DIR leaves the library forwarding only: no file anywhere (an
// empty value must not mean the working directory), and the program still runs, forks and execs.
TEST(HeapPreloadOffTest, WithoutTheDirectoryNothingIsCreated) {
  for (std::string env : {"FRAMESCOPE_HEAP_DIR_UNSET=1", "FRAMESCOPE_HEAP_DIR="}) {
    TempDir cwd, snaps;
    RunResult r = RunProgram({TestProg(), "work", snaps.path()}, {"LD_PRELOAD=" + Library(), env},
                             cwd.path());
    ASSERT_EQ(r.exit_code, 0) << r.out;
    Line(r.out, "work");
    Line(r.out, "child");
    EXPECT_TRUE(cwd.Entries().empty()) << env;
    EXPECT_TRUE(snaps.Entries().empty()) << env;
  }
}

// A folder the library cannot write: one line on stderr says so, the program runs uncounted.
TEST(HeapPreloadOffTest, AnUnwritableDirectoryIsReportedAndHarmless) {
  TempDir snaps;
  std::string missing = snaps.path() + "/missing";
  RunResult r = RunProgram({TestProg(), "child", snaps.path()},
                           {"LD_PRELOAD=" + Library(), "FRAMESCOPE_HEAP_DIR=" + missing});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  Json child = Line(r.out, "child");
  EXPECT_NE(r.out.find("framescope-heap: cannot create " +
                       HeapCountersPath(missing, static_cast<int>(child.Get("pid").AsInt())) +
                       ".tmp: ENOENT; heap counting is off\n"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(snaps.Entries().size(), 0u);
}

// ---- The reader ----

std::string Write(const TempDir& dir, const std::string& name, const void* data, size_t size) {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path, std::ios::binary).write(static_cast<const char*>(data), size);
  return path;
}

std::string ReadError(const std::string& path) {
  auto c = ReadHeapCounters(path);
  EXPECT_FALSE(c.ok()) << path;
  return c.ok() ? "" : c.status().message();
}

TEST(HeapCountersReaderTest, ReadsAValidFile) {
  TempDir dir;
  HeapCountersHeader h = ValidHeader();
  auto c = ReadHeapCounters(Write(dir, "ok", &h, sizeof(h)));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->pid, 4242);
  EXPECT_EQ(c->generation, 2u);
  EXPECT_EQ(c->start_unix_ns, h.start_unix_ns);
  EXPECT_EQ(c->process_start_ticks, 12345u);
  EXPECT_EQ(c->allocated_bytes, 1000u);
  EXPECT_EQ(c->allocated_calls, 10u);
  EXPECT_EQ(c->freed_bytes, 900u);
  EXPECT_EQ(c->freed_calls, 9u);
}

TEST(HeapCountersReaderTest, RejectsCorruptAndTruncatedFiles) {
  TempDir dir;
  HeapCountersHeader h = ValidHeader();
  EXPECT_NE(ReadError(Write(dir, "empty", &h, 0)).find("truncated: 0 bytes"), std::string::npos);
  EXPECT_NE(ReadError(Write(dir, "short", &h, 40)).find("truncated: 40 bytes"), std::string::npos);
  HeapCountersHeader bad = h;
  bad.magic ^= 1;
  EXPECT_NE(ReadError(Write(dir, "magic", &bad, sizeof(bad))).find("bad magic"), std::string::npos);
  bad = h;
  bad.version = 9;
  EXPECT_NE(ReadError(Write(dir, "version", &bad, sizeof(bad))).find("format version 9"),
            std::string::npos);
  bad = h;
  bad.header_size = 32;
  EXPECT_NE(ReadError(Write(dir, "size", &bad, sizeof(bad))).find("header size 32"),
            std::string::npos);
  bad = h;
  bad.pid = -3;
  EXPECT_NE(ReadError(Write(dir, "pid", &bad, sizeof(bad))).find("pid -3"), std::string::npos);
  EXPECT_NE(ReadError(dir.path() + "/absent").find("No such file"), std::string::npos);
  EXPECT_NE(ReadError(dir.path()).find("not a regular file"), std::string::npos);
  std::string link = dir.path() + "/link";
  ASSERT_EQ(symlink(Write(dir, "target", &h, sizeof(h)).c_str(), link.c_str()), 0);
  EXPECT_FALSE(ReadError(link).empty());  // never followed
}

TEST(HeapCountersReaderTest, ReclaimRatioOverAWindow) {
  HeapCounters a{.pid = 7,
                 .generation = 0,
                 .start_unix_ns = 5,
                 .allocated_bytes = 1000,
                 .allocated_calls = 4,
                 .freed_bytes = 100,
                 .freed_calls = 1};
  HeapCounters b = a;
  b.allocated_bytes += 400;
  b.freed_bytes += 380;
  auto r = ReclaimRatioBetween(a, b);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->allocated_bytes, 400u);
  EXPECT_EQ(r->freed_bytes, 380u);
  ASSERT_TRUE(r->value.has_value());
  EXPECT_DOUBLE_EQ(*r->value, 0.95);

  // Frees but nothing allocated: no ratio, with the reason.
  HeapCounters c = a;
  c.freed_bytes += 50;
  r = ReclaimRatioBetween(a, c);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->value.has_value());
  EXPECT_EQ(r->why_absent, "nothing was allocated in the window");

  HeapCounters exec = b;
  exec.generation = 1;
  EXPECT_NE(ReclaimRatioBetween(a, exec).status().message().find("different process images"),
            std::string::npos);
  EXPECT_NE(ReclaimRatioBetween(b, a).status().message().find("went backwards"), std::string::npos);
}

// Loading the library leaves glibc's allocation policy as it was: its start-up check frees an
// mmapped block, which must not raise the dynamic mmap threshold (a 200 KiB block stays mmapped,
// as without the library).
TEST(HeapPreloadOffTest, LoadingTheLibraryKeepsGlibcsMmapThreshold) {
  TempDir heap;
  RunResult bare = RunProgram({TestProg(), "threshold", "x"}, {});
  RunResult with = RunProgram({TestProg(), "threshold", "x"},
                              {"LD_PRELOAD=" + Library(), "FRAMESCOPE_HEAP_DIR=" + heap.path()});
  ASSERT_TRUE(Line(bare.out, "threshold").Get("mmapped").AsBool()) << bare.out;
  EXPECT_TRUE(Line(with.out, "threshold").Get("mmapped").AsBool()) << with.out;
}

// ---- Sampled allocations per site (heap_sampling.cc, heap_sites.cc, heap_profile.cc) ----

// One run of `heap_testprog sites` (4 threads: 2 GiB churned through every entry point, 64 MiB
// kept), read while it is alive. Sampled every 64 KiB rather than the default 512 KiB: the
// estimator is the same, and 4x the samples make a ±10 % bound on 64 MiB kept ~4 sigma wide.
class HeapSitesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::thread run([&] {
      run_ = RunProgram({TestProg(), "sites", snaps_.path()},
                        {"LD_PRELOAD=" + Library(), "FRAMESCOPE_HEAP_DIR=" + heap_.path(),
                         "FRAMESCOPE_HEAP_SAMPLE_BYTES=65536"});
    });
    const std::string truth_path = snaps_.path() + "/truth.json";
    for (int i = 0; i < 6000 && !PathExists(truth_path); ++i) usleep(10000);
    auto text = ReadFile(truth_path);
    if (text.ok()) truth_ = *Json::Parse(*text);
    pid_ = static_cast<int>(truth_.Get("pid").AsInt());
    tracker_.Read(pid_, 0);  // alive: its sites are symbolized now
    counters_ = ReadHeapCounters(HeapCountersPath(heap_.path(), pid_));
    std::ofstream(snaps_.path() + "/done").put('\n');
    run.join();
    ASSERT_EQ(run_.exit_code, 0) << run_.out;
    ASSERT_TRUE(text.ok()) << text.status().message() << run_.out;
    ASSERT_TRUE(tracker_.has_data()) << tracker_.why_absent();
    ASSERT_TRUE(counters_.ok()) << counters_.status().message();
  }

  TempDir heap_, snaps_;
  RunResult run_;
  Json truth_;
  int pid_ = 0;
  HeapSiteTracker tracker_{heap_.path()};
  StatusOr<HeapCounters> counters_ = Err("not read");
};

// The sum of every site's estimate is an unbiased estimate of the exact counters' total.
TEST_F(HeapSitesTest, EstimatedAllocatedBytesMatchTheExactCounters) {
  const HeapSites* sites = tracker_.last();
  EXPECT_EQ(sites->sample_interval_bytes, 65536u);
  EXPECT_EQ(sites->dropped_live_table_full + sites->dropped_sites_full, 0u);
  double estimated = 0;
  for (const HeapSiteCounts& c : sites->sites) estimated += c.alloc_bytes;
  const double exact = static_cast<double>(counters_->allocated_bytes);
  EXPECT_NEAR(estimated / exact, 1.0, 0.05) << estimated << " vs " << exact;
  EXPECT_GT(exact, truth_.Get("churn_bytes").AsDouble());  // the program's truth is inside it
}

// The kept site is the top site by bytes in use, within 10 % of the truth; the churning sites
// (malloc, realloc, posix_memalign, new[], an anonymous mmap unmapped in two pieces, each freed
// at once) hold nothing.
TEST_F(HeapSitesTest, KeptBytesAreFoundAtTheirSiteAndChurnHoldsNothing) {
  profile::LeakRateOptions options;
  auto sites = tracker_.Sites(options, 1000);
  ASSERT_FALSE(sites.empty());
  const HeapSiteSummary* keep = nullptr;
  double churn_inuse = 0, churn_alloc = 0;
  for (const HeapSiteSummary& s : sites) {
    if (s.function.find("KeepBlock") != std::string::npos) keep = &s;
    if (s.function.find("ChurnBlock") != std::string::npos ||
        s.function.find("ChurnMapping") != std::string::npos) {
      churn_inuse += s.inuse_bytes;
      churn_alloc += s.alloc_bytes;
    }
  }
  ASSERT_NE(keep, nullptr) << "no KeepBlock site; first: " << sites[0].function;
  const double kept = truth_.Get("kept_bytes").AsDouble();
  EXPECT_NEAR(keep->inuse_bytes / kept, 1.0, 0.10) << keep->inuse_bytes << " vs " << kept;
  EXPECT_EQ(churn_inuse, 0);
  EXPECT_NEAR(churn_alloc / truth_.Get("churn_bytes").AsDouble(), 1.0, 0.10);
  double top_inuse = 0;
  std::string top;
  for (const HeapSiteSummary& s : sites) {
    if (s.inuse_bytes > top_inuse) top_inuse = s.inuse_bytes, top = s.function;
  }
  EXPECT_NE(top.find("KeepBlock"), std::string::npos) << top;
  // The stack goes on past the site to its callers.
  EXPECT_NE(std::find_if(keep->stack.begin(), keep->stack.end(),
                         [](const std::string& f) { return f.find("SitesThread") != f.npos; }),
            keep->stack.end());
}

// The pprof heap profile carries the four sample types and the same in-use total.
TEST_F(HeapSitesTest, HeapProfileHasGoPprofsSampleTypes) {
  profile::Profile p = tracker_.HeapProfile();
  ASSERT_EQ(p.sample_types.size(), 4u);
  EXPECT_EQ(p.sample_types[0].type, "alloc_objects");
  EXPECT_EQ(p.sample_types[1].type, "alloc_space");
  EXPECT_EQ(p.sample_types[2].type, "inuse_objects");
  EXPECT_EQ(p.sample_types[3].type, "inuse_space");
  EXPECT_EQ(p.default_sample_type, "inuse_space");
  EXPECT_EQ(p.period, 65536);
  double inuse = 0;
  for (const auto& s : p.samples) inuse += static_cast<double>(s.values[3]);
  EXPECT_NEAR(inuse / truth_.Get("kept_bytes").AsDouble(), 1.0, 0.15);
}

TEST(HeapSitesReaderTest, RejectsForeignAndCorruptFiles) {
  TempDir dir;
  const std::string path = dir.path() + "/heap-1.sites";
  std::ofstream(path) << "not a sites file";
  auto r = ReadHeapSites(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  EXPECT_FALSE(ReadHeapSites(dir.path() + "/absent.sites").ok());
  EXPECT_FALSE(ReadHeapSites(dir.path()).ok());  // a folder
}

TEST(HeapSitesOffTest, ZeroIntervalTurnsSamplingOffAndKeepsCounting) {
  TempDir heap, snaps;
  RunResult r = RunProgram({TestProg(), "child", snaps.path()},
                           {"LD_PRELOAD=" + Library(), "FRAMESCOPE_HEAP_DIR=" + heap.path(),
                            "FRAMESCOPE_HEAP_SAMPLE_BYTES=0"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::vector<std::string> names = heap.Entries();
  ASSERT_EQ(names.size(), 1u);
  EXPECT_NE(names[0].find(".counters"), std::string::npos) << names[0];
  RunResult bad = RunProgram({TestProg(), "child", snaps.path()},
                             {"LD_PRELOAD=" + Library(), "FRAMESCOPE_HEAP_DIR=" + heap.path(),
                              "FRAMESCOPE_HEAP_SAMPLE_BYTES=lots"});
  EXPECT_EQ(bad.exit_code, 0) << bad.out;
  EXPECT_NE(bad.out.find("FRAMESCOPE_HEAP_SAMPLE_BYTES is not a number"), std::string::npos)
      << bad.out;
}

}  // namespace
}  // namespace fs::memory
