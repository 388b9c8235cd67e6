#include "src/clients/pg_client.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <set>

#include "src/base/clock.h"
#include "src/base/logging.h"
#include "src/clients/metrics.h"

namespace fs {
namespace {

// Session-level advisory lock key shared by every process applying framescope migrations
// ("fsmigr" in ASCII). Session-level (not xact) because each migration commits separately.
constexpr int64_t kMigrationLockKey = 0x66736d696772;

// COPY data is sent in chunks of about this size: large enough to amortise the per-call
// cost, small enough not to double peak memory for big batches.
constexpr size_t kCopyChunkBytes = 64 * 1024;

// libpq messages end with a newline and continue on "\n\t"-indented lines; our errors are
// single log lines.
std::string OneLine(const char* msg) {
  std::string s = msg ? msg : "";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\n' || c == '\r' || c == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';
      continue;
    }
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Host and port the conninfo names, for error messages even when connecting failed (PQhost
// is empty on a failed connection). Defaults mirror libpq's.
std::string DescribeTarget(const std::string& conninfo) {
  std::string host, hostaddr, port;
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (err) PQfreemem(err);
  if (opts) {
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
      if (!o->val || !*o->val) continue;
      std::string k = o->keyword;
      if (k == "host") host = o->val;
      if (k == "hostaddr") hostaddr = o->val;
      if (k == "port") port = o->val;
    }
    PQconninfoFree(opts);
  }
  if (host.empty()) host = hostaddr;
  if (host.empty()) host = "/var/run/postgresql";  // libpq's compiled-in socket dir on Debian
  if (port.empty()) port = "5432";
  return host + ":" + port;
}

}  // namespace

struct PgClient::Impl {
  PGconn* conn = nullptr;
  std::string source;
  std::string last_sqlstate;
  std::map<std::string, std::string> prepared;  // name -> sql
  std::map<std::string, Histogram*> latency;    // op -> histogram (cached: lookups lock)
  int deadline_ms = 0;                          // SetClientDeadline
  const std::atomic<bool>* stop = nullptr;
  std::string deadline_error;  // why the last call gave up waiting ("" if it did not)
  bool broken = false;         // a call gave up: the socket is shut down
  // After Ctrl-C a caller still cleans up (drops what it built): the stop ends only a call
  // that has waited this long, which a healthy server never makes a short statement do.
  static constexpr int64_t kStopGraceNs = 1'000'000'000;

  ~Impl() {
    if (conn) PQfinish(conn);
  }

  void Observe(const std::string& op, int64_t start_ns) {
    auto it = latency.find(op);
    if (it == latency.end()) {
      it = latency
               .emplace(op, Metrics().GetHistogram(
                                "framescope_client_request_duration_seconds",
                                "Client-side latency of calls to downstream services",
                                {{"source", source}, {"target", "postgres"}, {"op", op}},
                                LatencyBucketsSeconds()))
               .first;
    }
    it->second->Observe(static_cast<double>(MonotonicNs() - start_ns) / 1e9);
  }

  // Waits until libpq can hand over the next result without blocking. False when the deadline
  // passed or *stop was set first: the socket is then shut down, so libpq sees the connection
  // end and every later call fails at once instead of waiting on the same server.
  bool Await(int64_t deadline_ns) {
    const int64_t stoppable_ns = MonotonicNs() + kStopGraceNs;
    while (PQisBusy(conn)) {
      const bool stopped = stop != nullptr && stop->load() && MonotonicNs() >= stoppable_ns;
      if (stopped || MonotonicNs() >= deadline_ns) {
        deadline_error = stopped ? "interrupted"
                                 : "no answer within " + std::to_string(deadline_ms) +
                                       " ms (is the server stopped or hung?)";
        shutdown(PQsocket(conn), SHUT_RDWR);
        broken = true;
        return false;
      }
      pollfd p{PQsocket(conn), POLLIN, 0};
      poll(&p, 1, 100);
      if (PQconsumeInput(conn) == 0) return true;  // the error comes as a result
    }
    return true;
  }

  // The results of a query sent with PQsend*, the last one kept (as PQexec does); a COPY
  // result is returned at once for LastResult to abort. nullptr when Await gave up.
  PGresult* Collect() {
    const int64_t deadline_ns =
        deadline_ms > 0 ? MonotonicNs() + int64_t{deadline_ms} * 1'000'000 : INT64_MAX;
    PGresult* last = nullptr;
    while (Await(deadline_ns)) {
      PGresult* r = PQgetResult(conn);
      if (r == nullptr) return last;
      if (last != nullptr) PQclear(last);
      last = r;
      const ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) return last;
    }
    if (last != nullptr) PQclear(last);
    return nullptr;
  }

