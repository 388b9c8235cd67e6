#include "services/aggregation/aggregation_service.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <utility>

#include "services/aggregation/detection_entry.h"
#include "services/aggregation/live_counters.h"
#include "services/aggregation/migrations.h"
#include "src/base/clock.h"
#include "src/base/logging.h"

namespace fs {
namespace {

constexpr int64_t kInitialBackoffNs = 250000000LL;
constexpr int64_t kMaxBackoffNs = 5000000000LL;

// Per connection: rows of one batch are COPYed here, then moved by kWriteSql. ON COMMIT
// DELETE ROWS empties it at every commit or rollback, so a failed batch leaves nothing.
constexpr char kCreateStagingSql[] = R"sql(
CREATE TEMP TABLE IF NOT EXISTS aggregation_staging (
  camera text, frame_seq bigint, capture_ts_ns bigint, det_idx integer, class text,
  class_id integer, score real, x real, y real, w real, h real, stream_id text
) ON COMMIT DELETE ROWS)sql";

// One statement per batch, inside the batch's transaction ($1 consumer, $2 its highest batch
// id known applied to Redis):
//  * `staged` drops duplicates within the batch (the same detection re-added twice);
//  * `ins` inserts, skipping keys already stored, and RETURNs only the rows it added;
//  * the rollups are fed from `ins` alone, so a redelivered batch adds 0 to them;
//  * `outbox` records the live-counter increments of the new rows under a new batch id, and
//    `applied` deletes this consumer's outbox rows already applied (live_counters.h);
//  * the result (camera, class, capture_ts_ns, n, batch id) drives the live counters and
//    the capture-to-stored latency, again only for new rows.
// Rows go in key order so concurrent consumers lock rollup rows in the same order (fewer
// deadlocks; one that happens anyway fails the batch, which is retried).
// Buckets are truncated in UTC: date_trunc on timestamptz otherwise uses the session zone.
constexpr char kWriteSql[] = R"sql(
WITH staged AS (
  SELECT DISTINCT ON (camera, capture_ts_ns, frame_seq, det_idx) *
  FROM aggregation_staging
  ORDER BY camera, capture_ts_ns, frame_seq, det_idx, stream_id
), ins AS (
  INSERT INTO detections (camera, capture_ts_ns, frame_seq, det_idx, capture_ts, class,
                          class_id, score, x, y, w, h, stream_id)
  SELECT camera, capture_ts_ns, frame_seq, det_idx,
         timestamptz 'epoch' + (capture_ts_ns / 1000) * interval '1 microsecond',
         class, class_id, score, x, y, w, h, stream_id
  FROM staged
  ORDER BY camera, capture_ts_ns, frame_seq, det_idx
  ON CONFLICT DO NOTHING
  RETURNING camera, class, capture_ts, capture_ts_ns, score
), rollup_1s AS (
  INSERT INTO detection_rollup_1s AS r (camera, class, bucket, count, score_sum)
  SELECT camera, class, date_trunc('second', capture_ts, 'UTC'), count(*),
         sum(score::double precision)
  FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (camera, class, bucket) DO UPDATE
    SET count = r.count + EXCLUDED.count, score_sum = r.score_sum + EXCLUDED.score_sum
), rollup_1m AS (
  INSERT INTO detection_rollup_1m AS r (camera, class, bucket, count, score_sum)
  SELECT camera, class, date_trunc('minute', capture_ts, 'UTC'), count(*),
         sum(score::double precision)
  FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (camera, class, bucket) DO UPDATE
    SET count = r.count + EXCLUDED.count, score_sum = r.score_sum + EXCLUDED.score_sum
), batch AS (
  SELECT nextval('live_counter_batch_id') AS id
), applied AS (
  DELETE FROM live_counter_outbox WHERE consumer = $1::text AND batch_id <= $2::bigint
), outbox AS (
  INSERT INTO live_counter_outbox (consumer, batch_id, camera, class, count, last_ts_ns)
  SELECT $1::text, batch.id, camera, class, count(*), max(capture_ts_ns)
  FROM ins CROSS JOIN batch GROUP BY batch.id, camera, class
)
SELECT camera, class, capture_ts_ns, count(*), (SELECT id FROM batch) FROM ins GROUP BY 1, 2, 3)sql";

