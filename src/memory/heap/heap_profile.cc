#include "src/memory/heap/heap_profile.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include "src/symbolize/location_interner.h"
#include "src/symbolize/symbolizer.h"

namespace fs::memory {

using profile::LeakRate;
using profile::LeakRateOptions;
using profile::Profile;
using profile::SeriesPoint;

namespace {

// A site's series keeps at most this many points: past it every other point is dropped (the
// slope of a steady growth is unchanged). It bounds memory (a 24 h run at 2 s would hold 43 200
// per site) and the fit: Theil–Sen is O(n^2) per site, and a process has hundreds of sites.
constexpr size_t kMaxSeriesPoints = 512;

void Append(std::vector<SeriesPoint>* series, SeriesPoint p) {
  if (series->size() >= kMaxSeriesPoints) {
    size_t kept = 0;
    for (size_t i = 0; i < series->size(); i += 2) (*series)[kept++] = (*series)[i];
    series->resize(kept);
  }
  series->push_back(p);
}

// Frames of the C and C++ runtime: the site a user wants is the first frame past them (the code
// that called strdup or std::string's constructor, not the function that called malloc).
bool IsRuntimeModule(const std::string& file) {
  const std::string base = file.substr(file.find_last_of('/') + 1);
  for (const char* prefix :
       {"libc.so", "libstdc++.so", "libgcc_s.so", "ld-linux", "libm.so", "libtbbmalloc"}) {
    if (base.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// An allocation wrapper (cv::fastMalloc, av_malloc, CRYPTO_zalloc, std::allocator<T>::allocate,
// operator new, strdup...): the site a user wants is its caller, as pprof's heap view drops
// such frames. The stack keeps them.
bool IsAllocatorFunction(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"alloc", "operator new", "strdup", "strndup"}) {
    if (name.find(word) != std::string::npos) return true;
  }
  return false;
}

// Sampled bytes in use move in steps of about one sampling interval, so a window sees no change
// smaller than one step over its length: Sen's interval (which knows nothing of sampling, and
// is [0, 0] when most pairs of readings are equal) is widened by that resolution either side.
LeakRate WithSamplingResolution(LeakRate rate, uint64_t interval_bytes) {
  if (!std::isfinite(rate.slope_mb_per_h) || rate.duration_s <= 0) return rate;
  const double resolution = static_cast<double>(interval_bytes) / 1e6 / (rate.duration_s / 3600);
  rate.ci95_lo -= resolution;
  rate.ci95_hi += resolution;
  return rate;
}

bool SameImage(const HeapSites& a, const HeapSites& b) {
  return a.pid == b.pid && a.generation == b.generation && a.start_unix_ns == b.start_unix_ns;
}

}  // namespace

struct HeapSiteTracker::State {
  profile::ProfileBuilder builder;
  profile::LocationInterner interner{&builder};
  std::unique_ptr<profile::Symbolizer> symbolizer;
  int symbolizer_pid = 0;
  std::vector<std::vector<uint64_t>> locations;  // per site: location ids, leaf first
  std::vector<std::vector<SeriesPoint>> series;  // per site: in-use bytes over the window
  std::vector<SeriesPoint> total;                // all sites' in-use bytes
};

HeapSiteTracker::HeapSiteTracker(std::string dir)
    : s_(std::make_unique<State>()), dir_(std::move(dir)) {}
HeapSiteTracker::~HeapSiteTracker() = default;
HeapSiteTracker::HeapSiteTracker(HeapSiteTracker&&) noexcept = default;
HeapSiteTracker& HeapSiteTracker::operator=(HeapSiteTracker&&) noexcept = default;

void HeapSiteTracker::Read(int pid, double t_s) {
  auto r = ReadHeapSites(HeapSitesPath(dir_, pid));
  if (!r.ok()) {
    if (!last_) last_error_ = r.status().message();
    return;
  }
  if (last_ && !SameImage(*last_, *r)) {  // an exec: the old image's sites end with it
    s_ = std::make_unique<State>();
    first_.reset();
  }
  if (s_->symbolizer_pid != pid) {
    auto sym = profile::Symbolizer::ForProcess(pid);
    s_->symbolizer = sym.ok() ? std::move(*sym) : nullptr;
    s_->symbolizer_pid = pid;
  }
  // Sites seen for the first time are symbolized now, while the process is alive.
  for (size_t i = s_->locations.size(); i < r->sites.size(); ++i) {
    std::vector<uint64_t> ids;
    for (uint64_t pc : r->sites[i].pcs) {
      ids.push_back(s_->interner.Location(s_->symbolizer.get(), pid, pc, true));
    }
    s_->locations.push_back(std::move(ids));
  }
  s_->series.resize(r->sites.size());
  double total = 0;
  for (size_t i = 0; i < r->sites.size(); ++i) {
    Append(&s_->series[i], {t_s, r->sites[i].inuse_bytes()});
    total += r->sites[i].inuse_bytes();
  }
  Append(&s_->total, {t_s, total});
  if (!first_) first_ = *r;
  last_ = std::move(*r);
  last_error_.clear();
}

Profile HeapSiteTracker::HeapProfile() const {
  Profile p = s_->builder.profile();
  p.sample_types = {{"alloc_objects", "count"},
                    {"alloc_space", "bytes"},
                    {"inuse_objects", "count"},
                    {"inuse_space", "bytes"}};
  p.default_sample_type = "inuse_space";
  p.period_type = {"space", "bytes"};
  if (!last_) return p;
  p.period = static_cast<int64_t>(last_->sample_interval_bytes);
  for (size_t i = 0; i < last_->sites.size(); ++i) {
    const HeapSiteCounts& c = last_->sites[i];
    profile::Sample s;
    s.location_ids = s_->locations[i];
    s.values = {std::llround(c.alloc_objects), std::llround(c.alloc_bytes),
                std::llround(c.inuse_objects()), std::llround(c.inuse_bytes())};
    p.samples.push_back(std::move(s));
  }
  return p;
}

Profile HeapSiteTracker::GrowthProfile() const {
  Profile p = s_->builder.profile();
  p.sample_types = {{"growth_space", "bytes"}};
  p.default_sample_type = "growth_space";
  if (!last_ || !first_) return p;
  p.period = static_cast<int64_t>(last_->sample_interval_bytes);
  p.period_type = {"space", "bytes"};
  for (size_t i = 0; i < last_->sites.size(); ++i) {
    const double before = i < first_->sites.size() ? first_->sites[i].inuse_bytes() : 0;
    const int64_t gained = std::llround(last_->sites[i].inuse_bytes() - before);
    if (gained <= 0) continue;
    profile::Sample s;
    s.location_ids = s_->locations[i];
    s.values = {gained};
    p.samples.push_back(std::move(s));
  }
  return p;
}

std::vector<HeapSiteSummary> HeapSiteTracker::Sites(const LeakRateOptions& options,
                                                    size_t top) const {
  std::vector<HeapSiteSummary> out;
  if (!last_) return out;
  const Profile& p = s_->builder.profile();
  for (size_t i = 0; i < last_->sites.size(); ++i) {
    const HeapSiteCounts& c = last_->sites[i];
    HeapSiteSummary s;
    for (uint64_t id : s_->locations[i]) {
      // The builder assigns ids densely from 1: index, not search.
      const profile::Location& loc = p.locations[id - 1];
      const profile::Mapping* m = loc.mapping_id != 0 ? &p.mappings[loc.mapping_id - 1] : nullptr;
      const bool runtime = m != nullptr && IsRuntimeModule(m->file);
      std::vector<std::string> names;
      for (const profile::Line& line : loc.lines) {
        names.push_back(profile::FunctionDisplayName(&p.functions[line.function_id - 1]));
      }
      if (names.empty()) names.push_back(profile::AddressDisplayName(loc, m));
      if (s.function.empty() && !runtime && !IsAllocatorFunction(names.back())) {
        s.function = names.front();
      }
      s.stack.insert(s.stack.end(), names.begin(), names.end());
    }
    if (s.function.empty() && !s.stack.empty()) s.function = s.stack.front();
    s.inuse_bytes = c.inuse_bytes();
    s.inuse_objects = c.inuse_objects();
    s.alloc_bytes = c.alloc_bytes;
    s.alloc_objects = c.alloc_objects;
    s.alloc_samples = c.alloc_samples;
    s.growth = WithSamplingResolution(profile::EstimateLeakRate(s_->series[i], options),
                                      last_->sample_interval_bytes);
    out.push_back(std::move(s));
  }
  auto slope = [](const HeapSiteSummary& s) {
    return std::isfinite(s.growth.slope_mb_per_h) ? s.growth.slope_mb_per_h : -INFINITY;
  };
  std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    if (slope(a) != slope(b)) return slope(a) > slope(b);
    return a.inuse_bytes > b.inuse_bytes;
  });
  if (out.size() > top) out.resize(top);
  return out;
}

