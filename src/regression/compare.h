// `framescope compare BASELINE CURRENT`: what the two sides are, how their metrics pair up, and
// the verdict per metric, per function, per group (service) and overall, as compare.json.
//
// A side (comma-separated parts: their union) is a run folder (run.json), a history (a folder
// whose subfolders hold run.json: every ok run), `label:NAME` or `latest[~K]` (runs under the
// history folder), or a folder of *.prof files (pprof CPU profiles, one per repetition). Run
// sides pair metrics by name (run_manifest.h), all repetitions of a side's runs pooled; a metric
// on only one side is listed as missing, never compared against zero, and one missing in the
// current side makes its group at least inconclusive (it was measured before and is not now). A
// profile set's metrics are each profile's total CPU seconds ("program/cpu_s") and each function's
// self CPU seconds.
//
// Per function (from each run's CPU profiles, or the profile set): the function's self share of
// its service's CPU in both sides, ranked by the change in points; each is tested over the
// repetitions (one value per profile: for runs its self CPU seconds per second of the profile's
// window, for a profile set its self CPU seconds; never the share, which moves when any other
// function changes) with Holm's correction across the functions of one service, so testing
// dozens of functions does not multiply the false alarms. For runs a function's regression or
// improvement stands only when its service's CPU per second moved the same way: in a service busy
// all the time, one function getting faster lets the others run more per second. A function row
// rolls up into its service's verdict only as a regression or improvement: with one profile per
// run a function is almost always "inconclusive", which must not hide the metrics' verdict.
#ifndef FRAMESCOPE_REGRESSION_COMPARE_H_
#define FRAMESCOPE_REGRESSION_COMPARE_H_

#include <map>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"
#include "src/profile/profile.h"
#include "src/regression/run_manifest.h"
#include "src/regression/stats.h"

namespace fs::regression {

inline constexpr const char* kCompareFormat = "framescope-compare/1";
inline constexpr const char* kDefaultHistory = "profiles/automated";
// The group of a profile set's metrics (one program, recorded with `framescope record`).
inline constexpr const char* kProgramGroup = "program";

// One side, loaded.
struct Side {
  std::string spec;
  bool profile_set = false;        // *.prof files rather than runs
  std::vector<RunManifest> runs;   // the ok runs
  std::vector<std::string> notes;  // "skipped failed run DIR: why"
  // Group (service, or kProgramGroup) -> its CPU profiles, one per repetition, and their files.
  std::map<std::string, std::vector<profile::Profile>> profiles;
  std::map<std::string, std::vector<std::string>> profile_files;
  std::vector<Metric> metrics;  // by name, values of all runs pooled
};

// Loads a side with its CPU profiles. Errors (usage: exit 2) name the part and the file: an
// unknown folder, a corrupt run.json given by name or .prof of a profile set, a label with no ok
// run, latest~K beyond the history, a mix of runs and profiles. A run's profile that cannot be
// read, and a history's run.json that cannot, are skipped with a note. A run (by its resolved
// path) or profile file (by device and inode) named more than once counts once, with a note.
StatusOr<Side> LoadSide(const std::string& spec, const std::string& history_dir);

// Different hosts or configurations among the runs of both sides: one line each; empty if none.
std::vector<std::string> Mismatches(const Side& baseline, const Side& current);

struct MetricResult {
  Metric metric;  // baseline's (name, group, unit, better); values unused
  std::vector<double> baseline, current;
  Judgement judgement;
};

struct FunctionResult {
  std::string function;
  double baseline_share_pct = 0, current_share_pct = 0;  // of all the side's profiles together
  double delta_points = 0;
  std::string metric;  // "self CPU s per s" (runs), "self CPU s" (profile sets) or "self share %"
  bool informational = false;             // a share (profiles without a duration): never rolls up
  std::vector<double> baseline, current;  // per profile
  Judgement judgement;                    // p Holm-adjusted over the group's functions
  double raw_p = 1;
};

struct Comparison {
  VerdictOptions options;
  std::vector<MetricResult> metrics;
  std::vector<std::pair<std::string, std::string>> missing;  // metric name, "baseline"/"current"
  std::map<std::string, std::vector<FunctionResult>> functions;             // group -> ranked rows
  std::map<std::string, profile::Profile> merged_baseline, merged_current;  // group -> profiles
  std::map<std::string, std::string> groups;  // group -> rolled-up verdict
  std::vector<std::string> warnings;
  std::string verdict;
};

// Compares the sides (pure: everything was loaded by LoadSide).
Comparison Compare(const Side& baseline, const Side& current, const VerdictOptions& options);

// compare.json (kCompareFormat): every number, the methods, the thresholds.
Json ComparisonToJson(const Side& baseline, const Side& current, const Comparison& c);

// All the profiles' samples in one profile (ids renumbered), for the differential flame graph.
// Profiles whose sample types differ from the first are left out.
profile::Profile MergeProfiles(const std::vector<profile::Profile>& profiles);

}  // namespace fs::regression

#endif  // FRAMESCOPE_REGRESSION_COMPARE_H_
