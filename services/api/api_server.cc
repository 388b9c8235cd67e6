#include "services/api/api_server.h"

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <vector>

#include "services/api/api_params.h"
#include "src/base/clock.h"
#include "src/base/json.h"
#include "src/base/logging.h"
#include "src/base/net.h"
#include "src/config/config.h"  // RedactUrl

namespace fs::api {
namespace {

// At most this many cameras in /cameras (and scanned by a /detections without camera).
constexpr int kMaxCameras = 1000;

// ---- SQL --------------------------------------------------------------------------------
// Fixed statements; values are always $n parameters. The table names in the stats
// statements are chosen by the validated window (two constants), never from input.

// Distinct cameras by a skip scan of the (camera, capture_ts DESC) index: one index probe
// per camera instead of reading every detection. Each camera's newest row gives last seen.
constexpr char kCamerasName[] = "api_cameras";
constexpr char kCamerasSql[] = R"sql(
WITH RECURSIVE cams(camera) AS (
  (SELECT camera FROM detections ORDER BY camera LIMIT 1)
  UNION ALL
  SELECT (SELECT d.camera FROM detections d WHERE d.camera > c.camera ORDER BY d.camera LIMIT 1)
  FROM cams c WHERE c.camera IS NOT NULL
)
SELECT c.camera, last.capture_ts_ns
FROM cams c
CROSS JOIN LATERAL (
  SELECT d.capture_ts_ns FROM detections d WHERE d.camera = c.camera
  ORDER BY d.capture_ts DESC LIMIT 1
) last
WHERE c.camera IS NOT NULL
ORDER BY c.camera
LIMIT $1)sql";

constexpr char kLastSeenName[] = "api_camera_last_seen";
constexpr char kLastSeenSql[] = R"sql(
SELECT capture_ts_ns FROM detections WHERE camera = $1 ORDER BY capture_ts DESC LIMIT 1)sql";

// $2: start of the oldest bucket in the window (computed by the api, see HandleStats).
constexpr char kStats1mName[] = "api_stats_1m";
constexpr char kStats1mSql[] = R"sql(
SELECT class, sum(count)::bigint, sum(score_sum)
FROM detection_rollup_1s
WHERE camera = $1 AND bucket >= $2::timestamptz
GROUP BY class ORDER BY class)sql";
constexpr char kStats1hName[] = "api_stats_1h";
constexpr char kStats1hSql[] = R"sql(
SELECT class, sum(count)::bigint, sum(score_sum)
FROM detection_rollup_1m
WHERE camera = $1 AND bucket >= $2::timestamptz
GROUP BY class ORDER BY class)sql";

// /detections, one statement per filter shape so each has a plan that uses its index:
// by camera (detections_camera_ts), by class (detections_class_ts), or neither (the
// newest rows of each camera via the index, merged). since/until default to -infinity /
// infinity, so they are always bound.
constexpr char kByCameraName[] = "api_detections_by_camera";
constexpr char kByCameraSql[] = R"sql(
SELECT camera, capture_ts_ns, frame_seq, det_idx, class, class_id, score, x, y, w, h
FROM detections
WHERE camera = $1 AND ($2::text IS NULL OR class = $2)
  AND capture_ts >= $3::timestamptz AND capture_ts <= $4::timestamptz
ORDER BY capture_ts DESC, frame_seq DESC, det_idx
LIMIT $5)sql";
constexpr char kByClassName[] = "api_detections_by_class";
constexpr char kByClassSql[] = R"sql(
SELECT camera, capture_ts_ns, frame_seq, det_idx, class, class_id, score, x, y, w, h
FROM detections
WHERE class = $1 AND capture_ts >= $2::timestamptz AND capture_ts <= $3::timestamptz
ORDER BY capture_ts DESC, camera, frame_seq DESC, det_idx
LIMIT $4)sql";
constexpr char kAllName[] = "api_detections_all";
constexpr char kAllSql[] = R"sql(
WITH RECURSIVE cams(camera) AS (
  (SELECT camera FROM detections ORDER BY camera LIMIT 1)
  UNION ALL
  SELECT (SELECT d.camera FROM detections d WHERE d.camera > c.camera ORDER BY d.camera LIMIT 1)
  FROM cams c WHERE c.camera IS NOT NULL
)
SELECT r.camera, r.capture_ts_ns, r.frame_seq, r.det_idx, r.class, r.class_id, r.score,
       r.x, r.y, r.w, r.h
