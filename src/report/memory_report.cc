#include "src/report/memory_report.h"

#include <algorithm>
#include <cmath>

#include "src/report/cpu_report.h"
#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

constexpr double kChartWidth = 360, kChartHeight = 80;

std::string Mb(uint64_t bytes) { return Fixed(static_cast<double>(bytes) / 1e6, 1); }

std::string Signed(double v, int decimals) { return (v >= 0 ? "+" : "") + Fixed(v, decimals); }

// "45 s", "12.5 min", "3.2 h": the unit a reader would pick.
std::string DurationText(double s) {
  if (s >= 7200) return Fixed(s / 3600, 1) + " h";
  if (s >= 120) return Fixed(s / 60, 1) + " min";
  return Fixed(s, 0) + " s";
}

}  // namespace

std::string RssAt(const ServiceMemory& s, bool at_end) {
  if (s.samples.empty()) return "n/a";
  return Mb((at_end ? s.samples.back() : s.samples.front()).bytes.rss);
}

Json ServiceMemoryJson(const ServiceMemory& s) {
  Json j = LeakRateJson(s.name, s.samples, s.rate);
  j["rss_start_bytes"] = s.samples.empty() ? Json() : Json(s.samples.front().bytes.rss);
  j["log"] = s.log_file;
  j["earlier_samples"] = static_cast<uint64_t>(s.earlier_samples);
  if (!s.heap.is_null()) j["heap"] = s.heap;
  return j;
}

Json MemoryReportToJson(const MemoryReport& r) {
  Json j = Json::MakeObject();
  j["limit_mb_per_h"] = r.limit_mb_per_h;
  j["interval_s"] = r.interval_s;
  Json processes = Json::MakeArray();
  for (const ServiceMemory& s : r.services) processes.Push(ServiceMemoryJson(s));
  j["processes"] = processes;
  return j;
}

std::string SlopeText(const LeakRate& r) {
  if (r.verdict == LeakVerdict::kNotMeasurable || !std::isfinite(r.slope_mb_per_h)) {
    return "not measurable (" + (r.reason.empty() ? std::string("no fit") : r.reason) + ")";
  }
  return Signed(r.slope_mb_per_h, 2) + " MB/h (95% CI " + Fixed(r.ci95_lo, 2) + " .. " +
         Fixed(r.ci95_hi, 2) + ")";
}

std::string VerdictText(const LeakRate& r) {
  std::string v = LeakVerdictName(r.verdict);
  if (r.verdict != LeakVerdict::kInconclusive) return v;
  if (!std::isfinite(r.extra_time_s))
    return v + ": the slope sits on the limit; no run would decide";
  return v + ": about " + DurationText(r.extra_time_s) +
         " more would likely decide it (if the slope holds)";
}

std::string RssChartSvg(const ServiceMemory& s) {
  std::string h = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Fixed(kChartWidth, 0) +
                  "\" height=\"" + Fixed(kChartHeight + 20, 0) + "\" role=\"img\"><title>" +
                  HtmlEscape(s.name) + " RSS over time</title>";
  if (s.samples.empty()) return h + "<text x=\"4\" y=\"20\">no samples</text></svg>";
  auto [lo, hi] = std::minmax_element(
      s.samples.begin(), s.samples.end(),
      [](const MemorySample& a, const MemorySample& b) { return a.bytes.rss < b.bytes.rss; });
  const double min = static_cast<double>(lo->bytes.rss), max = static_cast<double>(hi->bytes.rss);
  const double t0 = s.samples.front().time_s, span = s.samples.back().time_s - t0;
  h += "<polyline fill=\"none\" stroke=\"#36c\" stroke-width=\"1.5\" points=\"";
  for (const MemorySample& m : s.samples) {
    // A flat series (or one sample) is drawn mid-height; time 0 at the left edge.
    double x = span > 0 ? (m.time_s - t0) / span * kChartWidth : 0;
    double y = max > min ? (max - static_cast<double>(m.bytes.rss)) / (max - min) * kChartHeight
                         : kChartHeight / 2;
    h += Fixed(x, 1) + "," + Fixed(y + 2, 1) + " ";
  }
  h.back() = '"';
  h += "/><text x=\"4\" y=\"" + Fixed(kChartHeight + 16, 0) + "\" font-size=\"11\">RSS " +
       Mb(lo->bytes.rss) + " .. " + Mb(hi->bytes.rss) + " MB over " + DurationText(span) +
       "</text></svg>";
  return h;
}

