#include "src/collect/preflight.h"

#include <time.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "src/base/file_util.h"
#include "src/collect/sampler.h"

namespace fs::profile {

StatusOr<std::string> CheckPerfEvents(pid_t pid) {
  SamplerOptions o;
  o.pids = {pid};
  o.frequency_hz = 1;
  o.ring_pages = 1;
  ASSIGN_OR_RETURN(std::unique_ptr<Sampler> s, Sampler::Start(o));
  bool kernel = s->kernel_frames();
  s->Stop();
  auto paranoid = ReadFile("/proc/sys/kernel/perf_event_paranoid");
  std::string level = paranoid.ok() ? *paranoid : "?";
  while (!level.empty() && (level.back() == '\n' || level.back() == ' ')) level.pop_back();
  return "perf events: ok (cpu-clock attach to pid " + std::to_string(pid) + "; kernel frames " +
         (kernel ? "allowed" : "refused by the host") + "; kernel.perf_event_paranoid=" + level +
         ")";
}

bool ParseLogTimestamp(const std::string& text, double* epoch_s) {
  int y, mo, d, h, mi, s, ms = 0;
  char z = 0;
  if (sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z) !=
          8 ||
      z != 'Z') {
    return false;
  }
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return false;
  *epoch_s = static_cast<double>(t) + ms / 1000.0;
  return true;
}

std::map<std::string, CameraFps> ParseLoadgenFps(const std::string& log, double since_epoch_s) {
  std::map<std::string, CameraFps> out;
  size_t pos = 0;
  while (pos < log.size()) {
    size_t eol = log.find('\n', pos);
    if (eol == std::string::npos) eol = log.size();
    std::string line = log.substr(pos, eol - pos);
    pos = eol + 1;
    size_t cam = line.find("camera=");
    size_t fps = line.find(" FPS: ");
    if (cam == std::string::npos || fps == std::string::npos || fps < cam) continue;
    double at = 0;
    if (!ParseLogTimestamp(line, &at) || at < since_epoch_s) continue;
    std::string name = line.substr(cam + 7, fps - cam - 7);
    char* end = nullptr;
    double v = strtod(line.c_str() + fps + 6, &end);
    if (end == line.c_str() + fps + 6 || name.empty() || !std::isfinite(v) || v < 0) continue;
    out[name] = {v, at};
  }
  return out;
}

}  // namespace fs::profile
