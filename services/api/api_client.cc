#include "services/api/api_client.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <thread>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/base/logging.h"
#include "src/base/net.h"
#include "src/clients/metrics.h"
#include "src/config/config.h"  // CameraName

namespace fs::api {
namespace {

constexpr int kMixSize = 10;

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// Sleeps until `due_ns` (CLOCK_MONOTONIC) in slices, so a stop request is seen within 100 ms.
void SleepUntil(int64_t due_ns) {
  for (;;) {
    int64_t now = MonotonicNs();
    if (now >= due_ns || ServiceRuntime::StopRequested()) return;
    int64_t until = std::min(due_ns, now + 100000000);
    timespec ts{static_cast<time_t>(until / 1000000000), static_cast<long>(until % 1000000000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
  }
}

// The api's address from its port file (endpoints.http), waiting up to `wait_ms` for the
// api to write it.
StatusOr<std::string> UrlFromPortFile(const std::string& path, int wait_ms) {
  std::string last = "not found";
  for (int waited = 0;; waited += 100) {
    auto text = ReadFile(path);
    if (text.ok()) {
      auto j = Json::Parse(*text);
      if (j.ok() && j->Get("endpoints").Get("http").is_string()) {
        return j->Get("endpoints").Get("http").AsString();
      }
      last = j.ok() ? "no endpoints.http in it" : j.status().message();
    } else {
      last = text.status().message();
    }
    if (waited >= wait_ms || ServiceRuntime::SleepOrStop(100)) break;
  }
  return Err("api port file " + path + ": " + last + "; is framescope-api running?");
}

}  // namespace

void AddApiClientFlags(FlagSet* flags, ApiClientOptions* o) {
  flags->String("api-url", &o->api_url, "the api, http://HOST:PORT");
  flags->String("api-port-file", &o->api_port_file,
                "or: the api's port file, for its endpoints.http (waits up to 10 s for it)");
  flags->String("token", &o->token, "bearer token (default: $FRAMESCOPE_API_TOKEN)");
  flags->Double("rate", &o->rate, "requests per second (open loop: scheduled by the clock)");
  flags->Int("workers", &o->workers, "threads sending requests (1..256)");
  flags->Double("duration-s", &o->duration_s, "stop after this long (0 = until SIGTERM/SIGINT)");
  flags->Int("cameras", &o->cameras, "cameras cam00..cam<N-1> for the per-camera requests");
  flags->String("camera-names", &o->camera_names,
                "comma-separated camera names (overrides --cameras; neither: ask GET /cameras)");
  flags->Double("report-interval-s", &o->report_interval_s, "seconds between report lines");
  flags->Int("timeout-ms", &o->timeout_ms, "per-request timeout");
}

Status FinishApiClientOptions(const FlagSet& flags, ApiClientOptions* o) {
  if (o->api_url.empty() == o->api_port_file.empty()) {
    return Err("give exactly one of --api-url and --api-port-file");
  }
  if (!flags.WasSet("token")) {
    if (const char* env = std::getenv("FRAMESCOPE_API_TOKEN")) o->token = env;
  }
  if (!(o->rate > 0 && o->rate <= 100000)) return Err("--rate must be in (0, 100000]");
  if (o->workers < 1 || o->workers > 256) return Err("--workers must be 1..256");
  if (!(o->duration_s >= 0)) return Err("--duration-s must be >= 0");
  if (o->cameras < 0 || o->cameras > 1000) return Err("--cameras must be 0..1000");
  if (!(o->report_interval_s >= 0.1)) return Err("--report-interval-s must be >= 0.1");
  if (o->timeout_ms < 1 || o->timeout_ms > 600000) return Err("--timeout-ms must be 1..600000");
  o->camera_list = SplitList(o->camera_names);
  if (o->camera_list.empty()) {
    for (int i = 0; i < o->cameras; ++i) o->camera_list.push_back(CameraName(i));
  }
  for (const auto& cam : o->camera_list) {
    for (char c : cam) {
      if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
        return Err("camera name \"" + cam + "\" may only contain letters, digits, _ and -");
      }
    }
  }
  return Status::Ok();
}

PlannedRequest PlanRequest(uint64_t k, const std::vector<std::string>& cameras) {
  // Ten requests share a camera; the next ten take the next one, so every camera sees every
  // kind of request whatever the number of cameras.
  const std::string cam = cameras.empty() ? "cam00" : cameras[(k / kMixSize) % cameras.size()];
  switch (k % kMixSize) {
    case 0:
      return {"/cameras", "/cameras"};
    case 1:
    case 4:
    case 7:
      return {"/cameras/" + cam + "/stats?window=1m", "/cameras/{id}/stats"};
    case 5:
      return {"/cameras/" + cam + "/stats?window=1h", "/cameras/{id}/stats"};
    case 9:
      return {"/health", "/health"};
    default:  // 2, 3, 6, 8
      return {"/detections?camera=" + cam + "&limit=50", "/detections"};
  }
}

// ---- statistics -------------------------------------------------------------------------

LatencyStats::LatencyStats() : rng_(0x61706963) {}

void LatencyStats::Add(double latency_ms, bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  (ok ? interval_ok_ : interval_err_)++;
  (ok ? total_ok_ : total_err_)++;
  if (latency_ms < 0) return;
  interval_.push_back(latency_ms);
  ++seen_;
  if (reservoir_.size() < kReservoir) {
    reservoir_.push_back(latency_ms);
  } else if (uint64_t j = rng_() % seen_; j < kReservoir) {
    reservoir_[j] = latency_ms;
  }
}

LatencyStats::Summary LatencyStats::TakeInterval(double seconds) {
  std::vector<double> samples;
  Summary s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    samples.swap(interval_);
    s.ok = interval_ok_;
    s.errors = interval_err_;
    interval_ok_ = interval_err_ = 0;
  }
  s.seconds = seconds;
  std::sort(samples.begin(), samples.end());
  s.p50_ms = Percentile(samples, 0.50);
  s.p90_ms = Percentile(samples, 0.90);
  s.p99_ms = Percentile(samples, 0.99);
  return s;
}

LatencyStats::Summary LatencyStats::Total(double seconds) const {
  std::vector<double> samples;
  Summary s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    samples = reservoir_;
    s.ok = total_ok_;
    s.errors = total_err_;
  }
  s.seconds = seconds;
  std::sort(samples.begin(), samples.end());
  s.p50_ms = Percentile(samples, 0.50);
  s.p90_ms = Percentile(samples, 0.90);
  s.p99_ms = Percentile(samples, 0.99);
  return s;
}

