#include "services/detection/detection_service.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "src/base/clock.h"
#include "src/base/logging.h"

namespace fs {
namespace {

// "<dir>/<prefix>-cam03.ring" -> "cam03"
std::string CameraNameFromPath(const std::string& path) {
  std::string base = path.substr(path.rfind('/') + 1);
  if (base.size() > 5 && base.substr(base.size() - 5) == ".ring") base.resize(base.size() - 5);
  auto dash = base.rfind('-');
  return dash == std::string::npos ? base : base.substr(dash + 1);
}

std::string FormatFloat(double v, const char* fmt) {
  char buf[32];
  snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

constexpr int64_t kMaxRedisBackoffNs = 5000000000LL;

}  // namespace

DetectionService::DetectionService(DetectionServiceOptions options)
    : options_(std::move(options)), policy_(options_.batching) {
  auto& m = Metrics();
  auto stage = [&m](const char* s) {
    return m.GetHistogram("framescope_stage_latency_seconds", "Per-stage latency",
                          {{"service", "detection"}, {"stage", s}}, LatencyBucketsSeconds());
  };
  queue_wait_ = stage("queue_wait");
  preprocess_ = stage("preprocess");
  inference_ = stage("inference");
  postprocess_ = stage("postprocess");
  publish_ = stage("publish");
  end_to_end_ = m.GetHistogram("framescope_end_to_end_latency_seconds",
                               "Capture timestamp to detections acknowledged by Redis",
                               {{"stage", "capture_to_published"}}, LatencyBucketsSeconds());
  batch_size_ =
      m.GetHistogram("framescope_batch_size", "Frames per inference batch", {}, BatchSizeBuckets());
  detections_ = m.GetCounter("framescope_detections_total", "Detections published",
                             {{"service", "detection"}});
  fps_ = m.GetGauge("framescope_service_fps", "Frames per second over the last 5 s",
                    {{"service", "detection"}});
  for (size_t i = 0; i < options_.ring_paths.size(); ++i) {
    const std::string& path = options_.ring_paths[i];
    auto cam = std::make_unique<Camera>();
    cam->path = path;
    cam->name =
        i < options_.camera_names.size() ? options_.camera_names[i] : CameraNameFromPath(path);
    Labels l{{"service", "detection"}, {"camera", cam->name}};
    cam->frames_in = m.GetCounter("framescope_frames_in_total", "Frames received", l);
    cam->frames_out = m.GetCounter("framescope_frames_out_total", "Frames passed on", l);
    Labels skip = l, lost = l;
    skip["reason"] = "skipped_newest_first";
    lost["reason"] = "redis_unavailable";
    cam->skipped =
        m.GetCounter("framescope_frames_dropped_total", "Frames dropped or skipped", skip);
    cam->redis_dropped =
        m.GetCounter("framescope_frames_dropped_total", "Frames dropped or skipped", lost);
    cameras_.push_back(std::move(cam));
  }
}

Status DetectionService::Init() {
  if (cameras_.empty()) return Err("no rings given (--rings)");
  ASSIGN_OR_RETURN(detector_, Detector::Load(options_.detector));
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    model_description_ = detector_->model().Describe();
    synthesized_weights_ = detector_->model().synthesized_weights;
  }
  buffers_.assign(static_cast<size_t>(options_.batching.max_batch), {});
  EnsureRedis();
  return Status::Ok();
}

bool DetectionService::EnsureRedis() {
  if (redis_) return true;
  int64_t now = MonotonicNs();
  if (now < next_redis_attempt_ns_) return false;
  auto c = RedisClient::Connect(options_.redis_url, "detection", 2000);
  std::lock_guard<std::mutex> lock(health_mu_);
  if (!c.ok()) {
    redis_error_ = c.status().message();
    redis_ok_ = false;
    next_redis_attempt_ns_ = now + redis_backoff_ns_;
    redis_backoff_ns_ = std::min(redis_backoff_ns_ * 2, kMaxRedisBackoffNs);
    LOG(WARNING) << redis_error_ << "; retrying in " << redis_backoff_ns_ / 1000000 << " ms";
    return false;
  }
  redis_.emplace(std::move(c).value());
  redis_ok_ = true;
  redis_error_.clear();
  redis_backoff_ns_ = 250000000;
  LOG(INFO) << "connected to " << options_.redis_url;
  return true;
}

void DetectionService::PollRings(int64_t now_ns) {
  for (size_t i = 0; i < cameras_.size(); ++i) {
    Camera& cam = *cameras_[i];
    if (cam.reader && cam.reader->Replaced()) {
      LOG(INFO) << cam.name << ": ring re-created by capture; reopening";
      cam.reader.reset();
      cam.open = false;
      policy_.RemoveCamera(static_cast<int>(i));
      cam.last_reported_seq = UINT64_MAX;
    }
    if (!cam.reader) {
      if (now_ns < cam.next_open_attempt_ns) continue;
      auto r = FrameRingReader::Open(cam.path);
      if (!r.ok()) {
        std::lock_guard<std::mutex> lock(health_mu_);
        if (cam.last_error != r.status().message()) LOG(WARNING) << r.status().message();
        cam.last_error = r.status().message();
        cam.next_open_attempt_ns = now_ns + 500000000;
        continue;
      }
      size_t want = static_cast<size_t>(detector_->input_width()) * detector_->input_height() * 3;
      if (r->frame_bytes() != want) {
        std::lock_guard<std::mutex> lock(health_mu_);
        cam.last_error = cam.path + ": frames are " + std::to_string(r->width()) + "x" +
                         std::to_string(r->height()) + ", the model wants " +
                         std::to_string(detector_->input_width()) + "x" +
                         std::to_string(detector_->input_height());
        LOG(ERROR) << cam.last_error;
        cam.next_open_attempt_ns = now_ns + 2000000000;
        continue;
      }
      cam.reader.emplace(std::move(r).value());
      cam.open = true;
      std::lock_guard<std::mutex> lock(health_mu_);
      cam.last_error.clear();
    }
    uint64_t ws = cam.reader->write_seq();
    if (ws == 0) continue;
    uint64_t newest = ws - 1;
    if (cam.last_reported_seq == UINT64_MAX || newest != cam.last_reported_seq) {
      cam.last_reported_seq = newest;
      policy_.OnFrame(static_cast<int>(i), newest, now_ns);
    }
  }
}

void DetectionService::ProcessBatch(const std::vector<BatchingPolicy::Frame>& frames) {
  std::vector<FrameInput> inputs;
  std::vector<FrameMeta> metas;
  std::vector<Camera*> owners;
  int64_t read_ns = WallNs();
  for (const auto& f : frames) {
    Camera& cam = *cameras_[static_cast<size_t>(f.camera)];
    if (!cam.reader) continue;
    auto& buf = buffers_[inputs.size()];
    buf.resize(cam.reader->frame_bytes());
    FrameMeta meta;
    uint64_t skipped = 0;
    if (!cam.reader->ReadLatest(buf.data(), &meta, &skipped)) continue;  // torn or gone
    cam.frames_in->Inc();
    if (skipped > 0) cam.skipped->Inc(static_cast<double>(skipped));
    queue_wait_->Observe(static_cast<double>(read_ns - meta.capture_ts_ns) / 1e9);
    inputs.push_back(
        {buf.data(), 0, static_cast<int>(meta.source_width), static_cast<int>(meta.source_height)});
    metas.push_back(meta);
    owners.push_back(&cam);
  }
  if (inputs.empty()) return;
  batch_size_->Observe(static_cast<double>(inputs.size()));
  auto result = detector_->Infer(inputs);
  if (!result.ok()) {
    LOG(ERROR) << "inference failed: " << result.status().message();
    return;
  }
  preprocess_->Observe(result->timing.preprocess_s);
  inference_->Observe(result->timing.forward_s);
  postprocess_->Observe(result->timing.postprocess_s);

  // Publish: one XADD per detection, all in one pipelined round trip.
  int64_t publish_start = MonotonicNs();
  size_t commands = 0;
  if (EnsureRedis()) {
    for (size_t k = 0; k < inputs.size(); ++k) {
      const auto& dets = result->detections[k];
      for (size_t d = 0; d < dets.size(); ++d) {
        const Detection& det = dets[d];
        redis_->Append({"XADD",
                        options_.stream,
                        "MAXLEN",
                        "~",
                        std::to_string(options_.stream_maxlen),
                        "*",
                        "camera",
                        owners[k]->name,
                        "seq",
                        std::to_string(metas[k].seq),
                        "capture_ts_ns",
                        std::to_string(metas[k].capture_ts_ns),
                        "idx",
                        std::to_string(d),
                        "class",
                        det.class_name,
                        "class_id",
                        std::to_string(det.class_id),
                        "score",
                        FormatFloat(det.score, "%.4f"),
                        "x",
                        FormatFloat(det.x, "%.1f"),
                        "y",
                        FormatFloat(det.y, "%.1f"),
                        "w",
                        FormatFloat(det.w, "%.1f"),
                        "h",
                        FormatFloat(det.h, "%.1f")});
        ++commands;
      }
    }
    if (commands > 0) {
      auto replies = redis_->Flush("XADD");
      if (!replies.ok()) {
        LOG(WARNING) << "publish failed: " << replies.status().message() << "; reconnecting";
        redis_.reset();
        std::lock_guard<std::mutex> lock(health_mu_);
        redis_ok_ = false;
        redis_error_ = replies.status().message();
        for (Camera* c : owners) c->redis_dropped->Inc();
        return;
      }
      // A rejected XADD (NOAUTH, WRONGTYPE, OOM, ...) is a lost detection: count the batch's
      // frames as dropped, report it in /health, log it once per batch.
      size_t rejected = 0;
      std::string first_error;
      for (const auto& r : *replies) {
        if (r.is_error() && rejected++ == 0) first_error = r.str;
      }
      if (rejected > 0) {
        LOG(WARNING) << rejected << " of " << commands << " XADDs rejected: " << first_error;
        std::lock_guard<std::mutex> lock(health_mu_);
        redis_ok_ = false;
        redis_error_ = "XADD rejected: " + first_error;
        for (Camera* c : owners) c->redis_dropped->Inc();
        return;
      }
      {
        std::lock_guard<std::mutex> lock(health_mu_);
        redis_ok_ = true;
        redis_error_.clear();
      }
      detections_->Inc(static_cast<double>(commands));
    }
  } else {
    for (Camera* c : owners) c->redis_dropped->Inc();
    return;
  }
  int64_t done_wall = WallNs();
  publish_->Observe(static_cast<double>(MonotonicNs() - publish_start) / 1e9);
  for (size_t k = 0; k < inputs.size(); ++k) {
    end_to_end_->Observe(static_cast<double>(done_wall - metas[k].capture_ts_ns) / 1e9);
    owners[k]->frames_out->Inc();
    owners[k]->rate.Add();
  }
  rate_.Add(inputs.size());
  fps_->Set(rate_.Rate());
}

void DetectionService::Run() {
  while (!ServiceRuntime::StopRequested()) {
    int64_t now = MonotonicNs();
    PollRings(now);
    auto decision = policy_.Poll(now);
    if (decision.dispatch) {
      ProcessBatch(decision.frames);
      continue;
    }
    fps_->Set(rate_.Rate());
    if (!redis_) EnsureRedis();
    // Sleep until the policy's deadline, but poll the rings at least every 2 ms.
    int64_t sleep_ns = std::min<int64_t>(2000000, decision.wait_until_ns - now);
    if (sleep_ns > 0) usleep(static_cast<useconds_t>(sleep_ns / 1000));
  }
}

HealthReport DetectionService::Health() const {
  HealthReport h;
  std::lock_guard<std::mutex> lock(health_mu_);
  h.healthy = !model_description_.empty() && redis_ok_;
  h.detail = Json::MakeObject();
  h.detail["model"] = model_description_.empty() ? "loading" : model_description_;
  h.detail["synthesized_weights"] = synthesized_weights_;
  h.detail["redis"] = redis_ok_ ? "connected" : "unreachable: " + redis_error_;
  Json cams = Json::MakeArray();
  for (const auto& c : cameras_) {
    Json o = Json::MakeObject();
    o["name"] = c->name;
    o["ring"] = c->path;
    o["open"] = c->open.load();
    if (!c->last_error.empty()) o["last_error"] = c->last_error;
    o["frames"] = c->frames_out->value();
    cams.Push(o);
    if (!c->open.load()) h.healthy = false;
  }
  h.detail["cameras"] = cams;
  return h;
}

}  // namespace fs
