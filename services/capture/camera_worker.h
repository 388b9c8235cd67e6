// One camera: an RTSP session (libavformat), H.264 decode (libavcodec) and conversion to BGR24
// at the detection size (libswscale) written straight into the camera's frame ring — the only
// copy of the pixels after the decoder's own output. Runs on its own thread; a lost or
// unreachable camera is retried forever with exponential backoff.
#ifndef FRAMESCOPE_SERVICES_CAPTURE_CAMERA_WORKER_H_
#define FRAMESCOPE_SERVICES_CAPTURE_CAMERA_WORKER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "services/capture/capture_options.h"
#include "services/common/frame_ring.h"
#include "src/base/status.h"
#include "src/clients/metrics.h"

struct AVFrame;
struct SwsContext;

namespace fs {

// What /health shows per camera.
struct CameraSnapshot {
  std::string name;
  std::string url;         // redacted
  std::string state;       // connecting | streaming | reconnecting | stopped
  std::string last_error;  // most recent connection error ("" if none yet)
  uint64_t frames = 0;     // frames published to the ring since start
  uint64_t reconnects = 0;
  double fps = 0;  // decoded frames per second over the last ~5 s
};

class CameraWorker {
 public:
  CameraWorker(CaptureCamera camera, const CaptureOptions& options, FrameRingWriter ring);
  ~CameraWorker();  // stops and joins
  CameraWorker(const CameraWorker&) = delete;
  CameraWorker& operator=(const CameraWorker&) = delete;

  void Start();
  // Asks the thread to stop: aborts any blocking libav call through the interrupt callback
  // and wakes a backoff sleep. Does not wait.
  void RequestStop();
  void Join();

  CameraSnapshot Snapshot() const;
  double DecodeRate() const { return decode_rate_.Rate(); }
  const CaptureCamera& camera() const { return camera_; }

 private:
  enum class State { kConnecting, kStreaming, kReconnecting, kStopped };

  void Run();
  // One connection: open, then decode and publish until the stream fails or stop is
  // requested. Returns the reason the stream ended (OK when stopping).
  Status StreamOnce();
  void PublishFrame(const AVFrame* frame, int64_t decode_start_ns);
  bool EnsureScaler(const AVFrame* frame);
  void SetState(State state);
  void SetError(const std::string& error);
  // Starts the watchdog for the next blocking libav call.
  void ArmDeadline(int timeout_ms);
  static int InterruptCallback(void* opaque);

  const CaptureCamera camera_;
  const CaptureOptions options_;
  FrameRingWriter ring_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;

  // Watchdog for libav calls. Set by the worker thread; read by the interrupt callback, which
  // libav calls from inside this thread's calls. Atomic anyway: nothing in libav's API
  // promises the callback never runs on a helper thread (e.g. a UDP receive thread).
  std::atomic<int64_t> deadline_ns_{0};
  std::atomic<bool> timed_out_{false};

  // Scaler state, rebuilt only when the decoded format changes.
  SwsContext* sws_ = nullptr;
  int sws_width_ = 0, sws_height_ = 0, sws_format_ = -1;
  bool sws_full_range_ = false;
  uint64_t session_frames_ = 0;  // frames published on the current connection

  mutable std::mutex mu_;  // guards state_ and last_error_
  State state_ = State::kConnecting;
  std::string last_error_;
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> reconnects_{0};
  RateMeter decode_rate_;

  // Metric handles, looked up once.
  Counter* frames_in_;
  Counter* frames_out_;
  Counter* dropped_decode_error_;
  Counter* dropped_corrupt_;
  Counter* dropped_convert_error_;
  Counter* reconnects_total_;
  Gauge* connected_;
  Histogram* decode_latency_;
  Histogram* convert_latency_;
};

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_CAPTURE_CAMERA_WORKER_H_
