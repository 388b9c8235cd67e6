// A small pool of PostgreSQL connections for a multi-threaded server, with a deadline on
// every call.
//
// PgClient is not thread-safe and libpq blocks in recv() on a server that stopped answering
// (a SIGSTOPped or wedged postmaster keeps the TCP connection open, and the kernel still
// ACKs, so neither statement_timeout nor TCP keepalives end the wait). So each connection
// belongs to one worker thread, and callers hand jobs to the workers and wait on their own
// deadline: a request always gets an answer within the deadline, even when the worker
// running its job is stuck. A stuck worker finishes its job whenever the server answers
// again and the result is thrown away.
//
// Connecting is lazy and shared: after a failed connect every worker fails fast with the
// last error until a backoff (250 ms doubling to 5 s) has passed, so a dead database costs
// one connect attempt per backoff period, not one per request.
#ifndef FRAMESCOPE_SERVICES_API_PG_POOL_H_
#define FRAMESCOPE_SERVICES_API_PG_POOL_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/base/status.h"
#include "src/clients/pg_client.h"

namespace fs::api {

struct PgPoolOptions {
  std::string url;
  std::string source = "api";  // labels framescope_client_request_duration_seconds
  int connections = 4;
  // Server-side statement_timeout; a call's deadline is this plus `grace_ms`.
  int statement_timeout_ms = 2000;
  int grace_ms = 500;
  // libpq's connect_timeout (libpq treats values below 2 as 2).
  int connect_timeout_s = 2;
  // Jobs waiting for a worker beyond this many are refused at once (overload).
  int max_queued = 64;
};

// Why a call failed, as far as a client of the api is concerned.
enum class PgFailure {
  kNone,
  kUnavailable,    // cannot connect, connection lost, server shutting down, overloaded
  kTimeout,        // statement_timeout fired, or no answer before the deadline
  kSchemaMissing,  // a table is not there yet (SQLSTATE 42P01): migrations not applied
  kBadInput,       // the server rejected a value (SQLSTATE class 22)
  kQueryError,     // anything else: a bug in the query
};

struct PgOutcome {
  PgFailure failure = PgFailure::kNone;
  Status status;
  bool ok() const { return failure == PgFailure::kNone; }
};

// A job runs on a worker thread with that worker's connection. It must own everything it
// touches (capture by value / shared_ptr): after the deadline Run() returns while the job
// may still be running.
using PgJob = std::function<Status(PgClient*)>;

class PgPool {
 public:
  explicit PgPool(PgPoolOptions options);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Starts the workers; each connects in the background (failures only logged).
  void Start();
  // Runs `job` on a free connection and waits for it, at most statement_timeout + grace.
  PgOutcome Run(PgJob job);
  // Fails queued jobs, waits up to `wait_ms` for the workers to exit; workers stuck on an
  // unresponsive server are left detached (they own their state) and false is returned.
  bool Stop(int wait_ms = 2000);

  // Connection state for /health: true after the last connect or call succeeded.
  bool connected() const;
  std::string last_error() const;

 private:
  struct Call;
  struct Shared;
  static void WorkerLoop(std::shared_ptr<Shared> shared, size_t index);

  PgPoolOptions options_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> workers_;
};

// Prepares `sql` under `name` on this connection if it is not yet (PgClient::Prepare is a
// lookup after the first time) and runs it. Preparing lazily, per call, lets the api start
// before the tables exist: preparing fails with 42P01 until the migrations ran.
StatusOr<PgResult> ExecStatement(PgClient* pg, const std::string& name, const std::string& sql,
                                 const std::vector<std::optional<std::string>>& params);

// Classifies a failed call by SQLSTATE and connection state.
PgFailure ClassifyPgError(const std::string& sqlstate, bool connection_healthy);

}  // namespace fs::api

#endif  // FRAMESCOPE_SERVICES_API_PG_POOL_H_
