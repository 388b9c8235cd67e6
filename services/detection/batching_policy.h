// Dynamic batching for the detection service: which cameras' frames go into the next
// forward pass, and when. Pure logic: the caller passes the time in, so every decision is
// reproducible in a unit test.
//
// Rules:
//  * Newest frame first: a camera contributes at most its newest pending frame to a batch.
//    Frames it reported earlier that never made it into a batch, and sequence numbers it
//    skipped over, are counted in skipped() when a newer frame of it is dispatched.
//  * Dispatch as soon as max_batch cameras have a pending frame; otherwise dispatch what
//    is pending once the OLDEST pending frame has waited max_wait_ns (arrival time of the
//    first frame a camera has pending; a newer frame replacing it does not reset the clock,
//    so a fast camera cannot postpone the batch forever).
//  * Fair round robin: cameras sit in a service queue; a batch takes the first max_batch
//    cameras of that queue that have a pending frame, and those move to the back. With N
//    cameras all busy, each is served at least once in every ceil(N / max_batch) batches.
//
// Typical loop (the lead's detection service):
//   for each camera with a new frame in the ring: policy.OnFrame(cam, seq, MonotonicNs());
//   auto d = policy.Poll(MonotonicNs());
//   if (d.dispatch) run the Detector on d.frames; else sleep/wait until d.wait_until_ns.
// Not thread-safe: one thread owns it.
#ifndef FRAMESCOPE_SERVICES_DETECTION_BATCHING_POLICY_H_
#define FRAMESCOPE_SERVICES_DETECTION_BATCHING_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <vector>

namespace fs {

struct BatchingOptions {
  int max_batch = 4;
  int64_t max_wait_ns = 10'000'000;  // 10 ms
};

class BatchingPolicy {
 public:
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

  struct Frame {
    int camera = 0;
    uint64_t seq = 0;
    int64_t first_pending_ns = 0;  // when this camera's wait began (for latency metrics)
  };
  struct Decision {
    bool dispatch = false;
    std::vector<Frame> frames;       // when dispatch: the batch, in service order
    int64_t wait_until_ns = kNever;  // when !dispatch: poll again by then (kNever: idle)
  };

  explicit BatchingPolicy(BatchingOptions options = {});

  // Camera `camera` has `seq` as its newest frame, seen at now_ns. Reports of a seq not
  // newer than the camera's pending one are ignored; a newer one replaces it. A seq lower
  // than the last dispatched one means the camera restarted its numbering: accepted.
  void OnFrame(int camera, uint64_t seq, int64_t now_ns);

  // Decides at now_ns. A dispatch removes the chosen frames from the pending set.
  Decision Poll(int64_t now_ns);

  // Forgets a camera (e.g. its stream ended): its pending frame is dropped uncounted.
  void RemoveCamera(int camera);

  // Frames never dispatched because a newer frame of the same camera was (see above).
  uint64_t skipped() const { return skipped_; }
  uint64_t dispatched_frames() const { return dispatched_frames_; }
  uint64_t batches() const { return batches_; }
  size_t pending() const;
  const BatchingOptions& options() const { return options_; }

 private:
  struct CameraState {
    bool has_pending = false;
    uint64_t pending_seq = 0;
    int64_t first_pending_ns = 0;
    bool has_dispatched = false;
    uint64_t last_dispatched_seq = 0;
    uint64_t first_seen_seq = 0;  // frames before it were never reported: not counted
  };

  BatchingOptions options_;
  std::map<int, CameraState> cameras_;
  std::deque<int> order_;  // service queue: front is served first
  uint64_t skipped_ = 0;
  uint64_t dispatched_frames_ = 0;
  uint64_t batches_ = 0;
};

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_DETECTION_BATCHING_POLICY_H_