LeakRate HeapSiteTracker::HeapGrowth(const LeakRateOptions& options) const {
  if (!last_) return profile::EstimateLeakRate({}, options);
  return WithSamplingResolution(profile::EstimateLeakRate(s_->total, options),
                                last_->sample_interval_bytes);
}

Json HeapSiteJson(const HeapSiteSummary& site) {
  Json j = Json::MakeObject();
  j["function"] = site.function;
  Json stack = Json::MakeArray();
  for (const std::string& f : site.stack) stack.Push(Json(f));
  j["stack"] = stack;
  j["inuse_bytes"] = static_cast<int64_t>(std::llround(site.inuse_bytes));
  j["inuse_objects"] = static_cast<int64_t>(std::llround(site.inuse_objects));
  j["alloc_bytes"] = static_cast<int64_t>(std::llround(site.alloc_bytes));
  j["alloc_samples"] = site.alloc_samples;
  const bool measured = std::isfinite(site.growth.slope_mb_per_h);
  j["growth_mb_per_h"] = measured ? Json(site.growth.slope_mb_per_h) : Json();
  j["ci95"] = measured ? Json(Json::Array{site.growth.ci95_lo, site.growth.ci95_hi}) : Json();
  if (!site.growth.reason.empty()) j["reason"] = site.growth.reason;
  return j;
}

}  // namespace fs::memory