double Percentile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  if (!std::is_sorted(samples.begin(), samples.end())) std::sort(samples.begin(), samples.end());
  double rank = std::ceil(q * static_cast<double>(samples.size()));
  size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return samples[std::min(i, samples.size() - 1)];
}

std::string FormatSummary(const LatencyStats::Summary& s) {
  char buf[200];
  snprintf(buf, sizeof(buf), "rate %.1f req/s ok %llu err %llu p50 %.1f ms p90 %.1f ms p99 %.1f ms",
           s.rate(), static_cast<unsigned long long>(s.ok),
           static_cast<unsigned long long>(s.errors), s.p50_ms, s.p90_ms, s.p99_ms);
  return buf;
}

// ---- the run ----------------------------------------------------------------------------

namespace {

struct Due {
  uint64_t k;
  int64_t due_ns;
};

class Runner {
 public:
  Runner(ApiClientOptions options, std::string host, int port)
      : o_(std::move(options)), host_(std::move(host)), port_(port) {
    if (!o_.token.empty()) headers_["Authorization"] = "Bearer " + o_.token;
    for (const char* route : {"/cameras", "/cameras/{id}/stats", "/detections", "/health"}) {
      latency_[route] = Metrics().GetHistogram(
          "framescope_client_request_duration_seconds",
          "Client-side latency of calls to downstream services",
          {{"source", "apiclient"}, {"target", "api"}, {"op", route}}, LatencyBucketsSeconds());
    }
    dropped_ = Metrics().GetCounter("framescope_apiclient_dropped_total",
                                    "Requests not sent because the backlog exceeded 1 s");
  }

  HealthReport Health() const {
    HealthReport h;
    std::lock_guard<std::mutex> lock(health_mu_);
    h.healthy = last_interval_ok_;
    h.detail = Json::MakeObject();
    h.detail["api"] = "http://" + host_ + ":" + std::to_string(port_);
    h.detail["target_rate"] = o_.rate;
    h.detail["last_report"] = last_report_;
    h.detail["last_error"] = last_error_;
    return h;
  }

