#include "src/io/redis_window.h"

#include <algorithm>
#include <cmath>

#include "src/base/clock.h"
#include "src/base/net.h"
#include "src/base/stats.h"

namespace fs::io {
namespace {

// SLOWLOG GET's count at End: Redis keeps 128 entries by default (slowlog-max-len).
constexpr int kSlowlogFetch = 128;

// "redis://user:pass@host:port" -> "host:port": the password never reaches a report.
std::string RedisLabel(const std::string& url) {
  std::string host;
  int port = 0;
  if (ParseHostPort(url, &host, &port).ok()) return host + ":" + std::to_string(port);
  return "(unparsable url)";
}

uint64_t Sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

std::string Pct(double share) { return Fixed(share * 100, 1) + " %"; }

std::string Num(double v) { return Fixed(v, v == std::floor(v) ? 0 : 2); }

}  // namespace

std::optional<double> RedisServerCheck::CommandsPerRead() const {
  if (!measured || !(reads > 0)) return std::nullopt;
  return commands / reads;
}

RedisWindow::RedisWindow(std::string redis_url, std::vector<MetricsEndpoint> services)
    : url_(std::move(redis_url)), label_(RedisLabel(url_)), services_(std::move(services)) {}

StatusOr<RedisReply> RedisWindow::Send(const std::vector<std::string>& args,
                                       const std::string& stat_name, Snapshot* s) {
  Status last = Status::Ok();
  // A second try on a fresh connection: the first may have been closed by a restart.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!client_) {
      auto c = RedisClient::Connect(url_, "framescope-redis", 2000);
      if (!c.ok()) return c.status();
      client_.emplace(std::move(c).value());
      s->connected_at = own_log_.size();
      own_log_.push_back("ping");  // Connect's PING (or AUTH: then the name is close enough)
    }
    auto r = client_->Command(args);
    if (r.ok()) {
      own_log_.push_back(stat_name);
      return r;
    }
    last = r.status();
    client_.reset();
  }
  return last;
}

// Order matters for exact subtraction. The INFO stats counters count a command after it ran
// and a read before its command runs, so between Begin's INFO and End's INFO the server counted
// Begin's INFO and everything sent after it, except End's INFO as a command but including it
// as a read: as many commands as reads, own_log_[info_at(begin), info_at(end)).
void RedisWindow::Take(Snapshot* s, bool at_end) {
  s->at_ns = MonotonicNs();
  if (!at_end) {
    auto slow = Send({"SLOWLOG", "GET", "1"}, "slowlog|get", s);
    if (!slow.ok()) {
      s->error = "Redis " + label_ + ": " + slow.status().message();
      return;
    }
    auto entries = ParseSlowlog(*slow);
    if (!entries.ok()) s->slowlog_error = entries.status().message();
    if (entries.ok() && !entries->empty()) s->slowlog_last_id = entries->front().id;
  }
  auto lat = Send({"LATENCY", "HISTOGRAM"}, "latency|histogram", s);
  if (lat.ok()) {
    // Its own place in the log: a reconnect's PING before it ran before it.
    s->latency_at = own_log_.size() - 1;
    auto parsed = ParseLatencyHistogram(*lat);
    if (parsed.ok()) s->latency = std::move(parsed).value();
    if (!parsed.ok()) s->latency_error = parsed.status().message() + " (Redis 7.0+ has it)";
  }
  auto info = lat.ok() ? Send({"INFO", "all"}, "info", s) : lat;
  if (!info.ok() || info->is_error()) {
    s->error = "Redis " + label_ + ": " + (info.ok() ? info->str : info.status().message());
    return;
  }
  s->info_at = own_log_.size() - 1;
  s->info_ns = MonotonicNs();
  s->info = ParseRedisInfo(info->str);
  if (at_end) {
    auto slow = Send({"SLOWLOG", "GET", std::to_string(kSlowlogFetch)}, "slowlog|get", s);
    auto entries =
        slow.ok() ? ParseSlowlog(*slow) : StatusOr<std::vector<SlowlogEntry>>(slow.status());
    if (entries.ok()) s->slowlog = std::move(entries).value();
    if (!entries.ok()) s->slowlog_error = entries.status().message();
  }
}

