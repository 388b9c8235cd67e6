#include "src/gpu/gpu_sampler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <utility>

#include "src/base/clock.h"

namespace fs::gpu {

struct GpuSampler::Device {
  nvml::Device handle = nullptr;
  bool lost = false;
  // GPM: two snapshot buffers, the older one at `gpm[prev]` taken at `prev_t_s`.
  bool gpm = false;
  nvml::GpmSample snap[2] = {nullptr, nullptr};
  int prev = 0;
  bool have_prev = false;
  double prev_t_s = 0;
  // Process samples newer than this (microseconds, NVML's CPU timestamp) are new.
  unsigned long long last_seen_us = 0;
};

namespace {

std::string At(double t_s) {
  char text[32];
  snprintf(text, sizeof(text), "%.3f", t_s);
  return std::string(" at t=") + text + " s";
}

// Mean of `pick(sample)` over every sample that has it; `pick` returns false to skip one.
template <typename Pick>
Measured Mean(const std::vector<GpuTimeline>& gpus, Pick pick) {
  Measured m;
  double sum = 0;
  for (const GpuTimeline& g : gpus) {
    const size_t before = m.samples;
    for (const GpuSample& s : g.samples) {
      double v = 0;
      if (!pick(s, &v)) continue;
      sum += v;
      ++m.samples;
    }
    m.gpus += m.samples > before ? 1 : 0;
  }
  if (m.samples > 0) m.value = sum / static_cast<double>(m.samples) / 100.0;
  return m;
}

std::string OfGpus(const Measured& m) {
  return std::to_string(m.gpus) + " GPU" + (m.gpus == 1 ? "" : "s");
}

// Why a measure has no value: NVML's failure, no GPU, or no sample.
std::string NoSampleReason(const std::vector<GpuTimeline>& gpus, const std::string& unavailable) {
  if (!unavailable.empty()) return unavailable;
  if (gpus.empty()) return "no GPU";
  return "no sample was taken (the run ended before the first one, or every GPU was lost)";
}

// The timeline metrics each optional function gives (GPM's are set by OpenGpm).
void MarkMissing(const NvmlLibrary& lib, GpuTimeline* g) {
  const std::pair<const char*, std::vector<const char*>> metrics_of[] = {
      {"nvmlDeviceGetPowerUsage", {kPowerW}},
      {"nvmlDeviceGetClockInfo", {kClockSmMhz, kClockMemMhz}},
      {"nvmlDeviceGetTemperature", {kTemperatureC}},
      {"nvmlDeviceGetPcieThroughput", {kPcieTxKbS, kPcieRxKbS}},
      {"nvmlDeviceGetProcessUtilization", {kProcessUtilization}},
  };
  for (const auto& [fn, keys] : metrics_of) {
    auto it = lib.missing_optional().find(fn);
    if (it == lib.missing_optional().end()) continue;
    for (const char* key : keys) g->not_available[key] = it->second;
  }
}

}  // namespace

Measured GpuUtilizationAvg(const std::vector<GpuTimeline>& gpus, const std::string& unavailable) {
  Measured m = Mean(gpus, [](const GpuSample& s, double* v) {
    *v = s.utilization_gpu;
    return true;
  });
  m.counter =
      "NVML nvmlDeviceGetUtilizationRates utilization.gpu (percent of time one or more kernels "
      "ran), mean over " +
      std::to_string(m.samples) + " samples of " + OfGpus(m) + ", / 100";
  if (!m.value) m.reason = NoSampleReason(gpus, unavailable);
  return m;
}

Measured MemoryBusyTimeAvg(const std::vector<GpuTimeline>& gpus, const std::string& unavailable) {
  Measured m = Mean(gpus, [](const GpuSample& s, double* v) {
    *v = s.utilization_memory;
    return true;
  });
  m.counter =
      "NVML nvmlDeviceGetUtilizationRates utilization.memory (percent of TIME device memory was "
      "read or written; not bandwidth), mean over " +
      std::to_string(m.samples) + " samples of " + OfGpus(m) + ", / 100";
  if (!m.value) m.reason = NoSampleReason(gpus, unavailable);
  return m;
}

Measured MemoryBandwidthEfficiency(const std::vector<GpuTimeline>& gpus,
                                   const std::string& unavailable) {
  // Only a bandwidth counter: utilization.memory is never a fallback.
  Measured m = Mean(gpus, [](const GpuSample& s, double* v) {
    auto it = s.optional.find(kDramBwUtil);
    if (it == s.optional.end()) return false;
    *v = it->second;
    return true;
  });
  m.counter =
      "NVML GPM NVML_GPM_METRIC_DRAM_BW_UTIL (DRAM bandwidth used / theoretical maximum), mean "
      "over " +
      std::to_string(m.samples) + " GPM intervals of " + OfGpus(m) + ", / 100";
  if (m.value) return m;
  if (!unavailable.empty() || gpus.empty()) {
    m.reason = NoSampleReason(gpus, unavailable);
    return m;
  }
  for (const GpuTimeline& g : gpus) {
    auto it = g.not_available.find(kDramBwUtil);
    if (!m.reason.empty()) m.reason += "; ";
    m.reason += "GPU " + std::to_string(g.index) + ": " +
                (it != g.not_available.end()
                     ? it->second
                     : std::string("no GPM interval completed (GPM needs two samples)"));
  }
  return m;
}

GpuSampler::GpuSampler(SamplerOptions options) : options_(std::move(options)) {
  telemetry_.library = options_.library;
  start_ns_ = MonotonicNs();
  auto lib = NvmlLibrary::Load(options_.library);
  if (!lib.ok()) {
    telemetry_.unavailable = lib.status().message();
    return;
  }
  lib_ = std::move(*lib);
  const NvmlApi& api = lib_->api();
  unsigned int count = 0;
  if (nvml::Return rc = api.device_get_count(&count); rc != nvml::kSuccess) {
    telemetry_.unavailable = "nvmlDeviceGetCount_v2 failed: " + lib_->ErrorText(rc);
    return;
  }
  if (count == 0) telemetry_.unavailable = "NVML loaded, but it reports no GPU";
  for (unsigned int i = 0; i < count; ++i) {
    Device d;
    GpuTimeline g;
    g.index = i;
    char name[nvml::kDeviceNameBufferSize] = {};
    nvml::Return rc = api.device_get_handle_by_index(i, &d.handle);
    if (rc == nvml::kSuccess) rc = api.device_get_name(d.handle, name, sizeof(name));
    if (rc != nvml::kSuccess) {
      d.lost = true;
      g.lost_at_s = 0;
      g.lost_reason = "not opened: " + lib_->ErrorText(rc);
    }
    g.name = name;
    MarkMissing(*lib_, &g);
    if (!d.lost) OpenGpm(d, g);
    devices_.push_back(d);
    telemetry_.gpus.push_back(std::move(g));
  }
}

GpuSampler::~GpuSampler() {
  Stop();
  if (!lib_) return;
  for (Device& d : devices_) {
    for (nvml::GpmSample s : d.snap) {
      if (s != nullptr) lib_->api().gpm_sample_free(s);
    }
  }
}

void GpuSampler::OpenGpm(Device& d, GpuTimeline& g) {
  const NvmlApi& api = lib_->api();
  std::string why;
  if (!api.gpm_query_device_support || !api.gpm_sample_alloc || !api.gpm_sample_free ||
      !api.gpm_sample_get || !api.gpm_metrics_get) {
    why = "not available: " + lib_->soname() + " does not export the GPM functions (nvmlGpm*)";
  } else {
    nvml::GpmSupport support{nvml::kGpmSupportVersion, 0};
    nvml::Return rc = api.gpm_query_device_support(d.handle, &support);
    if (rc != nvml::kSuccess) {
      why = "not available: nvmlGpmQueryDeviceSupport: " + lib_->ErrorText(rc);
    } else if (!support.isSupportedDevice) {
      why = "not available: this GPU does not support GPM (Hopper and later do)";
    } else if ((rc = api.gpm_sample_alloc(&d.snap[0])) != nvml::kSuccess ||
               (rc = api.gpm_sample_alloc(&d.snap[1])) != nvml::kSuccess) {
      why = "not available: nvmlGpmSampleAlloc: " + lib_->ErrorText(rc);
    }
  }
  d.gpm = why.empty();
  if (d.gpm) return;
  g.not_available[kDramBwUtil] = why;
  g.not_available[kSmOccupancy] = why;
}

void GpuSampler::SetProcessNames(std::map<uint32_t, std::string> names) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.process_names = std::move(names);
}

