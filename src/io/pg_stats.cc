#include "src/io/pg_stats.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include "src/base/hash.h"
#include "src/base/stats.h"

namespace fs::io {
namespace {

bool IsOwn(const std::string& query) { return query.find(kOwnMarker) != std::string::npos; }

StatementCounters Minus(const StatementCounters& a, const StatementCounters& b) {
  return {a.calls - b.calls, a.total_exec_ms - b.total_exec_ms, a.rows - b.rows,
          a.shared_blks_hit - b.shared_blks_hit, a.shared_blks_read - b.shared_blks_read};
}

// Cumulative counters only grow; a smaller value means the entry was reset (or evicted and
// created again) between the reads.
bool WentDown(const StatementCounters& end, const StatementCounters& start) {
  return end.calls < start.calls || end.total_exec_ms < start.total_exec_ms - 1e-9 ||
         end.rows < start.rows;
}

std::string Plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

void AddNotes(const PgssSnapshot& start, const PgssSnapshot& end, StatementWindow* w) {
  const double span = end.taken_unix_s - start.taken_unix_s;
  if (w->global_reset) {
    w->notes.push_back("pg_stat_statements_reset() at " + end.stats_reset +
                       " inside the window (pg_stat_statements_info.stats_reset moved): every "
                       "statement counts from that moment only, the last " +
                       Fixed(end.taken_unix_s - end.stats_reset_unix_s, 1) + " s of the " +
                       Fixed(span, 1) + " s window");
  }
  if (w->entries_reset > 0) {
    w->notes.push_back(Plural(w->entries_reset, "entry", "entries") +
                       " reset on their own in the window (calls or total_exec_time went "
                       "down): counted from their end values only, since an unknown point in "
                       "the window (PostgreSQL 15 keeps no per-entry reset time)");
  }
  if (w->dealloc_delta > 0) {
    w->notes.push_back(Plural(w->dealloc_delta, "entry was", "entries were") +
                       " evicted in the window (pg_stat_statements_info.dealloc grew; raise "
                       "pg_stat_statements.max): an evicted statement that ran again counts "
                       "only from its re-creation");
  }
}

}  // namespace

StatementWindow DiffSnapshots(const PgssSnapshot& start, const PgssSnapshot& end) {
  StatementWindow w;
  w.global_reset = !end.stats_reset.empty() && end.stats_reset != start.stats_reset;
  // A global reset also zeroes dealloc: what it shows at the end happened after the reset.
  w.dealloc_delta =
      w.global_reset ? end.dealloc : std::max<int64_t>(0, end.dealloc - start.dealloc);
  std::map<StatementKey, const StatementEntry*> before;
  for (const StatementEntry& e : start.entries) before[e.key] = &e;
  const std::string since_reset = "since the reset at " + end.stats_reset + " (the last " +
                                  Fixed(end.taken_unix_s - end.stats_reset_unix_s, 1) +
                                  " s of the window)";
  for (const StatementEntry& e : end.entries) {
    if (IsOwn(e.query)) continue;
    WindowedStatement s{e.key, e.query, e.database, e.user, e.counters, 0, "whole window", true};
    auto it = before.find(e.key);
    if (w.global_reset) {
      s.window_part = since_reset;
    } else if (it == before.end()) {
      s.window_part = "whole window (new entry: counted from zero)";
      s.from_end_values_only = false;
    } else if (WentDown(e.counters, it->second->counters)) {
      ++w.entries_reset;
      s.window_part = "since its own reset at an unknown point in the window";
    } else {
      s.delta = Minus(e.counters, it->second->counters);
      s.from_end_values_only = false;
    }
    if (s.delta.calls <= 0) continue;
    s.mean_ms = s.delta.total_exec_ms / static_cast<double>(s.delta.calls);
    w.statements.push_back(std::move(s));
  }
  std::stable_sort(w.statements.begin(), w.statements.end(),
                   [](const WindowedStatement& a, const WindowedStatement& b) {
                     return a.delta.total_exec_ms > b.delta.total_exec_ms;
                   });
  AddNotes(start, end, &w);
  return w;
}

namespace {

bool IdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Words EXPLAIN prints in conditions that are not columns (it prints them upper case).
bool PlanKeyword(const std::string& w) {
  static const std::set<std::string> kWords = {
      "AND",  "OR",   "NOT",     "IS",    "NULL", "TRUE",    "FALSE",    "ANY",      "ALL",
      "IN",   "LIKE", "BETWEEN", "ARRAY", "CASE", "WHEN",    "THEN",     "ELSE",     "END",
      "DESC", "ASC",  "NULLS",   "FIRST", "LAST", "SubPlan", "InitPlan", "DISTINCT", "FROM"};
  return kWords.count(w) > 0;
}

size_t SkipSpace(const std::string& s, size_t i) {
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

void AddUnique(std::vector<std::string>* v, const std::string& s) {
  if (std::find(v->begin(), v->end(), s) == v->end()) v->push_back(s);
}

// Every sequential scan with its filter's columns; `aliases` maps each scan's alias to it.
void WalkScans(const Json& node, PlanSummary* out, std::map<std::string, size_t>* aliases) {
  const std::string& relation = node.Get("Relation Name").AsString();
  if (!relation.empty()) out->relations.push_back(relation);
  if (node.Get("Node Type").AsString() == "Seq Scan") {
    const std::string& filter = node.Get("Filter").AsString();
    const std::string& alias = node.Get("Alias").AsString();
    if (!alias.empty()) (*aliases)[alias] = out->seq_scans.size();
    out->seq_scans.push_back(
        {node.Get("Schema").AsString(), relation, FilterIdentifiers(filter), filter});
  }
  for (const Json& child : node.Get("Plans").AsArray()) WalkScans(child, out, aliases);
}

// Join conditions and sort keys name columns as alias.column (VERBOSE): each column of a
// sequentially scanned table is a candidate too, after its filter's columns.
void WalkKeys(const Json& node, const std::map<std::string, size_t>& aliases, PlanSummary* out) {
  // Deeper nodes first: a join's keys, nearer the scan, before a sort's above it.
  for (const Json& child : node.Get("Plans").AsArray()) WalkKeys(child, aliases, out);
  std::vector<std::string> exprs;
  for (const char* key : {"Hash Cond", "Merge Cond", "Join Filter"}) {
    if (node.Get(key).is_string()) exprs.push_back(node.Get(key).AsString());
  }
  for (const Json& k : node.Get("Sort Key").AsArray()) exprs.push_back(k.AsString());
  for (const std::string& e : exprs) {
    for (const QualifiedName& q : QualifiedIdentifiers(e)) {
      auto it = aliases.find(q.qualifier);
      if (it != aliases.end()) AddUnique(&out->seq_scans[it->second].identifiers, q.name);
    }
  }
}

}  // namespace

std::vector<QualifiedName> QualifiedIdentifiers(const std::string& e) {
  std::vector<QualifiedName> out;
  std::string qualifier_text;  // the "alias" of alias.column
  bool after_cast = false;
  size_t i = 0;
  while (i < e.size()) {
    char c = e[i];
    if (c == '\'') {  // string literal, '' inside
      for (++i; i < e.size(); ++i) {
        if (e[i] == '\'' && (i + 1 >= e.size() || e[i + 1] != '\'')) break;
        if (e[i] == '\'') ++i;
      }
      ++i;
      continue;
    }
    if (c == ':' && i + 1 < e.size() && e[i + 1] == ':') {
      after_cast = true;
      i += 2;
      continue;
    }
    std::string word;
    if (c == '"') {
      size_t close = e.find('"', i + 1);
      if (close == std::string::npos) break;
      word = e.substr(i + 1, close - i - 1);
      i = close + 1;
    } else if (IdentStart(c)) {
      size_t j = i;
      while (j < e.size() && IdentChar(e[j])) ++j;
      word = e.substr(i, j - i);
      i = j;
    } else {
      if (c == '$' || std::isdigit(static_cast<unsigned char>(c))) {
        while (i + 1 < e.size() && IdentChar(e[i + 1])) ++i;  // $1, 42, 1e5
      }
      ++i;
      continue;
    }
    size_t next = SkipSpace(e, i);
    bool qualifier = next < e.size() && e[next] == '.';
    bool function = next < e.size() && e[next] == '(';
    bool type = after_cast;
    after_cast = false;
    if (qualifier) {
      i = next + 1;
      qualifier_text = word;
      continue;
    }
    std::string of = std::move(qualifier_text);
    qualifier_text.clear();
    if (function || type || PlanKeyword(word)) continue;
    out.push_back({of, word});
  }
  return out;
}

std::vector<std::string> FilterIdentifiers(const std::string& e) {
  std::vector<std::string> out;
  for (const QualifiedName& q : QualifiedIdentifiers(e)) {
    if (std::find(out.begin(), out.end(), q.name) == out.end()) out.push_back(q.name);
  }
  return out;
}

StatusOr<PlanSummary> ParsePlan(const std::string& explain_json) {
  auto parsed = Json::Parse(explain_json);
  if (!parsed.ok()) return parsed.status().Annotate("EXPLAIN output is not JSON");
  const Json& root = *parsed;
  if (!root.is_array() || root.size() == 0 || !root.AsArray()[0].Get("Plan").is_object()) {
    return Err("EXPLAIN output has no [{\"Plan\": ...}]");
  }
  const Json& plan = root.AsArray()[0].Get("Plan");
  if (!plan.Get("Total Cost").is_number()) return Err("EXPLAIN plan has no \"Total Cost\"");
  PlanSummary out;
  out.total_cost = plan.Get("Total Cost").AsDouble();
  std::map<std::string, size_t> aliases;
  WalkScans(plan, &out, &aliases);
  WalkKeys(plan, aliases, &out);
  std::erase_if(out.seq_scans, [](const SeqScanFilter& f) { return f.identifiers.empty(); });
  return out;
}

namespace {

// Index just past a quoted string / comment / dollar-quoted body starting at `i`, or `i`
// when none starts there.
size_t SkipQuoted(const std::string& s, size_t i) {
  auto past = [&](const std::string& close, size_t from) {
    size_t at = s.find(close, from);
    return at == std::string::npos ? s.size() : at + close.size();
  };
  if (s.compare(i, 2, "--") == 0) return past("\n", i);
  if (s.compare(i, 2, "/*") == 0) return past("*/", i + 2);
  if (s[i] == '\'' || s[i] == '"') {
    for (size_t j = i + 1; j < s.size(); ++j) {
      if (s[j] != s[i]) continue;
      if (j + 1 < s.size() && s[j + 1] == s[i]) {
        ++j;
        continue;
      }
      return j + 1;
    }
    return s.size();
  }
  if (s[i] == '$' && i + 1 < s.size() && (s[i + 1] == '$' || IdentStart(s[i + 1]))) {
    size_t end = i + 1;
    while (end < s.size() && IdentChar(s[end])) ++end;
    if (end < s.size() && s[end] == '$') return past(s.substr(i, end - i + 1), end + 1);
  }
  return i;
}

}  // namespace

int CountParameters(const std::string& sql) {
  int highest = 0;
  size_t i = 0;
  while (i < sql.size()) {
    size_t skipped = SkipQuoted(sql, i);
    if (skipped != i) {
      i = skipped;
      continue;
    }
    if (sql[i] == '$' && i + 1 < sql.size() &&
        std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      size_t j = i + 1;
      int n = 0;
      while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j])) && n < 100000) {
        n = n * 10 + (sql[j] - '0');
        ++j;
      }
      highest = std::max(highest, n);
      i = j;
      continue;
    }
    ++i;
  }
  return highest;
}

