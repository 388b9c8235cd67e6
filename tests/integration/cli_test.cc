// The subcommands under hostile input (issue 10), driving the real binary as root: outputs that
// are devices, FIFOs or symlinks (made in a temp dir), an output that is an input, unwritable
// paths found before any recording, out-of-range pids and non-finite durations, a flag that
// would swallow the next flag, `record -- CMD` with a command that never exits, and inputs of
// the wrong kind.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "src/base/file_util.h"
#include "src/profile/pprof.h"
#include "tests/integration/test_util.h"

namespace fs {
namespace {

using testing::RunShell;
using testing::TempDir;

std::string Fs() { return testing::BinDir() + "/framescope"; }

// A shell loop burning CPU: something to record that every machine has.
constexpr const char* kBusy = " -- sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'";

mode_t LstatMode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mknod and private mounts need root";
    prof_ = tmp_.path() + "/g.prof";
    auto r = RunShell(Fs() + " record --duration 0 -o " + prof_ + kBusy);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    bytes_ = *ReadFile(prof_);
    ASSERT_EQ(symlink(prof_.c_str(), Path("link").c_str()), 0);
    ASSERT_EQ(mkfifo(Path("fifo").c_str(), 0644), 0);
    ASSERT_EQ(mknod(Path("full").c_str(), S_IFCHR | 0666, makedev(1, 7)), 0);
  }
  std::string Path(const std::string& name) const { return tmp_.path() + "/" + name; }
  // Each special file is still what it was, and the profile the link points to is unchanged.
  void ExpectSpecialFilesIntact() {
    EXPECT_TRUE(S_ISLNK(LstatMode(Path("link"))));
    EXPECT_TRUE(S_ISFIFO(LstatMode(Path("fifo"))));
    EXPECT_TRUE(S_ISCHR(LstatMode(Path("full"))));
    EXPECT_EQ(*ReadFile(prof_), bytes_);
  }
  TempDir tmp_;
  std::string prof_, bytes_;
};

// Item 1: every command refuses a device, FIFO or symlink output, exit 2, before any work.
TEST_F(CliTest, SpecialFileOutputsAreRefusedAndLeftIntact) {
  for (const char* special : {"link", "fifo", "full"}) {
    const std::string out = Path(special);
    const std::string commands[] = {
        Fs() + " record --duration 5 -o " + out + kBusy,
        Fs() + " record --duration 5 -o " + Path("ok.prof") + " --folded " + out + kBusy,
        Fs() + " flamegraph " + prof_ + " -o " + out,
        Fs() + " diff " + prof_ + " " + prof_ + " -o " + out,
        Fs() + " profile --state-dir " + Path("none") + " --out " + Path("out") + " --baseline " +
            out,
    };
    for (const std::string& cmd : commands) {
      const auto start = std::chrono::steady_clock::now();
      auto r = RunShell("timeout 20 " + cmd);
      EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
      EXPECT_NE(r.output.find("not a regular file"), std::string::npos) << cmd << r.output;
      // Refused before recording (record asked for 5 s).
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3)) << cmd;
      ExpectSpecialFilesIntact();
    }
  }
  EXPECT_FALSE(PathExists(Path("ok.prof")));
}

// Runs `script` with a private /dev/null: a device node of ours bind-mounted over it in a new
// mount namespace. A regression that renames over /dev/null then fails (EBUSY on a mount
// point) instead of replacing the machine's device, as the code before this test did.
testing::CommandResult WithPrivateDevNull(const TempDir& tmp, const std::string& script) {
  const std::string file = tmp.path() + "/devnull-script.sh";
  EXPECT_TRUE(WriteFileAtomic(file, script + "\n").ok());
  const std::string node = tmp.path() + "/devnull";
  return RunShell("unshare --mount --propagation private sh -c 'mknod -m 666 " + node +
                  " c 1 3 && mount --bind " + node + " /dev/null && sh " + file + "'");
}

