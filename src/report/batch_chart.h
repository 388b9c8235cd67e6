// The batch analysis (`framescope batch`, src/model/batch_analysis.h) rendered: a chart of
// throughput and p99 latency against batch size (inline SVG, no network fetches), the HTML
// section for profile's index.html, a self-contained page (OUT/models/batch_analysis.html), and
// the baseline document's section between its own markers.
#ifndef FRAMESCOPE_REPORT_BATCH_CHART_H_
#define FRAMESCOPE_REPORT_BATCH_CHART_H_

#include <string>

#include "src/model/batch_analysis.h"

namespace fs::profile {

inline constexpr const char* kBatchSectionBegin = "<!-- framescope:batch:begin -->";
inline constexpr const char* kBatchSectionEnd = "<!-- framescope:batch:end -->";

// One <svg>: throughput (images/s, left axis, solid) and p99 per forward (ms, right axis,
// dashed) at each measured batch size, the latency budget as a horizontal line; unstable
// measurements drawn hollow. Without results, an <svg> with a note and no polyline.
std::string BatchChartSvg(const model::BatchAnalysis& a);
// The "Batch analysis" section of an HTML page: the verdict, the table, the chart and the live
// view. `json_href` is the link to batch_analysis.json from that page.
std::string RenderBatchHtml(const model::BatchAnalysis& a, const std::string& json_href);
// A whole self-contained page around RenderBatchHtml (OUT/models/batch_analysis.html).
std::string RenderBatchPage(const model::BatchAnalysis& a);
// The "## Batch analysis" section of the baseline document, between kBatchSectionBegin/End.
std::string RenderBaselineBatchSection(const model::BatchAnalysis& a);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_BATCH_CHART_H_