// The services are scraped after Begin's INFO and before End's, so the clients' window lies
// inside the server's: the server has seen everything the clients counted (and the margins).
void RedisWindow::Begin() {
  Take(&begin_, false);
  services_begin_ = ScrapeServices(services_);
  services_begun_ns_ = MonotonicNs();
}

void RedisWindow::End() {
  services_ending_ns_ = MonotonicNs();
  services_end_ = ScrapeServices(services_);
  Take(&end_, true);
  client_.reset();
}

bool RedisWindow::Restarted() const {
  auto b = begin_.info.find("run_id"), e = end_.info.find("run_id");
  return b != begin_.info.end() && e != end_.info.end() && b->second != e->second;
}

std::map<std::string, uint64_t> RedisWindow::OwnCalls(size_t from, size_t to) const {
  std::map<std::string, uint64_t> out;
  for (size_t i = from; i < to && i < own_log_.size(); ++i) ++out[own_log_[i]];
  return out;
}

void RedisWindow::AnalyseServer(RedisAnalysis* a) const {
  RedisServerCheck& s = a->server;
  const auto bc = InfoNumber(begin_.info, "total_commands_processed");
  const auto br = InfoNumber(begin_.info, "total_reads_processed");
  const auto ec = InfoNumber(end_.info, "total_commands_processed");
  const auto er = InfoNumber(end_.info, "total_reads_processed");
  if (!bc || !br || !ec || !er) {
    s.reason = "INFO stats lacks total_commands_processed or total_reads_processed (Redis 6+)";
    return;
  }
  s.measured = true;
  if (Restarted()) {
    // Counted from the restarted server's start: our reconnect's PING onwards, and End's INFO
    // read too (its read counts before it runs).
    const size_t n = end_.info_at - end_.connected_at;
    s.own_commands = n;
    s.own_reads = n + 1;
    s.commands = std::max(0.0, *ec - static_cast<double>(s.own_commands));
    s.reads = std::max(0.0, *er - static_cast<double>(s.own_reads));
    s.basis = "since the restart (" + Num(InfoNumber(end_.info, "uptime_in_seconds").value_or(0)) +
              " s before the window's end)";
  } else if (*ec < *bc || *er < *br) {
    // CONFIG RESETSTAT at an unknown moment: how many of ours came after it is unknown.
    s.commands = *ec;
    s.reads = *er;
    s.basis = "since a stats reset (CONFIG RESETSTAT) in the window; includes up to " +
              std::to_string(end_.info_at - begin_.info_at) + " command(s) of this analyser";
  } else {
    s.own_commands = s.own_reads = end_.info_at - begin_.info_at;
    s.commands = *ec - *bc - static_cast<double>(s.own_commands);
    s.reads = *er - *br - static_cast<double>(s.own_reads);
    s.basis = "window";
  }
}

void RedisWindow::AnalyseCommands(RedisAnalysis* a) const {
  const bool from_end = Restarted() || !a->reset.empty();
  const auto before = CommandStats(begin_.info), after = CommandStats(end_.info);
  const size_t own_from = Restarted() ? end_.connected_at : begin_.info_at;
  const auto own = OwnCalls(own_from, end_.info_at);
  const auto own_latency =
      OwnCalls(Restarted() ? end_.connected_at : begin_.latency_at, end_.latency_at);
  if (!begin_.latency_error.empty() || !end_.latency_error.empty()) {
    a->latency_error = "LATENCY HISTOGRAM: " +
                       (begin_.latency_error.empty() ? end_.latency_error : begin_.latency_error);
  }
  for (const auto& [name, e] : after) {
    CommandStat b;
    if (auto it = before.find(name); it != before.end() && !from_end) b = it->second;
    if (e.calls < b.calls) b = CommandStat{};  // this command's stats were reset
    RedisCommandWindow c;
    c.name = name;
    auto mine = own.find(name);
    c.own_calls = mine == own.end() ? 0 : mine->second;
    c.calls = Sub(e.calls - b.calls, c.own_calls);
    if (c.calls == 0) continue;  // nobody but this analyser
    c.usec = e.usec - std::min(e.usec, b.usec);
    c.rejected_calls = Sub(e.rejected_calls, b.rejected_calls);
    c.failed_calls = Sub(e.failed_calls, b.failed_calls);
    // Our own calls' time cannot be told apart: the mean is over every call in the window.
    c.usec_per_call = static_cast<double>(c.usec) / static_cast<double>(c.calls + c.own_calls);
    if (a->latency_error.empty()) {
      LatencyHistogram hb, he;
      if (auto it = begin_.latency.find(name); it != begin_.latency.end() && !Restarted()) {
        hb = it->second;
      }
      if (auto it = end_.latency.find(name); it != end_.latency.end()) he = it->second;
      auto w = HistogramDelta(hb, he);
      if (!w.ok()) {
        c.latency_note = "latency histogram reset in the window: " + w.status().message();
      } else if (w->calls == 0) {
        c.latency_note = "no latency recorded (latency-tracking off?)";
      } else {
        c.histogram_calls = w->calls;
        c.p50 = QuantileBounds(*w, 0.50);
        c.p99 = QuantileBounds(*w, 0.99);
        c.p999 = QuantileBounds(*w, 0.999);
        auto own_hist = own_latency.find(name);
        if (own_hist != own_latency.end()) {
          c.latency_note =
              "includes this analyser's " + std::to_string(own_hist->second) + " call(s)";
        }
      }
    }
    a->commands.push_back(std::move(c));
  }
  std::stable_sort(a->commands.begin(), a->commands.end(),
                   [](const auto& x, const auto& y) { return x.calls > y.calls; });
}

