// The memory part of `framescope profile`: every service's RSS over the recording window
// (smaps_rollup over its process tree, src/memory/memory_series.h) and its leak rate (Theil–Sen
// slope with a 95 % interval, src/memory/leak_rate.h) against the limit, rendered as
// OUT/memory/analysis.json, a "memory" object per service in summary.json, the memory section
// of index.html (a table and an RSS-over-time chart per service, inline SVG: no network
// fetches) and the memory section of the baseline document (its own markers, so the CPU and
// memory sections are rewritten independently).
#ifndef FRAMESCOPE_REPORT_MEMORY_REPORT_H_
#define FRAMESCOPE_REPORT_MEMORY_REPORT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/memory/leak_rate.h"
#include "src/memory/memory_series.h"

namespace fs::profile {

struct ServiceMemory {
  std::string name;
  // The analysed series: the service's latest process tree. A restart starts a new series
  // (RSS of a fresh process says nothing about the old one's growth); the earlier samples stay
  // in the log and are counted here.
  std::vector<MemorySample> samples;
  size_t earlier_samples = 0;
  LeakRate rate;
  std::string log_file;  // Relative to the output folder.
  // Sampled allocation sites (a service `up --heap-profile` started with the library):
  // WriteHeapOutputs' object (heap_report.h), paths relative to the output folder. Null when
  // the service was not heap-profiled.
  Json heap;
};

struct MemoryReport {
  double limit_mb_per_h = 10;
  double interval_s = 0;  // Requested seconds between samples.
  std::vector<ServiceMemory> services;
};

inline constexpr const char* kMemorySectionBegin = "<!-- framescope:memory:begin -->";
inline constexpr const char* kMemorySectionEnd = "<!-- framescope:memory:end -->";

// LeakRateJson plus rss_start_bytes, log, earlier_samples and heap (when heap-profiled).
Json ServiceMemoryJson(const ServiceMemory& s);
// {limit_mb_per_h, interval_s, processes: [ServiceMemoryJson...]}: OUT/memory/analysis.json,
// the shape `framescope memory` writes.
Json MemoryReportToJson(const MemoryReport& r);

// RSS (MB, one decimal) of the series' first or last sample; "n/a" without samples.
std::string RssAt(const ServiceMemory& s, bool at_end);
// "+1.20 MB/h (95% CI -3.00 .. 4.10)", or "not measurable (why)": never a made-up 0.
std::string SlopeText(const LeakRate& r);
// The verdict, and for an inconclusive one how much longer a run would likely decide it.
std::string VerdictText(const LeakRate& r);

// One <svg> with one <polyline> of RSS over time (a point per sample); without samples, an
// <svg> with a note and no polyline.
std::string RssChartSvg(const ServiceMemory& s);
// The "Memory" section of index.html: a table and a chart per service.
std::string RenderMemoryHtml(const MemoryReport& r);
// The "## Memory" section of the baseline document, between kMemorySectionBegin/End.
std::string RenderBaselineMemorySection(const MemoryReport& r);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_MEMORY_REPORT_H_