FROM cams c
CROSS JOIN LATERAL (
  SELECT camera, capture_ts, capture_ts_ns, frame_seq, det_idx, class, class_id, score, x, y, w, h
  FROM detections d
  WHERE d.camera = c.camera AND d.capture_ts >= $1::timestamptz AND d.capture_ts <= $2::timestamptz
  ORDER BY d.capture_ts DESC LIMIT $3
) r
WHERE c.camera IS NOT NULL
ORDER BY r.capture_ts DESC, r.camera, r.frame_seq DESC, r.det_idx
LIMIT $3)sql";

// Resolves each table through the search path, as the queries do.
constexpr char kSchemaName[] = "api_schema_ready";
constexpr char kSchemaSql[] =
    "SELECT to_regclass('detections') IS NOT NULL AND "
    "to_regclass('detection_rollup_1s') IS NOT NULL AND "
    "to_regclass('detection_rollup_1m') IS NOT NULL";

// ---- helpers ----------------------------------------------------------------------------

HttpResponse JsonResponse(int status, const Json& body) {
  return HttpResponse{status, "application/json", body.Dump() + "\n"};
}

HttpResponse JsonError(int status, const std::string& message) {
  Json body = Json::MakeObject();
  body["error"] = message;
  return JsonResponse(status, body);
}

HttpResponse PgErrorResponse(const PgOutcome& outcome) {
  switch (outcome.failure) {
    case PgFailure::kSchemaMissing:
      return JsonError(503,
                       "the detections tables do not exist yet: framescope-aggregation creates "
                       "them when it starts; retry later (" +
                           outcome.status.message() + ")");
    case PgFailure::kBadInput:
      return JsonError(400, "PostgreSQL rejected a parameter: " + outcome.status.message());
    case PgFailure::kQueryError:
      LOG(ERROR) << "query failed: " << outcome.status.message();
      return JsonError(500, "query failed: " + outcome.status.message());
    case PgFailure::kTimeout:
    case PgFailure::kUnavailable:
    case PgFailure::kNone:
      break;
  }
  return JsonError(503, outcome.status.message());
}

int64_t ToInt(const std::optional<std::string>& v) {
  return v ? std::strtoll(v->c_str(), nullptr, 10) : 0;
}
double ToDouble(const std::optional<std::string>& v) {
  return v ? std::strtod(v->c_str(), nullptr) : 0.0;
}
std::string ToString(const std::optional<std::string>& v) { return v ? *v : std::string(); }

// capture_ts_ns exceeds 2^53, which JSON numbers (doubles) cannot hold exactly: it is
// returned as a decimal string beside the RFC 3339 rendering.
void PutTimestamp(Json* obj, const std::string& key, int64_t nanos) {
  (*obj)[key] = Rfc3339Nanos(nanos);
  (*obj)[key + "_ns"] = std::to_string(nanos);
}

// HGETALL live:camera:<cam> as aggregation writes it: one field per class (a count) and
// last_ts (capture time, ns, of the newest stored detection).
Json LiveJson(const RedisReply& reply) {
  Json live = Json::MakeObject();
  Json counts = Json::MakeObject();
  int64_t total = 0;
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    const std::string& field = reply.elements[i].str;
    int64_t value = std::strtoll(reply.elements[i + 1].str.c_str(), nullptr, 10);
    if (field == "last_ts") {
      PutTimestamp(&live, "last_ts", value);
    } else {
      counts[field] = value;
      total += value;
    }
  }
  live["counts"] = counts;
  live["total"] = total;
  return live;
}

