// framescope redis: what Redis and its clients did over --duration seconds (src/io/redis_window.h)
// into OUT/io/redis_analysis.json, with the terminal tables per client (source, op) and per
// command, and checklist 3.2 (pipeline efficiency over 80 %) as the exit code.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/net.h"
#include "src/base/output.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/io/redis_window.h"
#include "src/report/redis_report.h"
#include "src/session/io_targets.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};

constexpr const char* kRedisSummary =
    "Measures Redis and its clients over a window of --duration seconds.\n"
    "Client pipelining per service source and op, from each service's /metrics at the start\n"
    "and end: framescope_redis_commands_total, _pipelined_commands_total and\n"
    "_round_trips_total{source,op}; pipeline efficiency = pipelined / commands. A service\n"
    "restarted in the window is counted from its end values and named.\n"
    "The server's cross-check from INFO stats: Δtotal_commands_processed /\n"
    "Δtotal_reads_processed (commands per read), this command's own commands subtracted.\n"
    "Per command: INFO commandstats deltas (calls, usec, µs per call, rejected/failed) and\n"
    "p50/p99/p99.9 from LATENCY HISTOGRAM deltas, each as the power-of-two µs bucket it\n"
    "lies in; SLOWLOG entries new in the window; used_memory and keyspace growth. A Redis\n"
    "restart or CONFIG RESETSTAT in the window is reported and counted from it.\n"
    "Checklist 3.2: pipeline efficiency over all client services > 80 %; not measurable\n"
    "when no client exports the counters (then the server's commands per read alone).\n"
    "Targets: the running system in --state-dir (state.json), or --redis-url with any\n"
    "--metrics [NAME=][127.0.0.1:]PORT for the client services.\n"
    "Writes OUT/io/redis_analysis.json. Ctrl-C ends the window early and still writes.\n"
    "Exit codes: 0 ok, 1 Redis could not be reached / failure, 2 bad usage or output path,\n"
    "3 checklist 3.2 not met, 130 interrupted.";

struct RedisFlags {
  std::string state_dir = kDefaultStateDir;
  std::string redis_url;
  std::vector<std::string> metrics;
  double duration_s = 30;
  std::string out = "profiles";
  bool json = false;
};

int Usage(const std::string& message) {
  fprintf(stderr, "framescope redis: %s\n", message.c_str());
  return 2;
}

// Parses and validates; returns -1 to go on, else the exit code.
int ParseRedisFlags(int argc, char** argv, RedisFlags* f) {
  FlagSet flags("framescope redis", kRedisSummary);
  flags.String("state-dir", &f->state_dir, "the running system's state folder");
  flags.String("redis-url", &f->redis_url,
               "redis://[user:password@]host:port of a Redis outside the system");
  flags.StringList("metrics", &f->metrics,
                   "with --redis-url: a client service's /metrics, [NAME=][127.0.0.1:]PORT");
  flags.Double("duration", &f->duration_s, "seconds of the window, up to 86400");
  flags.Folder("out", &f->out, "output folder (the report goes to OUT/io/redis_analysis.json)");
  flags.Bool("json", &f->json, "print the analysis as JSON on standard output");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (!(f->duration_s > 0) || f->duration_s > 86400) {
    return Usage("--duration must be more than 0 and at most 86400 seconds");
  }
  if (flags.WasSet("redis-url") && flags.WasSet("state-dir")) {
    return Usage("give --redis-url or --state-dir, not both");
  }
  if (flags.WasSet("redis-url")) {
    const std::string& u = f->redis_url;
    if (u.find("://") != std::string::npos && u.rfind("redis://", 0) != 0) {
      return Usage("--redis-url must be redis://[user:password@]host:port");
    }
    std::string host;
    int port = 0;
    if (Status st = ParseHostPort(u, &host, &port); !st.ok()) {
      return Usage("--redis-url " + st.message());
    }
  }
  if (!f->metrics.empty() && f->redis_url.empty()) {
    return Usage(
        "--metrics goes with --redis-url (with --state-dir the services come from "
        "state.json)");
  }
  return -1;
}

// The window's targets from the flags or the running system; exit code on failure, else -1.
int ResolveTargets(const RedisFlags& f, std::string* url,
                   std::vector<io::MetricsEndpoint>* services) {
  if (!f.redis_url.empty()) {
    auto endpoints = ParseMetricsFlags(f.metrics);
    if (!endpoints.ok()) return Usage(endpoints.status().message());
    *services = std::move(*endpoints);
    *url = f.redis_url;
    return -1;
  }
  auto targets = ResolveIoTargets(f.state_dir);
  if (!targets.ok()) {
    fprintf(stderr, "framescope redis: %s (start it with framescope up, or give --redis-url)\n",
            targets.status().message().c_str());
    return 1;
  }
  if (targets->redis_url.empty()) {
    fprintf(stderr, "framescope redis: the system in %s runs no Redis\n", f.state_dir.c_str());
    return 1;
  }
  *url = targets->redis_url;
  *services = targets->services;
  return -1;
}

}  // namespace

int RedisMain(int argc, char** argv) {
  RedisFlags f;
  if (int code = ParseRedisFlags(argc, argv, &f); code >= 0) return code;
  std::string url;
  std::vector<io::MetricsEndpoint> services;
  if (int code = ResolveTargets(f, &url, &services); code >= 0) return code;
  const std::string dir = f.out + "/io", path = dir + "/redis_analysis.json";
  Status st = MakeDirs(dir).Annotate("--out: cannot create " + dir);
  if (st.ok()) st = CheckOutputs({path});
  if (!st.ok()) return Usage(st.message());
  signal(SIGPIPE, SIG_IGN);
  CatchStopSignals(&g_stop);
  io::RedisWindow window(url, services);
  window.Begin();
  if (!window.begin_error().empty()) {
    fprintf(stderr, "framescope redis: cannot reach %s (is Redis running? check --redis-url)\n",
            window.begin_error().c_str());
    return 1;
  }
  fprintf(stderr, "framescope redis: measuring %zu client service(s) for %.0f s\n", services.size(),
          f.duration_s);
  WaitWindow("framescope redis", f.duration_s, g_stop);
  window.End();
  const io::RedisAnalysis a = window.Analyse();
  const Json report = io::RedisToJson(a);
  if (Status w = WriteOutput(path, report.Dump(2) + "\n"); !w.ok()) {
    fprintf(stderr, "framescope redis: %s\n", w.message().c_str());
    return 1;
  }
  if (f.json) printf("%s\n", report.Dump(2).c_str());
  fprintf(f.json ? stderr : stdout, "%swrote %s\n", profile::RenderRedisText(a).c_str(),
          path.c_str());
  if (g_stop.load()) return 130;
  if (!a.redis_error.empty()) return 1;
  return a.verdict == "not met" ? 3 : 0;
}

}  // namespace fs
