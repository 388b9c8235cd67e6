// `framescope db` and profile's database section: PostgreSQL over a window. Begin() and End()
// read pg_stat_statements (and pg_stat_user_tables); Analyse() turns the two reads into each
// statement's windowed numbers, plans the slow ones (EXPLAIN of the generic plan), asks HypoPG
// which single/two-column index would cut the planner's cost by --min-cost-cut (Dexter's rule),
// and, only with --apply or --try-index, builds the index (CREATE INDEX CONCURRENTLY),
// re-measures the statement over a new window and keeps the index only if the mean fell by
// --keep-margin. Nothing here is fatal: an unreachable server, a missing extension or a failed
// EXPLAIN is kept as the reason and the other parts still run.
#ifndef FRAMESCOPE_IO_DB_WINDOW_H_
#define FRAMESCOPE_IO_DB_WINDOW_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/io/pg_stats.h"

namespace fs {
class PgClient;
}

namespace fs::io {

// Checklist 3.1's bound on a statement's mean execution time.
inline constexpr double kChecklistMeanMs = 100;

struct DbOptions {
  double slow_ms = 100;       // a statement is slow when its windowed mean is over this
  double min_cost_cut = 0.5;  // suggest an index when it cuts the plan's total cost this much
  bool apply = false;         // build each suggestion, re-measure, keep or drop
  std::vector<IndexSpec> try_indexes;       // the user's own ideas, verified the same way
  double keep_margin = 0.10;                // keep an index when the mean fell by at least this
  bool explain_analyze = false;             // EXPLAIN ANALYZE the slow statements without $n
  int lock_timeout_ms = 5000;               // CREATE/DROP INDEX CONCURRENTLY's lock_timeout
  int explain_timeout_ms = 10000;           // statement_timeout of each EXPLAIN
  double remeasure_s = 0;                   // re-measure window; 0: as long as the analysed one
  int64_t seq_scan_min_rows = 100000;       // a table is listed when Δseq_tup_read reaches this
  const std::atomic<bool>* stop = nullptr;  // ends a re-measure window early
};

// One hypothetical index HypoPG was asked about.
struct HypoCandidate {
  IndexSpec index;
  std::optional<double> cost;  // the plan's total cost with it
  std::string error;
};

struct SlowStatement {
  WindowedStatement stmt;
  int parameters = 0;
  std::string plan_json;  // EXPLAIN (FORMAT JSON, VERBOSE) of the generic plan
  std::string plan_error;
  std::optional<double> plan_cost;
  std::string analyze_json;  // EXPLAIN ANALYZE, on request and only without parameters
  std::string analyze_note;
  std::vector<HypoCandidate> candidates;
  std::optional<IndexSpec> suggestion;  // the best candidate that meets the cost rule
  std::optional<double> suggestion_cost;
  std::string advice_note;  // why there is no suggestion
};

// An index built for real (--apply or --try-index) and verified over a new window.
struct IndexTrial {
  IndexSpec index;
  std::string name;    // fs_idx_<table>_<cols>
  std::string origin;  // "suggested (HypoPG)" or "--try-index"
  std::string target_query;
  StatementKey target;
  double mean_before_ms = 0;
  int64_t calls_before = 0;
  std::optional<double> mean_after_ms;
  int64_t calls_after = 0;
  double remeasure_s = 0;
  std::string verdict;  // "kept", "dropped", "not created"
  std::string reason;
};

struct SeqScanTable {
  std::string schema, table;
  int64_t seq_scan = 0, seq_tup_read = 0;  // deltas over the window
  int64_t n_live_tup = 0;
};

// An index of the database, named and sized (pg_relation_size).
struct IndexRef {
  std::string schema, table, index;
  int64_t size_bytes = 0;
};
using UnusedIndex = IndexRef;

// An index nobody should keep as it is: invalid (a CREATE/REINDEX INDEX CONCURRENTLY that
// failed or whose client died: no plan uses it, yet every write maintains it), or built by a
// framescope trial whose process died before judging it (its comment still says "on trial").
struct LeftoverIndex : IndexRef {
  bool valid = false;
  bool ours = false;             // named fs_idx_* or commented by framescope: --apply may drop it
  bool may_be_building = false;  // a build this role cannot see may own it: never dropped
  std::string why;               // what is wrong with it, in words
  std::string action;            // "dropped", or what the user can do about it
};

struct DbAnalysis {
  std::string server;       // the label: never the password
  std::string unreachable;  // why the server could not be reached ("" when it was)
  std::string server_version;
  std::string pgss_missing;    // why pg_stat_statements cannot be read, with the fix
  std::string hypopg_missing;  // why HypoPG cannot be used, with the fix
  double window_s = 0;
  bool window_measured = false;
  StatementWindow window;
  std::vector<SlowStatement> slow;
  std::vector<SeqScanTable> seq_scan_tables;
  std::string seq_scan_note;  // why the table list is missing, if it is
  std::vector<UnusedIndex> unused_indexes;
  std::string unused_since;  // pg_stat_database.stats_reset, or "never reset"
  std::vector<LeftoverIndex> leftover_indexes;
  std::vector<IndexTrial> trials;
  std::vector<std::string> errors;  // steps that failed, each with its reason
  DbOptions options;
};

class DbWindow {
 public:
  // `conninfo` holds the password: kept here, never printed (`label` is printed instead).
  DbWindow(std::string conninfo, std::string label, DbOptions options);
  ~DbWindow();
  DbWindow(const DbWindow&) = delete;
  DbWindow& operator=(const DbWindow&) = delete;

  void Begin();
  void End();
  DbAnalysis Analyse();
  // False when Begin() could not reach the server at all (`framescope db` exits 1).
  bool reachable() const { return result_.unreachable.empty(); }

 private:
  struct Reads;
  Status Connect();
  void ReadUnusedIndexes();
  void ReadLeftoverIndexes();
  void DropLeftoverIndexes();
  void AnalyseSlow(SlowStatement* s);
  void Advise(SlowStatement* s);
  void RunTrials();
  IndexTrial Trial(const IndexSpec& spec, const std::string& origin, const WindowedStatement& t);
  std::optional<WindowedStatement> Remeasure(const StatementKey& key, IndexTrial* trial);

  std::string conninfo_;
  std::unique_ptr<PgClient> pg_;
  std::unique_ptr<Reads> start_, end_;
  DbAnalysis result_;
};

// The analysis as JSON (OUT/io/db_analysis.json), with the checklist object.
Json DbAnalysisToJson(const DbAnalysis& a);
// {"item": "3.1 ...", "verdict": ..., "reason": ...}.
Json DbChecklist(const DbAnalysis& a);

}  // namespace fs::io

#endif  // FRAMESCOPE_IO_DB_WINDOW_H_
