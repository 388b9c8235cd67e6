#include "src/system/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "src/base/file_util.h"

namespace fs {

StatusOr<pid_t> SpawnProcess(const std::vector<std::string>& argv, const std::string& log_path,
                             const RunAs* run_as, const std::vector<std::string>& extra_env,
                             bool own_group) {
  if (argv.empty()) return Err("empty command");
  if (access(argv[0].c_str(), X_OK) != 0) {
    return Err("cannot execute " + argv[0] + ": " + strerror(errno));
  }
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Err("cannot open log " + log_path + ": " + strerror(errno));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The environment is built before fork: nothing after fork may allocate.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    bool replaced = false;
    for (const auto& add : extra_env) {
      auto eq = add.find('=');
      if (eq != std::string::npos && kv.compare(0, eq + 1, add, 0, eq + 1) == 0) replaced = true;
    }
    if (!replaced) env_strings.push_back(kv);
  }
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& kv : env_strings) envp.push_back(kv.data());
  envp.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    return Err(std::string("fork: ") + strerror(errno));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    if (run_as != nullptr) {
      // Group first: after setuid we may no longer change it. A credential change clears
      // the death signal, so it is set afterwards.
      if (setgroups(0, nullptr) != 0 || setgid(run_as->gid) != 0 || setuid(run_as->uid) != 0) {
        _exit(125);
      }
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(126);  // parent died between fork and prctl
    if (own_group) setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);  // dup2 clears CLOEXEC on 0
    dup2(devnull, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(log_fd);
  return pid;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return false;
  auto close_paren = stat->rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat->size()) return false;
  char state = (*stat)[close_paren + 2];
  return state != 'Z' && state != 'X';
}

std::string ProcessCmdline(pid_t pid) {
  auto raw = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!raw.ok()) return "";
  std::string s = *raw;
  for (auto& c : s) {
    if (c == '\0') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

Status RunToCompletion(const std::vector<std::string>& argv, const std::string& log_path,
                       int timeout_ms, const RunAs* run_as) {
  ASSIGN_OR_RETURN(pid_t pid, SpawnProcess(argv, log_path, run_as, {}, /*own_group=*/true));
  int status = 0;
  for (int waited = 0;; waited += 20) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return Err("waitpid " + argv[0] + ": " + strerror(errno));
    if (waited >= timeout_ms) {
      kill(-pid, SIGKILL);  // the group: initdb's own children too
      waitpid(pid, nullptr, 0);
      return Err(argv[0] + " did not finish within " + std::to_string(timeout_ms / 1000) +
                 " s (log: " + log_path + ")");
    }
    usleep(20000);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                      : "was killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 125) how += " (could not switch user)";
  return Err(argv[0] + " " + how + " (log: " + log_path + ")");
}

StatusOr<RunAs> LookupUser(const std::string& name) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return Err("no local user '" + name + "'");
  }
  return RunAs{pw.pw_uid, pw.pw_gid};
}

bool TerminateProcess(pid_t pid, int timeout_ms, int signal) {
  if (!ProcessAlive(pid)) {
    waitpid(pid, nullptr, WNOHANG);
    return false;
  }
  kill(pid, signal);
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    waitpid(pid, nullptr, WNOHANG);
    if (!ProcessAlive(pid)) return false;
    usleep(20000);
  }
  kill(pid, SIGKILL);
  for (int i = 0; i < 250 && ProcessAlive(pid); ++i) {
    waitpid(pid, nullptr, WNOHANG);
    usleep(20000);
  }
  waitpid(pid, nullptr, WNOHANG);
  return true;
}

std::vector<pid_t> FindProcesses(const std::function<bool(pid_t)>& match) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == getpid()) continue;
    if (ProcessAlive(static_cast<pid_t>(pid)) && match(static_cast<pid_t>(pid))) {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(d);
  return out;
}

std::vector<pid_t> ProcessGroupMembers(pid_t pgid) {
  return FindProcesses([pgid](pid_t pid) { return getpgid(pid) == pgid; });
}

double ProcessUptimeSeconds(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  auto uptime = ReadFile("/proc/uptime");
  if (!stat.ok() || !uptime.ok()) return -1;
  auto close_paren = stat->rfind(')');
  if (close_paren == std::string::npos) return -1;
  // Fields after ')' start at field 3 (state); starttime is field 22.
  const char* p = stat->c_str() + close_paren + 2;
  for (int field = 3; field < 22 && *p; ++field) {
    p = strchr(p, ' ');
    if (!p) return -1;
    ++p;
  }
  double start_ticks = strtod(p, nullptr);
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return strtod(uptime->c_str(), nullptr) - start_ticks / ticks;
}

}  // namespace fs
