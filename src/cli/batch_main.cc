// framescope batch: the detection model's throughput and latency against batch size (offline
// sweep, detection paused), the best batch under a latency budget with the checklist verdict,
// and what the running detection service's dynamic batching does live (its /metrics over a
// window, detection running), with a max_batch / max_wait_ms recommendation.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/http.h"
#include "src/base/output.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/cli/model_source.h"
#include "src/clients/prom_text.h"
#include "src/model/batch_analysis.h"
#include "src/model/model_net.h"
#include "src/report/batch_chart.h"
#include "src/system/state.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};

struct BatchFlags {
  ModelFlags model;
  std::string batches = "1,2,4,8,16,32", out = "profiles";
  double budget_ms = 0, live_seconds = 10;
  bool json = false;
  model::SweepOptions sweep;
};

constexpr const char* kBatchSummary =
    "Measures the detection model's throughput and latency against batch size.\n"
    "Offline sweep: per --batches size, warm-up forwards, then windows (at least\n"
    "--min-window-forwards forwards and --window-seconds of them) until the last 3 windows\n"
    "are each within 10% of their mean on both throughput and p99 latency (Triton\n"
    "perf_analyzer's rule), else marked unstable after --max-windows windows or\n"
    "--max-seconds-per-batch. Times: steady_clock around cv::dnn::Net::forward on a fixed\n"
    "synthetic input. The running system's detection is paused (SIGSTOP) during the sweep\n"
    "only, so it does not share the cores.\n"
    "Best batch: the highest throughput whose p99 meets --latency-budget-ms (default one\n"
    "frame interval, 1000/fps ms, of the system's cameras, or of the default config's 30 fps\n"
    "without a running system); checklist 2.3: met when it is in 4..32 with a gain over\n"
    "batch 1 above 2.0.\n"
    "Live view (a running system, before the sweep, detection running): two scrapes of\n"
    "detection's /metrics --live-seconds apart: batch sizes formed, queue wait, skipped\n"
    "frames, and a max_batch / max_wait_ms recommendation.\n"
    "Writes OUT/models/batch_analysis.json and OUT/models/batch_analysis.html (chart).\n"
    "Exit codes: 0 ok, 1 failure, 2 bad usage, model or output, 3 checklist not met,\n"
    "130 interrupted (what was measured is written).";

// Parses and validates; returns -1 to go on, else the exit code.
int ParseBatchFlags(int argc, char** argv, BatchFlags* f) {
  FlagSet flags("framescope batch", kBatchSummary);
  AddModelFlags(&flags, &f->model);
  flags.String("batches", &f->batches, "batch sizes, comma-separated");
  flags.Double("latency-budget-ms", &f->budget_ms,
               "p99 budget per batch in ms (default: one frame interval)");
  flags.Double("window-seconds", &f->sweep.window_seconds, "minimum seconds of forwards a window");
  flags.Int("min-window-forwards", &f->sweep.min_window_forwards, "minimum forwards a window");
  flags.Int("max-windows", &f->sweep.max_windows, "windows per batch size before giving up");
  flags.Double("max-seconds-per-batch", &f->sweep.max_seconds_per_batch,
               "forward seconds per batch size before giving up");
  flags.Int("warmup", &f->sweep.warmup_forwards, "uncounted forwards per batch size");
  flags.Double("live-seconds", &f->live_seconds, "live view window (0: no live view)");
  flags.String("out", &f->out, "output folder (files go to OUT/models/)");
  flags.Bool("json", &f->json, "print the analysis as JSON on standard output");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  auto usage = [](const std::string& message) {
    fprintf(stderr, "framescope batch: %s\n", message.c_str());
    return 2;
  };
  auto batches = model::ParseBatchList(f->batches);
  if (!batches.ok()) return usage(batches.status().message());
  f->sweep.batches = *batches;
  if (flags.WasSet("latency-budget-ms") && !(f->budget_ms > 0 && std::isfinite(f->budget_ms))) {
    return usage("--latency-budget-ms must be a positive number of milliseconds");
  }
  if (!(f->sweep.window_seconds >= 0 && f->sweep.window_seconds <= 600)) {
    return usage("--window-seconds must be 0..600");
  }
  if (f->sweep.min_window_forwards < 1 || f->sweep.max_windows < f->sweep.stable_windows ||
      f->sweep.warmup_forwards < 0) {
    return usage(
        "--min-window-forwards must be 1 or more, --max-windows 3 or more, --warmup 0 "
        "or more");
  }
  if (!(f->sweep.max_seconds_per_batch > 0)) return usage("--max-seconds-per-batch must be > 0");
  if (!(f->live_seconds >= 0 && f->live_seconds <= 3600)) {
    return usage("--live-seconds must be 0..3600");
  }
  return -1;
}

