#include "src/regression/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "src/base/stats.h"

namespace fs::regression {
namespace {

// Counts of U = 0 .. n1*n2 over all C(n1+n2, n1) orderings of two samples without ties. The
// largest of the n1 + n2 values is either from the first sample (then it beats all n2 of the
// second: U gains n2) or from the second: f(i, j, u) = f(i-1, j, u-j) + f(i, j-1, u). Sums only,
// so doubles stay accurate far beyond 2^53.
std::vector<double> ExactUCounts(int n1, int n2) {
  std::vector<std::vector<double>> prev(n2 + 1, std::vector<double>{1.0});  // f(0, j) = [1]
  for (int i = 1; i <= n1; ++i) {
    std::vector<std::vector<double>> cur(n2 + 1);
    cur[0] = {1.0};  // f(i, 0) = [1]
    for (int j = 1; j <= n2; ++j) {
      cur[j].assign(static_cast<size_t>(i * j) + 1, 0.0);
      for (size_t u = 0; u < cur[j].size(); ++u) {
        if (u >= static_cast<size_t>(j) && u - j < prev[j].size()) cur[j][u] += prev[j][u - j];
        if (u < cur[j - 1].size()) cur[j][u] += cur[j - 1][u];
      }
    }
    prev = std::move(cur);
  }
  return prev[n2];
}

// Ranks 1..N of a ++ b, ties given their mean rank; also sum(t^3 - t) over tie groups.
std::vector<double> Ranks(const std::vector<double>& all, double* tie_term) {
  std::vector<size_t> order(all.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return all[x] < all[y]; });
  std::vector<double> ranks(all.size());
  *tie_term = 0;
  for (size_t i = 0; i < order.size();) {
    size_t k = i;
    while (k + 1 < order.size() && all[order[k + 1]] == all[order[i]]) ++k;
    const double t = static_cast<double>(k - i + 1);
    *tie_term += t * t * t - t;
    for (size_t m = i; m <= k; ++m) ranks[order[m]] = static_cast<double>(i + k) / 2 + 1;
    i = k + 1;
  }
  return ranks;
}

// A deterministic generator (splitmix64), so the bootstrap prints the same interval everywhere
// (std::uniform_int_distribution differs between standard libraries).
struct SplitMix {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t Index(size_t n) {
    return std::min(n - 1, static_cast<size_t>(static_cast<double>(Next() >> 11) * 0x1.0p-53 *
                                               static_cast<double>(n)));
  }
};

// The change relative to the baseline's size: (cur - base) / |base|, so its sign is the
// direction of the move even when the baseline is negative (a leak rate below 0: -1 -> +5 MB/h
// is +5.8, a rise, not -5.8). A zero baseline has no relative change: +-inf by direction.
double Ratio(double base, double cur) {
  if (base == 0) {
    return cur == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), cur);
  }
  return (cur - base) / std::fabs(base);
}

double ResampledMedian(const std::vector<double>& v, SplitMix* rng, std::vector<double>* scratch) {
  scratch->resize(v.size());
  for (double& x : *scratch) x = v[rng->Index(v.size())];
  return Median(*scratch);
}

}  // namespace

MannWhitney MannWhitneyU(const std::vector<double>& a, const std::vector<double>& b) {
  MannWhitney r;
  if (a.empty() || b.empty()) return r;
  std::vector<double> all(a);
  all.insert(all.end(), b.begin(), b.end());
  double tie_term = 0;
  std::vector<double> ranks = Ranks(all, &tie_term);
  const double n1 = static_cast<double>(a.size()), n2 = static_cast<double>(b.size());
  const double r1 = std::accumulate(ranks.begin(), ranks.begin() + a.size(), 0.0);
  r.u = r1 - n1 * (n1 + 1) / 2;
  const double mean = n1 * n2 / 2;
  if (tie_term == 0 && a.size() <= kExactMaxN && b.size() <= kExactMaxN) {
    r.method = kExactMethod;
    std::vector<double> counts =
        ExactUCounts(static_cast<int>(a.size()), static_cast<int>(b.size()));
    const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
    // U is symmetric about its mean: P(U >= u) for the more extreme side of the observed U.
    const auto extreme = static_cast<size_t>(std::llround(std::max(r.u, n1 * n2 - r.u)));
    const double tail = std::accumulate(counts.begin() + extreme, counts.end(), 0.0);
    r.p = std::min(1.0, 2 * tail / total);
    return r;
  }
  r.method = kNormalMethod;
  const double n = n1 + n2;
  const double var = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)));
  if (var <= 0) return r;  // every value equal: p = 1
  const double z = std::max(0.0, std::fabs(r.u - mean) - 0.5) / std::sqrt(var);
  r.p = std::min(1.0, std::erfc(z / std::sqrt(2.0)));
  return r;
}

