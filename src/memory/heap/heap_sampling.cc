// Sampled allocations with stacks inside libframescope_heap.so: see heap_sampling.h.
#include "src/memory/heap/heap_sampling.h"

#include <errno.h>
#include <link.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#include "src/memory/heap/heap_regions.h"
#include "src/memory/heap/heap_sites_format.h"

namespace fs::memory::heap_internal {

bool g_sampling_on = false;

namespace {

// Live sampled blocks: 2^15 slots for at most 2^13 live samples (a quarter full, so a probe of
// an absent key nearly always stops at its first slot). Rebuilt (tombstones dropped) when live
// blocks plus tombstones pass half the slots.
constexpr uint32_t kLiveSlots = 1u << 15;
constexpr uint32_t kLiveMax = 1u << 13;
constexpr uint32_t kRebuildAt = kLiveSlots / 2;
constexpr uintptr_t kEmpty = 0;
constexpr uintptr_t kTombstone = 1;

struct LiveValue {
  uint32_t site;
  uint64_t objects_scaled;
  uint64_t bytes;
  uint64_t sampled_bytes;
};

struct Tables {
  uintptr_t keys[kLiveSlots];
  LiveValue values[kLiveSlots];
  uint32_t site_index[2 * kHeapMaxSites];  // hash -> site + 1; 0 empty
};

HeapSitesHeader* g_header = nullptr;
HeapSite* g_sites = nullptr;
Tables* g_tables = nullptr;  // anonymous private mapping
uint64_t g_interval = 0;
uint32_t g_live = 0;        // live sampled blocks (read without the lock on the free path)
uint32_t g_tombstones = 0;  // under the lock
uint32_t g_seq = 0;         // odd while a rebuild moves keys
int g_lock = 0;
uintptr_t g_self_lo = 0, g_self_hi = 0;  // this library's code: frames to cut off

void Lock() {
  while (__atomic_exchange_n(&g_lock, 1, __ATOMIC_ACQUIRE) != 0) {
    while (__atomic_load_n(&g_lock, __ATOMIC_RELAXED) != 0) __builtin_ia32_pause();
  }
}
void Unlock() { __atomic_store_n(&g_lock, 0, __ATOMIC_RELEASE); }

uint32_t SlotOf(uintptr_t key) {
  uint64_t h = static_cast<uint64_t>(key) * 0x9E3779B97F4A7C15ULL;
  return static_cast<uint32_t>(h >> 49);  // top 15 bits
}

// The slot holding `key`, or kLiveSlots. Lock-free for the probe itself: only the thread that
// owns a block inserts or removes its key, so other threads' inserts and removals cannot hide
// it; a rebuild can, and is detected by the sequence counter.
uint32_t Find(uintptr_t key) {
  for (;;) {
    uint32_t seq = __atomic_load_n(&g_seq, __ATOMIC_ACQUIRE);
    if ((seq & 1) != 0) continue;
    uint32_t slot = SlotOf(key), found = kLiveSlots;
    for (uint32_t n = 0; n < kLiveSlots; ++n, slot = (slot + 1) & (kLiveSlots - 1)) {
      uintptr_t k = __atomic_load_n(&g_tables->keys[slot], __ATOMIC_RELAXED);
      if (k == key) found = slot;
      if (k == key || k == kEmpty) break;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&g_seq, __ATOMIC_RELAXED) == seq) return found;
  }
}

// Seats `key` in the first free slot of its probe path. g_live is the caller's to count: a
// rebuild moves keys without changing it (a free that read 0 there would skip its lookup).
void SeatLocked(uintptr_t key, const LiveValue& v) {
  uint32_t slot = SlotOf(key);
  while (g_tables->keys[slot] != kEmpty && g_tables->keys[slot] != kTombstone) {
    slot = (slot + 1) & (kLiveSlots - 1);
  }
  if (g_tables->keys[slot] == kTombstone) --g_tombstones;
  g_tables->values[slot] = v;
  __atomic_store_n(&g_tables->keys[slot], key, __ATOMIC_RELEASE);
}

// Drops tombstones: every live key is re-inserted into an empty table. Probes running meanwhile
// see the odd sequence number and retry. The copy lives on this thread's stack in pieces (no
// allocation): keys are gathered from the table itself by moving them in place.
void RebuildLocked() {
  // A seqlock writer: odd while keys move, ordered before the moves; even again after them.
  __atomic_store_n(&g_seq, g_seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  // Clear tombstones, then re-seat every key whose probe path now starts at an empty slot.
  for (uint32_t i = 0; i < kLiveSlots; ++i) {
    if (g_tables->keys[i] == kTombstone)
      __atomic_store_n(&g_tables->keys[i], kEmpty, __ATOMIC_RELAXED);
  }
  g_tombstones = 0;
  for (uint32_t i = 0; i < kLiveSlots; ++i) {
    uintptr_t key = g_tables->keys[i];
    if (key == kEmpty) continue;
    LiveValue v = g_tables->values[i];
    __atomic_store_n(&g_tables->keys[i], kEmpty, __ATOMIC_RELAXED);
    SeatLocked(key, v);
  }
  __atomic_store_n(&g_seq, g_seq + 1, __ATOMIC_RELEASE);
}

// ---- stacks ----

struct Walk {
  uint64_t pcs[kHeapSiteMaxDepth];
  uint32_t depth;
  int phase;  // 0: unwinder frames, 1: this library's frames, 2: the program's (kept)
};

_Unwind_Reason_Code OnFrame(_Unwind_Context* ctx, void* arg) {
  Walk* w = static_cast<Walk*>(arg);
  uintptr_t ip = _Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  bool ours = ip >= g_self_lo && ip < g_self_hi;
  if (w->phase < 2) {
    if (ours) w->phase = 1;
    if (ours || w->phase == 0) return _URC_NO_REASON;
    w->phase = 2;
  }
  w->pcs[w->depth++] = ip;
  return w->depth == kHeapSiteMaxDepth ? _URC_END_OF_STACK : _URC_NO_REASON;
}

uint64_t HashPcs(const uint64_t* pcs, uint32_t depth) {
  uint64_t h = 0xcbf29ce484222325ULL ^ depth;
  for (uint32_t i = 0; i < depth; ++i) h = (h ^ pcs[i]) * 0x100000001b3ULL;
  return h != 0 ? h : 1;
}

// The site of this stack, made on first use; kHeapMaxSites when the table is full.
uint32_t InternSiteLocked(const Walk& w) {
  uint64_t h = HashPcs(w.pcs, w.depth);
  const uint32_t mask = 2 * kHeapMaxSites - 1;
  for (uint32_t slot = static_cast<uint32_t>(h) & mask;; slot = (slot + 1) & mask) {
    uint32_t entry = g_tables->site_index[slot];
    if (entry == 0) break;
    const HeapSite& s = g_sites[entry - 1];
    if (s.hash == h && s.depth == w.depth && memcmp(s.pcs, w.pcs, w.depth * 8) == 0) {
      return entry - 1;
    }
  }
  uint32_t used = g_header->sites_used;
  if (used == kHeapMaxSites) return kHeapMaxSites;
  HeapSite& s = g_sites[used];
  s.hash = h;
  s.depth = w.depth;
  memcpy(s.pcs, w.pcs, w.depth * 8);
  uint32_t slot = static_cast<uint32_t>(h) & mask;
  while (g_tables->site_index[slot] != 0) slot = (slot + 1) & mask;
  g_tables->site_index[slot] = used + 1;
  __atomic_store_n(&g_header->sites_used, used + 1, __ATOMIC_RELEASE);
  return used;
}

void Add(uint64_t* counter, uint64_t v) { __atomic_fetch_add(counter, v, __ATOMIC_RELAXED); }

// ---- the Poisson process ----

uint64_t NextRandom(SamplerThread& t) {  // xorshift64*
  t.rng ^= t.rng >> 12;
  t.rng ^= t.rng << 25;
  t.rng ^= t.rng >> 27;
  return t.rng * 0x2545F4914F6CDD1DULL;
}

// An exponentially distributed distance (mean g_interval) to the next sample point.
int64_t NextDistance(SamplerThread& t) {
  double u = (static_cast<double>(NextRandom(t) >> 11) + 0.5) / 9007199254740992.0;  // (0, 1)
  double d = -log(u) * static_cast<double>(g_interval);
  return d < 1 ? 1 : static_cast<int64_t>(d);
}

void Seed(SamplerThread& t) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  t.rng = (static_cast<uint64_t>(gettid()) << 32) ^ static_cast<uint64_t>(now.tv_nsec) ^
          reinterpret_cast<uintptr_t>(&t) ^ 0x9E3779B97F4A7C15ULL;
  if (t.rng == 0) t.rng = 1;
}

// Records `ptr` (usable bytes) as a sampled block of the current stack.
void Record(void* ptr, size_t usable) {
  Walk w{};
  _Unwind_Backtrace(OnFrame, &w);
  // A block of s bytes is sampled with probability p = 1 - exp(-s/T); it stands for 1/p.
  double p = -expm1(-static_cast<double>(usable) / static_cast<double>(g_interval));
  LiveValue v{0, static_cast<uint64_t>(static_cast<double>(kObjectScale) / p + 0.5),
              static_cast<uint64_t>(static_cast<double>(usable) / p + 0.5), usable};
  Lock();
  if (g_live >= kLiveMax) {
    Unlock();
    Add(&g_header->dropped_live_table_full, 1);
    return;
  }
  v.site = InternSiteLocked(w);
  if (v.site == kHeapMaxSites) {
    Unlock();
    Add(&g_header->dropped_sites_full, 1);
    return;
  }
  if (g_live + g_tombstones >= kRebuildAt) RebuildLocked();
  SeatLocked(reinterpret_cast<uintptr_t>(ptr), v);
  __atomic_store_n(&g_live, g_live + 1, __ATOMIC_RELAXED);
  HeapSite& s = g_sites[v.site];
  Add(&s.alloc_samples, 1);
  Add(&s.alloc_objects_scaled, v.objects_scaled);
  Add(&s.alloc_bytes, v.bytes);
  Add(&s.sampled_bytes, v.sampled_bytes);
  Add(&g_header->samples, 1);
  Unlock();
}

// Where this library's code is mapped (its executable PT_LOAD), found without allocating.
int FindSelf(dl_phdr_info* info, size_t, void*) {
  const uintptr_t marker = reinterpret_cast<uintptr_t>(&FindSelf);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
    if (marker >= lo && marker < hi) {
      g_self_lo = lo;
      g_self_hi = hi;
      return 1;
    }
  }
  return 0;
}

}  // namespace

