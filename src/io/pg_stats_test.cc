// The pure half of `framescope db` on synthetic snapshots and plans whose truth is known.
#include "src/io/pg_stats.h"

#include <gtest/gtest.h>

#include "src/io/db_window.h"

namespace fs::io {
namespace {

StatementEntry Entry(int64_t queryid, int64_t calls, double total_ms, const std::string& q = "q") {
  StatementEntry e;
  e.key = {10, 5, queryid, true};
  e.counters = {calls, total_ms, calls, calls * 2, calls};
  e.query = q;
  return e;
}

PgssSnapshot Snap(double at, const std::string& reset, std::vector<StatementEntry> entries) {
  PgssSnapshot s;
  s.taken_unix_s = at;
  s.stats_reset = reset;
  s.stats_reset_unix_s = 100;
  s.entries = std::move(entries);
  return s;
}

const WindowedStatement* Find(const StatementWindow& w, int64_t queryid) {
  for (const auto& s : w.statements) {
    if (s.key.queryid == queryid) return &s;
  }
  return nullptr;
}

TEST(DiffSnapshots, DeltasOverTheWholeWindowAndOwnStatementsLeftOut) {
  auto w = DiffSnapshots(Snap(1000, "r0", {Entry(1, 10, 100), Entry(2, 5, 5)}),
                         Snap(1030, "r0",
                              {Entry(1, 30, 2100), Entry(2, 5, 5), Entry(3, 4, 40),
                               Entry(4, 9, 9, std::string("SELECT ") + kOwnMarker + " 1")}));
  EXPECT_FALSE(w.global_reset);
  EXPECT_EQ(w.entries_reset, 0);
  ASSERT_EQ(w.statements.size(), 2u);         // 2 did not run, 4 is ours
  EXPECT_EQ(w.statements[0].key.queryid, 1);  // by total time
  EXPECT_EQ(w.statements[0].delta.calls, 20);
  EXPECT_DOUBLE_EQ(w.statements[0].mean_ms, 100);
  EXPECT_EQ(w.statements[0].delta.shared_blks_hit, 40);
  EXPECT_FALSE(w.statements[0].from_end_values_only);
  const WindowedStatement* fresh = Find(w, 3);
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(fresh->delta.calls, 4);
  EXPECT_DOUBLE_EQ(fresh->mean_ms, 10);
  EXPECT_FALSE(fresh->from_end_values_only);
}

TEST(DiffSnapshots, AnEntryResetOnItsOwnCountsFromItsEndValues) {
  // 50 calls before the window; reset inside it; 3 calls of 200 ms after. A naive delta would
  // give -47 calls.
  auto w = DiffSnapshots(Snap(0, "r0", {Entry(1, 50, 50), Entry(2, 1, 1)}),
                         Snap(30, "r0", {Entry(1, 3, 600), Entry(2, 2, 3)}));
  EXPECT_EQ(w.entries_reset, 1);
  const WindowedStatement* s = Find(w, 1);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->delta.calls, 3);
  EXPECT_DOUBLE_EQ(s->mean_ms, 200);
  EXPECT_TRUE(s->from_end_values_only);
  EXPECT_NE(s->window_part.find("own reset"), std::string::npos);
  EXPECT_DOUBLE_EQ(Find(w, 2)->mean_ms, 2);  // untouched entry: a plain delta
  ASSERT_EQ(w.notes.size(), 1u);
}

TEST(DiffSnapshots, AGlobalResetMakesEveryEntryCountFromTheReset) {
  // Entry 1 grew past its start values after the reset: only stats_reset tells.
  PgssSnapshot end = Snap(130, "r1", {Entry(1, 60, 1200)});
  end.stats_reset_unix_s = 110;
  end.dealloc = 2;
  auto w = DiffSnapshots(Snap(100, "r0", {Entry(1, 50, 50)}), end);
  EXPECT_TRUE(w.global_reset);
  EXPECT_EQ(w.dealloc_delta, 2);
  ASSERT_EQ(w.statements.size(), 1u);
  EXPECT_EQ(w.statements[0].delta.calls, 60);
  EXPECT_DOUBLE_EQ(w.statements[0].mean_ms, 20);
  EXPECT_NE(w.statements[0].window_part.find("last 20.0 s"), std::string::npos);
  EXPECT_EQ(w.notes.size(), 2u);  // the reset, the evictions
}

TEST(DiffSnapshots, DeallocGrowthIsReported) {
  PgssSnapshot start = Snap(0, "r0", {Entry(1, 1, 1)});
  PgssSnapshot end = Snap(10, "r0", {Entry(1, 2, 2)});
  start.dealloc = 3;
  end.dealloc = 7;
  auto w = DiffSnapshots(start, end);
  EXPECT_EQ(w.dealloc_delta, 4);
  ASSERT_EQ(w.notes.size(), 1u);
  EXPECT_NE(w.notes[0].find("4 entries were evicted"), std::string::npos);
}

TEST(FilterIdentifiers, ColumnsOnly) {
  EXPECT_EQ(FilterIdentifiers("((big.grp = $1) AND (val > 5))"),
            (std::vector<std::string>{"grp", "val"}));
  EXPECT_EQ(FilterIdentifiers("((lower(name) = 'it''s grp'::text) OR (\"Odd Col\" IS NULL))"),
            (std::vector<std::string>{"name", "Odd Col"}));
  EXPECT_EQ(FilterIdentifiers("(t.a = ANY ('{1,2}'::integer[])) AND (t.a < 1e5)"),
            (std::vector<std::string>{"a"}));
}

TEST(ParsePlan, CostSeqScansAndRelations) {
  const char* plan = R"json([{"Plan": {"Node Type": "Aggregate", "Total Cost": 1234.5, "Plans": [
      {"Node Type": "Seq Scan", "Relation Name": "big", "Schema": "public", "Alias": "big",
       "Total Cost": 1200.0, "Filter": "((big.grp = $1) AND (big.pad <> ''::text))"},
      {"Node Type": "Index Scan", "Relation Name": "small", "Schema": "public"}]}}])json";
  auto s = ParsePlan(plan);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_DOUBLE_EQ(s->total_cost, 1234.5);
  ASSERT_EQ(s->seq_scans.size(), 1u);
  EXPECT_EQ(s->seq_scans[0].schema, "public");
  EXPECT_EQ(s->seq_scans[0].table, "big");
  EXPECT_EQ(s->seq_scans[0].identifiers, (std::vector<std::string>{"grp", "pad"}));
  EXPECT_EQ(s->relations, (std::vector<std::string>{"big", "small"}));
  EXPECT_FALSE(ParsePlan("not json").ok());
  EXPECT_FALSE(ParsePlan("[{\"Plan\": {}}]").ok());
  EXPECT_FALSE(ParsePlan("[]").ok());
}

