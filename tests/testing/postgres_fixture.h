// A private PostgreSQL 15 for a test: a fresh cluster in a temp dir (src/system's
// PostgresCluster, non-durable for speed), loopback, a free port, stopped and deleted by
// the destructor. Start() returns false with skip_reason() where the server cannot run
// (no postgresql-15 binaries), so tests skip rather than fail on such machines.
#ifndef FRAMESCOPE_TESTS_TESTING_POSTGRES_FIXTURE_H_
#define FRAMESCOPE_TESTS_TESTING_POSTGRES_FIXTURE_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/system/postgres_cluster.h"

namespace fs::testing {

class PostgresFixture {
 public:
  PostgresFixture() = default;
  ~PostgresFixture();
  PostgresFixture(const PostgresFixture&) = delete;
  PostgresFixture& operator=(const PostgresFixture&) = delete;

  // Creates and starts the cluster with database `framescope`. False: see skip_reason().
  bool Start();
  const std::string& skip_reason() const { return skip_reason_; }

  // postgresql:// URL of database `framescope` (with the generated password).
  std::string url() const { return url_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  std::string log_path() const { return dir_ + "/postgres.log"; }

  // Stops the server (fast shutdown, or `kill_hard`: SIGKILL) keeping the data.
  void Stop(bool kill_hard = false);
  // Starts it again on the same port and waits until it accepts connections.
  Status Restart();
  // Suspends / resumes the server processes (SIGSTOP/SIGCONT): a hung database.
  void Freeze();
  void Thaw();

 private:
  Status Launch();

  std::string dir_;
  std::unique_ptr<PostgresCluster> cluster_;
  std::string skip_reason_;
  std::string url_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::vector<pid_t> frozen_;
};

}  // namespace fs::testing

#endif  // FRAMESCOPE_TESTS_TESTING_POSTGRES_FIXTURE_H_
