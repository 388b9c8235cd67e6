// A small RESP2 Redis client with explicit pipelining and the accounting the profiler needs.
// Redis has no server-side counter for pipelined commands, so the client counts:
//   commands sent                 framescope_redis_commands_total{source,op}
//   commands sent in a pipeline   framescope_redis_pipelined_commands_total{source,op}
//     (written together with at least one other command before any reply was read)
//   round trips                   framescope_redis_round_trips_total{source,op}
// and the latency of each round trip:
//   framescope_client_request_duration_seconds{source,target="redis",op}
// `op` of the counters is what `framescope redis` reports pipelining per: Command()'s command
// name lower-cased (as Redis' commandstats name it), or the op given to Flush(). The latency
// histogram keeps Flush()'s op as given (Command(): the command as written), as before.
// Not thread-safe: one client per thread.
#ifndef FRAMESCOPE_CLIENTS_REDIS_CLIENT_H_
#define FRAMESCOPE_CLIENTS_REDIS_CLIENT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "src/base/net.h"
#include "src/base/status.h"

namespace fs {

class Counter;
class Histogram;

struct RedisReply {
  enum class Type { kString, kStatus, kError, kInteger, kNil, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<RedisReply> elements;

  bool is_error() const { return type == Type::kError; }
};

class RedisClient {
 public:
  // `url`: redis://host:port or host:port. `source` labels the metrics (the service name).
  static StatusOr<RedisClient> Connect(const std::string& url, const std::string& source,
                                       int timeout_ms = 2000);
  RedisClient(RedisClient&&) noexcept = default;
  RedisClient& operator=(RedisClient&&) noexcept = default;

  // One command, one round trip. A server error reply is returned as a reply, not a Status.
  StatusOr<RedisReply> Command(const std::vector<std::string>& args);

  // Queues a command; Flush() writes every queued command in one write and reads all replies.
  void Append(const std::vector<std::string>& args);
  size_t pending() const { return pending_; }
  StatusOr<std::vector<RedisReply>> Flush(const std::string& op = "pipeline");

  uint64_t commands_sent() const { return commands_sent_; }
  uint64_t commands_pipelined() const { return commands_pipelined_; }
  uint64_t round_trips() const { return round_trips_; }

 private:
  RedisClient() = default;
  // The metrics of one op, looked up once per client and op: the registry's lookup takes its
  // mutex, which the services' hot loops must not contend on per command.
  struct OpMetrics {
    Counter* commands = nullptr;
    Counter* pipelined = nullptr;
    Counter* round_trips = nullptr;
    Histogram* latency = nullptr;
  };
  const OpMetrics& MetricsFor(const std::string& counter_op, const std::string& latency_op);
  StatusOr<std::vector<RedisReply>> FlushAs(const std::string& counter_op,
                                            const std::string& latency_op);
  StatusOr<RedisReply> ReadReply(int depth = 0);
  Status Fill();

  ScopedFd fd_;
  std::string where_;
  std::string out_;
  size_t pending_ = 0;
  std::string in_;
  size_t in_pos_ = 0;
  uint64_t commands_sent_ = 0;
  uint64_t commands_pipelined_ = 0;
  uint64_t round_trips_ = 0;
  std::string source_;
  // Keyed by (counter op, latency op): the two differ only in case for Command().
  std::map<std::pair<std::string, std::string>, OpMetrics> op_metrics_;
};

// Encodes a command as a RESP array of bulk strings.
std::string EncodeRedisCommand(const std::vector<std::string>& args);

}  // namespace fs

#endif  // FRAMESCOPE_CLIENTS_REDIS_CLIENT_H_
