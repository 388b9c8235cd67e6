// The statistics behind a `framescope compare` verdict, pure functions over repetitions.
//
// - Mann-Whitney U, two-sided: no assumption of normality (the noise of a shared machine has
//   long tails), as google/benchmark's compare.py and asv use. Exact p (the permutation
//   distribution of U) when neither sample has ties and both have at most kExactMaxN values;
//   otherwise the normal approximation with tie correction and continuity correction (scipy's
//   "asymptotic" method). The result names the method used.
// - The relative change (median(current) - median(baseline)) / |median(baseline)| (its sign is
//   the direction even for a negative baseline) with a seeded bootstrap percentile interval of
//   that ratio (resampling each side with replacement): no distribution assumed, deterministic
//   output (a fixed seed, our own generator, so every platform prints the same numbers), and it
//   is the interval of exactly the number shown.
// - The fewest repetitions with which the exact test could reach alpha at all: with n values
//   per side the smallest two-sided p is 2 / C(2n, n), so 3 vs 3 (p >= 0.1) can never reach
//   0.05 whatever the data; such a comparison is "inconclusive", not "no change". So is a change
//   beyond the threshold that the test cannot confirm ("underpowered").
#ifndef FRAMESCOPE_REGRESSION_STATS_H_
#define FRAMESCOPE_REGRESSION_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace fs::regression {

inline constexpr int kExactMaxN = 50;
inline constexpr const char* kExactMethod = "exact";
inline constexpr const char* kNormalMethod = "normal approximation (tie- and continuity-corrected)";

struct MannWhitney {
  double u = 0;        // U of the first sample: pairs (a, b) with a > b, ties counting 1/2.
  double p = 1;        // Two-sided.
  std::string method;  // kExactMethod or kNormalMethod ("" when a sample is empty: p = 1).
};
MannWhitney MannWhitneyU(const std::vector<double>& a, const std::vector<double>& b);

// The smallest two-sided p the exact test can give for samples of n1 and n2 values without
// ties: 2 / C(n1 + n2, n1) (1 when either is empty).
double MinimumPValue(int n1, int n2);
// The smallest n with MinimumPValue(n, n) < alpha: 4 for 0.05, 5 for 0.01.
int RepetitionsNeeded(double alpha);

// Holm-Bonferroni: p-values adjusted for testing them all at once (order kept), so testing
// every function of a profile does not raise the chance of a false alarm with their number.
std::vector<double> HolmAdjust(const std::vector<double>& p);

struct RelativeChange {
  // (median(current) - median(baseline)) / |median(baseline)|: positive is a rise even for a
  // negative baseline; +-inf (by the current's sign) when the baseline's median is 0.
  double change = 0;
  double lo = 0, hi = 0;  // the interval of `change`
  double level = 0.95;
};
inline constexpr const char* kChangeMethod =
    "(median(current) - median(baseline)) / |median(baseline)| (+-inf for a zero baseline); "
    "bootstrap percentile interval (2000 resamples of "
    "each side, seed 1)";
RelativeChange MedianChange(const std::vector<double>& baseline, const std::vector<double>& current,
                            double level = 0.95, int resamples = 2000, uint64_t seed = 1);

inline constexpr const char* kRegression = "regression";
inline constexpr const char* kImprovement = "improvement";
inline constexpr const char* kNoChange = "no change";
inline constexpr const char* kInconclusive = "inconclusive";

struct VerdictOptions {
  double threshold = 0.10;  // relative change
  double alpha = 0.05;
  int bootstrap_resamples = 2000;  // for the interval only; the verdict does not use it
};

// One metric's comparison: the change, the test, and the verdict with the reason for it.
struct Judgement {
  double baseline_median = 0, current_median = 0;
  RelativeChange change;
  MannWhitney test;
  double p = 1;  // The p the verdict used: test.p, or adjusted (HolmAdjust) by the caller.
  int n_baseline = 0, n_current = 0;
  std::string verdict;
  std::string reason;  // "needs >= 4 repetitions per side (has 3 and 3)", "p = 0.31", ...
};
Judgement Judge(const std::vector<double>& baseline, const std::vector<double>& current,
                bool higher_is_better, const VerdictOptions& options);
// (Re-)decides `j`'s verdict from its numbers and j->p. `tests` > 1: j->p is Holm-adjusted over
// that many tests, so too few repetitions is judged against alpha / tests (Holm's first step).
void Decide(Judgement* j, bool higher_is_better, const VerdictOptions& options, int tests = 1);

// Rank of verdicts for roll-ups: regression > inconclusive > improvement > no change.
int VerdictRank(const std::string& verdict);

}  // namespace fs::regression

#endif  // FRAMESCOPE_REGRESSION_STATS_H_
