#include "src/cli/heap_record.h"

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "src/base/clock.h"
#include "src/base/output.h"
#include "src/cli/cli_util.h"
#include "src/cli/command.h"
#include "src/memory/heap/heap_profile.h"
#include "src/profile/folded.h"
#include "src/profile/pprof.h"
#include "src/system/process.h"

namespace fs {
namespace {

// Sites are symbolized when first read, while the command lives: read often, so a short-lived
// command's sites are named too (what appears after its last reading keeps bare addresses).
constexpr double kReadIntervalS = 0.1;

// Reads the command's sites every kReadIntervalS until the duration, its exit or Ctrl-C.
void Follow(const HeapRecordOptions& o, pid_t pid, memory::HeapSiteTracker* tracker) {
  const int64_t start = MonotonicNs();
  for (;;) {
    const double t = static_cast<double>(MonotonicNs() - start) / 1e9;
    const bool running = ProcessAlive(pid);
    tracker->Read(pid, t);
    if (!running || o.stop->load() || (o.duration_s > 0 && t >= o.duration_s)) return;
    fprintf(stderr, "\rrecording heap %.0f s, %llu sampled allocations", t,
            tracker->has_data() ? static_cast<unsigned long long>(tracker->last()->samples) : 0ULL);
    fflush(stderr);
    std::this_thread::sleep_for(std::chrono::duration<double>(kReadIntervalS));
  }
}

void PrintSummary(const memory::HeapSiteTracker& tracker, FILE* info) {
  const memory::HeapSites& s = *tracker.last();
  double inuse = 0, alloc = 0;
  for (const memory::HeapSiteCounts& c : s.sites) {
    inuse += c.inuse_bytes();
    alloc += c.alloc_bytes;
  }
  fprintf(info,
          "sampled %llu allocations at %zu sites (mean interval %llu bytes): about %.1f MB "
          "allocated, %.1f MB still in use%s\n",
          static_cast<unsigned long long>(s.samples), s.sites.size(),
          static_cast<unsigned long long>(s.sample_interval_bytes), alloc / 1e6, inuse / 1e6,
          s.dropped_live_table_full + s.dropped_sites_full > 0 ? " (some samples dropped)" : "");
  size_t shown = 0;
  for (const memory::HeapSiteSummary& site : tracker.Sites({}, 5)) {
    if (site.inuse_bytes <= 0 || shown++ == 5) continue;
    fprintf(info, "  %10.1f MB in use  %s\n", site.inuse_bytes / 1e6, site.function.c_str());
  }
}

bool WriteProfiles(const HeapRecordOptions& o, const profile::Profile& p, FILE* info) {
  const Status pprof = profile::WritePprofFile(o.out, p);
  const Status folded = WriteOutput(o.folded, profile::ToFolded(p, /*inuse_space*/ 3));
  for (const Status* st : {&pprof, &folded}) {
    if (!st->ok()) fprintf(stderr, "framescope record: %s\n", st->message().c_str());
  }
  if (pprof.ok() && folded.ok()) {
    fprintf(info, "wrote %s (pprof heap profile) and %s (folded, bytes in use)\n",
            OutputName(o.out).c_str(), OutputName(o.folded).c_str());
  }
  return pprof.ok() && folded.ok();
}

}  // namespace

int RecordHeapProfile(const HeapRecordOptions& o) {
  char tmpl[] = "/tmp/framescope-heap.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    perror("framescope record: a temporary folder for the heap files");
    return 1;
  }
  const std::string heap_dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{heap_dir};
  auto env = HeapPreloadEnv(heap_dir);
  if (!env.ok()) {
    fprintf(stderr, "framescope record: %s\n", env.status().message().c_str());
    return 1;
  }
  const bool stdout_taken = o.out == "-" || o.folded == "-";
  auto command =
      ChildCommand::Start(o.command, {.stdout_to_stderr = stdout_taken, .extra_env = *env});
  if (!command.ok()) {
    fprintf(stderr, "framescope record: %s\n", command.status().message().c_str());
    return 1;
  }
  memory::HeapSiteTracker tracker(heap_dir);
  Follow(o, command->pid(), &tracker);
  fprintf(stderr, "\n");
  const std::string end = command->End(o.keep_running);
  if (!end.empty()) fprintf(stderr, "framescope record: %s\n", end.c_str());
  if (!tracker.has_data()) {
    fprintf(stderr, "framescope record: no heap samples (%s); nothing written\n",
            tracker.why_absent().c_str());
    return 1;
  }
  FILE* info = stdout_taken ? stderr : stdout;
  PrintSummary(tracker, info);
  if (!WriteProfiles(o, tracker.HeapProfile(), info)) return 1;
  return o.stop->load() ? 130 : 0;
}

}  // namespace fs
