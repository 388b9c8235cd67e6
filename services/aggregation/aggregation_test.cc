// Drives the real framescope-aggregation binary against a private PostgreSQL
// (tests/testing/postgres_fixture.h) and a redis-server started here on a free port.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "services/aggregation/aggregation_service.h"
#include "services/aggregation/detection_entry.h"
#include "src/base/file_util.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/base/net.h"
#include "src/clients/pg_client.h"
#include "src/clients/redis_client.h"
#include "tests/testing/postgres_fixture.h"
#include "tests/testing/redis_fixture.h"

namespace fs {
namespace {

// ---- helpers ---------------------------------------------------------------------------

// The file's text, "" if it cannot be read (not written yet).
std::string TextOf(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? *text : "";
}

bool WaitFor(const std::function<bool()>& pred, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

std::string TempDirPath() {
  char tmpl[] = "/tmp/fs-agg-test-XXXXXX";
  const char* d = mkdtemp(tmpl);
  return d ? d : "";
}

// One framescope-aggregation process; output goes to a log file shown on failure.
class AggProcess {
 public:
  AggProcess(std::string dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {}
  ~AggProcess() { Kill(SIGKILL); }

  // `env`: extra "NAME=value" entries for the child (the fault injection).
  void Start(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::string bin = SelfExeDir() + "/framescope-aggregation";
    port_file_ = dir_ + "/" + name_ + ".json";
    unlink(port_file_.c_str());
    log_ = dir_ + "/" + name_ + ".log";
    std::vector<std::string> argv = {bin, "--port-file", port_file_};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
  }
  // Metrics/health port from the port file (0 until it is written).
  int Port() {
    if (port_ != 0) return port_;
    auto j = Json::Parse(TextOf(port_file_));
    if (j.ok()) port_ = static_cast<int>(j->Get("metrics_port").AsInt());
    return port_;
  }
  bool WaitForPort() {
    return WaitFor([this] { return Port() != 0; }, 10);
  }
  std::string Get(const std::string& path, int* status = nullptr) {
    auto r = HttpGet("127.0.0.1", Port(), path, 2000);
    if (!r.ok()) return "";
    if (status) *status = r->status;
    return r->body;
  }
  double Metric(const std::string& name) {
    std::string text = Get("/metrics");
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
  }
  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }
  bool Alive() { return pid_ > 0 && waitpid(pid_, &status_, WNOHANG) == 0; }
  void Kill(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    waitpid(pid_, &status_, 0);
    pid_ = -1;
    port_ = 0;
  }
  // Waits for the process to exit by itself; its exit code, or -1 (timeout or a signal).
  int WaitExit(double timeout_s) {
    if (pid_ <= 0) return -1;
    bool exited = WaitFor([this] { return waitpid(pid_, &status_, WNOHANG) == pid_; }, timeout_s);
    if (!exited) return -1;
    pid_ = -1;
    port_ = 0;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }
  // SIGTERM and wait; returns the exit code (-1 when it had to be killed).
  int Stop(double timeout_s = 5) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    bool exited = WaitFor([this] { return waitpid(pid_, &status_, WNOHANG) == pid_; }, timeout_s);
    if (!exited) {
      Kill(SIGKILL);
      return -1;
    }
    pid_ = -1;
    port_ = 0;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }
  std::string log() const { return TextOf(log_); }

 private:
  std::string dir_, name_, port_file_, log_;
  pid_t pid_ = -1;
  int port_ = 0;
  int status_ = 0;
};

struct Published {
  std::string camera;
  int64_t seq, capture_ts_ns;
  int idx;
  std::string class_name;
  double score;
};
using Key = std::tuple<std::string, int64_t, int64_t, int>;  // camera, capture_ts_ns, seq, idx

// Detection's entries: 3 detections per frame, 4 cameras. `run` plays a capture restart:
// the same seq numbers again with later capture timestamps.
std::vector<Published> MakeDetections(int n, int run = 0) {
  static const char* kClasses[] = {"person", "car", "dog", "bicycle", "truck"};
  std::vector<Published> out;
  const int64_t base = 1732462800000000000LL + int64_t{run} * 3600000000000LL;
  for (int i = 0; i < n; ++i) {
    int frame = i / 3;
    Published p;
    p.camera = "cam0" + std::to_string(frame % 4);
    p.seq = frame / 4;
    p.capture_ts_ns = base + p.seq * 33333333LL + (frame % 4) * 1000;
    p.idx = i % 3;
    p.class_name = kClasses[(i * 7) % 5];
    p.score = 0.25 + 0.5 * ((i * 37) % 100) / 100.0;
    out.push_back(p);
  }
  return out;
}

void Publish(RedisClient* r, const std::vector<Published>& dets) {
  size_t i = 0;
  while (i < dets.size()) {
    for (size_t k = 0; k < 1000 && i < dets.size(); ++k, ++i) {
      const Published& p = dets[i];
      char score[32];
      snprintf(score, sizeof(score), "%.4f", p.score);
      r->Append({"XADD",
                 "detections",
                 "MAXLEN",
                 "~",
                 "1000000",
                 "*",
                 "camera",
                 p.camera,
                 "seq",
                 std::to_string(p.seq),
                 "capture_ts_ns",
                 std::to_string(p.capture_ts_ns),
                 "idx",
                 std::to_string(p.idx),
                 "class",
                 p.class_name,
                 "class_id",
                 "0",
                 "score",
                 score,
                 "x",
                 "10.0",
                 "y",
                 "20.5",
                 "w",
                 "30.0",
                 "h",
                 "40.0"});
    }
    auto replies = r->Flush();
    ASSERT_TRUE(replies.ok()) << replies.status().message();
  }
}

std::set<Key> Keys(const std::vector<Published>& dets) {
  std::set<Key> out;
  for (const auto& p : dets) out.emplace(p.camera, p.capture_ts_ns, p.seq, p.idx);
  return out;
}

class AggregationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!pg_.Start()) GTEST_SKIP() << pg_.skip_reason();
    ASSERT_TRUE(redis_server_.Start()) << "redis-server could not be started (run make deps)";
    auto r = RedisClient::Connect(redis_server_.url(), "test");
    ASSERT_TRUE(r.ok()) << r.status().message();
    redis_.emplace(std::move(r).value());
    dir_ = TempDirPath();
  }
  void TearDown() override {
    if (HasFailure()) {
      for (AggProcess* p : procs_) printf("---- aggregation log ----\n%s\n", p->log().c_str());
    }
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }

  AggProcess* NewProcess(const std::string& name) {
    owned_.push_back(std::make_unique<AggProcess>(dir_, name));
    procs_.push_back(owned_.back().get());
    return procs_.back();
  }
  std::vector<std::string> Args(const std::string& consumer, int batch = 500,
                                int claim_idle_ms = 30000) {
    return {"--redis-url", redis_server_.url(),   "--postgres-url",
            pg_.url(),     "--consumer",          consumer,
            "--batch",     std::to_string(batch), "--block-ms",
            "200",         "--claim-idle-ms",     std::to_string(claim_idle_ms)};
  }

  std::unique_ptr<PgClient> Pg() {
    auto c = PgClient::Connect(pg_.url(), "test");
    EXPECT_TRUE(c.ok()) << c.status().message();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  int64_t Scalar(const std::string& sql) {
    if (!pg_conn_) pg_conn_ = Pg();
    if (!pg_conn_) return -1;
    auto r = pg_conn_->Exec(sql);
    if (!r.ok()) {
      pg_conn_.reset();
      return -1;
    }
    if (r->rows.empty() || !r->rows[0][0]) return 0;
    return std::stoll(*r->rows[0][0]);
  }
  int64_t Rows() { return Scalar("SELECT count(*) FROM detections"); }
  std::set<Key> StoredKeys() {
    std::set<Key> out;
    auto r = pg_conn_->Exec("SELECT camera, capture_ts_ns, frame_seq, det_idx FROM detections");
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return out;
    for (const auto& row : r->rows) {
      out.emplace(*row[0], std::stoll(*row[1]), std::stoll(*row[2]), std::stoi(*row[3]));
    }
    return out;
  }
  std::string Dump(const std::string& sql) {
    auto r = pg_conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().message();
    std::string out;
    if (!r.ok()) return out;
    for (const auto& row : r->rows) {
      for (const auto& v : row) out += (v ? *v : "NULL") + "|";
      out += "\n";
    }
    return out;
  }
  // Entries pending in the group (read, not acknowledged); -1 on error.
  int64_t Pending() {
    auto r = redis_->Command({"XPENDING", "detections", "aggregation"});
    if (!r.ok() || r->is_error() || r->elements.empty()) return -1;
    return r->elements[0].integer;
  }
  // Entries of the stream not yet delivered to the group ("lag", Redis 7).
  int64_t Lag() {
    auto r = redis_->Command({"XINFO", "GROUPS", "detections"});
    if (!r.ok() || r->is_error() || r->elements.empty()) return -1;
    const auto& g = r->elements[0].elements;
    for (size_t i = 0; i + 1 < g.size(); i += 2) {
      if (g[i].str == "lag")
        return g[i + 1].type == RedisReply::Type::kInteger ? g[i + 1].integer : -1;
    }
    return -1;
  }
  bool Drained() { return Pending() == 0 && Lag() == 0; }
  int64_t LiveTotal() {
    int64_t total = 0;
    for (int c = 0; c < 4; ++c) {
      auto r = redis_->Command({"HGETALL", "live:camera:cam0" + std::to_string(c)});
      if (!r.ok()) return -1;
      for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
        if (r->elements[i].str != "last_ts") total += std::stoll(r->elements[i + 1].str);
      }
    }
    return total;
  }

  using Counts = std::map<std::pair<std::string, std::string>, int64_t>;  // (camera, class)
  // The live:camera:<camera> counters (last_ts left out).
  Counts LiveCounts() {
    Counts out;
    auto keys = redis_->Command({"KEYS", "live:camera:*"});
    if (!keys.ok()) return out;
    for (const auto& k : keys->elements) {
      auto h = redis_->Command({"HGETALL", k.str});
      if (!h.ok()) continue;
      const std::string camera = k.str.substr(std::string("live:camera:").size());
      for (size_t i = 0; i + 1 < h->elements.size(); i += 2) {
        if (h->elements[i].str == "last_ts") continue;
        out[{camera, h->elements[i].str}] = std::stoll(h->elements[i + 1].str);
      }
    }
    return out;
  }
  Counts CountsFrom(const std::string& sql) {
    Counts out;
    auto r = pg_conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return out;
    for (const auto& row : r->rows) out[{*row[0], *row[1]}] = std::stoll(*row[2]);
    return out;
  }
  // rows == rollup sums == live counters, per camera and class. The live counters are
  // applied just after COMMIT, so they get a moment to catch up.
  void ExpectExactCounts(int64_t n) {
    EXPECT_EQ(Rows(), n);
    const Counts rows = CountsFrom("SELECT camera, class, count(*) FROM detections GROUP BY 1, 2");
    EXPECT_EQ(CountsFrom("SELECT camera, class, sum(count) FROM detection_rollup_1s GROUP BY 1, 2"),
              rows);
    EXPECT_EQ(CountsFrom("SELECT camera, class, sum(count) FROM detection_rollup_1m GROUP BY 1, 2"),
              rows);
    WaitFor([&] { return LiveCounts() == rows; }, 5);
    EXPECT_EQ(LiveCounts(), rows);
    EXPECT_EQ(LiveTotal(), n);
  }

  // The process dies (exit at `point`) right after the 3rd batch of 100 new rows committed;
  // the same consumer is restarted. `live_at_crash`: what the crash left in Redis, which
  // shows the window was hit; `recovered`: batches the restart must apply from the outbox.
  void CrashAndRestart(const std::string& point, int64_t live_at_crash, double recovered) {
    auto dets = MakeDetections(900);
    Publish(&*redis_, dets);
    AggProcess* a = NewProcess("a");
    a->Start(Args("a", 100), {"FRAMESCOPE_AGGREGATION_FAULT=" + point + ":exit:3"});
    ASSERT_EQ(a->WaitExit(30), kFaultExitCode) << "the fault did not fire";
    EXPECT_EQ(Rows(), 300);
    EXPECT_EQ(Pending(), 100);  // committed, not acknowledged
    EXPECT_EQ(LiveTotal(), live_at_crash);
    a->Start(Args("a", 100));
    ASSERT_TRUE(WaitFor([&] { return Rows() == 900 && Drained(); }, 30))
        << "rows " << Rows() << " pending " << Pending() << " lag " << Lag();
    ExpectExactCounts(900);
    ASSERT_TRUE(a->WaitForPort());
    EXPECT_EQ(a->Metric("framescope_aggregation_live_batches_recovered_total"), recovered);
    EXPECT_EQ(a->Stop(), 0);
  }

  // The Redis connection drops at `point` of the 3rd batch (as in a Redis restart there);
  // the process reconnects and goes on.
  void DropRedisAndContinue(const std::string& point, double recovered) {
    auto dets = MakeDetections(900);
    Publish(&*redis_, dets);
    AggProcess* a = NewProcess("a");
    a->Start(Args("a", 100), {"FRAMESCOPE_AGGREGATION_FAULT=" + point + ":drop_redis:3"});
    ASSERT_TRUE(a->WaitForPort());
    ASSERT_TRUE(WaitFor([&] { return Rows() == 900 && Drained(); }, 30))
        << "rows " << Rows() << " pending " << Pending() << " lag " << Lag();
    ExpectExactCounts(900);
    EXPECT_EQ(a->Metric("framescope_aggregation_live_batches_recovered_total"), recovered);
    EXPECT_EQ(a->Stop(), 0);
    EXPECT_NE(a->log().find("fault injection: connection dropped " + point), std::string::npos);
  }

  testing::PostgresFixture pg_;
  testing::RedisFixture redis_server_;
  std::optional<RedisClient> redis_;
  std::unique_ptr<PgClient> pg_conn_;
  std::string dir_;
  std::vector<std::unique_ptr<AggProcess>> owned_;
  std::vector<AggProcess*> procs_;
};

