// A deliberately small HTTP/1.1 server and client for loopback control traffic:
// /metrics, /health and the api. One thread accepts; each connection is served on a
// short-lived worker thread (keep-alive supported) so a slow client cannot stall scrapes.
#ifndef FRAMESCOPE_BASE_HTTP_H_
#define FRAMESCOPE_BASE_HTTP_H_

#include <atomic>
#include <functional>
#include <map>
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

class HttpServer {
 public:
  HttpServer() = default;
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Exact-path handler. Register before Start().
  void Handle(const std::string& path, HttpHandler handler);
  // Handler for paths starting with `prefix` (checked after exact paths, longest first).
  void HandlePrefix(const std::string& prefix, HttpHandler handler);

  Status Start(const std::string& host, int port);
  void Stop();
  int port() const { return port_; }

 private:
  void AcceptLoop();
  void Serve(int fd);
  HttpResponse Dispatch(const HttpRequest& req);

  ScopedFd listen_fd_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::map<std::string, HttpHandler> exact_;
  std::vector<std::pair<std::string, HttpHandler>> prefixes_;
  std::mutex conn_mu_;
  std::vector<int> open_conns_;
  std::atomic<int> active_workers_{0};
};

struct HttpResult {
  int status = 0;
  std::string body;
};

// GET http://host:port/path with a timeout. Errors are transport failures, not HTTP statuses.
StatusOr<HttpResult> HttpGet(const std::string& host, int port, const std::string& path,
                             int timeout_ms = 2000,
                             const std::map<std::string, std::string>& headers = {});

std::string UrlDecode(const std::string& s);
// Decodes an HTTP/1.1 chunked body ("<hex size>[;ext]\r\n<data>\r\n" ... "0\r\n\r\n").
// Error on malformed framing or a body truncated before the last chunk.
StatusOr<std::string> DecodeChunked(const std::string& raw);

}  // namespace fs

#endif  // FRAMESCOPE_BASE_HTTP_H_