void RedisWindow::AnalyseSlowlog(RedisAnalysis* a) const {
  if (!begin_.slowlog_error.empty() || !end_.slowlog_error.empty()) {
    a->slowlog_note = "SLOWLOG GET failed: " +
                      (begin_.slowlog_error.empty() ? end_.slowlog_error : begin_.slowlog_error);
    return;
  }
  const int64_t after = Restarted() ? -1 : begin_.slowlog_last_id;
  int64_t newest = after;
  for (const SlowlogEntry& e : end_.slowlog) {
    if (e.id <= after) continue;
    a->slowlog.push_back(e);
    newest = std::max(newest, e.id);
  }
  // Ids are consecutive: the count of new ids is what was logged, even past slowlog-max-len.
  a->slowlog_new = newest - after;
  if (a->slowlog_new > static_cast<int64_t>(a->slowlog.size())) {
    a->slowlog_note = std::to_string(a->slowlog_new - static_cast<int64_t>(a->slowlog.size())) +
                      " older entries of the window fell off the slow log (slowlog-max-len)";
  }
}

namespace {

// Why the client-side and server-side measures differ, from the numbers.
// Calls of the commands that run other commands (each inner call counts on the server too).
uint64_t ScriptCalls(const std::vector<RedisCommandWindow>& commands) {
  uint64_t n = 0;
  for (const RedisCommandWindow& c : commands) {
    if (c.name == "eval" || c.name == "evalsha" || c.name == "eval_ro" || c.name == "evalsha_ro" ||
        c.name == "fcall" || c.name == "fcall_ro") {
      n += c.calls;
    }
  }
  return n;
}

std::vector<std::string> ExplainDisagreement(const RedisAnalysis& a) {
  const ClientPipelining& c = a.clients;
  const RedisServerCheck& s = a.server;
  std::vector<std::string> out;
  if (!s.measured || !c.any_counters) return out;
  const double extra_commands = s.commands - c.total.commands;
  const double extra_reads = s.reads - c.total.round_trips;
  const std::string margins = "the clients' scrapes lie inside the server's window (" +
                              Fixed(a.clients_inset_begin_ms, 0) + " ms after its start, " +
                              Fixed(a.clients_inset_end_ms, 0) + " ms before its end)";
  if (extra_commands > 0) {
    const uint64_t scripts = ScriptCalls(a.commands);
    out.push_back(
        Num(extra_commands) + " command(s) more on the server than the clients counted: " +
        (scripts > 0 ? "commands run inside " + std::to_string(scripts) +
                           " script call(s) (EVAL/EVALSHA/FCALL: each inner redis.call counts "
                           "as a command, in one read), "
                     : std::string()) +
        "clients that export no counters (the supervisor's health PINGs, framescope status, "
        "redis-cli, a service not scraped), and " +
        margins);
  } else if (extra_commands < 0) {
    out.push_back(Num(-extra_commands) +
                  " command(s) counted by the clients did not reach the server in the window "
                  "(a write that failed, or a service's counters counted across a restart)");
  }
  if (extra_reads > 0) {
    out.push_back(Num(extra_reads) +
                  " read(s) more than the clients' round trips: reads by clients without "
                  "counters, a pipeline split over several reads (Redis reads at most 16 KiB "
                  "of a query at a time), reads that carry no command (a connection closing "
                  "costs one), and " +
                  margins);
  } else if (extra_reads < 0) {
    out.push_back(Num(-extra_reads) +
                  " client round trip(s) more than the server's reads, though each needs at "
                  "least one: round trips whose write failed, or counters counted across a "
                  "restart");
  }
  return out;
}

void Verdict(RedisAnalysis* a) {
  const ClientPipelining& c = a->clients;
  std::string server = "the server's own measure: ";
  if (auto cpr = a->server.CommandsPerRead()) {
    server += Num(a->server.commands) + " commands / " + Num(a->server.reads) +
              " reads (Δtotal_commands_processed / Δtotal_reads_processed, INFO stats) = " +
              Fixed(*cpr, 2) + " commands per read";
  } else {
    server += a->server.measured ? "no reads in the window" : "not measurable: " + a->server.reason;
  }
  if (!c.any_counters) {
    a->verdict = "not measurable";
    a->reason = "no client service exported framescope_redis_* counters" +
                std::string(c.services.empty() ? " (no services given)" : "") + "; " + server;
    return;
  }
  auto eff = c.total.Efficiency();
  if (!eff) {
    a->verdict = "not measurable";
    a->reason = "the client services sent no Redis commands in the window; " + server;
    return;
  }
  a->verdict = *eff > kPipelineEfficiencyTarget ? "met" : "not met";
  a->reason = Num(c.total.pipelined) + " of " + Num(c.total.commands) +
              " client commands sent in a pipeline (framescope_redis_pipelined_commands_total / "
              "framescope_redis_commands_total, every client service, over the window) = " +
              Pct(*eff) + (*eff > kPipelineEfficiencyTarget ? " > " : " <= ") +
              Pct(kPipelineEfficiencyTarget) + "; " + server;
}

}  // namespace

