// A fake libnvidia-ml.so.1 for the tests: the development machines have no GPU, so this stands
// in for the driver's library (the one fake STYLE allows: hardware we lack). It is found the way
// the real one is, through the library search path (tests set LD_LIBRARY_PATH), so framescope's
// real loader and sampler run against it. Built twice: "full" exports the optional functions,
// "minimal" (FAKE_NVML_MINIMAL) only the required ones, as an old driver would.
//
// Its values come from the script file named by FAKE_NVML_SCRIPT, one directive per line:
//   init_error CODE          nvmlInit_v2 returns CODE (e.g. 9, driver not loaded)
//   devices N                number of GPUs (default 1)
//   name I TEXT...           GPU I's name
//   util I G/M G/M ...       utilization.gpu/.memory per nvmlDeviceGetUtilizationRates call;
//                            the last pair repeats
//   memory I USED TOTAL      bytes
//   lost_after I K           GPU I answers K utilisation calls, then NVML_ERROR_GPU_IS_LOST
//   power I MW | clocks I SM MEM | temperature I C | pcie I TX RX
//                            (an optional reading not given is NVML_ERROR_NOT_SUPPORTED)
//   process I PID SM MEM     a process on GPU I (repeatable)
//   gpm I BW/OCC BW/OCC ...  GPM DRAM_BW_UTIL / SM_OCCUPANCY per nvmlGpmMetricsGet; without
//                            it GPU I reports no GPM support
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "src/gpu/nvml_api.h"

namespace nvml = fs::gpu::nvml;

namespace {

struct FakeDevice {
  std::string name = "Fake GPU";
  std::vector<std::pair<unsigned, unsigned>> util = {{0, 0}};
  unsigned long long used = 0, total = 0;
  long lost_after = -1;
  long util_calls = 0;
  bool lost = false;  // set by the utilisation call after `lost_after`
  long power_mw = -1, clock_sm = -1, clock_mem = -1, temperature = -1, pcie_tx = -1, pcie_rx = -1;
  std::vector<nvml::ProcessUtilizationSample> processes;
  std::vector<std::pair<double, double>> gpm;
  size_t gpm_calls = 0;
  unsigned long long process_clock_us = 0;
};

struct FakeState {
  int init_error = 0;
  std::vector<FakeDevice> devices = std::vector<FakeDevice>(1);
};

FakeState g_state;

// "10/5" -> {10, 5}.
template <typename T>
std::pair<T, T> Pair(const std::string& text) {
  std::pair<T, T> p{};
  std::istringstream in(text);
  char slash = 0;
  in >> p.first >> slash >> p.second;
  return p;
}

FakeDevice* DeviceAt(std::istringstream& in) {
  size_t i = 0;
  in >> i;
  if (i >= g_state.devices.size()) g_state.devices.resize(i + 1);
  return &g_state.devices[i];
}

void Apply(const std::string& word, std::istringstream& in) {
  if (word == "init_error") {
    in >> g_state.init_error;
  } else if (word == "devices") {
    size_t n = 0;
    in >> n;
    g_state.devices.resize(n);
    return;
  }
  if (word == "init_error") return;
  FakeDevice* d = DeviceAt(in);
  std::string item;
  if (word == "name") {
    std::getline(in >> std::ws, d->name);
  } else if (word == "util") {
    d->util.clear();
    while (in >> item) d->util.push_back(Pair<unsigned>(item));
  } else if (word == "memory") {
    in >> d->used >> d->total;
  } else if (word == "lost_after") {
    in >> d->lost_after;
  } else if (word == "power") {
    in >> d->power_mw;
  } else if (word == "clocks") {
    in >> d->clock_sm >> d->clock_mem;
  } else if (word == "temperature") {
    in >> d->temperature;
  } else if (word == "pcie") {
    in >> d->pcie_tx >> d->pcie_rx;
  } else if (word == "process") {
    nvml::ProcessUtilizationSample p{};
    in >> p.pid >> p.smUtil >> p.memUtil;
    d->processes.push_back(p);
  } else if (word == "gpm") {
    while (in >> item) d->gpm.push_back(Pair<double>(item));
  }
}

void LoadScript() {
  g_state = FakeState();
  const char* path = getenv("FAKE_NVML_SCRIPT");
  if (path == nullptr) return;
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream in(line);
    std::string word;
    if (in >> word && word[0] != '#') Apply(word, in);
  }
}

