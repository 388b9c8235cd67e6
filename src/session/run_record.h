// What a `framescope profile` run leaves for comparison and history: its run.json
// (src/regression/run_manifest.h) built from the ProfileRunResult and the options, the
// checklist rows (../shared/mission.md 0.1 ... 4.2) taken from the verdicts the other sections
// already computed, and the run's largest findings.
//
// Metric names are the contract's (docs: /work/contract14.md): "<service>/cpu_cores",
// "<service>/rss_mb", "<service>/rss_slope_mb_per_h", "capture/fps", "loadgen/fps",
// "model/total_ms", "model/layer/<layer>_ms", "batch/gain", "postgres/<queryid>/mean_ms",
// "redis/pipeline_share", "edge/<source>-><target>/p99_ms", "gpu/utilization". A metric that
// was not measured is absent, never 0.
#ifndef FRAMESCOPE_SESSION_RUN_RECORD_H_
#define FRAMESCOPE_SESSION_RUN_RECORD_H_

#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/regression/run_manifest.h"
#include "src/report/checklist.h"
#include "src/session/profile_run.h"

namespace fs::profile {

// A reading at a time (CLOCK_REALTIME seconds).
struct TimedValue {
  double at_s = 0;
  double value = 0;
};

// The mean of the readings inside each window [bounds[k], bounds[k+1]), in window order; a
// window without a reading has no value (the result is then shorter, never padded with 0).
std::vector<double> WindowMeans(const std::vector<double>& bounds,
                                const std::vector<TimedValue>& readings);

// Every "camera=camNN FPS: X" report of loadgen's log at or after `since_s` (each line read by
// the preflight's parser), as (time, FPS).
std::vector<TimedValue> LoadgenFpsReports(const std::string& log, double since_s);

// Every metric the run measured, per window where the run has windows.
std::vector<regression::Metric> RunMetrics(const ProfileRunResult& r);

// One row per checklist item, in the mission's order.
std::vector<regression::ChecklistRow> BuildChecklist(const ProfileRunResult& r,
                                                     const ProfileRunOptions& o);

// The few largest items by size: top CPU services and functions, the largest memory growth,
// the slowest layer, the worst edge p99, the slowest statement.
std::vector<Finding> LargestFindings(const ProfileRunResult& r);

// The manifest of the run as it ended (status from r.outcome, exit_code =
// ProfileExitCode(r.outcome)); uses r.checklist as computed for the reports, else builds it.
regression::RunManifest BuildRunManifest(const ProfileRunResult& r, const ProfileRunOptions& o);

// `config` with secrets replaced by "***": passwords inside URLs and conninfo strings, and the
// value of any key naming a password, secret or token.
Json RedactSecrets(const Json& config);

}  // namespace fs::profile

#endif  // FRAMESCOPE_SESSION_RUN_RECORD_H_
