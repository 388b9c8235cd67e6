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
//  - comm = 1 and task = 1 give PERF_RECORD_COMM / FORK / EXIT for thread names, new threads
//    and processes, and exits; sample_id_all + PERF_SAMPLE_TIME stamp every record, on
//    CLOCK_MONOTONIC (use_clockid), so records can be ordered across rings (below).
//  - Ordering: each ring is in time order, but the rings are drained one after another, so a
//    child's samples on one CPU can be read before its FORK record on another (even in the
//    next Poll). DrainRing only parses records into RingSink::pending; ApplyRingEvents applies
//    them in time order up to a horizon: Poll() uses "now - kReorderWindowNs" (a record is
//    published within microseconds of its timestamp), Stop() everything. So a FORK joins its
//    child to the targets before the child's first sample, a COMM names the samples after it
//    (thread names as they were when sampled), and an EXIT of a target or joined process
//    removes it from the filter before a reused pid can be counted.
//  - Callchains come from the kernel's frame-pointer walk (PERF_SAMPLE_CALLCHAIN). With
//    SamplerOptions::dwarf the records also carry PERF_SAMPLE_REGS_USER (the x86_64 registers
//    in kUserRegsMask) and PERF_SAMPLE_STACK_USER (a copy of `stack_bytes` of user stack from
//    SP up) for unwinder.h to walk with DWARF CFI, and exclude_callchain_user stops the
//    kernel's user frame-pointer walk (wasted work per sample: the unwinder walks frame
//    pointers itself over the stack copy when CFI fails). Each record then weighs
//    ~stack_bytes, so the rings grow to kDwarfRingPages. The kernel caps a record at 64 KiB
//    (u16 header.size) and shrinks the stack copy to fit; dyn_size says how much is real.
#ifndef FRAMESCOPE_COLLECT_SAMPLER_H_
#define FRAMESCOPE_COLLECT_SAMPLER_H_

#include <linux/perf_event.h>
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
  // Leaf first; [0] is the sampled IP, the rest return addresses. Empty from the kernel in
  // DWARF mode (exclude_callchain_user): the unwinder fills it.
  std::vector<uint64_t> user_ips;
  // DWARF mode only (released by the unwinder once used). regs_abi is PERF_SAMPLE_REGS_ABI_*
  // (0: no user registers, e.g. the sample hit a kernel thread); user_regs holds the registers
  // of kUserRegsMask in perf_regs bit order (index with UserReg), user_stack the copied bytes
  // starting at user_regs[kRegSp], already cut to the kernel's dyn_size.
  uint64_t regs_abi = 0;
  std::vector<uint64_t> user_regs;
  std::vector<uint8_t> user_stack;
  // The thread's name when the sample was taken (COMM records applied in time order); empty
  // when no name was known then.
  std::string thread_name;
  // The process image the sample ran (RingSink::images): a new one per process and per exec,
  // so samples after an exec are symbolized with the new binary. 0: unknown.
  uint32_t image = 0;
};

// x86_64 user registers sampled in DWARF mode, in the order RawSample::user_regs holds them
// (the bit order of enum perf_event_x86_regs: AX..IP are bits 0..8, R8..R15 bits 16..23). These
// are the registers libdwfl's x86_64 backend unwinds with; FLAGS and the segment registers are
// useless for that (and DS..GS are refused on x86_64 with EINVAL).
enum UserReg : int {
  kRegAx,
  kRegBx,
  kRegCx,
  kRegDx,
  kRegSi,
  kRegDi,
  kRegBp,
  kRegSp,
  kRegIp,
  kRegR8,
  kRegR9,
  kRegR10,
  kRegR11,
  kRegR12,
  kRegR13,
  kRegR14,
  kRegR15,
  kNumUserRegs
};
constexpr uint64_t kUserRegsMask = 0x1ffULL | (0xffULL << 16);
// Bounds of SamplerOptions::stack_bytes: a multiple of 8 (kernel requirement) that fits, with
// the rest of the record, in the u16 record size (perf's own limit is 65528 too).
constexpr uint32_t kMinStackBytes = 512;
constexpr uint32_t kMaxStackBytes = 65528;
// DWARF records are ~stack_bytes each: at 99 Hz x 8 KiB a 64-page ring would fill in ~0.3 s.
constexpr size_t kDwarfRingPages = 512;