// "HOST:PORT" with port 0..65535 (ParseHostPort rejects 0, which means "any free port" here).
Status ParseListen(const std::string& text, std::string* host, int* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Err("--listen \"" + text + "\": expected HOST:PORT, e.g. 127.0.0.1:8080 (port 0 = any)");
  }
  char* end = nullptr;
  long p = std::strtol(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p < 0 || p > 65535) {
    return Err("--listen \"" + text + "\": port must be 0..65535");
  }
  *host = text.substr(0, colon);
  *port = static_cast<int>(p);
  return Status::Ok();
}

Status CheckReply(const RedisReply& r, const std::string& what) {
  if (r.is_error()) return Err("redis " + what + ": " + r.str);
  return Status::Ok();
}

}  // namespace

Status ValidateApiOptions(const ApiOptions& o) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(ParseListen(o.listen, &host, &port));
  if (o.postgres_url.empty()) return Err("--postgres-url must not be empty");
  if (o.redis_url.empty()) return Err("--redis-url must not be empty");
  if (o.pg_connections < 1 || o.pg_connections > 64) return Err("--pg-connections must be 1..64");
  if (o.pg_timeout_ms < 100 || o.pg_timeout_ms > 600000) {
    return Err("--pg-timeout-ms must be 100..600000");
  }
  if (o.redis_timeout_ms < 50 || o.redis_timeout_ms > 60000) {
    return Err("--redis-timeout-ms must be 50..60000");
  }
  return Status::Ok();
}

ApiServer::ApiServer(ApiOptions options)
    : options_(std::move(options)),
      pg_(PgPoolOptions{options_.postgres_url, "api", options_.pg_connections,
                        options_.pg_timeout_ms, /*grace_ms=*/500,
                        /*connect_timeout_s=*/std::max(2, (options_.pg_timeout_ms + 999) / 1000),
                        /*max_queued=*/64}),
      redis_(options_.redis_url, "api", options_.redis_timeout_ms) {
  for (const char* pattern :
       {"/health", "/metrics", "/cameras", "/cameras/{id}/stats", "/detections", "other"}) {
    durations_[pattern] = Metrics().GetHistogram("http_request_duration_seconds",
                                                 "Server-side latency of api requests by route",
                                                 {{"route", pattern}}, LatencyBucketsSeconds());
  }
}

ApiServer::~ApiServer() { Stop(); }

Status ApiServer::Start() {
  RETURN_IF_ERROR(ParseListen(options_.listen, &host_, &listen_port_));
  pg_.Start();
  http_.HandlePrefix("/", [this](const HttpRequest& r) { return Handle(r); });
  RETURN_IF_ERROR(
      http_.Start(host_, listen_port_).Annotate("api listen address " + options_.listen));
  LOG(INFO) << "api at " << url() << " (postgres " << RedactUrl(options_.postgres_url) << ", redis "
            << RedactUrl(options_.redis_url)
            << (options_.token.empty() ? ", no token" : ", bearer token required") << ")";
  return Status::Ok();
}

bool ApiServer::Stop() {
  http_.Stop();
  return pg_.Stop();
}

std::string ApiServer::url() const {
  std::string host = host_ == "0.0.0.0" || host_.empty() ? "127.0.0.1" : host_;
  return "http://" + host + ":" + std::to_string(http_.port());
}

ApiServer::Route ApiServer::Match(const std::string& path) {
  if (path == "/health") return {RouteKind::kHealth, "/health", ""};
  if (path == "/metrics") return {RouteKind::kMetrics, "/metrics", ""};
  if (path == "/cameras") return {RouteKind::kCameras, "/cameras", ""};
  if (path == "/detections") return {RouteKind::kDetections, "/detections", ""};
  static const std::string kPrefix = "/cameras/", kSuffix = "/stats";
  if (path.size() > kPrefix.size() + kSuffix.size() && path.rfind(kPrefix, 0) == 0 &&
      path.compare(path.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0) {
    std::string id = path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size());
    if (id.find('/') == std::string::npos) return {RouteKind::kStats, "/cameras/{id}/stats", id};
  }
  return {RouteKind::kUnknown, "other", ""};
}

