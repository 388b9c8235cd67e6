#include "src/session/schedule.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>

#include "src/regression/run_manifest.h"

namespace fs::session {
namespace {

TEST(ParseEvery, CronAndCalendarForIntervalsThatDivideTheHourOrDay) {
  struct Case {
    const char* every;
    const char* cron;
    const char* calendar;
  } cases[] = {
      {"1m", "* * * * *", "*-*-* *:00/1:00"},    {"15m", "*/15 * * * *", "*-*-* *:00/15:00"},
      {"60m", "0 * * * *", "*-*-* 00/1:00:00"},  {"1h", "0 * * * *", "*-*-* 00/1:00:00"},
      {"6h", "0 */6 * * *", "*-*-* 00/6:00:00"}, {"24h", "0 0 * * *", "*-*-* 00/24:00:00"},
  };
  for (const auto& c : cases) {
    auto e = ParseEvery(c.every);
    ASSERT_TRUE(e.ok()) << c.every << ": " << e.status().message();
    EXPECT_EQ(e->cron, c.cron) << c.every;
    EXPECT_EQ(e->on_calendar, c.calendar) << c.every;
  }
}

TEST(ParseEvery, RefusesWhatCronCannotRepeatEvenly) {
  for (const char* bad : {"7m", "5h", "90m", "48h", "0m", "m", "6", "6d", "-5m", "1.5h", ""}) {
    auto e = ParseEvery(bad);
    EXPECT_FALSE(e.ok()) << bad;
  }
  auto e = ParseEvery("7m");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("divid"), std::string::npos) << e.status().message();
}

class NextCronTime : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tz = getenv("TZ");
    saved_ = tz ? tz : "";
    had_ = tz != nullptr;
    setenv("TZ", "UTC", 1);
    tzset();
  }
  void TearDown() override {
    if (had_) setenv("TZ", saved_.c_str(), 1);
    if (!had_) unsetenv("TZ");
    tzset();
  }
  static int64_t At(const char* iso) {
    struct tm tm = {};
    strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
    return timegm(&tm);
  }
  std::string saved_;
  bool had_ = false;
};

TEST_F(NextCronTime, NextSlotStrictlyAfterNow) {
  EXPECT_EQ(*session::NextCronTime("0 */6 * * *", At("2026-12-02T07:00:00")),
            At("2026-12-02T12:00:00"));
  EXPECT_EQ(*session::NextCronTime("0 */6 * * *", At("2026-12-02T05:59:59")),
            At("2026-12-02T06:00:00"));
  // Exactly on a slot: the next one, not now.
  EXPECT_EQ(*session::NextCronTime("0 */6 * * *", At("2026-12-02T06:00:00")),
            At("2026-12-02T12:00:00"));
  EXPECT_EQ(*session::NextCronTime("0 */6 * * *", At("2026-12-02T18:30:00")),
            At("2026-12-03T00:00:00"));
  EXPECT_EQ(*session::NextCronTime("*/15 * * * *", At("2026-12-02T07:14:10")),
            At("2026-12-02T07:15:00"));
  EXPECT_EQ(*session::NextCronTime("* * * * *", At("2026-12-02T07:14:10")),
            At("2026-12-02T07:15:00"));
  EXPECT_EQ(*session::NextCronTime("0 0 * * *", At("2026-12-31T23:59:00")),
            At("2027-01-01T00:00:00"));
  // What ParseEvery makes always parses.
  for (const char* every : {"1m", "5m", "30m", "1h", "3h", "12h", "24h"}) {
    EXPECT_TRUE(session::NextCronTime(ParseEvery(every)->cron, At("2026-12-02T07:00:00")).ok())
        << every;
  }
  EXPECT_FALSE(session::NextCronTime("0 6 1 * *", 0).ok());
  EXPECT_FALSE(session::NextCronTime("0 */6 * *", 0).ok());
}

const std::string kOut = "/var/lib/fs/automated";

