// DbWindow against a real private PostgreSQL 15 with pg_stat_statements and HypoPG: a planted
// slow statement found, indexed with HypoPG's advice, the index built, verified faster and kept;
// a useless index dropped again; the windowed mean right across pg_stat_statements_reset();
// a server without the extensions still analysed; an unreachable server.
#include "src/io/db_window.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "src/clients/pg_client.h"
#include "tests/testing/postgres_fixture.h"

namespace fs::io {
namespace {

// 300k rows, 5000 groups of 60: `grp = $1` scans them all without an index on grp.
constexpr const char* kSetup =
    "CREATE TABLE big (id bigserial PRIMARY KEY, grp int NOT NULL, val int NOT NULL, pad text);"
    "INSERT INTO big (grp, val, pad) SELECT i % 5000, i % 7, md5(i::text) FROM "
    "generate_series(1, 300000) i;"
    "CREATE INDEX big_val_unused ON big (val);"
    "ANALYZE big;";
constexpr const char* kPlanted = "SELECT count(*), sum(val) FROM big WHERE grp = $1";

class DbWindowTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pg_ = new testing::PostgresFixture();
    if (!pg_->Start()) return;
    auto c = PgClient::Connect(pg_->url(), "test");
    ASSERT_TRUE(c.ok()) << c.status().message();
    client_ = c->release();
    auto st = client_->Exec(kSetup);
    ASSERT_TRUE(st.ok()) << st.status().message();
    ASSERT_TRUE(client_->Exec("VACUUM big").ok());  // hint bits set: every scan costs the same
  }
  static void TearDownTestSuite() {
    delete client_;
    client_ = nullptr;
    delete pg_;
    pg_ = nullptr;
  }
  void SetUp() override {
    if (!client_) GTEST_SKIP() << pg_->skip_reason();
  }

  // Runs the planted statement in a loop on its own connection until destroyed.
  class Load {
   public:
    explicit Load(const std::string& url, std::string sql = kPlanted) {
      thread_ = std::thread([this, url, sql] {
        auto c = PgClient::Connect(url, "load");
        if (!c.ok()) return;
        for (int i = 0; !stop_.load(); ++i) {
          (void)(*c)->ExecParams(sql, {std::to_string(i * 7919 % 5000)});
        }
      });
    }
    ~Load() {
      stop_ = true;
      thread_.join();
    }

   private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
  };

  static DbAnalysis Window(DbOptions o, double seconds, const char* also_run = nullptr) {
    DbWindow w(pg_->url(), "test cluster", o);
    w.Begin();
    if (also_run) {
      EXPECT_TRUE(client_->Exec(also_run).ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000)));
    w.End();
    return w.Analyse();
  }

  static const WindowedStatement* Planted(const DbAnalysis& a) {
    for (const auto& s : a.window.statements) {
      if (s.query == kPlanted) return &s;
    }
    return nullptr;
  }

  static int64_t Count(const std::string& sql) {
    auto r = client_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() && !r->rows.empty() ? std::stoll(r->rows[0][0].value_or("0")) : -1;
  }

  static testing::PostgresFixture* pg_;
  static PgClient* client_;
};

testing::PostgresFixture* DbWindowTest::pg_ = nullptr;
PgClient* DbWindowTest::client_ = nullptr;