// ---- tests -----------------------------------------------------------------------------

TEST(AggregationFlagsTest, HelpAndBadFlags) {
  std::string bin = SelfExeDir() + "/framescope-aggregation";
  auto run = [&bin](const std::string& args) {
    int st = std::system((bin + " " + args + " >/dev/null 2>&1").c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  EXPECT_EQ(run("--help"), 0);
  EXPECT_EQ(run("--no-such-flag"), 2);
  EXPECT_EQ(run("--batch 0"), 2);
  EXPECT_EQ(run("--block-ms 0"), 2);
  EXPECT_EQ(run("--batch notanumber"), 2);
  // A mistyped fault injection fails the start instead of running without the fault.
  // (timeout: without the check it would keep retrying the unreachable PostgreSQL.)
  int st = std::system(("FRAMESCOPE_AGGREGATION_FAULT=after_comit:exit:1 timeout 10 " + bin +
                        " --postgres-url postgresql://127.0.0.1:1/x >/dev/null 2>&1")
                           .c_str());
  EXPECT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 2);
}

TEST(AggregationFaultTest, ParsesSpecStrictly) {
  auto f = ParseAggregationFault("after_counters:drop_redis:7");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->point, AggregationFault::Point::kAfterCounters);
  EXPECT_EQ(f->action, AggregationFault::Action::kDropRedis);
  EXPECT_EQ(f->batch, 7);
  f = ParseAggregationFault("after_commit:exit:1");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->point, AggregationFault::Point::kAfterCommit);
  EXPECT_EQ(f->action, AggregationFault::Action::kExit);
  for (const char* bad : {"", "after_commit", "after_commit:exit",
                          "after_commit:exit:", "after_commit:exit:0", "after_commit:exit:3x",
                          "before_commit:exit:1", "after_commit:abort:1", "after_commit:exit:-1"}) {
    EXPECT_FALSE(ParseAggregationFault(bad).ok()) << bad;
  }
}

