#include "src/report/gpu_chart.h"

#include "src/gpu/gpu_report.h"
#include "src/report/cpu_report.h"
#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

constexpr double kChartWidth = 480, kChartHeight = 100;

struct Series {
  const char* label;
  const char* style;  // stroke attributes
  // The value of a sample in percent; false when the sample does not have it.
  bool (*pick)(const gpu::GpuSample&, double*);
};

const Series kSeries[] = {
    {"utilization.gpu (time a kernel ran)", "stroke=\"#36c\"",
     [](const gpu::GpuSample& s, double* v) {
       *v = s.utilization_gpu;
       return true;
     }},
    {"utilization.memory (time memory was busy; not bandwidth)",
     "stroke=\"#999\" stroke-dasharray=\"4 3\"",
     [](const gpu::GpuSample& s, double* v) {
       *v = s.utilization_memory;
       return true;
     }},
    {"GPM DRAM bandwidth used / max", "stroke=\"#2a2\"",
     [](const gpu::GpuSample& s, double* v) {
       auto it = s.optional.find(gpu::kDramBwUtil);
       if (it == s.optional.end()) return false;
       *v = it->second;
       return true;
     }},
};

// x for time `t_s` on a chart spanning [t0, t0 + span]; a single sample sits at the left edge.
double X(double t_s, double t0, double span) {
  return span > 0 ? (t_s - t0) / span * kChartWidth : 0;
}

// The polyline of one series, or "" when no sample has it.
std::string Polyline(const gpu::GpuTimeline& g, const Series& s, double t0, double span) {
  std::string points;
  for (const gpu::GpuSample& sample : g.samples) {
    double v = 0;
    if (!s.pick(sample, &v)) continue;
    points += Fixed(X(sample.t_s, t0, span), 1) + "," +
              Fixed(2 + (100 - v) / 100 * kChartHeight, 1) + " ";
  }
  if (points.empty()) return "";
  points.pop_back();
  return "<polyline fill=\"none\" stroke-width=\"1.5\" " + std::string(s.style) + " points=\"" +
         points + "\"><title>" + HtmlEscape(s.label) + "</title></polyline>";
}

// "0.42 (counter)" or "not measurable: reason".
std::string MeasuredText(const gpu::Measured& m) {
  if (!m.value) return "not measurable: " + m.reason;
  return Fixed(*m.value, 2) + " (" + m.counter + ")";
}

struct Row {
  const char* name;
  gpu::Measured m;
  double target;
};

std::vector<Row> Rows(const gpu::GpuTelemetry& t) {
  return {{"gpu_utilization_avg", gpu::GpuUtilizationAvg(t.gpus, t.unavailable),
           gpu::kGpuUtilizationTarget},
          {"memory_bandwidth_efficiency", gpu::MemoryBandwidthEfficiency(t.gpus, t.unavailable),
           gpu::kMemoryBandwidthTarget}};
}

}  // namespace

std::string GpuTimelineSvg(const gpu::GpuTimeline& g) {
  std::string h = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Fixed(kChartWidth, 0) +
                  "\" height=\"" + Fixed(kChartHeight + 20, 0) + "\" role=\"img\"><title>GPU " +
                  std::to_string(g.index) + " " + HtmlEscape(g.name) +
                  " utilisation over time (0..100%)</title>";
  if (g.samples.empty()) return h + "<text x=\"4\" y=\"20\">no samples</text></svg>";
  const double t0 = g.samples.front().t_s;
  const double end = g.lost_at_s ? *g.lost_at_s : g.samples.back().t_s;
  const double span = end - t0;
  h += "<rect x=\"0\" y=\"2\" width=\"" + Fixed(kChartWidth, 0) + "\" height=\"" +
       Fixed(kChartHeight, 0) + "\" fill=\"none\" stroke=\"#ddd\"/>";
  for (const Series& s : kSeries) h += Polyline(g, s, t0, span);
  if (g.lost_at_s) {
    const std::string x = Fixed(X(*g.lost_at_s, t0, span), 1);
    h += "<line x1=\"" + x + "\" y1=\"2\" x2=\"" + x + "\" y2=\"" + Fixed(kChartHeight + 2, 0) +
         "\" stroke=\"#c33\"><title>" + HtmlEscape(g.lost_reason) + "</title></line>";
  }
  return h + "<text x=\"4\" y=\"" + Fixed(kChartHeight + 16, 0) +
         "\" font-size=\"11\">0..100% over " + Fixed(span, 1) +
         " s; blue: utilization.gpu, dashed: utilization.memory (time), green: DRAM "
         "bandwidth</text></svg>";
}

