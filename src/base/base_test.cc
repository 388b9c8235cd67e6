#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "src/base/flags.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/base/procfs.h"
#include "src/base/stats.h"
#include "src/base/utf8.h"

namespace fs {
namespace {

TEST(JsonTest, RoundTrip) {
  Json j = Json::MakeObject();
  j["a"] = 1;
  j["b"] = "x\"y";
  j["c"].Push(2.5);
  auto parsed = Json::Parse(j.Dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->Get("a").AsInt(), 1);
  EXPECT_EQ(parsed->Get("b").AsString(), "x\"y");
  EXPECT_DOUBLE_EQ(parsed->Get("c").AsArray()[0].AsDouble(), 2.5);
}

TEST(JsonTest, RejectsGarbage) {
  EXPECT_FALSE(Json::Parse("{\"a\":").ok());
  EXPECT_FALSE(Json::Parse("[1,2").ok());
  EXPECT_FALSE(Json::Parse("{} x").ok());
}

// Well-formed multi-byte characters pass; every byte that does not start one becomes U+FFFD
// (stray continuation, truncated, overlong, surrogate, beyond U+10FFFF, F5-FF).
TEST(JsonTest, WritesOnlyValidUtf8) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(JsonEscape("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(JsonEscape("a\xFF"
                       "b"),
            "a" + fffd + "b");
  EXPECT_EQ(JsonEscape("\x80"), fffd);
  EXPECT_EQ(JsonEscape("\xE2\x82"), fffd + fffd);                        // truncated
  EXPECT_EQ(JsonEscape("\xC0\xAF"), fffd + fffd);                        // overlong '/'
  EXPECT_EQ(JsonEscape("\xE0\x80\xAF"), fffd + fffd + fffd);             // overlong, 3 bytes
  EXPECT_EQ(JsonEscape("\xED\xA0\x80"), fffd + fffd + fffd);             // surrogate U+D800
  EXPECT_EQ(JsonEscape("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // > U+10FFFF
  EXPECT_EQ(JsonEscape("\xF4\x8F\xBF\xBF"), "\xF4\x8F\xBF\xBF");         // U+10FFFF
  EXPECT_EQ(JsonEscape("\xC3\"\xA9"), fffd + "\\\"" + fffd);             // an escape splits a pair
  Json j = Json::MakeObject();
  j["k\xFE"] = std::string("\x1b[2J\xC3");
  EXPECT_EQ(j.Dump(), "{\"k" + fffd + "\":\"\\u001b[2J" + fffd + "\"}");
}

TEST(Utf8Test, QuoteForTerminalEscapesControlsAndCaps) {
  EXPECT_EQ(QuoteForTerminal("\x1b[2J\x1b]0;pwned\x07 hello"), "\\x1b[2J\\x1b]0;pwned\\x07 hello");
  EXPECT_EQ(QuoteForTerminal("\xC2\x9B"
                             "31m \xC3\xA9 \xFF \\ \x7F"),
            "\\xc2\\x9b31m \xC3\xA9 \\xff \\x5c \\x7f");
  EXPECT_EQ(QuoteForTerminal(std::string(500, 'a'), 120),
            std::string(120, 'a') + "... (500 bytes)");
  // A character is never cut in two by the cap.
  EXPECT_EQ(QuoteForTerminal("ab\xE2\x82\xAC", 4), "ab... (5 bytes)");
}

TEST(FlagsTest, ParsesTypesAndRejectsUnknown) {
  int n = 10;
  double f = 30;
  std::string s = "a";
  bool b = true;
  FlagSet flags("t", "test");
  flags.Int("cameras", &n, "");
  flags.Double("fps", &f, "");
  flags.String("state-dir", &s, "");
  flags.Bool("prometheus", &b, "");
  const char* argv[] = {"t", "--cameras", "2", "--fps=15", "--state-dir", "/x", "--no-prometheus"};
  ASSERT_TRUE(flags.Parse(7, const_cast<char**>(argv)).ok());
  EXPECT_EQ(n, 2);
  EXPECT_EQ(f, 15);
  EXPECT_EQ(s, "/x");
  EXPECT_FALSE(b);
  FlagSet bad("t", "test");
  bad.Int("cameras", &n, "");
  const char* argv2[] = {"t", "--camera", "2"};
  EXPECT_FALSE(bad.Parse(3, const_cast<char**>(argv2)).ok());
  const char* argv3[] = {"t", "--cameras", "two"};
  EXPECT_FALSE(bad.Parse(3, const_cast<char**>(argv3)).ok());
}

TEST(FlagsTest, ShortNameStandsForItsFlagUntilDoubleDash) {
  std::string out;
  FlagSet flags("t", "test");
  flags.String("out", &out, "output");
  flags.ShortName('o', "out");
  flags.AllowPositional("[-- CMD]");
  const char* argv[] = {"t", "-o", "x.prof", "--", "cmd", "-o", "y"};
  ASSERT_TRUE(flags.Parse(7, const_cast<char**>(argv)).ok());
  EXPECT_EQ(out, "x.prof");
  EXPECT_EQ(flags.positional(), (std::vector<std::string>{"cmd", "-o", "y"}));
  EXPECT_NE(flags.Usage().find("-o, --out"), std::string::npos) << flags.Usage();
  const char* argv2[] = {"t", "-x"};
  FlagSet strict("t", "test");
  EXPECT_FALSE(strict.Parse(2, const_cast<char**>(argv2)).ok());
}

TEST(FlagsTest, FolderRefusesAnEmptyValue) {
  std::string out = "profiles";
  FlagSet flags("t", "test");
  flags.Folder("out", &out, "output folder");
  const char* empty[] = {"t", "--out", ""};
  Status st = flags.Parse(3, const_cast<char**>(empty));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("--out must name a folder"), std::string::npos) << st.message();
  EXPECT_EQ(out, "profiles");
  const char* set[] = {"t", "--out=x"};
  ASSERT_TRUE(flags.Parse(2, const_cast<char**>(set)).ok());
  EXPECT_EQ(out, "x");
}

TEST(FlagsTest, StringListCollectsEveryRepeat) {
  std::vector<std::string> metrics;
  FlagSet flags("t", "test");
  flags.StringList("metrics", &metrics, "");
  const char* argv[] = {"t", "--metrics", "a=9100", "--metrics=9101"};
  ASSERT_TRUE(flags.Parse(4, const_cast<char**>(argv)).ok());
  EXPECT_EQ(metrics, (std::vector<std::string>{"a=9100", "9101"}));
}

TEST(FlagsTest, Resolution) {
  int w = 0, h = 0;
  EXPECT_TRUE(ParseResolution("640x360", &w, &h).ok());
  EXPECT_EQ(w, 640);
  EXPECT_EQ(h, 360);
  EXPECT_FALSE(ParseResolution("640", &w, &h).ok());
  EXPECT_FALSE(ParseResolution("641x360", &w, &h).ok());
}

}  // namespace
}  // namespace fs