FakeDevice* Find(nvml::Device handle) {
  for (FakeDevice& d : g_state.devices) {
    if (reinterpret_cast<nvml::Device>(&d) == handle) return &d;
  }
  return nullptr;
}

bool Lost(const FakeDevice& d) { return d.lost; }

// An optional reading: NOT_SUPPORTED when the script did not give it.
[[maybe_unused]] nvml::Return Reading(nvml::Device handle, long FakeDevice::*field,
                                      unsigned int* out) {
  FakeDevice* d = Find(handle);
  if (d == nullptr) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  if (Lost(*d)) return nvml::kErrorGpuIsLost;
  if (d->*field < 0) return nvml::kErrorNotSupported;
  *out = static_cast<unsigned int>(d->*field);
  return nvml::kSuccess;
}

}  // namespace

// Only the nvml* functions are exported (the library is built with hidden visibility), as in
// the real library.
#pragma GCC visibility push(default)
extern "C" {

nvml::Return nvmlInit_v2() {
  LoadScript();
  return g_state.init_error;
}

nvml::Return nvmlShutdown() { return nvml::kSuccess; }

const char* nvmlErrorString(nvml::Return r) {
  switch (r) {
    case nvml::kSuccess:
      return "Success";
    case nvml::kErrorNotSupported:
      return "Not Supported";
    case nvml::kErrorNotFound:
      return "Not Found";
    case nvml::kErrorInsufficientSize:
      return "Insufficient Size";
    case nvml::kErrorDriverNotLoaded:
      return "Driver Not Loaded";
    case nvml::kErrorGpuIsLost:
      return "GPU is lost";
    default:
      return "Unknown Error";
  }
}

nvml::Return nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = static_cast<unsigned int>(g_state.devices.size());
  return nvml::kSuccess;
}

nvml::Return nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvml::Device* device) {
  if (index >= g_state.devices.size()) return 2;
  *device = reinterpret_cast<nvml::Device>(&g_state.devices[index]);
  return nvml::kSuccess;
}

nvml::Return nvmlDeviceGetName(nvml::Device device, char* name, unsigned int length) {
  FakeDevice* d = Find(device);
  if (d == nullptr || length == 0) return 2;
  snprintf(name, length, "%s", d->name.c_str());
  return nvml::kSuccess;
}

nvml::Return nvmlDeviceGetUtilizationRates(nvml::Device device, nvml::Utilization* u) {
  FakeDevice* d = Find(device);
  if (d == nullptr) return 2;
  d->lost |= d->lost_after >= 0 && d->util_calls >= d->lost_after;
  if (Lost(*d)) return nvml::kErrorGpuIsLost;
  size_t i = std::min(static_cast<size_t>(d->util_calls), d->util.size() - 1);
  ++d->util_calls;
  u->gpu = d->util[i].first;
  u->memory = d->util[i].second;
  return nvml::kSuccess;
}

nvml::Return nvmlDeviceGetMemoryInfo(nvml::Device device, nvml::Memory* m) {
  FakeDevice* d = Find(device);
  if (d == nullptr) return 2;
  if (Lost(*d)) return nvml::kErrorGpuIsLost;
  m->total = d->total;
  m->used = d->used;
  m->free = d->total - d->used;
  return nvml::kSuccess;
}

#ifndef FAKE_NVML_MINIMAL

nvml::Return nvmlDeviceGetPowerUsage(nvml::Device device, unsigned int* mw) {
  return Reading(device, &FakeDevice::power_mw, mw);
}

nvml::Return nvmlDeviceGetClockInfo(nvml::Device device, int type, unsigned int* mhz) {
  if (type == nvml::kClockSm) return Reading(device, &FakeDevice::clock_sm, mhz);
  if (type == nvml::kClockMem) return Reading(device, &FakeDevice::clock_mem, mhz);
  return nvml::kErrorNotSupported;
}

