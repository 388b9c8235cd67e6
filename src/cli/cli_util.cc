#include "src/cli/cli_util.h"

#include <signal.h>
#include <stdint.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "src/base/clock.h"
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

// MonotonicNs (src/base/clock.h) is clock_gettime: async-signal-safe.
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

void WaitWindow(const char* command, double duration_s, const std::atomic<bool>& stop) {
  const int64_t start = MonotonicNs(), end = start + static_cast<int64_t>(duration_s * 1e9);
  int64_t next_note = start + 5'000'000'000;
  while (!stop.load() && MonotonicNs() < end) {
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::min<int64_t>(end - MonotonicNs(), 100'000'000)));
    if (MonotonicNs() >= next_note && MonotonicNs() < end) {
      fprintf(stderr, "%s: window %.0f of %.0f s\n", command,
              static_cast<double>(MonotonicNs() - start) / 1e9, duration_s);
      next_note += 5'000'000'000;
    }
  }
}

namespace {

StatusOr<io::MetricsEndpoint> ParseMetricsFlag(const std::string& text) {
  io::MetricsEndpoint e;
  std::string rest = text;
  if (size_t eq = rest.find('='); eq != std::string::npos) {
    e.name = rest.substr(0, eq);
    rest = rest.substr(eq + 1);
  }
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (size_t colon = rest.rfind(':'); colon != std::string::npos) {
    const std::string host = rest.substr(0, colon);
    if (host != "127.0.0.1" && host != "localhost") {
      return Err("--metrics " + text + ": the services' /metrics are scraped on 127.0.0.1 only");
    }
    rest = rest.substr(colon + 1);
  }
  char* end = nullptr;
  const long port = strtol(rest.c_str(), &end, 10);
  if (rest.empty() || *end != '\0' || port < 1 || port > 65535) {
    return Err("--metrics " + text + ": expected [NAME=][127.0.0.1:]PORT with PORT 1..65535");
  }
  e.port = static_cast<int>(port);
  if (e.name.empty()) e.name = "127.0.0.1:" + std::to_string(e.port);
  return e;
}

}  // namespace

StatusOr<std::vector<io::MetricsEndpoint>> ParseMetricsFlags(
    const std::vector<std::string>& values) {
  std::vector<io::MetricsEndpoint> out;
  for (const std::string& v : values) {
    ASSIGN_OR_RETURN(io::MetricsEndpoint e, ParseMetricsFlag(v));
    for (const io::MetricsEndpoint& seen : out) {
      if (seen.port == e.port) {
        return Err("--metrics " + v + ": port " + std::to_string(e.port) +
                   " is given twice (it would be counted twice)");
      }
    }
    out.push_back(e);
  }
  return out;
}

}  // namespace fs
