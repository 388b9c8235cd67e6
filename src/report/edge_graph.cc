#include "src/report/edge_graph.h"

#include <cmath>
#include <map>
#include <utility>

#include "src/base/stats.h"
#include "src/report/cpu_report.h"
#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

constexpr double kWidth = 840, kHeight = 420, kRadius = 34;

struct Point {
  double x, y;
};

// The reference system's services where its data flows: the pipeline along the top, the stores
// in the middle, the api and its clients on the right.
const std::map<std::string, Point>& KnownPlaces() {
  static const std::map<std::string, Point> kPlaces = {
      {"loadgen", {60, 60}}, {"capture", {190, 60}},      {"detection", {330, 60}},
      {"redis", {470, 190}}, {"aggregation", {330, 310}}, {"postgres", {620, 310}},
      {"api", {620, 60}},    {"apiclient", {780, 60}},    {io::kAnyClient, {780, 190}}};
  return kPlaces;
}

// Every node: the known services always, any other service of an edge along the bottom row.
std::map<std::string, Point> Places(const io::EdgeMap& m) {
  std::map<std::string, Point> places = KnownPlaces();
  bool any_server_side = false;
  for (const io::NetEdge& e : m.edges) any_server_side |= e.server_side;
  if (!any_server_side) places.erase(io::kAnyClient);
  int others = 0;
  for (const io::NetEdge& e : m.edges) {
    for (const std::string& name : {e.source, e.target}) {
      if (places.count(name)) continue;
      // Along the bottom row; a seventh and later shift a little so none hides another.
      places[name] = {60.0 + 130.0 * (others % 6) + 20.0 * (others / 6),
                      390.0 - 20.0 * (others / 6)};
      ++others;
    }
  }
  return places;
}

struct Style {
  const char* name;
  const char* colour;
};

// The colour of an edge: where its p99 bucket lies against 5 ms.
Style StyleOf(const io::EdgeStats& s) {
  if (!s.p99) return {"idle", "#aaa"};
  if (s.p99->upper <= io::kFastSeconds) return {"ok", "#2a2"};
  if (s.p99->lower < io::kFastSeconds) return {"straddles", "#e90"};
  return {"over", "#c33"};
}

std::string Ms(double seconds) {
  return std::isinf(seconds) ? "+Inf" : Fixed(seconds * 1000, seconds < 0.01 ? 3 : 1);
}

// "1.234 ms in (1.000, 2.500] ms" or "-" when idle.
std::string QuantileText(const std::optional<BucketQuantile>& q) {
  if (!q) return "-";
  return Ms(q->value) + " ms in (" + Ms(q->lower) + ", " + Ms(q->upper) + "] ms";
}

std::string ShareText(const io::EdgeStats& s) {
  if (!s.fast_share) return "-";
  return Fixed(*s.fast_share * 100, 2) + " % (" + Fixed(s.fast_requests, 0) + "/" +
         Fixed(s.requests, 0) + ")";
}

// The arrow of an edge; its label goes to *labels, drawn after the nodes so none hides it.
std::string Arrow(const io::NetEdge& e, Point a, Point b, std::string* labels) {
  const double dx = b.x - a.x, dy = b.y - a.y, len = std::hypot(dx, dy);
  if (len < 2 * kRadius) return "";
  const double ux = dx / len, uy = dy / len;
  const Point from{a.x + ux * kRadius, a.y + uy * kRadius};
  const Point to{b.x - ux * (kRadius + 4), b.y - uy * (kRadius + 4)};
  const Style st = StyleOf(e.total);
  const std::string label =
      e.total.p99 ? "p99 " + Ms(e.total.p99->value) + " ms, " + Fixed(e.total.rate, 1) + "/s"
                  : e.total.verdict;  // idle, or "not judged" (only blocking reads)
  // The label sits beside the middle of the arrow, off the line.
  const Point mid{(from.x + to.x) / 2 - uy * 8, (from.y + to.y) / 2 + ux * 8 + 4};
  // Beside a steep arrow the text starts (or ends) at the offset point instead of centring on
  // it, so it does not run across the line.
  const std::string anchor = std::abs(uy) < 0.5 ? "middle" : (uy > 0 ? "end" : "start");
  const std::string arrow =
      "<g class=\"edge " + std::string(st.name) + "\"><title>" +
      HtmlEscape(io::EdgeName(e) + ": " + e.total.verdict + "; " + e.total.reason) +
      "</title><line x1=\"" + Fixed(from.x, 1) + "\" y1=\"" + Fixed(from.y, 1) + "\" x2=\"" +
      Fixed(to.x, 1) + "\" y2=\"" + Fixed(to.y, 1) + "\" stroke=\"" + st.colour +
      "\" stroke-width=\"2.5\"" + (e.server_side ? " stroke-dasharray=\"6 3\"" : "") +
      " marker-end=\"url(#fs-net-" + st.name + ")\"/></g>";
  *labels += "<text class=\"edge-label\" x=\"" + Fixed(mid.x, 1) + "\" y=\"" + Fixed(mid.y, 1) +
             "\" font-size=\"10\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\" "
             "text-anchor=\"" +
             anchor + "\">" + HtmlEscape(label) + "</text>";
  return arrow;
}

