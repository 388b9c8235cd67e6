// The Redis analyser's pure parts on data whose truth is known: INFO, commandstats, keyspace,
// LATENCY HISTOGRAM replies and their window deltas and percentile buckets, SLOWLOG replies, and
// the client-side pipelining counters across two scrapes (including a restarted service).
#include "src/io/redis_info.h"

#include <gtest/gtest.h>

#include "src/io/redis_pipelining.h"

namespace fs::io {
namespace {

RedisReply Int(int64_t v) {
  RedisReply r;
  r.type = RedisReply::Type::kInteger;
  r.integer = v;
  return r;
}

RedisReply Str(const std::string& s) {
  RedisReply r;
  r.type = RedisReply::Type::kString;
  r.str = s;
  return r;
}

RedisReply Arr(std::vector<RedisReply> e) {
  RedisReply r;
  r.type = RedisReply::Type::kArray;
  r.elements = std::move(e);
  return r;
}

// One command's LATENCY HISTOGRAM entry as Redis 7 sends it in RESP2.
std::vector<RedisReply> Entry(const std::string& name, int64_t calls,
                              const std::vector<std::pair<int64_t, int64_t>>& buckets) {
  std::vector<RedisReply> flat;
  for (const auto& [b, c] : buckets) {
    flat.push_back(Int(b));
    flat.push_back(Int(c));
  }
  return {Str(name), Arr({Str("calls"), Int(calls), Str("histogram_usec"), Arr(flat)})};
}

TEST(RedisInfo, ParsesSectionsCommandstatsAndKeyspace) {
  const RedisInfo info = ParseRedisInfo(
      "# Server\r\nredis_version:7.0.15\r\nrun_id:abc\r\n\r\n# Stats\r\n"
      "total_commands_processed:1234\r\ntotal_reads_processed:99\r\n# Commandstats\r\n"
      "cmdstat_set:calls=1000,usec=488,usec_per_call=0.49,rejected_calls=2,failed_calls=3\r\n"
      "cmdstat_latency|histogram:calls=1,usec=85,usec_per_call=85.00\r\n"
      "# Keyspace\r\ndb0:keys=100,expires=7,avg_ttl=0\r\ndb12:keys=1,expires=0,avg_ttl=0\r\n");
  EXPECT_EQ(info.at("redis_version"), "7.0.15");
  EXPECT_EQ(InfoNumber(info, "total_commands_processed"), 1234);
  EXPECT_FALSE(InfoNumber(info, "run_id").has_value());
  EXPECT_FALSE(InfoNumber(info, "missing").has_value());
  const auto stats = CommandStats(info);
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats.at("set").calls, 1000u);
  EXPECT_EQ(stats.at("set").usec, 488u);
  EXPECT_EQ(stats.at("set").rejected_calls, 2u);
  EXPECT_EQ(stats.at("set").failed_calls, 3u);
  EXPECT_EQ(stats.at("latency|histogram").failed_calls, 0u);  // before Redis 6.2: absent
  const auto ks = Keyspace(info);
  ASSERT_EQ(ks.size(), 2u);
  EXPECT_EQ(ks.at("db0").keys, 100u);
  EXPECT_EQ(ks.at("db0").expires, 7u);
  EXPECT_EQ(ks.at("db12").keys, 1u);
}

TEST(RedisInfo, LatencyHistogramDeltaAndQuantileBuckets) {
  // Start: 10 calls, all <= 1 µs. End: 10 more <= 1 µs, 88 in (8, 16], 2 in (16, 33].
  auto start = ParseLatencyHistogram(Arr(Entry("set", 10, {{1, 10}})));
  auto end = ParseLatencyHistogram(Arr(Entry("set", 110, {{1, 20}, {16, 108}, {33, 110}})));
  ASSERT_TRUE(start.ok() && end.ok());
  auto w = HistogramDelta(start->at("set"), end->at("set"));
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->calls, 100u);
  ASSERT_EQ(w->buckets.size(), 3u);
  EXPECT_EQ(w->buckets[0], (std::pair<uint64_t, uint64_t>{1, 10}));
  EXPECT_EQ(w->buckets[1], (std::pair<uint64_t, uint64_t>{16, 88}));
  EXPECT_EQ(w->buckets[2], (std::pair<uint64_t, uint64_t>{33, 2}));
  // Ranks 11..98 of 100 fall in (8, 16]; rank 99 (p99) in (16, 33].
  auto p10 = QuantileBounds(*w, 0.10);
  auto p50 = QuantileBounds(*w, 0.50);
  auto p98 = QuantileBounds(*w, 0.98);
  auto p99 = QuantileBounds(*w, 0.99);
  ASSERT_TRUE(p10 && p50 && p98 && p99);
  EXPECT_EQ(p10->lower_us, 0u);
  EXPECT_EQ(p10->upper_us, 1u);
  EXPECT_EQ(p50->lower_us, 8u);
  EXPECT_EQ(p50->upper_us, 16u);
  EXPECT_EQ(p98->upper_us, 16u);
  EXPECT_EQ(p99->lower_us, 16u);
  EXPECT_EQ(p99->upper_us, 33u);
  EXPECT_FALSE(QuantileBounds(WindowHistogram{}, 0.5).has_value());
}

