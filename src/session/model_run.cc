#include "src/session/model_run.h"

#include <cctype>

namespace fs {

ModelRun ModelRun::Error(const std::string& name, const std::string& why) {
  ModelRun run;
  run.name = name;
  run.profile = Json::MakeObject();
  run.profile["error"] = why;
  return run;
}

std::string ModelReportName(const std::string& model_path) {
  const std::string base = FileStem(model_path);
  if (base.find("yolo") != std::string::npos) return "yolo";
  std::string safe;
  for (char c : base) safe += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return safe.empty() ? "model" : safe;
}

std::string ModelProfilePath(const std::string& name) { return "models/" + name + "_profile.json"; }
std::string ModelTracePath(const std::string& name) { return "models/" + name + "_trace.json"; }

ModelRun RunModelProfile(const ModelSource& source, const ModelRunOptions& options,
                         const std::function<void(const std::string&)>& message) {
  ModelRun run;
  run.name = ModelReportName(source.spec.model_path);
  auto net = model::ModelNet::Load(source.spec);
  if (!net.ok()) {
    ModelRun failed = ModelRun::Error(
        run.name, "cannot load " + source.spec.model_path + ": " + net.status().message());
    failed.bad_model = true;
    return failed;
  }
  model::LayerProfileOptions o = options.layers;
  o.batch = options.batch > 0 ? options.batch : source.max_batch;
  model::ProfileContext context{source.origin, source.weights_note, o.batch, net->threads(), false};
  StatusOr<model::LayerProfile> profile = Err("not run");
  StatusOr<model::MachinePeak> peak = Err("not requested (--no-peak)");
  {
    DetectionPause pause(source.detection_pid);
    context.detection_paused = pause.paused();
    message(source.spec.model_path + ", input " + std::to_string(net->input_width()) + "x" +
            std::to_string(net->input_height()) + ", batch " + std::to_string(o.batch) + ", " +
            std::to_string(context.threads) + " threads" +
            (pause.paused() ? ", detection paused" : ""));
    profile = model::ProfileLayers(&*net, o);
    // After the layers, not before: on this VM the forwards that followed the peak kernels ran
    // 20-27 % faster than the same forwards alone (model_benchmark), which the profile would
    // then report as the model's speed.
    if (options.measure_peak && profile.ok() && !profile->interrupted) {
      message("measuring the machine's peak (FMA, GEMM, triad)");
      peak = model::MeasureMachinePeak();
    }
  }
  if (!profile.ok()) {
    ModelRun failed = ModelRun::Error(run.name, profile.status().message());
    failed.interrupted = o.stop && o.stop->load();
    return failed;
  }
  run.interrupted = profile->interrupted || (o.stop && o.stop->load());
  run.profile = model::LayerProfileJson(*profile, *net, context, peak);
  run.trace = model::ChromeTrace(*profile, run.name);
  return run;
}

}  // namespace fs