  // `blocking` (PQexec*) without a deadline; else `send` (PQsend*) and Collect.
  template <typename Send, typename Blocking>
  PGresult* Run(Send send, Blocking blocking) {
    deadline_error.clear();
    if (deadline_ms <= 0 && stop == nullptr) return blocking();
    if (send() == 0) return nullptr;  // PQerrorMessage says why
    return Collect();
  }
};

namespace {

// Converts a finished PGresult (which it frees) to a PgResult or an error naming the server,
// the operation and the server's message with its SQLSTATE.
StatusOr<PgResult> TakeResult(PGresult* res, PGconn* conn, const std::string& where,
                              const std::string& op, std::string* sqlstate) {
  sqlstate->clear();
  if (!res) {
    return Err("postgres " + where + " " + op + ": no result: " + OneLine(PQerrorMessage(conn)) +
               (PQstatus(conn) == CONNECTION_OK ? "" : "; the connection is lost, reconnect"));
  }
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state) *sqlstate = state;
    std::string msg = OneLine(PQresultErrorMessage(res));
    if (msg.empty()) msg = std::string("unexpected result ") + PQresStatus(st);
    PQclear(res);
    std::string out = "postgres " + where + " " + op + " failed: " + msg;
    if (!sqlstate->empty()) out += " (SQLSTATE " + *sqlstate + ")";
    if (PQstatus(conn) != CONNECTION_OK) out += "; the connection is lost, reconnect";
    return Err(out);
  }
  PgResult out;
  int ncols = PQnfields(res);
  int nrows = PQntuples(res);
  out.columns.reserve(ncols);
  for (int c = 0; c < ncols; ++c) out.columns.emplace_back(PQfname(res, c));
  out.rows.resize(nrows);
  for (int r = 0; r < nrows; ++r) {
    auto& row = out.rows[r];
    row.reserve(ncols);
    for (int c = 0; c < ncols; ++c) {
      if (PQgetisnull(res, r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
      }
    }
  }
  const char* tuples = PQcmdTuples(res);
  if (tuples && *tuples) out.affected = std::strtoll(tuples, nullptr, 10);
  PQclear(res);
  return out;
}

// Drains results after a COPY was started by a call that does not stream data (Exec on a
// "COPY ... FROM STDIN"), so the connection returns to idle instead of hanging.
void AbortCopy(PGconn* conn, PGresult* res) {
  ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_COPY_IN) PQputCopyEnd(conn, "COPY FROM STDIN is only supported by CopyIn()");
  if (st == PGRES_COPY_OUT) {
    char* buf = nullptr;
    while (PQgetCopyData(conn, &buf, 0) > 0) PQfreemem(buf);
  }
  PQclear(res);
  while (PGresult* r = PQgetResult(conn)) PQclear(r);
}

// Keeps only the last result of a (possibly multi-statement) simple query, or the first
// error. COPY results are aborted with an explanation.
PGresult* LastResult(PGconn* conn, PGresult* first, std::string* copy_error) {
  PGresult* res = first;
  if (!res) return nullptr;
  ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    AbortCopy(conn, res);
    *copy_error = "COPY to or from STDIN is not supported here; use PgClient::CopyIn";
    return nullptr;
  }
  return res;
}

std::vector<const char*> ParamPointers(const std::vector<std::optional<std::string>>& params,
                                       std::vector<int>* lengths) {
  std::vector<const char*> values;
  values.reserve(params.size());
  lengths->reserve(params.size());
  for (const auto& p : params) {
    values.push_back(p ? p->c_str() : nullptr);
    lengths->push_back(p ? static_cast<int>(p->size()) : 0);
  }
  return values;
}

}  // namespace

