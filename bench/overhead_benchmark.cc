// overhead_benchmark: what recording costs a workload, measured so that a 2-core box can
// resolve it. A fixed amount of work (N forwards of framescope-modelbench; a CPU-bound
// multi-threaded program) is timed by the workload itself, bare and under each profiler, in
// interleaved repetitions (the order rotates every repetition, so drift and order effects hit
// every configuration alike). Each profiled time is divided by the bare time of the same
// repetition; the median ratio and its range over the repetitions are printed.
//
// Profilers: framescope record --unwind fp|dwarf and perf record -g / --call-graph dwarf, at the
// same frequency. For each profiled run it also measures the post-processing (from the end of
// the work to the profiler's exit; for perf, plus `perf report --stdio` on the same recording,
// which is where perf unwinds DWARF stacks) and the profiler's peak RSS.
//
// Usage: overhead_benchmark [--reps 7] [--forwards 100] [--threads 2] [--iterations N]
//                           [--frequency 99] [--json-out FILE]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/json.h"

namespace fs::bench {
namespace {

struct Config {
  std::string name;
  std::vector<std::string> prefix;  // argv before the workload's ("--" included); empty: bare
  bool perf = false;                // post-process with `perf report` afterwards
};

struct Workload {
  std::string name;
  std::vector<std::string> argv;
};

// One run of one workload under one configuration.
struct Run {
  bool ok = false;
  double work_s = NAN;  // the workload's own timing of its fixed work
  double post_s = NAN;  // end of the work -> profiler exit (+ perf report)
  double rss_mb = NAN;  // the profiler's peak RSS (max of perf record and perf report)
  std::string error;
};

std::string ReadOrEmpty(const std::string& path) {
  StatusOr<std::string> s = ReadFile(path);
  return s.ok() ? *s : std::string();
}

Run RunOnce(const Config& c, const Workload& w, const std::string& dir) {
  Run r;
  std::vector<std::string> argv = c.prefix;
  argv.insert(argv.end(), w.argv.begin(), w.argv.end());
  const std::string out = dir + "/out.txt";
  // The profiler's own peak RSS (polled VmHWM): wait4's would include the workload it runs.
  ChildRun child = RunChild(argv, out);
  std::string text = ReadOrEmpty(out);
  r.work_s = FindNumber(text, "work_s");
  if (std::isnan(r.work_s)) r.work_s = FindNumber(text, "measured_s");
  double end_ns = FindNumber(text, "end_monotonic_ns");
  if (child.status != 0 || std::isnan(r.work_s) || std::isnan(end_ns)) {
    r.error = c.name + " on " + w.name + " failed (exit " + std::to_string(child.status) +
              "): " + text.substr(0, 400);
    return r;
  }
  if (c.prefix.empty()) {
    r.ok = true;
    return r;
  }
  r.post_s = (static_cast<double>(child.exit_mono_ns) - end_ns) * 1e-9;
  r.rss_mb = child.self_peak_rss_mb;
  if (c.perf) {
    int64_t t0 = MonotonicNs();
    ChildRun report =
        RunChild({"perf", "report", "--stdio", "-i", dir + "/perf.data"}, dir + "/rep.txt");
    r.post_s += static_cast<double>(MonotonicNs() - t0) * 1e-9;
    r.rss_mb = std::max(r.rss_mb, report.self_peak_rss_mb);
    if (report.status != 0) {
      r.error = "perf report failed: " + ReadOrEmpty(dir + "/rep.txt").substr(0, 400);
      return r;
    }
  }
  r.ok = true;
  return r;
}

std::vector<Config> MakeConfigs(const std::string& framescope, const std::string& dir, int hz,
                                bool have_perf) {
  const std::string f = std::to_string(hz);
  std::vector<Config> cs = {{"bare", {}, false}};
  for (const char* mode : {"fp", "dwarf"}) {
    cs.push_back({std::string("framescope ") + mode,
                  {framescope, "record", "--unwind", mode, "--frequency", f, "--duration", "0",
                   "-o", dir + "/fs.prof", "--"},
                  false});
  }
  if (!have_perf) return cs;
  cs.push_back(
      {"perf -g", {"perf", "record", "-q", "-F", f, "-g", "-o", dir + "/perf.data", "--"}, true});
  cs.push_back({"perf dwarf",
                {"perf", "record", "-q", "-F", f, "--call-graph", "dwarf,8192", "-o",
                 dir + "/perf.data", "--"},
                true});
  return cs;
}

// Per (workload, config): the profiled/bare ratios of every repetition, post_s and RSS.
struct Series {
  std::vector<double> ratio, post_s, rss_mb, work_s;
};

void PrintTable(const Workload& w, const std::vector<Config>& cs,
                std::map<std::string, Series>& series, int reps, Json* out) {
  printf("\n%s (%d interleaved repetitions; ratio = profiled / bare work time, same rep)\n",
         w.name.c_str(), reps);
  printf("  %-16s %-26s %-22s %-14s\n", "config", "work ratio median [min..max]",
         "post-processing s", "peak RSS MB");
  Json jw = Json::MakeObject();
  for (const Config& c : cs) {
    Series& s = series[c.name];
    Spread r = Summarize(s.ratio), p = Summarize(s.post_s), m = Summarize(s.rss_mb),
           t = Summarize(s.work_s);
    if (c.prefix.empty()) {
      printf("  %-16s work %s s [%s..%s]\n", c.name.c_str(), Fmt("%.3f", t.median).c_str(),
             Fmt("%.3f", t.lo).c_str(), Fmt("%.3f", t.hi).c_str());
    } else {
      printf("  %-16s %s [%s..%s]%*s %-22s %-14s\n", c.name.c_str(), Fmt("%.4f", r.median).c_str(),
             Fmt("%.4f", r.lo).c_str(), Fmt("%.4f", r.hi).c_str(), 3, "",
             Fmt("%.2f", p.median).c_str(), Fmt("%.0f", m.median).c_str());
    }
    Json jc = Json::MakeObject();
    jc["work_s"] = SpreadJson(t);
    jc["ratio"] = SpreadJson(r);
    jc["post_s"] = SpreadJson(p);
    jc["peak_rss_mb"] = SpreadJson(m);
    jw[c.name] = jc;
  }
  (*out)[w.name] = jw;
}

int Main(int argc, char** argv) {
  int reps = 7, forwards = 100, threads = 2, frequency = 99;
  int iterations = 40000;
  std::string json_out;
  FlagSet flags("overhead_benchmark",
                "Slowdown of a fixed amount of work under framescope record (fp, dwarf) and\n"
                "perf record (-g, dwarf), interleaved repetitions; post-processing and RSS.");
  flags.Int("reps", &reps, "interleaved repetitions (>= 3; 7 or more for a usable median)");
  flags.Int("forwards", &forwards, "framescope-modelbench forwards per run");
  flags.Int("threads", &threads, "threads of the CPU-bound workload");
  flags.Int("iterations", &iterations, "rounds per thread of the CPU-bound workload");
  flags.Int("frequency", &frequency, "sampling frequency of every profiler, Hz");
  flags.String("json-out", &json_out, "also write the results here (JSON)");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (reps < 3 || forwards < 1 || threads < 1 || iterations < 1 || frequency < 1) {
    fprintf(stderr, "overhead_benchmark: --reps >= 3, other counts >= 1\n");
    return 2;
  }
  std::string bin = SelfExeDir();
  int perf_code = 0;
  RunCommand("perf --version", &perf_code);
  if (perf_code != 0) printf("perf not found: the perf columns are missing from this run\n");
  char tmpl[] = "/tmp/fs-overhead-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    perror("overhead_benchmark: mkdtemp");
    return 1;
  }
  const std::string dir = tmpl;
  std::vector<Config> cs = MakeConfigs(bin + "/framescope", dir, frequency, perf_code == 0);
  std::vector<Workload> ws = {
      {"modelbench",
       {bin + "/framescope-modelbench", "--forwards", std::to_string(forwards), "--warmup", "2",
        "--json"}},
      {"cpu-bound",
       {bin + "/overhead_workload", std::to_string(threads), std::to_string(iterations)}}};
  Json results = Json::MakeObject();
  for (const Workload& w : ws) {
    std::map<std::string, Series> series;
    for (int rep = 0; rep < reps; ++rep) {
      std::map<std::string, Run> runs;
      for (size_t k = 0; k < cs.size(); ++k) {
        const Config& c = cs[(k + rep) % cs.size()];  // rotate the order every repetition
        runs[c.name] = RunOnce(c, w, dir);
        if (!runs[c.name].ok) fprintf(stderr, "%s\n", runs[c.name].error.c_str());
      }
      fprintf(stderr, "%s: repetition %d/%d done\n", w.name.c_str(), rep + 1, reps);
      const Run& bare = runs["bare"];
      for (const Config& c : cs) {
        const Run& r = runs[c.name];
        if (!r.ok || !bare.ok) continue;
        Series& s = series[c.name];
        s.work_s.push_back(r.work_s);
        s.ratio.push_back(r.work_s / bare.work_s);
        s.post_s.push_back(r.post_s);
        s.rss_mb.push_back(r.rss_mb);
      }
    }
    PrintTable(w, cs, series, reps, &results);
  }
  RunCommand("rm -rf '" + dir + "'", &code);
  if (!json_out.empty()) {
    Status st = WriteFileAtomic(json_out, results.Dump(2) + "\n");
    if (!st.ok())
      fprintf(stderr, "overhead_benchmark: %s\n", st.message().c_str());
    else
      printf("\nraw JSON: %s\n", json_out.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace fs::bench

int main(int argc, char** argv) { return fs::bench::Main(argc, argv); }
