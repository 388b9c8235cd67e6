#include "src/io/net_window.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <utility>

#include "src/base/clock.h"
#include "src/base/http.h"
#include "src/base/stats.h"
#include "src/base/utf8.h"

namespace fs::io {
namespace {

// The raw series of both latency histograms.
constexpr const char* kSelector =
    "{__name__=~\"framescope_client_request_duration_seconds_(bucket|count|sum)|"
    "http_request_duration_seconds_(bucket|count|sum)\"}";
// The label that marks a sample time in PromQuery's answer.
constexpr const char* kSampleTime = "framescope_sample_time";

// One instant query, so values and times come from one evaluation: the series, and the last
// sample time of each _count series (one scrape stamps all of an exporter's series alike). An
// instant query's own [time, value] is the evaluation time, not when Prometheus scraped; only
// timestamp() of a bare selector gives the samples' own times (of any other expression it gives
// the evaluation time too). It drops __name__, so each family is its own call, and the times are
// marked with kSampleTime, since `or` matches label sets without the name and would drop them.
std::string PromQuery() {
  std::string q = kSelector;
  for (const char* family : {kClientHistogram, kServerHistogram}) {
    q += std::string(" or label_replace(timestamp(") + family + "_count), \"" + kSampleTime +
         "\", \"1\", \"\", \"\")";
  }
  return q;
}

// Prometheus' vector result as text-format samples; the exporter is the job/instance pair.
// *scraped_at: per exporter, the newest of its samples' own timestamps (its last scrape).
StatusOr<std::vector<std::pair<std::string, PromSample>>> ParseVector(
    const std::string& body, std::map<std::string, double>* scraped_at) {
  ASSIGN_OR_RETURN(Json j, Json::Parse(body));
  if (j.Get("status").AsString() != "success") {
    return Err("Prometheus answered " + j.Get("status").AsString() + ": " +
               j.Get("error").AsString());
  }
  const Json& result = j.Get("data").Get("result");
  if (!result.is_array()) return Err("Prometheus' answer has no data.result array");
  std::vector<std::pair<std::string, PromSample>> out;
  for (const Json& r : result.AsArray()) {
    PromSample s;
    for (const auto& [k, v] : r.Get("metric").AsObject()) {
      if (k == "__name__") {
        s.name = v.AsString();
      } else {
        s.labels[k] = v.AsString();
      }
    }
    const Json& value = r.Get("value");
    if (!value.is_array() || value.size() != 2) return Err("a sample without [time, value]");
    s.value = strtod(value.AsArray()[1].AsString().c_str(), nullptr);
    const std::string exporter = s.labels["job"] + "/" + s.labels["instance"];
    if (s.labels.count(kSampleTime)) {
      double& t = (*scraped_at)[exporter];
      t = std::max(t, s.value);
      continue;
    }
    out.emplace_back(exporter, std::move(s));
  }
  return out;
}

// Per exporter at both ends, the time between its two last scrapes into *spans. Returns why
// Prometheus cannot give the window (an exporter not scraped again: its counts would cover
// none of it), or "". An exporter only at the end is new: its series count from zero.
std::string ScrapeSpans(const std::map<std::string, double>& begin,
                        const std::map<std::string, double>& end,
                        std::map<std::string, double>* spans) {
  std::string stale;
  for (const auto& [exporter, t] : end) {
    auto b = begin.find(exporter);
    if (b == begin.end()) continue;
    if (t <= b->second) {
      stale += (stale.empty() ? "" : ", ") + exporter + " (last scraped at " + Fixed(t, 3) + ")";
    } else {
      (*spans)[exporter] = t - b->second;
    }
  }
  if (!stale.empty()) {
    return "scraped nothing newer of " + stale +
           " between the window's ends (a window shorter than its scrape interval)";
  }
  if (begin.empty() && !end.empty()) {
    return "had scraped no latency series yet at the window's start (its first scrape of a "
           "target comes some seconds after it starts): counts at the end would include "
           "requests from before the window";
  }
  if (spans->empty()) return "has no latency series scraped at both ends of the window";
  return "";
}

Json QuantileJson(const std::optional<BucketQuantile>& q) {
  if (!q) return nullptr;
  Json j = Json::MakeObject();
  j["ms"] = q->value * 1000;
  j["bucket_lower_ms"] = q->lower * 1000;
  j["bucket_upper_ms"] = std::isinf(q->upper) ? Json("+Inf") : Json(q->upper * 1000);
  return j;
}

Json StatsJson(const EdgeStats& s) {
  Json j = Json::MakeObject();
  if (!s.op.empty()) j["op"] = s.op;
  j["requests"] = s.requests;
  j["rate_per_s"] = s.rate;
  j["mean_ms"] = s.requests > 0 ? Json(s.mean_s * 1000) : Json(nullptr);
  j["p50"] = QuantileJson(s.p50);
  j["p99"] = QuantileJson(s.p99);
  j["share_le_5ms"] = s.fast_share ? Json(*s.fast_share) : Json(nullptr);
  j["requests_le_5ms"] = s.fast_share ? Json(s.fast_requests) : Json(nullptr);
  j["verdict"] = s.verdict;
  j["reason"] = s.reason;
  j["reset_in_window"] = s.reset;
  if (s.blocking) j["blocking_read"] = true;
  return j;
}

std::string SeriesName(const SeriesKey& k) {
  return (k.server_side ? std::string(kServerHistogram) + "{route=\"" + k.op + "\"}"
                        : std::string(kClientHistogram) + "{source=\"" + k.source + "\",target=\"" +
                              k.target + "\",op=\"" + k.op + "\"}") +
         " from " + k.exporter;
}

}  // namespace

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

NetWindow::NetWindow(int prometheus_port, std::vector<MetricsEndpoint> services,
                     std::string prometheus_host)
    : prometheus_port_(prometheus_port),
      services_(std::move(services)),
      prometheus_host_(std::move(prometheus_host)) {}

StatusOr<HistSnapshot> NetWindow::QueryPrometheus(double unix_time,
                                                  std::map<std::string, double>* scraped_at) const {
  const std::string path =
      "/api/v1/query?query=" + UrlEncode(PromQuery()) + "&time=" + Fixed(unix_time, 3);
  ASSIGN_OR_RETURN(HttpResult r, HttpGet(prometheus_host_, prometheus_port_, path, 3000));
  if (r.status != 200) {
    return Err("HTTP " + std::to_string(r.status) + ": " + QuoteForTerminal(r.body, 200));
  }
  ASSIGN_OR_RETURN(auto samples, ParseVector(r.body, scraped_at));
  HistSnapshot snap;
  for (const auto& [exporter, s] : samples) AddHistogramSamples({s}, exporter, "", &snap);
  return snap;
}

NetWindow::Reading NetWindow::Read() const {
  Reading r;
  if (prometheus_port_ > 0) {
    auto snap = QueryPrometheus(static_cast<double>(WallNs()) / 1e9, &r.prom_scraped_at);
    r.prom_ok = snap.ok();
    if (snap.ok()) {
      r.prom = std::move(snap).value();
    } else {
      r.prom_error = snap.status().message();
    }
  }
  const int64_t scrape_start = MonotonicNs();
  for (const MetricsEndpoint& s : services_) {
    auto got = HttpGet("127.0.0.1", s.port, "/metrics", 2000);
    StatusOr<std::vector<PromSample>> samples =
        !got.ok()            ? StatusOr<std::vector<PromSample>>(got.status())
        : got->status != 200 ? Err("HTTP " + std::to_string(got->status))
                             : ParsePromText(got->body);
    if (!samples.ok()) {
      r.scrape_errors.push_back(s.name + " (127.0.0.1:" + std::to_string(s.port) +
                                "/metrics): " + samples.status().message());
      continue;
    }
    // The exporter is the endpoint, not the name: replicas of one service share the name.
    const std::string exporter = s.name + " at 127.0.0.1:" + std::to_string(s.port);
    r.scraped.push_back(exporter);
    AddHistogramSamples(*samples, exporter, s.name, &r.direct);
  }
  r.direct_ns = (scrape_start + MonotonicNs()) / 2;
  return r;
}

void NetWindow::Begin() {
  begin_ = Read();
  begun_ = true;
}

void NetWindow::End() {
  end_ = Read();
  ended_ = true;
}

bool NetWindow::ChooseSource(EdgeMap* m) const {
  const std::string prom =
      "Prometheus at " + prometheus_host_ + ":" + std::to_string(prometheus_port_);
  std::string why_not;
  std::map<std::string, double> spans;
  if (prometheus_port_ <= 0) {
    why_not = "Prometheus is not running (no port)";
  } else if (!begin_.prom_ok) {
    why_not = prom + " did not answer at the window's start: " + begin_.prom_error;
  } else if (!end_.prom_ok) {
    why_not = prom + " did not answer at the window's end: " + end_.prom_error;
  } else if (end_.prom.empty() && !end_.direct.empty()) {
    why_not = prom + " answered but holds none of the latency series (not scraping the services?)";
  } else if (std::string stale = ScrapeSpans(begin_.prom_scraped_at, end_.prom_scraped_at, &spans);
             !stale.empty()) {
    why_not = prom + " " + stale;
  } else {
    m->source = "prometheus";
    m->source_reason = prom + " answered at both ends of the window";
    m->scrape_spans_s = spans;
    for (const auto& [exporter, span] : spans) m->window_s = std::max(m->window_s, span);
    m->notes.push_back(
        "Prometheus only has values as of its last scrape (every 5 s in the system `framescope "
        "up` starts): the counts are those between its last scrape before the window's start and "
        "its last scrape before the end (the samples' own timestamps), and rates divide by the "
        "time between those two scrapes of each exporter (scrape_spans_s; window_s is the "
        "longest)");
    return true;
  }
  if (services_.empty()) {
    m->unavailable = why_not + "; and no service /metrics was given to scrape directly";
  } else if (begin_.scraped.empty() || end_.scraped.empty()) {
    std::string errors;
    for (const auto& e : begin_.scraped.empty() ? begin_.scrape_errors : end_.scrape_errors) {
      errors += (errors.empty() ? "" : "; ") + e;
    }
    m->unavailable = why_not + "; and no service's /metrics answered at the window's " +
                     (begin_.scraped.empty() ? "start" : "end") + ": " + errors;
  } else {
    m->source = "direct scrape";
    m->source_reason = why_not + ": scraped every service's /metrics directly at both ends";
    m->window_s = static_cast<double>(end_.direct_ns - begin_.direct_ns) / 1e9;
    return true;
  }
  m->source_reason = why_not;
  return false;
}

EdgeMap NetWindow::FromDirect(EdgeMap m) const {
  // A service not scraped at the start would count its whole history as the window's.
  const std::set<std::string> at_start(begin_.scraped.begin(), begin_.scraped.end());
  HistSnapshot end;
  for (const auto& [key, h] : end_.direct) {
    if (at_start.count(key.exporter)) end[key] = h;
  }
  for (const std::string& s : end_.scraped) {
    if (!at_start.count(s)) {
      m.notes.push_back(s + " left out: its /metrics did not answer at the window's start");
    }
  }
  for (const auto& e : begin_.scrape_errors) m.notes.push_back("start scrape failed: " + e);
  for (const auto& e : end_.scrape_errors) m.notes.push_back("end scrape failed: " + e);
  std::vector<SeriesKey> resets;
  const HistSnapshot delta = WindowDelta(begin_.direct, end, &resets);
  for (const SeriesKey& k : resets) {
    m.notes.push_back(SeriesName(k) +
                      " went down in the window (its service restarted): "
                      "counted from its end value, a lower bound");
  }
  m.edges = BuildEdges(delta, resets, m.window_s);
  return m;
}

EdgeMap NetWindow::Analyse() const {
  EdgeMap m;
  if (!begun_ || !ended_) {
    m.unavailable = "the window was not begun and ended";
    m.checklist = {"not measurable", m.unavailable};
    return m;
  }
  if (!ChooseSource(&m)) {
    m.checklist = {"not measurable", m.unavailable};
    return m;
  }
  if (m.source == "direct scrape") {
    m = FromDirect(std::move(m));
  } else {
    std::vector<SeriesKey> resets;
    const HistSnapshot delta = WindowDelta(begin_.prom, end_.prom, &resets);
    for (const SeriesKey& k : resets) {
      m.notes.push_back(SeriesName(k) +
                        " went down in the window (its service restarted): "
                        "counted from its end value, a lower bound");
    }
    m.edges = BuildEdges(delta, resets, m.window_s, m.scrape_spans_s);
  }
  m.checklist = CheckEdges(m.edges);
  return m;
}

Json NetToJson(const EdgeMap& m) {
  Json j = Json::MakeObject();
  j["source"] = m.source.empty() ? Json(nullptr) : Json(m.source);
  j["source_reason"] = m.source_reason;
  j["window_s"] = m.window_s;
  if (!m.scrape_spans_s.empty()) {
    Json spans = Json::MakeObject();
    for (const auto& [exporter, span] : m.scrape_spans_s) spans[exporter] = span;
    j["scrape_spans_s"] = spans;
  }
  j["counters"] = std::string(kClientHistogram) + "{source,target,op} (client side), " +
                  kServerHistogram + "{route} (the api's server side): _bucket, _count, _sum";
  j["goal"] = "share of requests <= 5 ms (bucket le=\"0.005\") >= 99 % per edge";
  j["unavailable"] = m.unavailable.empty() ? Json(nullptr) : Json(m.unavailable);
  Json notes = Json::MakeArray();
  for (const std::string& n : m.notes) notes.Push(n);
  j["notes"] = notes;
  Json edges = Json::MakeArray();
  for (const NetEdge& e : m.edges) {
    Json ej = StatsJson(e.total);
    ej["source"] = e.source;
    ej["target"] = e.target;
    ej["side"] = e.server_side ? "server" : "client";
    Json ops = Json::MakeArray();
    for (const EdgeStats& s : e.ops) ops.Push(StatsJson(s));
    ej[e.server_side ? "routes" : "ops"] = ops;
    edges.Push(ej);
  }
  j["edges"] = edges;
  Json c = Json::MakeObject();
  c["item"] = kNetChecklistItem;
  c["verdict"] = m.checklist.verdict;
  c["reason"] = m.checklist.reason;
  j["checklist"] = c;
  return j;
}

}  // namespace fs::io
