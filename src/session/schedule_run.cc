// The running side of `framescope schedule`: the crontab / systemd edits of install, status and
// remove, and `schedule run` (lock, run folder, profile child, failed run.json, prune, compare,
// history page).
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>

#include "src/base/child_io.h"
#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/json.h"
#include "src/report/history.h"
#include "src/session/profile_run.h"
#include "src/session/schedule.h"
#include "src/system/process.h"

namespace fs::session {
namespace {

struct Captured {
  int status = -1;  // waitpid status.
  std::string out, err;
};

// Forks and execs argv with the given standard fds (-1: /dev/null); returns the pid.
StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int in, int out, int err) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Err(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    // A scheduled run killed (timer stopped, Ctrl-C) takes its profile child with it.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    // ScheduleRun ignores these while it waits; the child must not inherit that (exec keeps
    // ignored signals ignored).
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
    int null = open("/dev/null", O_RDWR);
    dup2(in >= 0 ? in : null, 0);
    dup2(out >= 0 ? out : null, 1);
    dup2(err >= 0 ? err : null, 2);
    execvp(args[0], args.data());
    dprintf(2, "cannot run %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// Runs a short command (crontab, systemctl) with `input` on stdin; stdout and stderr kept apart.
// memfds instead of pipes: nothing to interleave, no deadlock whatever the sizes.
StatusOr<Captured> Capture(const std::vector<std::string>& argv, const std::string& input = "") {
  auto in_file = TextFile(input), out_file = TextFile(""), err_file = TextFile("");
  const int in = in_file.ok() ? *in_file : -1, out = out_file.ok() ? *out_file : -1,
            err = err_file.ok() ? *err_file : -1;
  auto close_all = [&] {
    for (int fd : {in, out, err}) {
      if (fd >= 0) close(fd);
    }
  };
  for (const auto* f : {&in_file, &out_file, &err_file}) {
    if (!f->ok()) {
      close_all();
      return f->status();
    }
  }
  auto pid = Spawn(argv, in, out, err);
  Captured c;
  if (pid.ok()) c.status = Wait(*pid);
  auto read_all = [](int fd) {
    std::string s;
    char buf[4096];
    lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) s.append(buf, n);
    return s;
  };
  c.out = read_all(out);
  c.err = read_all(err);
  close_all();
  if (!pid.ok()) return pid.status();
  return c;
}

bool ExitedZero(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// The exit code a shell would show: the code, or 128 + the signal.
int ExitCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The user's crontab; *absent when there is none ("no crontab for root").
StatusOr<std::string> ReadCrontab(bool* absent) {
  ASSIGN_OR_RETURN(Captured c, Capture({"crontab", "-l"}));
  *absent = !ExitedZero(c.status);
  if (*absent && c.err.find("no crontab") == std::string::npos) {
    return Err("crontab -l failed: " + c.err + " (is cron installed? apt-get install cron)");
  }
  return c.out;
}

// Installs `text` as the user's crontab; an empty text of a user who had none removes it
// (crontab -r), so remove leaves "no crontab" as it found it.
Status WriteCrontab(const std::string& text, bool remove_if_empty) {
  std::vector<std::string> argv = {"crontab", "-"};
  if (text.empty() && remove_if_empty) argv = {"crontab", "-r"};
  ASSIGN_OR_RETURN(Captured c, Capture(argv, text));
  if (ExitedZero(c.status)) return Status::Ok();
  // crontab(1) reads a carriage return as part of the line ("bad minute" on a blank CRLF line).
  const char* why = text.find('\r') == std::string::npos
                        ? ""
                        : "\nthe crontab has Windows line ends (CR LF), which crontab refuses; "
                          "fix them first: crontab -l | tr -d '\\r' | crontab -";
  return Err(argv[0] + " " + argv[1] + " failed: " + c.err + why);
}

bool SystemdRunning() { return PathExists("/run/systemd/system"); }

std::string UnitPath(const std::string& name, const char* ext) {
  return "/etc/systemd/system/" + name + ext;
}

std::string TimeText(int64_t t) { return FormatTime(t, "%Y-%m-%d %H:%M:%S %Z", true); }

bool CronDaemonRunning() {
  return !FindProcesses([](pid_t p) {
            auto comm = ReadFile("/proc/" + std::to_string(p) + "/comm");
            return comm.ok() && (*comm == "cron\n" || *comm == "crond\n");
          }).empty();
}

int InstallCron(const ScheduleOptions& o, const Every& every) {
  bool absent = false;
  auto crontab = ReadCrontab(&absent);
  if (!crontab.ok()) {
    fprintf(stderr, "framescope schedule install: %s\n", crontab.status().message().c_str());
    return 1;
  }
  std::string line = CronLine(every.cron, SelfExe(), o);
  bool replaced = CrontabEntry(*crontab, o.out).has_value();
  if (Status st = WriteCrontab(CrontabUpsert(*crontab, o.out, line), false); !st.ok()) {
    fprintf(stderr, "framescope schedule install: %s\n", st.message().c_str());
    return 1;
  }
  printf("%s the crontab entry for %s:\n  %s\n", replaced ? "replaced" : "installed", o.out.c_str(),
         line.c_str());
  auto next = NextCronTime(every.cron, time(nullptr));
  if (next.ok())
    printf("next run: %s; output appended to %s/schedule.log\n", TimeText(*next).c_str(),
           o.out.c_str());
  if (!CronDaemonRunning()) {
    printf(
        "note: no cron daemon is running here, so the entry will not fire until one runs "
        "(service cron start, or cron -f)\n");
  }
  return 0;
}

void PrintUserAlternative(const SystemdUnits& u) {
  fprintf(stderr,
          "framescope schedule install: installing a system timer needs root (units go to "
          "/etc/systemd/system).\nAlternatives as this user:\n"
          "  - a user crontab entry: framescope schedule install --cron [same flags]\n"
          "  - per-user systemd units: save the two units below under ~/.config/systemd/user/, "
          "then\n      systemctl --user daemon-reload && systemctl --user enable --now %s.timer\n"
          "    (and `loginctl enable-linger $USER` so they run while you are logged out)\n\n"
          "# %s.service\n%s\n# %s.timer\n%s",
          u.name.c_str(), u.name.c_str(), u.service.c_str(), u.name.c_str(), u.timer.c_str());
}

int InstallSystemd(const ScheduleOptions& o, const Every& every) {
  SystemdUnits u = MakeSystemdUnits(every.on_calendar, SelfExe(), o);
  if (geteuid() != 0) {
    PrintUserAlternative(u);
    return 1;
  }
  Status st = WriteFileAtomic(UnitPath(u.name, ".service"), u.service);
  if (st.ok()) st = WriteFileAtomic(UnitPath(u.name, ".timer"), u.timer);
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"systemctl", "daemon-reload"}, {"systemctl", "enable", "--now", u.name + ".timer"}}) {
    if (!st.ok()) break;
    auto c = Capture(argv);
    if (!c.ok() || !ExitedZero(c->status)) {
      st = Err(argv[0] + " " + argv[1] + " failed: " + (c.ok() ? c->err : c.status().message()));
    }
  }
  if (!st.ok()) {
    fprintf(stderr, "framescope schedule install: %s\n", st.message().c_str());
    return 1;
  }
  printf(
      "installed %s.timer (OnCalendar=%s) and %s.service in /etc/systemd/system;\n"
      "output appended to %s/schedule.log\n",
      u.name.c_str(), every.on_calendar.c_str(), u.name.c_str(), o.out.c_str());
  return 0;
}

}  // namespace

