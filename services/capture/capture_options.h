// Configuration of the capture service: its flags, their validation, and the small pure
// helpers (reconnect backoff, URL redaction) that the tests exercise without a camera.
#ifndef FRAMESCOPE_SERVICES_CAPTURE_CAPTURE_OPTIONS_H_
#define FRAMESCOPE_SERVICES_CAPTURE_CAPTURE_OPTIONS_H_

#include <string>
#include <vector>

#include "src/base/flags.h"
#include "src/base/status.h"
#include "src/config/config.h"  // RedactUrl, CameraName

namespace fs {

enum class RtspTransport { kTcp, kUdp };

struct CaptureCamera {
  int index = 0;          // position in --cameras; written into the ring header
  std::string name;       // "cam00" unless --camera-names says otherwise
  std::string url;        // as given (may carry credentials: log RedactUrl(url) instead)
  std::string ring_path;  // <ring-dir>/<ring-prefix>-<name>.ring
};

struct CaptureOptions {
  std::vector<CaptureCamera> cameras;
  int width = 416;  // detection input size: every frame is scaled to this, BGR24
  int height = 416;
  int slots = 8;
  RtspTransport transport = RtspTransport::kTcp;
  int connect_timeout_ms = 5000;  // also the longest a connected stream may stay silent
  int initial_backoff_ms = 250;
  int max_backoff_ms = 10000;
};

// The raw flag values; Resolve() validates them into CaptureOptions.
struct CaptureFlags {
  std::string cameras;
  std::string camera_names;
  std::string ring_dir = "/dev/shm";
  std::string ring_prefix = "framescope";
  int width = 416;
  int height = 416;
  int slots = 8;
  std::string transport = "tcp";
  int connect_timeout_ms = 5000;
  int max_backoff_ms = 10000;

  void Register(FlagSet* flags);
  // Errors name the flag and say what is accepted.
  StatusOr<CaptureOptions> Resolve() const;
};

// Splits "a,b,,c" into {"a","b","c"} (blank entries and surrounding spaces dropped).
std::vector<std::string> SplitList(const std::string& text);

// Exponential reconnect backoff: initial, 2x, 4x, ... capped at max. Reset() after a
// connection that delivered frames, so a camera that blips reconnects quickly.
class Backoff {
 public:
  Backoff(int initial_ms, int max_ms) : initial_ms_(initial_ms), max_ms_(max_ms) {}
  int NextDelayMs();
  void Reset() { next_ms_ = 0; }

 private:
  int initial_ms_;
  int max_ms_;
  int next_ms_ = 0;
};

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_CAPTURE_CAPTURE_OPTIONS_H_
