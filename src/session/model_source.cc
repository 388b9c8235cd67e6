#include "src/session/model_source.h"

#include <dirent.h>
#include <signal.h>

#include <atomic>
#include <cstdio>

#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/system/state.h"

namespace fs {
namespace {

// The weights file the detection service synthesised into the state dir's cache
// ("<stem>-synth-<seed>.weights"), or "" when there is none.
std::string SynthesizedWeights(const StateDir& dir, const std::string& cfg) {
  const std::string prefix = FileStem(cfg) + "-synth-";
  std::string found;
  if (DIR* d = opendir(dir.CacheDir().c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind(prefix, 0) == 0 && name.size() > 8 &&
          name.compare(name.size() - 8, 8, ".weights") == 0) {
        found = dir.CacheDir() + "/" + name;
      }
    }
    closedir(d);
  }
  return found;
}

Status ApplyInputSize(const std::string& text, model::ModelSpec* spec) {
  if (text.empty()) return Status::Ok();
  if (text.find('x') != std::string::npos) {
    Status st = ParseResolution(text, &spec->input_width, &spec->input_height);
    if (!st.ok()) return Err("--input-size: " + st.message());
    return Status::Ok();
  }
  char* end = nullptr;
  long n = std::strtol(text.c_str(), &end, 10);
  if (*end != '\0' || n <= 0 || n > 8192) {
    return Err("--input-size: expected N or WxH (pixels), got \"" + text + "\"");
  }
  spec->input_width = spec->input_height = static_cast<int>(n);
  return Status::Ok();
}

// The running system's detection: its model, weights, input size and pid.
bool FromRunningSystem(const StateDir& dir, ModelSource* out) {
  auto state = ReadState(dir);
  if (!state.ok() || !SupervisorRunning(*state)) return false;
  auto config = ConfigFromJson(state->Get("config"));
  if (!config.ok()) return false;
  out->spec.model_path = config->model;
  out->spec.input_width = out->spec.input_height = config->input_size;
  out->max_batch = config->max_batch;
  out->fps = config->fps;
  out->cameras = CameraCount(*config);
  out->origin = "detection's model (running system in " + dir.root + ")";
  if (!config->weights.empty()) {
    out->spec.weights_path = config->weights;
    out->weights_note = "the system's weights (" + config->weights + ")";
  } else {
    out->spec.weights_path = SynthesizedWeights(dir, config->model);
    out->weights_note = out->spec.weights_path.empty()
                            ? "zero-filled (detection's synthesised file was not found)"
                            : "detection's synthesised weights (" + out->spec.weights_path + ")";
  }
  if (const Json* detection = RunningService(*state, "detection")) {
    out->detection_pid = static_cast<pid_t>(detection->Get("pid").AsInt(0));
  }
  return true;
}

}  // namespace

const Json* RunningService(const Json& state, const std::string& name) {
  for (const Json& s : state.Get("services").AsArray()) {
    if (s.Get("name").AsString() == name && s.Get("state").AsString() == "running") return &s;
  }
  return nullptr;
}

int CameraCount(const SystemConfig& config) {
  return config.real_cameras.empty() ? config.cameras
                                     : static_cast<int>(config.real_cameras.size());
}

std::string FileStem(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  return base.substr(0, base.find_last_of('.'));
}

StatusOr<ModelSource> ResolveModelSource(const ModelFlags& f) {
  if (f.threads < 0) return Err("--threads: must be 0 (OpenCV's default) or more");
  if (!f.cfg.empty() && !f.model.empty()) return Err("give --cfg or --model, not both");
  const std::string& model = f.cfg.empty() ? f.model : f.cfg;
  if (!f.weights.empty() && model.empty()) {
    return Err("--weights needs --model (the system's weights come from its state dir)");
  }
  ModelSource out;
  if (!model.empty()) {
    out.spec.model_path = model;
    out.spec.weights_path = f.weights;
    out.origin = "--model";
    out.weights_note = f.weights.empty() ? "zero-filled (no --weights)" : f.weights;
  } else {
    ASSIGN_OR_RETURN(StateDir dir, ResolveStateDir(f.state_dir));
    if (!FromRunningSystem(dir, &out)) {
      out.spec.model_path = SystemConfig{}.model;
      out.origin = "the default model (no running system in " + dir.root + ")";
      out.weights_note = "zero-filled (no running system)";
    }
  }
  if (!f.input_size.empty()) out.spec.input_width = out.spec.input_height = 0;
  RETURN_IF_ERROR(ApplyInputSize(f.input_size, &out.spec));
  out.spec.threads = f.threads;
  return out;
}

namespace {
std::atomic<pid_t> g_paused_pid{0};  // what ResumePausedDetection resumes
}  // namespace

void ResumePausedDetection() {
  if (pid_t pid = g_paused_pid.load(); pid > 0) kill(pid, SIGCONT);
}

DetectionPause::DetectionPause(pid_t pid) : pid_(pid) {
  if (pid_ > 0 && kill(pid_, SIGSTOP) == 0) {
    paused_ = true;
    g_paused_pid = pid_;
    fprintf(stderr,
            "detection (pid %d) paused while the model is measured (if this command is killed, "
            "resume it with: kill -CONT %d)\n",
            pid_, pid_);
  }
}

DetectionPause::~DetectionPause() {
  if (!paused_) return;
  g_paused_pid = 0;
  kill(pid_, SIGCONT);
}

}  // namespace fs