// The running detection service to watch live: its metrics port and batching config.
struct LiveTarget {
  int port = 0;
  model::LiveContext context;
  std::string model;  // detection's model and input size, to compare with the sweep's
  int input_size = 0;
};

StatusOr<LiveTarget> FindLiveTarget(const std::string& state_dir) {
  ASSIGN_OR_RETURN(StateDir dir, ResolveStateDir(state_dir.empty() ? kDefaultStateDir : state_dir));
  auto state = ReadState(dir);
  if (!state.ok() || !SupervisorRunning(*state)) return Err("no running system");
  LiveTarget t;
  for (const Json& s : state->Get("services").AsArray()) {
    if (s.Get("name").AsString() == "detection" && s.Get("state").AsString() == "running") {
      t.port = static_cast<int>(s.Get("metrics_port").AsInt(0));
    }
  }
  if (t.port <= 0)
    return Err("detection is not running (no metrics port in " + dir.StateFile() + ")");
  if (auto config = ConfigFromJson(state->Get("config")); config.ok()) {
    t.context.max_batch = config->max_batch;
    t.context.max_wait_ms = config->max_wait_ms;
    t.model = config->model;
    t.input_size = config->input_size;
    t.context.cameras = config->real_cameras.empty()
                            ? config->cameras
                            : static_cast<int>(config->real_cameras.size());
  }
  return t;
}

StatusOr<std::vector<PromSample>> Scrape(int port) {
  ASSIGN_OR_RETURN(HttpResult r, HttpGet("127.0.0.1", port, "/metrics", 5000));
  if (r.status != 200) return Err("detection's /metrics answered " + std::to_string(r.status));
  return ParsePromText(r.body);
}

