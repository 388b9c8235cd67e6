// The detection service loop: shared-memory rings → batching policy → Detector → Redis.
//
// One thread does everything in order (OpenCV parallelises forward() internally):
//   1. poll each ring's write sequence; report cameras with a new frame to the policy
//   2. when the policy dispatches, read each chosen camera's NEWEST frame (older unread
//      frames are counted as skipped: latency stays bounded when inference is slower than
//      the cameras)
//   3. one forward pass over the batch, decode + NMS
//   4. one pipelined round trip of XADDs to the `detections` stream
// Rings are (re)opened when capture (re)creates them; Redis is reconnected with backoff and
// detections produced while it is unreachable are counted as dropped.
#ifndef FRAMESCOPE_SERVICES_DETECTION_DETECTION_SERVICE_H_
#define FRAMESCOPE_SERVICES_DETECTION_DETECTION_SERVICE_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "services/common/frame_ring.h"
#include "services/common/service.h"
#include "services/detection/batching_policy.h"
#include "services/detection/detector.h"
#include "src/clients/metrics.h"
#include "src/clients/redis_client.h"

namespace fs {

struct DetectionServiceOptions {
  std::vector<std::string> ring_paths;
  std::vector<std::string> camera_names;  // one per ring; empty: derived from the file names
  DetectorOptions detector;
  BatchingOptions batching;
  std::string redis_url;
  std::string stream = "detections";
  int64_t stream_maxlen = 1000000;  // approximate trim (MAXLEN ~) so memory stays bounded
};

class DetectionService {
 public:
  explicit DetectionService(DetectionServiceOptions options);
  // Loads the model; fails fast on a missing/invalid model or weights.
  Status Init();
  // Runs until ServiceRuntime::StopRequested().
  void Run();
  HealthReport Health() const;

 private:
  struct Camera {
    std::string path;
    std::string name;  // from the ring file name: <prefix>-<name>.ring
    std::optional<FrameRingReader> reader;
    std::atomic<bool> open{false};  // mirrors reader.has_value() for the health thread
    uint64_t last_reported_seq = UINT64_MAX;
    int64_t next_open_attempt_ns = 0;
    std::string last_error;
    Counter* frames_in = nullptr;
    Counter* frames_out = nullptr;
    Counter* skipped = nullptr;
    Counter* redis_dropped = nullptr;
    RateMeter rate;
  };

  void PollRings(int64_t now_ns);
  void ProcessBatch(const std::vector<BatchingPolicy::Frame>& frames);
  bool EnsureRedis();

  DetectionServiceOptions options_;
  std::unique_ptr<Detector> detector_;
  BatchingPolicy policy_;
  std::vector<std::unique_ptr<Camera>> cameras_;
  std::optional<RedisClient> redis_;
  int64_t next_redis_attempt_ns_ = 0;
  int64_t redis_backoff_ns_ = 250000000;
  std::vector<std::vector<uint8_t>> buffers_;
  RateMeter rate_;

  // Read by /health on the HTTP thread.
  mutable std::mutex health_mu_;
  std::string model_description_;  // empty until the model is loaded
  bool synthesized_weights_ = false;
  std::string redis_error_;
  bool redis_ok_ = false;

  Histogram* queue_wait_ = nullptr;
  Histogram* preprocess_ = nullptr;
  Histogram* inference_ = nullptr;
  Histogram* postprocess_ = nullptr;
  Histogram* publish_ = nullptr;
  Histogram* end_to_end_ = nullptr;
  Histogram* batch_size_ = nullptr;
  Counter* detections_ = nullptr;
  Gauge* fps_ = nullptr;
};

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_DETECTION_DETECTION_SERVICE_H_