// XREADGROUP reply [[stream, [[id, fields], ...]]] -> the entries array; null when none.
const RedisReply* StreamEntries(const RedisReply& reply) {
  if (reply.type != RedisReply::Type::kArray || reply.elements.empty()) return nullptr;
  const RedisReply& s = reply.elements[0];
  if (s.type != RedisReply::Type::kArray || s.elements.size() < 2) return nullptr;
  if (s.elements[1].type != RedisReply::Type::kArray) return nullptr;
  return &s.elements[1];
}

double SecondsSince(int64_t start_ns) {
  return static_cast<double>(MonotonicNs() - start_ns) / 1e9;
}

// One array of stream entries, split by what happens to each.
struct ParsedEntries {
  std::vector<std::string> good_ids, bad_ids, lines;
  size_t malformed = 0, trimmed = 0;
  std::string first_error;
};

ParsedEntries ParseEntries(const RedisReply& entries) {
  ParsedEntries p;
  for (const RedisReply& e : entries.elements) {
    if (e.type != RedisReply::Type::kArray || e.elements.empty() ||
        e.elements[0].type != RedisReply::Type::kString) {
      continue;  // not an entry at all: nothing to acknowledge
    }
    const std::string& id = e.elements[0].str;
    if (e.elements.size() < 2 || e.elements[1].type == RedisReply::Type::kNil) {
      // Pending, but trimmed from the stream by MAXLEN before we stored it: lost.
      ++p.trimmed;
      p.bad_ids.push_back(id);
      continue;
    }
    auto row = ParseDetectionFields(id, e.elements[1]);
    if (!row.ok()) {
      if (p.malformed++ == 0) p.first_error = row.status().message();
      p.bad_ids.push_back(id);
      continue;
    }
    p.good_ids.push_back(id);
    p.lines.push_back(ToCopyLine(*row));
  }
  return p;
}

const char* FaultPointName(AggregationFault::Point p) {
  return p == AggregationFault::Point::kAfterCommit ? "after_commit" : "after_counters";
}

}  // namespace

StatusOr<AggregationFault> ParseAggregationFault(const std::string& spec) {
  auto bad = [&spec] {
    return Err("FRAMESCOPE_AGGREGATION_FAULT='" + spec +
               "': expected <after_commit|after_counters>:<exit|drop_redis>:<n >= 1>");
  };
  size_t c1 = spec.find(':');
  size_t c2 = c1 == std::string::npos ? c1 : spec.find(':', c1 + 1);
  if (c2 == std::string::npos) return bad();
  AggregationFault f;
  std::string point = spec.substr(0, c1), action = spec.substr(c1 + 1, c2 - c1 - 1);
  if (point == "after_commit") {
    f.point = AggregationFault::Point::kAfterCommit;
  } else if (point == "after_counters") {
    f.point = AggregationFault::Point::kAfterCounters;
  } else {
    return bad();
  }
  if (action == "exit") {
    f.action = AggregationFault::Action::kExit;
  } else if (action == "drop_redis") {
    f.action = AggregationFault::Action::kDropRedis;
  } else {
    return bad();
  }
  char* end = nullptr;
  f.batch = std::strtoll(spec.c_str() + c2 + 1, &end, 10);
  if (c2 + 1 == spec.size() || *end != '\0' || f.batch < 1) return bad();
  return f;
}

std::string DefaultConsumerName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
    snprintf(host, sizeof(host), "host");
  return std::string(host) + "-" + std::to_string(getpid());
}