nvml::Return nvmlDeviceGetTemperature(nvml::Device device, int sensor, unsigned int* c) {
  if (sensor != nvml::kTemperatureGpu) return nvml::kErrorNotSupported;
  return Reading(device, &FakeDevice::temperature, c);
}

nvml::Return nvmlDeviceGetPcieThroughput(nvml::Device device, int counter, unsigned int* kb_s) {
  if (counter == nvml::kPcieUtilTxBytes) return Reading(device, &FakeDevice::pcie_tx, kb_s);
  if (counter == nvml::kPcieUtilRxBytes) return Reading(device, &FakeDevice::pcie_rx, kb_s);
  return nvml::kErrorNotSupported;
}

// As NVML: too small a buffer gets INSUFFICIENT_SIZE and the count needed; only samples newer
// than `last_seen_us` are returned, NOT_FOUND when there are none.
nvml::Return nvmlDeviceGetProcessUtilization(nvml::Device device,
                                             nvml::ProcessUtilizationSample* out,
                                             unsigned int* count, unsigned long long last_seen_us) {
  FakeDevice* d = Find(device);
  if (d == nullptr || count == nullptr) return 2;
  if (Lost(*d)) return nvml::kErrorGpuIsLost;
  if (d->processes.empty()) return nvml::kErrorNotSupported;
  if (out == nullptr || *count < d->processes.size()) {
    *count = static_cast<unsigned int>(d->processes.size());
    return nvml::kErrorInsufficientSize;
  }
  d->process_clock_us += 1000;
  if (d->process_clock_us <= last_seen_us) return nvml::kErrorNotFound;
  for (size_t i = 0; i < d->processes.size(); ++i) {
    out[i] = d->processes[i];
    out[i].timeStamp = d->process_clock_us;
  }
  *count = static_cast<unsigned int>(d->processes.size());
  return nvml::kSuccess;
}

struct nvml::GpmSampleSt {
  FakeDevice* device = nullptr;
};

nvml::Return nvmlGpmQueryDeviceSupport(nvml::Device device, nvml::GpmSupport* support) {
  FakeDevice* d = Find(device);
  if (d == nullptr || support->version != nvml::kGpmSupportVersion) return 2;
  support->isSupportedDevice = d->gpm.empty() ? 0 : 1;
  return nvml::kSuccess;
}

nvml::Return nvmlGpmSampleAlloc(nvml::GpmSample* sample) {
  *sample = new nvml::GpmSampleSt();
  return nvml::kSuccess;
}

nvml::Return nvmlGpmSampleFree(nvml::GpmSample sample) {
  delete sample;
  return nvml::kSuccess;
}

nvml::Return nvmlGpmSampleGet(nvml::Device device, nvml::GpmSample sample) {
  FakeDevice* d = Find(device);
  if (d == nullptr || sample == nullptr) return 2;
  if (Lost(*d)) return nvml::kErrorGpuIsLost;
  sample->device = d;
  return nvml::kSuccess;
}

// Metrics over the interval between two snapshots of one device: the script's next pair.
nvml::Return nvmlGpmMetricsGet(nvml::GpmMetricsGet* get) {
  if (get->version != nvml::kGpmMetricsGetVersion || get->numMetrics > nvml::kGpmMetricMax) {
    return 25;  // NVML_ERROR_ARGUMENT_VERSION_MISMATCH
  }
  FakeDevice* d = get->sample2 ? get->sample2->device : nullptr;
  if (d == nullptr || get->sample1 == nullptr || get->sample1->device != d) return 2;
  const auto& v = d->gpm[std::min(d->gpm_calls++, d->gpm.size() - 1)];
  for (unsigned i = 0; i < get->numMetrics; ++i) {
    nvml::GpmMetric& m = get->metrics[i];
    m.nvmlReturn = nvml::kSuccess;
    if (m.metricId == nvml::kGpmMetricDramBwUtil) {
      m.value = v.first;
    } else if (m.metricId == nvml::kGpmMetricSmOccupancy) {
      m.value = v.second;
    } else {
      m.nvmlReturn = nvml::kErrorNotSupported;
    }
  }
  return nvml::kSuccess;
}

#endif  // FAKE_NVML_MINIMAL

}  // extern "C"
#pragma GCC visibility pop
