#include "src/report/batch_chart.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "src/report/cpu_report.h"
#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

constexpr double kWidth = 480, kHeight = 240;
constexpr double kLeft = 56, kRight = 56, kTop = 16, kBottom = 52;

using Row = std::vector<std::string>;

const Row kHeader = {"batch", "images/s", "x batch 1", "p50 ms", "p99 ms", "windows", "stable"};

// One table row per measured batch size, shared by the HTML and Markdown tables.
std::vector<Row> SweepRows(const model::BatchAnalysis& a) {
  double base = 0;
  for (const model::BatchResult& r : a.results)
    if (r.batch == 1) base = r.throughput_ips;
  std::vector<Row> rows;
  for (const model::BatchResult& r : a.results) {
    rows.push_back({std::to_string(r.batch), Fixed(r.throughput_ips, 2),
                    base > 0 ? Fixed(r.throughput_ips / base, 2) : "n/a", Fixed(r.p50_ms, 1),
                    Fixed(r.p99_ms, 1), std::to_string(r.windows.size()),
                    r.stable ? "yes" : "no (" + r.unstable_reason + ")"});
  }
  return rows;
}

// "42.0 ms (bucket 25 .. 50 ms)" for a bucket quantile.
std::string QuantileText(const model::BucketQuantile& q) {
  if (!q.value) return "n/a";
  return Fixed(*q.value, 1) + " ms (bucket " + Fixed(q.bucket_lo, 1) + " .. " +
         (std::isinf(q.bucket_hi) ? std::string("+Inf") : Fixed(q.bucket_hi, 1)) + " ms)";
}

// The live view in sentences (HTML and Markdown alike).
std::vector<std::string> LiveSentences(const model::LiveBatchView& v) {
  if (!v.measured) return {"Live view " + v.reason + "."};
  std::string sizes;
  for (const model::BucketCount& b : v.batch_sizes) {
    if (!sizes.empty()) sizes += ", ";
    std::string range = b.hi - b.lo <= 1   ? Fixed(b.hi, 0)
                        : std::isinf(b.hi) ? "over " + Fixed(b.lo, 0)
                                           : Fixed(b.lo + 1, 0) + "-" + Fixed(b.hi, 0);
    sizes += range + ": " + Fixed(b.count, 0);
  }
  return {
      "Over " + Fixed(v.window_s, 1) +
          " s of the running detection service: " + Fixed(v.batches, 0) + " batches, mean " +
          (v.mean_batch ? Fixed(*v.mean_batch, 2) : std::string("n/a")) +
          " frames (frames per batch: " + (sizes.empty() ? "none" : sizes) + ").",
      "Queue wait (capture to read): p50 " + QuantileText(v.queue_wait_p50_ms) + ", p99 " +
          QuantileText(v.queue_wait_p99_ms) + ".",
      "Frames read " + Fixed(v.frames_in, 0) + ", skipped newest-first " +
          Fixed(v.frames_skipped, 0) + " (" +
          (v.skip_share ? Fixed(*v.skip_share * 100, 1) + "%" : std::string("n/a")) + " of the " +
          Fixed(v.offered_fps, 1) + " frames/s offered).",
      "Recommendation: " + v.recommendation,
  };
}

std::string Circle(double x, double y, const char* color, bool filled) {
  return "<circle cx=\"" + Fixed(x, 1) + "\" cy=\"" + Fixed(y, 1) + "\" r=\"3\" stroke=\"" + color +
         "\" fill=\"" + (filled ? color : "#fff") + "\"/>";
}

std::string Text(double x, double y, const std::string& anchor, const std::string& s) {
  return "<text x=\"" + Fixed(x, 1) + "\" y=\"" + Fixed(y, 1) +
         "\" font-size=\"11\" text-anchor=\"" + anchor + "\">" + HtmlEscape(s) + "</text>";
}

}  // namespace