AggregationService::AggregationService(AggregationOptions options) : options_(std::move(options)) {
  if (options_.consumer.empty()) options_.consumer = DefaultConsumerName();
  auto& m = Metrics();
  auto counter = [&m](const char* name, const char* help) { return m.GetCounter(name, help); };
  entries_read_ = counter("framescope_aggregation_entries_read_total",
                          "Stream entries read (new, replayed and claimed)");
  rows_inserted_ = counter("framescope_aggregation_rows_inserted_total",
                           "Detections newly stored in PostgreSQL");
  duplicates_ = counter("framescope_aggregation_duplicates_total",
                        "Well-formed entries whose detection was already stored (redelivery)");
  batches_ = counter("framescope_aggregation_batches_total", "Batches committed and acknowledged");
  malformed_ = counter("framescope_aggregation_malformed_total",
                       "Entries that could not be parsed; acknowledged and skipped");
  trimmed_ = counter("framescope_aggregation_trimmed_total",
                     "Pending entries already trimmed from the stream (MAXLEN) when read: lost");
  claimed_ = counter("framescope_aggregation_claimed_total",
                     "Entries taken over from idle consumers with XAUTOCLAIM");
  write_failures_ = counter("framescope_aggregation_write_failures_total",
                            "Batches whose transaction failed; left pending and retried");
  live_recovered_ = counter("framescope_aggregation_live_batches_recovered_total",
                            "Committed batches whose live counters were applied from "
                            "live_counter_outbox (after a failure or another consumer's crash)");
  auto stage = [&m](const char* s) {
    return m.GetHistogram("framescope_stage_latency_seconds", "Per-stage latency",
                          {{"service", "aggregation"}, {"stage", s}}, LatencyBucketsSeconds());
  };
  read_latency_ = stage("read");
  write_latency_ = stage("write");
  ack_latency_ = stage("ack");
  end_to_end_ = m.GetHistogram("framescope_end_to_end_latency_seconds",
                               "Capture timestamp to detections committed in PostgreSQL",
                               {{"stage", "capture_to_stored"}}, LatencyBucketsSeconds());
  fps_ = m.GetGauge("framescope_service_fps", "Stream entries per second over the last 5 s",
                    {{"service", "aggregation"}});
}

// ---- connections ---------------------------------------------------------------------

bool AggregationService::EnsurePostgres() {
  if (pg_ && pg_->healthy()) return true;
  pg_.reset();
  int64_t now = MonotonicNs();
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    if (now < pg_link_.next_attempt_ns) return false;
  }
  auto setup = [this]() -> StatusOr<std::unique_ptr<PgClient>> {
    ASSIGN_OR_RETURN(auto pg, PgClient::Connect(options_.postgres_url, "aggregation",
                                                /*connect_timeout_s=*/5,
                                                /*statement_timeout_ms=*/60000));
    if (!migrated_) {
      RETURN_IF_ERROR(ApplyMigrations(pg.get(), AggregationMigrations())
                          .Annotate("applying the aggregation schema migrations"));
      migrated_ = true;
    }
    RETURN_IF_ERROR(pg->Exec(kCreateStagingSql, "create_staging").status());
    RETURN_IF_ERROR(pg->Prepare("aggregation_write", kWriteSql));
    return pg;
  };
  auto pg = setup();
  std::lock_guard<std::mutex> lock(health_mu_);
  if (!pg.ok()) {
    pg_link_.up = false;
    pg_link_.last_error = pg.status().message();
    pg_link_.next_attempt_ns = now + pg_link_.backoff_ns;
    LOG(WARNING) << "postgres: " << pg_link_.last_error << "; retrying in "
                 << pg_link_.backoff_ns / 1000000 << " ms";
    pg_link_.backoff_ns = std::min(pg_link_.backoff_ns * 2, kMaxBackoffNs);
    return false;
  }
  pg_ = std::move(pg).value();
  pg_link_.up = true;
  pg_link_.backoff_ns = kInitialBackoffNs;
  migrated_for_health_ = migrated_;
  schema_version_ = AggregationMigrations().back().version;
  LOG(INFO) << "connected to postgres " << pg_->where() << ", schema version " << schema_version_;
  // Whatever this process read before the connection dropped is still pending.
  replay_pending_ = true;
  return true;
}

bool AggregationService::EnsureRedis() {
  if (redis_) return true;
  int64_t now = MonotonicNs();
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    if (now < redis_link_.next_attempt_ns) return false;
  }
  // The socket timeout must outlast XREADGROUP BLOCK, or every idle read would "fail".
  auto c = RedisClient::Connect(options_.redis_url, "aggregation", options_.block_ms + 5000);
  if (!c.ok()) {
    RedisFailed(c.status().message());
    return false;
  }
  redis_.emplace(std::move(c).value());
  group_ready_ = false;
  replay_pending_ = true;
  LOG(INFO) << "connected to redis " << options_.redis_url;
  return true;
}

