// framescope logs: prints (or follows) service logs from <state-dir>/logs.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/cli/cli.h"
#include "src/system/supervisor.h"

namespace fs {

int LogsMain(int argc, char** argv) {
  std::string state_dir = kDefaultStateDir;
  int lines = 50;
  bool follow = false;
  FlagSet flags("framescope logs",
                "Prints the last lines of each service's log (<state-dir>/logs/<service>.log).");
  flags.AllowPositional("[SERVICE...]");
  flags.String("state-dir", &state_dir, "the state dir given to `up`");
  flags.Int("lines", &lines, "lines per log");
  flags.Bool("follow", &follow, "keep printing new lines (Ctrl-C to stop)");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (lines < 0) {
    fprintf(stderr, "framescope logs: --lines must be >= 0\n");
    return 2;
  }
  std::string log_dir = state_dir + "/logs";
  std::vector<std::string> services = flags.positional();
  if (services.empty()) {
    DIR* d = opendir(log_dir.c_str());
    if (!d) {
      fprintf(stderr,
              "framescope logs: no logs in %s (was `framescope up` run with this "
              "--state-dir?)\n",
              log_dir.c_str());
      return 1;
    }
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 4 && n.substr(n.size() - 4) == ".log")
        services.push_back(n.substr(0, n.size() - 4));
    }
    closedir(d);
    std::sort(services.begin(), services.end());
  }
  std::vector<size_t> offsets;
  for (const auto& s : services) {
    auto text = ReadFile(log_dir + "/" + s + ".log");
    if (!text.ok()) {
      fprintf(stderr, "framescope logs: no log for service \"%s\" in %s\n", s.c_str(),
              log_dir.c_str());
      return 1;
    }
    size_t pos = text->size();
    for (int i = 0; i <= lines && pos > 0; ++i) {
      pos = text->rfind('\n', pos - 1);
      if (pos == std::string::npos) {
        pos = 0;
        break;
      }
    }
    std::string tail = text->substr(pos == 0 ? 0 : pos + 1);
    if (services.size() > 1 && !follow) printf("==> %s <==\n", s.c_str());
    size_t start = 0;
    while (start < tail.size()) {
      size_t end = tail.find('\n', start);
      if (end == std::string::npos) end = tail.size();
      printf(follow && services.size() > 1 ? "%s | %.*s\n" : "%.0s%.*s\n", s.c_str(),
             static_cast<int>(end - start), tail.c_str() + start);
      start = end + 1;
    }
    offsets.push_back(text->size());
  }
  while (follow) {
    fflush(stdout);
    usleep(250000);
    for (size_t i = 0; i < services.size(); ++i) {
      auto text = ReadFile(log_dir + "/" + services[i] + ".log");
      if (!text.ok()) continue;
      if (text->size() < offsets[i]) offsets[i] = 0;  // truncated / rotated
      if (text->size() > offsets[i]) {
        std::string fresh = text->substr(offsets[i]);
        offsets[i] = text->size();
        size_t start = 0;
        while (start < fresh.size()) {
          size_t end = fresh.find('\n', start);
          if (end == std::string::npos) end = fresh.size();
          printf(services.size() > 1 ? "%s | %.*s\n" : "%.0s%.*s\n", services[i].c_str(),
                 static_cast<int>(end - start), fresh.c_str() + start);
          start = end + 1;
        }
      }
    }
  }
  return 0;
}

}  // namespace fs
