// Helper for symbolizer_test: a process with functions at known source lines. It prints
//   <key> 0x<address> <line> [<line>]
// for each, then "ready", and sleeps until killed. Built with -O2 -g twice (with and without
// frame pointers): the symbolizer must not care.
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
  printf("ready\n");
  fflush(stdout);
  while (true) pause();
}
