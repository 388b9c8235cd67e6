// RedisWindow against a real redis-server (RedisFixture) and a real HttpServer exporting this
// process' metrics registry as a service would: the pipelining share of a client whose truth is
// known, the server's commands per read moving as Redis 7 does, commandstats deltas equal to
// what was sent, a restart and a stats reset in the window, an unreachable Redis and a service
// whose /metrics does not answer.
#include "src/io/redis_window.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sstream>

#include "src/base/http.h"
#include "src/base/net.h"
#include "src/clients/metrics.h"
#include "tests/testing/redis_fixture.h"

namespace fs::io {
namespace {

using fs::testing::RedisFixture;

int RedisPort(const RedisFixture& r) {
  std::string host;
  int port = 0;
  EXPECT_TRUE(ParseHostPort(r.url(), &host, &port).ok());
  return port;
}

// Sends `n` SETs on a fresh connection, all in one write when `pipelined`, else one by one,
// then closes it: a client without counters, byte for byte what the numbers assume.
void RawSets(const RedisFixture& r, int n, bool pipelined, const std::string& prefix = "k") {
  auto fd = ConnectTcp("127.0.0.1", RedisPort(r), 2000);
  ASSERT_TRUE(fd.ok()) << fd.status().message();
  SetIoTimeout(fd->get(), 2000);
  auto read_oks = [&](int count) {
    std::string got;
    while (got.size() < 5u * count) {
      char buf[4096];
      ssize_t k = read(fd->get(), buf, sizeof(buf));
      ASSERT_GT(k, 0);
      got.append(buf, static_cast<size_t>(k));
    }
    ASSERT_EQ(got.size(), 5u * count);
  };
  std::string all;
  for (int i = 0; i < n; ++i) {
    const std::string cmd = EncodeRedisCommand({"SET", prefix + std::to_string(i), "v"});
    if (pipelined) {
      all += cmd;
      continue;
    }
    ASSERT_TRUE(WriteAll(fd->get(), cmd.data(), cmd.size()).ok());
    read_oks(1);
  }
  if (pipelined) {
    ASSERT_TRUE(WriteAll(fd->get(), all.data(), all.size()).ok());
    read_oks(n);
  }
  fd->Reset();
  // The server reads the close (a read that carries no command) on its next loop turn: let it,
  // before the window's End reads the counters on another connection.
  usleep(100000);
}

// A service: /metrics renders this process' registry, as every framescope service does. The
// window's own client registers in this process too (source "framescope-redis"); a real
// service's registry never holds it, so its lines are left out here.
class MetricsService {
 public:
  MetricsService() {
    server_.Handle("/metrics", [](const HttpRequest&) {
      std::istringstream in(Metrics().RenderText());
      HttpResponse r;
      for (std::string line; std::getline(in, line);) {
        if (line.find("source=\"framescope-redis\"") == std::string::npos) r.body += line + "\n";
      }
      return r;
    });
    EXPECT_TRUE(server_.Start("127.0.0.1", 0).ok());
  }
  int port() const { return server_.port(); }

