// The supervisor: a background process (`framescope _supervise`) that owns the reference
// system. It starts services in dependency order (redis → loadgen → capture → detection),
// waits for each to report healthy, then watches them: a service that exits is restarted
// with exponential backoff and its restart counted. On SIGTERM it stops everything in
// reverse order (SIGTERM, then SIGKILL after a timeout) and sweeps its process group so no
// process of ours is left behind. Everything it knows is published in state.json.
// On SIGUSR1 it re-reads config.resolved.json and applies a changed heap_profile (the only
// setting that may change while it runs): `framescope heap-off` takes the preload library out
// this way, one service at a time, and reads the progress from state.json's "reload".
#ifndef FRAMESCOPE_SYSTEM_SUPERVISOR_H_
#define FRAMESCOPE_SYSTEM_SUPERVISOR_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"
#include "src/config/config.h"
#include "src/system/postgres_cluster.h"
#include "src/system/state.h"

namespace fs {

class Supervisor {
 public:
  Supervisor(SystemConfig config, StateDir dir, std::string bin_dir, int stop_timeout_ms);
  // Runs until SIGTERM/SIGINT (exit 0) or a failed start (exit 1).
  int Run();

  // The services this config starts, in start order (exposed for tests and `status`).
  static std::vector<std::string> ServiceNames(const SystemConfig& config);

  // The client half of the SIGUSR1 protocol: rewrites `dir`'s resolved config with
  // `heap_profile` (every other setting kept) and signals the supervisor that state.json names.
  // Returns the reload id whose outcome state.json's "reload" will report: the current id + 1
  // (signals that arrive while one is pending make one reload, so the id is a lower bound).
  // An error if the supervisor does not run, or predates the protocol (no "reload" in state).
  static StatusOr<int64_t> RequestHeapProfile(const StateDir& dir,
                                              const std::vector<std::string>& heap_profile);

 private:
  struct Service {
    std::string name;
    pid_t pid = -1;
    std::string state = "pending";  // pending|starting|running|restarting|failed|stopped
    int restarts = 0;
    int consecutive_failures = 0;
    int64_t started_at_ns = 0;   // wall clock
    int64_t restart_at_ns = 0;   // monotonic; when to restart
    int metrics_port = 0;        // pinned after the first start
    bool heap_profiled = false;  // its current process was started with the preload library
    Json endpoints = Json::MakeObject();
  };

  StatusOr<std::vector<std::string>> BuildArgv(const Service& s) const;
  std::vector<std::string> CameraNames() const;
  Status Start(Service* s, int timeout_ms);
  Status WaitHealthy(Service* s, int timeout_ms);
  Status CheckHealth(Service* s, std::string* detail) const;
  // Writes <run-dir>/prometheus.yml: every service with a /metrics endpoint, every 5 s.
  StatusOr<std::string> WritePrometheusConfig() const;
  void ReapAndRestart();
  // Puts a service whose start failed back on the restart schedule, with backoff.
  void ScheduleRestart(Service* s);
  // SIGUSR1: applies config.resolved.json's heap_profile; see the top of this file.
  void ApplyHeapProfileChange();
  Status RestartWithNewSettings(Service* s);
  void StopAll();
  void WriteState();
  std::string LogTail(const std::string& service, int lines) const;

  SystemConfig config_;
  StateDir dir_;
  std::string bin_dir_;
  int stop_timeout_ms_;
  std::vector<Service> services_;
  std::string phase_ = "starting";
  std::string error_;
  std::string redis_url_;
  std::string postgres_url_;       // for services' command lines (private cluster: no password)
  std::string postgres_url_full_;  // with the password, for state.json (0600)
  std::string postgres_password_;  // given to PostgreSQL clients in PGPASSWORD only
  std::unique_ptr<PostgresCluster> cluster_;
  int rtsp_port_ = 0;
  int api_port_ = 0;
  int64_t started_at_ns_ = 0;
  // What the last SIGUSR1 did, published in state.json as "reload":
  // {"id", "phase": idle|running|done|failed, "error", "current", "total_s",
  //  "services": [{"name", "old_pid", "pid", "restart_s"}]}.
  Json reload_;
};

}  // namespace fs

#endif  // FRAMESCOPE_SYSTEM_SUPERVISOR_H_
