// Redis connections shared by the api's request threads. RedisClient is not thread-safe,
// so a call borrows a client for its duration; idle clients are kept for reuse. Every
// socket read and write is bounded by the client's timeout, so a hung Redis costs a call at
// most that long. After a failed connect, calls fail fast until a backoff (250 ms doubling
// to 5 s) has passed.
#ifndef FRAMESCOPE_SERVICES_API_REDIS_POOL_H_
#define FRAMESCOPE_SERVICES_API_REDIS_POOL_H_

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/clients/redis_client.h"

namespace fs::api {

class RedisPool {
 public:
  RedisPool(std::string url, std::string source, int timeout_ms, size_t max_idle = 8);

  // Runs `fn` with a borrowed client. A client whose call failed is closed, not reused
  // (its replies may be out of step with its requests), and so are the idle ones (after a
  // Redis restart they are all dead); when the failed client was an idle one, `fn` runs
  // once more on a fresh connection, so `fn` must be safe to repeat (the api only reads).
  Status With(const std::function<Status(RedisClient*)>& fn);

  // For /health: true after the last connect or call succeeded.
  bool connected() const;
  std::string last_error() const;

 private:
  // A client from the idle list (*reused = true) or a new connection.
  StatusOr<RedisClient> Borrow(bool* reused);

  const std::string url_;
  const std::string source_;
  const int timeout_ms_;
  const size_t max_idle_;
  mutable std::mutex mu_;
  std::vector<RedisClient> idle_;
  bool connected_ = false;
  bool failing_ = false;
  std::string last_error_ = "not connected to Redis yet";
  int64_t backoff_ns_;
  int64_t next_attempt_ns_ = 0;
};

}  // namespace fs::api

#endif  // FRAMESCOPE_SERVICES_API_REDIS_POOL_H_
