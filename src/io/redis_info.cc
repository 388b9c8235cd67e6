#include "src/io/redis_info.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace fs::io {
namespace {

// "a=1,b=2" -> {a: 1, b: 2}; values that are not numbers are left out.
std::map<std::string, double> ParseFields(const std::string& text) {
  std::map<std::string, double> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    if (size_t eq = item.find('='); eq != std::string::npos) {
      const std::string value = item.substr(eq + 1);
      char* end = nullptr;
      double v = strtod(value.c_str(), &end);
      if (!value.empty() && end != nullptr && *end == '\0') out[item.substr(0, eq)] = v;
    }
    pos = comma + 1;
  }
  return out;
}

uint64_t Count(const std::map<std::string, double>& fields, const std::string& name) {
  auto it = fields.find(name);
  return it == fields.end() || !(it->second >= 0) ? 0 : static_cast<uint64_t>(it->second);
}

// The cumulative count at `bound`: that of the largest bucket <= bound (omitted buckets were
// empty, so the count carries over from the one below).
uint64_t CumulativeAt(const LatencyHistogram& h, uint64_t bound) {
  uint64_t c = 0;
  for (const auto& [upper, cumulative] : h.cumulative) {
    if (upper > bound) break;
    c = cumulative;
  }
  return c;
}

bool IsText(const RedisReply& r) {
  return r.type == RedisReply::Type::kString || r.type == RedisReply::Type::kStatus;
}

}  // namespace

RedisInfo ParseRedisInfo(const std::string& text) {
  RedisInfo info;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line[0] != '#') {
      if (size_t colon = line.find(':'); colon != std::string::npos) {
        info[line.substr(0, colon)] = line.substr(colon + 1);
      }
    }
    pos = eol + 1;
  }
  return info;
}

