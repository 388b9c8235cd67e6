// Validation of everything a client can send the api, and the formatting of what it returns.
// Pure functions (no I/O), so the rules are unit-tested without a server.
//
// The rules exist so that user input can never reach a 500: every value is checked here
// against a narrow grammar before it is bound (never concatenated) into a prepared statement.
#ifndef FRAMESCOPE_SERVICES_API_API_PARAMS_H_
#define FRAMESCOPE_SERVICES_API_API_PARAMS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "src/base/status.h"

namespace fs::api {

// Longest camera or class name accepted in a request.
inline constexpr size_t kMaxNameLength = 64;
inline constexpr int kDefaultLimit = 100;
inline constexpr int kMaxLimit = 1000;
// Latest instant accepted for since/until: 9999-12-31T23:59:59Z (PostgreSQL and RFC 3339
// both stop at four-digit years).
inline constexpr int64_t kMaxUnixSeconds = 253402300799;

// Camera names as framescope's config allows them ([[camera]] name: letters, digits, _ and
// -), 1..64 bytes. `what` names the parameter in the error ("camera", "camera id").
Status ValidateCameraName(const std::string& what, const std::string& value);
// Class names as detection models name them ("person", "traffic light", "potted-plant"):
// letters, digits, space, _, - and ., 1..64 bytes, not starting or ending with a space.
Status ValidateClassName(const std::string& value);

// Parses a time: RFC 3339 ("2026-11-24T15:40:01Z", "2026-11-24T16:40:01.250+01:00"; 't',
// 'z' and a space instead of 'T' accepted, and a space instead of '+' before the offset,
// since an unencoded '+' in a query string decodes to a space) or unix seconds with an
// optional fraction ("1732462801", "1732462801.25"). Years 1970..9999. Returns microseconds
// since the epoch (the precision of PostgreSQL's timestamptz; finer digits are truncated).
StatusOr<int64_t> ParseTime(const std::string& what, const std::string& text);

// "limit": a plain decimal integer 1..kMaxLimit.
StatusOr<int> ParseLimit(const std::string& text);

// A stats window: "1m" (last 60 s, from the 1 s rollup) or "1h" (last hour, 1 min rollup).
struct StatsWindow {
  std::string name;   // "1m" or "1h"
  int seconds = 0;    // 60 or 3600
  std::string table;  // detection_rollup_1s or detection_rollup_1m
  std::string unit;   // "second" or "minute": the table's bucket width for date_trunc
};
StatusOr<StatsWindow> ParseWindow(const std::string& text);

// Rejects parameters not in `allowed` ("unknown parameter 'x'; allowed: a, b").
Status CheckAllowedParams(const std::map<std::string, std::string>& query,
                          const std::set<std::string>& allowed);

// Rejects any parameter given more than once (`repeated`: HttpRequest::repeated_query_keys):
// "?limit=abc&limit=5" has no single meaning, and taking the last value would hide the bad one.
Status CheckRepeatedParams(const std::set<std::string>& repeated);

// Validated /detections query.
struct DetectionsQuery {
  std::optional<std::string> camera;
  std::optional<std::string> class_name;
  std::optional<int64_t> since_us;  // inclusive
  std::optional<int64_t> until_us;  // inclusive
  int limit = kDefaultLimit;
};
StatusOr<DetectionsQuery> ParseDetectionsQuery(const std::map<std::string, std::string>& query);

// Microseconds since the epoch as a timestamptz literal PostgreSQL parses exactly and
// independently of the session's DateStyle and TimeZone: "2026-11-24 15:40:01.250000+00".
std::string PgTimestampLiteral(int64_t micros);
// Nanoseconds since the epoch as RFC 3339 UTC with nanoseconds: "2026-11-24T15:40:01.123456789Z".
std::string Rfc3339Nanos(int64_t nanos);

// Compares a presented secret with the expected one in time that depends only on the
// lengths, never on where the first difference is (no early exit).
bool ConstantTimeEquals(const std::string& presented, const std::string& expected);
// True when `authorization` is "Bearer <token>" (scheme case-insensitive) with the right
// token, compared with ConstantTimeEquals.
bool BearerTokenMatches(const std::string& authorization, const std::string& token);

}  // namespace fs::api

#endif  // FRAMESCOPE_SERVICES_API_API_PARAMS_H_