StatusOr<std::unique_ptr<PgClient>> PgClient::Connect(const std::string& conninfo,
                                                      const std::string& source,
                                                      int connect_timeout_s,
                                                      int statement_timeout_ms) {
  int64_t start = MonotonicNs();
  std::unique_ptr<PgClient> c(new PgClient());
  c->impl_ = std::make_unique<Impl>();
  c->impl_->source = source;
  c->where_ = DescribeTarget(conninfo);
  // "dbname" is expanded as a full conninfo/URL first; the keywords after it override what
  // it says, so our timeout and application_name always apply.
  std::string timeout = std::to_string(std::max(connect_timeout_s, 0));
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* vals[] = {conninfo.c_str(), timeout.c_str(), source.c_str(), nullptr};
  c->impl_->conn = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (!c->impl_->conn) return Err("connecting to PostgreSQL: out of memory in libpq");
  if (PQstatus(c->impl_->conn) != CONNECTION_OK) {
    std::string msg = OneLine(PQerrorMessage(c->impl_->conn));
    c->impl_->Observe("connect", start);
    return Err("connecting to PostgreSQL at " + c->where_ + " failed: " + msg +
               "; check that the server is running and the URL (host, port, user, database) is "
               "right");
  }
  // NOTICEs ("relation already exists, skipping") are expected chatter from idempotent DDL;
  // libpq would print each to stderr. Warnings and errors still arrive as results.
  PQsetNoticeProcessor(
      c->impl_->conn, [](void*, const char*) {}, nullptr);
  // The resolved target is more useful than the conninfo's when several hosts were listed.
  const char* host = PQhost(c->impl_->conn);
  const char* port = PQport(c->impl_->conn);
  if (host && *host && port && *port) c->where_ = std::string(host) + ":" + port;
  c->impl_->Observe("connect", start);
  if (statement_timeout_ms > 0) {
    auto r = c->Exec("SET statement_timeout = " + std::to_string(statement_timeout_ms), "connect");
    if (!r.ok()) return r.status().Annotate("setting statement_timeout");
  }
  return c;
}

PgClient::~PgClient() = default;

void PgClient::SetClientDeadline(int timeout_ms, const std::atomic<bool>* stop) {
  impl_->deadline_ms = std::max(timeout_ms, 0);
  impl_->stop = stop;
}

bool PgClient::healthy() const {
  return impl_ && impl_->conn && !impl_->broken && PQstatus(impl_->conn) == CONNECTION_OK;
}

const std::string& PgClient::last_sqlstate() const { return impl_->last_sqlstate; }

StatusOr<PgResult> PgClient::Exec(const std::string& sql, const std::string& op) {
  int64_t start = MonotonicNs();
  PGconn* conn = impl_->conn;
  // PQexec returns only the last result of a multi-statement string (earlier ones are
  // discarded by libpq, and an error stops execution), which is the documented contract.
  impl_->last_sqlstate.clear();
  std::string copy_error;
  PGresult* res = LastResult(conn,
                             impl_->Run([&] { return PQsendQuery(conn, sql.c_str()); },
                                        [&] { return PQexec(conn, sql.c_str()); }),
                             &copy_error);
  impl_->Observe(op, start);
  if (!copy_error.empty()) return Err("postgres " + where_ + " " + op + ": " + copy_error);
  if (!impl_->deadline_error.empty()) {
    return Err("postgres " + where_ + " " + op + ": " + impl_->deadline_error);
  }
  return TakeResult(res, conn, where_, op, &impl_->last_sqlstate);
}

StatusOr<PgResult> PgClient::ExecParams(const std::string& sql,
                                        const std::vector<std::optional<std::string>>& params,
                                        const std::string& op) {
  int64_t start = MonotonicNs();
  PGconn* conn = impl_->conn;
  impl_->last_sqlstate.clear();
  std::vector<int> lengths;
  std::vector<const char*> values = ParamPointers(params, &lengths);
  const int n = static_cast<int>(params.size());
  PGresult* res = impl_->Run(
      [&] {
        return PQsendQueryParams(conn, sql.c_str(), n, nullptr, values.data(), lengths.data(),
                                 nullptr, /*resultFormat=*/0);
      },
      [&] {
        return PQexecParams(conn, sql.c_str(), n, nullptr, values.data(), lengths.data(), nullptr,
                            /*resultFormat=*/0);
      });
  std::string copy_error;
  res = LastResult(conn, res, &copy_error);
  impl_->Observe(op, start);
  if (!copy_error.empty()) return Err("postgres " + where_ + " " + op + ": " + copy_error);
  if (!impl_->deadline_error.empty()) {
    return Err("postgres " + where_ + " " + op + ": " + impl_->deadline_error);
  }
  return TakeResult(res, conn, where_, op, &impl_->last_sqlstate);
}

