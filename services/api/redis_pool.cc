#include "services/api/redis_pool.h"

#include <algorithm>
#include <utility>

#include "src/base/clock.h"
#include "src/base/logging.h"

namespace fs::api {
namespace {
constexpr int64_t kInitialBackoffNs = 250000000LL;
constexpr int64_t kMaxBackoffNs = 5000000000LL;
}  // namespace

RedisPool::RedisPool(std::string url, std::string source, int timeout_ms, size_t max_idle)
    : url_(std::move(url)),
      source_(std::move(source)),
      timeout_ms_(timeout_ms),
      max_idle_(max_idle),
      backoff_ns_(kInitialBackoffNs) {}

StatusOr<RedisClient> RedisPool::Borrow(bool* reused) {
  int64_t now = MonotonicNs();
  *reused = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      *reused = true;
      RedisClient c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
    if (failing_ && now < next_attempt_ns_) {
      return Err(last_error_ + " (next connection attempt in " +
                 std::to_string((next_attempt_ns_ - now) / 1000000) + " ms)");
    }
    // While failing, this attempt holds the slot: concurrent calls fail fast meanwhile.
    if (failing_) next_attempt_ns_ = now + backoff_ns_;
  }
  auto c = RedisClient::Connect(url_, source_, timeout_ms_);
  std::lock_guard<std::mutex> lock(mu_);
  if (!c.ok()) {
    if (!failing_ || last_error_ != c.status().message()) {
      LOG(WARNING) << "redis: " << c.status().message() << "; retrying with backoff";
    }
    connected_ = false;
    failing_ = true;
    last_error_ = c.status().message();
    next_attempt_ns_ = MonotonicNs() + backoff_ns_;
    backoff_ns_ = std::min(backoff_ns_ * 2, kMaxBackoffNs);
    return c.status();
  }
  if (failing_) LOG(INFO) << "connected to redis " << url_;
  failing_ = false;
  backoff_ns_ = kInitialBackoffNs;
  next_attempt_ns_ = 0;
  return c;
}

Status RedisPool::With(const std::function<Status(RedisClient*)>& fn) {
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    auto c = Borrow(&reused);
    if (!c.ok()) return Err("Redis unavailable: " + c.status().message());
    Status st = fn(&*c);
    std::lock_guard<std::mutex> lock(mu_);
    if (st.ok()) {
      connected_ = true;
      if (idle_.size() < max_idle_) idle_.push_back(std::move(c).value());
      return st;
    }
    idle_.clear();
    if (reused && attempt == 0) continue;
    connected_ = false;
    last_error_ = st.message();
    return st;
  }
}

bool RedisPool::connected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connected_;
}

std::string RedisPool::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

}  // namespace fs::api
