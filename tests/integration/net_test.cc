// `framescope net` end to end: the real binary scrapes two services served by this test (an
// HttpServer each, exporting histograms fed with known values during the window) because the
// given Prometheus does not answer; Ctrl-C still writes the map; bad input is refused with 2.
#include "src/base/net.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "src/base/file_util.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/clients/metrics.h"
#include "tests/integration/test_util.h"

namespace fs::testing {
namespace {

constexpr const char* kClient = "framescope_client_request_duration_seconds";

class Service {
 public:
  Service() {
    server_.Handle("/metrics", [this](const HttpRequest&) {
      HttpResponse r;
      r.body = registry.RenderText();
      return r;
    });
    EXPECT_TRUE(server_.Start("127.0.0.1", 0).ok());
  }
  std::string Flag(const std::string& name) const {
    return " --metrics " + name + "=127.0.0.1:" + std::to_string(server_.port());
  }
  MetricsRegistry registry;

 private:
  HttpServer server_;
};

std::string Net() { return BinDir() + "/framescope net"; }

TEST(NetCommand, MapsEveryEdgeFromDirectScrapesWhenPrometheusIsDown) {
  TempDir tmp;
  Service api, detection;
  Histogram* pg = api.registry.GetHistogram(
      kClient, "t", {{"source", "api"}, {"target", "postgres"}, {"op", "q"}},
      LatencyBucketsSeconds());
  Histogram* served = api.registry.GetHistogram("http_request_duration_seconds", "t",
                                                {{"route", "/cameras"}}, LatencyBucketsSeconds());
  detection.registry.GetHistogram(kClient, "t",
                                  {{"source", "detection"}, {"target", "redis"}, {"op", "XADD"}},
                                  LatencyBucketsSeconds());  // idle
  for (int i = 0; i < 40; ++i) pg->Observe(1.0);             // before the window
  auto closed = PickFreePort();
  ASSERT_TRUE(closed.ok());
  CommandResult r;
  std::thread run([&] {
    r = RunShell("{ " + Net() + " --duration 2 --prometheus-url 127.0.0.1:" +
                 std::to_string(*closed) + api.Flag("api") + detection.Flag("detection") +
                 " --out " + tmp.path() + "/p --json 2>" + tmp.path() + "/err; }");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  for (int i = 0; i < 98; ++i) pg->Observe(0.002);
  for (int i = 0; i < 2; ++i) pg->Observe(0.04);
  for (int i = 0; i < 5; ++i) served->Observe(0.001);
  run.join();
  ASSERT_EQ(r.exit_code, 3) << r.output << *ReadFile(tmp.path() + "/err");  // 98 % <= 5 ms
  auto out = Json::Parse(r.output);
  ASSERT_TRUE(out.ok()) << r.output;
  EXPECT_EQ(Json::Parse(*ReadFile(tmp.path() + "/p/io/network_map.json"))->Dump(), out->Dump());
  EXPECT_EQ(out->Get("source").AsString(), "direct scrape");
  EXPECT_NE(out->Get("source_reason").AsString().find("did not answer"), std::string::npos);
  EXPECT_EQ(out->Get("checklist").Get("verdict").AsString(), "not met");
  const Json& edges = out->Get("edges");
  ASSERT_EQ(edges.size(), 3u) << out->Dump(2);
  const Json& api_pg = edges.AsArray()[0];
  EXPECT_EQ(api_pg.Get("target").AsString(), "postgres");
  EXPECT_EQ(api_pg.Get("requests").AsInt(), 100);
  EXPECT_DOUBLE_EQ(api_pg.Get("share_le_5ms").AsDouble(), 0.98);
  EXPECT_EQ(api_pg.Get("p99").Get("bucket_lower_ms").AsDouble(), 25);
  const Json& server = edges.AsArray()[1];
  EXPECT_EQ(server.Get("side").AsString(), "server");
  EXPECT_EQ(server.Get("target").AsString(), "api");
  EXPECT_EQ(server.Get("verdict").AsString(), "met");
  EXPECT_EQ(edges.AsArray()[2].Get("verdict").AsString(), "idle");
  EXPECT_TRUE(edges.AsArray()[2].Get("p99").is_null());
  EXPECT_EQ(RunShell("xmllint --noout " + tmp.path() + "/p/io/network_map.svg").exit_code, 0);
}

TEST(NetCommand, CtrlCStillWritesTheMap) {
  TempDir tmp;
  Service api;
  CommandResult r = RunShell("timeout --preserve-status -s INT 1 " + Net() + " --duration 30" +
                             api.Flag("api") + " --out " + tmp.path() + " 2>&1");
  EXPECT_EQ(r.exit_code, 130) << r.output;
  EXPECT_TRUE(PathExists(tmp.path() + "/io/network_map.json")) << r.output;
  EXPECT_NE(r.output.find("source: direct scrape"), std::string::npos) << r.output;
}

TEST(NetCommand, BadInputIsRefusedWithExit2) {
  TempDir tmp;
  const std::string out = " --out " + tmp.path();
  for (const std::string& args :
       {std::string(" --duration 0"), std::string(" --metrics nonsense"),
        std::string(" --metrics 10.1.2.3:80"), std::string(" --prometheus-url :x"),
        std::string(" --state-dir x --metrics 127.0.0.1:1"), std::string(" --bogus"),
        std::string(" --metrics 127.0.0.1:1 --out /dev/null/x"),
        std::string(" --metrics a=127.0.0.1:7 --metrics b=7")}) {
    CommandResult r =
        RunShell(Net() + args + (args.find("--out") == std::string::npos ? out : "") + " 2>&1");
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
  }
  EXPECT_FALSE(PathExists(tmp.path() + "/io/network_map.json"));
}

}  // namespace
}  // namespace fs::testing
