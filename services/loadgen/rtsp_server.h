// Serves pre-encoded camera loops over RTSP with gst-rtsp-server.
//
// Per camera, one shared media ("appsrc ! h264parse ! rtph264pay") at rtsp://host:port/<name>:
// every client of a camera receives the same RTP stream, so the cost per camera does not grow
// with its clients. A single pacing thread (the pusher) hands each camera's next access unit
// to its appsrc every 1/fps seconds on an absolute CLOCK_MONOTONIC schedule; timestamps keep
// counting across loop wraps. Nothing is encoded while serving.
//
// Delivered frames are counted where they leave the pipeline toward clients: a pad probe on
// the payloader's source counts RTP packets with the marker bit (the last packet of each
// access unit). Frames are only counted as delivered while the camera has at least one
// playing client (see DeliveredFrames()).
#ifndef FRAMESCOPE_SERVICES_LOADGEN_RTSP_SERVER_H_
#define FRAMESCOPE_SERVICES_LOADGEN_RTSP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "services/loadgen/encoder.h"
#include "src/base/status.h"

namespace fs::loadgen {

struct RtspCamera {
  std::string name;  // mount point "/<name>", e.g. "cam03"
  EncodedLoop loop;
};

struct RtspServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 = any free port; read the bound one from port()
  int fps = 30;
  int width = 640;
  int height = 360;
};

// Fails with a message naming host:port when something already listens there (port 0 always
// passes). gst-rtsp-server reports a failed bind only as a GStreamer warning and a 0 source
// id, so the service checks with its own socket before encoding and again after attaching.
Status CheckRtspPortFree(const std::string& host, int port);

class RtspServer {
 public:
  // Binds, mounts one shared media per camera, and starts the main-loop and pusher threads.
  static StatusOr<std::unique_ptr<RtspServer>> Start(const RtspServerOptions& options,
                                                     std::vector<RtspCamera> cameras);
  ~RtspServer();  // Stop()s
  RtspServer(const RtspServer&) = delete;
  RtspServer& operator=(const RtspServer&) = delete;

  int port() const;
  size_t camera_count() const;
  const std::string& camera_name(size_t camera) const;

  // Samples the camera's playing clients (transports on its shared stream) and folds the
  // frames its payloader emitted since the last call into the delivered total when there was
  // a client. Call periodically (a few times a second) from one thread.
  struct Delivery {
    int clients = 0;
    uint64_t delivered_frames = 0;  // cumulative since Start()
    int64_t last_frame_ns = 0;      // MonotonicNs() when the latest delivered frame left
  };
  Delivery Poll(size_t camera);

  // Disconnects clients, stops the threads and frees the pipelines. Idempotent; bounded to
  // about a second even with clients attached.
  void Stop();

 private:
  struct Impl;
  explicit RtspServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fs::loadgen

#endif  // FRAMESCOPE_SERVICES_LOADGEN_RTSP_SERVER_H_