Status PgClient::Prepare(const std::string& name, const std::string& sql) {
  impl_->last_sqlstate.clear();
  auto it = impl_->prepared.find(name);
  if (it != impl_->prepared.end()) {
    if (it->second == sql) return Status::Ok();
    return Err("postgres " + where_ + ": statement \"" + name +
               "\" is already prepared on this connection with different SQL; use a new name");
  }
  int64_t start = MonotonicNs();
  PGresult* res = PQprepare(impl_->conn, name.c_str(), sql.c_str(), 0, nullptr);
  impl_->Observe("prepare", start);
  auto r = TakeResult(res, impl_->conn, where_, "prepare " + name, &impl_->last_sqlstate);
  if (!r.ok()) return r.status();
  impl_->prepared.emplace(name, sql);
  return Status::Ok();
}

StatusOr<PgResult> PgClient::ExecPrepared(const std::string& name,
                                          const std::vector<std::optional<std::string>>& params) {
  impl_->last_sqlstate.clear();
  if (!impl_->prepared.count(name)) {
    return Err("postgres " + where_ + ": statement \"" + name +
               "\" was not prepared on this connection; call Prepare() after connecting");
  }
  int64_t start = MonotonicNs();
  PGconn* conn = impl_->conn;
  std::vector<int> lengths;
  std::vector<const char*> values = ParamPointers(params, &lengths);
  PGresult* res = PQexecPrepared(conn, name.c_str(), static_cast<int>(params.size()), values.data(),
                                 lengths.data(), nullptr, /*resultFormat=*/0);
  std::string copy_error;
  res = LastResult(conn, res, &copy_error);
  // The statement name is the op label: a bounded set chosen by the code, not by data.
  impl_->Observe(name, start);
  if (!copy_error.empty()) return Err("postgres " + where_ + " " + name + ": " + copy_error);
  return TakeResult(res, conn, where_, name, &impl_->last_sqlstate);
}

StatusOr<int64_t> PgClient::CopyIn(const std::string& table_and_columns,
                                   const std::vector<std::string>& rows) {
  int64_t start = MonotonicNs();
  PGconn* conn = impl_->conn;
  const std::string op = "copy";
  impl_->last_sqlstate.clear();
  auto done = [&](StatusOr<int64_t> r) {
    impl_->Observe(op, start);
    return r;
  };
  std::string sql = "COPY " + table_and_columns + " FROM STDIN";
  PGresult* res = PQexec(conn, sql.c_str());
  if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
    if (res && PQresultStatus(res) == PGRES_COPY_OUT) {
      AbortCopy(conn, res);
      return done(Err("postgres " + where_ + " copy: \"" + sql + "\" did not start COPY IN"));
    }
    auto r = TakeResult(res, conn, where_, "copy into " + table_and_columns, &impl_->last_sqlstate);
    if (r.ok()) {
      return done(Err("postgres " + where_ + " copy: \"" + sql + "\" did not start COPY IN"));
    }
    return done(r.status());
  }
  PQclear(res);

  // A bad row aborts the COPY with our reason; the server then reports it as the error.
  std::string client_error;
  std::string chunk;
  chunk.reserve(kCopyChunkBytes + 1024);
  auto flush = [&]() {
    if (chunk.empty()) return true;
    if (PQputCopyData(conn, chunk.data(), static_cast<int>(chunk.size())) != 1) {
      client_error = "sending COPY data failed: " + OneLine(PQerrorMessage(conn));
      return false;
    }
    chunk.clear();
    return true;
  };
  for (size_t i = 0; i < rows.size() && client_error.empty(); ++i) {
    const std::string& row = rows[i];
    if (row.find_first_of("\n\r") != std::string::npos) {
      client_error = "row " + std::to_string(i) +
                     " contains an unescaped newline; escape values with PgCopyEscape";
      break;
    }
    chunk += row;
    chunk += '\n';
    if (chunk.size() >= kCopyChunkBytes) flush();
  }
  if (client_error.empty()) flush();
  if (PQputCopyEnd(conn, client_error.empty() ? nullptr : client_error.c_str()) != 1) {
    std::string msg = OneLine(PQerrorMessage(conn));
    while (PGresult* r = PQgetResult(conn)) PQclear(r);
    return done(Err("postgres " + where_ + " copy into " + table_and_columns +
                    ": ending COPY failed: " + msg + "; the connection is lost, reconnect"));
  }
  // One result for the COPY, then nullptr. Drain everything so the connection is reusable.
  StatusOr<PgResult> result = Err("postgres " + where_ + " copy: no result");
  bool first = true;
  while (PGresult* r = PQgetResult(conn)) {
    if (first) {
      result = TakeResult(r, conn, where_, "copy into " + table_and_columns, &impl_->last_sqlstate);
      first = false;
    } else {
      PQclear(r);
    }
  }
  if (!client_error.empty()) {
    return done(Err("postgres " + where_ + " copy into " + table_and_columns +
                    " aborted: " + client_error));
  }
  if (!result.ok()) return done(result.status());
  return done(result->affected);
}

