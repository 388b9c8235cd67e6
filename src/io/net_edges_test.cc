#include "src/io/net_edges.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "src/clients/metrics.h"

namespace fs::io {
namespace {

// A registry rendered and parsed as a scrape would see it: the real text path.
HistSnapshot Snapshot(const MetricsRegistry& r, const std::string& service) {
  auto samples = ParsePromText(r.RenderText());
  EXPECT_TRUE(samples.ok()) << samples.status().message();
  HistSnapshot snap;
  AddHistogramSamples(*samples, service, service, &snap);
  return snap;
}

Histogram* Edge(MetricsRegistry& r, const std::string& source, const std::string& target,
                const std::string& op,
                const std::vector<double>& bounds = LatencyBucketsSeconds()) {
  return r.GetHistogram(kClientHistogram, "test",
                        {{"source", source}, {"target", target}, {"op", op}}, bounds);
}

void ObserveN(Histogram* h, int n, double seconds) {
  for (int i = 0; i < n; ++i) h->Observe(seconds);
}

std::vector<NetEdge> Window(const HistSnapshot& begin, const HistSnapshot& end, double window_s,
                            std::vector<SeriesKey>* resets = nullptr) {
  std::vector<SeriesKey> local;
  if (!resets) resets = &local;
  return BuildEdges(WindowDelta(begin, end, resets), *resets, window_s);
}

TEST(NetEdges, KnownP99BucketGivesItsBoundsAndTheInterpolatedValue) {
  MetricsRegistry r;
  Histogram* h = Edge(r, "api", "postgres", "q");
  ObserveN(h, 7, 3.0);  // before the window: must not count
  const HistSnapshot begin = Snapshot(r, "api");
  ObserveN(h, 90, 0.0007);  // bucket (0.5, 1] ms
  ObserveN(h, 10, 0.02);    // bucket (10, 25] ms
  const auto edges = Window(begin, Snapshot(r, "api"), 10);
  ASSERT_EQ(edges.size(), 1u);
  const EdgeStats& s = edges[0].total;
  EXPECT_EQ(s.requests, 100);
  EXPECT_DOUBLE_EQ(s.rate, 10);
  ASSERT_TRUE(s.p99 && s.p50);
  // Rank 99 of 100: the 9th of the 10 in (10, 25] ms.
  EXPECT_DOUBLE_EQ(s.p99->lower, 0.01);
  EXPECT_DOUBLE_EQ(s.p99->upper, 0.025);
  EXPECT_NEAR(s.p99->value, 0.01 + 0.015 * 9 / 10, 1e-12);
  EXPECT_DOUBLE_EQ(s.p50->lower, 0.0005);
  EXPECT_DOUBLE_EQ(s.p50->upper, 0.001);
  EXPECT_NEAR(s.p50->value, 0.0005 + 0.0005 * 50 / 90, 1e-12);
  EXPECT_NEAR(s.mean_s, (90 * 0.0007 + 10 * 0.02) / 100, 1e-9);
  EXPECT_EQ(s.verdict, "not met");
  EXPECT_DOUBLE_EQ(*s.fast_share, 0.9);
}

TEST(NetEdges, FiveMsVerdictIsExactFromTheBucketCounts) {
  MetricsRegistry r;
  ObserveN(Edge(r, "detection", "redis", "XADD"), 990, 0.004);
  ObserveN(Edge(r, "detection", "redis", "XADD"), 10, 0.006);
  ObserveN(Edge(r, "aggregation", "redis", "XACK"), 989, 0.004);
  ObserveN(Edge(r, "aggregation", "redis", "XACK"), 11, 0.006);
  const auto edges = Window({}, Snapshot(r, "x"), 1);
  ASSERT_EQ(edges.size(), 2u);
  EXPECT_EQ(edges[0].source, "aggregation");
  EXPECT_EQ(edges[0].total.verdict, "not met") << edges[0].total.reason;  // 98.9 %
  EXPECT_EQ(edges[0].total.fast_requests, 989);
  EXPECT_EQ(edges[1].total.verdict, "met") << edges[1].total.reason;  // exactly 99 %
  // p99 of the met edge lies in (2.5, 5] ms: the 990th of 1000 is the last one <= 5 ms.
  EXPECT_DOUBLE_EQ(edges[1].total.p99->upper, 0.005);
  const NetChecklist c = CheckEdges(edges);
  EXPECT_EQ(c.verdict, "not met");
  EXPECT_NE(c.reason.find("aggregation -> redis"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("98.90 %"), std::string::npos) << c.reason;
}

TEST(NetEdges, ANonFiniteCountIsNotMeasurableNotIdleOrNotMet) {
  HistCounts h;
  h.cumulative = {{0.005, std::nan("")}, {std::numeric_limits<double>::infinity(), 10}};
  h.count = 10;
  EXPECT_EQ(StatsOf(h, 1).verdict, "not measurable");
  h.cumulative = {{0.005, 5}, {std::numeric_limits<double>::infinity(), 10}};
  h.count = std::nan("");
  EXPECT_EQ(StatsOf(h, 1).verdict, "not measurable");
  h.count = 10;
  EXPECT_EQ(StatsOf(h, 1).verdict, "not met");
}

TEST(NetEdges, IdleEdgeIsShownNotDroppedAndDoesNotDecideTheChecklist) {
  MetricsRegistry r;
  Edge(r, "api", "redis", "HGETALL");  // exists, never observed
  ObserveN(Edge(r, "api", "postgres", "q"), 5, 0.001);
  const HistSnapshot begin = Snapshot(r, "api");
  ObserveN(Edge(r, "api", "postgres", "q"), 5, 0.001);
  const auto edges = Window(begin, Snapshot(r, "api"), 1);
  ASSERT_EQ(edges.size(), 2u);
  EXPECT_EQ(edges[1].target, "redis");
  EXPECT_EQ(edges[1].total.verdict, "idle");
  EXPECT_FALSE(edges[1].total.p99);
  EXPECT_EQ(CheckEdges(edges).verdict, "met") << CheckEdges(edges).reason;
  // Only idle edges: nothing to judge.
  const auto idle = Window(Snapshot(r, "api"), Snapshot(r, "api"), 1);
  EXPECT_EQ(idle.size(), 2u);
  EXPECT_EQ(CheckEdges(idle).verdict, "not measurable");
}

TEST(NetEdges, CounterResetCountsFromTheEndValueAndIsFlagged) {
  MetricsRegistry before, after;  // the service restarted in the window
  ObserveN(Edge(before, "api", "redis", "GET"), 100, 0.001);
  ObserveN(Edge(after, "api", "redis", "GET"), 30, 0.001);
  ObserveN(Edge(after, "api", "redis", "GET"), 1, 0.5);
  std::vector<SeriesKey> resets;
  const auto edges = Window(Snapshot(before, "api"), Snapshot(after, "api"), 1, &resets);
  ASSERT_EQ(resets.size(), 1u);
  ASSERT_EQ(edges.size(), 1u);
  EXPECT_EQ(edges[0].total.requests, 31);
  EXPECT_TRUE(edges[0].total.reset);
  EXPECT_TRUE(edges[0].ops[0].reset);
}

TEST(NetEdges, WithoutA5msBoundTheVerdictIsNotMeasurable) {
  MetricsRegistry r;
  // x has 0.005 and is summed first; y has not: the sum must not keep x's count at 0.005 alone.
  ObserveN(Edge(r, "a", "b", "x"), 10, 0.002);
  ObserveN(Edge(r, "a", "b", "y", {0.001, 0.01}), 10, 0.002);
  const auto edges = Window({}, Snapshot(r, "a"), 1);
  ASSERT_EQ(edges.size(), 1u);
  EXPECT_EQ(edges[0].total.verdict, "not measurable");
  EXPECT_FALSE(edges[0].total.fast_share);
  EXPECT_NE(edges[0].total.reason.find("not a bucket bound"), std::string::npos);
  EXPECT_EQ(edges[0].ops[0].verdict, "met");  // x alone has the bound
  EXPECT_EQ(edges[0].ops[1].verdict, "not measurable");
  EXPECT_EQ(edges[0].total.requests, 20);
  EXPECT_EQ(CheckEdges(edges).verdict, "not measurable");
}

TEST(NetEdges, ServerSideIsAnEdgeFromAnyClientToTheExporter) {
  MetricsRegistry r;
  Histogram* h =
      r.GetHistogram(kServerHistogram, "test", {{"route", "/detections"}}, LatencyBucketsSeconds());
  ObserveN(h, 4, 0.03);
  const auto edges = Window({}, Snapshot(r, "api"), 2);
  ASSERT_EQ(edges.size(), 1u);
  EXPECT_TRUE(edges[0].server_side);
  EXPECT_EQ(EdgeName(edges[0]), "clients -> api (server side)");
  EXPECT_EQ(edges[0].ops[0].op, "/detections");
  EXPECT_EQ(edges[0].total.verdict, "not met");
  EXPECT_DOUBLE_EQ(edges[0].total.p99->lower, 0.025);
}

TEST(NetEdges, BlockingReadsAreShownButLeftOutOfTheEdgeVerdict) {
  MetricsRegistry r;
  ObserveN(Edge(r, "aggregation", "redis", "XACK"), 100, 0.001);
  ObserveN(Edge(r, "aggregation", "redis", "XREADGROUP"), 50, 0.4);  // BLOCK waited for data
  ObserveN(Edge(r, "capture", "redis", "BLPOP"), 5, 0.4);
  const auto edges = Window({}, Snapshot(r, "x"), 1);
  ASSERT_EQ(edges.size(), 2u);
  EXPECT_EQ(edges[0].total.requests, 100);
  EXPECT_EQ(edges[0].total.verdict, "met") << edges[0].total.reason;
  ASSERT_EQ(edges[0].ops.size(), 2u);
  EXPECT_TRUE(edges[0].ops[1].blocking);
  EXPECT_EQ(edges[0].ops[1].verdict, "not judged");
  EXPECT_EQ(edges[0].ops[1].requests, 50);
  EXPECT_EQ(edges[1].total.verdict, "not judged");  // only a blocking read: neither idle nor met
  EXPECT_EQ(CheckEdges(edges).verdict, "met");
}

// Samples of one series added twice (labels the key leaves out, or one exporter read twice) add
// up instead of the last one winning.
TEST(NetEdges, SamplesOfOneSeriesAreSummed) {
  MetricsRegistry r1, r2;
  ObserveN(Edge(r1, "det", "redis", "get"), 1000, 0.004);
  ObserveN(Edge(r2, "det", "redis", "get"), 1000, 0.0005);
  HistSnapshot snap;
  for (const MetricsRegistry* r : {&r1, &r2}) {
    auto samples = ParsePromText(r->RenderText());
    ASSERT_TRUE(samples.ok());
    AddHistogramSamples(*samples, "det", "det", &snap);
  }
  ASSERT_EQ(snap.size(), 1u);
  const HistCounts& h = snap.begin()->second;
  EXPECT_EQ(h.count, 2000);
  EXPECT_EQ(h.cumulative.at(0.001), 1000);
  EXPECT_EQ(h.cumulative.at(0.005), 2000);
}

// Each exporter's count divides by its own window (Prometheus' scrapes of it), not a shared one.
TEST(NetEdges, RatesDivideByEachExportersOwnWindow) {
  MetricsRegistry a, b;
  ObserveN(Edge(a, "det", "redis", "get"), 100, 0.001);
  ObserveN(Edge(b, "det", "redis", "get"), 100, 0.001);
  HistSnapshot end;
  AddHistogramSamples(*ParsePromText(a.RenderText()), "det/a", "", &end);
  AddHistogramSamples(*ParsePromText(b.RenderText()), "det/b", "", &end);
  const auto edges = Window({}, end, 10, nullptr);
  ASSERT_EQ(edges.size(), 1u);
  EXPECT_DOUBLE_EQ(edges[0].total.rate, 20);  // 200 / 10 s
  std::vector<SeriesKey> resets;
  const auto own =
      BuildEdges(WindowDelta({}, end, &resets), resets, 10, {{"det/a", 10}, {"det/b", 5}});
  ASSERT_EQ(own.size(), 1u);
  EXPECT_DOUBLE_EQ(own[0].total.rate, 30);  // 100 / 10 s + 100 / 5 s
  EXPECT_DOUBLE_EQ(own[0].ops[0].rate, 30);
}

}  // namespace
}  // namespace fs::io
