// One entry of the Redis Stream `detections`, as published by framescope-detection
// (services/detection/detection_service.cc):
//   XADD detections MAXLEN ~ N * camera <name> seq <u64> capture_ts_ns <i64> idx <int>
//        class <name> class_id <int> score <f> x <f> y <f> w <f> h <f>
// Parsing is strict: anything PostgreSQL could reject later (NUL bytes, invalid UTF-8,
// numbers out of range for the column type) is rejected here, so one bad entry can never
// make a whole batch's transaction fail over and over.
#ifndef FRAMESCOPE_SERVICES_AGGREGATION_DETECTION_ENTRY_H_
#define FRAMESCOPE_SERVICES_AGGREGATION_DETECTION_ENTRY_H_

#include <cstdint>
#include <string>

#include "src/base/status.h"
#include "src/clients/redis_client.h"

namespace fs {

struct DetectionRow {
  std::string stream_id;  // Redis entry id, e.g. "1732462801123-0"
  std::string camera;
  int64_t frame_seq = 0;
  int64_t capture_ts_ns = 0;
  int32_t det_idx = 0;
  std::string class_name;
  int32_t class_id = 0;
  // Kept as the published text (validated as finite and in range for `real`), so the
  // database stores exactly what detection wrote.
  std::string score, x, y, w, h;
};

// Parses the field list of one entry: [k1, v1, k2, v2, ...] (an XREADGROUP/XAUTOCLAIM
// entry is [id, fields]; pass fields). Unknown fields are ignored (forward compatible).
StatusOr<DetectionRow> ParseDetectionFields(const std::string& stream_id, const RedisReply& fields);

// The row as one COPY text-format line, columns in kStagingColumns order.
std::string ToCopyLine(const DetectionRow& row);

// Column list matching ToCopyLine.
extern const char kStagingColumns[];

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_AGGREGATION_DETECTION_ENTRY_H_
