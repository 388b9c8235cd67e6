#include "src/clients/prom_text.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "src/base/utf8.h"

namespace fs {

StatusOr<std::vector<PromSample>> ParsePromText(const std::string& text) {
  std::vector<PromSample> out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    auto bad = [&](const std::string& why) {
      // The line is the scraped service's bytes: quoted short and with escapes neutralised.
      return Err("metrics line " + std::to_string(line_no) + ": " + why + ": " +
                 QuoteForTerminal(line, 120));
    };
    PromSample s;
    size_t i = 0;
    while (i < line.size() &&
           (isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == ':')) {
      ++i;
    }
    if (i == 0) return bad("missing metric name");
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          return bad("malformed label");
        }
        std::string key = line.substr(i, eq - i);
        std::string val;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            val += line[j] == 'n' ? '\n' : line[j];
          } else {
            val += line[j];
          }
        }
        if (j >= line.size()) return bad("unterminated label value");
        s.labels[key] = val;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return bad("unterminated label set");
      ++i;
    }
    while (i < line.size() && line[i] == ' ') ++i;
    std::string value = line.substr(i);
    if (auto sp = value.find(' '); sp != std::string::npos) value = value.substr(0, sp);
    if (value == "+Inf") {
      s.value = std::numeric_limits<double>::infinity();
    } else if (value == "-Inf") {
      s.value = -std::numeric_limits<double>::infinity();
    } else if (value == "NaN") {
      s.value = std::nan("");
    } else {
      char* e = nullptr;
      s.value = strtod(value.c_str(), &e);
      if (value.empty() || *e != '\0') return bad("bad value");
    }
    out.push_back(std::move(s));
  }
  return out;
}

namespace {
bool Matches(const PromSample& s, const std::map<std::string, std::string>& match) {
  for (const auto& [k, v] : match) {
    auto it = s.labels.find(k);
    if (it == s.labels.end() || it->second != v) return false;
  }
  return true;
}
}  // namespace

double SumSamples(const std::vector<PromSample>& samples, const std::string& name,
                  const std::map<std::string, std::string>& match) {
  double total = 0;
  for (const auto& s : samples) {
    if (s.name == name && Matches(s, match)) total += s.value;
  }
  return total;
}

double HistogramQuantile(const std::vector<PromSample>& samples, const std::string& name, double q,
                         const std::map<std::string, std::string>& match) {
  std::map<double, double> cumulative;  // le -> count, summed across series
  for (const auto& s : samples) {
    if (s.name != name + "_bucket" || !Matches(s, match)) continue;
    auto it = s.labels.find("le");
    if (it == s.labels.end()) continue;
    double le = it->second == "+Inf" ? std::numeric_limits<double>::infinity()
                                     : strtod(it->second.c_str(), nullptr);
    cumulative[le] += s.value;
  }
  auto quantile = QuantileInBucket(cumulative, q);
  return quantile ? quantile->value : std::nan("");
}

std::optional<BucketQuantile> QuantileInBucket(const std::map<double, double>& cumulative,
                                               double q) {
  if (cumulative.empty() || !(cumulative.rbegin()->second > 0)) return std::nullopt;
  const double rank = q * cumulative.rbegin()->second;
  double prev_le = 0, prev_count = 0;
  for (const auto& [le, count] : cumulative) {
    if (count >= rank) {
      BucketQuantile b{le, prev_le, le};
      if (std::isinf(le)) {
        b.value = prev_le;  // beyond the last finite bucket: its bound, as Prometheus answers
      } else if (count != prev_count) {
        b.value = prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count);
      }
      return b;
    }
    prev_le = le;
    prev_count = count;
  }
  // Only when the counts are not cumulative (a bucket below its predecessor).
  return BucketQuantile{prev_le, prev_le, prev_le};
}

}  // namespace fs
