#include "src/base/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fs {

void ScopedFd::Reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

namespace {
Status ResolveV4(const std::string& host, in_addr* out) {
  std::string h = host == "localhost" || host.empty() ? "127.0.0.1" : host;
  if (inet_pton(AF_INET, h.c_str(), out) == 1) return Status::Ok();
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  if (getaddrinfo(h.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
    return Err("cannot resolve host \"" + host + "\"");
  }
  *out = reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr;
  freeaddrinfo(res);
  return Status::Ok();
}
}  // namespace

StatusOr<ScopedFd> ListenTcp(const std::string& host, int port, int backlog) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  RETURN_IF_ERROR(ResolveV4(host, &addr.sin_addr));
  ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Err(std::string("socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    if (e == EADDRINUSE) {
      return Err("port " + std::to_string(port) + " on " + host +
                 " is already in use (pick another port or stop what holds it)");
    }
    return Err("cannot bind " + host + ":" + std::to_string(port) + ": " + strerror(e));
  }
  if (listen(fd.get(), backlog) != 0) return Err(std::string("listen: ") + strerror(errno));
  return fd;
}

int BoundPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return ntohs(addr.sin_port);
}

StatusOr<ScopedFd> ConnectTcp(const std::string& host, int port, int timeout_ms) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  RETURN_IF_ERROR(ResolveV4(host, &addr.sin_addr));
  ScopedFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Err(std::string("socket: ") + strerror(errno));
  std::string where = host + ":" + std::to_string(port);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) return Err("cannot connect to " + where + ": " + strerror(errno));
    pollfd p{fd.get(), POLLOUT, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r == 0) return Err("timed out connecting to " + where);
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (r < 0 || err != 0)
      return Err("cannot connect to " + where + ": " + strerror(err ? err : errno));
  }
  int flags = fcntl(fd.get(), F_GETFL);
  fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool PortOpen(const std::string& host, int port) { return ConnectTcp(host, port, 200).ok(); }

StatusOr<int> PickFreePort() {
  ASSIGN_OR_RETURN(ScopedFd fd, ListenTcp("127.0.0.1", 0));
  return BoundPort(fd.get());
}

void SetIoTimeout(int fd, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

Status WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(std::string("write failed: ") + strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status ParseHostPort(const std::string& text, std::string* host, int* port) {
  std::string t = text, scheme;
  if (auto at = t.find("://"); at != std::string::npos) {
    scheme = t.substr(0, at + 3);
    t = t.substr(at + 3);
  }
  // Errors quote the text without its user and password.
  std::string shown = text;
  if (auto at = t.rfind('@'); at != std::string::npos) {
    t = t.substr(at + 1);
    shown = scheme + "***@" + t;
  }
  if (auto slash = t.find('/'); slash != std::string::npos) t = t.substr(0, slash);
  auto colon = t.rfind(':');
  if (colon == std::string::npos || colon == 0) return Err("\"" + shown + "\": expected host:port");
  char* end = nullptr;
  long p = strtol(t.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p <= 0 || p > 65535) return Err("\"" + shown + "\": bad port");
  *host = t.substr(0, colon);
  *port = static_cast<int>(p);
  return Status::Ok();
}

}  // namespace fs
