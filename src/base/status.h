// Recoverable errors are values (STYLE rule 4): every fallible function returns
// Status or StatusOr<T>; no exception crosses a module boundary.
#ifndef FRAMESCOPE_BASE_STATUS_H_
#define FRAMESCOPE_BASE_STATUS_H_

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace fs {

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !message_.has_value(); }
  const std::string& message() const {
    static const std::string kEmpty;
    return message_ ? *message_ : kEmpty;
  }
  // Prefixes context, e.g. Annotate("loading config") -> "loading config: <msg>".
  Status Annotate(const std::string& context) const {
    if (ok()) return *this;
    return Status(context + ": " + *message_);
  }

 private:
  explicit Status(std::string message) : message_(std::move(message)) {}
  std::optional<std::string> message_;
};

inline Status Err(std::string message) { return Status::Error(std::move(message)); }

template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.ok()) status_ = Err("StatusOr constructed from OK status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace fs

#define FS_CONCAT_INNER(a, b) a##b
#define FS_CONCAT(a, b) FS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)  \
  do {                         \
    ::fs::Status _st = (expr); \
    if (!_st.ok()) return _st; \
  } while (0)

// `lhs` is a declaration ("auto x"), so it cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(FS_CONCAT(_st_or_, __LINE__), lhs, expr)
// NOLINTEND(bugprone-macro-parentheses)

#endif  // FRAMESCOPE_BASE_STATUS_H_
