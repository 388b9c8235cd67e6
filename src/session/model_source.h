// Which model `framescope model` and `framescope batch` measure, and pausing detection while
// they do. By default the running system's detection model (its config: model, weights, input
// size, max batch) from the state dir; --model (with --weights, --input-size) names any other.
#ifndef FRAMESCOPE_SESSION_MODEL_SOURCE_H_
#define FRAMESCOPE_SESSION_MODEL_SOURCE_H_

#include <sys/types.h>

#include <string>

#include "src/base/json.h"
#include "src/base/status.h"
#include "src/config/config.h"
#include "src/model/model_net.h"

namespace fs {

// What the user chose (src/cli/model_source.h turns these into flags).
struct ModelFlags {
  std::string state_dir;  // of the running system; must be set
  std::string model;
  std::string cfg;  // --cfg: the same as --model for a darknet .cfg (trtexec-style name)
  std::string weights;
  std::string input_size;  // N or WxH
  int threads = 0;
};

struct ModelSource {
  model::ModelSpec spec;
  std::string origin;        // "detection's model (state dir X)" or "--model"
  std::string weights_note;  // how the weights were chosen, for the report
  pid_t detection_pid = 0;   // the running detection service, 0 when not profiling a system
  int max_batch = 1;         // the system's detection.max_batch (1 with --model)
  double fps = 0;            // the system's camera FPS (0 with --model)
  int cameras = 0;
};

// The entry of service `name` in state.json while it runs (state "running"), else null.
const Json* RunningService(const Json& state, const std::string& name);
// The cameras a config runs: its real cameras, or the simulated ones.
int CameraCount(const SystemConfig& config);
// "/a/b/yolov3-tiny.cfg" -> "yolov3-tiny".
std::string FileStem(const std::string& path);

// --model wins; else the running system in --state-dir; else the default config's model (a
// note says so). Errors name the flag at fault (exit 2 for the caller).
StatusOr<ModelSource> ResolveModelSource(const ModelFlags& f);

// Stops the detection service (SIGSTOP) for the lifetime of this object so that model timings
// do not share the cores with it, and resumes it (SIGCONT) when destroyed. pid 0: nothing.
// Sends SIGCONT to the detection a DetectionPause holds stopped, if any; async-signal-safe, for
// a signal handler that is about to end the process (destructors will not run).
void ResumePausedDetection();

class DetectionPause {
 public:
  explicit DetectionPause(pid_t pid);
  ~DetectionPause();
  DetectionPause(const DetectionPause&) = delete;
  DetectionPause& operator=(const DetectionPause&) = delete;
  bool paused() const { return paused_; }

 private:
  pid_t pid_;
  bool paused_ = false;
};

}  // namespace fs

#endif  // FRAMESCOPE_SESSION_MODEL_SOURCE_H_
