// compare's sides and verdicts on run folders and profile sets written by the test: pooling,
// label/latest selection, failed runs, missing metrics, mismatched hosts, corrupt files, too few
// repetitions, and a planted slower function found in pprof profiles.
#include "src/regression/compare.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>

#include "src/base/file_util.h"
#include "src/profile/pprof.h"
#include "src/profile/test_profiles.h"

namespace fs::regression {
namespace {

// Profiles of a program doing fixed work: Slow (CPU `slow_ns`) and Fast (400 ns), per profile.
std::string ProfileSet(const std::string& dir, const std::vector<int64_t>& slow_ns) {
  EXPECT_TRUE(MakeDirs(dir).ok());
  for (size_t i = 0; i < slow_ns.size(); ++i) {
    EXPECT_TRUE(profile::WritePprofFile(
                    dir + "/p" + std::to_string(i) + ".prof",
                    profile::ProfileFromStacks({{"main;Slow", 6, slow_ns[i]},
                                                {"main;Fast", 4, 400 + static_cast<int64_t>(i)}}))
                    .ok());
  }
  return dir;
}

class CompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/compare-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A run folder dir_/NAME with one metric "api/cpu_cores" of `values` (and `extra` metric
  // names with one value each) and a CPU profile of the api with Work taking `work_share` %.
  std::string Run(const std::string& name, std::vector<double> values, const std::string& label,
                  const std::string& host = "h1", const std::vector<std::string>& extra = {},
                  const std::string& status = "ok", int64_t work_ns = 600, int64_t window_ns = 0) {
    RunManifest m;
    m.status = status;
    m.label = label;
    m.host = host;
    m.config_hash = "c1";
    m.started_at = "2026-12-02T0" + std::to_string(runs_++) + ":00:00Z";
    m.metrics.push_back({"api/cpu_cores", "api", "cores", "/proc", false, std::move(values)});
    for (const std::string& e : extra) m.metrics.push_back({e, "api", "ms", "x", false, {1.0}});
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(MakeDirs(path + "/cpu").ok());
    m.profiles["api"] = "cpu/api_profile.prof";
    profile::Profile p =
        profile::ProfileFromStacks({{"main;Work", 6, work_ns}, {"main;Idle", 4, 400}});
    p.duration_nanos = window_ns;
    EXPECT_TRUE(profile::WritePprofFile(path + "/cpu/api_profile.prof", p).ok());
    EXPECT_TRUE(WriteRunManifest(path, m).ok());
    return path;
  }

  std::string dir_;
  int runs_ = 0;
};

TEST_F(CompareTest, RunSidesPoolLabelsAndLatestAndSkipFailedRuns) {
  Run("h/r1", {1.0, 1.1}, "v1");
  Run("h/r2", {1.2}, "v1");
  Run("h/r3", {2.0}, "v2", "h1", {}, "failed");
  Run("h/r4", {3.0}, "v2");
  auto v1 = LoadSide("label:v1", dir_ + "/h");
  ASSERT_TRUE(v1.ok()) << v1.status().message();
  ASSERT_EQ(v1->runs.size(), 2u);
  ASSERT_EQ(v1->metrics.size(), 1u);
  EXPECT_EQ(v1->metrics[0].values, (std::vector<double>{1.0, 1.1, 1.2}));
  EXPECT_EQ(v1->profiles["api"].size(), 2u);
  auto v2 = LoadSide("label:v2", dir_ + "/h");
  ASSERT_TRUE(v2.ok());
  ASSERT_EQ(v2->runs.size(), 1u);
  ASSERT_EQ(v2->notes.size(), 1u);
  EXPECT_NE(v2->notes[0].find("skipped failed run " + dir_ + "/h/r3"), std::string::npos);
  auto latest = LoadSide("latest", dir_ + "/h");  // the failed r3 is not the newest ok run
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->runs.at(0).dir, dir_ + "/h/r4");
  auto before = LoadSide("latest~1", dir_ + "/h");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->runs.at(0).dir, dir_ + "/h/r2");
  EXPECT_FALSE(LoadSide("latest~3", dir_ + "/h").ok());
  EXPECT_FALSE(LoadSide("latest~x", dir_ + "/h").ok());
  // A history folder, and a union of two run folders.
  auto all = LoadSide(dir_ + "/h", "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->runs.size(), 3u);
  auto both = LoadSide(dir_ + "/h/r1," + dir_ + "/h/r4", "");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->metrics.at(0).values, (std::vector<double>{1.0, 1.1, 3.0}));
  std::vector<std::string> w = Compare(*v1, *both, {}).warnings;
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], "run " + dir_ + "/h/r1 is on both sides");
  auto none = LoadSide("label:v9", dir_ + "/h");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no ok run labelled \"v9\""), std::string::npos);
  auto no_history = LoadSide("latest", dir_ + "/elsewhere");
  ASSERT_FALSE(no_history.ok());
  EXPECT_NE(no_history.status().message().find(dir_ + "/elsewhere: no such history folder"),
            std::string::npos);
}