// Two scrapes `seconds` apart (shorter on Ctrl-C); the window's length in *window_s.
Status ScrapeWindow(int port, double seconds, std::vector<PromSample>* start,
                    std::vector<PromSample>* end, double* window_s) {
  ASSIGN_OR_RETURN(*start, Scrape(port));
  const int64_t t0 = MonotonicNs();
  fprintf(stderr, "live view: watching detection's batching for %.0f s\n", seconds);
  while (!g_stop.load() && static_cast<double>(MonotonicNs() - t0) / 1e9 < seconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSIGN_OR_RETURN(*end, Scrape(port));
  *window_s = static_cast<double>(MonotonicNs() - t0) / 1e9;
  return Status::Ok();
}

// The live window, before the sweep (detection must be running for it); its analysis needs the
// sweep, so the scrapes are kept. A failure is a reason, never fatal: the sweep still runs.
struct LiveScrapes {
  std::string reason;  // empty: measured
  LiveTarget target;
  std::vector<PromSample> start, end;
  double window_s = 0;
};

LiveScrapes WatchLive(const BatchFlags& f) {
  LiveScrapes l;
  if (f.live_seconds <= 0) {
    l.reason = "not measured: --live-seconds 0";
    return l;
  }
  auto target = FindLiveTarget(f.model.state_dir);
  if (!target.ok()) {
    l.reason = "not measurable: " + target.status().message();
    return l;
  }
  l.target = *target;
  Status st = ScrapeWindow(l.target.port, f.live_seconds, &l.start, &l.end, &l.window_s);
  if (!st.ok()) l.reason = "not measurable: " + st.message();
  return l;
}

void PrintProgress(const model::BatchResult& r) {
  fprintf(stderr, "\rbatch %3d: %8.2f images/s, p50 %8.1f ms, p99 %8.1f ms, %zu windows, %s\n",
          r.batch, r.throughput_ips, r.p50_ms, r.p99_ms, r.windows.size(),
          r.stable ? "stable" : ("unstable: " + r.unstable_reason).c_str());
}

// The sweep with detection paused; Ctrl-C keeps what was measured.
StatusOr<std::vector<model::BatchResult>> Sweep(model::ModelNet* net, const ModelSource& source,
                                                const model::SweepOptions& options, bool* paused) {
  DetectionPause pause(source.detection_pid);
  *paused = pause.paused();
  fprintf(stderr, "offline sweep over %zu batch size(s) at %dx%d\n", options.batches.size(),
          net->input_width(), net->input_height());
  // A line per batch size at its end; meanwhile a counter of forwards (a batch of 32 at 416x416
  // can take seconds per forward on a CPU).
  int count = 0, last_batch = 0;
  auto forward = [net, &count, &last_batch](int batch) {
    count = batch == last_batch ? count + 1 : 1;
    last_batch = batch;
    fprintf(stderr, "\rbatch %3d: forward %d ", batch, count);
    fflush(stderr);
    return net->Forward(batch);
  };
  return model::RunSweep(forward, options, &g_stop, PrintProgress);
}

void PrintTable(const model::BatchAnalysis& a, FILE* out) {
  fprintf(out, "%6s %12s %10s %10s %8s %s\n", "batch", "images/s", "p50 ms", "p99 ms", "windows",
          "stable");
  for (const model::BatchResult& r : a.results) {
    fprintf(out, "%6d %12.2f %10.1f %10.1f %8zu %s\n", r.batch, r.throughput_ips, r.p50_ms,
            r.p99_ms, r.windows.size(), r.stable ? "yes" : "no");
  }
  fprintf(out, "latency budget %.1f ms (%s)\n", a.choice.budget.ms, a.choice.budget.rule.c_str());
  fprintf(out, "checklist 2.3: %s. %s\n", a.choice.verdict.c_str(), a.choice.reason.c_str());
  if (!a.live.measured) {
    fprintf(out, "live view %s\n", a.live.reason.c_str());
  } else {
    fprintf(out, "live: %s\n", a.live.recommendation.c_str());
  }
}

model::LatencyBudget Budget(const BatchFlags& f, const ModelSource& source) {
  if (f.budget_ms > 0) return {f.budget_ms, "--latency-budget-ms"};
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

int Fail(int code, const std::string& message) {
  fprintf(stderr, "framescope batch: %s\n", message.c_str());
  return code;
}

// Writes the JSON and the chart page, prints the result; returns the exit code.
int Report(const model::BatchAnalysis& a, const std::string& dir, bool json) {
  const Json j = model::BatchAnalysisToJson(a);
  Status st = WriteOutput(dir + "/batch_analysis.json", j.Dump(2) + "\n");
  Status html = WriteOutput(dir + "/batch_analysis.html", profile::RenderBatchPage(a));
  if (json) {
    printf("%s\n", j.Dump(2).c_str());
  } else {
    PrintTable(a, stdout);
    printf("wrote %s/batch_analysis.json and %s/batch_analysis.html\n", dir.c_str(), dir.c_str());
  }
  if (!st.ok()) return Fail(1, st.message());
  if (!html.ok()) return Fail(1, html.message());
  if (a.interrupted) return 130;
  return a.choice.verdict == "not met" ? 3 : 0;
}

}  // namespace

int BatchMain(int argc, char** argv) {
  BatchFlags f;
  if (int code = ParseBatchFlags(argc, argv, &f); code >= 0) return code;
  auto source = ResolveModelSource(f.model);
  if (!source.ok()) return Fail(2, source.status().message());
  const std::string dir = f.out + "/models";
  if (Status st = MakeDirs(dir); !st.ok()) return Fail(2, "--out: cannot create " + dir);
  if (Status st = CheckOutputs({dir + "/batch_analysis.json", dir + "/batch_analysis.html"});
      !st.ok()) {
    return Fail(2, "--out: " + st.message());
  }
  auto net = model::ModelNet::Load(source->spec);
  if (!net.ok()) {
    return Fail(2, (f.model.model.empty() ? "" : "--model: ") + std::string("cannot load ") +
                       source->spec.model_path + ": " + net.status().message());
  }
  signal(SIGPIPE, SIG_IGN);
  CatchStopSignals(&g_stop);
  LiveScrapes live = WatchLive(f);
  model::BatchAnalysis a;
  a.model_path = source->spec.model_path;
  a.model_origin = source->origin;
  a.weights_note = source->weights_note;
  a.input_width = net->input_width();
  a.input_height = net->input_height();
  a.threads = net->threads();
  a.options = f.sweep;
  if (!g_stop.load()) {
    auto results = Sweep(&*net, *source, f.sweep, &a.detection_paused);
    if (!results.ok()) return Fail(1, "the sweep failed: " + results.status().message());
    a.results = std::move(*results);
  }
  a.interrupted = g_stop.load();
  a.choice = model::ChooseBestBatch(a.results, Budget(f, *source));
  live.target.context.budget_ms = a.choice.budget.ms;
  live.target.context.sweep_mismatch = Mismatch(live.target, a);
  a.live = live.reason.empty() ? model::AnalyseLiveBatch(live.start, live.end, live.window_s,
                                                         live.target.context, a.results)
                               : model::LiveNotMeasurable(live.reason);
  return Report(a, dir, f.json);
}

}  // namespace fs
