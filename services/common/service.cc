#include "services/common/service.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>

#include "src/base/file_util.h"
#include "src/base/logging.h"
#include "src/clients/metrics.h"

namespace fs {
namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }
}  // namespace

ServiceRuntime::ServiceRuntime(std::string name) : name_(std::move(name)) { SetLogTag(name_); }

void ServiceRuntime::AddFlags(FlagSet* flags) {
  flags->String("metrics-host", &metrics_host_, "address for /metrics and /health");
  flags->Int("metrics-port", &metrics_port_, "port for /metrics and /health (0 = any free port)");
  flags->String("port-file", &port_file_, "write {pid, metrics_port, endpoints} JSON here");
}

bool ServiceRuntime::StopRequested() { return g_stop.load(); }
void ServiceRuntime::RequestStop() { g_stop.store(true); }

bool ServiceRuntime::SleepOrStop(int ms) {
  for (int waited = 0; waited < ms; waited += 20) {
    if (g_stop.load()) return true;
    usleep(20000);
  }
  return g_stop.load();
}

Status ServiceRuntime::Start(std::function<HealthReport()> health) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  http_.Handle("/metrics", [](const HttpRequest&) {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", Metrics().RenderText()};
  });
  http_.Handle("/health", [this, health](const HttpRequest&) {
    HealthReport report = health ? health() : HealthReport{true, {}};
    Json body = Json::MakeObject();
    body["service"] = name_;
    body["healthy"] = report.healthy;
    body["detail"] = report.detail;
    return HttpResponse{report.healthy ? 200 : 503, "application/json", body.Dump()};
  });
  RETURN_IF_ERROR(http_.Start(metrics_host_, metrics_port_).Annotate(name_ + " metrics endpoint"));
  LOG(INFO) << "metrics at http://" << metrics_host_ << ":" << http_.port() << "/metrics";
  return WritePortFile();
}

void ServiceRuntime::SetEndpoint(const std::string& key, const std::string& value) {
  endpoints_[key] = value;
  // Before Start() the metrics port is unknown: the port file is written by Start().
  if (http_.port() == 0) return;
  if (auto st = WritePortFile(); !st.ok()) LOG(WARNING) << st.message();
}

Status ServiceRuntime::WritePortFile() {
  if (port_file_.empty()) return Status::Ok();
  Json j = Json::MakeObject();
  j["service"] = name_;
  j["pid"] = static_cast<int64_t>(getpid());
  j["metrics_port"] = http_.port();
  j["endpoints"] = endpoints_;
  return WriteFileAtomic(port_file_, j.Dump(2) + "\n");
}

}  // namespace fs