std::string Markers() {
  std::string h = "<defs>";
  for (const Style& s : {Style{"ok", "#2a2"}, Style{"straddles", "#e90"}, Style{"over", "#c33"},
                         Style{"idle", "#aaa"}}) {
    h += "<marker id=\"fs-net-" + std::string(s.name) +
         "\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
         "orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"" +
         s.colour + "\"/></marker>";
  }
  return h + "</defs>";
}

// One row of the HTML table.
std::string HtmlRow(const std::string& edge, const std::string& side, const io::EdgeStats& s,
                    bool op) {
  return std::string("<tr") + (op ? " class=\"op\"" : "") + "><td>" + HtmlEscape(edge) +
         "</td><td>" + side + "</td><td class=\"n\">" + Fixed(s.requests, 0) +
         "</td><td class=\"n\">" + Fixed(s.rate, 2) + "</td><td>" +
         HtmlEscape(QuantileText(s.p50)) + "</td><td>" + HtmlEscape(QuantileText(s.p99)) +
         "</td><td class=\"n\">" + HtmlEscape(ShareText(s)) + "</td><td title=\"" +
         HtmlEscape(s.reason) + "\">" + HtmlEscape(s.verdict) +
         (s.reset ? " (reset in window)" : "") + "</td></tr>\n";
}

std::string MdRow(const std::string& edge, const std::string& side, const io::EdgeStats& s) {
  return "| " + MdCell(edge) + " | " + side + " | " + Fixed(s.requests, 0) + " | " +
         Fixed(s.rate, 2) + " | " + QuantileText(s.p50) + " | " + QuantileText(s.p99) + " | " +
         ShareText(s) + " | " + s.verdict + (s.reset ? " (reset in window)" : "") + " |\n";
}

// Where the numbers come from, in a sentence.
std::string SourceText(const io::EdgeMap& m) {
  if (m.source.empty()) return "Not measurable here: " + m.unavailable;
  return "Source: " + m.source + " (" + m.source_reason + "); window " + Fixed(m.window_s, 1) +
         " s. Counters: " + io::kClientHistogram + "{source,target,op} (client side) and " +
         io::kServerHistogram +
         "{route} (the api's server side), _bucket/_count/_sum subtracted across the window. "
         "p50/p99 are interpolated inside their bucket as histogram_quantile does; the true "
         "value is only known to lie in the bucket shown. Share <= 5 ms = Δbucket{le=\"0.005\"} / "
         "Δ_count, exact.";
}

}  // namespace