TEST_F(CompareTest, CorruptRunJsonIsNamed) {
  Run("h/r1", {1.0}, "v1");
  ASSERT_TRUE(MakeDirs(dir_ + "/h/r2").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/h/r2/run.json", "{\"format\": ").ok());
  auto side = LoadSide(dir_ + "/h/r2", dir_ + "/h");  // given by name: an error
  ASSERT_FALSE(side.ok());
  EXPECT_NE(side.status().message().find(dir_ + "/h/r2/run.json"), std::string::npos)
      << side.status().message();
  // In a history it is skipped with a note, and the other runs still compare.
  for (const std::string& spec : {dir_ + "/h", std::string("label:v1"), std::string("latest"),
                                  std::string("latest,label:v1")}) {
    side = LoadSide(spec, dir_ + "/h");
    ASSERT_TRUE(side.ok()) << spec << ": " << side.status().message();
    EXPECT_EQ(side->runs.size(), 1u);
    ASSERT_EQ(side->notes.size(), spec.find(',') == std::string::npos ? 1u : 2u) << spec;
    EXPECT_NE(side->notes[0].find("skipped unreadable run: " + dir_ + "/h/r2/run.json"),
              std::string::npos)
        << side->notes[0];
  }
  auto nothing = LoadSide(dir_ + "/nope", "");
  ASSERT_FALSE(nothing.ok());
  EXPECT_NE(nothing.status().message().find(dir_ + "/nope"), std::string::npos);
}

TEST_F(CompareTest, ARunOrProfileGivenTwiceCountsOnce) {
  const std::string a = Run("h/a", {1.0, 1.1}, "v1");
  const std::string dotted = dir_ + "/h/../h/./a";
  std::filesystem::create_directory_symlink(a, dir_ + "/link");
  auto side = LoadSide(a + "," + a + "," + dotted + "," + dir_ + "/link,label:v1", dir_ + "/h");
  ASSERT_TRUE(side.ok()) << side.status().message();
  EXPECT_EQ(side->runs.size(), 1u);
  EXPECT_EQ(side->metrics.at(0).values, (std::vector<double>{1.0, 1.1}));
  EXPECT_EQ(side->profiles["api"].size(), 1u);
  EXPECT_EQ(side->notes.size(), 3u);  // a (twice: by name and label, said once), dotted, link
  auto other = LoadSide(dotted, "");  // the same run, named differently, on the other side
  ASSERT_TRUE(other.ok());
  std::vector<std::string> expected;
  for (const std::string& n : side->notes) expected.push_back(side->spec + ": " + n);
  expected.push_back("run " + dotted + " is on both sides");
  EXPECT_EQ(Compare(*side, *other, {}).warnings, expected);
  // A profile set named twice (a hard link too): each file once.
  ProfileSet(dir_ + "/set", {600, 601});
  ASSERT_TRUE(MakeDirs(dir_ + "/set2").ok());
  std::filesystem::create_hard_link(dir_ + "/set/p0.prof", dir_ + "/set2/q.prof");
  auto set = LoadSide(dir_ + "/set," + dir_ + "/set/../set," + dir_ + "/set2", "");
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_EQ(set->profiles[kProgramGroup].size(), 2u);
  EXPECT_EQ(set->profile_files[kProgramGroup].size(), 2u);
  auto again = LoadSide(dir_ + "/set", "");
  ASSERT_TRUE(again.ok());
  const std::vector<std::string> w = Compare(*set, *again, {}).warnings;
  EXPECT_EQ(std::count_if(w.begin(), w.end(),
                          [](const std::string& x) { return x.find("on both sides") != x.npos; }),
            2);
}

