#include "src/report/checklist.h"

#include <gtest/gtest.h>

namespace fs::profile {
namespace {

using regression::ChecklistRow;

// Every mission item, in reverse order, so the renderer has to sort them.
std::vector<ChecklistRow> ReversedRows() {
  std::vector<ChecklistRow> rows;
  for (const char* id : kChecklistIds) {
    rows.insert(rows.begin(), {id, std::string("item ") + id, "goal", "12.5 ms", "counter",
                               regression::kMet, ""});
  }
  return rows;
}

// Positions of every item's cell in `text`, which must rise in the mission's order.
void ExpectMissionOrder(const std::string& text) {
  size_t last = 0;
  for (const char* id : kChecklistIds) {
    const size_t at = text.find(std::string(id) + " item " + id);
    ASSERT_NE(at, std::string::npos) << id << " missing";
    EXPECT_GT(at, last) << id << " out of order";
    last = at;
  }
}

TEST(Checklist, RowsRenderInTheMissionsOrder) {
  ExpectMissionOrder(RenderChecklistHtml(ReversedRows(), {}, {}));
  ExpectMissionOrder(RenderBaselineChecklistSection(ReversedRows(), {}, {}));
}

TEST(Checklist, NotMeasurableRowShowsWhyNeverANumber) {
  std::vector<ChecklistRow> rows = {{"2.1", "GPU utilisation", "> 0.4", "", "NVML",
                                     regression::kNotMeasurable, "no NVIDIA driver on this host"}};
  const std::string html = RenderChecklistHtml(rows, {}, {});
  EXPECT_NE(html.find("<td>not measured: no NVIDIA driver on this host</td>"), std::string::npos)
      << html;
  EXPECT_EQ(html.find("<td>0</td>"), std::string::npos);
  EXPECT_NE(html.find("class=\"nm\">not measurable here</td>"), std::string::npos) << html;
  const std::string md = RenderBaselineChecklistSection(rows, {}, {});
  EXPECT_NE(md.find("| not measured: no NVIDIA driver on this host |"), std::string::npos) << md;
  // A not-met row keeps its value and gives its reason beside the verdict.
  rows[0] = {"0.2",
             "load",
             "10 cameras at 30 FPS",
             "2/2 cameras >= 10.0 FPS",
             "loadgen log",
             regression::kNotMet,
             "2 cameras at 10 FPS"};
  EXPECT_NE(RenderChecklistHtml(rows, {}, {}).find("not met (2 cameras at 10 FPS)"),
            std::string::npos);
}

TEST(Checklist, MarkdownSectionCarriesItsMarkers) {
  const std::string md = RenderBaselineChecklistSection(ReversedRows(), {}, {});
  EXPECT_EQ(md.rfind(kChecklistSectionBegin, 0), 0u);
  EXPECT_NE(md.find(std::string(kChecklistSectionEnd) + "\n"), std::string::npos);
}

TEST(Checklist, FindingsAndSpreadAreShown) {
  std::vector<Finding> findings = {{"worst edge p99", "api->postgres", 24.5, "ms", "histogram"}};
  std::vector<regression::Metric> metrics = {
      {"capture/cpu_cores", "capture", "cores", "/proc", false, {0.30, 0.10, 0.20}},
      {"model/total_ms", "model", "ms", "ticks", false, {40}}};
  const std::string html = RenderChecklistHtml({}, findings, metrics);
  EXPECT_NE(html.find("api-&gt;postgres</td><td class=\"n\">24.50 ms"), std::string::npos) << html;
  EXPECT_NE(html.find("0.200 (median of 3 windows, 0.100 .. 0.300) cores"), std::string::npos)
      << html;
  // One value: nothing to spread, so not in the spread table.
  EXPECT_EQ(html.find("model/total_ms"), std::string::npos);
  EXPECT_EQ(SpreadText(metrics[1]), "40.00");
}

}  // namespace
}  // namespace fs::profile