RedisAnalysis RedisWindow::Analyse() const {
  RedisAnalysis a;
  a.redis = label_;
  a.window_s = end_.at_ns > begin_.at_ns ? static_cast<double>(end_.at_ns - begin_.at_ns) / 1e9 : 0;
  a.clients = DiffClientCounters(services_begin_, services_end_);
  if (begin_.info_ns > 0 && end_.info_ns > 0) {
    a.clients_inset_begin_ms = static_cast<double>(services_begun_ns_ - begin_.info_ns) / 1e6;
    a.clients_inset_end_ms = static_cast<double>(end_.info_ns - services_ending_ns_) / 1e6;
  }
  if (!begin_.error.empty() || !end_.error.empty()) {
    a.redis_error = begin_.error.empty() ? "at the window's end: " + end_.error
                                         : "at the window's start: " + begin_.error;
    a.server.reason = "Redis could not be read " + a.redis_error;
    Verdict(&a);
    return a;
  }
  if (auto v = end_.info.find("redis_version"); v != end_.info.end()) a.redis_version = v->second;
  AnalyseServer(&a);
  if (Restarted()) {
    a.reset = "Redis restarted in the window (run_id changed; up " +
              Num(InfoNumber(end_.info, "uptime_in_seconds").value_or(0)) +
              " s at the end): its counters, commandstats, latency histograms and slow log are "
              "counted from the restart";
  } else if (a.server.basis != "window") {
    a.reset =
        "Redis' statistics were reset in the window (CONFIG RESETSTAT: "
        "total_commands_processed went down): counted from the reset";
  }
  AnalyseCommands(&a);
  AnalyseSlowlog(&a);
  a.used_memory_begin = InfoNumber(begin_.info, "used_memory");
  a.used_memory_end = InfoNumber(end_.info, "used_memory");
  const auto kb = Keyspace(begin_.info), ke = Keyspace(end_.info);
  std::map<std::string, RedisKeyspaceGrowth> dbs;
  for (const auto& [db, v] : kb) dbs[db] = {db, v, {}};
  for (const auto& [db, v] : ke) {
    dbs[db].db = db;
    dbs[db].end = v;
  }
  for (auto& [db, g] : dbs) a.keyspace.push_back(g);
  a.disagreement = ExplainDisagreement(a);
  Verdict(&a);
  return a;
}

}  // namespace fs::io
