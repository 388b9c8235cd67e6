// framescope compare: a verdict per metric, function and service between two sets of runs (or
// of pprof profiles), with the statistics behind it, compare.json/html, and alerts.
#include <cstdio>
#include <string>
#include <vector>

#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/output.h"
#include "src/cli/cli.h"
#include "src/regression/alert.h"
#include "src/regression/compare.h"
#include "src/report/compare_report.h"
#include "src/report/flamegraph.h"

namespace fs {
namespace {

constexpr const char* kCompareSummary =
    "Compares BASELINE with CURRENT and says, per metric, whether it got worse: a\n"
    "regression when the change of the medians is worse than --threshold AND a two-sided\n"
    "Mann-Whitney U test over the repetitions gives p < --alpha (exact p without ties,\n"
    "else the normal approximation); an improvement likewise; inconclusive when there are\n"
    "too few repetitions for p to ever reach alpha (it says how many are needed: 4 per\n"
    "side at 0.05) or when a change beyond the threshold is not significant\n"
    "(underpowered); otherwise no change. The change is relative to |baseline| (a zero\n"
    "baseline: +-inf, the test decides) with a 95 % bootstrap interval.\n"
    "A side is a run folder (run.json, as `framescope profile --out` leaves), a history\n"
    "folder (every ok run in it), label:NAME or latest / latest~K (runs under --history),\n"
    "or a folder of *.prof CPU profiles of one program (one per repetition, e.g. from\n"
    "`framescope record`: metrics program/cpu_s and each function's self CPU seconds).\n"
    "Several, comma-separated, are pooled. Failed runs are skipped with a note; a metric\n"
    "on one side only is listed as missing, never compared with zero. Runs of different\n"
    "hosts or configurations are refused unless --force.\n"
    "Per function: its self share of its service's CPU on both sides; tested per profile\n"
    "is its self CPU seconds per second of the recording (a run) or its self CPU seconds\n"
    "(a profile set), Holm-adjusted over the service's functions; and\n"
    "OUT/diff/<service>.html, a\n"
    "differential flame graph of all of each side's profiles.\n"
    "Writes OUT/compare.json (every number, the methods and thresholds) and\n"
    "OUT/compare.html. On a regression, --alert-command runs CMD with /bin/sh -c and the\n"
    "verdict JSON on stdin (it must exit 0 within 30 s, else it is killed with its\n"
    "process group; its output goes to stderr) and --alert-url POSTs it\n"
    "(application/json, plain http://host:port/path only; 3 attempts of at most 5 s\n"
    "each, with backoff; a non-2xx answer is a failure). Alert failures are reported on\n"
    "stderr and in compare.json \"alerts\".\n"
    "Exit codes: 0 no regression, 1 regression (or an output not written), 2 bad usage,\n"
    "an unreadable side or a refused mismatch, 3 inconclusive (no regression, but\n"
    "something could not be decided).";

struct CompareFlags {
  regression::VerdictOptions options;
  std::string out = "compare", history = regression::kDefaultHistory;
  std::string alert_command, alert_url;
  bool json = false, force = false;
  std::string baseline, current;
};

// Parses and validates; returns -1 to go on, else the exit code.
int ParseCompareFlags(int argc, char** argv, CompareFlags* f) {
  FlagSet flags("framescope compare", kCompareSummary);
  flags.Double("threshold", &f->options.threshold,
               "relative change of the median that counts (0.10: 10 %)");
  flags.Double("alpha", &f->options.alpha, "significance level of the test");
  flags.Folder("out", &f->out, "folder for compare.json, compare.html and diff/");
  flags.Bool("json", &f->json, "compare.json to standard output (the table goes to stderr)");
  flags.Bool("force", &f->force, "compare runs of different hosts or configurations");
  flags.String("alert-command", &f->alert_command,
               "on a regression, run this with /bin/sh -c, the verdict JSON on stdin");
  flags.String("alert-url", &f->alert_url,
               "on a regression, POST the verdict JSON here (http://host:port/path)");
  flags.String("history", &f->history, "the history folder for label:NAME and latest");
  flags.AllowPositional("BASELINE CURRENT");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  auto usage = [&](const std::string& why) {
    fprintf(stderr, "framescope compare: %s\n\n%s", why.c_str(), flags.Usage().c_str());
    return 2;
  };
  if (flags.positional().size() != 2) return usage("give exactly two sides: BASELINE CURRENT");
  if (!(f->options.threshold > 0 && f->options.threshold < 10)) {
    return usage("--threshold must be above 0 and below 10 (a relative change)");
  }
  if (!(f->options.alpha > 0 && f->options.alpha < 1)) {
    return usage("--alpha must be between 0 and 1");
  }
  if (!f->alert_url.empty()) {
    if (auto u = regression::ParseHttpUrl(f->alert_url); !u.ok()) {
      return usage("--alert-url " + u.status().message());
    }
  }
  f->baseline = flags.positional()[0];
  f->current = flags.positional()[1];
  return -1;
}

std::string FileName(const std::string& group) {
  std::string s = group;
  for (char& c : s) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return s;
}

// OUT/diff/<group>.html per group with profiles on both sides; returns group -> relative path.
std::map<std::string, std::string> WriteDiffs(const std::string& out,
                                              const regression::Comparison& c, int* code) {
  std::map<std::string, std::string> links;
  if (c.merged_current.empty()) return links;
  if (Status st = MakeDirs(out + "/diff"); !st.ok()) {
    fprintf(stderr, "framescope compare: %s\n", st.message().c_str());
    *code = 1;
    return links;
  }
  for (const auto& [group, now] : c.merged_current) {
    const std::string rel = "diff/" + FileName(group) + ".html";
    profile::FlamegraphOptions options;
    options.title = "compare: " + group + " (baseline -> current)";
    Status st = profile::WriteDiffFlamegraphFile(out + "/" + rel, c.merged_baseline.at(group), now,
                                                 options);
    if (!st.ok()) {
      fprintf(stderr, "framescope compare: %s: %s\n", rel.c_str(), st.message().c_str());
      *code = 1;
      continue;
    }
    links[group] = rel;
  }
  return links;
}

// Fires the alerts (on a regression) and reports every failure on stderr.
Json FireAlerts(const CompareFlags& f, const std::string& verdict_json) {
  std::vector<regression::AlertResult> results;
  if (!f.alert_command.empty()) {
    results.push_back(regression::RunAlertCommand(f.alert_command, verdict_json));
  }
  if (!f.alert_url.empty()) results.push_back(regression::PostAlert(f.alert_url, verdict_json));
  for (const auto& r : results) {
    for (size_t i = 0; i < r.errors.size(); ++i) {
      fprintf(stderr, "framescope compare: alert %s %s: attempt %zu failed: %s\n", r.kind.c_str(),
              r.target.c_str(), i + 1, r.errors[i].c_str());
    }
    if (!r.ok) {
      fprintf(stderr, "framescope compare: alert %s %s FAILED after %d attempt(s)\n",
              r.kind.c_str(), r.target.c_str(), r.attempts);
    }
  }
  return Json(
      Json::Object{{"fired", !results.empty()}, {"results", regression::AlertsToJson(results)}});
}

}  // namespace

namespace {

// Loads both sides and refuses what cannot be compared; returns -1 to go on, else the exit code.
int LoadSides(const CompareFlags& f, regression::Side sides[2]) {
  const std::string* specs[2] = {&f.baseline, &f.current};
  for (int i = 0; i < 2; ++i) {
    auto side = regression::LoadSide(*specs[i], f.history);
    if (!side.ok()) {
      fprintf(stderr, "framescope compare: %s %s\n", i == 0 ? "BASELINE" : "CURRENT",
              side.status().message().c_str());
      return 2;
    }
    sides[i] = std::move(*side);
  }
  if (sides[0].profile_set != sides[1].profile_set) {
    fprintf(stderr,
            "framescope compare: one side is runs, the other *.prof files: compare "
            "like with like\n");
    return 2;
  }
  std::vector<std::string> mismatches = regression::Mismatches(sides[0], sides[1]);
  for (const std::string& m : mismatches) {
    fprintf(stderr, "framescope compare: %s: %s\n", f.force ? "warning" : "refused", m.c_str());
  }
  if (!mismatches.empty() && !f.force) {
    fprintf(stderr,
            "framescope compare: the numbers would compare the machines or the "
            "configurations, not the code; --force to compare anyway\n");
    return 2;
  }
  return -1;
}

// The table (stdout, or stderr with --json, which owns stdout) and the list of files written.
void PrintResult(const CompareFlags& f, const std::string& text, const Json& j,
                 const std::map<std::string, std::string>& links) {
  FILE* human = f.json ? stderr : stdout;
  fputs(text.c_str(), human);
  if (f.json) printf("%s\n", j.Dump(2).c_str());
  fprintf(human, "wrote %s/compare.json, %s/compare.html", f.out.c_str(), f.out.c_str());
  for (const auto& [group, rel] : links) fprintf(human, ", %s/%s", f.out.c_str(), rel.c_str());
  fprintf(human, "\n");
}

}  // namespace

int CompareMain(int argc, char** argv) {
  CompareFlags f;
  if (int code = ParseCompareFlags(argc, argv, &f); code >= 0) return code;
  regression::Side sides[2];
  if (int code = LoadSides(f, sides); code >= 0) return code;
  // --out only now: a side that cannot be read leaves no empty folder behind.
  const std::string json_path = f.out + "/compare.json", html_path = f.out + "/compare.html";
  Status st = MakeDirs(f.out);
  if (st.ok()) st = CheckOutputs({json_path, html_path});
  if (!st.ok()) {
    fprintf(stderr, "framescope compare: --out %s: %s\n", f.out.c_str(), st.message().c_str());
    return 2;
  }
  regression::Comparison c = regression::Compare(sides[0], sides[1], f.options);
  int code = 0;
  std::map<std::string, std::string> links = WriteDiffs(f.out, c, &code);
  Json j = regression::ComparisonToJson(sides[0], sides[1], c);
  Json diffs = Json::MakeObject();
  for (const auto& [group, rel] : links) diffs[group] = rel;
  j["diff"] = std::move(diffs);
  j["alerts"] = c.verdict == regression::kRegression
                    ? FireAlerts(f, j.Dump(2))
                    : Json(Json::Object{{"fired", false}, {"results", Json::MakeArray()}});
  for (const auto& [path, body] :
       {std::pair{json_path, j.Dump(2) + "\n"},
        std::pair{html_path, profile::RenderCompareHtml(sides[0], sides[1], c, links)}}) {
    if (Status w = WriteOutput(path, body); !w.ok()) {
      fprintf(stderr, "framescope compare: %s\n", w.message().c_str());
      code = 1;
    }
  }
  PrintResult(f, profile::RenderCompareText(sides[0], sides[1], c), j, links);
  if (c.verdict == regression::kRegression || code != 0) return 1;
  return c.verdict == regression::kInconclusive ? 3 : 0;
}

}  // namespace fs
