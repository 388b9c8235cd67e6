// What `framescope redis` reads from the server, parsed, and the window arithmetic on it:
//   INFO (stats, commandstats, keyspace, memory, server)  "field:value" lines
//   LATENCY HISTOGRAM (Redis 7+)   per command: calls and cumulative counts per bucket, the
//                                  buckets doubling from 1 µs ("histogram_usec": upper bound in
//                                  µs -> calls that took at most that long; empty ones omitted)
//   SLOWLOG GET                    [id, unix time, µs, [args...], client addr, client name]
// Pure functions: the window (redis_window.h) does the I/O.
#ifndef FRAMESCOPE_IO_REDIS_INFO_H_
#define FRAMESCOPE_IO_REDIS_INFO_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/base/status.h"
#include "src/clients/redis_client.h"

namespace fs::io {

// Every "field:value" line of an INFO reply, sections flattened (field names are unique).
using RedisInfo = std::map<std::string, std::string>;
RedisInfo ParseRedisInfo(const std::string& text);
// A numeric field; nullopt when absent or not a number.
std::optional<double> InfoNumber(const RedisInfo& info, const std::string& field);

// One INFO commandstats line: cmdstat_<name>:calls=..,usec=..,usec_per_call=..,
// rejected_calls=..,failed_calls=.. (rejected/failed: Redis 6.2+, else 0).
struct CommandStat {
  uint64_t calls = 0;
  uint64_t usec = 0;
  uint64_t rejected_calls = 0;
  uint64_t failed_calls = 0;
};
// Keyed by command name as Redis writes it ("set", "xreadgroup", "latency|histogram").
std::map<std::string, CommandStat> CommandStats(const RedisInfo& info);

// INFO keyspace: db<N>:keys=..,expires=..,avg_ttl=..
struct KeyspaceDb {
  uint64_t keys = 0;
  uint64_t expires = 0;
};
std::map<std::string, KeyspaceDb> Keyspace(const RedisInfo& info);

// One command's LATENCY HISTOGRAM: (upper bound µs, calls at most that long), ascending.
struct LatencyHistogram {
  uint64_t calls = 0;
  std::vector<std::pair<uint64_t, uint64_t>> cumulative;
};
// Parses the reply (RESP2: a flat array name, [ "calls", N, "histogram_usec", [b, c, ...] ]).
StatusOr<std::map<std::string, LatencyHistogram>> ParseLatencyHistogram(const RedisReply& reply);

// The calls of a window: end minus start, per bucket (non-cumulative), on the union of both
// snapshots' buckets. Error when a count went down (the histogram was reset: restart or
// CONFIG RESETSTAT), which the caller reports instead of a wrong delta.
struct WindowHistogram {
  uint64_t calls = 0;
  std::vector<std::pair<uint64_t, uint64_t>> buckets;  // (upper bound µs, calls in bucket)
};
StatusOr<WindowHistogram> HistogramDelta(const LatencyHistogram& start,
                                         const LatencyHistogram& end);
// The bucket the q-quantile (0 < q <= 1) lies in: (lower_us, upper_us]. The true quantile is
// only known to lie there. lower_us is the previous bucket's bound (each bucket covers twice the
// previous one's range, so upper/2; 0 for the first). nullopt without calls.
struct QuantileBucket {
  uint64_t lower_us = 0;
  uint64_t upper_us = 0;
};
std::optional<QuantileBucket> QuantileBounds(const WindowHistogram& h, double q);

// One SLOWLOG GET entry.
struct SlowlogEntry {
  int64_t id = 0;
  int64_t unix_time = 0;
  int64_t duration_us = 0;
  std::vector<std::string> args;
  std::string client;  // addr and name where Redis gives them
};
StatusOr<std::vector<SlowlogEntry>> ParseSlowlog(const RedisReply& reply);

}  // namespace fs::io

#endif  // FRAMESCOPE_IO_REDIS_INFO_H_