// Item 1: "-" is standard output and /dev/null a sink that stays a device.
TEST_F(CliTest, StdoutAndDevNullAreTheDocumentedSpecialOutputs) {
  // Grouped: RunShell sends stderr to its own pipe, which must not land in the profile.
  auto out = RunShell("(" + Fs() + " record --duration 0 -o - " + kBusy + " > " +
                      Path("piped.prof") + ")");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_TRUE(profile::ReadPprofFile(Path("piped.prof")).ok());
  EXPECT_FALSE(PathExists("-"));
  auto null = WithPrivateDevNull(
      tmp_, Fs() + " record --duration 0 -o /dev/null" + kBusy +
                " && test -c /dev/null && test ! -e /dev/null.folded && echo sink-ok");
  EXPECT_EQ(null.exit_code, 0) << null.output;
  EXPECT_NE(null.output.find("sink-ok"), std::string::npos) << null.output;
  // Folded stacks on stdout: nothing but "frames count" lines (the summary goes to stderr).
  auto folded = RunShell("(" + Fs() + " record --duration 0 -o " + Path("f.prof") + " --folded -" +
                         kBusy + " > " + Path("stdout.folded") + ")");
  ASSERT_EQ(folded.exit_code, 0) << folded.output;
  const std::string text = *ReadFile(Path("stdout.folded"));
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.find("recorded"), std::string::npos) << text;
  EXPECT_EQ(text.find("wrote"), std::string::npos) << text;
  auto html = RunShell("(" + Fs() + " flamegraph " + prof_ + " -o - > " + Path("g.html") + ")");
  ASSERT_EQ(html.exit_code, 0) << html.output;
  EXPECT_NE(ReadFile(Path("g.html"))->find("<svg"), std::string::npos);
}

// Item 2: a device or FIFO named as an input or baseline fails at once instead of reading
// forever or blocking.
TEST_F(CliTest, DeviceOrFifoInputsFailAtOnce) {
  for (const char* input : {"fifo", "full"}) {
    const auto start = std::chrono::steady_clock::now();
    auto fg =
        RunShell("timeout 20 " + Fs() + " flamegraph " + Path(input) + " -o " + Path("x.html"));
    EXPECT_EQ(fg.exit_code, 1) << fg.output;
    EXPECT_NE(fg.output.find("not a regular file"), std::string::npos) << fg.output;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  }
  EXPECT_FALSE(PathExists(Path("x.html")));
}

// Item 7: an output that is an input, or both outputs one file, is refused and nothing changes.
TEST_F(CliTest, AnOutputThatIsAnInputIsRefused) {
  const std::string commands[] = {
      Fs() + " flamegraph " + prof_ + " -o " + prof_,
      Fs() + " flamegraph " + prof_ + " -o " + tmp_.path() + "/./g.prof",
      Fs() + " diff " + prof_ + " " + Path("b.prof") + " -o " + Path("b.prof"),
      Fs() + " record --duration 5 -o " + Path("x") + " --folded " + Path("x") + kBusy,
  };
  ASSERT_TRUE(WriteFileAtomic(Path("b.prof"), bytes_).ok());
  for (const std::string& cmd : commands) {
    auto r = RunShell(cmd);
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find("same file"), std::string::npos) << r.output;
  }
  EXPECT_EQ(*ReadFile(prof_), bytes_);
  EXPECT_EQ(*ReadFile(Path("b.prof")), bytes_);
  EXPECT_FALSE(PathExists(Path("x")));
}

// Item 6: an unwritable output is found before the recording (the command never runs).
TEST_F(CliTest, UnwritableOutputsFailBeforeRecording) {
  const std::string marker = Path("ran");
  const std::string outs[] = {Path("no/such/dir/x.prof"), "''", tmp_.path(),
                              "/proc/framescope-x.prof", Path("ok.prof") + " --folded /proc/x"};
  for (const std::string& out : outs) {
    auto r = RunShell(Fs() + " record --duration 5 -o " + out + " -- touch " + marker);
    EXPECT_EQ(r.exit_code, 2) << out << "\n" << r.output;
    EXPECT_FALSE(PathExists(marker)) << out << ": the command ran";
  }
}

