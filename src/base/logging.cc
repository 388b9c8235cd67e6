#include "src/base/logging.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace fs {
namespace {
std::string& Tag() {
  static std::string tag;
  return tag;
}
LogLevel g_min_level = LogLevel::kInfo;
std::mutex g_log_mu;
}  // namespace

void SetLogTag(const std::string& tag) { Tag() = tag; }
void SetMinLogLevel(LogLevel level) { g_min_level = level; }

LogMessage::LogMessage(LogLevel level, const char* file, int line) : level_(level) {
  (void)file;
  (void)line;
}

LogMessage::~LogMessage() {
  if (level_ < g_min_level) return;
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[40];
  strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  static const char kLevels[] = {'D', 'I', 'W', 'E', 'F'};
  std::string line = std::string(ts) + "." + std::to_string(tv.tv_usec / 1000 + 1000).substr(1) +
                     "Z " + kLevels[static_cast<int>(level_)] + " " +
                     (Tag().empty() ? "" : Tag() + ": ") + stream_.str() + "\n";
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    fwrite(line.data(), 1, line.size(), stderr);
    fflush(stderr);
  }
  if (level_ == LogLevel::kFatal) abort();
}

}  // namespace fs
