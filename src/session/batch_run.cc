#include "src/session/batch_run.h"

#include "src/base/clock.h"
#include "src/base/http.h"
#include "src/system/state.h"

namespace fs {
namespace {

StatusOr<LiveTarget> FindLiveTarget(const std::string& state_dir) {
  ASSIGN_OR_RETURN(StateDir dir, ResolveStateDir(state_dir));
  auto state = ReadState(dir);
  if (!state.ok() || !SupervisorRunning(*state)) return Err("no running system");
  LiveTarget t;
  if (const Json* detection = RunningService(*state, "detection")) {
    t.port = static_cast<int>(detection->Get("metrics_port").AsInt(0));
  }
  if (t.port <= 0) {
    return Err("detection is not running (no metrics port in " + dir.StateFile() + ")");
  }
  if (auto config = ConfigFromJson(state->Get("config")); config.ok()) {
    t.context.max_batch = config->max_batch;
    t.context.max_wait_ms = config->max_wait_ms;
    t.model = config->model;
    t.input_size = config->input_size;
    t.context.cameras = CameraCount(*config);
  }
  return t;
}

StatusOr<std::vector<PromSample>> Scrape(int port) {
  ASSIGN_OR_RETURN(HttpResult r, HttpGet("127.0.0.1", port, "/metrics", 5000));
  if (r.status != 200) return Err("detection's /metrics answered " + std::to_string(r.status));
  return ParsePromText(r.body);
}

model::LatencyBudget Budget(double budget_ms, const ModelSource& source) {
  if (budget_ms > 0) return {budget_ms, "--latency-budget-ms"};
  if (source.fps > 0) return model::BudgetFromFps(source.fps, "the running system's cameras");
  return model::BudgetFromFps(SystemConfig{}.fps,
                              "the default config's camera rate; no running system's rate known");
}

// Why the sweep does not describe the live detection ("" when it does).
std::string Mismatch(const LiveTarget& t, const model::BatchAnalysis& a) {
  if (!t.model.empty() && t.model != a.model_path) {
    return "the sweep measured " + a.model_path + ", detection runs " + t.model;
  }
  if (t.input_size > 0 && (a.input_width != t.input_size || a.input_height != t.input_size)) {
    return "the sweep ran at " + std::to_string(a.input_width) + "x" +
           std::to_string(a.input_height) + ", detection at " + std::to_string(t.input_size) + "x" +
           std::to_string(t.input_size) + "; rerun without --input-size for numbers that apply";
  }
  return "";
}

}  // namespace

void LiveWindow::Begin(const std::string& state_dir) {
  auto target = FindLiveTarget(state_dir);
  if (!target.ok()) {
    reason_ = "not measurable: " + target.status().message();
    return;
  }
  target_ = *target;
  auto start = Scrape(target_.port);
  if (!start.ok()) {
    reason_ = "not measurable: " + start.status().message();
    return;
  }
  start_ = std::move(*start);
  start_ns_ = MonotonicNs();
  reason_.clear();
}

double LiveWindow::elapsed_s() const {
  return start_ns_ > 0 ? static_cast<double>(MonotonicNs() - start_ns_) / 1e9 : 0;
}

void LiveWindow::End() {
  if (failed()) return;
  window_s_ = elapsed_s();
  auto end = Scrape(target_.port);
  if (!end.ok()) {
    reason_ = "not measurable: " + end.status().message();
    return;
  }
  end_ = std::move(*end);
}

model::LiveBatchView LiveWindow::Analyse(const model::BatchAnalysis& a) {
  if (failed()) return model::LiveNotMeasurable(reason_);
  target_.context.budget_ms = a.choice.budget.ms;
  target_.context.sweep_mismatch = Mismatch(target_, a);
  return model::AnalyseLiveBatch(start_, end_, window_s_, target_.context, a.results);
}

StatusOr<model::BatchAnalysis> RunBatchAnalysis(model::ModelNet* net, const ModelSource& source,
                                                const BatchRunOptions& o, LiveWindow* live) {
  model::BatchAnalysis a;
  a.model_path = source.spec.model_path;
  a.model_origin = source.origin;
  a.weights_note = source.weights_note;
  a.input_width = net->input_width();
  a.input_height = net->input_height();
  a.threads = net->threads();
  a.options = o.sweep;
  if (!(o.stop && o.stop->load())) {
    DetectionPause pause(source.detection_pid);
    a.detection_paused = pause.paused();
    if (o.message) {
      o.message("offline sweep over " + std::to_string(o.sweep.batches.size()) +
                " batch size(s) at " + std::to_string(a.input_width) + "x" +
                std::to_string(a.input_height));
    }
    int count = 0, last_batch = 0;
    auto forward = [&](int batch) {
      count = batch == last_batch ? count + 1 : 1;
      last_batch = batch;
      if (o.on_forward) o.on_forward(batch, count);
      return net->Forward(batch);
    };
    ASSIGN_OR_RETURN(a.results, model::RunSweep(forward, o.sweep, o.stop, o.on_batch));
  }
  a.interrupted = o.stop && o.stop->load();
  a.choice = model::ChooseBestBatch(a.results, Budget(o.budget_ms, source));
  a.live = live->Analyse(a);
  return a;
}

}  // namespace fs
