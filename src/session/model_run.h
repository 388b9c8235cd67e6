// The per-layer model profile as one step, shared by `framescope model` and `framescope
// profile`: resolve the model (the running system's detection model by default), pause
// detection, profile the layers, and build the report's JSON and Chrome trace.
#ifndef FRAMESCOPE_SESSION_MODEL_RUN_H_
#define FRAMESCOPE_SESSION_MODEL_RUN_H_

#include <functional>
#include <string>

#include "src/base/json.h"
#include "src/model/layer_profile.h"
#include "src/session/model_source.h"

namespace fs {

struct ModelRunOptions {
  int batch = 0;                      // 0: the system's detection.max_batch (1 for --model)
  model::LayerProfileOptions layers;  // its batch is set from `batch`
  // The machine's FMA/GEMM/triad peak (about a second, detection paused too), so each layer is
  // placed on the roofline.
  bool measure_peak = true;
};

struct ModelRun {
  std::string name;  // "yolo" for YOLO models: files models/<name>_profile.json, _trace.json
  Json profile;      // LayerProfileJson, or {"error": why} when it could not be taken
  Json trace;        // ChromeTrace; null without a profile
  bool interrupted = false;
  bool bad_model = false;  // the model could not be loaded (a usage error for a CLI)
  bool ok() const { return !profile.Has("error"); }
  // A profile that could not be taken, and why (the reports say so instead of a table).
  static ModelRun Error(const std::string& name, const std::string& why);
};

// "yolov3-tiny.cfg" -> "yolo" (the checklist's file name), else the sanitised file stem.
std::string ModelReportName(const std::string& model_path);
std::string ModelProfilePath(const std::string& name);  // "models/<name>_profile.json"
std::string ModelTracePath(const std::string& name);    // "models/<name>_trace.json"

// Loads `source`'s model and profiles it with detection paused (when it runs); progress lines
// go to `message`.
ModelRun RunModelProfile(const ModelSource& source, const ModelRunOptions& options,
                         const std::function<void(const std::string&)>& message);

}  // namespace fs

#endif  // FRAMESCOPE_SESSION_MODEL_RUN_H_
