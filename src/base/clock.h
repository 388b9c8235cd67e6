#ifndef FRAMESCOPE_BASE_CLOCK_H_
#define FRAMESCOPE_BASE_CLOCK_H_

#include <time.h>

#include <cstdint>

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

}  // namespace fs

#endif  // FRAMESCOPE_BASE_CLOCK_H_
