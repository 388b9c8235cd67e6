#include "src/model/machine_peak.h"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/logging.h"

// The kernels below pass vectors by value between the ISA traits and the templates; every such
// call is inlined (flatten) into a function compiled for that ISA, so no call crosses an ABI
// boundary and GCC's "AVX vector return without AVX enabled changes the ABI" note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace fs::model {
namespace {

// ---- Per-ISA vector traits. Fma(a, b, c) = a * b + c. -------------------------------------------
// The templates that use them carry no target attribute (GCC cannot take it from a template
// parameter); each is instantiated only inside a [[gnu::target, gnu::flatten]] entry point, which
// inlines the whole call tree and so compiles it for that ISA.

struct Sse2 {
  using V = __m128;
  static constexpr int kLanes = 4, kMr = 4, kNrv = 2;  // GEMM tile 4 x 8: 8 accumulators
  static V Zero() { return _mm_setzero_ps(); }
  static V Set(float x) { return _mm_set1_ps(x); }
  static V Load(const float* p) { return _mm_loadu_ps(p); }
  static void Store(float* p, V v) { _mm_storeu_ps(p, v); }
  static V Add(V a, V b) { return _mm_add_ps(a, b); }
  static V Fma(V a, V b, V c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
};

#define FS_AVX2 gnu::target("avx2,fma")
struct Avx2 {
  using V = __m256;
  static constexpr int kLanes = 8, kMr = 6, kNrv = 2;  // 6 x 16: 12 of 16 registers
  [[FS_AVX2]] static V Zero() { return _mm256_setzero_ps(); }
  [[FS_AVX2]] static V Set(float x) { return _mm256_set1_ps(x); }
  [[FS_AVX2]] static V Load(const float* p) { return _mm256_loadu_ps(p); }
  [[FS_AVX2]] static void Store(float* p, V v) { _mm256_storeu_ps(p, v); }
  [[FS_AVX2]] static V Add(V a, V b) { return _mm256_add_ps(a, b); }
  [[FS_AVX2]] static V Fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};

#define FS_AVX512 gnu::target("avx512f")
struct Avx512 {
  using V = __m512;
  static constexpr int kLanes = 16, kMr = 12, kNrv = 2;  // 12 x 32: 24 of 32 registers
  [[FS_AVX512]] static V Zero() { return _mm512_setzero_ps(); }
  [[FS_AVX512]] static V Set(float x) { return _mm512_set1_ps(x); }
  [[FS_AVX512]] static V Load(const float* p) { return _mm512_loadu_ps(p); }
  [[FS_AVX512]] static void Store(float* p, V v) { _mm512_storeu_ps(p, v); }
  [[FS_AVX512]] static V Add(V a, V b) { return _mm512_add_ps(a, b); }
  [[FS_AVX512]] static V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};

// ---- Kernels -----------------------------------------------------------------------------------

template <class T>
inline double FmaLoop(int64_t iterations) {
  typename T::V acc[kFmaChains];
#pragma GCC unroll 16
  for (int j = 0; j < kFmaChains; ++j) acc[j] = T::Set(FmaChainStart(j));
  const typename T::V m = T::Set(kFmaMultiplier), add = T::Set(kFmaAddend);
  for (int64_t i = 0; i < iterations; ++i) {
    // Fully unrolled, so the chains live in registers and issue back to back.
#pragma GCC unroll 16
    for (int j = 0; j < kFmaChains; ++j) acc[j] = T::Fma(acc[j], m, add);
  }
  double sum = 0;
  float lanes[T::kLanes];
  for (int j = 0; j < kFmaChains; ++j) {
    T::Store(lanes, acc[j]);
    for (float x : lanes) sum += x;
  }
  return sum;
}

// C[kMr x kNr] += Ap * Bp over kc steps. Ap: kMr floats per step; Bp: kNr floats per step.
template <class T>
inline void MicroKernel(int kc, const float* ap, const float* bp, float* c, int ldc) {
  constexpr int kMr = T::kMr, kNrv = T::kNrv;
  constexpr std::ptrdiff_t kL = T::kLanes;
  typename T::V acc[kMr][kNrv];
#pragma GCC unroll 16
  for (int i = 0; i < kMr; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < kNrv; ++v) acc[i][v] = T::Zero();
  }
  for (int p = 0; p < kc; ++p, ap += kMr, bp += kNrv * kL) {
    typename T::V b[kNrv];
#pragma GCC unroll 4
    for (int v = 0; v < kNrv; ++v) b[v] = T::Load(bp + v * kL);
#pragma GCC unroll 16
    for (int i = 0; i < kMr; ++i) {
      const typename T::V a = T::Set(ap[i]);
#pragma GCC unroll 4
      for (int v = 0; v < kNrv; ++v) acc[i][v] = T::Fma(a, b[v], acc[i][v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMr; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < kNrv; ++v) {
      float* out = c + static_cast<size_t>(i) * ldc + v * kL;
      T::Store(out, T::Add(T::Load(out), acc[i][v]));
    }
  }
}

using FmaFn = double (*)(int64_t iterations);
using MicroFn = void (*)(int kc, const float* ap, const float* bp, float* c, int ldc);

double FmaSse2(int64_t n) { return FmaLoop<Sse2>(n); }
[[FS_AVX2, gnu::flatten]] double FmaAvx2(int64_t n) { return FmaLoop<Avx2>(n); }
[[FS_AVX512, gnu::flatten]] double FmaAvx512(int64_t n) { return FmaLoop<Avx512>(n); }

void MicroSse2(int kc, const float* ap, const float* bp, float* c, int ldc) {
  MicroKernel<Sse2>(kc, ap, bp, c, ldc);
}
[[FS_AVX2, gnu::flatten]] void MicroAvx2(int kc, const float* ap, const float* bp, float* c,
                                         int ldc) {
  MicroKernel<Avx2>(kc, ap, bp, c, ldc);
}
[[FS_AVX512, gnu::flatten]] void MicroAvx512(int kc, const float* ap, const float* bp, float* c,
                                             int ldc) {
  MicroKernel<Avx512>(kc, ap, bp, c, ldc);
}

struct IsaKernels {
  int lanes, mr, nr;
  FmaFn fma;
  MicroFn micro;
};

template <class T>
constexpr IsaKernels KernelsOf(FmaFn fma, MicroFn micro) {
  return {T::kLanes, T::kMr, T::kNrv * T::kLanes, fma, micro};
}

const IsaKernels& Kernels(Isa isa) {
  static constexpr IsaKernels kSse2 = KernelsOf<Sse2>(FmaSse2, MicroSse2);
  static constexpr IsaKernels kAvx2 = KernelsOf<Avx2>(FmaAvx2, MicroAvx2);
  static constexpr IsaKernels kAvx512 = KernelsOf<Avx512>(FmaAvx512, MicroAvx512);
  switch (isa) {
    case Isa::kAvx512f:
      return kAvx512;
    case Isa::kAvx2Fma:
      return kAvx2;
    case Isa::kSse2:
      break;
  }
  return kSse2;
}

// ---- GEMM blocking (BLIS's loop order, no NC split: B's packed block fits L2 at our sizes) ------

constexpr int kKc = 256;       // depth of a packed block: a B panel (kKc x nr) stays in L1
constexpr int kMcPanels = 10;  // A block = 10 panels of mr rows (120 x 256 floats with AVX-512)

// `floats` of `v` starting on a 64-byte line (vector loads of a packed panel never split a line).
float* AlignedData(std::vector<float>* v, size_t floats) {
  constexpr size_t kLine = 64;
  if (v->size() < floats + kLine / sizeof(float)) v->resize(floats + kLine / sizeof(float));
  const auto addr = reinterpret_cast<uintptr_t>(v->data());
  return v->data() + (kLine - addr % kLine) % kLine / sizeof(float);
}

// Rows [0, rows) x columns [0, kc) of A (row stride lda) as panels of mr rows, step by step;
// rows past the end are zero so the micro-kernel always runs full tiles.
void PackA(const float* a, int lda, int rows, int kc, int mr, float* out) {
  for (int i0 = 0; i0 < rows; i0 += mr) {
    for (int p = 0; p < kc; ++p) {
      for (int i = 0; i < mr; ++i)
        *out++ = i0 + i < rows ? a[static_cast<size_t>(i0 + i) * lda + p] : 0.0f;
    }
  }
}

// Rows [0, kc) x columns [0, cols) of B as panels of nr columns, zero-padded likewise.
void PackB(const float* b, int ldb, int kc, int cols, int nr, float* out) {
  for (int j0 = 0; j0 < cols; j0 += nr) {
    for (int p = 0; p < kc; ++p) {
      const float* row = b + static_cast<size_t>(p) * ldb + j0;
      const int valid = std::min(nr, cols - j0);
      std::memcpy(out, row, valid * sizeof(float));
      std::fill(out + valid, out + nr, 0.0f);
      out += nr;
    }
  }
}

// C[rows x cols] += packed A block * packed B block; edge tiles go through a scratch tile.
void MacroKernel(const IsaKernels& k, int rows, int cols, int kc, const float* ap, const float* bp,
                 float* c, int ldc) {
  float tile[Avx512::kMr * Avx512::kNrv * Avx512::kLanes];  // the largest mr x nr
  for (int j0 = 0; j0 < cols; j0 += k.nr) {
    const float* b_panel = bp + static_cast<size_t>(j0) * kc;
    for (int i0 = 0; i0 < rows; i0 += k.mr) {
      const float* a_panel = ap + static_cast<size_t>(i0) * kc;
      float* out = c + static_cast<size_t>(i0) * ldc + j0;
      const int mr = std::min(k.mr, rows - i0), nr = std::min(k.nr, cols - j0);
      if (mr == k.mr && nr == k.nr) {
        k.micro(kc, a_panel, b_panel, out, ldc);
        continue;
      }
      std::fill_n(tile, k.mr * k.nr, 0.0f);
      k.micro(kc, a_panel, b_panel, tile, k.nr);
      for (int i = 0; i < mr; ++i) {
        for (int j = 0; j < nr; ++j) out[i * ldc + j] += tile[i * k.nr + j];
      }
    }
  }
}

int RoundUp(int x, int to) { return (x + to - 1) / to * to; }

double FmaFlops(Isa isa, int64_t iterations) {
  return 2.0 * static_cast<double>(iterations) * kFmaChains * Kernels(isa).lanes;
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kAvx512f:
      return "avx512f";
    case Isa::kAvx2Fma:
      return "avx2+fma";
    case Isa::kSse2:
      break;
  }
  return "sse2";
}

// __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kAvx512f:
      return __builtin_cpu_supports("avx512f");
    case Isa::kAvx2Fma:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kSse2:
      break;
  }
  return true;  // x86-64 baseline
}

