#include "src/system/state.h"

#include <dirent.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "src/base/file_util.h"
#include "src/system/process.h"

namespace fs {

std::string StateDir::RingDir() const { return PathExists("/dev/shm") ? "/dev/shm" : RunDir(); }

std::string StateDir::RingPrefix() const {
  char buf[32];
  snprintf(buf, sizeof(buf), "framescope-%08zx", std::hash<std::string>{}(root)&0xffffffffu);
  return buf;
}

StatusOr<StateDir> ResolveStateDir(const std::string& path) {
  if (path.empty()) return Err("the state dir path is empty");
  // Canonical: the root (and the ring prefix hashed from it) is the same before and after `up`
  // creates the dir.
  auto canonical = CanonicalPath(path);
  if (!canonical.ok()) return canonical.status().Annotate("state dir");
  const std::string& root = *canonical;
  std::error_code ec;
  if (std::filesystem::exists(root, ec) && !std::filesystem::is_directory(root, ec)) {
    return Err("state dir " + path + " exists and is not a directory");
  }
  return StateDir{root};
}

Status CreateStateDirs(const StateDir& dir) {
  for (const std::string& d :
       {dir.root, dir.LogDir(), dir.RunDir(), dir.DataDir(), dir.CacheDir()}) {
    RETURN_IF_ERROR(MakeDirs(d).Annotate("state dir"));
  }
  return Status::Ok();
}

Json ConfigToJson(const SystemConfig& c) {
  Json j = Json::MakeObject();
  j["cameras"] = c.cameras;
  j["fps"] = c.fps;
  j["width"] = c.width;
  j["height"] = c.height;
  Json cams = Json::MakeArray();
  for (const auto& cam : c.real_cameras) {
    Json o = Json::MakeObject();
    o["name"] = cam.name;
    o["url"] = cam.url;
    cams.Push(o);
  }
  j["real_cameras"] = cams;
  j["model"] = c.model;
  j["weights"] = c.weights;
  j["max_batch"] = c.max_batch;
  j["max_wait_ms"] = c.max_wait_ms;
  j["input_size"] = c.input_size;
  j["conf_threshold"] = c.conf_threshold;
  j["redis_url"] = c.redis_url;
  j["rtsp_port"] = c.rtsp_port;
  j["postgres_url"] = c.postgres_url;
  j["aggregation_processes"] = c.aggregation_processes;
  j["aggregation_batch"] = c.aggregation_batch;
  j["api_port"] = c.api_port;
  j["api_client_rate"] = c.api_client_rate;
  j["prometheus"] = c.prometheus;
  Json heap = Json::MakeArray();
  for (const auto& name : c.heap_profile) heap.Push(Json(name));
  j["heap_profile"] = heap;
  return j;
}

StatusOr<SystemConfig> ConfigFromJson(const Json& j) {
  if (!j.is_object()) return Err("resolved config is not a JSON object");
  SystemConfig c;
  c.cameras = static_cast<int>(j.Get("cameras").AsInt(c.cameras));
  c.fps = j.Get("fps").AsDouble(c.fps);
  c.width = static_cast<int>(j.Get("width").AsInt(c.width));
  c.height = static_cast<int>(j.Get("height").AsInt(c.height));
  for (const auto& cam : j.Get("real_cameras").AsArray()) {
    c.real_cameras.push_back({cam.Get("name").AsString(), cam.Get("url").AsString()});
  }
  c.model = j.Get("model").AsString();
  c.weights = j.Get("weights").AsString();
  c.max_batch = static_cast<int>(j.Get("max_batch").AsInt(c.max_batch));
  c.max_wait_ms = static_cast<int>(j.Get("max_wait_ms").AsInt(c.max_wait_ms));
  c.input_size = static_cast<int>(j.Get("input_size").AsInt(c.input_size));
  c.conf_threshold = j.Get("conf_threshold").AsDouble(c.conf_threshold);
  c.redis_url = j.Get("redis_url").AsString();
  c.rtsp_port = static_cast<int>(j.Get("rtsp_port").AsInt(0));
  c.postgres_url = j.Get("postgres_url").AsString();
  c.aggregation_processes =
      static_cast<int>(j.Get("aggregation_processes").AsInt(c.aggregation_processes));
  c.aggregation_batch = static_cast<int>(j.Get("aggregation_batch").AsInt(c.aggregation_batch));
  c.api_port = static_cast<int>(j.Get("api_port").AsInt(0));
  c.api_client_rate = j.Get("api_client_rate").AsDouble(c.api_client_rate);
  c.prometheus = j.Get("prometheus").AsBool(c.prometheus);
  for (const auto& name : j.Get("heap_profile").AsArray())
    c.heap_profile.push_back(name.AsString());
  RETURN_IF_ERROR(ValidateConfig(c));
  return c;
}

void RemoveRings(const StateDir& dir) {
  DIR* d = opendir(dir.RingDir().c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind(dir.RingPrefix() + "-", 0) == 0) unlink((dir.RingDir() + "/" + n).c_str());
  }
  closedir(d);
}

StatusOr<Json> ReadState(const StateDir& dir) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(dir.StateFile()));
  auto j = Json::Parse(text);
  if (!j.ok()) return j.status().Annotate(dir.StateFile() + " is corrupt");
  return j;
}

bool SupervisorRunning(const Json& state) {
  int64_t raw = state.Get("supervisor_pid").AsInt(0);
  if (raw <= 1 || raw > INT32_MAX) return false;
  pid_t pid = static_cast<pid_t>(raw);
  if (!ProcessAlive(pid)) return false;
  // Guard against pid reuse: the process must still be our supervisor.
  return ProcessCmdline(pid).find("_supervise") != std::string::npos;
}

}  // namespace fs
