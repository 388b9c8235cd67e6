// Where the I/O analysers (framescope db, redis, net and profile's I/O sections) find the running
// system's PostgreSQL, Redis, Prometheus and the services' /metrics: read from state.json, or
// given on the command line for a server outside the system.
#ifndef FRAMESCOPE_SESSION_IO_TARGETS_H_
#define FRAMESCOPE_SESSION_IO_TARGETS_H_

#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/io/metrics_endpoint.h"

namespace fs {

struct IoTargets {
  // libpq conninfo with the password (state.json is 0600): never print it, print postgres_label.
  std::string postgres_url;
  std::string postgres_label;      // the URL without its password, and whose it is
  bool postgres_external = false;  // a --postgres-url the system was given (or the flag's)
  std::string redis_url;
  int prometheus_port = 0;  // 0: Prometheus is not running
  // Every running service with a metrics port, except redis, postgres and prometheus.
  std::vector<io::MetricsEndpoint> services;
};

// The targets of the system running in `state_dir`; an error when none runs there.
StatusOr<IoTargets> ResolveIoTargets(const std::string& state_dir);

}  // namespace fs

#endif  // FRAMESCOPE_SESSION_IO_TARGETS_H_