TEST(DetectionEntryTest, ParsesDetectionFieldsStrictly) {
  auto fields = [](std::vector<std::string> kv) {
    RedisReply r;
    r.type = RedisReply::Type::kArray;
    for (auto& s : kv) {
      RedisReply e;
      e.type = RedisReply::Type::kString;
      e.str = s;
      r.elements.push_back(e);
    }
    return r;
  };
  std::vector<std::string> good = {"camera",
                                   "cam01",
                                   "seq",
                                   "7",
                                   "capture_ts_ns",
                                   "1700000000000000000",
                                   "idx",
                                   "2",
                                   "class",
                                   "person",
                                   "class_id",
                                   "0",
                                   "score",
                                   "0.8123",
                                   "x",
                                   "1.0",
                                   "y",
                                   "2.0",
                                   "w",
                                   "3.0",
                                   "h",
                                   "4.0"};
  auto row = ParseDetectionFields("1-0", fields(good));
  ASSERT_TRUE(row.ok()) << row.status().message();
  EXPECT_EQ(row->camera, "cam01");
  EXPECT_EQ(row->frame_seq, 7);
  EXPECT_EQ(row->det_idx, 2);
  EXPECT_EQ(ToCopyLine(*row),
            "cam01\t7\t1700000000000000000\t2\tperson\t0\t0.8123\t1.0\t2.0\t3.0\t4.0\t1-0");
  auto with = [&](const std::string& k, const std::string& v) {
    auto kv = good;
    for (size_t i = 0; i < kv.size(); i += 2) {
      if (kv[i] == k) kv[i + 1] = v;
    }
    return ParseDetectionFields("1-0", fields(kv));
  };
  EXPECT_FALSE(with("score", "abc").ok());
  EXPECT_FALSE(with("score", "nan").ok());
  EXPECT_FALSE(with("x", "1e300").ok());  // out of range for real
  EXPECT_FALSE(with("seq", "-1").ok());
  EXPECT_FALSE(with("seq", "12x").ok());
  EXPECT_FALSE(with("idx", "99999999999").ok());
  EXPECT_FALSE(with("camera", "").ok());
  EXPECT_FALSE(with("camera", std::string("ca\0m", 4)).ok());
  EXPECT_FALSE(with("class", "\xff\xfe").ok());
  EXPECT_FALSE(with("class", "\xed\xa0\x80").ok());  // UTF-16 surrogate
  EXPECT_TRUE(with("class", "caf\xc3\xa9").ok());
  EXPECT_TRUE(with("camera", "tab\there").ok());  // escaped for COPY
  EXPECT_EQ(ToCopyLine(*with("camera", "tab\there")).substr(0, 9), "tab\\there");
  auto missing = good;
  missing.resize(missing.size() - 2);
  EXPECT_FALSE(ParseDetectionFields("1-0", fields(missing)).ok());
  RedisReply nil;
  EXPECT_FALSE(ParseDetectionFields("1-0", nil).ok());
}