void AggregationService::RedisFailed(const std::string& error) {
  redis_.reset();
  group_ready_ = false;
  std::lock_guard<std::mutex> lock(health_mu_);
  redis_link_.up = false;
  redis_link_.last_error = error;
  redis_link_.next_attempt_ns = MonotonicNs() + redis_link_.backoff_ns;
  LOG(WARNING) << "redis: " << error << "; retrying in " << redis_link_.backoff_ns / 1000000
               << " ms";
  redis_link_.backoff_ns = std::min(redis_link_.backoff_ns * 2, kMaxBackoffNs);
}

void AggregationService::PostgresFailed(const std::string& error) {
  replay_pending_ = true;  // the batch is still in our pending list
  bool connection_lost = !pg_ || !pg_->healthy();
  if (!connection_lost) {
    // A statement error (deadlock, timeout, ...): the transaction is aborted; roll back and
    // keep the connection. If even ROLLBACK fails, reconnect.
    if (!pg_->Rollback().ok()) connection_lost = true;
  }
  if (connection_lost) pg_.reset();
  std::lock_guard<std::mutex> lock(health_mu_);
  if (connection_lost) pg_link_.up = false;
  pg_link_.last_error = error;
  last_batch_error_ = error;
  // Back off before the retry either way: a failing statement must not spin.
  pg_link_.next_attempt_ns = MonotonicNs() + pg_link_.backoff_ns;
  pause_until_ns_ = pg_link_.next_attempt_ns;
  LOG(WARNING) << "postgres: " << error << "; pending entries retried in "
               << pg_link_.backoff_ns / 1000000 << " ms";
  pg_link_.backoff_ns = std::min(pg_link_.backoff_ns * 2, kMaxBackoffNs);
}

bool AggregationService::EnsureGroup() {
  if (group_ready_) return true;
  // Start id 0, not $: when the group is first created (or re-created after the stream was
  // deleted), everything the stream still holds is consumed. `$` would silently skip every
  // detection published before aggregation's first start. Re-reading retained entries is
  // harmless: they are duplicates by key. The backlog is bounded by detection's MAXLEN.
  auto r = redis_->Command({"XGROUP", "CREATE", options_.stream, options_.group, "0", "MKSTREAM"});
  if (!r.ok()) {
    RedisFailed(r.status().message());
    return false;
  }
  if (r->is_error() && r->str.rfind("BUSYGROUP", 0) != 0) {
    RedisFailed("XGROUP CREATE " + options_.stream + " " + options_.group + ": " + r->str);
    return false;
  }
  if (!r->is_error()) {
    LOG(INFO) << "created consumer group " << options_.group << " on " << options_.stream
              << " from the start of the stream";
  }
  group_ready_ = true;
  std::lock_guard<std::mutex> lock(health_mu_);
  redis_link_.up = true;
  redis_link_.backoff_ns = kInitialBackoffNs;
  return true;
}

std::optional<RedisReply> AggregationService::RedisCommand(const std::vector<std::string>& args) {
  auto r = redis_->Command(args);
  if (!r.ok()) {
    RedisFailed(r.status().message());
    return std::nullopt;
  }
  if (r->is_error()) {
    // NOGROUP: the stream (and with it the group) was deleted; re-create it. Any other
    // error reply (WRONGTYPE, OOM, ...) is reported and retried after a backoff.
    RedisFailed(args[0] + ": " + r->str);
    return std::nullopt;
  }
  return std::move(r).value();
}

// ---- reading -------------------------------------------------------------------------

bool AggregationService::ReplayOwnPending() {
  std::string last = "0";
  for (int guard = 0; guard < 1000000; ++guard) {
    if (ServiceRuntime::StopRequested()) return false;
    int64_t t0 = MonotonicNs();
    auto r = RedisCommand({"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT",
                           std::to_string(options_.batch), "STREAMS", options_.stream, last});
    if (!r) return false;
    const RedisReply* entries = StreamEntries(*r);
    if (entries == nullptr || entries->elements.empty()) return true;
    read_latency_->Observe(SecondsSince(t0));
    if (guard == 0) LOG(INFO) << "re-processing this consumer's pending entries";
    if (!ProcessEntries(*entries, 0)) return false;
    const RedisReply& tail = entries->elements.back();
    if (tail.elements.empty()) return true;
    last = tail.elements[0].str;
  }
  return true;
}

