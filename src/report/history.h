// The history page of continuous profiling: OUT/index.html over the run folders that
// `framescope schedule run` fills (OUT/<UTC timestamp>/run.json). One row per run (time, status
// and the error of a failed run, label, duration, exit code, the comparison's verdict, a link to
// the run's report) and trend charts per service: each metric's median per run over time as an
// inline SVG line chart. A failed run breaks the line (a gap) and is marked on the time axis; it
// is never drawn as a zero. Self-contained: no script, font or style is fetched.
#ifndef FRAMESCOPE_REPORT_HISTORY_H_
#define FRAMESCOPE_REPORT_HISTORY_H_

#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/regression/run_manifest.h"

namespace fs::profile {

// What `schedule run --baseline` recorded about its `framescope compare` child, in
// <run>/schedule.json ({"compare": {"baseline", "exit_code", "verdict"}}).
struct CompareOutcome {
  std::string baseline;  // The label compared against.
  int exit_code = -1;
  std::string verdict;  // compare.json's verdict, else the exit code's meaning.
};
inline constexpr const char* kScheduleRecord = "schedule.json";
Status WriteCompareOutcome(const std::string& run_dir, const CompareOutcome& c);

struct HistoryRun {
  std::string folder;  // Its name under OUT ("20261202T070000Z").
  bool loaded = false;
  std::string load_error;  // A corrupt run.json, named.
  regression::RunManifest manifest;
  bool has_compare = false;
  CompareOutcome compare;
};

// The given run folders of `out` (oldest first, as session::RunFolders lists them).
std::vector<HistoryRun> LoadHistory(const std::string& out,
                                    const std::vector<std::string>& folders);
std::string RenderHistoryHtml(const std::vector<HistoryRun>& runs);
// OUT/index.html, written atomically (WriteOutput's rules).
Status WriteHistoryIndex(const std::string& out, const std::vector<HistoryRun>& runs);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_HISTORY_H_
