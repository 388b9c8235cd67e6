// The layout of a heap sites file: sampled allocations by allocation site (stack), written by
// the preload library (heap_preload.cc) and read by heap_sites.cc. Plain integers only, so the
// preload library needs nothing beyond libc to include it.
//
// File: <FRAMESCOPE_HEAP_DIR>/heap-<pid>.sites, mode 0600, kHeapSitesFileSize bytes, shared-mapped
// by the process it describes: a reader takes a snapshot whenever it likes (pread), and nothing
// in the process waits for it or writes anything when nobody reads (shared memory, not a pipe).
//
// Sampling, as jemalloc and tcmalloc do: a Poisson process over allocated bytes with mean
// `sample_interval_bytes`. A block of s bytes is sampled with probability p = 1 - exp(-s/T) and
// stands for 1/p blocks and s/p bytes; the site's counters add those estimates (objects in
// units of 1/kObjectScale), so sums over sites are unbiased estimates of the true totals. A
// sampled block's free adds the same estimates to the site's freed side: in use = allocated -
// freed, per site, at any moment.
//
// Publishing: a site is filled (pcs, depth, hash) and then `sites_used` is raised with a release
// store; a reader loads `sites_used` (acquire) and reads only sites below it. Counters are only
// ever increased, with relaxed atomic adds.
#ifndef FRAMESCOPE_MEMORY_HEAP_HEAP_SITES_FORMAT_H_
#define FRAMESCOPE_MEMORY_HEAP_HEAP_SITES_FORMAT_H_

#include <cstdint>

namespace fs::memory {

inline constexpr uint64_t kHeapSitesMagic = 0x3153504845485346ULL;  // "FSHEHPS1" little-endian
inline constexpr uint32_t kHeapSitesVersion = 1;
inline constexpr uint32_t kHeapSiteMaxDepth = 48;  // return addresses kept per stack
inline constexpr uint32_t kHeapMaxSites = 8192;
inline constexpr uint64_t kObjectScale = 1024;  // object estimates are stored * 1024
// The default mean sampling interval (jemalloc's lg_prof_sample 19, tcmalloc's default); the
// variable FRAMESCOPE_HEAP_SAMPLE_BYTES overrides it (0 turns sampling off).
inline constexpr uint64_t kDefaultSampleIntervalBytes = 512 * 1024;
inline constexpr char kHeapSampleBytesEnv[] = "FRAMESCOPE_HEAP_SAMPLE_BYTES";

struct HeapSitesHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size;  // sizeof(HeapSitesHeader)
  int32_t pid;
  uint32_t generation;  // as in the counters file: +1 per exec of the same pid
  uint64_t start_unix_ns;
  uint64_t process_start_ticks;
  uint64_t sample_interval_bytes;
  uint32_t max_sites;
  uint32_t max_depth;
  uint32_t site_size;   // sizeof(HeapSite)
  uint32_t sites_used;  // sites [0, sites_used) are complete
  uint64_t samples;     // sampled allocations, all sites
  // Sampled allocations not attributed to a site: the live table was full (their free cannot
  // be matched), or the site table was full. A reader reports them, never hides them.
  uint64_t dropped_live_table_full;
  uint64_t dropped_sites_full;
  uint64_t reserved[5];
};
static_assert(sizeof(HeapSitesHeader) == 128, "the file format fixes this layout");

struct HeapSite {
  uint64_t hash;
  uint32_t depth;  // valid entries of pcs: pcs[0] is where malloc (or new) was called from
  uint32_t reserved;
  uint64_t pcs[kHeapSiteMaxDepth];  // return addresses, innermost first
  uint64_t alloc_samples;
  uint64_t alloc_objects_scaled;  // estimate * kObjectScale
  uint64_t alloc_bytes;           // estimate
  uint64_t free_samples;
  uint64_t free_objects_scaled;
  uint64_t free_bytes;
  uint64_t sampled_bytes;  // the sampled blocks' own usable bytes (not scaled)
  uint64_t reserved2;
};
static_assert(sizeof(HeapSite) == 464, "the file format fixes this layout");

inline constexpr uint64_t kHeapSitesFileSize =
    sizeof(HeapSitesHeader) + uint64_t{kHeapMaxSites} * sizeof(HeapSite);

}  // namespace fs::memory

#endif  // FRAMESCOPE_MEMORY_HEAP_HEAP_SITES_FORMAT_H_
