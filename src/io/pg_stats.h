// The pure half of `framescope db`: pg_stat_statements snapshots turned into one window's
// per-statement numbers (with resets and evictions detected), EXPLAIN (FORMAT JSON) plans read
// for their cost and the columns their sequential scans filter on, and the small text helpers
// (parameter count, index names, --try-index). No server here: db_window.cc does the I/O, so
// these run against synthetic data whose truth is known.
#ifndef FRAMESCOPE_IO_PG_STATS_H_
#define FRAMESCOPE_IO_PG_STATS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"

namespace fs::io {

// Our own SQL carries this comment, so the window leaves framescope's statements out.
inline constexpr const char* kOwnMarker = "/* framescope */";

// pg_stat_statements' key: one entry per (userid, dbid, queryid, toplevel).
struct StatementKey {
  int64_t userid = 0;
  int64_t dbid = 0;
  int64_t queryid = 0;
  bool toplevel = true;
  auto Tie() const { return std::tie(userid, dbid, queryid, toplevel); }
  bool operator<(const StatementKey& o) const { return Tie() < o.Tie(); }
  bool operator==(const StatementKey& o) const { return Tie() == o.Tie(); }
};

// The cumulative counters of one entry (pg_stat_statements columns of the same names).
struct StatementCounters {
  int64_t calls = 0;
  double total_exec_ms = 0;  // total_exec_time
  int64_t rows = 0;
  int64_t shared_blks_hit = 0;
  int64_t shared_blks_read = 0;
};

struct StatementEntry {
  StatementKey key;
  StatementCounters counters;
  std::string query;     // normalised text ($1, $2, ... for constants)
  std::string database;  // pg_database.datname of dbid ("" if gone)
  std::string user;      // pg_roles.rolname of userid
};

// One read of pg_stat_statements and pg_stat_statements_info.
struct PgssSnapshot {
  double taken_unix_s = 0;  // the server's clock_timestamp() at the read
  std::string stats_reset;  // pg_stat_statements_info.stats_reset (text)
  double stats_reset_unix_s = 0;
  int64_t dealloc = 0;  // pg_stat_statements_info.dealloc: entries evicted so far
  std::vector<StatementEntry> entries;
};

// One statement over the window.
struct WindowedStatement {
  StatementKey key;
  std::string query;
  std::string database;
  std::string user;
  StatementCounters delta;  // calls, total time, rows, blocks within the window
  double mean_ms = 0;       // delta.total_exec_ms / delta.calls
  // "whole window", or which part it covers when the entry was reset or new in the window.
  std::string window_part;
  bool from_end_values_only = false;  // reset (or evicted and re-created) in the window
};

struct StatementWindow {
  std::vector<WindowedStatement> statements;  // calls > 0 only, by total time descending
  bool global_reset = false;                  // stats_reset moved: pg_stat_statements_reset()
  int64_t entries_reset = 0;                  // entries whose calls went down
  int64_t dealloc_delta = 0;                  // entries evicted within the window
  std::vector<std::string> notes;             // every reset/eviction, said in words
};

// The window from `start` to `end`. An entry whose counters went down (its own reset) or that
// a global reset cleared counts from its end values only; an entry new at the end counts from
// zero. Entries whose text carries kOwnMarker are left out.
StatementWindow DiffSnapshots(const PgssSnapshot& start, const PgssSnapshot& end);

// A statement's text on one line, whitespace runs squeezed, cut to `n` characters ("..." at the
// end when cut).
std::string SqueezeQuery(const std::string& q, size_t n);

// What a plan says: its total cost and, per table it scans sequentially, the columns its filter
// mentions, then those its join conditions and sort keys take from it: candidates for an index.
struct SeqScanFilter {
  std::string schema;
  std::string table;
  std::vector<std::string> identifiers;
  std::string filter;  // the plan's Filter text
};
struct PlanSummary {
  double total_cost = 0;
  std::vector<SeqScanFilter> seq_scans;
  std::vector<std::string> relations;  // every "Relation Name" in the plan
};
// `explain_json`: the text of EXPLAIN (FORMAT JSON).
StatusOr<PlanSummary> ParsePlan(const std::string& explain_json);

// The bare identifiers in a filter/condition expression: "((big.grp = $1) AND (val > 5))"
// gives {"grp", "val"}; literals, $n, keywords, casts' types and function names are skipped.
std::vector<std::string> FilterIdentifiers(const std::string& expression);
// The same with each name's qualifier ("big" of big.grp; "" when unqualified), repeats kept.
struct QualifiedName {
  std::string qualifier;
  std::string name;
};
std::vector<QualifiedName> QualifiedIdentifiers(const std::string& expression);

// The highest $n in a normalised statement, outside quotes and comments (0: no parameters).
int CountParameters(const std::string& sql);
// True for statements EXPLAIN accepts (SELECT, INSERT, UPDATE, DELETE, VALUES, WITH, TABLE).
bool Explainable(const std::string& sql);
// A statement prepared in SQL: pg_stat_statements keeps `PREPARE name [(types)] AS body` as its
// text. Returns the body and sets `types` to "(types)" or ""; nullopt for any other text.
std::optional<std::string> PreparedBody(const std::string& sql, std::string* types);

// `table(col[,col])` from --try-index: a table (optionally schema-qualified) and 1..2 columns,
// each a plain identifier.
struct IndexSpec {
  std::string schema;  // "" = the search path's
  std::string table;
  std::vector<std::string> columns;
  std::string Describe() const;  // "public.big (grp, val)"
};
StatusOr<IndexSpec> ParseIndexSpec(const std::string& text);
// PostgreSQL's NAMEDATALEN - 1: longer identifiers are cut by the server.
inline constexpr size_t kMaxIdentifierBytes = 63;
// fs_idx_<table>_<col>_<col>; a name over 63 bytes is cut at a character boundary and ends in
// 8 hex digits of the whole name's hash, so two long names that share a prefix stay apart.
std::string IndexName(const IndexSpec& spec);
// "a"."b" style quoting for an identifier.
std::string QuoteIdent(const std::string& ident);
// 'it''s' style quoting for a string constant (standard_conforming_strings, on since 9.1).
std::string QuoteLiteral(const std::string& text);

}  // namespace fs::io

#endif  // FRAMESCOPE_IO_PG_STATS_H_
