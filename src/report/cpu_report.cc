#include "src/report/cpu_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <unordered_set>

#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

int SamplesIndex(const Profile& p) {
  for (size_t i = 0; i < p.sample_types.size(); ++i) {
    if (p.sample_types[i].type == "samples") return static_cast<int>(i);
  }
  return -1;
}

int64_t ValueAt(const Sample& s, int index) {
  if (index < 0 || static_cast<size_t>(index) >= s.values.size()) return 0;
  return s.values[static_cast<size_t>(index)];
}

struct Costs {
  int64_t self = 0, cum = 0;
  std::string module;
};

// Self and cumulative value per function name over the full call tree. A name that recurs on
// one path counts once for cum (only its outermost occurrence).
std::map<std::string, Costs> CostsByName(const CallTree& tree) {
  std::map<std::string, Costs> out;
  const size_t n = tree.nodes.size();
  std::vector<int64_t> self(n);
  for (size_t i = 0; i < n; ++i) self[i] = tree.nodes[i].value;
  for (size_t i = 1; i < n; ++i)
    self[static_cast<size_t>(tree.nodes[i].parent)] -= tree.nodes[i].value;
  for (size_t i = 1; i < n; ++i) {
    const CallFrame& f = tree.frames[static_cast<size_t>(tree.nodes[i].frame)];
    Costs& c = out[f.name];
    if (c.module.empty()) c.module = f.module;
    c.self += self[i];
    bool outermost = true;
    for (int32_t a = tree.nodes[i].parent; a > 0; a = tree.nodes[static_cast<size_t>(a)].parent) {
      if (tree.frames[static_cast<size_t>(tree.nodes[static_cast<size_t>(a)].frame)].name ==
          f.name) {
        outermost = false;
        break;
      }
    }
    if (outermost) c.cum += tree.nodes[i].value;
  }
  return out;
}

std::string Pct(int64_t part, int64_t total) {
  return total > 0 ? Fixed(100.0 * static_cast<double>(part) / static_cast<double>(total), 1)
                   : "n/a";
}

std::string Mib(uint64_t bytes) { return Fixed(static_cast<double>(bytes) / 1048576.0, 1); }

std::string HtmlText(const std::string& s) { return HtmlEscape(s); }

Json FunctionsJson(const std::vector<FunctionCost>& fns, int64_t total_samples) {
  Json arr = Json::MakeArray();
  for (const FunctionCost& f : fns) {
    Json j = Json::MakeObject();
    j["name"] = f.name;
    j["module"] = f.module;
    j["self_cpu_ns"] = f.self_ns;
    j["self_samples"] = f.self_samples;
    j["cum_cpu_ns"] = f.cum_ns;
    j["cum_samples"] = f.cum_samples;
    j["self_share_error95_points"] = SharePointsError95(f.self_samples, total_samples);
    arr.Push(std::move(j));
  }
  return arr;
}

constexpr const char* kUnwindSource =
    "the recorder's per-sample unwinding outcome (RecordResult::unwind_by_service)";

std::string Share(uint64_t part, uint64_t total) {
  return Pct(static_cast<int64_t>(part), static_cast<int64_t>(total));
}

// "92.1% full, 3.0% fp fallback, 4.9% truncated" or "not measured".
std::string UnwindText(const UnwindShare& u) {
  if (!u.measured || u.total() == 0) return "not measured";
  std::string root = u.to_root < 0 ? ""
                                   : " (" + Share(static_cast<uint64_t>(u.to_root), u.total()) +
                                         "% to the thread's root)";
  return Share(u.full, u.total()) + "% full" + root + ", " + Share(u.fp_fallback, u.total()) +
         "% fp fallback, " + Share(u.truncated, u.total()) + "% truncated";
}

