// The checklist's verdict table (../shared/mission.md items 0.1 ... 4.2: goal, measured value,
// the counter behind it, met / not met / not measurable here with why) and the run's largest
// findings, rendered at the top of index.html and as the first section of the baseline
// document: the map a reader wants before the detail. The rows themselves are built by the
// session (src/session/run_record.h) from the verdicts the other sections already computed;
// this file only renders them, with the per-window spread of every repeated metric.
#ifndef FRAMESCOPE_REPORT_CHECKLIST_H_
#define FRAMESCOPE_REPORT_CHECKLIST_H_

#include <string>
#include <vector>

#include "src/regression/run_manifest.h"

namespace fs::profile {

// The mission's items in order; a row list is rendered in this order whatever order it came in.
inline constexpr const char* kChecklistIds[] = {"0.1", "0.2", "1.1", "1.2", "1.3", "2.1", "2.2",
                                                "2.3", "3.1", "3.2", "3.3", "4.1", "4.2"};

// One of the largest items of the run ("where the CPU goes"): its number and the counter.
struct Finding {
  std::string kind;  // "CPU (service)", "CPU (function)", "memory growth", "model layer", ...
  std::string what;  // "detection", "detection: cv::dnn::...", "api->postgres"
  double value = 0;
  std::string unit;  // "cores", "MB/h", "ms"
  std::string counter;
};

inline constexpr const char* kChecklistSectionBegin = "<!-- framescope:checklist:begin -->";
inline constexpr const char* kChecklistSectionEnd = "<!-- framescope:checklist:end -->";

// `rows` sorted into the mission's order (unknown ids last, in their order).
std::vector<regression::ChecklistRow> OrderedRows(std::vector<regression::ChecklistRow> rows);

// "0.031 (median of 5 windows, 0.029 .. 0.040)" or the one value; "" without values.
std::string SpreadText(const regression::Metric& m);

// index.html's first section: the verdict table, the largest findings and the spread of each
// metric measured once per window.
std::string RenderChecklistHtml(const std::vector<regression::ChecklistRow>& rows,
                                const std::vector<Finding>& findings,
                                const std::vector<regression::Metric>& metrics);
// The baseline document's first section, between kChecklistSectionBegin/End (Markdown).
std::string RenderBaselineChecklistSection(const std::vector<regression::ChecklistRow>& rows,
                                           const std::vector<Finding>& findings,
                                           const std::vector<regression::Metric>& metrics);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_CHECKLIST_H_
