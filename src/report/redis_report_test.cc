// The Redis section rendered from a synthetic analysis whose numbers are known: the tables carry
// them with their counters, HTML is escaped, the baseline section sits between its markers, and
// what was not measurable says so instead of showing 0.
#include "src/report/redis_report.h"

#include <gtest/gtest.h>

namespace fs::profile {
namespace {

io::RedisAnalysis Known() {
  io::RedisAnalysis a;
  a.redis = "127.0.0.1:6379";
  a.redis_version = "7.0.15";
  a.window_s = 30;
  io::PipelineCounts batch{300, 300, 30}, single{100, 0, 100};
  a.clients.ops = {{"detection", "detection", "XADD", batch},
                   {"detection", "detection", "set", single}};
  a.clients.sources = {{"det<ection>", {400, 300, 130}}};
  a.clients.total = {400, 300, 130};
  a.clients.any_counters = true;
  a.clients.services = {
      {{"detection", 9101}, "measured", ""},
      {{"capture", 9102}, "not measured", "no scrape at the window's end: refused"}};
  a.server.measured = true;
  a.server.basis = "window";
  a.server.commands = 450;
  a.server.reads = 190;
  a.server.own_commands = a.server.own_reads = 2;
  a.disagreement = {"50 command(s) on the server came from clients that export no counters"};
  io::RedisCommandWindow c;
  c.name = "xadd";
  c.calls = 300;
  c.usec = 600;
  c.usec_per_call = 2.0;
  c.histogram_calls = 300;
  c.p50 = io::QuantileBucket{1, 2};
  c.p99 = io::QuantileBucket{8, 16};
  c.p999 = io::QuantileBucket{16, 33};
  a.commands = {c};
  a.verdict = "not met";
  a.reason = "300 of 400 client commands sent in a pipeline = 75.0 %";
  return a;
}

TEST(RedisReport, TablesCarryTheNumbersAndTheirCounters) {
  const std::string text = RenderRedisText(Known());
  EXPECT_NE(text.find("Checklist 3.2 Redis pipeline efficiency over 80 %: not met"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("75.0 %"), std::string::npos);
  EXPECT_NE(text.find("(8, 16]"), std::string::npos);
  EXPECT_NE(text.find("Δtotal_reads_processed"), std::string::npos);
  EXPECT_NE(text.find("Service capture (metrics port 9102): not measured"), std::string::npos);
  EXPECT_NE(text.find("2.37"), std::string::npos);  // 450 / 190 commands per read
  EXPECT_NE(text.find("3.08"), std::string::npos);  // 400 / 130 per round trip
}

TEST(RedisReport, HtmlIsEscapedAndMarkdownBetweenMarkers) {
  const std::string html = RenderRedisHtml(Known(), "io/redis_analysis.json");
  EXPECT_EQ(html.rfind("<h2 id=\"redis\">", 0), 0u);
  EXPECT_NE(html.find("det&lt;ection&gt;"), std::string::npos);
  EXPECT_EQ(html.find("det<ection>"), std::string::npos);
  EXPECT_NE(html.find("<table id=\"redis-ops\">"), std::string::npos);
  const std::string md = RenderBaselineRedisSection(Known(), "io/redis_analysis.json");
  EXPECT_EQ(md.rfind(kRedisSectionBegin, 0), 0u);
  EXPECT_NE(md.find(std::string(kRedisSectionEnd) + "\n"), std::string::npos);
  EXPECT_NE(md.find("| detection | detection | XADD | 300 | 300 | 30 | 100.0 % | 10.00 |"),
            std::string::npos)
      << md;
}

TEST(RedisReport, NotMeasurableSaysWhyInsteadOfZeros) {
  io::RedisAnalysis a;
  a.redis = "127.0.0.1:1";
  a.redis_error = "at the window's start: Redis 127.0.0.1:1: connection refused";
  a.server.reason = "Redis could not be read";
  a.verdict = "not measurable";
  a.reason = "no client service exported framescope_redis_* counters";
  const std::string text = RenderRedisText(a);
  EXPECT_NE(text.find("Not measurable: Redis could not be read at the window's start"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("n/a (no client counters)"), std::string::npos);
  EXPECT_NE(text.find("n/a (Redis could not be read)"), std::string::npos);
  EXPECT_NE(text.find("not measurable: at the window's start"), std::string::npos);
}

}  // namespace
}  // namespace fs::profile
