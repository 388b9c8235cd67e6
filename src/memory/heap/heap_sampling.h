// Sampled allocations with their stacks, inside libframescope_heap.so (heap_preload.cc calls
// these from its hooks). Layout of what it writes: heap_sites_format.h.
//
// - Which blocks: a Poisson process over allocated bytes (per thread, memoryless, so threads
//   need no coordination). The hot path is one subtraction and a branch; everything below runs
//   for sampled blocks only.
// - Stacks: libgcc's _Unwind_Backtrace, which follows .eh_frame CFI, so code built without
//   frame pointers (Debian's OpenCV, libav) still gives the right site. The library's own frames
//   (and the unwinder's) are cut off, so pcs[0] is the caller of malloc/new.
// - Frees: every free asks whether its block was sampled. While no sampled block is live that is
//   one load; otherwise one probe of an open-addressed table (tombstones, no lock for the probe;
//   a sequence counter retries a probe that raced a rebuild). Inserts, removals and rebuilds
//   take a spin lock: they happen only for sampled blocks.
// - Never allocates through malloc: the tables are anonymous or shared mappings made at init.
//   A malloc the unwinder makes (libgcc may, once) is counted but never sampled (a thread-local
//   flag), so sampling cannot recurse.
// - fork: the lock is taken around fork; the child empties the live table (its blocks belong to
//   the parent's sites) and starts its own file, as for the counters.
#ifndef FRAMESCOPE_MEMORY_HEAP_HEAP_SAMPLING_H_
#define FRAMESCOPE_MEMORY_HEAP_HEAP_SAMPLING_H_

#include <stddef.h>
#include <stdint.h>

namespace fs::memory::heap_internal {

// Per-thread sampler state, zero-initialised (lives in the preload library's initial-exec TLS).
struct SamplerThread {
  int64_t countdown;  // bytes until the next sample point
  uint64_t rng;       // 0: not seeded yet
  bool busy;          // inside SampleAlloc: a nested malloc is never sampled
};

// Takes the mapped sites file (made by the caller: heap_preload.cc's MapNewFile) and fills its
// header; sampling stays off until SamplingEnable.
struct SitesIdentity {
  int32_t pid;
  uint32_t generation;
  uint64_t start_unix_ns;
  uint64_t process_start_ticks;
};
void SamplingStart(void* sites_file, uint64_t interval, const SitesIdentity& id);
// Turns sampling on once the started file is in place (renamed to its final name).
void SamplingEnable();
// The mean interval (bytes) from FRAMESCOPE_HEAP_SAMPLE_BYTES, or the default; 0 when sampling
// is off. Complains (one line on stderr) about a value that is not a number.
uint64_t SampleIntervalFromEnv();

// Called for every counted allocation of `usable` bytes at `ptr`.
inline bool SamplingOn();
void SampleSlow(SamplerThread& t, void* ptr, size_t usable);
inline void MaybeSample(SamplerThread& t, void* ptr, size_t usable) {
  if (!SamplingOn()) return;
  t.countdown -= static_cast<int64_t>(usable);
  if (t.countdown < 0) SampleSlow(t, ptr, usable);
}

// Called before `ptr` goes back to glibc (free, delete, the old block of a realloc). Returns
// whether it was a sampled block (then its estimates moved to its site's freed side).
bool ForgetIfSampled(void* ptr);
// A realloc that failed after ForgetIfSampled(ptr) returned true: the block is live again.
void Resample(void* ptr, size_t usable);

// pthread_atfork handlers.
void SamplingBeforeFork();
void SamplingAfterForkParent();
// The child: empties the live table and detaches from the parent's file (SamplingStart again
// with the child's own file).
void SamplingAfterForkChild();

extern bool g_sampling_on;
inline bool SamplingOn() { return g_sampling_on; }

}  // namespace fs::memory::heap_internal

#endif  // FRAMESCOPE_MEMORY_HEAP_HEAP_SAMPLING_H_
