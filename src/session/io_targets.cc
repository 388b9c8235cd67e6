#include "src/session/io_targets.h"

#include "src/config/config.h"
#include "src/system/state.h"

namespace fs {

StatusOr<IoTargets> ResolveIoTargets(const std::string& state_dir) {
  ASSIGN_OR_RETURN(StateDir dir, ResolveStateDir(state_dir));
  auto state = ReadState(dir);
  if (!state.ok() || !SupervisorRunning(*state)) {
    return Err("no system is running in " + dir.root + " (start one with framescope up)");
  }
  IoTargets t;
  t.postgres_url = state->Get("postgres_url").AsString();
  t.redis_url = state->Get("redis_url").AsString();
  auto config = ConfigFromJson(state->Get("config"));
  t.postgres_external = config.ok() && !config->postgres_url.empty();
  for (const Json& s : state->Get("services").AsArray()) {
    const std::string name = s.Get("name").AsString();
    const int port = static_cast<int>(s.Get("metrics_port").AsInt(0));
    if (s.Get("state").AsString() != "running") continue;
    if (name == "prometheus") {
      t.prometheus_port = port;
    } else if (name != "redis" && port > 0) {
      t.services.push_back({name, port});
    }
  }
  t.postgres_label =
      (t.postgres_external ? "" : "the system's private cluster, ") + RedactUrl(t.postgres_url);
  return t;
}

}  // namespace fs
