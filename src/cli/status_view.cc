#include "src/cli/status_view.h"

#include <cmath>
#include <cstdio>

#include "src/base/http.h"
#include "src/clients/pg_client.h"
#include "src/clients/prom_text.h"
#include "src/clients/redis_client.h"
#include "src/system/process.h"

namespace fs {

Json CollectStatus(const Json& state) {
  Json out = Json::MakeObject();
  out["phase"] = state.Get("phase");
  out["error"] = state.Get("error");
  out["redis_url"] = state.Get("redis_url");
  Json services = Json::MakeArray();
  for (const auto& s : state.Get("services").AsArray()) {
    Json o = Json::MakeObject();
    std::string name = s.Get("name").AsString();
    pid_t pid = static_cast<pid_t>(s.Get("pid").AsInt(-1));
    bool alive = ProcessAlive(pid);
    o["name"] = name;
    o["pid"] = alive ? Json(static_cast<int64_t>(pid)) : Json();
    o["state"] = s.Get("state");
    o["restarts"] = s.Get("restarts");
    o["uptime_s"] = alive ? Json(std::round(ProcessUptimeSeconds(pid) * 10) / 10) : Json();
    o["endpoints"] = s.Get("endpoints");
    o["log"] = s.Get("log");
    if (s.Has("heap_dir")) o["heap_dir"] = s.Get("heap_dir");  // up --heap-profile counts it
    bool healthy = false;
    int port = static_cast<int>(s.Get("metrics_port").AsInt());
    if (alive && name == "redis") {
      auto c = RedisClient::Connect(state.Get("redis_url").AsString(), "status", 500);
      healthy = c.ok() && c->Command({"PING"}).ok();
      if (healthy) {
        auto len = c->Command({"XLEN", "detections"});
        if (len.ok() && len->type == RedisReply::Type::kInteger) {
          o["detail"] = "stream detections: " + std::to_string(len->integer) + " entries";
        }
      }
    } else if (alive && name == "postgres") {
      auto c = PgClient::Connect(state.Get("postgres_url").AsString(), "status", 1, 1000);
      healthy = c.ok();
      if (healthy) {
        // The statistics collector's estimate: a count(*) would scan a growing table.
        auto r = (*c)->Exec(
            "SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables "
            "WHERE relname = 'detections'");
        if (r.ok() && r->rows.size() == 1 && r->rows[0][0]) {
          o["detail"] = "detections: ~" + *r->rows[0][0] + " rows (pg_stat n_live_tup)";
        }
      }
    } else if (alive && port > 0) {
      // Prometheus has no /health; /-/ready is its equivalent.
      auto h = HttpGet("127.0.0.1", port, name == "prometheus" ? "/-/ready" : "/health", 1000);
      healthy = h.ok() && h->status == 200;
      auto m = HttpGet("127.0.0.1", port, "/metrics", 1000);
      if (m.ok() && m->status == 200) {
        auto samples = ParsePromText(m->body);
        if (samples.ok()) {
          std::map<std::string, std::string> svc{{"service", name}};
          // Only report what the service exports (loadgen has no frames_in, for example).
          auto put = [&](const char* key, const char* metric) {
            for (const auto& sample : *samples) {
              if (sample.name == metric) {
                o[key] = SumSamples(*samples, metric, svc);
                return;
              }
            }
          };
          put("frames_in", "framescope_frames_in_total");
          put("frames_out", "framescope_frames_out_total");
          put("frames_dropped", "framescope_frames_dropped_total");
          put("fps", "framescope_service_fps");
          auto total = [&](const char* metric) {
            return static_cast<int64_t>(SumSamples(*samples, metric, {}));
          };
          if (name.rfind("aggregation", 0) == 0) {
            o["detail"] =
                "stored " + std::to_string(total("framescope_aggregation_rows_inserted_total")) +
                " rows, " + std::to_string(total("framescope_aggregation_write_failures_total")) +
                " failed batches";
          } else if (name == "api") {
            o["detail"] = "served " + std::to_string(total("http_request_duration_seconds_count")) +
                          " requests";
          } else if (name == "apiclient") {
            int64_t sent = 0, failed = 0;
            for (const auto& sample : *samples) {
              if (sample.name != "framescope_apiclient_responses_total") continue;
              sent += static_cast<int64_t>(sample.value);
              auto code = sample.labels.find("code");
              if (code == sample.labels.end() || code->second != "200") {
                failed += static_cast<int64_t>(sample.value);
              }
            }
            o["detail"] = "sent " + std::to_string(sent) + " requests, " + std::to_string(failed) +
                          " not 200";
          }
          if (o.Get("fps").is_number()) o["fps"] = std::round(o.Get("fps").AsDouble() * 10) / 10;
          o["metrics"] = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
        }
      }
    }
    o["healthy"] = healthy;
    services.Push(o);
  }
  out["services"] = services;
  return out;
}

std::string RenderStatusTable(const Json& status) {
  std::string out;
  char line[512];
  snprintf(line, sizeof(line), "%-13s %-8s %-10s %-8s %8s %10s %10s %9s %6s  %s\n", "SERVICE",
           "PID", "STATE", "HEALTH", "UPTIME", "FRAMES_IN", "FRAMES_OUT", "DROPPED", "FPS",
           "ENDPOINT");
  out += line;
  auto num = [](const Json& v) {
    if (!v.is_number()) return std::string("-");
    char b[32];
    snprintf(b, sizeof(b), v.AsDouble() == std::floor(v.AsDouble()) ? "%.0f" : "%.1f",
             v.AsDouble());
    return std::string(b);
  };
  for (const auto& s : status.Get("services").AsArray()) {
    std::string endpoint;
    const Json& ep = s.Get("endpoints");
    for (const char* key : {"rtsp", "redis", "postgres", "http"}) {
      if (ep.Has(key)) {
        endpoint = ep.Get(key).AsString();
        break;
      }
    }
    if (s.Has("metrics")) endpoint += (endpoint.empty() ? "" : " ") + s.Get("metrics").AsString();
    std::string uptime = s.Get("uptime_s").is_number() ? num(s.Get("uptime_s")) + "s" : "-";
    std::string restarts = s.Get("restarts").AsInt() > 0
                               ? " (" + std::to_string(s.Get("restarts").AsInt()) + " restarts)"
                               : "";
    snprintf(line, sizeof(line), "%-13s %-8s %-10s %-8s %8s %10s %10s %9s %6s  %s%s\n",
             s.Get("name").AsString().c_str(), num(s.Get("pid")).c_str(),
             s.Get("state").AsString().c_str(), s.Get("healthy").AsBool() ? "ok" : "FAIL",
             uptime.c_str(), num(s.Get("frames_in")).c_str(), num(s.Get("frames_out")).c_str(),
             num(s.Get("frames_dropped")).c_str(), num(s.Get("fps")).c_str(), endpoint.c_str(),
             restarts.c_str());
    out += line;
    if (s.Has("detail")) out += std::string(14, ' ') + s.Get("detail").AsString() + "\n";
    if (s.Has("heap_dir")) {
      out += std::string(14, ' ') + "heap: counted in " + s.Get("heap_dir").AsString() + "\n";
    }
  }
  return out;
}

}  // namespace fs
