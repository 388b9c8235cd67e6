// The system's run state, shared between the supervisor (writer) and the CLI (reader) as
// <state-dir>/state.json, always replaced atomically. Format:
//   {"version": 1, "supervisor_pid": 123, "phase": "starting|running|failed|stopping|stopped",
//    "error": "...", "started_at": <unix s>, "redis_url": "redis://127.0.0.1:6400",
//    "config": {...},
//    "services": [{"name": "capture", "pid": 130, "state": "running", "restarts": 0,
//                  "started_at": <unix s>, "metrics_port": 40123, "endpoints": {...},
//                  "log": ".../logs/capture.log",
//                  "heap_dir": ".../heap/capture"}],  (only while its process has the
//                                                      heap library: up --heap-profile)
//    "reload": {"id": 1, "phase": "idle|running|done|failed", "error": "", "current": "api",
//               "total_s": 1.9, "services": [{"name", "old_pid", "pid", "restart_s"}]}}
//   ("reload": the supervisor's last run-time heap_profile change, e.g. `framescope heap-off`)
#ifndef FRAMESCOPE_SYSTEM_STATE_H_
#define FRAMESCOPE_SYSTEM_STATE_H_

#include <string>

#include "src/base/json.h"
#include "src/base/status.h"
#include "src/config/config.h"

namespace fs {

struct StateDir {
  std::string root;  // absolute
  std::string StateFile() const { return root + "/state.json"; }
  std::string ConfigFile() const { return root + "/config.resolved.json"; }
  std::string LogDir() const { return root + "/logs"; }
  std::string RunDir() const { return root + "/run"; }
  std::string DataDir() const { return root + "/data"; }
  std::string CacheDir() const { return root + "/cache"; }
  std::string LogFile(const std::string& service) const {
    return LogDir() + "/" + service + ".log";
  }
  // Where the heap counters library writes for a service started with heap_profile.
  std::string HeapDir(const std::string& service) const { return root + "/heap/" + service; }
  std::string PortFile(const std::string& service) const {
    return RunDir() + "/" + service + ".json";
  }
  // Shared-memory rings live in /dev/shm, namespaced by a hash of the state dir so two
  // systems (e.g. parallel tests) never share rings.
  std::string RingPrefix() const;
  std::string RingDir() const;
};

// The state dir at `path` as an absolute path, symlinks resolved. Creates nothing, so a
// command that only looks (status, down, logs, record, profile) or that fails before starting
// anything leaves no empty tree behind; an error if `path` exists but is not a directory.
StatusOr<StateDir> ResolveStateDir(const std::string& path);
// Creates the dir and its logs/, run/, data/ and cache/: only `up` does, once its checks
// have passed.
Status CreateStateDirs(const StateDir& dir);

Json ConfigToJson(const SystemConfig& c);
StatusOr<SystemConfig> ConfigFromJson(const Json& j);

// Deletes this system's shared-memory ring files.
void RemoveRings(const StateDir& dir);

// Reads state.json; NotFound-style error if absent.
StatusOr<Json> ReadState(const StateDir& dir);
// True if state.json names a supervisor that is still alive.
bool SupervisorRunning(const Json& state);

}  // namespace fs

#endif  // FRAMESCOPE_SYSTEM_STATE_H_
