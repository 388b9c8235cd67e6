// DbAnalysis as JSON (OUT/io/db_analysis.json): every number under the name of the counter
// it comes from; what could not be measured is null with the reason, never 0.
#include <algorithm>

#include "src/base/stats.h"
#include "src/io/db_window.h"

namespace fs::io {
namespace {

Json Key(const StatementKey& k) {
  Json j = Json::MakeObject();
  // queryid is a signed 64-bit hash: as text, since JSON numbers here are doubles.
  j["queryid"] = std::to_string(k.queryid);
  j["userid"] = k.userid;
  j["dbid"] = k.dbid;
  j["toplevel"] = k.toplevel;
  return j;
}

Json StatementJson(const WindowedStatement& s) {
  Json j = Key(s.key);
  j["query"] = s.query;
  j["database"] = s.database;
  j["user"] = s.user;
  j["calls"] = s.delta.calls;
  j["total_exec_time_ms"] = s.delta.total_exec_ms;
  j["mean_exec_time_ms"] = s.mean_ms;
  j["rows"] = s.delta.rows;
  j["shared_blks_hit"] = s.delta.shared_blks_hit;
  j["shared_blks_read"] = s.delta.shared_blks_read;
  const int64_t blocks = s.delta.shared_blks_hit + s.delta.shared_blks_read;
  j["hit_ratio"] =
      blocks > 0 ? Json(static_cast<double>(s.delta.shared_blks_hit) / blocks) : Json();
  j["window_part"] = s.window_part;
  j["from_end_values_only"] = s.from_end_values_only;
  return j;
}

Json Spec(const IndexSpec& spec) {
  Json j = Json::MakeObject();
  j["schema"] = spec.schema;
  j["table"] = spec.table;
  Json cols = Json::MakeArray();
  for (const std::string& c : spec.columns) cols.Push(c);
  j["columns"] = cols;
  j["name"] = IndexName(spec);
  return j;
}

Json PlanOrNull(const std::string& text) {
  auto parsed = Json::Parse(text);
  return parsed.ok() ? *parsed : Json();
}

Json SlowJson(const SlowStatement& s) {
  Json j = StatementJson(s.stmt);
  j["parameters"] = s.parameters;
  j["plan"] = s.plan_json.empty() ? Json() : PlanOrNull(s.plan_json);
  j["plan_error"] = s.plan_error.empty() ? Json() : Json(s.plan_error);
  j["plan_total_cost"] = s.plan_cost ? Json(*s.plan_cost) : Json();
  j["plan_kind"] =
      "generic plan: PREPARE + plan_cache_mode=force_generic_plan + EXPLAIN EXECUTE "
      "with NULL for each $n";
  if (!s.analyze_json.empty()) j["explain_analyze"] = PlanOrNull(s.analyze_json);
  if (!s.analyze_note.empty()) j["explain_analyze_note"] = s.analyze_note;
  Json cands = Json::MakeArray();
  for (const HypoCandidate& c : s.candidates) {
    Json cj = Spec(c.index);
    cj["hypothetical_total_cost"] = c.cost ? Json(*c.cost) : Json();
    if (!c.error.empty()) cj["error"] = c.error;
    cands.Push(cj);
  }
  j["hypopg_candidates"] = cands;
  if (s.suggestion && s.plan_cost && s.suggestion_cost) {
    Json adv = Spec(*s.suggestion);
    adv["cost_before"] = *s.plan_cost;
    adv["cost_after"] = *s.suggestion_cost;
    adv["cost_cut"] = *s.plan_cost > 0 ? 1 - *s.suggestion_cost / *s.plan_cost : 0.0;
    adv["sql"] =
        "CREATE INDEX CONCURRENTLY " + IndexName(*s.suggestion) + " ON " + s.suggestion->Describe();
    j["suggested_index"] = adv;
  } else {
    j["suggested_index"] = nullptr;
    j["advice_note"] = s.advice_note;
  }
  return j;
}

Json TrialJson(const IndexTrial& t) {
  Json j = Spec(t.index);
  j["name"] = t.name;
  j["origin"] = t.origin;
  j["statement"] = t.target_query;
  j["queryid"] = std::to_string(t.target.queryid);
  j["mean_before_ms"] = t.mean_before_ms;
  j["calls_before"] = t.calls_before;
  j["mean_after_ms"] = t.mean_after_ms ? Json(*t.mean_after_ms) : Json();
  j["calls_after"] = t.calls_after;
  j["remeasure_window_s"] = t.remeasure_s;
  j["verdict"] = t.verdict;
  j["reason"] = t.reason;
  return j;
}

Json Strings(const std::vector<std::string>& v) {
  Json j = Json::MakeArray();
  for (const std::string& s : v) j.Push(s);
  return j;
}

Json WindowJson(const DbAnalysis& a) {
  Json w = Json::MakeObject();
  w["duration_s"] = a.window_s;
  w["measured"] = a.window_measured;
  w["global_reset"] = a.window.global_reset;
  w["entries_reset"] = a.window.entries_reset;
  w["dealloc"] = a.window.dealloc_delta;
  w["notes"] = Strings(a.window.notes);
  w["counters"] =
      "pg_stat_statements calls, total_exec_time, rows, shared_blks_hit, "
      "shared_blks_read: end minus start of the window, per (userid, dbid, queryid, "
      "toplevel); framescope's own statements (/* framescope */) left out";
  return w;
}

Json TablesJson(const DbAnalysis& a) {
  Json arr = Json::MakeArray();
  for (const SeqScanTable& t : a.seq_scan_tables) {
    Json j = Json::MakeObject();
    j["schema"] = t.schema;
    j["table"] = t.table;
    j["seq_scan"] = t.seq_scan;
    j["seq_tup_read"] = t.seq_tup_read;
    j["n_live_tup"] = t.n_live_tup;
    arr.Push(j);
  }
  return arr;
}

Json IndexJson(const IndexRef& i) {
  Json j = Json::MakeObject();
  j["schema"] = i.schema;
  j["table"] = i.table;
  j["index"] = i.index;
  j["size_bytes"] = i.size_bytes;
  return j;
}

Json UnusedJson(const DbAnalysis& a) {
  Json arr = Json::MakeArray();
  for (const UnusedIndex& u : a.unused_indexes) arr.Push(IndexJson(u));
  return arr;
}

Json LeftoverJson(const DbAnalysis& a) {
  Json arr = Json::MakeArray();
  for (const LeftoverIndex& l : a.leftover_indexes) {
    Json j = IndexJson(l);
    j["valid"] = l.valid;
    j["ours"] = l.ours;
    j["may_be_building"] = l.may_be_building;
    j["why"] = l.why;
    j["action"] = l.action;
    arr.Push(j);
  }
  return arr;
}

std::string Missing(const std::string& why) { return why.empty() ? "available" : why; }

}  // namespace

Json DbChecklist(const DbAnalysis& a) {
  Json c = Json::MakeObject();
  c["item"] =
      "3.1 no PostgreSQL statement with a mean execution time over 100 ms; slow ones "
      "identified and indexed";
  auto not_measurable = [&](const std::string& why) {
    c["verdict"] = "not measurable";
    c["reason"] = why;
    return c;
  };
  if (!a.unreachable.empty())
    return not_measurable("the server could not be reached: " + a.unreachable);
  if (!a.pgss_missing.empty()) return not_measurable(a.pgss_missing);
  if (!a.window_measured)
    return not_measurable("the window could not be read: " + Strings(a.errors).Dump());
  if (a.window.statements.empty()) return not_measurable("no statement ran in the window");
  const auto worst = std::max_element(
      a.window.statements.begin(), a.window.statements.end(),
      [](const WindowedStatement& x, const WindowedStatement& y) { return x.mean_ms < y.mean_ms; });
  const int64_t over =
      std::count_if(a.window.statements.begin(), a.window.statements.end(),
                    [](const WindowedStatement& s) { return s.mean_ms > kChecklistMeanMs; });
  const bool met = worst->mean_ms <= kChecklistMeanMs;
  c["verdict"] = met ? "met" : "not met";
  const std::string text = SqueezeQuery(worst->query, 100);
  c["reason"] = "worst statement mean " + Fixed(worst->mean_ms, 2) + " ms over " +
                std::to_string(worst->delta.calls) +
                " calls (pg_stat_statements total_exec_time / calls over the " +
                Fixed(a.window_s, 1) + " s window, " + worst->window_part + "): " + text + "; " +
                std::to_string(over) + " of " + std::to_string(a.window.statements.size()) +
                " statements over 100 ms";
  return c;
}

Json DbAnalysisToJson(const DbAnalysis& a) {
  Json j = Json::MakeObject();
  j["server"] = a.server;
  j["reachable"] = a.unreachable.empty();
  if (!a.unreachable.empty()) j["error"] = a.unreachable;
  j["server_version"] = a.server_version;
  j["pg_stat_statements"] = Missing(a.pgss_missing);
  j["hypopg"] = Missing(a.hypopg_missing);
  Json o = Json::MakeObject();
  o["slow_ms"] = a.options.slow_ms;
  o["min_cost_cut"] = a.options.min_cost_cut;
  o["keep_margin"] = a.options.keep_margin;
  o["apply"] = a.options.apply;
  o["explain_analyze"] = a.options.explain_analyze;
  j["options"] = o;
  j["window"] = WindowJson(a);
  Json stmts = Json::MakeArray();
  for (const WindowedStatement& s : a.window.statements) stmts.Push(StatementJson(s));
  j["statements"] = stmts;
  Json slow = Json::MakeArray();
  for (const SlowStatement& s : a.slow) slow.Push(SlowJson(s));
  j["slow_statements"] = slow;
  j["seq_scan_tables"] = TablesJson(a);
  j["seq_scan_rule"] = "tables whose pg_stat_user_tables.seq_tup_read grew by at least " +
                       std::to_string(a.options.seq_scan_min_rows) + " rows in the window" +
                       (a.seq_scan_note.empty() ? "" : " (" + a.seq_scan_note + ")");
  j["unused_indexes"] = UnusedJson(a);
  j["unused_indexes_rule"] =
      "pg_stat_user_indexes.idx_scan = 0 since pg_stat_database.stats_reset (" + a.unused_since +
      "); unique and primary-key indexes left out";
  j["leftover_indexes"] = LeftoverJson(a);
  j["leftover_indexes_rule"] =
      "pg_index.indisvalid false and not in pg_stat_progress_create_index, or commented "
      "'framescope --apply: on trial by backend N' with N gone from pg_stat_activity; ours "
      "(fs_idx_* or commented by framescope) are dropped by --apply or --try-index, others only "
      "reported";
  Json trials = Json::MakeArray();
  for (const IndexTrial& t : a.trials) trials.Push(TrialJson(t));
  j["index_trials"] = trials;
  j["errors"] = Strings(a.errors);
  j["checklist"] = DbChecklist(a);
  return j;
}

}  // namespace fs::io
