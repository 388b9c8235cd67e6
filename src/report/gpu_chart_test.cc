#include "src/report/gpu_chart.h"

#include <gtest/gtest.h>

#include <string>

namespace fs::profile {
namespace {

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Samples 1 s apart with utilization.gpu `util[i]`, utilization.memory 50 and, with `gpm`, DRAM
// bandwidth 70 from the second sample on (as GPM gives it).
gpu::GpuTimeline Gpu(std::vector<unsigned> util, bool gpm) {
  gpu::GpuTimeline g;
  g.name = "Fake <H100>";
  for (size_t i = 0; i < util.size(); ++i) {
    gpu::GpuSample s;
    s.t_s = static_cast<double>(i);
    s.utilization_gpu = util[i];
    s.utilization_memory = 50;
    if (gpm && i > 0) s.optional[gpu::kDramBwUtil] = 70;
    g.samples.push_back(s);
  }
  if (!gpm) g.not_available[gpu::kDramBwUtil] = "not available: no GPM on this GPU";
  return g;
}

std::string PointsOf(const std::string& svg, size_t nth) {
  size_t at = 0;
  for (size_t i = 0; i <= nth; ++i) at = svg.find("points=\"", at) + 8;
  return svg.substr(at, svg.find('"', at) - at);
}

TEST(GpuChartTest, TimelineDrawsEachSeriesOnAFixedPercentScale) {
  const std::string svg = GpuTimelineSvg(Gpu({0, 50, 100}, true));
  EXPECT_EQ(Count(svg, "<polyline"), 3u);
  // x over 0..2 s onto 480 px; y: 100% at the top (2), 0% at the bottom (102).
  EXPECT_EQ(PointsOf(svg, 0), "0.0,102.0 240.0,52.0 480.0,2.0");
  EXPECT_EQ(PointsOf(svg, 1), "0.0,52.0 240.0,52.0 480.0,52.0");
  EXPECT_EQ(PointsOf(svg, 2), "240.0,32.0 480.0,32.0");  // GPM from the second sample
  EXPECT_NE(svg.find("Fake &lt;H100&gt;"), std::string::npos);
  EXPECT_EQ(Count(GpuTimelineSvg(Gpu({10, 20}, false)), "<polyline"), 2u);
  EXPECT_EQ(Count(GpuTimelineSvg(Gpu({}, false)), "<polyline"), 0u);
}

TEST(GpuChartTest, LostGpuIsMarkedWhereItWasLost) {
  gpu::GpuTimeline g = Gpu({10, 20, 30}, false);
  g.lost_at_s = 4;
  g.lost_reason = "nvmlDeviceGetUtilizationRates: GPU is lost (code 15)";
  const std::string svg = GpuTimelineSvg(g);
  EXPECT_NE(svg.find("<line x1=\"480.0\""), std::string::npos) << svg;
  EXPECT_EQ(PointsOf(svg, 0), "0.0,92.0 120.0,82.0 240.0,72.0");  // the span runs to the loss
  EXPECT_NE(svg.find("GPU is lost (code 15)"), std::string::npos);
}

TEST(GpuChartTest, HtmlAndBaselineCarryValuesCountersAndReasons) {
  gpu::GpuTelemetry t;
  t.interval_s = 1;
  t.duration_s = 3;
  t.gpus = {Gpu({20, 40, 60}, true)};
  const std::string html = RenderGpuHtml(t, "gpu/nsight_report.json");
  EXPECT_NE(html.find("<td>0.40 (NVML nvmlDeviceGetUtilizationRates utilization.gpu"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<td>0.70 (NVML GPM NVML_GPM_METRIC_DRAM_BW_UTIL"), std::string::npos);
  EXPECT_EQ(Count(html, "<td>not met</td>"), 2u);  // 0.40 is not > 0.4; 0.70 is not > 0.7
  EXPECT_EQ(Count(html, "<svg"), 1u);
  EXPECT_EQ(html.find("http"), html.find("http://www.w3.org/2000/svg"));  // no fetches

  const std::string md = RenderBaselineGpuSection(t, "profiles/gpu/nsight_report.json");
  EXPECT_EQ(md.rfind(kGpuSectionBegin, 0), 0u);
  EXPECT_NE(md.find(std::string(kGpuSectionEnd) + "\n"), std::string::npos);
  EXPECT_NE(md.find("| gpu_utilization_avg | 0.40 (NVML"), std::string::npos) << md;

  gpu::GpuTelemetry none;
  none.unavailable = "libnvidia-ml.so.1 not found (...)";
  const std::string empty = RenderGpuHtml(none, "gpu/nsight_report.json");
  EXPECT_NE(empty.find("<b>Not measurable here:</b> libnvidia-ml.so.1 not found"),
            std::string::npos);
  EXPECT_EQ(Count(empty, "<td>not measurable</td>"), 2u);
  EXPECT_EQ(Count(empty, "not measurable: libnvidia-ml.so.1 not found"), 2u);
  EXPECT_NE(RenderBaselineGpuSection(none, "x").find("| not measurable |"), std::string::npos);
}

}  // namespace
}  // namespace fs::profile
