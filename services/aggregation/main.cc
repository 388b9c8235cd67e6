// framescope-aggregation: Redis Stream `detections` -> PostgreSQL (detections + rollups),
// exactly once per detection; live counters in Redis. See aggregation_service.h.
#include <cstdio>
#include <cstdlib>

#include "services/aggregation/aggregation_service.h"
#include "services/common/service.h"
#include "src/base/flags.h"
#include "src/base/logging.h"

int main(int argc, char** argv) {
  fs::ServiceRuntime runtime("aggregation");
  fs::AggregationOptions opts;
  opts.postgres_url = "postgresql://127.0.0.1:5432/framescope";
  fs::FlagSet flags(
      "framescope-aggregation",
      "Consumes the Redis Stream of detections through a consumer group and stores each\n"
      "detection exactly once in PostgreSQL (table detections, rollups per 1 s and 1 min),\n"
      "acknowledging entries only after the transaction committed; bumps live counters in\n"
      "the Redis hashes live:camera:<camera>. Several processes may share the group with\n"
      "different --consumer names. Keeps retrying while PostgreSQL or Redis is down\n"
      "(/health answers 503 meanwhile).");
  flags.String("redis-url", &opts.redis_url, "Redis holding the stream");
  flags.String("postgres-url", &opts.postgres_url, "PostgreSQL (postgresql:// URL or key=value)");
  flags.String("stream", &opts.stream, "Redis Stream to consume");
  flags.String("group", &opts.group, "consumer group (created from the stream's start)");
  flags.String("consumer", &opts.consumer,
               "consumer name, unique per process (default: <hostname>-<pid>; reuse a name "
               "to take over that consumer's pending entries at start)");
  flags.Int("batch", &opts.batch, "entries per read and per transaction");
  flags.Int("block-ms", &opts.block_ms, "XREADGROUP BLOCK timeout");
  flags.Int("claim-idle-ms", &opts.claim_idle_ms,
            "take over entries pending this long with another consumer (XAUTOCLAIM)");
  runtime.AddFlags(&flags);
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (opts.batch < 1 || opts.batch > 100000 || opts.block_ms < 1 || opts.block_ms > 60000 ||
      opts.claim_idle_ms < 1 || opts.redis_url.empty() || opts.postgres_url.empty() ||
      opts.stream.empty() || opts.group.empty()) {
    fprintf(stderr,
            "framescope-aggregation: --batch must be 1..100000, --block-ms 1..60000 (0 would "
            "block forever), --claim-idle-ms >= 1; --redis-url, --postgres-url, --stream and "
            "--group must not be empty\n");
    return 2;
  }

  // Test-only: crash or drop Redis at a chosen point (see AggregationFault).
  if (const char* spec = getenv("FRAMESCOPE_AGGREGATION_FAULT"); spec != nullptr) {
    auto fault = fs::ParseAggregationFault(spec);
    if (!fault.ok()) {
      fprintf(stderr, "framescope-aggregation: %s\n", fault.status().message().c_str());
      return 2;
    }
    opts.fault = *fault;
    LOG(WARNING) << "fault injection armed: " << spec;
  }

  fs::AggregationService service(opts);
  if (auto st = runtime.Start([&service] { return service.Health(); }); !st.ok()) {
    LOG(ERROR) << st.message();
    return 1;
  }
  service.Run();
  // /health reads `service` from HTTP threads: stop them before `service` goes away.
  runtime.http().Stop();
  LOG(INFO) << "stopped";
  return 0;
}
