// framescope schedule install | status | remove | run: continuous profiling
// (src/session/schedule.h).
#include <cstdio>
#include <cstring>
#include <string>

#include "src/base/flags.h"
#include "src/cli/cli.h"
#include "src/session/schedule.h"

namespace fs {
namespace {

constexpr const char* kSummary =
    "Continuous profiling: runs `framescope profile` every --every into OUT/<UTC timestamp>/,\n"
    "keeps the newest --keep ok runs (and the newest --keep failed ones: failed runs never push\n"
    "out good ones) and the history page OUT/index.html.\n\n"
    "  install  a systemd timer + service where systemd runs (root; others are told the per-user\n"
    "           alternative), else (or with --cron) an entry in this user's crontab, between\n"
    "           marker comments naming --out; installing again for the same --out replaces it\n"
    "  status   the entry, the last run (time, status, exit code) and the next due time\n"
    "  remove   takes out exactly what install added (exit 0 with \"not installed\" if none)\n"
    "  run      one run now (what the entry runs): the profile, a failed run.json if the profile\n"
    "           left none (the system down is history too), pruning, for an ok run the comparison "
    "with\n"
    "           --baseline (runs labelled with it are never pruned), OUT/index.html. Exit code:\n"
    "           0 the profile succeeded, 1 it failed, 130 interrupted (SIGINT/SIGTERM/SIGHUP to\n"
    "           the process group reach the profile, which stops and writes what it has; the run\n"
    "           is still recorded). A run that finds the previous one still going logs\n"
    "           \"skipped: previous run still going\" and exits 0.\n\n"
    "The entry is selected by --out (one schedule per history folder). --every: Nm (N divides\n"
    "60) or Nh (N divides 24). Paths are made absolute, symlinks resolved, trailing / dropped.\n"
    "What every run would refuse (--duration, --repeat out of profile's ranges, an --alert-url\n"
    "compare cannot use) is refused by install.\n"
    "Exit codes: 0 ok, 1 failure, 2 bad usage, 130 interrupted (run).";

}  // namespace

int ScheduleMain(int argc, char** argv) {
  const char* verbs[] = {"install", "status", "remove", "run"};
  std::string verb = argc >= 2 ? argv[1] : "";
  bool known = false;
  for (const char* v : verbs) known = known || verb == v;
  if (!known) {
    bool help = verb == "-h" || verb == "--help";
    fprintf(help ? stdout : stderr,
            "usage: framescope schedule install|status|remove|run [flags]\n%s%s\n%s\n",
            help || verb.empty() ? "" : "unknown action \"",
            help || verb.empty() ? "" : (verb + "\"\n").c_str(), kSummary);
    return help ? 0 : 2;
  }
  session::ScheduleOptions o;
  o.state_dir = kDefaultStateDir;
  o.out = "profiles/automated";
  bool json = false;
  session::InstallChoice choice;
  FlagSet flags("framescope schedule " + verb, kSummary);
  flags.String("every", &o.every, "interval: Nm (N divides 60) or Nh (N divides 24)");
  flags.Double("duration", &o.duration_s, "seconds each run records");
  flags.Int("repeat", &o.repeat, "windows per run, 1..1000 (profile --repeat, when given)");
  flags.Int("keep", &o.keep, "ok runs kept in --out (the newest; as many failed ones)");
  flags.String("state-dir", &o.state_dir, "the state dir of the system to profile");
  flags.Folder("out", &o.out, "the history folder: one run folder per run, index.html");
  flags.String("baseline", &o.baseline, "compare each run with the runs labelled this");
  flags.String("label", &o.label, "label of the runs (profile --label)");
  flags.String("alert-command", &o.alert_command, "compare --alert-command");
  flags.String("alert-url", &o.alert_url, "compare --alert-url");
  flags.Bool("cron", &choice.force_cron, "install: a crontab entry even where systemd runs");
  flags.Bool("json", &json, "status: as JSON");
  int code = 0;
  if (!flags.ParseOrExit(argc - 1, argv + 1, &code)) return code;
  if (Status st = session::ValidateScheduleOptions(&o); !st.ok()) {
    fprintf(stderr, "framescope schedule %s: %s\n", verb.c_str(), st.message().c_str());
    return 2;
  }
  if (verb == "install") return session::ScheduleInstall(o, choice);
  if (verb == "status") return session::ScheduleStatus(o, json);
  if (verb == "remove") return session::ScheduleRemove(o);
  return session::ScheduleRun(o);
}

}  // namespace fs
