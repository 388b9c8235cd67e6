// A private redis-server for a test: a temp dir, loopback, a free port, no persistence;
// killed and deleted by the destructor.
#ifndef FRAMESCOPE_TESTS_TESTING_REDIS_FIXTURE_H_
#define FRAMESCOPE_TESTS_TESTING_REDIS_FIXTURE_H_

#include <sys/types.h>

#include <string>

namespace fs::testing {

class RedisFixture {
 public:
  RedisFixture() = default;
  ~RedisFixture();
  RedisFixture(const RedisFixture&) = delete;
  RedisFixture& operator=(const RedisFixture&) = delete;

  // False if /usr/bin/redis-server is missing or does not come up within 5 s.
  bool Start();
  // Kills the server and starts an empty one on the same port: Redis losing its data.
  bool RestartEmpty();
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  bool Launch();

  pid_t pid_ = -1;
  int port_ = 0;
  std::string dir_;
};

}  // namespace fs::testing

#endif  // FRAMESCOPE_TESTS_TESTING_REDIS_FIXTURE_H_
