#include "src/session/governor.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "src/base/procfs.h"

namespace fs::profile {
namespace {

class SystemReader : public CostReader {
 public:
  SystemReader() { have_prev_ = ReadHostCpu(&prev_); }

  double SelfCpuSeconds() override { return ProcessCpuSeconds(); }

  double HostCpuPercent() override {
    HostCpuTimes now;
    if (!ReadHostCpu(&now)) return -1;
    double pct = have_prev_ ? fs::HostCpuPercent(prev_, now) : -1;
    prev_ = now;
    have_prev_ = true;
    return pct;
  }

 private:
  HostCpuTimes prev_;
  bool have_prev_ = false;
};

}  // namespace

double ProcessCpuSeconds() {
  timespec ts{};
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return -1;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::unique_ptr<CostReader> SystemCostReader() { return std::make_unique<SystemReader>(); }

Governor::Governor(const GovernorOptions& options, std::unique_ptr<CostReader> reader)
    : options_(options), reader_(std::move(reader)) {
  report_.max_overhead_pct = options.max_overhead_pct;
  report_.host_warn_pct = options.host_warn_pct;
  report_.requested_hz = options.requested_hz;
  report_.min_hz = options.min_hz;
}

int Governor::Adjust(double elapsed_s, int current_hz) {
  WatchHost(elapsed_s, reader_->HostCpuPercent());
  const double cpu = reader_->SelfCpuSeconds();
  if (cpu < 0) return current_hz;
  // The first reading only primes: the time before it includes attaching and loading every
  // target's symbols, a one-off cost that no rate change would reduce.
  if (prev_s_ < 0 || elapsed_s <= prev_s_) {
    prev_s_ = first_s_ = elapsed_s;
    prev_cpu_ = first_cpu_ = cpu;
    return current_hz;
  }
  ++readings_;
  window_.push_back((cpu - prev_cpu_) / (elapsed_s - prev_s_) * 100.0);
  if (window_.size() > kWindow) window_.pop_front();
  prev_s_ = elapsed_s;
  prev_cpu_ = cpu;
  return Decide(elapsed_s, current_hz);
}

int NonAliasingRate(int hz) { return hz < 9 ? hz : hz - (hz + 1) % 10; }

int Governor::Decide(double elapsed_s, int current_hz) {
  const double budget = options_.max_overhead_pct;
  if (budget <= 0 || window_.size() < kWindow) return current_hz;
  double cost = 0;
  for (double c : window_) cost += c;
  cost /= static_cast<double>(window_.size());
  // Every reading of the window over (or well under) the budget, not just their mean: one slow
  // second pulls the mean up but is not a trend.
  const auto [low, high] = std::minmax_element(window_.begin(), window_.end());
  // Cost is taken as proportional to the rate (ring reading, unwinding): aim at 80 % of the
  // budget so that noise does not bounce the rate straight back over it.
  const double target = 0.8 * budget;
  const std::string measured = "framescope used " + Fixed(cost, 2) +
                               "% of one core over the last " + std::to_string(kWindow) +
                               " s (budget " + Fixed(budget, 1) + "%)";
  if (*low > budget && current_hz > options_.min_hz) {
    int next = NonAliasingRate(static_cast<int>(std::floor(current_hz * target / cost)));
    next = std::clamp(next, options_.min_hz, current_hz - 1);
    Change(elapsed_s, current_hz, next, measured + ": rate lowered");
    return next;
  }
  // Restore toward the requested rate only when the predicted cost there stays under target.
  if (*high < budget / 2 && current_hz < options_.requested_hz) {
    double scale = cost > 0 ? target / cost : 2.0;
    int next = static_cast<int>(std::floor(current_hz * scale));
    next = next >= options_.requested_hz ? options_.requested_hz : NonAliasingRate(next);
    if (next > current_hz) {
      Change(elapsed_s, current_hz, next,
             measured + ": rate restored toward the requested " +
                 std::to_string(options_.requested_hz) + " Hz");
      return next;
    }
  }
  return current_hz;
}

void Governor::Change(double elapsed_s, int from_hz, int to_hz, const std::string& reason) {
  report_.changes.push_back({elapsed_s, from_hz, to_hz, reason});
  // The readings so far were taken at the old rate: judge the new one on its own.
  window_.clear();
}

void Governor::WatchHost(double elapsed_s, double host_pct) {
  if (host_pct < 0 || options_.host_warn_pct <= 0) return;
  report_.host_readings++;
  report_.host_peak_pct = std::max(report_.host_peak_pct, host_pct);
  if (host_pct <= options_.host_warn_pct) {
    host_streak_ = 0;
    return;
  }
  report_.host_readings_above++;
  // One warning per episode of 3 busy seconds in a row, not one per second.
  if (++host_streak_ != 3) return;
  report_.warnings.push_back("at " + Fixed(elapsed_s, 0) + " s host CPU was above " +
                             Fixed(options_.host_warn_pct, 0) + "% for 3 s (now " +
                             Fixed(host_pct, 0) +
                             "%): early warning only, the sampling rate is not lowered for it");
}

double Governor::MeanCostPct() const {
  if (readings_ == 0 || prev_s_ <= first_s_) return -1;
  return (prev_cpu_ - first_cpu_) / (prev_s_ - first_s_) * 100.0;
}

GovernorReport Governor::Report(double end_s) const {
  GovernorReport r = report_;
  r.readings = readings_;
  r.mean_cost_pct = MeanCostPct();
  // Time-weighted rate: the requested one until the first change, each new one until the next.
  double weighted = 0, from = 0;
  int hz = options_.requested_hz;
  for (const RateChange& c : r.changes) {
    const double at = std::clamp(c.at_s, from, std::max(from, end_s));
    weighted += hz * (at - from);
    from = at;
    hz = c.to_hz;
  }
  weighted += hz * std::max(0.0, end_s - from);
  r.effective_hz = end_s > 0 ? weighted / end_s : hz;
  return r;
}

}  // namespace fs::profile
