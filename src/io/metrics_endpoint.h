// A running service that exports Prometheus metrics on a loopback port: what the Redis and
// network analysers scrape.
#ifndef FRAMESCOPE_IO_METRICS_ENDPOINT_H_
#define FRAMESCOPE_IO_METRICS_ENDPOINT_H_

#include <string>

namespace fs::io {

struct MetricsEndpoint {
  std::string name;  // the service: capture, detection, aggregation, api, apiclient, ...
  int port = 0;      // its /metrics on 127.0.0.1
};

}  // namespace fs::io

#endif  // FRAMESCOPE_IO_METRICS_ENDPOINT_H_
