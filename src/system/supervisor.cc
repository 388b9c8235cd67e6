#include "src/system/supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/http.h"
#include "src/base/logging.h"
#include "src/base/net.h"
#include "src/clients/pg_client.h"
#include "src/clients/redis_client.h"
#include "src/memory/heap/heap_counters.h"
#include "src/system/process.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};
void OnStopSignal(int) { g_stop.store(true); }
std::atomic<bool> g_reload{false};
void OnReloadSignal(int) { g_reload.store(true); }

constexpr int64_t kMaxBackoffNs = 30LL * 1000000000;
constexpr int64_t kStableAfterNs = 60LL * 1000000000;

// 30 -> "30", 12.5 -> "12.5" (services parse integers where they can).
std::string FormatNumber(double v) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// Turns a /health body into one readable line, naming each camera that is not streaming.
std::string DescribeUnhealthy(const std::string& body) {
  auto j = Json::Parse(body);
  if (!j.ok()) return "unhealthy: " + body;
  std::string out;
  for (const auto& cam : j->Get("detail").Get("cameras").AsArray()) {
    std::string err = cam.Get("last_error").AsString();
    if (err.empty()) continue;
    out += (out.empty() ? "" : "; ") + std::string("camera ") + cam.Get("name").AsString() + ": " +
           err;
  }
  if (!out.empty()) return out;
  std::string redis = j->Get("detail").Get("redis").AsString();
  if (!redis.empty() && redis != "connected") return "redis " + redis;
  return "unhealthy: " + j->Get("detail").Dump();
}

int StartupTimeoutMs(const std::string& name) {
  if (name == "postgres") return 120000;   // initdb on the first start
  if (name == "loadgen") return 120000;    // encodes every camera's loop first
  if (name == "detection") return 180000;  // may synthesise weights and load the model
  if (name == "capture") return 20000;     // every camera must deliver a frame
  return 20000;
}

int64_t BackoffNs(int consecutive_failures) {
  return std::min<int64_t>(kMaxBackoffNs, 500000000LL << std::min(consecutive_failures - 1, 6));
}

StatusOr<SystemConfig> ReadResolvedConfig(const StateDir& dir) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(dir.ConfigFile()));
  ASSIGN_OR_RETURN(Json json, Json::Parse(text));
  return ConfigFromJson(json);
}

}  // namespace

std::vector<std::string> Supervisor::ServiceNames(const SystemConfig& config) {
  std::vector<std::string> names;
  if (config.redis_url.empty()) names.push_back("redis");
  if (config.postgres_url.empty()) names.push_back("postgres");
  if (config.real_cameras.empty()) names.push_back("loadgen");
  names.push_back("capture");
  names.push_back("detection");
  names.push_back("aggregation");
  for (int i = 2; i <= config.aggregation_processes; ++i) {
    names.push_back("aggregation-" + std::to_string(i));
  }
  names.push_back("api");
  if (config.api_client_rate > 0) names.push_back("apiclient");
  if (config.prometheus) names.push_back("prometheus");
  return names;
}

Supervisor::Supervisor(SystemConfig config, StateDir dir, std::string bin_dir, int stop_timeout_ms)
    : config_(std::move(config)),
      dir_(std::move(dir)),
      bin_dir_(std::move(bin_dir)),
      stop_timeout_ms_(stop_timeout_ms) {
  for (const auto& name : ServiceNames(config_)) {
    Service s;
    s.name = name;
    services_.push_back(s);
  }
  redis_url_ = config_.redis_url;
  postgres_url_ = config_.postgres_url;
  if (!postgres_url_.empty()) {
    // An external server's password goes the same way as the private one's: not in argv.
    // (`up` checked that the URL parses and connects.)
    std::string without;
    if (PgSplitPassword(config_.postgres_url, &without, &postgres_password_).ok()) {
      postgres_url_ = without;
    }
  }
  rtsp_port_ = config_.rtsp_port;
  api_port_ = config_.api_port;
  if (postgres_url_.empty())
    cluster_ = std::make_unique<PostgresCluster>(dir_.DataDir() + "/postgres");
  reload_ = Json::MakeObject();
  reload_["id"] = 0;
  reload_["phase"] = "idle";
  reload_["error"] = "";
  reload_["current"] = "";
  reload_["total_s"] = 0.0;
  reload_["services"] = Json::MakeArray();
}