Status PgSplitPassword(const std::string& conninfo, std::string* without, std::string* password) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err ? OneLine(err) : "out of memory";
    if (err) PQfreemem(err);
    // libpq quotes the offending token, which may be (part of) the password: not repeated.
    const std::string hidden = "\"…\"";
    for (size_t open = msg.find('"'); open != std::string::npos;
         open = msg.find('"', open + hidden.size())) {
      const size_t close = msg.find('"', open + 1);
      msg.replace(open, close == std::string::npos ? std::string::npos : close - open + 1, hidden);
    }
    return Err("cannot parse the PostgreSQL connection string: " + msg);
  }
  without->clear();
  password->clear();
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    std::string key = o->keyword;
    if (key == "password") {
      *password = o->val;
      continue;
    }
    std::string quoted;
    for (const char* c = o->val; *c; ++c) {
      if (*c == '\\' || *c == '\'') quoted += '\\';
      quoted += *c;
    }
    *without += (without->empty() ? "" : " ") + key + "='" + quoted + "'";
  }
  PQconninfoFree(opts);
  return Status::Ok();
}

std::string PgCopyEscape(const std::string& value) {
  std::string out;
  out.reserve(value.size() + 8);
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string PgCopyRow(const std::vector<std::optional<std::string>>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += '\t';
    out += values[i] ? PgCopyEscape(*values[i]) : std::string(kPgCopyNull);
  }
  return out;
}

Status ApplyMigrations(PgClient* pg, const std::vector<Migration>& migrations) {
  std::vector<Migration> ordered = migrations;
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 1; i < ordered.size(); ++i) {
    if (ordered[i].version == ordered[i - 1].version) {
      return Err("migrations: version " + std::to_string(ordered[i].version) +
                 " is listed twice (" + ordered[i - 1].name + ", " + ordered[i].name +
                 "); give each migration its own version");
    }
  }
  // Blocks until no other process is migrating; the lock is released below on every path
  // (and by the server if this connection dies).
  auto lock =
      pg->Exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")", "migrate");
  if (!lock.ok()) return lock.status().Annotate("migrations: taking the advisory lock");
  auto unlock = [&](Status st) {
    auto r =
        pg->Exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")", "migrate");
    if (!r.ok() && st.ok()) return r.status().Annotate("migrations: releasing the advisory lock");
    return st;
  };

  auto created = pg->Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "version integer PRIMARY KEY, name text NOT NULL, "
      "applied_at timestamptz NOT NULL DEFAULT now())",
      "migrate");
  if (!created.ok()) {
    return unlock(created.status().Annotate("migrations: creating schema_migrations"));
  }
  auto applied_rows = pg->Exec("SELECT version FROM schema_migrations", "migrate");
  if (!applied_rows.ok()) {
    return unlock(applied_rows.status().Annotate("migrations: reading schema_migrations"));
  }
  std::set<int> applied;
  for (const auto& row : applied_rows->rows) {
    if (row[0]) applied.insert(std::atoi(row[0]->c_str()));
  }

  for (const Migration& m : ordered) {
    if (applied.count(m.version)) continue;
    std::string what = "migration " + std::to_string(m.version) + " (" + m.name + ")";
    // Everything a migration does, and its record, commit together or not at all. A
    // migration must therefore not contain its own BEGIN/COMMIT or statements that cannot
    // run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM).
    Status st = pg->Begin();
    if (st.ok()) st = pg->Exec(m.sql, "migrate").status();
    if (st.ok()) {
      st = pg->ExecParams("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                          {std::to_string(m.version), m.name}, "migrate")
               .status();
    }
    if (st.ok()) st = pg->Commit();
    if (!st.ok()) {
      (void)pg->Rollback();  // may fail when the connection is gone; the server rolls back
      return unlock(Err(what + " failed and was rolled back, nothing of it is applied: " +
                        st.message() + "; fix the migration's SQL and restart"));
    }
    LOG(INFO) << "applied " << what;
  }
  return unlock(Status::Ok());
}

}  // namespace fs