std::optional<double> InfoNumber(const RedisInfo& info, const std::string& field) {
  auto it = info.find(field);
  if (it == info.end() || it->second.empty()) return std::nullopt;
  char* end = nullptr;
  double v = strtod(it->second.c_str(), &end);
  if (end == nullptr || *end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::map<std::string, CommandStat> CommandStats(const RedisInfo& info) {
  constexpr std::string_view kPrefix = "cmdstat_";
  std::map<std::string, CommandStat> out;
  for (const auto& [field, value] : info) {
    if (field.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    const auto f = ParseFields(value);
    if (!f.count("calls")) continue;
    out[field.substr(kPrefix.size())] = {Count(f, "calls"), Count(f, "usec"),
                                         Count(f, "rejected_calls"), Count(f, "failed_calls")};
  }
  return out;
}

std::map<std::string, KeyspaceDb> Keyspace(const RedisInfo& info) {
  std::map<std::string, KeyspaceDb> out;
  for (const auto& [field, value] : info) {
    if (field.size() < 3 || field.compare(0, 2, "db") != 0) continue;
    if (!std::all_of(field.begin() + 2, field.end(), [](char c) { return isdigit(c); })) continue;
    const auto f = ParseFields(value);
    if (f.count("keys")) out[field] = {Count(f, "keys"), Count(f, "expires")};
  }
  return out;
}

StatusOr<std::map<std::string, LatencyHistogram>> ParseLatencyHistogram(const RedisReply& reply) {
  if (reply.is_error()) return Err("LATENCY HISTOGRAM: " + reply.str);
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() % 2 != 0) {
    return Err("LATENCY HISTOGRAM: not a list of command/histogram pairs");
  }
  std::map<std::string, LatencyHistogram> out;
  for (size_t i = 0; i < reply.elements.size(); i += 2) {
    const RedisReply& name = reply.elements[i];
    const RedisReply& body = reply.elements[i + 1];
    if (!IsText(name) || body.type != RedisReply::Type::kArray || body.elements.size() % 2 != 0) {
      return Err("LATENCY HISTOGRAM: malformed entry " + std::to_string(i / 2));
    }
    LatencyHistogram h;
    for (size_t j = 0; j < body.elements.size(); j += 2) {
      const std::string& key = body.elements[j].str;
      const RedisReply& value = body.elements[j + 1];
      if (key == "calls" && value.type == RedisReply::Type::kInteger) {
        h.calls = static_cast<uint64_t>(std::max<int64_t>(0, value.integer));
      } else if (key == "histogram_usec" && value.type == RedisReply::Type::kArray) {
        if (value.elements.size() % 2 != 0) return Err("LATENCY HISTOGRAM: odd bucket list");
        for (size_t k = 0; k < value.elements.size(); k += 2) {
          const RedisReply& b = value.elements[k];
          const RedisReply& c = value.elements[k + 1];
          if (b.type != RedisReply::Type::kInteger || c.type != RedisReply::Type::kInteger ||
              b.integer < 0 || c.integer < 0) {
            return Err("LATENCY HISTOGRAM: bucket of " + name.str + " is not two integers");
          }
          h.cumulative.emplace_back(b.integer, c.integer);
        }
      }
    }
    std::sort(h.cumulative.begin(), h.cumulative.end());
    out[name.str] = std::move(h);
  }
  return out;
}

StatusOr<WindowHistogram> HistogramDelta(const LatencyHistogram& start,
                                         const LatencyHistogram& end) {
  if (end.calls < start.calls) return Err("its call count went down (the histogram was reset)");
  std::vector<uint64_t> bounds;
  for (const auto& b : start.cumulative) bounds.push_back(b.first);
  for (const auto& b : end.cumulative) bounds.push_back(b.first);
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  WindowHistogram w;
  w.calls = end.calls - start.calls;
  uint64_t below = 0;  // window calls in the buckets below
  for (uint64_t bound : bounds) {
    const uint64_t s = CumulativeAt(start, bound), e = CumulativeAt(end, bound);
    if (e < s || e - s < below) return Err("a bucket count went down (the histogram was reset)");
    if (e - s > below) w.buckets.emplace_back(bound, e - s - below);
    below = e - s;
  }
  return w;
}

std::optional<QuantileBucket> QuantileBounds(const WindowHistogram& h, double q) {
  uint64_t total = 0;
  for (const auto& b : h.buckets) total += b.second;
  if (total == 0) return std::nullopt;
  // The rank of the q-quantile among `total` ordered calls (1-based): the smallest n with
  // n >= q * total. The tiny slack keeps 0.99 * 100 from rounding up to 100.
  const uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(total) - 1e-9)));
  uint64_t seen = 0;
  for (const auto& [upper, count] : h.buckets) {
    seen += count;
    if (seen >= rank) return QuantileBucket{upper / 2, upper};
  }
  return QuantileBucket{h.buckets.back().first / 2, h.buckets.back().first};
}

StatusOr<std::vector<SlowlogEntry>> ParseSlowlog(const RedisReply& reply) {
  if (reply.is_error()) return Err("SLOWLOG GET: " + reply.str);
  if (reply.type != RedisReply::Type::kArray) return Err("SLOWLOG GET: not a list");
  std::vector<SlowlogEntry> out;
  for (const RedisReply& e : reply.elements) {
    if (e.type != RedisReply::Type::kArray || e.elements.size() < 4 ||
        e.elements[0].type != RedisReply::Type::kInteger ||
        e.elements[3].type != RedisReply::Type::kArray) {
      return Err("SLOWLOG GET: malformed entry");
    }
    SlowlogEntry s{e.elements[0].integer, e.elements[1].integer, e.elements[2].integer, {}, ""};
    for (const RedisReply& a : e.elements[3].elements) s.args.push_back(a.str);
    for (size_t i = 4; i < e.elements.size(); ++i) {
      if (!IsText(e.elements[i]) || e.elements[i].str.empty()) continue;
      s.client += (s.client.empty() ? "" : " ") + e.elements[i].str;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace fs::io