Isa BestIsa() {
  for (Isa isa : {Isa::kAvx512f, Isa::kAvx2Fma}) {
    if (IsaSupported(isa)) return isa;
  }
  return Isa::kSse2;
}

int IsaLanes(Isa isa) { return Kernels(isa).lanes; }

FmaRun RunFmaKernel(Isa isa, int64_t iterations) {
  CHECK(IsaSupported(isa)) << IsaName(isa) << " is not supported here";
  const IsaKernels& k = Kernels(isa);
  FmaRun run;
  run.checksum = k.fma(iterations);
  run.flops = FmaFlops(isa, iterations);
  return run;
}

Sgemm::Sgemm(Isa isa) : isa_(isa) { CHECK(IsaSupported(isa)) << IsaName(isa) << " unsupported"; }

void Sgemm::Multiply(int m, int n, int k, const float* a, const float* b, float* c) {
  CHECK(m >= 0 && n >= 0 && k >= 0);
  const IsaKernels& kern = Kernels(isa_);
  std::fill(c, c + static_cast<size_t>(m) * n, 0.0f);
  const int mc = kMcPanels * kern.mr;
  float* bp = AlignedData(&b_pack_, static_cast<size_t>(RoundUp(n, kern.nr)) * kKc);
  float* ap = AlignedData(&a_pack_, static_cast<size_t>(mc) * kKc);
  for (int p0 = 0; p0 < k; p0 += kKc) {
    const int kc = std::min(kKc, k - p0);
    PackB(b + static_cast<size_t>(p0) * n, n, kc, n, kern.nr, bp);
    for (int i0 = 0; i0 < m; i0 += mc) {
      const int rows = std::min(mc, m - i0);
      PackA(a + static_cast<size_t>(i0) * k + p0, k, rows, kc, kern.mr, ap);
      MacroKernel(kern, rows, n, kc, ap, bp, c + static_cast<size_t>(i0) * n, n);
    }
  }
}

