#include "src/cli/cli_util.h"

#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "src/base/file_util.h"
#include "src/memory/heap/heap_counters.h"
#include "src/session/model_source.h"

namespace fs {
namespace {

std::atomic<bool>* g_stop_flag = nullptr;
std::atomic<int64_t> g_first_signal_ns{0};

// A repeat this soon after the first signal is the same request delivered twice (timeout(1) and
// other supervisors signal both the process and its process group), not a second Ctrl-C.
constexpr int64_t kDuplicateWindowNs = 1'000'000'000;

int64_t MonotonicNs() {  // clock_gettime is async-signal-safe.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void OnStopSignal(int sig) {
  const int64_t now = MonotonicNs();
  if (!g_stop_flag->exchange(true)) {
    g_first_signal_ns = now;
    return;
  }
  if (now - g_first_signal_ns.load() < kDuplicateWindowNs) return;
  ResumePausedDetection();  // the process ends here: no destructor will send SIGCONT
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void CatchStopSignals(std::atomic<bool>* stop) {
  g_stop_flag = stop;
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);  // a closed terminal: stop and write, as for Ctrl-C
}

StatusOr<std::vector<std::string>> HeapPreloadEnv(const std::string& heap_dir) {
  const std::string bin_dir = SelfExeDir();
  if (!PathExists(bin_dir + "/" + memory::kHeapLibrary)) {
    return Err(std::string("--heap: ") + memory::kHeapLibrary + " not found in " + bin_dir +
               " (run `make build`)");
  }
  RETURN_IF_ERROR(memory::PrepareHeapDir(heap_dir));
  return memory::HeapProfileEnv(bin_dir, heap_dir);
}

std::string SwapExtension(const std::string& path, const std::string& ext,
                          const std::string& new_ext) {
  if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
    return path.substr(0, path.size() - ext.size()) + new_ext;
  }
  return path + new_ext;
}

}  // namespace fs
