// System configuration: what `framescope up` starts. Read from a TOML file (a documented
// subset: tables, arrays of tables, strings, integers, floats, booleans, arrays of scalars)
// and overridden by command-line flags. Unknown keys are errors so typos never pass silently.
//
//   cameras = 10            # simulated cameras when no [[camera]] is listed
//   fps = 30
//   resolution = "640x360"
//   [[camera]]              # real cameras: replaces the simulated ones
//   name = "lobby"
//   url = "rtsp://10.0.0.5:554/stream1"
//   [detection]
//   model = "/usr/share/darknet/cfg/yolov3-tiny.cfg"
//   weights = ""            # empty: synthesised (detections meaningless)
//   max_batch = 4
//   max_wait_ms = 10
//   input_size = 416
//   conf_threshold = 0.25
//   [redis]
//   url = ""                # empty: framescope starts a private redis-server
//   [postgres]
//   url = ""                # empty: a private PostgreSQL 15 cluster in the state dir
//   [aggregation]
//   processes = 1           # consumers sharing the stream (scale-out)
//   batch = 500
//   [api]
//   port = 0                # 0: any free port (loopback)
//   client_rate = 50        # API clients' requests/s (0: no clients)
//   [prometheus]
//   enabled = true
//   [ports]
//   rtsp = 0                # 0: any free port
//   heap_profile = ["detection", "aggregation"]   # (a root key) our services started with the
//                           # heap counters library (libframescope_heap.so); ["all"]: all of them
#ifndef FRAMESCOPE_CONFIG_CONFIG_H_
#define FRAMESCOPE_CONFIG_CONFIG_H_

#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "src/base/status.h"

namespace fs {

// ---- TOML subset ---------------------------------------------------------------------------
struct TomlValue;
using TomlArray = std::vector<TomlValue>;
struct TomlValue {
  std::variant<std::string, int64_t, double, bool, TomlArray> v;
  int line = 0;
};
struct TomlTable {
  std::map<std::string, TomlValue> values;
  int line = 0;
};
struct TomlDocument {
  TomlTable root;
  std::map<std::string, TomlTable> tables;                     // [name]
  std::map<std::string, std::vector<TomlTable>> table_arrays;  // [[name]]
};

// `origin` names the source in error messages (a path, or "<string>").
// "rtsp://user:secret@host/x" -> "rtsp://user:***@host/x": for logs and state files.
std::string RedactUrl(const std::string& url);
// "cam03": the name of simulated camera `index` (also the loadgen mount path).
std::string CameraName(int index);

StatusOr<TomlDocument> ParseToml(const std::string& text, const std::string& origin);

// ---- System config -------------------------------------------------------------------------
struct CameraConfig {
  std::string name;  // camNN for simulated cameras
  std::string url;   // rtsp://...
};

struct SystemConfig {
  int cameras = 10;
  double fps = 30;
  int width = 640;
  int height = 360;
  std::vector<CameraConfig> real_cameras;  // non-empty: use these, start no loadgen

  std::string model = "/usr/share/darknet/cfg/yolov3-tiny.cfg";
  std::string weights;
  int max_batch = 4;
  int max_wait_ms = 10;
  int input_size = 416;
  double conf_threshold = 0.25;

  std::string redis_url;     // empty: private redis-server
  std::string postgres_url;  // empty: private PostgreSQL cluster
  int rtsp_port = 0;

  int aggregation_processes = 1;
  int aggregation_batch = 500;
  int api_port = 0;
  double api_client_rate = 50;
  bool prometheus = true;
  // Our services started with the preload library that counts their allocations exactly
  // (issue 11), by service name (kHeapProfileServices; "aggregation" covers every aggregation
  // process), sorted and unique; "all" is expanded when the config is read.
  std::vector<std::string> heap_profile;
};

// The services `heap_profile` may name: framescope's own, not redis, postgres or prometheus
// (the library counts what it interposes; third-party servers are not ours to instrument).
inline constexpr const char* kHeapProfileServices[] = {"loadgen",     "capture", "detection",
                                                       "aggregation", "api",     "apiclient"};
// "detection,api", "all" (or the TOML array's items): the sorted, unique service list, or an
// error naming each unknown name and the valid ones. `setting` names the key or flag.
StatusOr<std::vector<std::string>> ParseHeapProfile(const std::vector<std::string>& names,
                                                    const std::string& setting);
// True if `service` (a supervisor service name such as "aggregation-2") is in heap_profile.
bool HeapProfiled(const SystemConfig& config, const std::string& service);

// Applies a TOML document onto `config` (fields it does not mention keep their values).
Status ApplyConfigToml(const TomlDocument& doc, const std::string& origin, SystemConfig* config);
Status LoadConfigFile(const std::string& path, SystemConfig* config);
// One setting whose value differs between two configs, named by its config-file key
// ("detection.max_batch"; "camera" for the [[camera]] list). Values are shown as a user would
// write them, URLs with their passwords redacted.
struct SettingChange {
  std::string key;
  std::string from;
  std::string to;
};
// Every setting in which `to` differs from `from` (passwords compared, never shown).
std::vector<SettingChange> CompareConfigs(const SystemConfig& from, const SystemConfig& to);

// Names a setting in ValidateConfig's errors, given its config-file key ("fps",
// "detection.max_batch", "camera.name"): `up` names the flag instead when the value came
// from the command line. Without one, errors name the key.
using SettingNamer = std::function<std::string(const std::string& key)>;
// Range and consistency checks shared by the file and the flags. Each error names the setting
// (through `name`) and the value it got.
Status ValidateConfig(const SystemConfig& config, const SettingNamer& name = nullptr);

}  // namespace fs

#endif  // FRAMESCOPE_CONFIG_CONFIG_H_
