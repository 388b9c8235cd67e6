// Reader of the preload library's counters files (format: heap_counters_format.h) and the
// reclaim ratio (issue 11): bytes freed / bytes allocated over a window between two readings.
#ifndef FRAMESCOPE_MEMORY_HEAP_HEAP_COUNTERS_H_
#define FRAMESCOPE_MEMORY_HEAP_HEAP_COUNTERS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs::memory {

// The preload library's file name (built beside the framescope binary) and the variable that
// turns its counting on.
inline constexpr char kHeapLibrary[] = "libframescope_heap.so";
inline constexpr char kHeapDirEnv[] = "FRAMESCOPE_HEAP_DIR";

// Creates `dir` empty: counters files of an earlier run are removed first, so a reader never
// mixes them with this run's (they carry pid and start time too, but a stale pid can recur).
Status PrepareHeapDir(const std::string& dir);
// "LD_PRELOAD=<bin_dir>/libframescope_heap.so[:<the inherited LD_PRELOAD>]" and
// "FRAMESCOPE_HEAP_DIR=<dir>": the environment a child is started with to be counted.
std::vector<std::string> HeapProfileEnv(const std::string& bin_dir, const std::string& dir);

// One reading of one process's counters. Bytes are malloc_usable_size of each block.
struct HeapCounters {
  int pid = 0;
  uint32_t generation = 0;           // +1 per exec of the same pid (the file was replaced)
  uint64_t start_unix_ns = 0;        // when that image's library initialised
  uint64_t process_start_ticks = 0;  // the process's start (same across exec)
  uint64_t allocated_bytes = 0;
  uint64_t allocated_calls = 0;
  uint64_t freed_bytes = 0;
  uint64_t freed_calls = 0;
};

// Reads a counters file. A missing, short, foreign or corrupt file is an error naming the path
// and what is wrong, never a crash (the file is read with pread, not mapped, so a file truncated
// under the reader cannot fault it).
StatusOr<HeapCounters> ReadHeapCounters(const std::string& path);

// The file the preload library writes for `pid` under FRAMESCOPE_HEAP_DIR=dir.
std::string HeapCountersPath(const std::string& dir, int pid);

struct ReclaimRatio {
  uint64_t allocated_bytes = 0;  // over the window
  uint64_t freed_bytes = 0;
  // freed / allocated; absent when nothing was allocated. Can exceed 1 when the window frees
  // blocks allocated before it (or, in a forked child, by the parent).
  std::optional<double> value;
  std::string why_absent;  // set when value is absent
};

// The reclaim ratio between an earlier and a later reading of the same process image. Readings
// of different processes or images (pid, generation, start), or counters that went backwards,
// are an error: no window spans an exec.
StatusOr<ReclaimRatio> ReclaimRatioBetween(const HeapCounters& earlier, const HeapCounters& later);

}  // namespace fs::memory

#endif  // FRAMESCOPE_MEMORY_HEAP_HEAP_COUNTERS_H_
