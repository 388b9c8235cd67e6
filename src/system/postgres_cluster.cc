#include "src/system/postgres_cluster.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/logging.h"
#include "src/clients/pg_client.h"
#include "src/system/process.h"

namespace fs {
namespace {

std::string Bin(const char* name) { return std::string(kPostgresBinDir) + "/" + name; }

// 24 random bytes as hex: the superuser password.
StatusOr<std::string> RandomPassword() {
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Err(std::string("open /dev/urandom: ") + strerror(errno));
  unsigned char raw[24];
  ssize_t n = read(fd, raw, sizeof(raw));
  close(fd);
  if (n != static_cast<ssize_t>(sizeof(raw))) return Err("short read from /dev/urandom");
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// True if `user` may search (x) every directory from / down to `path`.
bool Traversable(const std::string& path, const RunAs& user) {
  std::filesystem::path p(path);
  std::filesystem::path cur;
  for (const auto& part : p) {
    cur /= part;
    struct stat st {};
    if (stat(cur.c_str(), &st) != 0) return false;
    if (!S_ISDIR(st.st_mode)) continue;
    bool ok = st.st_uid == user.uid   ? (st.st_mode & S_IXUSR)
              : st.st_gid == user.gid ? (st.st_mode & S_IXGRP)
                                      : (st.st_mode & S_IXOTH);
    if (!ok) return false;
  }
  return true;
}

Status Chown(const std::string& path, const RunAs& user) {
  if (lchown(path.c_str(), user.uid, user.gid) != 0) {
    return Err("chown " + path + ": " + strerror(errno));
  }
  return Status::Ok();
}

constexpr const char* kFallbackRoot = "/var/lib/framescope";

// Where the cluster of `dir` lives when the `postgres` user cannot reach `dir`.
std::string FallbackDir(const std::string& dir) {
  return std::string(kFallbackRoot) + "/pg-" +
         std::to_string(std::hash<std::string>()(dir) & 0xffffffffffULL);
}

// Root works in the cluster dir and its two parents (data/, the state dir): none of them may
// be writable by anyone else, or a planted symlink could redirect a chown or a delete.
// (Symlinks above the state dir are the user's business.)
Status CheckOwnedByUs(const std::string& dir) {
  std::filesystem::path p(dir);
  for (int i = 0; i < 3 && !p.empty() && p != p.root_path(); ++i, p = p.parent_path()) {
    struct stat st {};
    if (lstat(p.c_str(), &st) != 0) return Err("stat " + p.string() + ": " + strerror(errno));
    // A sticky world-writable dir (/tmp) is fine: others cannot replace our entries in it.
    bool sticky_shared = (st.st_mode & S_ISVTX) != 0;
    if (S_ISLNK(st.st_mode) || (!sticky_shared && (st.st_uid != geteuid() || (st.st_mode & 022)))) {
      return Err(p.string() +
                 " must be a directory owned by the user running framescope and not writable "
                 "by group or others (chmod go-w it, or choose another --state-dir)");
    }
  }
  return Status::Ok();
}

bool ValidIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return !(s[0] >= '0' && s[0] <= '9');
}

}  // namespace

PostgresCluster::PostgresCluster(std::string dir) : dir_(std::move(dir)) {
  if (geteuid() == 0) {
    auto user = LookupUser("postgres");
    if (user.ok()) run_as_ = *user;
  }
}

std::string PostgresCluster::Unavailable() {
  for (const char* b : {"initdb", "postgres"}) {
    if (access(Bin(b).c_str(), X_OK) != 0) {
      return Bin(b) + " not found (install postgresql-15: scripts/install-deps.sh)";
    }
  }
  if (geteuid() == 0 && !LookupUser("postgres").ok()) {
    return "running as root and there is no `postgres` user to run the server as";
  }
  return "";
}

Status PostgresCluster::Init(const std::string& log_path) {
  if (std::string why = Unavailable(); !why.empty()) return Err(why);
  RETURN_IF_ERROR(MakeDirs(dir_));
  if (run_as_) RETURN_IF_ERROR(CheckOwnedByUs(dir_));
  struct stat st {};
  std::string password_file = PasswordFile();
  if (stat(password_file.c_str(), &st) == 0) return Status::Ok();  // written last: complete
  if (errno != ENOENT) {
    return Err("cannot read " + password_file + ": " + strerror(errno) +
               " (run framescope as the user that created this state dir)");
  }
  // No password file: no cluster, or initdb was interrupted. Start over (only pgdata).
  std::error_code ec;
  std::string data = DataDir();
  const std::string fallback = FallbackDir(dir_);
  if (std::filesystem::is_symlink(data, ec)) {
    // Only ever follow the link we create ourselves.
    if (std::filesystem::read_symlink(data, ec) == fallback) {
      std::filesystem::remove_all(fallback, ec);
    }
    std::filesystem::remove(data, ec);
  } else {
    std::filesystem::remove_all(data, ec);
  }
  if (ec) return Err("removing the incomplete cluster " + data + ": " + ec.message());
  std::string pwfile = dir_ + "/initdb-password";  // read by initdb, so reachable by it
  if (run_as_) {
    // The cluster root must be searchable by the server's user; it holds nothing secret
    // except the password file, which stays 0600 and ours.
    if (chmod(dir_.c_str(), 0711) != 0) return Err("chmod " + dir_ + ": " + strerror(errno));
    if (!Traversable(dir_, *run_as_)) {
      std::filesystem::remove_all(fallback, ec);  // a stale cluster of an earlier state dir
      RETURN_IF_ERROR(MakeDirs(kFallbackRoot));
      if (chmod(kFallbackRoot, 0711) != 0) {
        return Err(std::string("chmod ") + kFallbackRoot + ": " + strerror(errno));
      }
      if (mkdir(fallback.c_str(), 0700) != 0) {
        return Err("mkdir " + fallback + ": " + strerror(errno));
      }
      std::filesystem::create_symlink(fallback, data, ec);
      if (ec) return Err("symlink " + data + " -> " + fallback + ": " + ec.message());
      data = fallback;
      pwfile = fallback + ".initdb-password";
    }
  }
  if (!PathExists(data) && mkdir(data.c_str(), 0700) != 0) {
    return Err("mkdir " + data + ": " + strerror(errno));
  }
  if (run_as_) RETURN_IF_ERROR(Chown(data, *run_as_));

  ASSIGN_OR_RETURN(std::string password, RandomPassword());
  RETURN_IF_ERROR(WriteFileAtomic(pwfile, password + "\n", 0600));
  if (run_as_) RETURN_IF_ERROR(Chown(pwfile, *run_as_));
  Status done =
      RunToCompletion({Bin("initdb"), "-D", data, "-U", kPostgresSuperuser, "--pwfile=" + pwfile,
                       "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions"},
                      log_path, 120000, run_as());
  unlink(pwfile.c_str());
  if (!done.ok()) return done.Annotate("initdb");
  // Written last: its presence marks a complete cluster.
  return WriteFileAtomic(password_file, password + "\n", 0600);
}

std::vector<std::string> PostgresCluster::ServerArgv(int port, bool durable) const {
  // The server gets the real path: the symlink's own directory may be out of its reach.
  std::error_code ec;
  std::string data = DataDir();
  if (std::filesystem::is_symlink(data, ec)) data = std::filesystem::read_symlink(data, ec);
  std::vector<std::string> argv = {Bin("postgres"),
                                   "-D",
                                   data,
                                   "-p",
                                   std::to_string(port),
                                   "-c",
                                   "listen_addresses=127.0.0.1",
                                   "-c",
                                   "unix_socket_directories=",
                                   "-c",
                                   "shared_preload_libraries=pg_stat_statements",
                                   "-c",
                                   "track_io_timing=on",
                                   "-c",
                                   "pg_stat_statements.track=all"};
  if (!durable) {
    for (const char* c : {"fsync=off", "synchronous_commit=off", "full_page_writes=off"}) {
      argv.push_back("-c");
      argv.push_back(c);
    }
  }
  return argv;
}

StatusOr<std::string> PostgresCluster::Password() const {
  ASSIGN_OR_RETURN(std::string password, ReadFile(PasswordFile()));
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
    password.pop_back();
  }
  if (password.empty()) return Err("empty password file " + PasswordFile());
  return password;
}

