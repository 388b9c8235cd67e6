// Storage benchmark (`make bench`): how close framescope-aggregation comes to the database's
// own ingest ceiling, and what the api serves from the stored data under load. One run,
// side by side, on a private PostgreSQL (durable: fsync and synchronous_commit on) and a
// private redis-server, both started here on free ports:
//
//  1. N synthetic detections (fields exactly as framescope-detection publishes them) are
//     XADDed to the Redis Stream `detections`; the real framescope-aggregation binary drains
//     the backlog into PostgreSQL. Timed from the first inserted row it reports (its
//     /metrics counter, polled every --poll-ms) to the last, so process start-up, connecting
//     and migrations are excluded.
//  2. The same N rows (same stream ids) are COPYed with PgClient::CopyIn straight into
//     detections_copy (LIKE detections INCLUDING ALL: same key and indexes), in batches of
//     the size aggregation uses, one transaction per batch. This is the ceiling: no Redis,
//     no parsing, no staging table, no rollups. The COPY lines are built before timing.
//     Steps 1 and 2 alternate for --rounds pairs (each on emptied tables, after a
//     CHECKPOINT), and the median of the per-pair ratios is reported with its range.
//  3. framescope-api (when built) runs against what the last round stored, and wrk hits
//     each main endpoint at --wrk-connections.
// Every process started here is stopped and the temp dir removed on the way out, also on
// failure; the children additionally die with this process (PR_SET_PDEATHSIG).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/http.h"
#include "src/base/json.h"
#include "src/base/net.h"
#include "src/base/status.h"
#include "src/clients/pg_client.h"
#include "src/clients/prom_text.h"
#include "src/clients/redis_client.h"
#include "src/system/postgres_cluster.h"
#include "src/system/process.h"

