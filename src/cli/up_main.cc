// framescope up: validates the configuration, starts the background supervisor and waits
// until every service is healthy (or reports which one failed, with its log). Ctrl-C while
// waiting stops what was started.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/net.h"
#include "src/cli/cli.h"
#include "src/cli/status_view.h"
#include "src/clients/pg_client.h"
#include "src/clients/redis_client.h"
#include "src/config/config.h"
#include "src/memory/heap/heap_counters.h"
#include "src/system/postgres_cluster.h"
#include "src/system/process.h"
#include "src/system/state.h"
#include "src/system/supervisor.h"

namespace fs {
namespace {

constexpr int kFailed = 1;    // the environment or a service failed
constexpr int kBadUsage = 2;  // a bad flag, config value or named file; up with other settings
constexpr int kInterrupted = 130;

// Config-file key -> the `up` flag that sets it, so errors name what the user typed.
constexpr std::pair<const char*, const char*> kFlagOfKey[] = {
    {"cameras", "cameras"},
    {"fps", "fps"},
    {"resolution", "resolution"},
    {"detection.model", "model"},
    {"detection.weights", "weights"},
    {"detection.max_batch", "max-batch"},
    {"detection.max_wait_ms", "max-wait-ms"},
    {"detection.input_size", "input-size"},
    {"redis.url", "redis-url"},
    {"postgres.url", "postgres-url"},
    {"prometheus.enabled", "no-prometheus"},
    {"api.port", "api-port"},
    {"api.client_rate", "api-rate"},
    {"aggregation.processes", "aggregation-processes"},
    {"ports.rtsp", "rtsp-port"},
    {"heap_profile", "heap-profile"},
};

const char* FlagOf(const std::string& key) {
  for (const auto& [k, flag] : kFlagOfKey) {
    if (key == k) return flag;
  }
  return nullptr;
}

volatile sig_atomic_t g_interrupts = 0;
void OnInterrupt(int) { g_interrupts = g_interrupts + 1; }

struct UpOptions {
  SystemConfig config;
  std::string state_dir = kDefaultStateDir;
  // The supervisor's start-up budgets (loadgen 120 s + capture 20 s + detection 180 s +
  // redis 20 s + postgres 120 s + aggregation, api, apiclient, prometheus 20 s each) add up
  // to 540 s; `up` waits a little longer than the worst case.
  int timeout_s = 600;
  bool json = false;
};

// Checks what the user named, each error naming the flag (or the config file's key).
Status CheckUsage(const SystemConfig& c, const SettingNamer& name) {
  RETURN_IF_ERROR(ValidateConfig(c, name));
  // A model file the user named must exist; the default one is a package's (see Preflight).
  if (c.model != SystemConfig().model && !PathExists(c.model)) {
    return Err(name("detection.model") + ": model file " + c.model + " not found");
  }
  if (!c.weights.empty() && !PathExists(c.weights)) {
    return Err(name("detection.weights") + ": weights file " + c.weights + " not found");
  }
  std::string host;
  int port = 0;
  if (!c.redis_url.empty() && !ParseHostPort(c.redis_url, &host, &port).ok()) {
    return Err(name("redis.url") + " \"" + RedactUrl(c.redis_url) +
               "\": expected redis://host:port");
  }
  return Status::Ok();
}

constexpr const char* kUpHelp =
    "Starts the reference video-analytics system as supervised background processes\n"
    "(redis, postgres, loadgen = simulated RTSP cameras, capture, detection,\n"
    "aggregation, api, apiclient = API load, prometheus), waits until each is healthy\n"
    "and prints a table of services, pids and endpoints. Data (Redis AOF, the\n"
    "PostgreSQL cluster, Prometheus TSDB) persists in <state-dir>/data across\n"
    "down/up. Flags override the config file; the config file overrides the\n"
    "defaults. Set FRAMESCOPE_API_TOKEN to require a bearer token on the api.\n"
    "Ctrl-C during start-up stops whatever was already started.\n"
    "--heap-profile detection,api (or --heap-profile all; config key heap_profile)\n"
    "starts those of our services with libframescope_heap.so preloaded: it counts\n"
    "their allocated and freed bytes exactly and samples allocations with their stacks\n"
    "into <state-dir>/heap/<service>/, which `framescope memory` and `profile` read for\n"
    "the reclaim ratio, heap profiles and growth per allocation site. `framescope\n"
    "heap-off` takes it out again, restarting those services one at a time.\n"
    "Exit codes: 0 up (or already up with the same settings); 1 a failure: a\n"
    "missing binary or package (`make deps`), a port in use, an unreachable\n"
    "--redis-url/--postgres-url, a service that did not become healthy; 2 bad\n"
    "usage or config: a bad flag or config value, a file you named that does not\n"
    "exist, or already up with other settings (`framescope down` first);\n"
    "130 interrupted (nothing left running).";

// What the flags say; a value counts only where its flag was given.
struct UpFlags {
  SystemConfig values;
  std::string config_file;
  std::string resolution = "640x360";
  bool no_prometheus = false;
  std::string heap_profile;
};

void DefineUpFlags(FlagSet* flags, UpFlags* f, UpOptions* o) {
  SystemConfig& v = f->values;
  flags->Int("cameras", &v.cameras, "number of simulated cameras");
  flags->Double("fps", &v.fps, "frames per second per camera");
  flags->String("resolution", &f->resolution, "camera resolution WxH");
  flags->String("state-dir", &o->state_dir, "where state, logs and data live");
  flags->String("config", &f->config_file, "TOML config (e.g. real cameras as [[camera]] url=...)");
  flags->String("model", &v.model, "darknet .cfg or .onnx model for detection");
  flags->String("weights", &v.weights,
                "trained weights (default: synthesised; detections meaningless)");
  flags->Int("max-batch", &v.max_batch, "detection: max batch size");
  flags->Int("max-wait-ms", &v.max_wait_ms, "detection: max wait to fill a batch");
  flags->Int("input-size", &v.input_size, "detection: network input size (multiple of 32)");
  flags->String("redis-url", &v.redis_url, "use an existing Redis instead of starting one");
  flags->String("postgres-url", &v.postgres_url,
                "use an existing PostgreSQL (postgresql:// URL) instead of a private cluster");
  flags->Bool("no-prometheus", &f->no_prometheus, "do not start Prometheus");
  flags->Int("api-port", &v.api_port, "api HTTP port on 127.0.0.1 (0 = any free port)");
  flags->Double("api-rate", &v.api_client_rate,
                "API clients' requests per second (0 = no clients)");
  flags->Int("aggregation-processes", &v.aggregation_processes,
             "aggregation consumers sharing the stream");
  flags->Int("rtsp-port", &v.rtsp_port, "loadgen RTSP port (0 = any free port)");
  flags->String("heap-profile", &f->heap_profile,
                "services started with the heap counters library: a comma-separated list of "
                "loadgen, capture, detection, aggregation, api, apiclient, or all");
  flags->Int("timeout", &o->timeout_s,
             "seconds to wait for the system to become healthy, 1..86400");
  flags->Bool("json", &o->json, "print the final status as JSON");
}

// The flags that were given override the config file's values.
Status ApplyUpFlags(const FlagSet& flags, const UpFlags& f, SystemConfig* c) {
  const SystemConfig& v = f.values;
  if (flags.WasSet("cameras")) c->cameras = v.cameras;
  if (flags.WasSet("fps")) c->fps = v.fps;
  if (flags.WasSet("resolution")) {
    Status st = ParseResolution(f.resolution, &c->width, &c->height);
    if (!st.ok()) return Err("--" + st.message());
  }
  if (flags.WasSet("model")) c->model = v.model;
  if (flags.WasSet("weights")) c->weights = v.weights;
  if (flags.WasSet("max-batch")) c->max_batch = v.max_batch;
  if (flags.WasSet("max-wait-ms")) c->max_wait_ms = v.max_wait_ms;
  if (flags.WasSet("input-size")) c->input_size = v.input_size;
  if (flags.WasSet("redis-url")) c->redis_url = v.redis_url;
  if (flags.WasSet("postgres-url")) c->postgres_url = v.postgres_url;
  if (f.no_prometheus) c->prometheus = false;
  if (flags.WasSet("api-port")) c->api_port = v.api_port;
  if (flags.WasSet("api-rate")) c->api_client_rate = v.api_client_rate;
  if (flags.WasSet("aggregation-processes")) {
    c->aggregation_processes = v.aggregation_processes;
  }
  if (flags.WasSet("rtsp-port")) c->rtsp_port = v.rtsp_port;
  if (flags.WasSet("heap-profile")) {
    std::vector<std::string> names;
    for (size_t start = 0;;) {
      size_t comma = f.heap_profile.find(',', start);
      names.push_back(f.heap_profile.substr(start, comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    ASSIGN_OR_RETURN(c->heap_profile, ParseHeapProfile(names, "--heap-profile"));
  }
  return Status::Ok();
}

// Flags over the config file over the defaults, checked. Returns false with the exit code
// in *code after --help or bad usage.
bool ReadUpOptions(int argc, char** argv, UpOptions* o, int* code) {
  UpFlags f;
  FlagSet flags("framescope up", kUpHelp);
  DefineUpFlags(&flags, &f, o);
  if (!flags.ParseOrExit(argc, argv, code)) return false;
  // Each error names the flag when the value came from one, else the config file's key.
  auto name = [&flags, &f](const std::string& key) {
    const char* flag = FlagOf(key);
    if (flag && flags.WasSet(flag)) return "--" + std::string(flag);
    return f.config_file.empty() ? key : key + " (in " + f.config_file + ")";
  };
  Status st = f.config_file.empty() ? Status::Ok() : LoadConfigFile(f.config_file, &o->config);
  if (st.ok()) st = ApplyUpFlags(flags, f, &o->config);
  if (st.ok()) st = CheckUsage(o->config, name);
  if (st.ok() && (o->timeout_s < 1 || o->timeout_s > 86400)) {
    st = Err("--timeout must be 1..86400 seconds (got " + std::to_string(o->timeout_s) + ")");
  }
  if (!st.ok()) {
    fprintf(stderr, "framescope up: %s\n", st.message().c_str());
    *code = kBadUsage;
    return false;
  }
  return true;
}

// Checks the environment before a process is started, so most failures come with nothing
// to clean up.
Status Preflight(const SystemConfig& c, const std::string& bin_dir) {
  for (const char* b : {"framescope-loadgen", "framescope-capture", "framescope-detection",
                        "framescope-aggregation", "framescope-api", "framescope-apiclient"}) {
    if (access((bin_dir + "/" + b).c_str(), X_OK) != 0) {
      return Err(std::string(b) + " not found in " + bin_dir + " (run `make build`)");
    }
  }
#if defined(__SANITIZE_ADDRESS__)
  // The services beside this binary are sanitized too: ASan owns their malloc and insists on
  // being first in the library list, so the preload library cannot sit under it.
  if (!c.heap_profile.empty()) {
    return Err(
        "heap_profile: not with a sanitizer build (its services run under ASan, which "
        "owns malloc); use the dev or release build");
  }
#endif
  if (!c.heap_profile.empty() && !PathExists(bin_dir + "/" + memory::kHeapLibrary)) {
    return Err(std::string("heap_profile: ") + memory::kHeapLibrary + " not found in " + bin_dir +
               " (run `make build`)");
  }
  if (!PathExists(c.model)) {  // the default: CheckUsage checked one the user named
    return Err("detection: model file " + c.model +
               " not found (install Debian's darknet package with `make deps`, or pass --model)");
  }
  if (c.redis_url.empty()) {
    if (access("/usr/bin/redis-server", X_OK) != 0) {
      return Err("redis: /usr/bin/redis-server not found (run `make deps`, or pass --redis-url)");
    }
  } else {
    auto r = RedisClient::Connect(c.redis_url, "up", 1000);
    if (!r.ok()) return r.status().Annotate("--redis-url " + RedactUrl(c.redis_url));
  }
  if (c.postgres_url.empty()) {
    if (std::string why = PostgresCluster::Unavailable(); !why.empty()) {
      return Err("postgres: " + why + " (or pass --postgres-url)");
    }
  } else {
    auto pg = PgClient::Connect(c.postgres_url, "up", 3);
    if (!pg.ok()) return pg.status().Annotate("--postgres-url " + RedactUrl(c.postgres_url));
  }
  if (c.prometheus && access("/usr/bin/prometheus", X_OK) != 0) {
    return Err(
        "prometheus: /usr/bin/prometheus not found (run `make deps`, or pass "
        "--no-prometheus)");
  }
  if (c.api_port != 0) {
    auto l = ListenTcp("127.0.0.1", c.api_port);
    if (!l.ok()) return Err("api: " + l.status().message());
  }
  if (c.real_cameras.empty() && c.rtsp_port != 0) {
    auto l = ListenTcp("127.0.0.1", c.rtsp_port);
    if (!l.ok()) return Err("loadgen: RTSP " + l.status().message());
  }
  return Status::Ok();
}

// `up` on a running system: fine if it runs with the requested settings; otherwise says
// which differ, and how to apply them, rather than silently keeping the old ones.
int ReportAlreadyUp(const StateDir& dir, const Json& state, const SystemConfig& requested) {
  StatusOr<SystemConfig> running = Err("unreadable");
  if (auto text = ReadFile(dir.ConfigFile()); !text.ok()) {
    running = text.status();
  } else if (auto json = Json::Parse(*text); !json.ok()) {
    running = json.status();
  } else {
    running = ConfigFromJson(*json);
  }
  if (!running.ok()) {
    fprintf(stderr, "framescope up: already up in %s, but its settings cannot be read: %s\n",
            dir.root.c_str(), running.status().message().c_str());
    return kFailed;
  }
  auto changes = CompareConfigs(*running, requested);
  if (changes.empty()) {
    printf("framescope is already up (state dir %s)\n", dir.root.c_str());
    printf("%s", RenderStatusTable(CollectStatus(state)).c_str());
    return 0;
  }
  fprintf(stderr, "framescope up: already up in %s with other settings:\n", dir.root.c_str());
  for (const auto& c : changes) {
    const char* flag = FlagOf(c.key);
    std::string named = flag ? c.key + " (--" + flag + ")" : c.key;
    fprintf(stderr, "  %s: running %s, requested %s\n", named.c_str(), c.from.c_str(),
            c.to.c_str());
  }
  fprintf(stderr, "to apply them: `framescope down --state-dir %s`, then `framescope up` again\n",
          dir.root.c_str());
  return kBadUsage;
}

// Forks `framescope _supervise` in its own session (so the terminal's Ctrl-C never reaches
// it: `up` decides what an interrupt means) with its output in logs/supervisor.log.
pid_t StartSupervisor(const StateDir& dir, const std::string& bin_dir) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  setsid();  // own session + process group: `down` can sweep it, the terminal cannot kill it
  int log =
      open(dir.LogFile("supervisor").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);  // dup2 clears CLOEXEC on 0
  dup2(devnull, 0);
  if (log >= 0) {
    dup2(log, 1);
    dup2(log, 2);
  }
  std::string self = bin_dir + "/framescope";
  // exec resets OnInterrupt to the default action: the supervisor installs its own.
  execl(self.c_str(), self.c_str(), "_supervise", "--state-dir", dir.root.c_str(),
        static_cast<char*>(nullptr));
  _exit(127);
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Ctrl-C (or SIGTERM) during start-up: tells the supervisor to stop and waits, bounded,
// until it has stopped everything it started. A second Ctrl-C stops the waiting only.
int StopAfterInterrupt(pid_t supervisor, const StateDir& dir) {
  std::vector<std::string> started;
  if (auto state = ReadState(dir); state.ok()) {
    for (const auto& s : state->Get("services").AsArray()) {
      if (s.Get("pid").AsInt(-1) > 0) started.push_back(s.Get("name").AsString());
    }
  }
  printf("\ninterrupted: stopping the %zu service(s) started so far%s ...\n", started.size(),
         started.empty() ? "" : (" (" + JoinNames(started) + ")").c_str());
  fflush(stdout);
  int seen = g_interrupts;
  kill(supervisor, SIGTERM);
  // The supervisor gives each service 10 s (PostgreSQL 20 s) before SIGKILL.
  int64_t deadline =
      MonotonicNs() + (10LL * static_cast<int64_t>(started.size()) + 30) * 1000000000;
  while (waitpid(supervisor, nullptr, WNOHANG) == 0) {
    if (g_interrupts > seen) {
      printf(
          "interrupted again: the supervisor (pid %d) goes on stopping them in the "
          "background; `framescope down --state-dir %s` waits for it\n",
          supervisor, dir.root.c_str());
      return kInterrupted;
    }
    if (MonotonicNs() > deadline) {
      fprintf(stderr, "the supervisor did not stop in time; killing its process group\n");
      kill(-supervisor, SIGKILL);
      waitpid(supervisor, nullptr, 0);
      break;
    }
    usleep(100000);
  }
  // Its services share its process group; none may outlive it.
  int leftovers = 0;
  for (pid_t p : ProcessGroupMembers(supervisor)) {
    kill(p, SIGKILL);
    ++leftovers;
  }
  RemoveRings(dir);
  if (leftovers > 0) printf("killed %d leftover process(es)\n", leftovers);
  printf("nothing left running (data kept in %s)\n", dir.DataDir().c_str());
  return kInterrupted;
}

// Follows the supervisor's state.json until every service is healthy, start-up failed,
// the timeout passed or the user interrupted; prints each service as it starts.
int WaitUntilUp(pid_t pid, const StateDir& dir, const UpOptions& o) {
  const SystemConfig& config = o.config;
  int total = static_cast<int>(Supervisor::ServiceNames(config).size());
  int cams =
      config.real_cameras.empty() ? config.cameras : static_cast<int>(config.real_cameras.size());
  printf("starting framescope: %d camera(s) at %.0f FPS %dx%d, state dir %s\n", cams, config.fps,
         config.width, config.height, dir.root.c_str());
  fflush(stdout);
  int64_t deadline = MonotonicNs() + int64_t{o.timeout_s} * 1000000000;
  int reported = 0;
  std::string last_starting;
  Json state;
  for (;;) {
    usleep(200000);  // cut short by a signal
    if (g_interrupts > 0) return StopAfterInterrupt(pid, dir);
    auto st = ReadState(dir);
    if (st.ok()) state = *st;
    for (const auto& s : state.Get("services").AsArray()) {
      if (s.Get("state").AsString() == "starting" && s.Get("name").AsString() != last_starting) {
        last_starting = s.Get("name").AsString();
        printf("  [%d/%d] starting %s ...\n", reported + 1, total, last_starting.c_str());
        fflush(stdout);
        ++reported;
      }
    }
    std::string phase = state.Get("phase").AsString();
    if (phase == "running") break;
    int wstatus = 0;
    bool supervisor_gone = waitpid(pid, &wstatus, WNOHANG) == pid;
    if (phase == "failed" || phase == "stopped" || supervisor_gone) {
      // Wait for the supervisor to finish its clean-up so nothing is left running.
      if (!supervisor_gone) waitpid(pid, &wstatus, 0);
      std::string err = state.Get("error").AsString();
      if (err.empty()) err = "supervisor exited early; see " + dir.LogFile("supervisor");
      fprintf(stderr, "framescope up: %s\nnothing was left running.\n", err.c_str());
      return kFailed;
    }
    if (MonotonicNs() > deadline) {
      fprintf(stderr, "framescope up: not healthy after %d s; stopping everything (logs in %s)\n",
              o.timeout_s, dir.LogDir().c_str());
      TerminateProcess(pid, 30000);
      return kFailed;
    }
  }
  Json status = CollectStatus(state);
  if (o.json) {
    printf("%s\n", status.Dump(2).c_str());
  } else {
    printf("framescope is up (%d services). Logs: %s\n", total, dir.LogDir().c_str());
    printf("%s", RenderStatusTable(status).c_str());
  }
  return 0;
}

}  // namespace

int UpMain(int argc, char** argv) {
  UpOptions o;
  int code = 0;
  if (!ReadUpOptions(argc, argv, &o, &code)) return code;
  auto dir = ResolveStateDir(o.state_dir);
  if (!dir.ok()) {
    fprintf(stderr, "framescope up: --state-dir: %s\n", dir.status().message().c_str());
    return kBadUsage;
  }
  if (auto st = ReadState(*dir); st.ok() && SupervisorRunning(*st)) {
    return ReportAlreadyUp(*dir, *st, o.config);
  }
  std::string bin_dir = SelfExeDir();
  Status st = Preflight(o.config, bin_dir);
  // Only now, with every check passed, does the state dir come into being.
  if (st.ok()) st = CreateStateDirs(*dir);
  // 0600: real camera URLs may carry passwords.
  if (st.ok()) st = WriteFileAtomic(dir->ConfigFile(), ConfigToJson(o.config).Dump(2) + "\n", 0600);
  if (!st.ok()) {
    fprintf(stderr, "framescope up: %s\n", st.message().c_str());
    return kFailed;
  }
  unlink(dir->StateFile().c_str());
  // No SA_RESTART: the wait's sleep returns at once, and the loop sees the flag.
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  pid_t pid = StartSupervisor(*dir, bin_dir);
  if (pid < 0) {
    perror("framescope up: fork");
    return kFailed;
  }
  return WaitUntilUp(pid, *dir, o);
}

}  // namespace fs