std::string BatchChartSvg(const model::BatchAnalysis& a) {
  std::string h = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Fixed(kWidth, 0) +
                  "\" height=\"" + Fixed(kHeight, 0) +
                  "\" role=\"img\"><title>Throughput and p99 latency against batch "
                  "size</title>";
  if (a.results.empty()) return h + Text(8, 20, "start", "no batch size measured") + "</svg>";
  double max_ips = 0, max_ms = a.choice.budget.ms;
  for (const model::BatchResult& r : a.results) {
    max_ips = std::max(max_ips, r.throughput_ips);
    max_ms = std::max(max_ms, r.p99_ms);
  }
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  const size_t n = a.results.size();
  // Batch sizes evenly spaced in order (the default list doubles, so this is a log2 axis).
  auto x = [&](size_t i) {
    return kLeft +
           (n > 1 ? plot_w * static_cast<double>(i) / static_cast<double>(n - 1) : plot_w / 2);
  };
  auto y_ips = [&](double v) { return kTop + plot_h * (1 - v / (max_ips * 1.1)); };
  auto y_ms = [&](double v) { return kTop + plot_h * (1 - v / (max_ms * 1.1)); };
  h += "<rect x=\"" + Fixed(kLeft, 0) + "\" y=\"" + Fixed(kTop, 0) + "\" width=\"" +
       Fixed(plot_w, 0) + "\" height=\"" + Fixed(plot_h, 0) + "\" fill=\"none\" stroke=\"#ccc\"/>";
  std::string ips_line, ms_line, points;
  for (size_t i = 0; i < n; ++i) {
    const model::BatchResult& r = a.results[i];
    ips_line += Fixed(x(i), 1) + "," + Fixed(y_ips(r.throughput_ips), 1) + " ";
    ms_line += Fixed(x(i), 1) + "," + Fixed(y_ms(r.p99_ms), 1) + " ";
    points += Circle(x(i), y_ips(r.throughput_ips), "#36c", r.stable) +
              Circle(x(i), y_ms(r.p99_ms), "#d60", r.stable);
    h += Text(x(i), kHeight - kBottom + 14, "middle", std::to_string(r.batch));
  }
  h += "<polyline class=\"throughput\" fill=\"none\" stroke=\"#36c\" stroke-width=\"1.5\" "
       "points=\"" +
       ips_line +
       "\"/><polyline class=\"p99\" fill=\"none\" stroke=\"#d60\" "
       "stroke-width=\"1.5\" stroke-dasharray=\"4 3\" points=\"" +
       ms_line + "\"/>" + points;
  const double yb = y_ms(a.choice.budget.ms);
  h += "<line class=\"budget\" x1=\"" + Fixed(kLeft, 0) + "\" x2=\"" + Fixed(kLeft + plot_w, 0) +
       "\" y1=\"" + Fixed(yb, 1) + "\" y2=\"" + Fixed(yb, 1) +
       "\" stroke=\"#b00\" stroke-dasharray=\"2 3\"/>" +
       Text(kLeft + plot_w - 4, yb - 4, "end", "budget " + Fixed(a.choice.budget.ms, 1) + " ms");
  h += Text(kLeft - 4, kTop + 10, "end", Fixed(max_ips * 1.1, 1)) +
       Text(kLeft - 4, kTop + plot_h, "end", "0") +
       Text(kLeft + plot_w + 4, kTop + 10, "start", Fixed(max_ms * 1.1, 0)) +
       Text(kLeft + plot_w + 4, kTop + plot_h, "start", "0") +
       Text(kLeft, kHeight - 4, "start", "images/s (solid, left)") +
       Text(kLeft + plot_w, kHeight - 4, "end", "p99 ms per forward (dashed, right)") +
       Text(kLeft + plot_w / 2, kHeight - kBottom + 28, "middle", "batch size") + "</svg>";
  return h;
}