double MinimumPValue(int n1, int n2) {
  if (n1 <= 0 || n2 <= 0) return 1;
  double c = 1;  // C(n1 + n2, n1), built up as a product
  for (int k = 1; k <= n1; ++k) c = c * (n2 + k) / k;
  return std::min(1.0, 2 / c);
}

int RepetitionsNeeded(double alpha) {
  int n = 1;
  while (MinimumPValue(n, n) >= alpha && n < 1000) ++n;
  return n;
}

std::vector<double> HolmAdjust(const std::vector<double>& p) {
  std::vector<size_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return p[x] < p[y]; });
  std::vector<double> adjusted(p.size());
  double running = 0;  // adjusted p-values must not decrease along the order
  for (size_t i = 0; i < order.size(); ++i) {
    running = std::max(running, std::min(1.0, static_cast<double>(p.size() - i) * p[order[i]]));
    adjusted[order[i]] = running;
  }
  return adjusted;
}

RelativeChange MedianChange(const std::vector<double>& baseline, const std::vector<double>& current,
                            double level, int resamples, uint64_t seed) {
  RelativeChange c;
  c.level = level;
  c.change = Ratio(Median(baseline), Median(current));
  SplitMix rng{seed};
  std::vector<double> ratios, scratch;
  ratios.reserve(static_cast<size_t>(resamples));
  for (int i = 0; i < resamples; ++i) {
    const double b = ResampledMedian(baseline, &rng, &scratch);
    ratios.push_back(Ratio(b, ResampledMedian(current, &rng, &scratch)));
  }
  std::sort(ratios.begin(), ratios.end());
  // Percentiles by rank (not interpolated), so an infinite ratio never turns into NaN.
  auto at = [&](double q) {
    return ratios[std::min(ratios.size() - 1, static_cast<size_t>(q * ratios.size()))];
  };
  c.lo = at((1 - level) / 2);
  c.hi = at(1 - (1 - level) / 2);
  return c;
}

Judgement Judge(const std::vector<double>& baseline, const std::vector<double>& current,
                bool higher_is_better, const VerdictOptions& options) {
  Judgement j;
  j.n_baseline = static_cast<int>(baseline.size());
  j.n_current = static_cast<int>(current.size());
  j.baseline_median = Median(baseline);
  j.current_median = Median(current);
  j.change = MedianChange(baseline, current, 0.95, options.bootstrap_resamples);
  j.test = MannWhitneyU(baseline, current);
  j.p = j.test.p;
  Decide(&j, higher_is_better, options);
  return j;
}

void Decide(Judgement* j, bool higher_is_better, const VerdictOptions& options, int tests) {
  const double alpha = options.alpha / std::max(1, tests);
  if (MinimumPValue(j->n_baseline, j->n_current) >= alpha) {
    j->verdict = kInconclusive;
    j->reason = "needs >= " + std::to_string(RepetitionsNeeded(alpha)) +
                " repetitions per side to reach p < " + Fixed(alpha, 4) + " (has " +
                std::to_string(j->n_baseline) + " and " + std::to_string(j->n_current) + ")";
    return;
  }
  const double signed_change = higher_is_better ? -j->change.change : j->change.change;
  const bool significant = j->p < options.alpha;
  if (significant && signed_change > options.threshold) {
    j->verdict = kRegression;
  } else if (significant && signed_change < -options.threshold) {
    j->verdict = kImprovement;
  } else {
    j->verdict = kNoChange;
  }
  if (!significant && std::fabs(signed_change) > options.threshold) {
    // A large change the test cannot confirm is not evidence of "no change": too few or too
    // noisy repetitions to tell.
    j->verdict = kInconclusive;
    j->reason =
        "underpowered: beyond the threshold but not significant (p >= " + Fixed(options.alpha, 3) +
        "); more repetitions needed";
  } else {
    j->reason = significant ? (std::fabs(signed_change) > options.threshold
                                   ? "significant and beyond the threshold"
                                   : "significant but within the threshold")
                            : "not significant (p >= " + Fixed(options.alpha, 3) + ")";
  }
  if (j->baseline_median == 0 && j->current_median != 0) {
    j->reason += "; the baseline median is 0, so the relative change is undefined (shown as " +
                 std::string(j->current_median > 0 ? "+inf" : "-inf") +
                 "): the verdict rests on the test and the direction alone";
  }
}

int VerdictRank(const std::string& verdict) {
  if (verdict == kRegression) return 3;
  if (verdict == kInconclusive) return 2;
  if (verdict == kImprovement) return 1;
  return 0;
}

}  // namespace fs::regression
