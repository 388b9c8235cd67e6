// CPU sampler core: perf_event_open on the cpu-clock software event for every thread of a set
// of processes, frame-pointer callchains from the kernel, and a ring-buffer reader.
//
// Kernel ABI notes (see perf_event_open(2) and linux/perf_event.h):
//  - One event per (thread that exists at Start(), online CPU) with inherit = 1, so threads (and
//    child processes) created later get inherited child events whose records the kernel writes
//    into the *parent* event's ring. The kernel refuses mmap() of inherited per-task events
//    (cpu = -1: perf_mmap returns EINVAL), hence per-CPU events; all events on one CPU share
//    one ring via PERF_EVENT_IOC_SET_OUTPUT (the kernel requires the same CPU for that).
//    Budget: fds = threads x CPUs, rings = CPUs, memory = CPUs x (ring_pages + 1) pages.
//    Start() refuses more than kMaxEvents fds rather than exhausting the fd limit.
//  - comm = 1 and task = 1 give PERF_RECORD_COMM / FORK / EXIT for thread names and new threads.
//  - Unwinding is frame-pointer only (PERF_SAMPLE_CALLCHAIN). DWARF unwinding would add
//    PERF_SAMPLE_STACK_USER | PERF_SAMPLE_REGS_USER: see the "DWARF hook" comments in sampler.cc
//    (attr setup and ParseSample) for where the extra fields go.
#ifndef FRAMESCOPE_PROFILE_SAMPLER_H_
#define FRAMESCOPE_PROFILE_SAMPLER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs::profile {

struct RawSample {
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint64_t time_ns = 0;              // CLOCK_MONOTONIC-like perf clock (perf_clock()).
  uint64_t period = 0;               // cpu-clock nanoseconds this sample stands for.
  std::vector<uint64_t> kernel_ips;  // Leaf first; empty when the kernel hides them.
  std::vector<uint64_t> user_ips;  // Leaf first; [0] is the sampled IP, the rest return addresses.
};

struct SamplerOptions {
  std::vector<pid_t> pids;
  int frequency_hz = 99;
  size_t ring_pages = 64;  // Data pages per ring; must be a power of two.
  bool kernel = true;      // Ask for kernel frames; falls back to user-only if refused.
  // DWARF unwinding: also copy user registers and `stack_bytes` of user stack per sample.
  bool dwarf = false;
  uint32_t stack_bytes = 8192;
};

// Counters the ring reader keeps; exposed for tests and the overhead report.
struct RingStats {
  uint64_t samples = 0;
  uint64_t lost = 0;       // Sum of PERF_RECORD_LOST.lost.
  uint64_t malformed = 0;  // Rings whose parse was abandoned on a bad record.
};

// Everything the ring reader produces, in record order.
struct RingSink {
  std::vector<RawSample> samples;
  std::map<uint32_t, std::string> comms;  // tid -> comm from COMM and FORK records.
  std::set<uint32_t> forked_tids;         // Threads announced by PERF_RECORD_FORK.
  RingStats stats;
};

// Reads records from one perf mmap ring. `meta` is the first (metadata) page; `data` points to
// the data area of `data_size` bytes (a power of two). Separate from Sampler so tests can feed a
// synthetic ring (wrap-around, malformed records) without a kernel.
// Returns the number of samples drained. On a malformed record (size < header, larger than the
// ring or than the unread bytes) it skips the rest of the unread data and counts it.
size_t DrainRing(void* meta, const uint8_t* data, uint64_t data_size, RingSink* sink);

class Sampler {
 public:
  // Refuses targets needing more perf fds than this (threads x CPUs).
  static constexpr size_t kMaxEvents = 4096;

  // Errors: a dead pid ("no such process: pid N"), EACCES/EPERM with the fix.
  static StatusOr<std::unique_ptr<Sampler>> Start(const SamplerOptions& options);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Drains every ring into the internal buffer; returns samples drained. Call from one thread
  // periodically (every ~100 ms at 99 Hz x 64 pages leaves a wide margin).
  size_t Poll();
  // Disables and closes every event after a final drain. Idempotent.
  void Stop();

  std::vector<RawSample> TakeSamples();
  // tid -> comm: /proc at start, COMM/FORK records, and /proc again at Stop().
  std::map<uint32_t, std::string> ThreadNames() const;
  uint64_t lost() const;
  uint64_t malformed() const;
  // False when the host refused kernel callchains and we fell back to exclude_kernel.
  bool kernel_frames() const { return kernel_frames_; }
  size_t num_events() const { return fds_.size(); }

 private:
  struct Ring {
    int cpu = -1;
    int fd = -1;           // The event that owns the mmap; others SET_OUTPUT into it.
    void* base = nullptr;  // mmap of 1 + ring_pages pages.
    size_t length = 0;
  };
  Sampler() = default;
  void RefreshNamesFromProc();

  SamplerOptions options_;
  bool kernel_frames_ = true;
  bool stopped_ = false;
  std::vector<int> fds_;     // Every perf event fd (threads x CPUs).
  std::vector<Ring> rings_;  // One per online CPU.
  mutable std::mutex mu_;    // Guards sink_ (Poll may run beside TakeSamples/ThreadNames).
  RingSink sink_;
};

}  // namespace fs::profile

#endif  // FRAMESCOPE_PROFILE_SAMPLER_H_
