// Helper for symbolizer_test and recorder_test: a process with functions at known source lines.
// It prints
//   <key> 0x<address> <line> [<line>]
// for each, then "ready", and sleeps until killed. Built with -O2 -g twice (with and without
// frame pointers): the symbolizer must not care. Built with -falign-functions=1
// -fno-toplevel-reorder too, so functions follow each other in source order with no padding:
// the return address of a call that ends a function is the first byte of the next function.
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>

namespace {
volatile int g_sink = 0;
void* g_return_address = nullptr;
}  // namespace

// Records its return address: a pc inside whatever called it (here: an inlined body).
extern "C" __attribute__((noinline, noclone)) void FsCaptureReturnAddress() {
  g_return_address = __builtin_return_address(0);
  g_sink = g_sink + 1;
}

namespace framescope_testprog {

constexpr int kNoInlineLine = __LINE__ + 1;
__attribute__((noinline, noclone)) int NoInlineWork(int x) {
  g_sink = g_sink + x;
  return g_sink * 3;
}

constexpr int kCaptureLine = __LINE__ + 3;
static inline __attribute__((always_inline)) int InlinedHelper(int x) {
  int y = x * 7;
  FsCaptureReturnAddress();
  return y + g_sink;  // Reads after the call: the call cannot become a tail call.
}

constexpr int kCallHelperLine = __LINE__ + 2;
__attribute__((noinline, noclone)) int InliningCaller(int x) {
  int r = InlinedHelper(x);
  return r + g_sink;
}

// A call that ends its function (its callee never returns): the return address is the first byte
// of FollowsNoReturnCall, so as a leaf that address is FollowsNoReturnCall and as a return
// address (looked up at address - 1) it is EndsInNoReturnCall.
[[noreturn]] void Park(int line);
__attribute__((noinline, noclone)) void EndsInNoReturnCall(int x) {
  g_sink = x;
  Park(__LINE__);
}
__attribute__((noinline, noclone)) int FollowsNoReturnCall(int x) { return g_sink + x; }

// Reports the return address into EndsInNoReturnCall, then "ready", and sleeps until killed.
__attribute__((noinline, noclone)) void Park(int line) {
  printf("call_ra 0x%" PRIxPTR " %d\n", reinterpret_cast<uintptr_t>(__builtin_return_address(0)),
         line);
  printf("next_function 0x%" PRIxPTR "\n", reinterpret_cast<uintptr_t>(&FollowsNoReturnCall));
  printf("ready\n");
  fflush(stdout);
  while (true) pause();
}

}  // namespace framescope_testprog

int main() {
  using framescope_testprog::InliningCaller;
  using framescope_testprog::NoInlineWork;
  g_sink = InliningCaller(NoInlineWork(1));
  printf("noinline 0x%" PRIxPTR " %d\n", reinterpret_cast<uintptr_t>(&NoInlineWork),
         framescope_testprog::kNoInlineLine);
  printf("inlined_ra 0x%" PRIxPTR " %d %d\n", reinterpret_cast<uintptr_t>(g_return_address),
         framescope_testprog::kCaptureLine, framescope_testprog::kCallHelperLine);
  printf("caller 0x%" PRIxPTR " %d\n", reinterpret_cast<uintptr_t>(&InliningCaller),
         framescope_testprog::kCallHelperLine - 1);
  printf("libc_getpid 0x%" PRIxPTR "\n", reinterpret_cast<uintptr_t>(&getpid));
  // Data, as a junk frame-pointer walk reads it: anonymous memory (a big heap block has its own
  // mapping) and the program's own writable data.
  void* anon = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("anon 0x%" PRIxPTR "\n", reinterpret_cast<uintptr_t>(anon));
  printf("data 0x%" PRIxPTR "\n", reinterpret_cast<uintptr_t>(&g_sink));
  framescope_testprog::EndsInNoReturnCall(framescope_testprog::FollowsNoReturnCall(1));
}
