#include "services/api/pg_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "src/base/clock.h"
#include "src/base/logging.h"

namespace fs::api {
namespace {

constexpr int64_t kInitialBackoffNs = 250000000LL;
constexpr int64_t kMaxBackoffNs = 5000000000LL;

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

struct PgPool::Call {
  PgJob job;
  bool started = false;
  bool done = false;
  PgOutcome outcome;
};

struct PgPool::Shared {
  explicit Shared(PgPoolOptions o) : options(std::move(o)) {}

  const PgPoolOptions options;
  std::mutex mu;
  std::condition_variable work_cv;  // workers: a job was queued, or stopping
  std::condition_variable done_cv;  // callers and Stop(): a job finished, a worker exited
  std::deque<std::shared_ptr<Call>> queue;
  bool stopping = false;
  std::vector<int64_t> busy_since_ns;  // per worker: start of its current job, 0 when idle
  std::vector<bool> exited;

  // Link state, shared by the workers so a dead server costs one connect per backoff.
  bool connected = false;  // the last connect or call succeeded
  bool failing = false;    // the last connect failed: back off
  std::string last_error = "not connected to PostgreSQL yet";
  std::string where = "PostgreSQL";  // "PostgreSQL at host:port" once connected
  int64_t backoff_ns = kInitialBackoffNs;
  int64_t next_attempt_ns = 0;

  // Connects `*conn`, or fails fast while backing off after a failed attempt.
  Status Connect(std::unique_ptr<PgClient>* conn) {
    int64_t now = MonotonicNs();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (failing && now < next_attempt_ns) {
        return Err(last_error + " (next connection attempt in " +
                   std::to_string((next_attempt_ns - now) / 1000000) + " ms)");
      }
      // While failing, this attempt holds the slot: the other workers fail fast meanwhile.
      if (failing) next_attempt_ns = now + backoff_ns;
    }
    auto c = PgClient::Connect(options.url, options.source, options.connect_timeout_s,
                               options.statement_timeout_ms);
    std::lock_guard<std::mutex> lock(mu);
    if (!c.ok()) {
      if (!failing || last_error != c.status().message()) {
        LOG(WARNING) << c.status().message() << "; retrying with backoff up to "
                     << kMaxBackoffNs / 1000000000 << " s";
      }
      connected = false;
      failing = true;
      last_error = c.status().message();
      next_attempt_ns = MonotonicNs() + backoff_ns;
      backoff_ns = std::min(backoff_ns * 2, kMaxBackoffNs);
      return c.status();
    }
    if (failing || !connected) LOG(INFO) << "connected to postgres " << (*c)->where();
    *conn = std::move(c).value();
    where = "PostgreSQL at " + (*conn)->where();
    connected = true;
    failing = false;
    backoff_ns = kInitialBackoffNs;
    next_attempt_ns = 0;
    return Status::Ok();
  }

  PgOutcome Execute(std::unique_ptr<PgClient>* conn, const PgJob& job) {
    for (int attempt = 0;; ++attempt) {
      bool fresh = false;
      if (!*conn || !(*conn)->healthy()) {
        conn->reset();
        if (Status st = Connect(conn); !st.ok()) {
          return {PgFailure::kUnavailable, Err("PostgreSQL unavailable: " + st.message())};
        }
        fresh = true;
      }
      Status st = job(conn->get());
      if (st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        connected = true;
        return {};
      }
      bool healthy = (*conn)->healthy();
      std::string sqlstate = (*conn)->last_sqlstate();
      if (!healthy) {
        conn->reset();
        // A connection that broke while idle (server restarted, backend terminated) fails
        // on its first use: retry once on a fresh one. Jobs are read-only, so re-running
        // them is safe.
        if (!fresh && attempt == 0) continue;
        std::lock_guard<std::mutex> lock(mu);
        connected = false;
        last_error = st.message();
      }
      return {ClassifyPgError(sqlstate, healthy), st};
    }
  }
};

PgPool::PgPool(PgPoolOptions options)
    : options_(std::move(options)), shared_(std::make_shared<Shared>(options_)) {}

PgPool::~PgPool() { Stop(); }

void PgPool::Start() {
  int n = std::max(options_.connections, 1);
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->busy_since_ns.assign(static_cast<size_t>(n), 0);
    shared_->exited.assign(static_cast<size_t>(n), false);
  }
  for (int i = 0; i < n; ++i) {
    workers_.emplace_back(&PgPool::WorkerLoop, shared_, static_cast<size_t>(i));
  }
}

