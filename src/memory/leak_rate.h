// Leak rate of a memory series: a robust slope with a confidence interval, and a verdict against
// a limit (mission checklist 1.2: no service grows more than 10 MB per hour).
//
// The slope is Theil–Sen's: the median of the slopes between every pair of points, so a few
// outliers (a transient spike, a sample taken mid-GC of a cache) do not move it. Its 95 % interval
// is Sen's (1968): rank the pairwise slopes and take the two ranks (N ∓ C)/2, with
// C = 1.96 * sqrt(Var S) and Var S = n(n-1)(2n+5)/18 the variance of Kendall's S under the normal
// approximation (no correction for ties). MB here is 10^6 bytes.
#ifndef FRAMESCOPE_MEMORY_LEAK_RATE_H_
#define FRAMESCOPE_MEMORY_LEAK_RATE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "src/memory/memory_series.h"

namespace fs::profile {

struct SeriesPoint {
  double t_s = 0;
  double bytes = 0;
};

struct LeakRateOptions {
  // Warm-up excluded from the fit (caches filling, pools growing to their working size): the
  // first `warmup_fraction` of the series' time span, or, when warmup_s >= 0, the first
  // `warmup_s` seconds after the first sample.
  double warmup_fraction = 0.1;
  double warmup_s = -1;
  double limit_mb_per_h = 10;
  // Fewer points than this after the warm-up cannot give a meaningful interval.
  size_t min_points = 10;
};

enum class LeakVerdict { kMet, kNotMet, kInconclusive, kNotMeasurable };
// "met", "not met", "inconclusive", "not measurable".
const char* LeakVerdictName(LeakVerdict v);

struct LeakRate {
  LeakVerdict verdict = LeakVerdict::kNotMeasurable;
  std::string reason;         // why not measurable; empty otherwise
  double slope_mb_per_h = 0;  // NaN when not measurable (never a made-up 0)
  double ci95_lo = 0, ci95_hi = 0;
  size_t points = 0;      // after the warm-up (before any thinning)
  double duration_s = 0;  // the fitted window, after the warm-up
  // Inconclusive only: how much longer a run would need for the interval to exclude the limit,
  // if the slope stays where it is (infinity when the slope sits on the limit); 0 otherwise.
  double extra_time_s = 0;
};

// The fit above over `series` (any order of times; points at equal times pair with nothing).
LeakRate EstimateLeakRate(std::vector<SeriesPoint> series, const LeakRateOptions& options = {});

// The RSS series of a list of samples (one target's).
std::vector<SeriesPoint> RssSeries(const std::vector<MemorySample>& samples);

// One target's analysis as `framescope memory` and `framescope profile` write it: name, samples,
// samples_fitted, duration_s, rss_bytes (the last sample's), rss_slope_mb_per_h, ci95 [lo, hi],
// verdict, extra_time_s (inconclusive only) and reason (not measurable only). A number that is
// not measurable is null, never a made-up 0.
Json LeakRateJson(const std::string& name, const std::vector<MemorySample>& series,
                  const LeakRate& rate);

}  // namespace fs::profile

#endif  // FRAMESCOPE_MEMORY_LEAK_RATE_H_