StatusOr<int64_t> Supervisor::RequestHeapProfile(const StateDir& dir,
                                                 const std::vector<std::string>& heap_profile) {
  ASSIGN_OR_RETURN(Json state, ReadState(dir));
  if (!SupervisorRunning(state)) return Err("framescope is not running in " + dir.root);
  // An older supervisor would take SIGUSR1's default action, which is to exit.
  if (!state.Has("reload")) {
    return Err(
        "this system's supervisor predates run-time heap_profile changes (no \"reload\" in "
        "state.json); `framescope down`, then `framescope up` with this build");
  }
  ASSIGN_OR_RETURN(SystemConfig config, ReadResolvedConfig(dir));
  config.heap_profile = heap_profile;
  // 0600 as `up` wrote it: real camera URLs may carry passwords.
  RETURN_IF_ERROR(WriteFileAtomic(dir.ConfigFile(), ConfigToJson(config).Dump(2) + "\n", 0600));
  auto pid = static_cast<pid_t>(state.Get("supervisor_pid").AsInt());
  if (kill(pid, SIGUSR1) != 0) {
    return Err("cannot signal the supervisor (pid " + std::to_string(pid) +
               "): " + strerror(errno));
  }
  return state.Get("reload").Get("id").AsInt() + 1;
}

std::vector<std::string> Supervisor::CameraNames() const {
  std::vector<std::string> names;
  if (!config_.real_cameras.empty()) {
    for (const auto& cam : config_.real_cameras) names.push_back(cam.name);
  } else {
    for (int i = 0; i < config_.cameras; ++i) names.push_back(CameraName(i));
  }
  return names;
}

StatusOr<std::string> Supervisor::WritePrometheusConfig() const {
  std::string yml =
      "# Written by the framescope supervisor at every start of prometheus.\n"
      "global:\n  scrape_interval: 5s\n  scrape_timeout: 4s\n"
      "scrape_configs:\n";
  for (const auto& s : services_) {
    if (s.name == "redis" || s.name == "postgres" || s.metrics_port <= 0) continue;
    std::string job = s.name == "prometheus" ? "prometheus" : s.name;
    yml += "  - job_name: " + job +
           "\n    static_configs:\n      - targets: ['127.0.0.1:" + std::to_string(s.metrics_port) +
           "']\n        labels: {service: " + job + "}\n";
  }
  std::string path = dir_.RunDir() + "/prometheus.yml";
  RETURN_IF_ERROR(WriteFileAtomic(path, yml));
  return path;
}

