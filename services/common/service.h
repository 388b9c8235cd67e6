// What every reference service shares at run time: SIGTERM/SIGINT handling, the loopback
// HTTP endpoint serving /metrics (Prometheus text) and /health (JSON), and the "port file"
// through which a service tells its supervisor where it listens.
//
// Port file (<run-dir>/<service>.json, written atomically):
//   {"service": "capture", "pid": 123, "metrics_port": 40123, "endpoints": {...}}
#ifndef FRAMESCOPE_SERVICES_COMMON_SERVICE_H_
#define FRAMESCOPE_SERVICES_COMMON_SERVICE_H_

#include <functional>
#include <string>

#include "src/base/flags.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/base/status.h"

namespace fs {

struct HealthReport {
  bool healthy = false;
  Json detail;  // service-specific, e.g. per-camera state and last error
};

class ServiceRuntime {
 public:
  explicit ServiceRuntime(std::string name);

  // Registers --metrics-host, --metrics-port, --port-file.
  void AddFlags(FlagSet* flags);
  // Installs signal handlers, serves /metrics and /health, writes the port file.
  Status Start(std::function<HealthReport()> health);
  // Adds an endpoint to the port file (e.g. "rtsp": "rtsp://127.0.0.1:8554"); rewrites it.
  void SetEndpoint(const std::string& key, const std::string& value);

  HttpServer& http() { return http_; }
  const std::string& name() const { return name_; }
  int metrics_port() const { return http_.port(); }

  static bool StopRequested();
  static void RequestStop();
  // Sleeps up to `ms`, returning early (true) when a stop was requested.
  static bool SleepOrStop(int ms);

 private:
  Status WritePortFile();

  std::string name_;
  std::string metrics_host_ = "127.0.0.1";
  int metrics_port_ = 0;
  std::string port_file_;
  Json endpoints_ = Json::MakeObject();
  HttpServer http_;
};

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_COMMON_SERVICE_H_
