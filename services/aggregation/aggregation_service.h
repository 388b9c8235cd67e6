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
// The Redis live counters (live:camera:<cam>) count each stored detection exactly once, also
// across a crash between COMMIT and the Redis writes: the batch's increments are committed
// with its rows into live_counter_outbox and applied idempotently (live_counters.h).
#ifndef FRAMESCOPE_SERVICES_AGGREGATION_AGGREGATION_SERVICE_H_
#define FRAMESCOPE_SERVICES_AGGREGATION_AGGREGATION_SERVICE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "services/common/service.h"
#include "src/clients/metrics.h"
#include "src/clients/pg_client.h"
#include "src/clients/redis_client.h"

namespace fs {

struct LiveBatch;

// Test-only fault injection, from FRAMESCOPE_AGGREGATION_FAULT=<point>:<action>:<n> (never
// set in production): at <point> of the n-th batch that stored new rows (from 1), the
// process exits with kFaultExitCode (as a kill -9 there would leave things) or drops its
// Redis connection and carries on (as a Redis restart there would). Points:
//   after_commit    COMMIT returned, nothing sent to Redis yet;
//   after_counters  the live-counter script ran and answered, XACK not sent yet.
struct AggregationFault {
  enum class Point { kNone, kAfterCommit, kAfterCounters };
  enum class Action { kExit, kDropRedis };
  Point point = Point::kNone;
  Action action = Action::kExit;
  int64_t batch = 0;
};
inline constexpr int kFaultExitCode = 86;
StatusOr<AggregationFault> ParseAggregationFault(const std::string& spec);

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
  AggregationFault fault;  // tests only
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
  // The batch's transaction: rows, rollups and live-counter outbox. Fills what it added.
  Status WriteBatch(const std::vector<std::string>& lines, LiveBatch* live, int64_t* inserted);
  // One round trip: the live-counter script for `live` (if any rows were added) and XACK.
  bool ApplyAndAck(const LiveBatch& live, const std::vector<std::string>& ids);
  // Applies every batch in live_counter_outbox (idempotent), then deletes them. False on
  // failure (the connection is reset and the drain is retried before any new batch).
  bool DrainLiveOutbox();
  // False when the injected fault dropped the Redis connection; exits for kExit.
  bool InjectFault(AggregationFault::Point point);
  // Returns the reply, or nullopt after recording a connection failure / group loss.
  std::optional<RedisReply> RedisCommand(const std::vector<std::string>& args);

  AggregationOptions options_;
  std::unique_ptr<PgClient> pg_;
  std::optional<RedisClient> redis_;
  bool migrated_ = false;
  bool group_ready_ = false;
  bool replay_pending_ = true;  // own pending list must be re-read before new entries
  // A batch of ours may be committed without its live counters applied (at start, and from
  // COMMIT until the script answered): drain the outbox before the next batch.
  bool drain_live_ = true;
  int64_t applied_through_ = 0;  // our highest batch id known applied (outbox rows deletable)
  int64_t stored_batches_ = 0;   // batches that added rows (for the fault injection)
  bool fault_fired_ = false;
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
  Counter* live_recovered_;
  Histogram* read_latency_;
  Histogram* write_latency_;
  Histogram* ack_latency_;
  Histogram* end_to_end_;
  Gauge* fps_;
};

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_AGGREGATION_AGGREGATION_SERVICE_H_
