#include "services/api/api_params.h"

#include <time.h>

#include <cctype>
#include <cstdio>

namespace fs::api {
namespace {

// User input echoed in an error message: bounded, and printable ASCII only, so the JSON
// error body stays valid UTF-8 whatever bytes were sent.
std::string Echo(const std::string& s) {
  constexpr size_t kMax = 40;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (s.size() > kMax) out += "...";
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at `*pos`.
bool Digits(const std::string& s, size_t* pos, size_t n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[*pos + i];
    if (!IsDigit(c)) return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(const std::string& s, size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Fraction digits after the '.', scaled to microseconds (digits beyond 6 are truncated).
bool Fraction(const std::string& s, size_t* pos, int64_t* micros) {
  size_t start = *pos;
  int64_t v = 0;
  int digits = 0;
  while (*pos < s.size() && IsDigit(s[*pos])) {
    if (digits < 6) {
      v = v * 10 + (s[*pos] - '0');
      ++digits;
    }
    ++*pos;
  }
  size_t n = *pos - start;
  if (n == 0 || n > 9) return false;
  for (; digits < 6; ++digits) v *= 10;
  *micros = v;
  return true;
}

StatusOr<int64_t> ParseRfc3339(const std::string& what, const std::string& s) {
  auto bad = [&](const std::string& why) {
    return Err(what + ": " + why + " in '" + Echo(s) +
               "'; expected RFC 3339 like 2026-11-24T15:40:01Z or unix seconds");
  };
  size_t pos = 0;
  int year, month, day, hour, minute, second;
  if (!Digits(s, &pos, 4, &year) || !Expect(s, &pos, '-') || !Digits(s, &pos, 2, &month) ||
      !Expect(s, &pos, '-') || !Digits(s, &pos, 2, &day)) {
    return bad("malformed date");
  }
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) {
    return bad("missing 'T' between date and time");
  }
  ++pos;
  if (!Digits(s, &pos, 2, &hour) || !Expect(s, &pos, ':') || !Digits(s, &pos, 2, &minute) ||
      !Expect(s, &pos, ':') || !Digits(s, &pos, 2, &second)) {
    return bad("malformed time of day");
  }
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    if (!Fraction(s, &pos, &micros)) return bad("malformed fraction of a second (1-9 digits)");
  }
  int offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-' || s[pos] == ' ')) {
    int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    int oh, om;
    if (!Digits(s, &pos, 2, &oh) || !Expect(s, &pos, ':') || !Digits(s, &pos, 2, &om) || oh > 23 ||
        om > 59) {
      return bad("malformed UTC offset (+HH:MM)");
    }
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return bad("missing time zone ('Z' or +HH:MM)");
  }
  if (pos != s.size()) return bad("trailing characters");
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) ||
      hour > 23 || minute > 59 || second > 60) {
    return bad("date or time out of range");
  }
  tm t{};
  t.tm_year = year - 1900;
  t.tm_mon = month - 1;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = minute;
  t.tm_sec = second;  // 60 (a leap second) rolls over to the next minute, as in PostgreSQL
  int64_t secs = static_cast<int64_t>(timegm(&t)) - offset_s;
  if (secs < 0 || secs > kMaxUnixSeconds) return bad("outside 1970-01-01..9999-12-31 UTC");
  return secs * 1000000 + micros;
}

StatusOr<int64_t> ParseUnixSeconds(const std::string& what, const std::string& s) {
  size_t pos = 0;
  int64_t secs = 0;
  while (pos < s.size() && IsDigit(s[pos])) {
    if (pos >= 12) return Err(what + ": unix seconds '" + Echo(s) + "' too large");
    secs = secs * 10 + (s[pos] - '0');
    ++pos;
  }
  if (pos == 0) {
    return Err(what + ": '" + Echo(s) +
               "' is neither unix seconds nor RFC 3339 (e.g. 2026-11-24T15:40:01Z)");
  }
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    if (!Fraction(s, &pos, &micros)) {
      return Err(what + ": malformed fraction in '" + Echo(s) + "' (1-9 digits)");
    }
  }
  if (pos != s.size()) {
    return Err(what + ": '" + Echo(s) +
               "' is neither unix seconds nor RFC 3339 (e.g. 2026-11-24T15:40:01Z)");
  }
  if (secs > kMaxUnixSeconds) {
    return Err(what + ": " + Echo(s) + " is after 9999-12-31T23:59:59Z");
  }
  return secs * 1000000 + micros;
}

}  // namespace

Status ValidateCameraName(const std::string& what, const std::string& value) {
  if (value.empty()) return Err(what + " must not be empty");
  if (value.size() > kMaxNameLength) {
    return Err(what + " is longer than " + std::to_string(kMaxNameLength) + " characters");
  }
  for (char c : value) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      return Err(what + " '" + Echo(value) + "' may only contain letters, digits, _ and -");
    }
  }
  return Status::Ok();
}