int ScheduleInstall(const ScheduleOptions& o, const InstallChoice& choice) {
  Every every = *ParseEvery(o.every);  // Validated by the caller.
  if (Status st = MakeDirs(o.out); !st.ok()) {
    fprintf(stderr, "framescope schedule install: --out %s: %s\n", o.out.c_str(),
            st.message().c_str());
    return 1;
  }
  if (SystemdRunning() && !choice.force_cron) return InstallSystemd(o, every);
  return InstallCron(o, every);
}

namespace {

Json LastRunJson(const std::string& out) {
  auto folders = RunFolders(out);
  if (folders.empty()) return Json();
  auto runs = profile::LoadHistory(out, {folders.back()});
  const auto& r = runs[0];
  Json j = Json::MakeObject();
  j["folder"] = out + "/" + r.folder;
  j["started_at"] = r.manifest.started_at;
  j["status"] = r.loaded ? r.manifest.status : "corrupt";
  j["exit_code"] = r.manifest.exit_code;
  j["error"] = r.loaded ? r.manifest.error : r.load_error;
  if (r.has_compare) j["compare_verdict"] = r.compare.verdict;
  return j;
}

// The first five fields of a crontab line.
std::string CronFields(const std::string& line) {
  std::string expr;
  for (size_t pos = 0, i = 0; i < 5 && pos < line.size(); ++i) {
    size_t sp = line.find(' ', pos);
    expr += (i ? " " : "") + line.substr(pos, sp - pos);
    pos = sp == std::string::npos ? line.size() : sp + 1;
  }
  return expr;
}

// The installed entry for o.out: kind, entry text and next due time (or installed=false).
Json EntryJson(const ScheduleOptions& o) {
  Json j = Json::MakeObject();
  j["out"] = o.out;
  j["installed"] = false;
  std::string name = SystemdUnitName(o.out);
  if (PathExists(UnitPath(name, ".timer"))) {
    j["installed"] = true;
    j["kind"] = "systemd";
    j["entry"] = UnitPath(name, ".timer");
    auto c = Capture({"systemctl", "list-timers", "--all", "--no-pager", name + ".timer"});
    j["next_due"] = c.ok() ? c->out : c.status().message();
    return j;
  }
  bool absent = false;
  auto crontab = ReadCrontab(&absent);
  auto entry = crontab.ok() ? CrontabEntry(*crontab, o.out) : std::nullopt;
  if (!crontab.ok()) j["error"] = crontab.status().message();
  if (!entry) return j;
  j["installed"] = true;
  j["kind"] = "crontab";
  j["entry"] = *entry;
  auto next = NextCronTime(CronFields(*entry), time(nullptr));
  j["next_due"] = next.ok() ? TimeText(*next) : next.status().message();
  return j;
}

}  // namespace

