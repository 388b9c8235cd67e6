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
#include "src/model/layer_profile.h"

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
};

int Parse(int argc, char** argv, Flags* f) {
  FlagSet flags("framescope model",
                "Per-layer profile of the detection model: warm-up, then timed forward passes\n"
                "until the median settles; per layer its median/p90 ms, share of the total,\n"
                "FLOPs and GFLOP/s. Writes OUT/models/<model>_profile.json (yolo_profile.json\n"
                "for YOLO models) and a Chrome trace OUT/models/<model>_trace.json (open it in\n"
                "ui.perfetto.dev or chrome://tracing). With a running system, its detection is\n"
                "paused while the model runs and resumed after.\n"
                "Exit codes: 0 ok, 1 failure, 2 bad usage, 130 interrupted.");
  AddModelFlags(&flags, &f->model);
  flags.Int("batch", &f->batch, "images per forward (default: the system's max_batch, else 1)");
  flags.Int("runs", &f->runs, "exactly N timed forwards (default: until the median settles)");
  flags.Int("warmup", &f->warmup, "untimed forwards first");
  flags.Double("max-seconds", &f->max_seconds, "stop the timed runs after this long");
  flags.String("out", &f->out, "output folder (files go to OUT/models)");
  flags.ShortName('o', "out");
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

// "yolov3-tiny.cfg" -> "yolo": the checklist's name for the detection model's profile.
std::string ReportName(const std::string& model_path) {
  std::string base = model_path.substr(model_path.find_last_of('/') + 1);
  base = base.substr(0, base.find_last_of('.'));
  if (base.find("yolo") != std::string::npos) return "yolo";
  std::string safe;
  for (char c : base) safe += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return safe.empty() ? "model" : safe;
}

void PrintTable(const model::LayerProfile& p, const Json& j) {
  printf("%-4s %-16s %-12s %-16s %9s %9s %6s %10s %9s\n", "#", "layer", "type", "output",
         "median ms", "p90 ms", "%", "MFLOP", "GFLOP/s");
  for (size_t i = 0; i < p.layers.size(); ++i) {
    const auto& l = p.layers[i];
    if (l.fused) continue;
    const Json& lj = j.Get("layer_timings").AsArray()[i];
    printf("%-4zu %-16s %-12s %-16s %9.3f %9.3f %6.1f %10.1f %9s\n", i, l.info.name.c_str(),
           l.info.type.c_str(), model::ShapeText(l.info.output_shape).c_str(), l.median_ms,
           l.p90_ms, l.share * 100, static_cast<double>(l.info.flops) / 1e6,
           lj.Get("gflops_per_s").is_null() ? "-"
                                            : Fixed(lj.Get("gflops_per_s").AsDouble(), 1).c_str());
  }
  printf("%d layers timed (%lld fused into others), %d runs after %d warm-up%s\n",
         static_cast<int>(j.Get("timed_layer_count").AsInt()),
         static_cast<long long>(j.Get("layer_count").AsInt() - j.Get("timed_layer_count").AsInt()),
         p.runs, p.warmup, p.settled ? " (median settled)" : " (median not settled)");
  printf("total (sum of layers) %.2f ms; forward() wall %.2f ms; unattributed %.2f ms\n",
         p.total_ms, p.forward_wall_ms, p.forward_wall_ms - p.total_ms);
  printf("checklist %s: %s (%s)\n", j.Get("checklist").Get("item").AsString().c_str(),
         j.Get("checklist").Get("verdict").AsString().c_str(),
         j.Get("checklist").Get("reason").AsString().c_str());
}

int Run(const Flags& f, const ModelSource& src, const std::string& json_path,
        const std::string& trace_path) {
  auto net = model::ModelNet::Load(src.spec);
  if (!net.ok()) {
    fprintf(stderr, "framescope model: %s\n", net.status().message().c_str());
    return 1;
  }
  model::LayerProfileOptions o;
  o.batch = f.batch > 0 ? f.batch : src.max_batch;
  o.warmup = f.warmup;
  if (f.runs > 0) o.min_runs = o.max_runs = f.runs;
  o.max_seconds = f.max_seconds;
  o.stop = &g_stop;
  o.progress = [](int run, double s) { fprintf(stderr, "\rrun %d: %.1f ms   ", run, s * 1e3); };
  model::ProfileContext c{src.origin, src.weights_note, o.batch, net->threads(), false};
  StatusOr<model::LayerProfile> p = Err("not run");
  {
    DetectionPause pause(src.detection_pid);
    c.detection_paused = pause.paused();
    fprintf(stderr, "%s, input %dx%d, batch %d, %d threads\n", src.spec.model_path.c_str(),
            net->input_width(), net->input_height(), o.batch, c.threads);
    p = model::ProfileLayers(&*net, o);
  }
  fprintf(stderr, "\n");
  if (!p.ok()) {
    fprintf(stderr, "framescope model: %s\n", p.status().message().c_str());
    return g_stop.load() ? 130 : 1;
  }
  Json j = model::LayerProfileJson(*p, *net, c);
  Status st = WriteOutput(json_path, j.Dump(2) + "\n");
  Status tst = WriteOutput(trace_path,
                           model::ChromeTrace(*p, ReportName(src.spec.model_path)).Dump() + "\n");
  if (f.json) {
    printf("%s\n", j.Dump(2).c_str());
  } else {
    PrintTable(*p, j);
  }
  for (const Status* s : {&st, &tst}) {
    if (!s->ok()) fprintf(stderr, "framescope model: %s\n", s->message().c_str());
  }
  if (!st.ok() || !tst.ok()) return 1;
  fprintf(stderr, "wrote %s and %s\n", json_path.c_str(), trace_path.c_str());
  return g_stop.load() ? 130 : 0;
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
  const std::string name = ReportName(src->spec.model_path);
  const std::string json_path = dir + "/" + name + "_profile.json";
  const std::string trace_path = dir + "/" + name + "_trace.json";
  Status st = MakeDirs(dir).Annotate("--out: cannot create " + dir);
  if (st.ok()) st = CheckOutputs({json_path, trace_path});
  if (!st.ok()) {
    fprintf(stderr, "framescope model: %s\n", st.message().c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  CatchStopSignals(&g_stop);
  return Run(f, *src, json_path, trace_path);
}

}  // namespace fs
