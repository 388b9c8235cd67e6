#include "src/report/model_report.h"

#include <algorithm>
#include <vector>

#include "src/report/cpu_report.h"
#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

constexpr size_t kTopLayers = 5;

std::string Ms(const Json& v) { return v.is_number() ? Fixed(v.AsDouble(), 3) : "n/a"; }

std::string Or(const Json& v, int decimals, const std::string& none = "-") {
  return v.is_number() ? Fixed(v.AsDouble(), decimals) : none;
}

// The timed layers (fused ones ran inside another), in network order.
std::vector<Json> TimedLayers(const Json& model) {
  std::vector<Json> out;
  for (const Json& l : model.Get("layer_timings").AsArray()) {
    if (!l.Get("fused").AsBool()) out.push_back(l);
  }
  return out;
}

std::vector<Json> TopByTime(std::vector<Json> layers) {
  std::stable_sort(layers.begin(), layers.end(), [](const Json& a, const Json& b) {
    return a.Get("median_ms").AsDouble() > b.Get("median_ms").AsDouble();
  });
  if (layers.size() > kTopLayers) layers.resize(kTopLayers);
  return layers;
}

// One row's cells: name, type, output, median, p90, %, MFLOP, GFLOP/s, % of peak, bound.
std::vector<std::string> Cells(const Json& l) {
  const Json& roof = l.Get("roofline");
  return {l.Get("name").AsString(),
          l.Get("type").AsString(),
          l.Get("output_shape").AsString(),
          Ms(l.Get("median_ms")),
          Ms(l.Get("p90_ms")),
          Or(l.Get("percent_of_total"), 1),
          l.Get("flops").AsDouble() > 0 ? Fixed(l.Get("flops").AsDouble() / 1e6, 1) : "-",
          Or(l.Get("gflops_per_s"), 1),
          roof.Get("share_of_peak").is_number()
              ? Fixed(roof.Get("share_of_peak").AsDouble() * 100, 0)
              : "-",
          roof.Get("bound").is_string() ? roof.Get("bound").AsString() : "-"};
}

const char* kHeader[] = {"layer", "type",  "output",  "median ms", "p90 ms",
                         "%",     "MFLOP", "GFLOP/s", "% of peak", "bound"};

std::string Summary(const Json& m) {
  return "Model " + m.Get("model").AsString() + " (" + m.Get("format").AsString() + ", " +
         m.Get("origin").AsString() + "), input " + std::to_string(m.Get("input_width").AsInt()) +
         "x" + std::to_string(m.Get("input_height").AsInt()) + ", batch " +
         std::to_string(m.Get("batch_size").AsInt()) + ", " +
         std::to_string(m.Get("threads").AsInt()) +
         " OpenCV threads, weights: " + m.Get("weights").AsString() + ". " +
         std::to_string(m.Get("runs").AsInt()) + " timed runs after " +
         std::to_string(m.Get("warmup_runs").AsInt()) + " warm-up" +
         (m.Get("settled").AsBool() ? " (the median settled)" : " (the median had not settled)") +
         (m.Get("detection_paused").AsBool()
              ? "; detection was paused meanwhile (SIGSTOP, resumed after), so the model did not "
                "compete with it; the other services kept running."
              : ".");
}

std::string Totals(const Json& m) {
  const Json& check = m.Get("checklist");
  return "Total (sum of the layers' `getPerfProfile` ticks, median) " +
         Ms(m.Get("total_inference_time_ms")) + " ms; `forward()` wall time (steady_clock) " +
         Ms(m.Get("forward_wall_ms")) + " ms; not attributed to a layer " +
         Ms(m.Get("unattributed_ms")) + " ms. " +
         std::to_string(m.Get("timed_layer_count").AsInt()) + " timed layers (" +
         std::to_string(m.Get("layer_count").AsInt() - m.Get("timed_layer_count").AsInt()) +
         " batch norms and activations fused into their convolutions). Checklist " +
         check.Get("item").AsString() + ": **" + check.Get("verdict").AsString() + "** (" +
         check.Get("reason").AsString() + ").";
}

std::string PeakLine(const Json& m) {
  const Json& peak = m.Get("machine_peak");
  if (!peak.is_object()) return "";
  return "Machine peak (measured this run): " + peak.Get("summary").AsString() + "\n";
}

std::string MdTable(const std::vector<Json>& layers) {
  std::string t = "|";
  for (const char* h : kHeader) t += std::string(" ") + h + " |";
  t += "\n|---|---|---|---:|---:|---:|---:|---:|---:|---|\n";
  for (const Json& l : layers) {
    t += "|";
    for (const std::string& c : Cells(l)) t += " " + MdCell(c) + " |";
    t += "\n";
  }
  return t;
}

std::string HtmlTable(const std::vector<Json>& layers, const std::string& id) {
  std::string t = "<table id=\"" + id + "\"><tr>";
  for (const char* h : kHeader) t += std::string("<th>") + h + "</th>";
  t += "</tr>\n";
  for (const Json& l : layers) {
    t += "<tr>";
    auto cells = Cells(l);
    for (size_t i = 0; i < cells.size(); ++i) {
      t += std::string(i >= 3 && i <= 8 ? "<td class=\"n\">" : "<td>") + HtmlEscape(cells[i]) +
           "</td>";
    }
    t += "</tr>\n";
  }
  return t + "</table>\n";
}

}  // namespace

std::string RenderModelHtml(const Json& m, const std::string& json_path,
                            const std::string& trace_path) {
  std::string h = "<h2 id=\"model\">Model: per-layer profile</h2>\n";
  if (m.Has("error"))
    return h + "<p>Not measured: " + HtmlEscape(m.Get("error").AsString()) + "</p>\n";
  h += "<p>" + HtmlEscape(Summary(m)) + "</p>\n<p>" + HtmlEscape(Totals(m)) + "</p>\n";
  if (!PeakLine(m).empty()) h += "<p>" + HtmlEscape(PeakLine(m)) + "</p>\n";
  h += "<p>Report: <a href=\"" + HtmlEscape(json_path) + "\">" + HtmlEscape(json_path) +
       "</a>; one forward pass as a trace: <a href=\"" + HtmlEscape(trace_path) + "\">" +
       HtmlEscape(trace_path) + "</a> (open it in ui.perfetto.dev or chrome://tracing).</p>\n";
  h += "<h3>Top layers by time</h3>\n" + HtmlTable(TopByTime(TimedLayers(m)), "model-top");
  h += "<h3>Every timed layer</h3>\n" + HtmlTable(TimedLayers(m), "model-layers");
  return h;
}

std::string RenderBaselineModelSection(const Json& m, const std::string& json_path,
                                       const std::string& trace_path) {
  std::string s = std::string(kModelSectionBegin) + "\n## Model: per-layer profile\n\n";
  if (m.Has("error")) {
    return s + "Not measured: " + m.Get("error").AsString() + "\n\n" + kModelSectionEnd + "\n";
  }
  s += Summary(m) + "\n\n" + Totals(m) + "\n\n" + PeakLine(m);
  s += "\nReport `" + json_path + "`; Chrome trace of one forward pass `" + trace_path + "`.\n\n";
  s += "### Top " + std::to_string(kTopLayers) + " layers by time\n\n" +
       MdTable(TopByTime(TimedLayers(m)));
  s += "\n### Every timed layer\n\n" + MdTable(TimedLayers(m));
  return s + "\n" + kModelSectionEnd + "\n";
}

}  // namespace fs::profile