namespace fs {
namespace {

using bench::CpuSeconds;
using bench::Fmt;
using bench::MetricDelta;
using bench::RunCommand;

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

Status CheckInterrupted() {
  return g_interrupted.load() ? Err("interrupted by a signal") : Status::Ok();
}

void Progress(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void Progress(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("storage_benchmark: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

// ---- /proc ------------------------------------------------------------------------------

// Fields of /proc/<pid>/stat after the command name; field numbers as in proc(5).
struct ProcStat {
  pid_t ppid = -1;
  double utime = 0, stime = 0, cutime = 0, cstime = 0;  // clock ticks
};

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return std::nullopt;
  auto paren = stat->rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat->size()) return std::nullopt;
  ProcStat s;
  const char* p = stat->c_str() + paren + 2;  // field 3 (state)
  for (int field = 3; field <= 17 && *p; ++field) {
    if (field == 4) s.ppid = static_cast<pid_t>(strtol(p, nullptr, 10));
    if (field == 14) s.utime = strtod(p, nullptr);
    if (field == 15) s.stime = strtod(p, nullptr);
    if (field == 16) s.cutime = strtod(p, nullptr);
    if (field == 17) s.cstime = strtod(p, nullptr);
    p = strchr(p, ' ');
    if (p == nullptr) break;
    ++p;
  }
  return s;
}

double Ticks() { return static_cast<double>(sysconf(_SC_CLK_TCK)); }

// CPU of the whole PostgreSQL server: the postmaster, its live children (backends,
// checkpointer, walwriter, ...) and, through the postmaster's cutime/cstime, the children
// it already reaped (autovacuum workers, backends that disconnected).
double PostgresCpuSeconds(pid_t postmaster) {
  auto root = ReadProcStat(postmaster);
  if (!root) return NAN;
  double ticks = root->utime + root->stime + root->cutime + root->cstime;
  for (pid_t p : FindProcesses([postmaster](pid_t p) {
         auto s = ReadProcStat(p);
         return s && s->ppid == postmaster;
       })) {
    if (auto s = ReadProcStat(p)) ticks += s->utime + s->stime;
  }
  return ticks / Ticks();
}

std::string Tail(const std::string& path, size_t bytes = 3000) {
  auto text = ReadFile(path);
  if (!text.ok()) return "(no log at " + path + ")";
  return text->size() > bytes ? "..." + text->substr(text->size() - bytes) : *text;
}

// ---- the private services and their cleanup ---------------------------------------------

// Owns the temp dir and every process started in it. The destructor stops them (api and
// aggregation with SIGTERM, Redis with SIGTERM, PostgreSQL with SIGINT = fast shutdown) and
// removes the dir, including a cluster PostgresCluster placed under /var/lib/framescope.
class Sandbox {
 public:
  Sandbox() = default;
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;
  ~Sandbox() {
    for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
      if (it->pid > 0) TerminateProcess(it->pid, 20000, it->stop_signal);
    }
    if (dir_.empty()) return;
    if (keep_) {
      Progress("kept %s", dir_.c_str());
      return;
    }
    if (Status st = PostgresCluster::Purge(dir_ + "/pg"); !st.ok()) {
      Progress("cleanup: %s", st.message().c_str());
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  Status Create(bool keep) {
    keep_ = keep;
    char tmpl[] = "/tmp/fs-storage-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Err(std::string("mkdtemp: ") + strerror(errno));
    dir_ = tmpl;
    // Traversable (not listable) by others: as root, the cluster below runs initdb and the
    // server as `postgres`, which must reach <dir>/pg (password file, log).
    if (chmod(dir_.c_str(), 0711) != 0) return Err("chmod " + dir_ + ": " + strerror(errno));
    return Status::Ok();
  }

  // Spawns argv with its output in <dir>/<name>.log; remembered for cleanup.
  StatusOr<pid_t> Spawn(const std::string& name, const std::vector<std::string>& argv,
                        int stop_signal = SIGTERM, const RunAs* run_as = nullptr) {
    ASSIGN_OR_RETURN(pid_t pid, SpawnProcess(argv, LogPath(name), run_as));
    children_.push_back({name, pid, stop_signal});
    return pid;
  }
  // Stops one child now (SIGTERM, SIGKILL after timeout_ms).
  void Stop(pid_t pid, int timeout_ms = 10000) {
    for (auto& c : children_) {
      if (c.pid == pid) {
        TerminateProcess(pid, timeout_ms, c.stop_signal);
        c.pid = -1;
      }
    }
  }

  const std::string& dir() const { return dir_; }
  std::string LogPath(const std::string& name) const { return dir_ + "/" + name + ".log"; }

 private:
  struct Child {
    std::string name;
    pid_t pid;
    int stop_signal;
  };
  std::string dir_;
  bool keep_ = false;
  std::vector<Child> children_;
};

bool WaitUntil(const std::function<bool()>& done, int timeout_ms, int poll_ms = 50) {
  int64_t deadline = MonotonicNs() + int64_t{timeout_ms} * 1000000;
  while (MonotonicNs() < deadline && !g_interrupted.load()) {
    if (done()) return true;
    usleep(static_cast<useconds_t>(poll_ms) * 1000);
  }
  return done();
}

StatusOr<int> StartRedis(Sandbox* sb, pid_t* pid) {
  if (access("/usr/bin/redis-server", X_OK) != 0) {
    return Err("/usr/bin/redis-server not found: run `make deps`");
  }
  ASSIGN_OR_RETURN(int port, PickFreePort());
  std::string dir = sb->dir() + "/redis";
  RETURN_IF_ERROR(MakeDirs(dir));
  // No persistence: the benchmark measures the pipeline, not Redis' RDB/AOF writes.
  ASSIGN_OR_RETURN(
      *pid, sb->Spawn("redis", {"/usr/bin/redis-server", "--port", std::to_string(port), "--bind",
                                "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
                                "--daemonize", "no", "--loglevel", "warning"}));
  pid_t p = *pid;
  if (!WaitUntil([&] { return PortOpen("127.0.0.1", port) || !ProcessAlive(p); }, 10000) ||
      !ProcessAlive(p)) {
    return Err("redis-server did not start; log: " + Tail(sb->LogPath("redis")));
  }
  return port;
}

// ---- synthetic detections ---------------------------------------------------------------

// One detection as framescope-detection publishes it (services/detection/
// detection_service.cc): numbers already formatted the way it formats them.
struct Det {
  std::string camera;
  int64_t seq;
  int64_t capture_ts_ns;
  int idx;
  const char* class_name;
  int class_id;
  std::string score, x, y, w, h;
};

// `cameras` cameras at `fps`, `per_frame` detections per frame, frames interleaved across
// cameras as detection would publish them; the newest frame is captured at `end_wall_ns`, so
// the api's "last minute" windows see the tail of the data.
std::vector<Det> MakeDetections(int n, int cameras, double fps, int per_frame,
                                int64_t end_wall_ns) {
  struct Class {
    const char* name;
    int id;
  };
  static const Class kClasses[] = {{"person", 0},  {"person", 0}, {"car", 2},
                                   {"bicycle", 1}, {"truck", 7},  {"dog", 16}};
  std::mt19937 rng(12345);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int64_t frame_ns = static_cast<int64_t>(1e9 / fps);
  const int64_t frames = (n + per_frame - 1) / per_frame;
  const int64_t frames_per_camera = (frames + cameras - 1) / cameras;
  const int64_t base = end_wall_ns - frames_per_camera * frame_ns;
  std::vector<Det> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    int64_t frame = i / per_frame;
    int cam = static_cast<int>(frame % cameras);
    Det d;
    char name[16];
    snprintf(name, sizeof(name), "cam%02d", cam);
    d.camera = name;
    d.seq = frame / cameras;
    // Cameras are not synchronised: each has its own phase within the frame interval.
    d.capture_ts_ns = base + d.seq * frame_ns + cam * (frame_ns / cameras);
    d.idx = i % per_frame;
    const Class& c =
        kClasses[static_cast<size_t>(unit(rng) * std::size(kClasses)) % std::size(kClasses)];
    d.class_name = c.name;
    d.class_id = c.id;
    d.score = Fmt("%.4f", 0.25 + 0.74 * unit(rng));
    double w = 20 + 200 * unit(rng), h = 20 + 150 * unit(rng);
    d.x = Fmt("%.1f", (640 - w) * unit(rng));
    d.y = Fmt("%.1f", (360 - h) * unit(rng));
    d.w = Fmt("%.1f", w);
    d.h = Fmt("%.1f", h);
    out.push_back(std::move(d));
  }
  return out;
}

// XADDs every detection, pipelined in chunks (detection pipelines one batch's XADDs per
// round trip); returns the entry ids in order.
StatusOr<std::vector<std::string>> FillStream(RedisClient* redis, const std::vector<Det>& dets) {
  constexpr size_t kChunk = 1000;
  const std::string maxlen = std::to_string(std::max<size_t>(1000000, 2 * dets.size()));
  std::vector<std::string> ids;
  ids.reserve(dets.size());
  for (size_t i = 0; i < dets.size();) {
    RETURN_IF_ERROR(CheckInterrupted());
    for (size_t k = 0; k < kChunk && i < dets.size(); ++k, ++i) {
      const Det& d = dets[i];
      redis->Append({"XADD",
                     "detections",
                     "MAXLEN",
                     "~",
                     maxlen,
                     "*",
                     "camera",
                     d.camera,
                     "seq",
                     std::to_string(d.seq),
                     "capture_ts_ns",
                     std::to_string(d.capture_ts_ns),
                     "idx",
                     std::to_string(d.idx),
                     "class",
                     d.class_name,
                     "class_id",
                     std::to_string(d.class_id),
                     "score",
                     d.score,
                     "x",
                     d.x,
                     "y",
                     d.y,
                     "w",
                     d.w,
                     "h",
                     d.h});
    }
    ASSIGN_OR_RETURN(auto replies, redis->Flush("XADD"));
    for (const RedisReply& r : replies) {
      if (r.is_error() || r.type != RedisReply::Type::kString) {
        return Err("XADD rejected: " + r.str);
      }
      ids.push_back(r.str);
    }
  }
  return ids;
}

// capture_ts as aggregation derives it (timestamptz 'epoch' + whole microseconds), in UTC.
std::string TimestampText(int64_t ns) {
  time_t sec = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  char buf[64];
  size_t len = strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(buf + len, sizeof(buf) - len, ".%06lld+00",
           static_cast<long long>((ns % 1000000000) / 1000));
  return buf;
}

constexpr char kCopyTarget[] =
    "detections_copy (camera, capture_ts_ns, frame_seq, det_idx, capture_ts, class, class_id, "
    "score, x, y, w, h, stream_id)";

std::string CopyLine(const Det& d, const std::string& stream_id) {
  return PgCopyRow({d.camera, std::to_string(d.capture_ts_ns), std::to_string(d.seq),
                    std::to_string(d.idx), TimestampText(d.capture_ts_ns), d.class_name,
                    std::to_string(d.class_id), d.score, d.x, d.y, d.w, d.h, stream_id});
}

// ---- one aggregation / COPY pair ---------------------------------------------------------

struct Context {
  Sandbox* sandbox;
  std::string bin_dir;
  pid_t pg_pid;
  std::string pg_url;          // with the password: this process only
  std::string pg_url_cmdline;  // without: command lines are world-readable
  std::string redis_url;
  int detections, cameras, per_frame, batch, poll_ms, timeout_s;
  double fps;
};

struct PairResult {
  // aggregation
  double agg_rows_per_s = NAN;
  double agg_window_s = NAN;
  int64_t agg_rows_in_window = 0;
  double agg_first_row_after_spawn_s = NAN;
  double agg_cpu_s_per_1000 = NAN;
  double agg_pg_cpu_s_per_1000 = NAN;
  // COPY
  double copy_rows_per_s = NAN;
  double copy_s = NAN;
  double copy_pg_cpu_s_per_1000 = NAN;
  double copy_client_cpu_s_per_1000 = NAN;
  double fill_entries_per_s = NAN;
};

StatusOr<int64_t> Count(PgClient* pg, const std::string& table) {
  ASSIGN_OR_RETURN(PgResult r, pg->Exec("SELECT count(*) FROM " + table));
  if (r.rows.empty() || !r.rows[0][0]) return Err("count(*) of " + table + " returned nothing");
  return std::strtoll(r.rows[0][0]->c_str(), nullptr, 10);
}

// framescope_aggregation_rows_inserted_total from the process' /metrics; -1 if unreachable.
double RowsInserted(int metrics_port) {
  auto r = HttpGet("127.0.0.1", metrics_port, "/metrics", 2000);
  if (!r.ok() || r->status != 200) return -1;
  auto samples = ParsePromText(r->body);
  if (!samples.ok()) return -1;
  return SumSamples(*samples, "framescope_aggregation_rows_inserted_total");
}

StatusOr<int> WaitForPortFile(const std::string& path, pid_t pid, const std::string& log,
                              Json* port_file) {
  int port = 0;
  WaitUntil(
      [&] {
        auto text = ReadFile(path);
        if (!text.ok()) return !ProcessAlive(pid);
        auto j = Json::Parse(*text);
        if (j.ok()) {
          port = static_cast<int>(j->Get("metrics_port").AsInt());
          *port_file = *j;
        }
        return port > 0 || !ProcessAlive(pid);
      },
      15000, 20);
  if (port <= 0) {
    return Err("no port file " + path + " from pid " + std::to_string(pid) + "; log:\n" +
               Tail(log));
  }
  return port;
}

// Empties what the previous pair stored, fills the stream, runs aggregation until all N rows
// are in `detections`, then COPYs the same rows into detections_copy.
StatusOr<PairResult> RunPair(const Context& ctx, int round, PgClient* pg, RedisClient* redis) {
  PairResult res;
  const int n = ctx.detections;
  // Fresh state: the stream and its consumer group go with FLUSHDB (aggregation recreates
  // the group from the stream's start), as do the live:camera:* counters.
  ASSIGN_OR_RETURN(RedisReply flushed, redis->Command({"FLUSHDB"}));
  if (flushed.is_error()) return Err("FLUSHDB: " + flushed.str);
  ASSIGN_OR_RETURN(PgResult exists, pg->Exec("SELECT to_regclass('detections') IS NOT NULL"));
  if (!exists.rows.empty() && exists.rows[0][0] && *exists.rows[0][0] == "t") {
    RETURN_IF_ERROR(
        pg->Exec(
              "TRUNCATE detections, detection_rollup_1s, detection_rollup_1m, live_counter_outbox")
            .status());
  }

  Progress("round %d: loading %d entries into the Redis Stream detections...", round, n);
  std::vector<Det> dets = MakeDetections(n, ctx.cameras, ctx.fps, ctx.per_frame, WallNs());
  int64_t f0 = MonotonicNs();
  ASSIGN_OR_RETURN(std::vector<std::string> ids, FillStream(redis, dets));
  res.fill_entries_per_s = n / (static_cast<double>(MonotonicNs() - f0) / 1e9);

  // ---- aggregation ----
  // A checkpoint before each timed phase, so neither inherits the other's dirty pages.
  RETURN_IF_ERROR(pg->Exec("CHECKPOINT").status());
  const std::string name = "aggregation-" + std::to_string(round);
  const std::string port_file = ctx.sandbox->dir() + "/" + name + ".json";
  Progress("round %d: waiting for aggregation to store %d rows (batch %d)...", round, n, ctx.batch);
  int64_t spawned = MonotonicNs();
  ASSIGN_OR_RETURN(pid_t agg,
                   ctx.sandbox->Spawn(
                       name, {ctx.bin_dir + "/framescope-aggregation", "--redis-url", ctx.redis_url,
                              "--postgres-url", ctx.pg_url_cmdline, "--consumer", "storage-bench",
                              "--batch", std::to_string(ctx.batch), "--port-file", port_file}));
  Json pf;
  ASSIGN_OR_RETURN(int mport, WaitForPortFile(port_file, agg, ctx.sandbox->LogPath(name), &pf));

  // The window starts at the first poll that sees rows (start-up, connecting and the schema
  // migrations excluded) and ends at the first poll that sees all N.
  int64_t t0 = 0, t1 = 0;
  double rows0 = 0, cpu0 = NAN, pg_cpu0 = NAN, cpu1 = NAN, pg_cpu1 = NAN;
  const int64_t deadline = MonotonicNs() + int64_t{ctx.timeout_s} * 1000000000;
  double rows = 0;
  int64_t last_report = MonotonicNs();
  while (true) {
    RETURN_IF_ERROR(CheckInterrupted());
    if (!ProcessAlive(agg)) {
      return Err("framescope-aggregation exited early; log:\n" + Tail(ctx.sandbox->LogPath(name)));
    }
    if (MonotonicNs() > deadline) {
      return Err("aggregation stored " + std::to_string(static_cast<int64_t>(rows)) + " of " +
                 std::to_string(n) + " rows within --timeout-s " + std::to_string(ctx.timeout_s) +
                 "; log:\n" + Tail(ctx.sandbox->LogPath(name)));
    }
    double r = RowsInserted(mport);
    int64_t now = MonotonicNs();
    if (r > 0 && t0 == 0) {
      t0 = now;
      rows0 = r;
      cpu0 = CpuSeconds(agg);
      pg_cpu0 = PostgresCpuSeconds(ctx.pg_pid);
      res.agg_first_row_after_spawn_s = static_cast<double>(t0 - spawned) / 1e9;
    }
    if (r >= 0) rows = r;
    if (rows >= n) {
      t1 = now;
      cpu1 = CpuSeconds(agg);
      pg_cpu1 = PostgresCpuSeconds(ctx.pg_pid);
      break;
    }
    if (now - last_report > 5000000000LL) {
      Progress("round %d:   %.0f / %d rows", round, rows, n);
      last_report = now;
    }
    usleep(static_cast<useconds_t>(ctx.poll_ms) * 1000);
  }
  ctx.sandbox->Stop(agg);
  ASSIGN_OR_RETURN(int64_t stored, Count(pg, "detections"));
  if (stored != n) {
    return Err("detections holds " + std::to_string(stored) + " rows, expected " +
               std::to_string(n));
  }
  res.agg_rows_in_window = static_cast<int64_t>(n - rows0);
  res.agg_window_s = static_cast<double>(t1 - t0) / 1e9;
  if (res.agg_rows_in_window > 0 && res.agg_window_s > 0) {
    res.agg_rows_per_s = static_cast<double>(res.agg_rows_in_window) / res.agg_window_s;
    double k = static_cast<double>(res.agg_rows_in_window) / 1000.0;
    res.agg_cpu_s_per_1000 = (cpu1 - cpu0) / k;
    res.agg_pg_cpu_s_per_1000 = (pg_cpu1 - pg_cpu0) / k;
  }

  // ---- COPY of the same rows ----
  Progress("round %d: COPY of the same %d rows into detections_copy...", round, n);
  RETURN_IF_ERROR(pg->Exec("CREATE TABLE IF NOT EXISTS detections_copy "
                           "(LIKE detections INCLUDING ALL)")
                      .status());
  RETURN_IF_ERROR(pg->Exec("TRUNCATE detections_copy").status());
  std::vector<std::vector<std::string>> batches;
  for (size_t i = 0; i < dets.size(); i += static_cast<size_t>(ctx.batch)) {
    std::vector<std::string> lines;
    for (size_t k = i; k < std::min(dets.size(), i + static_cast<size_t>(ctx.batch)); ++k) {
      lines.push_back(CopyLine(dets[k], ids[k]));
    }
    batches.push_back(std::move(lines));
  }
  RETURN_IF_ERROR(pg->Exec("CHECKPOINT").status());
  double self0 = CpuSeconds(getpid());
  double pg_copy0 = PostgresCpuSeconds(ctx.pg_pid);
  int64_t c0 = MonotonicNs();
  int64_t copied = 0;
  for (const auto& lines : batches) {
    RETURN_IF_ERROR(CheckInterrupted());
    RETURN_IF_ERROR(pg->Begin());
    ASSIGN_OR_RETURN(int64_t rows_copied, pg->CopyIn(kCopyTarget, lines));
    RETURN_IF_ERROR(pg->Commit());
    copied += rows_copied;
  }
  int64_t c1 = MonotonicNs();
  double self1 = CpuSeconds(getpid());
  double pg_copy1 = PostgresCpuSeconds(ctx.pg_pid);
  if (copied != n) {
    return Err("COPY stored " + std::to_string(copied) + " rows, expected " + std::to_string(n));
  }
  res.copy_s = static_cast<double>(c1 - c0) / 1e9;
  res.copy_rows_per_s = n / res.copy_s;
  res.copy_pg_cpu_s_per_1000 = (pg_copy1 - pg_copy0) / (n / 1000.0);
  res.copy_client_cpu_s_per_1000 = (self1 - self0) / (n / 1000.0);
  Progress("round %d: aggregation %.0f rows/s, COPY %.0f rows/s, ratio %.3f", round,
           res.agg_rows_per_s, res.copy_rows_per_s, res.agg_rows_per_s / res.copy_rows_per_s);
  return res;
}

// ---- wrk -------------------------------------------------------------------------------

struct WrkResult {
  double requests_per_s = NAN;
  double p50_ms = NAN, p99_ms = NAN;
  int64_t requests = 0;
  int64_t non_2xx = 0;
  int64_t socket_errors = 0;
};

// "1.23ms", "456.00us", "1.01s", "2.00m" -> milliseconds.
double WrkDurationMs(const std::string& text) {
  char* end = nullptr;
  double v = strtod(text.c_str(), &end);
  std::string unit = end ? end : "";
  if (unit.rfind("us", 0) == 0) return v / 1000.0;
  if (unit.rfind("ms", 0) == 0) return v;
  if (unit.rfind("s", 0) == 0) return v * 1000.0;
  if (unit.rfind("m", 0) == 0) return v * 60000.0;
  return NAN;
}

// Parses `wrk --latency` output (wrk 4.x): "Requests/sec:", the "Latency Distribution"
// percentiles, "N requests in", "Non-2xx or 3xx responses:" and "Socket errors:".
WrkResult ParseWrk(const std::string& out) {
  WrkResult r;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t eol = out.find('\n', pos);
    if (eol == std::string::npos) eol = out.size();
    std::string line = out.substr(pos, eol - pos);
    pos = eol + 1;
    size_t s = line.find_first_not_of(" \t");
    if (s == std::string::npos) continue;
    line = line.substr(s);
    char unit[32];
    double v;
    long long a, b, c, d;
    if (line.rfind("Requests/sec:", 0) == 0) {
      r.requests_per_s = strtod(line.c_str() + 13, nullptr);
    } else if (line.rfind("50%", 0) == 0 && sscanf(line.c_str(), "50%% %31s", unit) == 1) {
      r.p50_ms = WrkDurationMs(unit);
    } else if (line.rfind("99%", 0) == 0 && sscanf(line.c_str(), "99%% %31s", unit) == 1) {
      r.p99_ms = WrkDurationMs(unit);
    } else if (line.rfind("Non-2xx or 3xx responses:", 0) == 0) {
      r.non_2xx = strtoll(line.c_str() + 25, nullptr, 10);
    } else if (sscanf(line.c_str(),
                      "Socket errors: connect %lld, read %lld, write %lld, timeout %lld", &a, &b,
                      &c, &d) == 4) {
      r.socket_errors = a + b + c + d;
    } else if (sscanf(line.c_str(), "%lf requests in", &v) == 1 &&
               line.find(" requests in ") != std::string::npos) {
      r.requests = static_cast<int64_t>(v);
    }
  }
  return r;
}

// Starts framescope-api on the stored data and runs wrk against each endpoint. Returns the
// JSON for the report; `table` receives the printed rows.
Json MeasureApi(const Context& ctx, int wrk_threads, int wrk_connections, int wrk_seconds,
                std::string* table) {
  Json out = Json::MakeObject();
  const std::string api_bin = ctx.bin_dir + "/framescope-api";
  auto unmeasurable = [&](const std::string& why) {
    out["measurable"] = false;
    out["reason"] = why;
    *table = "api: not measurable here (" + why + ")\n";
    Progress("api: not measurable here (%s)", why.c_str());
    return out;
  };
  if (access(api_bin.c_str(), X_OK) != 0) return unmeasurable("framescope-api not built");
  if (access("/usr/bin/wrk", X_OK) != 0) return unmeasurable("/usr/bin/wrk not installed");

  const std::string port_file = ctx.sandbox->dir() + "/api.json";
  auto api = ctx.sandbox->Spawn(
      "api", {api_bin, "--listen", "127.0.0.1:0", "--postgres-url", ctx.pg_url_cmdline,
              "--redis-url", ctx.redis_url, "--port-file", port_file});
  if (!api.ok()) return unmeasurable("framescope-api did not start: " + api.status().message());
  Json pf;
  auto mport = WaitForPortFile(port_file, *api, ctx.sandbox->LogPath("api"), &pf);
  if (!mport.ok()) return unmeasurable("framescope-api: " + mport.status().message());
  const std::string base = pf.Get("endpoints").Get("http").AsString();
  std::string host;
  int port = 0;
  if (Status st = ParseHostPort(base, &host, &port); !st.ok()) {
    return unmeasurable("port file has no endpoints.http: " + st.message());
  }
  // /health answers 200 once PostgreSQL and Redis are reachable (connections are lazy).
  int health = 0;
  WaitUntil(
      [&] {
        auto r = HttpGet(host, port, "/health", 2000);
        health = r.ok() ? r->status : 0;
        return health == 200;
      },
      15000, 100);
  if (health != 200) {
    Progress("api /health answers %d; measuring anyway (errors will show)", health);
  }
  out["measurable"] = true;
  out["url"] = base;
  out["health_status_before"] = health;
  out["wrk"] = "wrk -t" + std::to_string(wrk_threads) + " -c" + std::to_string(wrk_connections) +
               " -d" + std::to_string(wrk_seconds) + "s --latency";

  const std::vector<std::string> paths = {"/cameras", "/cameras/cam00/stats?window=1m",
                                          "/detections?camera=cam00&limit=100", "/health"};
  Json endpoints = Json::MakeArray();
  char line[256];
  snprintf(line, sizeof(line), "%-38s %7s %10s %9s %9s %9s %8s\n", "api endpoint (wrk)", "status",
           "req/s", "p50 ms", "p99 ms", "errors", "api CPU%");
  *table = line;
  for (size_t k = 0; k < paths.size(); ++k) {
    if (g_interrupted.load()) break;
    const std::string& path = paths[k];
    Progress("wrk endpoint %zu/%zu: %s (%d s)...", k + 1, paths.size(), path.c_str(), wrk_seconds);
    // One plain request first: its status and size tell a 404/503 from a slow endpoint.
    auto probe = HttpGet(host, port, path, 5000);
    Json e = Json::MakeObject();
    e["path"] = path;
    e["probe_status"] = probe.ok() ? probe->status : 0;
    e["probe_bytes"] = probe.ok() ? static_cast<int64_t>(probe->body.size()) : 0;
    double cpu0 = CpuSeconds(*api);
    int64_t w0 = MonotonicNs();
    int code = 0;
    std::string text = RunCommand(
        "/usr/bin/wrk -t" + std::to_string(wrk_threads) + " -c" + std::to_string(wrk_connections) +
            " -d" + std::to_string(wrk_seconds) + "s --latency '" + base + path + "'",
        &code);
    double api_cpu_pct =
        (CpuSeconds(*api) - cpu0) / (static_cast<double>(MonotonicNs() - w0) / 1e9) * 100;
    WrkResult w = ParseWrk(text);
    if (code != 0 || !std::isfinite(w.requests_per_s)) {
      Progress("wrk failed (exit %d):\n%s", code, text.c_str());
    }
    e["requests_per_s"] = w.requests_per_s;
    e["latency_p50_ms"] = w.p50_ms;
    e["latency_p99_ms"] = w.p99_ms;
    e["requests"] = w.requests;
    e["non_2xx_3xx"] = w.non_2xx;
    e["socket_errors"] = w.socket_errors;
    e["errors"] = w.non_2xx + w.socket_errors;
    e["api_cpu_percent_of_one_core"] = api_cpu_pct;
    endpoints.Push(e);
    snprintf(line, sizeof(line), "%-38s %7lld %10.0f %9.2f %9.2f %9lld %8.0f\n", path.c_str(),
             static_cast<long long>(e.Get("probe_status").AsInt()), w.requests_per_s, w.p50_ms,
             w.p99_ms, static_cast<long long>(w.non_2xx + w.socket_errors), api_cpu_pct);
    *table += line;
  }
  out["endpoints"] = endpoints;
  if (!ProcessAlive(*api)) {
    *table += "(framescope-api exited during the run; log: " + ctx.sandbox->LogPath("api") + ")\n";
  }
  ctx.sandbox->Stop(*api);
  return out;
}

struct Spread {
  double median = NAN, min = NAN, max = NAN;
};

Spread SpreadOf(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  double med = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return {med, v.front(), v.back()};
}

Json SpreadJson(const Spread& s) {
  Json o = Json::MakeObject();
  o["median"] = s.median;
  o["min"] = s.min;
  o["max"] = s.max;
  return o;
}

struct Workload {
  int detections, cameras;
  double fps;
  int per_frame, batch;
};

// What is reported per pair, in the JSON (key) and the table (label, printf format).
struct Metric {
  const char* key;
  const char* label;  // nullptr: JSON only
  const char* fmt;
  std::function<double(const PairResult&)> get;
};

const std::vector<Metric>& Metrics() {
  static const std::vector<Metric> kMetrics = {
      {"aggregation_rows_per_s", "aggregation (rows/s)", "%.0f",
       [](const PairResult& p) { return p.agg_rows_per_s; }},
      {"copy_rows_per_s", "direct COPY, same rows and batches (rows/s)", "%.0f",
       [](const PairResult& p) { return p.copy_rows_per_s; }},
      {"ratio_aggregation_over_copy", "ratio aggregation / COPY", "%.3f",
       [](const PairResult& p) { return p.agg_rows_per_s / p.copy_rows_per_s; }},
      {"aggregation_cpu_s_per_1000_rows", "aggregation CPU s per 1000 rows", "%.4f",
       [](const PairResult& p) { return p.agg_cpu_s_per_1000; }},
      {"aggregation_postgres_cpu_s_per_1000_rows", "postgres CPU s per 1000 rows, aggregation",
       "%.4f", [](const PairResult& p) { return p.agg_pg_cpu_s_per_1000; }},
      {"copy_postgres_cpu_s_per_1000_rows", "postgres CPU s per 1000 rows, COPY", "%.4f",
       [](const PairResult& p) { return p.copy_pg_cpu_s_per_1000; }},
      {"copy_client_cpu_s_per_1000_rows", "COPY client CPU s per 1000 rows", "%.4f",
       [](const PairResult& p) { return p.copy_client_cpu_s_per_1000; }},
      {"stream_fill_entries_per_s", "stream fill, pipelined XADD (entries/s)", "%.0f",
       [](const PairResult& p) { return p.fill_entries_per_s; }},
      {"aggregation_window_s", nullptr, "%.3f", [](const PairResult& p) { return p.agg_window_s; }},
      {"aggregation_rows_in_window", nullptr, "%.0f",
       [](const PairResult& p) { return static_cast<double>(p.agg_rows_in_window); }},
      {"aggregation_first_row_after_spawn_s", nullptr, "%.3f",
       [](const PairResult& p) { return p.agg_first_row_after_spawn_s; }},
      {"copy_s", nullptr, "%.3f", [](const PairResult& p) { return p.copy_s; }},
  };
  return kMetrics;
}

// Prints the table (medians and ranges over the pairs, then the api's) and returns the JSON.
Json Report(const Workload& w, std::map<std::string, std::string> settings,
            const std::vector<PairResult>& pairs, Json api, const std::string& api_table) {
  Json result = Json::MakeObject();
  result["detections"] = w.detections;
  result["cameras"] = w.cameras;
  result["fps"] = w.fps;
  result["detections_per_frame"] = w.per_frame;
  result["batch"] = w.batch;
  result["rounds"] = static_cast<int64_t>(pairs.size());
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  result["cpu_cores"] = static_cast<int64_t>(cores);
  Json pg_settings = Json::MakeObject();
  pg_settings["durable"] = true;
  for (const auto& [k, v] : settings) pg_settings[k] = v;
  result["postgres"] = pg_settings;
  result["aggregation_timing"] =
      "from the first poll of /metrics that shows rows inserted to the first that shows all N "
      "(process start-up, connecting and migrations excluded)";
  result["copy_timing"] =
      "BEGIN; COPY detections_copy FROM STDIN; COMMIT per batch; lines built before timing";
  Json per_round = Json::MakeArray();
  for (const auto& p : pairs) {
    Json o = Json::MakeObject();
    for (const Metric& m : Metrics()) o[m.key] = m.get(p);
    per_round.Push(o);
  }
  result["rounds_detail"] = per_round;

  printf(
      "\n== storage: %d detections (%d cameras x %.0f FPS x %d/frame), batch %d, %zu "
      "round%s ==\n",
      w.detections, w.cameras, w.fps, w.per_frame, w.batch, pairs.size(),
      pairs.size() == 1 ? "" : "s");
  printf(
      "PostgreSQL %s, durable=true (fsync=%s, synchronous_commit=%s, full_page_writes=%s), "
      "shared_buffers %s; %ld CPU cores shared by everything\n",
      settings["server_version"].c_str(), settings["fsync"].c_str(),
      settings["synchronous_commit"].c_str(), settings["full_page_writes"].c_str(),
      settings["shared_buffers"].c_str(), cores);
  std::vector<double> startup;
  for (const auto& p : pairs) startup.push_back(p.agg_first_row_after_spawn_s);
  printf(
      "aggregation timed from its first inserted row (start-up excluded; first row %.2f s "
      "after spawn, median)\n\n",
      SpreadOf(startup).median);
  printf("%-44s %12s %22s\n", "", "median", "range");
  for (const Metric& m : Metrics()) {
    std::vector<double> v;
    for (const auto& p : pairs) v.push_back(m.get(p));
    Spread s = SpreadOf(v);
    result[m.key] = SpreadJson(s);
    if (m.label == nullptr) continue;
    char med[32], lo[32], hi[32], range[72];
    snprintf(med, sizeof(med), m.fmt, s.median);
    snprintf(lo, sizeof(lo), m.fmt, s.min);
    snprintf(hi, sizeof(hi), m.fmt, s.max);
    snprintf(range, sizeof(range), "%s - %s", lo, hi);
    printf("%-44s %12s %22s\n", m.label, med, range);
  }
  printf("\n%s", api_table.c_str());
  result["api"] = std::move(api);
  return result;
}

}  // namespace

int StorageBenchmarkMain(int argc, char** argv) {
  int detections = 200000, cameras = 10, per_frame = 3, batch = 500, rounds = 3, poll_ms = 20,
      timeout_s = 120, wrk_threads = 2, wrk_connections = 16, wrk_seconds = 10;
  double fps = 30;
  bool keep_temp = false, skip_api = false, analyze = true;
  std::string json_out;
  FlagSet flags("storage_benchmark",
                "Aggregation's sustained insert rate vs a direct COPY of the same rows, and the\n"
                "api under wrk, on a private durable PostgreSQL and redis-server.");
  flags.Int("detections", &detections, "synthetic detections per round (N)");
  flags.Int("cameras", &cameras, "cameras in the synthetic data");
  flags.Double("fps", &fps, "frames per second per camera in the synthetic timestamps");
  flags.Int("per-frame", &per_frame, "detections per frame");
  flags.Int("batch", &batch, "aggregation --batch, and the rows per COPY transaction");
  flags.Int("rounds", &rounds, "aggregation/COPY pairs (median and range reported)");
  flags.Int("poll-ms", &poll_ms, "how often aggregation's /metrics is polled");
  flags.Int("timeout-s", &timeout_s, "give up when aggregation has not stored N rows by then");
  flags.Int("wrk-threads", &wrk_threads, "wrk -t");
  flags.Int("wrk-connections", &wrk_connections, "wrk -c (concurrency)");
  flags.Int("wrk-seconds", &wrk_seconds, "wrk -d per endpoint");
  flags.Bool("skip-api", &skip_api, "skip the api/wrk part");
  flags.Bool("analyze", &analyze,
             "ANALYZE the tables before the api part (--no-analyze: no statistics yet, as right "
             "after a bulk load)");
  flags.Bool("keep-temp", &keep_temp, "keep the temp dir (logs, cluster) for inspection");
  flags.String("json-out", &json_out, "also write the results here (atomically)");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (detections < 1 || cameras < 1 || per_frame < 1 || fps <= 0 || batch < 1 || batch > 100000 ||
      rounds < 1 || poll_ms < 1 || timeout_s < 1 || wrk_threads < 1 ||
      wrk_connections < wrk_threads || wrk_seconds < 1) {
    fprintf(stderr,
            "storage_benchmark: --detections, --cameras, --per-frame, --fps, --rounds, "
            "--poll-ms, --timeout-s, --wrk-* must be positive; --batch 1..100000 (aggregation's "
            "range); --wrk-connections >= --wrk-threads\n");
    return 2;
  }
  const std::string bin_dir = SelfExeDir();
  if (access((bin_dir + "/framescope-aggregation").c_str(), X_OK) != 0) {
    fprintf(stderr,
            "storage_benchmark: %s/framescope-aggregation not found: build it (cmake --build "
            "--preset release --target framescope-aggregation)\n",
            bin_dir.c_str());
    return 1;
  }
  if (std::string why = PostgresCluster::Unavailable(); !why.empty()) {
    fprintf(stderr, "storage_benchmark: PostgreSQL cannot run here: %s (run `make deps`)\n",
            why.c_str());
    return 1;
  }
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  // Declared before everything that talks to its processes, so it is destroyed last.
  Sandbox sandbox;
  auto fail = [](const Status& st) {
    fprintf(stderr, "storage_benchmark: %s\n", st.message().c_str());
    return 1;
  };
  if (Status st = sandbox.Create(keep_temp); !st.ok()) return fail(st);

  // ---- PostgreSQL (durable) and Redis ----
  Progress("starting a private PostgreSQL (durable) and redis-server in %s...",
           sandbox.dir().c_str());
  PostgresCluster cluster(sandbox.dir() + "/pg");
  auto pg_port = PickFreePort();
  if (!pg_port.ok()) return fail(pg_port.status());
  if (Status st = cluster.Init(sandbox.LogPath("initdb")); !st.ok()) {
    return fail(st.Annotate("initdb (log " + sandbox.LogPath("initdb") + ")"));
  }
  // durable = true: fsync, synchronous_commit and full_page_writes stay on, as in
  // production, so every batch's COMMIT waits for its WAL flush.
  auto pg_pid = sandbox.Spawn("postgres", cluster.ServerArgv(*pg_port, /*durable=*/true), SIGINT,
                              cluster.run_as());
  if (!pg_pid.ok()) return fail(pg_pid.status());
  if (Status st = cluster.WaitReady(*pg_port, *pg_pid, "framescope", 30000); !st.ok()) {
    return fail(st.Annotate("PostgreSQL; log:\n" + Tail(sandbox.LogPath("postgres"))));
  }
  auto url = cluster.Url(*pg_port, "framescope");
  auto url_cmdline = cluster.Url(*pg_port, "framescope", /*with_password=*/false);
  auto password = cluster.Password();
  if (!url.ok() || !url_cmdline.ok() || !password.ok()) {
    return fail(!url.ok()           ? url.status()
                : !url_cmdline.ok() ? url_cmdline.status()
                                    : password.status());
  }
  // The children (aggregation, api) inherit it; libpq reads it when the URL has none.
  setenv("PGPASSWORD", password->c_str(), 1);
  pid_t redis_pid = -1;
  auto redis_port = StartRedis(&sandbox, &redis_pid);
  if (!redis_port.ok()) return fail(redis_port.status());
  const std::string redis_url = "redis://127.0.0.1:" + std::to_string(*redis_port);

  auto pg = PgClient::Connect(*url, "storage_benchmark");
  if (!pg.ok()) return fail(pg.status());
  auto redis = RedisClient::Connect(redis_url, "storage_benchmark", 10000);
  if (!redis.ok()) return fail(redis.status());

  std::map<std::string, std::string> settings;
  for (const char* s : {"server_version", "fsync", "synchronous_commit", "full_page_writes",
                        "wal_level", "shared_buffers"}) {
    auto r = (*pg)->Exec(std::string("SHOW ") + s);
    settings[s] = r.ok() && !r->rows.empty() && r->rows[0][0] ? *r->rows[0][0] : "?";
  }

  Context ctx{&sandbox, bin_dir,   *pg_pid, *url,    *url_cmdline, redis_url, detections,
              cameras,  per_frame, batch,   poll_ms, timeout_s,    fps};
  std::vector<PairResult> pairs;
  for (int round = 1; round <= rounds; ++round) {
    auto r = RunPair(ctx, round, pg->get(), &*redis);
    if (!r.ok()) return fail(r.status().Annotate("round " + std::to_string(round)));
    pairs.push_back(*r);
  }
  // The api reads `detections` and the rollups; the copy is no longer needed.
  (void)(*pg)->Exec("DROP TABLE IF EXISTS detections_copy");

  // The tables were emptied and refilled seconds ago, so they have no statistics yet; the
  // planner then guesses a handful of rows per camera and reads all of a camera's rows
  // (bitmap scan + sort) for /detections?camera=...&limit=100 instead of walking
  // detections_camera_ts (~100x slower at N=200000). A long-running system has them:
  // autovacuum analyzes within its naptime (1 min). --no-analyze measures the cold case.
  if (analyze && !skip_api) {
    Progress("ANALYZE detections and rollups (as autovacuum would)...");
    if (auto st = (*pg)->Exec("ANALYZE detections, detection_rollup_1s, detection_rollup_1m");
        !st.ok()) {
      return fail(st.status().Annotate("ANALYZE"));
    }
  }

  std::string api_table;
  Json api = Json::MakeObject();
  if (skip_api) {
    api["measurable"] = false;
    api["reason"] = "skipped (--skip-api)";
    api_table = "api: skipped (--skip-api)\n";
  } else {
    api = MeasureApi(ctx, wrk_threads, wrk_connections, wrk_seconds, &api_table);
  }
  if (Status st = CheckInterrupted(); !st.ok()) return fail(st);

  api["tables_analyzed"] = analyze;
  Json result = Report(Workload{detections, cameras, fps, per_frame, batch}, settings, pairs,
                       std::move(api), api_table);
  if (!skip_api) {
    printf("(api measured %s ANALYZE of the loaded tables)\n", analyze ? "after" : "without");
  }
  fflush(stdout);

  if (!json_out.empty()) {
    std::string parent = std::filesystem::path(json_out).parent_path().string();
    Status st = parent.empty() ? Status::Ok() : MakeDirs(parent);
    if (st.ok()) st = WriteFileAtomic(json_out, result.Dump(2) + "\n");
    if (!st.ok()) return fail(st.Annotate("writing " + json_out));
  }
  return 0;
}

}  // namespace fs

int main(int argc, char** argv) { return fs::StorageBenchmarkMain(argc, argv); }
