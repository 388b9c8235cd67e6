#include "src/memory/heap/heap_counters.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "src/base/file_util.h"
#include "src/memory/heap/heap_counters_format.h"

namespace fs::memory {
namespace {

Status FileError(const std::string& path, const std::string& what) {
  return Err("heap counters " + path + ": " + what);
}

Status ValidateHeader(const std::string& path, const HeapCountersHeader& h) {
  if (h.magic != kHeapCountersMagic) {
    return FileError(path, "not a framescope heap counters file (bad magic)");
  }
  if (h.version != kHeapCountersVersion) {
    return FileError(path, "format version " + std::to_string(h.version) + ", this reader knows " +
                               std::to_string(kHeapCountersVersion) +
                               ": use the framescope that matches the preload library");
  }
  if (h.header_size != sizeof(HeapCountersHeader)) {
    return FileError(path, "header size " + std::to_string(h.header_size) + ", expected " +
                               std::to_string(sizeof(HeapCountersHeader)));
  }
  if (h.pid <= 0) return FileError(path, "corrupt: pid " + std::to_string(h.pid));
  return Status::Ok();
}

}  // namespace

Status PrepareHeapDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) return Err("heap dir " + dir + ": cannot clear it: " + ec.message());
  return MakeDirs(dir).Annotate("heap dir");
}

std::vector<std::string> HeapProfileEnv(const std::string& bin_dir, const std::string& dir) {
  std::string preload = bin_dir + "/" + kHeapLibrary;
  // Keeps whatever the environment already preloads (a sanitizer runtime, say) after ours.
  if (const char* inherited = getenv("LD_PRELOAD"); inherited && *inherited) {
    preload += std::string(":") + inherited;
  }
  return {"LD_PRELOAD=" + preload, std::string(kHeapDirEnv) + "=" + dir};
}

std::string HeapCountersPath(const std::string& dir, int pid) {
  return dir + "/heap-" + std::to_string(pid) + ".counters";
}

StatusOr<HeapCounters> ReadHeapCounters(const std::string& path) {
  auto bytes = ReadFileRange(path, 0, sizeof(HeapCountersHeader));
  if (!bytes.ok()) return FileError(path, bytes.status().message());
  if (bytes->size() < sizeof(HeapCountersHeader)) {
    return FileError(path, "truncated: " + std::to_string(bytes->size()) +
                               " bytes, the header needs " +
                               std::to_string(sizeof(HeapCountersHeader)));
  }
  HeapCountersHeader h{};
  std::memcpy(&h, bytes->data(), sizeof(h));
  RETURN_IF_ERROR(ValidateHeader(path, h));
  HeapCounters c;
  c.pid = h.pid;
  c.generation = h.generation;
  c.start_unix_ns = h.start_unix_ns;
  c.process_start_ticks = h.process_start_ticks;
  c.allocated_bytes = h.allocated_bytes;
  c.allocated_calls = h.allocated_calls;
  c.freed_bytes = h.freed_bytes;
  c.freed_calls = h.freed_calls;
  return c;
}

StatusOr<ReclaimRatio> ReclaimRatioBetween(const HeapCounters& earlier, const HeapCounters& later) {
  if (earlier.pid != later.pid || earlier.generation != later.generation ||
      earlier.start_unix_ns != later.start_unix_ns) {
    return Err("reclaim ratio: the readings are of different process images (pid " +
               std::to_string(earlier.pid) + " generation " + std::to_string(earlier.generation) +
               " vs pid " + std::to_string(later.pid) + " generation " +
               std::to_string(later.generation) + "): start a new window after an exec");
  }
  if (later.allocated_bytes < earlier.allocated_bytes || later.freed_bytes < earlier.freed_bytes ||
      later.allocated_calls < earlier.allocated_calls || later.freed_calls < earlier.freed_calls) {
    return Err("reclaim ratio: counters of pid " + std::to_string(later.pid) +
               " went backwards between the readings (corrupt file or readings swapped)");
  }
  ReclaimRatio r;
  r.allocated_bytes = later.allocated_bytes - earlier.allocated_bytes;
  r.freed_bytes = later.freed_bytes - earlier.freed_bytes;
  if (r.allocated_bytes == 0) {
    r.why_absent = "nothing was allocated in the window";
  } else {
    r.value = static_cast<double>(r.freed_bytes) / static_cast<double>(r.allocated_bytes);
  }
  return r;
}

}  // namespace fs::memory
