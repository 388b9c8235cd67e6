// The batch analysis as one step, shared by `framescope batch` and `framescope profile`: a live
// window over the running detection's /metrics (two scrapes, detection running), then the
// offline sweep with detection paused, the best batch under the latency budget, and the live
// view's recommendation.
#ifndef FRAMESCOPE_SESSION_BATCH_RUN_H_
#define FRAMESCOPE_SESSION_BATCH_RUN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "src/clients/prom_text.h"
#include "src/model/batch_analysis.h"
#include "src/model/model_net.h"
#include "src/session/model_source.h"

namespace fs {

// The running detection service to watch: its metrics port and batching config.
struct LiveTarget {
  int port = 0;
  model::LiveContext context;
  std::string model;  // detection's model and input size, to compare with the sweep's
  int input_size = 0;
};

// A live window: Begin() scrapes detection's /metrics, End() scrapes again. A failure is kept
// as the reason (the sweep still runs), never fatal.
class LiveWindow {
 public:
  void Begin(const std::string& state_dir);
  void End();
  double elapsed_s() const;
  bool failed() const { return !reason_.empty(); }
  // The window's analysis against the sweep (or "not measurable" with the reason).
  model::LiveBatchView Analyse(const model::BatchAnalysis& a);

 private:
  std::string reason_ = "not measured: no live window";
  LiveTarget target_;
  std::vector<PromSample> start_, end_;
  int64_t start_ns_ = 0;
  double window_s_ = 0;
};

struct BatchRunOptions {
  model::SweepOptions sweep;
  double budget_ms = 0;  // 0: one frame interval of the system's (or the default) cameras
  const std::atomic<bool>* stop = nullptr;
  std::function<void(int batch, int forward)> on_forward;   // progress while measuring
  std::function<void(const model::BatchResult&)> on_batch;  // a batch size measured
  std::function<void(const std::string& line)> message;
};

// The sweep on `net` with detection paused, the best batch and the live view from `live`.
StatusOr<model::BatchAnalysis> RunBatchAnalysis(model::ModelNet* net, const ModelSource& source,
                                                const BatchRunOptions& options, LiveWindow* live);

}  // namespace fs

#endif  // FRAMESCOPE_SESSION_BATCH_RUN_H_
