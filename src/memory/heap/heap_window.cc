#include "src/memory/heap/heap_window.h"

namespace fs::memory {

void HeapWindow::Read(int pid) {
  if (dir_.empty()) return;
  auto c = ReadHeapCounters(HeapCountersPath(dir_, pid));
  if (!c.ok()) {
    last_error_ = c.status().message();
    return;
  }
  bool same_image = first_ && first_->generation == c->generation &&
                    first_->start_unix_ns == c->start_unix_ns && first_->pid == c->pid;
  if (!same_image) first_ = *c;
  last_ = *c;
}

ReclaimRatio HeapWindow::Result() const {
  ReclaimRatio r;
  if (dir_.empty()) {
    r.why_absent =
        "not counted: the process was not started with the heap counters library "
        "(`up --heap-profile`, `memory --heap`)";
    return r;
  }
  if (!first_) {
    r.why_absent = "no counters were read: " + last_error_;
    return r;
  }
  auto window = ReclaimRatioBetween(*first_, *last_);
  if (!window.ok()) {
    r.why_absent = window.status().message();
    return r;
  }
  return *window;
}

const char* ReclaimVerdict(const ReclaimRatio& r) {
  if (!r.value) return "not measured";
  return *r.value >= kReclaimTarget ? "met" : "not met";
}

const char* ReclaimExplanation() {
  return "reclaim ratio = bytes freed / bytes allocated over the window (C++ has no garbage "
         "collector: this is the checklist's \"GC effectiveness\"). Below 0.95, memory allocated "
         "in the window was kept: a cache still filling (warm-up), a working set that grows "
         "(queues, maps), or a leak; the RSS slope and the per-site growth tell them apart.";
}

}  // namespace fs::memory
