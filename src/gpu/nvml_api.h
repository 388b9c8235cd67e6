// Our own declarations of the part of NVML (libnvidia-ml.so.1) that framescope calls, so it
// builds and runs without the NVIDIA driver or CUDA headers (nvml.h is never included). The
// library is dlopen()ed at run time (nvml_loader.h); a missing library or function is a value,
// not a link error.
//
// Source of every value below: NVIDIA's nvml.h (NVML API version 13) as vendored in NVIDIA's
// own repository github.com/NVIDIA/go-nvml, pkg/nvml/nvml.h (commit 2f9e261f, 2026-07-01); the
// line numbers cited are that file's. NVML's C ABI is stable across versions: functions whose
// layout changed got a new name (_v2), and the structs declared here are the unversioned ones.
// Enums are C enums, int-sized on every ABI NVML ships for (x86-64, aarch64).
#ifndef FRAMESCOPE_GPU_NVML_API_H_
#define FRAMESCOPE_GPU_NVML_API_H_

#include <cstddef>

namespace fs::gpu::nvml {

// nvmlReturn_t (nvml.h:1302-1337): only the codes we branch on.
using Return = int;
inline constexpr Return kSuccess = 0;
inline constexpr Return kErrorUninitialized = 1;
inline constexpr Return kErrorNotSupported = 3;
inline constexpr Return kErrorNotFound = 6;          // e.g. no process samples since the last
inline constexpr Return kErrorInsufficientSize = 7;  // buffer too small; count set to the need
inline constexpr Return kErrorDriverNotLoaded = 9;
inline constexpr Return kErrorGpuIsLost = 15;  // "fallen off the bus or ... inaccessible"
inline constexpr Return kErrorUnknown = 999;

// nvmlDevice_t is an opaque handle, `typedef struct nvmlDevice_st* nvmlDevice_t` in NVIDIA's
// header (go-nvml wraps the pointer in a one-member struct for cgo, nvml.h:158-161: the same
// ABI, passed in one register).
struct DeviceSt;
using Device = DeviceSt*;

// nvmlDeviceGetName's buffer: NVML_DEVICE_NAME_V2_BUFFER_SIZE (nvml.h:4126).
inline constexpr unsigned kDeviceNameBufferSize = 96;

// nvmlUtilization_t (nvml.h:251-255): percent of time over the driver's last sample period
// (1/6 s .. 1 s) during which a kernel ran (gpu) / device memory was read or written (memory).
// `memory` is a share of TIME, not of bandwidth.
struct Utilization {
  unsigned int gpu;
  unsigned int memory;
};

// nvmlMemory_t (v1, nvml.h:261-267), bytes.
struct Memory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

// nvmlProcessUtilizationSample_t (nvml.h:1386-1394). timeStamp: CPU time in microseconds.
struct ProcessUtilizationSample {
  unsigned int pid;
  unsigned long long timeStamp;
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
};

// nvmlClockType_t (nvml.h:1116-1120), nvmlTemperatureSensors_t (nvml.h:969-971),
// nvmlPcieUtilCounter_t (nvml.h:642-645; KB/s over a 20 ms window).
inline constexpr int kClockSm = 1;
inline constexpr int kClockMem = 2;
inline constexpr int kTemperatureGpu = 0;
inline constexpr int kPcieUtilTxBytes = 0;
inline constexpr int kPcieUtilRxBytes = 1;

// GPM (GPU Performance Monitoring, Hopper and later; nvml.h:13489-13990). Metrics are computed
// from two counter samples taken >= 100 ms apart.
struct GpmSampleSt;
using GpmSample = GpmSampleSt*;  // nvmlGpmSample_t: opaque handle, as Device above

// nvmlGpmMetricId_t values (nvml.h:13508, 13515): percent 0..100.
inline constexpr unsigned kGpmMetricSmOccupancy = 3;  // active warps vs the theoretical maximum
inline constexpr unsigned kGpmMetricDramBwUtil = 10;  // DRAM bandwidth used vs the maximum
// NVML_GPM_METRIC_MAX (nvml.h:13808): the array length of nvmlGpmMetricsGet_t. Older drivers
// have a smaller maximum; they read only `numMetrics` entries, so a larger array is safe.
inline constexpr unsigned kGpmMetricMax = 333;

// nvmlGpmMetricMetricInfo_t, nvmlGpmMetric_t, nvmlGpmMetricsGet_t (nvml.h:13827-13855).
struct GpmMetricInfo {
  char* shortName;
  char* longName;
  char* unit;
};
struct GpmMetric {
  unsigned int metricId;
  Return nvmlReturn;  // per metric: value valid only when kSuccess
  double value;
  GpmMetricInfo metricInfo;
};
inline constexpr unsigned kGpmMetricsGetVersion = 1;  // NVML_GPM_METRICS_GET_VERSION
struct GpmMetricsGet {
  unsigned int version;
  unsigned int numMetrics;
  GpmSample sample1;
  GpmSample sample2;
  GpmMetric metrics[kGpmMetricMax];
};
inline constexpr unsigned kGpmSupportVersion = 1;  // NVML_GPM_SUPPORT_VERSION
struct GpmSupport {                                // nvmlGpmSupport_t
  unsigned int version;
  unsigned int isSupportedDevice;
};

// The LP64 layouts the library expects (a wrong member type would shift these).
static_assert(sizeof(Utilization) == 8);
static_assert(sizeof(Memory) == 24);
static_assert(sizeof(ProcessUtilizationSample) == 32);
static_assert(offsetof(ProcessUtilizationSample, timeStamp) == 8);
static_assert(sizeof(GpmMetric) == 40 && offsetof(GpmMetric, value) == 8);
static_assert(offsetof(GpmMetricsGet, sample1) == 8 && offsetof(GpmMetricsGet, metrics) == 24);

// The functions, by their exported names (nvml.h line of each declaration).
extern "C" {
using InitFn = Return (*)();                                         // nvmlInit_v2, :4023
using ShutdownFn = Return (*)();                                     // nvmlShutdown, :4057
using ErrorStringFn = const char* (*)(Return);                       // nvmlErrorString, :4078
using DeviceGetCountFn = Return (*)(unsigned int*);                  // nvmlDeviceGetCount_v2, :4594
using DeviceGetHandleByIndexFn = Return (*)(unsigned int, Device*);  // _v2, :4662
using DeviceGetNameFn = Return (*)(Device, char*, unsigned int);     // :4805
using DeviceGetUtilizationRatesFn = Return (*)(Device, Utilization*);      // :7109
using DeviceGetMemoryInfoFn = Return (*)(Device, Memory*);                 // :6729
using DeviceGetPowerUsageFn = Return (*)(Device, unsigned int*);           // milliwatts, :6579
using DeviceGetClockInfoFn = Return (*)(Device, int, unsigned int*);       // MHz, :5650
using DeviceGetTemperatureFn = Return (*)(Device, int, unsigned int*);     // Celsius, :5979
using DeviceGetPcieThroughputFn = Return (*)(Device, int, unsigned int*);  // KB/s, :5611
using DeviceGetProcessUtilizationFn = Return (*)(Device, ProcessUtilizationSample*, unsigned int*,
                                                 unsigned long long);  // :8549
using GpmQueryDeviceSupportFn = Return (*)(Device, GpmSupport*);       // :13988
using GpmSampleAllocFn = Return (*)(GpmSample*);                       // :13930
using GpmSampleFreeFn = Return (*)(GpmSample);                         // :13914
using GpmSampleGetFn = Return (*)(Device, GpmSample);                  // :13950
using GpmMetricsGetFn = Return (*)(GpmMetricsGet*);                    // :13900
}

}  // namespace fs::gpu::nvml

#endif  // FRAMESCOPE_GPU_NVML_API_H_
