// NVML loaded at run time: dlopen("libnvidia-ml.so.1") through the normal library search path
// (LD_LIBRARY_PATH, then ld.so.cache: how the driver installs it), the required functions
// resolved or a clear error, the optional ones resolved where the library exports them, then
// nvmlInit_v2. Without a GPU, driver or library this is an error value that says which, never
// a crash or a made-up reading.
#ifndef FRAMESCOPE_GPU_NVML_LOADER_H_
#define FRAMESCOPE_GPU_NVML_LOADER_H_

#include <map>
#include <memory>
#include <string>

#include "src/base/status.h"
#include "src/gpu/nvml_api.h"

namespace fs::gpu {

inline constexpr const char* kNvmlSoname = "libnvidia-ml.so.1";

// The resolved functions. Required ones are never null in a loaded library; an optional one is
// null when the library does not export it (an older driver).
struct NvmlApi {
  nvml::InitFn init = nullptr;
  nvml::ShutdownFn shutdown = nullptr;
  nvml::ErrorStringFn error_string = nullptr;
  nvml::DeviceGetCountFn device_get_count = nullptr;
  nvml::DeviceGetHandleByIndexFn device_get_handle_by_index = nullptr;
  nvml::DeviceGetNameFn device_get_name = nullptr;
  nvml::DeviceGetUtilizationRatesFn device_get_utilization_rates = nullptr;
  nvml::DeviceGetMemoryInfoFn device_get_memory_info = nullptr;
  // Optional.
  nvml::DeviceGetPowerUsageFn device_get_power_usage = nullptr;
  nvml::DeviceGetClockInfoFn device_get_clock_info = nullptr;
  nvml::DeviceGetTemperatureFn device_get_temperature = nullptr;
  nvml::DeviceGetPcieThroughputFn device_get_pcie_throughput = nullptr;
  nvml::DeviceGetProcessUtilizationFn device_get_process_utilization = nullptr;
  nvml::GpmQueryDeviceSupportFn gpm_query_device_support = nullptr;
  nvml::GpmSampleAllocFn gpm_sample_alloc = nullptr;
  nvml::GpmSampleFreeFn gpm_sample_free = nullptr;
  nvml::GpmSampleGetFn gpm_sample_get = nullptr;
  nvml::GpmMetricsGetFn gpm_metrics_get = nullptr;
};

// A loaded and initialised NVML; the destructor calls nvmlShutdown and dlclose.
class NvmlLibrary {
 public:
  // Errors: "<soname> not found (<dlerror>)", "<soname> has no <symbol>", "nvmlInit_v2 failed:
  // <nvmlErrorString> (code N)". `soname` other than kNvmlSoname is for tests that need a
  // library that cannot exist.
  static StatusOr<std::unique_ptr<NvmlLibrary>> Load(const std::string& soname = kNvmlSoname);
  ~NvmlLibrary();
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  const NvmlApi& api() const { return api_; }
  const std::string& soname() const { return soname_; }
  // "<nvmlErrorString> (code N)".
  std::string ErrorText(nvml::Return code) const;
  // "not available: <soname> does not export <symbol>" for every optional function that is
  // missing, by exported name.
  const std::map<std::string, std::string>& missing_optional() const { return missing_; }

 private:
  NvmlLibrary(void* handle, std::string soname) : handle_(handle), soname_(std::move(soname)) {}
  Status Resolve();

  void* handle_;
  std::string soname_;
  NvmlApi api_;
  bool initialised_ = false;
  std::map<std::string, std::string> missing_;
};

// One line for `framescope profile`'s preflight: "NVML: present (libnvidia-ml.so.1; 1 GPU:
// NVIDIA H200)", or "NVML: unavailable: <Load's error>" (absent library, missing function,
// nvmlInit_v2 failing: each says GPU telemetry is not measurable). Loads, initialises and shuts
// NVML down.
std::string ProbeLine(const std::string& soname = kNvmlSoname);

}  // namespace fs::gpu

#endif  // FRAMESCOPE_GPU_NVML_LOADER_H_
