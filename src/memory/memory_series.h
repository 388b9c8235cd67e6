// Process memory over time: one reading of a process tree from /proc/PID/smaps_rollup, and a
// log of readings that survives crashes (one JSON object per line, appended).
//
// Where each number comes from (Documentation/filesystems/proc.rst, "smaps_rollup": the sums of
// /proc/PID/smaps over all mappings, in kB):
//   rss   = "Rss"        resident pages, shared ones counted in full by every process;
//   pss   = "Pss"        resident pages, each shared page divided among the processes mapping it;
//   anon  = "Anonymous"  resident anonymous pages (heap, stacks, private mmap);
//   file  = "Rss" - "Anonymous": resident file-backed pages plus shared memory (shmem, which
//           smaps_rollup does not separate from files in Rss);
//   swap  = "Swap"       anonymous pages swapped out (a leak that swaps leaves RSS flat).
// Summed over a process tree, pss is the honest total (a page shared by parent and child is
// counted once); rss counts it once per process.
#ifndef FRAMESCOPE_MEMORY_MEMORY_SERIES_H_
#define FRAMESCOPE_MEMORY_MEMORY_SERIES_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/net.h"
#include "src/base/status.h"

namespace fs::profile {

struct MemoryCounters {
  uint64_t rss = 0;
  uint64_t pss = 0;
  uint64_t anon = 0;
  uint64_t file = 0;
  uint64_t swap = 0;
};

// One reading of one named target (a service or a command's process tree).
struct MemorySample {
  double time_s = 0;  // CLOCK_REALTIME seconds: a resumed log continues the same time axis.
  std::string name;
  std::vector<pid_t> pids;  // the tree as read, root first
  MemoryCounters bytes;
};

// Parses smaps_rollup text into bytes. False when Rss or Anonymous is missing (not that file).
bool ParseSmapsRollup(const std::string& text, MemoryCounters* out);
// The sum over `root` and its live descendants. A descendant that exits mid-read is skipped; an
// error when the root itself is gone or unreadable.
StatusOr<MemorySample> ReadProcessTreeMemory(pid_t root, const std::string& name);

Json SampleToJson(const MemorySample& s);
// False for anything but an object with a numeric time and rss (other fields default to 0).
bool SampleFromJson(const Json& j, MemorySample* out);

// Appends one line per sample. Opened O_APPEND so each line is one write() at the end of the
// file: a crash loses at most the line being written, and a second run appends to the same log.
class MemoryLog {
 public:
  // Creates `path` or opens it for appending. Refuses a symlink (O_NOFOLLOW) or anything but a
  // regular file. A last line cut short by a crash is closed with a newline first, so the next
  // sample starts a line of its own (the cut line stays corrupt and is counted by the reader).
  static StatusOr<MemoryLog> Open(const std::string& path);
  Status Append(const MemorySample& s);
  const std::string& path() const { return path_; }

 private:
  MemoryLog(ScopedFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  ScopedFd fd_;
  std::string path_;
};

struct LoadedLog {
  std::vector<MemorySample> samples;  // in file order
  size_t corrupt_lines = 0;           // not JSON, or not a sample: skipped
};
// Parses log text; never fails (blank lines are neither samples nor corrupt).
LoadedLog ParseMemoryLog(const std::string& text);
// Reads a log file (a regular file only).
StatusOr<LoadedLog> LoadMemoryLog(const std::string& path);
// The samples of one name, in file order; with `root_pid` > 0 only those of that process (a
// resumed log continues one process's series; a new process of the same name starts its own).
std::vector<MemorySample> SamplesNamed(const std::vector<MemorySample>& all,
                                       const std::string& name, pid_t root_pid = 0);

}  // namespace fs::profile

#endif  // FRAMESCOPE_MEMORY_MEMORY_SERIES_H_
