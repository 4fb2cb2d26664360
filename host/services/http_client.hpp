// Outbound HTTP for plugins, on cpp-httplib with OpenSSL: http and https, connect and
// whole-request timeouts, streaming bodies, and prompt cancellation (a watcher thread
// stops the socket of a request whose cancel check turns true or whose deadline passes).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "result.hpp"

namespace mcph::services {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // absolute http:// or https://
  Headers headers;
  std::string body;
  std::chrono::milliseconds timeout{30000};
  std::chrono::milliseconds connect_timeout{10000};
  std::function<bool()> cancelled;  // optional; polled by the watcher
  std::string origin;  // who asks: the plugin instance's name (telemetry); never sent
  // The trace context (W3C traceparent) of the call it serves, or "": with tracing on, the
  // request is a child span of it and carries its own traceparent header upstream.
  std::string traceparent;
  // Without a traceparent: the trace context of the call this background request works
  // for, or "": its span starts a trace of its own that links to that call's.
  std::string trace_link;
  // Optional streaming: on_head sees status+headers first; on_body gets chunks instead of
  // collecting them. Returning false stops reading (the outcome stays Ok).
  std::function<bool(int status, const Headers& headers)> on_head;
  std::function<bool(const char* data, size_t len)> on_body;
};

// An absolute http(s) URL as the client reads it (telemetry reads it the same way).
struct HttpTarget {
  bool https = false;
  std::string host;       // as given to getaddrinfo: no brackets around IPv6
  int port = 0;
  std::string host_port;  // "host:port", IPv6 in brackets; the only part used in errors
  std::string authority;  // Host header value: port omitted when it is the default
  std::string path;       // path and query, never empty; no fragment
};
// Fails for a URL the client refuses (not http(s), userinfo, bad port...); the error text
// never quotes the URL, whose query may carry tokens.
Result<HttpTarget> parse_url(std::string_view url);

struct HttpResponse {
  enum class Outcome { Ok, Cancelled, Timeout, Network, InvalidRequest };
  Outcome outcome = Outcome::Ok;
  int status = 0;  // 0 when no response arrived
  Headers headers;
  std::string body;   // empty when streamed
  std::string error;  // set unless outcome is Ok
};

// What plugins' outbound HTTP goes through: the real client below, or in an isolated
// plugin's child process one that forwards to its host (isolation/).
class HttpService {
 public:
  virtual ~HttpService() = default;
  // Thread-safe; blocks until the request ends.
  virtual HttpResponse send(const HttpRequest& request) = 0;
};

// Part of the HTTP stack (http_stack/): mcp-host makes it through http_stack::OutboundHttp.
class HttpClient final : public HttpService {
 public:
  HttpClient();
  ~HttpClient() override;  // stops the watcher; no request may be running
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse send(const HttpRequest& request) override;

  // Hears every request (telemetry). Thread-safe; must not block.
  class Observer {
   public:
    virtual ~Observer() = default;
    // Before it is sent: the traceparent header it carries upstream (its own span's), or "".
    virtual std::string http_started(const HttpRequest& request) = 0;
    // Once it ended; `traceparent` is what http_started returned.
    virtual void http_done(const HttpRequest& request, const HttpResponse& response,
                           std::chrono::steady_clock::duration took, const std::string& traceparent) = 0;
  };
  // Set before the first request; it outlives the client.
  void set_observer(Observer* observer) { observer_ = observer; }

 private:
  HttpResponse send_unobserved(const HttpRequest& request, const std::string& traceparent = {});
  Observer* observer_ = nullptr;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

namespace detail {  // shared by the URL reader (http_url.cpp) and the client
std::string ascii_lower(std::string_view s);
bool is_tchar(char c);  // RFC 9110 section 5.6.2: a token character
}  // namespace detail

}  // namespace mcph::services