HttpResponse ApiServer::Handle(const HttpRequest& request) {
  int64_t start = MonotonicNs();
  Route route = Match(request.path);
  HttpResponse resp = Answer(route, request);
  Record(route.pattern, resp.status, start);
  return resp;
}

HttpResponse ApiServer::Answer(const Route& route, const HttpRequest& request) {
  // HttpServer already answers other methods with 405; kept for callers of Handle().
  if (request.method != "GET" && request.method != "HEAD") {
    return JsonError(405, "only GET is supported");
  }
  // Open without a token: probes and scrapers (/health, /metrics), and unknown paths (404).
  bool open = route.kind == RouteKind::kHealth || route.kind == RouteKind::kMetrics ||
              route.kind == RouteKind::kUnknown;
  if (!open && !options_.token.empty()) {
    auto it = request.headers.find("authorization");
    if (it == request.headers.end()) {
      return JsonError(401, "missing bearer token: send 'Authorization: Bearer <token>'");
    }
    if (!BearerTokenMatches(it->second, options_.token)) {
      return JsonError(401, "invalid bearer token");
    }
  }
  if (route.kind != RouteKind::kUnknown) {
    if (Status st = CheckRepeatedParams(request.repeated_query_keys); !st.ok()) {
      return JsonError(400, st.message());
    }
  }
  switch (route.kind) {
    case RouteKind::kHealth:
      return HandleHealth(request);
    case RouteKind::kMetrics:
      return {200, "text/plain; version=0.0.4; charset=utf-8", Metrics().RenderText()};
    case RouteKind::kCameras:
      return HandleCameras(request);
    case RouteKind::kStats:
      return HandleStats(request, route.camera_id);
    case RouteKind::kDetections:
      return HandleDetections(request);
    case RouteKind::kUnknown:
      break;
  }
  return JsonError(404,
                   "no such path; try /cameras, /cameras/{id}/stats, /detections, /health or "
                   "/metrics");
}

void ApiServer::Record(const std::string& pattern, int status, int64_t start_ns) {
  durations_.at(pattern)->Observe(static_cast<double>(MonotonicNs() - start_ns) / 1e9);
  Metrics()
      .GetCounter("http_responses_total", "api responses by route and status code",
                  {{"route", pattern}, {"code", std::to_string(status)}})
      ->Inc();
}

// ---- /health ----------------------------------------------------------------------------

HealthReport ApiServer::Health() {
  auto schema_ready = std::make_shared<bool>(false);
  PgOutcome pg = pg_.Run([schema_ready](PgClient* c) -> Status {
    ASSIGN_OR_RETURN(PgResult r, ExecStatement(c, kSchemaName, kSchemaSql, {}));
    *schema_ready = !r.rows.empty() && !r.rows[0].empty() && r.rows[0][0] == "t";
    return Status::Ok();
  });
  Status redis = redis_.With([](RedisClient* c) -> Status {
    ASSIGN_OR_RETURN(RedisReply r, c->Command({"PING"}));
    return CheckReply(r, "PING");
  });
  HealthReport h;
  h.healthy = pg.ok() && *schema_ready && redis.ok();
  Json& d = h.detail = Json::MakeObject();
  d["status"] = h.healthy ? "ok" : "unavailable";
  d["postgres"] = pg.ok() ? "connected" : "down";
  if (!pg.ok()) d["postgres_error"] = pg.status.message();
  d["schema"] = !pg.ok() ? "unknown" : *schema_ready ? "ready" : "missing";
  if (pg.ok() && !*schema_ready) {
    d["schema_error"] =
        "tables detections, detection_rollup_1s, detection_rollup_1m not found: "
        "framescope-aggregation creates them when it starts";
  }
  d["redis"] = redis.ok() ? "connected" : "down";
  if (!redis.ok()) d["redis_error"] = redis.message();
  return h;
}

