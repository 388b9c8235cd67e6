#include "src/model/batch_live.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>

#include "src/base/stats.h"

namespace fs::model {
namespace {

constexpr const char* kBatchSize = "framescope_batch_size";
constexpr const char* kStageLatency = "framescope_stage_latency_seconds";
const std::map<std::string, std::string> kQueueWait = {{"service", "detection"},
                                                       {"stage", "queue_wait"}};
// The offline throughput a recommended batch must have over the offered frame rate.
constexpr double kHeadroom = 1.2;

bool HasLabels(const PromSample& s, const std::map<std::string, std::string>& match) {
  for (const auto& [k, v] : match) {
    auto it = s.labels.find(k);
    if (it == s.labels.end() || it->second != v) return false;
  }
  return true;
}

// le -> cumulative count of histogram `name`, summed over the matching series.
std::map<double, double> Cumulative(const std::vector<PromSample>& samples, const std::string& name,
                                    const std::map<std::string, std::string>& match) {
  std::map<double, double> out;
  for (const PromSample& s : samples) {
    auto le = s.labels.find("le");
    if (s.name != name + "_bucket" || le == s.labels.end() || !HasLabels(s, match)) continue;
    out[le->second == "+Inf" ? std::numeric_limits<double>::infinity()
                             : std::strtod(le->second.c_str(), nullptr)] += s.value;
  }
  return out;
}

// Frames per batch: the non-empty buckets, and the mean from _sum / _count.
void BatchSizes(const std::vector<PromSample>& delta, LiveBatchView* v) {
  double lo = 0, below = 0;
  for (const auto& [le, cumulative] : Cumulative(delta, kBatchSize, {})) {
    if (cumulative > below) v->batch_sizes.push_back({lo, le, cumulative - below});
    lo = le;
    below = cumulative;
  }
  v->batches = SumSamples(delta, std::string(kBatchSize) + "_count");
  if (v->batches > 0)
    v->mean_batch = SumSamples(delta, std::string(kBatchSize) + "_sum") / v->batches;
}

// Offline results a batch of at most `cap` frames can use, within the budget when `budget`.
std::vector<const BatchResult*> Candidates(const std::vector<BatchResult>& sweep, int cap,
                                           double budget_ms, bool budget) {
  std::vector<const BatchResult*> out;
  for (const BatchResult& r : sweep) {
    if (r.batch <= cap && (!budget || r.p99_ms <= budget_ms)) out.push_back(&r);
  }
  return out;
}

// The smallest candidate whose offline throughput covers the offered rate with headroom, else
// the fastest one. `why` says which.
const BatchResult* PickBatch(const std::vector<const BatchResult*>& candidates, double offered_fps,
                             const std::string& scope, std::string* why) {
  const BatchResult* fastest = nullptr;
  for (const BatchResult* r : candidates) {
    if (r->throughput_ips >= kHeadroom * offered_fps) {
      *why = "batch " + std::to_string(r->batch) + " is the smallest whose offline throughput (" +
             Fixed(r->throughput_ips, 1) + " images/s) covers the offered " +
             Fixed(offered_fps, 1) + " frames/s with " + Fixed((kHeadroom - 1) * 100, 0) +
             "% headroom";
      return r;
    }
    if (fastest == nullptr || r->throughput_ips > fastest->throughput_ips) fastest = r;
  }
  if (fastest != nullptr) {
    *why = "no batch size keeps up with the offered " + Fixed(offered_fps, 1) +
           " frames/s; batch " + std::to_string(fastest->batch) +
           " has the highest offline throughput " + scope + " (" +
           Fixed(fastest->throughput_ips, 1) + " images/s), so frames will still be skipped";
  }
  return fastest;
}

void Recommend(const std::vector<BatchResult>& sweep, LiveBatchView* v) {
  const LiveContext& c = v->context;
  if (sweep.empty()) {
    v->recommendation = "no recommendation: the offline sweep measured no batch size";
    return;
  }
  int cap = c.cameras > 0 ? c.cameras : sweep.back().batch;
  auto within = Candidates(sweep, cap, c.budget_ms, true);
  std::string why;
  const BatchResult* pick =
      PickBatch(within, v->offered_fps, "within the " + Fixed(c.budget_ms, 1) + " ms budget", &why);
  if (pick == nullptr) {
    pick = PickBatch(Candidates(sweep, cap, 0, false), v->offered_fps,
                     "of at most " + std::to_string(cap) + " frames", &why);
    if (pick == nullptr) {
      v->recommendation = "no recommendation: no measured batch size is at most the " +
                          std::to_string(cap) + " cameras";
      return;
    }
    why += "; no batch size of at most " + std::to_string(cap) + " meets the " +
           Fixed(c.budget_ms, 1) + " ms budget";
  }
  // Time for pick-1 more frames to arrive at the offered rate, but never so long that the wait
  // plus the forward's p99 overruns the budget.
  double wait = pick->batch > 1 ? 1000.0 * (pick->batch - 1) / v->offered_fps : 0;
  wait = std::max(0.0, std::min(wait, c.budget_ms - pick->p99_ms));
  v->recommended_max_batch = pick->batch;
  v->recommended_max_wait_ms = static_cast<int>(std::lround(wait));
  v->recommendation = "max_batch " + std::to_string(pick->batch) + ", max_wait_ms " +
                      std::to_string(*v->recommended_max_wait_ms) + ": " + why + ".";
  if (c.max_batch > 0 && v->mean_batch) {
    v->recommendation +=
        " Now: max_batch " + std::to_string(c.max_batch) +
        (c.max_wait_ms >= 0 ? ", max_wait_ms " + std::to_string(c.max_wait_ms) : std::string()) +
        "; batches formed averaged " + Fixed(*v->mean_batch, 2) + " frames";
    if (v->skip_share)
      v->recommendation += ", " + Fixed(*v->skip_share * 100, 1) + "% of frames skipped";
    v->recommendation += ".";
  }
  if (!c.sweep_mismatch.empty()) v->recommendation += " Caveat: " + c.sweep_mismatch + ".";
}

}  // namespace

std::vector<PromSample> DeltaSamples(const std::vector<PromSample>& start,
                                     const std::vector<PromSample>& end) {
  std::map<std::pair<std::string, std::map<std::string, std::string>>, double> before;
  for (const PromSample& s : start) before[{s.name, s.labels}] = s.value;
  std::vector<PromSample> out;
  for (PromSample s : end) {
    auto it = before.find({s.name, s.labels});
    if (it != before.end() && s.value >= it->second) s.value -= it->second;
    out.push_back(std::move(s));
  }
  return out;
}

BucketQuantile QuantileWithBucket(const std::vector<PromSample>& samples, const std::string& name,
                                  double q, const std::map<std::string, std::string>& match) {
  BucketQuantile out;
  double value = HistogramQuantile(samples, name, q, match);
  if (std::isnan(value)) return out;
  out.value = value;
  auto cumulative = Cumulative(samples, name, match);
  const double rank = q * cumulative.rbegin()->second;
  double lo = 0;
  for (const auto& [le, count] : cumulative) {
    if (count >= rank) {
      out.bucket_lo = lo;
      out.bucket_hi = le;
      break;
    }
    lo = le;
  }
  return out;
}

LiveBatchView LiveNotMeasurable(std::string reason) {
  LiveBatchView v;
  v.reason = std::move(reason);
  return v;
}

LiveBatchView AnalyseLiveBatch(const std::vector<PromSample>& start,
                               const std::vector<PromSample>& end, double window_s,
                               const LiveContext& context, const std::vector<BatchResult>& sweep) {
  const std::vector<PromSample> delta = DeltaSamples(start, end);
  LiveBatchView v;
  v.context = context;
  v.window_s = window_s;
  v.frames_in = SumSamples(delta, "framescope_frames_in_total", {{"service", "detection"}});
  v.frames_skipped = SumSamples(delta, "framescope_frames_dropped_total",
                                {{"service", "detection"}, {"reason", "skipped_newest_first"}});
  const double offered = v.frames_in + v.frames_skipped;
  if (!(window_s > 0) || offered <= 0) {
    return LiveNotMeasurable("not measurable: detection received no frames in the " +
                             Fixed(window_s, 1) + " s window");
  }
  v.measured = true;
  v.offered_fps = offered / window_s;
  v.skip_share = v.frames_skipped / offered;
  BatchSizes(delta, &v);
  v.queue_wait_count = SumSamples(delta, std::string(kStageLatency) + "_count", kQueueWait);
  auto to_ms = [](BucketQuantile b) {
    if (b.value) *b.value *= 1e3;
    b.bucket_lo *= 1e3;
    b.bucket_hi *= 1e3;
    return b;
  };
  v.queue_wait_p50_ms = to_ms(QuantileWithBucket(delta, kStageLatency, 0.5, kQueueWait));
  v.queue_wait_p99_ms = to_ms(QuantileWithBucket(delta, kStageLatency, 0.99, kQueueWait));
  Recommend(sweep, &v);
  return v;
}

const char* LiveRecommendationRule() {
  return "max_batch: among the offline batch sizes of at most one frame per camera whose p99 "
         "meets the latency budget, the smallest whose throughput is at least 1.2x the offered "
         "frame rate ((frames in + skipped) / window), else the fastest of them; max_wait_ms: "
         "the time for max_batch - 1 more frames to arrive at the offered rate, capped so that "
         "the wait plus that batch's p99 stays within the budget";
}

namespace {

Json QuantileJson(const BucketQuantile& q) {
  Json j = Json::MakeObject();
  j["value"] = q.value ? Json(*q.value) : Json();
  j["bucket_ms"] = q.value
                       ? Json(Json::Array{q.bucket_lo, std::isinf(q.bucket_hi) ? Json("+Inf")
                                                                               : Json(q.bucket_hi)})
                       : Json();
  return j;
}

}  // namespace

Json LiveBatchJson(const LiveBatchView& v) {
  Json j = Json::MakeObject();
  j["measured"] = v.measured;
  if (!v.measured) {
    j["reason"] = v.reason;
    return j;
  }
  j["window_s"] = v.window_s;
  j["source"] = "two scrapes of detection's /metrics, end minus start";
  j["batches"] = v.batches;
  j["mean_batch_size"] = v.mean_batch ? Json(*v.mean_batch) : Json();
  j["mean_batch_size_method"] = "framescope_batch_size_sum / framescope_batch_size_count";
  Json dist = Json::MakeArray();
  for (const BucketCount& b : v.batch_sizes) {
    Json d = Json::MakeObject();
    d["above"] = b.lo;
    d["up_to"] = std::isinf(b.hi) ? Json("+Inf") : Json(b.hi);
    d["batches"] = b.count;
    dist.Push(d);
  }
  j["batch_size_distribution"] = dist;
  Json qw = Json::MakeObject();
  qw["metric"] =
      "framescope_stage_latency_seconds{service=\"detection\",stage=\"queue_wait\"} (capture "
      "timestamp to frame read)";
  qw["method"] = "histogram_quantile-style linear interpolation inside the bucket";
  qw["count"] = v.queue_wait_count;
  qw["p50_ms"] = QuantileJson(v.queue_wait_p50_ms);
  qw["p99_ms"] = QuantileJson(v.queue_wait_p99_ms);
  j["queue_wait"] = qw;
  j["frames_in"] = v.frames_in;
  j["frames_skipped"] = v.frames_skipped;
  j["skip_share"] = v.skip_share ? Json(*v.skip_share) : Json();
  j["skip_share_method"] =
      "framescope_frames_dropped_total{reason=\"skipped_newest_first\"} / (that + "
      "framescope_frames_in_total)";
  j["offered_fps"] = v.offered_fps;
  j["current_max_batch"] = v.context.max_batch > 0 ? Json(v.context.max_batch) : Json();
  j["current_max_wait_ms"] = v.context.max_wait_ms >= 0 ? Json(v.context.max_wait_ms) : Json();
  j["recommended_max_batch"] = v.recommended_max_batch ? Json(*v.recommended_max_batch) : Json();
  j["recommended_max_wait_ms"] =
      v.recommended_max_wait_ms ? Json(*v.recommended_max_wait_ms) : Json();
  j["recommendation"] = v.recommendation;
  j["recommendation_rule"] = LiveRecommendationRule();
  return j;
}

}  // namespace fs::model
