// Order statistics shared by the analysers and benchmarks.
#ifndef FRAMESCOPE_BASE_STATS_H_
#define FRAMESCOPE_BASE_STATS_H_

#include <string>
#include <vector>

namespace fs {

// The q-quantile (0..1) by linear interpolation between closest ranks (numpy's default);
// NaN for an empty vector.
double Percentile(std::vector<double> values, double q);
// Percentile(values, 0.5): the middle value, or the mean of the two middle ones.
double Median(std::vector<double> values);

// `v` with `decimals` digits after the point ("%.*f"), for reports.
std::string Fixed(double v, int decimals);

}  // namespace fs

#endif  // FRAMESCOPE_BASE_STATS_H_
