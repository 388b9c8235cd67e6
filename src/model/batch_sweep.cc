#include "src/model/batch_sweep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "src/base/stats.h"

namespace fs::model {
namespace {

// perf_analyzer's test: the largest value at most (1 + tolerance) times the smallest.
bool AgreeWithin(const std::vector<double>& v, double tolerance) {
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  if (lo == v.end() || !(*lo > 0)) return false;
  return *hi <= (1 + tolerance) * *lo;
}

bool Stopped(const std::atomic<bool>* stop) { return stop != nullptr && stop->load(); }

// One forward; a time that is not positive and finite would never fill a window.
StatusOr<double> TimedForward(const ForwardFn& forward, int batch) {
  ASSIGN_OR_RETURN(double s, forward(batch));
  if (!(s > 0) || !std::isfinite(s)) {
    return Err("a forward pass at batch " + std::to_string(batch) + " reported " + Fixed(s, 9) +
               " s; expected a positive time");
  }
  return s;
}

// The batch's numbers over its last `n` windows (all when fewer), from their forward times.
void Summarise(const std::vector<std::vector<double>>& window_times, int n, BatchResult* r) {
  std::vector<double> times;
  size_t first = window_times.size() > static_cast<size_t>(n) ? window_times.size() - n : 0;
  for (size_t i = first; i < window_times.size(); ++i) {
    times.insert(times.end(), window_times[i].begin(), window_times[i].end());
  }
  WindowStats all = WindowFromTimes(times, r->batch);
  r->throughput_ips = all.throughput_ips;
  r->p50_ms = all.p50_ms;
  r->p99_ms = all.p99_ms;
  r->forwards = all.forwards;
}

}  // namespace

bool WindowsStable(const std::vector<WindowStats>& windows, int n, double tolerance) {
  if (n < 1 || windows.size() < static_cast<size_t>(n)) return false;
  std::vector<double> throughput, p99;
  for (size_t i = windows.size() - n; i < windows.size(); ++i) {
    throughput.push_back(windows[i].throughput_ips);
    p99.push_back(windows[i].p99_ms);
  }
  return AgreeWithin(throughput, tolerance) && AgreeWithin(p99, tolerance);
}

WindowStats WindowFromTimes(const std::vector<double>& seconds, int batch) {
  WindowStats w;
  w.forwards = static_cast<int>(seconds.size());
  for (double s : seconds) w.seconds += s;
  if (seconds.empty() || !(w.seconds > 0)) return w;
  w.throughput_ips = batch * w.forwards / w.seconds;
  w.p50_ms = Percentile(seconds, 0.5) * 1e3;
  w.p99_ms = Percentile(seconds, 0.99) * 1e3;
  return w;
}

StatusOr<BatchResult> MeasureBatch(const ForwardFn& forward, int batch, const SweepOptions& o,
                                   const std::atomic<bool>* stop) {
  BatchResult r;
  r.batch = batch;
  double spent = 0;
  for (int i = 0; i < o.warmup_forwards && !Stopped(stop); ++i) {
    ASSIGN_OR_RETURN(double s, TimedForward(forward, batch));
    spent += s;
  }
  std::vector<std::vector<double>> window_times;
  while (!Stopped(stop)) {
    std::vector<double> times;
    double seconds = 0;
    while ((static_cast<int>(times.size()) < o.min_window_forwards || seconds < o.window_seconds) &&
           !Stopped(stop)) {
      ASSIGN_OR_RETURN(double s, TimedForward(forward, batch));
      times.push_back(s);
      seconds += s;
    }
    if (Stopped(stop)) break;  // a partial window is not a window
    spent += seconds;
    window_times.push_back(times);
    r.windows.push_back(WindowFromTimes(times, batch));
    if (WindowsStable(r.windows, o.stable_windows, o.tolerance)) {
      r.stable = true;
      break;
    }
    if (static_cast<int>(r.windows.size()) >= o.max_windows) {
      r.unstable_reason = "no " + std::to_string(o.stable_windows) +
                          " consecutive windows within " + Fixed(o.tolerance * 100, 0) +
                          "% after " + std::to_string(o.max_windows) + " windows";
      break;
    }
    if (spent >= o.max_seconds_per_batch) {
      r.unstable_reason = "time cap of " + Fixed(o.max_seconds_per_batch, 0) +
                          " s of forwards reached after " + std::to_string(r.windows.size()) +
                          " window(s)";
      break;
    }
  }
  if (!r.stable && r.unstable_reason.empty()) r.unstable_reason = "interrupted";
  Summarise(window_times, o.stable_windows, &r);
  return r;
}

StatusOr<std::vector<BatchResult>> RunSweep(
    const ForwardFn& forward, const SweepOptions& o, const std::atomic<bool>* stop,
    const std::function<void(const BatchResult&)>& progress) {
  std::vector<BatchResult> out;
  for (int batch : o.batches) {
    if (Stopped(stop)) break;
    ASSIGN_OR_RETURN(BatchResult r, MeasureBatch(forward, batch, o, stop));
    if (r.windows.empty()) break;  // stopped before its first window
    if (progress) progress(r);
    out.push_back(std::move(r));
  }
  return out;
}

StatusOr<std::vector<int>> ParseBatchList(const std::string& text) {
  std::set<int> seen;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 1024) {
      return Err("--batches: \"" + item +
                 "\" is not a batch size (a comma-separated list of integers 1..1024, e.g. "
                 "1,2,4,8)");
    }
    if (!seen.insert(static_cast<int>(v)).second) {
      return Err("--batches: " + item + " is given twice");
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return std::vector<int>(seen.begin(), seen.end());
}

LatencyBudget BudgetFromFps(double fps, const std::string& fps_origin) {
  LatencyBudget b;
  b.ms = 1000.0 / fps;
  b.rule = "one frame interval, 1000 / " + Fixed(fps, fps == std::floor(fps) ? 0 : 2) + " fps (" +
           fps_origin +
           "): a batch that takes longer than the gap between a camera's frames makes detection "
           "fall behind it";
  return b;
}

namespace {

const BatchResult* Find(const std::vector<BatchResult>& results, int batch) {
  for (const BatchResult& r : results)
    if (r.batch == batch) return &r;
  return nullptr;
}

// Highest throughput (ties: the smaller batch) among the results `eligible` accepts.
template <typename Pred>
const BatchResult* Highest(const std::vector<BatchResult>& results, Pred eligible) {
  const BatchResult* best = nullptr;
  for (const BatchResult& r : results) {
    if (!eligible(r)) continue;
    if (best == nullptr || r.throughput_ips > best->throughput_ips ||
        (r.throughput_ips == best->throughput_ips && r.batch < best->batch)) {
      best = &r;
    }
  }
  return best;
}

std::string Ips(const BatchResult& r) { return Fixed(r.throughput_ips, 1) + " images/s"; }

// What the sweep says about batching on this machine, from the best gain of any batch.
std::string BatchingEffect(const std::vector<BatchResult>& results, const BatchResult* one) {
  const BatchResult* top = Highest(results, [](const BatchResult&) { return true; });
  if (one == nullptr || top == nullptr || results.size() < 2) return "";  // nothing batched
  const BatchResult& last = results.back();
  double gain = top->throughput_ips / one->throughput_ips;
  std::string s = " Across the sweep, batch " + std::to_string(top->batch) + " is the fastest at " +
                  Fixed(gain, 2) + "x batch 1";
  if (&last != top) {
    s += "; batch " + std::to_string(last.batch) + " runs at " +
         Fixed(last.throughput_ips / one->throughput_ips, 2) + "x";
  }
  s += " (p99 " + Fixed(last.p99_ms, 1) + " ms per forward at batch " + std::to_string(last.batch) +
       ").";
  if (gain < 1.5) {
    s += " Batching barely raises throughput here: batch 1 already keeps the cores busy, so a "
         "larger batch mostly takes proportionally longer.";
  }
  return s;
}

// " Not stable ...: batch 1, 4." when some measurements never met the stability rule.
std::string UnstableNote(const std::vector<BatchResult>& results) {
  std::string list;
  for (const BatchResult& r : results) {
    if (!r.stable) list += (list.empty() ? "" : ", ") + std::to_string(r.batch);
  }
  if (list.empty()) return "";
  return " Not stable by the 3-windows-within-10% rule (numbers less firm): batch " + list + ".";
}

// The checklist verdict for a best batch within the budget.
void Verdict(const BatchResult& best, const BatchResult* one, BatchChoice* c) {
  std::string within = "Within the " + Fixed(c->budget.ms, 1) + " ms budget, batch " +
                       std::to_string(best.batch) + " is the fastest (" + Ips(best) + ", p99 " +
                       Fixed(best.p99_ms, 1) + " ms)";
  if (one == nullptr) {
    c->verdict = "not measurable";
    c->reason = within + "; batch 1 was not measured, so there is no gain to judge";
    return;
  }
  const bool in_range = best.batch >= kChecklistMinBatch && best.batch <= kChecklistMaxBatch;
  const bool gains = *c->gain > kChecklistMinGain;
  c->verdict = in_range && gains ? "met" : "not met";
  c->reason = within + ", " + Fixed(*c->gain, 2) + "x batch 1 (" + Ips(*one) + ")";
  const std::string range = "the optimal batch in " + std::to_string(kChecklistMinBatch) + ".." +
                            std::to_string(kChecklistMaxBatch);
  const std::string gain = "a gain above " + Fixed(kChecklistMinGain, 1);
  if (!in_range || !gains) {
    c->reason += "; the checklist needs " + (!in_range && !gains ? range + " and " + gain
                                             : !in_range         ? range
                                                                 : gain);
  }
}

}  // namespace

BatchChoice ChooseBestBatch(const std::vector<BatchResult>& results, const LatencyBudget& budget) {
  BatchChoice c;
  c.budget = budget;
  if (results.empty()) {
    c.verdict = "not measurable";
    c.reason = "No batch size was measured.";
    return c;
  }
  const BatchResult* one = Find(results, 1);
  const BatchResult* top = Highest(results, [](const BatchResult&) { return true; });
  c.best_unconstrained_batch = top->batch;
  if (one != nullptr) c.unconstrained_gain = top->throughput_ips / one->throughput_ips;
  const BatchResult* best =
      Highest(results, [&](const BatchResult& r) { return r.p99_ms <= budget.ms; });
  if (best == nullptr) {
    const BatchResult* quickest = &results.front();
    for (const BatchResult& r : results)
      if (r.p99_ms < quickest->p99_ms) quickest = &r;
    c.verdict = "not met";
    c.reason = "No batch size meets the " + Fixed(budget.ms, 1) +
               " ms latency budget: the lowest " + "p99 is " + Fixed(quickest->p99_ms, 1) +
               " ms (batch " + std::to_string(quickest->batch) + ")";
  } else {
    c.best_batch = best->batch;
    if (one != nullptr) c.gain = best->throughput_ips / one->throughput_ips;
    Verdict(*best, one, &c);
  }
  c.reason += "." + BatchingEffect(results, one) + UnstableNote(results);
  return c;
}

Json BatchResultJson(const BatchResult& r) {
  Json j = Json::MakeObject();
  j["batch"] = r.batch;
  j["throughput_images_per_s"] = r.throughput_ips;
  j["latency_p50_ms"] = r.p50_ms;
  j["latency_p99_ms"] = r.p99_ms;
  j["forwards"] = r.forwards;
  j["windows"] = static_cast<int>(r.windows.size());
  j["stable"] = r.stable;
  if (!r.stable) j["unstable_reason"] = r.unstable_reason;
  Json windows = Json::MakeArray();
  for (const WindowStats& w : r.windows) {
    Json wj = Json::MakeObject();
    wj["forwards"] = w.forwards;
    wj["seconds"] = w.seconds;
    wj["throughput_images_per_s"] = w.throughput_ips;
    wj["latency_p50_ms"] = w.p50_ms;
    wj["latency_p99_ms"] = w.p99_ms;
    windows.Push(wj);
  }
  j["window_series"] = windows;
  return j;
}

Json BatchChoiceJson(const BatchChoice& c) {
  auto opt = [](const auto& v) { return v ? Json(*v) : Json(); };
  Json j = Json::MakeObject();
  j["latency_budget_ms"] = c.budget.ms;
  j["latency_budget_rule"] = c.budget.rule;
  j["best_batch"] = opt(c.best_batch);
  j["gain_over_batch_1"] = opt(c.gain);
  j["best_batch_ignoring_budget"] =
      c.best_unconstrained_batch > 0 ? Json(c.best_unconstrained_batch) : Json();
  j["gain_ignoring_budget"] = opt(c.unconstrained_gain);
  j["checklist"] = "optimal batch in " + std::to_string(kChecklistMinBatch) + ".." +
                   std::to_string(kChecklistMaxBatch) + " and gain over batch 1 above " +
                   Fixed(kChecklistMinGain, 1);
  j["verdict"] = c.verdict;
  j["reason"] = c.reason;
  return j;
}

Json SweepOptionsJson(const SweepOptions& o) {
  Json j = Json::MakeObject();
  j["warmup_forwards"] = o.warmup_forwards;
  j["min_window_forwards"] = o.min_window_forwards;
  j["window_seconds"] = o.window_seconds;
  j["stability_rule"] = "over the last " + std::to_string(o.stable_windows) +
                        " windows the largest at most " + Fixed(o.tolerance * 100, 0) +
                        "% above the smallest, on both throughput and p99 latency (Triton "
                        "perf_analyzer's rule)";
  j["max_windows"] = o.max_windows;
  j["max_seconds_per_batch"] = o.max_seconds_per_batch;
  return j;
}

}  // namespace fs::model