TEST(RedisInfo, LatencyHistogramResetIsAnErrorNotAWrongDelta) {
  auto start = ParseLatencyHistogram(Arr(Entry("get", 50, {{1, 40}, {2, 50}})));
  auto end = ParseLatencyHistogram(Arr(Entry("get", 5, {{4, 5}})));
  ASSERT_TRUE(start.ok() && end.ok());
  EXPECT_FALSE(HistogramDelta(start->at("get"), end->at("get")).ok());
  // Same total calls but fewer in a low bucket: also a reset, not negative calls.
  auto shifted = ParseLatencyHistogram(Arr(Entry("get", 50, {{2, 50}})));
  ASSERT_TRUE(shifted.ok());
  EXPECT_FALSE(HistogramDelta(start->at("get"), shifted->at("get")).ok());
}

TEST(RedisInfo, MalformedRepliesAreErrors) {
  EXPECT_FALSE(ParseLatencyHistogram(Str("nope")).ok());
  EXPECT_FALSE(ParseLatencyHistogram(Arr({Str("set")})).ok());
  RedisReply err;
  err.type = RedisReply::Type::kError;
  err.str = "ERR unknown subcommand";
  EXPECT_FALSE(ParseLatencyHistogram(err).ok());
  EXPECT_FALSE(ParseSlowlog(Arr({Arr({Int(1)})})).ok());
}

TEST(RedisInfo, ParsesSlowlog) {
  auto entries = ParseSlowlog(
      Arr({Arr({Int(7), Int(1700000000), Int(25000), Arr({Str("EVAL"), Str("return 1"), Str("0")}),
                Str("127.0.0.1:5000"), Str("detection")})}));
  ASSERT_TRUE(entries.ok()) << entries.status().message();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].id, 7);
  EXPECT_EQ((*entries)[0].duration_us, 25000);
  EXPECT_EQ((*entries)[0].args, (std::vector<std::string>{"EVAL", "return 1", "0"}));
  EXPECT_EQ((*entries)[0].client, "127.0.0.1:5000 detection");
}

ServiceScrape Scrape(const std::string& name, const std::string& text, int port = 1) {
  ServiceScrape s{{name, port}, true, "", {}};
  auto parsed = ParsePromText(text);
  EXPECT_TRUE(parsed.ok());
  if (parsed.ok()) s.samples = *parsed;
  return s;
}

std::string Counters(const std::string& source, const std::string& op, int commands, int pipelined,
                     int round_trips) {
  const std::string l = "{source=\"" + source + "\",op=\"" + op + "\"} ";
  return "framescope_redis_commands_total" + l + std::to_string(commands) +
         "\nframescope_redis_pipelined_commands_total" + l + std::to_string(pipelined) +
         "\nframescope_redis_round_trips_total" + l + std::to_string(round_trips) + "\n";
}