// ---- Measurement ---------------------------------------------------------------------------
namespace {

struct Plan {
  Isa isa = Isa::kSse2;
  std::vector<int> cpus;  // thread t runs on cpus[t % size]
  int threads = 1;        // in the all-core runs
  int reps = 1;
  bool pinned = true;  // every thread so far was pinned to a CPU of its own
};

// Work of one repetition on one thread of `threads`; setup runs first, on the thread itself.
using ThreadFn = std::function<void(int thread, int threads)>;

std::vector<int> AllowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
  if (cpus.empty()) cpus.push_back(0);  // unknown mask: one unpinned-in-effect thread
  return cpus;
}

bool PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

// Where the threads of a measurement meet before and after each repetition; cancellable, so a
// failure to start one thread releases those already waiting.
class Rendezvous {
 public:
  explicit Rendezvous(int parties) : parties_(parties) {}
  // False once cancelled: the caller stops.
  bool ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t generation = generation_;
    if (++arrived_ == parties_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != generation || cancelled_; });
    }
    return !cancelled_;
  }
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const int parties_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool cancelled_ = false;
};

// Runs `work` on `threads` threads `plan.reps` times; every repetition starts all threads
// together and lasts from the first thread's start to the last one's end. The workers take the
// times themselves: the coordinating thread is not pinned and, with every CPU busy, can wake up
// long after the work began (measured here: 4 us "repetitions" of 1.5 ms of work).
StatusOr<std::vector<double>> RunTeam(Plan* plan, int threads, const ThreadFn& setup,
                                      const ThreadFn& work) {
  Rendezvous sync(threads + 1);
  std::atomic<bool> pinned{true};
  std::vector<int64_t> start(threads), end(threads);
  auto body = [&](int t) {
    if (!PinTo(plan->cpus[t % plan->cpus.size()])) pinned = false;
    if (setup) setup(t, threads);
    for (int r = 0; r < plan->reps && sync.ArriveAndWait(); ++r) {
      start[t] = MonotonicNs();
      work(t, threads);
      end[t] = MonotonicNs();
      sync.ArriveAndWait();
    }
  };
  std::vector<std::thread> team;
  try {
    for (int t = 0; t < threads; ++t) team.emplace_back(body, t);
  } catch (const std::system_error& e) {
    sync.Cancel();
    for (std::thread& th : team) th.join();
    return Err(std::string("starting a measurement thread: ") + e.what() +
               " (ask for fewer threads)");
  }
  std::vector<double> seconds;
  for (int r = 0; r < plan->reps; ++r) {
    sync.ArriveAndWait();
    sync.ArriveAndWait();  // the rendezvous orders the workers' writes before these reads
    const int64_t span =
        *std::max_element(end.begin(), end.end()) - *std::min_element(start.begin(), start.end());
    seconds.push_back(std::max(1e-9, static_cast<double>(span) * 1e-9));
  }
  for (std::thread& th : team) th.join();
  plan->pinned = plan->pinned && pinned && threads <= static_cast<int>(plan->cpus.size());
  return seconds;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Measurement Summarize(const std::vector<double>& seconds, double work_per_rep) {
  std::vector<double> rates;
  rates.reserve(seconds.size());
  for (double s : seconds) rates.push_back(work_per_rep / s);
  Measurement m;
  m.best = *std::max_element(rates.begin(), rates.end());
  m.worst = *std::min_element(rates.begin(), rates.end());
  m.median = Median(rates);
  m.repetitions = static_cast<int>(seconds.size());
  m.rep_seconds = Median(seconds);
  return m;
}

// A counter on all threads, then on one. work_per_thread(threads): FLOPs or bytes one thread
// does in a repetition when `threads` share it. `setup` runs for the all-thread team only: the
// single-thread run reuses what thread 0 set up (the triad's arrays are filled once).
Status MeasureCounter(Plan* plan, const std::function<double(int threads)>& work_per_thread,
                      const ThreadFn& setup, const ThreadFn& work, Measurement* single,
                      Measurement* all) {
  ASSIGN_OR_RETURN(auto all_s, RunTeam(plan, plan->threads, setup, work));
  *all = Summarize(all_s, work_per_thread(plan->threads) * plan->threads);
  ASSIGN_OR_RETURN(auto single_s, RunTeam(plan, 1, nullptr, work));
  *single = Summarize(single_s, work_per_thread(1));
  return Status::Ok();
}

// Units of `run` that take about target_s on one thread: after a warm-up call (code paged in,
// clock ramped up), a trial grows 4x until it lasts 1 ms, then scales linearly from the fastest
// of three such trials (one of them slowed by other work would shorten every repetition).
int64_t CalibrateUnits(const std::function<void(int64_t units)>& run, double target_s) {
  auto timed = [&](int64_t units) {
    const int64_t t0 = MonotonicNs();
    run(units);
    return static_cast<double>(MonotonicNs() - t0) * 1e-9;
  };
  run(1);
  int64_t units = 1;
  double s = timed(units);
  for (; s < 0.001 && units < (int64_t{1} << 40); s = timed(units)) units *= 4;
  s = std::min({s, timed(units), timed(units)});
  return std::max<int64_t>(1, std::llround(static_cast<double>(units) * target_s / s));
}

Status MeasureFma(Plan* plan, double rep_s, MachinePeak* out) {
  constexpr int64_t kUnit = 1024;  // iterations per calibration unit
  const Isa isa = plan->isa;
  std::vector<double> sink(plan->threads, 0.0);  // checksums: the calls cannot be dropped
  const int64_t iterations =
      kUnit *
      CalibrateUnits([&](int64_t u) { sink[0] += RunFmaKernel(isa, u * kUnit).checksum; }, rep_s);
  const double flops = FmaFlops(isa, iterations);
  RETURN_IF_ERROR(MeasureCounter(
      plan, [&](int) { return flops; }, nullptr,
      [&](int t, int) { sink[t] += RunFmaKernel(isa, iterations).checksum; }, &out->flops_single,
      &out->flops_all));
  for (double s : sink) {
    if (!std::isfinite(s)) return Err("the FMA kernel produced a non-finite checksum");
  }
  return Status::Ok();
}

struct GemmState {
  GemmState(Isa isa, int n) : gemm(isa), a(static_cast<size_t>(n) * n), b(a.size()), c(a.size()) {
    // Values in [-0.5, 0.5]: no overflow or denormals however often the product is recomputed.
    for (size_t i = 0; i < a.size(); ++i) {
      a[i] = static_cast<float>(i % 13) / 13.0f - 0.5f;
      b[i] = static_cast<float>(i % 7) / 7.0f - 0.5f;
    }
  }
  Sgemm gemm;
  std::vector<float> a, b, c;
};

Status MeasureGemm(Plan* plan, double rep_s, int n, MachinePeak* out) {
  // Made once for all repetitions and both runs, each by the thread that uses it (first touch);
  // thread 0's by the calibrating thread.
  std::vector<std::unique_ptr<GemmState>> states(plan->threads);
  auto multiply = [&](int t, int64_t times) {
    GemmState& s = *states[t];
    for (int64_t i = 0; i < times; ++i)
      s.gemm.Multiply(n, n, n, s.a.data(), s.b.data(), s.c.data());
  };
  states[0] = std::make_unique<GemmState>(plan->isa, n);
  const int64_t times = CalibrateUnits([&](int64_t u) { multiply(0, u); }, rep_s);
  return MeasureCounter(
      plan, [&](int) { return Sgemm::Flops(n, n, n) * static_cast<double>(times); },
      [&](int t, int) {
        if (!states[t]) states[t] = std::make_unique<GemmState>(plan->isa, n);
      },
      [&](int t, int) { multiply(t, times); }, &out->gemm_single, &out->gemm_all);
}

// Anonymous memory for a triad array, asked for transparent huge pages: first-touching 4 KiB
// pages dominated the setup here (384 MiB: 1.8 s with 4 KiB pages, 0.4 s with THP).
class MappedArray {
 public:
  static StatusOr<std::unique_ptr<MappedArray>> Make(size_t bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      return Err("allocating a triad array of " + std::to_string(bytes >> 20) +
                 " MiB: " + std::strerror(errno) + " (lower max_array_bytes)");
    }
    madvise(p, bytes, MADV_HUGEPAGE);  // a hint: without THP the triad is only slower to set up
    return std::unique_ptr<MappedArray>(new MappedArray(static_cast<double*>(p), bytes));
  }
  ~MappedArray() { munmap(data_, bytes_); }
  double* data() const { return data_; }

 private:
  MappedArray(double* data, size_t bytes) : data_(data), bytes_(bytes) {}
  double* data_;
  size_t bytes_;
};