namespace {

// "+12.3 (95% CI -2.0 .. 20.1)" MB/h from a rate and its [lo, hi]; "n/a" for null (not
// measurable).
std::string RateCell(const Json& v, const Json& ci) {
  if (!v.is_number()) return "n/a";
  std::string text = Signed(v.AsDouble(), 1);
  if (ci.is_array() && ci.size() == 2) {
    text += " (95% CI " + Fixed(ci.AsArray()[0].AsDouble(), 1) + " .. " +
            Fixed(ci.AsArray()[1].AsDouble(), 1) + ")";
  }
  return text;
}

// The heap-profiled services' fastest-growing allocation sites, in HTML.
std::string HeapSitesHtml(const MemoryReport& r) {
  std::string h;
  for (const ServiceMemory& s : r.services) {
    if (s.heap.is_null()) continue;
    h += "<h3>Heap of " + HtmlEscape(s.name) + "</h3>\n";
    if (!s.heap.Get("heap_sampled").AsBool()) {
      h += "<p>Not sampled: " + HtmlEscape(s.heap.Get("heap_reason").AsString()) + "</p>\n";
      continue;
    }
    h += "<p>Sampled allocations (a Poisson process over bytes, mean " +
         Fixed(s.heap.Get("sample_interval_bytes").AsDouble() / 1024, 0) +
         " KiB; estimates weighted by 1/probability). In use grew " +
         RateCell(s.heap.Get("heap_growth_mb_per_h"), s.heap.Get("heap_growth_ci95")) +
         " MB/h. <a href=\"" + HtmlEscape(s.heap.Get("heap_flamegraph").AsString()) +
         "\">in-use flame graph</a>, <a href=\"" +
         HtmlEscape(s.heap.Get("heap_profile").AsString()) + "\">pprof heap profile</a>";
    if (s.heap.Get("growth_flamegraph").is_string()) {
      h += ", <a href=\"" + HtmlEscape(s.heap.Get("growth_flamegraph").AsString()) +
           "\">growth flame graph</a>";
    }
    h += ".</p>\n<table class=\"heap-sites\"><tr><th>site</th><th>growth MB/h</th><th>in use "
         "MB</th><th>allocated MB</th></tr>\n";
    size_t shown = 0;
    for (const Json& site : s.heap.Get("sites").AsArray()) {
      if (shown++ == 10) break;
      h += "<tr><td>" + HtmlEscape(site.Get("function").AsString()) + "</td><td class=\"n\">" +
           RateCell(site.Get("growth_mb_per_h"), site.Get("ci95")) + "</td><td class=\"n\">" +
           Fixed(site.Get("inuse_bytes").AsDouble() / 1e6, 2) + "</td><td class=\"n\">" +
           Fixed(site.Get("alloc_bytes").AsDouble() / 1e6, 1) + "</td></tr>\n";
    }
    h += "</table>\n";
  }
  return h;
}

// The same, as Markdown for the baseline document.
std::string HeapSitesMarkdown(const MemoryReport& r) {
  std::string m;
  for (const ServiceMemory& s : r.services) {
    if (s.heap.is_null() || !s.heap.Get("heap_sampled").AsBool()) continue;
    m += "\nHeap of " + MdCell(s.name) + " (sampled every " +
         Fixed(s.heap.Get("sample_interval_bytes").AsDouble() / 1024, 0) + " KiB): in use grew " +
         RateCell(s.heap.Get("heap_growth_mb_per_h"), s.heap.Get("heap_growth_ci95")) +
         " MB/h; profile `" + s.heap.Get("heap_profile").AsString() + "`.\n\n";
    m += "| site | growth MB/h | in use MB |\n|---|---:|---:|\n";
    size_t shown = 0;
    for (const Json& site : s.heap.Get("sites").AsArray()) {
      if (shown++ == 5) break;
      m += "| " + MdCell(site.Get("function").AsString(), 120) + " | " +
           RateCell(site.Get("growth_mb_per_h"), site.Get("ci95")) + " | " +
           Fixed(site.Get("inuse_bytes").AsDouble() / 1e6, 2) + " |\n";
    }
  }
  return m;
}

}  // namespace

