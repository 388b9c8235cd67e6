// framescope up: validates the configuration, starts the background supervisor and waits
// until every service is healthy (or reports which one failed, with its log).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/net.h"
#include "src/cli/cli.h"
#include "src/cli/status_view.h"
#include "src/clients/pg_client.h"
#include "src/clients/redis_client.h"
#include "src/config/config.h"
#include "src/system/postgres_cluster.h"
#include "src/system/process.h"
#include "src/system/state.h"
#include "src/system/supervisor.h"

namespace fs {
namespace {

// Checks everything that can be checked before a process is started, so most bad input
// fails fast with nothing to clean up.
Status Preflight(const SystemConfig& c, const std::string& bin_dir) {
  RETURN_IF_ERROR(ValidateConfig(c));
  if (c.real_cameras.empty() && c.fps != static_cast<int>(c.fps)) {
    return Err("fps must be a whole number for the simulated cameras (got " +
               std::to_string(c.fps) + ")");
  }
  for (const char* b : {"framescope-loadgen", "framescope-capture", "framescope-detection",
                        "framescope-aggregation", "framescope-api", "framescope-apiclient"}) {
    if (access((bin_dir + "/" + b).c_str(), X_OK) != 0) {
      return Err(std::string(b) + " not found in " + bin_dir + " (run `make build`)");
    }
  }
  if (!PathExists(c.model)) {
    return Err("detection: model file " + c.model +
               " not found (install Debian's darknet package with `make deps`, or pass --model)");
  }
  if (!c.weights.empty() && !PathExists(c.weights)) {
    return Err("detection: weights file " + c.weights + " not found");
  }
  if (c.redis_url.empty()) {
    if (access("/usr/bin/redis-server", X_OK) != 0) {
      return Err("redis: /usr/bin/redis-server not found (run `make deps`, or pass --redis-url)");
    }
  } else {
    auto r = RedisClient::Connect(c.redis_url, "up", 1000);
    if (!r.ok()) return r.status().Annotate("--redis-url " + c.redis_url);
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

}  // namespace

int UpMain(int argc, char** argv) {
  SystemConfig config;
  std::string state_dir = kDefaultStateDir, config_file, resolution = "640x360";
  // The supervisor's start-up budgets (loadgen 120 s + capture 20 s + detection 180 s +
  // redis 20 s + postgres 120 s + aggregation, api, apiclient, prometheus 20 s each) add up
  // to 540 s; `up` waits a little longer than the worst case.
  int cameras = config.cameras, rtsp_port = 0, timeout_s = 600;
  int max_batch = config.max_batch, max_wait_ms = config.max_wait_ms,
      input_size = config.input_size;
  double fps = config.fps;
  std::string model = config.model, weights, redis_url, postgres_url;
  int api_port = 0, aggregation_processes = config.aggregation_processes;
  double api_rate = config.api_client_rate;
  bool json = false, no_prometheus = false;
  FlagSet flags("framescope up",
                "Starts the reference video-analytics system as supervised background processes\n"
                "(redis, postgres, loadgen = simulated RTSP cameras, capture, detection,\n"
                "aggregation, api, apiclient = API load, prometheus), waits until each is healthy\n"
                "and prints a table of services, pids and endpoints. Data (Redis AOF, the\n"
                "PostgreSQL cluster, Prometheus TSDB) persists in <state-dir>/data across\n"
                "down/up. Flags override the config file; the config file overrides the\n"
                "defaults. Set FRAMESCOPE_API_TOKEN to require a bearer token on the api.");
  flags.Int("cameras", &cameras, "number of simulated cameras");
  flags.Double("fps", &fps, "frames per second per camera");
  flags.String("resolution", &resolution, "camera resolution WxH");
  flags.String("state-dir", &state_dir, "where state, logs and data live");
  flags.String("config", &config_file, "TOML config (e.g. real cameras as [[camera]] url=...)");
  flags.String("model", &model, "darknet .cfg or .onnx model for detection");
  flags.String("weights", &weights,
               "trained weights (default: synthesised; detections meaningless)");
  flags.Int("max-batch", &max_batch, "detection: max batch size");
  flags.Int("max-wait-ms", &max_wait_ms, "detection: max wait to fill a batch");
  flags.Int("input-size", &input_size, "detection: network input size (multiple of 32)");
  flags.String("redis-url", &redis_url, "use an existing Redis instead of starting one");
  flags.String("postgres-url", &postgres_url,
               "use an existing PostgreSQL (postgresql:// URL) instead of a private cluster");
  flags.Bool("no-prometheus", &no_prometheus, "do not start Prometheus");
  flags.Int("api-port", &api_port, "api HTTP port on 127.0.0.1 (0 = any free port)");
  flags.Double("api-rate", &api_rate, "API clients' requests per second (0 = no clients)");
  flags.Int("aggregation-processes", &aggregation_processes,
            "aggregation consumers sharing the stream");
  flags.Int("rtsp-port", &rtsp_port, "loadgen RTSP port (0 = any free port)");
  flags.Int("timeout", &timeout_s, "seconds to wait for the system to become healthy");
  flags.Bool("json", &json, "print the final status as JSON");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;

  if (!config_file.empty()) {
    if (Status st = LoadConfigFile(config_file, &config); !st.ok()) {
      fprintf(stderr, "framescope up: %s\n", st.message().c_str());
      return 2;
    }
  }
  if (flags.WasSet("cameras")) config.cameras = cameras;
  if (flags.WasSet("fps")) config.fps = fps;
  if (flags.WasSet("resolution")) {
    if (Status st = ParseResolution(resolution, &config.width, &config.height); !st.ok()) {
      fprintf(stderr, "framescope up: --%s\n", st.message().c_str());
      return 2;
    }
  }
  if (flags.WasSet("model")) config.model = model;
  if (flags.WasSet("weights")) config.weights = weights;
  if (flags.WasSet("max-batch")) config.max_batch = max_batch;
  if (flags.WasSet("max-wait-ms")) config.max_wait_ms = max_wait_ms;
  if (flags.WasSet("input-size")) config.input_size = input_size;
  if (flags.WasSet("redis-url")) config.redis_url = redis_url;
  if (flags.WasSet("postgres-url")) config.postgres_url = postgres_url;
  if (no_prometheus) config.prometheus = false;
  if (flags.WasSet("api-port")) config.api_port = api_port;
  if (flags.WasSet("api-rate")) config.api_client_rate = api_rate;
  if (flags.WasSet("aggregation-processes")) config.aggregation_processes = aggregation_processes;
  if (flags.WasSet("rtsp-port")) config.rtsp_port = rtsp_port;

  auto dir = ResolveStateDir(state_dir);
  if (!dir.ok()) {
    fprintf(stderr, "framescope up: %s\n", dir.status().message().c_str());
    return 1;
  }
  if (auto st = ReadState(*dir); st.ok() && SupervisorRunning(*st)) {
    printf("framescope is already up (state dir %s)\n", dir->root.c_str());
    printf("%s", RenderStatusTable(CollectStatus(*st)).c_str());
    return 0;
  }

  std::string bin_dir = SelfExeDir();
  if (Status st = Preflight(config, bin_dir); !st.ok()) {
    fprintf(stderr, "framescope up: %s\n", st.message().c_str());
    return 1;
  }
  // 0600: real camera URLs may carry passwords.
  if (Status st = WriteFileAtomic(dir->ConfigFile(), ConfigToJson(config).Dump(2) + "\n", 0600);
      !st.ok()) {
    fprintf(stderr, "framescope up: %s\n", st.message().c_str());
    return 1;
  }
  unlink(dir->StateFile().c_str());

  pid_t pid = fork();
  if (pid < 0) {
    perror("framescope up: fork");
    return 1;
  }
  if (pid == 0) {
    setsid();  // own session + process group: `down` can sweep it, the terminal cannot kill it
    int log =
        open(dir->LogFile("supervisor").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);  // dup2 clears CLOEXEC on 0
    dup2(devnull, 0);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    std::string self = bin_dir + "/framescope";
    execl(self.c_str(), self.c_str(), "_supervise", "--state-dir", dir->root.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }

  int total = static_cast<int>(Supervisor::ServiceNames(config).size());
  int cams =
      config.real_cameras.empty() ? config.cameras : static_cast<int>(config.real_cameras.size());
  printf("starting framescope: %d camera(s) at %.0f FPS %dx%d, state dir %s\n", cams, config.fps,
         config.width, config.height, dir->root.c_str());
  fflush(stdout);
  int64_t deadline = MonotonicNs() + int64_t{timeout_s} * 1000000000;
  int reported = 0;
  std::string last_starting;
  Json state;
  for (;;) {
    usleep(200000);
    auto st = ReadState(*dir);
    if (st.ok()) state = *st;
    int running = 0;
    for (const auto& s : state.Get("services").AsArray()) {
      if (s.Get("state").AsString() == "running") ++running;
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
      if (err.empty()) err = "supervisor exited early; see " + dir->LogFile("supervisor");
      fprintf(stderr, "framescope up: %s\nnothing was left running.\n", err.c_str());
      return 1;
    }
    if (MonotonicNs() > deadline) {
      fprintf(stderr, "framescope up: not healthy after %d s; stopping everything (logs in %s)\n",
              timeout_s, dir->LogDir().c_str());
      TerminateProcess(pid, 30000);
      return 1;
    }
  }
  Json status = CollectStatus(state);
  if (json) {
    printf("%s\n", status.Dump(2).c_str());
  } else {
    printf("framescope is up (%d services). Logs: %s\n", total, dir->LogDir().c_str());
    printf("%s", RenderStatusTable(status).c_str());
  }
  return 0;
}

}  // namespace fs
