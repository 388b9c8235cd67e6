// The machine's measured peak: the roofs a per-layer profile is placed against (issue 12).
//
// Three measurements, each single-threaded and on all cores (one thread per CPU this process may
// run on, pinned to it when the kernel allows), each repeated and the best kept as STREAM does:
//   - FMA: fp32 fused multiply-adds on independent accumulator chains (enough of them to cover
//     the FMA latency on every ISA here), the ceiling no real kernel passes;
//   - GEMM: a blocked fp32 matrix multiply with packed panels and a register tile, the
//     "achievable" peak of GEMM-like work such as OpenCV's convolutions;
//   - triad: STREAM's a[i] = b[i] + s*c[i] over double arrays larger than the last-level cache.
// The build has no -march flag, so the kernels are compiled per ISA (target attributes) and the
// best one the CPU and OS support is chosen at run time: AVX-512F, else AVX2+FMA, else SSE2
// (which has no FMA: a multiply then an add, still 2 FLOP).
#ifndef FRAMESCOPE_MODEL_MACHINE_PEAK_H_
#define FRAMESCOPE_MODEL_MACHINE_PEAK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"

namespace fs::model {

enum class Isa { kSse2, kAvx2Fma, kAvx512f };
const char* IsaName(Isa isa);  // "sse2", "avx2+fma", "avx512f"
bool IsaSupported(Isa isa);    // by this CPU and OS (__builtin_cpu_supports)
Isa BestIsa();
int IsaLanes(Isa isa);  // fp32 lanes per vector: 4, 8, 16

// The FMA kernel: kFmaChains accumulators, chain j starting at FmaChainStart(j) in every lane,
// each step acc = acc * kFmaMultiplier + kFmaAddend (one rounding with FMA, two on SSE2). The
// values stay near 1 (no overflow, no denormals), and the checksum depends on the iteration
// count, so a test can recompute it exactly and the compiler cannot drop the work.
inline constexpr int kFmaChains = 12;  // >= latency (4) x FMA pipes (2) on current x86 cores
inline constexpr float kFmaMultiplier = 0.999f;
inline constexpr float kFmaAddend = 0.001f;
inline constexpr float FmaChainStart(int chain) {
  return 1.0f + 0.0625f * static_cast<float>(chain);
}

struct FmaRun {
  double flops = 0;     // iterations x kFmaChains x lanes x 2, exactly
  double checksum = 0;  // every lane of every chain summed in double, chain by chain
};
FmaRun RunFmaKernel(Isa isa, int64_t iterations);

// C (m x n) = A (m x k) * B (k x n), fp32, row-major and dense. Keeps its packing buffers, so a
// repeated multiply does not allocate. The ISA must be supported (CHECKed).
class Sgemm {
 public:
  explicit Sgemm(Isa isa);
  void Multiply(int m, int n, int k, const float* a, const float* b, float* c);
  static double Flops(int m, int n, int k) { return 2.0 * m * n * k; }

 private:
  Isa isa_;
  std::vector<float> a_pack_, b_pack_;
};

// One counter over its repetitions (rates: FLOP/s or bytes/s).
struct Measurement {
  double best = 0;  // the maximum: the repetition least disturbed by other work (STREAM's rule)
  double median = 0;
  double worst = 0;
  int repetitions = 0;
  double rep_seconds = 0;  // median wall time of one repetition
};

struct PeakOptions {
  std::optional<Isa> isa;  // default: BestIsa()
  int threads = 0;         // all-core runs; 0: one per CPU in this process's affinity mask
  // Short repetitions and the best of many: on a shared machine a few milliseconds often pass
  // undisturbed, tens of milliseconds rarely do, and an all-core repetition needs every CPU
  // free at once (measured here at load 12 on 2 CPUs: 8 x 3 ms often missed, 20 x 1 ms did not).
  int repetitions = 20;
  double fma_rep_seconds = 0.002;  // per repetition
  double gemm_rep_seconds = 0.003;
  int gemm_n = 384;  // square multiply; a multiple of every ISA's register tile
  // One full pass over the arrays each (~15-30 ms at the default size).
  int triad_repetitions = 5;
  // Each triad array is 4 x the last-level cache, clamped to these (the triad runs one pass per
  // repetition, and first-touching the arrays is most of its cost).
  uint64_t min_array_bytes = uint64_t{16} << 20;
  uint64_t max_array_bytes = uint64_t{128} << 20;
};

struct MachinePeak {
  Isa isa = Isa::kSse2;
  int threads = 0;                              // in the all-core runs
  int online_cpus = 0;                          // sysconf(_SC_NPROCESSORS_ONLN), for comparison
  bool pinned = false;                          // every thread was pinned to its own CPU
  Measurement flops_single, flops_all;          // FMA kernel, FLOP/s
  Measurement gemm_single, gemm_all;            // Sgemm, FLOP/s
  Measurement bandwidth_single, bandwidth_all;  // triad, bytes/s as STREAM counts them
  int gemm_n = 0;
  uint64_t llc_bytes = 0;  // 0 when unknown
  std::string llc_source;
  uint64_t triad_array_bytes = 0;  // each of the three arrays
  // Wall time of each part (calibration and setup included) and of the whole.
  double fma_seconds = 0, gemm_seconds = 0, triad_seconds = 0, total_seconds = 0;

  // Every counter with its unit and the method behind it; rates also in GFLOP/s and GB/s.
  Json ToJson() const;
};

// Invalid options (no repetitions, a non-positive duration, an unsupported ISA) and failures to
// allocate the arrays or start the threads are errors.
StatusOr<MachinePeak> MeasureMachinePeak(const PeakOptions& options = {});

// The last-level data cache: sysfs /sys/devices/system/cpu/cpu0/cache/index*/ (highest level
// that is not an instruction cache), else glibc's sysconf(_SC_LEVEL3_CACHE_SIZE / LEVEL2) from
// CPUID. Bytes 0 with source "unknown" when neither says.
struct CacheSize {
  uint64_t bytes = 0;
  std::string source;
};
CacheSize LastLevelCache();
// sysfs's size format: "32768K", "1M", "512" (bytes).
std::optional<uint64_t> ParseCacheSize(const std::string& text);

}  // namespace fs::model

#endif  // FRAMESCOPE_MODEL_MACHINE_PEAK_H_
