#include "services/detection/batching_policy.h"

#include <algorithm>

namespace fs {

BatchingPolicy::BatchingPolicy(BatchingOptions options) : options_(options) {
  if (options_.max_batch < 1) options_.max_batch = 1;
  if (options_.max_wait_ns < 0) options_.max_wait_ns = 0;
}

void BatchingPolicy::OnFrame(int camera, uint64_t seq, int64_t now_ns) {
  auto [it, inserted] = cameras_.try_emplace(camera);
  CameraState& cam = it->second;
  if (inserted) {
    order_.push_back(camera);
    cam.first_seen_seq = seq;
  }
  if (cam.has_pending) {
    if (seq > cam.pending_seq) cam.pending_seq = seq;  // newest wins; wait clock keeps running
    return;
  }
  if (cam.has_dispatched && seq <= cam.last_dispatched_seq) {
    if (seq == cam.last_dispatched_seq) return;  // already served
    // Lower than what we served: the camera restarted its numbering.
    cam.has_dispatched = false;
    cam.first_seen_seq = seq;
  }
  cam.has_pending = true;
  cam.pending_seq = seq;
  cam.first_pending_ns = now_ns;
}

BatchingPolicy::Decision BatchingPolicy::Poll(int64_t now_ns) {
  Decision d;
  std::vector<int> pending;
  int64_t oldest = kNever;
  for (int camera : order_) {
    const CameraState& cam = cameras_.at(camera);
    if (!cam.has_pending) continue;
    pending.push_back(camera);
    oldest = std::min(oldest, cam.first_pending_ns);
  }
  if (pending.empty()) return d;
  const size_t max_batch = static_cast<size_t>(options_.max_batch);
  if (pending.size() < max_batch) {
    int64_t deadline =
        oldest > kNever - options_.max_wait_ns ? kNever : oldest + options_.max_wait_ns;
    if (now_ns < deadline) {
      d.wait_until_ns = deadline;
      return d;
    }
  } else {
    pending.resize(max_batch);
  }

  d.dispatch = true;
  for (int camera : pending) {
    CameraState& cam = cameras_.at(camera);
    uint64_t first_unserved = cam.has_dispatched ? cam.last_dispatched_seq + 1 : cam.first_seen_seq;
    if (cam.pending_seq > first_unserved) skipped_ += cam.pending_seq - first_unserved;
    d.frames.push_back({camera, cam.pending_seq, cam.first_pending_ns});
    cam.has_pending = false;
    cam.has_dispatched = true;
    cam.last_dispatched_seq = cam.pending_seq;
  }
  // Served cameras go to the back of the queue, keeping their relative order.
  std::deque<int> next;
  for (int camera : order_) {
    if (std::find(pending.begin(), pending.end(), camera) == pending.end()) next.push_back(camera);
  }
  for (int camera : pending) next.push_back(camera);
  order_.swap(next);
  dispatched_frames_ += d.frames.size();
  ++batches_;
  return d;
}

void BatchingPolicy::RemoveCamera(int camera) {
  if (cameras_.erase(camera) == 0) return;
  order_.erase(std::remove(order_.begin(), order_.end(), camera), order_.end());
}

size_t BatchingPolicy::pending() const {
  size_t n = 0;
  for (const auto& [camera, cam] : cameras_) n += cam.has_pending ? 1 : 0;
  return n;
}

}  // namespace fs
