// Reader of the preload library's sites files (format: heap_sites_format.h): sampled
// allocations per allocation site, as unbiased estimates of the true totals.
#ifndef FRAMESCOPE_MEMORY_HEAP_HEAP_SITES_H_
#define FRAMESCOPE_MEMORY_HEAP_HEAP_SITES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs::memory {

struct HeapSiteCounts {
  std::vector<uint64_t> pcs;  // return addresses, innermost (the caller of malloc/new) first
  uint64_t alloc_samples = 0;
  uint64_t free_samples = 0;
  // Estimates of the true totals (sampled blocks weighted by 1 / their sampling probability).
  double alloc_objects = 0, alloc_bytes = 0;
  double free_objects = 0, free_bytes = 0;
  double inuse_bytes() const { return alloc_bytes > free_bytes ? alloc_bytes - free_bytes : 0; }
  double inuse_objects() const {
    return alloc_objects > free_objects ? alloc_objects - free_objects : 0;
  }
};

struct HeapSites {
  int pid = 0;
  uint32_t generation = 0;  // as in the counters file (+1 per exec)
  uint64_t start_unix_ns = 0;
  uint64_t process_start_ticks = 0;
  uint64_t sample_interval_bytes = 0;
  uint64_t samples = 0;
  uint64_t dropped_live_table_full = 0;  // sampled blocks not attributed (see the format)
  uint64_t dropped_sites_full = 0;
  // Index = the site's id, stable across readings of one process image: later readings only
  // append sites.
  std::vector<HeapSiteCounts> sites;
};

// The file the preload library writes for `pid` under FRAMESCOPE_HEAP_DIR=dir.
std::string HeapSitesPath(const std::string& dir, int pid);

// Reads a sites file with pread (never mapped: a file truncated under the reader cannot fault
// it). A missing, short, foreign or corrupt file is an error naming the path and what is wrong.
StatusOr<HeapSites> ReadHeapSites(const std::string& path);

}  // namespace fs::memory

#endif  // FRAMESCOPE_MEMORY_HEAP_HEAP_SITES_H_
