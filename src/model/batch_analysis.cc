#include "src/model/batch_analysis.h"

#include <cmath>
#include <optional>

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

namespace {

std::optional<double> OptDouble(const Json& j) {
  return j.is_number() ? std::optional<double>(j.AsDouble()) : std::nullopt;
}
std::optional<int> OptInt(const Json& j) {
  return j.is_number() ? std::optional<int>(static_cast<int>(j.AsInt())) : std::nullopt;
}
double Bound(const Json& j) { return j.is_string() ? INFINITY : j.AsDouble(); }

BatchResult ResultFromJson(const Json& b) {
  BatchResult r;
  r.batch = static_cast<int>(b.Get("batch").AsInt());
  r.throughput_ips = b.Get("throughput_images_per_s").AsDouble();
  r.p50_ms = b.Get("latency_p50_ms").AsDouble();
  r.p99_ms = b.Get("latency_p99_ms").AsDouble();
  r.forwards = static_cast<int>(b.Get("forwards").AsInt());
  r.stable = b.Get("stable").AsBool();
  r.unstable_reason = b.Get("unstable_reason").AsString();
  for (const Json& w : b.Get("window_series").AsArray()) {
    r.windows.push_back({static_cast<int>(w.Get("forwards").AsInt()), w.Get("seconds").AsDouble(),
                         w.Get("throughput_images_per_s").AsDouble(),
                         w.Get("latency_p50_ms").AsDouble(), w.Get("latency_p99_ms").AsDouble()});
  }
  return r;
}

BatchChoice ChoiceFromJson(const Json& c) {
  BatchChoice out;
  out.budget = {c.Get("latency_budget_ms").AsDouble(), c.Get("latency_budget_rule").AsString()};
  out.best_batch = OptInt(c.Get("best_batch"));
  out.gain = OptDouble(c.Get("gain_over_batch_1"));
  out.best_unconstrained_batch = static_cast<int>(c.Get("best_batch_ignoring_budget").AsInt(0));
  out.unconstrained_gain = OptDouble(c.Get("gain_ignoring_budget"));
  out.verdict = c.Get("verdict").AsString();
  out.reason = c.Get("reason").AsString();
  return out;
}

BucketQuantile QuantileFromJson(const Json& q) {
  BucketQuantile out;
  out.value = OptDouble(q.Get("value"));
  if (q.Get("bucket_ms").size() == 2) {
    out.bucket_lo = Bound(q.Get("bucket_ms").AsArray()[0]);
    out.bucket_hi = Bound(q.Get("bucket_ms").AsArray()[1]);
  }
  return out;
}

LiveBatchView LiveFromJson(const Json& l) {
  if (!l.Get("measured").AsBool()) return LiveNotMeasurable(l.Get("reason").AsString());
  LiveBatchView v;
  v.measured = true;
  v.window_s = l.Get("window_s").AsDouble();
  v.batches = l.Get("batches").AsDouble();
  v.mean_batch = OptDouble(l.Get("mean_batch_size"));
  for (const Json& b : l.Get("batch_size_distribution").AsArray()) {
    v.batch_sizes.push_back(
        {b.Get("above").AsDouble(), Bound(b.Get("up_to")), b.Get("batches").AsDouble()});
  }
  const Json& qw = l.Get("queue_wait");
  v.queue_wait_count = qw.Get("count").AsDouble();
  v.queue_wait_p50_ms = QuantileFromJson(qw.Get("p50_ms"));
  v.queue_wait_p99_ms = QuantileFromJson(qw.Get("p99_ms"));
  v.frames_in = l.Get("frames_in").AsDouble();
  v.frames_skipped = l.Get("frames_skipped").AsDouble();
  v.skip_share = OptDouble(l.Get("skip_share"));
  v.offered_fps = l.Get("offered_fps").AsDouble();
  v.context.max_batch = static_cast<int>(l.Get("current_max_batch").AsInt(0));
  v.context.max_wait_ms = static_cast<int>(l.Get("current_max_wait_ms").AsInt(-1));
  v.recommended_max_batch = OptInt(l.Get("recommended_max_batch"));
  v.recommended_max_wait_ms = OptInt(l.Get("recommended_max_wait_ms"));
  v.recommendation = l.Get("recommendation").AsString();
  return v;
}

}  // namespace

StatusOr<BatchAnalysis> BatchAnalysisFromJson(const Json& j) {
  for (const char* key : {"model", "offline", "best", "live"}) {
    if (!j.Get(key).is_object())
      return Err(std::string("batch analysis: no \"") + key + "\" object");
  }
  if (!j.Get("offline").Get("batches").is_array()) return Err("batch analysis: no offline.batches");
  BatchAnalysis a;
  const Json& m = j.Get("model");
  a.model_path = m.Get("path").AsString();
  a.model_origin = m.Get("origin").AsString();
  a.weights_note = m.Get("weights").AsString();
  a.input_width = static_cast<int>(m.Get("input_width").AsInt());
  a.input_height = static_cast<int>(m.Get("input_height").AsInt());
  a.threads = static_cast<int>(m.Get("threads").AsInt());
  a.detection_paused = j.Get("detection_paused_during_sweep").AsBool();
  a.interrupted = j.Get("interrupted").AsBool();
  const Json& o = j.Get("offline").Get("options");
  a.options.warmup_forwards = static_cast<int>(o.Get("warmup_forwards").AsInt(2));
  a.options.min_window_forwards = static_cast<int>(o.Get("min_window_forwards").AsInt(3));
  a.options.window_seconds = o.Get("window_seconds").AsDouble(1);
  a.options.max_windows = static_cast<int>(o.Get("max_windows").AsInt(10));
  a.options.max_seconds_per_batch = o.Get("max_seconds_per_batch").AsDouble(60);
  a.options.batches.clear();
  for (const Json& b : j.Get("offline").Get("batches").AsArray()) {
    a.results.push_back(ResultFromJson(b));
    a.options.batches.push_back(a.results.back().batch);
  }
  a.choice = ChoiceFromJson(j.Get("best"));
  a.live = LiveFromJson(j.Get("live"));
  return a;
}

}  // namespace fs::model