profile::AutomationFacts ScheduleFacts(const std::string& out_as_given) {
  // As install wrote it, however profile --schedule-out spells it.
  auto canonical = CanonicalPath(out_as_given);
  const std::string out = canonical.ok() ? *canonical : out_as_given;
  profile::AutomationFacts a;
  ScheduleOptions o;
  o.out = out;
  Json entry = EntryJson(o);
  if (entry.Has("error")) {
    a.reason = entry.Get("error").AsString();
    return a;
  }
  a.known = true;
  if (!entry.Get("installed").AsBool()) return a;
  std::string line = entry.Get("entry").AsString();
  if (entry.Get("kind").AsString() == "systemd") {
    auto service = ReadFile(UnitPath(SystemdUnitName(out), ".service"));
    a.baseline_label = service.ok() ? ScheduleArg(*service, "--baseline", true) : "";
    a.schedule_entry = "systemd timer " + SystemdUnitName(out) + ".timer into " + out;
  } else if (!CronDaemonRunning()) {
    // An entry no daemon will ever run is not continuous profiling.
    a.reason = "a crontab entry into " + out + " exists but no cron daemon is running";
    a.known = false;
    return a;
  } else {
    a.schedule_entry = "crontab `" + CronFields(line) + "` into " + out;
    a.baseline_label = ScheduleArg(line, "--baseline", false);
  }
  auto runs = profile::LoadHistory(out, RunFolders(out));
  for (auto r = runs.rbegin(); r != runs.rend() && a.last_verdict.empty(); ++r) {
    if (r->has_compare) a.last_verdict = r->compare.verdict + " (" + r->folder + ")";
  }
  return a;
}

int ScheduleStatus(const ScheduleOptions& o, bool json) {
  Json j = EntryJson(o);
  j["last_run"] = LastRunJson(o.out);
  if (json) {
    printf("%s\n", j.Dump(2).c_str());
    return 0;
  }
  if (!j.Get("installed").AsBool()) {
    printf("schedule for %s: not installed%s%s\n", o.out.c_str(), j.Has("error") ? ": " : "",
           j.Get("error").AsString().c_str());
  } else {
    printf("schedule for %s: installed (%s)\n  %s\nnext due: %s\n", o.out.c_str(),
           j.Get("kind").AsString().c_str(), j.Get("entry").AsString().c_str(),
           j.Get("next_due").AsString().c_str());
  }
  const Json& last = j.Get("last_run");
  if (last.is_null()) {
    printf("last run: none in %s\n", o.out.c_str());
  } else {
    std::string error = last.Get("error").AsString();
    for (size_t p = error.find('\n'); p != std::string::npos; p = error.find('\n', p + 1)) {
      error.insert(p + 1, "    ");  // The child's output lines, indented under "error:".
    }
    printf("last run: %s started %s: %s, exit code %lld%s%s\n",
           last.Get("folder").AsString().c_str(), last.Get("started_at").AsString().c_str(),
           last.Get("status").AsString().c_str(),
           static_cast<long long>(last.Get("exit_code").AsInt()),
           error.empty() ? "" : "\n  error: ", error.c_str());
  }
  return 0;
}

