#include "services/aggregation/migrations.h"

namespace fs {

// Why the detections key is (camera, capture_ts_ns, frame_seq, det_idx):
// detection numbers frames per camera from 0 again whenever capture restarts, so
// (camera, frame_seq, det_idx) alone would make the detections of a restarted capture look
// like duplicates of old ones and silently drop them. capture_ts_ns (CLOCK_REALTIME
// nanoseconds, one value per frame) tells the runs apart; frame_seq stays in the key so
// two frames that share a timestamp (a clock step back) are still distinct. The key is
// exactly what makes a redelivered stream entry a no-op, so it is built only from what
// detection publishes, never from the Redis entry id (re-adding an entry gives a new id).
// capture_ts (timestamptz, microseconds) is derived for queries; the exact nanoseconds are
// kept in capture_ts_ns.
const std::vector<Migration>& AggregationMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "detections", R"sql(
CREATE TABLE detections (
  camera        text             NOT NULL,
  capture_ts_ns bigint           NOT NULL,
  frame_seq     bigint           NOT NULL,
  det_idx       integer          NOT NULL,
  capture_ts    timestamptz      NOT NULL,
  class         text             NOT NULL,
  class_id      integer          NOT NULL,
  score         real             NOT NULL,
  x             real             NOT NULL,
  y             real             NOT NULL,
  w             real             NOT NULL,
  h             real             NOT NULL,
  stream_id     text             NOT NULL,
  inserted_at   timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (camera, capture_ts_ns, frame_seq, det_idx)
);
-- The api's queries: latest detections of a camera, of a class.
CREATE INDEX detections_camera_ts ON detections (camera, capture_ts DESC);
CREATE INDEX detections_class_ts ON detections (class, capture_ts DESC);
)sql"},
      {2, "detection_rollups", R"sql(
-- Per camera, class and 1 s / 1 min bucket of capture time. Maintained in the same
-- transaction as the detections insert, from the rows that insert actually added.
CREATE TABLE detection_rollup_1s (
  camera    text             NOT NULL,
  class     text             NOT NULL,
  bucket    timestamptz      NOT NULL,
  count     bigint           NOT NULL,
  score_sum double precision NOT NULL,
  PRIMARY KEY (camera, class, bucket)
);
CREATE INDEX detection_rollup_1s_camera_bucket ON detection_rollup_1s (camera, bucket DESC);
CREATE TABLE detection_rollup_1m (
  camera    text             NOT NULL,
  class     text             NOT NULL,
  bucket    timestamptz      NOT NULL,
  count     bigint           NOT NULL,
  score_sum double precision NOT NULL,
  PRIMARY KEY (camera, class, bucket)
);
CREATE INDEX detection_rollup_1m_camera_bucket ON detection_rollup_1m (camera, bucket DESC);
)sql"},
      {3, "live_counter_outbox", R"sql(
-- Live-counter increments of committed batches, written in the batch's transaction and
-- deleted once applied to Redis (protocol in live_counters.h). Holds about one batch per
-- consumer: each batch's statement deletes its consumer's rows already applied.
CREATE SEQUENCE live_counter_batch_id;
CREATE TABLE live_counter_outbox (
  consumer   text   NOT NULL,
  batch_id   bigint NOT NULL,
  camera     text   NOT NULL,
  class      text   NOT NULL,
  count      bigint NOT NULL,
  last_ts_ns bigint NOT NULL,
  PRIMARY KEY (consumer, batch_id, camera, class)
);
)sql"},
  };
  return kMigrations;
}

}  // namespace fs
