// The overhead governor of a profiling session: keeps framescope's OWN CPU cost under a budget
// by lowering the sampling rate, and watches host CPU as an early warning only.
//
// Why not react to host CPU: on a loaded host most of that load is the workload being profiled;
// halving the rate for it halved every `make run` (99 Hz became 49 Hz) while framescope itself
// used ~1 % of a core. What the planning document's overhead risk is about is our cost, so that
// is what is budgeted; host CPU above the threshold is reported (the document's "back off at
// 80 %" early warning) but never changes the rate.
//
// The recorder calls Adjust() about once a second (RecordOptions::adjust_frequency) with the
// rate it is sampling at; the returned rate is applied from then on. Every change is kept with
// its time and reason for the report, and the timeline gives the time-weighted effective rate.
#ifndef FRAMESCOPE_SESSION_GOVERNOR_H_
#define FRAMESCOPE_SESSION_GOVERNOR_H_

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "src/report/cpu_report.h"

namespace fs::profile {

// What the governor measures, behind a narrow interface so a test can feed synthetic costs.
class CostReader {
 public:
  virtual ~CostReader() = default;
  // CPU seconds this process has used so far, every thread (< 0: unreadable).
  virtual double SelfCpuSeconds() = 0;
  // Busy % of all host CPUs since the previous call (< 0: unknown, e.g. first call).
  virtual double HostCpuPercent() = 0;
};

// CPU seconds of this process, every thread: clock_gettime(CLOCK_PROCESS_CPUTIME_ID); -1 if
// unreadable.
double ProcessCpuSeconds();

// ProcessCpuSeconds() (ns resolution: a 2 % budget is 20 ms/s, two
// /proc/self/stat ticks, too coarse) and /proc/stat.
std::unique_ptr<CostReader> SystemCostReader();

struct GovernorOptions {
  int requested_hz = 99;
  int min_hz = 19;                // Never lowered below this.
  double max_overhead_pct = 2.0;  // Our CPU, % of one core; <= 0 turns rate changes off.
  double host_warn_pct = 80.0;    // Host CPU early-warning threshold; <= 0 turns it off.
};

// The highest rate <= hz whose period is not a whole number of milliseconds (one ending in 9,
// as perf's 99 Hz): a round rate samples in lockstep with work driven by 1/10/20/40 ms or 5 s
// timers and misses it or hits it every time. Seen in `make run`: at 25 Hz the small services'
// sampled CPU was a third of /proc's and detection's 9 % over, while at 99 Hz they agreed.
int NonAliasingRate(int hz);

class Governor {
 public:
  Governor(const GovernorOptions& options, std::unique_ptr<CostReader> reader);

  // One reading. `elapsed_s` is the recording's clock, `current_hz` the rate in force; returns
  // the rate to use from now on (== current_hz: no change).
  int Adjust(double elapsed_s, int current_hz);

  // Readings so far (0: the recorder never consulted the governor).
  int readings() const { return readings_; }
  // Mean of our CPU over every reading, % of one core (< 0: no reading yet).
  double MeanCostPct() const;
  // Rate changes and host warnings, with the time-weighted rate over [0, end_s].
  GovernorReport Report(double end_s) const;

 private:
  // Decisions look at the mean of the last kWindow readings: one slow second (a new child
  // process symbolized) should not move the rate, three should.
  static constexpr size_t kWindow = 3;
  int Decide(double elapsed_s, int current_hz);
  void WatchHost(double elapsed_s, double host_pct);
  void Change(double elapsed_s, int from_hz, int to_hz, const std::string& reason);

  GovernorOptions options_;
  std::unique_ptr<CostReader> reader_;
  double prev_s_ = -1, prev_cpu_ = -1;
  double first_s_ = -1, first_cpu_ = -1;
  std::deque<double> window_;  // Our CPU % of one core, one entry per reading.
  int readings_ = 0;
  int host_streak_ = 0;  // Consecutive readings above host_warn_pct.
  GovernorReport report_;
};

}  // namespace fs::profile

#endif  // FRAMESCOPE_SESSION_GOVERNOR_H_