// (1) N detections, published the way detection publishes them, stored exactly once, with
// rollups summing to N; a capture restart (same seq numbers, later timestamps) is new data.
TEST_F(AggregationTest, StoresEveryDetectionOnce) {
  auto first = MakeDetections(1500, 0);
  auto restarted = MakeDetections(600, 1);
  // Published before the group exists: the group starts at 0, so none of these is skipped.
  Publish(&*redis_, first);
  AggProcess* agg = NewProcess("agg");
  agg->Start(Args("c1", 200));
  ASSERT_TRUE(agg->WaitForPort());
  Publish(&*redis_, restarted);
  const int64_t n = static_cast<int64_t>(first.size() + restarted.size());
  ASSERT_TRUE(WaitFor([&] { return Rows() == n && Drained(); }, 20))
      << "rows " << Rows() << " pending " << Pending() << " lag " << Lag();

  auto expected = Keys(first);
  auto more = Keys(restarted);
  expected.insert(more.begin(), more.end());
  EXPECT_EQ(StoredKeys(), expected);
  EXPECT_EQ(Scalar("SELECT sum(count) FROM detection_rollup_1s"), n);
  EXPECT_EQ(Scalar("SELECT sum(count) FROM detection_rollup_1m"), n);
  EXPECT_EQ(Scalar("SELECT count(*) FROM detections WHERE capture_ts <> timestamptz 'epoch' + "
                   "(capture_ts_ns / 1000) * interval '1 microsecond'"),
            0);
  double score_sum = 0;
  for (const auto& p : first) score_sum += p.score;
  for (const auto& p : restarted) score_sum += p.score;
  EXPECT_EQ(Scalar("SELECT round(sum(score_sum))::bigint FROM detection_rollup_1m"),
            static_cast<int64_t>(score_sum + 0.5));
  EXPECT_TRUE(WaitFor([&] { return LiveTotal() == n; }, 5)) << LiveTotal();

  int status = 0;
  std::string health = agg->Get("/health", &status);
  EXPECT_EQ(status, 200) << health;
  EXPECT_EQ(agg->Metric("framescope_aggregation_rows_inserted_total"), n);
  EXPECT_EQ(agg->Metric("framescope_aggregation_entries_read_total"), n);
  EXPECT_EQ(agg->Metric("framescope_aggregation_duplicates_total"), 0);
  EXPECT_GT(agg->Metric("framescope_aggregation_batches_total"), 0);
  EXPECT_NE(agg->Get("/metrics")
                .find("framescope_end_to_end_latency_seconds_count{stage="
                      "\"capture_to_stored\"}"),
            std::string::npos);
  EXPECT_EQ(agg->Stop(), 0);
}

