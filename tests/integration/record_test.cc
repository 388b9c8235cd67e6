// `framescope record` end to end: a workload burning CPU in two functions in a known ratio
// (src/collect/sampler_testprog.cc, 3:1), recorded from its first instruction, symbolized, and
// written as pprof + folded; `go tool pprof` reads the result.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>

#include "src/base/file_util.h"
#include "src/profile/folded.h"
#include "src/profile/pprof.h"
#include "tests/integration/test_util.h"

namespace fs {
namespace {

using testing::RunShell;
using testing::TempDir;

std::string Fs() { return testing::BinDir() + "/framescope"; }

TEST(RecordTest, AttributesAKnownRatioAndGoPprofReadsIt) {
  TempDir tmp;
  std::string out = tmp.path() + "/burn.prof";
  // The workload waits for a byte on stdin before burning 3 s (second thread after 0.5 s).
  auto r = RunShell("echo g | " + Fs() + " record --frequency 199 -o " + out + " -- " +
                    testing::BinDir() + "/sampler_testprog 3000 500");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("wrote " + out), std::string::npos) << r.output;
  // Every loss is shown, and how the stacks were unwound (frame pointers: full or truncated).
  EXPECT_NE(r.output.find("losses: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("samples without frames"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("% full, "), std::string::npos) << r.output;

  auto text = ReadFile(tmp.path() + "/burn.folded");
  ASSERT_TRUE(text.ok()) << r.output;
  auto stacks = profile::ParseFolded(*text);
  ASSERT_TRUE(stacks.ok()) << stacks.status().message();
  std::map<std::string, double> leaf;
  double total = 0;
  for (const auto& s : *stacks) {
    // The user leaf: the last frame that is not a kernel address.
    std::string frame;
    for (const auto& f : s.frames) {
      if (f.rfind("[kernel]", 0) != 0) frame = f;
    }
    leaf[frame] += static_cast<double>(s.count);
    total += static_cast<double>(s.count);
  }
  ASSERT_GT(total, 300) << *text;
  double a = leaf["BurnA"] / total * 100, b = leaf["BurnB"] / total * 100;
  EXPECT_NEAR(a, 75, 5) << *text;
  EXPECT_NEAR(b, 25, 5) << *text;
  // Callers are there too (frame-pointer unwinding through the workload's own code).
  EXPECT_NE(text->find("main;"), std::string::npos);

  auto p = profile::ReadPprofFile(out);
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->sample_types.size(), 2u);
  EXPECT_EQ(p->sample_types[1].type, "cpu");
  bool thread_label = false;
  for (const auto& s : p->samples) thread_label |= s.labels.count("thread") > 0;
  EXPECT_TRUE(thread_label);

  // The flame graph of it: one self-contained HTML file naming both functions.
  std::string html = tmp.path() + "/burn.html";
  auto fg = RunShell(Fs() + " flamegraph " + out + " -o " + html);
  ASSERT_EQ(fg.exit_code, 0) << fg.output;
  auto page = ReadFile(html);
  ASSERT_TRUE(page.ok());
  EXPECT_NE(page->find("BurnA"), std::string::npos);
  EXPECT_NE(page->find("<svg"), std::string::npos);
  // A corrupt profile is refused with a clear error and no output.
  ASSERT_TRUE(WriteFileAtomic(tmp.path() + "/bad.prof", page->substr(0, 100)).ok());
  auto bad =
      RunShell(Fs() + " flamegraph " + tmp.path() + "/bad.prof -o " + tmp.path() + "/bad.html");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("bad.prof"), std::string::npos) << bad.output;
  EXPECT_FALSE(PathExists(tmp.path() + "/bad.html"));

