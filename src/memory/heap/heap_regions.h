// Anonymous memory mapped by the program itself (mmap/munmap called directly, as TBB's and
// other allocators do for large blocks), inside libframescope_heap.so: which regions are ours
// to count, so that a munmap frees exactly what an mmap allocated. glibc's malloc maps through
// its internal __mmap, which the preload does not see: nothing is counted twice.
//
// Counted: private anonymous read-write mappings (not PROT_NONE reservations, not files, not
// shared memory). A munmap of a whole region frees it; one that trims a region's start or end
// frees that part and keeps the rest; one inside a region (a hole) frees its bytes and leaves
// the region's record whole (its later unmaps can then over-count by the hole). Regions past
// the table's capacity (8192 at once) are counted as allocated but their unmaps cannot be
// matched. A munmap spanning several whole regions forgets the sample of one of them only.
// mremap is not followed: a remapped region's record stays at its old address.
#ifndef FRAMESCOPE_MEMORY_HEAP_HEAP_REGIONS_H_
#define FRAMESCOPE_MEMORY_HEAP_HEAP_REGIONS_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace fs::memory::heap_internal {

// The library's own mappings (its files, its tables) bypass its mmap/munmap hooks: they are not
// the program's memory, and a hook taking the regions lock inside a fork handler that holds it
// would wait forever.
inline void* RawMmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
  return reinterpret_cast<void*>(syscall(SYS_mmap, addr, length, prot, flags, fd, offset));
}
inline int RawMunmap(void* addr, size_t length) {
  return static_cast<int>(syscall(SYS_munmap, addr, length));
}

// Whether an mmap with these arguments makes memory that counts as allocated.
bool CountedMapping(int prot, int flags, int fd);
// Records a counted region; false when the table is full (the region is then untracked).
bool AddRegion(uintptr_t start, size_t length);

struct Unmapped {
  size_t bytes = 0;     // bytes of tracked regions this munmap released
  bool whole = false;   // it released the last of a region
  uintptr_t start = 0;  // where that region was mapped (the sampler's key for it)
};
// Updates the table for munmap(start, length) and says what it released.
Unmapped RemoveRange(uintptr_t start, size_t length);

// pthread_atfork around the table's lock. A forked child keeps the parent's regions (its copy
// of the address space has them too).
void RegionsBeforeFork();
void RegionsAfterFork();

}  // namespace fs::memory::heap_internal

#endif  // FRAMESCOPE_MEMORY_HEAP_HEAP_REGIONS_H_
