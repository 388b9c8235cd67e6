#include "src/model/roofline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace fs::model {
namespace {

Measurement Best(double v) {
  Measurement m;
  m.best = v;
  return m;
}

MachinePeak SyntheticPeak() {
  MachinePeak p;
  p.threads = 2;
  p.flops_single = Best(100e9);
  p.flops_all = Best(150e9);
  p.gemm_single = Best(80e9);
  p.gemm_all = Best(120e9);
  p.bandwidth_single = Best(20e9);
  p.bandwidth_all = Best(30e9);
  return p;
}

// Compute roof 100 GFLOP/s, memory roof 20 GB/s: the ridge is at 5 FLOP/byte.
Roofs SyntheticRoofs() {
  Roofs r;
  r.flops_per_s = 100e9;
  r.bytes_per_s = 20e9;
  r.threads = 1;
  return r;
}

bool Mentions(const RooflinePoint& p, const std::string& text) {
  for (const std::string& r : p.reasons) {
    if (r.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(RoofsTest, PerThreadPeakTimesThreadsCappedByAllCore) {
  const MachinePeak peak = SyntheticPeak();
  auto one = RoofsForThreads(peak, 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->flops_per_s, 100e9);
  EXPECT_EQ(one->bytes_per_s, 20e9);
  auto two = RoofsForThreads(peak, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->flops_per_s, 150e9);  // min(2 x 100, 150)
  EXPECT_EQ(two->bytes_per_s, 30e9);   // min(2 x 20, 30)
  EXPECT_NE(two->basis.find("FMA: min(2 x single-thread 100.0, all-core (2 threads) 150.0) = "
                            "150.0 GFLOP/s"),
            std::string::npos)
      << two->basis;
  auto eight = RoofsForThreads(peak, 8);
  ASSERT_TRUE(eight.ok());
  EXPECT_EQ(eight->flops_per_s, 150e9);
  auto gemm = RoofsForThreads(peak, 1, ComputeRoof::kGemm);
  ASSERT_TRUE(gemm.ok());
  EXPECT_EQ(gemm->flops_per_s, 80e9);
  EXPECT_EQ(gemm->bytes_per_s, 20e9);
}

TEST(RoofsTest, RejectsBadThreadsAndUnmeasuredPeak) {
  EXPECT_FALSE(RoofsForThreads(SyntheticPeak(), 0).ok());
  EXPECT_FALSE(RoofsForThreads(MachinePeak{}, 1).ok());
  MachinePeak no_bandwidth = SyntheticPeak();
  no_bandwidth.bandwidth_all = Best(0);
  EXPECT_FALSE(RoofsForThreads(no_bandwidth, 1).ok());
}

TEST(RooflineTest, ComputeBoundLayer) {
  // 4 GFLOP over 0.5 GB: 8 FLOP/byte, right of the ridge (5); 0.125 s -> 32 GFLOP/s.
  const RooflinePoint p = PlaceOnRoofline({4e9, 0.5e9, 0.125}, SyntheticRoofs());
  EXPECT_EQ(p.ridge_intensity, 5.0);
  EXPECT_EQ(p.intensity, 8.0);
  EXPECT_EQ(p.bound, "compute");
  EXPECT_EQ(p.achieved_flops_per_s, 32e9);
  EXPECT_EQ(p.achieved_bytes_per_s, 4e9);
  EXPECT_EQ(p.attainable_flops_per_s, 100e9);
  EXPECT_DOUBLE_EQ(*p.share_of_peak, 0.32);
  EXPECT_DOUBLE_EQ(*p.share_of_attainable, 0.32);
  EXPECT_DOUBLE_EQ(*p.share_of_bandwidth, 0.2);
  EXPECT_TRUE(p.reasons.empty());
}

TEST(RooflineTest, MemoryBoundLayer) {
  // 1 FLOP/byte: the memory roof gives 20 GFLOP/s; 0.25 s -> 4 GFLOP/s.
  const RooflinePoint p = PlaceOnRoofline({1e9, 1e9, 0.25}, SyntheticRoofs());
  EXPECT_EQ(p.intensity, 1.0);
  EXPECT_EQ(p.bound, "memory");
  EXPECT_EQ(p.attainable_flops_per_s, 20e9);
  EXPECT_EQ(p.achieved_flops_per_s, 4e9);
  EXPECT_DOUBLE_EQ(*p.share_of_peak, 0.04);
  EXPECT_DOUBLE_EQ(*p.share_of_attainable, 0.2);
  EXPECT_DOUBLE_EQ(*p.share_of_bandwidth, 0.2);
}

TEST(RooflineTest, RidgePointCountsAsComputeBound) {
  const RooflinePoint p = PlaceOnRoofline({5e9, 1e9, 1}, SyntheticRoofs());
  EXPECT_EQ(p.bound, "compute");
  EXPECT_EQ(p.attainable_flops_per_s, 100e9);
  // Just left of it: memory bound, and the memory roof is the lower one.
  const RooflinePoint q = PlaceOnRoofline({4.5e9, 1e9, 1}, SyntheticRoofs());
  EXPECT_EQ(q.bound, "memory");
  EXPECT_EQ(q.attainable_flops_per_s, 90e9);
}

TEST(RooflineTest, ZeroSecondsLeavesRatesNullButPlacesTheLayer) {
  const RooflinePoint p = PlaceOnRoofline({4e9, 0.5e9, 0}, SyntheticRoofs());
  EXPECT_FALSE(p.achieved_flops_per_s);
  EXPECT_FALSE(p.achieved_bytes_per_s);
  EXPECT_FALSE(p.share_of_peak);
  EXPECT_FALSE(p.share_of_attainable);
  EXPECT_FALSE(p.share_of_bandwidth);
  EXPECT_EQ(p.bound, "compute");
  EXPECT_TRUE(Mentions(p, "0 seconds"));
  const Json j = p.ToJson();
  EXPECT_TRUE(j.Get("achieved_flops_per_s").is_null());
  EXPECT_EQ(j.Get("intensity_flop_per_byte").AsDouble(), 8.0);
  EXPECT_EQ(j.Get("bound").AsString(), "compute");
  EXPECT_EQ(j.Get("reasons").size(), 1u);
}

TEST(RooflineTest, ZeroBytesLeavesIntensityNull) {
  const RooflinePoint p = PlaceOnRoofline({4e9, 0, 0.125}, SyntheticRoofs());
  EXPECT_FALSE(p.intensity);
  EXPECT_FALSE(p.bound);
  EXPECT_FALSE(p.attainable_flops_per_s);
  EXPECT_FALSE(p.share_of_attainable);
  EXPECT_EQ(p.achieved_flops_per_s, 32e9);
  EXPECT_DOUBLE_EQ(*p.share_of_peak, 0.32);
  EXPECT_TRUE(Mentions(p, "0 bytes"));
  EXPECT_TRUE(p.ToJson().Get("bound").is_null());
}

TEST(RooflineTest, ZeroFlopsIsMemoryBoundWithBandwidthShare) {
  // A concat: 0.5 GB moved in 0.25 s = 2 GB/s, a tenth of the memory roof.
  const RooflinePoint p = PlaceOnRoofline({0, 0.5e9, 0.25}, SyntheticRoofs());
  EXPECT_EQ(p.intensity, 0.0);
  EXPECT_EQ(p.bound, "memory");
  EXPECT_EQ(p.attainable_flops_per_s, 0.0);
  EXPECT_EQ(p.achieved_flops_per_s, 0.0);
  EXPECT_FALSE(p.share_of_attainable);
  EXPECT_DOUBLE_EQ(*p.share_of_bandwidth, 0.1);
  EXPECT_TRUE(Mentions(p, "0 FLOPs"));
}

TEST(RooflineTest, InvalidInputsAndRoofsGiveNullsWithReasons) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const LayerWork& w : {LayerWork{-1, 1, 1}, LayerWork{1, nan, 1}, LayerWork{1, 1, -0.5}}) {
    const RooflinePoint p = PlaceOnRoofline(w, SyntheticRoofs());
    EXPECT_FALSE(p.intensity);
    EXPECT_FALSE(p.achieved_flops_per_s);
    EXPECT_FALSE(p.ridge_intensity);
    EXPECT_TRUE(Mentions(p, "invalid layer work"));
  }
  const RooflinePoint p = PlaceOnRoofline({4e9, 0.5e9, 0.125}, Roofs{});
  EXPECT_FALSE(p.ridge_intensity);
  EXPECT_FALSE(p.bound);
  EXPECT_FALSE(p.share_of_peak);
  EXPECT_EQ(p.achieved_flops_per_s, 32e9);
  EXPECT_EQ(p.intensity, 8.0);
  EXPECT_TRUE(Mentions(p, "not measured"));
}

}  // namespace
}  // namespace fs::model