HttpResponse ApiServer::HandleHealth(const HttpRequest& request) {
  if (Status st = CheckAllowedParams(request.query, {}); !st.ok())
    return JsonError(400, st.message());
  HealthReport h = Health();
  return JsonResponse(h.healthy ? 200 : 503, h.detail);
}

// ---- /cameras ---------------------------------------------------------------------------

HttpResponse ApiServer::HandleCameras(const HttpRequest& request) {
  if (Status st = CheckAllowedParams(request.query, {}); !st.ok())
    return JsonError(400, st.message());
  auto rows = std::make_shared<PgResult>();
  PgOutcome pg = pg_.Run([rows](PgClient* c) -> Status {
    ASSIGN_OR_RETURN(*rows,
                     ExecStatement(c, kCamerasName, kCamerasSql, {std::to_string(kMaxCameras)}));
    return Status::Ok();
  });
  if (!pg.ok()) return PgErrorResponse(pg);

  std::vector<std::string> cameras;
  for (const auto& row : rows->rows) cameras.push_back(ToString(row.at(0)));
  // One round trip for every camera's live counters.
  std::vector<RedisReply> live;
  Status redis = Status::Ok();
  if (!cameras.empty()) {
    redis = redis_.With([&](RedisClient* c) -> Status {
      for (const auto& cam : cameras) c->Append({"HGETALL", "live:camera:" + cam});
      ASSIGN_OR_RETURN(live, c->Flush("HGETALL"));
      for (const auto& r : live) RETURN_IF_ERROR(CheckReply(r, "HGETALL"));
      return Status::Ok();
    });
  }
  Json list = Json::MakeArray();
  for (size_t i = 0; i < cameras.size(); ++i) {
    Json cam = Json::MakeObject();
    cam["camera"] = cameras[i];
    PutTimestamp(&cam, "last_seen", ToInt(rows->rows[i].at(1)));
    cam["live"] = redis.ok() && i < live.size() ? LiveJson(live[i]) : Json();
    list.Push(cam);
  }
  Json body = Json::MakeObject();
  body["cameras"] = list;
  body["count"] = static_cast<int64_t>(cameras.size());
  if (!redis.ok()) body["live_error"] = redis.message();
  return JsonResponse(200, body);
}

// ---- /cameras/{id}/stats ----------------------------------------------------------------

HttpResponse ApiServer::HandleStats(const HttpRequest& request, const std::string& camera) {
  if (Status st = ValidateCameraName("camera id", camera); !st.ok()) {
    return JsonError(400, st.message());
  }
  if (Status st = CheckAllowedParams(request.query, {"window"}); !st.ok()) {
    return JsonError(400, st.message());
  }
  auto it = request.query.find("window");
  auto window = ParseWindow(it == request.query.end() ? "1m" : it->second);
  if (!window.ok()) return JsonError(400, window.status().message());

  // The window is the last 60 buckets of its rollup, the current (partial) one included:
  // 1m = 60 one-second buckets, 1h = 60 one-minute buckets.
  const int64_t now_ns = WallNs();
  const int64_t unit_s = window->seconds / 60;
  const int64_t first_bucket_s = (now_ns / 1000000000 / unit_s) * unit_s - 59 * unit_s;
  const std::string name = window->name == "1m" ? kStats1mName : kStats1hName;
  const std::string sql = window->name == "1m" ? kStats1mSql : kStats1hSql;
  const std::string from = PgTimestampLiteral(first_bucket_s * 1000000);

  struct Out {
    PgResult stats;
    PgResult last_seen;
  };
  auto out = std::make_shared<Out>();
  PgOutcome pg = pg_.Run([out, camera, name, sql, from](PgClient* c) -> Status {
    ASSIGN_OR_RETURN(out->stats, ExecStatement(c, name, sql, {camera, from}));
    ASSIGN_OR_RETURN(out->last_seen, ExecStatement(c, kLastSeenName, kLastSeenSql, {camera}));
    return Status::Ok();
  });
  if (!pg.ok()) return PgErrorResponse(pg);

  RedisReply live;
  Status redis = redis_.With([&](RedisClient* c) -> Status {
    ASSIGN_OR_RETURN(live, c->Command({"HGETALL", "live:camera:" + camera}));
    return CheckReply(live, "HGETALL");
  });
  bool live_known = redis.ok() && !live.elements.empty();
  if (out->last_seen.rows.empty() && !live_known) {
    return JsonError(404, "unknown camera '" + camera + "': no detections stored for it");
  }

  Json classes = Json::MakeArray();
  int64_t total = 0;
  for (const auto& row : out->stats.rows) {
    Json c = Json::MakeObject();
    int64_t count = ToInt(row.at(1));
    c["class"] = ToString(row.at(0));
    c["count"] = count;
    c["avg_score"] = count > 0 ? ToDouble(row.at(2)) / static_cast<double>(count) : 0.0;
    total += count;
    classes.Push(c);
  }
  Json body = Json::MakeObject();
  body["camera"] = camera;
  body["window"] = window->name;
  body["window_seconds"] = window->seconds;
  body["rollup"] = window->table;
  body["from"] = Rfc3339Nanos(first_bucket_s * 1000000000);
  body["to"] = Rfc3339Nanos(now_ns);
  body["classes"] = classes;
  body["total"] = total;
  if (!out->last_seen.rows.empty()) {
    PutTimestamp(&body, "last_seen", ToInt(out->last_seen.rows[0].at(0)));
  } else {
    body["last_seen"] = Json();
  }
  body["live"] = redis.ok() ? LiveJson(live) : Json();
  if (!redis.ok()) body["live_error"] = redis.message();
  return JsonResponse(200, body);
}

