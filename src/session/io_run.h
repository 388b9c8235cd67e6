// The I/O analyses over a profile's recording window, as one step of `framescope profile`:
// PostgreSQL statements (pg_stat_statements snapshots, plans, HypoPG advice; never --apply:
// profile changes nothing in the database), Redis (pipelining from the clients' counters and the
// server's, per-command latency) and the latency map of every service-to-service edge. Begin()
// when the recording starts, End() when it ends, then Analyse(); each analyser that cannot
// measure says why in its own section, and the others still run.
//
//   OUT/io/db_analysis.json, redis_analysis.json, network_map.json, network_map.svg
#ifndef FRAMESCOPE_SESSION_IO_RUN_H_
#define FRAMESCOPE_SESSION_IO_RUN_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/base/json.h"
#include "src/base/status.h"
#include "src/io/db_window.h"
#include "src/io/net_window.h"
#include "src/io/redis_window.h"
#include "src/session/baseline_doc.h"

namespace fs::profile {

struct IoRunOptions {
  double slow_ms = 100;  // PostgreSQL statements slower than this (mean) are listed and advised
  const std::atomic<bool>* stop = nullptr;  // Ctrl-C: the database's EXPLAINs stop early
};

struct IoResults {
  std::string error;  // The system's targets could not be read (then nothing below ran).
  std::optional<io::DbAnalysis> db;
  std::optional<io::RedisAnalysis> redis;
  std::optional<io::EdgeMap> net;
  // Each analysis as written to OUT/io (its "checklist" also feeds summary.json and the terminal).
  Json db_json, redis_json, net_json;
};

class IoWindows {
 public:
  IoWindows();
  ~IoWindows();
  // Finds the running system's servers in `state_dir` and starts every window.
  void Begin(const std::string& state_dir, const IoRunOptions& options);
  void End();
  IoResults Analyse();

 private:
  std::string error_ = "not started";
  std::unique_ptr<io::DbWindow> db_;
  std::unique_ptr<io::RedisWindow> redis_;
  std::unique_ptr<io::NetWindow> net_;
};

// The I/O files under OUT/io (each write's status appended to *written) and summary.json's
// "io" object with each analyser's checklist verdict.
Json WriteIoFiles(const std::string& out_dir, const IoResults& io, std::vector<Status>* written);
std::vector<BaselineSection> IoBaselineSections(const IoResults& io);
std::string IoHtml(const IoResults& io);
// One line per analyser for the terminal: its checklist verdict with the reason.
std::vector<std::string> IoVerdictLines(const IoResults& io);

}  // namespace fs::profile

#endif  // FRAMESCOPE_SESSION_IO_RUN_H_
