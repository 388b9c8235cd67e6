// Recording a CPU profile: the sampler (perf_event_open cpu-clock, frame-pointer callchains or
// DWARF stack copies) for a set of processes, then every sampled address symbolized (libdwfl)
// into a pprof model with sample types samples/count and cpu/nanoseconds and labels thread,
// tid, pid, service.
//
//   Sampler ──RawSample{pid,tid,period,kernel_ips,user_ips}──▶ BuildProfile ──Profile──▶ pprof
//      └─ kDwarf: regs + stack ─▶ Unwinder per pid ─▶ user_ips ─┘  ▲ Symbolizer per pid
// In DWARF mode each poll's samples are unwound at once and their stack copies freed, so memory
// stays bounded by what one poll interval produces, not by the recording's length.
// Symbolizers and unwinders are kept per process image (sampler.h's ProcessImage): one per
// target, per process a target forks (else its parent's: a fork shares its mappings) and per
// exec, so samples after an exec are symbolized with the new binary.
#ifndef FRAMESCOPE_RECORD_RECORDER_H_
#define FRAMESCOPE_RECORD_RECORDER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/collect/sampler.h"
#include "src/profile/profile.h"
#include "src/symbolize/symbolizer.h"
#include "src/symbolize/unwinder.h"

namespace fs::profile {

// How user stacks are walked: frame pointers (the kernel's callchain) or DWARF CFI over a
// copy of the user stack taken at each sample (PERF_SAMPLE_STACK_USER + REGS_USER, unwound
// with libdwfl), which also finds the callers of code built without frame pointers.
enum class Unwind { kFramePointer, kDwarf };

struct RecordOptions {
  std::vector<pid_t> pids;
  Unwind unwind = Unwind::kFramePointer;
  // Per-CPU events filtered to the targets and their new child processes (complete coverage of
  // short-lived threads and processes), falling back to per-thread events where refused.
  bool system_wide = true;
  // Skip targets that exited before recording starts (fail only if none is left): for process
  // trees listed ahead of time, whose short-lived members may be gone.
  bool allow_vanished = false;
  uint32_t stack_bytes = 8192;  // kDwarf: user stack bytes copied per sample (multiple of 8).
  std::map<pid_t, std::string> services;  // pid -> service label (optional)
  int frequency_hz = 99;
  double duration_s = 10;  // <= 0: until *stop or every target exited
  // Set from a signal handler (Ctrl-C): recording ends early and the partial result is kept.
  const std::atomic<bool>* stop = nullptr;
  // Called once the sampler is attached and before the targets are symbolized (e.g. to let
  // a spawned command exec: its modules are read after this returns).
  std::function<void()> after_attach;
  // Called right after the sampler detaches, before symbolization: with after_attach it brackets
  // the recording window (e.g. to read other counters over exactly that window).
  std::function<void()> after_stop;
  // Called about once a second while recording.
  std::function<void(double elapsed_s, size_t samples)> progress;
  // The overhead governor's hook, called about once a second with the current rate: a positive
  // return value different from it changes the sampling frequency from then on. In per-thread
  // mode threads created since the start keep the rate they inherited (a kernel limit, see
  // Sampler::SetFrequency): RecordResult::warnings says so when the rate changed there.
  std::function<int(double elapsed_s, int current_hz)> adjust_frequency;
};

// How the user stacks of one service's samples were unwound. kDwarf: `full` when CFI walked
// past the leaf, `fp_fallback` when CFI stopped at the leaf and the frame-pointer chain read
// from the same sample's stack copy was kept instead, `truncated` when neither got past the
// leaf or the stack was cut at a junk frame. kFramePointer: `full` or `truncated` only.
struct UnwindCounts {
  uint64_t full = 0;
  uint64_t to_root = 0;  // Of `full`, kDwarf: CFI reached the outermost frame (thread root).
  uint64_t fp_fallback = 0;
  uint64_t truncated = 0;
};

struct RecordResult {
  Profile profile;
  size_t samples = 0;  // In `profile` (with Recording: those no TakeWindow took).
  // Losses, none silent. `lost`: records the kernel dropped because a ring was full (any
  // process's in system-wide mode: the kernel does not say whose). `malformed`: records that
  // failed to parse and were skipped; `discarded_bytes`: ring bytes dropped after a header
  // that made the next record unfindable. `samples_without_frames`: samples with neither a
  // kernel nor a user frame (left out of the profile).
  uint64_t lost = 0;
  uint64_t malformed = 0;
  uint64_t discarded_bytes = 0;
  uint64_t samples_without_frames = 0;
  bool kernel_frames = false;  // false: the host hides kernel callchains
  std::vector<pid_t> exited;   // targets that exited while recording (samples kept)
  double elapsed_s = 0;
  double symbolize_s = 0;  // post-processing time
  // Unwind::kDwarf only. Samples whose user stack came from CFI (>= 2 frames), and those
  // that did not (frame-pointer fallback, the IP only, or no user registers).
  uint64_t dwarf_unwound = 0;
  uint64_t dwarf_failed = 0;
  double dwarf_avg_depth = 0;  // user frames per DWARF-unwound sample (IP included)
  double unwind_s = 0;         // time spent unwinding, inside the recording loop
  int final_frequency_hz = 0;  // After any adjust_frequency changes.
  bool system_wide = false;    // Per-CPU events for every task, filtered to the targets.
  uint64_t filtered = 0;       // Samples of other processes dropped (system-wide mode).
  size_t child_processes = 0;  // Processes the targets forked while recorded.
  // Per service label (RecordOptions::services; "pid N" for unlabelled targets), children
  // counted with the target that forked them.
  std::map<std::string, UnwindCounts> unwind_by_service;
  std::vector<std::string> warnings;
};

// A recording in progress, for callers that want its samples as they come (continuous
// profiling, other event sources): Start, then Poll about every 100 ms, TakeWindow whenever a
// window of samples is wanted, and Finish once. Record() below is Start + Poll until done +
// Finish.
class Recording {
 public:
  static StatusOr<std::unique_ptr<Recording>> Start(const RecordOptions& options);
  ~Recording();
  Recording(const Recording&) = delete;
  Recording& operator=(const Recording&) = delete;

