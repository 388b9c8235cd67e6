// The text side of `framescope schedule`: --every as cron/systemd calendars, the next due time,
// the crontab block edit and the systemd units. schedule_run.cc does the running.
#include "src/session/schedule.h"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/json.h"
#include "src/regression/alert.h"
#include "src/regression/run_manifest.h"
#include "src/session/profile_run.h"

namespace fs::session {
namespace {

// A whole positive number, nothing else ("07" is fine, "7x", "", "-1" are not).
std::optional<int> PositiveInt(const std::string& s) {
  if (s.empty() || s.size() > 6) return std::nullopt;
  for (char c : s) {
    if (!isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  int v = std::stoi(s);
  return v > 0 ? std::optional<int>(v) : std::nullopt;
}

bool HasControlChar(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return iscntrl(static_cast<unsigned char>(c)); });
}

// 60 -> "60", 2.5 -> "2.5" (std::to_string would give "60.000000").
std::string NumberText(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

Status ValidateScheduleOptions(ScheduleOptions* o) {
  if (auto e = ParseEvery(o->every); !e.ok()) return e.status();
  // What every run would refuse is refused at install instead (repeat 0: profile's default).
  if (std::string bad = profile::InvalidRecordingLength(o->duration_s, std::max(1, o->repeat));
      !bad.empty() || o->repeat < 0) {
    return Err(bad.empty() ? "--repeat must be 1..1000" : bad);
  }
  if (o->keep < 1) return Err("--keep must be >= 1 (the number of runs kept in --out)");
  if (Status u = regression::ValidateAlertUrl(o->alert_url); !o->alert_url.empty() && !u.ok()) {
    return Err("--alert-url: " + u.message());
  }
  if (o->out.empty()) return Err("--out must name a folder");
  if (o->state_dir.empty()) return Err("--state-dir must name the system's state dir");
  for (const std::string* s :
       {&o->state_dir, &o->out, &o->baseline, &o->label, &o->alert_command, &o->alert_url}) {
    // One crontab line / one unit line per entry: a newline would split it.
    if (HasControlChar(*s)) return Err("options may not contain newlines or control characters");
  }
  for (std::string* path : {&o->out, &o->state_dir}) {
    ASSIGN_OR_RETURN(*path, CanonicalPath(*path));
  }
  struct stat st;
  if (lstat(o->out.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    return Err("--out " + o->out + " exists and is not a folder; give a folder for the history");
  }
  return Status::Ok();
}

StatusOr<Every> ParseEvery(const std::string& every) {
  const std::string why = "--every " + every +
                          ": give Nm with N dividing 60 (1m, 5m, 15m, 30m) or Nh with N " +
                          "dividing 24 (1h, 6h, 12h, 24h); ";
  if (every.size() < 2) return Err(why + "no number and unit");
  char unit = every.back();
  auto n = PositiveInt(every.substr(0, every.size() - 1));
  if (!n || (unit != 'm' && unit != 'h')) return Err(why + "not a number followed by m or h");
  int period = unit == 'm' ? 60 : 24;
  if (*n > period || period % *n != 0) {
    // cron's */N restarts at every hour (day): 7m would run at :56 and then :00.
    return Err(why + "cron's */N restarts every " + (unit == 'm' ? "hour" : "day") +
               ", so an interval that does not divide it would not be even");
  }
  Every e;
  std::string step = std::to_string(*n);
  if (unit == 'm' && *n == 60) return ParseEvery("1h");
  if (unit == 'm') {
    e.cron = (*n == 1 ? "*" : "*/" + step) + " * * * *";
    e.on_calendar = "*-*-* *:00/" + step + ":00";
  } else {
    e.cron = "0 " + (*n == 24 ? "0" : (*n == 1 ? "*" : "*/" + step)) + " * * *";
    e.on_calendar = "*-*-* 00/" + step + ":00:00";
  }
  return e;
}

namespace {

// One cron field ("*", "*/N", "N") as the set of values it allows in [0, size).
StatusOr<std::vector<bool>> CronField(const std::string& f, int size) {
  std::vector<bool> allowed(size, false);
  if (f == "*") return std::vector<bool>(size, true);
  if (f.rfind("*/", 0) == 0) {
    auto n = PositiveInt(f.substr(2));
    if (!n) return Err("cron field \"" + f + "\": bad step");
    for (int v = 0; v < size; v += *n) allowed[v] = true;
    return allowed;
  }
  if (f == "0") {
    allowed[0] = true;
    return allowed;
  }
  auto n = PositiveInt(f);
  if (!n || *n >= size) return Err("cron field \"" + f + "\": not supported here");
  allowed[*n] = true;
  return allowed;
}

}  // namespace

StatusOr<int64_t> NextCronTime(const std::string& expr, int64_t now) {
  std::vector<std::string> fields;
  size_t pos = 0;
  while (pos < expr.size()) {
    size_t end = expr.find(' ', pos);
    if (end == std::string::npos) end = expr.size();
    if (end > pos) fields.push_back(expr.substr(pos, end - pos));
    pos = end + 1;
  }
  if (fields.size() != 5) return Err("cron expression \"" + expr + "\": not five fields");
  for (int i = 2; i < 5; ++i) {
    if (fields[i] != "*") return Err("cron expression \"" + expr + "\": day fields must be *");
  }
  auto minutes = CronField(fields[0], 60);
  auto hours = CronField(fields[1], 24);
  if (!minutes.ok()) return minutes.status();
  if (!hours.ok()) return hours.status();
  // Minute by minute from the next whole minute: at most a day (1440 steps) for what we accept.
  // Local time, as cron's; a DST jump only shifts the answer by what cron itself would do.
  for (int64_t t = (now / 60 + 1) * 60; t <= now + 2 * 86400; t += 60) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm;
    localtime_r(&tt, &tm);
    if ((*minutes)[tm.tm_min] && (*hours)[tm.tm_hour]) return t;
  }
  return Err("cron expression \"" + expr + "\" never fires");
}

namespace {

std::string BeginMarker(const std::string& out) {
  return "# >>> framescope schedule: profiling runs into " + out +
         " (added by `framescope schedule install`; `framescope schedule remove --out " + out +
         "` takes it out) >>>";
}
std::string EndMarker(const std::string& out) {
  return "# <<< framescope schedule: " + out + " <<<";
}

// The byte range [begin, end) of the block for `out` (the BEGIN line through the END line and
// its newline), if the crontab holds one. Lines are matched whole, so an entry for /a/b does not
// match the block of /a/b2.
std::optional<std::pair<size_t, size_t>> FindBlock(const std::string& text,
                                                   const std::string& out) {
  const std::string begin = BeginMarker(out), end = EndMarker(out);
  size_t start = std::string::npos;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    size_t line_end = nl == std::string::npos ? text.size() : nl;
    std::string line = text.substr(pos, line_end - pos);
    size_t next = nl == std::string::npos ? text.size() : nl + 1;
    if (start == std::string::npos && line == begin) start = pos;
    if (start != std::string::npos && line == end) return std::make_pair(start, next);
    pos = next;
  }
  return std::nullopt;
}

}  // namespace

std::string CrontabBlock(const std::string& out, const std::string& line) {
  return BeginMarker(out) + "\n" + line + "\n" + EndMarker(out) + "\n";
}

std::string CrontabUpsert(const std::string& crontab, const std::string& out,
                          const std::string& line) {
  std::string block = CrontabBlock(out, line);
  if (auto range = FindBlock(crontab, out)) {
    return crontab.substr(0, range->first) + block + crontab.substr(range->second);
  }
  if (crontab.empty() || crontab.back() == '\n') return crontab + block;
  // Appending would need a newline after the foreign last line, which remove could not tell
  // from the user's own: put the block first instead.
  return block + crontab;
}

std::string CrontabRemove(const std::string& crontab, const std::string& out, bool* found) {
  auto range = FindBlock(crontab, out);
  *found = range.has_value();
  if (!range) return crontab;
  return crontab.substr(0, range->first) + crontab.substr(range->second);
}

std::optional<std::string> CrontabEntry(const std::string& crontab, const std::string& out) {
  auto range = FindBlock(crontab, out);
  if (!range) return std::nullopt;
  std::string block = crontab.substr(range->first, range->second - range->first);
  size_t a = block.find('\n') + 1;
  size_t b = block.find('\n', a);
  return block.substr(a, b - a);
}

std::vector<std::string> RunArgv(const std::string& exe, const ScheduleOptions& o) {
  std::vector<std::string> argv = {exe,
                                   "schedule",
                                   "run",
                                   "--state-dir",
                                   o.state_dir,
                                   "--out",
                                   o.out,
                                   "--duration",
                                   NumberText(o.duration_s),
                                   "--keep",
                                   std::to_string(o.keep)};
  auto add = [&argv](const char* flag, const std::string& v) {
    if (v.empty()) return;
    argv.push_back(flag);
    argv.push_back(v);
  };
  if (o.repeat > 0) add("--repeat", std::to_string(o.repeat));
  add("--label", o.label);
  add("--baseline", o.baseline);
  add("--alert-command", o.alert_command);
  add("--alert-url", o.alert_url);
  return argv;
}

std::vector<std::string> ProfileArgv(const std::string& exe, const ScheduleOptions& o,
                                     const std::string& run_dir) {
  std::vector<std::string> argv = {exe,
                                   "profile",
                                   "--state-dir",
                                   o.state_dir,
                                   "--out",
                                   run_dir,
                                   "--duration",
                                   NumberText(o.duration_s),
                                   "--schedule-out",
                                   o.out};
  if (o.repeat > 0) argv.insert(argv.end(), {"--repeat", std::to_string(o.repeat)});
  if (!o.label.empty()) argv.insert(argv.end(), {"--label", o.label});
  return argv;
}

std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string CronLine(const std::string& cron, const std::string& exe, const ScheduleOptions& o) {
  std::string cmd;
  for (const auto& a : RunArgv(exe, o)) cmd += (cmd.empty() ? "" : " ") + ShellQuote(a);
  cmd += " >> " + ShellQuote(o.out + "/schedule.log") + " 2>&1";
  // cron turns an unescaped % into a newline (the rest becomes stdin) and \% into %. Debian's
  // cron also turns \\ into \ (seen with cron 3.0pl1-162), others keep it: so no backslash of
  // ours may stand before a \ or a %. Inside the single quotes, '' (close and reopen) splits
  // such a pair for every cron, and the shell joins the halves again.
  std::string escaped;
  for (size_t i = 0; i < cmd.size(); ++i) {
    char next = i + 1 < cmd.size() ? cmd[i + 1] : '\0';
    if (cmd[i] == '%') {
      escaped += "\\%";
    } else if (cmd[i] == '\\' && (next == '\\' || next == '%')) {
      escaped += "\\''";
    } else {
      escaped += cmd[i];
    }
  }
  return cron + " " + escaped;
}

namespace {

// One ExecStart argument: double-quoted, with systemd's specifier (%) and variable ($)
// expansion turned off for the value.
std::string SystemdQuote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    if (c == '%') q += '%';
    if (c == '$') q += '$';
    q += c;
  }
  return q + "\"";
}

}  // namespace

