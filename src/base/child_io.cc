#include "src/base/child_io.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace fs {

bool WriteToFd(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

StatusOr<int> TextFile(std::string_view text) {
  const int fd = memfd_create("framescope-stdin", MFD_CLOEXEC);
  if (fd < 0) return Err(std::string("memfd_create: ") + strerror(errno));
  if (!WriteToFd(fd, text) || lseek(fd, 0, SEEK_SET) != 0) {
    const std::string why = strerror(errno);
    close(fd);
    return Err("writing a child's stdin: " + why);
  }
  return fd;
}

int CopyOutputUntilExit(pid_t pid, int out_fd, const std::function<void(std::string_view)>& sink,
                        std::optional<std::chrono::steady_clock::time_point> deadline) {
  fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
  auto drain = [&] {
    char buf[4096];
    ssize_t n;
    for (int i = 0; i < 16 && (n = read(out_fd, buf, sizeof buf)) > 0; ++i) {
      sink(std::string_view(buf, static_cast<size_t>(n)));
    }
  };
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (deadline && std::chrono::steady_clock::now() >= *deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      status = -1;
      break;
    }
    pollfd p{out_fd, POLLIN, 0};
    if (poll(&p, 1, 20) > 0) drain();
  }
  drain();
  return status;
}

}  // namespace fs