  if (access("/usr/bin/go", X_OK) != 0) GTEST_SKIP() << "golang-go not installed";
  auto top =
      RunShell("HOME=" + tmp.path() + " GOCACHE=" + tmp.path() + "/gocache GOPATH=" + tmp.path() +
               "/gopath GOPROXY=off GOFLAGS= go tool pprof -top " + out);
  EXPECT_EQ(top.exit_code, 0) << top.output;
  EXPECT_NE(top.output.find("BurnA"), std::string::npos) << top.output;
  EXPECT_NE(top.output.find("BurnB"), std::string::npos) << top.output;
}

// Share of each direct caller of `leaf` among the folded stacks ending in it (user frames).
std::map<std::string, double> CallerShares(const std::vector<profile::FoldedStack>& stacks,
                                           const std::string& leaf, double* leaf_total) {
  std::map<std::string, double> callers;
  *leaf_total = 0;
  for (const auto& s : stacks) {
    std::vector<std::string> user;
    for (const auto& f : s.frames) {
      if (f.rfind("[kernel]", 0) != 0) user.push_back(f);
    }
    if (user.empty() || user.back() != leaf) continue;
    *leaf_total += static_cast<double>(s.count);
    callers[user.size() >= 2 ? user[user.size() - 2] : "<none>"] += static_cast<double>(s.count);
  }
  for (auto& [name, count] : callers) count = count / *leaf_total * 100;
  return callers;
}

// unwinder_testprog has no frame pointers: Burn is called by CallerA (3 parts of the work) and
// CallerB (1 part). Only DWARF unwinding through the real CLI finds that split.
TEST(RecordTest, DwarfUnwindingFindsCallersOfCodeWithoutFramePointers) {
  // Built by the default (all) target; tests/integration/CMakeLists.txt does not list it
  // among record_test's dependencies.
  ASSERT_EQ(access((testing::BinDir() + "/unwinder_testprog").c_str(), X_OK), 0)
      << "build the unwinder_testprog target first";
  TempDir tmp;
  std::string out = tmp.path() + "/dwarf.prof";
  // 499 Hz x 3 s of the workload's CPU time: ~1500 samples put the 75/25 split's standard
  // error near 1 point.
  auto r = RunShell("echo g | " + Fs() + " record --unwind dwarf --stack-bytes 8192 --frequency " +
                    "499 -o " + out + " -- " + testing::BinDir() + "/unwinder_testprog 3000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("DWARF-unwound"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("full (CFI)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("by frame-pointer fallback"), std::string::npos) << r.output;
  auto text = ReadFile(tmp.path() + "/dwarf.folded");
  ASSERT_TRUE(text.ok()) << r.output;
  auto stacks = profile::ParseFolded(*text);
  ASSERT_TRUE(stacks.ok()) << stacks.status().message();
  double burn = 0;
  auto callers = CallerShares(*stacks, "Burn", &burn);
  ASSERT_GT(burn, 1000) << *text;
  EXPECT_NEAR(callers["CallerA"], 75, 5) << *text;
  EXPECT_NEAR(callers["CallerB"], 25, 5) << *text;
  // Whole stacks: from the C runtime's entry through main (BurnUntil's name is demangled with
  // its parameter types in between).
  EXPECT_NE(text->find("__libc_start_call_main;main;(anonymous namespace)::BurnUntil("),
            std::string::npos)
      << *text;
  EXPECT_NE(text->find(";CallerA;Burn "), std::string::npos) << *text;
  auto p = profile::ReadPprofFile(out);
  ASSERT_TRUE(p.ok()) << p.status().message();
  bool comment = false;
  for (const auto& c : p->comments)
    comment |= c.find("DWARF unwinding (8192-byte") != std::string::npos;
  EXPECT_TRUE(comment);

  // The same program with frame pointers: Burn's callers are lost.
  std::string fp_out = tmp.path() + "/fp.prof";
  auto fp = RunShell("echo g | " + Fs() + " record --frequency 199 -o " + fp_out + " -- " +
                     testing::BinDir() + "/unwinder_testprog 1500");
  ASSERT_EQ(fp.exit_code, 0) << fp.output;
  auto fp_text = ReadFile(tmp.path() + "/fp.folded");
  ASSERT_TRUE(fp_text.ok());
  auto fp_stacks = profile::ParseFolded(*fp_text);
  ASSERT_TRUE(fp_stacks.ok());
  double fp_burn = 0;
  auto fp_callers = CallerShares(*fp_stacks, "Burn", &fp_burn);
  ASSERT_GT(fp_burn, 100) << *fp_text;
  EXPECT_LT(fp_callers["CallerA"] + fp_callers["CallerB"], 10) << *fp_text;
}

TEST(RecordTest, BadUnwindFlagsExit2) {
  TempDir tmp;
  std::string out = tmp.path() + "/x.prof";
  for (const char* flags :
       {"--unwind lbr", "--unwind ''", "--unwind dwarf --stack-bytes 100",
        "--unwind dwarf --stack-bytes 8191", "--unwind dwarf --stack-bytes 65536",
        "--unwind dwarf --stack-bytes abc", "--stack-bytes 4096",
        "--unwind fp --stack-bytes 4096"}) {
    auto r = RunShell(Fs() + " record " + flags + " --pid 1 --duration 1 -o " + out);
    EXPECT_EQ(r.exit_code, 2) << flags << ": " << r.output;
    EXPECT_TRUE(r.output.find("unwind") != std::string::npos ||
                r.output.find("stack-bytes") != std::string::npos)
        << flags << ": " << r.output;
  }
  auto help = RunShell(Fs() + " record --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("--unwind"), std::string::npos) << help.output;
  EXPECT_NE(help.output.find("--stack-bytes"), std::string::npos) << help.output;
  EXPECT_FALSE(PathExists(out));
}

TEST(RecordTest, BadTargetsFailClearly) {
  TempDir tmp;
  std::string out = tmp.path() + "/x.prof";
  auto dead = RunShell(Fs() + " record --pid 999999 --duration 1 -o " + out);
  EXPECT_EQ(dead.exit_code, 1) << dead.output;
  EXPECT_NE(dead.output.find("999999"), std::string::npos) << dead.output;
  auto none =
      RunShell(Fs() + " record --service capture --state-dir " + tmp.path() + "/nothing -o " + out);
  EXPECT_EQ(none.exit_code, 1) << none.output;
  EXPECT_NE(none.output.find("no running system"), std::string::npos) << none.output;
  auto both = RunShell(Fs() + " record --pid 1 --service x -o " + out);
  EXPECT_EQ(both.exit_code, 2) << both.output;
  EXPECT_FALSE(PathExists(out));
}

// As `nobody`, from a copy of the binary in a world-readable directory (the checkout may sit
// under a 0700 home that nobody cannot enter): refused, with the fix in the message.
TEST(RecordTest, PermissionDeniedAsNobodySaysHowToFix) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a command as nobody";
  TempDir tmp;
  const std::string dir = tmp.path() + "/bin";
  ASSERT_EQ(chmod(tmp.path().c_str(), 0711), 0);
  auto copy = RunShell("install -d -m 755 " + dir + " && install -m 755 " + Fs() + " " + dir);
  ASSERT_EQ(copy.exit_code, 0) << copy.output;
  // The output folder is writable by nobody: outputs are checked first, and the permission
  // under test here is perf_event_open's.
  const std::string out = tmp.path() + "/out";
  ASSERT_EQ(RunShell("install -d -m 777 " + out).exit_code, 0);
  auto perm = RunShell("runuser -u nobody -- " + dir +
                       "/framescope record --pid 1 --duration 1 -o " + out + "/x.prof");
  EXPECT_EQ(perm.exit_code, 1) << perm.output;
  EXPECT_NE(perm.output.find("perf_event_paranoid"), std::string::npos) << perm.output;
  EXPECT_NE(perm.output.find("CAP_PERFMON"), std::string::npos) << perm.output;
  EXPECT_FALSE(PathExists(out + "/x.prof"));
}

// Leaf function -> samples, over the user frames of folded stacks.
std::map<std::string, double> LeafCounts(const std::vector<profile::FoldedStack>& stacks) {
  std::map<std::string, double> leaf;
  for (const auto& s : stacks) {
    std::string frame;
    for (const auto& f : s.frames) {
      if (f.rfind("[kernel]", 0) != 0) frame = f;
    }
    leaf[frame] += static_cast<double>(s.count);
  }
  return leaf;
}

// The workload forks a child that burns 0.5 s in BurnChild (fork_testprog) and then execs
// exec_testprog, which burns 1 s in ExecHotLoop. The child is sampled (and its symbolizer
// made) before the exec: the samples after it must be symbolized with exec_testprog.
TEST(RecordTest, ExecdChildIsSymbolizedWithItsOwnBinary) {
  TempDir tmp;
  std::string out = tmp.path() + "/exec.prof";
  const std::string bin = testing::BinDir();
  auto r = RunShell("echo g | " + Fs() + " record --frequency 499 -o " + out + " -- " + bin +
                    "/fork_testprog 1 500 " + bin + "/exec_testprog 1000");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto text = ReadFile(tmp.path() + "/exec.folded");
  ASSERT_TRUE(text.ok()) << r.output;
  auto stacks = profile::ParseFolded(*text);
  ASSERT_TRUE(stacks.ok()) << stacks.status().message();
  std::map<std::string, double> leaf = LeafCounts(*stacks);
  const double before = leaf["BurnChild"], after = leaf["ExecHotLoop"];
  ASSERT_GT(before + after, 300) << *text;
  // 1 s of 1.5 s of the child's CPU after the exec (with margin for a loaded host).
  EXPECT_NEAR(after / (before + after) * 100, 66.7, 10) << *text;
  EXPECT_NE(text->find("main;ExecHotLoop"), std::string::npos) << *text;
}

}  // namespace
}  // namespace fs
