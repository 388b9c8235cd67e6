#ifndef FRAMESCOPE_BASE_CLOCK_H_
#define FRAMESCOPE_BASE_CLOCK_H_

#include <time.h>

#include <cstdint>
#include <string>

namespace fs {

// CLOCK_MONOTONIC nanoseconds: for intervals within one process.
inline int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// CLOCK_REALTIME nanoseconds: for timestamps that cross processes (capture -> published).
// All services run on one host, so realtime differences are meaningful latencies.
inline int64_t WallNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Unix seconds as strftime `format` in UTC, or in local time with `local` (cron's clock).
inline std::string FormatTime(int64_t unix_s, const char* format, bool local = false) {
  time_t t = static_cast<time_t>(unix_s);
  struct tm tm {};
  if (local) {
    localtime_r(&t, &tm);
  } else {
    gmtime_r(&t, &tm);
  }
  char buf[64];
  return strftime(buf, sizeof buf, format, &tm) ? buf : "";
}

// Now, as run.json and the logs write it: "2026-12-02T07:00:00Z".
inline std::string IsoNowUtc() { return FormatTime(time(nullptr), "%Y-%m-%dT%H:%M:%SZ"); }

}  // namespace fs

#endif  // FRAMESCOPE_BASE_CLOCK_H_