Json UnwindJson(const UnwindShare& u) {
  if (!u.measured) return Json(nullptr);
  Json j = Json::MakeObject();
  j["source"] = kUnwindSource;
  j["full"] = u.full;
  j["fp_fallback"] = u.fp_fallback;
  j["truncated"] = u.truncated;
  const double total = static_cast<double>(u.total());
  j["full_share"] = total > 0 ? Json(static_cast<double>(u.full) / total) : Json(nullptr);
  j["to_root"] = u.to_root >= 0 ? Json(u.to_root) : Json(nullptr);
  j["to_root_share"] =
      u.to_root >= 0 && total > 0 ? Json(static_cast<double>(u.to_root) / total) : Json(nullptr);
  return j;
}

Json GovernorJson(const GovernorReport& g) {
  Json j = Json::MakeObject();
  j["requested_hz"] = g.requested_hz;
  j["min_hz"] = g.min_hz;
  j["max_overhead_percent_of_one_core"] = g.max_overhead_pct;
  j["host_warning_percent"] = g.host_warn_pct;
  j["readings"] = g.readings;
  j["mean_cost_percent_of_one_core"] = g.mean_cost_pct >= 0 ? Json(g.mean_cost_pct) : Json(nullptr);
  j["effective_hz"] = g.effective_hz;
  Json changes = Json::MakeArray();
  for (const RateChange& c : g.changes) {
    Json o = Json::MakeObject();
    o["at_s"] = c.at_s;
    o["from_hz"] = c.from_hz;
    o["to_hz"] = c.to_hz;
    o["reason"] = c.reason;
    changes.Push(std::move(o));
  }
  j["changes"] = std::move(changes);
  Json host = Json::MakeObject();
  host["source"] = "/proc/stat (all CPUs)";
  host["readings"] = g.host_readings;
  host["readings_above"] = g.host_readings_above;
  host["peak_percent"] = g.host_peak_pct >= 0 ? Json(g.host_peak_pct) : Json(nullptr);
  j["host_cpu"] = std::move(host);
  Json warnings = Json::MakeArray();
  for (const std::string& w : g.warnings) warnings.Push(w);
  j["warnings"] = std::move(warnings);
  j["note"] = g.note;
  return j;
}

Json StringsJson(const std::vector<std::string>& lines) {
  Json arr = Json::MakeArray();
  for (const std::string& l : lines) arr.Push(l);
  return arr;
}

Json RestartsJson(const std::string& service, const std::vector<ServiceRestart>& restarts) {
  Json arr = Json::MakeArray();
  for (const ServiceRestart& r : restarts) {
    Json o = Json::MakeObject();
    o["old_pid"] = static_cast<int64_t>(r.old_pid);
    o["exited_at_s"] = r.exited_at_s;
    o["new_pid"] = r.new_pid > 0 ? Json(static_cast<int64_t>(r.new_pid)) : Json(nullptr);
    o["restarted_at_s"] = r.restarted_at_s >= 0 ? Json(r.restarted_at_s) : Json(nullptr);
    o["followed"] = r.followed;
    o["error"] = r.error;
    o["old_pid_samples"] = r.old_samples >= 0 ? Json(r.old_samples) : Json(nullptr);
    o["new_pid_samples"] = r.new_samples >= 0 ? Json(r.new_samples) : Json(nullptr);
    o["text"] = RestartText(service, r);
    arr.Push(std::move(o));
  }
  return arr;
}

// Every service's restarts, one line each (RestartText).
std::vector<std::string> RestartLines(const CpuReport& r) {
  std::vector<std::string> lines;
  for (const ServiceCpu& s : r.services) {
    for (const ServiceRestart& restart : s.restarts) lines.push_back(RestartText(s.name, restart));
  }
  return lines;
}

// The headline's note on partial results (index.html, the baseline document).
std::string PartialText(const CpuReport& r) {
  std::string t = "partial results";
  for (size_t i = 0; i < r.partial_reasons.size(); ++i) {
    t += (i == 0 ? ": " : "; ") + r.partial_reasons[i];
  }
  return t;
}

}  // namespace

