#include "src/report/batch_chart.h"

#include <string>

#include "gtest/gtest.h"

namespace fs::profile {
namespace {

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

model::BatchAnalysis Analysis() {
  model::BatchAnalysis a;
  a.model_path = "/m/yolo<tiny>.cfg";
  a.input_width = a.input_height = 416;
  for (auto [batch, ips, p99] : {std::tuple{1, 10.0, 110.0}, {2, 10.5, 200.0}, {4, 10.6, 390.0}}) {
    model::BatchResult r;
    r.batch = batch;
    r.throughput_ips = ips;
    r.p99_ms = p99;
    r.stable = batch != 4;
    r.unstable_reason = r.stable ? "" : "time cap";
    a.results.push_back(r);
  }
  a.choice = model::ChooseBestBatch(a.results, {250, "test budget"});
  a.live = model::LiveNotMeasurable("not measurable: no running system");
  return a;
}

TEST(BatchChart, ThroughputAndLatencyLinesWithTheBudget) {
  std::string svg = BatchChartSvg(Analysis());
  EXPECT_EQ(Count(svg, "<polyline class=\"throughput\""), 1u);
  EXPECT_EQ(Count(svg, "<polyline class=\"p99\""), 1u);
  EXPECT_EQ(Count(svg, "<circle"), 6u);
  EXPECT_EQ(Count(svg, "fill=\"#fff\""), 2u);  // batch 4 is unstable: hollow on both lines
  EXPECT_NE(svg.find("budget 250.0 ms"), std::string::npos);
  model::BatchAnalysis empty;
  EXPECT_EQ(BatchChartSvg(empty).find("<polyline"), std::string::npos);
}

TEST(BatchChart, SectionsCarryTheVerdictTableAndLiveReason) {
  model::BatchAnalysis a = Analysis();
  std::string html = RenderBatchHtml(a, "models/batch_analysis.json");
  EXPECT_NE(html.find("yolo&lt;tiny&gt;.cfg"), std::string::npos);  // escaped
  EXPECT_NE(html.find("not met.</b>"), std::string::npos);
  EXPECT_EQ(Count(html, "<tr>"), 4u);  // header + 3 batch sizes
  EXPECT_NE(html.find("no running system"), std::string::npos);
  EXPECT_NE(RenderBatchPage(a).find("<!DOCTYPE html>"), std::string::npos);
  std::string md = RenderBaselineBatchSection(a);
  EXPECT_EQ(md.find(kBatchSectionBegin), 0u);
  EXPECT_NE(md.find(kBatchSectionEnd), std::string::npos);
  EXPECT_NE(md.find("| 2 | 10.50 | 1.05 |"), std::string::npos) << md;
  EXPECT_NE(md.find("no (time cap)"), std::string::npos) << md;
}

}  // namespace
}  // namespace fs::profile