bool AggregationService::ClaimIdle() {
  std::string start = "0-0";
  for (int guard = 0; guard < 1000000; ++guard) {
    if (ServiceRuntime::StopRequested()) return false;
    int64_t t0 = MonotonicNs();
    // Redis 7 reply: [next-start, [[id, fields], ...], [deleted ids]]. Entries trimmed from
    // the stream come back in the third element and are already removed from the PEL.
    auto r = RedisCommand({"XAUTOCLAIM", options_.stream, options_.group, options_.consumer,
                           std::to_string(options_.claim_idle_ms), start, "COUNT",
                           std::to_string(options_.batch)});
    if (!r) return false;
    if (r->type != RedisReply::Type::kArray || r->elements.size() < 2) {
      RedisFailed("XAUTOCLAIM: unexpected reply");
      return false;
    }
    start = r->elements[0].str;
    const RedisReply& entries = r->elements[1];
    size_t deleted = r->elements.size() >= 3 ? r->elements[2].elements.size() : 0;
    if (!entries.elements.empty() || deleted > 0) {
      read_latency_->Observe(SecondsSince(t0));
      claimed_->Inc(static_cast<double>(entries.elements.size()));
      LOG(INFO) << "claimed " << entries.elements.size() << " entries idle for more than "
                << options_.claim_idle_ms << " ms"
                << (deleted > 0 ? " (" + std::to_string(deleted) + " already trimmed)" : "");
      if (!ProcessEntries(entries, deleted)) return false;
    }
    if (start == "0-0" || start.empty()) return true;
  }
  return true;
}

bool AggregationService::ReadNew() {
  int64_t t0 = MonotonicNs();
  auto r = RedisCommand({"XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT",
                         std::to_string(options_.batch), "BLOCK", std::to_string(options_.block_ms),
                         "STREAMS", options_.stream, ">"});
  if (!r) return false;
  const RedisReply* entries = StreamEntries(*r);  // nil reply: BLOCK timed out
  if (entries == nullptr || entries->elements.empty()) return true;
  // Includes the time blocked waiting for the first entry when the stream was idle.
  read_latency_->Observe(SecondsSince(t0));
  return ProcessEntries(*entries, 0);
}

// ---- one batch -----------------------------------------------------------------------

bool AggregationService::ProcessEntries(const RedisReply& entries, size_t trimmed_ids) {
  if (trimmed_ids > 0) trimmed_->Inc(static_cast<double>(trimmed_ids));
  ParsedEntries p = ParseEntries(entries);
  entries_read_->Inc(static_cast<double>(entries.elements.size()));
  rate_.Add(entries.elements.size());
  fps_->Set(rate_.Rate());

  LiveBatch live;
  int64_t inserted = 0;
  if (!p.lines.empty()) {
    Status st = WriteBatch(p.lines, &live, &inserted);
    if (!st.ok()) {
      write_failures_->Inc();
      PostgresFailed(st.message());
      // The good entries stay pending; the bad ones never will store, so release them now.
      std::vector<std::string> xack = {"XACK", options_.stream, options_.group};
      xack.insert(xack.end(), p.bad_ids.begin(), p.bad_ids.end());
      if (!p.bad_ids.empty() && redis_ && RedisCommand(xack)) {
        malformed_->Inc(static_cast<double>(p.malformed));
        trimmed_->Inc(static_cast<double>(p.trimmed));
      }
      return false;
    }
    if (inserted > 0) ++stored_batches_;
    if (!InjectFault(AggregationFault::Point::kAfterCommit)) return false;
  }

  // Committed (or nothing to commit): acknowledge everything, and apply the live counters.
  if (p.good_ids.empty() && p.bad_ids.empty()) return true;
  std::vector<std::string> ids = std::move(p.good_ids);
  ids.insert(ids.end(), p.bad_ids.begin(), p.bad_ids.end());
  if (!ApplyAndAck(live, ids)) return false;

  if (p.malformed > 0) {
    LOG(WARNING) << p.malformed << " malformed entr" << (p.malformed == 1 ? "y" : "ies")
                 << " acknowledged and skipped; first: " << p.first_error;
  }
  if (p.trimmed > 0) {
    LOG(WARNING) << p.trimmed << " pending entries were trimmed from " << options_.stream
                 << " (MAXLEN) before they were stored: lost";
  }
  malformed_->Inc(static_cast<double>(p.malformed));
  trimmed_->Inc(static_cast<double>(p.trimmed));
  rows_inserted_->Inc(static_cast<double>(inserted));
  duplicates_->Inc(static_cast<double>(static_cast<int64_t>(p.lines.size()) - inserted));
  batches_->Inc();
  std::lock_guard<std::mutex> lock(health_mu_);
  pg_link_.backoff_ns = kInitialBackoffNs;
  last_batch_error_.clear();
  return true;
}

