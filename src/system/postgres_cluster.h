// A private PostgreSQL 15 cluster in a directory, as `framescope up` and the tests run it:
//
//   <dir>/pgdata     the cluster (initdb on first use; owned by `postgres` when we are root,
//                    because the server refuses to run as root)
//   <dir>/password   the superuser's generated password (0600, owned by the caller)
//
// The server listens on 127.0.0.1 only (no unix socket), authenticates with
// scram-sha-256, preloads pg_stat_statements and turns on track_io_timing (what the
// profiler's PostgreSQL analysis reads). When the `postgres` user cannot reach <dir> (a
// state dir under a 0700 home), the cluster lives in /var/lib/framescope/pg-<hash> and
// <dir>/pgdata is a symlink to it, so the data still belongs to the state dir and
// `down --purge` removes both.
#ifndef FRAMESCOPE_SYSTEM_POSTGRES_CLUSTER_H_
#define FRAMESCOPE_SYSTEM_POSTGRES_CLUSTER_H_

#include <optional>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/system/process.h"

namespace fs {

inline constexpr const char* kPostgresBinDir = "/usr/lib/postgresql/15/bin";
inline constexpr const char* kPostgresSuperuser = "framescope";

class PostgresCluster {
 public:
  // `dir`: absolute path of the cluster root (created if missing).
  explicit PostgresCluster(std::string dir);

  // Why the cluster cannot run here ("" if it can): binaries missing, no `postgres` user
  // while we are root.
  static std::string Unavailable();

  // Creates the cluster if <dir>/pgdata has none yet (initdb, password, ownership).
  // Idempotent. `log_path` receives initdb's output.
  Status Init(const std::string& log_path);

  // The server's command line. `durable` = false turns off fsync and synchronous commit
  // (tests: a crash may lose the cluster, which a test dir does not mind).
  std::vector<std::string> ServerArgv(int port, bool durable) const;
  // The user to run the server as (nullptr: ourselves).
  const RunAs* run_as() const { return run_as_ ? &*run_as_ : nullptr; }

  // postgresql://framescope:<password>@127.0.0.1:<port>/<database>; without the password
  // when !with_password (for command lines, which every local user can read: the password
  // then travels in PGPASSWORD, see Password()).
  StatusOr<std::string> Url(int port, const std::string& database, bool with_password = true) const;
  StatusOr<std::string> Password() const;

  // Waits until the server on `port` accepts connections (up to timeout_ms, giving up early
  // if `server_pid` dies), then creates `database` and the pg_stat_statements extension in
  // it if missing.
  Status WaitReady(int port, pid_t server_pid, const std::string& database, int timeout_ms) const;

  const std::string& dir() const { return dir_; }
  std::string DataDir() const { return dir_ + "/pgdata"; }
  std::string PasswordFile() const { return dir_ + "/password"; }

  // Removes the cluster: <dir> and, if pgdata is a symlink, what it points to.
  static Status Purge(const std::string& dir);

 private:
  std::string dir_;
  std::optional<RunAs> run_as_;
};

}  // namespace fs

#endif  // FRAMESCOPE_SYSTEM_POSTGRES_CLUSTER_H_