std::string RestartText(const std::string& service, const ServiceRestart& r) {
  std::string t = service + ": pid " + std::to_string(r.old_pid) + " exited (seen at " +
                  Fixed(r.exited_at_s, 1) + " s)";
  if (r.new_pid <= 0) {
    return t +
           " and was not restarted before the recording ended (samples up to the exit "
           "are kept)";
  }
  t += " and was restarted as pid " + std::to_string(r.new_pid);
  if (!r.followed)
    return t + " (seen at " + Fixed(r.restarted_at_s, 1) + " s); not followed: " + r.error;
  t += " (followed from " + Fixed(r.restarted_at_s, 1) + " s)";
  if (r.old_samples < 0 || r.new_samples < 0) return t;
  return t + "; samples: " + std::to_string(r.old_samples) + " from pid " +
         std::to_string(r.old_pid) + ", " + std::to_string(r.new_samples) + " from pid " +
         std::to_string(r.new_pid);
}

std::string MdCell(const std::string& s, size_t max_chars) {
  std::string out;
  for (char c : s) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  if (out.size() > max_chars) out = out.substr(0, max_chars - 3) + "...";
  return out;
}

std::string CpuPctWithError(const ServiceCpu& s, double duration_s) {
  if (duration_s <= 0 || s.samples == 0) return "0";
  double pct = static_cast<double>(s.cpu_ns) / 1e9 / duration_s * 100.0;
  double err = pct * 1.96 / std::sqrt(static_cast<double>(s.samples));
  return Fixed(pct, 1) + " ± " + Fixed(err, 1);
}

std::vector<std::string> GovernorLines(const GovernorReport& g) {
  std::vector<std::string> out;
  std::string budget = g.max_overhead_pct > 0
                           ? "budget for framescope's own CPU: " + Fixed(g.max_overhead_pct, 1) +
                                 "% of one core, floor " + std::to_string(g.min_hz) + " Hz"
                           : "rate changes off (--max-overhead-pct 0)";
  if (g.readings == 0) {
    budget += "; never consulted by the recorder, so the rate stayed as requested";
  } else {
    budget += "; " + std::to_string(g.readings) + " one-second readings, mean " +
              Fixed(g.mean_cost_pct, 2) + "% of one core";
  }
  out.push_back("Overhead governor: " + budget + ".");
  for (const RateChange& c : g.changes) {
    out.push_back("Rate change at " + Fixed(c.at_s, 0) + " s: " + std::to_string(c.from_hz) +
                  " → " + std::to_string(c.to_hz) + " Hz (" + c.reason + ").");
  }
  if (g.host_warn_pct > 0 && g.host_readings > 0) {
    out.push_back("Host CPU (/proc/stat, all CPUs) above " + Fixed(g.host_warn_pct, 0) + "% in " +
                  std::to_string(g.host_readings_above) + " of " + std::to_string(g.host_readings) +
                  " one-second readings (peak " + Fixed(g.host_peak_pct, 0) + "%)" +
                  (g.host_readings_above > 0
                       ? ": early warning only (the planning document's threshold); host load "
                         "includes the workload being profiled, so the rate is not lowered for it."
                       : "."));
  }
  if (!g.note.empty()) out.push_back(g.note);
  return out;
}

std::string RateText(const CpuReport& r) {
  const GovernorReport& g = r.governor;
  if (g.changes.empty()) return std::to_string(r.frequency_hz) + " Hz";
  return std::to_string(r.frequency_hz) + " Hz requested, " + Fixed(g.effective_hz, 1) +
         " Hz effective (time-weighted; " + std::to_string(g.changes.size()) +
         " rate change(s) by the overhead governor, last to " +
         std::to_string(g.changes.back().to_hz) + " Hz)";
}

