#include <unistd.h>

#include <cstdio>

#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/logging.h"
#include "src/cli/cli.h"
#include "src/system/state.h"
#include "src/system/supervisor.h"

namespace fs {

int SuperviseMain(int argc, char** argv) {
  std::string state_dir = kDefaultStateDir;
  int stop_timeout_ms = 10000;
  FlagSet flags("framescope _supervise",
                "Internal: the background supervisor started by `framescope up`.");
  flags.String("state-dir", &state_dir, "state dir prepared by `framescope up`");
  flags.Int("stop-timeout-ms", &stop_timeout_ms, "SIGTERM to SIGKILL grace period per service");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  SetLogTag("supervisor");
  // Its own session and process group (a no-op when `up` already did this), so stopping the
  // group never reaches whoever started it.
  setsid();
  auto dir = ResolveStateDir(state_dir);
  if (!dir.ok()) {
    LOG(ERROR) << dir.status().message();
    return 1;
  }
  auto text = ReadFile(dir->ConfigFile());
  if (!text.ok()) {
    LOG(ERROR) << text.status().message();
    return 1;
  }
  auto json = Json::Parse(*text);
  if (!json.ok()) {
    LOG(ERROR) << json.status().message();
    return 1;
  }
  auto config = ConfigFromJson(*json);
  if (!config.ok()) {
    LOG(ERROR) << config.status().message();
    return 1;
  }
  Supervisor supervisor(*config, *dir, SelfExeDir(), stop_timeout_ms);
  return supervisor.Run();
}

}  // namespace fs
