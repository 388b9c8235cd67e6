// The per-layer profile of a model (trtexec --dumpProfile's table, plus each layer's FLOPs and
// where it sits against the machine's measured peak): warm-up, then timed forward passes until
// the median forward time settles, with OpenCV's per-layer ticks (Net::getPerfProfile) read after
// every pass.
#ifndef FRAMESCOPE_MODEL_LAYER_PROFILE_H_
#define FRAMESCOPE_MODEL_LAYER_PROFILE_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"
#include "src/model/machine_peak.h"
#include "src/model/model_net.h"

namespace fs::model {

struct LayerProfileOptions {
  int batch = 1;
  int warmup = 3;
  int min_runs = 10;
  int max_runs = 200;
  // Stop once the median forward time moved by less than this share over the last 5 runs.
  double settle = 0.01;
  double max_seconds = 30;  // timed runs stop here even if not settled
  const std::atomic<bool>* stop = nullptr;
  std::function<void(int run, double forward_s)> progress;
};

struct LayerStats {
  LayerInfo info;
  bool fused = false;      // 0 ticks in every run: OpenCV ran it inside another layer
  std::string fused_into;  // the layer it ran inside ("" when fused into several inputs)
  double median_ms = 0;
  double p90_ms = 0;
  double share = 0;          // median / sum of all layers' medians
  std::string flops_source;  // "opencv getFLOPS", "shapes: ..." or "" (no arithmetic)
};

struct LayerProfile {
  std::vector<LayerStats> layers;
  int runs = 0;
  int warmup = 0;
  bool settled = false;
  bool interrupted = false;
  double total_ms = 0;         // median over runs of the sum of layer times
  double forward_wall_ms = 0;  // median over runs of steady_clock around forward()
  double forward_p90_ms = 0;
  std::vector<double> median_run_layer_ms;  // the run whose total is the median: for the trace
};

StatusOr<LayerProfile> ProfileLayers(ModelNet* net, const LayerProfileOptions& options);

// What `source` says when OpenCV reports 0 FLOPs for a layer type that may compute and
// framescope has no formula for it: the JSON then has null FLOPs, never 0.
inline constexpr const char* kFlopsUnknown =
    "not known: OpenCV reports 0 for this layer type and framescope has no formula for it";

// The FLOPs OpenCV reports 0 for although the layer does arithmetic, from its shapes; sets
// `source` to how (empty when the layer does none, e.g. Concat or Identity; kFlopsUnknown for a
// type neither OpenCV nor framescope counts).
int64_t LayerFlops(const LayerInfo& layer, std::string* source);

// What was profiled, for the JSON.
struct ProfileContext {
  std::string origin;        // where the model came from (the running system, --model)
  std::string weights_note;  // which weights
  int batch = 1;
  int threads = 0;
  bool detection_paused = false;
};

// profiles/models/yolo_profile.json: totals with their counters, the trtexec-like per-layer
// list, and the checklist item 2.2 (more than 20 layers, under 50 ms per image). With the
// machine's measured peak, each timed layer is placed on its roofline (compute roof: the FMA
// peak for the profile's thread count; bytes: weights + inputs + outputs, fp32); without it,
// "machine_peak" is null with the reason.
Json LayerProfileJson(const LayerProfile& profile, const ModelNet& net,
                      const ProfileContext& context, const StatusOr<MachinePeak>& peak);

// Chrome trace (chrome://tracing, Perfetto) of the median run: one complete event per timed
// layer, back to back in execution order (OpenCV runs layers one after another; the gaps
// between them are not measured and are not drawn).
Json ChromeTrace(const LayerProfile& profile, const std::string& model_name);

}  // namespace fs::model

#endif  // FRAMESCOPE_MODEL_LAYER_PROFILE_H_
