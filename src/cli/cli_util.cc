#include "src/cli/cli_util.h"

#include <signal.h>

namespace fs {
namespace {

std::atomic<bool>* g_stop_flag = nullptr;

void OnStopSignal(int sig) {
  if (g_stop_flag->exchange(true)) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

}  // namespace

void CatchStopSignals(std::atomic<bool>* stop) {
  g_stop_flag = stop;
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string SwapExtension(const std::string& path, const std::string& ext,
                          const std::string& new_ext) {
  if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
    return path.substr(0, path.size() - ext.size()) + new_ext;
  }
  return path + new_ext;
}

}  // namespace fs
