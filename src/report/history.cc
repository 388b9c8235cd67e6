#include "src/report/history.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/json.h"
#include "src/base/output.h"
#include "src/base/stats.h"
#include "src/report/flamegraph.h"

namespace fs::profile {

Status WriteCompareOutcome(const std::string& run_dir, const CompareOutcome& c) {
  Json compare = Json::MakeObject();
  compare["baseline"] = c.baseline;
  compare["exit_code"] = c.exit_code;
  compare["verdict"] = c.verdict;
  Json doc = Json::MakeObject();
  doc["compare"] = compare;
  return WriteOutput(run_dir + "/" + kScheduleRecord, doc.Dump(2) + "\n");
}

std::vector<HistoryRun> LoadHistory(const std::string& out,
                                    const std::vector<std::string>& folders) {
  std::vector<HistoryRun> runs;
  for (const auto& folder : folders) {
    HistoryRun r;
    r.folder = folder;
    auto m = regression::LoadRunManifest(out + "/" + folder);
    r.loaded = m.ok();
    if (m.ok()) r.manifest = std::move(m).value();
    if (!m.ok()) r.load_error = m.status().message();
    auto rec = ReadFile(out + "/" + folder + "/" + kScheduleRecord);
    auto j = rec.ok() ? Json::Parse(*rec) : StatusOr<Json>(rec.status());
    if (j.ok() && j->Get("compare").is_object()) {
      const Json& c = j->Get("compare");
      r.has_compare = true;
      r.compare = {c.Get("baseline").AsString(), static_cast<int>(c.Get("exit_code").AsInt(-1)),
                   c.Get("verdict").AsString()};
    }
    runs.push_back(std::move(r));
  }
  return runs;
}

namespace {

bool RunOk(const HistoryRun& r) { return r.loaded && r.manifest.status == "ok"; }

// started_at ("2026-12-02T07:00:00Z"), else the folder name (20261202T070000Z), as unix seconds.
int64_t RunTime(const HistoryRun& r) {
  struct tm tm = {};
  const std::string& s = r.manifest.started_at;
  if (!(r.loaded && strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))) {
    tm = {};
    if (!strptime(r.folder.c_str(), "%Y%m%dT%H%M%S", &tm)) return 0;
  }
  return timegm(&tm);
}

std::string TimeText(int64_t t) { return FormatTime(t, "%Y-%m-%d %H:%M"); }

// The metrics the page charts: CPU, memory, FPS, model latency, edge p99s.
bool Charted(const std::string& name) {
  auto ends = [&name](const std::string& suffix) {
    return name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (name == "model/total_ms") return true;
  if (name.rfind("edge/", 0) == 0) return ends("/p99_ms");
  return ends("/cpu_cores") || ends("/rss_mb") || ends("/fps");
}

struct Series {
  std::string name, unit;
};

// group -> its charted metrics, in name order.
std::map<std::string, std::vector<Series>> ChartedSeries(const std::vector<HistoryRun>& runs) {
  std::map<std::string, std::map<std::string, std::string>> by_group;  // group -> name -> unit
  for (const auto& r : runs) {
    for (const auto& m : r.manifest.metrics) {
      if (!Charted(m.name)) continue;
      std::string group = m.group.empty() ? m.name.substr(0, m.name.find('/')) : m.group;
      by_group[group][m.name] = m.unit;
    }
  }
  std::map<std::string, std::vector<Series>> out;
  for (const auto& [group, names] : by_group) {
    for (const auto& [name, unit] : names) out[group].push_back({name, unit});
  }
  return out;
}

// A metric's median in one run; nullopt when the run failed or did not measure it.
std::optional<double> RunMedian(const HistoryRun& r, const std::string& name) {
  if (!RunOk(r)) return std::nullopt;
  const regression::Metric* m = r.manifest.Find(name);
  if (!m || m->values.empty()) return std::nullopt;
  double v = Median(m->values);
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

constexpr double kW = 640, kH = 170, kLeft = 70, kRight = 15, kTop = 12, kBottom = 30;

// One line chart: the metric's median per run over time. Consecutive measured runs are joined;
// a failed run or a run without the metric breaks the line, and failed runs get a red mark on
// the time axis (with the error as its tooltip).
std::string TrendChartSvg(const std::vector<HistoryRun>& runs, const Series& s) {
  std::vector<int64_t> t;
  std::vector<std::optional<double>> v;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& r : runs) {
    t.push_back(RunTime(r));
    v.push_back(RunMedian(r, s.name));
    if (v.back()) lo = std::min(lo, *v.back()), hi = std::max(hi, *v.back());
  }
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-12)
    lo -= std::max(1e-3, std::fabs(lo) * 0.1), hi += std::max(1e-3, std::fabs(hi) * 0.1);
  int64_t t0 = *std::min_element(t.begin(), t.end()), t1 = *std::max_element(t.begin(), t.end());
  double span = t1 > t0 ? static_cast<double>(t1 - t0) : 1;
  auto x = [&](int64_t ti) {
    return t1 > t0 ? kLeft + (kW - kLeft - kRight) * static_cast<double>(ti - t0) / span
                   : (kLeft + kW - kRight) / 2;
  };
  auto y = [&](double val) { return kTop + (kH - kTop - kBottom) * (hi - val) / (hi - lo); };
  std::string svg = "<svg class=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    Fixed(kW, 0) + "\" height=\"" + Fixed(kH, 0) + "\" role=\"img\"><title>" +
                    HtmlEscape(s.name) + " (" + HtmlEscape(s.unit) + "), median per run</title>";
  svg += "<line x1=\"" + Fixed(kLeft, 0) + "\" y1=\"" + Fixed(kH - kBottom, 0) + "\" x2=\"" +
         Fixed(kW - kRight, 0) + "\" y2=\"" + Fixed(kH - kBottom, 0) + "\" stroke=\"#999\"/>";
  svg += "<text x=\"2\" y=\"" + Fixed(kTop + 4, 0) + "\">" + Fixed(hi, 3) +
         "</text><text x=\"2\" y=\"" + Fixed(kH - kBottom, 0) + "\">" + Fixed(lo, 3) + "</text>";
  svg += "<text x=\"" + Fixed(kLeft, 0) + "\" y=\"" + Fixed(kH - 8, 0) + "\">" + TimeText(t0) +
         "</text><text x=\"" + Fixed(kW - kRight, 0) + "\" y=\"" + Fixed(kH - 8, 0) +
         "\" text-anchor=\"end\">" + TimeText(t1) + "</text>";
  std::string points;
  auto flush = [&svg, &points] {
    if (!points.empty())
      svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" points=\"" + points + "\"/>";
    points.clear();
  };
  for (size_t i = 0; i < runs.size(); ++i) {
    if (!v[i]) {
      flush();
      if (!RunOk(runs[i])) {
        std::string why = runs[i].loaded ? runs[i].manifest.error : runs[i].load_error;
        svg += "<line class=\"failed\" x1=\"" + Fixed(x(t[i]), 1) + "\" y1=\"" + Fixed(kTop, 0) +
               "\" x2=\"" + Fixed(x(t[i]), 1) + "\" y2=\"" + Fixed(kH - kBottom, 0) +
               "\" stroke=\"#d62728\" stroke-dasharray=\"3,3\"><title>" +
               HtmlEscape(runs[i].folder) + ": failed: " + HtmlEscape(why) + "</title></line>";
      }
      continue;
    }
    std::string px = Fixed(x(t[i]), 1), py = Fixed(y(*v[i]), 1);
    points += (points.empty() ? "" : " ") + px + "," + py;
    svg += "<circle cx=\"" + px + "\" cy=\"" + py + "\" r=\"3\" fill=\"#1f77b4\"><title>" +
           HtmlEscape(runs[i].folder) + ": " + Fixed(*v[i], 4) + " " + HtmlEscape(s.unit) +
           "</title></circle>";
  }
  flush();
  return svg + "</svg>";
}

std::string StatusCell(const HistoryRun& r) {
  if (!r.loaded) return "<td class=\"bad\">corrupt: " + HtmlEscape(r.load_error) + "</td>";
  const auto& m = r.manifest;
  std::string cls = m.status == "ok" ? "ok" : "bad";
  std::string text = HtmlEscape(m.status);
  if (!m.error.empty()) text += ": " + HtmlEscape(m.error);
  return "<td class=\"" + cls + "\"><pre>" + text + "</pre></td>";
}

std::string RunRow(const HistoryRun& r) {
  const auto& m = r.manifest;
  std::string row = "<tr><td>" +
                    HtmlEscape(r.loaded && !m.started_at.empty() ? m.started_at : r.folder) +
                    "</td>" + StatusCell(r);
  row += "<td>" + HtmlEscape(m.label) + "</td><td>" +
         (r.loaded ? Fixed(m.duration_s, 0) + " s" : "") + "</td><td>" +
         (r.loaded ? std::to_string(m.exit_code) : "") + "</td><td>";
  if (r.has_compare) {
    row += HtmlEscape(r.compare.verdict) + " (vs " + HtmlEscape(r.compare.baseline) + ", exit " +
           std::to_string(r.compare.exit_code) + ")";
  }
  row += "</td><td>";
  if (r.loaded && !m.report.empty()) {
    std::string href = r.folder + "/" + m.report;
    row += "<a href=\"" + HtmlEscape(href) + "\">report</a>";
  }
  return row + "</td></tr>\n";
}

}  // namespace

