#include "src/report/edge_graph.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "src/clients/metrics.h"

namespace fs::profile {
namespace {

// A map with one edge of each colour: ok, over, idle, a straddling one (no 5 ms bound), the api's
// server side, and a service outside the known layout whose name needs escaping.
io::EdgeMap SampleMap() {
  MetricsRegistry r;
  auto edge = [&](const std::string& source, const std::string& target,
                  const std::vector<double>& bounds = LatencyBucketsSeconds()) {
    return r.GetHistogram(io::kClientHistogram, "t",
                          {{"source", source}, {"target", target}, {"op", "op"}}, bounds);
  };
  for (int i = 0; i < 100; ++i) edge("detection", "redis")->Observe(0.001);
  for (int i = 0; i < 100; ++i) edge("api", "postgres")->Observe(0.03);
  edge("aggregation", "postgres");
  r.GetHistogram(io::kClientHistogram, "t",
                 {{"source", "capture"}, {"target", "redis"}, {"op", "BLPOP"}},
                 LatencyBucketsSeconds())
      ->Observe(0.3);  // a blocking read only: not judged
  for (int i = 0; i < 10; ++i) edge("a<b&c", "redis", {0.001, 0.01})->Observe(0.004);
  r.GetHistogram(io::kServerHistogram, "t", {{"route", "/cameras"}}, LatencyBucketsSeconds())
      ->Observe(0.002);
  auto samples = ParsePromText(r.RenderText());
  EXPECT_TRUE(samples.ok());
  io::HistSnapshot end;
  io::AddHistogramSamples(*samples, "api", "api", &end);
  std::vector<io::SeriesKey> resets;
  io::EdgeMap m;
  m.source = "direct scrape";
  m.source_reason = "Prometheus is not running (no port)";
  m.window_s = 10;
  m.edges = io::BuildEdges(io::WindowDelta({}, end, &resets), resets, m.window_s);
  m.checklist = io::CheckEdges(m.edges);
  return m;
}

std::string Xmllint(const std::string& text) {
  char path[] = "/tmp/fs-edge-graph-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << text;
  const std::string cmd = std::string("xmllint --noout ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (p && fgets(buf, sizeof(buf), p)) out += buf;
  const int status = p ? pclose(p) : -1;
  unlink(path);
  return status == 0 ? "" : "xmllint failed: " + out;
}

TEST(EdgeGraph, SvgIsWellFormedXmlWithOneArrowPerEdgeColouredByP99) {
  ASSERT_EQ(access("/usr/bin/xmllint", X_OK), 0) << "xmllint is missing (apt-get install "
                                                    "libxml2-utils)";
  const io::EdgeMap m = SampleMap();
  ASSERT_EQ(m.edges.size(), 6u);
  const std::string svg = EdgeGraphSvgFile(m);
  EXPECT_EQ(Xmllint(svg), "");
  EXPECT_NE(svg.find("class=\"edge ok\""), std::string::npos);         // detection -> redis
  EXPECT_NE(svg.find("class=\"edge over\""), std::string::npos);       // api -> postgres
  EXPECT_NE(svg.find("class=\"edge idle\""), std::string::npos);       // aggregation -> postgres
  EXPECT_NE(svg.find("class=\"edge straddles\""), std::string::npos);  // (2.5?, 10] around 5 ms
  EXPECT_NE(svg.find("stroke-dasharray=\"6 3\""), std::string::npos);  // the server side
  EXPECT_NE(svg.find("a&lt;b&amp;c"), std::string::npos);
  EXPECT_NE(svg.find("p99 0.995 ms, 10.0/s</text>"), std::string::npos) << svg;
  EXPECT_NE(svg.find(">not judged</text>"), std::string::npos);
  // Labels after the last node, so no node circle hides one.
  EXPECT_GT(svg.find("class=\"edge-label\""), svg.rfind("class=\"node\""));
}

TEST(EdgeGraph, HtmlAndBaselineSectionsCarryTheTableAndTheVerdict) {
  const io::EdgeMap m = SampleMap();
  const std::string html = RenderNetHtml(m, "io/network_map.json");
  EXPECT_EQ(Xmllint("<div>" + html + "</div>"), "");
  EXPECT_NE(html.find("<h2 id=\"net\">"), std::string::npos);
  EXPECT_NE(html.find("api -&gt; postgres"), std::string::npos);
  EXPECT_NE(html.find("49.8 ms in (25.0, 50.0] ms"), std::string::npos) << html;
  EXPECT_NE(html.find("100.00 % (100/100)"), std::string::npos);
  EXPECT_NE(html.find(": not met</b>"), std::string::npos);
  const std::string md = RenderBaselineNetSection(m, "io/network_map.json");
  EXPECT_EQ(md.rfind(kNetSectionBegin, 0), 0u);
  EXPECT_NE(md.find(kNetSectionEnd), std::string::npos);
  EXPECT_NE(md.find("| aggregation -> postgres | client | 0 | 0.00 | - | - | - | idle |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("**not met**"), std::string::npos);
}

TEST(EdgeGraph, NotMeasurableMapSaysWhyInsteadOfZeros) {
  io::EdgeMap m;
  m.unavailable = "Prometheus is not running (no port); and no service /metrics was given";
  m.checklist = {"not measurable", m.unavailable};
  EXPECT_EQ(Xmllint(EdgeGraphSvgFile(m)), "");
  const std::string md = RenderBaselineNetSection(m, "io/network_map.json");
  EXPECT_NE(md.find("Not measurable here: Prometheus is not running"), std::string::npos) << md;
  EXPECT_EQ(md.find("| edge |"), std::string::npos);
}

}  // namespace
}  // namespace fs::profile