std::string RenderBatchHtml(const model::BatchAnalysis& a, const std::string& json_href) {
  std::string h = "<h2 id=\"batch\">Batch analysis</h2>\n<p>Model " + HtmlEscape(a.model_path) +
                  " (" + HtmlEscape(a.model_origin) + ") at " + std::to_string(a.input_width) +
                  "x" + std::to_string(a.input_height) + ", " + std::to_string(a.threads) +
                  " OpenCV thread(s); forward passes timed with steady_clock around "
                  "cv::dnn::Net::forward, in windows until the last 3 agree within 10% on "
                  "throughput and p99 (perf_analyzer's rule)" +
                  (a.detection_paused ? "; detection was paused during the sweep" : "") +
                  (a.interrupted ? "; <b class=\"bad\">interrupted: partial sweep</b>" : "") +
                  ". <a href=\"" + HtmlEscape(json_href) + "\">batch_analysis.json</a></p>\n";
  h += "<p><b>Checklist 2.3 (optimal batch in 4..32, gain &gt; 2.0): " +
       HtmlEscape(a.choice.verdict) + ".</b> " + HtmlEscape(a.choice.reason) +
       "</p>\n<p>Latency budget " + Fixed(a.choice.budget.ms, 1) +
       " ms: " + HtmlEscape(a.choice.budget.rule) + ".</p>\n<table id=\"batch-sweep\"><tr>";
  for (const std::string& c : kHeader) h += "<th>" + HtmlEscape(c) + "</th>";
  h += "</tr>\n";
  for (const Row& row : SweepRows(a)) {
    h += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) {
      h += (i + 1 < row.size() ? "<td class=\"n\">" : "<td>") + HtmlEscape(row[i]) + "</td>";
    }
    h += "</tr>\n";
  }
  h += "</table>\n" + BatchChartSvg(a) + "\n<h3>Live batching</h3>\n";
  for (const std::string& s : LiveSentences(a.live)) h += "<p>" + HtmlEscape(s) + "</p>\n";
  return h;
}

std::string RenderBatchPage(const model::BatchAnalysis& a) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<title>framescope batch analysis</title><style>"
         "body{font:14px sans-serif;margin:24px;color:#222}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
         "td.n{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#b00}"
         "</style></head><body>\n" +
         RenderBatchHtml(a, "batch_analysis.json") + "</body></html>\n";
}

std::string RenderBaselineBatchSection(const model::BatchAnalysis& a) {
  std::string m = std::string(kBatchSectionBegin) + "\n## Batch analysis\n\n";
  m += "`framescope batch`: " + a.model_path + " at " + std::to_string(a.input_width) + "x" +
       std::to_string(a.input_height) + ", " + std::to_string(a.threads) +
       " OpenCV thread(s); forward passes timed with steady_clock around "
       "`cv::dnn::Net::forward` in windows until the last 3 agree within 10% on throughput and "
       "p99 (perf_analyzer's rule)" +
       (a.detection_paused ? "; detection paused during the sweep" : "") +
       (a.interrupted ? "; **interrupted: partial sweep**" : "") + ".\n\n";
  m += "**Checklist 2.3 (optimal batch in 4..32, gain > 2.0): " + a.choice.verdict + ".** " +
       MdCell(a.choice.reason, 1000) + "\n\nLatency budget " + Fixed(a.choice.budget.ms, 1) +
       " ms: " + a.choice.budget.rule + ".\n\n|";
  for (const std::string& c : kHeader) m += " " + c + " |";
  m += "\n|---:|---:|---:|---:|---:|---:|---|\n";
  for (const Row& row : SweepRows(a)) {
    m += "|";
    for (const std::string& c : row) m += " " + MdCell(c, 200) + " |";
    m += "\n";
  }
  m += "\n";
  for (const std::string& s : LiveSentences(a.live)) m += MdCell(s, 1000) + "\n\n";
  return m + kBatchSectionEnd + "\n";
}

}  // namespace fs::profile
