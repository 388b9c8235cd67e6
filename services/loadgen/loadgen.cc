#include "services/loadgen/loadgen.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "services/loadgen/encoder.h"
#include "services/loadgen/rtsp_server.h"
#include "services/loadgen/scene.h"
#include "src/base/clock.h"
#include "src/base/json.h"
#include "src/base/logging.h"
#include "src/clients/metrics.h"

namespace fs::loadgen {
namespace {

constexpr char kService[] = "loadgen";

// Renders and encodes every camera's loop, cameras side by side on the available cores.
StatusOr<std::vector<RtspCamera>> EncodeAllLoops(const LoadgenOptions& options,
                                                 const ImageLibrary& library) {
  const int loop_frames =
      std::max(1, static_cast<int>(std::lround(options.loop_seconds * options.fps)));
  std::vector<RtspCamera> cameras(static_cast<size_t>(options.cameras));
  std::vector<Status> errors(cameras.size());
  std::atomic<int> next{0};
  auto worker = [&] {
    for (int i = next++; i < options.cameras; i = next++) {
      if (ServiceRuntime::StopRequested()) return;
      SceneOptions scene_options;
      scene_options.camera_index = i;
      scene_options.camera_name = CameraName(i);
      scene_options.width = options.width;
      scene_options.height = options.height;
      scene_options.fps = options.fps;
      scene_options.loop_frames = loop_frames;
      const Scene scene(scene_options, library);
      EncoderOptions encoder_options;
      encoder_options.width = options.width;
      encoder_options.height = options.height;
      encoder_options.fps = options.fps;
      auto loop = EncodeLoop(encoder_options, loop_frames,
                             [&scene](int frame, cv::Mat* bgr) { scene.Render(frame, bgr); });
      if (!loop.ok()) {
        errors[static_cast<size_t>(i)] = loop.status().Annotate("encoding " + CameraName(i));
        continue;
      }
      cameras[static_cast<size_t>(i)] = RtspCamera{CameraName(i), std::move(loop).value()};
    }
  };
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = std::min<size_t>(cameras.size(), cores);
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::thread& t : pool) t.join();
  for (const Status& st : errors) RETURN_IF_ERROR(st);
  if (ServiceRuntime::StopRequested()) return Err("stopped during startup encode");
  return cameras;
}

struct HealthState {
  std::mutex mu;
  bool ready = false;  // all loops encoded and the RTSP server listening
  Json detail = Json::MakeObject();
};

struct CameraMetrics {
  Counter* frames_out = nullptr;
  Gauge* fps = nullptr;
  Gauge* clients = nullptr;
  uint64_t delivered_seen = 0;  // already added to frames_out
};

}  // namespace

std::string FpsLine(const std::string& camera, double fps) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", fps);
  return "camera=" + camera + " FPS: " + buf;
}

double DeliveredRate::CloseWindow(uint64_t delivered_frames, int64_t last_frame_ns,
                                  int64_t window_start_ns, int64_t now_ns) {
  const uint64_t frames = delivered_frames - prev_frames_;
  // A stream is "running" at a window edge when its latest frame is at most two frame
  // periods (plus scheduling slack) older than the edge.
  const int64_t slack = 2 * period_ns_ + 20000000;
  const bool ran_into_window = prev_last_ns_ > 0 && window_start_ns - prev_last_ns_ <= slack;
  const bool runs_at_end = frames > 0 && now_ns - last_frame_ns <= slack;
  double rate = 0;
  if (frames > 0 && ran_into_window && runs_at_end && last_frame_ns > prev_last_ns_) {
    rate = static_cast<double>(frames) * 1e9 / static_cast<double>(last_frame_ns - prev_last_ns_);
  } else if (frames > 0 && now_ns > window_start_ns) {
    rate = static_cast<double>(frames) * 1e9 / static_cast<double>(now_ns - window_start_ns);
  }
  prev_frames_ = delivered_frames;
  if (frames > 0) prev_last_ns_ = last_frame_ns;
  return rate;
}