Profile ProfileSubset(const Profile& profile, const std::function<bool(const Sample&)>& keep) {
  Profile out;
  out.sample_types = profile.sample_types;
  out.drop_frames = profile.drop_frames;
  out.keep_frames = profile.keep_frames;
  out.time_nanos = profile.time_nanos;
  out.duration_nanos = profile.duration_nanos;
  out.period_type = profile.period_type;
  out.period = profile.period;
  out.comments = profile.comments;
  out.default_sample_type = profile.default_sample_type;
  std::unordered_set<uint64_t> locations, functions, mappings;
  for (const Sample& s : profile.samples) {
    if (!keep(s)) continue;
    out.samples.push_back(s);
    locations.insert(s.location_ids.begin(), s.location_ids.end());
  }
  for (const Location& l : profile.locations) {
    if (locations.count(l.id) == 0) continue;
    out.locations.push_back(l);
    if (l.mapping_id != 0) mappings.insert(l.mapping_id);
    for (const Line& line : l.lines) functions.insert(line.function_id);
  }
  for (const Mapping& m : profile.mappings) {
    if (mappings.count(m.id) != 0) out.mappings.push_back(m);
  }
  for (const Function& f : profile.functions) {
    if (functions.count(f.id) != 0) out.functions.push_back(f);
  }
  return out;
}

std::map<std::string, Profile> SplitByService(const Profile& profile) {
  std::set<std::string> names;
  for (const Sample& s : profile.samples) {
    auto it = s.labels.find("service");
    names.insert(it == s.labels.end() ? "" : it->second);
  }
  std::map<std::string, Profile> out;
  for (const std::string& name : names) {
    out[name] = ProfileSubset(profile, [&name](const Sample& s) {
      auto it = s.labels.find("service");
      return (it == s.labels.end() ? "" : it->second) == name;
    });
  }
  return out;
}

double SharePointsError95(int64_t part, int64_t total) {
  if (total <= 0) return 0;
  double p = static_cast<double>(part) / static_cast<double>(total);
  return 100.0 * 1.96 * std::sqrt(p * (1 - p) / static_cast<double>(total));
}

ServiceCpu SummarizeCpu(const std::string& name, const Profile& profile, size_t top_n) {
  ServiceCpu out;
  out.name = name;
  const int cpu = DisplayValueIndex(profile);
  const int count = SamplesIndex(profile);
  std::map<std::string, ThreadCost> threads;
  for (const Sample& s : profile.samples) {
    int64_t n = count >= 0 ? ValueAt(s, count) : 1;
    int64_t ns = ValueAt(s, cpu);
    out.samples += n;
    out.cpu_ns += ns;
    auto t = s.labels.find("thread");
    std::string thread = t != s.labels.end() ? t->second : "[unnamed]";
    ThreadCost& tc = threads[thread];
    tc.name = thread;
    tc.samples += n;
    tc.cpu_ns += ns;
    if (auto tid = s.num_labels.find("tid"); tid != s.num_labels.end()) {
      if (std::find(tc.tids.begin(), tc.tids.end(), tid->second) == tc.tids.end()) {
        tc.tids.push_back(tid->second);
      }
    }
  }
  for (auto& [_, t] : threads) {
    std::sort(t.tids.begin(), t.tids.end());
    out.threads.push_back(std::move(t));
  }
  std::sort(out.threads.begin(), out.threads.end(), [](const ThreadCost& a, const ThreadCost& b) {
    return a.cpu_ns != b.cpu_ns ? a.cpu_ns > b.cpu_ns : a.name < b.name;
  });

  std::map<std::string, Costs> by_ns = CostsByName(BuildCallTree(profile, cpu, 0));
  std::map<std::string, Costs> by_count;
  if (count >= 0) by_count = CostsByName(BuildCallTree(profile, count, 0));
  std::vector<FunctionCost> all;
  for (const auto& [fn, c] : by_ns) {
    FunctionCost f;
    f.name = fn;
    f.module = c.module;
    f.self_ns = c.self;
    f.cum_ns = c.cum;
    if (auto it = by_count.find(fn); it != by_count.end()) {
      f.self_samples = it->second.self;
      f.cum_samples = it->second.cum;
    }
    all.push_back(std::move(f));
  }
  auto top = [&all, top_n](auto key) {
    std::vector<FunctionCost> v = all;
    std::sort(v.begin(), v.end(), [&key](const FunctionCost& a, const FunctionCost& b) {
      return key(a) != key(b) ? key(a) > key(b) : a.name < b.name;
    });
    while (!v.empty() && key(v.back()) <= 0) v.pop_back();
    if (v.size() > top_n) v.resize(top_n);
    return v;
  };
  out.top_self = top([](const FunctionCost& f) { return f.self_ns; });
  out.top_cum = top([](const FunctionCost& f) { return f.cum_ns; });
  return out;
}

