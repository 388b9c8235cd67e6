// The layout of a heap counters file: the contract between the preload library
// (heap_preload.cc, which writes it) and its reader (heap_counters.cc). Plain integers only, so
// the preload library needs nothing beyond libc to include it.
//
// File: <FRAMESCOPE_HEAP_DIR>/heap-<pid>.counters, mode 0600, one page long, shared-mapped by
// the process it describes. The library fills the header, then stores `magic` last (release), so
// a reader that sees the magic sees a complete header. The four counters only grow; the library
// adds to them with relaxed atomic adds, one batch per thread at a time.
#ifndef FRAMESCOPE_MEMORY_HEAP_HEAP_COUNTERS_FORMAT_H_
#define FRAMESCOPE_MEMORY_HEAP_HEAP_COUNTERS_FORMAT_H_

#include <cstdint>

namespace fs::memory {

inline constexpr uint64_t kHeapCountersMagic = 0x3143504845485346ULL;  // "FSHEHPC1" little-endian
inline constexpr uint32_t kHeapCountersVersion = 1;
// The file is one page so that a future version can grow the header without moving counters.
inline constexpr uint32_t kHeapCountersFileSize = 4096;

struct HeapCountersHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size;  // sizeof(HeapCountersHeader) of the writer
  int32_t pid;
  // 0 for the first image of this pid that loaded the library, +1 for each exec that loaded it
  // again (the new image replaces the file; the previous image's counts end with it).
  uint32_t generation;
  uint64_t start_unix_ns;  // CLOCK_REALTIME when this image's library initialised
  // The process's start time (/proc/PID/stat field 22, clock ticks since boot): the same across
  // exec, different for a later process that reuses the pid. Tells an exec (generation + 1) from
  // a stale file of an earlier process with this pid (generation 0).
  uint64_t process_start_ticks;
  // Bytes are malloc_usable_size of each block, on both sides, so freed/allocated is exact.
  uint64_t allocated_bytes;
  uint64_t allocated_calls;
  uint64_t freed_bytes;
  uint64_t freed_calls;
};
static_assert(sizeof(HeapCountersHeader) == 72, "the file format fixes this layout");

}  // namespace fs::memory

#endif  // FRAMESCOPE_MEMORY_HEAP_HEAP_COUNTERS_FORMAT_H_