// --apply and --try-index on the same planted statement: tests/integration/db_test.cc.
TEST_F(DbWindowTest, PlantedSlowStatementIsFoundAndAdvised) {
  DbOptions o;
  o.slow_ms = 2;  // a 300k-row scan takes well over 2 ms here; the indexed lookup far under
  DbAnalysis a;
  {
    Load load(pg_->url());
    a = Window(o, 1.5);
  }
  ASSERT_TRUE(a.unreachable.empty()) << a.unreachable;
  ASSERT_TRUE(a.pgss_missing.empty()) << a.pgss_missing;
  ASSERT_TRUE(a.hypopg_missing.empty()) << a.hypopg_missing;
  const WindowedStatement* planted = Planted(a);
  ASSERT_NE(planted, nullptr) << DbAnalysisToJson(a).Dump(2);
  EXPECT_GT(planted->delta.calls, 3);
  EXPECT_GT(planted->mean_ms, o.slow_ms);
  for (const auto& s : a.window.statements) {
    EXPECT_EQ(s.query.find(kOwnMarker), std::string::npos) << s.query;
  }
  ASSERT_FALSE(a.slow.empty());
  const SlowStatement& slow = a.slow[0];
  EXPECT_EQ(slow.stmt.query, kPlanted);
  EXPECT_EQ(slow.parameters, 1);
  EXPECT_TRUE(slow.plan_error.empty()) << slow.plan_error;
  ASSERT_TRUE(slow.suggestion) << slow.advice_note;
  EXPECT_EQ(slow.suggestion->table, "big");
  EXPECT_EQ(slow.suggestion->columns, std::vector<std::string>{"grp"});
  EXPECT_LE(*slow.suggestion_cost, *slow.plan_cost * 0.5);
  ASSERT_EQ(slow.candidates.size(), 1u);  // the filter names grp only
  EXPECT_TRUE(slow.candidates[0].cost) << slow.candidates[0].error;
  // Nothing was built: hypothetical indexes only.
  EXPECT_TRUE(a.trials.empty());
  EXPECT_EQ(Count("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'fs_idx%'"), 0);
  // Seq scans and unused indexes: big was scanned; its unused index listed, its pkey not.
  ASSERT_FALSE(a.seq_scan_tables.empty());
  EXPECT_EQ(a.seq_scan_tables[0].table, "big");
  EXPECT_GE(a.seq_scan_tables[0].seq_tup_read, 300000);
  bool unused = false;
  for (const auto& u : a.unused_indexes) {
    unused |= u.index == "big_val_unused";
    EXPECT_NE(u.index, "big_pkey");
  }
  EXPECT_TRUE(unused);
}

// pg_stat_statements keeps `PREPARE name(types) AS body` for a statement prepared in SQL: the
// body is planned and advised like any other.
TEST_F(DbWindowTest, AStatementPreparedInSqlIsPlannedAndAdvised) {
  DbOptions o;
  o.slow_ms = 2;
  DbWindow w(pg_->url(), "test cluster", o);
  w.Begin();
  ASSERT_TRUE(client_->Exec("PREPARE scan(int) AS SELECT sum(val) FROM big WHERE grp = $1").ok());
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(client_->Exec("EXECUTE scan(" + std::to_string(i) + ")").ok());
  ASSERT_TRUE(client_->Exec("DEALLOCATE scan").ok());
  w.End();
  DbAnalysis a = w.Analyse();
  const SlowStatement* prepared = nullptr;
  for (const SlowStatement& s : a.slow) {
    if (s.stmt.query.rfind("PREPARE scan(int) AS ", 0) == 0) prepared = &s;
  }
  ASSERT_NE(prepared, nullptr) << DbAnalysisToJson(a).Dump(2);
  EXPECT_EQ(prepared->stmt.delta.calls, 4);
  EXPECT_TRUE(prepared->plan_error.empty()) << prepared->plan_error;
  ASSERT_TRUE(prepared->suggestion) << prepared->advice_note;
  EXPECT_EQ(prepared->suggestion->columns, std::vector<std::string>{"grp"});
}

TEST_F(DbWindowTest, WindowedMeanIsRightAcrossAResetInTheWindow) {
  const std::string sleep = "SELECT pg_sleep($1::float8)";
  auto run = [&](int n, const char* seconds) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(client_->ExecParams(sleep, {seconds}).ok());
  };
  for (bool global : {true, false}) {
    run(10, "0.001");
    DbWindow w(pg_->url(), "test cluster", DbOptions{});
    w.Begin();
    run(3, "0.05");
    if (global) {
      ASSERT_TRUE(client_->Exec("SELECT pg_stat_statements_reset()").ok());
    } else {
      ASSERT_TRUE(client_
                      ->Exec("SELECT pg_stat_statements_reset(0, 0, queryid) FROM "
                             "pg_stat_statements WHERE query = 'SELECT pg_sleep($1::float8)'")
                      .ok());
    }
    run(5, "0.01");
    w.End();
    DbAnalysis a = w.Analyse();
    const WindowedStatement* s = nullptr;
    for (const auto& x : a.window.statements) {
      if (x.query == sleep) s = &x;
    }
    ASSERT_NE(s, nullptr) << DbAnalysisToJson(a).Dump(2);
    // Only the 5 calls of 10 ms after the reset: not 5 - 13 calls, not a mix with the 50 ms.
    EXPECT_EQ(s->delta.calls, 5) << global;
    EXPECT_GE(s->mean_ms, 10);
    EXPECT_LT(s->mean_ms, 20);
    EXPECT_TRUE(s->from_end_values_only);
    EXPECT_EQ(a.window.global_reset, global);
    EXPECT_EQ(a.window.entries_reset, global ? 0 : 1);
    EXPECT_FALSE(a.window.notes.empty());
  }
}

