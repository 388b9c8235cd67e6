// DWARF unwinder: turns a DWARF-mode sample (user registers + a copy of the user stack, see
// SamplerOptions::dwarf) into the user call stack with elfutils' libdwfl, walking .eh_frame /
// .debug_frame CFI, so callers of code built without frame pointers are found.
//
// Design (compare perf's tools/perf/util/unwind-libdw.c, which builds a new Dwfl, reports the
// sample's modules and attaches state for every single sample):
//  - One Unwinder per process: one Dwfl with the modules of /proc/<pid>/maps, attached once
//    (dwfl_attach_state may be called only once per Dwfl) with callbacks that read the
//    *current* sample, which Unwind() swaps in. ELF files, CFI tables and the ebl backend are
//    loaded once per module and reused by every sample.
//  - Thread state is not cached across samples: dwfl_getthread_frames builds a Dwfl_Thread on
//    its stack (via get_thread), calls set_initial_registers for it, and frees every frame
//    state before it returns, so each call starts from the current sample's registers. The
//    test UnwinderTest.ReusedUnwinderMatchesFreshOnes checks exactly that.
//  - Memory reads come from the stack copy when the address is inside [SP, SP + size);
//    otherwise from the file image of the ELF mapped there (read-only data such as a
//    .rodata jump table; writable data would be the file's initial contents, as in perf).
//    Anything else fails the read, which ends the walk.
//
// Not thread-safe (libdwfl handles are not); one thread unwinds all samples of a process.
#ifndef FRAMESCOPE_SYMBOLIZE_UNWINDER_H_
#define FRAMESCOPE_SYMBOLIZE_UNWINDER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "src/base/status.h"
#include "src/collect/sampler.h"
#include "src/symbolize/process_dwfl.h"

struct Dwfl;

namespace fs::profile {

// How a sample's user stack was obtained.
enum class UnwindMethod {
  kCfiToRoot,     // DWARF CFI walked to the outermost frame (the thread's root).
  kCfi,           // DWARF CFI walked past the sampled IP, then stopped before the root.
  kFramePointer,  // CFI stopped at the IP; the frame-pointer chain in the stack copy did not.
  kLeafOnly,      // Neither got past the IP (or the sample had no registers / stack copy).
};

struct UnwindStats {
  uint64_t samples = 0;      // Calls to Unwind().
  uint64_t unwound = 0;      // Samples that got at least one caller (>= 2 frames).
  uint64_t ip_only = 0;      // Samples left with just the sampled IP (the walk failed at once).
  uint64_t fp_fallback = 0;  // Samples whose CFI walk stopped at the IP, unwound by rbp instead.
  uint64_t no_regs = 0;      // Samples without user registers/stack: user_ips left as they were.
  uint64_t complete = 0;     // Walks that reached the outermost frame (_start / clone).
  uint64_t truncated = 0;    // Walks cut short: kMaxFrames, a read outside the copy, no CFI.
  uint64_t frames = 0;       // Frames produced in total (for the average depth).
  double AverageDepth() const {
    return samples > no_regs ? static_cast<double>(frames) / (samples - no_regs) : 0;
  }
};

class Unwinder {
 public:
  // Frames per stack at most (the sampled IP included).
  static constexpr size_t kMaxFrames = 127;

  // Reports the modules mapped in `pid` now and attaches the sample-reading callbacks. A
  // library dlopen()ed later is unknown: the walk stops at its frames.
  static StatusOr<std::unique_ptr<Unwinder>> ForProcess(pid_t pid);
  ~Unwinder();
  Unwinder(const Unwinder&) = delete;
  Unwinder& operator=(const Unwinder&) = delete;

  // Replaces sample->user_ips with the unwound stack (leaf first: [0] the sampled IP, then
  // return addresses, as the frame-pointer path gives them) and frees its user_regs and
  // user_stack. Never drops the sample: a walk that fails keeps the frames found so far (at
  // least the IP); when CFI yields only the IP, the frame-pointer chain read from the same
  // stack copy is kept if it gets further (code built with frame pointers but whose CFI is
  // missing or unreadable, e.g. JIT code or a library mapped after ForProcess). A sample
  // without user registers keeps user_ips as they were. Returns the number of user frames;
  // *method (optional) says how they were found.
  size_t Unwind(RawSample* sample, UnwindMethod* method = nullptr);

  const UnwindStats& stats() const { return stats_; }
  pid_t pid() const { return pid_; }

 private:
  struct Callbacks;  // unwinder.cc: the Dwfl_Thread_Callbacks, friends of this class.
  friend struct Callbacks;

  Unwinder(pid_t pid, DwflPtr dwfl);
  bool ReadMemory(uint64_t address, uint64_t* out) const;

  pid_t pid_;
  DwflPtr dwfl_;
  // The sample being unwound; only valid inside Unwind().
  const RawSample* current_ = nullptr;
  std::vector<uint64_t>* frames_ = nullptr;
  UnwindStats stats_;
};

// Frees the DWARF payload (registers, stack copy) of a sample that will not be unwound.
void ReleaseDwarfPayload(RawSample* sample);

// The frame-pointer walk the kernel would have done, over the sample's own registers and stack
// copy (x86_64: [rbp] is the caller's rbp, [rbp + 8] the return address). Stops at a frame
// pointer outside the copy or not above the previous one, or at an implausible return
// address. Returns the stack leaf first (the IP, then return addresses); empty without
// registers.
std::vector<uint64_t> FramePointerWalk(const RawSample& sample, size_t max_frames);

// Unwinds a DWARF sample without CFI (its process has no Unwinder: it exited, or was never
// readable): user_ips = FramePointerWalk, payload released. Returns the number of frames.
size_t UnwindByFramePointers(RawSample* sample, UnwindMethod* method = nullptr);

// User-space code lives below the x86_64 canonical hole and above the null page.
inline bool PlausibleUserAddress(uint64_t address) {
  return address >= 4096 && address < 0x0000800000000000ULL;
}

}  // namespace fs::profile

#endif  // FRAMESCOPE_SYMBOLIZE_UNWINDER_H_
