// The library symbolizer_dlopen_testprog loads after the symbolizer started: one function at a
// known line.
namespace {
volatile int g_sink = 0;
}  // namespace

extern "C" {

extern const int kFsTestlibWorkLine;
const int kFsTestlibWorkLine = __LINE__ + 1;
__attribute__((noinline, visibility("default"))) int FsTestlibWork(int x) {
  g_sink = g_sink + x;
  return g_sink * 5;
}

}  // extern "C"