StatusOr<std::vector<std::string>> Supervisor::BuildArgv(const Service& s) const {
  std::vector<std::string> common = {"--metrics-port", std::to_string(s.metrics_port),
                                     "--port-file", dir_.PortFile(s.name)};
  std::vector<std::string> argv;
  if (s.name == "redis") {
    // Append-only file in the state dir: the stream survives a redis restart.
    argv = {"/usr/bin/redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            std::to_string(s.metrics_port),
            "--dir",
            dir_.DataDir(),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "notice"};
    return argv;
  }
  if (s.name == "postgres") return cluster_->ServerArgv(s.metrics_port, /*durable=*/true);
  if (s.name == "prometheus") {
    ASSIGN_OR_RETURN(std::string yml, WritePrometheusConfig());
    return std::vector<std::string>{
        "/usr/bin/prometheus",
        "--config.file=" + yml,
        "--storage.tsdb.path=" + dir_.DataDir() + "/prometheus",
        "--storage.tsdb.retention.time=7d",
        "--web.listen-address=127.0.0.1:" + std::to_string(s.metrics_port),
        "--log.level=warn"};
  }
  if (s.name == "loadgen") {
    argv = {bin_dir_ + "/framescope-loadgen",
            "--cameras",
            std::to_string(config_.cameras),
            "--fps",
            FormatNumber(config_.fps),
            "--resolution",
            std::to_string(config_.width) + "x" + std::to_string(config_.height),
            "--port",
            std::to_string(rtsp_port_)};
  } else if (s.name == "capture") {
    std::vector<std::string> urls, names;
    if (!config_.real_cameras.empty()) {
      for (const auto& cam : config_.real_cameras) {
        urls.push_back(cam.url);
        names.push_back(cam.name);
      }
    } else {
      for (int i = 0; i < config_.cameras; ++i) {
        urls.push_back("rtsp://127.0.0.1:" + std::to_string(rtsp_port_) + "/" + CameraName(i));
        names.push_back(CameraName(i));
      }
    }
    argv = {bin_dir_ + "/framescope-capture",
            "--cameras",
            Join(urls, ","),
            "--camera-names",
            Join(names, ","),
            "--ring-dir",
            dir_.RingDir(),
            "--ring-prefix",
            dir_.RingPrefix(),
            "--width",
            std::to_string(config_.input_size),
            "--height",
            std::to_string(config_.input_size)};
  } else if (s.name == "detection") {
    std::vector<std::string> rings, names;
    int n = config_.real_cameras.empty() ? config_.cameras
                                         : static_cast<int>(config_.real_cameras.size());
    for (int i = 0; i < n; ++i) {
      std::string cam = config_.real_cameras.empty() ? CameraName(i) : config_.real_cameras[i].name;
      rings.push_back(dir_.RingDir() + "/" + dir_.RingPrefix() + "-" + cam + ".ring");
      names.push_back(cam);
    }
    argv = {bin_dir_ + "/framescope-detection",
            "--rings",
            Join(rings, ","),
            "--camera-names",
            Join(names, ","),
            "--model",
            config_.model,
            "--redis-url",
            redis_url_,
            "--max-batch",
            std::to_string(config_.max_batch),
            "--max-wait-ms",
            std::to_string(config_.max_wait_ms),
            "--input-size",
            std::to_string(config_.input_size),
            "--conf-threshold",
            FormatNumber(config_.conf_threshold),
            "--cache-dir",
            dir_.CacheDir()};
    if (!config_.weights.empty()) {
      argv.push_back("--weights");
      argv.push_back(config_.weights);
    }
  } else if (s.name.rfind("aggregation", 0) == 0) {
    // A stable consumer name: a restarted process first re-reads what it left pending.
    argv = {bin_dir_ + "/framescope-aggregation",
            "--redis-url",
            redis_url_,
            "--postgres-url",
            postgres_url_,
            "--consumer",
            s.name,
            "--batch",
            std::to_string(config_.aggregation_batch)};
  } else if (s.name == "api") {
    argv = {bin_dir_ + "/framescope-api",
            "--redis-url",
            redis_url_,
            "--postgres-url",
            postgres_url_,
            "--listen",
            "127.0.0.1:" + std::to_string(api_port_)};
  } else if (s.name == "apiclient") {
    argv = {bin_dir_ + "/framescope-apiclient",
            "--api-url",
            "http://127.0.0.1:" + std::to_string(api_port_),
            "--rate",
            FormatNumber(config_.api_client_rate),
            "--camera-names",
            Join(CameraNames(), ",")};
  } else {
    return Err("unknown service " + s.name);
  }
  argv.insert(argv.end(), common.begin(), common.end());
  return argv;
}

