// Counted anonymous mappings inside libframescope_heap.so: see heap_regions.h.
//
// A plain array scanned linearly under a spin lock: programs map few regions (each mmap is a
// system call costing far more than a scan of the table), and a scan finds the region that
// contains an address, which a hash of start addresses could not.
#include "src/memory/heap/heap_regions.h"

#include <sys/mman.h>

namespace fs::memory::heap_internal {
namespace {

constexpr size_t kMaxRegions = 8192;

struct Region {
  uintptr_t start;
  size_t length;     // 0: a free slot
  uintptr_t origin;  // where it was mapped: the sampler's key, even after trims of its start
};

Region g_regions[kMaxRegions];  // zero-initialised: all free
size_t g_used = 0;              // slots [0, g_used) may hold regions
int g_lock = 0;

void Lock() {
  while (__atomic_exchange_n(&g_lock, 1, __ATOMIC_ACQUIRE) != 0) {
    while (__atomic_load_n(&g_lock, __ATOMIC_RELAXED) != 0) __builtin_ia32_pause();
  }
}
void Unlock() { __atomic_store_n(&g_lock, 0, __ATOMIC_RELEASE); }

// What munmap(start, length) releases of region r, updating it.
size_t Trim(Region& r, uintptr_t start, uintptr_t end, Unmapped* out) {
  const uintptr_t r_end = r.start + r.length;
  const uintptr_t lo = start > r.start ? start : r.start, hi = end < r_end ? end : r_end;
  if (lo >= hi) return 0;
  const size_t released = hi - lo;
  if (lo == r.start && hi == r_end) {
    out->whole = true;
    out->start = r.origin;
    r.length = 0;
  } else if (lo == r.start) {
    r.start = hi;
    r.length = r_end - hi;
  } else if (hi == r_end) {
    r.length = lo - r.start;
  }  // a hole: the record stays whole (see the header)
  return released;
}

}  // namespace

bool CountedMapping(int prot, int flags, int fd) {
  return (flags & MAP_ANONYMOUS) != 0 && (flags & MAP_SHARED) == 0 && fd == -1 &&
         (prot & PROT_WRITE) != 0;
}

bool AddRegion(uintptr_t start, size_t length) {
  Lock();
  size_t slot = 0;
  while (slot < g_used && g_regions[slot].length != 0) ++slot;
  if (slot == kMaxRegions) {
    Unlock();
    return false;
  }
  g_regions[slot] = {start, length, start};
  if (slot == g_used) ++g_used;
  Unlock();
  return true;
}

Unmapped RemoveRange(uintptr_t start, size_t length) {
  Unmapped out;
  const uintptr_t end = start + length;
  Lock();
  for (size_t i = 0; i < g_used; ++i) {
    if (g_regions[i].length != 0) out.bytes += Trim(g_regions[i], start, end, &out);
  }
  while (g_used > 0 && g_regions[g_used - 1].length == 0) --g_used;
  Unlock();
  return out;
}

void RegionsBeforeFork() { Lock(); }
void RegionsAfterFork() { Unlock(); }

}  // namespace fs::memory::heap_internal
