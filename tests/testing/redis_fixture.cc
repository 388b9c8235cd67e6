#include "tests/testing/redis_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "src/base/net.h"

namespace fs::testing {

RedisFixture::~RedisFixture() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

bool RedisFixture::Start() {
  if (access("/usr/bin/redis-server", X_OK) != 0) return false;
  char tmpl[] = "/tmp/fs-redis-test-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return false;
  dir_ = tmpl;
  auto port = PickFreePort();
  if (!port.ok()) return false;
  port_ = *port;
  return Launch();
}

bool RedisFixture::RestartEmpty() {
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return Launch();
}

bool RedisFixture::Launch() {
  pid_ = fork();
  if (pid_ == 0) {
    std::string port = std::to_string(port_);
    int fd = open((dir_ + "/redis.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl("/usr/bin/redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
          "--dir", dir_.c_str(), "--save", "", "--appendonly", "no", "--daemonize", "no",
          "--loglevel", "warning", static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 100; ++i) {
    if (PortOpen("127.0.0.1", port_)) return true;
    usleep(50000);
  }
  return false;
}

}  // namespace fs::testing
