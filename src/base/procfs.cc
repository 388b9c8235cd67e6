#include "src/base/procfs.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>

#include "src/base/file_util.h"

namespace fs {

bool ParseProcStat(const std::string& line, ProcStat* out) {
  size_t open = line.find('(');
  size_t close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open ||
      close + 2 >= line.size()) {
    return false;
  }
  out->pid = static_cast<pid_t>(atoi(line.c_str()));
  out->comm = line.substr(open + 1, close - open - 1);
  // Fields after ") ": 3 state, 4 ppid, ..., 14 utime, 15 stime.
  const char* p = line.c_str() + close + 2;
  out->state = *p;
  int field = 3;
  double utime = -1, stime = -1;
  while (*p != '\0' && field <= 15) {
    if (field == 4) out->ppid = static_cast<pid_t>(atoi(p));
    if (field == 14) utime = strtod(p, nullptr);
    if (field == 15) stime = strtod(p, nullptr);
    const char* space = strchr(p, ' ');
    if (space == nullptr) break;
    p = space + 1;
    ++field;
  }
  if (utime < 0 || stime < 0) return false;
  out->cpu_s = (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return true;
}

bool ReadProcStat(pid_t pid, ProcStat* out) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  return text.ok() && ParseProcStat(*text, out);
}

std::vector<pid_t> ProcessTree(pid_t pid) {
  std::multimap<pid_t, pid_t> children;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      long p = strtol(e->d_name, &end, 10);
      if (*end != '\0' || p <= 0) continue;
      ProcStat st;
      if (ReadProcStat(static_cast<pid_t>(p), &st)) children.emplace(st.ppid, st.pid);
    }
    closedir(d);
  }
  std::vector<pid_t> tree = {pid};
  for (size_t i = 0; i < tree.size(); ++i) {
    auto [begin, end] = children.equal_range(tree[i]);
    for (auto it = begin; it != end; ++it) tree.push_back(it->second);
  }
  return tree;
}

bool ReadProcessMemory(pid_t pid, uint64_t* rss_bytes, uint64_t* peak_rss_bytes) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/status");
  if (!text.ok()) return false;
  bool rss = false, hwm = false;
  for (const char* key : {"VmRSS:", "VmHWM:"}) {
    size_t at = text->find(key);
    if (at == std::string::npos) continue;
    uint64_t kb = strtoull(text->c_str() + at + strlen(key), nullptr, 10);
    if (key[2] == 'R') {
      *rss_bytes = kb * 1024;
      rss = true;
    } else {
      *peak_rss_bytes = kb * 1024;
      hwm = true;
    }
  }
  return rss && hwm;
}

bool ParseHostCpu(const std::string& proc_stat, HostCpuTimes* out) {
  if (proc_stat.compare(0, 4, "cpu ") != 0) return false;
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  uint64_t v[8] = {};
  const char* p = proc_stat.c_str() + 4;
  for (uint64_t& x : v) {
    char* end = nullptr;
    x = strtoull(p, &end, 10);
    if (end == p) return false;
    p = end;
  }
  out->total = 0;
  for (uint64_t x : v) out->total += x;
  out->busy = out->total - v[3] - v[4];
  return true;
}

bool ReadHostCpu(HostCpuTimes* out) {
  auto text = ReadFile("/proc/stat");
  return text.ok() && ParseHostCpu(*text, out);
}

double HostCpuPercent(const HostCpuTimes& before, const HostCpuTimes& after) {
  if (after.total <= before.total) return -1;
  return 100.0 * static_cast<double>(after.busy - before.busy) /
         static_cast<double>(after.total - before.total);
}

}  // namespace fs
