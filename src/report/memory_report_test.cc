#include "src/report/memory_report.h"

#include <gtest/gtest.h>

#include <string>

#include "src/report/cpu_report.h"

namespace fs::profile {
namespace {

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// `n` samples 2 s apart, RSS growing by `step` bytes per sample from 100 MB.
ServiceMemory Service(const std::string& name, size_t n, uint64_t step) {
  ServiceMemory s;
  s.name = name;
  s.log_file = "memory/" + name + ".log";
  for (size_t i = 0; i < n; ++i) {
    MemorySample m;
    m.time_s = 1000 + 2.0 * static_cast<double>(i);
    m.name = name;
    m.pids = {42};
    m.bytes.rss = 100'000'000 + step * i;
    s.samples.push_back(m);
  }
  s.rate = EstimateLeakRate(RssSeries(s.samples));
  return s;
}

MemoryReport Report() {
  MemoryReport r;
  r.interval_s = 2;
  r.services = {Service("detection", 30, 1000), Service("api", 3, 0), Service("redis", 0, 0)};
  return r;
}

TEST(MemoryReportTest, OnePolylinePerServiceWithAPointPerSample) {
  const std::string html = RenderMemoryHtml(Report());
  EXPECT_EQ(Count(html, "<svg"), 3u);
  EXPECT_EQ(Count(html, "<polyline"), 2u);  // redis has no samples: a note, no line
  EXPECT_NE(html.find("no samples"), std::string::npos);
  const std::string svg = RssChartSvg(Service("detection", 30, 1000));
  const size_t at = svg.find("points=\"") + 8;
  const std::string points = svg.substr(at, svg.find('"', at) - at);
  EXPECT_EQ(Count(points, ","), 30u);
  // Growing RSS: the first point is at the bottom-left, the last at the top-right.
  EXPECT_EQ(points.substr(0, points.find(' ')), "0.0,82.0");
  EXPECT_EQ(points.substr(points.rfind(' ') + 1), "360.0,2.0");
  EXPECT_EQ(html.find("http"), html.find("http://www.w3.org/2000/svg"));  // no fetches
}

TEST(MemoryReportTest, NotMeasurableIsTextAndNullNeverZero) {
  const MemoryReport r = Report();
  const ServiceMemory& api = r.services[1];
  ASSERT_EQ(api.rate.verdict, LeakVerdict::kNotMeasurable);
  EXPECT_EQ(SlopeText(api.rate), "not measurable (" + api.rate.reason + ")");
  EXPECT_FALSE(api.rate.reason.empty());
  const Json j = MemoryReportToJson(r);
  const Json& p = j.Get("processes").AsArray()[1];
  EXPECT_EQ(p.Get("name").AsString(), "api");
  EXPECT_TRUE(p.Get("rss_slope_mb_per_h").is_null());
  EXPECT_TRUE(p.Get("ci95").is_null());
  EXPECT_EQ(p.Get("reason").AsString(), api.rate.reason);
  EXPECT_EQ(p.Get("rss_start_bytes").AsDouble(), 100e6);
  EXPECT_TRUE(j.Get("processes").AsArray()[2].Get("rss_bytes").is_null());
  const std::string md = RenderBaselineMemorySection(r);
  EXPECT_NE(md.find("| api | 100.0 | 100.0 | not measurable ("), std::string::npos) << md;
}

TEST(MemoryReportTest, MeasuredSlopeAndSectionMarkers) {
  const MemoryReport r = Report();
  // 1000 bytes per 2 s = 1.8 MB/h, exactly linear.
  EXPECT_EQ(SlopeText(r.services[0].rate), "+1.80 MB/h (95% CI 1.80 .. 1.80)");
  EXPECT_EQ(VerdictText(r.services[0].rate), "met");
  const Json p = MemoryReportToJson(r).Get("processes").AsArray()[0];
  EXPECT_NEAR(p.Get("rss_slope_mb_per_h").AsDouble(), 1.8, 1e-9);
  const std::string md = RenderBaselineMemorySection(r);
  EXPECT_EQ(md.rfind(kMemorySectionBegin, 0), 0u);
  EXPECT_NE(md.find(std::string(kMemorySectionEnd) + "\n"), std::string::npos);
  EXPECT_NE(md.find("| detection | 100.0 | 100.0 | +1.80 MB/h"), std::string::npos) << md;
}

// The baseline's memory section has markers of its own: rewriting it keeps the CPU section and
// the hand-written text byte for byte, and replaces (never appends) the old memory section.
TEST(MemoryReportTest, MemorySectionRewrittenWithoutTouchingTheCpuSection) {
  const std::string cpu = std::string(kCpuSectionBegin) + "\n## CPU\nx\n" + kCpuSectionEnd + "\n";
  std::string doc = ReplaceSection("# B\n\nnotes\n", kCpuSectionBegin, kCpuSectionEnd, cpu);
  doc = ReplaceSection(doc, kMemorySectionBegin, kMemorySectionEnd,
                       RenderBaselineMemorySection(Report()));
  MemoryReport fewer = Report();
  fewer.services.pop_back();
  doc = ReplaceSection(doc, kMemorySectionBegin, kMemorySectionEnd,
                       RenderBaselineMemorySection(fewer));
  EXPECT_EQ(doc.rfind("# B\n\nnotes\n", 0), 0u) << doc;
  EXPECT_NE(doc.find(cpu), std::string::npos) << doc;
  EXPECT_EQ(Count(doc, "## Memory"), 1u) << doc;
  EXPECT_EQ(doc.find("| redis |"), std::string::npos) << doc;
}

// A heap-profiled service gets its sites (escaped), links and growth in both documents; one
// whose sites could not be read says why; the others get no heap part at all.
TEST(MemoryReportTest, HeapSitesOfHeapProfiledServicesOnly) {
  MemoryReport r = Report();
  Json site = Json::MakeObject();
  site["function"] = "Leak<int>()";
  site["growth_mb_per_h"] = 12.5;
  site["ci95"] = Json(Json::Array{10.0, 15.0});
  site["inuse_bytes"] = 3'000'000;
  site["alloc_bytes"] = 9'000'000;
  Json heap = Json::MakeObject();
  heap["heap_sampled"] = true;
  heap["sample_interval_bytes"] = 524288;
  heap["heap_growth_mb_per_h"] = 12.0;
  heap["heap_profile"] = "memory/detection.heap.pb.gz";
  heap["heap_flamegraph"] = "memory/detection.heap.html";
  heap["growth_flamegraph"] = "memory/detection.growth.html";
  heap["sites"] = Json(Json::Array{site});
  r.services[0].heap = heap;
  Json absent = Json::MakeObject();
  absent["heap_sampled"] = false;
  absent["heap_reason"] = "no sites file";
  r.services[1].heap = absent;
  const std::string html = RenderMemoryHtml(r);
  EXPECT_NE(html.find("Leak&lt;int&gt;()"), std::string::npos) << html;
  EXPECT_NE(html.find("+12.5"), std::string::npos);
  EXPECT_NE(html.find("href=\"memory/detection.growth.html\""), std::string::npos);
  EXPECT_NE(html.find("Not sampled: no sites file"), std::string::npos);
  EXPECT_EQ(Count(html, "<h3>Heap of "), 2u) << "redis was not heap-profiled";
  const std::string md = RenderBaselineMemorySection(r);
  EXPECT_NE(md.find("| Leak<int>() | +12.5 (95% CI 10.0 .. 15.0) | 3.00 |"), std::string::npos)
      << md;
  EXPECT_EQ(Count(md, "Heap of "), 1u) << md;
  EXPECT_EQ(MemoryReportToJson(r).Get("processes").AsArray()[0].Get("heap").Dump(), heap.Dump());
  EXPECT_FALSE(MemoryReportToJson(r).Get("processes").AsArray()[2].Has("heap"));
}

}  // namespace
}  // namespace fs::profile