TEST(Crontab, InsertReplaceRemoveKeepForeignBytes) {
  const std::string foreign =
      "# m h dom mon dow command\nMAILTO=\"\"\n*/5 * * * * /usr/bin/backup --all  # nightly\n\n"
      "# keep me\n";
  std::string a = CrontabUpsert(foreign, kOut, "* * * * * run-a");
  EXPECT_EQ(a.substr(0, foreign.size()), foreign);
  EXPECT_EQ(*CrontabEntry(a, kOut), "* * * * * run-a");
  // A second install replaces its own entry in place, no duplicate.
  std::string b = CrontabUpsert(a, kOut, "0 */6 * * * run-b");
  EXPECT_EQ(b.find("run-a"), std::string::npos);
  EXPECT_EQ(b.find("# >>> framescope"), b.rfind("# >>> framescope"));
  EXPECT_EQ(*CrontabEntry(b, kOut), "0 */6 * * * run-b");
  bool found = false;
  EXPECT_EQ(CrontabRemove(b, kOut, &found), foreign);
  EXPECT_TRUE(found);
  CrontabRemove(foreign, kOut, &found);
  EXPECT_FALSE(found);
}

TEST(Crontab, NoTrailingNewlineAndEmpty) {
  const std::string foreign = "# only a comment, no newline at the end";
  std::string a = CrontabUpsert(foreign, kOut, "* * * * * x");
  EXPECT_NE(a.find(foreign), std::string::npos);
  bool found = false;
  EXPECT_EQ(CrontabRemove(a, kOut, &found), foreign);
  EXPECT_TRUE(found);
  std::string e = CrontabUpsert("", kOut, "* * * * * x");
  EXPECT_EQ(e, CrontabBlock(kOut, "* * * * * x"));
  EXPECT_EQ(CrontabRemove(e, kOut, &found), "");
}

TEST(Crontab, EntriesOfOtherOutsAreOthersLines) {
  // /a/b's block must not be taken for /a/b2's (a prefix), nor removed with it.
  std::string both = CrontabUpsert(CrontabUpsert("", "/a/b", "L1"), "/a/b2", "L2");
  EXPECT_EQ(*CrontabEntry(both, "/a/b"), "L1");
  EXPECT_EQ(*CrontabEntry(both, "/a/b2"), "L2");
  bool found = false;
  std::string only_b = CrontabRemove(both, "/a/b2", &found);
  EXPECT_EQ(only_b, CrontabBlock("/a/b", "L1"));
  EXPECT_FALSE(CrontabEntry(only_b, "/a/b2").has_value());
}

ScheduleOptions Options() {
  ScheduleOptions o;
  o.state_dir = "/srv/fs state";
  o.out = "/srv/it's 100%";
  o.label = "v1";
  o.duration_s = 30;
  o.keep = 4;
  return o;
}

TEST(CronLine, QuotesPathsAndEscapesPercent) {
  std::string line = CronLine("0 */6 * * *", "/usr/bin/framescope", Options());
  EXPECT_EQ(line,
            "0 */6 * * * '/usr/bin/framescope' 'schedule' 'run' '--state-dir' '/srv/fs state' "
            "'--out' '/srv/it'\\''s 100\\%' '--duration' '30' '--keep' '4' '--label' 'v1' >> "
            "'/srv/it'\\''s 100\\%/schedule.log' 2>&1");
}

TEST(ProfileArgv, RepeatAndLabelOnlyWhenGiven) {
  ScheduleOptions o = Options();
  o.label.clear();
  std::vector<std::string> want = {
      "/x/framescope", "profile",    "--state-dir", "/srv/fs state",  "--out",
      "/o/r",          "--duration", "30",          "--schedule-out", "/srv/it's 100%"};
  EXPECT_EQ(ProfileArgv("/x/framescope", o, "/o/r"), want);
  o.repeat = 5;
  o.label = "v2";
  want.insert(want.end(), {"--repeat", "5", "--label", "v2"});
  EXPECT_EQ(ProfileArgv("/x/framescope", o, "/o/r"), want);
}