TEST_F(DbWindowTest, MissingExtensionsAreExplainedAndTheRestStillRuns) {
  ASSERT_TRUE(client_->Exec("DROP EXTENSION hypopg").ok());
  DbOptions o;
  o.slow_ms = 2;
  o.explain_analyze = true;
  DbAnalysis a;
  {
    Load load(pg_->url());
    // A statement without constants, so without $n: the one EXPLAIN ANALYZE may run.
    a = Window(o, 1.0, "SELECT count(*) FROM big");
  }
  EXPECT_NE(a.hypopg_missing.find("CREATE EXTENSION hypopg"), std::string::npos);
  ASSERT_GE(a.slow.size(), 2u) << DbAnalysisToJson(a).Dump(2);
  for (const SlowStatement& s : a.slow) {
    EXPECT_FALSE(s.plan_json.empty()) << s.stmt.query;  // planned, just not advised
    if (s.stmt.query == kPlanted) {
      EXPECT_EQ(s.advice_note, a.hypopg_missing);
      EXPECT_NE(s.analyze_note.find("1 parameter"), std::string::npos) << s.analyze_note;
    } else if (s.stmt.query == "SELECT count(*) FROM big") {
      EXPECT_NE(s.analyze_json.find("Actual Total Time"), std::string::npos) << s.analyze_note;
    }
  }
  ASSERT_TRUE(client_->Exec("DROP EXTENSION pg_stat_statements").ok());
  a = Window(o, 0.2);
  // The server preloads the library: only CREATE EXTENSION is missing, no restart.
  EXPECT_NE(a.pgss_missing.find("CREATE EXTENSION pg_stat_statements"), std::string::npos);
  EXPECT_NE(a.pgss_missing.find("no restart needed"), std::string::npos) << a.pgss_missing;
  EXPECT_FALSE(a.window_measured);
  EXPECT_FALSE(a.unused_indexes.empty());  // the other parts still run
  EXPECT_EQ(DbChecklist(a).Get("verdict").AsString(), "not measurable");
  ASSERT_TRUE(client_->Exec("CREATE EXTENSION pg_stat_statements; CREATE EXTENSION hypopg").ok());
}

TEST_F(DbWindowTest, AStatementWhoseExplainFailsGetsTheErrorAndTheRestGoesOn) {
  ASSERT_TRUE(client_->Exec("CREATE TABLE gone (x int); INSERT INTO gone VALUES (42)").ok());
  DbOptions o;
  o.slow_ms = 0;  // every statement is "slow": each is planned
  DbWindow w(pg_->url(), "test cluster", o);
  w.Begin();
  // The most total time: planned first, so the statements after it show that it did not
  // leave the connection in an aborted transaction.
  ASSERT_TRUE(client_->Exec("SELECT x, pg_sleep(0.05) FROM gone WHERE x = 42").ok());
  ASSERT_TRUE(client_->Exec("SELECT count(*) FROM big WHERE id < 10").ok());
  w.End();
  ASSERT_TRUE(client_->Exec("DROP TABLE gone").ok());  // its plan can no longer be made
  DbAnalysis a = w.Analyse();
  int failed = 0, planned = 0;
  for (const SlowStatement& s : a.slow) {
    if (s.stmt.query == "SELECT x, pg_sleep($1) FROM gone WHERE x = $2") {
      ++failed;
      EXPECT_NE(s.plan_error.find("\"gone\" does not exist"), std::string::npos) << s.plan_error;
    } else if (s.stmt.query == "SELECT count(*) FROM big WHERE id < $1") {
      ++planned;
      EXPECT_TRUE(s.plan_error.empty()) << s.plan_error;
      EXPECT_TRUE(s.plan_cost);
    }
  }
  EXPECT_EQ(failed, 1) << DbAnalysisToJson(a).Dump(2);
  EXPECT_EQ(planned, 1);
}

