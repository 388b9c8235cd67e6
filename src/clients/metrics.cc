#include "src/clients/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "src/base/clock.h"

namespace fs {
namespace {
std::string FormatValue(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    snprintf(buf, sizeof(buf), "%.9g", v);
  }
  return buf;
}

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
}  // namespace

std::string RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    first = false;
    out += k + "=\"" + EscapeLabel(v) + "\"";
  }
  return out + "}";
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::BucketCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) out[i] = buckets_[i].load(std::memory_order_relaxed);
  return out;
}

const std::vector<double>& LatencyBucketsSeconds() {
  // Dense enough between 50 ms and 1 s that quantiles of batched inference latency are not
  // all interpolated inside one 250-500 ms bucket.
  static const std::vector<double> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.075,  0.1,   0.15,   0.2,   0.25, 0.3,   0.35,
                                               0.4,    0.5,   0.75,   1.0,   2.5,  5.0,   10.0};
  return kBuckets;
}

const std::vector<double>& BatchSizeBuckets() {
  static const std::vector<double> kBuckets = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
  return kBuckets;
}

MetricsRegistry::Family* MetricsRegistry::GetFamily(const std::string& name,
                                                    const std::string& help, Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(name, Family{kind, help, {}, {}, {}}).first;
  }
  return &it->second;
}

Counter* MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = GetFamily(name, help, Kind::kCounter)->counters[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = GetFamily(name, help, Kind::kGauge)->gauges[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return slot.get();
}

Histogram* MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const Labels& labels, const std::vector<double>& bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = GetFamily(name, help, Kind::kHistogram)->histograms[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return slot.get();
}

std::string MetricsRegistry::RenderText() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, fam] : families_) {
    const char* type = fam.kind == Kind::kCounter ? "counter"
                       : fam.kind == Kind::kGauge ? "gauge"
                                                  : "histogram";
    out += "# HELP " + name + " " + fam.help + "\n# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, c] : fam.counters)
      out += name + labels + " " + FormatValue(c->value()) + "\n";
    for (const auto& [labels, g] : fam.gauges)
      out += name + labels + " " + FormatValue(g->value()) + "\n";
    for (const auto& [labels, h] : fam.histograms) {
      // Insert le="..." into the existing label set.
      std::string inner = labels.empty() ? "" : labels.substr(1, labels.size() - 2) + ",";
      auto counts = h->BucketCounts();
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= h->bounds().size(); ++i) {
        cumulative += counts[i];
        std::string le = i < h->bounds().size() ? FormatValue(h->bounds()[i]) : "+Inf";
        out +=
            name + "_bucket{" + inner + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
      }
      out += name + "_sum" + labels + " " + FormatValue(h->sum()) + "\n";
      out += name + "_count" + labels + " " + std::to_string(cumulative) + "\n";
    }
  }
  return out;
}

MetricsRegistry& Metrics() {
  static MetricsRegistry* registry = new MetricsRegistry();
  return *registry;
}

void RateMeter::Add(uint64_t n) {
  int64_t now = MonotonicNs();
  int64_t slot = now / 100000000;
  std::lock_guard<std::mutex> lock(mu_);
  if (!events_.empty() && events_.back().first == slot) {
    events_.back().second += n;
  } else {
    events_.emplace_back(slot, n);
  }
  int64_t oldest = (now - window_ns_) / 100000000;
  while (!events_.empty() && events_.front().first <= oldest) events_.erase(events_.begin());
}

double RateMeter::Rate() const {
  int64_t now = MonotonicNs();
  int64_t oldest = (now - window_ns_) / 100000000;
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  for (const auto& [slot, n] : events_) {
    if (slot > oldest) total += n;
  }
  return static_cast<double>(total) / (static_cast<double>(window_ns_) / 1e9);
}

}  // namespace fs
