#include "services/aggregation/aggregation_service.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <utility>

#include "services/aggregation/detection_entry.h"
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

// One statement per batch, inside the batch's transaction:
//  * `staged` drops duplicates within the batch (the same detection re-added twice);
//  * `ins` inserts, skipping keys already stored, and RETURNs only the rows it added;
//  * the rollups are fed from `ins` alone, so a redelivered batch adds 0 to them;
//  * the result (camera, class, capture_ts_ns, n) drives the live counters and the
//    capture-to-stored latency, again only for new rows.
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
)
SELECT camera, class, capture_ts_ns, count(*) FROM ins GROUP BY 1, 2, 3)sql";

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

}  // namespace

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
  write_failures_->Inc();
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
  LOG(WARNING) << "batch not stored (left pending): " << error << "; retrying in "
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
  std::vector<std::string> good_ids, bad_ids, lines;
  size_t malformed = 0, trimmed = 0;
  std::string first_error;
  for (const RedisReply& e : entries.elements) {
    if (e.type != RedisReply::Type::kArray || e.elements.empty() ||
        e.elements[0].type != RedisReply::Type::kString) {
      continue;  // not an entry at all: nothing to acknowledge
    }
    const std::string& id = e.elements[0].str;
    if (e.elements.size() < 2 || e.elements[1].type == RedisReply::Type::kNil) {
      // Pending, but trimmed from the stream by MAXLEN before we stored it: lost.
      ++trimmed;
      bad_ids.push_back(id);
      continue;
    }
    auto row = ParseDetectionFields(id, e.elements[1]);
    if (!row.ok()) {
      if (malformed++ == 0) first_error = row.status().message();
      bad_ids.push_back(id);
      continue;
    }
    good_ids.push_back(id);
    lines.push_back(ToCopyLine(*row));
  }
  entries_read_->Inc(static_cast<double>(entries.elements.size()));
  rate_.Add(entries.elements.size());
  fps_->Set(rate_.Rate());

  auto ack_bad_only = [&] {
    // The good entries stay pending; the bad ones never will store, so release them now.
    if (bad_ids.empty() || !redis_) return;
    std::vector<std::string> xack = {"XACK", options_.stream, options_.group};
    xack.insert(xack.end(), bad_ids.begin(), bad_ids.end());
    if (RedisCommand(xack)) {
      malformed_->Inc(static_cast<double>(malformed));
      trimmed_->Inc(static_cast<double>(trimmed));
    }
  };

  // Write: one transaction.
  struct Added {
    std::string camera, class_name;
    int64_t capture_ts_ns;
    int64_t n;
  };
  std::vector<Added> added;
  int64_t inserted = 0;
  if (!lines.empty()) {
    int64_t t0 = MonotonicNs();
    Status st = pg_->Begin();
    if (st.ok()) {
      static const std::string kTable =
          std::string("aggregation_staging (") + kStagingColumns + ")";
      auto copied = pg_->CopyIn(kTable, lines);
      if (!copied.ok()) st = copied.status().Annotate("COPY into aggregation_staging");
    }
    if (st.ok()) {
      auto res = pg_->ExecPrepared("aggregation_write", {});
      if (!res.ok()) {
        st = res.status().Annotate("inserting detections and rollups");
      } else {
        for (const auto& row : res->rows) {
          if (row.size() < 4 || !row[0] || !row[1] || !row[2] || !row[3]) continue;
          Added a{*row[0], *row[1], std::strtoll(row[2]->c_str(), nullptr, 10),
                  std::strtoll(row[3]->c_str(), nullptr, 10)};
          inserted += a.n;
          added.push_back(std::move(a));
        }
      }
    }
    if (st.ok()) st = pg_->Commit().Annotate("COMMIT");
    if (!st.ok()) {
      PostgresFailed(st.message());
      ack_bad_only();
      return false;
    }
    write_latency_->Observe(SecondsSince(t0));
    int64_t stored_wall = WallNs();
    std::set<std::pair<std::string, int64_t>> frames;
    for (const Added& a : added) {
      if (frames.emplace(a.camera, a.capture_ts_ns).second) {
        end_to_end_->Observe(static_cast<double>(stored_wall - a.capture_ts_ns) / 1e9);
      }
    }
  }

  // Committed (or nothing to commit): acknowledge everything, and bump the live counters
  // for the rows the commit added, in one pipelined round trip.
  if (good_ids.empty() && bad_ids.empty()) return true;
  int64_t t1 = MonotonicNs();
  std::vector<std::string> xack = {"XACK", options_.stream, options_.group};
  xack.insert(xack.end(), good_ids.begin(), good_ids.end());
  xack.insert(xack.end(), bad_ids.begin(), bad_ids.end());
  redis_->Append(xack);
  std::map<std::string, int64_t> last_ts;
  std::map<std::pair<std::string, std::string>, int64_t> per_class;
  for (const Added& a : added) {
    per_class[{a.camera, a.class_name}] += a.n;
    int64_t& t = last_ts[a.camera];
    t = std::max(t, a.capture_ts_ns);
  }
  for (const auto& [key, n] : per_class) {
    redis_->Append({"HINCRBY", "live:camera:" + key.first, key.second, std::to_string(n)});
  }
  for (const auto& [camera, ts] : last_ts) {
    redis_->Append({"HSET", "live:camera:" + camera, "last_ts", std::to_string(ts)});
  }
  auto replies = redis_->Flush("XACK");
  if (!replies.ok()) {
    // Stored but not acknowledged: redelivered later, then a no-op by key.
    RedisFailed(replies.status().message());
    replay_pending_ = true;
    return false;
  }
  for (const RedisReply& r : *replies) {
    if (r.is_error()) {
      RedisFailed("XACK/live counters: " + r.str);
      replay_pending_ = true;
      return false;
    }
  }
  ack_latency_->Observe(SecondsSince(t1));

  if (malformed > 0) {
    LOG(WARNING) << malformed << " malformed entr" << (malformed == 1 ? "y" : "ies")
                 << " acknowledged and skipped; first: " << first_error;
  }
  if (trimmed > 0) {
    LOG(WARNING) << trimmed << " pending entries were trimmed from " << options_.stream
                 << " (MAXLEN) before they were stored: lost";
  }
  malformed_->Inc(static_cast<double>(malformed));
  trimmed_->Inc(static_cast<double>(trimmed));
  rows_inserted_->Inc(static_cast<double>(inserted));
  duplicates_->Inc(static_cast<double>(static_cast<int64_t>(lines.size()) - inserted));
  batches_->Inc();
  std::lock_guard<std::mutex> lock(health_mu_);
  pg_link_.backoff_ns = kInitialBackoffNs;
  last_batch_error_.clear();
  return true;
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
    if (replay_pending_) {
      if (!ReplayOwnPending()) continue;
      replay_pending_ = false;
    }
    if (MonotonicNs() >= next_claim_ns_) {
      if (!ClaimIdle()) continue;
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
