// framescope-api and framescope-apiclient: the validation rules as unit tests, then the real
// binaries against a private PostgreSQL (tests/testing/postgres_fixture.h) holding the
// aggregation schema and known rows, and a redis-server started here on a free port.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "services/aggregation/migrations.h"
#include "services/api/api_client.h"
#include "services/api/api_params.h"
#include "services/api/pg_pool.h"
#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/base/net.h"
#include "src/clients/pg_client.h"
#include "src/clients/redis_client.h"
#include "tests/testing/postgres_fixture.h"
#include "tests/testing/redis_fixture.h"

namespace fs::api {
namespace {

// ---- validation (no server) -------------------------------------------------------------

TEST(ApiParamsTest, CameraAndClassNames) {
  EXPECT_TRUE(ValidateCameraName("camera", "cam00").ok());
  EXPECT_TRUE(ValidateCameraName("camera", "door_2-left").ok());
  EXPECT_TRUE(ValidateCameraName("camera", std::string(64, 'a')).ok());
  EXPECT_FALSE(ValidateCameraName("camera", std::string(65, 'a')).ok());
  EXPECT_FALSE(ValidateCameraName("camera", "").ok());
  EXPECT_FALSE(ValidateCameraName("camera", "' OR 1=1 --").ok());
  EXPECT_FALSE(ValidateCameraName("camera", "cam 1").ok());
  EXPECT_FALSE(ValidateCameraName("camera", std::string("cam\0x", 5)).ok());
  EXPECT_FALSE(ValidateCameraName("camera", "caméra").ok());
  EXPECT_TRUE(ValidateClassName("traffic light").ok());
  EXPECT_TRUE(ValidateClassName("potted-plant.v2").ok());
  EXPECT_FALSE(ValidateClassName(" person").ok());
  EXPECT_FALSE(ValidateClassName("x'; DROP TABLE detections; --").ok());
  EXPECT_FALSE(ValidateClassName(std::string(65, 'x')).ok());
}

TEST(ApiParamsTest, Times) {
  struct Case {
    const char* text;
    int64_t micros;  // -1: must be rejected
  };
  const Case cases[] = {
      {"2024-11-24T15:40:01Z", 1732462801000000},
      {"2024-11-24t15:40:01z", 1732462801000000},
      {"2024-11-24 15:40:01Z", 1732462801000000},
      {"2024-11-24T16:40:01+01:00", 1732462801000000},
      {"2024-11-24T16:40:01 01:00", 1732462801000000},  // '+' decoded to ' ' in a query
      {"2024-11-24T14:40:01-01:00", 1732462801000000},
      {"2024-11-24T15:40:01.25Z", 1732462801250000},
      {"2024-11-24T15:40:01.123456789Z", 1732462801123456},
      {"2024-02-29T00:00:00Z", 1709164800000000},
      {"1970-01-01T00:00:00Z", 0},
      {"9999-12-31T23:59:59Z", kMaxUnixSeconds * 1000000},
      {"1732462801", 1732462801000000},
      {"1732462801.5", 1732462801500000},
      {"0", 0},
      {"2023-02-29T00:00:00Z", -1},  // not a leap year
      {"2024-13-01T00:00:00Z", -1},
      {"2024-11-24T24:00:00Z", -1},
      {"2024-11-24T15:40:01", -1},  // no zone
      {"2024-11-24", -1},
      {"2024-11-24T15:40:01Zjunk", -1},
      {"2024-11-24T15:40:01.Z", -1},
      {"1969-12-31T23:59:59Z", -1},
      {"1970-01-01T00:30:00+01:00", -1},  // before the epoch in UTC
      {"-5", -1},
      {"yesterday", -1},
      {"1e9", -1},
      {"0x10", -1},
      {" 1", -1},
      {"", -1},
      {".5", -1},
      {"999999999999", -1},       // after 9999-12-31
      {"99999999999999999", -1},  // would overflow
  };
  for (const auto& c : cases) {
    auto t = ParseTime("since", c.text);
    if (c.micros < 0) {
      EXPECT_FALSE(t.ok()) << c.text;
      if (!t.ok()) {
        EXPECT_EQ(t.status().message().rfind("since", 0), 0u) << t.status().message();
      }
    } else {
      ASSERT_TRUE(t.ok()) << c.text << ": " << t.status().message();
      EXPECT_EQ(*t, c.micros) << c.text;
    }
  }
}

TEST(ApiParamsTest, LimitWindowAndUnknownParams) {
  EXPECT_EQ(*ParseLimit("1"), 1);
  EXPECT_EQ(*ParseLimit("1000"), 1000);
  EXPECT_EQ(*ParseLimit("050"), 50);
  for (const char* bad : {"0", "-1", "1001", "99999999999999999999", "1e3", "", " 5", "+5", "5x"}) {
    EXPECT_FALSE(ParseLimit(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseWindow("1m")->table, "detection_rollup_1s");
  EXPECT_EQ(ParseWindow("1h")->table, "detection_rollup_1m");
  EXPECT_FALSE(ParseWindow("5m").ok());
  EXPECT_FALSE(ParseWindow("").ok());
  auto st = CheckAllowedParams({{"camera", "a"}, {"colour", "b"}}, {"camera", "limit"});
  EXPECT_NE(st.message().find("unknown parameter 'colour'; allowed: camera, limit"),
            std::string::npos)
      << st.message();
  auto q = ParseDetectionsQuery({{"since", "2024-01-02T00:00:00Z"}, {"until", "1704067200"}});
  EXPECT_FALSE(q.ok());
  q = ParseDetectionsQuery({{"since", "1704067200"}, {"until", "2024-01-01T00:00:00Z"}});
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(*q->since_us, *q->until_us);
  EXPECT_EQ(q->limit, kDefaultLimit);
}

TEST(ApiParamsTest, RepeatedParams) {
  EXPECT_TRUE(CheckRepeatedParams({}).ok());
  EXPECT_EQ(CheckRepeatedParams({"limit"}).message(),
            "parameter 'limit' is given more than once; give each parameter at most once");
  EXPECT_EQ(CheckRepeatedParams({"camera", "limit"}).message(),
            "parameters 'camera', 'limit' are given more than once; give each parameter at most "
            "once");
  EXPECT_EQ(CheckRepeatedParams({"\xff\n"}).message().substr(0, 15), "parameter '?\?' ");
}

TEST(ApiParamsTest, Formatting) {
  EXPECT_EQ(PgTimestampLiteral(1732462801250000), "2024-11-24 15:40:01.250000+00");
  EXPECT_EQ(Rfc3339Nanos(1732462801123456789), "2024-11-24T15:40:01.123456789Z");
  EXPECT_EQ(Rfc3339Nanos(0), "1970-01-01T00:00:00.000000000Z");
}

TEST(ApiParamsTest, TokenComparison) {
  EXPECT_TRUE(ConstantTimeEquals("s3cret", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("s3cre", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("s3crett", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("S3cret", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("", "s3cret"));
  EXPECT_TRUE(BearerTokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(BearerTokenMatches("bearer   s3cret ", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cret2", "s3cret"));
}

TEST(ApiParamsTest, PgErrorClasses) {
  EXPECT_EQ(ClassifyPgError("57014", true), PgFailure::kTimeout);
  EXPECT_EQ(ClassifyPgError("42P01", true), PgFailure::kSchemaMissing);
  EXPECT_EQ(ClassifyPgError("22007", true), PgFailure::kBadInput);
  EXPECT_EQ(ClassifyPgError("57P01", true), PgFailure::kUnavailable);
  EXPECT_EQ(ClassifyPgError("42601", true), PgFailure::kQueryError);
  EXPECT_EQ(ClassifyPgError("42601", false), PgFailure::kUnavailable);
}

TEST(ApiClientTest, MixAndPercentiles) {
  std::map<std::string, int> routes;
  std::map<std::string, int> cameras;
  for (uint64_t k = 0; k < 100; ++k) {
    PlannedRequest r = PlanRequest(k, {"a", "b"});
    routes[r.route]++;
    if (auto p = r.path.find("/cameras/"); p == 0) cameras[r.path.substr(9, 1)]++;
  }
  EXPECT_EQ(routes["/cameras"], 10);
  EXPECT_EQ(routes["/cameras/{id}/stats"], 40);
  EXPECT_EQ(routes["/detections"], 40);
  EXPECT_EQ(routes["/health"], 10);
  EXPECT_EQ(cameras["a"], cameras["b"]);
  EXPECT_EQ(PlanRequest(2, {"cam07"}).path, "/detections?camera=cam07&limit=50");

  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(101 - i);
  EXPECT_EQ(Percentile(v, 0.5), 50);
  EXPECT_EQ(Percentile(v, 0.9), 90);
  EXPECT_EQ(Percentile(v, 0.99), 99);
  EXPECT_EQ(Percentile({}, 0.5), 0);
  LatencyStats stats;
  stats.Add(3.1, true);
  stats.Add(5.0, false);
  stats.AddError();
  auto s = stats.TakeInterval(1.0);
  EXPECT_EQ(s.ok, 1u);
  EXPECT_EQ(s.errors, 2u);
  EXPECT_EQ(FormatSummary(s), "rate 3.0 req/s ok 1 err 2 p50 3.1 ms p90 5.0 ms p99 5.0 ms");
  EXPECT_EQ(stats.TakeInterval(1.0).ok, 0u);
  EXPECT_EQ(stats.Total(2.0).ok, 1u);
}

// ---- processes --------------------------------------------------------------------------

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WaitFor(const std::function<bool()>& pred, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

std::string MakeTempDir() {
  char tmpl[] = "/tmp/fs-api-test-XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d ? d : "";
}

struct Response {
  int status = 0;  // 0: transport failure
  std::string body;
  Json json;
  double seconds = 0;
};

// One child process (framescope-api or framescope-apiclient); output goes to a log file.
class Process {
 public:
  Process(std::string dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {}
  ~Process() { Kill(); }

  void Start(const std::string& binary, const std::vector<std::string>& args,
             const std::map<std::string, std::string>& env = {}) {
    port_file_ = dir_ + "/" + name_ + ".json";
    unlink(port_file_.c_str());
    log_ = dir_ + "/" + name_ + ".log";
    std::vector<std::string> argv = {SelfExeDir() + "/" + binary, "--port-file", port_file_};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      unsetenv("FRAMESCOPE_API_TOKEN");
      for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
  }
  // The api's port (endpoints.http in the port file); 0 until written.
  int ApiPort() {
    auto j = Json::Parse(ReadFileText(port_file_));
    if (!j.ok()) return 0;
    std::string url = j->Get("endpoints").Get("http").AsString();
    std::string host;
    int port = 0;
    return ParseHostPort(url, &host, &port).ok() ? port : 0;
  }
  int MetricsPort() {
    auto j = Json::Parse(ReadFileText(port_file_));
    return j.ok() ? static_cast<int>(j->Get("metrics_port").AsInt()) : 0;
  }
  bool WaitForPorts() {
    return WaitFor([this] { return ApiPort() != 0 && MetricsPort() != 0; }, 10);
  }
  // Waits for exit; returns the exit code, -1 on timeout (then kills).
  int Wait(double timeout_s) {
    if (pid_ <= 0) return -1;
    int status = 0;
    bool exited = WaitFor([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout_s);
    if (!exited) {
      Kill();
      return -1;
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  int Stop(double timeout_s = 10) {
    if (pid_ > 0) kill(pid_, SIGTERM);
    return Wait(timeout_s);
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string log() const { return ReadFileText(log_); }

 private:
  std::string dir_, name_, port_file_, log_;
  pid_t pid_ = -1;
};

Response Get(int port, const std::string& path,
             const std::map<std::string, std::string>& headers = {}, int timeout_ms = 10000) {
  Response out;
  auto t0 = std::chrono::steady_clock::now();
  auto r = HttpGet("127.0.0.1", port, path, timeout_ms, headers);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r.ok()) {
    out.body = r.status().message();
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  auto j = Json::Parse(r->body);
  if (j.ok()) out.json = *j;
  return out;
}

// Sends a raw request line (for methods HttpGet cannot send); returns the status code.
int RawStatus(int port, const std::string& request) {
  auto fd = ConnectTcp("127.0.0.1", port, 2000);
  if (!fd.ok()) return 0;
  SetIoTimeout(fd->get(), 2000);
  if (!WriteAll(fd->get(), request.data(), request.size()).ok()) return 0;
  char buf[512] = {};
  ssize_t n = recv(fd->get(), buf, sizeof(buf) - 1, 0);
  if (n < 12) return 0;
  return atoi(buf + 9);
}

// ---- data -------------------------------------------------------------------------------

struct Row {
  std::string camera;
  int64_t ns;
  int64_t seq;
  int idx;
  std::string cls;
  double score;
};

// Known detections relative to now: cam01 has 5 in the last minute (3 person, 2 car) and 2
// dogs 30 minutes ago; cam02 has 3 cars in the last minute. Rollups are derived from them
// the way aggregation maintains them.
std::vector<Row> TestRows(int64_t now_ns) {
  const int64_t s = 1000000000LL;
  return {
      {"cam01", now_ns - 10 * s, 100, 0, "person", 0.9},
      {"cam01", now_ns - 10 * s, 100, 1, "person", 0.8},
      {"cam01", now_ns - 9 * s, 101, 0, "person", 0.7},
      {"cam01", now_ns - 8 * s, 102, 0, "car", 0.6},
      {"cam01", now_ns - 7 * s, 103, 0, "car", 0.5},
      {"cam01", now_ns - 1800 * s, 1, 0, "dog", 0.4},
      {"cam01", now_ns - 1799 * s, 2, 0, "dog", 0.6},
      {"cam02", now_ns - 6 * s, 50, 0, "car", 0.9},
      {"cam02", now_ns - 5 * s, 51, 0, "car", 0.8},
      {"cam02", now_ns - 4 * s, 52, 0, "car", 0.7},
  };
}

Status InsertRows(PgClient* pg, const std::vector<Row>& rows) {
  for (const Row& r : rows) {
    auto res = pg->ExecParams(
        "INSERT INTO detections (camera, capture_ts_ns, frame_seq, det_idx, capture_ts, class, "
        "class_id, score, x, y, w, h, stream_id) VALUES ($1, $2, $3, $4, timestamptz 'epoch' + "
        "($2::bigint / 1000) * interval '1 microsecond', $5, 0, $6, 1, 2, 3, 4, '1-0')",
        {r.camera, std::to_string(r.ns), std::to_string(r.seq), std::to_string(r.idx), r.cls,
         std::to_string(r.score)});
    if (!res.ok()) return res.status();
  }
  for (const char* sql :
       {"INSERT INTO detection_rollup_1s SELECT camera, class, date_trunc('second', "
        "capture_ts, 'UTC'), count(*), sum(score::double precision) FROM detections GROUP BY "
        "1, 2, 3",
        "INSERT INTO detection_rollup_1m SELECT camera, class, date_trunc('minute', "
        "capture_ts, 'UTC'), count(*), sum(score::double precision) FROM detections GROUP BY "
        "1, 2, 3"}) {
    auto res = pg->Exec(sql);
    if (!res.ok()) return res.status();
  }
  return Status::Ok();
}

// ---- the shared system: PostgreSQL with data, Redis, an api without and one with a token --

constexpr char kToken[] = "t0ken-with-some-length-0123456789";

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pg_ = new testing::PostgresFixture();
    if (!pg_->Start()) {
      skip_ = pg_->skip_reason();
      return;
    }
    redis_ = new testing::RedisFixture();
    if (!redis_->Start()) {
      skip_ = "redis-server could not be started (install redis-server)";
      return;
    }
    dir_ = MakeTempDir();
    auto db = PgClient::Connect(pg_->url(), "api_test", 5, 10000);
    ASSERT_TRUE(db.ok()) << db.status().message();
    ASSERT_TRUE(ApplyMigrations(db->get(), AggregationMigrations()).ok());
    now_ns_ = WallNs();
    rows_ = TestRows(now_ns_);
    Status st = InsertRows(db->get(), rows_);
    ASSERT_TRUE(st.ok()) << st.message();
    auto r = RedisClient::Connect(redis_->url(), "api_test");
    ASSERT_TRUE(r.ok()) << r.status().message();
    r->Append({"HSET", "live:camera:cam01", "person", "100", "car", "50", "last_ts",
               std::to_string(now_ns_ - 7000000000LL)});
    r->Append({"HSET", "live:camera:cam02", "car", "7", "last_ts",
               std::to_string(now_ns_ - 4000000000LL)});
    // Known to Redis only (e.g. its rows were deleted): stats answer, /cameras lists it not.
    r->Append({"HSET", "live:camera:cam09", "person", "1"});
    ASSERT_TRUE(r->Flush().ok());

    api_ = new Process(dir_, "api");
    api_->Start("framescope-api", {"--postgres-url", pg_->url(), "--redis-url", redis_->url()});
    ASSERT_TRUE(api_->WaitForPorts()) << api_->log();
    api_port_ = api_->ApiPort();
    token_api_ = new Process(dir_, "api-token");
    token_api_->Start("framescope-api",
                      {"--postgres-url", pg_->url(), "--redis-url", redis_->url()},
                      {{"FRAMESCOPE_API_TOKEN", kToken}});
    ASSERT_TRUE(token_api_->WaitForPorts()) << token_api_->log();
  }
  static void TearDownTestSuite() {
    delete api_;
    delete token_api_;
    delete redis_;
    delete pg_;
    api_ = token_api_ = nullptr;
    redis_ = nullptr;
    pg_ = nullptr;
    if (!dir_.empty() && getenv("FRAMESCOPE_KEEP_TEST_DIRS") == nullptr) {
      std::system(("rm -rf " + dir_).c_str());
    }
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_NE(api_port_, 0);
  }
  void TearDown() override {
    if (HasFailure() && api_) std::cerr << "--- api log ---\n" << api_->log();
  }

  static int64_t CountRows(const std::string& table) {
    auto db = PgClient::Connect(pg_->url(), "api_test", 5, 10000);
    if (!db.ok()) return -1;
    auto r = (*db)->Exec("SELECT count(*) FROM " + table);
    return r.ok() && !r->rows.empty() ? std::stoll(*r->rows[0][0]) : -1;
  }

  static testing::PostgresFixture* pg_;
  static testing::RedisFixture* redis_;
  static Process* api_;
  static Process* token_api_;
  static int api_port_;
  static std::string dir_;
  static std::string skip_;
  static int64_t now_ns_;
  static std::vector<Row> rows_;
};
testing::PostgresFixture* ApiTest::pg_ = nullptr;
testing::RedisFixture* ApiTest::redis_ = nullptr;
Process* ApiTest::api_ = nullptr;
Process* ApiTest::token_api_ = nullptr;
int ApiTest::api_port_ = 0;
std::string ApiTest::dir_;
std::string ApiTest::skip_;
int64_t ApiTest::now_ns_ = 0;
std::vector<Row> ApiTest::rows_;

TEST_F(ApiTest, EveryEndpointAnswersTheExpectedJson) {
  Response h = Get(api_port_, "/health");
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(h.json.Get("status").AsString(), "ok");
  EXPECT_EQ(h.json.Get("postgres").AsString(), "connected");
  EXPECT_EQ(h.json.Get("redis").AsString(), "connected");
  EXPECT_EQ(h.json.Get("schema").AsString(), "ready");

  Response cams = Get(api_port_, "/cameras");
  ASSERT_EQ(cams.status, 200) << cams.body;
  const auto& list = cams.json.Get("cameras").AsArray();
  ASSERT_EQ(list.size(), 2u) << cams.body;
  EXPECT_EQ(list[0].Get("camera").AsString(), "cam01");
  EXPECT_EQ(list[1].Get("camera").AsString(), "cam02");
  EXPECT_EQ(list[0].Get("last_seen_ns").AsString(), std::to_string(now_ns_ - 7000000000LL));
  EXPECT_EQ(list[0].Get("last_seen").AsString(), Rfc3339Nanos(now_ns_ - 7000000000LL));
  EXPECT_EQ(list[0].Get("live").Get("counts").Get("person").AsInt(), 100);
  EXPECT_EQ(list[0].Get("live").Get("total").AsInt(), 150);
  EXPECT_EQ(list[1].Get("live").Get("counts").Get("car").AsInt(), 7);
  EXPECT_EQ(cams.json.Get("count").AsInt(), 2);

  Response m = Get(api_port_, "/cameras/cam01/stats?window=1m");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(m.json.Get("window").AsString(), "1m");
  EXPECT_EQ(m.json.Get("rollup").AsString(), "detection_rollup_1s");
  EXPECT_EQ(m.json.Get("total").AsInt(), 5);
  const auto& classes = m.json.Get("classes").AsArray();
  ASSERT_EQ(classes.size(), 2u) << m.body;
  EXPECT_EQ(classes[0].Get("class").AsString(), "car");
  EXPECT_EQ(classes[0].Get("count").AsInt(), 2);
  EXPECT_NEAR(classes[0].Get("avg_score").AsDouble(), 0.55, 1e-6);
  EXPECT_EQ(classes[1].Get("class").AsString(), "person");
  EXPECT_EQ(classes[1].Get("count").AsInt(), 3);
  EXPECT_NEAR(classes[1].Get("avg_score").AsDouble(), 0.8, 1e-6);
  EXPECT_EQ(m.json.Get("live").Get("counts").Get("car").AsInt(), 50);
  EXPECT_EQ(m.json.Get("last_seen_ns").AsString(), std::to_string(now_ns_ - 7000000000LL));

  Response hr = Get(api_port_, "/cameras/cam01/stats?window=1h");
  ASSERT_EQ(hr.status, 200) << hr.body;
  EXPECT_EQ(hr.json.Get("rollup").AsString(), "detection_rollup_1m");
  EXPECT_EQ(hr.json.Get("total").AsInt(), 7);
  ASSERT_EQ(hr.json.Get("classes").size(), 3u) << hr.body;
  EXPECT_EQ(hr.json.Get("classes").AsArray()[1].Get("class").AsString(), "dog");
  EXPECT_NEAR(hr.json.Get("classes").AsArray()[1].Get("avg_score").AsDouble(), 0.5, 1e-6);

  Response def = Get(api_port_, "/cameras/cam02/stats");  // window defaults to 1m
  ASSERT_EQ(def.status, 200) << def.body;
  EXPECT_EQ(def.json.Get("window").AsString(), "1m");
  EXPECT_EQ(def.json.Get("total").AsInt(), 3);

  Response redis_only = Get(api_port_, "/cameras/cam09/stats");
  ASSERT_EQ(redis_only.status, 200) << redis_only.body;
  EXPECT_EQ(redis_only.json.Get("total").AsInt(), 0);
  EXPECT_TRUE(redis_only.json.Get("last_seen").is_null());
  EXPECT_EQ(redis_only.json.Get("live").Get("counts").Get("person").AsInt(), 1);

  Response unknown = Get(api_port_, "/cameras/cam77/stats?window=1h");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.json.Get("error").AsString().find("unknown camera 'cam77'"), std::string::npos);

  Response nopath = Get(api_port_, "/nope");
  EXPECT_EQ(nopath.status, 404);
  EXPECT_TRUE(nopath.json.Get("error").is_string()) << nopath.body;
  EXPECT_EQ(Get(api_port_, "/cameras/cam01").status, 404);
  EXPECT_EQ(Get(api_port_, "/cameras/a/b/stats").status, 404);
  EXPECT_EQ(RawStatus(api_port_,
                      "POST /cameras HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                      "Connection: close\r\n\r\n"),
            405);
  EXPECT_EQ(RawStatus(api_port_,
                      "DELETE /detections HTTP/1.1\r\nHost: x\r\nConnection: "
                      "close\r\n\r\n"),
            405);
}

TEST_F(ApiTest, DetectionsAreFilteredAndNewestFirst) {
  auto check_order = [](const Response& r) {
    const auto& rows = r.json.Get("detections").AsArray();
    for (size_t i = 1; i < rows.size(); ++i) {
      EXPECT_GE(std::stoll(rows[i - 1].Get("capture_ts_ns").AsString()),
                std::stoll(rows[i].Get("capture_ts_ns").AsString()))
          << r.body;
    }
  };
  Response all = Get(api_port_, "/detections");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.json.Get("count").AsInt(), 10);
  EXPECT_EQ(all.json.Get("limit").AsInt(), 100);
  check_order(all);
  const Json& newest = all.json.Get("detections").AsArray()[0];
  EXPECT_EQ(newest.Get("camera").AsString(), "cam02");
  EXPECT_EQ(newest.Get("frame_seq").AsInt(), 52);
  EXPECT_EQ(newest.Get("class").AsString(), "car");
  EXPECT_NEAR(newest.Get("score").AsDouble(), 0.7, 1e-6);
  EXPECT_NEAR(newest.Get("box").Get("w").AsDouble(), 3, 1e-9);
  EXPECT_EQ(newest.Get("capture_ts").AsString(), Rfc3339Nanos(now_ns_ - 4000000000LL));

  Response cam = Get(api_port_, "/detections?camera=cam01&limit=3");
  ASSERT_EQ(cam.status, 200) << cam.body;
  ASSERT_EQ(cam.json.Get("count").AsInt(), 3);
  check_order(cam);
  for (const auto& d : cam.json.Get("detections").AsArray()) {
    EXPECT_EQ(d.Get("camera").AsString(), "cam01");
  }
  EXPECT_EQ(cam.json.Get("detections").AsArray()[0].Get("frame_seq").AsInt(), 103);

  Response cls = Get(api_port_, "/detections?class=car");
  ASSERT_EQ(cls.status, 200) << cls.body;
  EXPECT_EQ(cls.json.Get("count").AsInt(), 5);
  check_order(cls);

  Response both = Get(api_port_, "/detections?camera=cam01&class=person");
  EXPECT_EQ(both.json.Get("count").AsInt(), 3) << both.body;

  // since as unix seconds: the last minute only; until as RFC 3339 with an offset: the old
  // dogs only ('+' encoded as %2B).
  std::string since = std::to_string(now_ns_ / 1000000000 - 60);
  Response recent = Get(api_port_, "/detections?camera=cam01&since=" + since);
  EXPECT_EQ(recent.json.Get("count").AsInt(), 5) << recent.body;
  std::string until = Rfc3339Nanos(now_ns_ - 1200LL * 1000000000LL);  // ...Z
  Response old = Get(api_port_, "/detections?until=" + until);
  ASSERT_EQ(old.status, 200) << old.body;
  EXPECT_EQ(old.json.Get("count").AsInt(), 2) << old.body;
  // since with a fraction, half a second between the two dogs.
  int64_t since_us = now_ns_ / 1000 - 1799500000LL;
  char since_text[40];
  snprintf(since_text, sizeof(since_text), "%lld.%06lld",
           static_cast<long long>(since_us / 1000000), static_cast<long long>(since_us % 1000000));
  Response window = Get(api_port_, std::string("/detections?class=dog&since=") + since_text +
                                       "&until=2999-01-01T01:00:00%2B01:00");
  EXPECT_EQ(window.json.Get("count").AsInt(), 1) << window.body;
  Response none = Get(api_port_, "/detections?camera=cam99");
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.json.Get("count").AsInt(), 0);
}

// Issue 10 item 5 against the real api: 80 slowloris connections (more than the 64-connection
// cap), each sending one byte of a never-finished request every 300 ms and reconnecting when
// shed, while /health and a database query are polled: every poll must answer 200 within 2 s.
// Before the fix every poll got 503 "too many connections" for as long as the trickle lasted.
TEST_F(ApiTest, SlowClientsDoNotStarveHealthOrQueries) {
  const std::string request = "GET /health HTTP/1.1\r\nX-Pad: " + std::string(4096, 'a');
  struct Slow {
    ScopedFd fd;
    size_t sent = 0;
  };
  std::vector<Slow> slow(80);
  auto trickle = [&](Slow& s) {
    if (s.fd.get() < 0 || s.sent >= request.size()) {
      auto fd = ConnectTcp("127.0.0.1", api_port_, 1000);
      if (!fd.ok()) return;
      s.fd = std::move(*fd);
      s.sent = 0;
    }
    if (send(s.fd.get(), request.data() + s.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
      ++s.sent;
    } else {
      s.fd = ScopedFd();  // Shed or closed by the server: reconnect next time, as slowloris does.
    }
  };
  for (Slow& s : slow) trickle(s);
  int polls = 0, failures = 0;
  std::string first_failure;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  auto next_trickle = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < end) {
    if (std::chrono::steady_clock::now() >= next_trickle) {
      for (Slow& s : slow) trickle(s);
      next_trickle += std::chrono::milliseconds(300);
    }
    for (const char* path : {"/health", "/cameras"}) {
      Response r = Get(api_port_, path, {}, 2000);
      ++polls;
      if (r.status != 200 || r.seconds > 2.0) {  // Slow is tolerated under load; 503 is not.
        ++failures;
        if (first_failure.empty()) {
          first_failure = std::string(path) + ": " + std::to_string(r.status) + " " + r.body;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GT(polls, 20);
  EXPECT_EQ(failures, 0) << "of " << polls << " polls; first: " << first_failure;
}

TEST_F(ApiTest, BadParametersAre400WithAJsonError) {
  const std::string long_name(65, 'c');
  const char* paths[] = {
      "/detections?limit=abc",
      "/detections?limit=0",
      "/detections?limit=-1",
      "/detections?limit=1001",
      "/detections?limit=99999999999999999999",
      "/detections?limit=1e3",
      "/detections?limit=",
      "/detections?since=yesterday",
      "/detections?since=2024-02-30T00:00:00Z",
      "/detections?since=-5",
      "/detections?until=2024-01-01T00:00:00",
      "/detections?since=99999999999999",
      "/detections?since=2024-01-02T00:00:00Z&until=2024-01-01T00:00:00Z",
      "/detections?since=",
      "/detections?foo=1",
      "/detections?camera=",
      "/detections?camera=a%20b",
      "/detections?camera=cam%00",
      "/detections?camera=%FF%FE",
      "/detections?class=%20person",
      "/cameras/cam01/stats?window=5m",
      "/cameras/cam01/stats?window=",
      "/cameras/cam01/stats?window=1m&x=1",
      "/cameras?x=1",
      "/health?verbose=1",
      "/cameras/cam%2001/stats",
  };
  std::vector<std::string> all(std::begin(paths), std::end(paths));
  all.push_back("/detections?camera=" + long_name);
  all.push_back("/detections?class=" + long_name);
  all.push_back("/cameras/" + long_name + "/stats");
  for (const auto& path : all) {
    Response r = Get(api_port_, path);
    EXPECT_EQ(r.status, 400) << path << " -> " << r.body;
    EXPECT_TRUE(r.json.Get("error").is_string()) << path << " -> " << r.body;
    EXPECT_FALSE(r.json.Get("error").AsString().empty()) << path;
  }
  Response r = Get(api_port_, "/detections?limit=5000");
  EXPECT_NE(r.json.Get("error").AsString().find("limit must be an integer from 1 to 1000"),
            std::string::npos)
      << r.body;
  // Still healthy afterwards: nothing above reached PostgreSQL as anything but data.
  EXPECT_EQ(Get(api_port_, "/health").status, 200);
}

// A parameter given twice has no single meaning: 400 naming it, whichever value is valid and
// whatever the path (the HTTP layer used to keep the last value silently).
TEST_F(ApiTest, RepeatedParametersAre400NamingTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"/detections?limit=abc&limit=5", "limit"},
      {"/detections?limit=5&limit=abc", "limit"},
      {"/detections?limit=5&limit=5", "limit"},
      {"/detections?a=1&a=1", "a"},
      {"/detections?camera=x&camera=y", "camera"},
      {"/detections?camera=cam01&class=car&camera=cam01", "camera"},
      {"/detections?limit=5&%6cimit=6", "limit"},  // the same key once decoded
      {"/detections?since&since", "since"},
      {"/cameras/cam01/stats?window=1m&window=1h", "window"},
      {"/cameras?x=1&x=2", "x"},
      {"/health?a=&a=", "a"},
  };
  for (const auto& [path, key] : cases) {
    Response r = Get(api_port_, path);
    EXPECT_EQ(r.status, 400) << path << " -> " << r.body;
    EXPECT_EQ(r.json.Get("error").AsString(),
              std::string("parameter '") + key +
                  "' is given more than once; give each parameter at most once")
        << path << " -> " << r.body;
  }
  Response two = Get(api_port_, "/detections?limit=1&camera=a&limit=2&camera=b");
  EXPECT_EQ(two.status, 400);
  EXPECT_NE(two.json.Get("error").AsString().find("parameters 'camera', 'limit' are"),
            std::string::npos)
      << two.body;
  // Distinct keys, and the same value under different keys, are fine.
  Response ok = Get(api_port_, "/detections?camera=cam01&class=cam01&limit=5");
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(ApiTest, SqlInjectionIsTreatedAsData) {
  const int64_t before = CountRows("detections");
  ASSERT_EQ(before, static_cast<int64_t>(rows_.size()));
  // Outside the charset: rejected before any query.
  for (const char* path : {
           "/detections?camera=%27%20OR%201%3D1%20--",
           "/detections?camera=cam01%27%20OR%20%271%27%3D%271",
           "/detections?class=x%27%3B%20DROP%20TABLE%20detections%3B%20--",
           "/detections?class=person%27--",
           "/detections?since=2024-01-01T00:00:00Z%27%3B%20DROP%20TABLE%20detections%3B--",
           "/detections?limit=1%3B%20DROP%20TABLE%20detections",
           "/cameras/%27%20OR%20%271%27%3D%271/stats",
           "/cameras/cam01%3B%20DROP%20TABLE%20detections/stats",
           "/cameras/cam01/stats?window=1m%27%3B%20DROP%20TABLE%20detection_rollup_1s%3B--",
       }) {
    Response r = Get(api_port_, path);
    EXPECT_EQ(r.status, 400) << path << " -> " << r.body;
  }
  // Inside the charset (SQL keywords, comment dashes): bound as data, so they match nothing.
  for (const char* path : {
           "/detections?class=person%20OR%20class",
           "/detections?class=person--",
           "/detections?camera=cam01--&class=car",
           "/detections?camera=cam01-OR-1",
       }) {
    Response r = Get(api_port_, path);
    EXPECT_EQ(r.status, 200) << path << " -> " << r.body;
    EXPECT_EQ(r.json.Get("count").AsInt(), 0) << path << " -> " << r.body;
  }
  EXPECT_EQ(Get(api_port_, "/cameras/cam01--/stats").status, 404);
  EXPECT_EQ(CountRows("detections"), before);
  EXPECT_GT(CountRows("detection_rollup_1s"), 0);
  EXPECT_EQ(Get(api_port_, "/detections").json.Get("count").AsInt(), before);
}

TEST_F(ApiTest, TokenIsEnforcedWhenSet) {
  const int port = token_api_->ApiPort();
  const std::map<std::string, std::string> right = {
      {"Authorization", std::string("Bearer ") + kToken}};
  for (const char* path : {"/cameras", "/cameras/cam01/stats", "/detections?limit=1"}) {
    Response none = Get(port, path);
    EXPECT_EQ(none.status, 401) << path << " " << none.body;
    EXPECT_TRUE(none.json.Get("error").is_string()) << none.body;
    for (const std::string& wrong :
         {std::string("Bearer wrong"), std::string("Bearer ") + kToken + "x",
          std::string("Bearer ") + std::string(kToken).substr(1), std::string(kToken),
          std::string("Basic ") + kToken, std::string("Bearer ")}) {
      Response w = Get(port, path, {{"Authorization", wrong}});
      EXPECT_EQ(w.status, 401) << path << " with '" << wrong << "': " << w.body;
    }
    EXPECT_EQ(Get(port, path, right).status, 200) << path;
    EXPECT_EQ(Get(port, path, {{"Authorization", std::string("bearer ") + kToken}}).status, 200);
  }
  // Bad parameters are checked after the token: without it, 401 still.
  EXPECT_EQ(Get(port, "/detections?limit=0").status, 401);
  EXPECT_EQ(Get(port, "/detections?limit=0", right).status, 400);
  // Documented as open: /health and /metrics (probes and scrapers carry no token).
  EXPECT_EQ(Get(port, "/health").status, 200);
  EXPECT_EQ(Get(port, "/metrics").status, 200);
  EXPECT_EQ(Get(api_port_, "/cameras").status, 200);  // the api without a token
}

TEST_F(ApiTest, MetricsUseRoutePatternsAndClientLatency) {
  ASSERT_EQ(Get(api_port_, "/cameras/cam01/stats?window=1m").status, 200);
  ASSERT_EQ(Get(api_port_, "/detections?camera=cam01").status, 200);
  ASSERT_EQ(Get(api_port_, "/detections?limit=0").status, 400);
  ASSERT_EQ(Get(api_port_, "/cameras").status, 200);
  for (int port : {api_port_, api_->MetricsPort()}) {
    Response m = Get(port, "/metrics");
    ASSERT_EQ(m.status, 200);
    const std::string& t = m.body;
    for (const char* want : {
             "http_request_duration_seconds_bucket{route=\"/cameras/{id}/stats\",le=\"0.001\"}",
             "http_request_duration_seconds_bucket{route=\"/cameras/{id}/stats\",le=\"0.0025\"}",
             "http_request_duration_seconds_bucket{route=\"/cameras/{id}/stats\",le=\"0.005\"}",
             "http_request_duration_seconds_bucket{route=\"/detections\",le=\"0.01\"}",
             "http_responses_total{code=\"200\",route=\"/cameras/{id}/stats\"}",
             "http_responses_total{code=\"400\",route=\"/detections\"}",
             "framescope_client_request_duration_seconds_bucket{op=\"api_detections_by_camera\","
             "source=\"api\",target=\"postgres\",le=\"0.001\"}",
             "framescope_client_request_duration_seconds_count{op=\"api_stats_1m\",source=\"api\","
             "target=\"postgres\"}",
             "framescope_client_request_duration_seconds_count{op=\"HGETALL\",source=\"api\","
             "target=\"redis\"}",
         }) {
      EXPECT_NE(t.find(want), std::string::npos) << "missing " << want;
    }
    EXPECT_EQ(t.find("route=\"/cameras/cam01"), std::string::npos) << "raw path as a label";
  }
  // The runtime's /health on the metrics port reports the same checks.
  Response h = Get(api_->MetricsPort(), "/health");
  EXPECT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(h.json.Get("detail").Get("postgres").AsString(), "connected");
}

TEST_F(ApiTest, LockedTableGives503Quickly) {
  auto locker = PgClient::Connect(pg_->url(), "api_test_locker", 5, 0);
  ASSERT_TRUE(locker.ok()) << locker.status().message();
  ASSERT_TRUE((*locker)->Begin().ok());
  ASSERT_TRUE((*locker)->Exec("LOCK TABLE detections IN ACCESS EXCLUSIVE MODE").ok());
  Response r = Get(api_port_, "/detections?camera=cam01");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_LT(r.seconds, 5.0);
  EXPECT_TRUE(r.json.Get("error").is_string()) << r.body;
  // statement_timeout (2 s) normally answers first; on a loaded machine the api's own
  // deadline (2.5 s) may.
  EXPECT_TRUE(r.body.find("statement timeout") != std::string::npos ||
              r.body.find("did not answer") != std::string::npos)
      << r.body;
  ASSERT_TRUE((*locker)->Rollback().ok());
  Response after = Get(api_port_, "/detections?camera=cam01");
  EXPECT_EQ(after.status, 200) << after.body;
  EXPECT_LT(after.seconds, 2.0);
}

TEST_F(ApiTest, ApiClientReachesItsRateAndLogsPercentiles) {
  Process client(dir_, "apiclient");
  client.Start("framescope-apiclient",
               {"--api-url", "http://127.0.0.1:" + std::to_string(api_port_), "--rate", "40",
                "--duration-s", "5", "--camera-names", "cam01,cam02", "--report-interval-s", "2"});
  int code = client.Wait(30);
  std::string log = client.log();
  ASSERT_EQ(code, 0) << log;
  // Two interval lines (at 2 s and 4 s) and the summary of the whole run.
  size_t intervals = 0;
  for (size_t p = log.find("apiclient: rate "); p != std::string::npos;
       p = log.find("apiclient: rate ", p + 1)) {
    ++intervals;
  }
  EXPECT_GE(intervals, 2u) << log;
  auto done = log.find("done after ");
  ASSERT_NE(done, std::string::npos) << log;
  double secs = 0, rate = 0, p50 = 0, p90 = 0, p99 = 0;
  unsigned long long ok = 0, err = 0;
  int n =
      sscanf(log.c_str() + done,
             "done after %lf s: rate %lf req/s ok %llu err %llu p50 %lf ms p90 %lf ms p99 %lf ms",
             &secs, &rate, &ok, &err, &p50, &p90, &p99);
  ASSERT_EQ(n, 7) << log;
  EXPECT_GE(rate, 30.0) << log;
  EXPECT_LE(rate, 42.0) << log;
  EXPECT_EQ(err, 0u) << log;
  EXPECT_GE(ok, 150u) << log;
  EXPECT_GT(p50, 0.0);
  EXPECT_LE(p50, p90);
  EXPECT_LE(p90, p99);
}

// Port file for the address, token from the environment, cameras asked from /cameras.
TEST_F(ApiTest, ApiClientSendsTheTokenAndFindsTheCameras) {
  Process client(dir_, "apiclient-token");
  client.Start("framescope-apiclient",
               {"--api-port-file", dir_ + "/api-token.json", "--rate", "20", "--duration-s", "1"},
               {{"FRAMESCOPE_API_TOKEN", kToken}});
  ASSERT_EQ(client.Wait(20), 0) << client.log();
  EXPECT_NE(client.log().find("over 2 cameras"), std::string::npos) << client.log();
  EXPECT_NE(client.log().find(" err 0 "), std::string::npos) << client.log();
}

TEST(ApiBinariesTest, HelpAndBadFlags) {
  const std::string dir = MakeTempDir();
  const std::map<std::string, std::string> flag_in_help = {{"framescope-api", "--pg-timeout-ms"},
                                                           {"framescope-apiclient", "--rate"}};
  for (const auto& [bin, flag] : flag_in_help) {
    Process help(dir, bin + "-help");
    help.Start(bin, {"--help"});
    EXPECT_EQ(help.Wait(10), 0) << help.log();
    EXPECT_NE(help.log().find(flag), std::string::npos) << help.log();
    Process bad(dir, bin + "-bad");
    bad.Start(bin, {"--no-such-flag"});
    EXPECT_EQ(bad.Wait(10), 2) << bad.log();
  }
  Process bad_timeout(dir, "api-bad-timeout");
  bad_timeout.Start("framescope-api", {"--pg-timeout-ms", "0"});
  EXPECT_EQ(bad_timeout.Wait(10), 2) << bad_timeout.log();
  Process bad_rate(dir, "apiclient-bad-rate");
  bad_rate.Start("framescope-apiclient", {"--api-url", "http://127.0.0.1:1", "--rate", "0"});
  EXPECT_EQ(bad_rate.Wait(10), 2) << bad_rate.log();
  std::system(("rm -rf " + dir).c_str());
}

// ---- a database that is not there yet, goes away, and hangs -----------------------------

TEST(ApiOutageTest, MissingSchemaStoppedAndFrozenPostgresGive503Quickly) {
  testing::PostgresFixture pg;
  if (!pg.Start()) GTEST_SKIP() << pg.skip_reason();
  testing::RedisFixture redis;
  if (!redis.Start()) GTEST_SKIP() << "redis-server could not be started";
  std::string dir = MakeTempDir();
  Process api(dir, "api");
  api.Start("framescope-api", {"--postgres-url", pg.url(), "--redis-url", redis.url(),
                               "--pg-timeout-ms", "1000", "--pg-connections", "2"});
  ASSERT_TRUE(api.WaitForPorts()) << api.log();
  const int port = api.ApiPort();
  auto expect_503 = [&](const std::string& path, const std::string& needle) {
    Response r = Get(port, path);
    EXPECT_EQ(r.status, 503) << path << ": " << r.body;
    EXPECT_LT(r.seconds, 5.0) << path;
    EXPECT_NE(r.json.Get("error").AsString().find(needle), std::string::npos) << r.body;
  };

  // 1. No tables yet (aggregation has not run): 503, not 500, and the api keeps running.
  expect_503("/detections", "do not exist yet");
  expect_503("/cameras", "do not exist yet");
  Response h = Get(port, "/health");
  EXPECT_EQ(h.status, 503) << h.body;
  EXPECT_EQ(h.json.Get("schema").AsString(), "missing") << h.body;
  EXPECT_EQ(h.json.Get("postgres").AsString(), "connected") << h.body;
  {
    auto db = PgClient::Connect(pg.url(), "api_test", 5, 10000);
    ASSERT_TRUE(db.ok()) << db.status().message();
    ASSERT_TRUE(ApplyMigrations(db->get(), AggregationMigrations()).ok());
    ASSERT_TRUE(InsertRows(db->get(), TestRows(WallNs())).ok());
  }
  Response ok = Get(port, "/detections?camera=cam02");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json.Get("count").AsInt(), 3);
  EXPECT_EQ(Get(port, "/health").status, 200);

  // 2. Stopped: 503 at once (connection refused), /health names PostgreSQL.
  pg.Stop();
  expect_503("/detections?camera=cam02", "PostgreSQL");
  expect_503("/cameras/cam01/stats", "PostgreSQL");
  h = Get(port, "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.json.Get("postgres").AsString(), "down") << h.body;
  EXPECT_EQ(h.json.Get("redis").AsString(), "connected") << h.body;
  ASSERT_TRUE(pg.Restart().ok());
  EXPECT_TRUE(WaitFor([&] { return Get(port, "/detections?camera=cam02").status == 200; }, 15))
      << api.log();

  // 3. Hung (SIGSTOP): the connection stays open and nothing answers; every request still
  // gets its 503 within the deadline (1000 ms + 500 ms grace), also once both connections
  // are stuck.
  pg.Freeze();
  for (int i = 0; i < 4; ++i) expect_503("/detections?camera=cam02", "");
  pg.Thaw();
  EXPECT_TRUE(WaitFor([&] { return Get(port, "/detections?camera=cam02").status == 200; }, 15))
      << api.log();
  EXPECT_EQ(api.Stop(), 0) << api.log();
  if (HasFailure()) std::cerr << "--- api log ---\n" << api.log();
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace fs::api
