// profiles/gpu/nsight_report.json (mission 2.1; the planning document calls it "Nsight"): the
// GPU telemetry of gpu_sampler.h as JSON. Top level:
//   gpu_utilization_avg, memory_bandwidth_efficiency: fractions 0..1 or null;
//   <name>_counter: the counter behind it; <name>_reason: why it is null (only when null);
//   targets / verdicts: the mission's targets (0.4, 0.7): met, not met, not measurable;
//   measured: false with unavailable_reason when NVML or a GPU is missing;
//   interval_s, duration_s, library, counters (what each timeline field is and where from);
//   gpus: per GPU index, name, samples, the averages, memory_busy_time_avg (utilization.memory:
//   a share of time, never bandwidth), not_available {metric: reason}, lost_at_s/lost_reason,
//   processes (per name: pids, mean SM and memory utilisation) and timeline (one object per
//   sample: t_s, utilization_gpu_percent, utilization_memory_percent, memory_used_bytes,
//   memory_total_bytes, and each optional metric read in that sample).
#ifndef FRAMESCOPE_GPU_GPU_REPORT_H_
#define FRAMESCOPE_GPU_GPU_REPORT_H_

#include <string>

#include "src/base/json.h"
#include "src/gpu/gpu_sampler.h"

namespace fs::gpu {

inline constexpr double kGpuUtilizationTarget = 0.4;
inline constexpr double kMemoryBandwidthTarget = 0.7;

// "met" (value > target), "not met", or "not measurable" (no value).
std::string Verdict(const Measured& m, double target);

Json GpuReportJson(const GpuTelemetry& t);

}  // namespace fs::gpu

#endif  // FRAMESCOPE_GPU_GPU_REPORT_H_