TEST_F(CompareTest, LatestWithAHugeKIsRefused) {
  Run("h/r1", {1.0}, "v1");
  for (const char* spec : {"latest~1", "latest~2147483648", "latest~4294967295",
                           "latest~99999999999999999999", "latest~-1", "latest~+1"}) {
    auto side = LoadSide(spec, dir_ + "/h");
    EXPECT_FALSE(side.ok()) << spec;
  }
  EXPECT_TRUE(LoadSide("latest~0", dir_ + "/h").ok());
}

TEST_F(CompareTest, MissingMetricIsListedNotZero) {
  auto b = LoadSide(Run("b", {1, 1, 1, 1}, "b", "h1", {"api/only_base_ms"}), "");
  auto c = LoadSide(Run("c", {1, 1, 1, 1}, "c", "h1", {"api/only_current_ms"}), "");
  ASSERT_TRUE(b.ok() && c.ok());
  Comparison r = Compare(*b, *c, {});
  ASSERT_EQ(r.metrics.size(), 1u);
  EXPECT_EQ(r.metrics[0].metric.name, "api/cpu_cores");
  EXPECT_EQ(r.missing, (std::vector<std::pair<std::string, std::string>>{
                           {"api/only_base_ms", "current"}, {"api/only_current_ms", "baseline"}}));
  // Measured before, not now: the api's "no change" would be a claim; at least inconclusive.
  EXPECT_EQ(r.metrics[0].judgement.verdict, kNoChange);
  EXPECT_EQ(r.groups["api"], kInconclusive);
  EXPECT_EQ(r.verdict, kInconclusive);
  Json j = ComparisonToJson(*b, *c, r);
  EXPECT_EQ(j.Get("missing").size(), 2u);
  EXPECT_EQ(j.Get("metrics").size(), 1u);
  // CPU profiles on one side only: said, and no function compared against nothing.
  b->profiles.clear();
  r = Compare(*b, *c, {});
  // Only newly measured in the current side: listed, the verdict unaffected.
  r = Compare(*c, *c, {});
  EXPECT_TRUE(r.missing.empty());
  b = LoadSide(Run("b2", {1, 1, 1, 1}, "b", "h1", {}), "");
  ASSERT_TRUE(b.ok());
  b->profiles.clear();
  r = Compare(*b, *c, {});
  EXPECT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.verdict, kNoChange);
  EXPECT_TRUE(r.functions.empty());
  EXPECT_EQ(r.warnings, std::vector<std::string>{"api: CPU profiles only in the current side"});
}

TEST_F(CompareTest, MismatchedHostOrConfigIsNamed) {
  auto b = LoadSide(Run("b", {1}, "b", "alpha"), "");
  auto c = LoadSide(Run("c", {1}, "c", "beta"), "");
  ASSERT_TRUE(b.ok() && c.ok());
  std::vector<std::string> m = Mismatches(*b, *c);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_NE(m[0].find("alpha, beta"), std::string::npos) << m[0];
  EXPECT_TRUE(Mismatches(*b, *b).empty());
  c->runs[0].host = "alpha";
  c->runs[0].config_hash = "c2";
  m = Mismatches(*b, *c);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_NE(m[0].find("different configurations"), std::string::npos) << m[0];
}

