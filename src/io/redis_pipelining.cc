#include "src/io/redis_pipelining.h"

#include <map>
#include <tuple>

#include "src/base/http.h"

namespace fs::io {
namespace {

constexpr const char* kCommands = "framescope_redis_commands_total";
constexpr const char* kPipelined = "framescope_redis_pipelined_commands_total";
constexpr const char* kRoundTrips = "framescope_redis_round_trips_total";

using SeriesKey = std::tuple<std::string, std::string, std::string>;  // source, op, metric

std::map<SeriesKey, double> RedisSeries(const std::vector<PromSample>& samples) {
  std::map<SeriesKey, double> out;
  for (const PromSample& s : samples) {
    if (s.name != kCommands && s.name != kPipelined && s.name != kRoundTrips) continue;
    auto label = [&](const char* name) {
      auto it = s.labels.find(name);
      return it == s.labels.end() ? std::string() : it->second;
    };
    out[{label("source"), label("op"), s.name}] += s.value;
  }
  return out;
}

// The first series that went down or vanished between the scrapes, as text; empty if none.
std::string RestartEvidence(const std::map<SeriesKey, double>& begin,
                            const std::map<SeriesKey, double>& end) {
  for (const auto& [key, before] : begin) {
    auto it = end.find(key);
    const auto& [source, op, metric] = key;
    const std::string series = metric + "{source=\"" + source + "\",op=\"" + op + "\"}";
    if (it == end.end()) return series + " vanished";
    if (it->second < before) {
      return series + " went down from " + std::to_string(static_cast<int64_t>(before)) + " to " +
             std::to_string(static_cast<int64_t>(it->second));
    }
  }
  return "";
}

void AddSeries(PipelineCounts* c, const std::string& metric, double v) {
  if (metric == kCommands) c->commands += v;
  if (metric == kPipelined) c->pipelined += v;
  if (metric == kRoundTrips) c->round_trips += v;
}

// The scrape of `endpoint` itself: its name and its port, since two replicas of one service
// share the name (matching by name alone would subtract the other replica's begin scrape).
const ServiceScrape* FindScrape(const std::vector<ServiceScrape>& scrapes,
                                const MetricsEndpoint& endpoint) {
  for (const ServiceScrape& s : scrapes) {
    if (s.endpoint.name == endpoint.name && s.endpoint.port == endpoint.port) return &s;
  }
  return nullptr;
}

}  // namespace

std::optional<double> PipelineCounts::Efficiency() const {
  if (!(commands > 0)) return std::nullopt;
  return pipelined / commands;
}

std::optional<double> PipelineCounts::CommandsPerRoundTrip() const {
  if (!(round_trips > 0)) return std::nullopt;
  return commands / round_trips;
}

void PipelineCounts::Add(const PipelineCounts& o) {
  commands += o.commands;
  pipelined += o.pipelined;
  round_trips += o.round_trips;
}

std::vector<ServiceScrape> ScrapeServices(const std::vector<MetricsEndpoint>& services,
                                          int timeout_ms) {
  std::vector<ServiceScrape> out;
  for (const MetricsEndpoint& e : services) {
    ServiceScrape s{e, false, "", {}};
    const std::string where = "127.0.0.1:" + std::to_string(e.port) + "/metrics";
    auto r = HttpGet("127.0.0.1", e.port, "/metrics", timeout_ms);
    if (!r.ok()) {
      s.error = where + ": " + r.status().message();
    } else if (r->status != 200) {
      s.error = where + ": HTTP " + std::to_string(r->status);
    } else if (auto parsed = ParsePromText(r->body); !parsed.ok()) {
      s.error = where + ": not Prometheus text: " + parsed.status().message();
    } else {
      s.ok = true;
      s.samples = std::move(parsed).value();
    }
    out.push_back(std::move(s));
  }
  return out;
}

ClientPipelining DiffClientCounters(const std::vector<ServiceScrape>& begin,
                                    const std::vector<ServiceScrape>& end) {
  ClientPipelining out;
  std::map<std::tuple<std::string, std::string, std::string>, PipelineCounts> ops;
  std::map<std::string, PipelineCounts> sources;
  for (const ServiceScrape& e : end) {
    ServicePipeliningStatus st{e.endpoint, "not measured", ""};
    const ServiceScrape* b = FindScrape(begin, e.endpoint);
    if (b == nullptr || !b->ok) {
      st.detail = "no scrape at the window's start: " + (b ? b->error : std::string("not taken"));
    } else if (!e.ok) {
      st.detail = "no scrape at the window's end: " + e.error;
    }
    if (!st.detail.empty()) {
      out.services.push_back(std::move(st));
      continue;
    }
    const auto before = RedisSeries(b->samples), after = RedisSeries(e.samples);
    if (before.empty() && after.empty()) {
      out.services.push_back({e.endpoint, "no counters", "exports no framescope_redis_* counters"});
      continue;
    }
    out.any_counters = true;
    const std::string restart = RestartEvidence(before, after);
    st.state = restart.empty() ? "measured" : "restarted";
    if (!restart.empty()) {
      st.detail = "restarted in the window (" + restart +
                  "): counted from its end values, what it sent since the restart";
    }
    for (const auto& [key, value] : after) {
      const auto& [source, op, metric] = key;
      auto it = before.find(key);
      const double delta = restart.empty() && it != before.end() ? value - it->second : value;
      AddSeries(&ops[{source, op, e.endpoint.name}], metric, delta);
      AddSeries(&sources[source], metric, delta);
    }
    out.services.push_back(std::move(st));
  }
  // Ops and sources idle in the window are left out: they sent nothing to measure.
  auto idle = [](const PipelineCounts& c) { return c.commands == 0 && c.round_trips == 0; };
  for (const auto& [key, counts] : ops) {
    const auto& [source, op, service] = key;
    if (!idle(counts)) out.ops.push_back({service, source, op, counts});
  }
  for (const auto& [source, counts] : sources) {
    if (idle(counts)) continue;
    out.sources.push_back({source, counts});
    out.total.Add(counts);
  }
  return out;
}

}  // namespace fs::io
