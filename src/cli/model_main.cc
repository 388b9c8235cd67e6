// framescope model: the per-layer profile of the detection model (or any darknet/ONNX model):
// OpenCV's per-layer times over settled runs, each layer's FLOPs and achieved GFLOP/s, the
// totals against forward()'s wall time, a JSON report and a Chrome trace of one forward pass.
#include <signal.h>

#include <atomic>
#include <cstdio>

#include "src/base/file_util.h"
#include "src/base/output.h"
#include "src/base/stats.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/cli/model_source.h"
#include "src/session/model_run.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};

struct Flags {
  ModelFlags model;
  int batch = 0;
  int runs = 0;
  int warmup = 3;
  double max_seconds = 30;
  std::string out = "profiles";
  bool json = false;
  bool peak = true;
};

int Parse(int argc, char** argv, Flags* f) {
  FlagSet flags(
      "framescope model",
      "Per-layer profile of the detection model: warm-up, then timed forward passes\n"
      "until the median settles; per layer its median/p90 ms, share of the total,\n"
      "FLOPs and GFLOP/s. Writes OUT/models/<model>_profile.json (yolo_profile.json\n"
      "for YOLO models) and a Chrome trace OUT/models/<model>_trace.json (open it in\n"
      "ui.perfetto.dev or chrome://tracing). With a running system, its detection is\n"
      "paused while the model runs and resumed after.\n"
      "Exit codes: 0 ok, 1 failure, 2 bad usage or model, 3 checklist 2.2 not met (more than\n"
      "20 layers, under 50 ms per image), 130 interrupted.");
  AddModelFlags(&flags, &f->model);
  flags.Int("batch", &f->batch, "images per forward (default: the system's max_batch, else 1)");
  flags.Int("runs", &f->runs, "exactly N timed forwards (default: until the median settles)");
  flags.Int("warmup", &f->warmup, "untimed forwards first");
  flags.Double("max-seconds", &f->max_seconds, "stop the timed runs after this long");
  flags.Folder("out", &f->out, "output folder (files go to OUT/models)");
  flags.ShortName('o', "out");
  flags.Bool("peak", &f->peak,
             "measure the machine's FMA/GEMM/triad peak first (~1 s) and place each layer on "
             "its roofline (--no-peak: skip)");
  flags.Bool("json", &f->json, "print the JSON report instead of the table");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  std::string bad;
  if (f->batch < 0 || f->batch > 256) bad = "--batch: 1..256 (0: the system's)";
  if (f->runs < 0 || f->runs > 100000) bad = "--runs: 0 (until settled) or 1..100000";
  if (f->warmup < 0 || f->warmup > 1000) bad = "--warmup: 0..1000";
  if (!(f->max_seconds > 0 && f->max_seconds <= 3600)) bad = "--max-seconds: (0, 3600]";
  if (!bad.empty()) {
    fprintf(stderr, "framescope model: %s\n", bad.c_str());
    return 2;
  }
  return -1;
}

std::string Num(const Json& v, int decimals) {
  return v.is_number() ? Fixed(v.AsDouble(), decimals) : "-";
}