// Debian's cron turns \\ into \ and \% into %, others only \% into %: no backslash of ours may
// precede a backslash or a %, whichever cron reads the line.
TEST(CronLine, NoBackslashBeforeBackslashOrPercent) {
  ScheduleOptions o = Options();
  o.label = "a\\%b\\\\c";  // a\%b\\c
  std::string line = CronLine("0 */6 * * *", "/usr/bin/framescope", o);
  EXPECT_NE(line.find("'--label' 'a\\''\\%b\\''\\c'"), std::string::npos) << line;
  for (size_t p = line.find('\\'); p != std::string::npos; p = line.find('\\', p + 1)) {
    if (line.compare(p, 2, "\\%") == 0) {
      ++p;  // Our escaped %.
      continue;
    }
    EXPECT_NE(line[p + 1], '\\') << p << ": " << line;
  }
}

// 4.2 reads the pinned baseline back from the installed entry, in either quoting.
TEST(ScheduleArg, ReadsBackWhatCronLineAndTheUnitsWrote) {
  ScheduleOptions o = Options();
  for (std::string label :
       {"v1", "it's 5% \"odd\" $HOME \\ x", "", "a\\%b\\\\c\\", "\\'\\\\%'%\\"}) {
    o.baseline = label;
    std::string line = CronLine("0 */6 * * *", "/usr/bin/framescope", o);
    EXPECT_EQ(ScheduleArg(line, "--baseline", false), label) << line;
    std::string unit = MakeSystemdUnits("*-*-* 00/6:00:00", "/usr/bin/framescope", o).service;
    EXPECT_EQ(ScheduleArg(unit, "--baseline", true), label) << unit;
  }
  EXPECT_EQ(ScheduleArg(CronLine("0 */6 * * *", "/f", Options()), "--label", false), "v1");
}

TEST(SystemdUnits, TextAndEscaping) {
  SystemdUnits u = MakeSystemdUnits("*-*-* 00/6:00:00", "/usr/bin/framescope", Options());
  EXPECT_EQ(u.name, SystemdUnitName("/srv/it's 100%"));
  EXPECT_EQ(u.name.rfind("framescope-schedule-", 0), 0u);
  EXPECT_NE(u.service.find("Type=oneshot\n"), std::string::npos);
  // % is a specifier in unit files: doubled, so the path arrives as written.
  EXPECT_NE(u.service.find("ExecStart=\"/usr/bin/framescope\" \"schedule\" \"run\" \"--state-dir\" "
                           "\"/srv/fs state\" \"--out\" \"/srv/it's 100%%\""),
            std::string::npos)
      << u.service;
  EXPECT_NE(u.timer.find("OnCalendar=*-*-* 00/6:00:00\n"), std::string::npos);
  EXPECT_NE(u.timer.find("Unit=" + u.name + ".service\n"), std::string::npos);
  EXPECT_NE(u.timer.find("WantedBy=timers.target\n"), std::string::npos);
}