Status AggregationService::WriteBatch(const std::vector<std::string>& lines, LiveBatch* live,
                                      int64_t* inserted) {
  // Rule 3 of live_counters.h: never commit while a batch of ours may be unapplied.
  CHECK(!drain_live_);
  int64_t t0 = MonotonicNs();
  RETURN_IF_ERROR(pg_->Begin());
  static const std::string kTable = std::string("aggregation_staging (") + kStagingColumns + ")";
  RETURN_IF_ERROR(pg_->CopyIn(kTable, lines).status().Annotate("COPY into aggregation_staging"));
  auto res =
      pg_->ExecPrepared("aggregation_write", {options_.consumer, std::to_string(applied_through_)});
  if (!res.ok()) return res.status().Annotate("inserting detections and rollups");
  live->consumer = options_.consumer;
  std::set<std::pair<std::string, int64_t>> frames;  // (camera, capture_ts_ns) added
  for (const auto& row : res->rows) {
    if (row.size() < 5 || !row[0] || !row[1] || !row[2] || !row[3] || !row[4]) continue;
    int64_t ts = std::strtoll(row[2]->c_str(), nullptr, 10);
    int64_t n = std::strtoll(row[3]->c_str(), nullptr, 10);
    live->Add(*row[0], *row[1], n, ts);
    live->id = std::strtoll(row[4]->c_str(), nullptr, 10);
    frames.emplace(*row[0], ts);
    *inserted += n;
  }
  // From here until the script answered, the batch may be committed and not applied (the
  // COMMIT's reply can be lost with the connection).
  drain_live_ = true;
  RETURN_IF_ERROR(pg_->Commit().Annotate("COMMIT"));
  write_latency_->Observe(SecondsSince(t0));
  int64_t stored_wall = WallNs();
  for (const auto& [camera, ts] : frames) {
    end_to_end_->Observe(static_cast<double>(stored_wall - ts) / 1e9);
  }
  return Status::Ok();
}

bool AggregationService::ApplyAndAck(const LiveBatch& live, const std::vector<std::string>& ids) {
  int64_t t0 = MonotonicNs();
  if (!live.empty()) redis_->Append(LiveCounterEval(live));
  if (!InjectFault(AggregationFault::Point::kAfterCounters)) return false;
  std::vector<std::string> xack = {"XACK", options_.stream, options_.group};
  xack.insert(xack.end(), ids.begin(), ids.end());
  redis_->Append(xack);
  auto replies = redis_->Flush("XACK");
  std::string error = !replies.ok() ? replies.status().message() : "";
  for (size_t i = 0; replies.ok() && i < replies->size() && error.empty(); ++i) {
    if ((*replies)[i].is_error()) error = "live counters/XACK: " + (*replies)[i].str;
  }
  if (!error.empty()) {
    // Stored but not acknowledged: redelivered later, then a no-op by key. The counters
    // (applied or not) are settled by the drain before the next batch.
    RedisFailed(error);
    replay_pending_ = true;
    return false;
  }
  if (!live.empty()) applied_through_ = live.id;
  drain_live_ = false;
  ack_latency_->Observe(SecondsSince(t0));
  return true;
}

bool AggregationService::DrainLiveOutbox() {
  auto batches = ReadLiveOutbox(pg_.get());
  if (!batches.ok()) {
    PostgresFailed(batches.status().message());
    return false;
  }
  if (batches->empty()) return true;
  for (const LiveBatch& b : *batches) redis_->Append(LiveCounterEval(b));
  auto replies = redis_->Flush("EVAL");
  if (!replies.ok()) {
    RedisFailed("applying live counters: " + replies.status().message());
    return false;
  }
  int64_t applied_now = 0;
  std::map<std::string, int64_t> through;  // consumer -> highest batch id applied
  for (size_t i = 0; i < batches->size() && i < replies->size(); ++i) {
    const RedisReply& r = (*replies)[i];
    if (r.is_error()) {
      RedisFailed("applying live counters from live_counter_outbox: " + r.str);
      return false;
    }
    applied_now += r.type == RedisReply::Type::kInteger && r.integer == 1;
    int64_t& t = through[(*batches)[i].consumer];
    t = std::max(t, (*batches)[i].id);
  }
  for (const auto& [consumer, id] : through) {
    if (Status st = DeleteAppliedOutbox(pg_.get(), consumer, id); !st.ok()) {
      PostgresFailed(st.message());
      return false;
    }
    if (consumer == options_.consumer) applied_through_ = std::max(applied_through_, id);
  }
  if (applied_now > 0) {
    LOG(INFO) << "applied the live counters of " << applied_now
              << " committed batch(es) from live_counter_outbox";
  }
  live_recovered_->Inc(static_cast<double>(applied_now));
  return true;
}