// (2) Redelivery: the same detections added again (new entry ids) change nothing.
TEST_F(AggregationTest, RedeliveredEntriesChangeNothing) {
  auto dets = MakeDetections(900);
  Publish(&*redis_, dets);
  AggProcess* agg = NewProcess("agg");
  agg->Start(Args("c1", 100));
  ASSERT_TRUE(agg->WaitForPort());
  const int64_t n = static_cast<int64_t>(dets.size());
  ASSERT_TRUE(WaitFor([&] { return Rows() == n && Drained(); }, 20)) << Rows();
  ASSERT_TRUE(WaitFor([&] { return LiveTotal() == n; }, 5));
  const std::string rollups_before = Dump("SELECT * FROM detection_rollup_1s ORDER BY 1, 2, 3") +
                                     Dump("SELECT * FROM detection_rollup_1m ORDER BY 1, 2, 3");
  const std::string rows_before = Dump("SELECT * FROM detections ORDER BY 1, 2, 3, 4");

  Publish(&*redis_, dets);
  ASSERT_TRUE(WaitFor(
      [&] {
        return Drained() && agg->Metric("framescope_aggregation_entries_read_total") == 2 * n;
      },
      20));
  EXPECT_EQ(Rows(), n);
  EXPECT_EQ(Dump("SELECT * FROM detections ORDER BY 1, 2, 3, 4"), rows_before);
  EXPECT_EQ(Dump("SELECT * FROM detection_rollup_1s ORDER BY 1, 2, 3") +
                Dump("SELECT * FROM detection_rollup_1m ORDER BY 1, 2, 3"),
            rollups_before);
  EXPECT_EQ(agg->Metric("framescope_aggregation_duplicates_total"), n);
  EXPECT_EQ(agg->Metric("framescope_aggregation_rows_inserted_total"), n);
  EXPECT_EQ(LiveTotal(), n);
  EXPECT_EQ(agg->Stop(), 0);
}

