#include "src/model/machine_peak.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace fs::model {
namespace {

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kSse2, Isa::kAvx2Fma, Isa::kAvx512f}) {
    if (IsaSupported(isa)) out.push_back(isa);
  }
  return out;
}

// The kernel's recurrence on one lane, rounded as the ISA rounds it (one rounding with FMA, a
// multiply then an add on SSE2), summed as the kernel sums: chain by chain, lane by lane.
double ReferenceChecksum(Isa isa, int64_t iterations, int lanes) {
  double sum = 0;
  for (int j = 0; j < kFmaChains; ++j) {
    float acc = FmaChainStart(j);
    for (int64_t i = 0; i < iterations; ++i) {
      acc = isa == Isa::kSse2 ? acc * kFmaMultiplier + kFmaAddend
                              : std::fma(acc, kFmaMultiplier, kFmaAddend);
    }
    for (int l = 0; l < lanes; ++l) sum += acc;
  }
  return sum;
}

TEST(FmaKernelTest, CountsFlopsExactlyAndDoesTheWork) {
  const struct {
    Isa isa;
    int lanes;
  } kExpected[] = {{Isa::kSse2, 4}, {Isa::kAvx2Fma, 8}, {Isa::kAvx512f, 16}};
  for (const auto& e : kExpected) {
    if (!IsaSupported(e.isa)) continue;
    SCOPED_TRACE(IsaName(e.isa));
    EXPECT_EQ(IsaLanes(e.isa), e.lanes);
    const FmaRun run = RunFmaKernel(e.isa, 1000);
    EXPECT_EQ(run.flops, 2.0 * 1000 * kFmaChains * e.lanes);
    EXPECT_EQ(run.checksum, ReferenceChecksum(e.isa, 1000, e.lanes));
    // The checksum tells the iteration counts apart, so a skipped step would show.
    EXPECT_NE(ReferenceChecksum(e.isa, 999, e.lanes), ReferenceChecksum(e.isa, 1000, e.lanes));
  }
}

TEST(FmaKernelTest, BestIsaIsSupported) {
  EXPECT_TRUE(IsaSupported(BestIsa()));
  EXPECT_TRUE(IsaSupported(Isa::kSse2));
}

// Edge tiles in both dimensions, two depth blocks (k > 256) and, for the narrower tiles, two row
// blocks; C starts as NaN so a kernel that accumulates into it instead of overwriting fails.
TEST(SgemmTest, MatchesNaiveProduct) {
  const int m = 131, n = 37, k = 300;
  std::vector<float> a(size_t{m} * k), b(size_t{k} * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 7) % 17) / 17.0f - 0.5f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 5) % 11) / 11.0f - 0.5f;
  std::vector<double> want(size_t{m} * n, 0.0);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      for (int p = 0; p < k; ++p) want[i * n + j] += double{a[i * k + p]} * b[p * n + j];
    }
  }
  for (Isa isa : SupportedIsas()) {
    SCOPED_TRACE(IsaName(isa));
    std::vector<float> c(want.size(), std::numeric_limits<float>::quiet_NaN());
    Sgemm gemm(isa);
    gemm.Multiply(m, n, k, a.data(), b.data(), c.data());
    int bad = 0;
    for (int i = 0; i < m * n; ++i) bad += !(std::fabs(c[i] - want[i]) <= 1e-4);
    EXPECT_EQ(bad, 0) << "first: c[0] = " << c[0] << ", want " << want[0];
  }
  EXPECT_EQ(Sgemm::Flops(m, n, k), 2.0 * 131 * 37 * 300);
}

TEST(CacheSizeTest, ParsesSysfsSizes) {
  EXPECT_EQ(ParseCacheSize("32768K\n"), uint64_t{32} << 20);
  EXPECT_EQ(ParseCacheSize("1M"), uint64_t{1} << 20);
  EXPECT_EQ(ParseCacheSize("2g"), uint64_t{2} << 30);
  EXPECT_EQ(ParseCacheSize("512"), 512u);
  for (const char* bad : {"", "K", "12X", "12KB", " 12K", "99999999999999999999K"}) {
    EXPECT_EQ(ParseCacheSize(bad), std::nullopt) << bad;
  }
}

