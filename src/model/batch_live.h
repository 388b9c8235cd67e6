// The live half of `framescope batch`: what the running detection service's dynamic batching
// actually did over a window, from two scrapes of its /metrics (start and end), and a
// recommendation for detection.max_batch / max_wait_ms from those numbers and the offline sweep.
//
// Counters and histogram buckets are cumulative, so the window's numbers are the end scrape
// minus the start scrape, series by series (a series that went down was reset by a restart:
// its end value is the window's). Metrics (services/detection/detection_service.cc):
//   framescope_batch_size                 histogram of frames per forward pass
//   framescope_stage_latency_seconds{service="detection",stage="queue_wait"}
//                                         capture timestamp -> frame read for a batch
//   framescope_frames_in_total            frames read, per camera
//   framescope_frames_dropped_total{reason="skipped_newest_first"}
//                                         frames overwritten in the ring before being read
#ifndef FRAMESCOPE_MODEL_BATCH_LIVE_H_
#define FRAMESCOPE_MODEL_BATCH_LIVE_H_

#include <optional>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/clients/prom_text.h"
#include "src/model/batch_sweep.h"

namespace fs::model {

// What the recommendation needs to know of the system.
struct LiveContext {
  int max_batch = 0;     // detection.max_batch now (0: unknown)
  int max_wait_ms = -1;  // detection.max_wait_ms now (-1: unknown)
  int cameras = 0;       // a batch holds at most one frame per camera (0: unknown)
  double budget_ms = 0;  // the sweep's latency budget
  // Set when the sweep measured another model or input size than detection runs: said with
  // the recommendation, which then does not apply as is.
  std::string sweep_mismatch;
};

// One histogram bucket of the window: (lo, hi] and its count (not cumulative).
struct BucketCount {
  double lo = 0, hi = 0;
  double count = 0;
};

// A quantile estimated from buckets, with the bucket it falls in (the estimate is a linear
// interpolation inside it, as Prometheus' histogram_quantile does).
struct BucketQuantile {
  std::optional<double> value;
  double bucket_lo = 0, bucket_hi = 0;
};

struct LiveBatchView {
  bool measured = false;
  std::string reason;  // when not measured
  double window_s = 0;
  // Batches formed.
  double batches = 0;
  std::optional<double> mean_batch;
  std::vector<BucketCount> batch_sizes;  // non-empty buckets only
  // Queue wait, seconds in the metric, milliseconds here.
  double queue_wait_count = 0;
  BucketQuantile queue_wait_p50_ms, queue_wait_p99_ms;
  // Frames.
  double frames_in = 0, frames_skipped = 0;
  std::optional<double> skip_share;  // skipped / (in + skipped)
  double offered_fps = 0;            // (in + skipped) / window_s
  // Recommendation.
  std::optional<int> recommended_max_batch, recommended_max_wait_ms;
  std::string recommendation;
  LiveContext context;
};

// The window's samples: end - start per series (name and labels); a series missing at the start
// counts from 0, one that decreased was reset and counts its end value.
std::vector<PromSample> DeltaSamples(const std::vector<PromSample>& start,
                                     const std::vector<PromSample>& end);

// Quantile q of histogram `name` (series matching `match`) with its bucket.
BucketQuantile QuantileWithBucket(const std::vector<PromSample>& samples, const std::string& name,
                                  double q, const std::map<std::string, std::string>& match = {});

// The live view from the two scrapes and the offline sweep (may be empty: no recommendation).
LiveBatchView AnalyseLiveBatch(const std::vector<PromSample>& start,
                               const std::vector<PromSample>& end, double window_s,
                               const LiveContext& context, const std::vector<BatchResult>& sweep);

LiveBatchView LiveNotMeasurable(std::string reason);

// How the recommendation is derived, for the report.
const char* LiveRecommendationRule();

Json LiveBatchJson(const LiveBatchView& v);

}  // namespace fs::model

#endif  // FRAMESCOPE_MODEL_BATCH_LIVE_H_