// (3) kill -9 mid-run; restart with the same consumer (re-processes its own pending list),
// then a second consumer takes over what a dead consumer left pending (XAUTOCLAIM).
TEST_F(AggregationTest, SurvivesKillAndTakesOverDeadConsumers) {
  auto dets = MakeDetections(30000);
  const int64_t n = static_cast<int64_t>(dets.size());
  Publish(&*redis_, dets);
  // A consumer that reads 100 entries and dies without acknowledging them.
  auto created = redis_->Command({"XGROUP", "CREATE", "detections", "aggregation", "0"});
  ASSERT_TRUE(created.ok() && !created->is_error());
  auto ghost = redis_->Command({"XREADGROUP", "GROUP", "aggregation", "ghost", "COUNT", "100",
                                "STREAMS", "detections", ">"});
  ASSERT_TRUE(ghost.ok() && !ghost->is_error());
  ASSERT_EQ(Pending(), 100);

  AggProcess* a = NewProcess("a");
  a->Start(Args("a", 40, /*claim_idle_ms=*/600000));
  ASSERT_TRUE(WaitFor([&] { return Rows() >= 2000; }, 30)) << Rows();
  a->Kill(SIGKILL);
  const int64_t at_kill = Rows();
  EXPECT_LT(at_kill, n - 100) << "the run finished before the kill; raise N";

  // Same consumer name: re-processes its own pending entries, then the rest.
  a->Start(Args("a", 40, 600000));
  ASSERT_TRUE(WaitFor([&] { return Rows() == n - 100 && Lag() == 0 && Pending() == 100; }, 40))
      << "rows " << Rows() << " pending " << Pending() << " lag " << Lag();
  EXPECT_EQ(a->Stop(), 0);

  // Another consumer with a short idle time claims the ghost's entries.
  AggProcess* b = NewProcess("b");
  b->Start(Args("b", 40, /*claim_idle_ms=*/200));
  ASSERT_TRUE(WaitFor([&] { return Rows() == n && Drained(); }, 20))
      << "rows " << Rows() << " pending " << Pending();
  ASSERT_TRUE(b->WaitForPort());
  EXPECT_TRUE(WaitFor([&] { return b->Metric("framescope_aggregation_claimed_total") >= 100; }, 5));
  EXPECT_EQ(StoredKeys(), Keys(dets));
  EXPECT_EQ(Scalar("SELECT sum(count) FROM detection_rollup_1s"), n);
  ExpectExactCounts(n);
  EXPECT_EQ(Pending(), 0);
  EXPECT_EQ(b->Stop(), 0);
}

// The windows between COMMIT and the Redis writes, hit exactly (fault injection). With the
// increments applied after COMMIT and nothing else, a crash after COMMIT lost them for good:
// the redelivered batch inserts 0 rows, so nothing counts them again.
TEST_F(AggregationTest, CrashAfterCommitThenRestartKeepsLiveCountersExact) {
  CrashAndRestart("after_commit", /*live_at_crash=*/200, /*recovered=*/1);
}

// The counters are applied, XACK not sent: the restart re-applies the batch from the outbox,
// which must be a no-op.
TEST_F(AggregationTest, CrashAfterCountersThenRestartKeepsLiveCountersExact) {
  CrashAndRestart("after_counters", /*live_at_crash=*/300, /*recovered=*/0);
}

TEST_F(AggregationTest, RedisDropAfterCommitKeepsLiveCountersExact) {
  DropRedisAndContinue("after_commit", /*recovered=*/1);
}

TEST_F(AggregationTest, RedisDropAfterCountersKeepsLiveCountersExact) {
  DropRedisAndContinue("after_counters", /*recovered=*/0);
}