Status ValidateClassName(const std::string& value) {
  if (value.empty()) return Err("class must not be empty");
  if (value.size() > kMaxNameLength) {
    return Err("class is longer than " + std::to_string(kMaxNameLength) + " characters");
  }
  for (char c : value) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' && c != ' ') {
      return Err("class '" + Echo(value) + "' may only contain letters, digits, space, _, - and .");
    }
  }
  if (value.front() == ' ' || value.back() == ' ') {
    return Err("class '" + Echo(value) + "' must not start or end with a space");
  }
  return Status::Ok();
}

StatusOr<int64_t> ParseTime(const std::string& what, const std::string& text) {
  if (text.empty()) return Err(what + " must not be empty");
  if (text[0] == '-') return Err(what + ": '" + Echo(text) + "' is negative (before 1970)");
  // RFC 3339 starts with a four-digit year and a '-'; anything else is unix seconds.
  if (text.size() > 4 && text[4] == '-') return ParseRfc3339(what, text);
  return ParseUnixSeconds(what, text);
}

StatusOr<int> ParseLimit(const std::string& text) {
  auto bad = [&] {
    return Err("limit must be an integer from 1 to " + std::to_string(kMaxLimit) + ", got '" +
               Echo(text) + "'");
  };
  if (text.empty() || text.size() > 9) return bad();
  int v = 0;
  for (char c : text) {
    if (!IsDigit(c)) return bad();
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > kMaxLimit) return bad();
  return v;
}

StatusOr<StatsWindow> ParseWindow(const std::string& text) {
  if (text == "1m") return StatsWindow{"1m", 60, "detection_rollup_1s", "second"};
  if (text == "1h") return StatsWindow{"1h", 3600, "detection_rollup_1m", "minute"};
  return Err("window must be 1m or 1h, got '" + Echo(text) + "'");
}

Status CheckAllowedParams(const std::map<std::string, std::string>& query,
                          const std::set<std::string>& allowed) {
  for (const auto& [key, value] : query) {
    if (allowed.count(key)) continue;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    if (list.empty()) return Err("unknown parameter '" + Echo(key) + "'; this path takes none");
    return Err("unknown parameter '" + Echo(key) + "'; allowed: " + list);
  }
  return Status::Ok();
}

Status CheckRepeatedParams(const std::set<std::string>& repeated) {
  if (repeated.empty()) return Status::Ok();
  std::string list;
  for (const auto& key : repeated) list += (list.empty() ? "'" : ", '") + Echo(key) + "'";
  return Err((repeated.size() == 1 ? "parameter " + list + " is" : "parameters " + list + " are") +
             " given more than once; give each parameter at most once");
}

StatusOr<DetectionsQuery> ParseDetectionsQuery(const std::map<std::string, std::string>& query) {
  RETURN_IF_ERROR(CheckAllowedParams(query, {"camera", "class", "since", "until", "limit"}));
  DetectionsQuery q;
  if (auto it = query.find("camera"); it != query.end()) {
    RETURN_IF_ERROR(ValidateCameraName("camera", it->second));
    q.camera = it->second;
  }
  if (auto it = query.find("class"); it != query.end()) {
    RETURN_IF_ERROR(ValidateClassName(it->second));
    q.class_name = it->second;
  }
  if (auto it = query.find("since"); it != query.end()) {
    ASSIGN_OR_RETURN(q.since_us, ParseTime("since", it->second));
  }
  if (auto it = query.find("until"); it != query.end()) {
    ASSIGN_OR_RETURN(q.until_us, ParseTime("until", it->second));
  }
  if (q.since_us && q.until_us && *q.since_us > *q.until_us) {
    return Err("since (" + query.at("since") + ") is after until (" + query.at("until") + ")");
  }
  if (auto it = query.find("limit"); it != query.end()) {
    ASSIGN_OR_RETURN(q.limit, ParseLimit(it->second));
  }
  return q;
}

std::string PgTimestampLiteral(int64_t micros) {
  int64_t secs = micros / 1000000;
  int64_t frac = micros % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  tm u{};
  gmtime_r(&t, &u);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", u.tm_year + 1900,
           u.tm_mon + 1, u.tm_mday, u.tm_hour, u.tm_min, u.tm_sec, static_cast<long long>(frac));
  return buf;
}

std::string Rfc3339Nanos(int64_t nanos) {
  int64_t secs = nanos / 1000000000;
  int64_t frac = nanos % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  tm u{};
  gmtime_r(&t, &u);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", u.tm_year + 1900,
           u.tm_mon + 1, u.tm_mday, u.tm_hour, u.tm_min, u.tm_sec, static_cast<long long>(frac));
  return buf;
}

bool ConstantTimeEquals(const std::string& presented, const std::string& expected) {
  // The loop runs over the expected secret's length whatever was presented, touches every
  // byte, and only ORs differences together: no data-dependent branch or early exit.
  volatile unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    diff = diff | (p ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

bool BearerTokenMatches(const std::string& authorization, const std::string& token) {
  size_t sp = authorization.find(' ');
  if (sp != 6) return false;
  std::string scheme = authorization.substr(0, sp);
  for (auto& c : scheme) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer") return false;
  size_t start = authorization.find_first_not_of(' ', sp);
  if (start == std::string::npos) return false;
  size_t end = authorization.find_last_not_of(" \t");
  return ConstantTimeEquals(authorization.substr(start, end - start + 1), token);
}

}  // namespace fs::api