std::string RenderHistoryHtml(const std::vector<HistoryRun>& runs) {
  size_t failed =
      std::count_if(runs.begin(), runs.end(), [](const HistoryRun& r) { return !RunOk(r); });
  std::string html =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>framescope history</title>"
      "<style>body{font:14px sans-serif;margin:1.5em}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
      "td:first-child{white-space:nowrap}td "
      "pre{margin:0;white-space:pre-wrap;max-width:50em}.bad{color:#b00}.ok{color:#070}"
      "svg.trend{display:block;margin:4px 0 14px}svg text{font:11px sans-serif}</style>"
      "</head><body>\n<h1>framescope: profiling history</h1>\n<p>" +
      std::to_string(runs.size()) + " run(s), " + std::to_string(failed) +
      " failed. Newest first.</p>\n<table><tr><th>started (UTC)</th><th>status</th><th>label</th>"
      "<th>duration</th><th>exit</th><th>compare</th><th>report</th></tr>\n";
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) html += RunRow(*it);
  html +=
      "</table>\n<h2>Trends</h2>\n<p>Median of each metric per run; a red dashed line is a "
      "failed run (no value, not a zero), a break in the line a run that did not measure it.</p>\n";
  auto series = ChartedSeries(runs);
  if (series.empty())
    html += "<p>No ok run has CPU, memory, FPS, latency or p99 metrics yet.</p>\n";
  for (const auto& [group, list] : series) {
    html += "<h3>" + HtmlEscape(group) + "</h3>\n";
    for (const auto& s : list) {
      html += "<h4>" + HtmlEscape(s.name) + " (" + HtmlEscape(s.unit) + ")</h4>\n" +
              TrendChartSvg(runs, s) + "\n";
    }
  }
  return html + "</body></html>\n";
}

Status WriteHistoryIndex(const std::string& out, const std::vector<HistoryRun>& runs) {
  return WriteOutput(out + "/index.html", RenderHistoryHtml(runs));
}

}  // namespace fs::profile
