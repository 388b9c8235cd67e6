#include "src/regression/alert.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "src/base/http.h"

namespace fs::regression {
namespace {

using Clock = std::chrono::steady_clock;

// Writes all of `data` to the child's stdin; a child that exits without reading is not an
// error here (its exit status says whether it failed).
void FeedStdin(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(fd);
}

// Waits for `pid` until `deadline`; kills its process group after it. Returns the wait status,
// or -1 when it had to be killed.
int WaitOrKill(pid_t pid, Clock::time_point deadline) {
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return status;
    if (Clock::now() >= deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

AlertResult RunAlertCommand(const std::string& command, const std::string& json, int timeout_ms) {
  AlertResult r{"command", command, false, 1, {}};
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    r.errors.push_back(std::string("pipe: ") + strerror(errno));
    return r;
  }
  pid_t pid = fork();
  if (pid < 0) {
    r.errors.push_back(std::string("fork: ") + strerror(errno));
    close(pipefd[0]);
    close(pipefd[1]);
    return r;
  }
  if (pid == 0) {
    setpgid(0, 0);  // its own group, so a timeout kills what it started too
    dup2(pipefd[0], STDIN_FILENO);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipefd[0]);
  // A child that closes its stdin early must not kill us with SIGPIPE.
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old);
  FeedStdin(pipefd[1], json);
  sigaction(SIGPIPE, &old, nullptr);
  const int status = WaitOrKill(pid, Clock::now() + std::chrono::milliseconds(timeout_ms));
  if (status == -1) {
    r.errors.push_back("killed after " + std::to_string(timeout_ms / 1000.0).substr(0, 4) +
                       " s without exiting");
  } else if (WIFSIGNALED(status)) {
    r.errors.push_back(std::string("killed by signal ") + strsignal(WTERMSIG(status)));
  } else if (WEXITSTATUS(status) != 0) {
    r.errors.push_back("exited with status " + std::to_string(WEXITSTATUS(status)));
  } else {
    r.ok = true;
  }
  return r;
}

StatusOr<HttpUrl> ParseHttpUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    return Err("\"" + url + "\": only http://host[:port]/path URLs are supported (no https)");
  }
  HttpUrl u;
  std::string rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) u.path = rest.substr(slash);
  std::string hostport = rest.substr(0, slash);
  const size_t colon = hostport.rfind(':');
  if (colon != std::string::npos) {
    char* end = nullptr;
    const long port = strtol(hostport.c_str() + colon + 1, &end, 10);
    if (colon + 1 == hostport.size() || *end != '\0' || port < 1 || port > 65535) {
      return Err("\"" + url + "\": bad port");
    }
    u.port = static_cast<int>(port);
    hostport.resize(colon);
  }
  if (hostport.empty()) return Err("\"" + url + "\": no host");
  u.host = hostport;
  return u;
}

Status ValidateAlertUrl(const std::string& url) { return ParseHttpUrl(url).status(); }

AlertResult PostAlert(const std::string& url, const std::string& json, int attempts, int backoff_ms,
                      int timeout_ms) {
  AlertResult r{"url", url, false, 0, {}};
  auto u = ParseHttpUrl(url);
  if (!u.ok()) {
    r.errors.push_back(u.status().message());
    return r;
  }
  for (int i = 0; i < attempts; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms << (i - 1)));
    ++r.attempts;
    auto resp = HttpPost(u->host, u->port, u->path, json, "application/json", timeout_ms);
    if (resp.ok() && resp->status >= 200 && resp->status < 300) {
      r.ok = true;
      return r;
    }
    r.errors.push_back(resp.ok() ? "HTTP " + std::to_string(resp->status)
                                 : resp.status().message());
  }
  return r;
}

Json AlertsToJson(const std::vector<AlertResult>& alerts) {
  Json out = Json::MakeArray();
  for (const AlertResult& a : alerts) {
    Json errors = Json::MakeArray();
    for (const std::string& e : a.errors) errors.Push(e);
    out.Push(Json(Json::Object{{"kind", a.kind},
                               {"target", a.target},
                               {"ok", a.ok},
                               {"attempts", a.attempts},
                               {"errors", std::move(errors)}}));
  }
  return out;
}

}  // namespace fs::regression
