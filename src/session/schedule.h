// Continuous profiling: `framescope schedule install | status | remove | run`.
//
// install puts one entry into the scheduler that runs `framescope schedule run` every --every:
// a systemd timer + service (system units, root) where systemd is running, else (or with --cron)
// a block in the user's crontab. The entry is keyed by the absolute --out folder (the history it
// fills): a second install for the same --out replaces its own entry; remove takes out exactly
// what install added and leaves every other byte of the crontab as it was.
//
// run (what the entry executes; also usable by hand) profiles the system into OUT/<UTC
// timestamp>/, records a failed run.json when the profile left none (a failed run is history
// too), prunes (RunsToPrune: the newest --keep ok runs and the newest --keep others stay),
// compares against --baseline and regenerates OUT/index.html (src/report/history.h).
// Exit codes: 0 the profile succeeded (or the run was skipped, below), 1 it failed (or OUT could
// not be used), 2 bad usage (the flags; every verb), 130 interrupted.
// Signals: SIGINT, SIGTERM and SIGHUP are ignored by `schedule run` itself while the profile runs;
// sent to the process group or cgroup (Ctrl-C, the timer's stop), they reach the profile child,
// which stops, writes what it has and exits 130; the run is then recorded, pruned and put on the
// history page, and the exit is 130. Sent to the pid of `schedule run` alone, they are ignored.
// Only one run per OUT at a time (flock on OUT/.schedule.lock): a run that finds the previous
// one still going logs "skipped: previous run still going" and exits 0 without a run folder.
#ifndef FRAMESCOPE_SESSION_SCHEDULE_H_
#define FRAMESCOPE_SESSION_SCHEDULE_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs::profile {
struct AutomationFacts;  // src/session/profile_run.h
}  // namespace fs::profile

namespace fs::session {

struct ScheduleOptions {
  std::string every = "6h";
  double duration_s = 60;
  int repeat = 0;         // 0: not given (the profile's own default).
  int keep = 28;          // A week of 6-hourly runs.
  std::string state_dir;  // Absolute once validated.
  std::string out;        // Absolute once validated.
  std::string baseline, label, alert_command, alert_url;
};

// Checks the options (exit 2 material: the message says what is wrong and what to give) and
// makes state_dir/out canonical (base's CanonicalPath, so that install, status, remove and
// profile's checklist find one entry however --out is spelled: "s3/", "./s3", a link to s3). `out`
// may not exist yet; if it exists it must be a folder.
Status ValidateScheduleOptions(ScheduleOptions* o);

// --every as cron and systemd see it. "Nm" (N divides 60) or "Nh" (N divides 24); anything cron's
// "*/N" cannot express evenly (7m, 5h, 90m) is an error saying why.
struct Every {
  std::string cron;         // "*/15 * * * *", "0 */6 * * *"
  std::string on_calendar;  // "*-*-* *:00/15:00", "*-*-* 00/6:00:00"
};
StatusOr<Every> ParseEvery(const std::string& every);

// The first time after `now` (unix seconds) at which the five-field cron expression fires, in
// local time as cron computes it. Minute and hour fields may be "*", "*/N" or a number; the day,
// month and weekday fields must be "*" (all ParseEvery makes).
StatusOr<int64_t> NextCronTime(const std::string& expr, int64_t now);

// The crontab block of the entry for `out`: a BEGIN marker naming it, the line, an END marker.
std::string CrontabBlock(const std::string& out, const std::string& line);
// `crontab` with the block for `out` replaced in place, or added (appended after a final
// newline; put first when the text does not end in one, so no foreign byte changes).
std::string CrontabUpsert(const std::string& crontab, const std::string& out,
                          const std::string& line);
// `crontab` without the block for `out`; every other byte as it was. *found says if it was there.
std::string CrontabRemove(const std::string& crontab, const std::string& out, bool* found);
// The entry line of the block for `out`, if present.
std::optional<std::string> CrontabEntry(const std::string& crontab, const std::string& out);

// argv of `framescope schedule run` with the options (exe absolute).
std::vector<std::string> RunArgv(const std::string& exe, const ScheduleOptions& o);
// argv of the `framescope profile` child of `schedule run` into `run_dir`: --repeat and --label
// only when given.
std::vector<std::string> ProfileArgv(const std::string& exe, const ScheduleOptions& o,
                                     const std::string& run_dir);
// The crontab line: the cron expression, RunArgv shell-quoted (with cron's % escaped), its output
// appended to OUT/schedule.log.
std::string CronLine(const std::string& cron, const std::string& exe, const ScheduleOptions& o);
std::string ShellQuote(const std::string& s);

struct SystemdUnits {
  std::string name;  // "framescope-schedule-<hash of out>" (+ .service / .timer)
  std::string service, timer;
};
SystemdUnits MakeSystemdUnits(const std::string& on_calendar, const std::string& exe,
                              const ScheduleOptions& o);
// The unit name for `out` (same as MakeSystemdUnits(...).name).
std::string SystemdUnitName(const std::string& out);

// The value of `flag` in a crontab line (CronLine) or, with `systemd`, a service unit
// (MakeSystemdUnits), unquoted; "" when absent.
std::string ScheduleArg(const std::string& line, const std::string& flag, bool systemd);

// Checklist 4.1 and 4.2 for the schedule that fills `out`: its entry (a crontab entry counts only
// while a cron daemon runs), the pinned --baseline and the newest run's compare verdict. Unknown,
// with the reason, when the crontab cannot be read.
profile::AutomationFacts ScheduleFacts(const std::string& out);

// Run folders under `out` (a directory, not a symlink, named like 20261202T070000Z, holding a
// run.json), oldest first. Anything else is never a run folder and never pruned.
std::vector<std::string> RunFolders(const std::string& out);
bool IsRunFolderName(const std::string& name);
// The run folders to delete, oldest first: all but the newest `keep` ok runs, and all but the
// newest `keep` others (failed, interrupted, unreadable run.json), so failed runs never push out
// good ones and OUT holds at most 2 x keep runs. Runs labelled `pinned_label` (the --baseline)
// are neither counted nor pruned: the comparison needs them.
std::vector<std::string> RunsToPrune(const std::string& out, int keep,
                                     const std::string& pinned_label);
// "20261202T070000Z" for a unix time.
std::string RunFolderName(int64_t unix_s);

// The subcommands (src/cli/schedule_main.cc parses the flags).
struct InstallChoice {
  bool force_cron = false;  // --cron: a crontab entry even where systemd runs.
};
int ScheduleInstall(const ScheduleOptions& o, const InstallChoice& choice);
int ScheduleStatus(const ScheduleOptions& o, bool json);
int ScheduleRemove(const ScheduleOptions& o);
int ScheduleRun(const ScheduleOptions& o);

// Runs argv (stdin /dev/null) with stdout and stderr through a pipe: each chunk is copied to our
// stdout (OUT/schedule.log under cron) and the last 15 lines are kept in *tail, for the error of
// a run that left no run.json. Returns the wait status as soon as the child has exited and its
// output is read, even while a process it left in the background still holds the pipe (that
// process's later writes then fail: EPIPE, or SIGPIPE if it does not ignore it).
StatusOr<int> RunTeed(const std::vector<std::string>& argv, std::deque<std::string>* tail);

}  // namespace fs::session

#endif  // FRAMESCOPE_SESSION_SCHEDULE_H_
