// NetWindow against real parts: Debian's /usr/bin/prometheus scraping a test HttpServer every
// 200 ms, the same server scraped directly, and a Prometheus port where nothing listens.
#include "src/io/net_window.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/http.h"
#include "src/base/net.h"
#include "src/clients/metrics.h"

namespace fs::io {
namespace {

constexpr const char* kPrometheus = "/usr/bin/prometheus";

// A service exporting its registry at /metrics on a free loopback port.
class FakeService {
 public:
  FakeService() {
    server_.Handle("/metrics", [this](const HttpRequest& req) {
      auto ua = req.headers.find("user-agent");
      if (ua != req.headers.end() && ua->second.find("Prometheus") != std::string::npos) {
        std::lock_guard<std::mutex> lock(mu_);
        prom_scrapes_.push_back(static_cast<double>(WallNs()) / 1e9);
      }
      HttpResponse r;
      r.body = registry_->RenderText();
      return r;
    });
    Status st = server_.Start("127.0.0.1", 0);
    EXPECT_TRUE(st.ok()) << st.message();
  }
  int port() const { return server_.port(); }
  Histogram* Edge(const std::string& op) {
    return registry_->GetHistogram(kClientHistogram, "test",
                                   {{"source", "api"}, {"target", "postgres"}, {"op", op}},
                                   LatencyBucketsSeconds());
  }
  // A restart: the counters start again from zero. Not while anything else scrapes.
  void Restart() { registry_ = std::make_unique<MetricsRegistry>(); }
  int PromScrapes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(prom_scrapes_.size());
  }
  // Waits (up to 10 s) for Prometheus' next scrape; the wall time (unix s) the service saw it.
  double NextPromScrape() const {
    const int seen = PromScrapes();
    for (int i = 0; i < 1000 && PromScrapes() == seen; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard<std::mutex> lock(mu_);
    return prom_scrapes_.back();
  }

 private:
  mutable std::mutex mu_;
  std::vector<double> prom_scrapes_;
  std::unique_ptr<MetricsRegistry> registry_ = std::make_unique<MetricsRegistry>();
  HttpServer server_;
};

// A real Prometheus in a temp dir scraping one target.
class PrometheusProcess {
 public:
  ~PrometheusProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  // Empty on success, else why.
  std::string Start(int target_port, const std::string& interval = "200ms") {
    char tmpl[] = "/tmp/fs-prom-test-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return "mkdtemp failed";
    dir_ = tmpl;
    auto port = PickFreePort();
    if (!port.ok()) return port.status().message();
    port_ = *port;
    const std::string yml =
        "global:\n  scrape_interval: " + interval +
        "\n  scrape_timeout: 150ms\nscrape_configs:\n"
        "  - job_name: api\n    static_configs:\n      - targets: ['127.0.0.1:" +
        std::to_string(target_port) + "']\n        labels: {service: api}\n";
    if (Status st = WriteFileAtomic(dir_ + "/prometheus.yml", yml); !st.ok()) return st.message();
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open((dir_ + "/prometheus.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      const std::string config = "--config.file=" + dir_ + "/prometheus.yml";
      const std::string data = "--storage.tsdb.path=" + dir_ + "/data";
      const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
      execl(kPrometheus, "prometheus", config.c_str(), data.c_str(), listen.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      auto r = HttpGet("127.0.0.1", port_, "/-/ready", 500);
      if (r.ok() && r->status == 200) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto log = ReadFile(dir_ + "/prometheus.log");
    return "prometheus not ready in 10 s: " + (log.ok() ? *log : std::string());
  }
  int port() const { return port_; }

  // Polls until Prometheus' latest sample of the summed _count is `want` (it has scraped). Up to
  // 30 s: Prometheus hands its scrape manager the first targets only after its discovery
  // throttle (5 s), so the first scrape comes some seconds after /-/ready.
  bool WaitForCount(double want) const {
    const std::string path =
        "/api/v1/query?query=" + UrlEncode(std::string("sum(") + kClientHistogram + "_count)");
    for (int i = 0; i < 600; ++i) {
      auto r = HttpGet("127.0.0.1", port_, path, 1000);
      if (r.ok() && r->status == 200) {
        auto j = Json::Parse(r->body);
        const Json& result = j.ok() ? j->Get("data").Get("result") : Json();
        if (result.is_array() && result.size() == 1 &&
            result.AsArray()[0].Get("value").AsArray()[1].AsString() ==
                std::to_string(static_cast<int>(want))) {
          return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

void ObserveN(Histogram* h, int n, double seconds) {
  for (int i = 0; i < n; ++i) h->Observe(seconds);
}

TEST(NetWindow, PrometheusQueryGivesTheSameDeltasAsDirectScrapes) {
  ASSERT_EQ(access(kPrometheus, X_OK), 0)
      << kPrometheus << " is missing: scripts/install-deps.sh installs prometheus";
  FakeService svc;
  ObserveN(svc.Edge("select"), 50, 0.2);  // before the window
  PrometheusProcess prom;
  const std::string why = prom.Start(svc.port());
  ASSERT_EQ(why, "");
  // Begun before Prometheus' first scrape (some seconds after it is ready): its counts at the
  // end would include the 50 from before the window, so the window is scraped directly.
  NetWindow early(prom.port(), {{"api", svc.port()}});
  early.Begin();
  ASSERT_TRUE(prom.WaitForCount(50));
  NetWindow via_prom(prom.port(), {{"api", svc.port()}});
  NetWindow direct(0, {{"api", svc.port()}});
  via_prom.Begin();
  direct.Begin();
  ObserveN(svc.Edge("select"), 97, 0.003);
  ObserveN(svc.Edge("select"), 2, 0.04);
  ObserveN(svc.Edge("insert"), 1, 0.0004);
  ASSERT_TRUE(prom.WaitForCount(150));
  via_prom.End();
  direct.End();
  early.End();
  const EdgeMap e = early.Analyse();
  EXPECT_EQ(e.source, "direct scrape");
  EXPECT_NE(e.source_reason.find("had scraped no latency series yet"), std::string::npos)
      << e.source_reason;
  ASSERT_EQ(e.edges.size(), 1u);
  EXPECT_EQ(e.edges[0].total.requests, 100);
  const EdgeMap p = via_prom.Analyse(), d = direct.Analyse();
  EXPECT_EQ(p.source, "prometheus") << p.source_reason;
  EXPECT_EQ(d.source, "direct scrape") << d.source_reason;
  ASSERT_EQ(p.edges.size(), 1u);
  ASSERT_EQ(d.edges.size(), 1u);
  for (const EdgeMap* m : {&p, &d}) {
    const EdgeStats& s = m->edges[0].total;
    SCOPED_TRACE(m->source);
    EXPECT_EQ(m->edges[0].source, "api");
    EXPECT_EQ(s.requests, 100);
    EXPECT_EQ(s.fast_requests, 98);
    EXPECT_EQ(s.verdict, "not met");
    EXPECT_DOUBLE_EQ(s.p99->lower, 0.025);  // the 99th is the first of the two 40 ms ones
    EXPECT_DOUBLE_EQ(s.p99->upper, 0.05);
    ASSERT_EQ(m->edges[0].ops.size(), 2u);
    EXPECT_EQ(m->edges[0].ops[0].op, "insert");
    EXPECT_EQ(m->edges[0].ops[0].requests, 1);
    EXPECT_EQ(m->checklist.verdict, "not met");
  }
  EXPECT_DOUBLE_EQ(p.edges[0].total.p99->value, d.edges[0].total.p99->value);
  EXPECT_NE(NetToJson(p).Dump().find("last scrape"), std::string::npos);
}

// The window is the time between Prometheus' own scrapes (the samples' timestamps), not between
// the queries: rates divide by it, and a window with no scrape in it is not read as idle.
TEST(NetWindow, PrometheusWindowIsTheSpanBetweenItsScrapes) {
  ASSERT_EQ(access(kPrometheus, X_OK), 0) << kPrometheus << " is missing";
  FakeService svc;
  ObserveN(svc.Edge("select"), 5, 0.001);
  PrometheusProcess prom;
  ASSERT_EQ(prom.Start(svc.port(), "500ms"), "");
  ASSERT_TRUE(prom.WaitForCount(5));
  NetWindow w(prom.port(), {{"api", svc.port()}});

  // Begin 50 ms after a scrape, End 250 ms after a later one: the queries are 200 ms further
  // apart than the scrapes the counts come from.
  const double s0 = svc.NextPromScrape();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  w.Begin();
  ObserveN(svc.Edge("select"), 100, 0.001);
  const double s1 = svc.NextPromScrape();
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  const int scrapes = svc.PromScrapes();
  w.End();
  ASSERT_EQ(svc.PromScrapes(), scrapes) << "a scrape came between the sleep and End()";
  const EdgeMap m = w.Analyse();
  ASSERT_EQ(m.source, "prometheus") << m.source_reason;
  EXPECT_NEAR(m.window_s, s1 - s0, 0.02);
  ASSERT_EQ(m.edges.size(), 1u);
  EXPECT_EQ(m.edges[0].total.requests, 100);
  EXPECT_NEAR(m.edges[0].total.rate, 100 / (s1 - s0), 100 / (s1 - s0) * 0.02);
  EXPECT_EQ(m.scrape_spans_s.size(), 1u);

  // No scrape between Begin and End: Prometheus cannot give the window, the direct scrapes do.
  svc.NextPromScrape();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int before = svc.PromScrapes();
  w.Begin();
  ObserveN(svc.Edge("select"), 10, 0.001);
  w.End();
  ASSERT_EQ(svc.PromScrapes(), before) << "a scrape came between Begin() and End()";
  const EdgeMap n = w.Analyse();
  EXPECT_EQ(n.source, "direct scrape");
  EXPECT_NE(n.source_reason.find("scraped nothing newer"), std::string::npos) << n.source_reason;
  ASSERT_EQ(n.edges.size(), 1u);
  EXPECT_EQ(n.edges[0].total.requests, 10) << NetToJson(n).Dump();
}

// Two replicas of one service given with one name: their requests add up, each replica
// subtracted from its own start scrape, so a restart of one leaves the other's delta exact.
TEST(NetWindow, ReplicasWithOneNameAreSummedAndDiffedPerReplica) {
  FakeService a, b;
  ObserveN(a.Edge("select"), 7, 0.001);  // before the window, different on each replica
  ObserveN(b.Edge("select"), 300, 0.001);
  NetWindow w(0, {{"det", a.port()}, {"det", b.port()}});
  w.Begin();
  ObserveN(a.Edge("select"), 980, 0.001);
  ObserveN(a.Edge("select"), 20, 0.04);
  ObserveN(b.Edge("select"), 1000, 0.0005);
  w.End();
  const EdgeMap m = w.Analyse();
  ASSERT_EQ(m.edges.size(), 1u) << m.source_reason;
  EXPECT_EQ(m.edges[0].total.requests, 2000);
  EXPECT_EQ(m.edges[0].total.fast_requests, 1980);
  EXPECT_EQ(m.edges[0].total.verdict, "met") << m.edges[0].total.reason;

  w.Begin();
  ObserveN(a.Edge("select"), 50, 0.001);
  b.Restart();
  ObserveN(b.Edge("select"), 20, 0.001);
  w.End();
  const EdgeMap r = w.Analyse();
  ASSERT_EQ(r.edges.size(), 1u) << r.source_reason;
  EXPECT_EQ(r.edges[0].total.requests, 70);  // a's 50 + b's 20 since its restart
  EXPECT_TRUE(r.edges[0].total.reset);
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("det at 127.0.0.1:" + std::to_string(b.port())), std::string::npos)
      << r.notes[0];
}

TEST(NetWindow, UnreachablePrometheusFallsBackToDirectScrapesAndSaysSo) {
  FakeService svc;
  auto closed = PickFreePort();
  ASSERT_TRUE(closed.ok());
  NetWindow w(*closed, {{"api", svc.port()}});
  w.Begin();
  ObserveN(svc.Edge("select"), 10, 0.001);
  w.End();
  const EdgeMap m = w.Analyse();
  EXPECT_EQ(m.source, "direct scrape");
  EXPECT_NE(m.source_reason.find("did not answer at the window's start"), std::string::npos)
      << m.source_reason;
  ASSERT_EQ(m.edges.size(), 1u);
  EXPECT_EQ(m.edges[0].total.requests, 10);
  EXPECT_EQ(m.checklist.verdict, "met") << m.checklist.reason;

  // Something that answers HTTP but is not Prometheus (the service itself): its 404 is the
  // reason, and the direct scrapes still measure.
  NetWindow not_prom(svc.port(), {{"api", svc.port()}});
  not_prom.Begin();
  not_prom.End();
  const EdgeMap n = not_prom.Analyse();
  EXPECT_EQ(n.source, "direct scrape");
  EXPECT_NE(n.source_reason.find("HTTP 404"), std::string::npos) << n.source_reason;
  ASSERT_EQ(n.edges.size(), 1u);
  EXPECT_EQ(n.edges[0].total.verdict, "idle");
}

TEST(NetWindow, NothingReachableIsNotMeasurableWithTheReason) {
  auto closed = PickFreePort();
  ASSERT_TRUE(closed.ok());
  NetWindow w(*closed, {{"detection", *closed}});
  w.Begin();
  w.End();
  const EdgeMap m = w.Analyse();
  EXPECT_EQ(m.source, "");
  EXPECT_NE(m.unavailable.find("no service's /metrics answered"), std::string::npos)
      << m.unavailable;
  EXPECT_EQ(m.checklist.verdict, "not measurable");
  EXPECT_TRUE(NetToJson(m).Get("source").is_null());
}

}  // namespace
}  // namespace fs::io