void PgPool::WorkerLoop(std::shared_ptr<Shared> shared, size_t index) {
  std::unique_ptr<PgClient> conn;
  // Connect ahead of the first request; a failure here is only logged (and backed off).
  (void)shared->Connect(&conn);
  for (;;) {
    std::shared_ptr<Call> call;
    {
      std::unique_lock<std::mutex> lock(shared->mu);
      shared->work_cv.wait(lock, [&] { return shared->stopping || !shared->queue.empty(); });
      if (shared->stopping) break;
      call = std::move(shared->queue.front());
      shared->queue.pop_front();
      call->started = true;
      shared->busy_since_ns[index] = MonotonicNs();
    }
    PgOutcome outcome = shared->Execute(&conn, call->job);
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->busy_since_ns[index] = 0;
      call->outcome = std::move(outcome);
      call->done = true;
      // The job's captures (which may own large results) go with the worker's reference.
      call->job = nullptr;
    }
    shared->done_cv.notify_all();
  }
  conn.reset();
  {
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->exited[index] = true;
  }
  shared->done_cv.notify_all();
}

PgOutcome PgPool::Run(PgJob job) {
  const int timeout_ms = options_.statement_timeout_ms + options_.grace_ms;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto call = std::make_shared<Call>();
  call->job = std::move(job);
  Shared& s = *shared_;
  std::unique_lock<std::mutex> lock(s.mu);
  if (s.stopping || s.busy_since_ns.empty()) {
    return {PgFailure::kUnavailable, Err("the api is shutting down")};
  }
  // When every worker has been stuck on one call for longer than a deadline, the server is
  // not answering: say so now instead of letting every request wait out its deadline.
  int64_t now = MonotonicNs();
  int64_t youngest = INT64_MAX;
  for (int64_t since : s.busy_since_ns) youngest = since == 0 ? 0 : std::min(youngest, now - since);
  if (youngest > int64_t{timeout_ms} * 1000000) {
    return {
        PgFailure::kTimeout,
        Err(s.where + " is not answering: all " + std::to_string(s.busy_since_ns.size()) +
            " connections have been waiting for more than " + std::to_string(timeout_ms) + " ms")};
  }
  if (static_cast<int>(s.queue.size()) >= options_.max_queued) {
    return {PgFailure::kUnavailable, Err("too many queries waiting for a PostgreSQL connection (" +
                                         std::to_string(s.queue.size()) + "); retry later")};
  }
  s.queue.push_back(call);
  s.work_cv.notify_one();
  if (!s.done_cv.wait_until(lock, deadline, [&] { return call->done; })) {
    if (!call->started) {
      s.queue.erase(std::remove(s.queue.begin(), s.queue.end(), call), s.queue.end());
    }
    return {PgFailure::kTimeout,
            Err(s.where + " did not answer within " + std::to_string(timeout_ms) +
                " ms (server overloaded, locked or hung?)")};
  }
  return call->outcome;
}

bool PgPool::Stop(int wait_ms) {
  if (workers_.empty()) return true;
  Shared& s = *shared_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.stopping = true;
  for (auto& call : s.queue) {
    call->done = true;
    call->outcome = {PgFailure::kUnavailable, Err("the api is shutting down")};
  }
  s.queue.clear();
  s.work_cv.notify_all();
  s.done_cv.notify_all();
  auto all_exited = [&] {
    return std::all_of(s.exited.begin(), s.exited.end(), [](bool e) { return e; });
  };
  bool clean = s.done_cv.wait_for(lock, std::chrono::milliseconds(wait_ms), all_exited);
  std::vector<bool> exited = s.exited;
  lock.unlock();
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (exited[i]) {
      workers_[i].join();
    } else {
      // Blocked on a server that does not answer; it owns `shared_` and exits when (if)
      // the server answers.
      workers_[i].detach();
    }
  }
  workers_.clear();
  if (!clean) LOG(WARNING) << "left PostgreSQL connections waiting on an unresponsive server";
  return clean;
}

bool PgPool::connected() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->connected;
}

std::string PgPool::last_error() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->last_error;
}

StatusOr<PgResult> ExecStatement(PgClient* pg, const std::string& name, const std::string& sql,
                                 const std::vector<std::optional<std::string>>& params) {
  RETURN_IF_ERROR(pg->Prepare(name, sql));
  return pg->ExecPrepared(name, params);
}

PgFailure ClassifyPgError(const std::string& sqlstate, bool connection_healthy) {
  if (!connection_healthy) return PgFailure::kUnavailable;
  if (sqlstate == "57014") return PgFailure::kTimeout;  // query_canceled: statement_timeout
  if (sqlstate == "42P01" || sqlstate == "3F000") return PgFailure::kSchemaMissing;
  if (StartsWith(sqlstate, "22")) return PgFailure::kBadInput;  // data exception
  // Connection exceptions, insufficient resources, operator intervention (shutdown,
  // recovery), transaction rollbacks (deadlock, serialization), lock not available.
  if (StartsWith(sqlstate, "08") || StartsWith(sqlstate, "53") || StartsWith(sqlstate, "57") ||
      StartsWith(sqlstate, "40") || sqlstate == "55P03") {
    return PgFailure::kUnavailable;
  }
  return PgFailure::kQueryError;
}

}  // namespace fs::api