uint64_t SampleIntervalFromEnv() {
  const char* v = getenv(kHeapSampleBytesEnv);
  if (v == nullptr || v[0] == '\0') return kDefaultSampleIntervalBytes;
  char* end = nullptr;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno != 0 || *end != '\0' || v[0] == '-') {
    static const char kMsg[] =
        "framescope-heap: FRAMESCOPE_HEAP_SAMPLE_BYTES is not a number of bytes; sampling is "
        "off\n";
    ssize_t ignored = write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    (void)ignored;
    return 0;
  }
  return n;
}

void SamplingStart(void* sites_file, uint64_t interval, const SitesIdentity& id) {
  if (sites_file == nullptr || interval == 0) return;
  if (g_tables == nullptr) {
    void* t = RawMmap(nullptr, sizeof(Tables), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (t == MAP_FAILED) return;
    g_tables = static_cast<Tables*>(t);
    dl_iterate_phdr(FindSelf, nullptr);
  }
  g_interval = interval;
  g_header = static_cast<HeapSitesHeader*>(sites_file);
  g_sites = reinterpret_cast<HeapSite*>(static_cast<char*>(sites_file) + sizeof(HeapSitesHeader));
  g_header->version = kHeapSitesVersion;
  g_header->header_size = sizeof(HeapSitesHeader);
  g_header->pid = id.pid;
  g_header->generation = id.generation;
  g_header->start_unix_ns = id.start_unix_ns;
  g_header->process_start_ticks = id.process_start_ticks;
  g_header->sample_interval_bytes = interval;
  g_header->max_sites = kHeapMaxSites;
  g_header->max_depth = kHeapSiteMaxDepth;
  g_header->site_size = sizeof(HeapSite);
  __atomic_store_n(&g_header->magic, kHeapSitesMagic, __ATOMIC_RELEASE);
}

void SamplingEnable() { g_sampling_on = g_header != nullptr && g_tables != nullptr; }

void SampleSlow(SamplerThread& t, void* ptr, size_t usable) {
  if (t.busy) {  // an allocation made by the unwinder: counted, never sampled
    t.countdown += static_cast<int64_t>(usable);
    return;
  }
  if (t.rng == 0) {  // this thread's first allocation: start its process here
    Seed(t);
    t.countdown = NextDistance(t);
    return;
  }
  while (t.countdown < 0) t.countdown += NextDistance(t);
  t.busy = true;
  Record(ptr, usable);
  t.busy = false;
}

bool ForgetIfSampled(void* ptr) {
  if (!g_sampling_on || __atomic_load_n(&g_live, __ATOMIC_RELAXED) == 0) return false;
  const uintptr_t key = reinterpret_cast<uintptr_t>(ptr);
  if (Find(key) == kLiveSlots) return false;
  Lock();
  uint32_t slot = Find(key);  // again under the lock: a rebuild may have moved it
  if (slot == kLiveSlots) {
    Unlock();
    return false;
  }
  LiveValue v = g_tables->values[slot];
  __atomic_store_n(&g_tables->keys[slot], kTombstone, __ATOMIC_RELAXED);
  ++g_tombstones;
  __atomic_store_n(&g_live, g_live - 1, __ATOMIC_RELAXED);
  HeapSite& s = g_sites[v.site];
  Add(&s.free_samples, 1);
  Add(&s.free_objects_scaled, v.objects_scaled);
  Add(&s.free_bytes, v.bytes);
  Unlock();
  return true;
}

void Resample(void* ptr, size_t usable) { Record(ptr, usable); }

void SamplingBeforeFork() {
  if (g_sampling_on) Lock();
}

void SamplingAfterForkParent() {
  if (g_sampling_on) Unlock();
}

void SamplingAfterForkChild() {
  if (!g_sampling_on) return;
  g_sampling_on = false;
  RawMunmap(g_header, kHeapSitesFileSize);
  g_header = nullptr;
  g_sites = nullptr;
  memset(g_tables, 0, sizeof(Tables));
  g_live = g_tombstones = g_seq = 0;
  g_lock = 0;
}

}  // namespace fs::memory::heap_internal