void GpuSampler::SampleOnce(double t_s) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < devices_.size(); ++i) {
    if (!devices_[i].lost) SampleDevice(devices_[i], telemetry_.gpus[i], t_s);
  }
}

void GpuSampler::SampleDevice(Device& d, GpuTimeline& g, double t_s) {
  const NvmlApi& api = lib_->api();
  nvml::Utilization u{};
  nvml::Memory m{};
  const char* fn = "nvmlDeviceGetUtilizationRates";
  nvml::Return rc = api.device_get_utilization_rates(d.handle, &u);
  if (rc == nvml::kSuccess) {
    fn = "nvmlDeviceGetMemoryInfo";
    rc = api.device_get_memory_info(d.handle, &m);
  }
  if (rc != nvml::kSuccess) {
    // The required readings failed (typically NVML_ERROR_GPU_IS_LOST: off the bus): the
    // timeline ends here rather than carrying guesses.
    d.lost = true;
    g.lost_at_s = t_s;
    g.lost_reason =
        std::string(fn) + ": " + lib_->ErrorText(rc) + At(t_s) + "; not sampled after it";
    return;
  }
  GpuSample s;
  s.t_s = t_s;
  s.utilization_gpu = u.gpu;
  s.utilization_memory = u.memory;
  s.memory_used_bytes = m.used;
  s.memory_total_bytes = m.total;
  ReadOptional(d, g, s, t_s);
  if (!d.lost) g.samples.push_back(std::move(s));
}

