#include "src/report/db_report.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "src/report/cpu_report.h"
#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

using io::DbAnalysis;

const char* kHeader[] = {"calls", "mean ms", "total ms", "rows", "hit %", "statement"};

// calls, mean ms, total ms, rows, shared-buffer hit % (or "-" without block traffic), text.
std::vector<std::string> Cells(const io::WindowedStatement& s, size_t text_chars) {
  const int64_t blocks = s.delta.shared_blks_hit + s.delta.shared_blks_read;
  return {std::to_string(s.delta.calls),
          Fixed(s.mean_ms, 2),
          Fixed(s.delta.total_exec_ms, 1),
          std::to_string(s.delta.rows),
          blocks > 0 ? Fixed(100.0 * s.delta.shared_blks_hit / blocks, 1) : "-",
          io::SqueezeQuery(s.query, text_chars) +
              (s.from_end_values_only ? " [" + s.window_part + "]" : "")};
}

std::string Advice(const io::SlowStatement& s) {
  std::string plan =
      s.plan_cost ? "generic plan cost " + Fixed(*s.plan_cost, 1) : "no plan: " + s.plan_error;
  if (!s.suggestion || !s.plan_cost || !s.suggestion_cost) return plan + "; " + s.advice_note;
  return plan + "; suggested CREATE INDEX ON " + s.suggestion->Describe() + ": cost " +
         Fixed(*s.plan_cost, 1) + " -> " + Fixed(*s.suggestion_cost, 1) + " (-" +
         Fixed((1 - *s.suggestion_cost / *s.plan_cost) * 100, 1) + " %, HypoPG)";
}

std::string Trial(const io::IndexTrial& t) {
  std::string s = t.name + " on " + t.index.Describe() + " (" + t.origin + "): " + t.verdict;
  if (t.calls_before > 0 || t.mean_after_ms) {
    s += "; mean " + Fixed(t.mean_before_ms, 2) + " ms (" + std::to_string(t.calls_before) +
         " calls) -> " +
         (t.mean_after_ms ? Fixed(*t.mean_after_ms, 2) + " ms (" + std::to_string(t.calls_after) +
                                " calls in " + Fixed(t.remeasure_s, 1) + " s)"
                          : std::string("not measured"));
  }
  return s + "; " + t.reason;
}

// Everything that limited the analysis, in words.
std::vector<std::string> Problems(const DbAnalysis& a) {
  std::vector<std::string> out;
  for (const std::string& s : {a.unreachable, a.pgss_missing, a.hypopg_missing, a.seq_scan_note}) {
    if (!s.empty()) out.push_back(s);
  }
  for (const std::string& s : a.window.notes) out.push_back(s);
  for (const std::string& s : a.errors) out.push_back(s);
  return out;
}

std::string Intro(const DbAnalysis& a) {
  return "PostgreSQL " + a.server_version + " at " + a.server +
         ": pg_stat_statements read at the "
         "start and end of a " +
         Fixed(a.window_s, 1) +
         " s window (calls, total_exec_time, rows, "
         "shared_blks_hit/read per userid, dbid, queryid, toplevel; framescope's own statements "
         "left out). Slow: windowed mean over " +
         Fixed(a.options.slow_ms, 1) +
         " ms. Index advice: HypoPG, suggested when the generic plan's cost falls by at least " +
         Fixed(a.options.min_cost_cut * 100, 0) + " %.";
}

std::string SeqScan(const io::SeqScanTable& t) {
  return t.schema + "." + t.table + ": " + std::to_string(t.seq_scan) + " seq scans read " +
         std::to_string(t.seq_tup_read) + " rows (n_live_tup " + std::to_string(t.n_live_tup) + ")";
}

std::string Unused(const io::IndexRef& u) {
  return u.schema + "." + u.index + " on " + u.table + " (" + Fixed(u.size_bytes / 1048576.0, 2) +
         " MiB)";
}

std::string Leftover(const io::LeftoverIndex& l) {
  return Unused(l) + ": " + l.why + "; " + l.action;
}

std::string Checklist(const DbAnalysis& a) {
  Json c = io::DbChecklist(a);
  return c.Get("item").AsString() + ": " + c.Get("verdict").AsString() + " (" +
         c.Get("reason").AsString() + ")";
}

std::string HtmlList(const std::vector<std::string>& items, const char* cls) {
  if (items.empty()) return "";
  std::string h = "<ul class=\"" + std::string(cls) + "\">";
  for (const std::string& s : items) h += "<li>" + HtmlEscape(s) + "</li>";
  return h + "</ul>\n";
}

template <typename T, typename F>
std::vector<std::string> Map(const std::vector<T>& v, F f) {
  std::vector<std::string> out;
  for (const T& x : v) out.push_back(f(x));
  return out;
}

std::vector<std::string> SlowLines(const DbAnalysis& a) {
  return Map(a.slow, [](const io::SlowStatement& s) {
    return "mean " + Fixed(s.stmt.mean_ms, 2) + " ms x " + std::to_string(s.stmt.delta.calls) +
           " calls: " + io::SqueezeQuery(s.stmt.query, 200) + " | " + Advice(s);
  });
}

}  // namespace

