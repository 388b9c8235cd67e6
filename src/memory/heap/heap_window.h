// The reclaim ratio of one process over a window, from successive readings of its counters file
// (the preload library's; heap_counters.h): what `framescope memory` reports per process.
#ifndef FRAMESCOPE_MEMORY_HEAP_HEAP_WINDOW_H_
#define FRAMESCOPE_MEMORY_HEAP_HEAP_WINDOW_H_

#include <optional>
#include <string>

#include "src/memory/heap/heap_counters.h"

namespace fs::memory {

// The verdict's threshold (mission checklist 1.2: "GC effectiveness" over 0.95, which for C++
// is bytes freed / bytes allocated).
inline constexpr double kReclaimTarget = 0.95;

class HeapWindow {
 public:
  // `dir`: the FRAMESCOPE_HEAP_DIR the process was started with; empty when it was not.
  explicit HeapWindow(std::string dir) : dir_(std::move(dir)) {}

  // Reads `pid`'s counters now. The first good reading opens the window, each later one moves
  // its end; a reading of another image of the pid (an exec) opens a new window from it. An
  // unreadable file (not created yet, the process gone) leaves the window as it was.
  void Read(int pid);
  // Allocated and freed bytes over the window and their ratio; value absent (why_absent says
  // why) when the process was not counted, no reading succeeded, or nothing was allocated.
  ReclaimRatio Result() const;
  // Whether the process was started with the library (a folder to read from) at all.
  bool counted() const { return !dir_.empty(); }

 private:
  std::string dir_;
  std::optional<HeapCounters> first_, last_;
  std::string last_error_;
};

// "met" (ratio >= kReclaimTarget), "not met", or "not measured" (no value).
const char* ReclaimVerdict(const ReclaimRatio& r);
// What a ratio below the target means for a C++ program (no garbage collector: what is not
// freed was kept on purpose or lost), for the report.
const char* ReclaimExplanation();

}  // namespace fs::memory

#endif  // FRAMESCOPE_MEMORY_HEAP_HEAP_WINDOW_H_
