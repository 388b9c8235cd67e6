#include "src/io/net_edges.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

#include "src/base/stats.h"

namespace fs::io {
namespace {

std::string Label(const PromSample& s, const std::string& key) {
  auto it = s.labels.find(key);
  return it == s.labels.end() ? std::string() : it->second;
}

// The series a sample belongs to, or nullopt when it is not one of the latency histograms.
// *part is "_bucket", "_count" or "_sum".
std::optional<SeriesKey> KeyOf(const PromSample& s, const std::string& exporter,
                               const std::string& service, std::string* part) {
  for (const char* family : {kClientHistogram, kServerHistogram}) {
    const std::string name(family);
    if (s.name.compare(0, name.size(), name) != 0) continue;
    *part = s.name.substr(name.size());
    if (*part != "_bucket" && *part != "_count" && *part != "_sum") return std::nullopt;
    SeriesKey k;
    k.exporter = exporter;
    if (name == kClientHistogram) {
      k.source = Label(s, "source");
      k.target = Label(s, "target");
      k.op = Label(s, "op");
    } else {
      k.server_side = true;
      k.source = kAnyClient;
      k.target = !service.empty()               ? service
                 : !Label(s, "service").empty() ? Label(s, "service")
                                                : Label(s, "job");
      k.op = Label(s, "route");
    }
    return k;
  }
  return std::nullopt;
}

double ParseLe(const std::string& le) {
  return le == "+Inf" ? std::numeric_limits<double>::infinity() : strtod(le.c_str(), nullptr);
}

// True when any count of `end` is below the same count at `begin`: the counters restarted.
bool WentDown(const HistCounts& begin, const HistCounts& end) {
  if (end.count < begin.count) return true;
  for (const auto& [le, c] : begin.cumulative) {
    auto it = end.cumulative.find(le);
    if (it != end.cumulative.end() && it->second < c) return true;
  }
  return false;
}

HistCounts Subtract(const HistCounts& end, const HistCounts& begin) {
  HistCounts d = end;
  d.count -= begin.count;
  d.sum -= begin.sum;
  for (auto& [le, c] : d.cumulative) {
    auto it = begin.cumulative.find(le);
    if (it != begin.cumulative.end()) c -= it->second;
  }
  return d;
}

// Adds `h` into `acc`, keeping only the bounds both have (see BuildEdges).
void Accumulate(const HistCounts& h, bool first, HistCounts* acc) {
  acc->count += h.count;
  acc->sum += h.sum;
  if (first) {
    acc->cumulative = h.cumulative;
    return;
  }
  for (auto it = acc->cumulative.begin(); it != acc->cumulative.end();) {
    auto other = h.cumulative.find(it->first);
    if (other == h.cumulative.end()) {
      it = acc->cumulative.erase(it);
    } else {
      it->second += other->second;
      ++it;
    }
  }
}

std::string Ms(double seconds) {
  return std::isinf(seconds) ? "+Inf" : Fixed(seconds * 1000, 3) + " ms";
}

// Fills fast_share and the verdict from the bucket counts.
void Judge(const HistCounts& h, EdgeStats* s) {
  bool finite = std::isfinite(h.count);
  for (const auto& [le, c] : h.cumulative) finite = finite && std::isfinite(c);
  if (!finite) {
    s->verdict = "not measurable";
    s->reason = "a count of the histogram is not a finite number (NaN or Inf in the scraped text)";
    return;
  }
  if (!(h.count > 0)) {
    s->verdict = "idle";
    s->reason = "no requests in the window (Δ_count = 0)";
    return;
  }
  auto fast = h.cumulative.find(kFastSeconds);
  if (fast == h.cumulative.end()) {
    std::string bounds;
    for (const auto& [le, c] : h.cumulative) {
      bounds += (bounds.empty() ? "" : ", ") + (std::isinf(le) ? "+Inf" : Fixed(le, 4));
    }
    s->verdict = "not measurable";
    s->reason =
        "0.005 s is not a bucket bound of every histogram summed here (common bounds: " + bounds +
        "), so the share of requests <= 5 ms cannot be counted exactly";
    return;
  }
  s->fast_requests = fast->second;
  s->fast_share = fast->second / h.count;
  // Integer counts: compare without rounding (exactly 99 % is met).
  const bool met = fast->second * 100 >= kFastShareGoal * 100 * h.count;
  s->verdict = met ? "met" : "not met";
  s->reason = Fixed(*s->fast_share * 100, 2) + " % of " + Fixed(h.count, 0) +
              " requests took <= 5 ms (Δ_bucket{le=\"0.005\"} " + Fixed(fast->second, 0) +
              " / Δ_count " + Fixed(h.count, 0) + "); goal >= 99 %";
}

// Commands that wait server-side for data (XREADGROUP ... BLOCK, BLPOP, WAIT): the time measured
// is mostly that wait, not the edge's latency.
bool IsBlockingOp(const SeriesKey& k) {
  static const std::set<std::string> kBlocking = {"XREAD",    "XREADGROUP", "BLPOP",  "BRPOP",
                                                  "BLMOVE",   "BRPOPLPUSH", "BLMPOP", "BZPOPMIN",
                                                  "BZPOPMAX", "BZMPOP",     "WAIT",   "WAITAOF"};
  return !k.server_side && k.target == "redis" && kBlocking.count(k.op) > 0;
}

}  // namespace

void AddHistogramSamples(const std::vector<PromSample>& samples, const std::string& exporter,
                         const std::string& service, HistSnapshot* out) {
  for (const PromSample& s : samples) {
    std::string part;
    std::optional<SeriesKey> key = KeyOf(s, exporter, service, &part);
    if (!key) continue;
    // Summed: series that differ only in labels the key leaves out (an extra label, or samples
    // of one exporter added twice) are parts of one series.
    HistCounts& h = (*out)[*key];
    if (part == "_count") {
      h.count += s.value;
    } else if (part == "_sum") {
      h.sum += s.value;
    } else if (auto le = s.labels.find("le"); le != s.labels.end()) {
      h.cumulative[ParseLe(le->second)] += s.value;
    }
  }
}

HistSnapshot WindowDelta(const HistSnapshot& begin, const HistSnapshot& end,
                         std::vector<SeriesKey>* resets) {
  HistSnapshot delta;
  for (const auto& [key, e] : end) {
    auto b = begin.find(key);
    if (b == begin.end()) {
      delta[key] = e;
    } else if (WentDown(b->second, e)) {
      delta[key] = e;
      resets->push_back(key);
    } else {
      delta[key] = Subtract(e, b->second);
    }
  }
  return delta;
}

EdgeStats StatsOf(const HistCounts& h, double window_s) {
  EdgeStats s;
  s.requests = h.count;
  s.rate = window_s > 0 ? h.count / window_s : 0;
  if (h.count > 0) {
    s.mean_s = h.sum / h.count;
    s.p50 = QuantileInBucket(h.cumulative, 0.5);
    s.p99 = QuantileInBucket(h.cumulative, 0.99);
  }
  Judge(h, &s);
  return s;
}

std::vector<NetEdge> BuildEdges(const HistSnapshot& delta, const std::vector<SeriesKey>& resets,
                                double window_s,
                                const std::map<std::string, double>& exporter_window_s) {
  using EdgeKey = std::tuple<std::string, std::string, bool>;
  struct Acc {
    HistCounts total;
    bool total_started = false;
    double blocking_requests = 0;
    double total_rate = 0;
    std::map<std::string, HistCounts> ops;
    bool reset = false;
    std::map<std::string, bool> op_reset, op_blocking;
    std::map<std::string, double> op_rate;
  };
  std::map<EdgeKey, Acc> acc;
  for (const auto& [key, h] : delta) {
    Acc& a = acc[{key.source, key.target, key.server_side}];
    const bool first_op = a.ops.find(key.op) == a.ops.end();
    Accumulate(h, first_op, &a.ops[key.op]);
    auto own = exporter_window_s.find(key.exporter);
    const double w = own != exporter_window_s.end() ? own->second : window_s;
    const double rate = w > 0 ? h.count / w : 0;
    a.op_rate[key.op] += rate;
    if (IsBlockingOp(key)) {
      a.op_blocking[key.op] = true;
      a.blocking_requests += h.count;
    } else {
      Accumulate(h, !a.total_started, &a.total);
      a.total_started = true;
      a.total_rate += rate;
    }
    for (const SeriesKey& r : resets) {
      if (r.Tie() == key.Tie()) a.reset = a.op_reset[key.op] = true;
    }
  }
  std::vector<NetEdge> edges;
  for (auto& [key, a] : acc) {
    NetEdge e;
    std::tie(e.source, e.target, e.server_side) = key;
    e.total = StatsOf(a.total, window_s);
    if (!exporter_window_s.empty()) e.total.rate = a.total_rate;
    e.total.reset = a.reset;
    if (a.total.count == 0 && a.blocking_requests > 0) {
      e.total.verdict = "not judged";
      e.total.reason = "only blocking reads saw requests (" + Fixed(a.blocking_requests, 0) +
                       "): their latency is mostly the wait for data";
    }
    for (const auto& [op, h] : a.ops) {
      e.ops.push_back(StatsOf(h, window_s));
      EdgeStats& s = e.ops.back();
      s.op = op;
      if (!exporter_window_s.empty()) s.rate = a.op_rate[op];
      s.reset = a.op_reset[op];
      s.blocking = a.op_blocking[op];
      if (s.blocking && h.count > 0) {
        s.reason =
            "not judged and left out of the edge's total: a blocking read (BLOCK/B*) "
            "waits for data by design, so its latency is mostly that wait; " +
            s.reason;
        s.verdict = "not judged";
      }
    }
    edges.push_back(std::move(e));
  }
  return edges;
}

std::string EdgeName(const NetEdge& e) {
  return e.source + " -> " + e.target + (e.server_side ? " (server side)" : "");
}

NetChecklist CheckEdges(const std::vector<NetEdge>& edges) {
  const NetEdge* worst = nullptr;
  std::vector<std::string> unmeasurable;
  int met = 0;
  for (const NetEdge& e : edges) {
    const EdgeStats& s = e.total;
    if (s.verdict == "met") ++met;
    if (s.verdict == "not measurable") unmeasurable.push_back(EdgeName(e) + ": " + s.reason);
    if (s.verdict == "not met" && (!worst || *s.fast_share < *worst->total.fast_share)) worst = &e;
  }
  if (worst) {
    return {"not met", "worst edge " + EdgeName(*worst) + ": " + worst->total.reason +
                           (worst->total.p99 ? "; p99 " + Ms(worst->total.p99->value) + " in (" +
                                                   Ms(worst->total.p99->lower) + ", " +
                                                   Ms(worst->total.p99->upper) + "]"
                                             : std::string())};
  }
  if (!unmeasurable.empty()) return {"not measurable", unmeasurable.front()};
  if (met == 0) {
    return {
        "not measurable",
        edges.empty()
            ? "no latency histogram (" + std::string(kClientHistogram) + ", " + kServerHistogram +
                  ") was found"
            : "no edge saw requests in the window (every Δ_count = 0, blocking reads not judged)"};
  }
  return {"met", "all " + std::to_string(met) +
                     " edges with traffic had >= 99 % of their requests <= 5 ms "
                     "(Δ_bucket{le=\"0.005\"} / Δ_count per edge)"};
}

}  // namespace fs::io
