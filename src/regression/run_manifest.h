// run.json: the manifest every `framescope profile` run writes at the top of its output folder,
// so runs can be compared (framescope compare), listed over time (profiles/automated/index.html)
// and judged against the checklist. It names when, where and what was measured (host, config and
// its hash, the revision under test, framescope's version) and carries every metric the run
// measured, each with the counter behind it and one value per repetition (--repeat N windows of
// one recording, or one value), so a single run already carries its own variance.
//
// A failed run (the system down, preflight refused) is written too, with status "failed" and the
// error: a failed run is history as well.
//
// Format "framescope-run/1":
//   { "format", "status": "ok"|"failed"|"interrupted", "error", "exit_code",
//     "started_at", "finished_at" (UTC ISO 8601), "host", "duration_s", "repeat",
//     "label", "revision", "framescope_version", "config", "config_hash", "report",
//     "metrics": [ {name, group, unit, better: "lower"|"higher", counter, values: [..]} ],
//     "profiles": { service: "cpu/<service>_profile.prof" },
//     "checklist": [ {id, item, goal, value, counter, verdict: "met"|"not met"|
//                     "not measurable here", reason} ] }
#ifndef FRAMESCOPE_REGRESSION_RUN_MANIFEST_H_
#define FRAMESCOPE_REGRESSION_RUN_MANIFEST_H_

#include <map>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"

namespace fs::regression {

inline constexpr const char* kRunFormat = "framescope-run/1";
inline constexpr const char* kRunFile = "run.json";

// One measured quantity. `name` is stable across runs ("<group>/<what>", e.g. "capture/cpu_cores",
// "edge/api->postgres/p99_ms") so two runs' metrics pair up by name; `group` is what a verdict is
// rolled up by (a service, "postgres", "redis", "edge"...).
struct Metric {
  std::string name;
  std::string group;
  std::string unit;     // "cores", "ms", "MB/h", "fps", "share"...
  std::string counter;  // Where the number came from, e.g. "/proc/PID/stat utime+stime".
  bool higher_is_better = false;
  std::vector<double> values;  // One per repetition; never padded (a missing value is absent).
};

// One row of the checklist (../shared/mission.md items 0.1 ... 4.2).
struct ChecklistRow {
  std::string id;       // "1.2"
  std::string item;     // "Memory leaks"
  std::string goal;     // "growth < 10 MB/h per service"
  std::string value;    // The measured value as shown ("3.1 MB/h (api)"); "" when not measured.
  std::string counter;  // The counter behind the value.
  std::string verdict;  // kMet, kNotMet or kNotMeasurable.
  std::string reason;   // Why not measurable / what failed; may be empty.
};
inline constexpr const char* kMet = "met";
inline constexpr const char* kNotMet = "not met";
inline constexpr const char* kNotMeasurable = "not measurable here";

struct RunManifest {
  std::string dir;            // The run's folder (set by LoadRunManifest; not serialized).
  std::string status = "ok";  // "ok", "failed" or "interrupted".
  std::string error;          // Why the run failed (status "failed").
  int exit_code = 0;
  std::string started_at, finished_at;  // UTC, "2026-12-02T07:00:00Z".
  std::string host;
  double duration_s = 0;
  int repeat = 1;
  std::string label;     // --label, else the revision.
  std::string revision;  // The git revision framescope and the system were built from.
  std::string framescope_version;
  Json config;  // The system's configuration (state.json's config), secrets redacted.
  std::string config_hash;
  std::string report;  // Relative path of the run's report ("index.html"); "" if none.
  std::vector<Metric> metrics;
  std::map<std::string, std::string> profiles;  // service -> relative path of its CPU profile.
  std::vector<ChecklistRow> checklist;

  const Metric* Find(const std::string& name) const;
};

Json RunManifestToJson(const RunManifest& m);
// Names the file and what is wrong with it ("run.json: not JSON at line 3", "no metrics array").
StatusOr<RunManifest> RunManifestFromJson(const Json& j);
// DIR/run.json; the error names the path.
StatusOr<RunManifest> LoadRunManifest(const std::string& dir);
// Written atomically; refuses symlinks, devices and FIFOs (WriteOutput's rules).
Status WriteRunManifest(const std::string& dir, const RunManifest& m);

// A stable hash of a JSON value (key order does not matter: objects are dumped sorted), as 16
// hex digits (FNV-1a 64). Used for config_hash.
std::string JsonHash(const Json& j);

}  // namespace fs::regression

#endif  // FRAMESCOPE_REGRESSION_RUN_MANIFEST_H_
