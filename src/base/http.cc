#include "src/base/http.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "src/base/logging.h"

namespace fs {
namespace {

constexpr size_t kMaxRequestBytes = 1 << 20;
constexpr int kIdleTimeoutMs = 10000;
constexpr int kMaxWorkers = 64;

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
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

// Reads until "\r\n\r\n" plus Content-Length bytes. Returns false on EOF/timeout/oversize.
bool ReadMessage(int fd, std::string* buf, std::string* head, std::string* body) {
  for (;;) {
    auto end = buf->find("\r\n\r\n");
    if (end != std::string::npos) {
      *head = buf->substr(0, end);
      size_t content_length = 0;
      std::string lower = Lower(*head);
      if (auto p = lower.find("\r\ncontent-length:"); p != std::string::npos) {
        content_length = strtoul(lower.c_str() + p + 17, nullptr, 10);
      }
      if (content_length > kMaxRequestBytes) return false;
      size_t total = end + 4 + content_length;
      while (buf->size() < total) {
        char tmp[16384];
        ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        buf->append(tmp, static_cast<size_t>(n));
      }
      *body = buf->substr(end + 4, content_length);
      buf->erase(0, total);
      return true;
    }
    if (buf->size() > kMaxRequestBytes) return false;
    char tmp[16384];
    ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf->append(tmp, static_cast<size_t>(n));
  }
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

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

void HttpServer::HandlePrefix(const std::string& prefix, HttpHandler handler) {
  prefixes_.emplace_back(prefix, std::move(handler));
  std::sort(prefixes_.begin(), prefixes_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

Status HttpServer::Start(const std::string& host, int port) {
  ASSIGN_OR_RETURN(listen_fd_, ListenTcp(host, port));
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
    for (int fd : open_conns_) shutdown(fd, SHUT_RDWR);
  }
  // Workers are detached; wait for them so handlers never outlive the server.
  for (int i = 0; i < 500 && active_workers_.load() > 0; ++i) usleep(10000);
  listen_fd_.Reset();
}

void HttpServer::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_.get(), POLLIN, 0};
    int r = poll(&p, 1, 200);
    if (r <= 0) continue;
    int fd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // Bounded concurrency: beyond kMaxWorkers connections the client gets a 503 at once
    // instead of the process spawning threads without limit.
    if (active_workers_.load() >= kMaxWorkers) {
      static const char kBusy[] =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Content-Length: 32\r\nConnection: close\r\n\r\n{\"error\":\"too many connections\"}";
      (void)WriteAll(fd, kBusy, sizeof(kBusy) - 1);
      close(fd);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(conn_mu_);
      open_conns_.push_back(fd);
    }
    active_workers_.fetch_add(1);
    std::thread([this, fd] {
      Serve(fd);
      {
        std::lock_guard<std::mutex> lock(conn_mu_);
        open_conns_.erase(std::remove(open_conns_.begin(), open_conns_.end(), fd),
                          open_conns_.end());
      }
      close(fd);
      active_workers_.fetch_sub(1);
    }).detach();
  }
}

void HttpServer::Serve(int fd) {
  SetIoTimeout(fd, kIdleTimeoutMs);
  std::string buf, head, body;
  while (!stopping_.load() && ReadMessage(fd, &buf, &head, &body)) {
    HttpRequest req;
    auto line_end = head.find("\r\n");
    std::string request_line = head.substr(0, line_end);
    auto sp1 = request_line.find(' ');
    auto sp2 = request_line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
    HttpResponse resp;
    bool keep_alive = true;
    if (sp1 == std::string::npos || sp2 == std::string::npos) {
      resp = {400, "application/json", "{\"error\":\"malformed request line\"}"};
      keep_alive = false;
    } else {
      req.method = request_line.substr(0, sp1);
      std::string target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
      auto q = target.find('?');
      req.path = UrlDecode(target.substr(0, q));
      if (q != std::string::npos) {
        std::string qs = target.substr(q + 1);
        size_t pos = 0;
        while (pos <= qs.size()) {
          size_t amp = qs.find('&', pos);
          std::string kv = qs.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
          if (!kv.empty()) {
            auto eq = kv.find('=');
            std::string key = UrlDecode(kv.substr(0, eq));
            if (req.query.count(key) != 0) req.repeated_query_keys.insert(key);
            req.query[key] = eq == std::string::npos ? "" : UrlDecode(kv.substr(eq + 1));
          }
          if (amp == std::string::npos) break;
          pos = amp + 1;
        }
      }
      size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
      while (pos < head.size()) {
        size_t e = head.find("\r\n", pos);
        std::string h = head.substr(pos, e == std::string::npos ? std::string::npos : e - pos);
        if (auto c = h.find(':'); c != std::string::npos) {
          std::string v = h.substr(c + 1);
          v.erase(0, v.find_first_not_of(' '));
          req.headers[Lower(h.substr(0, c))] = v;
        }
        if (e == std::string::npos) break;
        pos = e + 2;
      }
      req.body = body;
      if (Lower(req.headers["connection"]) == "close") keep_alive = false;
      resp = Dispatch(req);
    }
    std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + Reason(resp.status) +
                      "\r\nContent-Type: " + resp.content_type +
                      "\r\nContent-Length: " + std::to_string(resp.body.size()) +
                      (keep_alive ? "\r\n" : "\r\nConnection: close\r\n") + "\r\n";
    if (req.method != "HEAD") out += resp.body;
    if (!WriteAll(fd, out.data(), out.size()).ok() || !keep_alive) break;
  }
}

HttpResponse HttpServer::Dispatch(const HttpRequest& req) {
  if (req.method != "GET" && req.method != "HEAD") {
    return {405, "application/json", "{\"error\":\"only GET is supported\"}"};
  }
  if (auto it = exact_.find(req.path); it != exact_.end()) return it->second(req);
  for (const auto& [prefix, handler] : prefixes_) {
    if (req.path.rfind(prefix, 0) == 0) return handler(req);
  }
  return {404, "application/json", "{\"error\":\"no such path\"}"};
}

StatusOr<HttpResult> HttpGet(const std::string& host, int port, const std::string& path,
                             int timeout_ms, const std::map<std::string, std::string>& headers) {
  ASSIGN_OR_RETURN(ScopedFd fd, ConnectTcp(host, port, timeout_ms));
  SetIoTimeout(fd.get(), timeout_ms);
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  RETURN_IF_ERROR(WriteAll(fd.get(), req.data(), req.size()));
  std::string buf, head, body;
  if (!ReadMessage(fd.get(), &buf, &head, &body)) {
    return Err("no complete HTTP response from " + host + ":" + std::to_string(port) + path);
  }
  std::string lower = Lower(head);
  if (lower.find("\r\ncontent-length:") == std::string::npos) {
    // No length (Go's servers stream larger bodies chunked): the body runs to EOF, which
    // Connection: close guarantees.
    body = buf;
    for (;;) {
      if (body.size() > 16 * kMaxRequestBytes) return Err("HTTP response too large");
      char tmp[16384];
      ssize_t n = recv(fd.get(), tmp, sizeof(tmp), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        return Err("reading HTTP response from " + host + ":" + std::to_string(port) + path + ": " +
                   strerror(errno));
      }
      if (n == 0) break;
      body.append(tmp, static_cast<size_t>(n));
    }
    auto te = lower.find("\r\ntransfer-encoding:");
    if (te != std::string::npos &&
        lower.substr(te + 2, lower.find("\r\n", te + 2) - te - 2).find("chunked") !=
            std::string::npos) {
      ASSIGN_OR_RETURN(body, DecodeChunked(body));
    }
  }
  HttpResult result;
  auto sp = head.find(' ');
  result.status = sp == std::string::npos ? 0 : atoi(head.c_str() + sp + 1);
  result.body = std::move(body);
  return result;
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
