// `framescope redis` and profile's Redis section: what Redis and its clients did over a window.
//
//   RedisWindow w(redis_url, services);  w.Begin();  ...window...  w.End();
//   RedisAnalysis a = w.Analyse();       Json j = RedisToJson(a);
//
// Measured:
// - Client-side pipelining per service source and op (redis_pipelining.h): the services' own
//   counters, scraped from each /metrics at Begin and End. Checklist 3.2: the share of all client
//   commands sent in a pipeline over 80 %.
// - The server's cross-check over the same window, from INFO stats: Δtotal_commands_processed /
//   Δtotal_reads_processed, commands per read (Redis has no pipelining counter). This analyser's
//   own commands are subtracted exactly: it knows what it sent, each in one read.
// - Per command: INFO commandstats deltas (calls, usec, rejected/failed calls) and the windowed
//   latency percentiles from LATENCY HISTOGRAM deltas, each as the bucket it lies in.
// - SLOWLOG entries new in the window, used_memory and keyspace growth.
// A server restarted (run_id changed) or reset (CONFIG RESETSTAT: counters went down) in the
// window is counted from its end values, and the result says so. Nothing here is fatal: what
// could not be measured is kept with the reason.
#ifndef FRAMESCOPE_IO_REDIS_WINDOW_H_
#define FRAMESCOPE_IO_REDIS_WINDOW_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/clients/redis_client.h"
#include "src/io/metrics_endpoint.h"
#include "src/io/redis_info.h"
#include "src/io/redis_pipelining.h"

namespace fs::io {

inline constexpr double kPipelineEfficiencyTarget = 0.80;  // checklist 3.2: "over 80 %"

// One command over the window (this analyser's own calls already subtracted).
struct RedisCommandWindow {
  std::string name;  // as commandstats names it: "set", "xreadgroup", "client|list"
  uint64_t calls = 0, usec = 0, rejected_calls = 0, failed_calls = 0;
  uint64_t own_calls = 0;  // this analyser's, subtracted from calls
  std::optional<double> usec_per_call;
  // From the LATENCY HISTOGRAM delta (which includes this analyser's own_calls: a bucket count
  // cannot be told apart by caller). Unset without latency data, with latency_note saying why.
  uint64_t histogram_calls = 0;
  std::optional<QuantileBucket> p50, p99, p999;
  std::string latency_note;
};

// The server's commands per read over the window.
struct RedisServerCheck {
  bool measured = false;
  std::string reason;              // when !measured
  std::string basis;               // "window", or "since the restart ..."/"since the reset ..."
  double commands = 0, reads = 0;  // Δtotal_commands_processed / Δtotal_reads_processed, ours out
  uint64_t own_commands = 0, own_reads = 0;  // what was subtracted
  std::optional<double> CommandsPerRead() const;
};

struct RedisKeyspaceGrowth {
  std::string db;
  KeyspaceDb begin, end;
};

struct RedisAnalysis {
  std::string redis;  // host:port (no password)
  double window_s = 0;
  std::string redis_error;  // Redis could not be read at Begin or End: why
  std::string reset;        // a restart or stats reset in the window: what and how counted
  std::string redis_version;
  ClientPipelining clients;
  RedisServerCheck server;
  std::vector<std::string> disagreement;  // client vs server measures, explained
  // The services are scraped inside the server's window (after Begin's INFO, before End's):
  // by this much at each end. Commands in those margins are the server's only.
  double clients_inset_begin_ms = 0, clients_inset_end_ms = 0;
  std::vector<RedisCommandWindow> commands;  // by calls, most first
  std::string latency_error;                 // LATENCY HISTOGRAM unavailable: why
  std::vector<SlowlogEntry> slowlog;         // new in the window, newest first
  int64_t slowlog_new = 0;                   // entries logged in the window (ids), some maybe lost
  std::string slowlog_note;
  std::optional<double> used_memory_begin, used_memory_end;  // bytes, INFO memory used_memory
  std::vector<RedisKeyspaceGrowth> keyspace;
  // Checklist 3.2.
  std::string verdict;  // "met", "not met", "not measurable"
  std::string reason;
};

class RedisWindow {
 public:
  RedisWindow(std::string redis_url, std::vector<MetricsEndpoint> services);

  // Snapshot the services' counters and the server. Never fatal; errors are kept.
  void Begin();
  void End();
  RedisAnalysis Analyse() const;
  // Why Redis could not be read at Begin (empty if it could): lets a CLI stop at once.
  const std::string& begin_error() const { return begin_.error; }

 private:
  struct Snapshot {
    std::string error;
    int64_t at_ns = 0;
    RedisInfo info;
    std::map<std::string, LatencyHistogram> latency;
    std::string latency_error;
    int64_t slowlog_last_id = -1;
    std::vector<SlowlogEntry> slowlog;
    std::string slowlog_error;
    // Where this snapshot's LATENCY HISTOGRAM and INFO sit in own_log_ (see Take()).
    size_t latency_at = 0, info_at = 0;
    size_t connected_at = 0;  // where this snapshot's connection began (its PING)
    int64_t info_ns = 0;      // monotonic time INFO answered
  };
  // One command on the connection (opened if needed), logged in own_log_ on success.
  StatusOr<RedisReply> Send(const std::vector<std::string>& args, const std::string& stat_name,
                            Snapshot* s);
  void Take(Snapshot* s, bool at_end);
  void AnalyseServer(RedisAnalysis* a) const;
  void AnalyseCommands(RedisAnalysis* a) const;
  void AnalyseSlowlog(RedisAnalysis* a) const;
  // Commands this analyser ran in own_log_[from, to), by commandstats name.
  std::map<std::string, uint64_t> OwnCalls(size_t from, size_t to) const;
  // The server at End is another process than at Begin (INFO server run_id changed).
  bool Restarted() const;

  std::string url_;
  std::string label_;
  std::vector<MetricsEndpoint> services_;
  std::optional<RedisClient> client_;
  std::vector<std::string> own_log_;  // every command this window sent, in order
  std::vector<ServiceScrape> services_begin_, services_end_;
  Snapshot begin_, end_;
  int64_t services_begun_ns_ = 0, services_ending_ns_ = 0;
};

Json RedisToJson(const RedisAnalysis& a);

}  // namespace fs::io

#endif  // FRAMESCOPE_IO_REDIS_WINDOW_H_
