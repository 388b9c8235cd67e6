// The capture service: one CameraWorker per camera, each publishing into its own frame ring,
// plus the service-level view (health, aggregate fps) and the executable's entry point.
#ifndef FRAMESCOPE_SERVICES_CAPTURE_CAPTURE_SERVICE_H_
#define FRAMESCOPE_SERVICES_CAPTURE_CAPTURE_SERVICE_H_

#include <memory>
#include <vector>

#include "services/capture/camera_worker.h"
#include "services/capture/capture_options.h"
#include "services/common/service.h"
#include "src/base/status.h"

namespace fs {

class CaptureService {
 public:
  explicit CaptureService(CaptureOptions options);
  ~CaptureService();  // Stop()

  // Creates the ring directory and one ring per camera. Fails (before any thread starts) on
  // a ring that cannot be created.
  Status Init();
  void Start();
  // Stops every camera promptly (interrupting blocking network calls) and joins the threads.
  // Rings stay in place for their readers.
  void Stop();

  // Healthy once every camera has published at least one frame; the detail lists each camera
  // {name, url, state, frames, reconnects, last_error, fps}.
  HealthReport Health() const;
  // Refreshes the fps gauges; call about once a second.
  void UpdateRates();

  const CaptureOptions& options() const { return options_; }

 private:
  CaptureOptions options_;
  std::vector<std::unique_ptr<CameraWorker>> workers_;
  std::vector<Gauge*> camera_fps_;
  Gauge* service_fps_;
};

// framescope-capture's main(): flags, runtime, service, wait for SIGTERM. Returns the exit
// code (0 after a clean stop, 1 on a startup failure, 2 on bad flags).
int CaptureMain(int argc, char** argv);

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_CAPTURE_CAPTURE_SERVICE_H_
