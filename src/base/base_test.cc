#include <gtest/gtest.h>

#include "src/base/flags.h"
#include "src/base/http.h"
#include "src/base/json.h"

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