int ScheduleRemove(const ScheduleOptions& o) {
  std::string name = SystemdUnitName(o.out);
  if (PathExists(UnitPath(name, ".timer"))) {
    Capture({"systemctl", "disable", "--now", name + ".timer"});
    std::error_code ec;
    std::filesystem::remove(UnitPath(name, ".timer"), ec);
    std::filesystem::remove(UnitPath(name, ".service"), ec);
    Capture({"systemctl", "daemon-reload"});
    printf("removed %s.timer and %s.service\n", name.c_str(), name.c_str());
    return 0;
  }
  bool absent = false, found = false;
  auto crontab = ReadCrontab(&absent);
  if (!crontab.ok()) {
    fprintf(stderr, "framescope schedule remove: %s\n", crontab.status().message().c_str());
    return 1;
  }
  std::string rest = CrontabRemove(*crontab, o.out, &found);
  if (!found) {
    printf("schedule for %s: not installed (nothing removed)\n", o.out.c_str());
    return 0;
  }
  // A crontab that held only our block goes back to "no crontab": install made it from none.
  if (Status st = WriteCrontab(rest, true); !st.ok()) {
    fprintf(stderr, "framescope schedule remove: %s\n", st.message().c_str());
    return 1;
  }
  printf("removed the crontab entry for %s\n", o.out.c_str());
  return 0;
}

namespace {

// Copies a chunk of the child's output to our stdout and keeps its last 15 lines in *tail.
void Tee(std::string_view chunk, std::string* line, std::deque<std::string>* tail) {
  fwrite(chunk.data(), 1, chunk.size(), stdout);
  for (char c : chunk) {
    if (c != '\n') {
      *line += c;
      continue;
    }
    tail->push_back(*line);
    line->clear();
    if (tail->size() > 15) tail->pop_front();
  }
}

}  // namespace

StatusOr<int> RunTeed(const std::vector<std::string>& argv, std::deque<std::string>* tail) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Err(std::string("pipe: ") + strerror(errno));
  fflush(stdout);
  auto pid = Spawn(argv, -1, fds[1], fds[1]);
  close(fds[1]);
  if (!pid.ok()) {
    close(fds[0]);
    return pid.status();
  }
  std::string line;
  // Until the child exits, not until EOF: a background process it left (an alert command's
  // `cmd &`) would hold the pipe, and the run's lock with it, for as long as it lives.
  const int status = CopyOutputUntilExit(
      *pid, fds[0], [&](std::string_view chunk) { Tee(chunk, &line, tail); }, std::nullopt);
  fflush(stdout);
  if (!line.empty()) tail->push_back(line);
  close(fds[0]);
  return status;
}

namespace {

// OUT/<UTC timestamp>, created here so that no two runs share one; a name already taken (two
// runs by hand in one second) waits for the next second rather than reusing it.
StatusOr<std::string> NewRunFolder(const std::string& out) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::string dir = out + "/" + RunFolderName(time(nullptr));
    if (mkdir(dir.c_str(), 0755) == 0) return dir;
    if (errno != EEXIST) return Err("creating " + dir + ": " + strerror(errno));
    usleep(1000000 - static_cast<useconds_t>(WallNs() / 1000 % 1000000));
  }
  return Err("no free run folder name under " + out);
}

// The child left no run.json (system down before it wrote one, a crash, a kill): record the
// failure so the history shows it.
Status RecordFailedRun(const std::string& dir, const ScheduleOptions& o, const std::string& started,
                       int status, const std::deque<std::string>& tail) {
  regression::RunManifest m;
  m.status = "failed";
  m.exit_code = ExitCode(status);
  m.error = WIFSIGNALED(status)
                ? "framescope profile was killed by signal " + std::to_string(WTERMSIG(status)) +
                      " (" + strsignal(WTERMSIG(status)) + ")"
                : "framescope profile exited with code " + std::to_string(WEXITSTATUS(status));
  m.error += " and left no run.json; its last output:";
  for (const auto& l : tail) m.error += "\n" + l;
  m.started_at = started;
  m.finished_at = IsoNowUtc();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  m.host = host;
  m.duration_s = o.duration_s;
  m.repeat = o.repeat > 0 ? o.repeat : 1;
  m.label = o.label;
  if (PathExists(dir + "/index.html")) m.report = "index.html";
  return regression::WriteRunManifest(dir, m);
}

void Prune(const ScheduleOptions& o) {
  for (const auto& name : RunsToPrune(o.out, o.keep, o.baseline)) {
    std::error_code ec;
    std::filesystem::remove_all(o.out + "/" + name, ec);
    printf("pruned %s/%s%s%s\n", o.out.c_str(), name.c_str(), ec ? ": " : "",
           ec ? ec.message().c_str() : "");
  }
}

