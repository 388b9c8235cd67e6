#include "src/model/layer_profile.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "src/base/stats.h"
#include "src/model/roofline.h"

namespace fs::model {
namespace {

int64_t OutputElements(const LayerInfo& l) {
  if (l.output_shape.empty()) return 0;
  return std::accumulate(l.output_shape.begin(), l.output_shape.end(), int64_t{1},
                         [](int64_t a, int b) { return a * b; });
}

// Timed runs until the median forward time settles (or a limit); per-layer seconds per run.
Status TimeRuns(ModelNet* net, const LayerProfileOptions& o, LayerProfile* out,
                std::vector<std::vector<double>>* layer_s, std::vector<double>* forward_s) {
  for (int i = 0; i < o.warmup; ++i) RETURN_IF_ERROR(net->Forward(o.batch).status());
  out->warmup = o.warmup;
  const auto start = std::chrono::steady_clock::now();
  while (static_cast<int>(forward_s->size()) < o.max_runs) {
    if (o.stop && o.stop->load()) {
      out->interrupted = true;
      break;
    }
    ASSIGN_OR_RETURN(double s, net->Forward(o.batch));
    forward_s->push_back(s);
    layer_s->push_back(net->LastLayerSeconds());
    if (o.progress) o.progress(static_cast<int>(forward_s->size()), s);
    const size_t n = forward_s->size();
    if (static_cast<int>(n) >= o.min_runs && n > 5) {
      double now = Median(*forward_s);
      double before = Median(std::vector<double>(forward_s->begin(), forward_s->end() - 5));
      if (std::abs(now - before) <= o.settle * now) {
        out->settled = true;
        break;
      }
    }
    if (std::chrono::steady_clock::now() - start > std::chrono::duration<double>(o.max_seconds)) {
      break;
    }
  }
  out->runs = static_cast<int>(forward_s->size());
  if (out->runs == 0) return Err("no forward pass was timed (interrupted before the first)");
  return Status::Ok();
}

// A fused layer ran inside the first unfused layer up its chain of single inputs.
void MarkFused(std::vector<LayerStats>* layers) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < layers->size(); ++i) index[(*layers)[i].info.name] = i;
  for (auto& l : *layers) {
    if (!l.fused) continue;
    const LayerStats* at = &l;
    while (at->fused && at->info.inputs.size() == 1 && index.count(at->info.inputs[0])) {
      at = &(*layers)[index[at->info.inputs[0]]];
    }
    if (!at->fused) l.fused_into = at->info.name;
  }
}

}  // namespace

int64_t LayerFlops(const LayerInfo& l, std::string* source) {
  if (l.flops > 0) {
    *source = "opencv getFLOPS";
    return l.flops;
  }
  static const std::map<std::string, int> kPerOutputElement = {
      {"ReLU", 1},    {"ReLU6", 1},  {"Sigmoid", 4}, {"TanH", 4},      {"Swish", 5},
      {"Mish", 6},    {"ELU", 3},    {"Power", 3},   {"BatchNorm", 2}, {"Scale", 2},
      {"Eltwise", 1}, {"Resize", 4}, {"Region", 4}};
  // Layers that only move data: no arithmetic to count.
  static const std::set<std::string> kNoArithmetic = {
      "Concat", "Permute", "Identity", "Reshape", "Flatten",        "Split",
      "Slice",  "Crop",    "Padding",  "Const",   "ShuffleChannel", "Transpose"};
  auto it = kPerOutputElement.find(l.type);
  if (it == kPerOutputElement.end()) {
    *source = kNoArithmetic.count(l.type) ? "" : kFlopsUnknown;
    return 0;
  }
  *source = "shapes: " + std::to_string(it->second) + " per output element (OpenCV reports 0)";
  return it->second * OutputElements(l);
}

