// Child-process primitives for the supervisor: spawn with the log redirected, liveness,
// and "stop this pid: SIGTERM, then SIGKILL after a timeout".
#ifndef FRAMESCOPE_SYSTEM_PROCESS_H_
#define FRAMESCOPE_SYSTEM_PROCESS_H_

#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs {

// Forks and execs argv[0] (an absolute path) with stdin from /dev/null and stdout+stderr
// appended to `log_path`. The child gets PR_SET_PDEATHSIG(SIGTERM) so it cannot outlive a
// supervisor that was SIGKILLed. Must be called from the main thread: the death signal
// fires when the *thread* that forked exits.
// `run_as`, when set, drops to that user (uid, gid, no supplementary groups) before exec:
// how root starts PostgreSQL, which refuses to run as root.
struct RunAs {
  uid_t uid;
  gid_t gid;
};
// `extra_env` ("KEY=value") is added to (or replaces in) this process's environment for the
// child only: how a secret reaches one child without a command line or the whole tree.
// `own_group`: the child leads a new process group (so its whole tree can be killed).
StatusOr<pid_t> SpawnProcess(const std::vector<std::string>& argv, const std::string& log_path,
                             const RunAs* run_as = nullptr,
                             const std::vector<std::string>& extra_env = {},
                             bool own_group = false);

// Spawns argv (as SpawnProcess does) and waits for it up to timeout_ms (then kills it and
// everything it started: it runs in its own process group).
// Ok only on exit status 0; the error names the command, the status and `log_path`.
Status RunToCompletion(const std::vector<std::string>& argv, const std::string& log_path,
                       int timeout_ms, const RunAs* run_as = nullptr);

// The uid/gid of a local user, or an error if there is none.
StatusOr<RunAs> LookupUser(const std::string& name);

// True if `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid);

// /proc/<pid>/cmdline joined by spaces ("" if gone).
std::string ProcessCmdline(pid_t pid);

// Sends `signal` (PostgreSQL wants SIGINT for its fast shutdown), waits up to timeout_ms for the
// process to disappear, then SIGKILLs. Reaps it if it is our child. Returns true if it had to be
// killed.
bool TerminateProcess(pid_t pid, int timeout_ms, int signal = SIGTERM);

// Pids of every live process (not the caller) for which `match` returns true.
std::vector<pid_t> FindProcesses(const std::function<bool(pid_t)>& match);

// Pids of every process in process group `pgid` except the caller.
std::vector<pid_t> ProcessGroupMembers(pid_t pgid);

// Seconds since the process started (from /proc/<pid>/stat), or -1.
double ProcessUptimeSeconds(pid_t pid);

}  // namespace fs

#endif  // FRAMESCOPE_SYSTEM_PROCESS_H_
