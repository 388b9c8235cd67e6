#include "src/clients/redis_client.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "src/base/net.h"
#include "src/clients/metrics.h"
#include "src/clients/prom_text.h"

namespace fs {
namespace {

// Starts a real redis-server on a free loopback port in a temp dir.
class RedisServer {
 public:
  bool Start(const std::string& password = "") {
    if (access("/usr/bin/redis-server", X_OK) != 0) return false;
    char tmpl[] = "/tmp/fs-redis-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto p = PickFreePort();
    if (!p.ok()) return false;
    port_ = *p;
    pid_ = fork();
    if (pid_ == 0) {
      std::string port = std::to_string(port_);
      execl("/usr/bin/redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
            "--dir", dir_.c_str(), "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--loglevel", "warning",
            password.empty() ? static_cast<char*>(nullptr) : const_cast<char*>("--requirepass"),
            password.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (PortOpen("127.0.0.1", port_)) return true;
      usleep(50000);
    }
    return false;
  }
  ~RedisServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) system(("rm -rf " + dir_).c_str());
  }
  std::string url(const std::string& userinfo = "") const {
    return "redis://" + userinfo + "127.0.0.1:" + std::to_string(port_);
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
};

TEST(RedisClientTest, CommandsPipelinesAndCounts) {
  RedisServer server;
  if (!server.Start()) GTEST_SKIP() << "redis-server not installed (run make deps)";
  auto c = RedisClient::Connect(server.url(), "test");
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto pong = c->Command({"PING"});
  ASSERT_TRUE(pong.ok());
  EXPECT_EQ(pong->str, "PONG");
  EXPECT_EQ(c->commands_sent(), 2u);  // Connect's own PING + this one
  EXPECT_EQ(c->commands_pipelined(), 0u);

  for (int i = 0; i < 10; ++i) {
    c->Append({"XADD", "s", "*", "camera", "cam0" + std::to_string(i % 3), "seq", std::to_string(i),
               "blob", std::string(1000, 'x')});
  }
  auto replies = c->Flush();
  ASSERT_TRUE(replies.ok()) << replies.status().message();
  ASSERT_EQ(replies->size(), 10u);
  for (const auto& r : *replies) EXPECT_EQ(r.type, RedisReply::Type::kString);
  EXPECT_EQ(c->commands_sent(), 12u);
  EXPECT_EQ(c->commands_pipelined(), 10u);
  EXPECT_EQ(c->round_trips(), 3u);

  auto len = c->Command({"XLEN", "s"});
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(len->integer, 10);
  auto range = c->Command({"XRANGE", "s", "-", "+", "COUNT", "2"});
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range->elements.size(), 2u);
  EXPECT_EQ(range->elements[0].elements[1].elements[0].str, "camera");
  auto err = c->Command({"NOSUCHCOMMAND"});
  ASSERT_TRUE(err.ok());
  EXPECT_TRUE(err->is_error());
  auto nil = c->Command({"GET", "missing"});
  ASSERT_TRUE(nil.ok());
  EXPECT_EQ(nil->type, RedisReply::Type::kNil);
}

// The counters carry the op: Command()'s command lower-cased, Flush()'s op as given; the
// latency histogram keeps the op as written.
TEST(RedisClientTest, CountersPerOp) {
  RedisServer server;
  if (!server.Start()) GTEST_SKIP() << "redis-server not installed (run make deps)";
  auto c = RedisClient::Connect(server.url(), "optest");
  ASSERT_TRUE(c.ok()) << c.status().message();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c->Command({"SET", "k" + std::to_string(i), "v"}).ok());
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 10; ++i) c->Append({"INCR", "n"});
    ASSERT_TRUE(c->Flush("Batch").ok());
  }
  c->Append({"GET", "n"});
  ASSERT_TRUE(c->Flush("Batch").ok());  // one command alone is not pipelined
  auto samples = ParsePromText(Metrics().RenderText());
  ASSERT_TRUE(samples.ok()) << samples.status().message();
  auto count = [&](const std::string& name, const std::string& op) {
    return SumSamples(*samples, name, {{"source", "optest"}, {"op", op}});
  };
  EXPECT_EQ(count("framescope_redis_commands_total", "ping"), 1);  // Connect's
  EXPECT_EQ(count("framescope_redis_commands_total", "set"), 3);
  EXPECT_EQ(count("framescope_redis_pipelined_commands_total", "set"), 0);
  EXPECT_EQ(count("framescope_redis_round_trips_total", "set"), 3);
  EXPECT_EQ(count("framescope_redis_commands_total", "Batch"), 21);
  EXPECT_EQ(count("framescope_redis_pipelined_commands_total", "Batch"), 20);
  EXPECT_EQ(count("framescope_redis_round_trips_total", "Batch"), 3);
  EXPECT_EQ(SumSamples(*samples, "framescope_redis_commands_total", {{"source", "optest"}}), 25);
  EXPECT_EQ(count("framescope_client_request_duration_seconds_count", "SET"), 3);
  EXPECT_EQ(count("framescope_client_request_duration_seconds_count", "Batch"), 3);
}

TEST(RedisClientTest, PasswordFromUrl) {
  RedisServer server;
  if (!server.Start("s3cret")) GTEST_SKIP() << "redis-server not installed (run make deps)";
  auto anonymous = RedisClient::Connect(server.url(), "test");
  ASSERT_FALSE(anonymous.ok());
  EXPECT_NE(anonymous.status().message().find("NOAUTH"), std::string::npos)
      << anonymous.status().message();
  auto wrong = RedisClient::Connect(server.url(":nope@"), "test");
  ASSERT_FALSE(wrong.ok());
  auto good = RedisClient::Connect(server.url(":s3cret@"), "test");
  ASSERT_TRUE(good.ok()) << good.status().message();
  auto r = good->Command({"SET", "k", "v"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str, "OK");
}

TEST(RedisClientTest, UnreachableServerIsAClearError) {
  auto port = PickFreePort();
  ASSERT_TRUE(port.ok());
  auto c = RedisClient::Connect("127.0.0.1:" + std::to_string(*port), "test", 500);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("redis"), std::string::npos);
  EXPECT_NE(c.status().message().find("refused"), std::string::npos) << c.status().message();
  EXPECT_FALSE(RedisClient::Connect("not-a-url", "test").ok());
}

}  // namespace
}  // namespace fs