 private:
  HttpServer server_;
};

const RedisCommandWindow* FindCommand(const RedisAnalysis& a, const std::string& name) {
  for (const auto& c : a.commands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

TEST(RedisWindow, ClientShareAndServerCommandsPerRead) {
  RedisFixture redis;
  ASSERT_TRUE(redis.Start()) << "redis-server (/usr/bin/redis-server) did not start";
  MetricsService service;
  auto client = RedisClient::Connect(redis.url(), "known");
  ASSERT_TRUE(client.ok()) << client.status().message();
  auto dead = PickFreePort();
  ASSERT_TRUE(dead.ok());
  RedisWindow w(redis.url(), {{"known", service.port()}, {"silent", *dead}});
  w.Begin();
  ASSERT_EQ(w.begin_error(), "");
  // 300 commands in pipelines of 10 + 100 single: 75 % pipelined.
  for (int p = 0; p < 30; ++p) {
    for (int i = 0; i < 10; ++i) client->Append({"INCR", "n"});
    ASSERT_TRUE(client->Flush("batch").ok());
  }
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(client->Command({"HSET", "h", "f", "v"}).ok());
  w.End();
  const RedisAnalysis a = w.Analyse();
  ASSERT_EQ(a.redis_error, "");
  const ClientPipelining& c = a.clients;
  ASSERT_EQ(c.sources.size(), 1u);
  EXPECT_EQ(c.sources[0].source, "known");
  EXPECT_EQ(c.total.commands, 400);
  EXPECT_EQ(c.total.pipelined, 300);
  EXPECT_EQ(c.total.round_trips, 130);
  EXPECT_EQ(c.total.Efficiency(), 0.75);
  ASSERT_EQ(c.ops.size(), 2u);
  EXPECT_EQ(c.ops[0].op, "batch");
  EXPECT_EQ(c.ops[0].counts.Efficiency(), 1.0);
  EXPECT_EQ(c.ops[0].counts.CommandsPerRoundTrip(), 10.0);
  EXPECT_EQ(c.ops[1].op, "hset");
  EXPECT_EQ(c.ops[1].counts.Efficiency(), 0.0);
  // The service that does not answer is named; the other is still analysed.
  ASSERT_EQ(c.services.size(), 2u);
  EXPECT_EQ(c.services[0].state, "measured");
  EXPECT_EQ(c.services[1].endpoint.name, "silent");
  EXPECT_EQ(c.services[1].state, "not measured");
  EXPECT_NE(c.services[1].detail.find("refused"), std::string::npos) << c.services[1].detail;
  EXPECT_EQ(a.verdict, "not met");
  EXPECT_NE(a.reason.find("300 of 400"), std::string::npos) << a.reason;
  // The server saw exactly the client's commands, one read per round trip.
  EXPECT_EQ(a.server.commands, 400);
  EXPECT_EQ(a.server.reads, 130);
  EXPECT_EQ(a.server.own_commands, 2u);  // Begin's INFO, End's LATENCY HISTOGRAM
  EXPECT_TRUE(a.disagreement.empty()) << a.disagreement.front();
  // commandstats: exactly what was sent, this analyser's own subtracted.
  const RedisCommandWindow* incr = FindCommand(a, "incr");
  ASSERT_NE(incr, nullptr);
  EXPECT_EQ(incr->calls, 300u);
  EXPECT_EQ(incr->histogram_calls, 300u);
  ASSERT_TRUE(incr->p50 && incr->p99 && incr->p999);
  EXPECT_LE(incr->p50->upper_us, incr->p99->upper_us);
  EXPECT_LE(incr->p99->upper_us, incr->p999->upper_us);
  ASSERT_NE(FindCommand(a, "hset"), nullptr);
  EXPECT_EQ(FindCommand(a, "hset")->calls, 100u);
  EXPECT_EQ(FindCommand(a, "info"), nullptr);
  EXPECT_EQ(FindCommand(a, "latency|histogram"), nullptr);
  EXPECT_EQ(a.keyspace.size(), 1u);
  EXPECT_EQ(a.keyspace[0].end.keys - a.keyspace[0].begin.keys, 2u);  // n, h
}

// The Redis 7 numbers, raw: INFO, 100 SETs on a fresh connection that closes, INFO.
// Pipelined they move total_commands_processed/total_reads_processed by 101 and 3, unpipelined
// by 101 and 102 (the start INFO is a command of the window, the end INFO a read of it, and the
// close one more read). The window subtracts its own and keeps 100/2 and 100/101.
TEST(RedisWindow, ServerCountersMoveAsRedis7Does) {
  RedisFixture redis;
  ASSERT_TRUE(redis.Start()) << "redis-server (/usr/bin/redis-server) did not start";
  auto probe = RedisClient::Connect(redis.url(), "probe");
  ASSERT_TRUE(probe.ok());
  auto counters = [&]() {
    auto r = probe->Command({"INFO", "stats"});
    EXPECT_TRUE(r.ok());
    RedisInfo info = ParseRedisInfo(r.ok() ? r->str : "");
    return std::pair<double, double>(InfoNumber(info, "total_commands_processed").value_or(-1),
                                     InfoNumber(info, "total_reads_processed").value_or(-1));
  };
  for (bool pipelined : {true, false}) {
    auto before = counters();
    RawSets(redis, 100, pipelined);
    auto after = counters();
    EXPECT_EQ(after.first - before.first, 101) << "pipelined " << pipelined;
    EXPECT_EQ(after.second - before.second, pipelined ? 3 : 102) << "pipelined " << pipelined;

    RedisWindow w(redis.url(), {});
    w.Begin();
    RawSets(redis, 100, pipelined);
    w.End();
    const RedisAnalysis a = w.Analyse();
    EXPECT_EQ(a.server.commands, 100) << "pipelined " << pipelined;
    EXPECT_EQ(a.server.reads, pipelined ? 2 : 101) << "pipelined " << pipelined;
    EXPECT_EQ(a.verdict, "not measurable");
    EXPECT_NE(a.reason.find("no client service exported"), std::string::npos) << a.reason;
    EXPECT_NE(a.reason.find(pipelined ? "= 50.00 commands per read" : "= 0.99 commands per read"),
              std::string::npos)
        << a.reason;
    ASSERT_NE(FindCommand(a, "set"), nullptr);
    EXPECT_EQ(FindCommand(a, "set")->calls, 100u);
  }
}

TEST(RedisWindow, RestartAndStatsResetInTheWindowAreReported) {
  RedisFixture redis;
  ASSERT_TRUE(redis.Start()) << "redis-server (/usr/bin/redis-server) did not start";
  RawSets(redis, 500, true, "old");
  {
    RedisWindow w(redis.url(), {});
    w.Begin();
    ASSERT_TRUE(redis.RestartEmpty());
    RawSets(redis, 10, true);
    w.End();
    const RedisAnalysis a = w.Analyse();
    ASSERT_EQ(a.redis_error, "");
    EXPECT_NE(a.reset.find("restarted"), std::string::npos) << a.reset;
    EXPECT_NE(a.server.basis.find("since the restart"), std::string::npos);
    EXPECT_EQ(a.server.commands, 10);  // from the new server's start, ours out
    // The pipeline's read, its close, and the close of RedisFixture's readiness probe (a
    // connect and close on the new server): reads that carry no command.
    EXPECT_EQ(a.server.reads, 3);
    ASSERT_NE(FindCommand(a, "set"), nullptr);
    EXPECT_EQ(FindCommand(a, "set")->calls, 10u);
    ASSERT_EQ(a.keyspace.size(), 1u);
    EXPECT_EQ(a.keyspace[0].begin.keys, 500u);
    EXPECT_EQ(a.keyspace[0].end.keys, 10u);
  }
  {
    RedisWindow w(redis.url(), {});
    w.Begin();
    auto c = RedisClient::Connect(redis.url(), "resetter");
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c->Command({"CONFIG", "RESETSTAT"}).ok());
    w.End();
    const RedisAnalysis a = w.Analyse();
    EXPECT_NE(a.reset.find("reset"), std::string::npos) << a.reset;
    EXPECT_NE(a.server.basis.find("CONFIG RESETSTAT"), std::string::npos);
  }
}

TEST(RedisWindow, SlowlogEntriesOfTheWindow) {
  RedisFixture redis;
  ASSERT_TRUE(redis.Start()) << "redis-server (/usr/bin/redis-server) did not start";
  auto c = RedisClient::Connect(redis.url(), "slow");
  ASSERT_TRUE(c.ok());
  const std::vector<std::string> slow = {
      "EVAL", "local i = 0 while i < 20000000 do i = i + 1 end return i", "0"};
  ASSERT_TRUE(c->Command(slow).ok());  // before the window: not reported
  RedisWindow w(redis.url(), {});
  w.Begin();
  ASSERT_TRUE(c->Command(slow).ok());
  w.End();
  const RedisAnalysis a = w.Analyse();
  ASSERT_EQ(a.slowlog_new, 1) << a.slowlog_note;
  ASSERT_EQ(a.slowlog.size(), 1u);
  EXPECT_EQ(a.slowlog[0].args[0], "EVAL");
  EXPECT_GE(a.slowlog[0].duration_us, 10000);  // slowlog-log-slower-than's default
}

TEST(RedisWindow, UnreachableRedisIsKeptAsTheReason) {
  auto port = PickFreePort();
  ASSERT_TRUE(port.ok());
  RedisWindow w("redis://127.0.0.1:" + std::to_string(*port), {});
  w.Begin();
  EXPECT_NE(w.begin_error().find("refused"), std::string::npos) << w.begin_error();
  w.End();
  const RedisAnalysis a = w.Analyse();
  EXPECT_NE(a.redis_error.find("at the window's start"), std::string::npos) << a.redis_error;
  EXPECT_FALSE(a.server.measured);
  EXPECT_EQ(a.verdict, "not measurable");
  const Json j = RedisToJson(a);
  EXPECT_TRUE(j.Get("server").Get("commands_per_read").is_null());
  EXPECT_EQ(j.Get("checklist").Get("verdict").AsString(), "not measurable");
}

}  // namespace
}  // namespace fs::io
