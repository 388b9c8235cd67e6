// What `up` and `status` print: a live view of each service built from state.json plus
// each service's /health and /metrics.
#ifndef FRAMESCOPE_CLI_STATUS_VIEW_H_
#define FRAMESCOPE_CLI_STATUS_VIEW_H_

#include <string>

#include "src/base/json.h"

namespace fs {

// Returns {"phase":..., "services":[{name,pid,state,uptime_s,restarts,healthy,
// frames_in,frames_out,frames_dropped,fps,endpoints,log}]} (metrics fields only where the
// service exports them).
Json CollectStatus(const Json& state);
std::string RenderStatusTable(const Json& status);

}  // namespace fs

#endif  // FRAMESCOPE_CLI_STATUS_VIEW_H_
