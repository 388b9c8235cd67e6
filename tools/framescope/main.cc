// framescope: the subcommand table, nothing else.
#include <cstdio>
#include <cstring>

#include "src/cli/cli.h"
#include "src/session/build_info.h"

namespace {

struct Command {
  const char* name;
  int (*main)(int, char**);
  const char* summary;
};

constexpr Command kCommands[] = {
    {"up", fs::UpMain, "start the reference system (cameras ... api, PostgreSQL, Prometheus)"},
    {"status", fs::StatusMain, "show services, health, frames and FPS"},
    {"logs", fs::LogsMain, "print service logs"},
    {"down", fs::DownMain, "stop the reference system"},
    {"profile", fs::ProfileMain,
     "profile every service of the running system: flame graphs, summary, baseline"},
    {"record", fs::RecordMain, "CPU profile of processes or services (pprof + folded)"},
    {"flamegraph", fs::FlamegraphMain, "flame graph HTML (self-contained) from a pprof profile"},
    {"diff", fs::DiffMain, "differential flame graph of two profiles"},
    {"memory", fs::MemoryMain, "memory series and leak rate (MB/h, 95% interval) of processes"},
    {"model", fs::ModelMain,
     "per-layer profile of the detection model: ms, FLOPs, GFLOP/s per layer, Chrome trace"},
    {"gpu", fs::GpuMain, "GPU utilisation timeline (NVML): OUT/gpu/nsight_report.json"},
    {"heap-off", fs::HeapOffMain,
     "roll heap profiling back: restart each service without the preload library"},
    {"batch", fs::BatchMain,
     "detection model throughput and p99 against batch size; live batching"},
    {"db", fs::DbMain,
     "PostgreSQL statements over a window, slow ones planned, HypoPG index advice, --apply"},
    {"redis", fs::RedisMain,
     "Redis pipelining per client and op, commands, latency, slow log over a window"},
    {"net", fs::NetMain,
     "latency map of every service edge: p50/p99 against 5 ms (OUT/io/network_map.json, .svg)"},
    {"schedule", fs::ScheduleMain,
     "continuous profiling: install/status/remove a timer or cron entry; run; history page"},
    {"compare", fs::CompareMain,
     "regression verdicts between two sets of runs or profiles: statistics, alerts"},
    {"_supervise", fs::SuperviseMain, nullptr},
};

void Usage(FILE* out) {
  fprintf(out,
          "usage: framescope <command> [flags]\n\n"
          "framescope profiles a multi-camera video-analytics system without code changes.\n\n"
          "commands:\n");
  for (const auto& c : kCommands) {
    if (c.summary) fprintf(out, "  %-10s %s\n", c.name, c.summary);
  }
  fprintf(out, "\nRun `framescope <command> --help` for a command's flags.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
      !strcmp(argv[1], "help")) {
    Usage(stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
    printf("framescope %s (revision %s)\n", fs::FramescopeVersion(), fs::FramescopeRevision());
    return 0;
  }
  for (const auto& c : kCommands) {
    if (!strcmp(argv[1], c.name)) return c.main(argc - 1, argv + 1);
  }
  fprintf(stderr, "framescope: unknown command \"%s\"\n\n", argv[1]);
  Usage(stderr);
  return 2;
}
