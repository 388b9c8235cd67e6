// Minimal leveled logging to stderr and CHECK for invariants.
// Lines look like: 2026-11-24T15:40:01.123Z I capture: connected cam03
#ifndef FRAMESCOPE_BASE_LOGGING_H_
#define FRAMESCOPE_BASE_LOGGING_H_

#include <sstream>
#include <string>

namespace fs {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

// Sets the tag printed on every line (usually the service name) and the minimum level.
void SetLogTag(const std::string& tag);
void SetMinLogLevel(LogLevel level);

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();  // Emits the line; aborts on kFatal.
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

}  // namespace fs

#define FS_LOG_DEBUG ::fs::LogLevel::kDebug
#define FS_LOG_INFO ::fs::LogLevel::kInfo
#define FS_LOG_WARNING ::fs::LogLevel::kWarning
#define FS_LOG_ERROR ::fs::LogLevel::kError
#define FS_LOG_FATAL ::fs::LogLevel::kFatal
#define LOG(severity) ::fs::LogMessage(FS_LOG_##severity, __FILE__, __LINE__).stream()
#define CHECK(cond) \
  if (!(cond)) LOG(FATAL) << "CHECK failed: " #cond " "

#endif  // FRAMESCOPE_BASE_LOGGING_H_
