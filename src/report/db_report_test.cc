// The PostgreSQL section rendered from a synthetic analysis whose numbers are known.
#include "src/report/db_report.h"

#include <gtest/gtest.h>

namespace fs::profile {
namespace {

io::DbAnalysis Sample() {
  io::DbAnalysis a;
  a.server = "private cluster on 127.0.0.1:5433";
  a.server_version = "15.8";
  a.window_s = 30;
  a.window_measured = true;
  io::WindowedStatement s;
  s.query = "SELECT count(*) FROM big WHERE grp = $1 AND pad <> '<b>'";
  s.delta = {40, 6000, 40, 300, 100};
  s.mean_ms = 150;
  a.window.statements = {s};
  io::SlowStatement slow;
  slow.stmt = s;
  slow.plan_cost = 5000;
  slow.suggestion = io::IndexSpec{"public", "big", {"grp"}};
  slow.suggestion_cost = 200;
  a.slow = {slow};
  io::IndexTrial t;
  t.index = *slow.suggestion;
  t.name = "fs_idx_big_grp";
  t.origin = "suggested (HypoPG)";
  t.mean_before_ms = 150;
  t.calls_before = 40;
  t.mean_after_ms = 0.25;
  t.calls_after = 9000;
  t.remeasure_s = 30;
  t.verdict = "kept";
  t.reason = "faster";
  a.trials = {t};
  a.hypopg_missing = "";
  a.window.notes = {"pg_stat_statements_reset() at T inside the window"};
  a.leftover_indexes = {
      {{"public", "big", "half_built", 3 << 20}, false, false, false, "invalid", "left"}};
  return a;
}

TEST(DbReport, HtmlEscapesAndCarriesTheNumbers) {
  std::string h = RenderDbHtml(Sample(), "io/db_analysis.json");
  EXPECT_EQ(h.rfind("<h2 id=\"db\">", 0), 0u);
  EXPECT_NE(h.find("&lt;b&gt;"), std::string::npos);
  EXPECT_EQ(h.find("<b>'"), std::string::npos);
  EXPECT_NE(h.find("150.00"), std::string::npos);  // mean ms
  EXPECT_NE(h.find("75.0"), std::string::npos);    // hit % = 300/400
  EXPECT_NE(h.find("cost 5000.0 -&gt; 200.0 (-96.0 %"), std::string::npos) << h;
  EXPECT_NE(h.find("150.00 ms (40 calls) -&gt; 0.25 ms (9000 calls in 30.0 s)"), std::string::npos);
  EXPECT_NE(h.find("not met"), std::string::npos);
  EXPECT_NE(h.find("reset() at T"), std::string::npos);
}

TEST(DbReport, BaselineBetweenMarkersAndTerminal) {
  std::string m = RenderBaselineDbSection(Sample(), "io/db_analysis.json");
  EXPECT_EQ(m.rfind(kDbSectionBegin, 0), 0u);
  EXPECT_NE(m.find(std::string(kDbSectionEnd) + "\n"), std::string::npos);
  EXPECT_NE(m.find("| 40 | 150.00 | 6000.0 | 40 | 75.0 |"), std::string::npos) << m;
  EXPECT_NE(m.find("left behind (invalid, or a framescope trial that never got its verdict):\n\n"
                   "- public.half_built on big (3.00 MiB): invalid; left\n"),
            std::string::npos)
      << m;
  std::string t = RenderDbTerminal(Sample());
  EXPECT_NE(t.find("fs_idx_big_grp on public.big (grp) (suggested (HypoPG)): kept"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("3.1 "), std::string::npos);
}

}  // namespace
}  // namespace fs::profile