namespace {

// Past the comments, white space (and opening parentheses, with `parens`) from `i`.
size_t SkipBlank(const std::string& sql, size_t i, bool parens) {
  while (i < sql.size()) {
    size_t skipped = SkipQuoted(sql, i);
    if (skipped != i && sql[i] != '\'' && sql[i] != '"' && sql[i] != '$') {
      i = skipped;  // comments only
    } else if (std::isspace(static_cast<unsigned char>(sql[i])) || (parens && sql[i] == '(')) {
      ++i;
    } else {
      break;
    }
  }
  return i;
}

// The keyword or identifier at `*i`, upper-cased; `*i` moves past it.
std::string Word(const std::string& sql, size_t* i) {
  size_t j = *i;
  while (j < sql.size() && IdentChar(sql[j])) ++j;
  std::string word = sql.substr(*i, j - *i);
  std::transform(word.begin(), word.end(), word.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  *i = j;
  return word;
}

}  // namespace

bool Explainable(const std::string& sql) {
  size_t i = SkipBlank(sql, 0, true);
  static const std::set<std::string> kVerbs = {"SELECT", "INSERT", "UPDATE", "DELETE",
                                               "VALUES", "WITH",   "TABLE",  "MERGE"};
  return kVerbs.count(Word(sql, &i)) > 0;
}

std::optional<std::string> PreparedBody(const std::string& sql, std::string* types) {
  size_t i = SkipBlank(sql, 0, false);
  if (Word(sql, &i) != "PREPARE") return std::nullopt;
  i = SkipBlank(sql, i, false);
  if (i < sql.size() && sql[i] == '"') {
    i = SkipQuoted(sql, i);  // a quoted name
  } else if (Word(sql, &i).empty()) {
    return std::nullopt;
  }
  i = SkipBlank(sql, i, false);
  types->clear();
  if (i < sql.size() && sql[i] == '(') {
    size_t j = i;
    for (int depth = 0; j < sql.size(); ++j) {
      if (size_t q = SkipQuoted(sql, j); q != j) j = q;
      if (j >= sql.size()) break;
      if (sql[j] == '(') ++depth;
      if (sql[j] == ')' && --depth == 0) break;
    }
    if (j >= sql.size()) return std::nullopt;
    *types = sql.substr(i, j + 1 - i);
    i = SkipBlank(sql, j + 1, false);
  }
  if (Word(sql, &i) != "AS") return std::nullopt;
  i = SkipBlank(sql, i, false);
  if (i >= sql.size()) return std::nullopt;
  return sql.substr(i);
}

std::string IndexSpec::Describe() const {
  std::string cols;
  for (const std::string& c : columns) cols += (cols.empty() ? "" : ", ") + c;
  return (schema.empty() ? "" : schema + ".") + table + " (" + cols + ")";
}

StatusOr<IndexSpec> ParseIndexSpec(const std::string& text) {
  static const std::regex kSpec(
      R"(\s*(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:,\s*([A-Za-z_][A-Za-z0-9_]*)\s*)?\)\s*)");
  std::smatch m;
  if (!std::regex_match(text, m, kSpec)) {
    return Err("--try-index '" + text +
               "': expected table(column) or table(column,column), e.g. orders(customer_id)");
  }
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  IndexSpec spec{lower(m[1].str()), lower(m[2].str()), {lower(m[3].str())}};
  if (m[4].matched) spec.columns.push_back(lower(m[4].str()));
  if (spec.columns.size() == 2 && spec.columns[0] == spec.columns[1]) {
    return Err("--try-index '" + text + "': the same column twice");
  }
  return spec;
}

std::string IndexName(const IndexSpec& spec) {
  std::string name = "fs_idx_" + spec.table;
  for (const std::string& c : spec.columns) name += "_" + c;
  if (name.size() <= kMaxIdentifierBytes) return name;
  // Cut whole characters only, and keep names that differ only past the cut apart.
  const std::string tag = "_" + Fnv1aHex(name).substr(0, 8);
  size_t keep = kMaxIdentifierBytes - tag.size();
  while (keep > 0 && (static_cast<unsigned char>(name[keep]) & 0xC0) == 0x80) --keep;
  return name.substr(0, keep) + tag;
}

namespace {
std::string Quote(const std::string& text, char quote) {
  std::string out(1, quote);
  for (char c : text) {
    if (c == quote) out += quote;
    out += c;
  }
  return out + quote;
}
}  // namespace

std::string QuoteIdent(const std::string& ident) { return Quote(ident, '"'); }

std::string QuoteLiteral(const std::string& text) { return Quote(text, '\''); }

std::string SqueezeQuery(const std::string& q, size_t n) {
  std::string out;
  for (char c : q) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  if (out.size() > n) out = out.substr(0, n - 3) + "...";
  return out;
}

}  // namespace fs::io
