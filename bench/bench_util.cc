#include "bench/bench_util.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "src/base/file_util.h"
#include "src/base/procfs.h"

namespace fs::bench {

double CpuSeconds(pid_t pid) {
  ProcStat st;
  return ReadProcStat(pid, &st) ? st.cpu_s : NAN;
}

std::vector<PromSample> MetricDelta(const std::vector<PromSample>& a,
                                    const std::vector<PromSample>& b) {
  auto key = [](const PromSample& s) {
    std::string k = s.name;
    for (const auto& [l, v] : s.labels) k += "|" + l + "=" + v;
    return k;
  };
  std::map<std::string, double> before;
  for (const auto& s : a) before[key(s)] = s.value;
  std::vector<PromSample> out;
  for (const auto& s : b) {
    PromSample d = s;
    auto it = before.find(key(s));
    d.value = s.value - (it == before.end() ? 0 : it->second);
    out.push_back(d);
  }
  return out;
}

std::string RunCommand(const std::string& cmd, int* code) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    *code = -1;
    return "popen failed";
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

StatusOr<Json> BringUpSystem(const std::string& framescope, const std::string& state_dir,
                             int cameras, double fps, const std::string& resolution,
                             int max_batch) {
  int code = 0;
  std::string out =
      RunCommand(framescope + " up --state-dir " + state_dir + " --cameras " +
                     std::to_string(cameras) + " --fps " + std::to_string(fps) + " --resolution " +
                     resolution + " --max-batch " + std::to_string(max_batch),
                 &code);
  if (code != 0) return Err("framescope up failed:\n" + out);
  ASSIGN_OR_RETURN(std::string state, ReadFile(state_dir + "/state.json"));
  return Json::Parse(state);
}

std::string Fmt(const char* fmt, double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

}  // namespace fs::bench