// A consumer dies after COMMIT and never comes back: another one, already running, takes over
// its pending entries (XAUTOCLAIM) and applies its last batch's counters from the outbox.
TEST_F(AggregationTest, CrashedConsumersCountersAreAppliedByAnother) {
  AggProcess* b = NewProcess("b");
  b->Start(Args("b", 100, /*claim_idle_ms=*/200));
  ASSERT_TRUE(b->WaitForPort());
  ASSERT_TRUE(WaitFor(
      [&] {
        int status = 0;
        b->Get("/health", &status);
        return status == 200;
      },
      10));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past b's start-up drain
  // Stopped, b reads nothing, so `a` stores its batches alone (b may hold one delivered
  // batch, stored after SIGCONT).
  b->Signal(SIGSTOP);
  auto dets = MakeDetections(900);
  AggProcess* a = NewProcess("a");
  a->Start(Args("a", 100, 600000), {"FRAMESCOPE_AGGREGATION_FAULT=after_commit:exit:2"});
  ASSERT_TRUE(a->WaitForPort());
  Publish(&*redis_, dets);
  const int exit_code = a->WaitExit(30);
  b->Signal(SIGCONT);
  ASSERT_EQ(exit_code, kFaultExitCode) << "the fault did not fire";
  ASSERT_TRUE(WaitFor([&] { return Rows() == 900 && Drained(); }, 30))
      << "rows " << Rows() << " pending " << Pending() << " lag " << Lag();
  ExpectExactCounts(900);
  EXPECT_EQ(b->Metric("framescope_aggregation_live_batches_recovered_total"), 1);
  EXPECT_GT(b->Metric("framescope_aggregation_claimed_total"), 0);
  EXPECT_EQ(b->Stop(), 0);
}

// (4) PostgreSQL unreachable: the process keeps retrying (a supervisor restarting it would
// gain nothing), /health answers 503 with the error, nothing is read or acknowledged; once
// pointed at a reachable PostgreSQL, everything published meanwhile is stored.
TEST_F(AggregationTest, PostgresDownKeepsRetryingAndLosesNothing) {
  auto port = PickFreePort();
  ASSERT_TRUE(port.ok());
  auto args = Args("c1");
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--postgres-url") {
      args[i + 1] = "postgresql://127.0.0.1:" + std::to_string(*port) + "/nowhere";
    }
  }
  AggProcess* agg = NewProcess("agg");
  agg->Start(args);
  ASSERT_TRUE(agg->WaitForPort());
  auto dets = MakeDetections(300);
  Publish(&*redis_, dets);
  std::string body;
  int status = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        body = agg->Get("/health", &status);
        auto j = Json::Parse(body);
        return j.ok() && !j->Get("detail").Get("postgres").Get("last_error").AsString().empty();
      },
      10))
      << body;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(agg->Alive());
  body = agg->Get("/health", &status);
  EXPECT_EQ(status, 503) << body;
  auto j = Json::Parse(body);
  ASSERT_TRUE(j.ok());
  EXPECT_FALSE(j->Get("detail").Get("postgres").Get("connected").AsBool(true));
  EXPECT_NE(
      j->Get("detail").Get("postgres").Get("last_error").AsString().find(std::to_string(*port)),
      std::string::npos)
      << body;
  EXPECT_TRUE(j->Get("detail").Get("redis").Get("connected").AsBool());
  EXPECT_EQ(Pending(), 0);  // nothing read while PostgreSQL is down
  EXPECT_EQ(Lag(), static_cast<int64_t>(dets.size()));
  EXPECT_EQ(agg->Stop(), 0);  // SIGTERM is honoured while retrying

  AggProcess* ok = NewProcess("ok");
  ok->Start(Args("c1"));
  ASSERT_TRUE(
      WaitFor([&] { return Rows() == static_cast<int64_t>(dets.size()) && Drained(); }, 20));
  ASSERT_TRUE(ok->WaitForPort());
  EXPECT_TRUE(WaitFor(
      [&] {
        ok->Get("/health", &status);
        return status == 200;
      },
      5));
  EXPECT_EQ(ok->Stop(), 0);
}

