// Loopback TCP helpers. Every fd is opened with CLOEXEC so service children never inherit
// sockets from their supervisor.
#ifndef FRAMESCOPE_BASE_NET_H_
#define FRAMESCOPE_BASE_NET_H_

#include <string>

#include "src/base/status.h"

namespace fs {

// Owns a file descriptor; closes it on destruction.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(ScopedFd&& o) noexcept : fd_(o.Release()) {}
  ScopedFd& operator=(ScopedFd&& o) noexcept {
    if (this != &o) Reset(o.Release());
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Listens on host:port (port 0 = kernel picks). Returns a clear error when the port is taken.
StatusOr<ScopedFd> ListenTcp(const std::string& host, int port, int backlog = 64);
// Port a listening socket is bound to.
int BoundPort(int fd);
// Connects with a timeout in milliseconds.
StatusOr<ScopedFd> ConnectTcp(const std::string& host, int port, int timeout_ms);
// True if something accepts connections on host:port.
bool PortOpen(const std::string& host, int port);
// Asks the kernel for a currently free loopback port (bind :0, read, close).
StatusOr<int> PickFreePort();
// Sets SO_RCVTIMEO/SO_SNDTIMEO.
void SetIoTimeout(int fd, int timeout_ms);
// Writes all bytes (retries on EINTR / short writes).
Status WriteAll(int fd, const void* data, size_t size);

// Splits "host:port" (also "tcp://host:port", "redis://host:port/").
Status ParseHostPort(const std::string& text, std::string* host, int* port);

}  // namespace fs

#endif  // FRAMESCOPE_BASE_NET_H_
