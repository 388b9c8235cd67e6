// framescope-loadgen: simulated RTSP cameras. All logic lives in fs_loadgen (loadgen.h).
#include <cstdio>

#include "services/common/service.h"
#include "services/loadgen/loadgen.h"
#include "src/base/flags.h"
#include "src/base/logging.h"

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer and GLib: once GStreamer has registered more than 2048 quarks, GLib grows its
// quark table and deliberately abandons the first block (lock-free readers may still hold
// it), which its library constructor allocated: a 16 KiB "direct leak" from _dl_init. Only
// constructor-time allocations are suppressed. GLib has no frame pointers, so the fast
// unwinder stops at g_malloc and would hide _dl_init; unwind with DWARF on malloc instead
// (slower, ASan builds only), which also gives full stacks for any real leak of ours.
extern "C" const char* __lsan_default_suppressions() { return "leak:_dl_init\n"; }
extern "C" const char* __asan_default_options() { return "fast_unwind_on_malloc=0"; }
#endif

int main(int argc, char** argv) {
  fs::ServiceRuntime runtime("loadgen");
  fs::loadgen::LoadgenOptions options;
  fs::FlagSet flags(
      "framescope-loadgen",
      "Simulates RTSP cameras: serves N distinct H.264 streams at rtsp://HOST:PORT/cam00,\n"
      "cam01, ... Each camera shows a photograph with moving objects and an overlay (camera,\n"
      "loop time, frame number). Loops are encoded once at startup and replayed, so serving\n"
      "costs little CPU. Logs 'camera=camNN FPS: X' (rate delivered to clients) every report\n"
      "interval; /metrics and /health on the metrics port; SIGTERM/SIGINT stop it.\n"
      "Exit codes: 0 stopped by signal, 1 runtime error (e.g. RTSP port in use), 2 bad flags.\n"
      "Example: framescope-loadgen --cameras 4 --port 8554; ffplay rtsp://127.0.0.1:8554/cam00");
  fs::loadgen::AddFlags(&flags, &options);
  runtime.AddFlags(&flags);
  int exit_code = 0;
  if (!flags.ParseOrExit(argc, argv, &exit_code)) return exit_code;
  if (fs::Status st = fs::loadgen::FinishOptions(flags, &options); !st.ok()) {
    std::fprintf(stderr, "framescope-loadgen: %s\n", st.message().c_str());
    return 2;
  }
  if (fs::Status st = fs::loadgen::Run(options, &runtime); !st.ok()) {
    LOG(ERROR) << st.message();
    return 1;
  }
  return 0;
}
