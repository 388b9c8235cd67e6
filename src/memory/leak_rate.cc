#include "src/memory/leak_rate.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "src/base/stats.h"

namespace fs::profile {
namespace {

constexpr double kZ95 = 1.959964;
constexpr double kBytesPerSecToMbPerHour = 3600.0 / 1e6;
// O(n^2) pairwise slopes: above this many points the series is thinned to bin medians first
// (2000 points = 2 M slopes, 16 MB). A 24 h run at 5 s has 17 280 points.
constexpr size_t kMaxPoints = 2000;

// Iterator at index `i` (vectors here are far below PTRDIFF_MAX).
template <typename It>
It At(It begin, size_t i) {
  return begin + static_cast<std::ptrdiff_t>(i);
}

// Consecutive bins of equal count, each replaced by its median time and median bytes.
std::vector<SeriesPoint> Thin(const std::vector<SeriesPoint>& s) {
  size_t per_bin = (s.size() + kMaxPoints - 1) / kMaxPoints;
  std::vector<SeriesPoint> out;
  for (size_t i = 0; i < s.size(); i += per_bin) {
    size_t end = std::min(s.size(), i + per_bin);
    std::vector<double> t, b;
    for (size_t k = i; k < end; ++k) t.push_back(s[k].t_s), b.push_back(s[k].bytes);
    out.push_back({Median(t), Median(b)});
  }
  return out;
}

// Sorted-rank value at a 1-based, possibly fractional rank (linear between neighbours).
double AtRank(std::vector<double>* v, double rank) {
  rank = std::clamp(rank, 1.0, static_cast<double>(v->size()));
  size_t lo = static_cast<size_t>(std::floor(rank)) - 1;
  std::nth_element(v->begin(), At(v->begin(), lo), v->end());
  double a = (*v)[lo];
  if (lo + 1 >= v->size() || rank == std::floor(rank)) return a;
  double b = *std::min_element(At(v->begin(), lo + 1), v->end());
  return a + (b - a) * (rank - std::floor(rank));
}

// Theil–Sen slope and Sen's interval, in bytes per second.
void TheilSen(const std::vector<SeriesPoint>& s, double* slope, double* lo, double* hi) {
  std::vector<double> slopes;
  slopes.reserve(s.size() * (s.size() - 1) / 2);
  for (size_t i = 0; i < s.size(); ++i) {
    for (size_t j = i + 1; j < s.size(); ++j) {
      double dt = s[j].t_s - s[i].t_s;
      if (dt != 0) slopes.push_back((s[j].bytes - s[i].bytes) / dt);
    }
  }
  double n = static_cast<double>(s.size());
  double c = kZ95 * std::sqrt(n * (n - 1) * (2 * n + 5) / 18);
  double total = static_cast<double>(slopes.size());
  *slope = Median(slopes);
  *lo = AtRank(&slopes, (total - c) / 2);
  *hi = AtRank(&slopes, (total + c) / 2 + 1);
}

// For a fixed sampling interval the number of points grows as T, and the standard error of a
// slope fitted over a span T shrinks as sigma / (sqrt(n) * T), i.e. as T^-1.5. Assuming that and
// a slope that stays put, the bound on the limit's side reaches the limit at
// T' = T * (distance of that bound / distance of the limit)^(2/3).
double ExtraTime(const LeakRate& r, double limit) {
  double gap = std::abs(limit - r.slope_mb_per_h);
  if (gap == 0) return std::numeric_limits<double>::infinity();
  double bound_gap =
      r.slope_mb_per_h < limit ? r.ci95_hi - r.slope_mb_per_h : r.slope_mb_per_h - r.ci95_lo;
  return r.duration_s * (std::pow(bound_gap / gap, 2.0 / 3.0) - 1);
}

LeakRate NotMeasurable(std::string reason, size_t points) {
  LeakRate r;
  r.reason = std::move(reason);
  r.points = points;
  r.slope_mb_per_h = r.ci95_lo = r.ci95_hi = std::numeric_limits<double>::quiet_NaN();
  return r;
}

}  // namespace

const char* LeakVerdictName(LeakVerdict v) {
  switch (v) {
    case LeakVerdict::kMet:
      return "met";
    case LeakVerdict::kNotMet:
      return "not met";
    case LeakVerdict::kInconclusive:
      return "inconclusive";
    case LeakVerdict::kNotMeasurable:
      return "not measurable";
  }
  return "not measurable";
}

LeakRate EstimateLeakRate(std::vector<SeriesPoint> series, const LeakRateOptions& options) {
  std::erase_if(series, [](const SeriesPoint& p) {
    return !std::isfinite(p.t_s) || !std::isfinite(p.bytes);
  });
  std::sort(series.begin(), series.end(),
            [](const SeriesPoint& a, const SeriesPoint& b) { return a.t_s < b.t_s; });
  if (series.empty()) return NotMeasurable("no samples", 0);
  double span = series.back().t_s - series.front().t_s;
  double warmup = options.warmup_s >= 0 ? options.warmup_s : span * options.warmup_fraction;
  double start = series.front().t_s + warmup;
  std::erase_if(series, [start](const SeriesPoint& p) { return p.t_s < start; });
  if (series.size() < options.min_points) {
    return NotMeasurable("only " + std::to_string(series.size()) +
                             " samples after the warm-up; need at least " +
                             std::to_string(options.min_points) + " (run longer or sample faster)",
                         series.size());
  }
  LeakRate r;
  r.points = series.size();
  r.duration_s = series.back().t_s - series.front().t_s;
  if (r.duration_s <= 0)
    return NotMeasurable("all samples after the warm-up share one time", r.points);
  if (series.size() > kMaxPoints) series = Thin(series);
  double slope, lo, hi;
  TheilSen(series, &slope, &lo, &hi);
  r.slope_mb_per_h = slope * kBytesPerSecToMbPerHour;
  r.ci95_lo = lo * kBytesPerSecToMbPerHour;
  r.ci95_hi = hi * kBytesPerSecToMbPerHour;
  double limit = options.limit_mb_per_h;
  if (r.ci95_hi < limit) {
    r.verdict = LeakVerdict::kMet;
  } else if (r.ci95_lo > limit) {
    r.verdict = LeakVerdict::kNotMet;
  } else {
    r.verdict = LeakVerdict::kInconclusive;
    r.extra_time_s = ExtraTime(r, limit);
  }
  return r;
}

std::vector<SeriesPoint> RssSeries(const std::vector<MemorySample>& samples) {
  std::vector<SeriesPoint> out;
  out.reserve(samples.size());
  for (const MemorySample& s : samples) out.push_back({s.time_s, static_cast<double>(s.bytes.rss)});
  return out;
}

namespace {
// NaN and infinity (not measurable, never decidable) are JSON null.
Json Num(double v) { return std::isfinite(v) ? Json(v) : Json(); }
}  // namespace

Json LeakRateJson(const std::string& name, const std::vector<MemorySample>& series,
                  const LeakRate& r) {
  Json j = Json::MakeObject();
  j["name"] = name;
  j["samples"] = static_cast<uint64_t>(series.size());
  j["samples_fitted"] = static_cast<uint64_t>(r.points);
  j["duration_s"] = series.empty() ? 0.0 : series.back().time_s - series.front().time_s;
  j["rss_bytes"] = series.empty() ? Json() : Json(series.back().bytes.rss);
  j["rss_slope_mb_per_h"] = Num(r.slope_mb_per_h);
  j["ci95"] = std::isfinite(r.ci95_lo) ? Json(Json::Array{r.ci95_lo, r.ci95_hi}) : Json();
  j["verdict"] = LeakVerdictName(r.verdict);
  if (r.verdict == LeakVerdict::kInconclusive) j["extra_time_s"] = Num(r.extra_time_s);
  if (!r.reason.empty()) j["reason"] = r.reason;
  return j;
}

}  // namespace fs::profile
