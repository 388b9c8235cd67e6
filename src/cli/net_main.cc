// framescope net: the network latency map over a window of --duration seconds: every edge's
// request rate, p50 and p99 with the bucket each lies in, and checklist 3.3 (p99 under 5 ms)
// counted exactly from the buckets. OUT/io/network_map.json and OUT/io/network_map.svg.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/net.h"
#include "src/base/output.h"
#include "src/base/stats.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/io/net_window.h"
#include "src/report/edge_graph.h"
#include "src/session/io_targets.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};

constexpr const char* kNetSummary =
    "Measures every service-to-service edge over a window: the client-side histogram\n"
    "framescope_client_request_duration_seconds{source,target,op} (detection/aggregation/api ->\n"
    "redis, aggregation/api -> postgres, apiclient -> api) and the api's server side\n"
    "http_request_duration_seconds{route}. Their _bucket, _count and _sum are read at the\n"
    "window's start and end and subtracted: from Prometheus' query API when it runs and answers\n"
    "(values as of its last scrape, every 5 s), else scraped from every service's /metrics\n"
    "directly; the report says which and why. Per edge and op: requests, rate, p50 and p99\n"
    "(interpolated as histogram_quantile does, with the bucket the true value lies in) and the\n"
    "share of requests <= 5 ms counted exactly from bucket le=\"0.005\". Checklist 3.3 is met\n"
    "when every edge with traffic has >= 99 % of its requests <= 5 ms. A counter that went down\n"
    "(a restarted service) is counted from its end value and reported. Writes\n"
    "OUT/io/network_map.json and OUT/io/network_map.svg.\n"
    "Targets: the system in --state-dir (Prometheus' port and every service's /metrics), or\n"
    "--prometheus-url and/or --metrics [name=]127.0.0.1:PORT (repeatable; name is the service).\n"
    "Exit codes: 0 ok, 1 nothing could be read (or a failure), 2 bad usage or output path,\n"
    "3 checklist 3.3 not met, 130 interrupted (the window so far is analysed and written).";

struct NetFlags {
  std::string state_dir = kDefaultStateDir;
  std::string prometheus_url;
  std::vector<std::string> metrics;  // every --metrics value
  double duration_s = 30;
  std::string out = "profiles";
  bool json = false;
};

int Usage(const std::string& message) {
  fprintf(stderr, "framescope net: %s\n", message.c_str());
  return 2;
}

// Parses and validates; returns -1 to go on, else the exit code.
int ParseNetFlags(int argc, char** argv, NetFlags* f) {
  FlagSet flags("framescope net", kNetSummary);
  flags.String("state-dir", &f->state_dir, "state folder of the running system (framescope up)");
  flags.String("prometheus-url", &f->prometheus_url,
               "Prometheus' host:port (instead of the system's)");
  flags.StringList("metrics", &f->metrics,
                   "[name=]127.0.0.1:PORT of a service's /metrics to scrape (replicas of one "
                   "service share its name)");
  flags.Double("duration", &f->duration_s, "seconds of the window, up to 7 days");
  flags.Folder("out", &f->out, "output folder (OUT/io/network_map.json and .svg)");
  flags.Bool("json", &f->json, "print the report as JSON on standard output");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (!(f->duration_s > 0) || f->duration_s > 7 * 86400.0) {
    return Usage("--duration must be more than 0 and at most 604800 seconds");
  }
  if (flags.WasSet("state-dir") && (!f->prometheus_url.empty() || !f->metrics.empty())) {
    return Usage("--state-dir and --prometheus-url/--metrics exclude each other");
  }
  return -1;
}

// The window's targets: the flags' or the running system's. Exit code on error, else -1.
int ResolveTargets(const NetFlags& f, std::string* prom_host, int* prom_port,
                   std::vector<io::MetricsEndpoint>* services) {
  if (f.prometheus_url.empty() && f.metrics.empty()) {
    auto t = ResolveIoTargets(f.state_dir);
    if (!t.ok()) {
      fprintf(stderr,
              "framescope net: %s\n(start the system with `framescope up`, or give "
              "--prometheus-url / --metrics)\n",
              t.status().message().c_str());
      return 1;
    }
    *prom_port = t->prometheus_port;
    *services = t->services;
    return -1;
  }
  if (!f.prometheus_url.empty()) {
    std::string url = f.prometheus_url;
    if (url.rfind("http://", 0) == 0) url = url.substr(7);
    if (!url.empty() && url.back() == '/') url.pop_back();
    if (Status st = ParseHostPort(url, prom_host, prom_port); !st.ok()) {
      return Usage("--prometheus-url: " + st.message());
    }
  }
  auto endpoints = ParseMetricsFlags(f.metrics);
  if (!endpoints.ok()) return Usage(endpoints.status().message());
  *services = std::move(*endpoints);
  return -1;
}

