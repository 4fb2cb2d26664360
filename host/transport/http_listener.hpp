// The HTTP server's connections, owned here rather than by cpp-httplib's thread-per-
// connection loop, which gives a worker to every connection before it has sent anything
// (so 66 clients sending a byte every two seconds stopped every other request).
//
//  - One event loop thread accepts connections and reads requests on all of them, without
//    blocking, until a request is whole (RequestFramer: head and body limits, 431/413/400
//    while the bytes arrive). It answers 408 to a request whose head or body takes too long,
//    closes idle keep-alive connections, and refuses connections beyond max_connections.
//  - A whole request goes to one of `workers` threads, which runs cpp-httplib's own request
//    processing on it (routing, handlers, responses, SSE streams). When every worker is
//    busy the loop answers 503 at once, without reading anything more. A POST to a path
//    given to route_directly() in the plainest HTTP/1.1 form (parse_plain_request) skips
//    cpp-httplib's parser, router and response writer, which were half of an MCP call's
//    CPU (below).
//  - After answering, a worker waits a moment (kLinger) for the client's next request on
//    the same connection, so a busy client keeps its worker as before; then the connection
//    goes back to the loop, and an idle keep-alive connection holds no thread.
//  - TLS (OpenSSL) is done here too, non-blocking in the loop, blocking in the workers.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <httplib.h>

#include "result.hpp"
#include "transport/http_framer.hpp"

namespace mcph::transport {

class Listener final : public httplib::Server {
 public:
  struct Options {
    size_t workers = 64;                 // requests processed at once
    size_t max_connections = 1000;       // open at once; beyond: 503 and close
    RequestFramer::Limits limits;
    std::chrono::milliseconds header_timeout{10000};  // from a request's first byte to its blank line
    std::chrono::milliseconds body_timeout{30000};    // from its blank line to its last byte
    std::chrono::milliseconds idle_timeout{5000};     // a keep-alive connection with nothing to say
    std::chrono::milliseconds write_timeout{5000};    // a client that reads nothing
    size_t keep_alive_max = 100000;      // requests on one connection
    std::string tls_cert, tls_key;       // both set: https
  };

  explicit Listener(Options options);
  ~Listener() override;

  // The TLS context is usable (always true without TLS).
  bool is_valid() const override;
  // Binds host:port (0: any free port); the port, or an error.
  Result<int> bind(const std::string& host, int port);
  // POSTs to `path` in plain form go to `handler` as they are, without cpp-httplib's
  // pre-routing handler or error handler (it does their work itself); anything else to
  // `path` goes through the routes as ever. Its answer is written here: the status,
  // res.headers, and the body with its Content-Length, or a chunked content provider's
  // chunks; then `logged` hears of it, as a logger would. Call before serve().
  void route_directly(const std::string& path, Handler handler, httplib::Logger logged);
  // Serves until shutdown(); requests in progress finish first.
  void serve();
  // Thread-safe.
  void shutdown();

 private:
  struct Impl;
  struct Conn;
  class ConnStream;
  bool process(Conn& conn, size_t length);
  struct Direct;
  bool process_plain(ConnStream& stream, Conn& conn, const PlainRequest& plain, const Direct& route, bool last);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcph::transport
