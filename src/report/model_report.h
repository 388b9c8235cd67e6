// The model's part of the report and the baseline, rendered from the per-layer profile's JSON
// (profiles/models/yolo_profile.json, LayerProfileJson): the totals with their counters, the
// top layers by time, and a trtexec-like table of every timed layer with its FLOPs, GFLOP/s and
// place against the machine's measured peak.
#ifndef FRAMESCOPE_REPORT_MODEL_REPORT_H_
#define FRAMESCOPE_REPORT_MODEL_REPORT_H_

#include <string>

#include "src/base/json.h"

namespace fs::profile {

inline constexpr const char* kModelSectionBegin = "<!-- framescope:model:begin -->";
inline constexpr const char* kModelSectionEnd = "<!-- framescope:model:end -->";

// `model`: LayerProfileJson's object, or an object with "error" (the profile could not be
// taken: the section says why). `json_path`/`trace_path`: relative to the report.
std::string RenderModelHtml(const Json& model, const std::string& json_path,
                            const std::string& trace_path);
// Markdown, between kModelSectionBegin/End.
std::string RenderBaselineModelSection(const Json& model, const std::string& json_path,
                                       const std::string& trace_path);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_MODEL_REPORT_H_
