#include "src/report/redis_report.h"

#include <algorithm>
#include <cmath>

#include "src/base/stats.h"
#include "src/report/cpu_report.h"
#include "src/report/flamegraph.h"

namespace fs::profile {
namespace {

constexpr size_t kSlowlogRows = 20;

std::string Count(double v) { return Fixed(v, 0); }

std::string Share(const std::optional<double>& v) {
  return v ? Fixed(*v * 100, 1) + " %" : "n/a (no commands)";
}

std::string Ratio(const std::optional<double>& v, const char* none) {
  return v ? Fixed(*v, 2) : std::string(none);
}

std::string Bucket(const std::optional<io::QuantileBucket>& b) {
  if (!b) return "n/a";
  return "(" + std::to_string(b->lower_us) + ", " + std::to_string(b->upper_us) + "]";
}

std::vector<std::string> CountCells(const io::PipelineCounts& c) {
  return {Count(c.commands), Count(c.pipelined), Count(c.round_trips), Share(c.Efficiency()),
          Ratio(c.CommandsPerRoundTrip(), "n/a")};
}

RedisTable OpsTable(const io::RedisAnalysis& a) {
  RedisTable t{"redis-ops",
               "Client pipelining per source and op (framescope_redis_*_total{source,op}, "
               "window deltas)",
               {"service", "source", "op", "commands", "pipelined", "round trips",
                "pipeline efficiency", "commands / round trip"},
               {},
               "no client service sent Redis commands with counters in the window"};
  for (const io::OpPipelining& o : a.clients.ops) {
    std::vector<std::string> row = {o.service, o.source, o.op.empty() ? "(no op label)" : o.op};
    for (std::string& c : CountCells(o.counts)) row.push_back(std::move(c));
    t.rows.push_back(std::move(row));
  }
  return t;
}

RedisTable SourcesTable(const io::RedisAnalysis& a) {
  RedisTable t{"redis-sources",
               "Client pipelining per source",
               {"source", "commands", "pipelined", "round trips", "pipeline efficiency",
                "commands / round trip"},
               {},
               "no client service sent Redis commands with counters in the window"};
  for (const io::SourcePipelining& s : a.clients.sources) {
    std::vector<std::string> row = {s.source};
    for (std::string& c : CountCells(s.counts)) row.push_back(std::move(c));
    t.rows.push_back(std::move(row));
  }
  if (!t.rows.empty()) {
    std::vector<std::string> row = {"all client services"};
    for (std::string& c : CountCells(a.clients.total)) row.push_back(std::move(c));
    t.rows.push_back(std::move(row));
  }
  return t;
}

RedisTable SideBySide(const io::RedisAnalysis& a) {
  const io::PipelineCounts& c = a.clients.total;
  const io::RedisServerCheck& s = a.server;
  const bool clients = a.clients.any_counters;
  const std::string none = clients ? "" : "n/a (no client counters)";
  auto server = [&](double v) { return s.measured ? Count(v) : "n/a (" + s.reason + ")"; };
  return {
      "redis-cross-check",
      "Clients' counters and the server's, side by side (server: INFO stats, " +
          (s.basis.empty() ? std::string("not measured") : s.basis) + ", this analyser's own " +
          std::to_string(s.own_commands) + " command(s) and " + std::to_string(s.own_reads) +
          " read(s) subtracted)",
      {"measure", "clients (framescope_redis_*_total)", "server (INFO stats)"},
      {{"commands", clients ? Count(c.commands) : none,
        server(s.commands) + " (Δtotal_commands_processed)"},
       {"round trips / reads", clients ? Count(c.round_trips) : none,
        server(s.reads) + " (Δtotal_reads_processed)"},
       {"commands per round trip / per read",
        clients ? Ratio(c.CommandsPerRoundTrip(), "n/a") : none, Ratio(s.CommandsPerRead(), "n/a")},
       {"pipeline efficiency", clients ? Share(c.Efficiency()) : none,
        "n/a (Redis counts no pipelining)"}},
      ""};
}

RedisTable CommandsTable(const io::RedisAnalysis& a) {
  RedisTable t{"redis-commands",
               "Per command (INFO commandstats deltas; latency: LATENCY HISTOGRAM deltas, the "
               "bucket in µs each percentile lies in)",
               {"command", "calls", "µs per call", "rejected", "failed", "p50 µs", "p99 µs",
                "p99.9 µs", "note"},
               {},
               a.redis_error.empty() ? "no commands but this analyser's in the window"
                                     : "not measurable: " + a.redis_error};
  for (const io::RedisCommandWindow& c : a.commands) {
    std::string note = c.latency_note.empty() ? a.latency_error : c.latency_note;
    if (c.own_calls > 0) {
      note += std::string(note.empty() ? "" : "; ") + std::to_string(c.own_calls) +
              " own call(s) subtracted from calls";
    }
    t.rows.push_back({c.name, std::to_string(c.calls),
                      c.usec_per_call ? Fixed(*c.usec_per_call, 2) : "n/a",
                      std::to_string(c.rejected_calls), std::to_string(c.failed_calls),
                      Bucket(c.p50), Bucket(c.p99), Bucket(c.p999), note});
  }
  return t;
}

RedisTable SlowlogTable(const io::RedisAnalysis& a) {
  RedisTable t{"redis-slowlog",
               "Slow log entries new in the window (" + std::to_string(a.slowlog_new) + " logged" +
                   (a.slowlog_note.empty() ? "" : "; " + a.slowlog_note) + ")",
               {"id", "µs", "command", "client"},
               {},
               a.slowlog_note.empty() ? "none" : a.slowlog_note};
  for (size_t i = 0; i < a.slowlog.size() && i < kSlowlogRows; ++i) {
    const io::SlowlogEntry& e = a.slowlog[i];
    std::string args;
    for (const std::string& s : e.args) args += (args.empty() ? "" : " ") + s;
    t.rows.push_back(
        {std::to_string(e.id), std::to_string(e.duration_us), MdCell(args, 80), e.client});
  }
  return t;
}

RedisTable KeyspaceTable(const io::RedisAnalysis& a) {
  RedisTable t{"redis-keyspace",
               "Keyspace (INFO keyspace) at the window's start and end",
               {"db", "keys start", "keys end", "growth", "expires start", "expires end"},
               {},
               "no keys"};
  for (const io::RedisKeyspaceGrowth& g : a.keyspace) {
    const double growth = static_cast<double>(g.end.keys) - static_cast<double>(g.begin.keys);
    t.rows.push_back({g.db, std::to_string(g.begin.keys), std::to_string(g.end.keys),
                      (growth > 0 ? "+" : "") + Count(growth), std::to_string(g.begin.expires),
                      std::to_string(g.end.expires)});
  }
  return t;
}

std::string MdTable(const RedisTable& t) {
  std::string s = "### " + t.title + "\n\n";
  if (t.rows.empty()) return s + "_" + t.empty + "_\n\n";
  s += "|";
  for (const std::string& h : t.header) s += " " + MdCell(h) + " |";
  s += "\n|";
  for (size_t i = 0; i < t.header.size(); ++i) s += "---|";
  s += "\n";
  for (const auto& row : t.rows) {
    s += "|";
    for (const std::string& c : row) s += " " + MdCell(c) + " |";
    s += "\n";
  }
  return s + "\n";
}

std::string HtmlTable(const RedisTable& t) {
  std::string s = "<h3>" + HtmlEscape(t.title) + "</h3>\n";
  if (t.rows.empty()) return s + "<p>" + HtmlEscape(t.empty) + "</p>\n";
  s += "<table id=\"" + t.id + "\"><tr>";
  for (const std::string& h : t.header) s += "<th>" + HtmlEscape(h) + "</th>";
  s += "</tr>\n";
  for (const auto& row : t.rows) {
    s += "<tr>";
    for (const std::string& c : row) s += "<td>" + HtmlEscape(c) + "</td>";
    s += "</tr>\n";
  }
  return s + "</table>\n";
}

// Display width: µ and other UTF-8 sequences count as one column.
size_t Width(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string TextTable(const RedisTable& t) {
  std::string s = t.title + "\n";
  if (t.rows.empty()) return s + "  " + t.empty + "\n\n";
  std::vector<size_t> w(t.header.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < w.size(); ++i) w[i] = std::max(w[i], Width(row[i]));
  };
  widen(t.header);
  for (const auto& row : t.rows) widen(row);
  auto line = [&](const std::vector<std::string>& row) {
    std::string l = " ";
    for (size_t i = 0; i < row.size(); ++i) {
      l += " " + row[i] + (i + 1 < row.size() ? std::string(w[i] - Width(row[i]), ' ') : "");
    }
    return l + "\n";
  };
  s += line(t.header);
  for (const auto& row : t.rows) s += line(row);
  return s + "\n";
}

}  // namespace

std::vector<std::string> RedisSummaryLines(const io::RedisAnalysis& a) {
  std::vector<std::string> out;
  out.push_back("Redis " + a.redis + (a.redis_version.empty() ? "" : " (" + a.redis_version + ")") +
                " over a " + Fixed(a.window_s, 1) + " s window.");
  if (!a.redis_error.empty())
    out.push_back("Not measurable: Redis could not be read " + a.redis_error);
  if (!a.reset.empty()) out.push_back(a.reset + ".");
  out.push_back("Checklist 3.2 Redis pipeline efficiency over 80 %: " + a.verdict + " (" +
                a.reason + ").");
  for (const io::ServicePipeliningStatus& s : a.clients.services) {
    if (s.state == "measured") continue;
    out.push_back("Service " + s.endpoint.name + " (metrics port " +
                  std::to_string(s.endpoint.port) + "): " + s.state +
                  (s.detail.empty() ? "" : ": " + s.detail) + ".");
  }
  for (const std::string& d : a.disagreement) out.push_back("Clients vs server: " + d + ".");
  if (a.used_memory_begin && a.used_memory_end) {
    const double growth = *a.used_memory_end - *a.used_memory_begin;
    out.push_back("used_memory (INFO memory) " + Count(*a.used_memory_begin) + " -> " +
                  Count(*a.used_memory_end) + " bytes (" + (growth >= 0 ? "+" : "") +
                  Count(growth) + ").");
  }
  return out;
}

std::vector<RedisTable> RedisTables(const io::RedisAnalysis& a) {
  return {OpsTable(a),      SourcesTable(a), SideBySide(a),
          CommandsTable(a), SlowlogTable(a), KeyspaceTable(a)};
}

std::string RenderRedisHtml(const io::RedisAnalysis& a, const std::string& json_path) {
  std::string h = "<h2 id=\"redis\">Redis: pipelining, commands, slow log</h2>\n";
  for (const std::string& l : RedisSummaryLines(a)) h += "<p>" + HtmlEscape(l) + "</p>\n";
  h += "<p>Report: <a href=\"" + HtmlEscape(json_path) + "\">" + HtmlEscape(json_path) +
       "</a></p>\n";
  for (const RedisTable& t : RedisTables(a)) h += HtmlTable(t);
  return h;
}

std::string RenderBaselineRedisSection(const io::RedisAnalysis& a, const std::string& json_path) {
  std::string s =
      std::string(kRedisSectionBegin) + "\n## Redis: pipelining, commands, slow log\n\n";
  for (const std::string& l : RedisSummaryLines(a)) s += l + "\n\n";
  s += "Report `" + json_path + "`.\n\n";
  for (const RedisTable& t : RedisTables(a)) s += MdTable(t);
  return s + kRedisSectionEnd + "\n";
}

std::string RenderRedisText(const io::RedisAnalysis& a) {
  std::string s;
  for (const std::string& l : RedisSummaryLines(a)) s += l + "\n";
  s += "\n";
  for (const RedisTable& t : RedisTables(a)) s += TextTable(t);
  return s;
}

}  // namespace fs::profile
