// A deliberately small HTTP/1.1 server and client for loopback control traffic:
// /metrics, /health and the api. One thread accepts; each connection is served on its own
// short-lived worker thread (keep-alive supported) so a slow handler cannot stall scrapes.
//
// Slow and hostile clients (why we keep this server rather than a library: docs/ARCHITECTURE.md):
// - Deadlines a trickle cannot extend. The whole request head must arrive within
//   header_timeout_ms of accept (first request) or of the request's first byte (later
//   keep-alive requests); the whole body within body_timeout_ms of the head's end; the whole
//   response must be written within write_timeout_ms. A missed read deadline answers 408 and
//   closes. Between requests a keep-alive connection may idle for idle_timeout_ms, then it is
//   closed silently (RFC 9112 §9.8).
// - Shedding instead of refusing. At most max_connections are served. When a newcomer finds the
//   cap full, the connection that has waited longest for a complete request (oldest incomplete
//   head or body, or longest-idle keep-alive) is shed: 408, or a silent close if it was idle
//   between keep-alive requests. Connections running a handler or writing a response are never
//   shed; only when all of them are busy does the newcomer get 503. So slowloris connections
//   cost each other their slots, while /health and well-behaved clients (whole request in one
//   packet) get in at once and are answered.
// - Framing answered, never silently dropped (RFC 9112): bad or conflicting Content-Length 400,
//   one over 1 MiB 413, Transfer-Encoding (chunked request bodies) 501, a request line over
//   8 KiB 414, a head over 64 KiB 431, a bare CR, folded or malformed header line 400, another
//   version than HTTP/1.x 505. Bare LF line endings are accepted (RFC 9112 §2.2). After an error
//   answer the server stops writing and drains input briefly (kLingerMs) before closing, so the
//   client reads the status instead of a connection reset.
#ifndef FRAMESCOPE_BASE_HTTP_H_
#define FRAMESCOPE_BASE_HTTP_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "src/base/net.h"
#include "src/base/status.h"

namespace fs {

struct HttpRequest {
  std::string method;
  std::string path;                            // without the query string
  std::map<std::string, std::string> query;    // decoded; a repeated key keeps its last value
  std::set<std::string> repeated_query_keys;   // decoded keys given more than once
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Limits of HttpServer; the defaults suit loopback scrapes and the api. Tests shorten them.
struct HttpServerOptions {
  int max_connections = 64;      // served at once (threads); beyond it, shed or 503
  int header_timeout_ms = 5000;  // whole request head, from accept or the request's first byte
  int body_timeout_ms = 10000;   // whole request body, from the end of the head
  int idle_timeout_ms = 10000;   // keep-alive wait for the next request's first byte
  int write_timeout_ms = 10000;  // whole response
};

class HttpServer {
 public:
  HttpServer() = default;
  explicit HttpServer(const HttpServerOptions& options) : options_(options) {}
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Exact-path handler. Register before Start().
  void Handle(const std::string& path, HttpHandler handler);
  // Handler for paths starting with `prefix` (checked after exact paths, longest first).
  void HandlePrefix(const std::string& prefix, HttpHandler handler);
  // Exact-path handler for POST (every other handler answers GET and HEAD only).
  void HandlePost(const std::string& path, HttpHandler handler);

  Status Start(const std::string& host, int port);
  void Stop();
  int port() const { return port_; }

 private:
  struct Conn;
  struct Incoming;

  void AcceptLoop();
  // Takes a new connection into the served set, shedding one at the cap; false: all are busy.
  bool Admit(const std::shared_ptr<Conn>& conn);
  void Forget(const std::shared_ptr<Conn>& conn);
  // Marks a connection as waiting for request bytes (sheddable) or as busy; false if shed.
  bool SetWaiting(Conn& conn, bool waiting);
  bool IsShed(Conn& conn);
  void Serve(Conn& conn);
  // Reads and parses one request; returns 0, -1 (close silently) or an error status.
  int ReadRequest(Conn& conn, bool first, std::string* buf, Incoming* in);
  HttpResponse Dispatch(const HttpRequest& req);

  const HttpServerOptions options_;
  ScopedFd listen_fd_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::map<std::string, HttpHandler> exact_;
  std::map<std::string, HttpHandler> post_;
  std::vector<std::pair<std::string, HttpHandler>> prefixes_;
  std::mutex conn_mu_;
  std::vector<std::shared_ptr<Conn>> conns_;  // under conn_mu_
  int admitted_ = 0;                          // conns_ not shed; under conn_mu_
  std::atomic<int> workers_{0};               // threads still running, shed ones included
};

struct HttpResult {
  int status = 0;
  std::string body;
};

// GET http://host:port/path; timeout_ms bounds the whole exchange (connect, request, the whole
// response), not each wait. Errors are transport failures, not HTTP statuses.
StatusOr<HttpResult> HttpGet(const std::string& host, int port, const std::string& path,
                             int timeout_ms = 2000,
                             const std::map<std::string, std::string>& headers = {});

// POST `body` to http://host:port/path (plain HTTP, no TLS, no redirects), same limits as HttpGet.
StatusOr<HttpResult> HttpPost(const std::string& host, int port, const std::string& path,
                              const std::string& body, const std::string& content_type,
                              int timeout_ms = 2000);

std::string UrlDecode(const std::string& s);
// Decodes an HTTP/1.1 chunked body ("<hex size>[;ext]\r\n<data>\r\n" ... "0\r\n\r\n").
// Error on malformed framing or a body truncated before the last chunk.
StatusOr<std::string> DecodeChunked(const std::string& raw);

}  // namespace fs

#endif  // FRAMESCOPE_BASE_HTTP_H_