std::string RenderDbHtml(const DbAnalysis& a, const std::string& json_path) {
  std::string h = "<h2 id=\"db\">PostgreSQL</h2>\n<p>" + HtmlEscape(Intro(a)) +
                  " Data: <a href=\"" + HtmlEscape(json_path) + "\">" + HtmlEscape(json_path) +
                  "</a>.</p>\n";
  h += "<p><b>" + HtmlEscape(Checklist(a)) + "</b></p>\n";
  h += HtmlList(Problems(a), "db-problems");
  h += "<table id=\"db-statements\"><tr>";
  for (const char* c : kHeader) h += std::string("<th>") + c + "</th>";
  h += "</tr>\n";
  for (const io::WindowedStatement& s : a.window.statements) {
    h += "<tr>";
    auto cells = Cells(s, 300);
    for (size_t i = 0; i < cells.size(); ++i) {
      h += (i + 1 < cells.size() ? "<td class=\"n\">" : "<td><code>") + HtmlEscape(cells[i]) +
           (i + 1 < cells.size() ? "</td>" : "</code></td>");
    }
    h += "</tr>\n";
  }
  h += "</table>\n";
  h += "<h3>Slow statements</h3>\n" + HtmlList(SlowLines(a), "db-slow");
  if (!a.trials.empty())
    h += "<h3>Index trials</h3>\n" + HtmlList(Map(a.trials, Trial), "db-trials");
  h += "<h3>Sequential scans and unused indexes</h3>\n" +
       HtmlList(Map(a.seq_scan_tables, SeqScan), "db-seqscans") +
       HtmlList(Map(a.unused_indexes, Unused), "db-unused");
  if (!a.leftover_indexes.empty())
    h += "<h3>Indexes left behind</h3>\n" +
         HtmlList(Map(a.leftover_indexes, Leftover), "db-leftover");
  return h;
}

std::string RenderBaselineDbSection(const DbAnalysis& a, const std::string& json_path) {
  std::string m = std::string(kDbSectionBegin) + "\n## PostgreSQL\n\n" + Intro(a) + " Data in `" +
                  json_path + "`.\n\n**" + MdCell(Checklist(a), 600) + "**\n\n";
  for (const std::string& p : Problems(a)) m += "- " + MdCell(p, 400) + "\n";
  m += "\n| calls | mean ms | total ms | rows | hit % | statement "
       "|\n|---:|---:|---:|---:|---:|---|\n";
  for (const io::WindowedStatement& s : a.window.statements) {
    auto cells = Cells(s, 100);
    m += "|";
    for (const std::string& c : cells) m += " " + MdCell(c, 140) + " |";
    m += "\n";
  }
  auto bullets = [&](const char* title, const std::vector<std::string>& lines) {
    if (lines.empty()) return;
    m += std::string("\n") + title + ":\n\n";
    for (const std::string& l : lines) m += "- " + MdCell(l, 500) + "\n";
  };
  bullets("Slow statements", SlowLines(a));
  bullets("Index trials", Map(a.trials, Trial));
  bullets("Sequential scans", Map(a.seq_scan_tables, SeqScan));
  bullets("Indexes never used (idx_scan = 0, unique/primary keys left out)",
          Map(a.unused_indexes, Unused));
  bullets("Indexes left behind (invalid, or a framescope trial that never got its verdict)",
          Map(a.leftover_indexes, Leftover));
  m += std::string("\n") + kDbSectionEnd + "\n";
  return m;
}

std::string RenderDbTerminal(const DbAnalysis& a, size_t max_rows) {
  std::string t = "PostgreSQL at " + a.server + ", window " + Fixed(a.window_s, 1) + " s\n";
  for (const std::string& p : Problems(a)) t += "! " + p + "\n";
  char line[512];
  snprintf(line, sizeof(line), "%8s %10s %11s %9s %6s  %s\n", kHeader[0], kHeader[1], kHeader[2],
           kHeader[3], kHeader[4], kHeader[5]);
  t += a.window.statements.empty() ? "no statement measured in the window\n" : line;
  for (size_t i = 0; i < a.window.statements.size() && i < max_rows; ++i) {
    auto c = Cells(a.window.statements[i], 70);
    snprintf(line, sizeof(line), "%8s %10s %11s %9s %6s  %s\n", c[0].c_str(), c[1].c_str(),
             c[2].c_str(), c[3].c_str(), c[4].c_str(), c[5].c_str());
    t += line;
  }
  if (a.window.statements.size() > max_rows) {
    t += "  ... " + std::to_string(a.window.statements.size() - max_rows) + " more in the JSON\n";
  }
  auto block = [&](const char* title, const std::vector<std::string>& lines) {
    if (lines.empty()) return;
    t += std::string(title) + ":\n";
    for (const std::string& l : lines) t += "  " + l + "\n";
  };
  block("slow statements", SlowLines(a));
  block("index trials", Map(a.trials, Trial));
  block("sequential scans", Map(a.seq_scan_tables, SeqScan));
  block("indexes never used", Map(a.unused_indexes, Unused));
  block("indexes left behind", Map(a.leftover_indexes, Leftover));
  return t + Checklist(a) + "\n";
}

}  // namespace fs::profile