// trtexec's table: every timed layer (fused ones ran inside the layer named in the JSON).
void PrintTable(const Json& j) {
  printf("%-16s %-12s %-16s %9s %9s %6s %10s %9s %6s %s\n", "layer", "type", "output", "median ms",
         "p90 ms", "%", "MFLOP", "GFLOP/s", "%peak", "bound");
  for (const Json& l : j.Get("layer_timings").AsArray()) {
    if (l.Get("fused").AsBool()) continue;
    const Json& roof = l.Get("roofline");
    printf("%-16s %-12s %-16s %9.3f %9.3f %6.1f %10.1f %9s %6s %s\n",
           l.Get("name").AsString().c_str(), l.Get("type").AsString().c_str(),
           l.Get("output_shape").AsString().c_str(), l.Get("median_ms").AsDouble(),
           l.Get("p90_ms").AsDouble(), l.Get("percent_of_total").AsDouble(),
           l.Get("flops").AsDouble() / 1e6, Num(l.Get("gflops_per_s"), 1).c_str(),
           roof.Get("share_of_peak").is_number()
               ? Fixed(roof.Get("share_of_peak").AsDouble() * 100, 0).c_str()
               : "-",
           roof.Get("bound").is_string() ? roof.Get("bound").AsString().c_str() : "-");
  }
  const int64_t timed = j.Get("timed_layer_count").AsInt();
  printf("%lld layers timed (%lld fused into others), %lld runs after %lld warm-up%s\n",
         static_cast<long long>(timed),
         static_cast<long long>(j.Get("layer_count").AsInt() - timed),
         static_cast<long long>(j.Get("runs").AsInt()),
         static_cast<long long>(j.Get("warmup_runs").AsInt()),
         j.Get("settled").AsBool() ? " (median settled)" : " (median not settled)");
  printf("total (sum of layers) %s ms; forward() wall %s ms; unattributed %s ms\n",
         Num(j.Get("total_inference_time_ms"), 2).c_str(), Num(j.Get("forward_wall_ms"), 2).c_str(),
         Num(j.Get("unattributed_ms"), 2).c_str());
  if (j.Get("machine_peak").is_object()) {
    printf("machine peak: %s\n", j.Get("machine_peak").Get("summary").AsString().c_str());
  }
  const Json& c = j.Get("checklist");
  printf("checklist %s: %s (%s)\n", c.Get("item").AsString().c_str(),
         c.Get("verdict").AsString().c_str(), c.Get("reason").AsString().c_str());
}

// Prints the table (or the JSON), writes both files; returns the exit code.
int Report(const Flags& f, const ModelRun& run, const std::string& json_path,
           const std::string& trace_path) {
  if (!run.ok()) {
    fprintf(stderr, "framescope model: %s\n", run.profile.Get("error").AsString().c_str());
    return run.interrupted ? 130 : run.bad_model ? 2 : 1;
  }
  int code = run.interrupted ? 130 : 0;
  for (const auto& [path, json] :
       {std::pair{json_path, run.profile.Dump(2)}, std::pair{trace_path, run.trace.Dump()}}) {
    if (Status st = WriteOutput(path, json + "\n"); !st.ok()) {
      fprintf(stderr, "framescope model: %s\n", st.message().c_str());
      code = 1;
    }
  }
  if (f.json) {
    printf("%s\n", run.profile.Dump(2).c_str());
  } else {
    PrintTable(run.profile);
  }
  if (code == 1) return code;
  fprintf(stderr, "wrote %s and %s\n", json_path.c_str(), trace_path.c_str());
  if (code == 0 && run.profile.Get("checklist").Get("verdict").AsString() == "not met") return 3;
  return code;
}

}  // namespace

int ModelMain(int argc, char** argv) {
  Flags f;
  if (int code = Parse(argc, argv, &f); code >= 0) return code;
  auto src = ResolveModelSource(f.model);
  if (!src.ok()) {
    fprintf(stderr, "framescope model: %s\n", src.status().message().c_str());
    return 2;
  }
  if (!PathExists(src->spec.model_path)) {
    fprintf(stderr, "framescope model: model file %s does not exist\n",
            src->spec.model_path.c_str());
    return 2;
  }
  const std::string dir = f.out + "/models";
  const std::string name = ModelReportName(src->spec.model_path);
  const std::string json_path = f.out + "/" + ModelProfilePath(name);
  const std::string trace_path = f.out + "/" + ModelTracePath(name);
  Status st = MakeDirs(dir).Annotate("--out: cannot create " + dir);
  if (st.ok()) st = CheckOutputs({json_path, trace_path});
  if (!st.ok()) {
    fprintf(stderr, "framescope model: %s\n", st.message().c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  CatchStopSignals(&g_stop);
  ModelRunOptions o;
  o.batch = f.batch;
  o.measure_peak = f.peak;
  o.layers.warmup = f.warmup;
  if (f.runs > 0) o.layers.min_runs = o.layers.max_runs = f.runs;
  o.layers.max_seconds = f.max_seconds;
  o.layers.stop = &g_stop;
  o.layers.progress = [](int run, double s) {
    fprintf(stderr, "\rrun %d: %.1f ms   ", run, s * 1e3);
  };
  ModelRun run = RunModelProfile(
      *src, o, [](const std::string& line) { fprintf(stderr, "%s\n", line.c_str()); });
  fprintf(stderr, "\n");
  return Report(f, run, json_path, trace_path);
}

}  // namespace fs