TEST_F(DbWindowTest, AFailedBuildLeavesNoIndexBehind) {
  // A transaction that wrote to `big` and stays open: CREATE INDEX CONCURRENTLY registers the
  // index, then waits for it and runs into lock_timeout, leaving an invalid index.
  std::atomic<bool> locked{false};
  std::thread blocker([&] {
    auto c = PgClient::Connect(pg_->url(), "blocker");
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Exec("BEGIN; UPDATE big SET val = val WHERE id = 1").ok());
    locked = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    (void)(*c)->Exec("ROLLBACK");
  });
  while (!locked.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  DbOptions o;
  o.lock_timeout_ms = 300;
  o.try_indexes = {*ParseIndexSpec("big(val, grp)")};
  DbWindow w(pg_->url(), "test cluster", o);
  w.Begin();
  ASSERT_TRUE(client_->ExecParams(kPlanted, {"1"}).ok());
  w.End();
  DbAnalysis a = w.Analyse();
  blocker.join();
  ASSERT_EQ(a.trials.size(), 1u);
  EXPECT_EQ(a.trials[0].verdict, "not created");
  EXPECT_NE(a.trials[0].reason.find("lock timeout"), std::string::npos) << a.trials[0].reason;
  EXPECT_NE(a.trials[0].reason.find("nothing was left behind"), std::string::npos)
      << a.trials[0].reason;
  EXPECT_EQ(Count("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'fs_idx%'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), 0);
}

// The user's index is measured against the statement it can help (one naming its leading
// column), not the one that spent the most time on its table.
TEST_F(DbWindowTest, TryIndexIsMeasuredOnTheStatementNamingItsColumn) {
  const std::string by_pad = "SELECT count(*) FROM big WHERE pad = $1";
  DbOptions o;
  o.try_indexes = {*ParseIndexSpec("big(pad)")};
  DbWindow w(pg_->url(), "test cluster", o);
  DbAnalysis a;
  {
    Load grp1(pg_->url()), grp2(pg_->url()), pad(pg_->url(), by_pad);
    w.Begin();
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    w.End();
    a = w.Analyse();
  }
  ASSERT_EQ(a.trials.size(), 1u);
  const IndexTrial& t = a.trials[0];
  EXPECT_EQ(t.target_query, by_pad);
  EXPECT_EQ(t.verdict, "kept") << t.reason;
  ASSERT_TRUE(client_->Exec("DROP INDEX fs_idx_big_pad").ok());
}

TEST_F(DbWindowTest, IndexesLeftBehindAreReportedAndOnlyOursDroppedByApply) {
  // Two failed CONCURRENTLY builds (unique over duplicates) leave invalid indexes: ours by name
  // and a user's. A trial whose framescope died (its backend gone), one still running (this
  // connection's backend) and one kept, each as the trial's comment says.
  ASSERT_FALSE(client_->Exec("CREATE UNIQUE INDEX CONCURRENTLY fs_idx_big_val ON big (val)").ok());
  ASSERT_FALSE(client_->Exec("CREATE UNIQUE INDEX CONCURRENTLY users_half ON big (val)").ok());
  ASSERT_TRUE(client_
                  ->Exec("CREATE INDEX fs_idx_big_id_val ON big (id, val); COMMENT ON INDEX "
                         "fs_idx_big_id_val IS 'framescope --apply: on trial by backend "
                         "2147483646 since 2026-01-01T00:00:00Z';"
                         "CREATE INDEX fs_idx_big_val_id ON big (val, id); DO $$ BEGIN EXECUTE "
                         "format('COMMENT ON INDEX fs_idx_big_val_id IS %L', 'framescope "
                         "--apply: on trial by backend ' || pg_backend_pid()); END $$;"
                         "CREATE INDEX fs_idx_big_id_grp ON big (id, grp); COMMENT ON INDEX "
                         "fs_idx_big_id_grp IS 'framescope --apply: kept at 2026-01-01T00:00:00Z'")
                  .ok());
  auto names = [](const DbAnalysis& a) {
    std::string out;
    for (const LeftoverIndex& l : a.leftover_indexes)
      out += l.index + (l.valid ? "(valid" : "(invalid") + (l.ours ? ",ours) " : ") ");
    return out;
  };
  const std::string expected =
      "fs_idx_big_id_val(valid,ours) fs_idx_big_val(invalid,ours) "
      "users_half(invalid) ";
  const char* all = "SELECT count(*) FROM pg_indexes WHERE tablename = 'big'";
  const int64_t before = Count(all);
  DbOptions o;
  o.slow_ms = 1e9;
  DbAnalysis a = Window(o, 0.1);
  EXPECT_EQ(names(a), expected) << DbAnalysisToJson(a).Dump(2);
  EXPECT_EQ(Count(all), before);  // read-only without --apply
  ASSERT_EQ(a.leftover_indexes.size(), 3u);
  EXPECT_NE(a.leftover_indexes[0].action.find("DROP INDEX CONCURRENTLY \"public\".\"fs_idx"),
            std::string::npos)
      << a.leftover_indexes[0].action;
  o.apply = true;
  a = Window(o, 0.1);
  EXPECT_EQ(names(a), expected);
  ASSERT_EQ(a.leftover_indexes.size(), 3u);
  EXPECT_EQ(a.leftover_indexes[0].action, "dropped");
  EXPECT_EQ(a.leftover_indexes[1].action, "dropped");
  EXPECT_NE(a.leftover_indexes[2].action.find("not ours"), std::string::npos);
  EXPECT_EQ(Count(all), before - 2);
  EXPECT_EQ(Count("SELECT count(*) FROM pg_indexes WHERE indexname IN ('users_half', "
                  "'fs_idx_big_val_id', 'fs_idx_big_id_grp')"),
            3);
  ASSERT_TRUE(client_->Exec("DROP INDEX users_half, fs_idx_big_val_id, fs_idx_big_id_grp").ok());
}

// Invalid indexes that are not leftovers: one another session is building (CONCURRENTLY, held
// up by an open writer) and a partitioned index made ON ONLY. Neither may be dropped; seen by a
// role without pg_read_all_stats, the build's index is listed as possibly in progress.
TEST_F(DbWindowTest, IndexesBeingBuiltOrPartitionedAreNotLeftovers) {
  ASSERT_TRUE(client_
                  ->Exec("CREATE TABLE parted (a int) PARTITION BY RANGE (a); CREATE TABLE "
                         "parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10); CREATE INDEX "
                         "fs_idx_parted_a ON ONLY parted (a); CREATE ROLE plain LOGIN PASSWORD "
                         "'plain'")
                  .ok());
  std::atomic<bool> locked{false}, built{false};
  std::thread writer([&] {
    auto c = PgClient::Connect(pg_->url(), "writer");
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Exec("BEGIN; UPDATE big SET val = val WHERE id = 1").ok());
    locked = true;
    while (!built.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    (void)(*c)->Exec("ROLLBACK");
  });
  while (!locked.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::thread builder([&] {
    auto c = PgClient::Connect(pg_->url(), "builder");
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE((*c)->Exec("CREATE INDEX CONCURRENTLY fs_idx_big_id_val ON big (id, val)").ok());
  });
  while (Count("SELECT count(*) FROM pg_stat_progress_create_index") == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  DbOptions o;
  o.slow_ms = 1e9;
  o.apply = true;
  DbWindow w(pg_->url(), "test cluster", o);
  w.Begin();
  w.End();
  DbAnalysis a = w.Analyse();
  EXPECT_TRUE(a.leftover_indexes.empty()) << DbAnalysisToJson(a).Get("leftover_indexes").Dump(2);
  const std::string& url = pg_->url();
  DbWindow plain("postgresql://plain:plain@" + url.substr(url.find('@') + 1), "plain", o);
  plain.Begin();
  plain.End();
  a = plain.Analyse();
  ASSERT_EQ(a.leftover_indexes.size(), 1u) << DbAnalysisToJson(a).Dump(2);
  EXPECT_EQ(a.leftover_indexes[0].index, "fs_idx_big_id_val");
  EXPECT_TRUE(a.leftover_indexes[0].may_be_building);
  EXPECT_NE(a.leftover_indexes[0].action.find("left alone"), std::string::npos);
  built = true;
  writer.join();
  builder.join();
  EXPECT_EQ(Count("SELECT count(*) FROM pg_index WHERE indexrelid = "
                  "'fs_idx_big_id_val'::regclass AND indisvalid"),
            1);
  ASSERT_TRUE(
      client_->Exec("DROP INDEX fs_idx_big_id_val; DROP TABLE parted; DROP ROLE plain").ok());
}

TEST(DbWindowUnreachable, ClosedPortIsNotFatal) {
  DbWindow w("postgresql://u:p@127.0.0.1:1/x", "nowhere", DbOptions{});
  w.Begin();
  w.End();
  EXPECT_FALSE(w.reachable());
  DbAnalysis a = w.Analyse();
  EXPECT_NE(a.unreachable.find("127.0.0.1:1"), std::string::npos) << a.unreachable;
  Json j = DbAnalysisToJson(a);
  EXPECT_FALSE(j.Get("reachable").AsBool());
  EXPECT_EQ(j.Get("checklist").Get("verdict").AsString(), "not measurable");
  EXPECT_EQ(j.Dump().find(":p@"), std::string::npos);  // no password in the output
}

}  // namespace
}  // namespace fs::io
