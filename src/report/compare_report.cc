#include "src/report/compare_report.h"

#include <cmath>
#include <cstdio>

#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

using regression::Comparison;
using regression::FunctionResult;
using regression::Judgement;
using regression::MetricResult;
using regression::Side;

std::string Printf(const char* fmt, double v) {
  char buf[64];
  snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string Value(double v) { return Printf("%.4g", v); }

std::string Interval(const Judgement& j) {
  return "[" + FormatChange(j.change.lo) + ", " + FormatChange(j.change.hi) + "]";
}

std::string PValue(double p) { return p < 0.0001 ? "<0.0001" : Printf("%.4f", p); }

std::string Counts(const Judgement& j) {
  return std::to_string(j.n_baseline) + "/" + std::to_string(j.n_current);
}

// Pads `s` to `width` columns (the names are ASCII, or as good as).
std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

std::string SideLine(const char* what, const Side& s) {
  std::string line = std::string(what) + ": " + s.spec + " (";
  if (s.profile_set) {
    size_t n = 0;
    for (const auto& [g, files] : s.profile_files) n += files.size();
    line += std::to_string(n) + " profiles)";
  } else {
    line += std::to_string(s.runs.size()) + " run(s))";
  }
  return line + "\n";
}

std::string MetricRows(const Comparison& c) {
  std::string out = Pad("metric", 36) + Pad("baseline", 11) + Pad("current", 11) +
                    Pad("change [95% CI]", 34) + Pad("p", 9) + Pad("n", 7) + "verdict\n";
  for (const MetricResult& m : c.metrics) {
    const Judgement& j = m.judgement;
    out += Pad(m.metric.name, 36) + Pad(Value(j.baseline_median), 11) +
           Pad(Value(j.current_median), 11) +
           Pad(FormatChange(j.change.change) + " " + Interval(j), 34) + Pad(PValue(j.p), 9) +
           Pad(Counts(j), 7) + j.verdict +
           (j.verdict == regression::kInconclusive ? " (" + j.reason + ")" : "") + "\n";
  }
  for (const auto& [name, side] : c.missing) {
    out += Pad(name, 36) + "missing in the " + side + " (not compared)\n";
  }
  return out;
}

std::string FunctionRows(const std::string& group, const std::vector<FunctionResult>& rows,
                         size_t max_rows) {
  // The shares say where the CPU went; the change, p and verdict are of the value tested per
  // profile (self CPU seconds of a profile set; for runs, self CPU seconds per
  // second of the profile's window).
  const std::string tested = rows.empty() ? "" : rows[0].metric;
  std::string out = "\n" + group + ": functions by change of their self share of " + group +
                    "'s CPU; change, p (Holm-adjusted) and verdict of their " + tested + "\n" +
                    Pad("function", 40) + Pad("baseline", 10) + Pad("current", 10) +
                    Pad("points", 9) + Pad("change", 10) + Pad("p", 9) + Pad("n", 7) + "verdict\n";
  for (size_t i = 0; i < rows.size() && i < max_rows; ++i) {
    const FunctionResult& r = rows[i];
    out += Pad(r.function, 40) + Pad(Printf("%.2f%%", r.baseline_share_pct), 10) +
           Pad(Printf("%.2f%%", r.current_share_pct), 10) +
           Pad(Printf("%+.2f", r.delta_points), 9) +
           Pad(FormatChange(r.judgement.change.change), 10) + Pad(PValue(r.judgement.p), 9) +
           Pad(Counts(r.judgement), 7) + r.judgement.verdict + "\n";
  }
  return out;
}

}  // namespace

std::string FormatChange(double change) {
  if (std::isinf(change)) return change > 0 ? "+inf" : "-inf";
  return Printf("%+.1f %%", change * 100);
}

std::string RenderCompareText(const Side& baseline, const Side& current, const Comparison& c,
                              size_t max_functions) {
  std::string out = SideLine("baseline", baseline) + SideLine("current", current);
  for (const std::string& w : c.warnings) out += "warning: " + w + "\n";
  out += "\n" + MetricRows(c);
  for (const auto& [group, rows] : c.functions) out += FunctionRows(group, rows, max_functions);
  out += "\n";
  for (const auto& [group, v] : c.groups) out += "group " + group + ": " + v + "\n";
  std::string gone;
  for (const auto& [name, side] : c.missing) {
    if (side == "current") gone += (gone.empty() ? "" : ", ") + name;
  }
  if (!gone.empty()) out += "not measured in the current side: " + gone + "\n";
  out += "verdict: " + c.verdict + " (threshold " + FormatChange(c.options.threshold) + ", alpha " +
         Printf("%g", c.options.alpha) + ")\n";
  return out;
}

