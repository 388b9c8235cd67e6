// framescope db: PostgreSQL statements over a window (pg_stat_statements), the slow ones planned
// and advised with HypoPG, and with --apply / --try-index the index built and verified over a
// new window: OUT/io/db_analysis.json, a terminal table, checklist 3.1.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "src/base/clock.h"
#include "src/base/file_util.h"
#include "src/base/flags.h"
#include "src/base/output.h"
#include "src/cli/cli.h"
#include "src/cli/cli_util.h"
#include "src/clients/pg_client.h"
#include "src/io/db_window.h"
#include "src/report/db_report.h"
#include "src/session/io_targets.h"

namespace fs {
namespace {

std::atomic<bool> g_stop{false};

constexpr const char* kDbSummary =
    "Reads pg_stat_statements at the start and end of a --duration window and reports each\n"
    "statement's windowed calls, mean and total execution time (total_exec_time), rows and\n"
    "shared-buffer hit ratio (shared_blks_hit / (hit + read)); a pg_stat_statements_reset()\n"
    "or an eviction inside the window is detected (stats_reset, calls going down, dealloc) and\n"
    "said, and such a statement counts from its end values only (PostgreSQL 15 keeps no\n"
    "per-statement reset time: a single statement reset with pg_stat_statements_reset(u, d, q)\n"
    "that then runs past its start counts goes unseen). Statements whose windowed\n"
    "mean is over --slow-ms get their generic plan (EXPLAIN (FORMAT JSON) of the normalised\n"
    "text, NULL for each $n) and index advice from HypoPG: single- and two-column candidates\n"
    "from the plan's sequential-scan filters, suggested when the planner's cost falls by at\n"
    "least --min-cost-cut. Also: tables with sequential scans over many rows in the window\n"
    "(pg_stat_user_tables) and indexes never used (pg_stat_user_indexes.idx_scan = 0, unique\n"
    "and primary keys left out). Checklist 3.1: no statement's windowed mean over 100 ms.\n"
    "The database is only read: hypothetical indexes live in framescope's session and vanish\n"
    "with it. Only --apply (the suggestions) and --try-index change it: CREATE INDEX\n"
    "CONCURRENTLY fs_idx_<table>_<cols>, the statement re-measured over a new window of the\n"
    "same length, the index kept only if the mean fell by --keep-margin, else DROP INDEX\n"
    "CONCURRENTLY (a failed build's invalid index is dropped too). A trial's index carries a\n"
    "comment ('framescope --apply: on trial by backend N', then 'kept at ...') so that one whose\n"
    "framescope was killed before the verdict is found later. Every run lists the indexes left\n"
    "behind: invalid ones (a failed or killed CONCURRENTLY build) and trials whose backend is\n"
    "gone; --apply and --try-index drop framescope's own (fs_idx_* or so commented), never a\n"
    "user's. An external --postgres-url is therefore read-only unless --apply or --try-index\n"
    "is given.\n"
    "Needs pg_stat_statements (shared_preload_libraries + CREATE EXTENSION) and, for advice,\n"
    "HypoPG (package postgresql-15-hypopg + CREATE EXTENSION hypopg); without either the\n"
    "report says so and the other parts still run. Ctrl-C ends the window early and still\n"
    "analyses and writes (no index is built then); during an index build it waits the build\n"
    "out and drops the index (the drop retried up to 10 times), as a build cut off would leave an\n"
    "invalid index; a second Ctrl-C ends framescope at once (the next run lists what is left).\n"
    "Exit codes: 0 ok, 1 the server could not be reached / failure, 2 bad usage or output\n"
    "path, 3 checklist 3.1 not met, 130 interrupted.";

struct DbFlags {
  std::string state_dir = kDefaultStateDir, postgres_url, out = "profiles";
  std::vector<std::string> try_index;
  double duration_s = 30;
  int lock_timeout_ms = 5000;
  bool json = false;
  io::DbOptions options;
};

int Usage(const std::string& message) {
  fprintf(stderr, "framescope db: %s\n", message.c_str());
  return 2;
}

// Parses and validates; returns -1 to go on, else the exit code.
int ParseDbFlags(int argc, char** argv, DbFlags* f) {
  io::DbOptions& o = f->options;
  FlagSet flags("framescope db", kDbSummary);
  flags.String("state-dir", &f->state_dir, "the running system's state dir (its PostgreSQL)");
  flags.String("postgres-url", &f->postgres_url,
               "a PostgreSQL outside the system (postgresql:// URL or conninfo); read-only "
               "unless --apply or --try-index");
  flags.Double("duration", &f->duration_s, "seconds of the window, up to 86400");
  flags.Double("slow-ms", &o.slow_ms, "a statement is slow when its windowed mean is over this");
  flags.Double("min-cost-cut", &o.min_cost_cut,
               "suggest an index when HypoPG's plan cost falls by this share, 0..1 (Dexter: 0.5)");
  flags.Bool("apply", &o.apply, "build each suggested index, re-measure, keep it only if faster");
  flags.StringList("try-index", &f->try_index,
                   "table(col[,col]): verify your own index idea the same way");
  flags.Double("keep-margin", &o.keep_margin,
               "keep an index when the mean fell by at least this share, 0..1");
  flags.Int("lock-timeout-ms", &f->lock_timeout_ms,
            "lock_timeout of CREATE/DROP INDEX CONCURRENTLY, 1..600000");
  flags.Bool("explain-analyze", &o.explain_analyze,
             "also EXPLAIN ANALYZE the slow statements that have no parameters (runs them, "
             "inside a rolled-back transaction; sequences still advance)");
  flags.Folder("out", &f->out, "output folder (the report goes to OUT/io/db_analysis.json)");
  flags.Bool("json", &f->json, "print the report as JSON on standard output");
  int code = 0;
  if (!flags.ParseOrExit(argc, argv, &code)) return code;
  if (!(f->duration_s > 0) || f->duration_s > 86400) {
    return Usage("--duration must be more than 0 and at most 86400 seconds");
  }
  if (!(o.slow_ms >= 0)) return Usage("--slow-ms must be 0 or more");
  if (!(o.min_cost_cut > 0 && o.min_cost_cut <= 1))
    return Usage("--min-cost-cut must be in (0, 1]");
  if (!(o.keep_margin >= 0 && o.keep_margin < 1)) return Usage("--keep-margin must be in [0, 1)");
  if (f->lock_timeout_ms < 1 || f->lock_timeout_ms > 600000) {
    return Usage("--lock-timeout-ms must be 1..600000");
  }
  o.lock_timeout_ms = f->lock_timeout_ms;
  for (const std::string& text : f->try_index) {
    auto spec = io::ParseIndexSpec(text);
    if (!spec.ok()) return Usage(spec.status().message());
    o.try_indexes.push_back(*spec);
  }
  if (flags.WasSet("state-dir") && flags.WasSet("postgres-url")) {
    return Usage("give --state-dir or --postgres-url, not both");
  }
  return -1;
}

// The conninfo (with its password) and the label to print (without).
Status Target(const DbFlags& f, std::string* conninfo, std::string* label) {
  if (!f.postgres_url.empty()) {
    std::string password;
    RETURN_IF_ERROR(PgSplitPassword(f.postgres_url, label, &password).Annotate("--postgres-url"));
    *conninfo = f.postgres_url;
    return Status::Ok();
  }
  auto targets = ResolveIoTargets(f.state_dir);
  if (!targets.ok()) {
    return targets.status().Annotate(
        "no system's PostgreSQL found (start one with framescope up, "
        "or give --postgres-url)");
  }
  *conninfo = targets->postgres_url;
  *label = targets->postgres_label;
  return Status::Ok();
}

}  // namespace

int DbMain(int argc, char** argv) {
  DbFlags f;
  if (int code = ParseDbFlags(argc, argv, &f); code >= 0) return code;
  const std::string dir = f.out + "/io", path = dir + "/db_analysis.json";
  Status st = MakeDirs(dir).Annotate("--out: cannot create " + dir);
  if (st.ok()) st = CheckOutputs({path});
  if (!st.ok()) return Usage(st.message());
  std::string conninfo, label;
  if (Status t = Target(f, &conninfo, &label); !t.ok()) {
    fprintf(stderr, "framescope db: %s\n", t.message().c_str());
    return f.postgres_url.empty() ? 1 : 2;  // a URL libpq cannot parse is bad usage
  }
  signal(SIGPIPE, SIG_IGN);
  CatchStopSignals(&g_stop);
  f.options.stop = &g_stop;
  io::DbWindow window(conninfo, label, f.options);
  window.Begin();
  if (window.reachable()) {
    fprintf(stderr, "framescope db: %.0f s window on %s%s\n", f.duration_s, label.c_str(),
            f.options.apply || !f.options.try_indexes.empty() ? " (indexes may be built)"
                                                              : " (read-only)");
    WaitWindow("framescope db", f.duration_s, g_stop);
  }
  window.End();
  const io::DbAnalysis a = window.Analyse();
  const Json report = io::DbAnalysisToJson(a);
  if (Status w = WriteOutput(path, report.Dump(2) + "\n"); !w.ok()) {
    fprintf(stderr, "framescope db: %s\n", w.message().c_str());
    return 1;
  }
  if (f.json) printf("%s\n", report.Dump(2).c_str());
  FILE* out = f.json ? stderr : stdout;
  fprintf(out, "%swrote %s\n", profile::RenderDbTerminal(a).c_str(), path.c_str());
  if (!window.reachable()) {
    fprintf(stderr, "framescope db: %s\n", a.unreachable.c_str());
    return 1;
  }
  if (a.pgss_missing.empty() && !a.window_measured) {
    fprintf(stderr, "framescope db: the window's end could not be read (the server was lost?)\n");
    return 1;
  }
  if (g_stop.load()) return 130;
  return report.Get("checklist").Get("verdict").AsString() == "not met" ? 3 : 0;
}

}  // namespace fs
