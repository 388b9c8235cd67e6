// PgClient against a real, private PostgreSQL (tests/testing/postgres_fixture.h).
#include "src/clients/pg_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "src/base/net.h"
#include "src/clients/metrics.h"
#include "tests/testing/postgres_fixture.h"

namespace fs {
namespace {

TEST(PgCopyEscapeTest, EscapesTheFourSpecialCharacters) {
  EXPECT_EQ(PgCopyEscape("plain"), "plain");
  EXPECT_EQ(PgCopyEscape("a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
  EXPECT_EQ(PgCopyRow({std::string("x\ty"), std::nullopt, std::string("")}), "x\\ty\t\\N\t");
}

TEST(PgSplitPasswordTest, AnUnparsableUrlIsNotEchoed) {
  std::string without, password;
  Status st = PgSplitPassword("postgresql://u:sec%zzret@h/db", &without, &password);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().find("zzret"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("percent"), std::string::npos) << st.message();
}

TEST(PgSplitPasswordTest, TakesThePasswordOutOfUrlsAndKeywords) {
  std::string without, password;
  ASSERT_TRUE(
      PgSplitPassword("postgresql://u:s%40cret@127.0.0.1:5433/db", &without, &password).ok());
  EXPECT_EQ(password, "s@cret");
  EXPECT_EQ(without.find("cret"), std::string::npos) << without;
  EXPECT_NE(without.find("port='5433'"), std::string::npos) << without;
  EXPECT_NE(without.find("dbname='db'"), std::string::npos) << without;
  ASSERT_TRUE(PgSplitPassword("host=h user='o\\'neil' password=x", &without, &password).ok());
  EXPECT_EQ(password, "x");
  EXPECT_NE(without.find("user='o\\'neil'"), std::string::npos) << without;
  EXPECT_FALSE(PgSplitPassword("host='unterminated", &without, &password).ok());
}

class PgClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pg_ = new testing::PostgresFixture();
    if (!pg_->Start()) skip_ = pg_->skip_reason();
  }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    auto c = PgClient::Connect(pg_->url(), "pg_client_test", 5, 5000);
    ASSERT_TRUE(c.ok()) << c.status().message();
    db_ = std::move(*c);
  }

  static testing::PostgresFixture* pg_;
  static std::string skip_;
  std::unique_ptr<PgClient> db_;
};
testing::PostgresFixture* PgClientTest::pg_ = nullptr;
std::string PgClientTest::skip_;

TEST_F(PgClientTest, ClusterHasTheSettingsTheProfilerNeeds) {
  auto r = db_->Exec(
      "SELECT current_setting('track_io_timing'), "
      "current_setting('shared_preload_libraries'), "
      "(SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements')");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(*r->rows[0][0], "on");
  EXPECT_EQ(*r->rows[0][1], "pg_stat_statements");
  EXPECT_EQ(*r->rows[0][2], "1");
  auto stmts = db_->Exec("SELECT count(*) FROM pg_stat_statements");
  EXPECT_TRUE(stmts.ok()) << stmts.status().message();
}

TEST_F(PgClientTest, ParametersAreDataNeverSql) {
  ASSERT_TRUE(db_->Exec("CREATE TABLE IF NOT EXISTS t_params (v text)").ok());
  const std::string evil = "x'); DROP TABLE t_params; --";
  auto ins = db_->ExecParams("INSERT INTO t_params VALUES ($1)", {evil});
  ASSERT_TRUE(ins.ok()) << ins.status().message();
  EXPECT_EQ(ins->affected, 1);
  ASSERT_TRUE(db_->Prepare("get_v", "SELECT v FROM t_params WHERE v = $1").ok());
  auto got = db_->ExecPrepared("get_v", {evil});
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->rows.size(), 1u);
  EXPECT_EQ(*got->rows[0][0], evil);
  // NULL parameters and results round-trip as nullopt.
  auto null = db_->ExecParams("SELECT $1::text IS NULL, NULL::text", {std::nullopt});
  ASSERT_TRUE(null.ok());
  EXPECT_EQ(*null->rows[0][0], "t");
  EXPECT_FALSE(null->rows[0][1].has_value());
}

TEST_F(PgClientTest, CopyInRoundTripsSpecialCharacters) {
  ASSERT_TRUE(db_->Exec("CREATE TABLE t_copy (id int, v text)").ok());
  std::vector<std::string> rows;
  const std::string tricky = "tab\there\nnewline \\backslash\r";
  for (int i = 0; i < 1000; ++i) {
    rows.push_back(PgCopyRow({std::to_string(i), i == 7 ? std::nullopt : std::optional(tricky)}));
  }
  auto n = db_->CopyIn("t_copy (id, v)", rows);
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_EQ(*n, 1000);
  auto r = db_->Exec(
      "SELECT count(*) FILTER (WHERE v = E'tab\\there\\nnewline \\\\backslash\\r'), "
      "count(*) FILTER (WHERE v IS NULL) FROM t_copy");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r->rows[0][0], "999");
  EXPECT_EQ(*r->rows[0][1], "1");
  // A bad row fails the whole COPY with the server's message; the connection stays usable.
  auto bad = db_->CopyIn("t_copy (id, v)", {"notanint\tx"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("invalid input syntax"), std::string::npos)
      << bad.status().message();
  EXPECT_TRUE(db_->healthy());
  EXPECT_TRUE(db_->Exec("SELECT 1").ok());
}

