// framescope status: per service pid, uptime, health, frames in/out/dropped and FPS.
#include <cstdio>

#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/cli/cli.h"
#include "src/cli/status_view.h"
#include "src/system/state.h"

namespace fs {

int StatusMain(int argc, char** argv) {
  std::string state_dir = kDefaultStateDir;
  bool json = false;
  FlagSet flags("framescope status",
                "Shows each service's pid, uptime, health, frames in/out/dropped and FPS.\n"
                "Exit code: 0 all healthy, 1 some service unhealthy, 3 not running.");
  flags.String("state-dir", &state_dir, "the state dir given to `up`");
  flags.Bool("json", &json, "machine-readable output");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  // Looking creates nothing: a state dir that does not exist is a system not running.
  auto dir = ResolveStateDir(state_dir);
  StatusOr<Json> state = dir.ok() ? ReadState(*dir) : StatusOr<Json>(dir.status());
  if (!state.ok() && PathExists(state_dir + "/state.json")) {
    fprintf(stderr, "framescope status: %s\n", state.status().message().c_str());
    return 1;
  }
  if (!state.ok() || !SupervisorRunning(*state)) {
    if (json) {
      Json j = Json::MakeObject();
      j["phase"] = "stopped";
      j["services"] = Json::MakeArray();
      printf("%s\n", j.Dump(2).c_str());
    } else {
      printf("framescope is not running (state dir %s)\n", state_dir.c_str());
    }
    return 3;
  }
  Json status = CollectStatus(*state);
  bool all_healthy = true;
  for (const auto& s : status.Get("services").AsArray()) all_healthy &= s.Get("healthy").AsBool();
  if (json) {
    printf("%s\n", status.Dump(2).c_str());
  } else {
    printf("phase: %s\n%s", status.Get("phase").AsString().c_str(),
           RenderStatusTable(status).c_str());
  }
  return all_healthy ? 0 : 1;
}

}  // namespace fs