std::string SystemdUnitName(const std::string& out) {
  return "framescope-schedule-" + regression::JsonHash(Json(out)).substr(0, 8);
}

SystemdUnits MakeSystemdUnits(const std::string& on_calendar, const std::string& exe,
                              const ScheduleOptions& o) {
  SystemdUnits u;
  u.name = SystemdUnitName(o.out);
  std::string exec;
  for (const auto& a : RunArgv(exe, o)) exec += (exec.empty() ? "" : " ") + SystemdQuote(a);
  std::string what = "framescope scheduled profiling into " + o.out;
  u.service = "[Unit]\nDescription=" + what + "\n\n[Service]\nType=oneshot\nExecStart=" + exec +
              "\nStandardOutput=append:" + o.out + "/schedule.log\nStandardError=inherit\n";
  u.timer = "[Unit]\nDescription=" + what + " (timer)\n\n[Timer]\nOnCalendar=" + on_calendar +
            "\nPersistent=true\nUnit=" + u.name + ".service\n\n[Install]\nWantedBy=timers.target\n";
  return u;
}

std::string ScheduleArg(const std::string& line, const std::string& flag, bool systemd) {
  const std::string key = systemd ? SystemdQuote(flag) + " \"" : ShellQuote(flag) + " '";
  size_t p = line.find(key);
  if (p == std::string::npos) return "";
  std::string v;
  for (size_t i = p + key.size(); i < line.size(); ++i) {
    if (!systemd && line.compare(i, 4, "'\\''") == 0) {  // ShellQuote's '\'' is one quote
      v += '\'';
      i += 3;
    } else if (!systemd && line.compare(i, 2, "''") == 0) {  // CronLine's split: nothing
      i += 1;
    } else if (line[i] == (systemd ? '"' : '\'')) {
      break;
    } else if (systemd ? line[i] == '\\' || line.compare(i, 2, "%%") == 0 ||
                             line.compare(i, 2, "$$") == 0
                       : line.compare(i, 2, "\\%") == 0) {
      v += line[++i];  // An escaped character: the one that follows.
    } else {
      v += line[i];
    }
  }
  return v;
}

