// framescope-apiclient: an open-loop load generator for framescope-api.
//
// Requests are scheduled by the clock, not by responses: request k is due at
// start + k / rate whatever happened to the earlier ones, and a few worker threads send
// them. Latency is measured from the due time, so time spent waiting for a free worker
// counts (a slow api cannot hide its queueing by slowing the client down: no coordinated
// omission). When the backlog exceeds one second of requests, due requests are dropped and
// counted as errors.
//
// The mix, per 10 requests: 1 /cameras, 3 /cameras/{id}/stats?window=1m, 1 ...?window=1h,
// 4 /detections?camera={id}&limit=50, 1 /health; {id} rotates over the cameras.
//
// Every report interval one line:
//   apiclient: rate 49.8 req/s ok 498 err 0 p50 3.1 ms p90 5.0 ms p99 9.2 ms
// and at the end one for the whole run ("done after 5.0 s: rate ..."). /metrics has
// framescope_client_request_duration_seconds{source="apiclient",target="api",op=<route>}.
#ifndef FRAMESCOPE_SERVICES_API_API_CLIENT_H_
#define FRAMESCOPE_SERVICES_API_API_CLIENT_H_

#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "services/common/service.h"
#include "src/base/flags.h"
#include "src/base/status.h"

namespace fs::api {

struct ApiClientOptions {
  std::string api_url;        // http://HOST:PORT
  std::string api_port_file;  // or: the api's port file (its endpoints.http)
  std::string token;          // default $FRAMESCOPE_API_TOKEN
  double rate = 50;           // requests per second
  int workers = 4;
  double duration_s = 0;     // 0 = until SIGTERM/SIGINT
  int cameras = 0;           // cam00..cam<N-1>
  std::string camera_names;  // comma-separated; overrides --cameras
  double report_interval_s = 10;
  int timeout_ms = 5000;

  // Derived by FinishApiClientOptions / RunApiClient.
  std::vector<std::string> camera_list;
};

void AddApiClientFlags(FlagSet* flags, ApiClientOptions* options);
// Checks ranges, reads the token from the environment, builds camera_list (empty: ask the
// api's /cameras at start). An error is a usage error (exit 2).
Status FinishApiClientOptions(const FlagSet& flags, ApiClientOptions* options);
// Runs until --duration-s passed or a stop was requested. Errors: the api's address cannot
// be found (port file missing or without endpoints.http).
Status RunApiClient(ApiClientOptions options, ServiceRuntime* runtime);

// One request of the mix: path with query, and its route pattern (the metrics label).
struct PlannedRequest {
  std::string path;
  std::string route;
};
PlannedRequest PlanRequest(uint64_t k, const std::vector<std::string>& cameras);

// Latency samples (ms) and outcome counts; thread-safe. Interval figures are reset by
// TakeInterval(); the whole run keeps a bounded uniform sample (reservoir) for its
// percentiles, so a client running for days stays small.
class LatencyStats {
 public:
  struct Summary {
    double seconds = 0;
    uint64_t ok = 0;
    uint64_t errors = 0;
    double p50_ms = 0, p90_ms = 0, p99_ms = 0;
    double rate() const { return seconds > 0 ? static_cast<double>(ok + errors) / seconds : 0; }
  };

  LatencyStats();
  void Add(double latency_ms, bool ok);
  void AddError() { Add(-1, false); }  // a request that was never sent (no latency)
  // Figures since the last call (or construction), over `seconds`.
  Summary TakeInterval(double seconds);
  Summary Total(double seconds) const;

 private:
  static constexpr size_t kReservoir = 100000;
  mutable std::mutex mu_;
  std::vector<double> interval_;
  uint64_t interval_ok_ = 0, interval_err_ = 0;
  std::vector<double> reservoir_;
  uint64_t seen_ = 0;  // latency samples offered to the reservoir
  uint64_t total_ok_ = 0, total_err_ = 0;
  std::mt19937_64 rng_;
};

// Nearest-rank percentile (q in 0..1) of unsorted samples; 0 for none.
double Percentile(std::vector<double> samples, double q);
// "rate 49.8 req/s ok 498 err 0 p50 3.1 ms p90 5.0 ms p99 9.2 ms"
std::string FormatSummary(const LatencyStats::Summary& s);

}  // namespace fs::api

#endif  // FRAMESCOPE_SERVICES_API_API_CLIENT_H_