TEST_F(CompareTest, TooFewRepetitionsAreInconclusiveAndSayHowMany) {
  auto b = LoadSide(Run("b", {1.0, 1.01, 0.99}, "b"), "");
  auto c = LoadSide(Run("c", {2.0, 2.01, 1.99}, "c"), "");
  ASSERT_TRUE(b.ok() && c.ok());
  Comparison r = Compare(*b, *c, {});
  ASSERT_EQ(r.metrics.size(), 1u);
  EXPECT_EQ(r.metrics[0].judgement.verdict, kInconclusive);
  EXPECT_NE(r.metrics[0].judgement.reason.find("needs >= 4 repetitions per side"),
            std::string::npos);
  EXPECT_EQ(r.groups["api"], kInconclusive);
  EXPECT_EQ(r.verdict, kInconclusive);
  // One profile per side: the function rows are shown but inconclusive, and do not roll up.
  ASSERT_FALSE(r.functions["api"].empty());
  EXPECT_EQ(r.functions["api"][0].judgement.verdict, kInconclusive);
  // With four repetitions the doubled CPU is a regression of the api.
  auto b4 = LoadSide(Run("b4", {1.0, 1.01, 0.99, 1.02}, "b"), "");
  auto c4 = LoadSide(Run("c4", {2.0, 2.01, 1.99, 2.02}, "c"), "");
  r = Compare(*b4, *c4, {});
  EXPECT_EQ(r.metrics[0].judgement.verdict, kRegression);
  EXPECT_EQ(r.verdict, kRegression);
}

// Runs of a service whose Work got twice as fast while Idle did the same: Idle's share of the
// service's CPU rises from 40 % to 57 %, but its CPU per second of the window does not, so it must
// not be a regression (it was, when functions were tested by their share).
TEST_F(CompareTest, ASpeedUpOfOneFunctionDoesNotRegressTheOthers) {
  std::string base, cur;
  for (int i = 0; i < 5; ++i) {
    const std::string n = std::to_string(i);
    base += (i ? "," : "") + Run("b" + n, {1.0 + i * 0.01}, "b", "h1", {}, "ok", 600 + i, 1000);
    cur += (i ? "," : "") + Run("c" + n, {1.0 + i * 0.01}, "c", "h1", {}, "ok", 300 + i, 1000);
  }
  auto b = LoadSide(base, "");
  auto c = LoadSide(cur, "");
  ASSERT_TRUE(b.ok() && c.ok());
  Comparison r = Compare(*b, *c, {});
  std::map<std::string, const FunctionResult*> rows;
  for (const FunctionResult& f : r.functions.at("api")) rows[f.function] = &f;
  ASSERT_TRUE(rows.count("Idle") && rows.count("Work"));
  EXPECT_GT(rows["Idle"]->delta_points, 15);  // its share rose
  EXPECT_EQ(rows["Idle"]->metric, "self CPU s per s");
  EXPECT_EQ(rows["Idle"]->judgement.verdict, kNoChange) << rows["Idle"]->judgement.reason;
  EXPECT_EQ(rows["Work"]->judgement.verdict, kImprovement);
  EXPECT_NEAR(rows["Work"]->judgement.change.change, -0.5, 0.01);
  EXPECT_EQ(r.groups["api"], kImprovement);
  EXPECT_EQ(r.verdict, kImprovement);
  // The reviewer's setup: fixed work per run, busy for the whole window (window = CPU). Idle's
  // CPU per second rises with Work's speed-up; the service's does not: Idle is not regressed.
  base.clear();
  cur.clear();
  for (int i = 0; i < 5; ++i) {
    const std::string n = std::to_string(i);
    base += (i ? "," : "") + Run("fb" + n, {1.0}, "b", "h1", {}, "ok", 600 + i, 1000 + i);
    cur += (i ? "," : "") + Run("fc" + n, {1.0}, "c", "h1", {}, "ok", 300 + i, 700 + i);
  }
  auto fb = LoadSide(base, "");
  auto fc = LoadSide(cur, "");
  ASSERT_TRUE(fb.ok() && fc.ok());
  Comparison busy = Compare(*fb, *fc, {});
  for (const FunctionResult& f : busy.functions.at("api")) {
    EXPECT_NE(f.judgement.verdict, kRegression) << f.function << ": " << f.judgement.reason;
  }
  EXPECT_NE(busy.groups["api"], kRegression);
  // Profiles without a duration: only shares are comparable, shown but never a verdict.
  for (auto* side : {&*b, &*c}) {
    for (auto& p : side->profiles["api"]) p.duration_nanos = 0;
  }
  r = Compare(*b, *c, {});
  ASSERT_FALSE(r.functions.at("api").empty());
  for (const FunctionResult& f : r.functions.at("api")) EXPECT_TRUE(f.informational);
  EXPECT_EQ(r.groups["api"], kNoChange);
}