  void Run() {
    start_ns_ = MonotonicNs();
    const int64_t end_ns =
        o_.duration_s > 0 ? start_ns_ + static_cast<int64_t>(o_.duration_s * 1e9) : INT64_MAX;
    const size_t max_backlog = static_cast<size_t>(std::max(100.0, o_.rate));
    std::vector<std::thread> workers;
    for (int i = 0; i < o_.workers; ++i) workers.emplace_back([this] { Work(); });
    std::thread reporter([this] { Report(); });

    char duration[48] = "";
    if (o_.duration_s > 0) snprintf(duration, sizeof(duration), " for %g s", o_.duration_s);
    LOG(INFO) << "sending " << o_.rate << " req/s to http://" << host_ << ":" << port_ << " with "
              << o_.workers << " workers over " << o_.camera_list.size() << " cameras" << duration;
    const double period_ns = 1e9 / o_.rate;
    for (uint64_t k = 0;; ++k) {
      int64_t due = start_ns_ + static_cast<int64_t>(static_cast<double>(k) * period_ns);
      if (due >= end_ns) break;
      SleepUntil(due);
      if (ServiceRuntime::StopRequested()) break;
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.size() >= max_backlog) {
        stats_.AddError();
        dropped_->Inc();
        continue;
      }
      queue_.push_back({k, due});
      cv_.notify_one();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      scheduling_done_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers) t.join();
    double elapsed = static_cast<double>(MonotonicNs() - start_ns_) / 1e9;
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
    }
    report_cv_.notify_all();
    reporter.join();
    char secs[32];
    snprintf(secs, sizeof(secs), "%.1f", elapsed);
    LOG(INFO) << "done after " << secs << " s: " << FormatSummary(stats_.Total(elapsed));
  }

 private:
  void Work() {
    for (;;) {
      Due d;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return scheduling_done_ || !queue_.empty(); });
        if (queue_.empty()) return;  // scheduling done and drained
        d = queue_.front();
        queue_.pop_front();
      }
      PlannedRequest req = PlanRequest(d.k, o_.camera_list);
      auto r = HttpGet(host_, port_, req.path, o_.timeout_ms, headers_);
      // From the due time, not the send time: queueing behind busy workers is latency too.
      double latency_s = static_cast<double>(MonotonicNs() - d.due_ns) / 1e9;
      latency_.at(req.route)->Observe(latency_s);
      bool ok = r.ok() && r->status == 200;
      stats_.Add(latency_s * 1e3, ok);
      std::string code = r.ok() ? std::to_string(r->status) : "error";
      Metrics()
          .GetCounter("framescope_apiclient_responses_total", "api responses by route and code",
                      {{"op", req.route}, {"code", code}})
          ->Inc();
      if (!ok) {
        std::lock_guard<std::mutex> lock(health_mu_);
        last_error_ = req.path + ": " +
                      (r.ok() ? "HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 200)
                              : r.status().message());
      }
    }
  }

  void Report() {
    int64_t last = start_ns_;
    const int64_t interval_ns = static_cast<int64_t>(o_.report_interval_s * 1e9);
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (report_cv_.wait_for(lock, std::chrono::nanoseconds(last + interval_ns - MonotonicNs()),
                                [this] { return finished_; })) {
          return;
        }
      }
      int64_t now = MonotonicNs();
      if (now < last + interval_ns) continue;
      LatencyStats::Summary s = stats_.TakeInterval(static_cast<double>(now - last) / 1e9);
      last = now;
      std::string line = FormatSummary(s);
      LOG(INFO) << line;
      std::lock_guard<std::mutex> lock(health_mu_);
      last_report_ = line;
      last_interval_ok_ = s.ok > 0 || s.errors == 0;
    }
  }

  const ApiClientOptions o_;
  const std::string host_;
  const int port_;
  std::map<std::string, std::string> headers_;
  std::map<std::string, Histogram*> latency_;
  Counter* dropped_;
  LatencyStats stats_;
  int64_t start_ns_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;         // workers: a request is due, or scheduling ended
  std::condition_variable report_cv_;  // reporter: the run finished
  std::deque<Due> queue_;
  bool scheduling_done_ = false;
  bool finished_ = false;

  mutable std::mutex health_mu_;
  bool last_interval_ok_ = true;
  std::string last_report_;
  std::string last_error_;
};

// Asks the api for its cameras (for per-camera requests when none were given).
std::vector<std::string> DiscoverCameras(const std::string& host, int port,
                                         const std::map<std::string, std::string>& headers) {
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto r = HttpGet(host, port, "/cameras", 2000, headers);
    if (r.ok() && r->status == 200) {
      std::vector<std::string> out;
      auto j = Json::Parse(r->body);
      if (j.ok()) {
        for (const auto& c : j->Get("cameras").AsArray()) out.push_back(c.Get("camera").AsString());
      }
      return out;
    }
    LOG(WARNING) << "GET /cameras: "
                 << (r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message())
                 << "; retrying";
    if (ServiceRuntime::SleepOrStop(1000)) break;
  }
  return {};
}

}  // namespace

Status RunApiClient(ApiClientOptions o, ServiceRuntime* runtime) {
  std::string url = o.api_url;
  if (!o.api_port_file.empty()) {
    ASSIGN_OR_RETURN(url, UrlFromPortFile(o.api_port_file, 10000));
  }
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(ParseHostPort(url, &host, &port).Annotate("--api-url"));
  if (o.camera_list.empty()) {
    std::map<std::string, std::string> headers;
    if (!o.token.empty()) headers["Authorization"] = "Bearer " + o.token;
    o.camera_list = DiscoverCameras(host, port, headers);
    if (o.camera_list.empty()) {
      LOG(WARNING) << "no cameras given and none found at " << url
                   << "/cameras; per-camera requests use cam00";
      o.camera_list = {CameraName(0)};
    }
  }
  Runner runner(std::move(o), host, port);
  RETURN_IF_ERROR(runtime->Start([&runner] { return runner.Health(); }));
  runner.Run();
  // /health reads `runner` from HTTP threads: stop them before it goes away.
  runtime->http().Stop();
  return Status::Ok();
}

}  // namespace fs::api
