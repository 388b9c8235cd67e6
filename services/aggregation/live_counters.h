// Live counters (Redis hashes live:camera:<camera>, one field per class plus last_ts) that
// are exact after a crash at any point, including between COMMIT and the Redis writes.
//
// Protocol (one consumer = one --consumer name, one process at a time):
//  1. The batch's transaction inserts the rows, the rollups, and the batch's increments
//     into live_counter_outbox under a new batch id (a PostgreSQL sequence, so the ids of a
//     consumer increase in commit order). The same statement deletes this consumer's older
//     outbox rows that it knows are applied.
//  2. After COMMIT, one Lua script (atomic in Redis, and one MULTI/EXEC in its append-only
//     file) applies the increments only if the batch id is above the consumer's
//     high-water mark in the hash live:applied_batch, and raises the mark.
//  3. A consumer commits its next batch only after the previous one's script succeeded.
//     Whenever that is unknown (a crash, a dropped connection) the outbox is drained first:
//     every batch in it is applied (the mark makes a second application a no-op), then
//     deleted. Every consumer also drains at start and every claim period, so a dead
//     consumer's last batch is applied by the others.
// From 1 and 3, a consumer's batches are applied in id order and each is committed only
// when all earlier ones are applied, so "id <= mark" means "applied": no batch is counted
// twice (the mark) or never (the outbox keeps it until a script confirmed it).
// Limit: Redis must keep what it acknowledged. If it loses writes (no persistence, or the
// last second of an appendfsync-everysec file after a crash), the counters and marks roll
// back together: counters never exceed the rows, but the lost increments stay lost.
// The mark hash gains one field per distinct consumer name (stable names: a handful).
#ifndef FRAMESCOPE_SERVICES_AGGREGATION_LIVE_COUNTERS_H_
#define FRAMESCOPE_SERVICES_AGGREGATION_LIVE_COUNTERS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/clients/pg_client.h"

namespace fs {

// The live-counter increments of one committed batch, as stored in live_counter_outbox.
struct LiveBatch {
  struct Camera {
    int64_t last_ts_ns = 0;                 // newest capture time in the batch
    std::map<std::string, int64_t> counts;  // class -> detections added
  };
  std::string consumer;
  int64_t id = 0;
  std::map<std::string, Camera> cameras;

  void Add(const std::string& camera, const std::string& class_name, int64_t n,
           int64_t capture_ts_ns);
  bool empty() const { return cameras.empty(); }
};

// The EVAL command that applies `batch` exactly once (see the protocol above).
std::vector<std::string> LiveCounterEval(const LiveBatch& batch);
// Every batch in live_counter_outbox, in (consumer, id) order.
StatusOr<std::vector<LiveBatch>> ReadLiveOutbox(PgClient* pg);
// Deletes the outbox rows of `consumer` up to `through_id` (all applied).
Status DeleteAppliedOutbox(PgClient* pg, const std::string& consumer, int64_t through_id);

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_AGGREGATION_LIVE_COUNTERS_H_
