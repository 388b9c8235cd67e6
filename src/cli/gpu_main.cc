// framescope gpu: GPU telemetry alone (NVML, every GPU) for --duration seconds into
// OUT/gpu/nsight_report.json: a timeline per GPU and the averages gpu_utilization_avg and
// memory_bandwidth_efficiency, each with its counter, or null with the reason.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/output.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/gpu/gpu_report.h"
#include "src/gpu/gpu_sampler.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};

constexpr const char* kGpuSummary =
    "Samples every GPU through NVML (libnvidia-ml.so.1, loaded at run time: no driver, no\n"
    "GPU data, and the command says so) every --interval-ms for --duration seconds, and\n"
    "writes OUT/gpu/nsight_report.json: per GPU a timeline of utilization.gpu (share of time\n"
    "a kernel ran), utilization.memory (share of TIME memory was busy: not bandwidth), memory\n"
    "used/total and, where the driver and GPU have them, power, SM/memory clocks,\n"
    "temperature, PCIe throughput, per-process utilisation and GPM DRAM bandwidth / SM\n"
    "occupancy (Hopper and later); what is not available is listed with the reason.\n"
    "gpu_utilization_avg = mean utilization.gpu / 100; memory_bandwidth_efficiency = mean GPM\n"
    "DRAM_BW_UTIL / 100 (only from that bandwidth counter). Without them: null with the\n"
    "reason, never 0. Ctrl-C writes what was sampled.\n"
    "Exit codes: 0 ok (also without a GPU: the report says why), 1 failure, 2 bad usage or\n"
    "output, 130 interrupted (the report is written).";

struct GpuFlags {
  double duration_s = 10;
  int interval_ms = 1000;
  std::string out = "profiles";
  bool json = false;
};

// Parses and validates; returns -1 to go on, else the exit code.
int ParseGpuFlags(int argc, char** argv, GpuFlags* f) {
  FlagSet flags("framescope gpu", kGpuSummary);
  flags.Double("duration", &f->duration_s, "seconds to sample, up to 7 days");
  flags.Int("interval-ms", &f->interval_ms,
            "milliseconds between samples, 100..60000 (GPM needs >= 100 ms)");
  flags.Folder("out", &f->out, "output folder (the report goes to OUT/gpu/nsight_report.json)");
  flags.Bool("json", &f->json, "print the report as JSON on standard output");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  auto usage = [](const char* message) {
    fprintf(stderr, "framescope gpu: %s\n", message);
    return 2;
  };
  if (!(f->duration_s > 0) || f->duration_s > 7 * 86400.0) {
    return usage("--duration must be more than 0 and at most 604800 seconds");
  }
  if (f->interval_ms < 100 || f->interval_ms > 60000) {
    return usage("--interval-ms must be 100..60000");
  }
  if (f->interval_ms / 1000.0 > f->duration_s) {
    return usage("--interval-ms must not be longer than --duration");
  }
  return -1;
}

// "0.42 (counter)" or "null: reason".
std::string MeasuredText(const gpu::Measured& m) {
  char v[32];
  if (!m.value) return "null (not measurable: " + m.reason + ")";
  snprintf(v, sizeof(v), "%.2f", *m.value);
  return std::string(v) + " (" + m.counter + ")";
}

void PrintSummary(const gpu::GpuTelemetry& t, const std::string& path, FILE* out) {
  if (!t.unavailable.empty()) {
    fprintf(out, "GPU telemetry not measurable: %s\n", t.unavailable.c_str());
  }
  for (const gpu::GpuTimeline& g : t.gpus) {
    fprintf(out, "GPU %u %s: %zu samples", g.index, g.name.c_str(), g.samples.size());
    if (g.lost_at_s) fprintf(out, "; lost: %s", g.lost_reason.c_str());
    fprintf(out, "; not available: %zu metric(s)\n", g.not_available.size());
  }
  const gpu::Measured util = gpu::GpuUtilizationAvg(t.gpus, t.unavailable);
  const gpu::Measured bw = gpu::MemoryBandwidthEfficiency(t.gpus, t.unavailable);
  fprintf(out, "gpu_utilization_avg %s; target > %.1f: %s\n", MeasuredText(util).c_str(),
          gpu::kGpuUtilizationTarget, gpu::Verdict(util, gpu::kGpuUtilizationTarget).c_str());
  fprintf(out, "memory_bandwidth_efficiency %s; target > %.1f: %s\n", MeasuredText(bw).c_str(),
          gpu::kMemoryBandwidthTarget, gpu::Verdict(bw, gpu::kMemoryBandwidthTarget).c_str());
  fprintf(out, "wrote %s%s\n", path.c_str(),
          t.unavailable.empty() ? "" : " (null averages, with the reason)");
}

}  // namespace

int GpuMain(int argc, char** argv) {
  GpuFlags f;
  if (int code = ParseGpuFlags(argc, argv, &f); code >= 0) return code;
  const std::string dir = f.out + "/gpu", path = dir + "/nsight_report.json";
  Status st = MakeDirs(dir).Annotate("--out: cannot create " + dir);
  if (st.ok()) st = CheckOutputs({path});
  if (!st.ok()) {
    fprintf(stderr, "framescope gpu: %s\n", st.message().c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  CatchStopSignals(&g_stop);
  gpu::GpuSampler sampler;
  sampler.Start(f.interval_ms / 1000.0);
  WaitWindow("framescope gpu", f.duration_s, g_stop);
  const gpu::GpuTelemetry t = sampler.Stop();
  const Json report = gpu::GpuReportJson(t);
  if (Status w = WriteOutput(path, report.Dump(2) + "\n"); !w.ok()) {
    fprintf(stderr, "framescope gpu: %s\n", w.message().c_str());
    return 1;
  }
  if (f.json) printf("%s\n", report.Dump(2).c_str());
  PrintSummary(t, path, f.json ? stderr : stdout);
  return g_stop.load() ? 130 : 0;
}

}  // namespace fs