TEST_F(PgClientTest, StatementTimeoutBoundsASlowQuery) {
  auto c = PgClient::Connect(pg_->url(), "pg_client_test", 5, 300);
  ASSERT_TRUE(c.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto r = (*c)->Exec("SELECT pg_sleep(5)");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ((*c)->last_sqlstate(), "57014") << r.status().message();
  EXPECT_LT(s, 3.0);
  EXPECT_TRUE((*c)->Exec("SELECT 1").ok());
}

// A server that does not answer (here: a backend sleeping with no statement_timeout, which from
// the client looks like a stopped server) ends the call at the client's deadline, or on a stop
// request once the call has waited a second; quick statements after a stop still run.
TEST_F(PgClientTest, ClientDeadlineAndStopEndAWaitTheServerWouldNot) {
  auto c = PgClient::Connect(pg_->url(), "pg_client_test", 5, 0);
  ASSERT_TRUE(c.ok());
  (*c)->SetClientDeadline(400);
  auto last = (*c)->Exec("SELECT 1; SELECT 2");
  ASSERT_TRUE(last.ok()) << last.status().message();
  EXPECT_EQ(last->rows[0][0].value_or(""), "2");  // the last result, as PQexec gives
  auto param = (*c)->ExecParams("SELECT $1::int + 1", {std::string("41")});
  ASSERT_TRUE(param.ok()) << param.status().message();
  EXPECT_EQ(param->rows[0][0].value_or(""), "42");
  auto t0 = std::chrono::steady_clock::now();
  auto r = (*c)->ExecParams("SELECT pg_sleep($1::float8)", {std::string("5")});
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no answer within 400 ms"), std::string::npos)
      << r.status().message();
  EXPECT_LT(s, 2.0);
  EXPECT_FALSE((*c)->healthy());
  EXPECT_FALSE((*c)->Exec("SELECT 1").ok());  // at once, not another wait on the same server

  std::atomic<bool> stop{true};
  auto d = PgClient::Connect(pg_->url(), "pg_client_test", 5, 0);
  ASSERT_TRUE(d.ok());
  (*d)->SetClientDeadline(0, &stop);
  EXPECT_TRUE((*d)->Exec("SELECT 1").ok());  // clean-up after Ctrl-C still runs
  t0 = std::chrono::steady_clock::now();
  r = (*d)->Exec("SELECT pg_sleep(5)");
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("interrupted"), std::string::npos) << r.status().message();
  EXPECT_GT(s, 0.9);
  EXPECT_LT(s, 3.0);
}

TEST_F(PgClientTest, MigrationsApplyOnceAndRecordTheirVersion) {
  std::vector<Migration> m = {{1, "one", "CREATE TABLE mig_a (x int)"},
                              {2, "two", "CREATE TABLE mig_b (x int)"}};
  ASSERT_TRUE(ApplyMigrations(db_.get(), m).ok());
  ASSERT_TRUE(ApplyMigrations(db_.get(), m).ok());  // second run: nothing to do, no error
  m.push_back({3, "broken", "CREATE TABLE mig_c (x nosuchtype)"});
  Status st = ApplyMigrations(db_.get(), m);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("broken"), std::string::npos) << st.message();
  auto v = db_->Exec("SELECT max(version) FROM schema_migrations");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v->rows[0][0], "2");  // the failed migration left nothing behind
}

TEST_F(PgClientTest, RecordsClientSideLatencyPerOperation) {
  ASSERT_TRUE(db_->Exec("SELECT 1", "probe_op").ok());
  std::string text = Metrics().RenderText();
  bool found = false;
  size_t pos = 0;
  while ((pos = text.find("framescope_client_request_duration_seconds_count{", pos)) !=
         std::string::npos) {
    std::string line = text.substr(pos, text.find('\n', pos) - pos);
    pos += line.size();
    found |= line.find("source=\"pg_client_test\"") != std::string::npos &&
             line.find("target=\"postgres\"") != std::string::npos &&
             line.find("op=\"probe_op\"") != std::string::npos && line.back() != '0';
  }
  EXPECT_TRUE(found) << text;
}

TEST(PgClientConnectTest, UnreachableServerFailsFastWithWhere) {
  auto port = PickFreePort();
  ASSERT_TRUE(port.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto c = PgClient::Connect("postgresql://u:secret@127.0.0.1:" + std::to_string(*port) + "/db",
                             "pg_client_test", 2);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(std::to_string(*port)), std::string::npos)
      << c.status().message();
  EXPECT_EQ(c.status().message().find("secret"), std::string::npos) << "password leaked";
  EXPECT_LT(s, 3.0);
}

TEST(PgClientConnectTest, ServerRestartMakesTheClientUnhealthyThenReconnectWorks) {
  testing::PostgresFixture pg;
  if (!pg.Start()) GTEST_SKIP() << pg.skip_reason();
  auto c = PgClient::Connect(pg.url(), "pg_client_test", 5, 5000);
  ASSERT_TRUE(c.ok());
  pg.Stop();
  EXPECT_FALSE((*c)->Exec("SELECT 1").ok());
  EXPECT_FALSE((*c)->healthy());
  ASSERT_TRUE(pg.Restart().ok());
  auto again = PgClient::Connect(pg.url(), "pg_client_test", 5, 5000);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE((*again)->Exec("SELECT 1").ok());
}

}  // namespace
}  // namespace fs
