// The terminal table and compare.html of a comparison made from in-memory sides.
#include "src/report/compare_report.h"

#include <gtest/gtest.h>

namespace fs::profile {
namespace {

regression::Side MakeSide(const std::string& spec, std::vector<double> values,
                          const std::string& extra) {
  regression::Side s;
  s.spec = spec;
  s.runs.emplace_back();
  s.metrics.push_back({"api/<p99>_ms", "api", "ms", "x", false, std::move(values)});
  s.metrics.push_back({extra, "api", "ms", "x", false, {1}});
  return s;
}

TEST(CompareReportTest, TableAndPageShowTheNumbersAndMissingMetrics) {
  regression::Side b = MakeSide("base", {10, 10.1, 9.9, 10.2}, "api/only_base");
  regression::Side c = MakeSide("cur", {20, 20.1, 19.9, 20.2}, "api/only_cur");
  regression::Comparison cmp = regression::Compare(b, c, {});
  std::string text = RenderCompareText(b, c, cmp);
  EXPECT_NE(text.find("api/<p99>_ms                        10.05      20.05      +99.5 % ["),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("0.0286   4/4    regression"), std::string::npos) << text;
  EXPECT_NE(text.find("api/only_base                       missing in the current"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("not measured in the current side: api/only_base\nverdict: regression "
                      "(threshold +10.0 %, alpha 0.05)"),
            std::string::npos)
      << text;
  std::string html = RenderCompareHtml(b, c, cmp, {{"api", "diff/api.html"}});
  EXPECT_NE(html.find("<td>api/&lt;p99&gt;_ms</td>"), std::string::npos) << html;
  EXPECT_EQ(html.find("<p99>"), std::string::npos);
  EXPECT_NE(html.find("Verdict: <span class=\"bad\">regression</span>"), std::string::npos);
  EXPECT_NE(html.find("missing in the baseline"), std::string::npos);
  EXPECT_EQ(FormatChange(0.123), "+12.3 %");
  EXPECT_EQ(FormatChange(1.0 / 0.0), "+inf");
}

}  // namespace
}  // namespace fs::profile
