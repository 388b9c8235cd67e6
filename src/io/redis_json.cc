// RedisToJson: OUT/io/redis_analysis.json. Every number names its counter in a sibling
// "counters"/"source" field; what could not be measured is null with the reason beside it.
#include <optional>

#include "src/io/redis_window.h"

namespace fs::io {
namespace {

Json OrNull(const std::optional<double>& v) { return v ? Json(*v) : Json(); }
Json OrNull(const std::string& s) { return s.empty() ? Json() : Json(s); }

Json CountsJson(const PipelineCounts& c) {
  Json j = Json::MakeObject();
  j["commands"] = c.commands;
  j["pipelined"] = c.pipelined;
  j["round_trips"] = c.round_trips;
  j["pipeline_efficiency"] = OrNull(c.Efficiency());
  j["commands_per_round_trip"] = OrNull(c.CommandsPerRoundTrip());
  return j;
}

Json ClientsJson(const ClientPipelining& c) {
  Json j = Json::MakeObject();
  j["counters"] =
      "framescope_redis_commands_total, framescope_redis_pipelined_commands_total, "
      "framescope_redis_round_trips_total{source,op}: end scrape minus start scrape of each "
      "service's /metrics; pipeline_efficiency = pipelined / commands";
  j["total"] = CountsJson(c.total);
  Json sources = Json::MakeArray(), ops = Json::MakeArray(), services = Json::MakeArray();
  for (const SourcePipelining& s : c.sources) {
    Json r = CountsJson(s.counts);
    r["source"] = s.source;
    sources.Push(r);
  }
  for (const OpPipelining& o : c.ops) {
    Json r = CountsJson(o.counts);
    r["service"] = o.service;
    r["source"] = o.source;
    r["op"] = o.op;
    ops.Push(r);
  }
  for (const ServicePipeliningStatus& s : c.services) {
    Json r = Json::MakeObject();
    r["name"] = s.endpoint.name;
    r["port"] = s.endpoint.port;
    r["state"] = s.state;
    r["detail"] = OrNull(s.detail);
    services.Push(r);
  }
  j["per_source"] = sources;
  j["per_op"] = ops;
  j["services"] = services;
  return j;
}

Json ServerJson(const RedisServerCheck& s) {
  Json j = Json::MakeObject();
  j["counters"] =
      "INFO stats: Δtotal_commands_processed / Δtotal_reads_processed, this analyser's own "
      "commands and reads subtracted";
  j["measured"] = s.measured;
  j["reason"] = OrNull(s.reason);
  j["basis"] = OrNull(s.basis);
  j["commands"] = s.measured ? Json(s.commands) : Json();
  j["reads"] = s.measured ? Json(s.reads) : Json();
  j["commands_per_read"] = OrNull(s.CommandsPerRead());
  j["own_commands_subtracted"] = s.own_commands;
  j["own_reads_subtracted"] = s.own_reads;
  return j;
}

Json BoundsJson(const std::optional<QuantileBucket>& b) {
  if (!b) return Json();
  Json j = Json::MakeObject();
  j["lower_us"] = b->lower_us;
  j["upper_us"] = b->upper_us;
  return j;
}

Json CommandJson(const RedisCommandWindow& c) {
  Json j = Json::MakeObject();
  j["name"] = c.name;
  j["calls"] = c.calls;
  j["usec"] = c.usec;
  j["usec_per_call"] = OrNull(c.usec_per_call);
  j["rejected_calls"] = c.rejected_calls;
  j["failed_calls"] = c.failed_calls;
  j["own_calls_subtracted"] = c.own_calls;
  Json l = Json::MakeObject();
  l["calls"] = c.histogram_calls;
  l["p50_us"] = BoundsJson(c.p50);
  l["p99_us"] = BoundsJson(c.p99);
  l["p99_9_us"] = BoundsJson(c.p999);
  l["note"] = OrNull(c.latency_note);
  j["latency"] = l;
  return j;
}

Json SlowlogJson(const RedisAnalysis& a) {
  Json j = Json::MakeObject();
  j["source"] = "SLOWLOG GET: entries with ids above the newest at the window's start";
  j["new_in_window"] = a.slowlog_new;
  j["note"] = OrNull(a.slowlog_note);
  Json entries = Json::MakeArray();
  for (const SlowlogEntry& e : a.slowlog) {
    Json r = Json::MakeObject();
    r["id"] = e.id;
    r["unix_time"] = e.unix_time;
    r["duration_us"] = e.duration_us;
    Json args = Json::MakeArray();
    for (const std::string& s : e.args) args.Push(s);
    r["args"] = args;
    r["client"] = e.client;
    entries.Push(r);
  }
  j["entries"] = entries;
  return j;
}

Json KeyspaceJson(const RedisAnalysis& a) {
  Json j = Json::MakeObject();
  j["used_memory_begin"] = OrNull(a.used_memory_begin);
  j["used_memory_end"] = OrNull(a.used_memory_end);
  j["used_memory_growth"] = a.used_memory_begin && a.used_memory_end
                                ? Json(*a.used_memory_end - *a.used_memory_begin)
                                : Json();
  j["source"] = "INFO memory used_memory (bytes), INFO keyspace keys/expires per db";
  Json dbs = Json::MakeArray();
  for (const RedisKeyspaceGrowth& g : a.keyspace) {
    Json r = Json::MakeObject();
    r["db"] = g.db;
    r["keys_begin"] = g.begin.keys;
    r["keys_end"] = g.end.keys;
    r["keys_growth"] = static_cast<double>(g.end.keys) - static_cast<double>(g.begin.keys);
    r["expires_begin"] = g.begin.expires;
    r["expires_end"] = g.end.expires;
    dbs.Push(r);
  }
  j["keyspace"] = dbs;
  return j;
}

}  // namespace

Json RedisToJson(const RedisAnalysis& a) {
  Json j = Json::MakeObject();
  j["redis"] = a.redis;
  j["redis_version"] = OrNull(a.redis_version);
  j["window_s"] = a.window_s;
  j["error"] = OrNull(a.redis_error);
  j["reset"] = OrNull(a.reset);
  Json check = Json::MakeObject();
  check["item"] = "3.2 Redis pipeline efficiency over 80 %";
  check["verdict"] = a.verdict;
  check["reason"] = a.reason;
  j["checklist"] = check;
  j["client_pipelining"] = ClientsJson(a.clients);
  j["server"] = ServerJson(a.server);
  Json inset = Json::MakeObject();
  inset["begin_ms"] = a.clients_inset_begin_ms;
  inset["end_ms"] = a.clients_inset_end_ms;
  j["clients_window_inset"] = inset;  // the scrapes lie this far inside the server's window
  Json why = Json::MakeArray();
  for (const std::string& s : a.disagreement) why.Push(s);
  j["disagreement"] = why;
  Json commands = Json::MakeArray();
  for (const RedisCommandWindow& c : a.commands) commands.Push(CommandJson(c));
  j["commands"] = commands;
  j["commands_source"] =
      "INFO commandstats deltas over the window; latency: LATENCY HISTOGRAM deltas (buckets "
      "doubling from 1 µs), each percentile as the bucket (lower_us, upper_us] it lies in";
  j["latency_error"] = OrNull(a.latency_error);
  j["slowlog"] = SlowlogJson(a);
  j["memory"] = KeyspaceJson(a);
  return j;
}

}  // namespace fs::io