// systemd-analyze verify checks the unit files for real where it works without a running systemd.
TEST(SystemdUnits, VerifyWithSystemdAnalyze) {
  if (system("command -v systemd-analyze >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "systemd-analyze not installed";
  }
  std::string dir = ::testing::TempDir() + "/units" + std::to_string(getpid());
  std::filesystem::create_directories(dir + "/out");
  ScheduleOptions o = Options();
  o.out = dir + "/out";
  SystemdUnits u = MakeSystemdUnits(ParseEvery("6h")->on_calendar, "/bin/true", o);
  std::ofstream(dir + "/" + u.name + ".service") << u.service;
  std::ofstream(dir + "/" + u.name + ".timer") << u.timer;
  std::string cmd = "cd " + dir + " && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no " +
                    u.name + ".timer " + u.name + ".service > verify.log 2>&1";
  int rc = system(cmd.c_str());
  std::ifstream log(dir + "/verify.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  EXPECT_EQ(rc, 0) << text;
  EXPECT_EQ(text.find(u.name), std::string::npos) << text;
}

TEST(Validate, BadValuesAreNamed) {
  ScheduleOptions o = Options();
  o.keep = 0;
  EXPECT_NE(ValidateScheduleOptions(&o).message().find("--keep"), std::string::npos);
  o = Options();
  o.every = "7m";
  EXPECT_FALSE(ValidateScheduleOptions(&o).ok());
  o = Options();
  o.label = "a\nb";
  EXPECT_FALSE(ValidateScheduleOptions(&o).ok());
  o = Options();
  o.out = "/etc/hostname";  // A file.
  EXPECT_NE(ValidateScheduleOptions(&o).message().find("not a folder"), std::string::npos);
  o = Options();
  o.out = "rel/../out";
  ASSERT_TRUE(ValidateScheduleOptions(&o).ok());
  EXPECT_EQ(o.out,
            std::filesystem::weakly_canonical(std::filesystem::current_path()).string() + "/out");
}

// What every run would refuse (profile's ranges, an alert URL compare cannot use) is refused at
// install, not on every run.
TEST(Validate, WhatEveryRunWouldRefuse) {
  struct Case {
    int repeat;
    double duration;
    const char* url;
    const char* says;
  } bad[] = {
      {100000, 60, "", "--repeat must be 1..1000"},
      {1001, 600, "", "--repeat must be 1..1000"},
      {0, 604801, "", "--duration"},
      {10, 1, "", "--duration / --repeat"},
      {0, 60, "https://x/hook", "https"},
      {0, 60, "http://h:0/x", "port"},
      {0, 60, "ftp://h/x", "--alert-url"},
  };
  for (const auto& c : bad) {
    ScheduleOptions o = Options();
    o.repeat = c.repeat;
    o.duration_s = c.duration;
    o.alert_url = c.url;
    Status st = ValidateScheduleOptions(&o);
    EXPECT_NE(st.message().find(c.says), std::string::npos) << c.repeat << " " << c.url;
  }
  ScheduleOptions o = Options();
  o.repeat = 1000;
  o.duration_s = 604800;
  o.alert_url = "http://127.0.0.1:8080/hook";
  EXPECT_TRUE(ValidateScheduleOptions(&o).ok()) << ValidateScheduleOptions(&o).message();
}

// One schedule per folder, however it is spelt: a trailing slash, ./ or a symlink to it.
TEST(Validate, OneKeyPerFolder) {
  std::string dir = ::testing::TempDir() + "/key" + std::to_string(getpid());
  std::filesystem::create_directories(dir + "/real");
  std::filesystem::create_directory_symlink(dir + "/real", dir + "/link");
  std::string want = std::filesystem::canonical(dir + "/real").string();
  for (std::string out : {dir + "/real", dir + "/real/", dir + "/real//", dir + "/./real/.",
                          dir + "/link", dir + "/link/"}) {
    ScheduleOptions o = Options();
    o.out = out;
    ASSERT_TRUE(ValidateScheduleOptions(&o).ok()) << out;
    EXPECT_EQ(o.out, want) << out;
  }
  ScheduleOptions o = Options();
  o.out = dir + "/link/not-yet/";  // Not there yet: the existing part resolved.
  ASSERT_TRUE(ValidateScheduleOptions(&o).ok());
  EXPECT_EQ(o.out, want + "/not-yet");
  o.out = "/";
  ASSERT_TRUE(ValidateScheduleOptions(&o).ok());
  EXPECT_EQ(o.out, "/");
  std::filesystem::remove_all(dir);
}

// A process the child leaves in the background (an alert command's `cmd &`) keeps the pipe open;
// the run must end when the child does, with all of the child's output read.
TEST(RunTeed, EndsWhenTheChildExitsNotWhenThePipeCloses) {
  std::string pidfile = ::testing::TempDir() + "/bg" + std::to_string(getpid());
  std::deque<std::string> tail;
  auto start = std::chrono::steady_clock::now();
  fflush(stdout);
  int saved_stdout = dup(1), null = open("/dev/null", O_WRONLY);
  dup2(null, 1);  // RunTeed copies the output to stdout: not into the test log.
  auto status = RunTeed({"/bin/sh", "-c", "seq 1 30000; sleep 30 & echo $! > " + pidfile}, &tail);
  dup2(saved_stdout, 1);
  close(saved_stdout);
  close(null);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::ifstream in(pidfile);
  pid_t bg = 0;
  in >> bg;
  if (bg > 0) kill(bg, SIGKILL);
  std::filesystem::remove(pidfile);
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  EXPECT_LT(took, 10) << "waited for the background process";
  ASSERT_EQ(tail.size(), 15u);
  EXPECT_EQ(tail.front(), "29986");
  EXPECT_EQ(tail.back(), "30000");
  tail.clear();
  status = RunTeed({"/bin/sh", "-c", "printf 'no newline'; exit 3"}, &tail);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_EQ(tail, std::deque<std::string>{"no newline"});
}

TEST(RunFolders, OnlyTimestampFoldersWithRunJsonArePrunedOldestFirst) {
  std::string out = ::testing::TempDir() + "/runs" + std::to_string(getpid());
  std::filesystem::remove_all(out);
  std::filesystem::create_directories(out);
  auto run = [&out](const std::string& name, const std::string& label) {
    regression::RunManifest m;
    m.label = label;
    std::filesystem::create_directories(out + "/" + name);
    ASSERT_TRUE(regression::WriteRunManifest(out + "/" + name, m).ok());
  };
  run("20261201T000000Z", "base");
  run("20261201T060000Z", "");
  run("20261201T120000Z", "");
  run("20261201T180000Z", "");
  run("not-a-run", "");                                            // wrong name
  std::filesystem::create_directories(out + "/20261201T190000Z");  // no run.json
  std::ofstream(out + "/20261201T200000Z") << "a file";
  std::filesystem::create_directory_symlink(out + "/20261201T180000Z", out + "/20261201T210000Z");
  EXPECT_EQ(RunFolders(out), (std::vector<std::string>{"20261201T000000Z", "20261201T060000Z",
                                                       "20261201T120000Z", "20261201T180000Z"}));
  EXPECT_EQ(RunsToPrune(out, 2, ""),
            (std::vector<std::string>{"20261201T000000Z", "20261201T060000Z"}));
  // The baseline's runs are pinned: not counted, not pruned.
  EXPECT_EQ(RunsToPrune(out, 2, "base"), (std::vector<std::string>{"20261201T060000Z"}));
  EXPECT_TRUE(RunsToPrune(out, 4, "").empty());
  std::filesystem::remove_all(out);
}

// Failed runs never push out good ones: --keep ok runs and --keep failed ones, failed pruned
// among themselves.
TEST(RunsToPrune, FailedRunsNeverPushOutOkRuns) {
  std::string out = ::testing::TempDir() + "/failed" + std::to_string(getpid());
  std::filesystem::remove_all(out);
  auto run = [&out](const std::string& name, const std::string& status) {
    regression::RunManifest m;
    m.status = status;
    std::filesystem::create_directories(out + "/" + name);
    ASSERT_TRUE(regression::WriteRunManifest(out + "/" + name, m).ok());
  };
  for (const char* name : {"20261201T000000Z", "20261201T010000Z", "20261201T020000Z"}) {
    run(name, "ok");
  }
  // Three hours with the system down.
  run("20261201T030000Z", "failed");
  run("20261201T040000Z", "interrupted");
  std::filesystem::create_directories(out + "/20261201T050000Z");
  std::ofstream(out + "/20261201T050000Z/run.json") << "{ corrupt";
  EXPECT_TRUE(RunsToPrune(out, 3, "").empty());
  run("20261201T060000Z", "failed");
  EXPECT_EQ(RunsToPrune(out, 3, ""), std::vector<std::string>{"20261201T030000Z"});
  run("20261201T070000Z", "ok");
  EXPECT_EQ(RunsToPrune(out, 3, ""),
            (std::vector<std::string>{"20261201T000000Z", "20261201T030000Z"}));
  std::filesystem::remove_all(out);
}

TEST(RunFolderName, UtcTimestamp) {
  EXPECT_EQ(RunFolderName(1796194800), "20261202T070000Z");
  EXPECT_TRUE(IsRunFolderName("20261202T070000Z"));
  EXPECT_FALSE(IsRunFolderName("20261202T070000"));
  EXPECT_FALSE(IsRunFolderName("2026120xT070000Z"));
}

}  // namespace
}  // namespace fs::session
