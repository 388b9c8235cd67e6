// Alerts against a real shell and a real local HTTP listener: delivered, retried, and every
// failure kept.
#include "src/regression/alert.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>

#include "src/base/file_util.h"
#include "src/base/http.h"

namespace fs::regression {
namespace {

TEST(AlertCommandTest, GetsTheJsonOnStdinAndItsStatusIsChecked) {
  char tmpl[] = "/tmp/alert-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string out = std::string(tmpl) + "/got.json";
  AlertResult r = RunAlertCommand("cat > " + out, "{\"verdict\":\"regression\"}");
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.errors.empty());
  auto got = ReadFile(out);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "{\"verdict\":\"regression\"}");
  r = RunAlertCommand("cat >/dev/null; exit 3", "{}");
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "exited with status 3");
  // A command that ignores its stdin and closes it early: no SIGPIPE for us, its status counts.
  r = RunAlertCommand("exec 0<&-; exit 0", std::string(1 << 20, 'x'));
  EXPECT_TRUE(r.ok);
  const auto start = std::chrono::steady_clock::now();
  r = RunAlertCommand("sleep 30", "{}", 300);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("killed after"), std::string::npos) << r.errors[0];
  std::filesystem::remove_all(tmpl);
}

TEST(AlertUrlTest, ParsesPlainHttpOnly) {
  auto u = ParseHttpUrl("http://127.0.0.1:8080/hook/x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "/hook/x");
  u = ParseHttpUrl("http://example.com");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/");
  for (const char* bad :
       {"https://x/", "http://x:0/", "http://x:99999/", "http://:80/", "ftp://x", "http://x:/"}) {
    EXPECT_FALSE(ParseHttpUrl(bad).ok()) << bad;
    EXPECT_FALSE(ValidateAlertUrl(bad).ok()) << bad;
  }
  EXPECT_TRUE(ValidateAlertUrl("http://127.0.0.1:8080/hook").ok());
}

TEST(AlertUrlTest, PostsRetriesAndReportsEveryFailure) {
  HttpServer server;
  std::atomic<int> calls{0};
  std::string body;
  server.HandlePost("/ok", [&](const HttpRequest& req) {
    ++calls;
    body = req.body;
    return HttpResponse{204, "text/plain", ""};
  });
  server.HandlePost("/fail", [&](const HttpRequest&) {
    ++calls;
    return HttpResponse{500, "text/plain", "no"};
  });
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  AlertResult r = PostAlert(base + "/ok", "{\"a\":1}", 3, 10);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(body, "{\"a\":1}");
  calls = 0;
  r = PostAlert(base + "/fail", "{}", 3, 10);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(r.errors, (std::vector<std::string>{"HTTP 500", "HTTP 500", "HTTP 500"}));
  const int port = server.port();
  server.Stop();
  r = PostAlert("http://127.0.0.1:" + std::to_string(port) + "/ok", "{}", 2, 10);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.errors.size(), 2u);
  Json j = AlertsToJson({r});
  EXPECT_EQ(j.AsArray().at(0).Get("attempts").AsInt(), 2);
  EXPECT_FALSE(j.AsArray().at(0).Get("ok").AsBool(true));
}

}  // namespace
}  // namespace fs::regression