StatusOr<LayerProfile> ProfileLayers(ModelNet* net, const LayerProfileOptions& o) {
  if (o.batch < 1) return Err("batch size must be at least 1");
  LayerProfile out;
  std::vector<std::vector<double>> layer_s;
  std::vector<double> forward_s;
  RETURN_IF_ERROR(TimeRuns(net, o, &out, &layer_s, &forward_s));
  ASSIGN_OR_RETURN(std::vector<LayerInfo> infos, net->Layers(o.batch));
  std::vector<double> totals;
  for (const auto& run : layer_s) totals.push_back(std::accumulate(run.begin(), run.end(), 0.0));
  double sum_of_medians = 0;
  for (size_t i = 0; i < infos.size(); ++i) {
    LayerStats l;
    l.info = infos[i];
    std::vector<double> ms;
    for (const auto& run : layer_s) ms.push_back(i < run.size() ? run[i] * 1e3 : 0);
    l.fused = std::all_of(ms.begin(), ms.end(), [](double v) { return v == 0; });
    l.median_ms = Median(ms);
    l.p90_ms = Percentile(ms, 0.9);
    l.info.flops = LayerFlops(l.info, &l.flops_source);
    sum_of_medians += l.median_ms;
    out.layers.push_back(std::move(l));
  }
  for (auto& l : out.layers) l.share = sum_of_medians > 0 ? l.median_ms / sum_of_medians : 0;
  MarkFused(&out.layers);
  out.total_ms = Median(totals) * 1e3;
  out.forward_wall_ms = Median(forward_s) * 1e3;
  out.forward_p90_ms = Percentile(forward_s, 0.9) * 1e3;
  std::vector<size_t> order(totals.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return totals[a] < totals[b]; });
  for (double s : layer_s[order[order.size() / 2]]) out.median_run_layer_ms.push_back(s * 1e3);
  return out;
}

namespace {

Json LayerJson(const LayerStats& l, size_t index) {
  Json j = Json::MakeObject();
  j["index"] = static_cast<int64_t>(index);
  j["name"] = l.info.name;
  j["type"] = l.info.type;
  j["output_shape"] = ShapeText(l.info.output_shape);
  j["fused"] = l.fused;
  j["fused_into"] = l.fused && !l.fused_into.empty() ? Json(l.fused_into) : Json();
  j["median_ms"] = l.median_ms;
  j["p90_ms"] = l.p90_ms;
  j["percent_of_total"] = l.share * 100;
  const bool unknown = l.flops_source == kFlopsUnknown;
  j["flops"] = unknown ? Json() : Json(l.info.flops);
  j["flops_source"] = l.flops_source.empty() ? Json() : Json(l.flops_source);
  j["gflops_per_s"] = !l.fused && l.median_ms > 0 && l.info.flops > 0
                          ? Json(static_cast<double>(l.info.flops) / (l.median_ms * 1e6))
                          : Json();
  j["weight_bytes"] = l.info.weight_bytes;
  j["input_bytes"] = l.info.input_bytes;
  j["output_bytes"] = l.info.blob_bytes;
  return j;
}

// Darknet counts [convolutional], [maxpool], ... as layers; OpenCV splits a convolution into
// convolution, batch norm and activation. "Layers" for the checklist are the timed ones (a
// fused batch norm or activation is part of its convolution).
int TimedLayers(const LayerProfile& p) {
  return static_cast<int>(std::count_if(p.layers.begin(), p.layers.end(),
                                        [](const LayerStats& l) { return !l.fused; }));
}

Json Checklist(const LayerProfile& p, int batch) {
  const double per_image = p.total_ms / batch;
  Json j = Json::MakeObject();
  j["item"] =
      "2.2 per-layer latency: more than 20 layers, total inference under 50 ms (per image: the "
      "total at batch " +
      std::to_string(batch) + " divided by " + std::to_string(batch) + ")";
  j["layers"] = TimedLayers(p);
  j["per_image_ms"] = per_image;
  const bool met = TimedLayers(p) > 20 && per_image < 50;
  j["verdict"] = met ? "met" : "not met";
  j["reason"] = std::to_string(TimedLayers(p)) + " timed layers; " + Fixed(per_image, 1) +
                " ms per image (sum of layer times at batch " + std::to_string(batch) + " / " +
                std::to_string(batch) + ")";
  return j;
}

}  // namespace

// One line for the reports: each peak, single thread / all cores.
std::string PeakSummary(const MachinePeak& m, const Roofs& roofs) {
  auto g = [](const Measurement& x) { return Fixed(x.best / 1e9, 0); };
  return std::string("FMA (") + IsaName(m.isa) + ") " + g(m.flops_single) + " / " + g(m.flops_all) +
         " GFLOP/s, GEMM " + g(m.gemm_single) + " / " + g(m.gemm_all) + " GFLOP/s, triad " +
         g(m.bandwidth_single) + " / " + g(m.bandwidth_all) + " GB/s (one thread / all " +
         std::to_string(m.threads) + "); roofs for " + std::to_string(roofs.threads) +
         " threads: " + Fixed(roofs.flops_per_s / 1e9, 0) + " GFLOP/s, " +
         Fixed(roofs.bytes_per_s / 1e9, 1) + " GB/s";
}

