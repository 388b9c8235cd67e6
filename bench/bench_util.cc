#include "bench/bench_util.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/procfs.h"

extern char** environ;

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

Spread Summarize(std::vector<double> v) {
  Spread s;
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.lo = v.front();
  s.hi = v.back();
  return s;
}

Json SpreadJson(const Spread& s) {
  Json j = Json::MakeObject();
  j["median"] = s.median;
  j["min"] = s.lo;
  j["max"] = s.hi;
  return j;
}

double FindNumber(const std::string& text, const std::string& key) {
  size_t at = text.find(key);
  if (at == std::string::npos) return NAN;
  at += key.size();
  while (at < text.size() &&
         (text[at] == '"' || text[at] == ':' || text[at] == '=' || text[at] == ' ')) {
    ++at;
  }
  return std::strtod(text.c_str() + at, nullptr);
}

namespace {

std::string EnvName(const std::string& entry) { return entry.substr(0, entry.find('=')); }

}  // namespace

pid_t SpawnWithEnv(const std::vector<std::string>& argv, const std::string& out_path,
                   const std::vector<std::string>& env, const std::vector<std::string>* base) {
  std::vector<std::string> inherited;
  if (base == nullptr) {
    for (char** e = environ; *e != nullptr; ++e) inherited.emplace_back(*e);
    base = &inherited;
  }
  std::vector<std::string> final_env;
  for (const std::string& e : *base) {
    bool changed = std::any_of(env.begin(), env.end(),
                               [&](const std::string& c) { return EnvName(c) == EnvName(e); });
    if (!changed) final_env.push_back(e);
  }
  for (const std::string& c : env) {
    if (c.find('=') != std::string::npos) final_env.push_back(c);
  }
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : final_env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

ChildRun RunChild(const std::vector<std::string>& argv, const std::string& out_path,
                  const std::vector<std::string>& env) {
  ChildRun c;
  c.start_mono_ns = MonotonicNs();
  c.pid = SpawnWithEnv(argv, out_path, env);
  if (c.pid < 0) return c;
  int status = 0;
  rusage ru{};
  while (wait4(c.pid, &status, WNOHANG, &ru) == 0) {
    uint64_t rss = 0, peak = 0;
    if (ReadProcessMemory(c.pid, &rss, &peak))
      c.self_peak_rss_mb = std::max(c.self_peak_rss_mb, static_cast<double>(peak) / (1 << 20));
    usleep(5000);
  }
  c.exit_mono_ns = MonotonicNs();
  c.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  c.tree_peak_rss_mb = static_cast<double>(ru.ru_maxrss) / 1024;  // KiB on Linux
  c.tree_cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  return c;
}

}  // namespace fs::bench
