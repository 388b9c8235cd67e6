// The network latency map over a window (`framescope net`, profile's network section): every
// edge's latency histogram read at Begin() and End() and subtracted (net_edges.h).
//
// Where the histograms come from: Prometheus' HTTP query API (instant queries of the raw
// _bucket/_count/_sum series at the window's start and end, with the samples' own timestamps:
// the window is the time between Prometheus' scrapes, not between the queries), or, when
// Prometheus is not running, does not answer, has none of the series or scraped nothing new in
// the window, the services' /metrics scraped directly at Begin() and End(). The services are
// scraped at both ends in any case (a handful of loopback GETs), so a Prometheus that fails at
// End() still leaves a measured window. Never fatal: what could not be read is kept as the reason.
#ifndef FRAMESCOPE_IO_NET_WINDOW_H_
#define FRAMESCOPE_IO_NET_WINDOW_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"
#include "src/io/metrics_endpoint.h"
#include "src/io/net_edges.h"

namespace fs::io {

inline constexpr const char* kNetChecklistItem =
    "3.3 service-to-service p99 under 5 ms, from Prometheus histograms (share of requests <= 5 "
    "ms >= 99 % on every edge with traffic, counted from the buckets)";

struct EdgeMap {
  std::string source;         // "prometheus", "direct scrape", or "" when neither could be read
  std::string source_reason;  // why that source
  std::vector<std::string> notes;  // resets, failed scrapes, Prometheus' scrape lag
  double window_s = 0;
  // Prometheus only: per exporter (job/instance), the time between its last scrape before the
  // window's start and its last before the end, which its counts span and its rates divide by.
  std::map<std::string, double> scrape_spans_s;
  std::vector<NetEdge> edges;
  NetChecklist checklist;
  std::string unavailable;  // non-empty: no histogram could be read at all, and why
};

class NetWindow {
 public:
  // prometheus_port 0: Prometheus is not running. `services`: every /metrics to scrape.
  NetWindow(int prometheus_port, std::vector<MetricsEndpoint> services,
            std::string prometheus_host = "127.0.0.1");
  void Begin();
  void End();
  EdgeMap Analyse() const;

 private:
  // One end of the window, read both ways.
  struct Reading {
    bool prom_ok = false;
    std::string prom_error;
    HistSnapshot prom;
    // Per exporter (job/instance): unix s of its last scrape, its samples' own timestamp.
    std::map<std::string, double> prom_scraped_at;
    int64_t direct_ns = 0;  // monotonic: the middle of the direct scrapes
    HistSnapshot direct;
    std::vector<std::string> scraped;  // exporters ("name at host:port") whose /metrics answered
    std::vector<std::string> scrape_errors;
  };
  Reading Read() const;
  // `*scraped_at`: per exporter, its samples' timestamp (Prometheus' last scrape of it, unix s).
  StatusOr<HistSnapshot> QueryPrometheus(double unix_time,
                                         std::map<std::string, double>* scraped_at) const;
  // Picks the source and says why; false when neither can give a window.
  bool ChooseSource(EdgeMap* m) const;
  EdgeMap FromDirect(EdgeMap m) const;

  int prometheus_port_;
  std::vector<MetricsEndpoint> services_;
  std::string prometheus_host_;
  Reading begin_, end_;
  bool begun_ = false, ended_ = false;
};

Json NetToJson(const EdgeMap& m);

// Percent-encodes everything but RFC 3986's unreserved characters (a PromQL query in a URL).
std::string UrlEncode(const std::string& s);

}  // namespace fs::io

#endif  // FRAMESCOPE_IO_NET_WINDOW_H_
