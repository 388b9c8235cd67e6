#include "services/aggregation/detection_entry.h"

#include <cfloat>
#include <charconv>
#include <cmath>
#include <limits>

#include "src/clients/pg_client.h"

namespace fs {
namespace {

constexpr size_t kMaxNameBytes = 256;

// Names become `text` columns and Redis hash keys: no NUL (PostgreSQL text cannot hold it),
// valid UTF-8 (the database encoding), bounded length.
Status CheckName(const char* field, const std::string& v) {
  if (v.empty()) return Err(std::string(field) + " is empty");
  if (v.size() > kMaxNameBytes) return Err(std::string(field) + " longer than 256 bytes");
  auto bad = [field] { return Err(std::string(field) + " is not valid UTF-8"); };
  const auto* b = reinterpret_cast<const unsigned char*>(v.data());
  const size_t n = v.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = b[i];
    if (c == 0) return Err(std::string(field) + " contains a NUL byte");
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return bad();
    }
    if (i + extra >= n) return bad();  // truncated sequence
    if (b[i + 1] < lo || b[i + 1] > hi) return bad();
    for (size_t k = 2; k <= extra; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return bad();
    }
    i += extra + 1;
  }
  return Status::Ok();
}

template <typename T>
Status ParseInt(const char* field, const std::string& v, T lo, T hi, T* out) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty()) {
    return Err(std::string(field) + " is not an integer: '" + v.substr(0, 32) + "'");
  }
  if (n < static_cast<int64_t>(lo) || n > static_cast<int64_t>(hi)) {
    return Err(std::string(field) + " out of range: " + v);
  }
  *out = static_cast<T>(n);
  return Status::Ok();
}

// Finite and representable as PostgreSQL `real` (float4 rejects overflow with an error).
Status CheckReal(const char* field, const std::string& v) {
  double d = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty() || !std::isfinite(d) ||
      std::fabs(d) > FLT_MAX) {
    return Err(std::string(field) + " is not a finite real: '" + v.substr(0, 32) + "'");
  }
  return Status::Ok();
}

}  // namespace

const char kStagingColumns[] =
    "camera, frame_seq, capture_ts_ns, det_idx, class, class_id, score, x, y, w, h, stream_id";

StatusOr<DetectionRow> ParseDetectionFields(const std::string& stream_id,
                                            const RedisReply& fields) {
  if (fields.type != RedisReply::Type::kArray) {
    return Err("entry " + stream_id + " has no fields (trimmed from the stream?)");
  }
  if (fields.elements.size() % 2 != 0) return Err("entry " + stream_id + ": odd field count");
  const std::string* v[11] = {};
  static const char* const kNames[11] = {
      "camera", "seq", "capture_ts_ns", "idx", "class", "class_id", "score", "x", "y", "w", "h"};
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    const std::string& k = fields.elements[i].str;
    for (int f = 0; f < 11; ++f) {
      if (k == kNames[f]) v[f] = &fields.elements[i + 1].str;
    }
  }
  for (int f = 0; f < 11; ++f) {
    if (v[f] == nullptr) return Err("entry " + stream_id + ": missing field '" + kNames[f] + "'");
  }
  DetectionRow row;
  row.stream_id = stream_id;
  auto annotate = [&stream_id](const Status& st) { return st.Annotate("entry " + stream_id); };
  if (auto st = CheckName("camera", *v[0]); !st.ok()) return annotate(st);
  row.camera = *v[0];
  constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
  constexpr int32_t kI32Max = std::numeric_limits<int32_t>::max();
  if (auto st = ParseInt<int64_t>("seq", *v[1], 0, kI64Max, &row.frame_seq); !st.ok()) {
    return annotate(st);
  }
  if (auto st = ParseInt<int64_t>("capture_ts_ns", *v[2], 1, kI64Max, &row.capture_ts_ns);
      !st.ok()) {
    return annotate(st);
  }
  if (auto st = ParseInt<int32_t>("idx", *v[3], 0, kI32Max, &row.det_idx); !st.ok()) {
    return annotate(st);
  }
  if (auto st = CheckName("class", *v[4]); !st.ok()) return annotate(st);
  row.class_name = *v[4];
  if (auto st = ParseInt<int32_t>("class_id", *v[5], std::numeric_limits<int32_t>::min(), kI32Max,
                                  &row.class_id);
      !st.ok()) {
    return annotate(st);
  }
  std::string* reals[5] = {&row.score, &row.x, &row.y, &row.w, &row.h};
  for (int f = 0; f < 5; ++f) {
    if (auto st = CheckReal(kNames[6 + f], *v[6 + f]); !st.ok()) return annotate(st);
    *reals[f] = *v[6 + f];
  }
  return row;
}

std::string ToCopyLine(const DetectionRow& r) {
  std::string line;
  line.reserve(128);
  auto add = [&line](const std::string& s) {
    if (!line.empty()) line += '\t';
    line += s;
  };
  add(PgCopyEscape(r.camera));
  add(std::to_string(r.frame_seq));
  add(std::to_string(r.capture_ts_ns));
  add(std::to_string(r.det_idx));
  add(PgCopyEscape(r.class_name));
  add(std::to_string(r.class_id));
  add(r.score);
  add(r.x);
  add(r.y);
  add(r.w);
  add(r.h);
  add(r.stream_id);
  return line;
}

}  // namespace fs