  // Drains the sampler, unwinds the new samples (DWARF), counts how they were unwound, and
  // about once a second runs the adjust_frequency and progress hooks. Returns false once the
  // recording should end: duration reached, *stop set, or every target exited.
  bool Poll();
  // Records `pids` too from now on, labelled `service` (none when empty), with the processes
  // they fork: e.g. a service its supervisor restarted under a new pid. Pids already recorded
  // and those gone already are skipped; an error when none is left (every one exited before it
  // could be followed). Needs system-wide events (Sampler::AddProcess): with
  // per-thread events it returns an error and records nothing new. Later, Poll ends the recording
  // only when these have exited too, and Finish lists the exited ones in RecordResult::exited.
  Status Follow(const std::vector<pid_t>& pids, const std::string& service);
  // The samples polled since the last TakeWindow (or Start), as a profile with the same
  // labels and symbols Finish gives; they are not in Finish's profile.
  Profile TakeWindow();
  // Seconds since sampling started (the clock Poll's duration and hooks use).
  double elapsed_s() const;
  // Stops sampling and returns the result; its profile holds the samples no TakeWindow took.
  RecordResult Finish();

  struct State;  // Defined in recorder.cc (public only so its helpers there can name it).

 private:
  explicit Recording(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

StatusOr<RecordResult> Record(const RecordOptions& options);

// The pure half of Record (tests feed it synthetic samples): symbolizes each stack with the
// symbolizer of its pid (absent: addresses stay module-less) and builds the profile. The
// user leaf is the sampled IP; every other user frame is a return address (looked up at -1).
Profile BuildProfile(const std::vector<RawSample>& samples,
                     const std::map<pid_t, Symbolizer*>& symbolizers,
                     const std::map<uint32_t, std::string>& thread_names,
                     const std::map<pid_t, std::string>& services, int frequency_hz);

}  // namespace fs::profile

#endif  // FRAMESCOPE_RECORD_RECORDER_H_
