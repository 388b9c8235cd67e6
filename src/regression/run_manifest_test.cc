#include "src/regression/run_manifest.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "src/base/file_util.h"

namespace fs::regression {
namespace {

RunManifest Sample() {
  RunManifest m;
  m.started_at = "2026-12-02T07:00:00Z";
  m.host = "box";
  m.repeat = 3;
  m.label = "v1";
  m.config = Json::MakeObject();
  m.config["cameras"] = 10;
  m.config_hash = JsonHash(m.config);
  m.metrics.push_back({"capture/cpu_cores", "capture", "cores", "/proc", false, {0.5, 0.6, 0.55}});
  m.metrics.push_back({"loadgen/fps", "loadgen", "fps", "log", true, {30, 29.9}});
  m.profiles["capture"] = "cpu/capture_profile.prof";
  m.checklist.push_back({"1.2", "Memory leaks", "< 10 MB/h", "3 MB/h", "smaps", kMet, ""});
  return m;
}

TEST(RunManifest, RoundTripsEveryField) {
  auto back = RunManifestFromJson(RunManifestToJson(Sample()));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(RunManifestToJson(*back).Dump(), RunManifestToJson(Sample()).Dump());
  ASSERT_NE(back->Find("loadgen/fps"), nullptr);
  EXPECT_TRUE(back->Find("loadgen/fps")->higher_is_better);
  EXPECT_EQ(back->Find("capture/cpu_cores")->values.size(), 3u);
  EXPECT_EQ(back->Find("nope"), nullptr);
}

TEST(RunManifest, HashIgnoresKeyOrderButNotValues) {
  auto a = Json::Parse(R"({"a":1,"b":[1,2]})");
  auto b = Json::Parse(R"({"b":[1,2],"a":1})");
  auto c = Json::Parse(R"({"b":[1,3],"a":1})");
  EXPECT_EQ(JsonHash(*a), JsonHash(*b));
  EXPECT_NE(JsonHash(*a), JsonHash(*c));
  EXPECT_EQ(JsonHash(*a).size(), 16u);
}

TEST(RunManifest, CorruptFilesAreNamed) {
  char tmpl[] = "/tmp/run-manifest-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto missing = LoadRunManifest(dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(dir + "/run.json"), std::string::npos);
  for (const char* text :
       {"{not json", R"({"format":"other"})", R"({"format":"framescope-run/1","status":"ok"})",
        R"({"format":"framescope-run/1","status":"ok","metrics":[{"name":"x"}]})",
        R"({"format":"framescope-run/1","status":"ok","metrics":
                              [{"name":"x","values":[1,"2"],"better":"lower"}]})"}) {
    ASSERT_TRUE(WriteFileAtomic(dir + "/run.json", text).ok());
    auto m = LoadRunManifest(dir);
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_NE(m.status().message().find("corrupt"), std::string::npos) << m.status().message();
  }
  ASSERT_TRUE(WriteRunManifest(dir, Sample()).ok());
  auto ok = LoadRunManifest(dir);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->dir, dir);
  (void)system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace fs::regression
