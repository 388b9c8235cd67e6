// A program whose allocations are known, run under libframescope_heap.so by heap_test.
//
//   heap_testprog work SNAPDIR   threads and the main thread allocate and free known blocks
//                                between two snapshots of the counters file; then fork + exec
//                                of `child`; prints its truth as one JSON line
//   heap_testprog child SNAPDIR  (the exec'd child) its own window, its own JSON line
//   heap_testprog bench N        N malloc/free pairs; prints the loop's nanoseconds
//   heap_testprog threshold X    prints whether a 200 KiB malloc is mmapped (glibc's default
//                                mmap threshold is 128 KiB: loading the library must not move it)
//   heap_testprog sites SNAPDIR  4 threads churn 512 MiB each (ChurnBlock: malloc, realloc,
//                                posix_memalign, new[], mmap, all freed) and keep 16 MiB each
//                                (KeepBlock, never freed); writes its truth to SNAPDIR/truth.json
//                                and stays alive (for symbolization) until SNAPDIR/done exists
//
// Exact windows: every thread calls the library's framescope_heap_flush() and parks at a
// barrier before the program copies the counters file (SNAPDIR/<name>), so the copy holds every
// count so far; nothing between two snapshots allocates except the counted work (no stdio, no
// containers). The truth uses malloc_usable_size, as the library does.
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>

namespace {

constexpr int kThreads = 8;
constexpr int kPerThread = 100000;
constexpr int kKeepEvery = 4;  // every 4th block stays allocated: reclaim ratio below 1
constexpr int kThreadExitBlocks = 10;
constexpr size_t kThreadExitSize = 8192;
constexpr int kExitBlocks = 16;
constexpr size_t kExitSize = 32768;

struct Truth {
  uint64_t allocated_bytes = 0, allocated_calls = 0, freed_bytes = 0, freed_calls = 0;
  void Alloc(void* p) {
    allocated_bytes += malloc_usable_size(p);
    ++allocated_calls;
  }
  void Free(void* p) {
    freed_bytes += malloc_usable_size(p);
    ++freed_calls;
  }
  void Add(const Truth& o) {
    allocated_bytes += o.allocated_bytes;
    allocated_calls += o.allocated_calls;
    freed_bytes += o.freed_bytes;
    freed_calls += o.freed_calls;
  }
};

void (*g_flush)() = nullptr;
const char* g_snapdir = nullptr;
char g_counters[4096];
pthread_barrier_t g_ready, g_start, g_done, g_release;
Truth g_thread_truth[kThreads];
void* g_kept[kThreads][kPerThread / kKeepEvery];
uint64_t g_thread_exit_bytes[kThreads];

void Flush() {
  if (g_flush != nullptr) g_flush();
}

// Copies the counters file to SNAPDIR/name with plain syscalls (no allocation).
void Snapshot(const char* name) {
  static char buf[4096];
  char out[4096];
  snprintf(out, sizeof(out), "%s/%s", g_snapdir, name);
  int in = open(g_counters, O_RDONLY);
  if (in < 0) return;  // not reporting (no FRAMESCOPE_HEAP_DIR): the test sees no snapshot
  ssize_t n = read(in, buf, sizeof(buf));
  close(in);
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || n < 0 || write(fd, buf, n) != n) {
    fprintf(stderr, "heap_testprog: cannot write %s\n", out);
    exit(1);
  }
  close(fd);
}

size_t SizeOf(int i) { return 16 + static_cast<size_t>(i * 37 % 1000); }

void* ThreadMain(void* arg) {
  int t = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  Truth truth;
  Flush();
  pthread_barrier_wait(&g_ready);
  pthread_barrier_wait(&g_start);
  for (int i = 0; i < kPerThread; ++i) {
    void* p = malloc(SizeOf(i + t));
    truth.Alloc(p);
    if (i % kKeepEvery == 0) {
      g_kept[t][i / kKeepEvery] = p;
    } else {
      truth.Free(p);
      free(p);
    }
  }
  g_thread_truth[t] = truth;
  Flush();
  pthread_barrier_wait(&g_done);
  pthread_barrier_wait(&g_release);
  // Left pending (fewer than the library's batch): only its thread-exit flush counts these.
  for (int i = 0; i < kThreadExitBlocks; ++i) {
    void* p = malloc(kThreadExitSize);
    g_thread_exit_bytes[t] += malloc_usable_size(p);
  }
  return nullptr;
}

