// framescope-api: the reference system's read api over what aggregation stored.
//
//   GET /health                      200 when PostgreSQL (with the schema) and Redis answer
//   GET /metrics                     Prometheus text (the same registry as the metrics port)
//   GET /cameras                     cameras, last seen (PostgreSQL), live counters (Redis)
//   GET /cameras/{id}/stats?window=1m|1h   per-class counts and mean score (rollups)
//   GET /detections?camera=&class=&since=&until=&limit=   newest first
//
// History comes from PostgreSQL through prepared statements (parameters bound, never
// spliced into SQL), live numbers from Redis. Every parameter is validated (api_params.h):
// bad input is a 400 with {"error": ...}, never a 500. A slow or dead dependency is a 503
// within the PostgreSQL deadline (statement timeout + grace, pg_pool.h), never a hang.
// With a token, everything but /health and /metrics needs "Authorization: Bearer <token>".
#ifndef FRAMESCOPE_SERVICES_API_API_SERVER_H_
#define FRAMESCOPE_SERVICES_API_API_SERVER_H_

#include <map>
#include <memory>
#include <string>

#include "services/api/pg_pool.h"
#include "services/api/redis_pool.h"
#include "services/common/service.h"
#include "src/base/http.h"
#include "src/base/status.h"
#include "src/clients/metrics.h"

namespace fs::api {

struct ApiOptions {
  std::string listen = "127.0.0.1:0";
  std::string postgres_url = "postgresql://127.0.0.1:5432/framescope";
  std::string redis_url = "redis://127.0.0.1:6379";
  // Empty: no authentication.
  std::string token;
  int pg_connections = 4;
  int pg_timeout_ms = 2000;  // statement_timeout; requests answer 503 after this + 500 ms
  int redis_timeout_ms = 1000;
};

// Checks ranges; an error is a usage error (exit 2).
Status ValidateApiOptions(const ApiOptions& options);

class ApiServer {
 public:
  explicit ApiServer(ApiOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds the listen address and starts serving; PostgreSQL and Redis are connected lazily
  // (a dependency that is down is a 503, not a start failure).
  Status Start();
  // Stops serving. False when PostgreSQL connections were left stuck on a hung server.
  bool Stop();

  int port() const { return http_.port(); }
  // http://host:port as clients should use it.
  std::string url() const;

  // Routes and answers one request (the HTTP server calls this on its worker threads).
  HttpResponse Handle(const HttpRequest& request);
  // Checks PostgreSQL (with the schema) and Redis now; the /health of both ports.
  HealthReport Health();

 private:
  enum class RouteKind { kHealth, kMetrics, kCameras, kStats, kDetections, kUnknown };
  struct Route {
    RouteKind kind = RouteKind::kUnknown;
    std::string pattern;    // the metrics label: "/cameras/{id}/stats", never the raw path
    std::string camera_id;  // kStats
  };
  static Route Match(const std::string& path);
  // Method and token checks, then the route's handler.
  HttpResponse Answer(const Route& route, const HttpRequest& request);

  HttpResponse HandleHealth(const HttpRequest& request);
  HttpResponse HandleCameras(const HttpRequest& request);
  HttpResponse HandleStats(const HttpRequest& request, const std::string& camera);
  HttpResponse HandleDetections(const HttpRequest& request);
  void Record(const std::string& pattern, int status, int64_t start_ns);

  ApiOptions options_;
  std::string host_;
  int listen_port_ = 0;
  PgPool pg_;
  RedisPool redis_;
  HttpServer http_;
  std::map<std::string, Histogram*> durations_;  // per route pattern, filled in the ctor
};

}  // namespace fs::api

#endif  // FRAMESCOPE_SERVICES_API_API_SERVER_H_
