// model_benchmark: how close `framescope model` gets to the truth, and what it costs. The same
// model with the same weights is timed by framescope-modelbench (raw net.forward() in a loop,
// the reference) and by `framescope model` (per-layer ticks after every forward), in
// interleaved repetitions. Per repetition:
//   layers/raw  = framescope model's total (sum of layer times, median) / modelbench's median
//                 ms per forward: does the per-layer sum account for the forward time?
//   wall/raw    = framescope model's own forward() wall median / modelbench's: does reading
//                 the per-layer profile slow the forward passes down?
// Printed as the median ratio and its range; plus the wall time of the whole `framescope model`
// and `framescope batch` commands (load, warm-up, runs, writing the reports).
//
// Usage: model_benchmark [--reps 5] [--forwards 20] [--model CFG] [--batches 1,2,4,8]
//                        [--json-out FILE]
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/json.h"

namespace fs::bench {
namespace {

struct Config {
  int reps = 5;
  int forwards = 20;
  std::string model = "/usr/share/darknet/cfg/yolov3-tiny.cfg";
  std::string batches = "1,2,4,8";
  std::string json_out;
  std::string bin;  // this program's folder: framescope and framescope-modelbench beside it
  std::string tmp;
};

// Runs `cmd`, returns its JSON output (from the first '{') and its wall seconds.
StatusOr<Json> RunJson(const std::string& cmd, double* wall_s) {
  int code = 0;
  const int64_t start = MonotonicNs();
  // A group: RunCommand appends 2>&1, which must not undo the command's own 2>/dev/null.
  std::string out = RunCommand("{ " + cmd + "; }", &code);
  *wall_s = static_cast<double>(MonotonicNs() - start) / 1e9;
  // 3 is a checklist verdict not met (`batch` on a CPU): the JSON is the result all the same.
  if (code != 0 && code != 3) {
    return Err("`" + cmd + "` exited " + std::to_string(code) + ":\n" + out);
  }
  size_t brace = out.find('{');
  if (brace == std::string::npos) return Err("no JSON from `" + cmd + "`:\n" + out);
  return Json::Parse(out.substr(brace));
}

struct Rep {
  double layers_ms = NAN, wall_ms = NAN, raw_ms = NAN, model_cmd_s = NAN, batch_cmd_s = NAN;
};

Status RunRep(const Config& c, const std::string& weights, int rep, Rep* r) {
  const std::string model_cmd = c.bin + "/framescope model --model " + c.model + " --weights " +
                                weights + " --batch 1 --warmup 2 --runs " +
                                std::to_string(c.forwards) + " --out " + c.tmp +
                                " --json 2>/dev/null";
  const std::string raw_cmd = c.bin + "/framescope-modelbench --json --model " + c.model +
                              " --weights " + weights + " --batch 1 --warmup 2 --forwards " +
                              std::to_string(c.forwards) + " 2>/dev/null";
  double wall = 0;
  // Alternate which goes first, so drift on the shared cores hits both alike.
  for (int k = 0; k < 2; ++k) {
    if ((k == 0) == (rep % 2 == 0)) {
      ASSIGN_OR_RETURN(Json m, RunJson(model_cmd, &wall));
      r->layers_ms = m.Get("total_inference_time_ms").AsDouble(NAN);
      r->wall_ms = m.Get("forward_wall_ms").AsDouble(NAN);
      r->model_cmd_s = wall;
    } else {
      ASSIGN_OR_RETURN(Json raw, RunJson(raw_cmd, &wall));
      r->raw_ms = raw.Get("ms_per_forward_median").AsDouble(NAN);
    }
  }
  ASSIGN_OR_RETURN(
      Json b, RunJson(c.bin + "/framescope batch --model " + c.model + " --weights " + weights +
                          " --batches " + c.batches + " --out " + c.tmp + " --json 2>/dev/null",
                      &wall));
  r->batch_cmd_s = wall;
  return Status::Ok();
}

int Main(int argc, char** argv) {
  Config c;
  FlagSet flags("model_benchmark", "framescope model vs framescope-modelbench (see the source)");
  flags.Int("reps", &c.reps, "interleaved repetitions");
  flags.Int("forwards", &c.forwards, "timed forwards per command");
  flags.String("model", &c.model, "darknet .cfg");
  flags.String("batches", &c.batches, "batch sizes for the timed `framescope batch`");
  flags.String("json-out", &c.json_out, "also write the results here");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  c.bin = SelfExeDir();
  c.tmp = "/tmp/framescope-model-bench-" + std::to_string(getpid());
  // modelbench synthesises the weights into its cache; both then load that same file.
  int rc = 0;
  RunCommand(c.bin + "/framescope-modelbench --model " + c.model + " --cache-dir " + c.tmp +
                 " --forwards 1 --warmup 0",
             &rc);
  std::string stem = c.model.substr(c.model.find_last_of('/') + 1);
  stem = stem.substr(0, stem.find_last_of('.'));
  const std::string weights = c.tmp + "/" + stem + "-synth-1.weights";
  if (rc != 0 || !PathExists(weights)) {
    fprintf(stderr, "model_benchmark: modelbench did not synthesise %s\n", weights.c_str());
    return 1;
  }
  std::vector<double> layers_ratio, wall_ratio, model_s, batch_s;
  Json reps = Json::MakeArray();
  for (int i = 0; i < c.reps; ++i) {
    Rep r;
    if (Status st = RunRep(c, weights, i, &r); !st.ok()) {
      fprintf(stderr, "model_benchmark: %s\n", st.message().c_str());
      return 1;
    }
    layers_ratio.push_back(r.layers_ms / r.raw_ms);
    wall_ratio.push_back(r.wall_ms / r.raw_ms);
    model_s.push_back(r.model_cmd_s);
    batch_s.push_back(r.batch_cmd_s);
    fprintf(
        stderr,
        "rep %d: layers %.2f ms, wall %.2f ms, modelbench %.2f ms; model %.1f s, batch %.1f s\n",
        i + 1, r.layers_ms, r.wall_ms, r.raw_ms, r.model_cmd_s, r.batch_cmd_s);
    Json j = Json::MakeObject();
    j["layers_ms"] = r.layers_ms;
    j["wall_ms"] = r.wall_ms;
    j["modelbench_ms"] = r.raw_ms;
    j["model_command_s"] = r.model_cmd_s;
    j["batch_command_s"] = r.batch_cmd_s;
    reps.Push(j);
  }
  RunCommand("rm -rf " + c.tmp, &rc);
  auto line = [](const char* what, const Spread& s, const char* fmt) {
    printf("%-44s median %s  (range %s .. %s)\n", what, Fmt(fmt, s.median).c_str(),
           Fmt(fmt, s.lo).c_str(), Fmt(fmt, s.hi).c_str());
  };
  printf("model_benchmark: %s, batch 1, %d forwards per command, %d interleaved reps\n",
         c.model.c_str(), c.forwards, c.reps);
  line("per-layer total / modelbench forward", Summarize(layers_ratio), "%.3f");
  line("model's forward wall / modelbench forward", Summarize(wall_ratio), "%.3f");
  line("framescope model command, s", Summarize(model_s), "%.1f");
  line(("framescope batch --batches " + c.batches + ", s").c_str(), Summarize(batch_s), "%.1f");
  if (!c.json_out.empty()) {
    Json j = Json::MakeObject();
    j["model"] = c.model;
    j["forwards"] = c.forwards;
    j["layers_over_modelbench"] = SpreadJson(Summarize(layers_ratio));
    j["wall_over_modelbench"] = SpreadJson(Summarize(wall_ratio));
    j["model_command_s"] = SpreadJson(Summarize(model_s));
    j["batch_command_s"] = SpreadJson(Summarize(batch_s));
    j["reps"] = reps;
    if (Status st = WriteFileAtomic(c.json_out, j.Dump(2) + "\n"); !st.ok()) {
      fprintf(stderr, "model_benchmark: %s\n", st.message().c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace fs::bench

int main(int argc, char** argv) { return fs::bench::Main(argc, argv); }