Status Supervisor::CheckHealth(Service* s, std::string* detail) const {
  if (s->name == "redis") {
    auto c = RedisClient::Connect(redis_url_, "supervisor", 500);
    if (!c.ok()) return c.status();
    auto r = c->Command({"PING"});
    if (!r.ok()) return r.status();
    if (r->str != "PONG") return Err("redis answered " + r->str);
    return Status::Ok();
  }
  if (s->name == "postgres") {
    // Connects, then creates the database and pg_stat_statements if missing.
    return cluster_->WaitReady(s->metrics_port, s->pid, "framescope", 1500);
  }
  if (s->name == "prometheus") {
    auto resp = HttpGet("127.0.0.1", s->metrics_port, "/-/ready", 1000);
    if (!resp.ok()) return resp.status();
    if (resp->status != 200) return Err("prometheus not ready: " + resp->body);
    return Status::Ok();
  }
  auto pf = ReadFile(dir_.PortFile(s->name));
  if (!pf.ok()) return Err("has not written its port file yet");
  auto j = Json::Parse(*pf);
  if (!j.ok() || j->Get("pid").AsInt() != s->pid) return Err("port file is from another process");
  s->metrics_port = static_cast<int>(j->Get("metrics_port").AsInt());
  auto resp = HttpGet("127.0.0.1", s->metrics_port, "/health", 1000);
  if (!resp.ok()) return resp.status();
  *detail = resp->body;
  if (resp->status != 200) return Err(DescribeUnhealthy(resp->body));
  // Endpoints are read only now: a service declares them before it reports healthy, and the
  // port file read above may predate them (loadgen's rtsp_port once came back empty that way).
  pf = ReadFile(dir_.PortFile(s->name));
  j = pf.ok() ? Json::Parse(*pf) : StatusOr<Json>(pf.status());
  if (!j.ok() || j->Get("pid").AsInt() != s->pid) return Err("port file vanished after /health");
  s->endpoints = j->Get("endpoints");
  return Status::Ok();
}

Status Supervisor::WaitHealthy(Service* s, int timeout_ms) {
  int64_t deadline = MonotonicNs() + int64_t{timeout_ms} * 1000000;
  std::string detail, last;
  while (MonotonicNs() < deadline) {
    if (g_stop.load()) return Err("stop requested during start-up");
    int status = 0;
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
      std::string how = WIFEXITED(status)
                            ? "exited with status " + std::to_string(WEXITSTATUS(status))
                            : "was killed by signal " + std::to_string(WTERMSIG(status));
      s->pid = -1;
      return Err(how + "; last log lines:\n" + LogTail(s->name, 8));
    }
    Status st = CheckHealth(s, &detail);
    if (st.ok()) return Status::Ok();
    last = st.message();
    usleep(200000);
  }
  return Err("not healthy after " + std::to_string(timeout_ms / 1000) + " s: " + last);
}

