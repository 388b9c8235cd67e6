#include "src/report/checklist.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "src/base/stats.h"
#include "src/report/cpu_report.h"
#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

using regression::ChecklistRow;
using regression::Metric;

// Three significant digits or so: per-window CPU of an idle service is 0.004 cores, a layer
// 12.5 ms, a p99 120 ms.
std::string Num(double v) {
  const double a = std::fabs(v);
  return Fixed(v, a >= 100 ? 1 : a >= 1 ? 2 : 3);
}

size_t RankOf(const std::string& id) {
  const auto* end = std::end(kChecklistIds);
  return static_cast<size_t>(std::find(std::begin(kChecklistIds), end, id) -
                             std::begin(kChecklistIds));
}

// The value cell: a row that could not be measured shows why, never a number.
std::string ValueText(const ChecklistRow& r) {
  if (r.verdict == regression::kNotMeasurable || r.value.empty()) {
    return r.reason.empty() ? "not measured" : "not measured: " + r.reason;
  }
  return r.value;
}

// The reason beside a met / not met verdict (a not measurable one says it in the value cell).
std::string VerdictText(const ChecklistRow& r) {
  if (r.verdict == regression::kNotMeasurable || r.reason.empty()) return r.verdict;
  return r.verdict + " (" + r.reason + ")";
}

std::string VerdictClass(const std::string& verdict) {
  return verdict == regression::kMet ? "met" : verdict == regression::kNotMet ? "bad" : "nm";
}

// Metrics with more than one value: the ones whose spread a reader should see.
std::vector<const Metric*> Repeated(const std::vector<Metric>& metrics) {
  std::vector<const Metric*> out;
  for (const Metric& m : metrics) {
    if (m.values.size() > 1) out.push_back(&m);
  }
  return out;
}

}  // namespace

std::vector<ChecklistRow> OrderedRows(std::vector<ChecklistRow> rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const ChecklistRow& a, const ChecklistRow& b) {
    return RankOf(a.id) < RankOf(b.id);
  });
  return rows;
}

std::string SpreadText(const Metric& m) {
  if (m.values.empty()) return "";
  if (m.values.size() == 1) return Num(m.values[0]);
  const auto [lo, hi] = std::minmax_element(m.values.begin(), m.values.end());
  return Num(Median(m.values)) + " (median of " + std::to_string(m.values.size()) + " windows, " +
         Num(*lo) + " .. " + Num(*hi) + ")";
}

std::string RenderChecklistHtml(const std::vector<ChecklistRow>& rows,
                                const std::vector<Finding>& findings,
                                const std::vector<Metric>& metrics) {
  std::string h =
      "<section id=\"checklist\"><h2>Checklist</h2>\n"
      "<style>.met{color:#070}.nm{color:#666}</style>\n"
      "<table id=\"checklist-table\"><tr><th>item</th><th>goal</th><th>measured</th>"
      "<th>counter</th><th>verdict</th></tr>\n";
  for (const ChecklistRow& r : OrderedRows(rows)) {
    h += "<tr><td>" + HtmlEscape(r.id + " " + r.item) + "</td><td>" + HtmlEscape(r.goal) +
         "</td><td>" + HtmlEscape(ValueText(r)) + "</td><td>" + HtmlEscape(r.counter) +
         "</td><td class=\"" + VerdictClass(r.verdict) + "\">" + HtmlEscape(VerdictText(r)) +
         "</td></tr>\n";
  }
  h += "</table>\n<h3>Largest findings</h3>\n";
  if (findings.empty()) h += "<p>Nothing measured to rank.</p>\n";
  if (!findings.empty()) {
    h += "<table id=\"findings\"><tr><th>what</th><th></th><th>value</th><th>counter</th></tr>\n";
    for (const Finding& f : findings) {
      h += "<tr><td>" + HtmlEscape(f.kind) + "</td><td>" + HtmlEscape(f.what) +
           "</td><td class=\"n\">" + Num(f.value) + " " + HtmlEscape(f.unit) + "</td><td>" +
           HtmlEscape(f.counter) + "</td></tr>\n";
    }
    h += "</table>\n";
  }
  if (const auto repeated = Repeated(metrics); !repeated.empty()) {
    h += "<h3>Spread over the windows</h3>\n<p>Each window of the recording (--repeat) gives "
         "one value: the median and the range show how much a single number can be "
         "trusted.</p>\n<table id=\"spread\"><tr><th>metric</th><th>median (range)</th>"
         "<th>counter</th></tr>\n";
    for (const Metric* m : repeated) {
      h += "<tr><td>" + HtmlEscape(m->name) + "</td><td>" + HtmlEscape(SpreadText(*m)) + " " +
           HtmlEscape(m->unit) + "</td><td>" + HtmlEscape(m->counter) + "</td></tr>\n";
    }
    h += "</table>\n";
  }
  return h + "</section>\n";
}

std::string RenderBaselineChecklistSection(const std::vector<ChecklistRow>& rows,
                                           const std::vector<Finding>& findings,
                                           const std::vector<Metric>& metrics) {
  std::string md = std::string(kChecklistSectionBegin) +
                   "\n## Checklist\n\n| item | goal | measured | counter | verdict |\n"
                   "|---|---|---|---|---|\n";
  for (const ChecklistRow& r : OrderedRows(rows)) {
    md += "| " + MdCell(r.id + " " + r.item) + " | " + MdCell(r.goal) + " | " +
          MdCell(ValueText(r), 200) + " | " + MdCell(r.counter) + " | " +
          MdCell(VerdictText(r), 200) + " |\n";
  }
  md += "\n### Largest findings\n\n";
  if (findings.empty()) md += "Nothing measured to rank.\n";
  for (const Finding& f : findings) {
    md += "- " + f.kind + ": " + f.what + " — " + Num(f.value) + " " + f.unit + " (" + f.counter +
          ")\n";
  }
  if (const auto repeated = Repeated(metrics); !repeated.empty()) {
    md += "\n### Spread over the windows\n\n| metric | median (range) | counter |\n|---|---|---|\n";
    for (const Metric* m : repeated) {
      md += "| " + MdCell(m->name) + " | " + MdCell(SpreadText(*m) + " " + m->unit) + " | " +
            MdCell(m->counter) + " |\n";
    }
  }
  return md + "\n" + kChecklistSectionEnd + "\n";
}

}  // namespace fs::profile