// (5) Malformed entries are counted, acknowledged (never block the group) and skipped.
TEST_F(AggregationTest, MalformedEntriesAreCountedAndAcked) {
  auto dets = MakeDetections(30);
  Publish(&*redis_, dets);
  std::vector<std::vector<std::string>> bad = {
      {"XADD", "detections", "*", "camera", "cam01"},  // fields missing
      {"XADD", "detections", "*",     "camera", "cam01",    "seq", "1",     "capture_ts_ns", "5",
       "idx",  "0",          "class", "person", "class_id", "0",   "score", "high",          "x",
       "1",    "y",          "1",     "w",      "1",        "h",   "1"},
      {"XADD", "detections", "*",     "camera", "\xff",     "seq", "1",     "capture_ts_ns", "5",
       "idx",  "0",          "class", "person", "class_id", "0",   "score", "0.5",           "x",
       "1",    "y",          "1",     "w",      "1",        "h",   "1"},
      {"XADD", "detections", "*",     "camera", "cam01",    "seq", "-4",    "capture_ts_ns", "5",
       "idx",  "0",          "class", "person", "class_id", "0",   "score", "0.5",           "x",
       "1",    "y",          "1",     "w",      "1",        "h",   "1"},
  };
  for (const auto& cmd : bad) ASSERT_TRUE(redis_->Command(cmd).ok());
  auto more = MakeDetections(60, 2);
  Publish(&*redis_, more);
  AggProcess* agg = NewProcess("agg");
  agg->Start(Args("c1", 7));
  ASSERT_TRUE(agg->WaitForPort());
  const int64_t n = static_cast<int64_t>(dets.size() + more.size());
  ASSERT_TRUE(WaitFor([&] { return Rows() == n && Drained(); }, 20))
      << "rows " << Rows() << " pending " << Pending();
  EXPECT_TRUE(
      WaitFor([&] { return agg->Metric("framescope_aggregation_malformed_total") == 4; }, 5))
      << agg->Get("/metrics");
  EXPECT_EQ(agg->Metric("framescope_aggregation_rows_inserted_total"), n);
  int status = 0;
  agg->Get("/health", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(agg->Stop(), 0);
  EXPECT_NE(agg->log().find("malformed"), std::string::npos);
}

// PostgreSQL restarted (fast shutdown cuts every connection) while entries keep arriving:
// the batches that failed stay pending and are stored after the reconnect, once each.
TEST_F(AggregationTest, PostgresRestartMidStreamLosesNothing) {
  auto before = MakeDetections(400, 0);
  auto during = MakeDetections(400, 1);
  AggProcess* agg = NewProcess("agg");
  agg->Start(Args("c1", 100));
  ASSERT_TRUE(agg->WaitForPort());
  Publish(&*redis_, before);
  ASSERT_TRUE(WaitFor([&] { return Rows() == 400; }, 20)) << Rows();
  pg_conn_.reset();
  pg_.Stop();
  Publish(&*redis_, during);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(agg->Alive());
  ASSERT_TRUE(pg_.Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return Rows() == 800 && Drained(); }, 30))
      << "rows " << Rows() << " pending " << Pending() << " lag " << Lag();
  auto expected = Keys(before);
  auto more = Keys(during);
  expected.insert(more.begin(), more.end());
  EXPECT_EQ(StoredKeys(), expected);
  EXPECT_EQ(Scalar("SELECT sum(count) FROM detection_rollup_1m"), 800);
  EXPECT_GT(agg->Metric("framescope_aggregation_write_failures_total") +
                agg->Metric("framescope_aggregation_rows_inserted_total"),
            0);
}

// The guarantee when Redis itself loses data (no persistence, or a crash between
// append-only fsyncs): entries it lost before aggregation read them are lost; everything it
// still has, or receives afterwards, is stored exactly once. Aggregation notices the lost
// consumer group (NOGROUP), recreates it and goes on; a producer re-publishing entries that
// were already stored adds nothing.
TEST_F(AggregationTest, RedisDataLossRecreatesGroupAndNeverDuplicates) {
  auto before = MakeDetections(300, 0);
  auto after = MakeDetections(300, 1);
  AggProcess* agg = NewProcess("agg");
  agg->Start(Args("c1", 100));
  ASSERT_TRUE(agg->WaitForPort());
  Publish(&*redis_, before);
  ASSERT_TRUE(WaitFor([&] { return Rows() == 300; }, 20)) << Rows();
  redis_.reset();
  ASSERT_TRUE(redis_server_.RestartEmpty());
  auto r = RedisClient::Connect(redis_server_.url(), "test");
  ASSERT_TRUE(r.ok()) << r.status().message();
  redis_.emplace(std::move(r).value());
  // Re-published old entries (a producer retrying) plus new ones.
  std::vector<Published> replay(before.begin(), before.begin() + 100);
  Publish(&*redis_, replay);
  Publish(&*redis_, after);
  ASSERT_TRUE(WaitFor([&] { return Rows() == 600 && Drained(); }, 30))
      << "rows " << Rows() << " pending " << Pending() << " lag " << Lag();
  auto expected = Keys(before);
  auto more = Keys(after);
  expected.insert(more.begin(), more.end());
  EXPECT_EQ(StoredKeys(), expected);
  EXPECT_EQ(agg->Metric("framescope_aggregation_duplicates_total"), 100);
  int status = 0;
  std::string health = agg->Get("/health", &status);
  EXPECT_EQ(status, 200) << health;
}

}  // namespace
}  // namespace fs