void AddFlags(FlagSet* flags, LoadgenOptions* o) {
  flags->Int("cameras", &o->cameras, "number of simulated cameras, served as cam00, cam01, ...");
  flags->Int("fps", &o->fps, "frames per second of every camera");
  flags->String("resolution", &o->resolution, "frame size WxH (even numbers), e.g. 1280x720");
  flags->String("host", &o->host, "address the RTSP server listens on (0.0.0.0 for all)");
  flags->Int("port", &o->port, "RTSP port (0 = any free port; see the port file's rtsp_port)");
  flags->Double("loop-seconds", &o->loop_seconds,
                "length of each camera's pre-encoded loop; longer costs more startup and memory");
  flags->String("images-dir", &o->images_dir,
                "folder of .jpg/.png photographs for backgrounds and objects (if the default is "
                "missing, backgrounds are generated)");
  flags->Double("report-interval", &o->report_interval,
                "seconds between the per-camera 'camera=camNN FPS: X' log lines");
}

Status FinishOptions(const FlagSet& flags, LoadgenOptions* o) {
  if (o->cameras < 1 || o->cameras > 256) return Err("--cameras must be between 1 and 256");
  if (o->fps < 1 || o->fps > 120) return Err("--fps must be between 1 and 120");
  RETURN_IF_ERROR(ParseResolution(o->resolution, &o->width, &o->height).Annotate("--resolution"));
  if (o->port < 0 || o->port > 65535) return Err("--port must be between 0 and 65535");
  if (!(o->loop_seconds > 0) || o->loop_seconds > 120) {
    return Err("--loop-seconds must be in (0, 120]");
  }
  if (!(o->report_interval >= 0.1) || o->report_interval > 3600) {
    return Err("--report-interval must be between 0.1 and 3600 seconds");
  }
  if (o->host.empty()) return Err("--host must not be empty");
  o->images_dir_explicit = flags.WasSet("images-dir");
  return Status::Ok();
}

