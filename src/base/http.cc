#include "src/base/http.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <optional>
#include <string_view>

#include "src/base/logging.h"

namespace fs {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Limits of a request (the server) and of a response (the client). Our requests are GETs with
// short URLs, so these are generous; they bound memory per connection.
constexpr size_t kMaxRequestLine = 8 << 10;
constexpr size_t kMaxHead = 64 << 10;
constexpr size_t kMaxBody = 1 << 20;
constexpr size_t kMaxResponse = 16 << 20;
// After an error answer: how long the server drains input before closing, and how long the
// answer may take to write (short: the connection is already known to be bad or slow).
constexpr int kLingerMs = 1000;
constexpr int kListenBacklog = 1024;

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Status";
  }
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX));
}

enum class Recv { kData, kEof, kTimeout, kError };

// Appends whatever arrives on fd before `deadline`. The deadline is absolute, so a peer that
// trickles bytes cannot stretch a wait made of several calls.
Recv RecvBy(int fd, std::string* buf, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, RemainingMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Recv::kError;
    if (r == 0) return Recv::kTimeout;
    char tmp[16384];
    ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
    if (n > 0) {
      buf->append(tmp, static_cast<size_t>(n));
      return Recv::kData;
    }
    if (n == 0) return Recv::kEof;
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return Recv::kError;
  }
}

// Writes all of `data` before `deadline` (a reader that drains slowly cannot hold us longer).
Status SendBy(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      return Err(std::string("write failed: ") + strerror(errno));
    }
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, RemainingMs(deadline)) == 0) return Err("write deadline passed");
  }
  return Status::Ok();
}

// Finds the empty line that ends a message head. A line ends in LF, optionally preceded by CR
// (RFC 9112 §2.2 lets a recipient accept a bare LF). Returns the head's length, its last line
// terminator included, and sets *body_start; npos while the head is incomplete.
size_t FindHeadEnd(const std::string& buf, size_t* body_start) {
  for (size_t lf = buf.find('\n'); lf != std::string::npos; lf = buf.find('\n', lf + 1)) {
    size_t next = lf + 1;
    if (next < buf.size() && buf[next] == '\r') ++next;
    if (next < buf.size() && buf[next] == '\n') {
      *body_start = next + 1;
      return lf + 1;
    }
  }
  return std::string::npos;
}

// Splits a head into its lines, without CR LF / LF. False on a CR that does not end a line
// (RFC 9112 §2.2: a bare CR is rejected).
bool SplitLines(std::string_view head, std::vector<std::string_view>* lines) {
  while (!head.empty()) {
    size_t lf = head.find('\n');
    std::string_view line = head.substr(0, lf);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return false;
    lines->push_back(line);
    head.remove_prefix(lf == std::string_view::npos ? head.size() : lf + 1);
  }
  return true;
}

// A parse failure: the status to answer and why.
struct HttpError {
  int status = 0;
  std::string why;
};

