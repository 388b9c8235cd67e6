#include "src/cli/command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "src/base/procfs.h"

namespace fs {
namespace {

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by ") + strsignal(WTERMSIG(status));
  return "ended";
}

ssize_t ReadRetrying(int fd, void* buf, size_t n) {
  ssize_t r;
  do {
    r = read(fd, buf, n);
  } while (r < 0 && errno == EINTR);
  return r;
}

// In the child: waits for the go byte (if held), then execs; an exec failure's errno goes back
// through `error_fd`, which the exec closes on success.
[[noreturn]] void RunChild(std::vector<char*>& argv, char** envp, int go_fd, int error_fd,
                           bool to_stderr) {
  char c;
  if (go_fd >= 0 && ReadRetrying(go_fd, &c, 1) != 1) _exit(126);
  if (to_stderr) dup2(STDERR_FILENO, STDOUT_FILENO);
  signal(SIGPIPE, SIG_DFL);  // An ignored signal would stay ignored across the exec.
  execvpe(argv[0], argv.data(), envp);
  const int e = errno;
  (void)!write(error_fd, &e, sizeof(e));
  _exit(127);
}

// After the go byte: the exec happened (EOF) or failed (its errno; the child is then reaped,
// its wait status in *status).
Status AwaitExec(int error_fd, pid_t pid, const std::string& name, int* status) {
  int e = 0;
  const ssize_t n = ReadRetrying(error_fd, &e, sizeof(e));
  if (n != sizeof(e)) return Status::Ok();
  waitpid(pid, status, 0);
  return Err("cannot run " + name + ": " + strerror(e));
}

// Our environment with `extra` ("KEY=value") added or replacing; built before the fork, so the
// child allocates nothing between fork and exec.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    std::string key = entry.substr(0, entry.find('='));
    bool replaced = std::any_of(extra.begin(), extra.end(), [&key](const std::string& x) {
      return x.compare(0, key.size() + 1, key + "=") == 0;
    });
    if (!replaced) out.push_back(entry);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

// exec's argv/envp form of `strings` (which must outlive it).
std::vector<char*> NullTerminated(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

StatusOr<ChildCommand> ChildCommand::Start(const std::vector<std::string>& cmd,
                                           const CommandOptions& options) {
  int go[2] = {-1, -1}, error[2] = {-1, -1};
  auto fail = [&go, &error](const char* what) {
    const int e = errno;
    for (int fd : {go[0], go[1], error[0], error[1]}) {
      if (fd >= 0) close(fd);
    }
    return Err(std::string(what) + ": " + strerror(e));
  };
  if (pipe2(error, O_CLOEXEC) != 0) return fail("pipe");
  if (options.hold_until_release && pipe2(go, O_CLOEXEC) != 0) return fail("pipe");
  std::vector<std::string> args = cmd;
  std::vector<char*> argv = NullTerminated(args);
  std::vector<std::string> env = ChildEnvironment(options.extra_env);
  std::vector<char*> envp = NullTerminated(env);
  const pid_t child = fork();
  if (child < 0) return fail("fork");
  if (child == 0) {
    if (go[1] >= 0) close(go[1]);
    close(error[0]);
    RunChild(argv, envp.data(), go[0], error[1], options.stdout_to_stderr);
  }
  if (go[0] >= 0) close(go[0]);
  close(error[1]);
  ChildCommand c;
  c.pid_ = child;
  c.go_ = go[1];
  c.error_ = error[0];
  c.name_ = cmd[0];
  if (!options.hold_until_release) {
    Status st = AwaitExec(c.error_, child, c.name_, &c.status_);
    close(c.error_);
    c.error_ = -1;
    if (!st.ok()) return st;
  }
  return c;
}

Status ChildCommand::Release() {
  if (go_ < 0) return Status::Ok();
  const bool sent = write(go_, "g", 1) == 1;
  close(go_);
  go_ = -1;
  Status st =
      sent ? AwaitExec(error_, pid_, name_, &status_) : Err(name_ + " is gone before its start");
  close(error_);
  error_ = -1;
  reaped_ = !st.ok() && sent;
  return st;
}

std::string ChildCommand::End(bool keep_running) {
  if (go_ >= 0) close(go_);  // Never released: the child exits 126.
  if (error_ >= 0) close(error_);
  go_ = error_ = -1;
  if (reaped_) return name_ + " " + DescribeWaitStatus(status_);
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) return name_ + " " + DescribeWaitStatus(status);
  if (keep_running) {
    return name_ + " is still running (pid " + std::to_string(pid_) + "; --keep-running)";
  }
  const std::vector<pid_t> tree = ProcessTree(pid_);
  for (pid_t p : tree) kill(p, SIGTERM);
  bool exited = false;
  for (int i = 0; i < 500 && !exited; ++i) {
    exited = waitpid(pid_, &status, WNOHANG) == pid_;
    if (!exited) usleep(10000);
  }
  // Descendants that outlived SIGTERM (or the command's exit) get SIGKILL, like the command.
  size_t killed = 0;
  for (pid_t p : tree) {
    if (p != pid_ && kill(p, 0) == 0 && kill(p, SIGKILL) == 0) ++killed;
  }
  if (!exited) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    return name_ + " was still running and ignored SIGTERM for 5 s: killed with SIGKILL";
  }
  const bool by_term = WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM;
  return name_ + " was still running: stopped with SIGTERM" +
         (tree.size() > 1 ? " with its " + std::to_string(tree.size() - 1) + " child process(es)"
                          : "") +
         (killed > 0 ? " (" + std::to_string(killed) + " needed SIGKILL)" : "") +
         (by_term ? "" : " (it " + DescribeWaitStatus(status) + ")");
}

}  // namespace fs
