// framescope-aggregation: consumes the Redis Stream `detections` through a consumer group
// and stores every detection exactly once in PostgreSQL, with per-second and per-minute
// rollups, then acknowledges the entries and bumps live counters in Redis.
//
// Exactly-once (in PostgreSQL) with at-least-once delivery from Redis:
//  * the detections primary key is built from what detection publishes (camera,
//    capture_ts_ns, frame_seq, det_idx), so a redelivered or re-added entry is a no-op;
//  * one transaction per batch: COPY into a temp staging table, INSERT ... ON CONFLICT DO
//    NOTHING RETURNING, and the rollup upserts fed only by the RETURNING rows;
//  * XACK only after COMMIT returned; anything not acked stays in the group's pending list
//    and is read again (own list with XREADGROUP 0 after a reconnect or a failed write,
//    dead consumers' lists with XAUTOCLAIM).
// The Redis live counters (live:camera:<cam>) are updated after the commit from the rows the
// commit added: they never double count, but a crash between COMMIT and that round trip
// loses those increments (they are "live", the database is the record).
#ifndef FRAMESCOPE_SERVICES_AGGREGATION_AGGREGATION_SERVICE_H_
#define FRAMESCOPE_SERVICES_AGGREGATION_AGGREGATION_SERVICE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "src/clients/metrics.h"
#include "src/clients/pg_client.h"
#include "src/clients/redis_client.h"
#include "services/common/service.h"

namespace fs {

struct AggregationOptions {
  std::string redis_url = "redis://127.0.0.1:6379";
  std::string postgres_url;
  std::string stream = "detections";
  std::string group = "aggregation";
  std::string consumer;  // unique per process sharing the group
  int batch = 500;       // entries per XREADGROUP / transaction
  int block_ms = 1000;   // XREADGROUP BLOCK
  // Entries pending longer than this with another consumer are taken over (XAUTOCLAIM).
  // Must exceed the longest time a live consumer holds a batch, or a slow consumer's batch
  // is processed twice (harmless for the database, wasted work).
  int claim_idle_ms = 30000;
};

// "<hostname>-<pid>": unique per process on one host and stable for its lifetime.
std::string DefaultConsumerName();

class AggregationService {
 public:
  explicit AggregationService(AggregationOptions options);

  // Loops until ServiceRuntime::StopRequested(). Never gives up on PostgreSQL or Redis:
  // reconnects with backoff (250 ms doubling to 5 s) and reports the state in Health().
  void Run();
  HealthReport Health() const;

 private:
  struct Link {  // one connection's state as /health shows it
    bool up = false;
    std::string last_error;
    int64_t backoff_ns = 250000000;
    int64_t next_attempt_ns = 0;
  };

  bool EnsurePostgres();
  bool EnsureRedis();
  bool EnsureGroup();
  void PostgresFailed(const std::string& error);
  void RedisFailed(const std::string& error);
  // Re-reads this consumer's own pending list (XREADGROUP ... 0). False on failure.
  bool ReplayOwnPending();
  // Takes over entries idle in other consumers' pending lists (XAUTOCLAIM). False on failure.
  bool ClaimIdle();
  // Reads new entries (XREADGROUP ... >). False on failure.
  bool ReadNew();
  // Stores one array of [id, fields] entries in one transaction, then acknowledges them.
  // `trimmed_ids`: entries XAUTOCLAIM reported as deleted (counted, nothing to ack).
  // False when the batch stays pending (it is re-read after the reconnect / backoff).
  bool ProcessEntries(const RedisReply& entries, size_t trimmed_ids);
  // Returns the reply, or nullopt after recording a connection failure / group loss.
  std::optional<RedisReply> RedisCommand(const std::vector<std::string>& args);

  AggregationOptions options_;
  std::unique_ptr<PgClient> pg_;
  std::optional<RedisClient> redis_;
  bool migrated_ = false;
  bool group_ready_ = false;
  bool replay_pending_ = true;  // own pending list must be re-read before new entries
  int64_t next_claim_ns_ = 0;

  mutable std::mutex health_mu_;  // guards the fields below (read by the HTTP thread)
  Link pg_link_;
  Link redis_link_;
  bool migrated_for_health_ = false;
  int schema_version_ = 0;
  std::string last_batch_error_;
  int64_t pause_until_ns_ = 0;  // after a failed batch: no reads before this time

  RateMeter rate_;
  Counter* entries_read_;
  Counter* rows_inserted_;
  Counter* duplicates_;
  Counter* batches_;
  Counter* malformed_;
  Counter* trimmed_;
  Counter* claimed_;
  Counter* write_failures_;
  Histogram* read_latency_;
  Histogram* write_latency_;
  Histogram* ack_latency_;
  Histogram* end_to_end_;
  Gauge* fps_;
};

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_AGGREGATION_AGGREGATION_SERVICE_H_
