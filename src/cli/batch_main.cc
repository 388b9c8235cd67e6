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

#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/output.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/cli/model_source.h"
#include "src/model/batch_analysis.h"
#include "src/model/model_net.h"
#include "src/report/batch_chart.h"
#include "src/session/batch_run.h"

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
    "agree within 10% (largest / smallest) on both throughput and p99 latency (Triton\n"
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
  flags.Folder("out", &f->out, "output folder (files go to OUT/models/)");
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

// The live window, before the sweep (detection must be running for it): --live-seconds between
// two scrapes of detection's /metrics, shorter on Ctrl-C.
LiveWindow WatchLive(const BatchFlags& f) {
  LiveWindow live;
  if (f.live_seconds <= 0) return live;  // "not measured: no live window"
  live.Begin(f.model.state_dir);
  if (live.failed()) return live;
  fprintf(stderr, "live view: watching detection's batching for %.0f s\n", f.live_seconds);
  while (!g_stop.load() && live.elapsed_s() < f.live_seconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  live.End();
  return live;
}

void PrintProgress(const model::BatchResult& r) {
  fprintf(stderr, "\rbatch %3d: %8.2f images/s, p50 %8.1f ms, p99 %8.1f ms, %zu windows, %s\n",
          r.batch, r.throughput_ips, r.p50_ms, r.p99_ms, r.windows.size(),
          r.stable ? "stable" : ("unstable: " + r.unstable_reason).c_str());
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
  LiveWindow live = WatchLive(f);
  BatchRunOptions o;
  o.sweep = f.sweep;
  o.budget_ms = f.budget_ms;
  o.stop = &g_stop;
  o.on_forward = [](int batch, int forward) {
    // A batch of 32 at 416x416 can take seconds per forward on a CPU: a counter meanwhile.
    fprintf(stderr, "\rbatch %3d: forward %d ", batch, forward);
    fflush(stderr);
  };
  o.on_batch = PrintProgress;
  o.message = [](const std::string& line) { fprintf(stderr, "%s\n", line.c_str()); };
  auto a = RunBatchAnalysis(&*net, *source, o, &live);
  if (!a.ok()) return Fail(1, "the sweep failed: " + a.status().message());
  return Report(*a, dir, f.json);
}

}  // namespace fs