Json CpuReportToJson(const CpuReport& r) {
  Json j = Json::MakeObject();
  j["started_at"] = r.started_at;
  j["duration_s"] = r.duration_s;
  j["requested_duration_s"] = r.requested_s;
  j["partial"] = r.partial;
  j["partial_reasons"] = StringsJson(r.partial_reasons);
  j["interrupted"] = r.interrupted;
  j["counter"] = "cpu-clock (perf_event_open software event)";
  j["frequency_hz"] = r.frequency_hz;
  j["final_frequency_hz"] = r.final_frequency_hz;
  j["effective_frequency_hz"] = r.governor.effective_hz;
  j["unwind"] = r.unwind;
  j["kernel_frames"] = r.kernel_frames;
  j["lost_records"] = r.lost;
  j["malformed_records"] = r.malformed;
  j["discarded_ring_bytes"] = r.discarded_bytes;
  j["samples_without_frames"] = r.samples_without_frames;
  j["host_cpus"] = r.host_cpus;
  j["host_cpu_percent"] = r.host_cpu_pct >= 0 ? Json(r.host_cpu_pct) : Json(nullptr);
  j["governor"] = GovernorJson(r.governor);
  j["warnings"] = StringsJson(r.warnings);
  j["write_errors"] = StringsJson(r.write_errors);
  Json self = Json::MakeObject();
  self["cpu_s"] = r.profiler_cpu_s >= 0 ? Json(r.profiler_cpu_s) : Json(nullptr);
  self["sampling_cpu_percent_of_one_core"] =
      r.profiler_sampling_cpu_pct >= 0 ? Json(r.profiler_sampling_cpu_pct) : Json(nullptr);
  self["peak_rss_bytes"] = r.profiler_peak_rss;
  self["postprocess_s"] = r.postprocess_s;
  j["profiler"] = std::move(self);
  j["preflight"] = StringsJson(r.preflight);
  Json services = Json::MakeArray();
  for (const ServiceCpu& s : r.services) {
    Json o = Json::MakeObject();
    o["name"] = s.name;
    Json pids = Json::MakeArray();
    for (pid_t p : s.pids) pids.Push(static_cast<int64_t>(p));
    o["pids"] = std::move(pids);
    o["samples"] = s.samples;
    o["cpu_ns"] = s.cpu_ns;
    o["cpu_percent_of_one_core"] =
        r.duration_s > 0 ? static_cast<double>(s.cpu_ns) / 1e9 / r.duration_s * 100.0 : 0.0;
    o["cpu_relative_error95"] =
        s.samples > 0 ? 1.96 / std::sqrt(static_cast<double>(s.samples)) : Json(nullptr);
    o["proc_cpu_s"] = s.proc_cpu_s >= 0 ? Json(s.proc_cpu_s) : Json(nullptr);
    Json threads = Json::MakeArray();
    for (const ThreadCost& t : s.threads) {
      Json tj = Json::MakeObject();
      tj["name"] = t.name;
      Json tids = Json::MakeArray();
      for (int64_t tid : t.tids) tids.Push(tid);
      tj["tids"] = std::move(tids);
      tj["samples"] = t.samples;
      tj["cpu_ns"] = t.cpu_ns;
      threads.Push(std::move(tj));
    }
    o["threads"] = std::move(threads);
    o["top_self"] = FunctionsJson(s.top_self, s.samples);
    o["top_cumulative"] = FunctionsJson(s.top_cum, s.samples);
    o["problem"] = s.problem;
    o["note"] = s.note;
    o["restarts"] = RestartsJson(s.name, s.restarts);
    o["unwind"] = UnwindJson(s.unwind);
    Json files = Json::MakeObject();
    files["pprof"] = s.prof_file;
    files["folded"] = s.folded_file;
    files["flamegraph"] = s.flame_file;
    o["files"] = std::move(files);
    services.Push(std::move(o));
  }
  j["services"] = std::move(services);
  return j;
}