// `framescope compare label:BASELINE RUN`; its exit code and verdict go to RUN/schedule.json.
void Compare(const ScheduleOptions& o, const std::string& exe, const std::string& dir) {
  std::vector<std::string> argv = {exe, "compare", "--history", o.out, "--out", dir + "/compare"};
  if (!o.alert_command.empty()) argv.insert(argv.end(), {"--alert-command", o.alert_command});
  if (!o.alert_url.empty()) argv.insert(argv.end(), {"--alert-url", o.alert_url});
  argv.insert(argv.end(), {"label:" + o.baseline, dir});
  std::deque<std::string> tail;
  auto status = RunTeed(argv, &tail);
  profile::CompareOutcome c;
  c.baseline = o.baseline;
  c.exit_code = status.ok() ? ExitCode(*status) : -1;
  auto doc = ReadFile(dir + "/compare/compare.json");
  auto j = doc.ok() ? Json::Parse(*doc) : StatusOr<Json>(doc.status());
  if (j.ok() && j->Get("verdict").is_string()) {
    c.verdict = j->Get("verdict").AsString();
  } else {
    // The contract's exit codes, when compare.json has no verdict to read.
    const char* words[] = {"no regression", "regression", "error", "inconclusive"};
    c.verdict = c.exit_code >= 0 && c.exit_code <= 3 ? words[c.exit_code] : "error";
  }
  if (Status st = profile::WriteCompareOutcome(dir, c); !st.ok()) {
    fprintf(stderr, "framescope schedule run: %s\n", st.message().c_str());
  }
}

}  // namespace

int ScheduleRun(const ScheduleOptions& o) {
  if (Status st = MakeDirs(o.out); !st.ok()) {
    fprintf(stderr, "framescope schedule run: --out %s: %s\n", o.out.c_str(), st.message().c_str());
    return 1;
  }
  // Held until the run is over: two runs never overlap. Not inherited (O_CLOEXEC): the profile
  // child dies with us (PR_SET_PDEATHSIG), and a process an alert command leaves in the
  // background must not hold off the next run.
  const std::string lock_path = o.out + "/.schedule.lock";
  auto lock = OpenRegularFileForUpdate(lock_path);
  if (!lock.ok()) {
    fprintf(stderr, "framescope schedule run: %s: %s\n", lock_path.c_str(),
            lock.status().message().c_str());
    return 1;
  }
  if (flock(*lock, LOCK_EX | LOCK_NB) != 0) {
    printf("%s skipped: previous run still going (%s/.schedule.lock is held)\n",
           IsoNowUtc().c_str(), o.out.c_str());
    close(*lock);
    return 0;
  }
  // Ctrl-C, or the timer's stop, reaches the profile child too (same process group / cgroup):
  // it stops and writes what it has, and this process lives on to record the run and rewrite
  // the history page.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_IGN);
  auto dir = NewRunFolder(o.out);
  if (!dir.ok()) {
    fprintf(stderr, "framescope schedule run: %s\n", dir.status().message().c_str());
    return 1;
  }
  std::string exe = SelfExe(), started = IsoNowUtc();
  std::vector<std::string> argv = ProfileArgv(exe, o, *dir);
  printf("%s schedule run: %s\n", started.c_str(), dir->c_str());
  std::deque<std::string> tail;
  auto status = RunTeed(argv, &tail);
  int code = status.ok() && ExitedZero(*status) ? 0 : 1;
  if (status.ok() && ExitCode(*status) == 128 + SIGINT) code = 130;  // Ctrl-C: exit 130
  if (!status.ok()) tail.push_back(status.status().message());
  if (!PathExists(*dir + "/" + regression::kRunFile)) {
    if (Status st = RecordFailedRun(*dir, o, started, status.ok() ? *status : 127 << 8, tail);
        !st.ok()) {
      fprintf(stderr, "framescope schedule run: %s\n", st.message().c_str());
    }
    code = code == 130 ? 130 : 1;
  }
  Prune(o);
  auto m = regression::LoadRunManifest(*dir);
  if (!o.baseline.empty() && m.ok() && m->status == "ok") Compare(o, exe, *dir);
  auto runs = profile::LoadHistory(o.out, RunFolders(o.out));
  if (Status st = profile::WriteHistoryIndex(o.out, runs); !st.ok()) {
    fprintf(stderr, "framescope schedule run: %s\n", st.message().c_str());
  }
  printf("%s schedule run: %s done, exit %d; history %s/index.html\n", IsoNowUtc().c_str(),
         dir->c_str(), code, o.out.c_str());
  close(*lock);
  return code;
}

}  // namespace fs::session
