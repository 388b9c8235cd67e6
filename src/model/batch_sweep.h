// The offline batch sweep of `framescope batch`: per batch size, forward passes timed in
// windows until the measurement is stable (Triton perf_analyzer's rule: the last 3 windows
// within 10 % of each other on both throughput and p99 latency) or a cap is reached; then the
// best batch (Model Analyzer's rule: the highest throughput whose p99 meets the latency budget)
// and the checklist verdict (mission 2.3: optimal batch in 4..32 with a gain over batch 1 above
// 2.0).
//
// The forward pass is a callback returning the seconds of one forward at a batch size, so the
// logic runs on synthetic timings in tests; the CLI binds it to ModelNet::Forward (steady_clock
// around cv::dnn::Net::forward). Window lengths and caps are sums of those seconds, not wall
// time, for the same reason (the difference is the loop's own overhead, microseconds).
#ifndef FRAMESCOPE_MODEL_BATCH_SWEEP_H_
#define FRAMESCOPE_MODEL_BATCH_SWEEP_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"

namespace fs::model {

// Seconds of one forward pass over `batch` images.
using ForwardFn = std::function<StatusOr<double>(int batch)>;

struct SweepOptions {
  std::vector<int> batches = {1, 2, 4, 8, 16, 32};
  int warmup_forwards = 2;      // per batch size, not counted (the first also reshapes the net)
  int min_window_forwards = 3;  // a window has at least this many forwards...
  double window_seconds = 1.0;  // ...and at least this many seconds of forwards
  int stable_windows = 3;       // perf_analyzer: the last 3 windows...
  double tolerance = 0.10;      // ...the largest at most 10 % above the smallest
  int max_windows = 10;         // then the batch is reported unstable
  double max_seconds_per_batch = 60;  // forward seconds per batch size, warm-up included
};

// One measurement window.
struct WindowStats {
  int forwards = 0;
  double seconds = 0;         // sum of the forward times
  double throughput_ips = 0;  // images / seconds
  double p50_ms = 0;          // per forward (one batch)
  double p99_ms = 0;
};

struct BatchResult {
  int batch = 0;
  // Over the last `stable_windows` windows (all windows when fewer): images / forward seconds,
  // and percentiles of the per-forward times (ms per batch).
  double throughput_ips = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int forwards = 0;  // counted in the numbers above
  bool stable = false;
  std::string unstable_reason;  // why it stopped without meeting the rule
  std::vector<WindowStats> windows;
};

// The stability rule over a window series: at least `n` windows, and over the last `n` the
// largest value at most (1 + `tolerance`) times the smallest (0.1 = 10 %), on both throughput
// and p99 latency (Triton perf_analyzer's test).
bool WindowsStable(const std::vector<WindowStats>& windows, int n, double tolerance);

// Statistics of one window from its forward times (seconds) at `batch`.
WindowStats WindowFromTimes(const std::vector<double>& seconds, int batch);

// Warm-up then windows at one batch size until stable, max_windows, the time cap or *stop. An
// error from `forward` is returned as is. Without a complete window (stopped early) the result
// has no windows and forwards == 0.
StatusOr<BatchResult> MeasureBatch(const ForwardFn& forward, int batch, const SweepOptions& o,
                                   const std::atomic<bool>* stop = nullptr);

// Every batch size in order; stops early on *stop (the sizes measured so far are returned,
// a partly measured one included if it has a window). `progress` (may be empty) gets a line per
// batch size.
StatusOr<std::vector<BatchResult>> RunSweep(
    const ForwardFn& forward, const SweepOptions& o, const std::atomic<bool>* stop = nullptr,
    const std::function<void(const BatchResult&)>& progress = {});

// Checks a --batches list: positive sizes, at most 1024, no repeats; sorted ascending.
StatusOr<std::vector<int>> ParseBatchList(const std::string& text);

// The latency budget when none is given: one frame interval (1000 / fps ms) — a camera's next
// frame arrives then, so a batch that takes longer makes detection fall behind that camera.
struct LatencyBudget {
  double ms = 0;
  std::string rule;  // how it was chosen, for the report
};
LatencyBudget BudgetFromFps(double fps, const std::string& fps_origin);

// The best batch and the checklist verdict.
struct BatchChoice {
  LatencyBudget budget;
  std::optional<int> best_batch;     // highest throughput with p99 <= budget; ties: smaller batch
  std::optional<double> gain;        // best's throughput / batch 1's; unset without batch 1
  int best_unconstrained_batch = 0;  // highest throughput ignoring the budget (0: no results)
  std::optional<double> unconstrained_gain;
  std::string verdict;  // "met", "not met" or "not measurable"
  std::string reason;   // in words, from the numbers
};
inline constexpr int kChecklistMinBatch = 4, kChecklistMaxBatch = 32;
inline constexpr double kChecklistMinGain = 2.0;

BatchChoice ChooseBestBatch(const std::vector<BatchResult>& results, const LatencyBudget& budget);

Json BatchResultJson(const BatchResult& r);
Json BatchChoiceJson(const BatchChoice& c);
Json SweepOptionsJson(const SweepOptions& o);

}  // namespace fs::model

#endif  // FRAMESCOPE_MODEL_BATCH_SWEEP_H_