std::string RenderGpuHtml(const gpu::GpuTelemetry& t, const std::string& report_path) {
  std::string h =
      "<h2 id=\"gpu\">GPU</h2>\n<p>NVML (" + HtmlEscape(t.library) + ") every " +
      Fixed(t.interval_s, 2) + " s for " + Fixed(t.duration_s, 1) +
      " s. Every number names its counter; utilization.memory is the share of time memory was "
      "busy, never reported as bandwidth. Data: <a href=\"" +
      HtmlEscape(report_path) + "\">" + HtmlEscape(report_path) + "</a>.</p>\n";
  if (!t.unavailable.empty()) {
    h += "<p><b>Not measurable here:</b> " + HtmlEscape(t.unavailable) + "</p>\n";
  }
  h += "<table id=\"gpu-averages\"><tr><th>measure</th><th>value (counter)</th><th>target</th>"
       "<th>verdict</th></tr>\n";
  for (const Row& r : Rows(t)) {
    h += "<tr><td>" + std::string(r.name) + "</td><td>" + HtmlEscape(MeasuredText(r.m)) +
         "</td><td class=\"n\">&gt; " + Fixed(r.target, 1) + "</td><td>" +
         gpu::Verdict(r.m, r.target) + "</td></tr>\n";
  }
  h += "</table>\n";
  for (const gpu::GpuTimeline& g : t.gpus) {
    h += "<h3>GPU " + std::to_string(g.index) + ": " + HtmlEscape(g.name) + "</h3>\n<p>" +
         std::to_string(g.samples.size()) + " samples" +
         (g.lost_at_s ? "; lost: " + HtmlEscape(g.lost_reason) : std::string()) + "</p>\n" +
         GpuTimelineSvg(g) + "\n";
    if (g.not_available.empty()) continue;
    h += "<ul class=\"gpu-not-available\">";
    for (const auto& [key, why] : g.not_available) {
      h += "<li><code>" + HtmlEscape(key) + "</code>: " + HtmlEscape(why) + "</li>";
    }
    h += "</ul>\n";
  }
  return h;
}

std::string RenderBaselineGpuSection(const gpu::GpuTelemetry& t, const std::string& report_path) {
  std::string m = std::string(kGpuSectionBegin) + "\n## GPU\n\n";
  m += "NVML (`" + t.library + "`) every " + Fixed(t.interval_s, 2) + " s for " +
       Fixed(t.duration_s, 1) + " s; data in `" + report_path +
       "`. `utilization.memory` is a share of time, not bandwidth: it is never reported as "
       "`memory_bandwidth_efficiency`.\n\n";
  if (!t.unavailable.empty()) m += "Not measurable here: " + MdCell(t.unavailable, 400) + "\n\n";
  m += "| measure | value (counter) | target | verdict |\n|---|---|---:|---|\n";
  for (const Row& r : Rows(t)) {
    m += "| " + std::string(r.name) + " | " + MdCell(MeasuredText(r.m), 400) + " | > " +
         Fixed(r.target, 1) + " | " + gpu::Verdict(r.m, r.target) + " |\n";
  }
  for (const gpu::GpuTimeline& g : t.gpus) {
    m += "\nGPU " + std::to_string(g.index) + " " + MdCell(g.name) + ": " +
         std::to_string(g.samples.size()) + " samples" +
         (g.lost_at_s ? "; lost: " + MdCell(g.lost_reason, 300) : std::string()) +
         (g.not_available.empty()
              ? std::string()
              : "; not available: " + std::to_string(g.not_available.size()) + " metric(s)") +
         ".\n";
  }
  m += std::string("\n") + kGpuSectionEnd + "\n";
  return m;
}

}  // namespace fs::profile