TEST(RedisPipelining, WindowDeltasPerOpAndSourceAndARestartedService) {
  std::vector<ServiceScrape> begin = {
      Scrape("detection", Counters("detection", "XADD", 1000, 1000, 100) +
                              Counters("detection", "ping", 5, 0, 5)),
      Scrape("aggregation", Counters("aggregation", "xreadgroup", 500, 0, 500)),
      Scrape("api", "up 1\n"),
      ServiceScrape{{"capture", 2}, false, "127.0.0.1:2/metrics: refused", {}}};
  std::vector<ServiceScrape> end = {
      Scrape("detection", Counters("detection", "XADD", 1300, 1300, 130) +
                              Counters("detection", "ping", 105, 0, 105)),
      // Restarted: xreadgroup went down; the new op appeared.
      Scrape("aggregation", Counters("aggregation", "xreadgroup", 40, 0, 40) +
                                Counters("aggregation", "XACK", 20, 20, 2)),
      Scrape("api", "up 1\n"),
      ServiceScrape{{"capture", 2}, false, "127.0.0.1:2/metrics: refused", {}}};
  const ClientPipelining p = DiffClientCounters(begin, end);
  EXPECT_TRUE(p.any_counters);
  ASSERT_EQ(p.ops.size(), 4u);
  // detection: 300 pipelined XADDs in 30 round trips + 100 single pings = 75 %.
  ASSERT_EQ(p.sources.size(), 2u);
  EXPECT_EQ(p.sources[1].source, "detection");
  EXPECT_EQ(p.sources[1].counts.commands, 400);
  EXPECT_EQ(p.sources[1].counts.Efficiency(), 0.75);
  EXPECT_EQ(p.sources[1].counts.CommandsPerRoundTrip(), 400.0 / 130);
  EXPECT_EQ(p.sources[0].counts.commands, 60);  // aggregation from its end values
  EXPECT_EQ(p.sources[0].counts.pipelined, 20);
  EXPECT_EQ(p.total.commands, 460);
  EXPECT_EQ(p.total.pipelined, 320);
  ASSERT_EQ(p.services.size(), 4u);
  EXPECT_EQ(p.services[0].state, "measured");
  EXPECT_EQ(p.services[1].state, "restarted");
  EXPECT_NE(p.services[1].detail.find("went down from 500 to 40"), std::string::npos)
      << p.services[1].detail;
  EXPECT_EQ(p.services[2].state, "no counters");
  EXPECT_EQ(p.services[3].state, "not measured");
  EXPECT_NE(p.services[3].detail.find("refused"), std::string::npos);
}

// Two replicas of one service (same name, different ports): each is subtracted from its own
// begin scrape, and a restart of one does not touch the other's delta.
TEST(RedisPipelining, ReplicasWithOneNameAreDiffedPerEndpointAndSummed) {
  const std::vector<ServiceScrape> begin = {
      Scrape("x", Counters("x", "set", 1000, 900, 100), 57001),
      Scrape("x", Counters("x", "set", 5000, 4500, 500), 57002)};
  const std::vector<ServiceScrape> end = {
      Scrape("x", Counters("x", "set", 1100, 990, 110), 57001),
      Scrape("x", Counters("x", "set", 5100, 4590, 510), 57002)};
  const ClientPipelining p = DiffClientCounters(begin, end);
  ASSERT_EQ(p.ops.size(), 1u);
  EXPECT_EQ(p.ops[0].service, "x");
  EXPECT_EQ(p.ops[0].counts.commands, 200);
  EXPECT_EQ(p.ops[0].counts.pipelined, 180);
  EXPECT_EQ(p.total.round_trips, 20);
  ASSERT_EQ(p.services.size(), 2u);
  EXPECT_EQ(p.services[0].state, "measured");
  EXPECT_EQ(p.services[1].state, "measured");

  // The second replica restarted (its counters went down to 30): it counts from its end values,
  // the first still from its own delta.
  std::vector<ServiceScrape> restarted = end;
  restarted[1] = Scrape("x", Counters("x", "set", 30, 27, 3), 57002);
  const ClientPipelining r = DiffClientCounters(begin, restarted);
  EXPECT_EQ(r.total.commands, 130);
  EXPECT_EQ(r.services[0].state, "measured");
  EXPECT_EQ(r.services[1].state, "restarted");
}

}  // namespace
}  // namespace fs::io
