// The output writer's rules (src/base/output.h) and ReadFile's refusal of special files, on
// symlinks, FIFOs and device nodes made in a temp dir (never a real system device).
#include "src/base/output.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "src/base/file_util.h"
#include "src/base/flags.h"

namespace fs {
namespace {

class OutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fs_output_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_EQ(system(("rm -rf " + dir_).c_str()), 0); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  // A device node in the temp dir: 1:7 is /dev/full's device.
  std::string MakeDevice(const std::string& name) {
    const std::string p = Path(name);
    EXPECT_EQ(mknod(p.c_str(), S_IFCHR | 0666, makedev(1, 7)), 0) << strerror(errno);
    return p;
  }
  std::string dir_;
};

mode_t LstatMode(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

TEST_F(OutputTest, RegularAndNewFilesAreWrittenAtomically) {
  ASSERT_TRUE(WriteOutput(Path("new.txt"), "one").ok());
  ASSERT_TRUE(WriteOutput(Path("new.txt"), "two").ok());
  EXPECT_EQ(*ReadFile(Path("new.txt")), "two");
  EXPECT_TRUE(CheckOutputPath(Path("new.txt")).ok());
  EXPECT_TRUE(CheckOutputPath(Path("absent.txt")).ok());
}

// Rewriting a user's 0600 document as root keeps it theirs and private.
TEST_F(OutputTest, AReplacedFileKeepsItsOwnerAndPermissions) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the file another owner";
  const std::string doc = Path("doc.md");
  ASSERT_TRUE(WriteOutput(doc, "mine").ok());
  ASSERT_EQ(chmod(doc.c_str(), 0600), 0);
  ASSERT_EQ(chown(doc.c_str(), 65534, 65534), 0);
  ASSERT_TRUE(WriteOutput(doc, "rewritten").ok());
  struct stat st {};
  ASSERT_EQ(stat(doc.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(st.st_gid, 65534u);
  EXPECT_EQ(*ReadFile(doc), "rewritten");
}

TEST_F(OutputTest, SpecialFilesAreRefusedAndLeftAsTheyWere) {
  if (geteuid() != 0) GTEST_SKIP() << "mknod needs root";
  ASSERT_TRUE(WriteOutput(Path("target.txt"), "keep").ok());
  ASSERT_EQ(symlink(Path("target.txt").c_str(), Path("link").c_str()), 0);
  ASSERT_EQ(mkfifo(Path("fifo").c_str(), 0644), 0);
  const std::string device = MakeDevice("full");
  ASSERT_EQ(mkdir(Path("folder").c_str(), 0755), 0);
  for (const std::string& p : {Path("link"), Path("fifo"), device, Path("folder")}) {
    const mode_t before = LstatMode(p);
    Status check = CheckOutputPath(p);
    EXPECT_FALSE(check.ok()) << p;
    EXPECT_NE(check.message().find("not a regular file"), std::string::npos) << check.message();
    EXPECT_FALSE(WriteOutput(p, "x").ok()) << p;
    EXPECT_EQ(LstatMode(p), before) << p << " was replaced";
  }
  EXPECT_EQ(*ReadFile(Path("target.txt")), "keep");
}

// A symlink planted between the check and the write is still not replaced: the writer checks
// again just before its rename.
TEST_F(OutputTest, SymlinkPlantedAfterTheCheckIsNotReplaced) {
  ASSERT_TRUE(CheckOutputPath(Path("late")).ok());
  ASSERT_TRUE(WriteOutput(Path("victim"), "keep").ok());
  ASSERT_EQ(symlink(Path("victim").c_str(), Path("late").c_str()), 0);
  EXPECT_FALSE(WriteOutput(Path("late"), "x").ok());
  EXPECT_TRUE(S_ISLNK(LstatMode(Path("late"))));
  EXPECT_EQ(*ReadFile(Path("victim")), "keep");
  // No temp file is left behind either.
  EXPECT_FALSE(PathExists(Path("late.tmp." + std::to_string(getpid()))));
}

// Only looked at here: writing to the real /dev/null is tested in a private mount namespace
// (tests/integration/cli_test.cc), where a regression cannot replace the machine's device.
TEST_F(OutputTest, DevNullIsASinkAndACopyOfItIsNot) {
  if (geteuid() != 0) GTEST_SKIP() << "mknod needs root";
  EXPECT_EQ(KindOfOutput("/dev/null"), OutputKind::kNull);
  ASSERT_TRUE(CheckOutputPath("/dev/null").ok());
  const std::string copy = Path("null");
  ASSERT_EQ(mknod(copy.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  EXPECT_EQ(KindOfOutput(copy), OutputKind::kFile);
  EXPECT_FALSE(CheckOutputPath(copy).ok());
}

TEST_F(OutputTest, MissingOrUnwritableFoldersAndEmptyPathsFailTheCheck) {
  Status missing = CheckOutputPath(Path("no/such/out.prof"));
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("does not exist"), std::string::npos) << missing.message();
  EXPECT_FALSE(CheckOutputPath("").ok());
  EXPECT_FALSE(CheckOutputPath(Path("dir/")).ok());
  // Root passes access(W_OK) everywhere; /proc refuses the create itself.
  Status proc = CheckOutputPath("/proc/framescope-out.prof");
  EXPECT_FALSE(proc.ok());
  EXPECT_NE(proc.message().find("cannot create a file"), std::string::npos) << proc.message();
}

TEST_F(OutputTest, AnOutputThatIsAnInputOrAnotherOutputIsRefused) {
  ASSERT_TRUE(WriteOutput(Path("in.prof"), "profile").ok());
  ASSERT_EQ(mkdir(Path("sub").c_str(), 0755), 0);
  ASSERT_EQ(symlink(dir_.c_str(), Path("sub/up").c_str()), 0);
  EXPECT_FALSE(CheckOutputs({Path("in.prof")}, {Path("in.prof")}).ok());
  // The same file by another name: a hard link, a path through a symlinked folder, "./".
  ASSERT_EQ(link(Path("in.prof").c_str(), Path("hard.prof").c_str()), 0);
  EXPECT_FALSE(CheckOutputs({Path("hard.prof")}, {Path("in.prof")}).ok());
  EXPECT_FALSE(CheckOutputs({Path("sub/up/in.prof")}, {Path("in.prof")}).ok());
  // Two outputs naming one new file.
  Status twice = CheckOutputs({Path("a.out"), Path("sub/../a.out")});
  EXPECT_FALSE(twice.ok());
  EXPECT_NE(twice.message().find("same file"), std::string::npos) << twice.message();
  EXPECT_FALSE(CheckOutputs({"-", "-"}).ok());
  // Distinct outputs, and several outputs sunk into /dev/null, are fine.
  EXPECT_TRUE(CheckOutputs({Path("a.out"), Path("b.out")}, {Path("in.prof")}).ok());
  EXPECT_TRUE(CheckOutputs({"/dev/null", "/dev/null"}).ok());
}

// Reading a device would never end and reading a FIFO would block: both fail at once.
TEST_F(OutputTest, ReadFileRefusesDevicesAndFifosWithoutBlocking) {
  if (geteuid() != 0) GTEST_SKIP() << "mknod needs root";
  ASSERT_EQ(mkfifo(Path("fifo").c_str(), 0644), 0);
  const std::string device = Path("zero");
  ASSERT_EQ(mknod(device.c_str(), S_IFCHR | 0666, makedev(1, 5)), 0);
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& p : {Path("fifo"), device, dir_}) {
    auto r = ReadFile(p);
    EXPECT_FALSE(r.ok()) << p;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("not a regular file"), std::string::npos);
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

Status ParseArgs(FlagSet& flags, std::vector<std::string> args) {
  std::vector<char*> argv = {const_cast<char*>("prog")};
  for (auto& a : args) argv.push_back(a.data());
  return flags.Parse(static_cast<int>(argv.size()), argv.data());
}

TEST(FlagParsingTest, AFlagNeedingAValueNeverTakesTheNextFlag) {
  std::string state, out;
  bool json = false;
  FlagSet flags("t", "test");
  flags.String("state-dir", &state, "");
  flags.String("out", &out, "");
  flags.ShortName('o', "out");
  flags.Bool("json", &json, "");
  Status st = ParseArgs(flags, {"--state-dir", "--json"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("--state-dir needs a value"), std::string::npos) << st.message();
  EXPECT_FALSE(ParseArgs(flags, {"--state-dir", "-o", "x"}).ok());
  // The = form and values that merely start with a dash still work.
  FlagSet ok("t", "test");
  ok.String("state-dir", &state, "");
  ok.String("out", &out, "");
  ASSERT_TRUE(ParseArgs(ok, {"--state-dir=--json", "--out", "-"}).ok());
  EXPECT_EQ(state, "--json");
  EXPECT_EQ(out, "-");
}

TEST(FlagParsingTest, NonFiniteNumbersAreRefused) {
  for (const char* bad : {"nan", "inf", "-inf", "NAN", "infinity", "1e999"}) {
    double d = 1;
    FlagSet flags("t", "test");
    flags.Double("duration", &d, "");
    Status st = ParseArgs(flags, {"--duration", bad});
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.message().find("--duration"), std::string::npos) << st.message();
    EXPECT_EQ(d, 1) << bad;
  }
  double d = 0;
  FlagSet flags("t", "test");
  flags.Double("duration", &d, "");
  ASSERT_TRUE(ParseArgs(flags, {"--duration", "-2.5"}).ok());
  EXPECT_EQ(d, -2.5);
}

}  // namespace
}  // namespace fs
