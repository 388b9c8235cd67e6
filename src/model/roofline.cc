#include "src/model/roofline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace fs::model {
namespace {

// min(threads x single, all), appending the sentence that says so to `basis`.
double CappedRoof(const char* what, const Measurement& single, const Measurement& all, int threads,
                  int all_threads, const char* unit, std::string* basis) {
  const double value = std::min(threads * single.best, all.best);
  char buf[200];
  std::snprintf(buf, sizeof(buf),
                "%s: min(%d x single-thread %.1f, all-core (%d threads) %.1f) = %.1f %s", what,
                threads, single.best / 1e9, all_threads, all.best / 1e9, value / 1e9, unit);
  *basis += buf;
  return value;
}

Json Optional(const std::optional<double>& v) { return v ? Json(*v) : Json(); }

}  // namespace

StatusOr<Roofs> RoofsForThreads(const MachinePeak& peak, int threads, ComputeRoof roof) {
  if (threads < 1)
    return Err("roofline: threads must be at least 1, got " + std::to_string(threads));
  const bool gemm = roof == ComputeRoof::kGemm;
  const Measurement& single = gemm ? peak.gemm_single : peak.flops_single;
  const Measurement& all = gemm ? peak.gemm_all : peak.flops_all;
  if (!(single.best > 0 && all.best > 0 && peak.bandwidth_single.best > 0 &&
        peak.bandwidth_all.best > 0)) {
    return Err("roofline: the machine peak has unmeasured counters (measure it first)");
  }
  Roofs r;
  r.threads = threads;
  r.flops_per_s =
      CappedRoof(gemm ? "GEMM" : "FMA", single, all, threads, peak.threads, "GFLOP/s", &r.basis);
  r.basis += "; ";
  r.bytes_per_s = CappedRoof("triad", peak.bandwidth_single, peak.bandwidth_all, threads,
                             peak.threads, "GB/s", &r.basis);
  return r;
}

Json Roofs::ToJson() const {
  Json j = Json::MakeObject();
  j["flops_per_s"] = flops_per_s;
  j["bytes_per_s"] = bytes_per_s;
  j["threads"] = threads;
  j["basis"] = basis;
  return j;
}

RooflinePoint PlaceOnRoofline(const LayerWork& w, const Roofs& roofs) {
  RooflinePoint p;
  auto finite_non_negative = [](double v) { return std::isfinite(v) && v >= 0; };
  if (!finite_non_negative(w.flops) || !finite_non_negative(w.bytes) ||
      !finite_non_negative(w.seconds)) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "all: invalid layer work (flops %g, bytes %g, seconds %g)",
                  w.flops, w.bytes, w.seconds);
    p.reasons.push_back(buf);
    return p;
  }
  const bool roofs_ok = roofs.flops_per_s > 0 && roofs.bytes_per_s > 0 &&
                        std::isfinite(roofs.flops_per_s) && std::isfinite(roofs.bytes_per_s);
  if (roofs_ok) {
    p.ridge_intensity = roofs.flops_per_s / roofs.bytes_per_s;
  } else {
    p.reasons.push_back(
        "ridge_intensity, bound, attainable_flops_per_s, share_of_*: the roofs are not measured");
  }
  if (w.seconds > 0) {
    p.achieved_flops_per_s = w.flops / w.seconds;
    p.achieved_bytes_per_s = w.bytes / w.seconds;
  } else {
    p.reasons.push_back(
        "achieved_*, share_of_*: 0 seconds (the layer is fused into another or was not timed)");
  }
  if (w.bytes > 0) {
    p.intensity = w.flops / w.bytes;
  } else {
    p.reasons.push_back("intensity, bound, attainable_flops_per_s: 0 bytes moved");
  }
  if (p.intensity && roofs_ok) {
    // At the ridge both roofs meet; it counts as compute bound (no bandwidth gain helps).
    p.bound = *p.intensity >= *p.ridge_intensity ? "compute" : "memory";
    p.attainable_flops_per_s = std::min(roofs.flops_per_s, roofs.bytes_per_s * *p.intensity);
  }
  if (p.achieved_flops_per_s && roofs_ok) {
    p.share_of_peak = *p.achieved_flops_per_s / roofs.flops_per_s;
    p.share_of_bandwidth = *p.achieved_bytes_per_s / roofs.bytes_per_s;
  }
  if (p.achieved_flops_per_s && p.attainable_flops_per_s) {
    if (*p.attainable_flops_per_s > 0) {
      p.share_of_attainable = *p.achieved_flops_per_s / *p.attainable_flops_per_s;
    } else {
      p.reasons.push_back(
          "share_of_attainable: 0 FLOPs, so 0 is attainable: see share_of_bandwidth");
    }
  }
  return p;
}

Json RooflinePoint::ToJson() const {
  Json j = Json::MakeObject();
  j["achieved_flops_per_s"] = Optional(achieved_flops_per_s);
  j["achieved_bytes_per_s"] = Optional(achieved_bytes_per_s);
  j["intensity_flop_per_byte"] = Optional(intensity);
  j["ridge_intensity_flop_per_byte"] = Optional(ridge_intensity);
  j["bound"] = bound ? Json(*bound) : Json();
  j["attainable_flops_per_s"] = Optional(attainable_flops_per_s);
  j["share_of_peak"] = Optional(share_of_peak);
  j["share_of_attainable"] = Optional(share_of_attainable);
  j["share_of_bandwidth"] = Optional(share_of_bandwidth);
  Json list = Json::MakeArray();
  for (const std::string& r : reasons) list.Push(r);
  j["reasons"] = list;
  return j;
}

}  // namespace fs::model