Status Supervisor::Start(Service* s, int timeout_ms) {
  if (s->name == "redis" && s->metrics_port == 0) {
    ASSIGN_OR_RETURN(s->metrics_port, PickFreePort());
    redis_url_ = "redis://127.0.0.1:" + std::to_string(s->metrics_port);
  }
  if (s->name == "postgres") {
    if (s->metrics_port == 0) {
      ASSIGN_OR_RETURN(s->metrics_port, PickFreePort());
    }
    RETURN_IF_ERROR(cluster_->Init(dir_.LogFile("postgres")));
    // Services get the URL without the password (command lines are world-readable) and the
    // password in PGPASSWORD, which libpq reads and /proc shows only to its owner.
    ASSIGN_OR_RETURN(postgres_password_, cluster_->Password());
    ASSIGN_OR_RETURN(postgres_url_, cluster_->Url(s->metrics_port, "framescope", false));
    ASSIGN_OR_RETURN(postgres_url_full_, cluster_->Url(s->metrics_port, "framescope"));
  }
  if (s->name == "prometheus" && s->metrics_port == 0) {
    ASSIGN_OR_RETURN(s->metrics_port, PickFreePort());
  }
  ASSIGN_OR_RETURN(std::vector<std::string> argv, BuildArgv(*s));
  unlink(dir_.PortFile(s->name).c_str());
  {
    FILE* f = fopen(dir_.LogFile(s->name).c_str(), "ae");
    if (f) {
      std::vector<std::string> shown;
      for (const auto& a : argv) shown.push_back(RedactUrl(a));  // camera passwords stay out
      fprintf(f, "---- framescope supervisor: starting %s: %s\n", s->name.c_str(),
              Join(shown, " ").c_str());
      fclose(f);
    }
  }
  const RunAs* run_as = s->name == "postgres" ? cluster_->run_as() : nullptr;
  std::vector<std::string> env;  // only the services that talk to PostgreSQL get the secret
  bool pg_client = s->name == "api" || s->name.rfind("aggregation", 0) == 0;
  if (pg_client && !postgres_password_.empty()) env.push_back("PGPASSWORD=" + postgres_password_);
  s->heap_profiled = HeapProfiled(config_, s->name);
  if (s->heap_profiled) {
    // Cleared at every start: a restarted service's dir holds only its current process's file.
    std::string heap_dir = dir_.HeapDir(s->name);
    RETURN_IF_ERROR(memory::PrepareHeapDir(heap_dir));
    for (std::string& e : memory::HeapProfileEnv(bin_dir_, heap_dir)) env.push_back(std::move(e));
  }
  ASSIGN_OR_RETURN(s->pid, SpawnProcess(argv, dir_.LogFile(s->name), run_as, env));
  s->state = "starting";
  s->started_at_ns = WallNs();
  WriteState();
  RETURN_IF_ERROR(WaitHealthy(s, timeout_ms));
  s->state = "running";
  if (s->name == "loadgen") {
    // Pin the RTSP port so a restarted loadgen comes back where capture looks for it.
    std::string port = s->endpoints.Get("rtsp_port").AsString();
    if (!port.empty()) rtsp_port_ = atoi(port.c_str());
  }
  if (s->name == "api") {
    // Pinned too: the API clients (and users) keep talking to the same port.
    std::string http = s->endpoints.Get("http").AsString();
    auto colon = http.rfind(':');
    if (colon != std::string::npos) api_port_ = atoi(http.c_str() + colon + 1);
  }
  if (s->name == "prometheus") {
    s->endpoints = Json::MakeObject();
    s->endpoints["http"] = "http://127.0.0.1:" + std::to_string(s->metrics_port);
  }
  LOG(INFO) << s->name << " healthy (pid " << s->pid << ")";
  WriteState();
  return Status::Ok();
}

void Supervisor::ReapAndRestart() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    for (auto& s : services_) {
      if (s.pid != pid) continue;
      std::string how = WIFEXITED(status)
                            ? "exited with status " + std::to_string(WEXITSTATUS(status))
                            : "killed by signal " + std::to_string(WTERMSIG(status));
      int64_t ran_ns = WallNs() - s.started_at_ns;
      s.consecutive_failures = ran_ns > kStableAfterNs ? 1 : s.consecutive_failures + 1;
      int64_t backoff = BackoffNs(s.consecutive_failures);
      s.pid = -1;
      s.state = "restarting";
      s.restart_at_ns = MonotonicNs() + backoff;
      LOG(WARNING) << s.name << " " << how << " after " << ran_ns / 1000000000
                   << " s; restarting in " << backoff / 1000000 << " ms";
    }
  }
  for (auto& s : services_) {
    if (s.state != "restarting" || MonotonicNs() < s.restart_at_ns || g_stop.load()) continue;
    ++s.restarts;
    Status st = Start(&s, StartupTimeoutMs(s.name));
    if (!st.ok()) {
      LOG(ERROR) << s.name << " restart failed: " << st.message();
      ScheduleRestart(&s);
    }
    WriteState();
  }
}

void Supervisor::ScheduleRestart(Service* s) {
  if (s->pid > 0) {
    TerminateProcess(s->pid, stop_timeout_ms_, s->name == "postgres" ? SIGINT : SIGTERM);
  }
  s->pid = -1;
  s->consecutive_failures++;
  s->state = "restarting";
  s->restart_at_ns = MonotonicNs() + BackoffNs(s->consecutive_failures);
}