namespace {

std::string Cell(const std::string& s, const std::string& cls = "") {
  return (cls.empty() ? "<td>" : "<td class=\"" + cls + "\">") + HtmlEscape(s) + "</td>";
}

std::string VerdictClass(const std::string& v) {
  if (v == regression::kRegression) return "bad";
  if (v == regression::kImprovement) return "good";
  if (v == regression::kInconclusive) return "unsure";
  return "";
}

std::string JudgementCells(const Judgement& j) {
  return Cell(FormatChange(j.change.change) + " " + Interval(j)) + Cell(PValue(j.p)) +
         Cell(j.test.method) + Cell(Counts(j)) + Cell(j.verdict, VerdictClass(j.verdict)) +
         Cell(j.reason);
}

std::string MetricsTable(const Comparison& c) {
  std::string h =
      "<h2>Metrics</h2>\n<table><tr><th>metric</th><th>unit</th><th>better</th>"
      "<th>baseline median</th><th>current median</th><th>change [95% CI]</th><th>p</th>"
      "<th>test</th><th>n</th><th>verdict</th><th>why</th></tr>\n";
  for (const MetricResult& m : c.metrics) {
    h += "<tr>" + Cell(m.metric.name) + Cell(m.metric.unit) +
         Cell(m.metric.higher_is_better ? "higher" : "lower") +
         Cell(Value(m.judgement.baseline_median)) + Cell(Value(m.judgement.current_median)) +
         JudgementCells(m.judgement) + "</tr>\n";
  }
  for (const auto& [name, side] : c.missing) {
    h += "<tr>" + Cell(name) + "<td colspan=\"10\">missing in the " + side +
         " (not compared)</td></tr>\n";
  }
  return h + "</table>\n";
}

std::string FunctionsTable(const std::string& group, const std::vector<FunctionResult>& rows,
                           const std::map<std::string, std::string>& links) {
  std::string h = "<h2>" + HtmlEscape(group) + ": functions</h2>\n";
  if (auto it = links.find(group); it != links.end()) {
    h += "<p><a href=\"" + HtmlEscape(it->second) + "\">differential flame graph of " +
         HtmlEscape(group) + "</a> (red: more of the CPU, blue: less)</p>\n";
  }
  h += "<table><tr><th>function</th><th>baseline self share</th><th>current self share</th>"
       "<th>points</th><th>value tested</th><th>change [95% CI]</th><th>p (Holm)</th>"
       "<th>test</th><th>n</th><th>verdict</th><th>why</th></tr>\n";
  for (const FunctionResult& r : rows) {
    h += "<tr>" + Cell(r.function) + Cell(Printf("%.2f %%", r.baseline_share_pct)) +
         Cell(Printf("%.2f %%", r.current_share_pct)) + Cell(Printf("%+.2f", r.delta_points)) +
         Cell(r.metric) + JudgementCells(r.judgement) + "</tr>\n";
  }
  return h + "</table>\n";
}

}  // namespace

std::string RenderCompareHtml(const Side& baseline, const Side& current, const Comparison& c,
                              const std::map<std::string, std::string>& diff_links) {
  std::string h =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>framescope compare</title>\n"
      "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}.bad{background:#fbb}"
      ".good{background:#bfb}.unsure{background:#ffd}</style></head><body>\n"
      "<h1>Verdict: <span class=\"" +
      VerdictClass(c.verdict) + "\">" + HtmlEscape(c.verdict) + "</span></h1>\n<p>" +
      HtmlEscape(SideLine("Baseline", baseline)) + "<br>" +
      HtmlEscape(SideLine("Current", current)) + "<br>Threshold " +
      HtmlEscape(FormatChange(c.options.threshold)) + ", alpha " + Printf("%g", c.options.alpha) +
      ". Change: " + HtmlEscape(regression::kChangeMethod) + ".</p>\n";
  for (const std::string& w : c.warnings)
    h += "<p class=\"unsure\">Warning: " + HtmlEscape(w) + "</p>\n";
  h += "<h2>Groups</h2>\n<table><tr><th>group</th><th>verdict</th></tr>\n";
  for (const auto& [group, v] : c.groups) {
    h += "<tr>" + Cell(group) + Cell(v, VerdictClass(v)) + "</tr>\n";
  }
  h += "</table>\n" + MetricsTable(c);
  for (const auto& [group, rows] : c.functions) h += FunctionsTable(group, rows, diff_links);
  return h + "</body></html>\n";
}

}  // namespace fs::profile