std::string EdgeGraphSvg(const io::EdgeMap& m) {
  const std::map<std::string, Point> places = Places(m);
  std::string h = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Fixed(kWidth, 0) +
                  "\" height=\"" + Fixed(kHeight + 30, 0) + "\" viewBox=\"0 0 " + Fixed(kWidth, 0) +
                  " " + Fixed(kHeight + 30, 0) +
                  "\" role=\"img\" font-family=\"sans-serif\"><title>Network latency map: p99 "
                  "per edge against 5 ms</title>" +
                  Markers();
  std::string labels;
  for (const io::NetEdge& e : m.edges) {
    h += Arrow(e, places.at(e.source), places.at(e.target), &labels);
  }
  for (const auto& [name, p] : places) {
    h += "<g class=\"node\"><circle cx=\"" + Fixed(p.x, 1) + "\" cy=\"" + Fixed(p.y, 1) +
         "\" r=\"" + Fixed(kRadius, 0) + "\" fill=\"#f4f6fa\" stroke=\"#567\"/><text x=\"" +
         Fixed(p.x, 1) + "\" y=\"" + Fixed(p.y + 4, 1) +
         "\" font-size=\"11\" text-anchor=\"middle\">" + HtmlEscape(name) + "</text></g>";
  }
  h += labels;
  h += "<text x=\"4\" y=\"" + Fixed(kHeight + 22, 0) +
       "\" font-size=\"11\">p99 bucket: green at or under 5 ms, orange straddles 5 ms, red over "
       "5 ms, grey idle; dashed: the api's server side (any client)</text>";
  if (m.source.empty()) {
    h += "<text x=\"4\" y=\"" + Fixed(kHeight + 8, 0) +
         "\" font-size=\"11\">not measurable: " + HtmlEscape(m.unavailable.substr(0, 160)) +
         "</text>";
  }
  return h + "</svg>";
}

std::string EdgeGraphSvgFile(const io::EdgeMap& m) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + EdgeGraphSvg(m) + "\n";
}

std::string RenderNetHtml(const io::EdgeMap& m, const std::string& json_path) {
  std::string h = "<h2 id=\"net\">Network latency map</h2>\n<p>" + HtmlEscape(SourceText(m)) +
                  " Data: <a href=\"" + HtmlEscape(json_path) + "\">" + HtmlEscape(json_path) +
                  "</a>.</p>\n<p><b>" + HtmlEscape(io::kNetChecklistItem) + ": " +
                  HtmlEscape(m.checklist.verdict) + "</b> (" + HtmlEscape(m.checklist.reason) +
                  ")</p>\n";
  if (!m.notes.empty()) {
    h += "<ul class=\"net-notes\">";
    for (const std::string& n : m.notes) h += "<li>" + HtmlEscape(n) + "</li>";
    h += "</ul>\n";
  }
  h += EdgeGraphSvg(m) + "\n";
  h += "<table id=\"net-edges\"><tr><th>edge / op</th><th>side</th><th>requests</th><th>rate "
       "/s</th><th>p50 (bucket)</th><th>p99 (bucket)</th><th>share &lt;= 5 ms</th>"
       "<th>verdict</th></tr>\n";
  for (const io::NetEdge& e : m.edges) {
    const std::string side = e.server_side ? "server" : "client";
    h += HtmlRow(io::EdgeName(e), side, e.total, false);
    for (const io::EdgeStats& s : e.ops) h += HtmlRow("  " + s.op, side, s, true);
  }
  return h + "</table>\n";
}

std::string RenderBaselineNetSection(const io::EdgeMap& m, const std::string& json_path) {
  std::string md = std::string(kNetSectionBegin) + "\n## Network latency map\n\n" +
                   MdCell(SourceText(m), 1200) + " Data in `" + json_path + "`.\n\n" +
                   io::kNetChecklistItem + ": **" + m.checklist.verdict + "** (" +
                   MdCell(m.checklist.reason, 600) + ")\n\n";
  for (const std::string& n : m.notes) md += "- " + MdCell(n, 400) + "\n";
  if (!m.notes.empty()) md += "\n";
  if (!m.edges.empty()) {
    md +=
        "| edge | side | requests | rate /s | p50 (bucket) | p99 (bucket) | share <= 5 ms | "
        "verdict |\n|---|---|---:|---:|---|---|---:|---|\n";
    for (const io::NetEdge& e : m.edges) {
      md += MdRow(io::EdgeName(e), e.server_side ? "server" : "client", e.total);
    }
  }
  return md + "\n" + kNetSectionEnd + "\n";
}

}  // namespace fs::profile