void Supervisor::ApplyHeapProfileChange() {
  reload_["id"] = reload_.Get("id").AsInt() + 1;
  reload_["phase"] = "running";
  reload_["error"] = "";
  reload_["services"] = Json::MakeArray();
  WriteState();
  const int64_t start_ns = MonotonicNs();
  Status st = [this]() -> Status {
    ASSIGN_OR_RETURN(SystemConfig next, ReadResolvedConfig(dir_));
    for (const auto& change : CompareConfigs(config_, next)) {
      if (change.key != "heap_profile") {
        return Err(change.key +
                   " cannot change while the system runs (`framescope down`, then "
                   "`framescope up`)");
      }
    }
    config_.heap_profile = next.heap_profile;
    // One at a time, each healthy before the next is touched: the others keep serving.
    for (auto& s : services_) {
      if (g_stop.load()) return Err("stop requested");
      if (s.pid <= 0 || s.heap_profiled == HeapProfiled(config_, s.name)) continue;
      RETURN_IF_ERROR(RestartWithNewSettings(&s).Annotate(s.name));
    }
    return Status::Ok();
  }();
  reload_["total_s"] = static_cast<double>(MonotonicNs() - start_ns) / 1e9;
  reload_["phase"] = st.ok() ? "done" : "failed";
  reload_["error"] = st.ok() ? "" : st.message();
  reload_["current"] = "";
  if (!st.ok()) LOG(ERROR) << "heap_profile change failed: " << st.message();
  WriteState();
}

// A deliberate restart, not a crash: not counted in `restarts`. A service that does not come
// back healthy goes on the crash schedule, so it is retried with the new settings.
Status Supervisor::RestartWithNewSettings(Service* s) {
  const int64_t start_ns = MonotonicNs();
  const pid_t old_pid = s->pid;
  LOG(INFO) << "restarting " << s->name << (HeapProfiled(config_, s->name) ? " with" : " without")
            << " " << memory::kHeapLibrary;
  reload_["current"] = s->name;
  s->state = "restarting";
  WriteState();
  TerminateProcess(s->pid, stop_timeout_ms_);
  s->pid = -1;
  if (Status st = Start(s, StartupTimeoutMs(s->name)); !st.ok()) {
    ScheduleRestart(s);
    return st;
  }
  Json done = Json::MakeObject();
  done["name"] = s->name;
  done["old_pid"] = static_cast<int64_t>(old_pid);
  done["pid"] = static_cast<int64_t>(s->pid);
  done["restart_s"] = static_cast<double>(MonotonicNs() - start_ns) / 1e9;
  reload_["services"].Push(done);
  return Status::Ok();
}

void Supervisor::StopAll() {
  phase_ = phase_ == "failed" ? phase_ : "stopping";
  WriteState();
  for (auto it = services_.rbegin(); it != services_.rend(); ++it) {
    if (it->pid > 0) {
      // PostgreSQL: SIGINT is its fast shutdown (SIGTERM would wait for clients to leave).
      bool killed = TerminateProcess(it->pid, it->name == "postgres" ? 20000 : stop_timeout_ms_,
                                     it->name == "postgres" ? SIGINT : SIGTERM);
      LOG(INFO) << "stopped " << it->name << (killed ? " (SIGKILL after timeout)" : "");
    }
    it->pid = -1;
    if (it->state != "failed") it->state = "stopped";
  }
  // Anything left in our process group (e.g. a grandchild) goes too.
  for (pid_t pid : ProcessGroupMembers(getpgrp())) {
    LOG(WARNING) << "killing leftover process " << pid << " (" << ProcessCmdline(pid) << ")";
    kill(pid, SIGKILL);
  }
  RemoveRings(dir_);
  if (phase_ != "failed") phase_ = "stopped";
  WriteState();
}