// Content-Length as 1*DIGIT; values past 15 digits saturate (they exceed every limit anyway).
std::optional<uint64_t> ParseLength(std::string_view v) {
  v = TrimOws(v);
  if (v.empty() || v.size() > 15) {
    return v.size() > 15 && v.find_first_not_of("0123456789") == std::string_view::npos
               ? std::optional<uint64_t>(UINT64_MAX)
               : std::nullopt;
  }
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

// Adds one field's Content-Length (a list such as "5, 5" is allowed) to *length. Differing or
// non-numeric values are an error: RFC 9112 §6.3 makes such a message unframeable.
bool MergeLength(std::string_view value, std::optional<uint64_t>* length) {
  for (;;) {
    size_t comma = value.find(',');
    std::optional<uint64_t> n = ParseLength(value.substr(0, comma));
    if (!n || (length->has_value() && **length != *n)) return false;
    *length = n;
    if (comma == std::string_view::npos) return true;
    value.remove_prefix(comma + 1);
  }
}

// Parses header field lines into lower-cased names (a repeated name keeps its last value) and
// the message's Content-Length.
HttpError ParseFields(const std::vector<std::string_view>& lines, size_t first,
                      std::map<std::string, std::string>* headers,
                      std::optional<uint64_t>* content_length) {
  for (size_t i = first; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t colon = line.find(':');
    // RFC 9112 §5.1-5.2: no whitespace before the colon, no obsolete line folding.
    if (colon == 0 || colon == std::string_view::npos || line[0] == ' ' || line[0] == '\t' ||
        line.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
      return {400, "malformed header line"};
    }
    std::string name = Lower(line.substr(0, colon));
    std::string_view value = TrimOws(line.substr(colon + 1));
    if (name == "content-length" && !MergeLength(value, content_length)) {
      return {400, "invalid or conflicting Content-Length"};
    }
    (*headers)[name] = std::string(value);
  }
  return {};
}

void ParseQuery(std::string_view qs, HttpRequest* req) {
  for (;;) {
    size_t amp = qs.find('&');
    std::string_view kv = qs.substr(0, amp);
    if (!kv.empty()) {
      size_t eq = kv.find('=');
      std::string key = UrlDecode(std::string(kv.substr(0, eq)));
      if (req->query.count(key) != 0) req->repeated_query_keys.insert(key);
      req->query[key] =
          eq == std::string_view::npos ? "" : UrlDecode(std::string(kv.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) return;
    qs.remove_prefix(amp + 1);
  }
}

// "METHOD SP target SP HTTP/1.x" (RFC 9112 §3). Sets *keep_alive false for HTTP/1.0.
HttpError ParseRequestLine(std::string_view line, HttpRequest* req, bool* keep_alive) {
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1 ||
      line.find_first_of(" \t", sp2 + 1) != std::string_view::npos) {
    return {400, "malformed request line"};
  }
  std::string_view version = line.substr(sp2 + 1);
  if (version.substr(0, 5) != "HTTP/") return {400, "malformed request line"};
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return {505, "only HTTP/1.x is supported"};
  if (version == "HTTP/1.0") *keep_alive = false;
  req->method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t q = target.find('?');
  req->path = UrlDecode(std::string(target.substr(0, q)));
  if (q != std::string_view::npos) ParseQuery(target.substr(q + 1), req);
  return {};
}

// Parses a complete request head. *body_length is what the body must be read to.
HttpError ParseRequestHead(std::string_view head, HttpRequest* req, bool* keep_alive,
                           size_t* body_length) {
  std::vector<std::string_view> lines;
  if (!SplitLines(head, &lines) || lines.empty()) return {400, "bare CR in request head"};
  HttpError e = ParseRequestLine(lines[0], req, keep_alive);
  std::optional<uint64_t> length;
  if (e.status == 0) e = ParseFields(lines, 1, &req->headers, &length);
  if (e.status != 0) return e;
  if (req->headers.count("transfer-encoding") != 0) {
    return {501, "Transfer-Encoding in requests is not supported; send Content-Length"};
  }
  if (length.value_or(0) > kMaxBody) return {413, "request body over 1 MiB"};
  *body_length = static_cast<size_t>(length.value_or(0));
  if (Lower(req->headers["connection"]).find("close") != std::string::npos) *keep_alive = false;
  return {};
}

// 414 / 431 once the request line or the head (complete or not) is over its limit.
HttpError CheckHeadSize(const std::string& buf, size_t head_len) {
  size_t line = std::min(buf.find('\n'), buf.size());
  if (line > kMaxRequestLine) return {414, "request line over 8 KiB"};
  if (std::min(head_len, buf.size()) > kMaxHead) return {431, "request head over 64 KiB"};
  return {};
}

// RFC 9112 §2.2: a server should ignore empty lines before a request line.
void DropLeadingEmptyLines(std::string* buf) {
  size_t n = 0;
  while (n < buf->size() && ((*buf)[n] == '\n' || buf->compare(n, 2, "\r\n") == 0)) {
    n += (*buf)[n] == '\n' ? 1 : 2;
  }
  buf->erase(0, n);
}

std::string ResponseBytes(const HttpResponse& resp, bool keep_alive, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + Reason(resp.status) +
                    "\r\nContent-Type: " + resp.content_type +
                    "\r\nContent-Length: " + std::to_string(resp.body.size()) +
                    (keep_alive ? "\r\n" : "\r\nConnection: close\r\n") + "\r\n";
  if (!head_only) out += resp.body;
  return out;
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// One served connection. `waiting` and the rest are guarded by the server's conn_mu_.
struct HttpServer::Conn {
  Conn(int f, Clock::time_point t) : fd(f), waiting_since(t) {}
  const int fd;
  bool waiting = true;  // waiting for request bytes (or draining before close): sheddable
  Clock::time_point waiting_since;
  bool shed = false;
};

// One parsed request, or why it could not be.
struct HttpServer::Incoming {
  HttpRequest req;
  bool keep_alive = true;
  std::string why;
};

std::string UrlDecode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexVal(s[i + 1]) >= 0 && HexVal(s[i + 2]) >= 0) {
      out += static_cast<char>(HexVal(s[i + 1]) * 16 + HexVal(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(const std::string& path, HttpHandler handler) {
  exact_[path] = std::move(handler);
}

void HttpServer::HandlePost(const std::string& path, HttpHandler handler) {
  post_[path] = std::move(handler);
}

void HttpServer::HandlePrefix(const std::string& prefix, HttpHandler handler) {
  prefixes_.emplace_back(prefix, std::move(handler));
  std::sort(prefixes_.begin(), prefixes_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

Status HttpServer::Start(const std::string& host, int port) {
  // A deep accept queue: a burst of connections (an attacker's, or many scrapers at once) must
  // not overflow it, or the kernel drops SYNs and a well-behaved client waits 1 s to retry.
  ASSIGN_OR_RETURN(listen_fd_, ListenTcp(host, port, kListenBacklog));
  port_ = BoundPort(listen_fd_.get());
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void HttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_.valid()) shutdown(listen_fd_.get(), SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  {
    std::lock_guard<std::mutex> lock(conn_mu_);
    for (const auto& conn : conns_) shutdown(conn->fd, SHUT_RDWR);
  }
  // Workers are detached; wait for them, however long, so no handler outlives the server (its
  // members) — their sockets are shut down, so only a handler still running can take long.
  for (int i = 1; workers_.load() > 0; ++i) {
    usleep(10000);
    if (i % 500 == 0) {
      LOG(WARNING) << "http: stopping: waiting for " << workers_.load() << " handler(s) to return";
    }
  }
  listen_fd_.Reset();
}

void HttpServer::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_.get(), POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    auto conn = std::make_shared<Conn>(fd, Clock::now());
    if (!Admit(conn)) {
      static const char kBusy[] =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Content-Length: 32\r\nConnection: close\r\n\r\n{\"error\":\"too many connections\"}";
      (void)send(fd, kBusy, sizeof(kBusy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    workers_.fetch_add(1);
    std::thread([this, conn] {
      Serve(*conn);
      Forget(conn);
      close(conn->fd);
      workers_.fetch_sub(1);
    }).detach();
  }
}

namespace {

// Whether a whole request head waits unread in the socket. Such a client sent its request at
// once, however new it is: its worker has just not read it yet. In a burst of connections it
// would otherwise be the oldest waiting one, shed a millisecond after its accept.
bool HeadPending(int fd) {
  char b[4096];
  const ssize_t n = recv(fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
  size_t body_start = 0;
  return n > 0 &&
         FindHeadEnd(std::string(b, static_cast<size_t>(n)), &body_start) != std::string::npos;
}

}  // namespace

bool HttpServer::Admit(const std::shared_ptr<Conn>& conn) {
  std::lock_guard<std::mutex> lock(conn_mu_);
  if (admitted_ >= options_.max_connections) {
    // The longest waiting for request bytes goes, but not one whose request has arrived.
    std::vector<Conn*> waiting;
    for (const auto& c : conns_) {
      if (c->waiting && !c->shed) waiting.push_back(c.get());
    }
    std::sort(waiting.begin(), waiting.end(),
              [](const Conn* a, const Conn* b) { return a->waiting_since < b->waiting_since; });
    auto it = std::find_if(waiting.begin(), waiting.end(),
                           [](const Conn* c) { return !HeadPending(c->fd); });
    if (it == waiting.end()) return false;
    Conn* victim = *it;
    // Its worker wakes from poll with EOF, sees `shed` and answers 408 (or closes if idle);
    // the slot is free now, the thread ends within kLingerMs.
    victim->shed = true;
    --admitted_;
    shutdown(victim->fd, SHUT_RD);
  }
  conns_.push_back(conn);
  ++admitted_;
  return true;
}

void HttpServer::Forget(const std::shared_ptr<Conn>& conn) {
  std::lock_guard<std::mutex> lock(conn_mu_);
  conns_.erase(std::remove(conns_.begin(), conns_.end(), conn), conns_.end());
  if (!conn->shed) --admitted_;
}

bool HttpServer::SetWaiting(Conn& conn, bool waiting) {
  std::lock_guard<std::mutex> lock(conn_mu_);
  if (conn.shed) return false;
  conn.waiting = waiting;
  conn.waiting_since = Clock::now();
  return true;
}

bool HttpServer::IsShed(Conn& conn) {
  std::lock_guard<std::mutex> lock(conn_mu_);
  return conn.shed;
}

int HttpServer::ReadRequest(Conn& conn, bool first, std::string* buf, Incoming* in) {
  // Reads more before `deadline`: 0, 408 on a missed deadline or when shed, -1 when the peer
  // went away.
  auto read_more = [&](Clock::time_point deadline) {
    switch (RecvBy(conn.fd, buf, deadline)) {
      case Recv::kData:
        return 0;
      case Recv::kTimeout:
        return 408;
      case Recv::kEof:
        return IsShed(conn) ? 408 : -1;
      case Recv::kError:
        return -1;
    }
    return -1;
  };
  Clock::time_point start = conn.waiting_since;  // accept, for the first request
  if (!first) {
    // Keep-alive: idle until the next request's first byte, then its head deadline runs.
    if (buf->empty() && read_more(Clock::now() + milliseconds(options_.idle_timeout_ms)) != 0) {
      return -1;
    }
    start = Clock::now();
  }
  in->why = "request not received in time";
  size_t head_len = 0, body_start = 0;
  for (;;) {
    DropLeadingEmptyLines(buf);
    head_len = FindHeadEnd(*buf, &body_start);
    if (HttpError e = CheckHeadSize(*buf, head_len); e.status != 0) {
      in->why = e.why;
      return e.status;
    }
    if (head_len != std::string::npos) break;
    if (int r = read_more(start + milliseconds(options_.header_timeout_ms)); r != 0) return r;
  }
  size_t body_len = 0;
  HttpError e = ParseRequestHead(std::string_view(*buf).substr(0, head_len), &in->req,
                                 &in->keep_alive, &body_len);
  if (e.status != 0) {
    in->why = e.why;
    return e.status;
  }
  auto body_deadline = Clock::now() + milliseconds(options_.body_timeout_ms);
  while (buf->size() < body_start + body_len) {
    if (int r = read_more(body_deadline); r != 0) return r;
  }
  in->req.body = buf->substr(body_start, body_len);
  buf->erase(0, body_start + body_len);
  return 0;
}

void HttpServer::Serve(Conn& conn) {
  std::string buf;
  for (bool first = true; !stopping_.load(); first = false) {
    Incoming in;
    int status = ReadRequest(conn, first, &buf, &in);
    if (status == 0 && !SetWaiting(conn, false)) status = 408;  // shed as the request completed
    if (status < 0) return;
    if (status > 0) {
      // An error answer, then close. Unless shed (its slot is already given away), drain what
      // the client may still be sending: closing on unread input makes the kernel send a
      // reset, which can destroy the answer before the client reads it.
      HttpResponse resp{status, "application/json", "{\"error\":\"" + in.why + "\"}"};
      auto deadline = Clock::now() + milliseconds(kLingerMs);
      if (!SendBy(conn.fd, ResponseBytes(resp, false, false), deadline).ok()) return;
      if (!SetWaiting(conn, true)) return;
      shutdown(conn.fd, SHUT_WR);
      for (std::string sink; RecvBy(conn.fd, &sink, deadline) == Recv::kData;) sink.clear();
      return;
    }
    HttpResponse resp = Dispatch(in.req);
    auto deadline = Clock::now() + milliseconds(options_.write_timeout_ms);
    std::string out = ResponseBytes(resp, in.keep_alive, in.req.method == "HEAD");
    if (!SendBy(conn.fd, out, deadline).ok() || !in.keep_alive) return;
    SetWaiting(conn, true);
  }
}

HttpResponse HttpServer::Dispatch(const HttpRequest& req) {
  if (auto it = post_.find(req.path); req.method == "POST" && it != post_.end()) {
    return it->second(req);
  }
  if (req.method != "GET" && req.method != "HEAD") {
    return {405, "application/json", "{\"error\":\"only GET is supported\"}"};
  }
  if (auto it = exact_.find(req.path); it != exact_.end()) return it->second(req);
  for (const auto& [prefix, handler] : prefixes_) {
    if (req.path.rfind(prefix, 0) == 0) return handler(req);
  }
  return {404, "application/json", "{\"error\":\"no such path\"}"};
}

namespace {

// Reads a response body that has no Content-Length: it runs to EOF (Go's servers stream larger
// bodies chunked; our request's Connection: close guarantees the EOF).
Status ReadToEof(int fd, Clock::time_point deadline, std::string* body) {
  for (;;) {
    if (body->size() > kMaxResponse) return Err("HTTP response over 16 MiB");
    switch (RecvBy(fd, body, deadline)) {
      case Recv::kData:
        continue;
      case Recv::kEof:
        return Status::Ok();
      case Recv::kTimeout:
        return Err("timed out reading the HTTP response");
      case Recv::kError:
        return Err(std::string("reading the HTTP response: ") + strerror(errno));
    }
  }
}

// One request (with a body when `body` is given) and its response.
StatusOr<HttpResult> Exchange(const std::string& method, const std::string& host, int port,
                              const std::string& path, const std::string* body, int timeout_ms,
                              std::map<std::string, std::string> headers) {
  // One deadline for the whole exchange, connect to last byte: a server that trickles its
  // answer (a header line every few seconds) cannot hold the caller past timeout_ms.
  const Clock::time_point deadline = Clock::now() + milliseconds(timeout_ms);
  std::string where = host + ":" + std::to_string(port) + path;
  ASSIGN_OR_RETURN(ScopedFd fd, ConnectTcp(host, port, std::max(1, RemainingMs(deadline))));
  // RFC 9110 §7.2: Host carries the port unless it is the scheme's default.
  const std::string host_field = port == 80 ? host : host + ":" + std::to_string(port);
  std::string req =
      method + " " + path + " HTTP/1.1\r\nHost: " + host_field + "\r\nConnection: close\r\n";
  if (body != nullptr) headers["Content-Length"] = std::to_string(body->size());
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  if (body != nullptr) req += *body;
  RETURN_IF_ERROR(SendBy(fd.get(), req, deadline));
  std::string buf;
  size_t head_len = 0, body_start = 0;
  while ((head_len = FindHeadEnd(buf, &body_start)) == std::string::npos) {
    if (buf.size() > kMaxHead || RecvBy(fd.get(), &buf, deadline) != Recv::kData) {
      return Err("no complete HTTP response from " + where);
    }
  }
  std::vector<std::string_view> lines;
  std::map<std::string, std::string> fields;
  std::optional<uint64_t> length;
  if (!SplitLines(std::string_view(buf).substr(0, head_len), &lines) ||
      ParseFields(lines, 1, &fields, &length).status != 0) {
    return Err("malformed HTTP response head from " + where);
  }
  HttpResult result;
  auto sp = lines[0].find(' ');
  result.status = sp == std::string::npos ? 0 : atoi(std::string(lines[0].substr(sp + 1)).c_str());
  result.body = buf.substr(body_start);
  if (length.has_value()) {
    if (*length > kMaxResponse) return Err("HTTP response over 16 MiB from " + where);
    while (result.body.size() < *length) {
      if (RecvBy(fd.get(), &result.body, deadline) != Recv::kData) {
        return Err("no complete HTTP response from " + where);
      }
    }
    result.body.resize(static_cast<size_t>(*length));
    return result;
  }
  RETURN_IF_ERROR(ReadToEof(fd.get(), deadline, &result.body).Annotate(where));
  if (Lower(fields["transfer-encoding"]).find("chunked") != std::string::npos) {
    ASSIGN_OR_RETURN(result.body, DecodeChunked(result.body));
  }
  return result;
}

}  // namespace

StatusOr<HttpResult> HttpGet(const std::string& host, int port, const std::string& path,
                             int timeout_ms, const std::map<std::string, std::string>& headers) {
  return Exchange("GET", host, port, path, nullptr, timeout_ms, headers);
}

StatusOr<HttpResult> HttpPost(const std::string& host, int port, const std::string& path,
                              const std::string& body, const std::string& content_type,
                              int timeout_ms) {
  return Exchange("POST", host, port, path, &body, timeout_ms, {{"Content-Type", content_type}});
}

StatusOr<std::string> DecodeChunked(const std::string& raw) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) return Err("chunked body: missing chunk size line");
    size_t size = 0;
    size_t digits = 0;
    for (size_t i = pos; i < eol && raw[i] != ';'; ++i, ++digits) {
      int v = HexVal(raw[i]);
      if (v < 0 || digits >= 8) return Err("chunked body: bad chunk size");
      size = size * 16 + static_cast<size_t>(v);
    }
    if (digits == 0) return Err("chunked body: empty chunk size");
    pos = eol + 2;
    if (size == 0) return out;  // trailers, if any, are ignored
    if (raw.size() - pos < size + 2 || raw.compare(pos + size, 2, "\r\n") != 0) {
      return Err("chunked body: truncated chunk");
    }
    out.append(raw, pos, size);
    pos += size + 2;
  }
}

}  // namespace fs
