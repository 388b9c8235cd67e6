// libframescope_heap.so: an LD_PRELOAD library that counts, per process, the bytes and calls
// allocated and freed through malloc & co, C++ operator new/delete and anonymous mmap/munmap
// (heap_regions.h), exactly, into a shared file that framescope reads (format:
// heap_counters_format.h), and samples allocations with their stacks (heap_sampling.h).
//
// Design constraints, all because it runs inside any process:
// - Depends on libc/libstdc++ only (no fs_base) and never allocates through malloc itself: the
//   hooks forward to glibc's __libc_* entry points (no dlsym bootstrap, no reentrancy through
//   our own hooks); file names are built in stack buffers; the file is created with raw
//   open/ftruncate/mmap.
// - A no-op beyond forwarding when FRAMESCOPE_HEAP_DIR is unset (one load of a global).
// - Hot path: thread-local pending counts (initial-exec TLS: no __tls_get_addr, which can
//   allocate), flushed with relaxed atomic adds every kFlushCalls calls or kFlushBytes bytes.
//   Pending counts are flushed at thread exit (a pthread key destructor) and at process exit
//   (this library's destructor); after that flush the thread counts unbatched, so frees done
//   later in its teardown are counted too. What is never flushed, hence the bounded error: a
//   thread still running when the process exits or calls _exit loses at most kFlushCalls-1
//   calls and < kFlushBytes + one block of bytes; a process killed by a signal loses that much
//   per thread. A reading of a running process lags by up to that much per thread. A program
//   that wants an exact window calls framescope_heap_flush() (exported) in each thread first,
//   as heap_testprog does.
// - fork: the child resets the forking thread's pending counts (they belong to the parent, which
//   flushes its own copy) and makes its own file heap-<childpid>.counters. The child's frees of
//   blocks it inherited count, their allocation does not: its reclaim ratio can exceed 1.
// - exec: the environment carries LD_PRELOAD and FRAMESCOPE_HEAP_DIR over, so the new image
//   loads the library again under the same pid. It replaces heap-<pid>.counters (rename over it)
//   with a fresh file whose generation is the old one's + 1 and whose start time is its own; the
//   old image's counts end there (exec released all its memory without free()).
// - posix_spawn/vfork children run no fork handlers; they share the parent's file until they
//   exec, which allocates nothing in glibc's implementation.
// - Counting starts when this library initialises: allocations by constructors of libraries
//   initialised before it (libstdc++'s emergency pool) are not counted, nor their frees.
// - Files stay after their process exits (the reader wants the final counts); whoever sets
//   FRAMESCOPE_HEAP_DIR removes the folder. A stale file of a reused pid is replaced.
// - LD_PRELOAD only: initial-exec TLS may not be available to a dlopen'ed copy.
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <new>

#include "src/memory/heap/heap_counters_format.h"
#include "src/memory/heap/heap_regions.h"
#include "src/memory/heap/heap_sampling.h"
#include "src/memory/heap/heap_sites_format.h"

extern "C" {
void* __libc_malloc(size_t size);
void __libc_free(void* ptr);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void* __libc_valloc(size_t size);
void* __libc_pvalloc(size_t size);
}