std::string RenderIndexHtml(const CpuReport& r, const std::string& more_sections,
                            const std::string& first_section) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>framescope profile</title><style>"
      "body{font:14px sans-serif;margin:24px;color:#222}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
      "td.n{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#b00}"
      "</style></head><body>\n<h1>framescope profile</h1>\n";
  h += first_section + "<p>Started " + HtmlText(r.started_at) + ", recorded " +
       Fixed(r.duration_s, 1) + " s";
  if (r.partial) h += " <b class=\"bad\">(" + HtmlText(PartialText(r)) + ")</b>";
  h += ". Counter: cpu-clock samples at " + HtmlText(RateText(r));
  h += ", " + HtmlText(r.unwind == "dwarf" ? "DWARF" : "frame-pointer") + " unwinding.</p>\n";
  h += "<p><a href=\"summary.json\">summary.json</a></p>\n";
  h += "<table id=\"services\"><tr><th>service</th><th>CPU % of one core (95% CI)</th>"
       "<th>samples</th><th>CPU s (/proc)</th><th>flame graph</th><th>pprof</th>"
       "<th>folded</th><th>user stacks unwound</th><th>top self function</th></tr>\n";
  for (const ServiceCpu& s : r.services) {
    h += "<tr><td>" + HtmlText(s.name) + "</td><td class=\"n\">" +
         HtmlText(CpuPctWithError(s, r.duration_s)) + "</td><td class=\"n\">" +
         std::to_string(s.samples) + "</td><td class=\"n\">" +
         (s.proc_cpu_s >= 0 ? Fixed(s.proc_cpu_s, 2) : "n/a") + "</td>";
    for (const std::string* f : {&s.flame_file, &s.prof_file, &s.folded_file}) {
      h += f->empty() ? "<td>-</td>"
                      : "<td><a href=\"" + HtmlText(*f) + "\">" + HtmlText(*f) + "</a></td>";
    }
    h += "<td>" + HtmlText(UnwindText(s.unwind)) + "</td><td>";
    if (!s.problem.empty()) {
      h += "<span class=\"bad\">" + HtmlText(s.problem) + "</span>";
    } else if (!s.top_self.empty()) {
      h += HtmlText(s.top_self[0].name) + " (" + Pct(s.top_self[0].self_ns, s.cpu_ns) + "%)";
    } else {
      h += HtmlText(s.note);
    }
    h += "</td></tr>\n";
  }
  h += "</table>\n<p>User stacks unwound: from " + HtmlText(kUnwindSource) +
       "; full = walked past the leaf (to the thread's root = DWARF CFI reached the outermost "
       "frame), fp fallback = CFI stopped at the leaf and the sample's frame-pointer chain was "
       "kept, truncated = neither got past the leaf.</p>\n";
  if (const std::vector<std::string> lines = RestartLines(r); !lines.empty()) {
    h += "<h2>Services restarted while recorded</h2><ul>\n";
    for (const std::string& l : lines) h += "<li>" + HtmlText(l) + "</li>\n";
    h += "</ul>\n";
  }
  if (!r.write_errors.empty()) {
    h += "<h2 class=\"bad\">Outputs not written</h2><ul>\n";
    for (const std::string& e : r.write_errors) h += "<li>" + HtmlText(e) + "</li>\n";
    h += "</ul>\n";
  }
  h += more_sections;
  h += "<h2>Preflight</h2><ul>\n";
  for (const std::string& p : r.preflight) h += "<li>" + HtmlText(p) + "</li>\n";
  h += "</ul>\n<h2>Profiler overhead</h2><ul>\n";
  if (r.profiler_cpu_s >= 0) {
    h += "<li>framescope CPU, attach to the per-service files written: " +
         Fixed(r.profiler_cpu_s, 2) + " s</li>\n";
  }
  if (r.profiler_sampling_cpu_pct >= 0) {
    h += "<li>framescope CPU while sampling: " + Fixed(r.profiler_sampling_cpu_pct, 2) +
         "% of one core</li>\n";
  }
  h += "<li>framescope peak RSS: " + Mib(r.profiler_peak_rss) + " MiB</li>\n";
  for (const std::string& g : GovernorLines(r.governor)) h += "<li>" + HtmlText(g) + "</li>\n";
  for (const std::string& w : r.governor.warnings) h += "<li>" + HtmlText(w) + "</li>\n";
  for (const std::string& w : r.warnings) h += "<li>recorder: " + HtmlText(w) + "</li>\n";
  h += "</ul>\n</body></html>\n";
  return h;
}

