#include "src/report/history.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "src/base/file_util.h"

namespace fs::profile {
namespace {

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

// The <svg> that follows the heading of `metric`.
std::string ChartOf(const std::string& html, const std::string& metric) {
  size_t h = html.find("<h4>" + metric + " (");
  if (h == std::string::npos) return "";
  size_t a = html.find("<svg", h), b = html.find("</svg>", a);
  return html.substr(a, b + 6 - a);
}

class History : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = ::testing::TempDir() + "/history" + std::to_string(getpid());
    std::filesystem::remove_all(out_);
    std::filesystem::create_directories(out_);
  }
  void TearDown() override { std::filesystem::remove_all(out_); }

  void Run(const std::string& folder, const std::string& status, double cpu, bool with_fps = true) {
    regression::RunManifest m;
    m.status = status;
    m.started_at = folder.substr(0, 4) + "-" + folder.substr(4, 2) + "-" + folder.substr(6, 2) +
                   "T" + folder.substr(9, 2) + ":" + folder.substr(11, 2) + ":00Z";
    m.duration_s = 60;
    m.label = "rev-" + folder.substr(9, 2);
    if (status == "ok") {
      m.report = "index.html";
      m.metrics.push_back(
          {"capture/cpu_cores", "capture", "cores", "/proc", false, {cpu, cpu + 0.2, cpu - 0.2}});
      m.metrics.push_back({"capture/rss_mb", "capture", "MB", "/proc", false, {100}});
      if (with_fps) m.metrics.push_back({"capture/fps", "capture", "fps", "prom", true, {25}});
      m.metrics.push_back({"edge/api->postgres/p99_ms", "edge", "ms", "prom", false, {4}});
      m.metrics.push_back(
          {"postgres/123/mean_ms", "postgres", "ms", "pg", false, {1}});  // not charted
    } else {
      m.exit_code = 1;
      m.error = "system down: no state in /srv/.framescope <b>";
    }
    std::filesystem::create_directories(out_ + "/" + folder);
    ASSERT_TRUE(regression::WriteRunManifest(out_ + "/" + folder, m).ok());
  }
  std::string out_;
};

TEST_F(History, RowsChartsAndFailedRunsAsGaps) {
  Run("20261201T000000Z", "ok", 1.0);
  Run("20261201T060000Z", "ok", 1.5);
  Run("20261201T120000Z", "failed", 0);
  Run("20261201T180000Z", "ok", 2.0, /*with_fps=*/false);
  Run("20261202T000000Z", "ok", 2.5);
  ASSERT_TRUE(WriteCompareOutcome(out_ + "/20261202T000000Z", {"rev-00", 1, "regression"}).ok());
  std::vector<std::string> folders = {"20261201T000000Z", "20261201T060000Z", "20261201T120000Z",
                                      "20261201T180000Z", "20261202T000000Z"};
  auto runs = LoadHistory(out_, folders);
  ASSERT_TRUE(WriteHistoryIndex(out_, runs).ok());
  std::string html = *ReadFile(out_ + "/index.html");

  EXPECT_EQ(Count(html, "<tr><td>"), 5u);
  // Newest first, with its comparison and its report link.
  EXPECT_LT(html.find("2026-12-02T00:00:00Z"), html.find("2026-12-01T00:00:00Z"));
  EXPECT_NE(html.find("regression (vs rev-00, exit 1)"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"20261202T000000Z/index.html\">report</a>"), std::string::npos);
  // The failed run's row: its status and escaped error; no link.
  EXPECT_NE(html.find("failed: system down: no state in /srv/.framescope &lt;b&gt;"),
            std::string::npos);
  EXPECT_EQ(html.find("20261201T120000Z/index.html"), std::string::npos);
  // Charts per service for the charted metric kinds only.
  EXPECT_NE(html.find("<h3>capture</h3>"), std::string::npos);
  EXPECT_NE(html.find("<h3>edge</h3>"), std::string::npos);
  EXPECT_EQ(html.find("postgres/123/mean_ms"), std::string::npos);

  // CPU: medians 1.0 1.5 | failed | 2.0 2.5: two line pieces, one failure mark, four points, no
  // point at zero (the axis' low label is the lowest median, 1.000).
  std::string cpu = ChartOf(html, "capture/cpu_cores");
  ASSERT_FALSE(cpu.empty());
  EXPECT_EQ(Count(cpu, "<polyline"), 2u) << cpu;
  EXPECT_EQ(Count(cpu, "class=\"failed\""), 1u);
  EXPECT_EQ(Count(cpu, "<circle"), 4u);
  EXPECT_NE(cpu.find(">1.000</text>"), std::string::npos) << cpu;
  EXPECT_NE(cpu.find(">2.500</text>"), std::string::npos) << cpu;
  EXPECT_NE(cpu.find("20261201T120000Z: failed: system down"), std::string::npos);
  // FPS: the 18:00 run did not measure it: a break without a failure mark of its own.
  std::string fps = ChartOf(html, "capture/fps");
  EXPECT_EQ(Count(fps, "<circle"), 3u);
  EXPECT_EQ(Count(fps, "<polyline"), 2u);  // 00-06 | failed | 18 gap | 00 alone
  EXPECT_EQ(Count(fps, "class=\"failed\""), 1u);

  // Self-contained: nothing fetched.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
}

TEST_F(History, CorruptRunJsonIsNamedAndOnlyFailedRunsGiveNoCharts) {
  Run("20261201T000000Z", "failed", 0);
  std::filesystem::create_directories(out_ + "/20261201T060000Z");
  std::ofstream(out_ + "/20261201T060000Z/run.json") << "{not json";
  auto runs = LoadHistory(out_, {"20261201T000000Z", "20261201T060000Z"});
  std::string html = RenderHistoryHtml(runs);
  EXPECT_NE(html.find("corrupt: "), std::string::npos);
  EXPECT_NE(html.find("run.json"), std::string::npos);
  EXPECT_NE(html.find("2 run(s), 2 failed"), std::string::npos);
  EXPECT_EQ(html.find("<svg"), std::string::npos);
}

TEST_F(History, WriteRefusesASymlinkedIndex) {
  std::filesystem::create_symlink("/etc/hostname", out_ + "/index.html");
  EXPECT_FALSE(WriteHistoryIndex(out_, {}).ok());
}

}  // namespace
}  // namespace fs::profile