void GpuSampler::OptionalFailed(GpuTimeline& g, const std::string& key, const char* fn,
                                nvml::Return rc, double t_s) {
  const std::string text = std::string(fn) + ": " + lib_->ErrorText(rc) + At(t_s);
  if (rc == nvml::kErrorGpuIsLost) {
    g.lost_at_s = t_s;
    g.lost_reason = text + "; not sampled after it";
    return;
  }
  g.not_available[key] = "not available: " + text;
}

void GpuSampler::ReadOptional(Device& d, GpuTimeline& g, GpuSample& s, double t_s) {
  const NvmlApi& api = lib_->api();
  struct Reading {
    const char* key;
    const char* fn;
    bool exported;
    double scale;
    std::function<nvml::Return(unsigned int*)> read;
  };
  const nvml::Device h = d.handle;
  const Reading readings[] = {
      {kPowerW, "nvmlDeviceGetPowerUsage", api.device_get_power_usage != nullptr, 1e-3,
       [&](unsigned int* v) { return api.device_get_power_usage(h, v); }},
      {kClockSmMhz, "nvmlDeviceGetClockInfo(NVML_CLOCK_SM)", api.device_get_clock_info != nullptr,
       1, [&](unsigned int* v) { return api.device_get_clock_info(h, nvml::kClockSm, v); }},
      {kClockMemMhz, "nvmlDeviceGetClockInfo(NVML_CLOCK_MEM)", api.device_get_clock_info != nullptr,
       1, [&](unsigned int* v) { return api.device_get_clock_info(h, nvml::kClockMem, v); }},
      {kTemperatureC, "nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)",
       api.device_get_temperature != nullptr, 1,
       [&](unsigned int* v) { return api.device_get_temperature(h, nvml::kTemperatureGpu, v); }},
      {kPcieTxKbS, "nvmlDeviceGetPcieThroughput(NVML_PCIE_UTIL_TX_BYTES)",
       api.device_get_pcie_throughput != nullptr, 1,
       [&](unsigned int* v) {
         return api.device_get_pcie_throughput(h, nvml::kPcieUtilTxBytes, v);
       }},
      {kPcieRxKbS, "nvmlDeviceGetPcieThroughput(NVML_PCIE_UTIL_RX_BYTES)",
       api.device_get_pcie_throughput != nullptr, 1,
       [&](unsigned int* v) {
         return api.device_get_pcie_throughput(h, nvml::kPcieUtilRxBytes, v);
       }},
  };
  for (const Reading& r : readings) {
    // Not exported, or it failed once (NOT_SUPPORTED, NO_PERMISSION ...): its reason is in
    // not_available and it is not asked again.
    if (!r.exported || g.not_available.count(r.key)) continue;
    unsigned int v = 0;
    nvml::Return rc = r.read(&v);
    if (rc == nvml::kSuccess) {
      s.optional[r.key] = v * r.scale;
      continue;
    }
    OptionalFailed(g, r.key, r.fn, rc, t_s);
    if (g.lost_at_s) break;
  }
  if (!g.lost_at_s) ReadProcesses(d, g, s, t_s);
  if (!g.lost_at_s) ReadGpm(d, g, s, t_s);
  d.lost = g.lost_at_s.has_value();
}