std::string RenderBaselineCpuSection(const CpuReport& r) {
  std::string m = std::string(kCpuSectionBegin) + "\n## CPU\n\n";
  m += "Recorded by `framescope profile` on " + r.started_at + " for " + Fixed(r.duration_s, 1) +
       " s";
  if (r.partial) m += " (**" + MdCell(PartialText(r), 1000) + "**)";
  m += ". Counter: `cpu-clock` software event (perf_event_open), " + RateText(r) + " per CPU";
  m += ", " + std::string(r.unwind == "dwarf" ? "DWARF" : "frame-pointer") + " unwinding";
  m += r.kernel_frames ? ", kernel frames included" : ", kernel frames hidden by the host";
  m += ". Losses: " + std::to_string(r.lost) + " ring records lost (ring full), " +
       std::to_string(r.malformed) + " malformed records skipped (" +
       std::to_string(r.discarded_bytes) + " bytes discarded), " +
       std::to_string(r.samples_without_frames) + " samples without frames.\n\n";
  m += "CPU % is of one core (" + std::to_string(r.host_cpus) +
       " CPUs on this host), from the sum of sample periods; ± is the 95% interval from the "
       "sample count (1.96/√n). CPU s (/proc) is utime+stime over the same window, read "
       "independently from /proc/PID/stat, as a cross-check.\n\n";
  m += "User stacks unwound: from " + std::string(kUnwindSource) +
       "; full = walked past the leaf (to the thread's root = DWARF CFI reached the outermost "
       "frame), fp fallback = CFI stopped at the leaf and the sample's frame-pointer chain was "
       "kept, truncated = neither got past the leaf.\n\n";
  m += "| service | CPU % of one core | samples | CPU s (samples) | CPU s (/proc) | user stacks "
       "unwound | top self function |\n|---|---:|---:|---:|---:|---|---|\n";
  for (const ServiceCpu& s : r.services) {
    m += "| " + MdCell(s.name) + " | " + CpuPctWithError(s, r.duration_s) + " | " +
         std::to_string(s.samples) + " | " + Fixed(static_cast<double>(s.cpu_ns) / 1e9, 2) + " | " +
         (s.proc_cpu_s >= 0 ? Fixed(s.proc_cpu_s, 2) : "not measured") + " | " +
         UnwindText(s.unwind) + " | ";
    if (!s.problem.empty()) {
      m += "**" + MdCell(s.problem) + "**";
    } else if (!s.top_self.empty()) {
      m += "`" + MdCell(s.top_self[0].name) + "` " + Pct(s.top_self[0].self_ns, s.cpu_ns) + "%";
    } else {
      m += MdCell(s.note);
    }
    m += " |\n";
  }
  if (r.host_cpu_pct >= 0) {
    m += "\nHost CPU busy (all CPUs, /proc/stat): " + Fixed(r.host_cpu_pct, 1) + "%.";
  }
  if (r.profiler_cpu_s >= 0) {
    m += " framescope itself: " + Fixed(r.profiler_cpu_s, 2) +
         " s CPU from attach to the per-service files written";
    if (r.profiler_sampling_cpu_pct >= 0) {
      m += " (" + Fixed(r.profiler_sampling_cpu_pct, 2) + "% of one core while sampling)";
    }
    m += ", peak RSS " + Mib(r.profiler_peak_rss) + " MiB, post-processing " +
         Fixed(r.postprocess_s, 2) + " s.";
  }
  m += "\n";
  m += "\n";
  for (const std::string& g : GovernorLines(r.governor)) m += "\n- " + MdCell(g, 400);
  for (const std::string& l : RestartLines(r)) m += "\n- **Restart:** " + MdCell(l, 400);
  for (const std::string& w : r.write_errors) m += "\n- **Not written:** " + MdCell(w, 400);
  m += "\n";
  for (const ServiceCpu& s : r.services) {
    if (s.samples == 0) continue;
    m += "\n### " + MdCell(s.name) + "\n\n";
    m += "Flame graph: `" + s.flame_file + "`, pprof: `" + s.prof_file + "` (`go tool pprof -top " +
         s.prof_file + "`).\n\n";
    m += "| thread | tids | samples | share of the service |\n|---|---|---:|---:|\n";
    size_t shown = 0;
    for (const ThreadCost& t : s.threads) {
      if (++shown > 10) break;
      std::string tids;
      for (size_t i = 0; i < t.tids.size() && i < 4; ++i) {
        tids += (i ? "," : "") + std::to_string(t.tids[i]);
      }
      if (t.tids.size() > 4) tids += ",… (" + std::to_string(t.tids.size()) + ")";
      m += "| " + MdCell(t.name) + " | " + tids + " | " + std::to_string(t.samples) + " | " +
           Pct(t.cpu_ns, s.cpu_ns) + "% |\n";
    }
    if (s.threads.size() > 10) {
      m += "| (" + std::to_string(s.threads.size() - 10) + " more) | | | |\n";
    }
    m += "\n| top self | self % (±95%) | cum % |\n|---|---:|---:|\n";
    for (const FunctionCost& f : s.top_self) {
      m += "| `" + MdCell(f.name) + "` | " + Pct(f.self_ns, s.cpu_ns) + " ± " +
           Fixed(SharePointsError95(f.self_samples, s.samples), 1) + " | " +
           Pct(f.cum_ns, s.cpu_ns) + " |\n";
    }
    m += "\n| top cumulative | cum % (±95%) | self % |\n|---|---:|---:|\n";
    for (const FunctionCost& f : s.top_cum) {
      m += "| `" + MdCell(f.name) + "` | " + Pct(f.cum_ns, s.cpu_ns) + " ± " +
           Fixed(SharePointsError95(f.cum_samples, s.samples), 1) + " | " +
           Pct(f.self_ns, s.cpu_ns) + " |\n";
    }
  }
  m += std::string("\n") + kCpuSectionEnd + "\n";
  return m;
}

std::string ReplaceSection(const std::string& document, const std::string& begin,
                           const std::string& end, const std::string& section) {
  size_t b = document.find(begin);
  size_t e = b == std::string::npos ? std::string::npos : document.find(end, b);
  if (b == std::string::npos || e == std::string::npos) {
    if (document.empty()) return "# Performance baseline\n\n" + section;
    std::string out = document;
    if (out.back() != '\n') out += '\n';
    return out + "\n" + section;
  }
  size_t after = e + end.size();
  if (after < document.size() && document[after] == '\n') ++after;
  return document.substr(0, b) + section + document.substr(after);
}

}  // namespace fs::profile
