#include "services/capture/capture_options.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <set>

namespace fs {

void CaptureFlags::Register(FlagSet* flags) {
  flags->String("cameras", &cameras, "comma-separated RTSP URLs, one per camera (required)");
  flags->String("camera-names", &camera_names,
                "comma-separated camera names, one per URL (default cam00, cam01, ...)");
  flags->String("ring-dir", &ring_dir, "directory for the shared-memory frame rings");
  flags->String("ring-prefix", &ring_prefix,
                "ring file name prefix: <ring-dir>/<prefix>-<camera>.ring");
  flags->Int("width", &width, "width of the frames published for detection");
  flags->Int("height", &height, "height of the frames published for detection");
  flags->Int("slots", &slots, "frames each ring holds (>= 2)");
  flags->String("transport", &transport, "RTSP media transport: tcp or udp");
  flags->Int("connect-timeout-ms", &connect_timeout_ms,
             "give up connecting, or on a silent stream, after this long");
  flags->Int("max-backoff-ms", &max_backoff_ms, "longest wait between reconnect attempts");
}

namespace {

// Names end up in file names and Prometheus labels: keep them boring.
bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

}  // namespace

StatusOr<CaptureOptions> CaptureFlags::Resolve() const {
  CaptureOptions opts;
  std::vector<std::string> urls = SplitList(cameras);
  if (urls.empty()) {
    return Err(
        "--cameras is required: give one or more RTSP URLs separated by commas, e.g. "
        "--cameras rtsp://127.0.0.1:8554/cam00,rtsp://127.0.0.1:8554/cam01");
  }
  std::vector<std::string> names = SplitList(camera_names);
  if (!names.empty() && names.size() != urls.size()) {
    return Err("--camera-names has " + std::to_string(names.size()) + " names for " +
               std::to_string(urls.size()) + " --cameras URLs: give one name per URL");
  }
  for (const std::string& url : urls) {
    if (url.rfind("rtsp://", 0) != 0 && url.rfind("rtsps://", 0) != 0) {
      return Err("--cameras: \"" + RedactUrl(url) + "\" is not an rtsp:// URL");
    }
  }
  if (width < 16 || height < 16 || width > 7680 || height > 4320) {
    return Err("--width/--height " + std::to_string(width) + "x" + std::to_string(height) +
               " is outside 16x16 .. 7680x4320");
  }
  if (slots < 2 || slots > 4096) return Err("--slots must be between 2 and 4096");
  if (transport == "tcp") {
    opts.transport = RtspTransport::kTcp;
  } else if (transport == "udp") {
    opts.transport = RtspTransport::kUdp;
  } else {
    return Err("--transport \"" + transport + "\": expected tcp or udp");
  }
  if (connect_timeout_ms < 100) return Err("--connect-timeout-ms must be at least 100");
  if (max_backoff_ms < 1) return Err("--max-backoff-ms must be positive");
  if (ring_dir.empty()) return Err("--ring-dir must not be empty");
  if (!ValidName(ring_prefix)) {
    return Err("--ring-prefix \"" + ring_prefix + "\": use letters, digits, '_', '-', '.'");
  }

  std::set<std::string> seen;
  for (size_t i = 0; i < urls.size(); ++i) {
    CaptureCamera cam;
    cam.index = static_cast<int>(i);
    if (names.empty()) {
      cam.name = CameraName(static_cast<int>(i));
    } else {
      cam.name = names[i];
    }
    if (!ValidName(cam.name)) {
      return Err("--camera-names: \"" + cam.name + "\": use letters, digits, '_', '-', '.'");
    }
    if (!seen.insert(cam.name).second) {
      return Err("--camera-names: \"" + cam.name + "\" appears twice");
    }
    cam.url = urls[i];
    cam.ring_path = ring_dir + "/" + ring_prefix + "-" + cam.name + ".ring";
    opts.cameras.push_back(std::move(cam));
  }
  opts.width = width;
  opts.height = height;
  opts.slots = slots;
  opts.connect_timeout_ms = connect_timeout_ms;
  opts.max_backoff_ms = max_backoff_ms;
  opts.initial_backoff_ms = std::min(opts.initial_backoff_ms, max_backoff_ms);
  return opts;
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    start = end + 1;
  }
  return out;
}

int Backoff::NextDelayMs() {
  next_ms_ = next_ms_ == 0 ? std::min(initial_ms_, max_ms_)
                           : static_cast<int>(std::min<int64_t>(max_ms_, int64_t{next_ms_} * 2));
  return next_ms_;
}

}  // namespace fs
