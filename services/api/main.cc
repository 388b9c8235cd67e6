// framescope-api: the read api over detections, rollups and live counters. All logic lives
// in fs_api (api_server.h).
#include <cstdio>
#include <cstdlib>

#include "services/api/api_server.h"
#include "services/common/service.h"
#include "src/base/flags.h"
#include "src/base/logging.h"

int main(int argc, char** argv) {
  fs::ServiceRuntime runtime("api");
  fs::api::ApiOptions opts;
  fs::FlagSet flags(
      "framescope-api",
      "Serves what framescope-aggregation stored, as JSON over HTTP:\n"
      "  GET /cameras                              cameras, last seen, live counters\n"
      "  GET /cameras/{id}/stats?window=1m|1h      per-class counts and mean score\n"
      "  GET /detections?camera=&class=&since=&until=&limit=   newest first (limit <= 1000;\n"
      "      since/until: RFC 3339 or unix seconds)\n"
      "  GET /health, GET /metrics\n"
      "History comes from PostgreSQL (prepared statements), live counters from Redis.\n"
      "Bad parameters answer 400, a slow or unreachable dependency 503 within\n"
      "--pg-timeout-ms + 500 ms. With a token (--token or FRAMESCOPE_API_TOKEN; the\n"
      "environment keeps it out of `ps`), every path but /health and /metrics needs\n"
      "'Authorization: Bearer <token>'. The bound address is written to the port file as\n"
      "endpoints.http. Exit codes: 0 stopped by signal, 1 cannot listen, 2 bad flags.\n"
      "Example: framescope-api --listen 127.0.0.1:8080 --postgres-url "
      "postgresql://u:p@127.0.0.1:5432/framescope");
  flags.String("listen", &opts.listen, "HOST:PORT for the api (port 0 = any free port)");
  flags.String("postgres-url", &opts.postgres_url, "PostgreSQL (postgresql:// URL or key=value)");
  flags.String("redis-url", &opts.redis_url, "Redis holding the live:camera:* counters");
  flags.String("token", &opts.token,
               "bearer token required on the api paths (default: $FRAMESCOPE_API_TOKEN; empty = "
               "no authentication)");
  flags.Int("pg-connections", &opts.pg_connections, "PostgreSQL connections (1..64)");
  flags.Int("pg-timeout-ms", &opts.pg_timeout_ms,
            "statement_timeout of every query; a request gets its 503 after this + 500 ms");
  flags.Int("redis-timeout-ms", &opts.redis_timeout_ms, "Redis connect and read/write timeout");
  runtime.AddFlags(&flags);
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (!flags.WasSet("token")) {
    if (const char* env = std::getenv("FRAMESCOPE_API_TOKEN")) opts.token = env;
  }
  if (fs::Status st = fs::api::ValidateApiOptions(opts); !st.ok()) {
    std::fprintf(stderr, "framescope-api: %s\n", st.message().c_str());
    return 2;
  }

  fs::api::ApiServer server(opts);
  if (fs::Status st = server.Start(); !st.ok()) {
    LOG(ERROR) << st.message();
    return 1;
  }
  // Before runtime.Start(), so the port file is complete the first time it is written.
  runtime.SetEndpoint("http", server.url());
  if (fs::Status st = runtime.Start([&server] { return server.Health(); }); !st.ok()) {
    LOG(ERROR) << st.message();
    return 1;
  }
  while (!fs::ServiceRuntime::SleepOrStop(1000)) {
  }
  // Both servers call into `server` from their threads: stop them before it goes away.
  runtime.http().Stop();
  bool clean = server.Stop();
  LOG(INFO) << "stopped";
  if (!clean) {
    // Threads blocked on a hung PostgreSQL must not wake up during static destruction.
    std::fflush(nullptr);
    std::_Exit(0);
  }
  return 0;
}