void Triad(double* __restrict a, const double* __restrict b, const double* __restrict c, double s,
           size_t n) {
  for (size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

uint64_t TriadArrayBytes(const PeakOptions& options, uint64_t llc_bytes) {
  const uint64_t want = llc_bytes > 0 ? 4 * llc_bytes : options.max_array_bytes;
  return std::clamp(want, options.min_array_bytes, options.max_array_bytes) / 64 * 64;
}

Status MeasureTriad(Plan* plan, int reps, MachinePeak* out) {
  const size_t n = out->triad_array_bytes / sizeof(double);
  ASSIGN_OR_RETURN(auto a, MappedArray::Make(n * sizeof(double)));
  ASSIGN_OR_RETURN(auto b, MappedArray::Make(n * sizeof(double)));
  ASSIGN_OR_RETURN(auto c, MappedArray::Make(n * sizeof(double)));
  constexpr double kScalar = 3.0;
  auto slice = [n](int t, int threads, size_t* begin) {
    *begin = n * t / threads;
    return n * (t + 1) / threads - *begin;
  };
  // Each thread first-touches its own slice (pages land on its node) and does one pass per rep.
  plan->reps = reps;
  RETURN_IF_ERROR(MeasureCounter(
      plan, [n](int threads) { return 3.0 * sizeof(double) * static_cast<double>(n) / threads; },
      [&](int t, int threads) {
        size_t i0;
        const size_t len = slice(t, threads, &i0);
        std::fill_n(a->data() + i0, len, 0.0);
        std::fill_n(b->data() + i0, len, 1.0);
        std::fill_n(c->data() + i0, len, 2.0);
      },
      [&](int t, int threads) {
        size_t i0;
        const size_t len = slice(t, threads, &i0);
        Triad(a->data() + i0, b->data() + i0, c->data() + i0, kScalar, len);
      },
      &out->bandwidth_single, &out->bandwidth_all));
  // STREAM checks its results too: a wrong or skipped pass must not pass as a bandwidth.
  for (size_t i : {size_t{0}, n / 2, n - 1}) {
    if (a->data()[i] != 1.0 + kScalar * 2.0) return Err("the triad computed a wrong result");
  }
  return Status::Ok();
}

Status ValidateOptions(const PeakOptions& o) {
  if (o.repetitions < 1 || o.triad_repetitions < 1) return Err("repetitions must be at least 1");
  if (!(o.fma_rep_seconds > 0) || !(o.gemm_rep_seconds > 0) || !std::isfinite(o.fma_rep_seconds) ||
      !std::isfinite(o.gemm_rep_seconds)) {
    return Err("repetition durations must be positive and finite");
  }
  if (o.threads < 0) return Err("threads must be 0 (one per CPU) or positive");
  if (o.gemm_n < 1) return Err("gemm_n must be positive");
  if (o.min_array_bytes < 4096 || o.max_array_bytes < o.min_array_bytes) {
    return Err("triad array bounds: need 4096 <= min_array_bytes <= max_array_bytes");
  }
  if (o.isa && !IsaSupported(*o.isa)) {
    return Err(std::string(IsaName(*o.isa)) + " is not supported by this CPU or OS");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<MachinePeak> MeasureMachinePeak(const PeakOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  const int64_t t0 = MonotonicNs();
  Plan plan;
  plan.isa = options.isa.value_or(BestIsa());
  plan.cpus = AllowedCpus();
  plan.threads = options.threads > 0 ? options.threads : static_cast<int>(plan.cpus.size());
  plan.reps = options.repetitions;
  MachinePeak peak;
  peak.isa = plan.isa;
  peak.threads = plan.threads;
  peak.online_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  peak.gemm_n = options.gemm_n;
  const CacheSize llc = LastLevelCache();
  peak.llc_bytes = llc.bytes;
  peak.llc_source = llc.source;
  peak.triad_array_bytes = TriadArrayBytes(options, llc.bytes);
  auto since = [](int64_t t) { return static_cast<double>(MonotonicNs() - t) * 1e-9; };
  int64_t t = MonotonicNs();
  RETURN_IF_ERROR(MeasureFma(&plan, options.fma_rep_seconds, &peak).Annotate("FMA peak"));
  peak.fma_seconds = since(t);
  t = MonotonicNs();
  RETURN_IF_ERROR(
      MeasureGemm(&plan, options.gemm_rep_seconds, options.gemm_n, &peak).Annotate("GEMM peak"));
  peak.gemm_seconds = since(t);
  t = MonotonicNs();
  RETURN_IF_ERROR(
      MeasureTriad(&plan, options.triad_repetitions, &peak).Annotate("triad bandwidth"));
  peak.triad_seconds = since(t);
  peak.pinned = plan.pinned;
  peak.total_seconds = since(t0);
  return peak;
}

// ---- Cache size --------------------------------------------------------------------------------

std::optional<uint64_t> ParseCacheSize(const std::string& text) {
  size_t i = 0, end = text.size();
  while (end > 0 && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  uint64_t value = 0;
  for (; i < end && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    if (value > (UINT64_MAX - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  if (i == 0) return std::nullopt;
  int shift = 0;
  if (i < end) {
    const char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(text[i++])));
    shift = unit == 'K' ? 10 : unit == 'M' ? 20 : unit == 'G' ? 30 : -1;
  }
  if (shift < 0 || i != end || value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

CacheSize LastLevelCache() {
  CacheSize best;
  long best_level = 0;
  for (int i = 0; i < 16; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i);
    auto level = ReadFile(dir + "/level");
    auto type = ReadFile(dir + "/type");
    auto size = ReadFile(dir + "/size");
    if (!level.ok() || !type.ok() || !size.ok()) continue;
    if (type->rfind("Instruction", 0) == 0) continue;
    const long lvl = std::strtol(level->c_str(), nullptr, 10);
    const std::optional<uint64_t> bytes = ParseCacheSize(*size);
    if (bytes && lvl > best_level) {
      best_level = lvl;
      best = {*bytes, dir + "/size (L" + std::to_string(lvl) + ")"};
    }
  }
  if (best.bytes > 0) return best;
  const std::pair<int, const char*> fallbacks[] = {{_SC_LEVEL3_CACHE_SIZE, "LEVEL3"},
                                                   {_SC_LEVEL2_CACHE_SIZE, "LEVEL2"}};
  for (const auto& [name, label] : fallbacks) {
    const long v = sysconf(name);
    if (v > 0) {
      return {static_cast<uint64_t>(v), std::string("sysconf(_SC_") + label +
                                            "_CACHE_SIZE) from CPUID (no sysfs cache entries)"};
    }
  }
  return {0, "unknown (no sysfs cache entries, sysconf reports none)"};
}

// ---- JSON --------------------------------------------------------------------------------------
namespace {

// unit: "flop" or "bytes"; giga: "gflop" or "gb".
Json MeasurementJson(const Measurement& m, const std::string& unit, const std::string& giga) {
  Json j = Json::MakeObject();
  j["best_" + unit + "_per_s"] = m.best;
  j["median_" + unit + "_per_s"] = m.median;
  j["worst_" + unit + "_per_s"] = m.worst;
  j["best_" + giga + "_per_s"] = m.best / 1e9;
  j["repetitions"] = m.repetitions;
  j["rep_seconds"] = m.rep_seconds;
  return j;
}

Json CounterJson(const Measurement& single, const Measurement& all, const std::string& unit,
                 const std::string& giga, const std::string& method, double seconds) {
  Json j = Json::MakeObject();
  j["single"] = MeasurementJson(single, unit, giga);
  j["all"] = MeasurementJson(all, unit, giga);
  j["method"] = method;
  j["seconds"] = seconds;  // this part's wall time, calibration and setup included
  return j;
}

}  // namespace

Json MachinePeak::ToJson() const {
  const std::string lanes = std::to_string(IsaLanes(isa));
  const int mr = Kernels(isa).mr, nr = Kernels(isa).nr;
  Json j = Json::MakeObject();
  j["isa"] = IsaName(isa);
  j["threads"] = threads;
  j["online_cpus"] = online_cpus;
  j["pinned"] = pinned;
  j["rule"] =
      "each counter: best (max) of its repetitions, as STREAM reports; median and worst give the "
      "spread. single: one thread; all: one thread per CPU, started together, timed until the "
      "slowest is done";
  j["flops"] = CounterJson(
      flops_single, flops_all, "flop", "gflop",
      std::string("fp32 FMA kernel (") + IsaName(isa) + "): " + std::to_string(kFmaChains) +
          " independent accumulator chains of " + lanes +
          " lanes, acc = acc * m + a; FLOPs = iterations x chains x lanes x 2 (FMA = 2)",
      fma_seconds);
  j["gemm"] = CounterJson(
      gemm_single, gemm_all, "flop", "gflop",
      std::string("blocked fp32 C = A * B (") + IsaName(isa) + "), n = " + std::to_string(gemm_n) +
          ", packed panels, " + std::to_string(mr) + " x " + std::to_string(nr) +
          " register tile; FLOPs = 2 n^3 per multiply; all: one independent multiply per thread",
      gemm_seconds);
  j["gemm"]["n"] = gemm_n;
  j["bandwidth"] = CounterJson(
      bandwidth_single, bandwidth_all, "bytes", "gb",
      "STREAM triad a[i] = b[i] + s * c[i] over three double arrays, one pass per repetition; "
      "bytes = 3 x 8 per element (2 reads + 1 write) as STREAM counts them: write-allocate "
      "traffic (reading a[] before it is written) is excluded, so DRAM moves about 4/3 of that; "
      "all: one contiguous slice per thread, first-touched by it",
      triad_seconds);
  Json& bw = j["bandwidth"];
  bw["array_bytes"] = triad_array_bytes;
  bw["llc_bytes"] = llc_bytes;
  bw["llc_source"] = llc_source;
  bw["arrays_at_least_4x_llc"] = llc_bytes > 0 && triad_array_bytes >= 4 * llc_bytes;
  j["total_seconds"] = total_seconds;
  return j;
}

}  // namespace fs::model