namespace {

using fs::memory::HeapCountersHeader;
namespace heap_internal = fs::memory::heap_internal;

constexpr uint32_t kFlushCalls = 64;
constexpr uint64_t kFlushBytes = 1 << 20;

struct Pending {
  uint64_t allocated_bytes;
  uint64_t allocated_calls;
  uint64_t freed_bytes;
  uint64_t freed_calls;
  uint32_t calls;   // since the last flush
  bool registered;  // the thread-exit destructor is armed
  bool direct;      // past this thread's final flush: count unbatched
  heap_internal::SamplerThread sampler;
};

// Zero-initialised static TLS: no constructor, no allocation on first touch.
__attribute__((tls_model("initial-exec"))) thread_local Pending t_pending;

// The mapped file; null when not reporting. Written at init and in the fork child (one thread).
HeapCountersHeader* g_block = nullptr;
char g_dir[3072];
pthread_key_t g_exit_key;

void AddTo(uint64_t* counter, uint64_t v) {
  if (v != 0) __atomic_fetch_add(counter, v, __ATOMIC_RELAXED);
}

void Flush(Pending& p) {
  HeapCountersHeader* block = g_block;
  if (block != nullptr) {
    AddTo(&block->allocated_bytes, p.allocated_bytes);
    AddTo(&block->allocated_calls, p.allocated_calls);
    AddTo(&block->freed_bytes, p.freed_bytes);
    AddTo(&block->freed_calls, p.freed_calls);
  }
  p.allocated_bytes = p.allocated_calls = p.freed_bytes = p.freed_calls = 0;
  p.calls = 0;
}

void OnThreadExit(void*) {
  Flush(t_pending);
  t_pending.direct = true;
}

void AfterCount(Pending& p) {
  if (++p.calls >= kFlushCalls || p.allocated_bytes + p.freed_bytes >= kFlushBytes || p.direct) {
    Flush(p);
  }
  if (!p.registered) {
    // Set before the call: were pthread_setspecific to allocate, that allocation must not come
    // back here. Keys below PTHREAD_KEY_2NDLEVEL_SIZE (ours, made at load) need no allocation.
    p.registered = true;
    pthread_setspecific(g_exit_key, &p);
  }
}

// glibc's chunk header (the size word before the block; low bits are flags, 2 = mmapped) gives
// what malloc_usable_size returns without its call and checks. Init verifies the two agree on
// this glibc before relying on it; otherwise every count calls malloc_usable_size.
bool g_read_chunk_header = false;

size_t UsableSize(void* ptr) {
  if (!g_read_chunk_header) return malloc_usable_size(ptr);
  size_t header = static_cast<size_t*>(ptr)[-1];
  size_t chunk = header & ~size_t{7};
  return (header & 2) != 0 ? chunk - 2 * sizeof(size_t) : chunk - sizeof(size_t);
}

// True when UsableSize from the header equals malloc_usable_size for blocks of every kind:
// small, large, mmapped, aligned, calloc'd. Runs before counting starts.
bool ChunkHeaderAgrees() {
  // The mmapped case is over 32 MiB (DEFAULT_MMAP_THRESHOLD_MAX): freeing a smaller mmapped
  // chunk would raise glibc's dynamic mmap threshold to its size for the rest of the process,
  // changing how the program's own large blocks are allocated.
  constexpr size_t kSizes[] = {0, 1, 24, 25, 1000, 4096, 70000, size_t{33} << 20};
  bool agrees = true;
  g_read_chunk_header = true;
  for (size_t size : kSizes) {
    void* blocks[] = {__libc_malloc(size), __libc_calloc(1, size), __libc_memalign(64, size),
                      __libc_memalign(4096, size)};
    for (void* b : blocks) {
      if (b != nullptr && UsableSize(b) != malloc_usable_size(b)) agrees = false;
      __libc_free(b);
    }
  }
  g_read_chunk_header = agrees;
  return agrees;
}

void CountAlloc(void* ptr, size_t usable) {
  Pending& p = t_pending;
  p.allocated_bytes += usable;
  ++p.allocated_calls;
  heap_internal::MaybeSample(p.sampler, ptr, usable);
  AfterCount(p);
}

void CountAlloc(void* ptr) {
  if (g_block == nullptr || ptr == nullptr) return;
  CountAlloc(ptr, UsableSize(ptr));
}

// Takes the usable size measured before the block went back to glibc (and after
// ForgetIfSampled: a block's key must leave the live table before glibc can hand its address
// to another thread).
void CountFree(size_t usable) {
  Pending& p = t_pending;
  p.freed_bytes += usable;
  ++p.freed_calls;
  AfterCount(p);
}

void CountFree(void* ptr) {
  if (g_block == nullptr || ptr == nullptr) return;
  heap_internal::ForgetIfSampled(ptr);
  CountFree(UsableSize(ptr));
}

// ---- The counters file (no malloc: stack buffers and raw syscalls) ----

// Appends s to buf[*len], keeping room for the terminator; false when it does not fit.
bool Append(char* buf, size_t cap, size_t* len, const char* s) {
  size_t n = strlen(s);
  if (*len + n + 1 > cap) return false;
  memcpy(buf + *len, s, n + 1);
  *len += n;
  return true;
}

bool AppendInt(char* buf, size_t cap, size_t* len, long v) {
  char digits[24];
  int i = sizeof(digits) - 1;
  digits[i] = '\0';
  do {
    digits[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && i > 0);
  return Append(buf, cap, len, digits + i);
}

bool CountersPath(char* buf, size_t cap, pid_t pid, const char* suffix) {
  size_t len = 0;
  buf[0] = '\0';
  return Append(buf, cap, &len, g_dir) && Append(buf, cap, &len, "/heap-") &&
         AppendInt(buf, cap, &len, pid) && Append(buf, cap, &len, suffix);
}

void Complain(const char* what, const char* path) {
  // One line on stderr: the process keeps running, uncounted. write(), not stdio (no buffers).
  char line[4096];
  size_t len = 0;
  line[0] = '\0';
  Append(line, sizeof(line), &len, "framescope-heap: cannot ");
  Append(line, sizeof(line), &len, what);
  Append(line, sizeof(line), &len, " ");
  Append(line, sizeof(line), &len, path);
  Append(line, sizeof(line), &len, ": ");
  Append(line, sizeof(line), &len, strerrorname_np(errno));  // static, never allocates
  Append(line, sizeof(line), &len, "; heap counting is off\n");
  ssize_t ignored = write(STDERR_FILENO, line, len);
  (void)ignored;
}

// Field 22 of /proc/self/stat (starttime), parsed without allocating; 0 when unreadable.
uint64_t ProcessStartTicks() {
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* p = strrchr(buf, ')');  // the command name may hold spaces and parentheses
  if (p == nullptr) return 0;
  // After ") " comes field 3 (state); starttime is field 22.
  for (int field = 2; field < 22 && p != nullptr; ++field) p = strchr(p + 1, ' ');
  return p != nullptr ? strtoull(p + 1, nullptr, 10) : 0;
}

// The generation of the file an earlier image of this process left (exec), or -1 when there is
// none: a file of an earlier process that had this pid has another start time.
long PreviousGeneration(const char* path, pid_t pid, uint64_t start_ticks) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  HeapCountersHeader old;
  long generation = -1;
  if (pread(fd, &old, sizeof(old), 0) == static_cast<ssize_t>(sizeof(old)) &&
      old.magic == fs::memory::kHeapCountersMagic && old.pid == pid && start_ticks != 0 &&
      old.process_start_ticks == start_ticks) {
    generation = old.generation;
  }
  close(fd);
  return generation;
}

// A file made in two steps so that a reader never sees it half-made: MapNewFile creates
// <dir>/heap-<pid><suffix>.tmp exclusively, sizes and maps it; the caller fills it; Publish
// renames it over <dir>/heap-<pid><suffix>.
struct NewFile {
  char path[4096];
  char tmp[4096];
  void* map;
  size_t size;
};

bool MapNewFile(pid_t pid, const char* suffix, size_t size, NewFile* f) {
  char tmp_suffix[64];
  size_t len = 0;
  tmp_suffix[0] = '\0';
  if (!Append(tmp_suffix, sizeof(tmp_suffix), &len, suffix) ||
      !Append(tmp_suffix, sizeof(tmp_suffix), &len, ".tmp") ||
      !CountersPath(f->path, sizeof(f->path), pid, suffix) ||
      !CountersPath(f->tmp, sizeof(f->tmp), pid, tmp_suffix)) {
    errno = ENAMETOOLONG;
    Complain("name a file in", g_dir);
    return false;
  }
  unlink(f->tmp);  // left by a process of the same pid that died mid-creation
  int fd = open(f->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    Complain("create", f->tmp);
    return false;
  }
  f->map = MAP_FAILED;
  f->size = size;
  if (ftruncate(fd, static_cast<off_t>(size)) == 0) {
    f->map = heap_internal::RawMmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  close(fd);
  if (f->map == MAP_FAILED) {
    Complain("size and map", f->tmp);
    unlink(f->tmp);
    return false;
  }
  return true;
}

bool Publish(NewFile* f) {
  if (rename(f->tmp, f->path) == 0) return true;
  Complain("rename into place", f->tmp);
  heap_internal::RawMunmap(f->map, f->size);
  unlink(f->tmp);
  return false;
}

uint64_t g_sample_interval = 0;  // from the environment at init; 0: sampling off

void StartSampling(const HeapCountersHeader& block) {
  NewFile f;
  if (g_sample_interval == 0 ||
      !MapNewFile(block.pid, ".sites", fs::memory::kHeapSitesFileSize, &f)) {
    return;
  }
  heap_internal::SamplingStart(
      f.map, g_sample_interval,
      {block.pid, block.generation, block.start_unix_ns, block.process_start_ticks});
  if (Publish(&f)) heap_internal::SamplingEnable();
}

// The counters file, then (unless sampling is off) the sites file with the same identity.
HeapCountersHeader* CreateBlock() {
  pid_t pid = getpid();
  NewFile f;
  if (!MapNewFile(pid, ".counters", fs::memory::kHeapCountersFileSize, &f)) return nullptr;
  auto* block = static_cast<HeapCountersHeader*>(f.map);
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  block->version = fs::memory::kHeapCountersVersion;
  block->header_size = sizeof(HeapCountersHeader);
  block->pid = pid;
  block->process_start_ticks = ProcessStartTicks();
  block->generation =
      static_cast<uint32_t>(PreviousGeneration(f.path, pid, block->process_start_ticks) + 1);
  block->start_unix_ns = static_cast<uint64_t>(now.tv_sec) * 1000000000ULL + now.tv_nsec;
  __atomic_store_n(&block->magic, fs::memory::kHeapCountersMagic, __ATOMIC_RELEASE);
  if (!Publish(&f)) return nullptr;
  StartSampling(*block);
  return block;
}

void BeforeFork() {
  heap_internal::RegionsBeforeFork();
  heap_internal::SamplingBeforeFork();
}
void AfterForkParent() {
  heap_internal::SamplingAfterForkParent();
  heap_internal::RegionsAfterFork();
}

void OnForkChild() {
  heap_internal::RegionsAfterFork();
  heap_internal::SamplingAfterForkChild();
  if (g_block == nullptr) return;
  // The parent's mapping stays shared with the parent: drop it before counting anything here.
  HeapCountersHeader* parent = g_block;
  g_block = nullptr;
  heap_internal::RawMunmap(parent, fs::memory::kHeapCountersFileSize);
  Pending& p = t_pending;
  p.allocated_bytes = p.allocated_calls = p.freed_bytes = p.freed_calls = 0;
  p.calls = 0;
  p.sampler.rng = 0;  // re-seeded: the child must not repeat the parent's sample points
  g_block = CreateBlock();
}

__attribute__((constructor)) void Init() {
  const char* dir = getenv("FRAMESCOPE_HEAP_DIR");
  if (dir == nullptr || dir[0] == '\0') return;
  if (strlen(dir) >= sizeof(g_dir)) {
    errno = ENAMETOOLONG;
    Complain("use FRAMESCOPE_HEAP_DIR", dir);
    return;
  }
  strcpy(g_dir, dir);
  if (pthread_key_create(&g_exit_key, OnThreadExit) != 0) return;
  pthread_atfork(BeforeFork, AfterForkParent, OnForkChild);
  ChunkHeaderAgrees();
  g_sample_interval = heap_internal::SampleIntervalFromEnv();
  g_block = CreateBlock();
}

// Runs in exit() after the program's atexit handlers and static destructors.
__attribute__((destructor)) void Fini() {
  Flush(t_pending);
  t_pending.direct = true;
}

// operator new's contract: retry through the new-handler, throw when there is none.
void* NewOrThrow(size_t size, size_t alignment) {
  if (size == 0) size = 1;
  for (;;) {
    void* p = alignment != 0 ? __libc_memalign(alignment, size) : __libc_malloc(size);
    if (p != nullptr) {
      CountAlloc(p);
      return p;
    }
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* NewNoThrow(size_t size, size_t alignment) noexcept {
  try {
    return NewOrThrow(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

void Delete(void* ptr) noexcept {
  CountFree(ptr);
  __libc_free(ptr);
}

size_t PageRounded(size_t length) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (length + page - 1) / page * page;
}

// The part of [start, start + bytes) that counted regions held: freed.
void CountUnmap(uintptr_t start, size_t bytes) {
  heap_internal::Unmapped u = heap_internal::RemoveRange(start, bytes);
  if (u.whole) heap_internal::ForgetIfSampled(reinterpret_cast<void*>(u.start));
  if (u.bytes > 0) CountFree(u.bytes);
}

bool ValidAlignment(size_t alignment) {
  return alignment != 0 && (alignment & (alignment - 1)) == 0;
}

}  // namespace

extern "C" {

// Flushes the calling thread's pending counts, so that a reader sees them now. For programs
// (and tests) that want an exact window; looked up with dlsym, so absent without the preload.
__attribute__((visibility("default"))) void framescope_heap_flush() { Flush(t_pending); }

// When not reporting, malloc and free are tail calls into glibc.
void* malloc(size_t size) noexcept {
  if (g_block == nullptr) return __libc_malloc(size);
  void* p = __libc_malloc(size);
  CountAlloc(p);
  return p;
}

void free(void* ptr) noexcept {
  if (g_block == nullptr) return __libc_free(ptr);
  CountFree(ptr);
  __libc_free(ptr);
}

void* calloc(size_t n, size_t size) noexcept {
  void* p = __libc_calloc(n, size);
  CountAlloc(p);
  return p;
}

// A realloc counts as a free of the old block and an allocation of the new one (even in place),
// so the usable sizes on both sides stay exact. realloc(NULL, n) is a malloc; realloc(p, 0)
// frees p in glibc and returns NULL; a failed realloc leaves p allocated and counts nothing.
void* realloc(void* ptr, size_t size) noexcept {
  if (g_block == nullptr) return __libc_realloc(ptr, size);
  size_t old_usable = ptr != nullptr ? UsableSize(ptr) : 0;
  bool was_sampled = ptr != nullptr && heap_internal::ForgetIfSampled(ptr);
  void* p = __libc_realloc(ptr, size);
  if (ptr != nullptr && (p != nullptr || size == 0)) CountFree(old_usable);
  // Failed: the old block lives on, sampled again as from this call.
  if (p == nullptr && size != 0 && was_sampled) heap_internal::Resample(ptr, old_usable);
  CountAlloc(p);
  return p;
}

void* memalign(size_t alignment, size_t size) noexcept {
  void* p = __libc_memalign(alignment, size);
  CountAlloc(p);
  return p;
}

void* aligned_alloc(size_t alignment, size_t size) noexcept {
  if (!ValidAlignment(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return memalign(alignment, size);
}

int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  if (!ValidAlignment(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  CountAlloc(p);
  *out = p;
  return 0;
}

void* valloc(size_t size) noexcept {
  void* p = __libc_valloc(size);
  CountAlloc(p);
  return p;
}

void* pvalloc(size_t size) noexcept {
  void* p = __libc_pvalloc(size);
  CountAlloc(p);
  return p;
}

// Anonymous memory the program maps itself (heap_regions.h): counted as allocated and freed,
// and sampled, like a malloc'd block. The system calls are made directly (glibc's mmap adds
// nothing a caller relies on), so no lookup of the next definition is needed.
void* mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) noexcept {
  void* p = heap_internal::RawMmap(addr, length, prot, flags, fd, offset);
  if (p == MAP_FAILED || g_block == nullptr || !heap_internal::CountedMapping(prot, flags, fd)) {
    return p;
  }
  const size_t bytes = PageRounded(length);
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  if ((flags & MAP_FIXED) != 0) CountUnmap(start, bytes);  // it replaced what was there
  heap_internal::AddRegion(start, bytes);
  CountAlloc(p, bytes);
  return p;
}

void* mmap64(void* addr, size_t length, int prot, int flags, int fd, off_t offset) noexcept {
  return mmap(addr, length, prot, flags, fd, offset);
}

int munmap(void* addr, size_t length) noexcept {
  // Counted (and its sample forgotten) before the pages go: a new mapping at this address by
  // another thread must not meet its record.
  if (g_block != nullptr) CountUnmap(reinterpret_cast<uintptr_t>(addr), PageRounded(length));
  return heap_internal::RawMunmap(addr, length);
}

}  // extern "C"

// Every operator new/delete that libstdc++ exports (plain, array, nothrow, sized, aligned).
void* operator new(size_t n) { return NewOrThrow(n, 0); }
void* operator new[](size_t n) { return NewOrThrow(n, 0); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return NewNoThrow(n, 0); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return NewNoThrow(n, 0); }
void* operator new(size_t n, std::align_val_t a) { return NewOrThrow(n, static_cast<size_t>(a)); }
void* operator new[](size_t n, std::align_val_t a) { return NewOrThrow(n, static_cast<size_t>(a)); }
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return NewNoThrow(n, static_cast<size_t>(a));
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return NewNoThrow(n, static_cast<size_t>(a));
}
void operator delete(void* p) noexcept { Delete(p); }
void operator delete[](void* p) noexcept { Delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { Delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { Delete(p); }
void operator delete(void* p, size_t) noexcept { Delete(p); }
void operator delete[](void* p, size_t) noexcept { Delete(p); }
void operator delete(void* p, std::align_val_t) noexcept { Delete(p); }
void operator delete[](void* p, std::align_val_t) noexcept { Delete(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { Delete(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { Delete(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { Delete(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { Delete(p); }