TEST_F(CompareTest, ProfileSetsFindTheSlowerFunction) {
  auto b = LoadSide(ProfileSet(dir_ + "/base", {600, 601, 602, 603, 604, 605}), "");
  auto c = LoadSide(ProfileSet(dir_ + "/cur", {780, 781, 782, 783, 784, 785}), "");
  ASSERT_TRUE(b.ok()) << b.status().message();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(b->profile_set);
  Comparison r = Compare(*b, *c, {});
  ASSERT_EQ(r.metrics.size(), 1u);
  EXPECT_EQ(r.metrics[0].metric.name, "program/cpu_s");
  EXPECT_NEAR(r.metrics[0].judgement.change.change, 0.18, 0.01);  // (780+400)/(600+400) - 1
  EXPECT_EQ(r.metrics[0].judgement.verdict, kRegression);
  const std::vector<FunctionResult>& fns = r.functions.at(kProgramGroup);
  const FunctionResult* slow = nullptr;
  const FunctionResult* fast = nullptr;
  for (const auto& f : fns) {
    if (f.function == "Slow") slow = &f;
    if (f.function == "Fast") fast = &f;
  }
  ASSERT_NE(slow, nullptr);
  ASSERT_NE(fast, nullptr);
  EXPECT_EQ(slow->judgement.verdict, kRegression);
  EXPECT_NEAR(slow->judgement.change.change, 0.30, 0.01);
  EXPECT_EQ(fast->judgement.verdict, kNoChange);  // its CPU seconds did not change
  EXPECT_LT(fast->delta_points, 0);               // though its share fell
  EXPECT_EQ(r.groups[kProgramGroup], kRegression);
  // The merged profile holds every profile's samples.
  EXPECT_EQ(r.merged_current.at(kProgramGroup).samples.size(), 12u);
  EXPECT_EQ(ComparisonToJson(*b, *c, r).Get("verdict").AsString(), kRegression);
}

TEST_F(CompareTest, CorruptProfileInASetIsNamed) {
  ProfileSet(dir_ + "/set", {600, 601});
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/set/p1.prof", std::string("\x1f\x8b\x08junk", 7)).ok());
  auto s = LoadSide(dir_ + "/set", "");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(dir_ + "/set/p1.prof"), std::string::npos)
      << s.status().message();
  // Named once, not "P: P: ...".
  EXPECT_EQ(s.status().message().find(dir_ + "/set/p1.prof: " + dir_ + "/set/p1.prof"),
            std::string::npos)
      << s.status().message();
  // A path with a comma: the error says commas split a side.
  auto comma = LoadSide(dir_ + "/a,b", "");
  ASSERT_FALSE(comma.ok());
  EXPECT_NE(comma.status().message().find("commas separate the parts of a side"), std::string::npos)
      << comma.status().message();
  // Runs and profiles in one side are refused.
  auto mixed = LoadSide(ProfileSet(dir_ + "/ok", {1}) + "," + Run("r", {1}, "x"), "");
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("mixes runs and *.prof"), std::string::npos);
}

}  // namespace
}  // namespace fs::regression
