// Preflight checks of `framescope profile` (mission 0.1/0.2): can we sample at all, and is the
// load generator delivering what it was configured for. (Whether NVML loads is
// gpu::ProbeLine, src/gpu/nvml_loader.h, beside the loader the GPU sampler uses.)
// Each check returns a line for the report; failures carry the fix.
#ifndef FRAMESCOPE_COLLECT_PREFLIGHT_H_
#define FRAMESCOPE_COLLECT_PREFLIGHT_H_

#include <sys/types.h>

#include <map>
#include <string>

#include "src/base/status.h"

namespace fs::profile {

// Attaches the cpu-clock sampler to `pid` and detaches at once. Ok: a report line (kernel frames
// or not, perf_event_paranoid). Error: the sampler's message, which names the fix.
StatusOr<std::string> CheckPerfEvents(pid_t pid);

struct CameraFps {
  double fps = 0;
  double at_s = 0;  // Epoch seconds of the log line.
};

// The last "camera=camNN FPS: X" line per camera in loadgen's log, ignoring lines older than
// `since_epoch_s` (an earlier run's) and lines without a parsable timestamp.
std::map<std::string, CameraFps> ParseLoadgenFps(const std::string& log, double since_epoch_s);

// "2026-11-24T19:25:09.846Z" -> epoch seconds; false if malformed.
bool ParseLogTimestamp(const std::string& text, double* epoch_s);

}  // namespace fs::profile

#endif  // FRAMESCOPE_COLLECT_PREFLIGHT_H_
