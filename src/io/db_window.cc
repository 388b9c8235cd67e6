#include "src/io/db_window.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <thread>

#include "src/base/clock.h"
#include "src/base/logging.h"
#include "src/base/stats.h"
#include "src/clients/pg_client.h"

namespace fs::io {
namespace {

// Each snapshot/catalog query is short; a hung server must not hang the window. The server
// enforces kQueryTimeoutMs; the client gives up a little later, for a server that is stopped
// or hung and so enforces nothing (or at once on Ctrl-C).
constexpr int kQueryTimeoutMs = 30000;
constexpr int kClientDeadlineMs = kQueryTimeoutMs + 5000;
// At most this many filter columns become candidates (n singles + n*(n-1) ordered pairs).
constexpr size_t kMaxCandidateColumns = 4;
// A two-column index is preferred to the best single-column one only when its cost is lower
// by more than this share (Dexter also prefers the narrower index).
constexpr double kWiderIndexGain = 0.10;
// Tries (a second apart) to drop an index that must go; see DropIndex.
constexpr int kDropAttempts = 10;
// The comment a trial's index carries from its build until its verdict; a later run that finds
// it on an index whose backend is gone knows the trial died (SIGKILL, a crash, a lost host).
constexpr const char* kOnTrial = "framescope --apply: on trial";
constexpr const char* kKept = "framescope --apply: kept";

int64_t Int(const std::optional<std::string>& v) {
  return v ? std::strtoll(v->c_str(), nullptr, 10) : 0;
}
double Num(const std::optional<std::string>& v) { return v ? std::strtod(v->c_str(), nullptr) : 0; }
std::string Str(const std::optional<std::string>& v) { return v.value_or(""); }

constexpr const char* kPgssFix =
    "add shared_preload_libraries = 'pg_stat_statements' to postgresql.conf, restart the "
    "server, then run CREATE EXTENSION pg_stat_statements in this database";

struct TableRow {
  std::string schema, table;
  int64_t seq_scan = 0, seq_tup_read = 0, n_live_tup = 0;
};

StatusOr<PgssSnapshot> ReadPgss(PgClient* pg) {
  PgssSnapshot snap;
  ASSIGN_OR_RETURN(PgResult info, pg->Exec("SELECT /* framescope */ dealloc, stats_reset::text, "
                                           "extract(epoch from stats_reset), extract(epoch from "
                                           "clock_timestamp()) FROM pg_stat_statements_info"));
  if (info.rows.empty()) return Err("pg_stat_statements_info returned no row");
  snap.dealloc = Int(info.rows[0][0]);
  snap.stats_reset = Str(info.rows[0][1]);
  snap.stats_reset_unix_s = Num(info.rows[0][2]);
  snap.taken_unix_s = Num(info.rows[0][3]);
  ASSIGN_OR_RETURN(
      PgResult r,
      pg->Exec("SELECT /* framescope */ s.userid, s.dbid, s.queryid, s.toplevel, s.calls, "
               "s.total_exec_time, s.rows, s.shared_blks_hit, s.shared_blks_read, s.query, "
               "d.datname, r.rolname FROM pg_stat_statements(true) s LEFT JOIN pg_database d "
               "ON d.oid = s.dbid LEFT JOIN pg_roles r ON r.oid = s.userid "
               "WHERE s.queryid IS NOT NULL"));
  for (const auto& row : r.rows) {
    StatementEntry e;
    e.key = {Int(row[0]), Int(row[1]), Int(row[2]), Str(row[3]) == "t"};
    e.counters = {Int(row[4]), Num(row[5]), Int(row[6]), Int(row[7]), Int(row[8])};
    e.query = Str(row[9]);
    e.database = Str(row[10]);
    e.user = Str(row[11]);
    snap.entries.push_back(std::move(e));
  }
  return snap;
}

StatusOr<std::map<int64_t, TableRow>> ReadTables(PgClient* pg) {
  ASSIGN_OR_RETURN(PgResult r, pg->Exec("SELECT /* framescope */ relid, schemaname, relname, "
                                        "seq_scan, seq_tup_read, n_live_tup FROM "
                                        "pg_stat_user_tables"));
  std::map<int64_t, TableRow> out;
  for (const auto& row : r.rows) {
    out[Int(row[0])] = {Str(row[1]), Str(row[2]), Int(row[3]), Int(row[4]), Int(row[5])};
  }
  return out;
}

// Why pg_stat_statements cannot be read here, with the fix ("" when it can).
std::string PgssProblem(PgClient* pg, const Status& read_error) {
  auto ext = pg->Exec(
      "SELECT /* framescope */ 1 FROM pg_extension WHERE extname = "
      "'pg_stat_statements'");
  if (ext.ok() && ext->rows.empty()) {
    auto loaded = pg->Exec(
        "SELECT /* framescope */ current_setting('shared_preload_libraries') ~ "
        "'(^|[ ,])pg_stat_statements([ ,]|$)'");
    if (loaded.ok() && !loaded->rows.empty() && Str(loaded->rows[0][0]) == "t") {
      return "pg_stat_statements is loaded by the server (shared_preload_libraries) but not "
             "installed in this database: run CREATE EXTENSION pg_stat_statements in it (no "
             "restart needed)";
    }
    return "pg_stat_statements is not installed in this database: " + std::string(kPgssFix);
  }
  return "pg_stat_statements cannot be read (" + read_error.message() + "): " + kPgssFix;
}

// Why HypoPG cannot be used here, with the fix ("" when it can).
std::string HypoProblem(PgClient* pg) {
  auto r = pg->Exec(
      "SELECT /* framescope */ (SELECT count(*) FROM pg_extension WHERE extname = "
      "'hypopg'), (SELECT count(*) FROM pg_available_extensions WHERE name = "
      "'hypopg')");
  if (!r.ok()) return "HypoPG could not be checked: " + r.status().message();
  if (Int(r->rows[0][0]) > 0) return "";
  if (Int(r->rows[0][1]) > 0) {
    return "HypoPG is installed on the server but not in this database: run CREATE EXTENSION "
           "hypopg (no index advice until then)";
  }
  return "HypoPG is not installed on the server: install the package postgresql-15-hypopg (apt "
         "install postgresql-15-hypopg), then run CREATE EXTENSION hypopg (no index advice until "
         "then)";
}

// EXPLAIN (FORMAT JSON, VERBOSE) of `sql`'s generic plan. PostgreSQL 15 has no EXPLAIN
// (GENERIC_PLAN): the normalised text is PREPAREd and EXPLAIN EXECUTE'd with NULL for each $n
// under plan_cache_mode = force_generic_plan, so the plan does not depend on values we do not
// have. Inside BEGIN ... ROLLBACK with a statement_timeout; a new PREPARE each time, because a
// cached generic plan would not see a hypothetical index created since.
// What EXPLAIN plans for a statement's text: the body of an SQL-level PREPARE, with its types.
struct Plannable {
  std::string sql;
  std::string types;  // "(int, text)" or ""
};

Plannable ToPlan(const std::string& query) {
  Plannable p;
  auto body = PreparedBody(query, &p.types);
  p.sql = body ? *body : query;
  return p;
}

StatusOr<std::string> Explain(PgClient* pg, const Plannable& stmt, int params, bool analyze,
                              int timeout_ms) {
  const std::string& sql = stmt.sql;
  const std::string options =
      analyze ? "(FORMAT JSON, VERBOSE, ANALYZE, BUFFERS)" : "(FORMAT JSON, VERBOSE)";
  std::string body = sql;
  if (params > 0) {
    std::string nulls;
    for (int i = 0; i < params; ++i) nulls += i ? ", NULL" : "NULL";
    body = "EXECUTE fs_explain (" + nulls + ")";
  }
  RETURN_IF_ERROR(pg->Exec("BEGIN /* framescope */").status());
  auto run = [&]() -> StatusOr<PgResult> {
    RETURN_IF_ERROR(
        pg->Exec("SET LOCAL /* framescope */ statement_timeout = " + std::to_string(timeout_ms))
            .status());
    RETURN_IF_ERROR(
        pg->Exec("SET LOCAL /* framescope */ plan_cache_mode = force_generic_plan").status());
    // The extended protocol (ExecParams) takes one statement only: a text that smuggled a
    // second one past pg_stat_statements would fail here instead of running.
    if (params > 0) {
      RETURN_IF_ERROR(
          pg->ExecParams("PREPARE fs_explain " + stmt.types + " AS " + sql, {}).status());
    }
    return pg->ExecParams("EXPLAIN /* framescope */ " + options + " " + body, {});
  };
  auto result = run();
  (void)pg->Exec("ROLLBACK /* framescope */");
  // PREPARE is not transactional: the statement outlives the ROLLBACK.
  if (params > 0) (void)pg->Exec("DEALLOCATE /* framescope */ fs_explain");
  if (!result.ok()) return result.status();
  if (result->rows.empty() || !result->rows[0][0]) return Err("EXPLAIN returned no plan");
  return *result->rows[0][0];
}

// The table's real columns, to tell the filter's column names from everything else in it.
StatusOr<std::vector<std::string>> TableColumns(PgClient* pg, const std::string& schema,
                                                const std::string& table) {
  ASSIGN_OR_RETURN(PgResult r,
                   pg->ExecParams("SELECT /* framescope */ attname FROM pg_attribute WHERE "
                                  "attrelid = to_regclass($1) AND attnum > 0 AND NOT "
                                  "attisdropped",
                                  {QuoteIdent(schema) + "." + QuoteIdent(table)}));
  std::vector<std::string> out;
  for (const auto& row : r.rows) out.push_back(Str(row[0]));
  return out;
}

// Single columns first, then every ordered pair: (a, b) and (b, a) lead differently.
std::vector<IndexSpec> CandidateIndexes(const SeqScanFilter& scan,
                                        const std::vector<std::string>& columns) {
  std::vector<std::string> cols;
  for (const std::string& id : scan.identifiers) {
    if (std::find(columns.begin(), columns.end(), id) != columns.end() &&
        cols.size() < kMaxCandidateColumns) {
      cols.push_back(id);
    }
  }
  std::vector<IndexSpec> out;
  for (const std::string& c : cols) out.push_back({scan.schema, scan.table, {c}});
  for (const std::string& a : cols) {
    for (const std::string& b : cols) {
      if (a != b) out.push_back({scan.schema, scan.table, {a, b}});
    }
  }
  return out;
}

std::string IndexColumnsSql(const IndexSpec& spec) {
  std::string cols;
  for (const std::string& c : spec.columns) cols += (cols.empty() ? "" : ", ") + QuoteIdent(c);
  return QuoteIdent(spec.schema) + "." + QuoteIdent(spec.table) + " (" + cols + ")";
}

// The plan's total cost with one hypothetical index (HypoPG's indexes live in this backend
// only and are removed again by hypopg_reset()).
HypoCandidate TryHypothetical(PgClient* pg, const SlowStatement& s, const IndexSpec& spec,
                              int timeout_ms) {
  HypoCandidate c{spec, std::nullopt, ""};
  auto created = pg->ExecParams("SELECT /* framescope */ indexrelid FROM hypopg_create_index($1)",
                                {"CREATE INDEX ON " + IndexColumnsSql(spec)});
  if (!created.ok()) {
    c.error = created.status().message();
    return c;
  }
  auto plan = Explain(pg, ToPlan(s.stmt.query), s.parameters, false, timeout_ms);
  auto summary = plan.ok() ? ParsePlan(*plan) : StatusOr<PlanSummary>(plan.status());
  if (summary.ok()) {
    c.cost = summary->total_cost;
  } else {
    c.error = summary.status().message();
  }
  (void)pg->Exec("SELECT /* framescope */ hypopg_reset()");
  return c;
}

// The best candidate by cost, preferring the narrower index unless the wider one is clearly
// cheaper.
const HypoCandidate* Best(const std::vector<HypoCandidate>& candidates) {
  const HypoCandidate* best = nullptr;
  for (const HypoCandidate& c : candidates) {
    if (!c.cost) continue;
    if (!best) {
      best = &c;
      continue;
    }
    bool wider = c.index.columns.size() > best->index.columns.size();
    double bar = wider ? *best->cost * (1 - kWiderIndexGain) : *best->cost;
    if (*c.cost < bar) best = &c;
  }
  return best;
}

// Whether `query` has `name` as a whole word, ignoring case (a table or a column it names).
bool MentionsWord(const std::string& query, const std::string& name) {
  auto lower = [](std::string t) {
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    return t;
  };
  const std::string q = lower(query), w = lower(name);
  if (w.empty()) return false;
  for (size_t at = q.find(w); at != std::string::npos; at = q.find(w, at + 1)) {
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    bool left = at == 0 || !word(q[at - 1]);
    bool right = at + w.size() >= q.size() || !word(q[at + w.size()]);
    if (left && right) return true;
  }
  return false;
}

// The statement an index of the user's is measured against: the one that spent the most time
// (statements come sorted by total time) among those naming its table and its leading column,
// the only column an index scan can start from.
const WindowedStatement* TargetOf(const IndexSpec& spec,
                                  const std::vector<WindowedStatement>& statements) {
  for (const WindowedStatement& s : statements) {
    if (MentionsWord(s.query, spec.table) && MentionsWord(s.query, spec.columns.at(0))) return &s;
  }
  return nullptr;
}

// Resolves a --try-index table through the search path and checks its columns.
Status ResolveSpec(PgClient* pg, IndexSpec* spec) {
  const std::string rel = spec->schema.empty()
                              ? QuoteIdent(spec->table)
                              : QuoteIdent(spec->schema) + "." + QuoteIdent(spec->table);
  ASSIGN_OR_RETURN(PgResult r,
                   pg->ExecParams("SELECT /* framescope */ n.nspname FROM pg_class c JOIN "
                                  "pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = "
                                  "to_regclass($1) AND c.relkind IN ('r', 'p', 'm')",
                                  {rel}));
  if (r.rows.empty()) return Err("no table " + spec->Describe() + " in this database");
  spec->schema = Str(r.rows[0][0]);
  ASSIGN_OR_RETURN(auto columns, TableColumns(pg, spec->schema, spec->table));
  for (const std::string& c : spec->columns) {
    if (std::find(columns.begin(), columns.end(), c) == columns.end()) {
      return Err("table " + spec->schema + "." + spec->table + " has no column " + c);
    }
  }
  return Status::Ok();
}

// Whether the index exists and is valid (pg_index.indisvalid); nullopt when it does not exist.
StatusOr<std::optional<bool>> IndexValid(PgClient* pg, const std::string& qualified) {
  ASSIGN_OR_RETURN(PgResult r, pg->ExecParams("SELECT /* framescope */ indisvalid FROM pg_index "
                                              "WHERE indexrelid = to_regclass($1)",
                                              {qualified}));
  if (r.rows.empty()) return std::optional<bool>();
  return std::optional<bool>(Str(r.rows[0][0]) == "t");
}

Status Comment(PgClient* pg, const std::string& qualified, const std::string& text) {
  return pg->Exec("COMMENT /* framescope */ ON INDEX " + qualified + " IS " + QuoteLiteral(text))
      .status();
}

// Runs one CONCURRENTLY statement with a lock_timeout and no statement_timeout (a build on a
// large table may take long; waiting for a lock must not). No client deadline or Ctrl-C either:
// a build or drop cut off by the client would leave the index behind, so it is waited out (an
// interrupted trial's index is then dropped).
Status RunConcurrently(PgClient* pg, const std::string& sql, int lock_timeout_ms,
                       const std::atomic<bool>* stop) {
  RETURN_IF_ERROR(
      pg->Exec("SET /* framescope */ lock_timeout = " + std::to_string(lock_timeout_ms)).status());
  RETURN_IF_ERROR(pg->Exec("SET /* framescope */ statement_timeout = 0").status());
  // If we die mid-build the server notices within a second and cancels it (PostgreSQL 14+;
  // older servers refuse the setting): the invalid index that leaves is found by the next run.
  (void)pg->Exec("SET /* framescope */ client_connection_check_interval = 1000");
  pg->SetClientDeadline(0);
  Status st = pg->Exec(sql).status();
  pg->SetClientDeadline(kClientDeadlineMs, stop);
  (void)pg->Exec("SET /* framescope */ statement_timeout = " + std::to_string(kQueryTimeoutMs));
  (void)pg->Exec("RESET /* framescope */ lock_timeout");
  return st;
}

// An index must not outlive a failed or unhelpful trial. The transactions that made a build
// time out usually block its drop too (both wait for the table's lockers), so the drop is
// retried for a while before the user is told to do it by hand.
Status DropIndex(PgClient* pg, const std::string& qualified, int lock_timeout_ms,
                 const std::atomic<bool>* stop) {
  Status st;
  for (int attempt = 0; attempt < kDropAttempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
    st = RunConcurrently(pg, "DROP INDEX CONCURRENTLY /* framescope */ IF EXISTS " + qualified,
                         lock_timeout_ms, stop);
    if (st.ok()) return st;
  }
  return st.Annotate("dropping " + qualified + " failed " + std::to_string(kDropAttempts) +
                     " times; drop it by hand: DROP INDEX CONCURRENTLY " + qualified);
}

}  // namespace

struct DbWindow::Reads {
  std::optional<PgssSnapshot> pgss;
  std::optional<std::map<int64_t, TableRow>> tables;
  double monotonic_s = 0;
};

DbWindow::DbWindow(std::string conninfo, std::string label, DbOptions options)
    : conninfo_(std::move(conninfo)) {
  result_.server = std::move(label);
  result_.options = std::move(options);
}

DbWindow::~DbWindow() = default;

Status DbWindow::Connect() {
  if (pg_ && pg_->healthy()) return Status::Ok();
  auto c = PgClient::Connect(conninfo_, "framescope-db", 5, kQueryTimeoutMs);
  if (!c.ok()) return c.status();
  pg_ = std::move(*c);
  pg_->SetClientDeadline(kClientDeadlineMs, result_.options.stop);
  return Status::Ok();
}

void DbWindow::Begin() {
  start_ = std::make_unique<Reads>();
  start_->monotonic_s = MonotonicNs() / 1e9;
  if (Status st = Connect(); !st.ok()) {
    result_.unreachable = st.message();
    return;
  }
  if (auto v = pg_->Exec("SHOW /* framescope */ server_version"); v.ok() && !v->rows.empty()) {
    result_.server_version = Str(v->rows[0][0]);
  }
  auto pgss = ReadPgss(pg_.get());
  if (pgss.ok()) {
    start_->pgss = std::move(*pgss);
  } else {
    result_.pgss_missing = PgssProblem(pg_.get(), pgss.status());
  }
  auto tables = ReadTables(pg_.get());
  if (tables.ok())
    start_->tables = std::move(*tables);
  else
    result_.seq_scan_note = "pg_stat_user_tables: " + tables.status().message();
}

void DbWindow::End() {
  end_ = std::make_unique<Reads>();
  end_->monotonic_s = MonotonicNs() / 1e9;
  if (!reachable() || !start_) return;
  if (Status st = Connect(); !st.ok()) {
    result_.errors.push_back("the end of the window could not be read: " + st.message());
    return;
  }
  if (start_->pgss) {
    auto pgss = ReadPgss(pg_.get());
    if (pgss.ok())
      end_->pgss = std::move(*pgss);
    else
      result_.errors.push_back("pg_stat_statements at the window's end: " +
                               pgss.status().message());
  }
  if (start_->tables) {
    auto tables = ReadTables(pg_.get());
    if (tables.ok())
      end_->tables = std::move(*tables);
    else
      result_.seq_scan_note = "pg_stat_user_tables: " + tables.status().message();
  }
}

void DbWindow::ReadUnusedIndexes() {
  // Unique and primary-key indexes enforce constraints: never "unused" even at idx_scan = 0.
  auto r = pg_->Exec(
      "SELECT /* framescope */ s.schemaname, s.relname, s.indexrelname, "
      "pg_relation_size(s.indexrelid) FROM pg_stat_user_indexes s JOIN pg_index i ON "
      "i.indexrelid = s.indexrelid WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT "
      "i.indisprimary ORDER BY 4 DESC, 1, 2, 3");
  if (!r.ok()) {
    result_.errors.push_back("pg_stat_user_indexes: " + r.status().message());
    return;
  }
  for (const auto& row : r->rows) {
    result_.unused_indexes.push_back({Str(row[0]), Str(row[1]), Str(row[2]), Int(row[3])});
  }
  auto since = pg_->Exec(
      "SELECT /* framescope */ coalesce(stats_reset::text, 'never reset') FROM "
      "pg_stat_database WHERE datname = current_database()");
  if (since.ok() && !since->rows.empty()) result_.unused_since = Str(since->rows[0][0]);
}

// Invalid plain indexes (a partitioned index made ON ONLY is invalid by design until every
// partition's is attached) whose table no CREATE INDEX / REINDEX is building right now, and trial
// indexes whose framescope backend is gone. A build in this database whose table we cannot see
// (no pg_read_all_stats) may own any invalid index: those are listed, never dropped.
constexpr const char* kLeftoverSql =
    "WITH building AS (SELECT relid FROM pg_stat_progress_create_index WHERE datid = (SELECT "
    "oid FROM pg_database WHERE datname = current_database())) "
    "SELECT /* framescope */ n.nspname, t.relname, c.relname, pg_relation_size(c.oid), "
    "i.indisvalid, c.relname LIKE 'fs\\_idx\\_%' OR coalesce(d.description, '') LIKE "
    "'framescope %', coalesce(d.description, ''), NOT i.indisvalid AND EXISTS (SELECT 1 FROM "
    "building WHERE relid IS NULL) FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_description d ON "
    "d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 "
    "WHERE c.relkind = 'i' AND ((NOT i.indisvalid AND NOT EXISTS (SELECT 1 FROM building b "
    "WHERE b.relid = i.indrelid)) OR (d.description LIKE $1 || '%' AND NOT EXISTS (SELECT 1 "
    "FROM pg_stat_activity a WHERE a.pid::text = substring(d.description from 'backend "
    "([0-9]+)')))) ORDER BY 1, 3";

void DbWindow::ReadLeftoverIndexes() {
  auto r = pg_->ExecParams(kLeftoverSql, {kOnTrial});
  if (!r.ok()) {
    result_.errors.push_back("indexes left behind: " + r.status().message());
    return;
  }
  for (const auto& row : r->rows) {
    LeftoverIndex l{{Str(row[0]), Str(row[1]), Str(row[2]), Int(row[3])},
                    Str(row[4]) == "t",
                    Str(row[5]) == "t",
                    Str(row[7]) == "t",
                    "",
                    ""};
    l.why = l.valid
                ? "a framescope trial whose process ended before its verdict (" + Str(row[6]) + ")"
                : "invalid (pg_index.indisvalid false): a CREATE or REINDEX INDEX "
                  "CONCURRENTLY failed or its client died; no plan uses it, yet every "
                  "write keeps it up to date";
    const std::string q = QuoteIdent(l.schema) + "." + QuoteIdent(l.index);
    if (l.may_be_building) {
      l.action =
          "left alone: a CREATE INDEX or REINDEX this role cannot see is running in this "
          "database and may be building it (GRANT pg_read_all_stats to tell)";
    } else {
      l.action = l.ours ? "framescope db --apply drops it, or: DROP INDEX CONCURRENTLY " + q
                        : "not ours, left alone: REINDEX INDEX CONCURRENTLY " + q +
                              " or DROP INDEX CONCURRENTLY " + q;
    }
    result_.leftover_indexes.push_back(std::move(l));
  }
}

// Only with --apply or --try-index (which change the database anyway), and only our own.
void DbWindow::DropLeftoverIndexes() {
  for (LeftoverIndex& l : result_.leftover_indexes) {
    if (!l.ours || l.may_be_building) continue;
    const std::string q = QuoteIdent(l.schema) + "." + QuoteIdent(l.index);
    Status st = DropIndex(pg_.get(), q, result_.options.lock_timeout_ms, result_.options.stop);
    l.action = st.ok() ? "dropped" : st.message();
  }
}

void DbWindow::AnalyseSlow(SlowStatement* s) {
  const WindowedStatement& st = s->stmt;
  s->parameters = CountParameters(st.query);
  auto current = pg_->Exec("SELECT /* framescope */ current_database()");
  const std::string db = current.ok() && !current->rows.empty() ? Str(current->rows[0][0]) : "";
  if (st.query == "<insufficient privilege>") {
    s->plan_error =
        "pg_stat_statements hides this statement's text from the connected user: "
        "GRANT pg_read_all_stats to it, or connect as the statement's user";
  } else if (!Explainable(ToPlan(st.query).sql)) {
    s->plan_error = "not a statement EXPLAIN accepts (utility or DDL)";
  } else if (!st.database.empty() && st.database != db) {
    s->plan_error = "runs in database " + st.database + ", not in " + db +
                    " (the one connected to): point --postgres-url at it to plan it";
  } else if (auto plan = Explain(pg_.get(), ToPlan(st.query), s->parameters, false,
                                 result_.options.explain_timeout_ms);
             !plan.ok()) {
    s->plan_error = plan.status().message();
  } else if (auto summary = ParsePlan(*plan); !summary.ok()) {
    s->plan_error = summary.status().message();
  } else {
    s->plan_json = *plan;
    s->plan_cost = summary->total_cost;
  }
  if (!result_.options.explain_analyze) return;
  if (s->parameters > 0) {
    s->analyze_note = "not run: the statement has " + std::to_string(s->parameters) +
                      " parameter(s) whose values pg_stat_statements does not keep";
  } else if (!s->plan_error.empty()) {
    s->analyze_note = "not run: no plan";
  } else if (auto a =
                 Explain(pg_.get(), ToPlan(st.query), 0, true, result_.options.explain_timeout_ms);
             a.ok()) {
    s->analyze_json = *a;
  } else {
    s->analyze_note = "failed: " + a.status().message();
  }
}

void DbWindow::Advise(SlowStatement* s) {
  if (!s->plan_cost) {
    s->advice_note = "no plan, no advice";
    return;
  }
  if (!result_.hypopg_missing.empty()) {
    s->advice_note = result_.hypopg_missing;
    return;
  }
  auto summary = ParsePlan(s->plan_json);
  if (!summary.ok() || summary->seq_scans.empty()) {
    s->advice_note = "the plan has no sequential scan with a filter, join or sort key to index";
    return;
  }
  for (const SeqScanFilter& scan : summary->seq_scans) {
    auto columns = TableColumns(pg_.get(), scan.schema, scan.table);
    if (!columns.ok()) continue;
    for (const IndexSpec& spec : CandidateIndexes(scan, *columns)) {
      s->candidates.push_back(
          TryHypothetical(pg_.get(), *s, spec, result_.options.explain_timeout_ms));
    }
  }
  const HypoCandidate* best = Best(s->candidates);
  const double before = *s->plan_cost;
  if (!best) {
    s->advice_note = "no candidate index could be planned";
  } else if (before <= 0 || 1 - *best->cost / before < result_.options.min_cost_cut) {
    s->advice_note = "the best hypothetical index " + best->index.Describe() + " cuts the cost " +
                     Fixed(before, 1) + " -> " + Fixed(*best->cost, 1) + " by " +
                     Fixed(before > 0 ? (1 - *best->cost / before) * 100 : 0, 1) +
                     " %, under the --min-cost-cut of " +
                     Fixed(result_.options.min_cost_cut * 100, 0) + " %";
  } else {
    s->suggestion = best->index;
    s->suggestion_cost = best->cost;
  }
}

DbAnalysis DbWindow::Analyse() {
  DbAnalysis& a = result_;
  if (!reachable() || !start_ || !end_) return a;
  a.window_s = end_->monotonic_s - start_->monotonic_s;
  if (start_->pgss && end_->pgss) {
    a.window = DiffSnapshots(*start_->pgss, *end_->pgss);
    a.window_s = end_->pgss->taken_unix_s - start_->pgss->taken_unix_s;
    a.window_measured = true;
  }
  if (start_->tables && end_->tables) {
    for (const auto& [relid, e] : *end_->tables) {
      auto it = start_->tables->find(relid);
      TableRow s = it == start_->tables->end() ? TableRow{} : it->second;
      SeqScanTable t{e.schema, e.table, e.seq_scan - s.seq_scan, e.seq_tup_read - s.seq_tup_read,
                     e.n_live_tup};
      if (t.seq_tup_read >= a.options.seq_scan_min_rows) a.seq_scan_tables.push_back(t);
    }
    std::sort(a.seq_scan_tables.begin(), a.seq_scan_tables.end(),
              [](const SeqScanTable& x, const SeqScanTable& y) {
                return x.seq_tup_read > y.seq_tup_read;
              });
  }
  if (Status st = Connect(); !st.ok()) {
    a.errors.push_back("analysis: " + st.message());
    return a;
  }
  ReadUnusedIndexes();
  ReadLeftoverIndexes();
  a.hypopg_missing = HypoProblem(pg_.get());
  for (const WindowedStatement& s : a.window.statements) {
    if (s.mean_ms <= a.options.slow_ms) continue;
    SlowStatement slow;
    slow.stmt = s;
    AnalyseSlow(&slow);
    Advise(&slow);
    a.slow.push_back(std::move(slow));
  }
  RunTrials();
  return a;
}

namespace {

IndexTrial NotCreated(const IndexSpec& spec, const std::string& origin, std::string reason) {
  IndexTrial t;
  t.index = spec;
  t.name = IndexName(spec);
  t.origin = origin;
  t.verdict = "not created";
  t.reason = std::move(reason);
  return t;
}

// The verdict on a built index from the re-measured statement: kept only when its mean fell
// to (1 - keep_margin) of the mean before; anything not verified is dropped.
void Judge(const std::optional<WindowedStatement>& after, bool interrupted, double keep_margin,
           IndexTrial* t) {
  const double bar = t->mean_before_ms * (1 - keep_margin);
  const std::string rule = " ms (--keep-margin " + Fixed(keep_margin * 100, 0) + " %)";
  t->verdict = "dropped";
  if (after) {
    t->mean_after_ms = after->mean_ms;
    t->calls_after = after->delta.calls;
  }
  if (interrupted) {
    t->reason = "interrupted during the re-measure window: not verified";
  } else if (!after) {
    if (t->reason.empty())
      t->reason = "the statement did not run in the re-measure window: not verified";
  } else {
    const bool faster = after->mean_ms <= bar;
    if (faster) t->verdict = "kept";
    t->reason = "mean " + Fixed(t->mean_before_ms, 2) + " -> " + Fixed(after->mean_ms, 2) +
                (faster ? " ms, at or under the bar of " : " ms, over the bar of ") +
                Fixed(bar, 2) + rule + (faster ? "" : ": not faster enough");
  }
}

}  // namespace

void DbWindow::RunTrials() {
  const DbOptions& o = result_.options;
  if (!o.apply && o.try_indexes.empty()) return;
  DropLeftoverIndexes();
  std::vector<std::string> done;
  // A kept index changes its statement's mean: the next trial on it starts from the new mean.
  std::map<StatementKey, WindowedStatement> latest;
  auto run = [&](const IndexSpec& spec, const std::string& origin,
                 const WindowedStatement* target) {
    if (std::find(done.begin(), done.end(), IndexName(spec)) != done.end()) return;
    done.push_back(IndexName(spec));
    if (o.stop && o.stop->load()) {
      result_.trials.push_back(NotCreated(spec, origin, "interrupted before it was built"));
      return;
    }
    if (!target) {
      result_.trials.push_back(NotCreated(spec, origin,
                                          "no statement of the window names table " + spec.table +
                                              " and column " + spec.columns.at(0) +
                                              ": nothing to measure the index against"));
      return;
    }
    auto it = latest.find(target->key);
    const WindowedStatement& from = it == latest.end() ? *target : it->second;
    IndexTrial t = Trial(spec, origin, from);
    if (t.verdict == "kept" && t.mean_after_ms) {
      WindowedStatement now = from;
      now.mean_ms = *t.mean_after_ms;
      now.delta.calls = t.calls_after;
      latest[from.key] = now;
    }
    result_.trials.push_back(std::move(t));
  };
  // The user's own ideas first, against the statement as it ran in the window.
  for (IndexSpec spec : o.try_indexes) {
    const WindowedStatement* target = TargetOf(spec, result_.window.statements);
    if (Status st = ResolveSpec(pg_.get(), &spec); !st.ok()) {
      result_.trials.push_back(NotCreated(spec, "--try-index", st.message()));
      continue;
    }
    run(spec, "--try-index", target);
  }
  if (o.apply) {
    for (const SlowStatement& s : result_.slow) {
      if (s.suggestion) run(*s.suggestion, "suggested (HypoPG)", &s.stmt);
    }
  }
}

IndexTrial DbWindow::Trial(const IndexSpec& spec, const std::string& origin,
                           const WindowedStatement& target) {
  IndexTrial t = NotCreated(spec, origin, "");
  t.target_query = target.query;
  t.target = target.key;
  t.mean_before_ms = target.mean_ms;
  t.calls_before = target.delta.calls;
  const int lock_ms = result_.options.lock_timeout_ms;
  const std::string qualified = QuoteIdent(spec.schema) + "." + QuoteIdent(t.name);
  auto existing = IndexValid(pg_.get(), qualified);
  if (!existing.ok() || existing->has_value()) {
    t.reason = existing.ok() ? "an index named " + t.name +
                                   " exists already (kept by an earlier --apply?): left alone"
                             : existing.status().message();
    return t;
  }
  Status built = RunConcurrently(pg_.get(),
                                 "CREATE INDEX CONCURRENTLY /* framescope */ " +
                                     QuoteIdent(t.name) + " ON " + IndexColumnsSql(spec),
                                 lock_ms, result_.options.stop);
  auto valid = IndexValid(pg_.get(), qualified);
  if (!built.ok() || !valid.ok() || !valid->value_or(false)) {
    // A failed CONCURRENTLY build leaves an invalid index behind: never keep a partial one.
    Status dropped = DropIndex(pg_.get(), qualified, lock_ms, result_.options.stop);
    t.reason =
        (built.ok() ? "the index was built but pg_index.indisvalid is false" : built.message()) +
        (dropped.ok() ? "; nothing was left behind" : "; " + dropped.message());
    return t;
  }
  auto pid = pg_->Exec("SELECT /* framescope */ pg_backend_pid()");
  Status marked = pid.ok() && !pid->rows.empty()
                      ? Comment(pg_.get(), qualified,
                                std::string(kOnTrial) + " by backend " + Str(pid->rows[0][0]) +
                                    " since " + IsoNowUtc())
                      : pid.status();
  auto after = marked.ok() ? Remeasure(target.key, &t) : std::nullopt;
  if (!marked.ok()) t.reason = "marking the index as on trial: " + marked.message();
  Judge(after, result_.options.stop && result_.options.stop->load(), result_.options.keep_margin,
        &t);
  if (t.verdict == "kept") {
    Status st =
        Comment(pg_.get(), qualified, std::string(kKept) + " at " + IsoNowUtc() + ": " + t.reason);
    if (!st.ok())
      t.reason += "; its comment still says on trial (" + st.message() +
                  "), so a later --apply will drop it";
  } else if (Status st = DropIndex(pg_.get(), qualified, lock_ms, result_.options.stop); !st.ok()) {
    t.reason += "; " + st.message();
  }
  return t;
}

std::optional<WindowedStatement> DbWindow::Remeasure(const StatementKey& key, IndexTrial* trial) {
  const DbOptions& o = result_.options;
  trial->remeasure_s = o.remeasure_s > 0 ? o.remeasure_s : result_.window_s;
  auto start = ReadPgss(pg_.get());
  if (!start.ok()) {
    trial->reason = "re-measure: " + start.status().message();
    return std::nullopt;
  }
  const int64_t end_ns = MonotonicNs() + static_cast<int64_t>(trial->remeasure_s * 1e9);
  while (MonotonicNs() < end_ns && !(o.stop && o.stop->load())) {
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::min<int64_t>(end_ns - MonotonicNs(), 100'000'000)));
  }
  auto end = ReadPgss(pg_.get());
  if (!end.ok()) {
    trial->reason = "re-measure: " + end.status().message();
    return std::nullopt;
  }
  for (const WindowedStatement& s : DiffSnapshots(*start, *end).statements) {
    if (s.key == key) return s;
  }
  return std::nullopt;
}

}  // namespace fs::io