// Item 6: an output that fails at write time (its folder removed while recording) does not
// lose the other one; the message says which was written, and the exit is 1.
TEST_F(CliTest, OneFailedOutputKeepsTheOther) {
  ASSERT_EQ(mkdir(Path("gone").c_str(), 0755), 0);
  auto r =
      RunShell("{ (sleep 1; rmdir " + Path("gone") + ") & " + Fs() + " record --duration 3 -o " +
               Path("kept.prof") + " --folded " + Path("gone/x.folded") +
               " -- sh -c 'while :; do :; done'; s=$?; wait; exit $s; }");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("wrote only " + Path("kept.prof")), std::string::npos) << r.output;
  EXPECT_TRUE(profile::ReadPprofFile(Path("kept.prof")).ok()) << r.output;
}

// Item 3: --duration ends `record -- CMD` even if CMD never exits: the profile is written and
// the command stopped (or left running with --keep-running); Ctrl-C ends it too, exit 130.
TEST_F(CliTest, RecordOfACommandThatNeverExitsEndsAtItsDuration) {
  const std::string tag = "fs-cli-test-" + std::to_string(getpid());
  // Its output goes elsewhere: a command left running must not hold RunShell's pipe open.
  // It burns CPU, so the recording has samples whatever the timing.
  const std::string forever =
      " -- bash -c 'exec -a " + tag + " bash -c \"while :; do :; done\" >/dev/null 2>&1'";
  const auto start = std::chrono::steady_clock::now();
  auto r = RunShell("timeout 30 " + Fs() + " record --duration 1 -o " + Path("s.prof") + forever);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10)) << r.output;
  EXPECT_NE(r.output.find("stopped with SIGTERM"), std::string::npos) << r.output;
  EXPECT_TRUE(testing::PidsMatching(tag).empty()) << "the command was left running";
  // A shell whose child does the work: the child is stopped too, not left orphaned.
  const std::string child_tag = tag + "-child";
  auto tree = RunShell("timeout 30 " + Fs() + " record --duration 1 -o " + Path("t.prof") +
                       " -- bash -c '(exec -a " + child_tag +
                       " bash -c \"while :; do :; done\" >/dev/null 2>&1) & wait'");
  EXPECT_NE(tree.output.find("with its 1 child process(es)"), std::string::npos) << tree.output;
  EXPECT_TRUE(testing::PidsMatching(child_tag).empty()) << "the command's child was left running";
  RunShell("pkill -f " + child_tag);
  auto keep = RunShell("timeout 30 " + Fs() + " record --duration 1 --keep-running -o " +
                       Path("k.prof") + forever);
  EXPECT_NE(keep.output.find("still running"), std::string::npos) << keep.output;
  EXPECT_EQ(testing::PidsMatching(tag).size(), 1u) << keep.output;
  RunShell("pkill -f " + tag);
  // A SIGINT delivered twice in quick succession (timeout(1) signals both its child and the
  // child's process group) is one request to stop, not a second Ctrl-C that kills.
  auto intr = RunShell("{ timeout -k 5 20 " + Fs() + " record --duration 0 -o " + Path("i.prof") +
                       " -- bash -c 'exec -a " + tag +
                       "-int bash -c \"while :; do :; done\" >/dev/null 2>&1'" +
                       " & p=$!; sleep 1.5; c=$(pgrep -P $p); kill -INT $c; sleep 0.05; "
                       "kill -INT $c; wait $p; }");
  EXPECT_EQ(intr.exit_code, 130) << intr.output;
  EXPECT_TRUE(profile::ReadPprofFile(Path("i.prof")).ok()) << intr.output;
  EXPECT_TRUE(testing::PidsMatching(tag + "-int").empty()) << "the command was left running";
  RunShell("pkill -f " + tag + "-int");
}

