#include "src/clients/redis_client.h"

#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "src/base/clock.h"
#include "src/clients/metrics.h"

namespace fs {

std::string EncodeRedisCommand(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

StatusOr<RedisClient> RedisClient::Connect(const std::string& url, const std::string& source,
                                           int timeout_ms) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(ParseHostPort(url, &host, &port).Annotate("redis url"));
  RedisClient c;
  auto fd = ConnectTcp(host, port, timeout_ms);
  if (!fd.ok()) return fd.status().Annotate("redis");
  c.fd_ = std::move(fd).value();
  SetIoTimeout(c.fd_.get(), timeout_ms);
  c.where_ = host + ":" + std::to_string(port);
  // redis://[user[:password]@]host:port — authenticate before anything else, so a server that
  // requires a password fails here with its own message instead of rejecting every command.
  std::string userinfo;
  if (auto scheme = url.find("://"); scheme != std::string::npos) {
    auto at = url.rfind('@');
    if (at != std::string::npos && at > scheme) userinfo = url.substr(scheme + 3, at - scheme - 3);
  }
  std::vector<std::string> hello = {"PING"};
  if (!userinfo.empty()) {
    auto colon = userinfo.find(':');
    std::string user = colon == std::string::npos ? "" : userinfo.substr(0, colon);
    std::string pass = colon == std::string::npos ? userinfo : userinfo.substr(colon + 1);
    hello = user.empty() ? std::vector<std::string>{"AUTH", pass}
                         : std::vector<std::string>{"AUTH", user, pass};
  }
  c.source_ = source;
  auto reply = c.Command(hello);
  if (!reply.ok()) return reply.status();
  if (reply->is_error())
    return Err("redis " + c.where_ + ": " + hello[0] + " failed: " + reply->str);
  return c;
}

StatusOr<RedisReply> RedisClient::Command(const std::vector<std::string>& args) {
  Append(args);
  const std::string name = args.empty() ? "" : args[0];
  std::string lower = name;
  for (char& ch : lower) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, FlushAs(lower, name));
  return std::move(replies.front());
}

const RedisClient::OpMetrics& RedisClient::MetricsFor(const std::string& counter_op,
                                                      const std::string& latency_op) {
  auto [it, inserted] = op_metrics_.try_emplace({counter_op, latency_op});
  if (!inserted) return it->second;
  Labels l{{"source", source_}, {"op", counter_op}};
  OpMetrics& m = it->second;
  m.commands = Metrics().GetCounter("framescope_redis_commands_total",
                                    "Redis commands sent by this client", l);
  m.pipelined = Metrics().GetCounter(
      "framescope_redis_pipelined_commands_total",
      "Redis commands written together with at least one other before replies were read", l);
  m.round_trips = Metrics().GetCounter("framescope_redis_round_trips_total",
                                       "Redis request/response round trips", l);
  m.latency = Metrics().GetHistogram("framescope_client_request_duration_seconds",
                                     "Client-side latency of calls to downstream services",
                                     {{"source", source_}, {"target", "redis"}, {"op", latency_op}},
                                     LatencyBucketsSeconds());
  return m;
}

void RedisClient::Append(const std::vector<std::string>& args) {
  out_ += EncodeRedisCommand(args);
  ++pending_;
}

StatusOr<std::vector<RedisReply>> RedisClient::Flush(const std::string& op) {
  return FlushAs(op, op);
}

StatusOr<std::vector<RedisReply>> RedisClient::FlushAs(const std::string& counter_op,
                                                       const std::string& latency_op) {
  std::vector<RedisReply> replies;
  if (pending_ == 0) return replies;
  if (!fd_.valid()) {
    out_.clear();
    pending_ = 0;
    return Err("redis " + where_ + ": connection is broken; reconnect");
  }
  size_t n = pending_;
  int64_t start = MonotonicNs();
  Status st = WriteAll(fd_.get(), out_.data(), out_.size());
  out_.clear();
  pending_ = 0;
  if (!st.ok()) {
    fd_.Reset();
    return st.Annotate("redis " + where_);
  }
  const OpMetrics& m = MetricsFor(counter_op, latency_op);
  commands_sent_ += n;
  m.commands->Inc(static_cast<double>(n));
  if (n > 1) {
    commands_pipelined_ += n;
    m.pipelined->Inc(static_cast<double>(n));
  }
  ++round_trips_;
  m.round_trips->Inc();
  replies.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto r = ReadReply();
    if (!r.ok()) {
      // Replies are now out of step with requests: the connection cannot be reused.
      fd_.Reset();
      in_.clear();
      in_pos_ = 0;
      return r.status();
    }
    replies.push_back(std::move(r).value());
  }
  // Compact the read buffer once everything parsed has been consumed.
  in_.erase(0, in_pos_);
  in_pos_ = 0;
  m.latency->Observe(static_cast<double>(MonotonicNs() - start) / 1e9);
  return replies;
}

Status RedisClient::Fill() {
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd_.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Err("redis " + where_ + ": read failed: " +
                 (errno == EAGAIN ? std::string("timed out") : std::string(strerror(errno))));
    }
    if (n == 0) return Err("redis " + where_ + ": connection closed by server");
    in_.append(buf, static_cast<size_t>(n));
    return Status::Ok();
  }
}

StatusOr<RedisReply> RedisClient::ReadReply(int depth) {
  if (depth > 16) return Err("redis reply nested too deeply");
  size_t eol;
  while ((eol = in_.find("\r\n", in_pos_)) == std::string::npos) RETURN_IF_ERROR(Fill());
  char kind = in_[in_pos_];
  std::string line = in_.substr(in_pos_ + 1, eol - in_pos_ - 1);
  in_pos_ = eol + 2;
  RedisReply r;
  switch (kind) {
    case '+':
      r.type = RedisReply::Type::kStatus;
      r.str = line;
      return r;
    case '-':
      r.type = RedisReply::Type::kError;
      r.str = line;
      return r;
    case ':':
      r.type = RedisReply::Type::kInteger;
      r.integer = strtoll(line.c_str(), nullptr, 10);
      return r;
    case '$': {
      long long len = strtoll(line.c_str(), nullptr, 10);
      if (len < 0) return r;  // nil
      if (len > (512LL << 20)) return Err("redis bulk string too large");
      while (in_.size() < in_pos_ + static_cast<size_t>(len) + 2) RETURN_IF_ERROR(Fill());
      r.type = RedisReply::Type::kString;
      r.str = in_.substr(in_pos_, static_cast<size_t>(len));
      in_pos_ += static_cast<size_t>(len) + 2;
      return r;
    }
    case '*': {
      long long count = strtoll(line.c_str(), nullptr, 10);
      if (count < 0) return r;  // nil array
      if (count > (1 << 24)) return Err("redis protocol error: array of " + line + " elements");
      r.type = RedisReply::Type::kArray;
      r.elements.reserve(static_cast<size_t>(count));
      for (long long i = 0; i < count; ++i) {
        ASSIGN_OR_RETURN(RedisReply e, ReadReply(depth + 1));
        r.elements.push_back(std::move(e));
      }
      return r;
    }
    default:
      return Err(std::string("redis protocol error: unexpected reply type '") + kind + "'");
  }
}

}  // namespace fs