StatusOr<std::string> PostgresCluster::Url(int port, const std::string& database,
                                           bool with_password) const {
  std::string auth = kPostgresSuperuser;
  if (with_password) {
    ASSIGN_OR_RETURN(std::string password, Password());
    auth += ":" + password;
  }
  return "postgresql://" + auth + "@127.0.0.1:" + std::to_string(port) + "/" + database;
}

Status PostgresCluster::WaitReady(int port, pid_t server_pid, const std::string& database,
                                  int timeout_ms) const {
  if (!ValidIdentifier(database)) {
    return Err("database name '" + database + "' must match [a-z_][a-z0-9_]{0,62}");
  }
  ASSIGN_OR_RETURN(std::string admin_url, Url(port, "postgres"));
  int64_t deadline = MonotonicNs() + static_cast<int64_t>(timeout_ms) * 1000000;
  std::string last_error;
  std::unique_ptr<PgClient> admin;
  while (true) {
    if (server_pid > 0 && !ProcessAlive(server_pid)) {
      return Err("postgres exited during startup" +
                 (last_error.empty() ? "" : " (last connect error: " + last_error + ")"));
    }
    auto c = PgClient::Connect(admin_url, "supervisor", 2, 10000);
    if (c.ok()) {
      admin = std::move(*c);
      break;
    }
    last_error = c.status().message();
    if (MonotonicNs() > deadline) {
      return Err("postgres on port " + std::to_string(port) + " not ready after " +
                 std::to_string(timeout_ms / 1000) + " s: " + last_error);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSIGN_OR_RETURN(PgResult exists,
                   admin->ExecParams("SELECT 1 FROM pg_database WHERE datname = $1", {database}));
  if (exists.rows.empty()) {
    auto created = admin->Exec("CREATE DATABASE " + database);  // validated identifier
    // Two starters racing: the loser sees duplicate_database (42P04), which is fine.
    if (!created.ok() && admin->last_sqlstate() != "42P04") {
      return created.status().Annotate("creating database " + database);
    }
  }
  ASSIGN_OR_RETURN(std::string url, Url(port, database));
  ASSIGN_OR_RETURN(auto db, PgClient::Connect(url, "supervisor", 2, 10000));
  auto ext = db->Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  if (!ext.ok() && db->last_sqlstate() != "23505" && db->last_sqlstate() != "42710") {
    return ext.status().Annotate("creating extension pg_stat_statements");
  }
  // HypoPG (hypothetical indexes) lets `framescope db` advise indexes without building them.
  // Optional: a server without the package still runs, and `db` says how to add it.
  auto hypo = db->Exec("CREATE EXTENSION IF NOT EXISTS hypopg");
  if (!hypo.ok() && db->last_sqlstate() != "23505" && db->last_sqlstate() != "42710") {
    LOG(WARNING) << "HypoPG not available (" << hypo.status().message()
                 << "): framescope db gives no index advice";
  }
  return Status::Ok();
}

Status PostgresCluster::Purge(const std::string& dir) {
  std::error_code ec;
  std::string data = dir + "/pgdata";
  // Only the fallback this very dir maps to is followed: a link planted anywhere else is
  // removed as a link, never followed.
  if (std::filesystem::is_symlink(data, ec) &&
      std::filesystem::read_symlink(data, ec) == FallbackDir(dir)) {
    std::filesystem::remove_all(FallbackDir(dir), ec);
    if (ec) return Err("removing " + FallbackDir(dir) + ": " + ec.message());
  }
  std::filesystem::remove_all(dir, ec);
  if (ec) {
    return Err("removing " + dir + ": " + ec.message() +
               " (run as the user that ran `framescope up`)");
  }
  return Status::Ok();
}

}  // namespace fs
