// The heap-profile outputs of one process (issue 11): from a HeapSiteTracker (sampled
// allocations per site, src/memory/heap/heap_profile.h) to files a user opens and the JSON a
// script reads.
//
//   <root>/<sub>/<name>.heap.pb.gz    pprof: alloc_objects, alloc_space, inuse_objects, inuse_space
//   <root>/<sub>/<name>.growth.pb.gz  pprof: growth_space (live bytes gained per site)
//   <root>/<sub>/<name>.heap.html     memory flame graph of the in-use bytes
//   <root>/<sub>/<name>.growth.html   flame graph of the growth (absent when nothing grew)
#ifndef FRAMESCOPE_REPORT_HEAP_REPORT_H_
#define FRAMESCOPE_REPORT_HEAP_REPORT_H_

#include <string>

#include "src/base/json.h"
#include "src/base/status.h"
#include "src/memory/heap/heap_profile.h"

namespace fs::profile {

// Writes the files above (atomically) and returns the process's heap fields for analysis.json:
// heap_sampled (bool), sample_interval_bytes, samples, dropped_samples,
// heap_growth_mb_per_h (null when not measurable) with heap_growth_ci95, sites (top `top_sites`,
// HeapSiteJson each), heap_profile / growth_profile / heap_flamegraph / growth_flamegraph (paths
// relative to `root`, as the report's links want them). Without data, heap_sampled is false and
// heap_reason says why; nothing is written.
StatusOr<Json> WriteHeapOutputs(const memory::HeapSiteTracker& tracker, const std::string& root,
                                const std::string& sub, const std::string& name,
                                const LeakRateOptions& options, size_t top_sites = 20);

}  // namespace fs::profile

#endif  // FRAMESCOPE_REPORT_HEAP_REPORT_H_
