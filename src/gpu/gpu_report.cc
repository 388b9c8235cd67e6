#include "src/gpu/gpu_report.h"

#include <set>

namespace fs::gpu {
namespace {

// `name`, `name`_counter and, when null, `name`_reason into `j`.
void PutMeasured(const std::string& name, const Measured& m, Json* j) {
  (*j)[name] = m.value ? Json(*m.value) : Json();
  (*j)[name + "_counter"] = m.counter;
  if (!m.value) (*j)[name + "_reason"] = m.reason;
}

Json SampleJson(const GpuSample& s) {
  Json j = Json::MakeObject();
  j["t_s"] = s.t_s;
  j["utilization_gpu_percent"] = static_cast<uint64_t>(s.utilization_gpu);
  j["utilization_memory_percent"] = static_cast<uint64_t>(s.utilization_memory);
  j["memory_used_bytes"] = s.memory_used_bytes;
  j["memory_total_bytes"] = s.memory_total_bytes;
  for (const auto& [key, value] : s.optional) j[key] = value;
  return j;
}

// Per process name over the timeline: the pids seen and the mean SM / memory utilisation of
// the samples NVML returned for it.
Json ProcessesJson(const GpuTimeline& g) {
  struct Acc {
    std::set<uint32_t> pids;
    double sm = 0, mem = 0;
    size_t n = 0;
  };
  std::map<std::string, Acc> by_name;
  for (const GpuSample& s : g.samples) {
    for (const ProcessUse& p : s.processes) {
      Acc& a = by_name[p.name];
      a.pids.insert(p.pid);
      a.sm += p.sm_util;
      a.mem += p.mem_util;
      ++a.n;
    }
  }
  Json out = Json::MakeArray();
  for (const auto& [name, a] : by_name) {
    Json p = Json::MakeObject();
    p["name"] = name;
    Json pids = Json::MakeArray();
    for (uint32_t pid : a.pids) pids.Push(static_cast<uint64_t>(pid));
    p["pids"] = pids;
    p["sm_util_avg_percent"] = a.sm / static_cast<double>(a.n);
    p["memory_util_avg_percent"] = a.mem / static_cast<double>(a.n);
    p["samples"] = static_cast<uint64_t>(a.n);
    out.Push(p);
  }
  return out;
}

Json GpuJson(const GpuTimeline& g) {
  Json j = Json::MakeObject();
  j["index"] = static_cast<uint64_t>(g.index);
  j["name"] = g.name;
  j["samples"] = static_cast<uint64_t>(g.samples.size());
  const std::vector<GpuTimeline> one = {g};
  PutMeasured("gpu_utilization_avg", GpuUtilizationAvg(one, ""), &j);
  PutMeasured("memory_bandwidth_efficiency", MemoryBandwidthEfficiency(one, ""), &j);
  PutMeasured("memory_busy_time_avg", MemoryBusyTimeAvg(one, ""), &j);
  Json na = Json::MakeObject();
  for (const auto& [key, why] : g.not_available) na[key] = why;
  j["not_available"] = na;
  j["lost_at_s"] = g.lost_at_s ? Json(*g.lost_at_s) : Json();
  if (g.lost_at_s) j["lost_reason"] = g.lost_reason;
  j["processes"] = ProcessesJson(g);
  Json timeline = Json::MakeArray();
  for (const GpuSample& s : g.samples) timeline.Push(SampleJson(s));
  j["timeline"] = timeline;
  return j;
}

// What each timeline field is, and the NVML call it comes from.
Json CountersJson() {
  Json c = Json::MakeObject();
  c["utilization_gpu_percent"] =
      "nvmlDeviceGetUtilizationRates .gpu: percent of time one or more kernels ran";
  c["utilization_memory_percent"] =
      "nvmlDeviceGetUtilizationRates .memory: percent of TIME device memory was read or "
      "written (not bandwidth)";
  c["memory_used_bytes"] = "nvmlDeviceGetMemoryInfo .used";
  c["memory_total_bytes"] = "nvmlDeviceGetMemoryInfo .total";
  c[kPowerW] = "nvmlDeviceGetPowerUsage (milliwatts) / 1000";
  c[kClockSmMhz] = "nvmlDeviceGetClockInfo(NVML_CLOCK_SM), MHz";
  c[kClockMemMhz] = "nvmlDeviceGetClockInfo(NVML_CLOCK_MEM), MHz";
  c[kTemperatureC] = "nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU), degrees C";
  c[kPcieTxKbS] = "nvmlDeviceGetPcieThroughput(NVML_PCIE_UTIL_TX_BYTES), KB/s over 20 ms";
  c[kPcieRxKbS] = "nvmlDeviceGetPcieThroughput(NVML_PCIE_UTIL_RX_BYTES), KB/s over 20 ms";
  c[kDramBwUtil] = "GPM NVML_GPM_METRIC_DRAM_BW_UTIL: DRAM bandwidth used / maximum, percent";
  c[kSmOccupancy] = "GPM NVML_GPM_METRIC_SM_OCCUPANCY: active warps / maximum, percent";
  c[kProcessUtilization] = "nvmlDeviceGetProcessUtilization smUtil / memUtil per pid";
  return c;
}

}  // namespace

std::string Verdict(const Measured& m, double target) {
  if (!m.value) return "not measurable";
  return *m.value > target ? "met" : "not met";
}

Json GpuReportJson(const GpuTelemetry& t) {
  Json j = Json::MakeObject();
  j["library"] = t.library;
  j["measured"] = t.unavailable.empty();
  if (!t.unavailable.empty()) j["unavailable_reason"] = t.unavailable;
  j["interval_s"] = t.interval_s;
  j["duration_s"] = t.duration_s;
  const Measured util = GpuUtilizationAvg(t.gpus, t.unavailable);
  const Measured bw = MemoryBandwidthEfficiency(t.gpus, t.unavailable);
  PutMeasured("gpu_utilization_avg", util, &j);
  PutMeasured("memory_bandwidth_efficiency", bw, &j);
  Json targets = Json::MakeObject(), verdicts = Json::MakeObject();
  targets["gpu_utilization_avg"] = kGpuUtilizationTarget;
  targets["memory_bandwidth_efficiency"] = kMemoryBandwidthTarget;
  verdicts["gpu_utilization_avg"] = Verdict(util, kGpuUtilizationTarget);
  verdicts["memory_bandwidth_efficiency"] = Verdict(bw, kMemoryBandwidthTarget);
  j["targets"] = targets;
  j["verdicts"] = verdicts;
  j["counters"] = CountersJson();
  Json gpus = Json::MakeArray();
  for (const GpuTimeline& g : t.gpus) gpus.Push(GpuJson(g));
  j["gpus"] = gpus;
  return j;
}

}  // namespace fs::gpu