bool AggregationService::InjectFault(AggregationFault::Point point) {
  const AggregationFault& f = options_.fault;
  if (fault_fired_ || f.point != point || stored_batches_ != f.batch) return true;
  fault_fired_ = true;
  // after_counters: Redis must have run the script (and answered) before the fault.
  if (redis_->pending() > 0) {
    if (auto r = redis_->Flush("fault"); !r.ok()) {
      RedisFailed(r.status().message());
      replay_pending_ = true;
      return false;
    }
  }
  if (f.action == AggregationFault::Action::kExit) {
    LOG(ERROR) << "fault injection: exiting " << FaultPointName(point) << " of batch " << f.batch;
    _exit(kFaultExitCode);
  }
  RedisFailed(std::string("fault injection: connection dropped ") + FaultPointName(point));
  replay_pending_ = true;
  return false;
}

// ---- loop and health -----------------------------------------------------------------

void AggregationService::Run() {
  LOG(INFO) << "consumer " << options_.consumer << " of group " << options_.group << " on "
            << options_.stream << " (batch " << options_.batch << ")";
  while (!ServiceRuntime::StopRequested()) {
    fps_->Set(rate_.Rate());
    int64_t now = MonotonicNs();
    bool paused;
    {
      std::lock_guard<std::mutex> lock(health_mu_);
      paused = now < pause_until_ns_;
    }
    // Both connections are kept up independently (so /health tells which one is down),
    // but nothing is read while PostgreSQL is down: nothing piles up unacknowledged in
    // this consumer's pending list, the stream itself keeps the entries.
    bool redis_ok = EnsureRedis() && EnsureGroup();
    bool pg_ok = EnsurePostgres();
    if (paused || !redis_ok || !pg_ok) {
      ServiceRuntime::SleepOrStop(50);
      continue;
    }
    // Before any batch: settle the live counters of a batch of ours that may be committed
    // and not applied (at start, after a failure past COMMIT).
    if (drain_live_) {
      if (!DrainLiveOutbox()) continue;
      drain_live_ = false;
    }
    if (replay_pending_) {
      if (!ReplayOwnPending()) continue;
      replay_pending_ = false;
    }
    if (MonotonicNs() >= next_claim_ns_) {
      // Dead consumers leave pending entries (claimed) and maybe a committed batch whose
      // counters they never applied (drained).
      if (!ClaimIdle() || !DrainLiveOutbox()) continue;
      // Other consumers may die at any time: look again every claim-idle period (1..30 s).
      next_claim_ns_ =
          MonotonicNs() + int64_t{std::clamp(options_.claim_idle_ms, 1000, 30000)} * 1000000;
    }
    ReadNew();
  }
}

HealthReport AggregationService::Health() const {
  HealthReport h;
  std::lock_guard<std::mutex> lock(health_mu_);
  h.healthy = pg_link_.up && migrated_for_health_ && redis_link_.up;
  h.detail = Json::MakeObject();
  auto link = [](const Link& l) {
    Json j = Json::MakeObject();
    j["connected"] = l.up;
    j["last_error"] = l.last_error;
    return j;
  };
  h.detail["postgres"] = link(pg_link_);
  h.detail["redis"] = link(redis_link_);
  Json mig = Json::MakeObject();
  mig["applied"] = migrated_for_health_;
  mig["version"] = schema_version_;
  h.detail["migrations"] = mig;
  h.detail["stream"] = options_.stream;
  h.detail["group"] = options_.group;
  h.detail["consumer"] = options_.consumer;
  h.detail["last_batch_error"] = last_batch_error_;
  return h;
}

}  // namespace fs
