// A thin libpq client: Status-returning calls, prepared statements, COPY FROM STDIN, and the
// client-side latency histogram framescope_client_request_duration_seconds{source,target=
// "postgres",op}. Not thread-safe: one client per thread.
#ifndef FRAMESCOPE_CLIENTS_PG_CLIENT_H_
#define FRAMESCOPE_CLIENTS_PG_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/base/status.h"

namespace fs {

// Result rows as text (libpq text format). NULL is std::nullopt.
struct PgResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  int64_t affected = 0;  // rows affected (INSERT/UPDATE/DELETE/COPY)
};

class PgClient {
 public:
  // `conninfo`: a postgresql:// URL or key=value string. `source` labels metrics (service
  // name). Connect fails with a clear error (host, port, server message) within
  // `connect_timeout_s`; every statement is bounded by `statement_timeout_ms` (0 = none).
  static StatusOr<std::unique_ptr<PgClient>> Connect(const std::string& conninfo,
                                                     const std::string& source,
                                                     int connect_timeout_s = 5,
                                                     int statement_timeout_ms = 0);
  ~PgClient();
  PgClient(const PgClient&) = delete;
  PgClient& operator=(const PgClient&) = delete;

  // Bounds Exec and ExecParams on the client side too: a server that stops answering (SIGSTOPped,
  // a hung host) cannot be interrupted by statement_timeout, which the server itself enforces.
  // After `timeout_ms` without the whole answer, or once *stop is set and the call has waited a
  // second (so clean-up statements after Ctrl-C still run), the call fails and the connection is
  // shut down (healthy() turns false). 0 and no stop: wait as long as the server takes.
  void SetClientDeadline(int timeout_ms, const std::atomic<bool>* stop = nullptr);

  // Simple query (may contain several statements; returns the last result).
  StatusOr<PgResult> Exec(const std::string& sql, const std::string& op = "exec");
  // Parameterised query, no preparation ($1, $2, ... as text).
  StatusOr<PgResult> ExecParams(const std::string& sql,
                                const std::vector<std::optional<std::string>>& params,
                                const std::string& op = "exec");
  // Prepares `sql` under `name` once per connection; ExecPrepared runs it.
  Status Prepare(const std::string& name, const std::string& sql);
  StatusOr<PgResult> ExecPrepared(const std::string& name,
                                  const std::vector<std::optional<std::string>>& params);
  // COPY <table_and_columns> FROM STDIN (text format). `rows` are already tab-separated lines
  // without the trailing newline; values must be escaped with PgCopyEscape. Returns rows copied.
  StatusOr<int64_t> CopyIn(const std::string& table_and_columns,
                           const std::vector<std::string>& rows);

  Status Begin() { return Exec("BEGIN", "begin").status(); }
  Status Commit() { return Exec("COMMIT", "commit").status(); }
  Status Rollback() { return Exec("ROLLBACK", "rollback").status(); }

  // False after a connection-level failure: reconnect.
  bool healthy() const;
  const std::string& where() const { return where_; }
  // SQLSTATE of the last failed call ("" after a success or a client-side error), e.g.
  // "23505" unique_violation, "57014" query_canceled (statement_timeout), "40001"
  // serialization_failure: lets callers tell retryable errors from bugs.
  const std::string& last_sqlstate() const;

 private:
  PgClient() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string where_;
};

// Splits the password out of a conninfo (postgresql:// URL or key=value): `*without` is an
// equivalent key=value conninfo with no password (safe for a command line), `*password` the
// password ("" if none). Error (without echoing the input) if libpq cannot parse it.
Status PgSplitPassword(const std::string& conninfo, std::string* without, std::string* password);

// Escapes a value for COPY text format (backslash, tab, newline, carriage return).
std::string PgCopyEscape(const std::string& value);
// The COPY text-format NULL marker.
inline constexpr const char* kPgCopyNull = "\\N";
// One COPY text-format row: escaped values joined by tabs, std::nullopt as \N.
std::string PgCopyRow(const std::vector<std::optional<std::string>>& values);

// Applies versioned migrations in order inside transactions, recording each in
// schema_migrations(version, name, applied_at). Already-applied versions are skipped, so it
// is safe to run at every start and from several processes (guarded by an advisory lock).
struct Migration {
  int version;
  std::string name;
  std::string sql;
};
Status ApplyMigrations(PgClient* pg, const std::vector<Migration>& migrations);

}  // namespace fs

#endif  // FRAMESCOPE_CLIENTS_PG_CLIENT_H_
