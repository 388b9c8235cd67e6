// The load generator service: N simulated RTSP cameras for the reference system.
//
// Startup renders and encodes every camera's loop once (scene.h, encoder.h), then serves the
// encoded access units at the configured rate (rtsp_server.h). Every report interval it logs,
// per camera, the frame rate actually delivered to clients:
//   2026-11-24T15:40:01.123Z I loadgen: camera=cam03 FPS: 30.0
// and exports it at /metrics (framescope_camera_fps and friends).
#ifndef FRAMESCOPE_SERVICES_LOADGEN_LOADGEN_H_
#define FRAMESCOPE_SERVICES_LOADGEN_LOADGEN_H_

#include <cstdint>
#include <string>

#include "services/common/service.h"
#include "src/base/flags.h"
#include "src/base/status.h"
#include "src/config/config.h"  // CameraName

namespace fs::loadgen {

inline constexpr char kDefaultImagesDir[] = "/usr/share/darknet/data";

struct LoadgenOptions {
  int cameras = 10;
  int fps = 30;
  std::string resolution = "640x360";
  int width = 640;  // from `resolution` by FinishOptions()
  int height = 360;
  std::string host = "127.0.0.1";
  int port = 8554;
  double loop_seconds = 4;
  std::string images_dir = kDefaultImagesDir;
  bool images_dir_explicit = false;  // an explicit dir must exist; the default may be absent
  double report_interval = 5;
};

// Registers the loadgen's own flags (ServiceRuntime::AddFlags adds the runtime's).
void AddFlags(FlagSet* flags, LoadgenOptions* options);
// Checks ranges and derives width/height; an error here is a usage error (exit 2).
Status FinishOptions(const FlagSet& flags, LoadgenOptions* options);
// "cam00", "cam01", ...

// Formats one report line's message, e.g. "camera=cam03 FPS: 30.0".
std::string FpsLine(const std::string& camera, double fps);

// Runs the service until SIGTERM/SIGINT. Errors (port taken, bad images dir, encoder
// failure) come back as a Status; the caller exits 1.
Status Run(const LoadgenOptions& options, ServiceRuntime* runtime);

// Turns a camera's cumulative delivered-frame count into the rate of one report window.
// When the stream ran through the whole window, the rate is frames / (time between the last
// frame of the previous window and the last frame of this one): frame-to-frame, so a steady
// 30 FPS reads 30.0 rather than 29.8 or 30.2 from where the window edges fell between frames.
// Otherwise (stream started or stopped inside the window) it is frames / window length.
class DeliveredRate {
 public:
  explicit DeliveredRate(int fps) : period_ns_(1000000000LL / (fps > 0 ? fps : 1)) {}
  double CloseWindow(uint64_t delivered_frames, int64_t last_frame_ns, int64_t window_start_ns,
                     int64_t now_ns);

 private:
  int64_t period_ns_;
  uint64_t prev_frames_ = 0;
  int64_t prev_last_ns_ = 0;
};

}  // namespace fs::loadgen

#endif  // FRAMESCOPE_SERVICES_LOADGEN_LOADGEN_H_
