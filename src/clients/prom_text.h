// Parser for the Prometheus text format, used by `framescope status`, tests and benchmarks
// to read what the services export; plus quantile estimates from histogram buckets.
#ifndef FRAMESCOPE_CLIENTS_PROM_TEXT_H_
#define FRAMESCOPE_CLIENTS_PROM_TEXT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Strict enough to reject garbage: every non-comment line must be `name{labels} value`.
StatusOr<std::vector<PromSample>> ParsePromText(const std::string& text);

// Sum of all samples named `name` whose labels include every pair in `match`.
double SumSamples(const std::vector<PromSample>& samples, const std::string& name,
                  const std::map<std::string, std::string>& match = {});

// Quantile q (0..1) of histogram `name` (summed over series matching `match`), linear
// interpolation within the bucket as Prometheus' histogram_quantile does. NaN if empty.
double HistogramQuantile(const std::vector<PromSample>& samples, const std::string& name, double q,
                         const std::map<std::string, std::string>& match = {});

// A quantile estimated from histogram buckets, with the bucket it lies in: the interpolated
// value is a guess, the true quantile is only known to lie in (lower, upper].
struct BucketQuantile {
  double value = 0;  // histogram_quantile's estimate; `lower` when it falls in the +Inf bucket
  double lower = 0;  // the previous bucket's bound (0 for the first bucket)
  double upper = 0;  // the bucket's bound; +Inf for the overflow bucket
};

// Quantile q (0..1) of cumulative bucket counts (le -> count of observations <= le, the last
// key +Inf), interpolated as Prometheus' histogram_quantile does. nullopt when there are no
// observations.
std::optional<BucketQuantile> QuantileInBucket(const std::map<double, double>& cumulative,
                                               double q);

}  // namespace fs

#endif  // FRAMESCOPE_CLIENTS_PROM_TEXT_H_
