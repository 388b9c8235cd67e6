#include "src/regression/alert.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "src/base/child_io.h"
#include "src/base/http.h"

namespace fs::regression {
namespace {

using Clock = std::chrono::steady_clock;

// The alert command's output goes to our stderr (never stdout: compare --json writes there).
void ToStderr(std::string_view data) { (void)WriteToFd(STDERR_FILENO, data); }

}  // namespace

AlertResult RunAlertCommand(const std::string& command, const std::string& json, int timeout_ms) {
  AlertResult r{"command", command, false, 1, {}};
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto stdin_file = TextFile(json);
  if (!stdin_file.ok()) {
    r.errors.push_back(stdin_file.status().message());
    return r;
  }
  const int in_fd = *stdin_file;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    r.errors.push_back(std::string("pipe: ") + strerror(errno));
    close(in_fd);
    return r;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // its own group, so a timeout kills what it started too
    // Its output to our stderr through `out`: never our stdout (compare --json writes the JSON
    // there), and nothing it leaves running holds our own stdout or stderr open.
    dup2(in_fd, STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in_fd);
  close(out[1]);
  if (pid < 0) {
    r.errors.push_back(std::string("fork: ") + strerror(errno));
    close(out[0]);
    return r;
  }
  const int status = CopyOutputUntilExit(pid, out[0], ToStderr, deadline);
  close(out[0]);
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
  // What the client cannot send as it is: a space or control byte would break the request line.
  for (unsigned char ch : url) {
    if (ch <= 0x20 || ch == 0x7f) return Err("\"" + url + "\": a space or control character");
  }
  HttpUrl u;
  std::string rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) u.path = rest.substr(slash);
  std::string hostport = rest.substr(0, slash);
  if (hostport.find('@') != std::string::npos) {
    return Err("\"" + url + "\": user:password@ is not supported");
  }
  const size_t colon = hostport.rfind(':');
  if (colon != std::string::npos) {
    const std::string digits = hostport.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 ||
        digits.find_first_not_of("0123456789") != std::string::npos || std::stoi(digits) < 1 ||
        std::stoi(digits) > 65535) {
      return Err("\"" + url + "\": bad port (1-65535)");
    }
    u.port = std::stoi(digits);
    hostport.resize(colon);
  }
  if (hostport.empty()) return Err("\"" + url + "\": no host");
  // A name or an IPv4 address: what ConnectTcp resolves (no [IPv6] literals).
  if (hostport.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
      std::string::npos) {
    return Err("\"" + url + "\": host must be a name or an IPv4 address");
  }
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
