// `framescope schedule` against root's real crontab and a real cron daemon. No system is up: every
// run fails (a failed run is history too), which is what makes the short-interval check fast.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "src/base/file_util.h"
#include "src/regression/run_manifest.h"
#include "src/system/process.h"
#include "tests/integration/test_util.h"

namespace fs::testing {
namespace {

struct Crontab {
  bool present = false;
  std::string text;
  bool operator==(const Crontab& o) const { return present == o.present && text == o.text; }
};

Crontab ReadCrontab() {
  // Braces: the inner 2>/dev/null wins over RunShell's 2>&1, so only the crontab is read.
  CommandResult r = RunShell("{ crontab -l 2>/dev/null; }");
  return {r.exit_code == 0, r.exit_code == 0 ? r.output : ""};
}

void WriteCrontab(const Crontab& c) {
  if (!c.present) {
    RunShell("crontab -r");
    return;
  }
  std::string file = "/tmp/framescope-crontab-" + std::to_string(getpid());
  std::ofstream(file, std::ios::binary) << c.text;
  CommandResult r = RunShell("crontab " + file);
  std::filesystem::remove(file);
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// Root's crontab as it was before the test, put back however the test ends.
class CrontabGuard {
 public:
  CrontabGuard() : saved_(ReadCrontab()) {}
  ~CrontabGuard() {
    if (!(ReadCrontab() == saved_)) WriteCrontab(saved_);
  }
  const Crontab& saved() const { return saved_; }

 private:
  Crontab saved_;
};

// A cron daemon for the test when none runs (CI containers have none), stopped afterwards.
class CronDaemon {
 public:
  CronDaemon() {
    bool running = !FindProcesses([](pid_t p) {
                      auto comm = ReadFile("/proc/" + std::to_string(p) + "/comm");
                      return comm.ok() && (*comm == "cron\n" || *comm == "crond\n");
                    }).empty();
    if (running) return;
    pid_ = fork();
    if (pid_ == 0) {
      execlp("cron", "cron", "-f", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~CronDaemon() {
    if (pid_ > 0) TerminateProcess(pid_, 3000);
  }

 private:
  pid_t pid_ = -1;
};

std::string Fs() { return BinDir() + "/framescope"; }

// A file's text, "" when unreadable.
std::string Text(const std::string& path) {
  auto t = ReadFile(path);
  return t.ok() ? *t : "";
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// The run folders under `out` (timestamp-named folders with a run.json), sorted.
std::vector<std::string> Runs(const std::string& out) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(out, ec)) {
    std::string name = e.path().filename().string();
    if (name.size() == 16 && name[8] == 'T' && PathExists(e.path().string() + "/run.json")) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

class Schedule : public ::testing::Test {
 protected:
  std::string Flags(const std::string& every = "1m") {
    return " --every " + every + " --duration 2 --keep 5 --state-dir " +
           Quote(tmp_.path() + "/no-system") + " --out " + Quote(out_);
  }
  TempDir tmp_;
  std::string out_ = tmp_.path() + "/automated";
};

TEST_F(Schedule, InstallStatusRemoveAgainstTheRealCrontabAndRunsAppearEveryMinute) {
  CrontabGuard guard;
  const Crontab before = guard.saved();
  // Debian's cron turns \\ into \ and \% into %: the label must still arrive as written.
  const std::string label = "a\\%b\\\\c 5%";
  CommandResult r = RunShell(Fs() + " schedule install" + Flags() +
                             " --baseline 'pinned 5%' --label " + Quote(label));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Crontab now = ReadCrontab();
  ASSERT_TRUE(now.present);
  // The old lines, untouched, plus exactly our block: BEGIN marker, the entry, END marker.
  ASSERT_EQ(now.text.substr(0, before.text.size()), before.text);
  std::string added = now.text.substr(before.text.size());
  EXPECT_EQ(std::count(added.begin(), added.end(), '\n'), 3) << added;
  EXPECT_NE(added.find("# >>> framescope schedule: profiling runs into " + out_),
            std::string::npos);
  EXPECT_NE(added.find("\n* * * * * '" + Fs() + "' 'schedule' 'run'"), std::string::npos) << added;
  EXPECT_NE(added.find(">> '" + out_ + "/schedule.log' 2>&1\n"), std::string::npos) << added;

  r = RunShell(Fs() + " schedule status" + Flags());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("installed (crontab)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("next due: 20"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("last run: none"), std::string::npos) << r.output;

  {
    // Runs appear: within ~75 s cron starts one; the system is down, so it is a failed run.
    CronDaemon cron;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(80);
    while (Runs(out_).empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  auto runs = Runs(out_);
  ASSERT_FALSE(runs.empty()) << "no run in 80 s; log: " << Text(out_ + "/schedule.log");
  auto m = regression::LoadRunManifest(out_ + "/" + runs[0]);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->status, "failed");
  EXPECT_NE(m->exit_code, 0);
  EXPECT_FALSE(m->error.empty());
  EXPECT_EQ(m->label, label);
  // The scheduled profile's checklist sees its own schedule (cron was running) and baseline.
  std::map<std::string, regression::ChecklistRow> rows;
  for (const auto& row : m->checklist) rows[row.id] = row;
  EXPECT_EQ(rows["4.1"].verdict, regression::kMet) << rows["4.1"].value << rows["4.1"].reason;
  EXPECT_NE(rows["4.1"].value.find("crontab `* * * * *` into " + out_), std::string::npos)
      << rows["4.1"].value;
  EXPECT_EQ(rows["4.2"].verdict, regression::kMet) << rows["4.2"].value;
  EXPECT_NE(rows["4.2"].value.find("baseline pinned 5%"), std::string::npos) << rows["4.2"].value;
  // index.html is written after run.json: give the run a moment to finish.
  for (int i = 0; i < 40 && !PathExists(out_ + "/index.html"); ++i) usleep(100000);
  auto html = ReadFile(out_ + "/index.html");
  ASSERT_TRUE(html.ok()) << html.status().message();
  EXPECT_NE(html->find(m->started_at), std::string::npos);
  EXPECT_NE(html->find("failed"), std::string::npos);

  r = RunShell(Fs() + " schedule status --json" + Flags());
  EXPECT_NE(r.output.find("\"status\": \"failed\""), std::string::npos) << r.output;

  r = RunShell(Fs() + " schedule remove" + Flags());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // Byte-identical; a root without a crontab before has none again (not an empty one).
  EXPECT_TRUE(ReadCrontab() == before) << ReadCrontab().text;
  r = RunShell(Fs() + " schedule remove" + Flags());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("not installed"), std::string::npos) << r.output;
}

TEST_F(Schedule, ForeignLinesStayByteIdenticalAndReinstallReplaces) {
  CrontabGuard guard;
  // Comments, a variable, an entry and no newline after the last line.
  const Crontab foreign = {
      true, "# a comment\nMAILTO=\"\"\n0 3 * * * /bin/true  # keep\n# last, no newline"};
  WriteCrontab(foreign);
  ASSERT_TRUE(ReadCrontab() == foreign) << "crontab does not keep the text: " << ReadCrontab().text;
  ASSERT_EQ(RunShell(Fs() + " schedule install" + Flags("6h")).exit_code, 0);
  CommandResult r = RunShell(Fs() + " schedule install" + Flags("30m"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("replaced"), std::string::npos) << r.output;
  Crontab now = ReadCrontab();
  EXPECT_NE(now.text.find(foreign.text), std::string::npos) << now.text;
  EXPECT_EQ(now.text.find("0 */6 * * *"), std::string::npos) << now.text;
  EXPECT_NE(now.text.find("*/30 * * * *"), std::string::npos) << now.text;
  // The same folder spelt otherwise (trailing slash, through a symlink) is the same schedule.
  std::filesystem::create_directory_symlink(out_, tmp_.path() + "/link");
  std::string other = " --out " + Quote(tmp_.path() + "/link/");
  r = RunShell(Fs() + " schedule status" + other);
  EXPECT_NE(r.output.find("installed (crontab)"), std::string::npos) << r.output;
  ASSERT_EQ(RunShell(Fs() + " schedule install --every 6h --out " + Quote(out_ + "/")).exit_code,
            0);
  EXPECT_EQ(ReadCrontab().text.find("*/30 * * * *"), std::string::npos) << "not replaced";
  ASSERT_EQ(RunShell(Fs() + " schedule remove" + other).exit_code, 0);
  EXPECT_TRUE(ReadCrontab() == foreign) << ReadCrontab().text;
}

// A crontab cron(8) would not take back (a blank line ending in CR) is refused with the reason.
TEST_F(Schedule, CrlfCrontabRefusedWithTheReason) {
  CrontabGuard guard;
  const std::string spool = "/var/spool/cron/crontabs";
  ASSERT_TRUE(std::filesystem::is_directory(spool)) << "not Debian's cron layout";
  {
    std::ofstream(spool + "/root", std::ios::binary)
        << "# from Windows\r\n\r\n0 3 * * * /bin/true\r\n";
  }
  CommandResult r = RunShell(Fs() + " schedule install" + Flags("6h"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("Windows line ends (CR LF)"), std::string::npos) << r.output;
}

TEST_F(Schedule, RunByHandPrunesOnlyRunFoldersAndSkipsWhileLocked) {
  std::filesystem::create_directories(out_ + "/20200101T000000Z");  // No run.json: not a run.
  std::ofstream(out_ + "/notes.txt") << "mine";
  std::string run = Fs() + " schedule run --keep 1 --duration 1 --label nightly --state-dir " +
                    Quote(tmp_.path() + "/no-system") + " --out " + Quote(out_);
  CommandResult first = RunShell(run);
  EXPECT_EQ(first.exit_code, 1) << first.output;  // The profile failed: the system is down.
  auto runs = Runs(out_);
  ASSERT_EQ(runs.size(), 1u) << first.output;
  CommandResult second = RunShell(run);
  EXPECT_EQ(second.exit_code, 1) << second.output;
  auto after = Runs(out_);
  ASSERT_EQ(after.size(), 1u) << second.output;
  EXPECT_GT(after[0], runs[0]);  // A new folder, the older one pruned.
  auto m = regression::LoadRunManifest(out_ + "/" + after[0]);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, "failed");
  EXPECT_EQ(m->label, "nightly");
  // The profile itself records the failure now (its checklist too), with the reason.
  EXPECT_NE(m->error.find("no running system"), std::string::npos) << m->error;
  EXPECT_EQ(Text(out_ + "/notes.txt"), "mine");
  EXPECT_TRUE(std::filesystem::is_directory(out_ + "/20200101T000000Z"));
  auto html = ReadFile(out_ + "/index.html");
  ASSERT_TRUE(html.ok());
  EXPECT_NE(html->find("1 run(s), 1 failed"), std::string::npos);

  // While another run holds the lock, a run is skipped: exit 0, no new folder.
  int fd = open((out_ + "/.schedule.lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);
  CommandResult skipped = RunShell(run);
  close(fd);
  EXPECT_EQ(skipped.exit_code, 0) << skipped.output;
  EXPECT_NE(skipped.output.find("skipped: previous run still going"), std::string::npos)
      << skipped.output;
  EXPECT_EQ(Runs(out_), after);
}

TEST_F(Schedule, BadInputIsExit2WithTheReason) {
  CrontabGuard guard;
  std::ofstream(tmp_.path() + "/file") << "x";
  struct Case {
    std::string flags, says;
  } cases[] = {
      {" --every 7m --out " + out_, "divid"},
      {" --keep 0 --out " + out_, "--keep"},
      {" --out " + tmp_.path() + "/file", "not a folder"},
      {" --every 6 --out " + out_, "--every 6"},
      {" --repeat 100000 --out " + out_, "--repeat must be 1..1000"},
      {" --duration 700000 --out " + out_, "--duration"},
      {" --alert-url https://x/hook --out " + out_, "no https"},
  };
  for (const char* verb : {"install", "run"}) {
    for (const auto& c : cases) {
      CommandResult r = RunShell(Fs() + " schedule " + verb + c.flags);
      EXPECT_EQ(r.exit_code, 2) << verb << c.flags << ": " << r.output;
      EXPECT_NE(r.output.find(c.says), std::string::npos) << verb << c.flags << ": " << r.output;
    }
  }
  EXPECT_EQ(RunShell(Fs() + " schedule frobnicate").exit_code, 2);
  // An --out no one can write to (procfs, even for root): the error names the path.
  CommandResult r = RunShell(Fs() + " schedule run --out /proc --state-dir " + Quote(out_));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("/proc/.schedule.lock: "), std::string::npos) << r.output;
  EXPECT_TRUE(ReadCrontab() == guard.saved());  // Nothing was installed.
  EXPECT_FALSE(PathExists(out_));
}

}  // namespace
}  // namespace fs::testing