TEST(ParsePlan, JoinAndSortKeysGoToTheScannedTables) {
  const char* plan = R"json([{"Plan": {"Node Type": "Sort", "Total Cost": 900,
      "Sort Key": ["o.created DESC", "(lower(c.name))"], "Plans": [
      {"Node Type": "Hash Join", "Hash Cond": "(o.customer_id = c.id)", "Plans": [
        {"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "shop", "Alias": "o"},
        {"Node Type": "Hash", "Plans": [
          {"Node Type": "Seq Scan", "Relation Name": "customers", "Schema": "shop",
           "Alias": "c", "Filter": "(c.region = $1)"}]}]}]}}])json";
  auto s = ParsePlan(plan);
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_EQ(s->seq_scans.size(), 2u);
  EXPECT_EQ(s->seq_scans[0].table, "orders");  // no filter, but join and sort keys
  EXPECT_EQ(s->seq_scans[0].identifiers, (std::vector<std::string>{"customer_id", "created"}));
  EXPECT_EQ(s->seq_scans[1].table, "customers");  // the filter's column first
  EXPECT_EQ(s->seq_scans[1].identifiers, (std::vector<std::string>{"region", "id", "name"}));
  // A scan with nothing to index is left out.
  auto bare = ParsePlan(R"json([{"Plan": {"Node Type": "Seq Scan", "Total Cost": 5,
      "Relation Name": "t", "Alias": "t"}}])json");
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(bare->seq_scans.empty());
}

TEST(SqlText, ParametersAndExplainable) {
  EXPECT_EQ(CountParameters("SELECT * FROM t WHERE a = $1 AND b = $12"), 12);
  EXPECT_EQ(CountParameters("SELECT '$5', \"$6\" /* $7 */ -- $8\n, $$ $9 $$, $x$ $10 $x$ FROM t"),
            0);
  EXPECT_EQ(CountParameters("SELECT 1"), 0);
  EXPECT_TRUE(Explainable("  /* c */ select 1"));
  EXPECT_TRUE(Explainable("(SELECT 1) UNION (SELECT 2)"));
  EXPECT_TRUE(Explainable("WITH x AS (SELECT 1) SELECT * FROM x"));
  EXPECT_FALSE(Explainable("BEGIN"));
  EXPECT_FALSE(Explainable("CREATE INDEX ON t (a)"));
  EXPECT_FALSE(Explainable("SET work_mem = $1"));
}