std::string RenderMemoryHtml(const MemoryReport& r) {
  std::string h =
      "<h2 id=\"memory\">Memory</h2>\n<p>RSS of each service's process tree from "
      "/proc/PID/smaps_rollup every " +
      Fixed(r.interval_s, 1) +
      " s over the recording window (MB = 10<sup>6</sup> bytes). Leak rate: Theil&ndash;Sen "
      "slope of RSS after a 10% warm-up, with Sen's 95% interval; verdict against " +
      Fixed(r.limit_mb_per_h, 1) +
      " MB/h. A window this short rarely decides it: the verdict then says how much longer a "
      "run would (<code>framescope memory --duration 24h</code>). Series and analysis: "
      "<a href=\"memory/analysis.json\">memory/analysis.json</a>.</p>\n"
      "<table id=\"memory-services\"><tr><th>service</th><th>RSS start MB</th><th>RSS end "
      "MB</th><th>slope MB/h (95% CI)</th><th>verdict</th><th>samples</th><th>RSS over "
      "time</th></tr>\n";
  for (const ServiceMemory& s : r.services) {
    h += "<tr><td>" + HtmlEscape(s.name) + "</td><td class=\"n\">" + RssAt(s, false) +
         "</td><td class=\"n\">" + RssAt(s, true) + "</td><td>" + HtmlEscape(SlopeText(s.rate)) +
         "</td><td>" + HtmlEscape(VerdictText(s.rate)) + "</td><td class=\"n\">" +
         std::to_string(s.samples.size()) +
         (s.earlier_samples > 0 ? " (+" + std::to_string(s.earlier_samples) + " before a restart)"
                                : std::string()) +
         " <a href=\"" + HtmlEscape(s.log_file) + "\">log</a></td><td>" + RssChartSvg(s) +
         "</td></tr>\n";
  }
  return h + "</table>\n" + HeapSitesHtml(r);
}

std::string RenderBaselineMemorySection(const MemoryReport& r) {
  std::string m = std::string(kMemorySectionBegin) + "\n## Memory\n\n";
  m +=
      "RSS of each service's process tree (`/proc/PID/smaps_rollup`, summed over the tree) every " +
      Fixed(r.interval_s, 1) +
      " s while `framescope profile` recorded (MB = 10^6 bytes). Leak rate: Theil–Sen slope "
      "after a 10% warm-up with Sen's 95% interval, verdict against " +
      Fixed(r.limit_mb_per_h, 1) +
      " MB/h; a profile window rarely decides it, `framescope memory --duration 24h` does.\n\n";
  m += "| service | RSS start MB | RSS end MB | slope MB/h (95% CI) | verdict | samples |\n";
  m += "|---|---:|---:|---|---|---:|\n";
  for (const ServiceMemory& s : r.services) {
    m += "| " + MdCell(s.name) + " | " + RssAt(s, false) + " | " + RssAt(s, true) + " | " +
         MdCell(SlopeText(s.rate), 200) + " | " + MdCell(VerdictText(s.rate), 200) + " | " +
         std::to_string(s.samples.size()) + " |\n";
  }
  m += HeapSitesMarkdown(r);
  m += std::string("\n") + kMemorySectionEnd + "\n";
  return m;
}

}  // namespace fs::profile
