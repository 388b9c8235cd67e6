// `framescope memory` end to end: a program with a known leak rate is measured within ±10 %, a
// running process is followed until Ctrl-C, and bad input is refused before any work.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "src/base/file_util.h"
#include "src/base/json.h"
#include "src/profile/pprof.h"
#include "tests/integration/test_util.h"

namespace fs::testing {
namespace {

constexpr double kTrueMbPerHour = 2048.0 * 1024 * 3600 / 1e6;  // leak_testprog leak 2048

std::string Framescope() { return BinDir() + "/framescope"; }
std::string LeakProg() { return BinDir() + "/leak_testprog"; }

Json ParseJson(const std::string& text) {
  auto j = Json::Parse(text);
  EXPECT_TRUE(j.ok()) << text;
  return j.ok() ? *j : Json();
}

TEST(MemoryCommand, KnownLeakRateWithinTenPercent) {
  TempDir tmp;
  // RunShell captures both streams: stderr (progress, the program's own output) goes to a file.
  CommandResult r =
      RunShell("{ " + Framescope() + " memory --duration 6 --interval 0.2 --json --out " +
               tmp.path() + " -- " + LeakProg() + " leak 2048 60 2>" + tmp.path() + "/err; }");
  ASSERT_EQ(r.exit_code, 3) << r.output << *ReadFile(tmp.path() + "/err");  // over 10 MB/h
  Json out = ParseJson(r.output);
  ASSERT_EQ(out.Get("processes").size(), 1u);
  const Json& p = out.Get("processes").AsArray()[0];
  EXPECT_EQ(p.Get("name").AsString(), "leak_testprog");
  EXPECT_NEAR(p.Get("rss_slope_mb_per_h").AsDouble(), kTrueMbPerHour, kTrueMbPerHour * 0.10)
      << out.Dump(2);
  EXPECT_EQ(p.Get("verdict").AsString(), "not met");
  // Not started with --heap: no reclaim ratio, and the reason says so (never a made-up 0).
  EXPECT_TRUE(p.Get("reclaim_ratio").is_null()) << out.Dump(2);
  EXPECT_TRUE(p.Get("allocated_bytes").is_null());
  EXPECT_EQ(p.Get("reclaim_verdict").AsString(), "not measured");
  EXPECT_TRUE(p.Get("reclaim_reason").AsString().starts_with("not counted")) << out.Dump(2);
  ASSERT_EQ(p.Get("ci95").size(), 2u);
  EXPECT_LE(p.Get("ci95").AsArray()[0].AsDouble(), p.Get("rss_slope_mb_per_h").AsDouble());
  EXPECT_GE(p.Get("samples").AsInt(), 25);
  EXPECT_NEAR(p.Get("duration_s").AsDouble(), 6, 1);
  // The same analysis on disk, and the log it came from: one JSON line per sample.
  EXPECT_EQ(ParseJson(*ReadFile(tmp.path() + "/memory/analysis.json")).Dump(), out.Dump());
  auto log = ReadFile(tmp.path() + "/memory/leak_testprog.log");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(std::count(log->begin(), log->end(), '\n'), p.Get("samples").AsInt());
}

// --heap: the command runs with the preload library and its reclaim ratio (freed / allocated
// bytes, exact counters) matches the program's truth within ±0.02 (issue 11's accuracy bar).
// leak_testprog reclaim P frees exactly P % of the bytes it allocates, 50,000 allocations a
// second; one run under the 0.95 target (not met: exit 3), one over it (met).
TEST(MemoryCommand, HeapReclaimRatioMatchesTheProgramsTruth) {
  for (int percent : {75, 98}) {
    TempDir tmp;
    CommandResult r =
        RunShell("{ " + Framescope() + " memory --heap --duration 3 --interval 0.2 --json --out " +
                 tmp.path() + " -- " + LeakProg() + " reclaim " + std::to_string(percent) +
                 " 30 2>" + tmp.path() + "/err; }");
    EXPECT_EQ(r.exit_code, 3) << r.output << *ReadFile(tmp.path() + "/err");  // RSS grows
    Json out = ParseJson(r.output);
    ASSERT_EQ(out.Get("processes").size(), 1u) << r.output;
    const Json& p = out.Get("processes").AsArray()[0];
    const double truth = percent / 100.0;
    ASSERT_TRUE(p.Get("reclaim_ratio").is_number()) << out.Dump(2);
    EXPECT_NEAR(p.Get("reclaim_ratio").AsDouble(), truth, 0.02) << out.Dump(2);
    EXPECT_EQ(p.Get("reclaim_verdict").AsString(), percent >= 95 ? "met" : "not met");
    // About 2.7 s (after the 0.3 s warm-up) of 50,000 64-byte blocks a second.
    EXPECT_GT(p.Get("allocated_bytes").AsDouble(), 64.0 * 50000 * 2);
    EXPECT_NEAR(p.Get("freed_bytes").AsDouble() / p.Get("allocated_bytes").AsDouble(),
                p.Get("reclaim_ratio").AsDouble(), 1e-9);
    EXPECT_NE(out.Get("reclaim_explanation").AsString().find("leak"), std::string::npos);
    // The library counted into OUT/memory/heap-NAME; framescope's own environment had no
    // LD_PRELOAD (it would have counted framescope itself, into a second file).
    std::vector<std::string> files;
    for (const auto& e :
         std::filesystem::directory_iterator(tmp.path() + "/memory/heap-leak_testprog")) {
      files.push_back(e.path().filename().string());
    }
    EXPECT_EQ(files.size(), 2u) << ::testing::PrintToString(files);  // .counters and .sites
  }
}

// --heap samples allocations with their stacks: the leaking function is the top site, its
// growth within 10 % of the true rate; the churning function (1 MiB allocated and freed per
// step) grows by nothing. Sampled every 16 KiB so each 256 KiB leaked block is all but surely
// seen (at the default 512 KiB, 12 MB of leak is ~24 samples: a ±25 % estimate).
TEST(MemoryCommand, KnownLeakingSiteIsTheTopSiteWithItsRate) {
  TempDir tmp;
  CommandResult r =
      RunShell("{ FRAMESCOPE_HEAP_SAMPLE_BYTES=16384 " + Framescope() +
               " memory --heap --duration 6 --interval 0.2 --json --out " + tmp.path() + " -- " +
               LeakProg() + " leak 2048 60 2>" + tmp.path() + "/err; }");
  ASSERT_EQ(r.exit_code, 3) << r.output << *ReadFile(tmp.path() + "/err");
  const Json p = ParseJson(r.output).Get("processes").AsArray().at(0);
  ASSERT_TRUE(p.Get("heap_sampled").AsBool()) << p.Dump(2);
  EXPECT_EQ(p.Get("sample_interval_bytes").AsInt(), 16384);
  const Json::Array& sites = p.Get("sites").AsArray();
  ASSERT_GE(sites.size(), 2u) << p.Dump(2);
  EXPECT_NE(sites[0].Get("function").AsString().find("LeakOneBlock"), std::string::npos)
      << p.Dump(2);
  EXPECT_NEAR(sites[0].Get("growth_mb_per_h").AsDouble(), kTrueMbPerHour, kTrueMbPerHour * 0.10)
      << p.Dump(2);
  EXPECT_EQ(sites[0].Get("ci95").size(), 2u);
  EXPECT_NEAR(p.Get("heap_growth_mb_per_h").AsDouble(), kTrueMbPerHour, kTrueMbPerHour * 0.10);
  bool churn_seen = false;
  for (const Json& site : sites) {
    if (site.Get("function").AsString().find("ChurnOnce") == std::string::npos) continue;
    churn_seen = true;
    EXPECT_NEAR(site.Get("growth_mb_per_h").AsDouble(), 0, kTrueMbPerHour * 0.02) << site.Dump();
    // Never in use, yet not "exactly 0": the interval is as wide as one sampling interval over
    // the window (16 KiB over ~5 s: ~±12 MB/h), what sampling can resolve.
    EXPECT_GT(site.Get("ci95").AsArray()[1].AsDouble(), 5) << site.Dump();
    EXPECT_LT(site.Get("ci95").AsArray()[0].AsDouble(), -5) << site.Dump();
    EXPECT_GT(site.Get("alloc_bytes").AsDouble(), 1e6);
  }
  EXPECT_TRUE(churn_seen) << p.Dump(2);
  // The heap profile opens as pprof with go's heap sample types; both flame graphs exist.
  auto heap = profile::ReadPprofFile(tmp.path() + "/" + p.Get("heap_profile").AsString());
  ASSERT_TRUE(heap.ok()) << heap.status().message();
  ASSERT_EQ(heap->sample_types.size(), 4u);
  EXPECT_EQ(heap->sample_types[3].type, "inuse_space");
  EXPECT_TRUE(PathExists(tmp.path() + "/" + p.Get("heap_flamegraph").AsString()));
  auto growth = ReadFile(tmp.path() + "/" + p.Get("growth_flamegraph").AsString());
  ASSERT_TRUE(growth.ok());
  EXPECT_NE(growth->find("LeakOneBlock"), std::string::npos);
}

// record --heap: one command's heap profile (pprof with go's four sample types) and its folded
// bytes in use; 3 s of a 2048 KiB/s leak leave 6 MiB in use at LeakOneBlock when it exits.
TEST(MemoryCommand, RecordHeapWritesTheCommandsHeapProfile) {
  TempDir tmp;
  const std::string out = tmp.path() + "/h.prof";
  CommandResult r =
      RunShell("FRAMESCOPE_HEAP_SAMPLE_BYTES=16384 " + Framescope() +
               " record --heap --duration 0 -o " + out + " -- " + LeakProg() + " leak 2048 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto heap = profile::ReadPprofFile(out);
  ASSERT_TRUE(heap.ok()) << heap.status().message();
  ASSERT_EQ(heap->sample_types.size(), 4u);
  EXPECT_EQ(heap->sample_types[0].type, "alloc_objects");
  EXPECT_EQ(heap->period, 16384);
  auto folded = ReadFile(tmp.path() + "/h.folded");
  ASSERT_TRUE(folded.ok());
  double leaked = 0;
  std::istringstream lines(*folded);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("LeakOneBlock") != std::string::npos) {
      leaked += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  EXPECT_NEAR(leaked / (3 * 2048.0 * 1024), 1.0, 0.10) << *folded;
  // CPU-only flags and a missing command are usage errors.
  EXPECT_EQ(RunShell(Framescope() + " record --heap --pid 1 -o " + out).exit_code, 2);
  EXPECT_EQ(
      RunShell(Framescope() + " record --heap --unwind dwarf -o " + out + " -- true").exit_code, 2);
}

// --pid follows a running process; Ctrl-C ends the run and the analysis is still written.
TEST(MemoryCommand, PidUntilCtrlC) {
  TempDir tmp;
  CommandResult r = RunShell(
      LeakProg() + " leak 1024 30 >/dev/null & L=$!; " + Framescope() + " memory --pid $L " +
      "--duration 60 --interval 0.2 --out " + tmp.path() + " >" + tmp.path() +
      "/out 2>&1 & F=$!; sleep 3; kill -INT $F; wait $F; echo rc=$?; kill $L");
  EXPECT_NE(r.output.find("rc=130"), std::string::npos)
      << r.output << *ReadFile(tmp.path() + "/out");
  auto analysis = ReadFile(tmp.path() + "/memory/analysis.json");
  ASSERT_TRUE(analysis.ok());
  const Json out = ParseJson(*analysis);
  const Json& p = out.Get("processes").AsArray().at(0);
  EXPECT_EQ(p.Get("name").AsString(), "leak_testprog");
  EXPECT_GE(p.Get("samples").AsInt(), 10);
  EXPECT_LT(p.Get("duration_s").AsDouble(), 10);
}

// A target gone at once: "not measurable" with its reason, never a slope of 0; --duration 24h
// logs to 24h_run.log.
TEST(MemoryCommand, TooShortIsNotMeasurableAnd24hLogName) {
  TempDir tmp;
  CommandResult r = RunShell("{ " + Framescope() + " memory --duration 24h --json --out " +
                             tmp.path() + " --interval 0.5 -- true 2>/dev/null; }");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Json out = ParseJson(r.output);
  const Json& p = out.Get("processes").AsArray().at(0);
  EXPECT_EQ(p.Get("verdict").AsString(), "not measurable");
  EXPECT_TRUE(p.Get("rss_slope_mb_per_h").is_null());
  EXPECT_FALSE(p.Get("reason").AsString().empty());
  EXPECT_TRUE(PathExists(tmp.path() + "/memory/24h_run.log"));
}

// Services mode reads pids and names from the state dir's state.json. A stand-in supervisor (its
// command line names _supervise, as SupervisorRunning checks) and two leak_testprog "services"
// keep this test at 3 s; a real `up` is left to the tests that already start one.
TEST(MemoryCommand, StateDirFollowsEveryService) {
  TempDir tmp;
  const std::string d = tmp.path() + "/state",
                    prog = LeakProg() + " leak 1024 20 >/dev/null 2>&1 & ";
  // "detection" as `up --heap-profile detection` starts it: the library counting into its dir.
  const std::string heap = "LD_PRELOAD=" + BinDir() +
                           "/libframescope_heap.so FRAMESCOPE_HEAP_DIR=" + d + "/heap/detection ";
  // capture is killed after 1.2 s and "restarted" (a new process in state.json): followed.
  const std::string state =
      "printf '{\"supervisor_pid\":%d,\"config\":{\"heap_profile\":"
      "[\"detection\"]},\"services\":[{\"name\":\"capture\",\"pid\":%d,"
      "\"state\":\"running\"},{\"name\":\"detection\",\"pid\":%d,"
      "\"state\":\"running\"}]}' ";
  CommandResult r = RunShell(
      "mkdir -p " + d +
      "/heap/detection; sh -c 'while :; do sleep 0.2; done' _supervise >/dev/null 2>&1 & S=$!; " +
      prog + "A=$!; " + heap + prog + "B=$!; " + state + "$S $A $B >" + d + "/state.json; " +
      Framescope() + " memory --state-dir " + d + " --duration 3 --interval 0.2 --json --out " +
      tmp.path() + " >" + tmp.path() + "/out 2>" + tmp.path() +
      "/err & F=$!; sleep 1.2; kill $A; " + prog + "A=$!; sleep 0.3; " + state + "$S $A $B >" + d +
      "/s.tmp; mv " + d + "/s.tmp " + d + "/state.json; wait $F; echo rc=$?; kill $S $A $B");
  ASSERT_NE(r.output.find("rc="), std::string::npos) << r.output;
  const std::string rc = r.output.substr(r.output.rfind("rc="));
  const std::string err = *ReadFile(tmp.path() + "/err");
  EXPECT_TRUE(rc.starts_with("rc=0") || rc.starts_with("rc=3")) << r.output << err;
  const Json out = ParseJson(*ReadFile(tmp.path() + "/out"));
  ASSERT_EQ(out.Get("processes").size(), 2u) << r.output << err;
  EXPECT_EQ(out.Get("processes").AsArray()[0].Get("name").AsString(), "capture");
  EXPECT_EQ(out.Get("processes").AsArray()[1].Get("name").AsString(), "detection");
  EXPECT_NE(err.find("capture restarted (pid"), std::string::npos) << err;
  // The restarted capture's own series (~1.5 s of readings), not the earlier process's.
  EXPECT_GE(out.Get("processes").AsArray()[0].Get("samples").AsInt(), 4) << out.Dump(2);
  EXPECT_LE(out.Get("processes").AsArray()[0].Get("samples").AsInt(), 10) << out.Dump(2);
  EXPECT_GE(out.Get("processes").AsArray()[1].Get("samples").AsInt(), 10);
  // The heap-profiled service has its reclaim ratio from <state-dir>/heap/detection; the other
  // none. leak_testprog leak keeps 256 KiB per ~1 MiB of churn: a ratio near 0.8.
  const Json& capture = out.Get("processes").AsArray()[0];
  const Json& detection = out.Get("processes").AsArray()[1];
  EXPECT_TRUE(capture.Get("reclaim_ratio").is_null());
  EXPECT_FALSE(capture.Get("heap_counted").AsBool());
  ASSERT_TRUE(detection.Get("reclaim_ratio").is_number()) << out.Dump(2);
  EXPECT_GT(detection.Get("reclaim_ratio").AsDouble(), 0.6);
  EXPECT_LT(detection.Get("reclaim_ratio").AsDouble(), 0.9);
  EXPECT_GT(detection.Get("allocated_bytes").AsDouble(), 1e6);
  // One log for the system, one line per service per sample, each with its service's name.
  auto log = ReadFile(tmp.path() + "/memory/system.log");
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("\"name\":\"capture\""), std::string::npos);
  EXPECT_NE(log->find("\"name\":\"detection\""), std::string::npos);
}

TEST(MemoryCommand, BadDurationsAreUsageErrors) {
  for (const char* d : {"0", "-5", "nan", "inf", "8d", "10x", "", "1e400"}) {
    CommandResult r = RunShell(Framescope() + " memory --duration='" + d + "' -- true");
    EXPECT_EQ(r.exit_code, 2) << d << ": " << r.output;
  }
  EXPECT_EQ(RunShell(Framescope() + " memory --interval 0 -- true").exit_code, 2);
  EXPECT_EQ(RunShell(Framescope() + " memory --pid 1 -- true").exit_code, 2);
}

// An --out that cannot hold files, and a symlink where the log would go: 2, before the command
// runs (it would create `marker`), and the symlink's target is untouched.
TEST(MemoryCommand, BadOutputsRefusedBeforeAnyWork) {
  TempDir tmp;
  const std::string marker = tmp.path() + "/marker", cmd = " -- sh -c 'touch " + marker + "'";
  { std::ofstream(tmp.path() + "/file") << "x"; }
  CommandResult r = RunShell(Framescope() + " memory --duration 2 --interval 0.5 --out " +
                             tmp.path() + "/file" + cmd);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  ASSERT_EQ(mkdir((tmp.path() + "/out").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((tmp.path() + "/out/memory").c_str(), 0755), 0);
  { std::ofstream(tmp.path() + "/target") << "keep\n"; }
  ASSERT_EQ(symlink((tmp.path() + "/target").c_str(), (tmp.path() + "/out/memory/sh.log").c_str()),
            0);
  r = RunShell(Framescope() + " memory --duration 2 --interval 0.5 --out " + tmp.path() + "/out" +
               cmd);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("symlink"), std::string::npos) << r.output;
  EXPECT_EQ(*ReadFile(tmp.path() + "/target"), "keep\n");
  EXPECT_FALSE(PathExists(marker));
}

}  // namespace
}  // namespace fs::testing