void Supervisor::WriteState() {
  Json j = Json::MakeObject();
  j["version"] = 1;
  j["supervisor_pid"] = static_cast<int64_t>(getpid());
  j["phase"] = phase_;
  j["error"] = error_;
  j["started_at"] = static_cast<double>(started_at_ns_) / 1e9;
  j["redis_url"] = redis_url_;  // status and tests connect with it; 0600 (see below)
  j["postgres_url"] = postgres_url_full_.empty() ? config_.postgres_url : postgres_url_full_;
  Json config = ConfigToJson(config_);
  Json cams = Json::MakeArray();
  for (const auto& cam : config.Get("real_cameras").AsArray()) {
    Json redacted = cam;
    redacted["url"] = RedactUrl(cam.Get("url").AsString());
    cams.Push(redacted);
  }
  config["real_cameras"] = cams;
  config["redis_url"] = RedactUrl(config_.redis_url);
  config["postgres_url"] = RedactUrl(config_.postgres_url);
  j["config"] = config;
  Json arr = Json::MakeArray();
  for (const auto& s : services_) {
    Json o = Json::MakeObject();
    o["name"] = s.name;
    o["pid"] = static_cast<int64_t>(s.pid);
    o["state"] = s.state;
    o["restarts"] = s.restarts;
    o["started_at"] = static_cast<double>(s.started_at_ns) / 1e9;
    bool no_metrics = s.name == "redis" || s.name == "postgres";
    o["metrics_port"] = no_metrics ? 0 : s.metrics_port;
    o["endpoints"] = s.endpoints;
    if (s.name == "redis") o["endpoints"]["redis"] = redis_url_;
    if (s.name == "postgres") o["endpoints"]["postgres"] = RedactUrl(postgres_url_);
    o["log"] = dir_.LogFile(s.name);
    if (s.heap_profiled) o["heap_dir"] = dir_.HeapDir(s.name);
    arr.Push(o);
  }
  j["services"] = arr;
  j["reload"] = reload_;
  if (auto st = WriteFileAtomic(dir_.StateFile(), j.Dump(2) + "\n", 0600); !st.ok()) {
    LOG(ERROR) << st.message();
  }
}

std::string Supervisor::LogTail(const std::string& service, int lines) const {
  auto text = ReadFile(dir_.LogFile(service));
  if (!text.ok()) return "";
  std::string t = *text;
  size_t pos = t.size();
  for (int i = 0; i <= lines && pos != std::string::npos && pos > 0; ++i)
    pos = t.rfind('\n', pos - 1);
  return pos == std::string::npos ? t : t.substr(pos + 1);
}

int Supervisor::Run() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  sa.sa_handler = OnReloadSignal;
  sigaction(SIGUSR1, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  started_at_ns_ = WallNs();
  WriteState();

  for (auto& s : services_) {
    if (g_stop.load()) break;
    Status st = Start(&s, StartupTimeoutMs(s.name));
    if (!st.ok() && !g_stop.load()) {
      error_ =
          s.name + " failed to start: " + st.message() + "\n(log: " + dir_.LogFile(s.name) + ")";
      LOG(ERROR) << error_;
      s.state = "failed";
      phase_ = "failed";
      StopAll();
      return 1;
    }
  }
  if (g_stop.load()) {
    // `up` was interrupted (Ctrl-C) or `down` ran during start-up: stopped, not failed.
    LOG(INFO) << "stop requested during start-up";
    StopAll();
    return 0;
  }
  phase_ = "running";
  WriteState();
  LOG(INFO) << "all " << services_.size() << " services healthy";

  int64_t last_write = MonotonicNs();
  while (!g_stop.load()) {
    ReapAndRestart();
    if (g_reload.exchange(false)) ApplyHeapProfileChange();
    if (MonotonicNs() - last_write > 2000000000LL) {
      WriteState();
      last_write = MonotonicNs();
    }
    usleep(100000);
  }
  LOG(INFO) << "stop requested";
  StopAll();
  return 0;
}

}  // namespace fs