void GpuSampler::ReadProcesses(Device& d, GpuTimeline& g, GpuSample& s, double t_s) {
  const NvmlApi& api = lib_->api();
  if (!api.device_get_process_utilization || g.not_available.count(kProcessUtilization)) return;
  std::vector<nvml::ProcessUtilizationSample> buf(64);
  unsigned int n = static_cast<unsigned int>(buf.size());
  nvml::Return rc = api.device_get_process_utilization(d.handle, buf.data(), &n, d.last_seen_us);
  if (rc == nvml::kErrorInsufficientSize) {  // more processes than the buffer: n is the need
    buf.resize(n + 8);
    n = static_cast<unsigned int>(buf.size());
    rc = api.device_get_process_utilization(d.handle, buf.data(), &n, d.last_seen_us);
  }
  if (rc == nvml::kErrorNotFound) return;  // no process used the GPU since the last read
  if (rc != nvml::kSuccess) {
    OptionalFailed(g, kProcessUtilization, "nvmlDeviceGetProcessUtilization", rc, t_s);
    return;
  }
  for (unsigned int i = 0; i < n && i < buf.size(); ++i) {
    const nvml::ProcessUtilizationSample& p = buf[i];
    d.last_seen_us = std::max(d.last_seen_us, p.timeStamp);
    auto it = options_.process_names.find(p.pid);
    s.processes.push_back(
        {p.pid, it != options_.process_names.end() ? it->second : "pid " + std::to_string(p.pid),
         p.smUtil, p.memUtil});
  }
}

void GpuSampler::ReadGpm(Device& d, GpuTimeline& g, GpuSample& s, double t_s) {
  if (!d.gpm || (d.have_prev && t_s - d.prev_t_s < options_.gpm_min_gap_s)) return;
  const NvmlApi& api = lib_->api();
  const int cur = d.have_prev ? 1 - d.prev : d.prev;
  nvml::Return rc = api.gpm_sample_get(d.handle, d.snap[cur]);
  if (rc != nvml::kSuccess) {
    OptionalFailed(g, kDramBwUtil, "nvmlGpmSampleGet", rc, t_s);
    if (!g.lost_at_s) g.not_available[kSmOccupancy] = g.not_available[kDramBwUtil];
    d.gpm = false;
    return;
  }
  if (d.have_prev) {
    auto get = std::make_unique<nvml::GpmMetricsGet>();  // ~13 KB: not on the stack
    get->version = nvml::kGpmMetricsGetVersion;
    get->numMetrics = 2;
    get->sample1 = d.snap[d.prev];
    get->sample2 = d.snap[cur];
    get->metrics[0].metricId = nvml::kGpmMetricDramBwUtil;
    get->metrics[1].metricId = nvml::kGpmMetricSmOccupancy;
    rc = api.gpm_metrics_get(get.get());
    const char* keys[] = {kDramBwUtil, kSmOccupancy};
    for (int i = 0; i < 2; ++i) {
      if (g.not_available.count(keys[i])) continue;
      nvml::Return one = rc != nvml::kSuccess ? rc : get->metrics[i].nvmlReturn;
      if (one == nvml::kSuccess) {
        s.optional[keys[i]] = get->metrics[i].value;
      } else {
        OptionalFailed(g, keys[i], "nvmlGpmMetricsGet", one, t_s);
      }
    }
  }
  d.prev = cur;
  d.prev_t_s = t_s;
  d.have_prev = true;
}

void GpuSampler::Start(double interval_s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    telemetry_.interval_s = interval_s;
    start_ns_ = MonotonicNs();
  }
  stop_ = false;
  thread_ = std::thread([this, interval_s] { Run(interval_s); });
}

void GpuSampler::Run(double interval_s) {
  for (int64_t k = 0;; ++k) {
    const int64_t due = start_ns_ + static_cast<int64_t>(static_cast<double>(k) * interval_s * 1e9);
    {
      std::unique_lock<std::mutex> lock(stop_mu_);
      const auto wait = std::chrono::nanoseconds(std::max<int64_t>(0, due - MonotonicNs()));
      if (stop_cv_.wait_for(lock, wait, [this] { return stop_; })) return;
    }
    if (!lib_) continue;  // nothing to sample; wait for Stop
    SampleOnce(static_cast<double>(MonotonicNs() - start_ns_) / 1e9);
  }
}

GpuTelemetry GpuSampler::Stop() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    telemetry_.duration_s = static_cast<double>(MonotonicNs() - start_ns_) / 1e9;
  }
  return Snapshot();
}

GpuTelemetry GpuSampler::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return telemetry_;
}

}  // namespace fs::gpu
