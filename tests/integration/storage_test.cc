// End-to-end for the storage half: `framescope up` with PostgreSQL, aggregation, api, API
// clients and Prometheus; then the reliability claims, each checked against the real
// servers: kill -9 of aggregation, a PostgreSQL restart and a Redis restart mid-run lose
// nothing and duplicate nothing (detections published == rows stored, compared by key), and
// the data survives down/up until `down --purge`.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/clients/pg_client.h"
#include "src/clients/prom_text.h"
#include "src/clients/redis_client.h"
#include "src/system/process.h"
#include "tests/integration/test_util.h"

namespace fs {
namespace {

using testing::RunShell;
using testing::TempDir;
using Key = std::tuple<std::string, std::string, std::string, std::string>;

std::string Fs() { return testing::BinDir() + "/framescope"; }

Json StatusJson(const std::string& sd) {
  auto r = RunShell(Fs() + " status --json --state-dir " + sd);
  auto j = Json::Parse(r.output);
  return j.ok() ? *j : Json();
}

// The full PostgreSQL URL (with the generated password) is only in state.json (0600), never
// in `status` output.
std::string PostgresUrl(const std::string& sd) {
  auto text = ReadFile(sd + "/state.json");
  auto j = text.ok() ? Json::Parse(*text) : StatusOr<Json>(Err("no state"));
  return j.ok() ? j->Get("postgres_url").AsString() : "";
}

Json Service(const Json& status, const std::string& name) {
  for (const auto& s : status.Get("services").AsArray()) {
    if (s.Get("name").AsString() == name) return s;
  }
  return Json();
}

int PortOf(const std::string& url) {
  auto c = url.rfind(':');
  return c == std::string::npos ? 0 : atoi(url.c_str() + c + 1);
}

bool WaitFor(const std::function<bool()>& pred, double timeout_s) {
  int64_t deadline = MonotonicNs() + static_cast<int64_t>(timeout_s * 1e9);
  while (MonotonicNs() < deadline) {
    if (pred()) return true;
    usleep(250000);
  }
  return pred();
}

double Scrape(int port, const std::string& metric,
              const std::map<std::string, std::string>& match = {}) {
  auto r = HttpGet("127.0.0.1", port, "/metrics", 2000);
  if (!r.ok()) return -1;
  auto s = ParsePromText(r->body);
  return s.ok() ? SumSamples(*s, metric, match) : -1;
}

// Waits until `name` was restarted `restarts` times and is healthy again.
bool WaitRestarted(const std::string& sd, const std::string& name, int restarts) {
  return WaitFor(
      [&] {
        Json s = Service(StatusJson(sd), name);
        return s.Get("restarts").AsInt() >= restarts && s.Get("healthy").AsBool();
      },
      60);
}

std::set<Key> StreamKeys(RedisClient* redis, int64_t* entries) {
  std::set<Key> keys;
  *entries = 0;
  std::string start = "-";
  for (;;) {
    auto r = redis->Command({"XRANGE", "detections", start, "+", "COUNT", "5000"});
    if (!r.ok() || r->elements.empty()) break;
    for (const auto& e : r->elements) {
      std::map<std::string, std::string> f;
      const auto& kv = e.elements[1].elements;
      for (size_t i = 0; i + 1 < kv.size(); i += 2) f[kv[i].str] = kv[i + 1].str;
      keys.insert({f["camera"], f["capture_ts_ns"], f["seq"], f["idx"]});
      ++*entries;
    }
    start = "(" + r->elements.back().elements[0].str;
  }
  return keys;
}

std::set<Key> RowKeys(PgClient* pg, int64_t* rows) {
  std::set<Key> keys;
  auto r = pg->Exec("SELECT camera, capture_ts_ns, frame_seq, det_idx FROM detections");
  *rows = r.ok() ? static_cast<int64_t>(r->rows.size()) : -1;
  if (r.ok()) {
    for (const auto& row : r->rows) keys.insert({*row[0], *row[1], *row[2], *row[3]});
  }
  return keys;
}

TEST(StorageSystemTest, FullStackLosesNothingThroughCrashesAndRestarts) {
  TempDir tmp;
  std::string sd = tmp.path() + "/state";
  testing::SystemGuard guard(sd);
  auto up =
      RunShell(Fs() +
               " up --cameras 2 --fps 10 --api-rate 20 --aggregation-processes 2 --timeout 240 "
               "--state-dir " +
               sd);
  ASSERT_EQ(up.exit_code, 0) << up.output
                             << RunShell(Fs() + " logs --lines 30 --state-dir " + sd).output;
  for (const char* svc : {"redis", "postgres", "aggregation", "aggregation-2", "api", "apiclient",
                          "prometheus", "detection"}) {
    EXPECT_NE(up.output.find(std::string("\n") + svc + " "), std::string::npos) << up.output;
  }
  Json status = StatusJson(sd);
  int api_port = PortOf(Service(status, "api").Get("endpoints").Get("http").AsString());
  int prom_port = PortOf(Service(status, "prometheus").Get("endpoints").Get("http").AsString());
  int det_port = PortOf(Service(status, "detection").Get("metrics").AsString());
  int client_port = PortOf(Service(status, "apiclient").Get("metrics").AsString());
  ASSERT_GT(api_port, 0) << status.Dump(2);
  ASSERT_GT(prom_port, 0) << status.Dump(2);
  auto pg = PgClient::Connect(PostgresUrl(sd), "test", 5, 10000);
  ASSERT_TRUE(pg.ok()) << pg.status().message();

  // Data flows end to end: rows in PostgreSQL, the api serves them, the clients load it.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = (*pg)->Exec("SELECT count(DISTINCT camera) FROM detections");
        return r.ok() && *r->rows[0][0] == "2";
      },
      60))
      << RunShell(Fs() + " logs --lines 20 --state-dir " + sd).output;
  auto cams = HttpGet("127.0.0.1", api_port, "/cameras", 3000);
  ASSERT_TRUE(cams.ok());
  EXPECT_EQ(cams->status, 200) << cams->body;
  EXPECT_NE(cams->body.find("cam01"), std::string::npos) << cams->body;
  auto dets = HttpGet("127.0.0.1", api_port, "/detections?camera=cam00&limit=5", 3000);
  ASSERT_TRUE(dets.ok());
  EXPECT_EQ(dets->status, 200) << dets->body;
  EXPECT_NE(dets->body.find("cam00"), std::string::npos) << dets->body;
  EXPECT_TRUE(WaitFor(
      [&] { return Scrape(client_port, "framescope_apiclient_responses_total") > 20; }, 15));
  // Prometheus scrapes every service with a /metrics endpoint, all up.
  std::string targets_body;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto t = HttpGet("127.0.0.1", prom_port, "/api/v1/targets", 2000);
        if (!t.ok()) return false;
        targets_body = t->body;
        auto j = Json::Parse(t->body);
        if (!j.ok()) return false;
        const auto& targets = j->Get("data").Get("activeTargets").AsArray();
        int up_count = 0;
        for (const auto& tg : targets) up_count += tg.Get("health").AsString() == "up";
        return targets.size() >= 6 && up_count == static_cast<int>(targets.size());
      },
      30))
      << targets_body;

  // 1. kill -9 one of the two aggregation consumers mid-run (the other goes on; the
  // restarted one first re-reads what it left pending).
  pid_t agg = static_cast<pid_t>(Service(status, "aggregation").Get("pid").AsInt());
  ASSERT_GT(agg, 0);
  kill(agg, SIGKILL);
  ASSERT_TRUE(WaitRestarted(sd, "aggregation", 1)) << StatusJson(sd).Dump(2);
  // 2. PostgreSQL restarted mid-run (fast shutdown: every connection is cut).
  pid_t postmaster = static_cast<pid_t>(Service(status, "postgres").Get("pid").AsInt());
  ASSERT_GT(postmaster, 0);
  kill(postmaster, SIGINT);
  ASSERT_TRUE(WaitRestarted(sd, "postgres", 1)) << StatusJson(sd).Dump(2);
  sleep(3);
  // 3. Redis restarted mid-run (SIGTERM: it flushes its append-only file and exits).
  pid_t redis_pid = static_cast<pid_t>(Service(status, "redis").Get("pid").AsInt());
  ASSERT_GT(redis_pid, 0);
  kill(redis_pid, SIGTERM);
  ASSERT_TRUE(WaitRestarted(sd, "redis", 1)) << StatusJson(sd).Dump(2);
  // Detections flow again after all three.
  double published_before = Scrape(det_port, "framescope_detections_total");
  ASSERT_TRUE(WaitFor(
      [&] { return Scrape(det_port, "framescope_detections_total") > published_before + 10; }, 60))
      << RunShell(Fs() + " logs --lines 20 --state-dir " + sd).output;

  // Starve the producer (capture frozen: detection gets no frames and goes idle, its
  // /metrics still answers), let aggregation drain, then compare by key.
  status = StatusJson(sd);
  pid_t cap_pid = static_cast<pid_t>(Service(status, "capture").Get("pid").AsInt());
  ASSERT_GT(cap_pid, 0);
  kill(cap_pid, SIGSTOP);
  // Detection finishes its last batch: wait until its published count holds for 3 s.
  double published = -1;
  int64_t stable_since = MonotonicNs();
  ASSERT_TRUE(WaitFor(
      [&] {
        double now = Scrape(det_port, "framescope_detections_total");
        if (now != published) {
          published = now;
          stable_since = MonotonicNs();
        }
        return MonotonicNs() - stable_since > 3000000000LL;
      },
      60));
  auto redis = RedisClient::Connect(status.Get("redis_url").AsString(), "test");
  ASSERT_TRUE(redis.ok()) << redis.status().message();
  auto pg2 = PgClient::Connect(PostgresUrl(sd), "test", 5, 30000);
  ASSERT_TRUE(pg2.ok()) << pg2.status().message();
  int64_t entries = 0, rows = 0;
  std::set<Key> stream_keys, row_keys;
  bool drained = WaitFor(
      [&] {
        stream_keys = StreamKeys(&*redis, &entries);
        row_keys = RowKeys(pg2->get(), &rows);
        return !stream_keys.empty() && stream_keys == row_keys;
      },
      60);
  EXPECT_EQ(Scrape(det_port, "framescope_detections_total"), published) << "still producing";
  EXPECT_TRUE(drained) << "stream " << stream_keys.size() << " keys, PostgreSQL "
                       << row_keys.size();
  // Every detection Redis acknowledged is in the stream (no trimming in a run this short) and
  // so in PostgreSQL, exactly once (the stream and the table hold the same keys). An XADD
  // whose reply was lost in the Redis restart is in the stream without being counted as
  // published, hence >=.
  EXPECT_GE(static_cast<double>(rows), published);
  EXPECT_GT(rows, 0);
  // Double counting would show in the rollups, maintained in the same transactions.
  for (const char* table : {"detection_rollup_1s", "detection_rollup_1m"}) {
    auto sum = (*pg2)->Exec(std::string("SELECT coalesce(sum(count), 0) FROM ") + table);
    EXPECT_TRUE(sum.ok()) << sum.status().message();
    if (sum.ok()) {
      EXPECT_EQ(atoll(sum->rows[0][0]->c_str()), rows) << table;
    }
  }
  // Live counters are exact through all three (the increments are committed with the rows
  // and applied once, services/aggregation/live_counters.h): the Redis restart is a clean
  // SIGTERM, which flushes the append-only file. They are applied just after each COMMIT, a
  // killed consumer's last batch when it restarts, so wait a little.
  // The producer stays frozen until this is checked: new rows would move the target.
  auto live_total = [&] {
    int64_t live = 0;
    for (const char* cam : {"cam00", "cam01"}) {
      auto h = redis->Command({"HGETALL", std::string("live:camera:") + cam});
      if (!h.ok()) return int64_t{-1};
      for (size_t i = 0; i + 1 < h->elements.size(); i += 2) {
        if (h->elements[i].str != "last_ts") live += atoll(h->elements[i + 1].str.c_str());
      }
    }
    return live;
  };
  EXPECT_TRUE(WaitFor([&] { return live_total() == rows; }, 40))
      << "live " << live_total() << ", rows " << rows;
  kill(cap_pid, SIGCONT);

  // Down keeps the data; the next up finds it; down --purge removes it.
  auto down = RunShell(Fs() + " down --state-dir " + sd);
  ASSERT_EQ(down.exit_code, 0) << down.output;
  auto up2 =
      RunShell(Fs() + " up --cameras 2 --fps 10 --api-rate 0 --no-prometheus --state-dir " + sd);
  ASSERT_EQ(up2.exit_code, 0) << up2.output;
  auto pg3 = PgClient::Connect(PostgresUrl(sd), "test", 5, 10000);
  ASSERT_TRUE(pg3.ok()) << pg3.status().message();
  auto kept = (*pg3)->Exec("SELECT count(*) FROM detections");
  ASSERT_TRUE(kept.ok());
  EXPECT_GE(atoll(kept->rows[0][0]->c_str()), rows);
  pg3->reset();
  auto purge = RunShell(Fs() + " down --purge --state-dir " + sd);
  EXPECT_EQ(purge.exit_code, 0) << purge.output;
  EXPECT_FALSE(PathExists(sd + "/data/postgres"));
  EXPECT_TRUE(testing::PidsMatching(sd).empty());
}

TEST(StorageSystemTest, UnreachablePostgresUrlFailsUpCleanly) {
  TempDir tmp;
  std::string sd = tmp.path() + "/state";
  auto up = RunShell(Fs() +
                     " up --cameras 1 --postgres-url postgresql://u:pw@127.0.0.1:1/x "
                     "--state-dir " +
                     sd);
  EXPECT_EQ(up.exit_code, 1) << up.output;
  EXPECT_NE(up.output.find("--postgres-url"), std::string::npos) << up.output;
  EXPECT_EQ(up.output.find(":pw@"), std::string::npos) << "password printed: " << up.output;
  EXPECT_TRUE(testing::PidsMatching(sd).empty());
}

}  // namespace
}  // namespace fs
