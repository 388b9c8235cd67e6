#include "src/report/cpu_report.h"

#include <gtest/gtest.h>

#include <string>

namespace fs::profile {
namespace {

// Two services; stacks given root-first as function names; each sample is `n` samples of
// 10 ms each.
Profile TwoServices() {
  ProfileBuilder b;
  Profile& p = b.profile();
  p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  p.period_type = {"cpu", "nanoseconds"};
  p.period = 10000000;
  uint64_t exe = b.AddMapping({0, 0x1000, 0x9000, 0, "/usr/bin/detect", "abcd"});
  uint64_t other = b.AddMapping({0, 0x1000, 0x9000, 0, "/usr/bin/unused", ""});
  (void)other;
  uint64_t address = 0x1000;
  auto add = [&](const std::string& service, const std::string& thread, int64_t tid,
                 std::vector<std::string> root_first, int64_t n) {
    Sample s;
    for (auto it = root_first.rbegin(); it != root_first.rend(); ++it) {
      uint64_t fn = b.InternFunction(*it);
      s.location_ids.push_back(b.InternLocation(exe, address++, {{fn, 1}}));
    }
    s.values = {n, n * 10000000};
    s.labels["service"] = service;
    s.labels["thread"] = thread;
    s.num_labels["tid"] = tid;
    b.AddSample(std::move(s));
  };
  add("detection", "infer", 11, {"main", "Run", "Conv"}, 60);
  add("detection", "infer", 12, {"main", "Run", "Pool"}, 20);
  // Recursion: Walk appears twice on one path; cum must count it once.
  add("detection", "decode", 13, {"main", "Walk", "Walk", "Leaf"}, 20);
  add("capture", "rx", 21, {"main", "Decode"}, 5);
  return std::move(b).Build();
}

TEST(CpuReportTest, SplitKeepsOnlyWhatEachServiceUses) {
  Profile p = TwoServices();
  auto parts = SplitByService(p);
  ASSERT_EQ(parts.size(), 2u);
  const Profile& cap = parts.at("capture");
  EXPECT_EQ(cap.samples.size(), 1u);
  EXPECT_EQ(cap.locations.size(), 2u);
  EXPECT_EQ(cap.functions.size(), 2u);  // main, Decode
  EXPECT_EQ(cap.mappings.size(), 1u);   // The unused mapping is dropped.
  EXPECT_EQ(cap.sample_types, p.sample_types);
  EXPECT_EQ(parts.at("detection").samples.size(), 3u);
}

TEST(CpuReportTest, SummaryCountsThreadsSelfAndCumulative) {
  auto parts = SplitByService(TwoServices());
  ServiceCpu s = SummarizeCpu("detection", parts.at("detection"), 3);
  EXPECT_EQ(s.samples, 100);
  EXPECT_EQ(s.cpu_ns, 1000000000);
  ASSERT_EQ(s.threads.size(), 2u);
  EXPECT_EQ(s.threads[0].name, "infer");
  EXPECT_EQ(s.threads[0].samples, 80);
  EXPECT_EQ(s.threads[0].tids, (std::vector<int64_t>{11, 12}));
  ASSERT_EQ(s.top_self.size(), 3u);
  EXPECT_EQ(s.top_self[0].name, "Conv");
  EXPECT_EQ(s.top_self[0].self_samples, 60);
  EXPECT_EQ(s.top_self[0].module, "detect");
  ASSERT_FALSE(s.top_cum.empty());
  EXPECT_EQ(s.top_cum[0].name, "main");
  EXPECT_EQ(s.top_cum[0].cum_ns, 1000000000);
  ServiceCpu all = SummarizeCpu("detection", parts.at("detection"), 100);
  for (const FunctionCost& f : all.top_cum) {
    if (f.name == "Walk") {
      EXPECT_EQ(f.cum_samples, 20);  // Not 40: recursion counted once.
    }
  }
}

TEST(CpuReportTest, SamplingErrorShrinksWithSamples) {
  EXPECT_EQ(SharePointsError95(0, 0), 0);
  EXPECT_NEAR(SharePointsError95(50, 100), 9.8, 0.01);
  EXPECT_NEAR(SharePointsError95(5000, 10000), 0.98, 0.001);
  EXPECT_EQ(SharePointsError95(100, 100), 0);
}

TEST(CpuReportTest, ReportsNameTheirCountersAndLinkEveryFile) {
  CpuReport r;
  r.started_at = "2026-11-24T20:00:00Z";
  r.duration_s = 10;
  r.frequency_hz = 99;
  r.final_frequency_hz = 49;
  r.unwind = "fp";
  r.host_cpus = 2;
  r.governor.requested_hz = 99;
  r.governor.min_hz = 25;
  r.governor.max_overhead_pct = 2;
  r.governor.host_warn_pct = 80;
  r.governor.readings = 9;
  r.governor.mean_cost_pct = 2.5;
  r.governor.effective_hz = 61;
  r.governor.changes = {{5, 99, 49, "framescope used 3.10% of one core"}};
  r.governor.host_readings = 10;
  r.governor.host_readings_above = 7;
  r.governor.host_peak_pct = 97;
  auto parts = SplitByService(TwoServices());
  ServiceCpu d = SummarizeCpu("detection", parts.at("detection"), 5);
  d.flame_file = "flamegraphs/detection_flame.html";
  d.prof_file = "cpu/detection_profile.prof";
  d.folded_file = "cpu/detection_profile.folded";
  d.proc_cpu_s = 1.02;
  d.unwind = {true, 90, 6, 4};
  ServiceCpu idle;
  idle.name = "prometheus";
  idle.problem = "no samples although /proc shows 0.50 s CPU";
  r.services = {d, idle};
  std::string md = RenderBaselineCpuSection(r);
  EXPECT_NE(md.find("cpu-clock"), std::string::npos);
  EXPECT_NE(md.find("| detection | 10.0 ± 2.0 | 100 | 1.00 | 1.02 | 90.0% full, 6.0% fp "
                    "fallback, 4.0% truncated | `Conv` 60.0% |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| prometheus | 0 | 0 | 0.00 | not measured | not measured | **no samples"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("RecordResult::unwind_by_service"), std::string::npos) << md;
  // The rate as it was: requested, effective, and each change with its time and reason.
  EXPECT_NE(md.find("99 Hz requested, 61.0 Hz effective"), std::string::npos) << md;
  EXPECT_NE(md.find("Rate change at 5 s: 99 → 49 Hz (framescope used 3.10% of one core)"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("above 80% in 7 of 10 one-second readings (peak 97%): early warning only"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| `Conv` | 60.0 ± 9.6 | 60.0 |"), std::string::npos) << md;
  std::string html = RenderIndexHtml(r);
  EXPECT_NE(html.find("href=\"flamegraphs/detection_flame.html\""), std::string::npos);
  EXPECT_NE(html.find("href=\"cpu/detection_profile.prof\""), std::string::npos);
  EXPECT_NE(html.find("href=\"summary.json\""), std::string::npos);
  EXPECT_NE(html.find("<td>90.0% full, 6.0% fp fallback, 4.0% truncated</td>"), std::string::npos)
      << html;
  EXPECT_NE(html.find("99 Hz requested, 61.0 Hz effective"), std::string::npos);
  EXPECT_NE(html.find("Rate change at 5 s: 99 → 49 Hz"), std::string::npos);
  Json j = CpuReportToJson(r);
  EXPECT_EQ(j.Get("services").AsArray().size(), 2u);
  EXPECT_EQ(j.Get("services").AsArray()[0].Get("samples").AsInt(-1), 100);
  EXPECT_EQ(j.Get("final_frequency_hz").AsInt(-1), 49);
  EXPECT_DOUBLE_EQ(j.Get("effective_frequency_hz").AsDouble(-1), 61);
  const Json& change = j.Get("governor").Get("changes").AsArray().at(0);
  EXPECT_DOUBLE_EQ(change.Get("at_s").AsDouble(-1), 5);
  EXPECT_EQ(change.Get("to_hz").AsInt(-1), 49);
  EXPECT_EQ(j.Get("governor").Get("host_cpu").Get("readings_above").AsInt(-1), 7);
  const Json& unwind = j.Get("services").AsArray()[0].Get("unwind");
  EXPECT_EQ(unwind.Get("full").AsInt(-1), 90);
  EXPECT_EQ(unwind.Get("fp_fallback").AsInt(-1), 6);
  EXPECT_EQ(unwind.Get("truncated").AsInt(-1), 4);
  EXPECT_DOUBLE_EQ(unwind.Get("full_share").AsDouble(-1), 0.9);
  EXPECT_NE(unwind.Get("source").AsString().find("unwind_by_service"), std::string::npos);
  EXPECT_TRUE(j.Get("services").AsArray()[1].Get("unwind").is_null());
}

// DWARF runs also say how many stacks reached the thread's root; fp runs cannot know.
TEST(CpuReportTest, UnwindSharesSayHowManyReachedTheRoot) {
  UnwindShare dwarf{true, 90, 6, 4, 80};
  CpuReport r;
  ServiceCpu d;
  d.name = "detection";
  d.unwind = dwarf;
  r.services.push_back(d);
  EXPECT_NE(RenderBaselineCpuSection(r).find("90.0% full (80.0% to the thread's root), 6.0% fp "
                                             "fallback, 4.0% truncated"),
            std::string::npos);
  const Json summary = CpuReportToJson(r);
  const Json& j = summary.Get("services").AsArray()[0].Get("unwind");
  EXPECT_EQ(j.Get("to_root").AsInt(-1), 80);
  EXPECT_DOUBLE_EQ(j.Get("to_root_share").AsDouble(-1), 0.8);
  r.services[0].unwind.to_root = -1;  // fp mode
  EXPECT_TRUE(
      CpuReportToJson(r).Get("services").AsArray()[0].Get("unwind").Get("to_root").is_null());
  EXPECT_EQ(RenderBaselineCpuSection(r).find("thread's root)"), std::string::npos);
}

// Every loss the recorder counted is in the summary and the baseline, each under its own name.
TEST(CpuReportTest, EveryLossIsReported) {
  CpuReport r;
  r.lost = 3;
  r.malformed = 5;
  r.discarded_bytes = 4096;
  r.samples_without_frames = 7;
  Json j = CpuReportToJson(r);
  EXPECT_EQ(j.Get("lost_records").AsInt(-1), 3);
  EXPECT_EQ(j.Get("malformed_records").AsInt(-1), 5);
  EXPECT_EQ(j.Get("discarded_ring_bytes").AsInt(-1), 4096);
  EXPECT_EQ(j.Get("samples_without_frames").AsInt(-1), 7);
  EXPECT_NE(RenderBaselineCpuSection(r).find("3 ring records lost (ring full), 5 malformed "
                                             "records skipped (4096 bytes discarded), 7 samples "
                                             "without frames"),
            std::string::npos);
}

// An output that could not be written is named in every report that still was.
TEST(CpuReportTest, WriteErrorsAreReported) {
  CpuReport r;
  r.write_errors = {"cannot write /x/cpu/a_profile.prof.tmp.1: No space left on device"};
  EXPECT_NE(RenderIndexHtml(r).find("Outputs not written"), std::string::npos);
  EXPECT_NE(RenderBaselineCpuSection(r).find("**Not written:** cannot write /x/cpu/a_profile"),
            std::string::npos);
  EXPECT_EQ(CpuReportToJson(r).Get("write_errors").AsArray().size(), 1u);
}

// A followed restart and one that was not: each is named, with its service and pids, in every
// report, and the one not followed makes the results partial, saying why.
TEST(CpuReportTest, RestartsAreReportedAndAnUnfollowedOneIsPartial) {
  CpuReport r;
  ServiceCpu detection;
  detection.name = "detection";
  ServiceRestart followed;
  followed.old_pid = 12;
  followed.exited_at_s = 2.34;
  followed.new_pid = 34;
  followed.restarted_at_s = 2.81;
  followed.followed = true;
  followed.old_samples = 210;
  followed.new_samples = 305;
  detection.restarts = {followed};
  ServiceCpu capture;
  capture.name = "capture";
  ServiceRestart gone;
  gone.old_pid = 56;
  gone.exited_at_s = 4;
  capture.restarts = {gone};
  r.services = {detection, capture};
  r.partial = true;
  r.partial_reasons = {RestartText("capture", gone)};
  const std::string followed_text =
      "detection: pid 12 exited (seen at 2.3 s) and was restarted as pid 34 (followed from "
      "2.8 s); samples: 210 from pid 12, 305 from pid 34";
  EXPECT_EQ(RestartText("detection", followed), followed_text);
  const std::string gone_text =
      "capture: pid 56 exited (seen at 4.0 s) and was not restarted before the recording ended";
  EXPECT_EQ(RestartText("capture", gone).rfind(gone_text, 0), 0u) << RestartText("capture", gone);
  Json j = CpuReportToJson(r);
  EXPECT_TRUE(j.Get("partial").AsBool(false));
  ASSERT_EQ(j.Get("partial_reasons").AsArray().size(), 1u);
  const Json& restart = j.Get("services").AsArray()[0].Get("restarts").AsArray().at(0);
  EXPECT_EQ(restart.Get("new_pid").AsInt(0), 34);
  EXPECT_TRUE(restart.Get("followed").AsBool(false));
  EXPECT_EQ(restart.Get("new_pid_samples").AsInt(0), 305);
  EXPECT_EQ(restart.Get("text").AsString(), followed_text);
  EXPECT_TRUE(
      j.Get("services").AsArray()[1].Get("restarts").AsArray().at(0).Get("new_pid").is_null());
  const std::string html = RenderIndexHtml(r);
  EXPECT_NE(html.find(followed_text), std::string::npos);
  EXPECT_NE(html.find("(partial results: " + gone_text), std::string::npos) << html;
  const std::string md = RenderBaselineCpuSection(r);
  EXPECT_NE(md.find("**Restart:** " + followed_text), std::string::npos) << md;
  EXPECT_NE(md.find("(**partial results: " + gone_text), std::string::npos) << md;
}

TEST(CpuReportTest, ReplaceSectionKeepsEverythingElse) {
  std::string section = std::string(kCpuSectionBegin) + "\nNEW\n" + kCpuSectionEnd + "\n";
  EXPECT_EQ(ReplaceSection("", kCpuSectionBegin, kCpuSectionEnd, section),
            "# Performance baseline\n\n" + section);
  std::string doc = "# Title\n\nintro\n" + std::string(kCpuSectionBegin) + "\nOLD\n" +
                    kCpuSectionEnd + "\n## Memory\nkept\n";
  EXPECT_EQ(ReplaceSection(doc, kCpuSectionBegin, kCpuSectionEnd, section),
            "# Title\n\nintro\n" + section + "## Memory\nkept\n");
  EXPECT_EQ(ReplaceSection("# Mine\nnotes", kCpuSectionBegin, kCpuSectionEnd, section),
            "# Mine\nnotes\n\n" + section);
}

}  // namespace
}  // namespace fs::profile