namespace fs {
namespace {

TEST(HttpTest, DecodesChunkedBodies) {
  auto ok = DecodeChunked("4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n\r\n");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(*ok, "Wikipedia in \r\n\r\nchunks.");
  EXPECT_EQ(*DecodeChunked("0\r\n\r\n"), "");
  for (const char* bad : {"", "4\r\nWik", "zz\r\nab\r\n0\r\n\r\n", "\r\n", "4\r\nWikiXX0\r\n\r\n",
                          "ffffffffff\r\nx\r\n", "4\r\nWiki\r\n"}) {
    EXPECT_FALSE(DecodeChunked(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace fs

namespace fs {
namespace {

TEST(ProcfsTest, ParsesStatWithSpacesAndParensInComm) {
  ProcStat st;
  ASSERT_TRUE(ParseProcStat(
      "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 99 1000 10", &st));
  EXPECT_EQ(st.pid, 1234);
  EXPECT_EQ(st.ppid, 1);
  EXPECT_EQ(st.comm, "a (b) c");
  EXPECT_EQ(st.state, 'S');
  EXPECT_NEAR(st.cpu_s, 300.0 / static_cast<double>(sysconf(_SC_CLK_TCK)), 1e-9);
  EXPECT_FALSE(ParseProcStat("1234 (x) S 1 2", &st));  // Truncated before utime.
  EXPECT_FALSE(ParseProcStat("garbage", &st));
}

TEST(ProcfsTest, OwnProcessTreeCpuAndMemory) {
  ProcStat st;
  ASSERT_TRUE(ReadProcStat(getpid(), &st));
  EXPECT_EQ(st.pid, getpid());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  std::vector<pid_t> tree = ProcessTree(getpid());
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(tree.front(), getpid());
  EXPECT_NE(std::find(tree.begin(), tree.end(), child), tree.end());
  uint64_t rss = 0, peak = 0;
  ASSERT_TRUE(ReadProcessMemory(getpid(), &rss, &peak));
  EXPECT_GT(rss, 0u);
  EXPECT_GE(peak, rss);
  EXPECT_FALSE(ReadProcStat(child, &st));  // Reaped: gone.
}

TEST(ProcfsTest, HostCpuPercent) {
  HostCpuTimes a, b;
  ASSERT_TRUE(ParseHostCpu("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 ...", &a));
  ASSERT_TRUE(ParseHostCpu("cpu  250 0 150 800 100 0 0 0 0 0\n", &b));
  EXPECT_DOUBLE_EQ(HostCpuPercent(a, b), 200.0 / 300.0 * 100.0);
  EXPECT_EQ(HostCpuPercent(b, a), -1);
  EXPECT_FALSE(ParseHostCpu("intr 1 2 3", &a));
  ASSERT_TRUE(ReadHostCpu(&a));
  EXPECT_GT(a.total, a.busy);
}

TEST(StatsTest, PercentileInterpolatesBetweenClosestRanks) {
  // numpy.percentile([7, 1, 3, 5], [0, 25, 50, 90, 100]) = 1, 2.5, 4, 6.4, 7.
  std::vector<double> v = {7, 1, 3, 5};
  EXPECT_DOUBLE_EQ(Percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.25), 2.5);
  EXPECT_DOUBLE_EQ(Median(v), 4);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.9), 6.4);
  EXPECT_DOUBLE_EQ(Percentile(v, 1), 7);
  EXPECT_DOUBLE_EQ(Median({2, 9, 4}), 4);
  EXPECT_TRUE(std::isnan(Percentile({}, 0.5)));
}

}  // namespace
}  // namespace fs