// ---- /detections ------------------------------------------------------------------------

HttpResponse ApiServer::HandleDetections(const HttpRequest& request) {
  auto q = ParseDetectionsQuery(request.query);
  if (!q.ok()) return JsonError(400, q.status().message());
  std::string since = q->since_us ? PgTimestampLiteral(*q->since_us) : "-infinity";
  std::string until = q->until_us ? PgTimestampLiteral(*q->until_us) : "infinity";
  std::string limit = std::to_string(q->limit);
  std::string name, sql;
  std::vector<std::optional<std::string>> params;
  if (q->camera) {
    name = kByCameraName;
    sql = kByCameraSql;
    params = {*q->camera, q->class_name, since, until, limit};
  } else if (q->class_name) {
    name = kByClassName;
    sql = kByClassSql;
    params = {*q->class_name, since, until, limit};
  } else {
    name = kAllName;
    sql = kAllSql;
    params = {since, until, limit};
  }
  auto rows = std::make_shared<PgResult>();
  PgOutcome pg = pg_.Run([rows, name, sql, params](PgClient* c) -> Status {
    ASSIGN_OR_RETURN(*rows, ExecStatement(c, name, sql, params));
    return Status::Ok();
  });
  if (!pg.ok()) return PgErrorResponse(pg);

  Json list = Json::MakeArray();
  for (const auto& row : rows->rows) {
    if (row.size() < 11) continue;
    Json d = Json::MakeObject();
    d["camera"] = ToString(row[0]);
    PutTimestamp(&d, "capture_ts", ToInt(row[1]));
    d["frame_seq"] = ToInt(row[2]);
    d["det_idx"] = ToInt(row[3]);
    d["class"] = ToString(row[4]);
    d["class_id"] = ToInt(row[5]);
    d["score"] = ToDouble(row[6]);
    Json box = Json::MakeObject();
    box["x"] = ToDouble(row[7]);
    box["y"] = ToDouble(row[8]);
    box["w"] = ToDouble(row[9]);
    box["h"] = ToDouble(row[10]);
    d["box"] = box;
    list.Push(d);
  }
  Json body = Json::MakeObject();
  body["detections"] = list;
  body["count"] = static_cast<int64_t>(list.size());
  body["limit"] = q->limit;
  return JsonResponse(200, body);
}

}  // namespace fs::api
