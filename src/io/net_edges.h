// The network latency map's arithmetic, apart from where the numbers come from: latency
// histograms read at a window's start and end (from Prometheus or scraped directly) become
// per-edge windowed counts, p50/p99 with the bucket each lies in, and the 5 ms check made exactly
// from the bucket counts. Pure functions over plain data, so the tests can feed known histograms.
#ifndef FRAMESCOPE_IO_NET_EDGES_H_
#define FRAMESCOPE_IO_NET_EDGES_H_

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "src/clients/prom_text.h"

namespace fs::io {

// The client side of every edge: source, target and op labels (src/clients/*_client.cc,
// services/api/api_client.cc).
inline constexpr const char* kClientHistogram = "framescope_client_request_duration_seconds";
// The api's server side: route label (services/api/api_server.cc); the target is the service
// that exports it, the source any client.
inline constexpr const char* kServerHistogram = "http_request_duration_seconds";
// Source of a server-side edge: every client of the server, Prometheus' scrapes included.
inline constexpr const char* kAnyClient = "clients";
// The goal of checklist 3.3: a request is fast when it took at most 5 ms, and an edge meets the
// goal when at least 99 % of its requests were fast (its p99 is under 5 ms).
inline constexpr double kFastSeconds = 0.005;
inline constexpr double kFastShareGoal = 0.99;

// One histogram series: one edge and op as seen by one exporter (a Prometheus job/instance or a
// scraped service), so a restart of one exporter is found on its own series.
struct SeriesKey {
  std::string source, target, op;
  bool server_side = false;  // from kServerHistogram
  std::string exporter;      // job/instance or the scraped service's name
  auto Tie() const { return std::tie(source, target, op, server_side, exporter); }
  bool operator<(const SeriesKey& o) const { return Tie() < o.Tie(); }
};

struct HistCounts {
  std::map<double, double> cumulative;  // le -> observations <= le (+Inf included)
  double count = 0;                     // _count
  double sum = 0;                       // _sum, seconds
};

using HistSnapshot = std::map<SeriesKey, HistCounts>;

// Adds the latency histograms among `samples` (any other metric is ignored) to `out`, summing
// samples that fall on one series. `exporter` names where they came from and must differ per
// endpoint (two replicas of one service are two exporters: deltas and resets are per exporter,
// and BuildEdges sums the exporters); `service` is the exporting service (the target of the
// server side), or "" to take it from the sample's own "service"/"job" label (Prometheus').
void AddHistogramSamples(const std::vector<PromSample>& samples, const std::string& exporter,
                         const std::string& service, HistSnapshot* out);

// The windowed counts of every series: end - begin. A series whose counts went down was reset
// (its exporter restarted): its end values are the window's (a lower bound) and it is listed in
// *resets. A series new at the end started from zero in the window.
HistSnapshot WindowDelta(const HistSnapshot& begin, const HistSnapshot& end,
                         std::vector<SeriesKey>* resets);

struct EdgeStats {
  std::string op;                          // "" for the edge's total over its ops
  double requests = 0;                     // Δ_count
  double rate = 0;                         // requests / window seconds
  double mean_s = 0;                       // Δ_sum / Δ_count (0 when idle)
  std::optional<BucketQuantile> p50, p99;  // nullopt when idle
  // Share of requests <= 5 ms: Δbucket{le="0.005"} / Δ_count; nullopt when idle or when 0.005
  // is not a bound of every series summed here (then `verdict` is "not measurable").
  std::optional<double> fast_share;
  double fast_requests = 0;
  std::string verdict;  // "met", "not met", "idle", "not measurable", "not judged" (blocking)
  std::string reason;   // the numbers behind the verdict
  bool reset = false;   // a series summed here was reset in the window
  // A blocking read (XREADGROUP ... BLOCK, BLPOP, ...): shown per op with verdict "not judged",
  // left out of the edge's total, since its latency is mostly the wait for data.
  bool blocking = false;
};

struct NetEdge {
  std::string source, target;
  bool server_side = false;
  EdgeStats total;
  std::vector<EdgeStats> ops;  // per op (client) or route (server), by name
};

// Sums the windowed series into edges (all exporters and ops together, blocking reads left out)
// and their per-op detail.
// Buckets are summed only at bounds every summed series has (a bound missing from one series
// would make the sum wrong there).
// Rates divide each series' count by its exporter's own window in `exporter_window_s` (for
// Prometheus: the time between the exporter's two scrapes), or by `window_s` for an exporter
// not there.
std::vector<NetEdge> BuildEdges(const HistSnapshot& delta, const std::vector<SeriesKey>& resets,
                                double window_s,
                                const std::map<std::string, double>& exporter_window_s = {});

// Statistics of one summed histogram over `window_s`.
EdgeStats StatsOf(const HistCounts& h, double window_s);

struct NetChecklist {
  std::string verdict;  // "met", "not met", "not measurable"
  std::string reason;
};

// Checklist 3.3 over the edges with traffic: not met if any edge is (naming the worst: the
// lowest share <= 5 ms), else not measurable if any is or none had traffic, else met.
NetChecklist CheckEdges(const std::vector<NetEdge>& edges);

// "a -> b" or "clients -> api (server side)".
std::string EdgeName(const NetEdge& e);

}  // namespace fs::io

#endif  // FRAMESCOPE_IO_NET_EDGES_H_