bool IsRunFolderName(const std::string& name) {
  // 20261202T070000Z
  if (name.size() != 16 || name[8] != 'T' || name[15] != 'Z') return false;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && !isdigit(static_cast<unsigned char>(name[i]))) return false;
  }
  return true;
}

std::string RunFolderName(int64_t unix_s) { return FormatTime(unix_s, "%Y%m%dT%H%M%SZ"); }

std::vector<std::string> RunFolders(const std::string& out) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(out, ec)) {
    std::string name = e.path().filename().string();
    struct stat st;
    std::string run_json = e.path().string() + "/" + regression::kRunFile;
    if (!IsRunFolderName(name) || e.is_symlink(ec) || !e.is_directory(ec)) continue;
    if (lstat(run_json.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());  // The names are UTC timestamps: sorted = by time.
  return names;
}

std::vector<std::string> RunsToPrune(const std::string& out, int keep,
                                     const std::string& pinned_label) {
  // Two queues, so that failed runs never push out good ones: a week of the system down must not
  // leave the history (and the baseline comparison) without a single ok run.
  std::vector<std::string> ok, failed;
  for (const auto& name : RunFolders(out)) {
    auto m = regression::LoadRunManifest(out + "/" + name);
    if (m.ok() && !pinned_label.empty() && m->label == pinned_label) continue;
    (m.ok() && m->status == "ok" ? ok : failed).push_back(name);
  }
  std::vector<std::string> prune;
  for (auto* runs : {&failed, &ok}) {
    if (static_cast<int>(runs->size()) > keep) {
      prune.insert(prune.end(), runs->begin(), runs->end() - keep);
    }
  }
  std::sort(prune.begin(), prune.end());
  return prune;
}

}  // namespace fs::session
