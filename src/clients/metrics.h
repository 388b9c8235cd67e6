// Prometheus metrics for the reference services: counters, gauges and histograms with
// labels, rendered in the text exposition format (version 0.0.4) at /metrics.
// Hot paths cache the Counter*/Histogram* returned by the registry: updates are lock-free
// atomics; only lookup and rendering take the registry mutex.
#ifndef FRAMESCOPE_CLIENTS_METRICS_H_
#define FRAMESCOPE_CLIENTS_METRICS_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fs {

using Labels = std::map<std::string, std::string>;

class Counter {
 public:
  void Inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Non-cumulative count per bucket; the last entry is +Inf.
  std::vector<uint64_t> BucketCounts() const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Latency buckets in seconds; include 1, 2.5, 5, 10, 25, 50, 100, 250 ms (and finer steps
// up to 1 s).
const std::vector<double>& LatencyBucketsSeconds();
// Batch-size buckets 1..64.
const std::vector<double>& BatchSizeBuckets();

class MetricsRegistry {
 public:
  Counter* GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge* GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram* GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                          const std::vector<double>& bounds);
  std::string RenderText() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family* GetFamily(const std::string& name, const std::string& help, Kind kind);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// The process-wide registry every service exports.
MetricsRegistry& Metrics();

// Renders labels as {a="x",b="y"} (empty string for no labels), escaping values.
std::string RenderLabels(const Labels& labels);

// Events-per-second over a sliding window (default 5 s), thread-safe.
class RateMeter {
 public:
  explicit RateMeter(double window_seconds = 5.0) : window_ns_(int64_t(window_seconds * 1e9)) {}
  void Add(uint64_t n = 1);
  double Rate() const;

 private:
  int64_t window_ns_;
  mutable std::mutex mu_;
  mutable std::vector<std::pair<int64_t, uint64_t>> events_;  // (monotonic ns, count) per 100ms
};

}  // namespace fs

#endif  // FRAMESCOPE_CLIENTS_METRICS_H_
