// GPU telemetry over time: every GPU NVML sees, sampled at an interval in a background thread
// (Start/Stop; SampleOnce for callers that keep their own clock), into a timeline per GPU, and
// the two averages the mission asks for, each naming its counter:
//   gpu_utilization_avg          mean of utilization.gpu (share of time a kernel ran) / 100;
//   memory_bandwidth_efficiency  mean of GPM DRAM_BW_UTIL (bandwidth used / maximum) / 100.
// utilization.memory is the share of TIME device memory was read or written; it is kept in the
// timeline under that name and is never reported as bandwidth. Without NVML, a GPU or the
// counter, an average is empty with the reason (STYLE rule 5: never a 0 that was not measured).
#ifndef FRAMESCOPE_GPU_GPU_SAMPLER_H_
#define FRAMESCOPE_GPU_GPU_SAMPLER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "src/gpu/nvml_loader.h"

namespace fs::gpu {

// The optional metrics, by the key they have in the timeline and in `not_available`.
inline constexpr const char* kPowerW = "power_w";
inline constexpr const char* kClockSmMhz = "clock_sm_mhz";
inline constexpr const char* kClockMemMhz = "clock_mem_mhz";
inline constexpr const char* kTemperatureC = "temperature_c";
inline constexpr const char* kPcieTxKbS = "pcie_tx_kb_s";
inline constexpr const char* kPcieRxKbS = "pcie_rx_kb_s";
inline constexpr const char* kProcessUtilization = "process_utilization";
inline constexpr const char* kDramBwUtil = "dram_bw_util_percent";
inline constexpr const char* kSmOccupancy = "sm_occupancy_percent";

// One process's use of a GPU (nvmlDeviceGetProcessUtilization), named through the caller's
// pid -> name map ("pid N" when it is not in it).
struct ProcessUse {
  uint32_t pid = 0;
  std::string name;
  unsigned sm_util = 0;   // percent
  unsigned mem_util = 0;  // percent of time (as utilization.memory)
};

struct GpuSample {
  double t_s = 0;                   // since Start (or since the sampler was made)
  unsigned utilization_gpu = 0;     // percent of time one or more kernels ran
  unsigned utilization_memory = 0;  // percent of TIME memory was read/written: not bandwidth
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
  // Optional metrics by key (kPowerW...): present when read in this sample. The GPM ones need
  // two counter snapshots, so they start with the second sample.
  std::map<std::string, double> optional;
  std::vector<ProcessUse> processes;
};

struct GpuTimeline {
  unsigned index = 0;
  std::string name;
  std::vector<GpuSample> samples;
  // Optional metric key -> "not available: <why>" (function not exported, NOT_SUPPORTED, ...).
  std::map<std::string, std::string> not_available;
  // Set when the GPU stopped answering (e.g. NVML_ERROR_GPU_IS_LOST): no samples after it.
  std::optional<double> lost_at_s;
  std::string lost_reason;
};

struct GpuTelemetry {
  std::string library = kNvmlSoname;
  // Why there is no GPU data at all (NVML failed to load/initialise, no GPU); empty otherwise.
  std::string unavailable;
  double interval_s = 0;
  double duration_s = 0;
  std::vector<GpuTimeline> gpus;
};

// A number with the counter it came from; empty value with the reason when not measurable.
struct Measured {
  std::optional<double> value;
  std::string counter;
  std::string reason;
  size_t samples = 0;
  size_t gpus = 0;  // the GPUs that contributed a sample
};

// Fractions 0..1 (the mission's targets are 0.4 and 0.7), pooled over every sample of `gpus`.
// `unavailable` is GpuTelemetry::unavailable (the reason when it is set).
Measured GpuUtilizationAvg(const std::vector<GpuTimeline>& gpus, const std::string& unavailable);
Measured MemoryBandwidthEfficiency(const std::vector<GpuTimeline>& gpus,
                                   const std::string& unavailable);
// utilization.memory's mean / 100: a share of time, labelled as such (not an efficiency).
Measured MemoryBusyTimeAvg(const std::vector<GpuTimeline>& gpus, const std::string& unavailable);

struct SamplerOptions {
  std::string library = kNvmlSoname;  // tests only: a name that cannot exist
  // pid -> service name, for per-process utilisation (SetProcessNames updates it).
  std::map<uint32_t, std::string> process_names;
  // NVML needs >= 100 ms between the two GPM snapshots of one metric (nvml.h:13889); a shorter
  // gap keeps the older snapshot. Tests against the fake library set 0.
  double gpm_min_gap_s = 0.1;
};

class GpuSampler {
 public:
  // Loads NVML and finds the GPUs; never fails: without them, Stop() returns telemetry whose
  // `unavailable` says why.
  explicit GpuSampler(SamplerOptions options = {});
  ~GpuSampler();
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  // Samples every GPU now and then every `interval_s` (> 0) until Stop().
  void Start(double interval_s);
  // Stops the thread (if started) and returns the telemetry.
  GpuTelemetry Stop();
  // One sample of every GPU still answering, at `t_s`.
  void SampleOnce(double t_s);
  void SetProcessNames(std::map<uint32_t, std::string> names);
  GpuTelemetry Snapshot() const;

 private:
  struct Device;
  void Run(double interval_s);
  void SampleDevice(Device& d, GpuTimeline& g, double t_s);
  void ReadOptional(Device& d, GpuTimeline& g, GpuSample& s, double t_s);
  void ReadProcesses(Device& d, GpuTimeline& g, GpuSample& s, double t_s);
  void ReadGpm(Device& d, GpuTimeline& g, GpuSample& s, double t_s);
  // A failed optional read: marks the device lost on GPU_IS_LOST, else the metric unavailable.
  void OptionalFailed(GpuTimeline& g, const std::string& key, const char* fn, nvml::Return rc,
                      double t_s);
  void OpenGpm(Device& d, GpuTimeline& g);

  SamplerOptions options_;
  std::unique_ptr<NvmlLibrary> lib_;
  std::vector<Device> devices_;
  mutable std::mutex mu_;
  GpuTelemetry telemetry_;
  int64_t start_ns_ = 0;
  std::thread thread_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
};

}  // namespace fs::gpu

#endif  // FRAMESCOPE_GPU_GPU_SAMPLER_H_