// The C allocation entry points and their edge cases, and C++ new/delete, on the main thread.
Truth MainThreadWork() {
  Truth t;
  void* c = calloc(100, 24);
  t.Alloc(c);
  void* r = realloc(nullptr, 100);  // a malloc
  t.Alloc(r);
  t.Free(r);
  r = realloc(r, 5000);  // grows: moves
  t.Alloc(r);
  t.Free(r);
  r = realloc(r, 10);  // shrinks in place
  t.Alloc(r);
  t.Free(r);
  r = realloc(r, 0);  // glibc: frees, returns NULL
  if (r != nullptr) t.Alloc(r);
  void* big = malloc(1 << 20);  // above the mmap threshold: an mmapped chunk
  t.Alloc(big);
  t.Free(big);
  big = realloc(big, 3 << 20);  // mremap
  t.Alloc(big);
  t.Free(big);
  free(big);
  void* pm = nullptr;
  if (posix_memalign(&pm, 64, 1000) != 0) abort();
  t.Alloc(pm);
  if (posix_memalign(&pm, 3, 1000) != EINVAL) abort();  // refused: counts nothing
  void* aa = aligned_alloc(256, 512);
  t.Alloc(aa);
  void* ma = memalign(4096, 100);
  t.Alloc(ma);
  void* va = valloc(100);
  t.Alloc(va);
  int* arr = new int[1000];
  t.Alloc(arr);
  t.Free(arr);
  delete[] arr;
  struct alignas(128) Wide {
    char bytes[300];
  };
  Wide* w = new Wide;
  t.Alloc(w);
  t.Free(w);
  delete w;
  char* nt = new (std::nothrow) char[10];
  t.Alloc(nt);
  void* sized = ::operator new(777);
  t.Alloc(sized);
  t.Free(sized);
  ::operator delete(sized, 777);
  for (void* p : {c, pm, ma}) {  // aa, va and nt stay allocated
    t.Free(p);
    free(p);
  }
  (void)aa, (void)va, (void)nt;
  return t;
}

void PrintWindow(const Truth& t) {
  printf(
      "\"window\":{\"allocated_bytes\":%llu,\"allocated_calls\":%llu,\"freed_bytes\":%llu,"
      "\"freed_calls\":%llu}",
      static_cast<unsigned long long>(t.allocated_bytes),
      static_cast<unsigned long long>(t.allocated_calls),
      static_cast<unsigned long long>(t.freed_bytes),
      static_cast<unsigned long long>(t.freed_calls));
}

