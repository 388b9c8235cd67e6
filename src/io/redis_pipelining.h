// Client-side Redis pipelining over a window, from two scrapes of each service's /metrics
// (src/clients/redis_client.h exports the counters, per source and op):
//   framescope_redis_commands_total{source,op}            commands sent
//   framescope_redis_pipelined_commands_total{source,op}  sent with at least one other before
//                                                         any reply was read
//   framescope_redis_round_trips_total{source,op}         write -> read-all-replies cycles
// Pipeline efficiency = pipelined / commands; commands per round trip = commands / round trips.
// A service whose counters went down (or lost a series) between the scrapes was restarted in
// the window: its end values are all it sent since, and it is counted from them and said so.
#ifndef FRAMESCOPE_IO_REDIS_PIPELINING_H_
#define FRAMESCOPE_IO_REDIS_PIPELINING_H_

#include <optional>
#include <string>
#include <vector>

#include "src/clients/prom_text.h"
#include "src/io/metrics_endpoint.h"

namespace fs::io {

// One scrape of one service's /metrics: its samples, or why there are none.
struct ServiceScrape {
  MetricsEndpoint endpoint;
  bool ok = false;
  std::string error;  // when !ok: what failed
  std::vector<PromSample> samples;
};

// Scrapes http://127.0.0.1:<port>/metrics of each endpoint (never fails: a failure is kept).
std::vector<ServiceScrape> ScrapeServices(const std::vector<MetricsEndpoint>& services,
                                          int timeout_ms = 2000);

struct PipelineCounts {
  double commands = 0;
  double pipelined = 0;
  double round_trips = 0;
  // pipelined / commands; nullopt without commands.
  std::optional<double> Efficiency() const;
  // commands / round trips; nullopt without round trips.
  std::optional<double> CommandsPerRoundTrip() const;
  void Add(const PipelineCounts& o);
};

struct OpPipelining {
  std::string service;  // the endpoint's name
  std::string source;
  std::string op;
  PipelineCounts counts;
};

struct SourcePipelining {
  std::string source;
  PipelineCounts counts;
};

// How one service's counters were read.
struct ServicePipeliningStatus {
  MetricsEndpoint endpoint;
  // "measured", "restarted" (counted from the end values), "no counters" (answered but exports
  // no framescope_redis_* counters), or "not measured" (a scrape failed).
  std::string state;
  std::string detail;  // the failure, or what the restart looked like
};

struct ClientPipelining {
  std::vector<OpPipelining> ops;          // sorted by source, op
  std::vector<SourcePipelining> sources;  // sorted by source
  std::vector<ServicePipeliningStatus> services;
  PipelineCounts total;       // over every measured service
  bool any_counters = false;  // some service exported the counters (even if it sent nothing)
};

// `begin`/`end`: the scrapes at the window's start and end, matched by endpoint (name and port),
// so each replica of a service gets its own delta; the replicas' deltas are summed per service.
ClientPipelining DiffClientCounters(const std::vector<ServiceScrape>& begin,
                                    const std::vector<ServiceScrape>& end);

}  // namespace fs::io

#endif  // FRAMESCOPE_IO_REDIS_PIPELINING_H_