struct SamplerOptions {
  std::vector<pid_t> pids;
  int frequency_hz = 99;
  size_t ring_pages = 64;  // Data pages per ring; must be a power of two.
  bool kernel = true;      // Ask for kernel frames; falls back to user-only if refused.
  // DWARF unwinding: also copy user registers and `stack_bytes` of user stack per sample
  // (kMinStackBytes..kMaxStackBytes, a multiple of 8). Rings get at least kDwarfRingPages
  // (fewer if the locked-memory limit refuses them).
  bool dwarf = false;
  uint32_t stack_bytes = 8192;
  // System-wide mode: one event per CPU for every process (pid -1), samples kept only for the
  // target pids and the processes they fork while recording (PERF_RECORD_FORK). Unlike
  // per-thread events with inherit, this also counts threads that live shorter than one sample
  // period (a thread per request), whose partial periods inherited events drop. Needs root,
  // CAP_PERFMON or kernel.perf_event_paranoid <= 0; Start() falls back to per-thread events
  // when refused (see system_wide()).
  bool system_wide = false;
  // Skip pids that exited before Start() (e.g. a short-lived PostgreSQL worker listed with its
  // service) instead of failing; Start() still fails when none is left.
  bool allow_vanished = false;
};

// Counters the ring reader keeps; exposed for tests and the overhead report.
struct RingStats {
  uint64_t samples = 0;    // Samples kept (of the targets).
  uint64_t lost = 0;       // Sum of PERF_RECORD_LOST.lost (the ring was full; any process's).
  uint64_t malformed = 0;  // Records that failed to parse and were skipped.
  // Ring bytes dropped after a header whose size made it impossible to find the next record
  // (size < 8, or larger than the ring): the rest of that drain is lost, and counted here.
  uint64_t discarded_bytes = 0;
};

// A process image: one per target at Start(), per process forked by a target, and per exec.
struct ProcessImage {
  uint32_t pid = 0;
  uint32_t parent = 0;   // Image of the forking process (a fork shares its mappings); 0: none.
  bool exec = false;     // Created by an exec (PERF_RECORD_MISC_COMM_EXEC).
  uint64_t time_ns = 0;  // When it began (the FORK or exec's COMM record); 0 for targets.
};

// One parsed record waiting for its turn (RingSink::pending).
struct RingEvent {
  uint64_t time_ns = 0;
  uint32_t type = 0;  // PERF_RECORD_*
  uint16_t misc = 0;
  uint32_t pid = 0, ppid = 0, tid = 0, ptid = 0;  // FORK/EXIT; COMM uses pid and tid.
  std::string comm;
  RawSample sample;  // PERF_RECORD_SAMPLE
};

// Everything the ring reader produces. Records wait in `pending` until ApplyRingEvents
// applies them in time order; the other fields are the state they build.
struct RingSink {
  std::vector<RingEvent> pending;
  std::vector<RawSample> samples;
  std::map<uint32_t, std::string> comms;  // tid -> comm from /proc, COMM and FORK records.
  std::set<uint32_t> forked_tids;         // Threads announced by PERF_RECORD_FORK (at parse).
  RingStats stats;
  // System-wide mode: when filter_pids is set, samples and COMM/FORK records of processes not
  // in `pids` are dropped (counted in `filtered`), a process forked by one in `pids` joins it
  // (recorded in `children`, child pid -> parent pid), and one that exits leaves it.
  bool filter_pids = false;
  std::set<uint32_t> pids;
  std::map<uint32_t, uint32_t> children;
  uint64_t filtered = 0;
  // Images by id (ids from 1) and the current image of each live process.
  std::map<uint32_t, ProcessImage> images;
  std::map<uint32_t, uint32_t> image_of_pid;
  // Rate changes (Sampler::SetFrequency): from time_ns on, samples of the events we changed
  // carry period_ns (the kernel keeps reporting cpu-clock's first period, see SetFrequency).
  // In per-thread mode only the threads in `own_event_tids` have events we changed.
  struct PeriodChange {
    uint64_t time_ns;
    uint64_t period_ns;
  };
  std::vector<PeriodChange> period_changes;
  bool all_events_own = true;
  std::set<uint32_t> own_event_tids;
};

// Registers a target process (its first image) with the sink.
void AddTarget(RingSink* sink, uint32_t pid);