// The machine's peak and every timed layer's place on the roofline.
void AddRoofline(const LayerProfile& p, int threads, const StatusOr<MachinePeak>& peak, Json* j) {
  StatusOr<Roofs> roofs = peak.ok() ? RoofsForThreads(*peak, threads) : peak.status();
  if (!roofs.ok()) {
    (*j)["machine_peak"] = nullptr;
    (*j)["machine_peak_reason"] = "not measured: " + roofs.status().message();
    return;
  }
  Json m = peak->ToJson();
  m["summary"] = PeakSummary(*peak, *roofs);
  (*j)["machine_peak"] = m;
  (*j)["roofs"] = roofs->ToJson();
  Json layers = Json::MakeArray();
  for (size_t i = 0; i < p.layers.size(); ++i) {
    Json l = (*j)["layer_timings"].AsArray()[i];
    const LayerStats& s = p.layers[i];
    if (!s.fused && s.flops_source != kFlopsUnknown) {
      const double bytes =
          static_cast<double>(s.info.weight_bytes + s.info.input_bytes + s.info.blob_bytes);
      l["roofline"] =
          PlaceOnRoofline({static_cast<double>(s.info.flops), bytes, s.median_ms / 1e3}, *roofs)
              .ToJson();
    }
    layers.Push(std::move(l));
  }
  (*j)["layer_timings"] = layers;
}

Json LayerProfileJson(const LayerProfile& p, const ModelNet& net, const ProfileContext& c,
                      const StatusOr<MachinePeak>& peak) {
  Json j = Json::MakeObject();
  j["model"] = net.spec().model_path;
  j["format"] = net.format();
  j["origin"] = c.origin;
  j["weights"] = c.weights_note;
  j["input_width"] = net.input_width();
  j["input_height"] = net.input_height();
  j["batch_size"] = c.batch;
  j["threads"] = c.threads;
  j["detection_paused"] = c.detection_paused;
  j["warmup_runs"] = p.warmup;
  j["runs"] = p.runs;
  j["settled"] = p.settled;
  j["interrupted"] = p.interrupted;
  j["total_inference_time_ms"] = p.total_ms;
  j["per_image_ms"] = p.total_ms / c.batch;
  j["total_counter"] =
      "cv::dnn::Net::getPerfProfile: sum of the layers' ticks / cv::getTickFrequency(), median "
      "over runs";
  j["forward_wall_ms"] = p.forward_wall_ms;
  j["forward_p90_ms"] = p.forward_p90_ms;
  j["forward_counter"] =
      "std::chrono::steady_clock around cv::dnn::Net::forward(), median over runs";
  j["unattributed_ms"] = p.forward_wall_ms - p.total_ms;
  j["layer_count"] = static_cast<int64_t>(p.layers.size());
  j["timed_layer_count"] = TimedLayers(p);
  j["layer_counter"] =
      "per layer: getPerfProfile ticks (median and p90 over runs); FLOPs from "
      "Net::getFLOPS(layer) or the shapes where it gives 0; bytes from getMemoryConsumption "
      "and getLayerShapes (fp32)";
  Json layers = Json::MakeArray();
  for (size_t i = 0; i < p.layers.size(); ++i) layers.Push(LayerJson(p.layers[i], i));
  j["layer_timings"] = layers;
  AddRoofline(p, c.threads, peak, &j);
  j["checklist"] = Checklist(p, c.batch);
  return j;
}

Json ChromeTrace(const LayerProfile& p, const std::string& model_name) {
  Json events = Json::MakeArray();
  Json meta = Json::MakeObject();
  meta["name"] = "process_name";
  meta["ph"] = "M";
  meta["pid"] = 1;
  meta["args"]["name"] = model_name + " forward (median run, layers back to back)";
  events.Push(meta);
  double ts_us = 0;
  for (size_t i = 0; i < p.layers.size() && i < p.median_run_layer_ms.size(); ++i) {
    const LayerStats& l = p.layers[i];
    if (l.fused) continue;
    const double dur_us = p.median_run_layer_ms[i] * 1e3;
    Json e = Json::MakeObject();
    e["name"] = l.info.name;
    e["cat"] = l.info.type;
    e["ph"] = "X";
    e["pid"] = 1;
    e["tid"] = 1;
    e["ts"] = ts_us;
    e["dur"] = dur_us;
    e["args"]["type"] = l.info.type;
    e["args"]["output_shape"] = ShapeText(l.info.output_shape);
    e["args"]["flops"] = l.info.flops;
    events.Push(e);
    ts_us += dur_us;
  }
  Json trace = Json::MakeObject();
  trace["traceEvents"] = events;
  trace["displayTimeUnit"] = "ms";
  return trace;
}

}  // namespace fs::model
