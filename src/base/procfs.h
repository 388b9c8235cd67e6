// Reading process and host CPU/memory counters from /proc (proc(5)).
//
// Counters, not estimates: utime+stime of /proc/PID/stat (clock ticks, USER_HZ), the aggregate
// "cpu" line of /proc/stat, VmRSS/VmHWM of /proc/PID/status. Every reader fails soft (returns
// false / an empty result) for a process that is gone, since callers race with exits.
#ifndef FRAMESCOPE_BASE_PROCFS_H_
#define FRAMESCOPE_BASE_PROCFS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fs {

struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';
  std::string comm;
  double cpu_s = 0;  // utime + stime, seconds.
};

// Parses one /proc/PID/stat line (comm may contain spaces and parentheses).
bool ParseProcStat(const std::string& line, ProcStat* out);
// /proc/PID/stat of a live process (false if gone or unreadable).
bool ReadProcStat(pid_t pid, ProcStat* out);
// `pid` and every live descendant (children of children...), pid first.
std::vector<pid_t> ProcessTree(pid_t pid);

// VmRSS and VmHWM (peak RSS) in bytes; false if unavailable.
bool ReadProcessMemory(pid_t pid, uint64_t* rss_bytes, uint64_t* peak_rss_bytes);

// Host-wide CPU time from /proc/stat's "cpu" line, in clock ticks.
struct HostCpuTimes {
  uint64_t busy = 0;
  uint64_t total = 0;
};
bool ParseHostCpu(const std::string& proc_stat, HostCpuTimes* out);
bool ReadHostCpu(HostCpuTimes* out);
// Busy share of all CPUs between two readings, 0..100; -1 if no time passed.
double HostCpuPercent(const HostCpuTimes& before, const HostCpuTimes& after);

}  // namespace fs

#endif  // FRAMESCOPE_BASE_PROCFS_H_
