#include "services/capture/capture_service.h"

#include <cstdio>

#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/logging.h"
#include "src/clients/metrics.h"

namespace fs {

CaptureService::CaptureService(CaptureOptions options) : options_(std::move(options)) {
  service_fps_ = Metrics().GetGauge("framescope_service_fps",
                                    "Frames per second the service processes (~5 s window).",
                                    {{"service", "capture"}});
}

CaptureService::~CaptureService() { Stop(); }

Status CaptureService::Init() {
  for (const CaptureCamera& cam : options_.cameras) {
    const std::string dir = cam.ring_path.substr(0, cam.ring_path.rfind('/'));
    if (!dir.empty()) RETURN_IF_ERROR(MakeDirs(dir).Annotate("ring directory"));
    auto ring = FrameRingWriter::Create(
        cam.ring_path, static_cast<uint32_t>(options_.slots), static_cast<uint32_t>(options_.width),
        static_cast<uint32_t>(options_.height), static_cast<uint32_t>(cam.index));
    if (!ring.ok()) return ring.status().Annotate("camera " + cam.name);
    workers_.push_back(std::make_unique<CameraWorker>(cam, options_, std::move(ring).value()));
    camera_fps_.push_back(Metrics().GetGauge(
        "framescope_camera_fps", "Frames per second decoded from the camera (~5 s window).",
        {{"service", "capture"}, {"camera", cam.name}}));
  }
  return Status::Ok();
}

void CaptureService::Start() {
  for (auto& w : workers_) w->Start();
}

void CaptureService::Stop() {
  // Ask all first, then join: cameras stop in parallel, not one timeout after another.
  for (auto& w : workers_) w->RequestStop();
  for (auto& w : workers_) w->Join();
}

void CaptureService::UpdateRates() {
  double total = 0;
  for (size_t i = 0; i < workers_.size(); ++i) {
    const double fps = workers_[i]->DecodeRate();
    camera_fps_[i]->Set(fps);
    total += fps;
  }
  service_fps_->Set(total);
}

HealthReport CaptureService::Health() const {
  HealthReport report;
  report.healthy = !workers_.empty();
  Json cameras = Json::MakeArray();
  for (const auto& w : workers_) {
    CameraSnapshot s = w->Snapshot();
    if (s.frames == 0) report.healthy = false;
    Json c = Json::MakeObject();
    c["name"] = s.name;
    c["url"] = s.url;
    c["state"] = s.state;
    c["frames"] = s.frames;
    c["reconnects"] = s.reconnects;
    c["last_error"] = s.last_error;
    c["fps"] = s.fps;
    cameras.Push(std::move(c));
  }
  report.detail = Json::MakeObject();
  report.detail["cameras"] = std::move(cameras);
  return report;
}

int CaptureMain(int argc, char** argv) {
  ServiceRuntime runtime("capture");
  FlagSet flags("framescope-capture",
                "Pulls H.264 from RTSP cameras, decodes it, and publishes BGR24 frames at the "
                "detection size into one shared-memory ring per camera.");
  CaptureFlags capture_flags;
  capture_flags.Register(&flags);
  runtime.AddFlags(&flags);
  int exit_code = 0;
  if (!flags.ParseOrExit(argc, argv, &exit_code)) return exit_code;
  StatusOr<CaptureOptions> options = capture_flags.Resolve();
  if (!options.ok()) {
    fprintf(stderr, "framescope-capture: %s\n", options.status().message().c_str());
    return 2;
  }

  CaptureService service(std::move(options).value());
  if (Status st = service.Init(); !st.ok()) {
    LOG(ERROR) << st.message();
    return 1;
  }
  if (Status st = runtime.Start([&service] { return service.Health(); }); !st.ok()) {
    LOG(ERROR) << st.message();
    return 1;
  }
  // Endpoints after Start() so the port file never advertises metrics_port 0; /health cannot
  // turn healthy before they are written because the cameras start below.
  for (const CaptureCamera& cam : service.options().cameras) {
    runtime.SetEndpoint("ring." + cam.name, cam.ring_path);
  }
  service.Start();
  while (!ServiceRuntime::SleepOrStop(1000)) service.UpdateRates();

  LOG(INFO) << "stop requested; shutting down";
  runtime.http().Stop();  // no /health call may reach the service while it is torn down
  service.Stop();
  LOG(INFO) << "stopped";
  return 0;
}

}  // namespace fs
