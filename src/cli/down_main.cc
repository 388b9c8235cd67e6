// framescope down: asks the supervisor to stop every service (SIGTERM, then SIGKILL after a
// timeout), then verifies that no process of ours is left.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/cli/cli.h"
#include "src/system/postgres_cluster.h"
#include "src/system/process.h"
#include "src/system/state.h"

namespace fs {
namespace {
int StopSystem(const std::string& state_dir, int timeout_s);
}  // namespace

int DownMain(int argc, char** argv) {
  std::string state_dir = kDefaultStateDir;
  int timeout_s = 15;
  bool purge = false;
  FlagSet flags("framescope down",
                "Stops the system started by `framescope up`: SIGTERM to every service, SIGKILL\n"
                "after the timeout; no process of ours is left behind. Data (Redis AOF, the\n"
                "PostgreSQL cluster, Prometheus TSDB) stays for the next `up` unless --purge.");
  flags.String("state-dir", &state_dir, "the state dir given to `up`");
  flags.Int("timeout", &timeout_s, "seconds before SIGKILL");
  flags.Bool("purge", &purge, "also delete <state-dir>/data: the stream, the database, metrics");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (!PathExists(state_dir)) {
    printf("framescope is not running (no state dir %s)\n", state_dir.c_str());
    return 0;
  }
  int rc = StopSystem(state_dir, timeout_s);
  if (rc != 0 || !purge) return rc;
  auto dir = ResolveStateDir(state_dir);
  if (!dir.ok()) return 1;
  Status st = PostgresCluster::Purge(dir->DataDir() + "/postgres");
  std::error_code ec;
  std::filesystem::remove_all(dir->DataDir(), ec);
  if (!st.ok() || ec) {
    fprintf(stderr, "framescope down: purging %s: %s\n", dir->DataDir().c_str(),
            st.ok() ? ec.message().c_str() : st.message().c_str());
    return 1;
  }
  printf("purged %s\n", dir->DataDir().c_str());
  return 0;
}

namespace {

int StopSystem(const std::string& state_dir, int timeout_s) {
  auto dir = ResolveStateDir(state_dir);
  if (!dir.ok()) {
    fprintf(stderr, "framescope down: %s\n", dir.status().message().c_str());
    return 1;
  }
  auto state = ReadState(*dir);
  if (!state.ok()) {
    printf("framescope is not running (no state in %s)\n", dir->root.c_str());
    return 0;
  }
  pid_t supervisor = static_cast<pid_t>(state->Get("supervisor_pid").AsInt(0));
  // Ours = in the supervisor's process group (setsid made it the leader) AND naming the state
  // dir on its command line, as every service does (--port-file, --dir, ...). Both together:
  // a stale state.json whose pid was reused cannot make `down` kill an unrelated group, and
  // a user's shell that merely mentions the state dir is not in the group.
  // The postmaster names its data dir, which may be a fallback outside the state dir.
  std::string pgdata = dir->DataDir() + "/postgres/pgdata";
  std::error_code ec;
  if (std::filesystem::is_symlink(pgdata, ec)) pgdata = std::filesystem::read_symlink(pgdata, ec);
  auto ours = [&dir, &pgdata, supervisor](pid_t p) {
    if (supervisor <= 1 || getpgid(p) != supervisor) return false;
    std::string cmdline = ProcessCmdline(p);
    return cmdline.find(dir->root) != std::string::npos ||
           cmdline.find(" -D " + pgdata + " ") != std::string::npos;
  };
  std::vector<pid_t> pids;
  pid_t postmaster = -1;
  for (const auto& s : state->Get("services").AsArray()) {
    pid_t p = static_cast<pid_t>(s.Get("pid").AsInt(-1));
    if (p > 0) pids.push_back(p);
    if (s.Get("name").AsString() == "postgres") postmaster = p;
  }
  bool was_running = SupervisorRunning(*state);
  if (was_running) {
    printf("stopping framescope (supervisor pid %d) ...\n", supervisor);
    fflush(stdout);
    kill(supervisor, SIGTERM);
    // The supervisor stops services one by one, each within the timeout.
    int64_t deadline =
        MonotonicNs() + int64_t{timeout_s} * (static_cast<int64_t>(pids.size()) + 1) * 1000000000;
    while (ProcessAlive(supervisor) && MonotonicNs() < deadline) usleep(50000);
    if (ProcessAlive(supervisor)) {
      fprintf(stderr, "supervisor did not stop in time; killing it\n");
      for (pid_t p : FindProcesses(ours)) kill(p, SIGKILL);
      kill(supervisor, SIGKILL);
    }
  }
  // Whatever the supervisor did, make sure every recorded pid is gone.
  int leftovers = 0;
  for (pid_t p : pids) {
    if (ProcessAlive(p) && ours(p)) {  // ours, not a reused pid
      ++leftovers;
      // PostgreSQL: SIGINT is the fast shutdown; SIGTERM would wait for its clients.
      TerminateProcess(p, timeout_s * 1000, p == postmaster ? SIGINT : SIGTERM);
    }
  }
  for (pid_t p : FindProcesses(ours)) {
    ++leftovers;
    kill(p, SIGKILL);
  }
  // The supervisor removes the rings when it stops cleanly; sweep them in case it did not.
  RemoveRings(*dir);
  if (!was_running && leftovers == 0) {
    printf("framescope is not running\n");
    return 0;
  }
  if (leftovers > 0) printf("killed %d leftover process(es)\n", leftovers);
  printf("framescope is down\n");
  return 0;
}

}  // namespace
}  // namespace fs
