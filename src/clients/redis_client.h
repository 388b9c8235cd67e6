// A small RESP2 Redis client with explicit pipelining and the accounting the profiler needs.
// Redis has no server-side counter for pipelined commands, so the client counts:
//   commands sent                 framescope_redis_commands_total{source}
//   commands sent in a pipeline   framescope_redis_pipelined_commands_total{source}
//     (written together with at least one other command before any reply was read)
//   round trips                   framescope_redis_round_trips_total{source}
// and the latency of each round trip:
//   framescope_client_request_duration_seconds{source,target="redis",op}
// Not thread-safe: one client per thread.
#ifndef FRAMESCOPE_CLIENTS_REDIS_CLIENT_H_
#define FRAMESCOPE_CLIENTS_REDIS_CLIENT_H_

#include <cstdint>
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
  Counter* m_commands_ = nullptr;
  Counter* m_pipelined_ = nullptr;
  Counter* m_round_trips_ = nullptr;
};

// Encodes a command as a RESP array of bulk strings.
std::string EncodeRedisCommand(const std::vector<std::string>& args);

}  // namespace fs

#endif  // FRAMESCOPE_CLIENTS_REDIS_CLIENT_H_