Status Run(const LoadgenOptions& options, ServiceRuntime* runtime) {
  // 1. Everything that can fail fast, before the (seconds-long) encode.
  ImageLibrary library;
  if (auto loaded = LoadImageLibrary(options.images_dir); loaded.ok()) {
    library = std::move(loaded).value();
    LOG(INFO) << "loaded " << library.images.size() << " photographs from " << options.images_dir;
  } else if (options.images_dir_explicit) {
    return loaded.status().Annotate("--images-dir");
  } else {
    LOG(WARNING) << loaded.status().message() << "; using generated backgrounds instead";
  }
  RETURN_IF_ERROR(CheckRtspPortFree(options.host, options.port));

  // 2. /metrics and /health come up now; health stays 503 until the loops are encoded and the
  // RTSP server listens.
  // Shared with the health handler, which may run on an HTTP thread until the runtime stops.
  auto health = std::make_shared<HealthState>();
  health->detail["state"] = "encoding";
  RETURN_IF_ERROR(runtime->Start([health] {
    std::lock_guard<std::mutex> lock(health->mu);
    return HealthReport{health->ready, health->detail};
  }));

  const Labels service_label{{"service", kService}};
  Gauge* encode_seconds = Metrics().GetGauge(
      "framescope_loadgen_encode_seconds",
      "Wall time the loadgen spent rendering and encoding all camera loops at startup",
      service_label);
  Gauge* service_fps = Metrics().GetGauge(
      "framescope_service_fps", "Frames per second the service delivered, summed over cameras",
      service_label);
  std::vector<CameraMetrics> metrics(static_cast<size_t>(options.cameras));
  for (int i = 0; i < options.cameras; ++i) {
    const Labels labels{{"service", kService}, {"camera", CameraName(i)}};
    CameraMetrics& m = metrics[static_cast<size_t>(i)];
    m.frames_out = Metrics().GetCounter("framescope_frames_out_total",
                                        "Frames delivered toward RTSP clients", labels);
    m.fps = Metrics().GetGauge("framescope_camera_fps",
                               "Frames per second delivered to clients over the last report "
                               "interval (0 with no client)",
                               labels);
    m.clients = Metrics().GetGauge("framescope_rtsp_clients",
                                   "RTSP clients currently playing the camera", labels);
  }

  // 3. Encode every loop once.
  const int64_t encode_start = MonotonicNs();
  auto encoded = EncodeAllLoops(options, library);
  if (!encoded.ok() && ServiceRuntime::StopRequested()) {
    LOG(INFO) << "stopped during startup encode";
    return Status::Ok();
  }
  if (!encoded.ok()) return encoded.status();
  std::vector<RtspCamera> cameras = std::move(encoded).value();
  const double encode_s = static_cast<double>(MonotonicNs() - encode_start) / 1e9;
  encode_seconds->Set(encode_s);
  size_t total_bytes = 0;
  for (const RtspCamera& cam : cameras) total_bytes += cam.loop.TotalBytes();
  const size_t loop_frames = cameras.front().loop.units.size();
  char summary[160];
  std::snprintf(summary, sizeof(summary),
                "encoded %d loops of %zu frames (%dx%d @ %d FPS) in %.2f s; %.1f KiB, %.0f kbit/s "
                "per camera",
                options.cameras, loop_frames, options.width, options.height, options.fps, encode_s,
                static_cast<double>(total_bytes) / 1024.0,
                static_cast<double>(total_bytes) * 8 * options.fps /
                    static_cast<double>(loop_frames * cameras.size()) / 1000.0);
  LOG(INFO) << summary;

  // 4. Serve.
  RtspServerOptions server_options;
  server_options.host = options.host;
  server_options.port = options.port;
  server_options.fps = options.fps;
  server_options.width = options.width;
  server_options.height = options.height;
  ASSIGN_OR_RETURN(std::unique_ptr<RtspServer> server,
                   RtspServer::Start(server_options, std::move(cameras)));
  const std::string url = "rtsp://" + options.host + ":" + std::to_string(server->port());
  runtime->SetEndpoint("rtsp", url);
  runtime->SetEndpoint("rtsp_port", std::to_string(server->port()));
  LOG(INFO) << "serving " << options.cameras << " cameras at " << url << "/" << CameraName(0)
            << (options.cameras > 1 ? " .. " + url + "/" + CameraName(options.cameras - 1) : "");
  {
    std::lock_guard<std::mutex> lock(health->mu);
    health->detail["state"] = "serving";
    health->detail["rtsp"] = url;
    health->detail["cameras"] = options.cameras;
    health->detail["encode_seconds"] = encode_s;
    health->ready = true;
  }

  // 5. Poll delivery a few times per interval; report once per interval.
  const int64_t interval_ns = static_cast<int64_t>(options.report_interval * 1e9);
  const int poll_ms = static_cast<int>(std::clamp<int64_t>(interval_ns / 4000000, 50, 250));
  std::vector<DeliveredRate> rates(metrics.size(), DeliveredRate(options.fps));
  std::vector<RtspServer::Delivery> latest(metrics.size());
  int64_t window_start = MonotonicNs();
  while (!ServiceRuntime::SleepOrStop(poll_ms)) {
    for (size_t i = 0; i < metrics.size(); ++i) {
      latest[i] = server->Poll(i);
      metrics[i].frames_out->Inc(
          static_cast<double>(latest[i].delivered_frames - metrics[i].delivered_seen));
      metrics[i].delivered_seen = latest[i].delivered_frames;
      metrics[i].clients->Set(latest[i].clients);
    }
    const int64_t now = MonotonicNs();
    if (now - window_start < interval_ns) continue;
    double sum = 0;
    Json per_camera = Json::MakeObject();
    for (size_t i = 0; i < metrics.size(); ++i) {
      const double fps = rates[i].CloseWindow(latest[i].delivered_frames, latest[i].last_frame_ns,
                                              window_start, now);
      metrics[i].fps->Set(fps);
      sum += fps;
      LOG(INFO) << FpsLine(server->camera_name(i), fps);
      Json cam = Json::MakeObject();
      cam["fps"] = std::round(fps * 10) / 10;
      cam["clients"] = latest[i].clients;
      per_camera[server->camera_name(i)] = cam;
    }
    service_fps->Set(sum);
    {
      std::lock_guard<std::mutex> lock(health->mu);
      health->detail["camera"] = per_camera;
    }
    window_start = now;
  }

  LOG(INFO) << "stopping";
  {
    std::lock_guard<std::mutex> lock(health->mu);
    health->ready = false;
    health->detail["state"] = "stopping";
  }
  const int64_t stop_start = MonotonicNs();
  server->Stop();
  LOG(INFO) << "stopped in " << (MonotonicNs() - stop_start) / 1000000 << " ms";
  return Status::Ok();
}

}  // namespace fs::loadgen
