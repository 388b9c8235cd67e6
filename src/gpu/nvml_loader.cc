#include "src/gpu/nvml_loader.h"

#include <dlfcn.h>

namespace fs::gpu {
namespace {

// dlsym into a typed function pointer (dlsym returns void*; POSIX guarantees the conversion).
template <typename Fn>
bool Sym(void* handle, const char* name, Fn* out) {
  *out = reinterpret_cast<Fn>(dlsym(handle, name));
  return *out != nullptr;
}

}  // namespace

Status NvmlLibrary::Resolve() {
  std::string absent;  // the first required function the library lacks
  auto need = [&](const char* name, auto* slot) {
    if (!Sym(handle_, name, slot) && absent.empty()) absent = name;
  };
  auto want = [&](const char* name, auto* slot) {
    if (!Sym(handle_, name, slot)) {
      missing_[name] = "not available: " + soname_ + " does not export " + name;
    }
  };
  NvmlApi& a = api_;
  need("nvmlInit_v2", &a.init);
  need("nvmlShutdown", &a.shutdown);
  need("nvmlErrorString", &a.error_string);
  need("nvmlDeviceGetCount_v2", &a.device_get_count);
  need("nvmlDeviceGetHandleByIndex_v2", &a.device_get_handle_by_index);
  need("nvmlDeviceGetName", &a.device_get_name);
  need("nvmlDeviceGetUtilizationRates", &a.device_get_utilization_rates);
  need("nvmlDeviceGetMemoryInfo", &a.device_get_memory_info);
  if (!absent.empty()) {
    return Err(soname_ + " has no " + absent +
               " (not NVML, or a driver older than NVML's v2 API): GPU telemetry is not "
               "measurable; install a current NVIDIA driver");
  }
  want("nvmlDeviceGetPowerUsage", &a.device_get_power_usage);
  want("nvmlDeviceGetClockInfo", &a.device_get_clock_info);
  want("nvmlDeviceGetTemperature", &a.device_get_temperature);
  want("nvmlDeviceGetPcieThroughput", &a.device_get_pcie_throughput);
  want("nvmlDeviceGetProcessUtilization", &a.device_get_process_utilization);
  want("nvmlGpmQueryDeviceSupport", &a.gpm_query_device_support);
  want("nvmlGpmSampleAlloc", &a.gpm_sample_alloc);
  want("nvmlGpmSampleFree", &a.gpm_sample_free);
  want("nvmlGpmSampleGet", &a.gpm_sample_get);
  want("nvmlGpmMetricsGet", &a.gpm_metrics_get);
  return Status::Ok();
}

StatusOr<std::unique_ptr<NvmlLibrary>> NvmlLibrary::Load(const std::string& soname) {
  // RTLD_LOCAL: NVML's symbols stay out of the global namespace; RTLD_NOW: a broken library
  // fails here rather than at the first call inside the sampling thread.
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Err(soname + " not found (" + (why ? why : "dlopen failed") +
               "): no NVIDIA driver on this machine, so GPU telemetry is not measurable here");
  }
  std::unique_ptr<NvmlLibrary> lib(new NvmlLibrary(handle, soname));
  RETURN_IF_ERROR(lib->Resolve());
  const nvml::Return rc = lib->api_.init();
  if (rc != nvml::kSuccess) {
    return Err("nvmlInit_v2 failed: " + lib->ErrorText(rc) +
               " (is the NVIDIA kernel driver loaded? nvidia-smi says the same)");
  }
  lib->initialised_ = true;
  return lib;
}

NvmlLibrary::~NvmlLibrary() {
  if (initialised_) api_.shutdown();
  dlclose(handle_);
}

std::string NvmlLibrary::ErrorText(nvml::Return code) const {
  const char* text = api_.error_string ? api_.error_string(code) : nullptr;
  return std::string(text ? text : "unknown error") + " (code " + std::to_string(code) + ")";
}

std::string ProbeLine(const std::string& soname) {
  auto lib = NvmlLibrary::Load(soname);
  if (!lib.ok()) return "NVML: unavailable: " + lib.status().message();
  const NvmlApi& api = (*lib)->api();
  unsigned int count = 0;
  nvml::Return rc = api.device_get_count(&count);
  if (rc != nvml::kSuccess) {
    return "NVML: present (" + soname +
           ") but nvmlDeviceGetCount_v2 failed: " + (*lib)->ErrorText(rc);
  }
  std::string line =
      "NVML: present (" + soname + "; " + std::to_string(count) + " GPU" + (count == 1 ? "" : "s");
  for (unsigned int i = 0; i < count; ++i) {
    nvml::Device device = nullptr;
    char name[nvml::kDeviceNameBufferSize] = {};
    if (api.device_get_handle_by_index(i, &device) == nvml::kSuccess &&
        api.device_get_name(device, name, sizeof(name)) == nvml::kSuccess) {
      line += std::string(i == 0 ? ": " : ", ") + name;
    }
  }
  return line + ")";
}

}  // namespace fs::gpu
