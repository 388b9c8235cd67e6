#include "src/memory/heap/heap_sites.h"

#include <cstring>

#include "src/base/file_util.h"
#include "src/memory/heap/heap_sites_format.h"

namespace fs::memory {
namespace {

Status FileError(const std::string& path, const std::string& what) {
  return Err("heap sites " + path + ": " + what);
}

Status ValidateHeader(const std::string& path, const HeapSitesHeader& h) {
  if (h.magic != kHeapSitesMagic) return FileError(path, "not a framescope heap sites file");
  if (h.version != kHeapSitesVersion || h.header_size != sizeof(HeapSitesHeader) ||
      h.site_size != sizeof(HeapSite) || h.max_depth != kHeapSiteMaxDepth) {
    return FileError(path, "format version " + std::to_string(h.version) +
                               " with another layout: use the framescope that matches the "
                               "preload library");
  }
  if (h.pid <= 0) return FileError(path, "corrupt: pid " + std::to_string(h.pid));
  if (h.max_sites > kHeapMaxSites || h.sites_used > h.max_sites) {
    return FileError(path, "corrupt: " + std::to_string(h.sites_used) + " sites used of " +
                               std::to_string(h.max_sites));
  }
  if (h.sample_interval_bytes == 0) return FileError(path, "corrupt: sampling interval 0");
  return Status::Ok();
}

HeapSiteCounts Counts(const HeapSite& s) {
  HeapSiteCounts c;
  c.pcs.assign(s.pcs, s.pcs + s.depth);
  c.alloc_samples = s.alloc_samples;
  c.free_samples = s.free_samples;
  c.alloc_objects = static_cast<double>(s.alloc_objects_scaled) / kObjectScale;
  c.free_objects = static_cast<double>(s.free_objects_scaled) / kObjectScale;
  c.alloc_bytes = static_cast<double>(s.alloc_bytes);
  c.free_bytes = static_cast<double>(s.free_bytes);
  return c;
}

}  // namespace

std::string HeapSitesPath(const std::string& dir, int pid) {
  return dir + "/heap-" + std::to_string(pid) + ".sites";
}

StatusOr<HeapSites> ReadHeapSites(const std::string& path) {
  auto head = ReadFileRange(path, 0, sizeof(HeapSitesHeader));
  if (!head.ok()) return FileError(path, head.status().message());
  if (head->size() < sizeof(HeapSitesHeader)) return FileError(path, "truncated header");
  HeapSitesHeader h{};
  std::memcpy(&h, head->data(), sizeof(h));
  RETURN_IF_ERROR(ValidateHeader(path, h));
  const size_t sites_bytes = size_t{h.sites_used} * sizeof(HeapSite);
  auto body = ReadFileRange(path, sizeof(HeapSitesHeader), sites_bytes);
  if (!body.ok()) return FileError(path, body.status().message());
  if (body->size() < sites_bytes) return FileError(path, "truncated: fewer sites than its header");
  HeapSites out;
  out.pid = h.pid;
  out.generation = h.generation;
  out.start_unix_ns = h.start_unix_ns;
  out.process_start_ticks = h.process_start_ticks;
  out.sample_interval_bytes = h.sample_interval_bytes;
  out.samples = h.samples;
  out.dropped_live_table_full = h.dropped_live_table_full;
  out.dropped_sites_full = h.dropped_sites_full;
  out.sites.reserve(h.sites_used);
  for (uint32_t i = 0; i < h.sites_used; ++i) {
    HeapSite s{};
    std::memcpy(&s, body->data() + size_t{i} * sizeof(HeapSite), sizeof(s));
    if (s.depth > kHeapSiteMaxDepth) {
      return FileError(
          path, "corrupt: site " + std::to_string(i) + " has depth " + std::to_string(s.depth));
    }
    out.sites.push_back(Counts(s));
  }
  return out;
}

}  // namespace fs::memory