TEST(SqlText, TheBodyOfAStatementPreparedInSql) {
  std::string types = "stale";
  auto body = PreparedBody("PREPARE q(int) AS SELECT count(*) FROM t WHERE a = $1", &types);
  ASSERT_TRUE(body);
  EXPECT_EQ(*body, "SELECT count(*) FROM t WHERE a = $1");
  EXPECT_EQ(types, "(int)");
  body = PreparedBody(" /* c */ prepare \"My q\" ( numeric(10, 2), \"odd)\" ) as\n  select $1, $2",
                      &types);
  ASSERT_TRUE(body);
  EXPECT_EQ(*body, "select $1, $2");
  EXPECT_EQ(types, "( numeric(10, 2), \"odd)\" )");
  body = PreparedBody("PREPARE r AS SELECT $1::int + $2", &types);
  ASSERT_TRUE(body);
  EXPECT_EQ(*body, "SELECT $1::int + $2");
  EXPECT_EQ(types, "");
  for (const char* other :
       {"SELECT 1", "PREPARE", "PREPARE q", "PREPARE q (int AS SELECT 1", "PREPARE q(int) SELECT 1",
        "PREPARE q AS ", "EXECUTE q(1)", "PREPARE TRANSACTION 'x'"}) {
    EXPECT_FALSE(PreparedBody(other, &types)) << other;
  }
}

TEST(IndexSpecs, ParseNameAndQuote) {
  auto s = ParseIndexSpec(" public.Big( Grp ,val ) ");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->schema, "public");
  EXPECT_EQ(s->table, "big");
  EXPECT_EQ(s->columns, (std::vector<std::string>{"grp", "val"}));
  EXPECT_EQ(IndexName(*s), "fs_idx_big_grp_val");
  EXPECT_EQ(s->Describe(), "public.big (grp, val)");
  for (const char* bad : {"big", "big()", "big(a,b,c)", "big(a;drop)", "big(a,a)", "1t(a)", ""}) {
    EXPECT_FALSE(ParseIndexSpec(bad).ok()) << bad;
  }
  IndexSpec longname{"", std::string(60, 't'), {"alpha_x"}};
  IndexSpec other{"", std::string(60, 't'), {"alpha_y"}};
  EXPECT_EQ(IndexName(longname).size(), 63u);
  EXPECT_NE(IndexName(longname), IndexName(other));
  EXPECT_EQ(IndexName(longname).substr(0, 20), "fs_idx_ttttttttttttt");
  // 'ä' is two bytes: the cut never splits one.
  std::string umlauts;
  for (int i = 0; i < 40; ++i) umlauts += "\xc3\xa4";
  const std::string cut = IndexName(IndexSpec{"", umlauts, {"a"}});
  EXPECT_LE(cut.size(), 63u);
  const std::string head = cut.substr(0, cut.size() - 9);  // before "_<8 hex>"
  EXPECT_EQ((head.size() - 7) % 2, 0u) << head;
  EXPECT_EQ(cut[cut.size() - 9], '_');
  EXPECT_EQ(QuoteIdent("a\"b"), "\"a\"\"b\"");
}

TEST(DbChecklist, TheWorstMeanAgainst100Ms) {
  DbAnalysis a;
  a.window_measured = true;
  a.window_s = 30;
  EXPECT_EQ(DbChecklist(a).Get("verdict").AsString(), "not measurable");  // nothing ran
  WindowedStatement fast, slow;
  fast.query = "SELECT 1";
  fast.delta.calls = 1000;
  fast.mean_ms = 0.5;
  slow.query = "SELECT slow";
  slow.delta.calls = 7;
  slow.mean_ms = 100.5;
  a.window.statements = {fast, slow};
  Json c = DbChecklist(a);
  EXPECT_EQ(c.Get("verdict").AsString(), "not met");
  EXPECT_NE(c.Get("reason").AsString().find("100.50 ms over 7 calls"), std::string::npos)
      << c.Get("reason").AsString();
  EXPECT_NE(c.Get("reason").AsString().find("1 of 2 statements"), std::string::npos);
  a.window.statements[1].mean_ms = 100;
  EXPECT_EQ(DbChecklist(a).Get("verdict").AsString(), "met");
  a.pgss_missing = "pg_stat_statements is not installed";
  EXPECT_EQ(DbChecklist(a).Get("verdict").AsString(), "not measurable");
}

}  // namespace
}  // namespace fs::io