std::string Q(const std::optional<BucketQuantile>& q) {
  if (!q) return "-";
  auto ms = [](double s) { return std::isinf(s) ? std::string("+Inf") : Fixed(s * 1000, 2); };
  return ms(q->value) + " (" + ms(q->lower) + "," + ms(q->upper) + "]";
}

void PrintTable(const io::EdgeMap& m, const std::vector<std::string>& paths, FILE* out) {
  if (!m.unavailable.empty()) fprintf(out, "not measurable: %s\n", m.unavailable.c_str());
  if (!m.source.empty()) {
    fprintf(out, "source: %s (%s); window %.1f s\n", m.source.c_str(), m.source_reason.c_str(),
            m.window_s);
  }
  for (const std::string& n : m.notes) fprintf(out, "note: %s\n", n.c_str());
  if (!m.edges.empty()) {
    fprintf(out, "%-40s %9s %9s %-22s %-22s %-9s %s\n", "edge", "requests", "rate/s",
            "p50 ms (bucket]", "p99 ms (bucket]", "<=5ms", "verdict");
  }
  for (const io::NetEdge& e : m.edges) {
    const io::EdgeStats& s = e.total;
    fprintf(out, "%-40s %9.0f %9.2f %-22s %-22s %-9s %s%s\n", io::EdgeName(e).c_str(), s.requests,
            s.rate, Q(s.p50).c_str(), Q(s.p99).c_str(),
            s.fast_share ? (Fixed(*s.fast_share * 100, 2) + "%").c_str() : "-", s.verdict.c_str(),
            s.reset ? " (reset in window)" : "");
  }
  fprintf(out, "checklist %s: %s (%s)\n", io::kNetChecklistItem, m.checklist.verdict.c_str(),
          m.checklist.reason.c_str());
  for (const std::string& p : paths) fprintf(out, "wrote %s\n", p.c_str());
}

}  // namespace

int NetMain(int argc, char** argv) {
  NetFlags f;
  if (int code = ParseNetFlags(argc, argv, &f); code >= 0) return code;
  std::string prom_host = "127.0.0.1";
  int prom_port = 0;
  std::vector<io::MetricsEndpoint> services;
  if (int code = ResolveTargets(f, &prom_host, &prom_port, &services); code >= 0) return code;
  const std::string dir = f.out + "/io", json_path = dir + "/network_map.json",
                    svg_path = dir + "/network_map.svg";
  Status st = MakeDirs(dir).Annotate("--out: cannot create " + dir);
  if (st.ok()) st = CheckOutputs({json_path, svg_path});
  if (!st.ok()) return Usage(st.message());
  signal(SIGPIPE, SIG_IGN);
  CatchStopSignals(&g_stop);
  io::NetWindow window(prom_port, services, prom_host);
  window.Begin();
  WaitWindow("framescope net", f.duration_s, g_stop);
  window.End();
  const io::EdgeMap m = window.Analyse();
  const Json report = io::NetToJson(m);
  for (const auto& [path, text] : {std::pair{json_path, report.Dump(2) + "\n"},
                                   std::pair{svg_path, profile::EdgeGraphSvgFile(m)}}) {
    if (Status w = WriteOutput(path, text); !w.ok()) {
      fprintf(stderr, "framescope net: %s\n", w.message().c_str());
      return 1;
    }
  }
  if (f.json) printf("%s\n", report.Dump(2).c_str());
  PrintTable(m, {json_path, svg_path}, f.json ? stderr : stdout);
  if (g_stop.load()) return 130;
  if (!m.unavailable.empty()) return 1;
  return m.checklist.verdict == "not met" ? 3 : 0;
}

}  // namespace fs