TEST(MachinePeakTest, RejectsBadOptions) {
  PeakOptions o;
  o.repetitions = 0;
  EXPECT_FALSE(MeasureMachinePeak(o).ok());
  o = {};
  o.fma_rep_seconds = 0;
  EXPECT_FALSE(MeasureMachinePeak(o).ok());
  o = {};
  o.threads = -1;
  EXPECT_FALSE(MeasureMachinePeak(o).ok());
  o = {};
  o.max_array_bytes = o.min_array_bytes - 1;
  EXPECT_FALSE(MeasureMachinePeak(o).ok());
}

bool AllCoreKeepsUp(const MachinePeak& p) {
  return p.flops_all.best >= 0.8 * p.flops_single.best &&
         p.gemm_all.best >= 0.8 * p.gemm_single.best &&
         p.bandwidth_all.best >= 0.8 * p.bandwidth_single.best;
}

// Short runs (about 0.4 s each). The machine is shared, so the bounds are loose, but each one
// fails when the kernel or its accounting is wrong by a factor. Many short repetitions, so that
// the best of them ran undisturbed even under load; and up to three attempts, because an
// all-core repetition needs every CPU free at once, which a loaded machine (load 10 on 2 CPUs
// while this was written) grants rarely. A wrong count or timing fails all three.
TEST(MachinePeakTest, MeasuresPlausiblePeaks) {
  PeakOptions o;
  o.repetitions = 20;
  o.fma_rep_seconds = 0.001;
  o.gemm_rep_seconds = 0.001;
  o.gemm_n = 192;
  o.triad_repetitions = 30;
  o.min_array_bytes = o.max_array_bytes = uint64_t{16} << 20;
  StatusOr<MachinePeak> peak = Err("not measured");
  for (int attempt = 0; attempt < 3 && !(peak.ok() && AllCoreKeepsUp(*peak)); ++attempt) {
    peak = MeasureMachinePeak(o);
  }
  ASSERT_TRUE(peak.ok()) << peak.status().message();
  const MachinePeak& p = *peak;
  EXPECT_EQ(p.isa, BestIsa());
  EXPECT_GE(p.threads, 1);
  EXPECT_EQ(p.triad_array_bytes, uint64_t{16} << 20);
  EXPECT_FALSE(p.llc_source.empty());
  const struct {
    const char* name;
    const Measurement& single;
    const Measurement& all;
    int repetitions;
  } kCounters[] = {{"fma", p.flops_single, p.flops_all, 20},
                   {"gemm", p.gemm_single, p.gemm_all, 20},
                   {"triad", p.bandwidth_single, p.bandwidth_all, 30}};
  for (const auto& c : kCounters) {
    SCOPED_TRACE(c.name);
    for (const Measurement* m : {&c.single, &c.all}) {
      EXPECT_GT(m->best, 0);
      EXPECT_EQ(m->repetitions, c.repetitions);
    }
    EXPECT_GE(c.all.best, 0.8 * c.single.best);
  }
  // A blocked GEMM cannot beat the FMA kernel: more than 10 % above it means a FLOP miscount.
  // All-core against threads x one core: the two all-core runs happen at different moments,
  // and on a shared machine either may have lost a CPU to other work.
  EXPECT_LE(p.gemm_single.best, 1.1 * p.flops_single.best);
  EXPECT_LE(p.gemm_all.best, 1.1 * p.threads * p.flops_single.best);
  // Nor can it be far below it: under 10 % means the register tile is not doing its job.
  EXPECT_GE(p.gemm_single.best, 0.1 * p.flops_single.best);

  auto json = Json::Parse(p.ToJson().Dump());
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->Get("isa").AsString(), IsaName(p.isa));
  EXPECT_EQ(json->Get("flops").Get("single").Get("best_flop_per_s").AsDouble(),
            p.flops_single.best);
  EXPECT_EQ(json->Get("bandwidth").Get("all").Get("best_bytes_per_s").AsDouble(),
            p.bandwidth_all.best);
  EXPECT_NE(json->Get("bandwidth").Get("method").AsString().find("write-allocate"),
            std::string::npos);
  std::printf("%s\n", p.ToJson().Dump(2).c_str());
}

}  // namespace
}  // namespace fs::model
