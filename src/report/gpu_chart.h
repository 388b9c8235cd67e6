// The GPU part of the reports (src/gpu's telemetry, rendered): the "GPU" section of
// index.html (the two averages with their counters and verdicts, what was not available and
// why, and a timeline chart per GPU as inline SVG: no network fetches) and the GPU section of
// the baseline document (its own markers, so it is rewritten independently of the others).
#ifndef FRAMESCOPE_REPORT_GPU_CHART_H_
#define FRAMESCOPE_REPORT_GPU_CHART_H_

#include <string>

#include "src/gpu/gpu_sampler.h"

namespace fs::profile {

inline constexpr const char* kGpuSectionBegin = "<!-- framescope:gpu:begin -->";
inline constexpr const char* kGpuSectionEnd = "<!-- framescope:gpu:end -->";

// One <svg>: percent (0..100) over time, a <polyline> each for utilization.gpu, utilization.memory
// (dashed: a share of time) and GPM DRAM bandwidth where measured, and a red line where the GPU
// was lost; without samples, an <svg> with a note and no polyline.
std::string GpuTimelineSvg(const gpu::GpuTimeline& g);
// The "GPU" section of index.html. `report_path`: nsight_report.json relative to index.html.
std::string RenderGpuHtml(const gpu::GpuTelemetry& t, const std::string& report_path);
// The "## GPU" section of the baseline document, between kGpuSectionBegin/End.
std::string RenderBaselineGpuSection(const gpu::GpuTelemetry& t, const std::string& report_path);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_GPU_CHART_H_