pid_t ForkExecChild(const char* self) {
  pid_t pid = fork();
  if (pid == 0) {
    execl(self, self, "child", g_snapdir, static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    fprintf(stderr, "heap_testprog: the exec'd child failed\n");
    exit(1);
  }
  return pid;
}

int Work(const char* self) {
  pthread_t threads[kThreads];
  pthread_barrier_init(&g_ready, nullptr, kThreads + 1);
  pthread_barrier_init(&g_start, nullptr, kThreads + 1);
  pthread_barrier_init(&g_done, nullptr, kThreads + 1);
  pthread_barrier_init(&g_release, nullptr, kThreads + 1);
  for (int t = 0; t < kThreads; ++t) {
    pthread_create(&threads[t], nullptr, ThreadMain, reinterpret_cast<void*>(intptr_t{t}));
  }
  pthread_barrier_wait(&g_ready);
  Flush();
  Snapshot("snap0");
  pthread_barrier_wait(&g_start);
  Truth truth = MainThreadWork();
  Flush();
  pthread_barrier_wait(&g_done);
  Snapshot("snap1");
  pthread_barrier_wait(&g_release);
  uint64_t thread_exit_bytes = 0;
  for (int t = 0; t < kThreads; ++t) {
    pthread_join(threads[t], nullptr);
    truth.Add(g_thread_truth[t]);
    thread_exit_bytes += g_thread_exit_bytes[t];
  }
  Flush();
  Snapshot("snap2");
  // Left pending on the main thread: only the library's exit flush counts these.
  uint64_t exit_bytes = 0;
  for (int i = 0; i < kExitBlocks; ++i) exit_bytes += malloc_usable_size(malloc(kExitSize));
  pid_t child = ForkExecChild(self);
  printf(
      "{\"mode\":\"work\",\"pid\":%d,\"child_pid\":%d,\"thread_exit_min_bytes\":%llu,"
      "\"exit_min_bytes\":%llu,",
      getpid(), child, static_cast<unsigned long long>(thread_exit_bytes),
      static_cast<unsigned long long>(exit_bytes));
  PrintWindow(truth);
  printf("}\n");
  return 0;
}

int Child() {
  Flush();
  Snapshot("child-snap0");
  Truth t;
  for (int i = 0; i < 1000; ++i) {
    void* p = malloc(200);
    t.Alloc(p);
    if (i % 2 == 0) {
      t.Free(p);
      free(p);
    }
  }
  Flush();
  Snapshot("child-snap1");
  printf("{\"mode\":\"child\",\"pid\":%d,", getpid());
  PrintWindow(t);
  printf("}\n");
  fflush(stdout);
  return 0;
}

// A fixed amount of allocation work: a ring of 64 live blocks, one freed and one allocated per
// step, sizes cycling over small classes.
int Bench(long steps) {
  static void* ring[64];
  timespec a{}, b{};
  clock_gettime(CLOCK_MONOTONIC, &a);
  uint64_t sum = 0;
  for (long i = 0; i < steps; ++i) {
    void*& slot = ring[i & 63];
    free(slot);
    slot = malloc(16 + (i * 37) % 512);
    static_cast<char*>(slot)[0] = static_cast<char>(i);
    sum += static_cast<unsigned char>(static_cast<char*>(slot)[0]);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("{\"ns\":%lld,\"checksum\":%llu}\n",
         (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec),
         static_cast<unsigned long long>(sum));
  return 0;
}

// ---- sites: sampled allocations with a known split between two sites ----

constexpr int kSiteThreads = 4;
constexpr uint64_t kChurnPerThread = 512ull << 20;
constexpr uint64_t kKeepPerThread = 16ull << 20;
uint64_t g_churned[kSiteThreads], g_kept_bytes[kSiteThreads];

__attribute__((noinline)) void* KeepBlock(size_t n) { return malloc(n); }

// An anonymous mapping of n bytes (whole pages), unmapped in two pieces: the library counts
// it as allocated and freed like a malloc'd block.
__attribute__((noinline)) void ChurnMapping(size_t n, uint64_t* bytes) {
  const size_t page = 4096, len = (n + page - 1) / page * page;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) abort();
  static_cast<volatile char*>(p)[0] = 1;
  *bytes += len;
  munmap(p, page);
  if (len > page) munmap(static_cast<char*>(p) + page, len - page);
}

// Every allocation entry point, each block freed at once: in use stays 0 at this site.
__attribute__((noinline)) void ChurnBlock(size_t n, int kind, uint64_t* bytes) {
  if (kind == 4) return ChurnMapping(n, bytes);
  void* p = nullptr;
  if (kind == 0) {
    p = malloc(n);
  } else if (kind == 1) {
    void* smaller = malloc(n / 2 + 1);  // allocated here too, and freed by the realloc
    *bytes += malloc_usable_size(smaller);
    p = realloc(smaller, n);
  } else if (kind == 2) {
    if (posix_memalign(&p, 64, n) != 0) p = nullptr;
  } else {
    p = new char[n];
  }
  if (p == nullptr) abort();
  static_cast<volatile char*>(p)[0] = 1;
  *bytes += malloc_usable_size(p);
  if (kind == 3) {
    delete[] static_cast<char*>(p);
  } else {
    free(p);
  }
}

void* SitesThread(void* arg) {
  const int i = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  unsigned seed = 1234 + i;
  uint64_t churned = 0, kept = 0;
  for (int k = 0; churned < kChurnPerThread || kept < kKeepPerThread; ++k) {
    if (churned < kChurnPerThread) ChurnBlock(16 + rand_r(&seed) % 65536, k % 5, &churned);
    if (kept < kKeepPerThread && k % 8 == 0) {
      void* p = KeepBlock(4096 + rand_r(&seed) % 8192);
      kept += malloc_usable_size(p);
    }
  }
  g_churned[i] = churned;
  g_kept_bytes[i] = kept;
  Flush();
  return nullptr;
}

int Sites() {
  pthread_t threads[kSiteThreads];
  for (int i = 0; i < kSiteThreads; ++i) {
    pthread_create(&threads[i], nullptr, SitesThread, reinterpret_cast<void*>(intptr_t{i}));
  }
  uint64_t churned = 0, kept = 0;
  for (int i = 0; i < kSiteThreads; ++i) {
    pthread_join(threads[i], nullptr);
    churned += g_churned[i];
    kept += g_kept_bytes[i];
  }
  char path[4096], tmp[4200];
  snprintf(path, sizeof(path), "%s/truth.json", g_snapdir);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  if (f == nullptr) return 1;
  fprintf(f, "{\"pid\":%d,\"churn_bytes\":%llu,\"kept_bytes\":%llu}\n", getpid(),
          static_cast<unsigned long long>(churned), static_cast<unsigned long long>(kept));
  fclose(f);
  rename(tmp, path);
  snprintf(path, sizeof(path), "%s/done", g_snapdir);
  for (int waited = 0; access(path, F_OK) != 0 && waited < 6000; ++waited) usleep(10000);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: heap_testprog work|child|sites SNAPDIR | bench STEPS\n");
    return 2;
  }
  if (strcmp(argv[1], "bench") == 0) return Bench(atol(argv[2]));
  if (strcmp(argv[1], "threshold") == 0) {
    void* p = malloc(200 << 10);
    // An mmapped chunk is whole pages less its 16-byte header; a heap chunk of this size is not.
    const bool mmapped = (malloc_usable_size(p) + 16) % 4096 == 0;
    printf("{\"mode\":\"threshold\",\"mmapped\":%s}\n", mmapped ? "true" : "false");
    free(p);
    return 0;
  }
  g_snapdir = argv[2];
  g_flush = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "framescope_heap_flush"));
  const char* dir = getenv("FRAMESCOPE_HEAP_DIR");
  snprintf(g_counters, sizeof(g_counters), "%s/heap-%d.counters", dir ? dir : "/nonexistent",
           getpid());
  if (strcmp(argv[1], "work") == 0) return Work(argv[0]);
  if (strcmp(argv[1], "child") == 0) return Child();
  if (strcmp(argv[1], "sites") == 0) return Sites();
  fprintf(stderr, "heap_testprog: unknown mode %s\n", argv[1]);
  return 2;
}
