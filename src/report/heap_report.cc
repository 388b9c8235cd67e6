#include "src/report/heap_report.h"

#include <cmath>

#include "src/profile/pprof.h"
#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

Json Sites(const memory::HeapSiteTracker& tracker, const LeakRateOptions& options, size_t top) {
  Json sites = Json::MakeArray();
  for (const memory::HeapSiteSummary& s : tracker.Sites(options, top)) {
    sites.Push(memory::HeapSiteJson(s));
  }
  return sites;
}

Status WriteFlamegraph(const std::string& path, const Profile& p, const std::string& title) {
  FlamegraphOptions options;
  options.title = title;
  return WriteFlamegraphFile(path, p, options);
}

}  // namespace

StatusOr<Json> WriteHeapOutputs(const memory::HeapSiteTracker& tracker, const std::string& root,
                                const std::string& sub, const std::string& name,
                                const LeakRateOptions& options, size_t top_sites) {
  Json j = Json::MakeObject();
  const memory::HeapSites* last = tracker.last();
  j["heap_sampled"] = last != nullptr;
  if (last == nullptr) {
    j["heap_reason"] =
        tracker.why_absent().empty() ? "no sites file was read" : tracker.why_absent();
    j["heap_growth_mb_per_h"] = Json();
    j["sites"] = Json::MakeArray();
    return j;
  }
  j["sample_interval_bytes"] = last->sample_interval_bytes;
  j["samples"] = last->samples;
  j["dropped_samples"] = last->dropped_live_table_full + last->dropped_sites_full;
  const LeakRate growth = tracker.HeapGrowth(options);
  const bool measured = std::isfinite(growth.slope_mb_per_h);
  j["heap_growth_mb_per_h"] = measured ? Json(growth.slope_mb_per_h) : Json();
  j["heap_growth_ci95"] = measured ? Json(Json::Array{growth.ci95_lo, growth.ci95_hi}) : Json();
  if (!growth.reason.empty()) j["heap_growth_reason"] = growth.reason;
  j["sites"] = Sites(tracker, options, top_sites);

  const std::string rel = sub + "/" + name, base = root + "/" + rel;
  const Profile heap = tracker.HeapProfile();
  RETURN_IF_ERROR(WritePprofFile(base + ".heap.pb.gz", heap));
  RETURN_IF_ERROR(WriteFlamegraph(base + ".heap.html", heap, name + ": heap in use"));
  j["heap_profile"] = rel + ".heap.pb.gz";
  j["heap_flamegraph"] = rel + ".heap.html";
  const Profile grown = tracker.GrowthProfile();
  RETURN_IF_ERROR(WritePprofFile(base + ".growth.pb.gz", grown));
  j["growth_profile"] = rel + ".growth.pb.gz";
  if (!grown.samples.empty()) {
    RETURN_IF_ERROR(WriteFlamegraph(base + ".growth.html", grown, name + ": heap growth"));
    j["growth_flamegraph"] = rel + ".growth.html";
  } else {
    j["growth_flamegraph"] = Json();
  }
  return j;
}

}  // namespace fs::profile
