// Heap profiles of one process from its sites file (the preload library's sampled allocations,
// heap_sites.h): pprof profiles with the sample types `go tool pprof` users know, a growth
// profile, and the leak rate per allocation site.
//
// A HeapSiteTracker reads the file at each tick of a window. Sites are symbolized the first time
// they are seen, while the process is alive (its maps are needed); a process that has exited
// keeps what was read and symbolized before. Each site's in-use bytes form a series whose
// Theil–Sen slope (leak_rate.h) is the site's growth rate: a site whose live bytes grow steadily
// is named with its stack even when RSS hides it (allocator caches, fragmentation).
#ifndef FRAMESCOPE_MEMORY_HEAP_HEAP_PROFILE_H_
#define FRAMESCOPE_MEMORY_HEAP_HEAP_PROFILE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/memory/heap/heap_sites.h"
#include "src/memory/leak_rate.h"
#include "src/profile/profile.h"

namespace fs::profile {
class LocationInterner;
class Symbolizer;
}  // namespace fs::profile

namespace fs::memory {

struct HeapSiteSummary {
  // The first frame outside the C/C++ runtime (libc, libstdc++) and allocation wrappers
  // (cv::fastMalloc, av_malloc, std::allocator<T>::allocate...).
  std::string function;
  std::vector<std::string> stack;             // innermost first, inlined frames expanded
  double inuse_bytes = 0, inuse_objects = 0;  // at the last reading (estimates)
  double alloc_bytes = 0, alloc_objects = 0;  // since the process started (estimates)
  uint64_t alloc_samples = 0;
  // Of the site's in-use bytes over the window; its interval is Sen's widened by the sampling
  // resolution (one sampling interval over the window's length) either side.
  profile::LeakRate growth;
};

class HeapSiteTracker {
 public:
  // `dir`: the process's FRAMESCOPE_HEAP_DIR.
  explicit HeapSiteTracker(std::string dir);
  ~HeapSiteTracker();
  HeapSiteTracker(HeapSiteTracker&&) noexcept;
  HeapSiteTracker& operator=(HeapSiteTracker&&) noexcept;

  // Reads `pid`'s sites file at t_s (seconds on the window's clock). An unreadable file leaves
  // everything as it was (why_absent says why while nothing was read). A reading of another
  // image of the pid (an exec) starts over from it.
  void Read(int pid, double t_s);
  bool has_data() const { return last_.has_value(); }
  const std::string& why_absent() const { return last_error_; }
  const HeapSites* last() const { return last_ ? &*last_ : nullptr; }

  // The last reading as a pprof heap profile: alloc_objects, alloc_space, inuse_objects,
  // inuse_space (default), period = the sampling interval in bytes.
  profile::Profile HeapProfile() const;
  // Live bytes gained per site between the first and the last reading (growth_space, bytes):
  // sites that shrank or held steady are left out (a flame graph cannot draw them).
  profile::Profile GrowthProfile() const;
  // Sites ranked by growth slope (fastest growing first), then by in-use bytes; at most `top`.
  std::vector<HeapSiteSummary> Sites(const profile::LeakRateOptions& options, size_t top) const;
  // The Theil–Sen slope of the estimated in-use bytes of all sites together.
  profile::LeakRate HeapGrowth(const profile::LeakRateOptions& options) const;

 private:
  struct State;
  std::unique_ptr<State> s_;
  std::optional<HeapSites> first_, last_;
  std::string dir_, last_error_;
};

// A site as --json and analysis.json give it: function, stack, inuse_bytes, alloc_bytes,
// growth_mb_per_h (null when not measurable) with ci95.
Json HeapSiteJson(const HeapSiteSummary& site);

}  // namespace fs::memory

#endif  // FRAMESCOPE_MEMORY_HEAP_HEAP_PROFILE_H_
