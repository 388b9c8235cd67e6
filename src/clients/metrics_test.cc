#include "src/clients/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "src/clients/prom_text.h"

namespace fs {
namespace {

TEST(MetricsTest, RenderParsesBack) {
  MetricsRegistry r;
  r.GetCounter("frames_total", "frames", {{"camera", "cam00"}})->Inc(3);
  r.GetCounter("frames_total", "frames", {{"camera", "cam01"}})->Inc(4);
  r.GetGauge("fps", "rate")->Set(29.5);
  auto* h =
      r.GetHistogram("lat_seconds", "latency", {{"stage", "decode"}}, LatencyBucketsSeconds());
  for (int i = 0; i < 100; ++i) h->Observe(0.002);  // 2 ms
  h->Observe(0.2);
  std::string text = r.RenderText();
  EXPECT_NE(text.find("# TYPE lat_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{stage=\"decode\",le=\"0.0025\"} 100"), std::string::npos);
  auto samples = ParsePromText(text);
  ASSERT_TRUE(samples.ok()) << samples.status().message();
  EXPECT_EQ(SumSamples(*samples, "frames_total"), 7);
  EXPECT_EQ(SumSamples(*samples, "frames_total", {{"camera", "cam01"}}), 4);
  EXPECT_EQ(SumSamples(*samples, "lat_seconds_count"), 101);
  double p50 = HistogramQuantile(*samples, "lat_seconds", 0.5);
  EXPECT_GT(p50, 0.001);
  EXPECT_LE(p50, 0.0025);
  double p999 = HistogramQuantile(*samples, "lat_seconds", 0.999);
  EXPECT_GT(p999, 0.1);
  EXPECT_LE(p999, 0.25);
  EXPECT_TRUE(std::isnan(HistogramQuantile(*samples, "missing", 0.5)));
}

TEST(MetricsTest, ParserRejectsGarbage) {
  EXPECT_FALSE(ParsePromText("frames_total{camera=\"x} 1\n").ok());
  EXPECT_FALSE(ParsePromText("frames_total abc\n").ok());
  EXPECT_FALSE(ParsePromText("{} 1\n").ok());
  EXPECT_TRUE(ParsePromText("# only a comment\n\n").ok());
}

// A bad line is quoted short, and with the bytes a terminal would act on written as \xNN.
TEST(MetricsTest, ParserQuotesABadLineSafely) {
  auto esc = ParsePromText("\x1b[2J\x1b]0;pwned\x07 hello\n");
  ASSERT_FALSE(esc.ok());
  const std::string& m = esc.status().message();
  EXPECT_NE(m.find("\\x1b[2J\\x1b]0;pwned\\x07 hello"), std::string::npos) << m;
  for (unsigned char c : m) EXPECT_TRUE(c >= 0x20 && c < 0x7F) << static_cast<int>(c);

  std::string junk = "x{";
  for (int i = 0; i < 20000; ++i) junk += static_cast<char>(0x80 + i % 0x80);
  auto long_bad = ParsePromText(junk);
  ASSERT_FALSE(long_bad.ok());
  EXPECT_LT(long_bad.status().message().size(), 600u);
  EXPECT_NE(long_bad.status().message().find("(20002 bytes)"), std::string::npos);
  for (unsigned char c : long_bad.status().message()) EXPECT_LT(c, 0x80);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  MetricsRegistry r;
  r.GetCounter("c", "h", {{"v", "a\"b\\c"}})->Inc();
  auto samples = ParsePromText(r.RenderText());
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 1u);
  EXPECT_EQ(samples->front().labels.at("v"), "a\"b\\c");
}

}  // namespace
}  // namespace fs