// Reads records from one perf mmap ring into sink->pending (LOST counted at once). `meta` is
// the first (metadata) page; `data` points to the data area of `data_size` bytes (a power of
// two). Separate from Sampler so tests can feed a synthetic ring (wrap-around, malformed
// records) without a kernel. A record that fails to parse is skipped and counted (malformed);
// a header whose size makes the next record unfindable ends the drain, its bytes counted in
// discarded_bytes; a record only partly published (head inside it) is left for the next
// drain. `regs_user_mask` != 0 says the samples carry REGS_USER (with that mask) and
// STACK_USER. Non-sample records must carry sample_id_all's {pid, tid, time} trailer.
// Returns the number of records parsed.
size_t DrainRing(void* meta, const uint8_t* data, uint64_t data_size, RingSink* sink,
                 uint64_t regs_user_mask = 0);

// Applies the pending records with time <= up_to_ns in time order (see the header comment)
// and returns the number of samples kept.
size_t ApplyRingEvents(RingSink* sink, uint64_t up_to_ns);

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

  // How long a record waits for records of other rings that may precede it.
  static constexpr uint64_t kReorderWindowNs = 20'000'000;

  // System-wide mode: keeps the samples of `pid` from now on, and of the processes it forks
  // (e.g. a service its supervisor restarted under a new pid). Records of `pid` still waiting
  // in the reorder window are kept too. Per-thread mode has no event on its threads and refuses
  // (opening them would race with the threads it creates meanwhile). Call from the thread that
  // calls Poll().
  Status AddProcess(pid_t pid);

  // Samples applied since the last call, in time order, periods corrected for rate changes.
  std::vector<RawSample> TakeSamples();
  // Changes the sampling frequency of every event we hold from now on (PERF_EVENT_IOC_PERIOD
  // with the period 1e9/hz ns: the kernel runs cpu-clock at a fixed period). Per-thread mode:
  // the events of threads that existed at Start() change, and so do threads created from now
  // on (they inherit the top event's new period); threads created between Start() and now keep
  // the rate they inherited, since the ioctl does not reach inherited events (a kernel limit).
  // inherited_rate_kept() says whether that can be the case.
  Status SetFrequency(int hz);
  bool inherited_rate_kept() const { return !system_wide_ && frequency_hz_ != start_hz_; }
  int frequency_hz() const { return frequency_hz_; }
  // True when Start() got system-wide per-CPU events (see SamplerOptions::system_wide).
  bool system_wide() const { return system_wide_; }
  // Processes forked by the targets while recording (system-wide mode): child -> parent.
  std::map<uint32_t, uint32_t> ChildProcesses() const;
  // Samples of other processes dropped in system-wide mode.
  uint64_t filtered() const;
  // tid -> comm: /proc at start, COMM/FORK records, and /proc again at Stop().
  std::map<uint32_t, std::string> ThreadNames() const;
  uint64_t lost() const;
  uint64_t malformed() const;
  RingStats stats() const;
  // Images seen so far (RingSink::images) and the current image of `pid` (0: none).
  std::map<uint32_t, ProcessImage> Images() const;
  uint32_t CurrentImage(uint32_t pid) const;
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
  Status Configure(const SamplerOptions& options);
  bool StartSystemWide();
  Status StartPerThread();
  // Opens one event on (tid or -1, cpus_[cpu_index]), retrying without kernel frames when the
  // host refuses them. Returns -errno on failure.
  int OpenEvent(pid_t tid, size_t cpu_index);
  // The first event on a CPU owns that CPU's ring (mmap); later ones SET_OUTPUT into it.
  Status AttachToRing(int fd, size_t cpu_index, pid_t pid);
  Status OpenThread(pid_t pid, pid_t tid, bool* vanished);
  void CloseAll();
  void ReadNamesFromProc(pid_t pid);
  void DrainAll();
  void RefreshNamesFromProc();

  SamplerOptions options_;
  perf_event_attr attr_{};  // The attributes every event is opened with.
  std::vector<int> cpus_;
  size_t pages_ = 0;
  bool kernel_frames_ = true;
  bool system_wide_ = false;
  int start_hz_ = 0;
  int frequency_hz_ = 0;
  bool stopped_ = false;
  std::vector<int> fds_;     // Every perf event fd (threads x CPUs).
  std::vector<Ring> rings_;  // One per online CPU.
  mutable std::mutex mu_;    // Guards sink_ (Poll may run beside TakeSamples/ThreadNames).
  RingSink sink_;
};

}  // namespace fs::profile

#endif  // FRAMESCOPE_COLLECT_SAMPLER_H_
