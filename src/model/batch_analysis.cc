#include "src/model/batch_analysis.h"

namespace fs::model {

Json BatchAnalysisToJson(const BatchAnalysis& a) {
  Json j = Json::MakeObject();
  Json m = Json::MakeObject();
  m["path"] = a.model_path;
  m["origin"] = a.model_origin;
  m["weights"] = a.weights_note;
  m["input_width"] = a.input_width;
  m["input_height"] = a.input_height;
  m["threads"] = a.threads;
  j["model"] = m;
  j["detection_paused_during_sweep"] = a.detection_paused;
  j["interrupted"] = a.interrupted;
  Json sweep = Json::MakeObject();
  sweep["options"] = SweepOptionsJson(a.options);
  sweep["latency_method"] =
      "std::chrono::steady_clock around cv::dnn::Net::forward, one forward = one batch; p50/p99 "
      "over the forwards of the last windows (numpy-style linear interpolation)";
  sweep["throughput_method"] = "images / sum of forward seconds over the same windows";
  Json batches = Json::MakeArray();
  for (const BatchResult& r : a.results) batches.Push(BatchResultJson(r));
  sweep["batches"] = batches;
  j["offline"] = sweep;
  j["best"] = BatchChoiceJson(a.choice);
  j["live"] = LiveBatchJson(a.live);
  return j;
}

}  // namespace fs::model
