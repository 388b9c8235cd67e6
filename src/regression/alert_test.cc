// Alerts against a real shell and a real local HTTP listener: delivered, retried, and every
// failure kept.
#include "src/regression/alert.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>

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
  // 1 MiB that the command never reads: the timeout still holds (it did not when the JSON went
  // through a pipe, written before the deadline started).
  r = RunAlertCommand("sleep 30", std::string(1 << 20, 'x'), 300);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("killed after"), std::string::npos) << r.errors[0];
  std::filesystem::remove_all(tmpl);
}

// Runs `fn` with our stdout and stderr on pipes; returns what each got, read after `fn` returned
// and our write ends closed: reading ends at once unless something else still holds them.
std::pair<std::string, std::string> Captured(const std::function<void()>& fn, double* eof_s) {
  int out[2], err[2];
  EXPECT_EQ(pipe(out), 0);
  EXPECT_EQ(pipe(err), 0);
  fflush(stdout);
  fflush(stderr);
  // Close-on-exec, so the command does not inherit them.
  const int saved_out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
  const int saved_err = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
  dup2(out[1], STDOUT_FILENO);
  dup2(err[1], STDERR_FILENO);
  close(out[1]);
  close(err[1]);
  fn();
  dup2(saved_out, STDOUT_FILENO);
  dup2(saved_err, STDERR_FILENO);
  close(saved_out);
  close(saved_err);
  const auto start = std::chrono::steady_clock::now();
  std::string got[2];
  for (int i = 0; i < 2; ++i) {
    const int fd = i == 0 ? out[0] : err[0];
    char buf[256];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
      got[i].append(buf, static_cast<size_t>(n));
    close(fd);
  }
  *eof_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {got[0], got[1]};
}

// Its output goes to our stderr (compare --json owns stdout), and a process it leaves in the
// background keeps neither us nor our stdout/stderr waiting.
TEST(AlertCommandTest, OutputGoesToStderrAndBackgroundProcessesAreNotWaitedFor) {
  AlertResult r;
  double eof_s = 0;
  const auto start = std::chrono::steady_clock::now();
  auto [out, err] = Captured(
      [&] { r = RunAlertCommand("echo to-out; echo to-err >&2; sleep 5 & exit 0", "{}", 3000); },
      &eof_s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(out, "");
  EXPECT_EQ(err, "to-out\nto-err\n");
  EXPECT_LT(eof_s, 1.0);
}

// A command that never stops writing, itself or through what it leaves behind: the deadline
// and its exit still end the wait.
TEST(AlertCommandTest, EndlessOutputDoesNotHoldUs) {
  fflush(stderr);
  const int saved_err = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
  const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  dup2(null_fd, STDERR_FILENO);
  auto start = std::chrono::steady_clock::now();
  AlertResult timed_out = RunAlertCommand("yes", "{}", 300);
  const auto took_timeout = std::chrono::steady_clock::now() - start;
  start = std::chrono::steady_clock::now();
  AlertResult left = RunAlertCommand("(yes; true) & sleep 0.2; exit 0", "{}", 5000);
  const auto took_left = std::chrono::steady_clock::now() - start;
  dup2(saved_err, STDERR_FILENO);
  close(saved_err);
  close(null_fd);
  EXPECT_FALSE(timed_out.ok);
  EXPECT_LT(took_timeout, std::chrono::seconds(3));
  EXPECT_TRUE(left.ok);
  EXPECT_LT(took_left, std::chrono::seconds(3));
  // What it left behind dies of SIGPIPE at its next write, our read end being closed.
}

// The command's stdout blocks when full rather than failing with EAGAIN: O_NONBLOCK is a flag
// of the open pipe, so setting it on the end we read must not reach the end it writes.
TEST(AlertCommandTest, ItsOutputIsBlocking) {
  AlertResult r;
  double eof_s = 0;
  auto [out, err] = Captured(
      [&] { r = RunAlertCommand("grep '^flags:' /proc/self/fdinfo/1", "{}", 3000); }, &eof_s);
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(err.rfind("flags:", 0), 0u) << err;
  const long flags = strtol(err.c_str() + 6, nullptr, 8);
  EXPECT_EQ(flags & O_NONBLOCK, 0) << err;
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
       {"https://x/", "http://x:0/", "http://x:99999/", "http://:80/", "ftp://x", "http://x:/",
        "http://[::1]:8080/x", "http://h/a b", "http://h:+80/", "http://h: 80/", "http://h:-1/",
        "http://user:pw@h/", "http://u@h:80/", "http://h/\r\nX: y", "http://h:0000080000/"}) {
    EXPECT_FALSE(ParseHttpUrl(bad).ok()) << bad;
    EXPECT_FALSE(ValidateAlertUrl(bad).ok()) << bad;
  }
  EXPECT_TRUE(ValidateAlertUrl("http://127.0.0.1:8080/hook").ok());
  EXPECT_TRUE(ValidateAlertUrl("http://hooks.example-1.com/a?b=c").ok());
  EXPECT_NE(ParseHttpUrl("http://user:pw@h/").status().message().find("user:password@"),
            std::string::npos);
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