// Item 14: a failing command's exit status is in the message; a folded input is named as such.
TEST_F(CliTest, FailingCommandsAndFoldedInputsGetClearMessages) {
  // `false` may or may not be sampled in its ~1 ms of life: either way the status is reported,
  // and with no samples nothing is written and the exit is 1.
  auto fail = RunShell(Fs() + " record --duration 2 -o " + Path("f.prof") + " -- false");
  EXPECT_EQ(fail.exit_code, PathExists(Path("f.prof")) ? 0 : 1) << fail.output;
  EXPECT_NE(fail.output.find("false exited with status 1"), std::string::npos) << fail.output;
  // A command that cannot be run says so at once (and is not waited on as if still running).
  const auto start = std::chrono::steady_clock::now();
  auto missing = RunShell(Fs() + " record --duration 5 -o " + Path("m.prof") + " -- /no/such/cmd");
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("cannot run /no/such/cmd"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("exited with status 127"), std::string::npos) << missing.output;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  const std::string folded = tmp_.path() + "/g.folded";
  ASSERT_TRUE(PathExists(folded));
  auto fg = RunShell(Fs() + " flamegraph " + folded + " -o " + Path("f.html"));
  EXPECT_EQ(fg.exit_code, 1) << fg.output;
  EXPECT_NE(fg.output.find("folded stacks"), std::string::npos) << fg.output;
  EXPECT_EQ(fg.output.find("wire type"), std::string::npos) << fg.output;
}

// Items 9, 11, 14: out-of-range pids, non-finite durations and swallowed flags exit 2 and name
// the flag; nothing is left behind in a state dir that did not exist.
TEST(CliFlagsTest, BadValuesExit2NamingTheFlag) {
  TempDir tmp;
  const std::string out = " -o " + tmp.path() + "/x.prof";
  struct Case {
    std::string args, flag;
  } cases[] = {
      {"record --pid 4294975205" + out, "--pid"},
      {"record --pid 12abc" + out, "--pid"},
      {"record --pid -3" + out, "--pid"},
      {"record --duration nan --pid 1" + out, "--duration"},
      {"record --duration inf --pid 1" + out, "--duration"},
      {"profile --duration inf --state-dir " + tmp.path() + "/s", "--duration"},
      {"profile --duration -1 --state-dir " + tmp.path() + "/s", "--duration"},
      {"profile --top 0 --state-dir " + tmp.path() + "/s", "--top"},
      {"profile --fps-tolerance 2 --state-dir " + tmp.path() + "/s", "--fps-tolerance"},
      {"profile --stack-bytes 100 --state-dir " + tmp.path() + "/s", "--stack-bytes"},
      {"profile --min-frequency 500 --state-dir " + tmp.path() + "/s", "--min-frequency"},
      {"status --state-dir --json", "--state-dir"},
      {"record --out --pid 1", "--out"},
      {"record --duration 1e300 --pid 1" + out, "--duration"},
      {"profile --baseline - --state-dir " + tmp.path() + "/s", "--baseline"},
      {"profile --fps-wait 1e12 --state-dir " + tmp.path() + "/s", "--fps-wait"},
      {"up --timeout 0 --state-dir " + tmp.path() + "/s", "--timeout"},
      {"flamegraph " + tmp.path() + "/missing.prof", "missing.prof: no such file"},
      {"diff " + tmp.path() + "/a.prof " + tmp.path() + "/b.prof", "a.prof: no such file"},
  };
  for (const Case& c : cases) {
    auto r = RunShell("timeout 20 " + Fs() + " " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.flag), std::string::npos) << c.args << "\n" << r.output;
  }
  EXPECT_FALSE(PathExists(tmp.path() + "/x.prof"));
  EXPECT_FALSE(PathExists(tmp.path() + "/s"));
  EXPECT_FALSE(PathExists("--json"));
}

}  // namespace
}  // namespace fs
