#include "services/http_client.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <thread>
#include <type_traits>

#include "result.hpp"

namespace mcph::services {
namespace {

using Clock = std::chrono::steady_clock;
using Outcome = HttpResponse::Outcome;

// How often the watcher looks at active requests: the bound on how late a cancellation or
// deadline is noticed.
constexpr auto kWatchInterval = std::chrono::milliseconds(20);

// Debian's (and Ubuntu's) bundle of the system's trusted CAs, kept by ca-certificates.
constexpr const char* kCaBundle = "/etc/ssl/certs/ca-certificates.crt";

using detail::ascii_lower;
using detail::is_tchar;

}  // namespace


namespace {

Result<std::string> parse_method(std::string_view method) {
  std::string upper(method);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const char* allowed : {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}) {
    if (upper == allowed) return upper;
  }
  return Error{"unsupported HTTP method (GET, POST, PUT, PATCH, DELETE or HEAD)"};
}

bool is_framing_header(const std::string& name) {
  const std::string lower = ascii_lower(name);
  return lower == "content-length" || lower == "transfer-encoding";
}

// cpp-httplib 0.11.4 writes Request::headers verbatim (only its own set_header() checks for
// CR/LF), so a value with a line break would inject headers. Values are never quoted in
// errors: they may be credentials.
Result<httplib::Headers> to_httplib_headers(const HttpRequest& request, const HttpTarget& target, const std::string& traceparent) {
  httplib::Headers out;
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_tchar)) {
      return Error{"invalid header name"};
    }
    const bool bad_value = std::any_of(value.begin(), value.end(), [](char c) {
      const auto byte = static_cast<unsigned char>(c);
      return (byte < 0x20 && c != '\t') || byte == 0x7F;
    });
    if (bad_value) return Error{"invalid value for header " + name};
    // The body decides the framing; cpp-httplib adds Content-Length for it. A caller's
    // stale or chunked framing header would desynchronize the connection.
    if (is_framing_header(name)) continue;
    out.emplace(name, value);
  }
  if (!traceparent.empty()) {  // ours replaces any the plugin set: this request is our span's
    out.erase("traceparent");
    out.emplace("traceparent", traceparent);
  }
  // cpp-httplib's default Host omits the brackets of an IPv6 literal on default ports.
  if (out.find("Host") == out.end()) out.emplace("Host", target.authority);
  // httplib::Headers compares names case-insensitively (detail::ci).
  if (!request.body.empty() && out.find("Content-Type") == out.end()) {
    out.emplace("Content-Type", "application/json");
  }
  return out;
}

Headers from_httplib_headers(const httplib::Headers& headers) {
  // cpp-httplib keeps response headers in a case-insensitive multimap: their original
  // order across different names is lost, repeated names keep their order.
  return Headers(headers.begin(), headers.end());
}

// ---- Connections that the watcher can stop ----------------------------------------------

// The watcher's view of a request's client.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual httplib::ClientImpl& client() = 0;
  // Shuts the socket down if that is possible without blocking; false means "try again".
  virtual bool try_stop() = 0;
  // Extra detail for an error, e.g. why a certificate was rejected.
  virtual std::string error_detail(httplib::Error error) const = 0;
};

// ClientImpl::stop() is thread-safe but has two traits that matter here (httplib.h 0.11.4,
// ClientImpl::send and ClientImpl::stop):
//  * send() holds socket_mutex_ across getaddrinfo(), connect() and the TLS handshake, so
//    stop() issued in that phase blocks until it ends (up to the connection timeout, and
//    without bound for DNS);
//  * stop() only acts while a request is "in flight" (socket_requests_in_flight_ > 0, set
//    after connecting). Before that it closes a socket that does not exist yet, and the
//    request then connects as if nothing happened.
// So we only call stop() once the mutex is free and the request is in flight; otherwise the
// watcher retries on its next tick instead of stalling every other request behind one slow
// connect. The members are protected, i.e. meant for subclasses such as SSLClient.
// (httplib::Client is only a facade that picks ClientImpl or SSLClient by scheme, so we
// derive from those two directly. One client per request: a ClientImpl serializes its
// requests on request_mutex_ and one stop() would hit every request sharing it.)
template <class Base>
class StoppableClient final : public Base, public Connection {
 public:
  StoppableClient(const std::string& host, int port) : Base(host, port) {}

  httplib::ClientImpl& client() override { return *this; }

  bool try_stop() override {
    std::unique_lock<std::mutex> lock(this->socket_mutex_, std::try_to_lock);
    if (!lock.owns_lock() || this->socket_requests_in_flight_ == 0) return false;
    lock.unlock();
    // In flight, stop() only shutdown()s the socket; the request thread sees its read or
    // write fail and closes the socket itself. If it finished meanwhile, stop() finds the
    // socket already closed and does nothing.
    this->stop();
    return true;
  }

  std::string error_detail(httplib::Error error) const override {
    if constexpr (std::is_base_of_v<httplib::SSLClient, Base>) {
      if (error == httplib::Error::SSLServerVerification) {
        const long result = this->get_openssl_verify_result();
        if (result != X509_V_OK) {
          return std::string(" (") + X509_verify_cert_error_string(result) + ")";
        }
      }
    }
    (void)error;
    return {};
  }
};

Result<std::unique_ptr<Connection>> make_connection(const HttpTarget& target,
                                                    std::chrono::milliseconds connect_timeout,
                                                    std::chrono::milliseconds remaining) {
  std::unique_ptr<Connection> connection;
  if (target.https) {
    auto tls = std::make_unique<StoppableClient<httplib::SSLClient>>(target.host, target.port);
    if (!tls->is_valid()) return Error{"cannot create a TLS context"};  // SSL_CTX_new failed
    tls->enable_server_certificate_verification(true);
    // Without a CA path cpp-httplib falls back to SSL_CTX_set_default_verify_paths, which
    // is right for OpenSSL builds that know where the system store lives.
    std::error_code ec;
    if (std::filesystem::exists(kCaBundle, ec)) tls->set_ca_cert_path(kCaBundle);
    connection = std::move(tls);
  } else {
    connection = std::make_unique<StoppableClient<httplib::ClientImpl>>(target.host, target.port);
  }
  httplib::ClientImpl& client = connection->client();
  // The connect phase cannot be interrupted (see StoppableClient), so it may not outlast
  // the whole-request deadline. The TLS handshake uses the connection timeout as well.
  client.set_connection_timeout(std::min(connect_timeout, remaining));
  // These bound each single read/write; the watcher enforces the whole-request deadline.
  client.set_read_timeout(remaining);
  client.set_write_timeout(remaining);
  client.set_tcp_nodelay(true);
  client.set_follow_location(false);
  client.set_keep_alive(false);  // one connection per request; it sends "Connection: close"
  // detail::encode_url rewrites '+' as %2B (and ',', ';', '\'') which changes the meaning of
  // already-encoded queries; parse_path has made the target safe to send as it is.
  client.set_url_encode(false);
  return connection;
}

// ---- Shaping responses -------------------------------------------------------------------

enum class StopReason { None, Cancelled, Timeout };

HttpResponse failure(Outcome outcome, std::string error) {
  HttpResponse response;
  response.outcome = outcome;
  response.error = std::move(error);
  return response;
}

std::string timeout_text(std::chrono::milliseconds timeout) {
  return "request timed out after " + std::to_string(timeout.count()) + " ms";
}

}  // namespace

// ---- Watcher -----------------------------------------------------------------------------

struct HttpClient::Impl {
  // One request in flight, owned by the send() call that registered it.
  struct Active {
    Connection* connection = nullptr;
    const std::function<bool()>* cancelled = nullptr;
    Clock::time_point deadline;
    std::atomic<StopReason> reason{StopReason::None};  // written by the watcher only
    bool stopped = false;                              // guarded by mutex
  };

  // Removes the request from the watch list when send() leaves, before its Connection dies.
  class Registration {
   public:
    Registration(Impl& impl, Active& active) : impl_(impl), active_(active) { impl_.add(&active_); }
    ~Registration() { impl_.remove(&active_); }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    Impl& impl_;
    Active& active_;
  };

  std::mutex mutex;
  std::condition_variable wake;
  std::vector<Active*> active;  // guarded by mutex
  bool shutting_down = false;   // guarded by mutex
  std::thread watcher;          // started last in the constructor, joined in the destructor

  void add(Active* request) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      active.push_back(request);
    }
    wake.notify_one();  // the watcher sleeps without a timeout while nothing is active
  }

  // Once this returns the watcher no longer touches `request` (it only does with `mutex`
  // held), so the caller's cancel callback and Connection may go away.
  void remove(Active* request) {
    std::lock_guard<std::mutex> lock(mutex);
    active.erase(std::find(active.begin(), active.end(), request));
  }

  void run() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!shutting_down) {
      if (active.empty()) {
        wake.wait(lock, [&] { return shutting_down || !active.empty(); });
        continue;
      }
      scan(Clock::now());
      wake.wait_for(lock, kWatchInterval, [&] { return shutting_down; });
    }
  }

  // Runs with `mutex` held, which is what keeps each Active alive while we look at it. The
  // callers' cancelled() therefore runs under our lock: it must be quick and must not call
  // send() on this client.
  void scan(Clock::time_point now) {
    for (Active* request : active) {
      if (request->reason.load() == StopReason::None) {
        if (is_cancelled(*request)) {
          request->reason = StopReason::Cancelled;
        } else if (now >= request->deadline) {
          request->reason = StopReason::Timeout;
        }
      }
      if (request->reason.load() != StopReason::None && !request->stopped) {
        request->stopped = request->connection->try_stop();
      }
    }
  }

  static bool is_cancelled(const Active& request) {
    if (request.cancelled == nullptr || !*request.cancelled) return false;
    try {
      return (*request.cancelled)();
    } catch (...) {
      return true;  // a broken cancel check must not take the watcher thread down
    }
  }
};

HttpClient::HttpClient() : impl_(std::make_unique<Impl>()) {
  impl_->watcher = std::thread([impl = impl_.get()] { impl->run(); });
}

HttpClient::~HttpClient() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->shutting_down = true;
  }
  impl_->wake.notify_all();
  impl_->watcher.join();
}

// ---- send --------------------------------------------------------------------------------

namespace {

// What came back from cpp-httplib, before we decide on the outcome.
struct Exchange {
  bool ok = false;
  httplib::Error error = httplib::Error::Success;
  httplib::Response response;
  bool consumer_stopped = false;  // on_head/on_body returned false
  bool head_delivered = false;
};

Exchange exchange(httplib::ClientImpl& client, const HttpRequest& request,
                  httplib::Request req, const std::atomic<StopReason>& reason) {
  Exchange ex;
  auto stop_requested = [&] { return reason.load() != StopReason::None; };
  // Returning false from any of these makes cpp-httplib end the request with
  // Error::Canceled (ClientImpl::process_request). Checking our own stop flag here ends a
  // request that is still receiving data without waiting for the socket shutdown.
  req.response_handler = [&](const httplib::Response& head) {
    if (stop_requested()) return false;
    if (!request.on_head) return true;
    ex.head_delivered = true;
    if (request.on_head(head.status, from_httplib_headers(head.headers))) return true;
    ex.consumer_stopped = true;
    return false;
  };
  if (request.on_body) {
    // With a content receiver cpp-httplib hands chunks over instead of collecting them.
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      if (stop_requested()) return false;
      if (request.on_body(data, len)) return true;
      ex.consumer_stopped = true;
      return false;
    };
  }
  req.progress = [&](uint64_t, uint64_t) { return !stop_requested(); };

  ex.ok = client.send(req, ex.response, ex.error);
  return ex;
}

HttpResponse shape(Exchange& ex, const HttpRequest& request, const HttpTarget& target,
                   const Connection& connection, StopReason reason, Clock::time_point deadline) {
  // Our consumer's own "stop reading" shows up as Error::Canceled and is not a failure. A
  // stop of ours (cancel, deadline) wins over an exchange that looks finished: a body
  // without Content-Length ends at EOF, so shutting its socket down looks like a normal end.
  const bool stopped_by_us = reason == StopReason::Cancelled || reason == StopReason::Timeout;
  if (ex.consumer_stopped || (ex.ok && !stopped_by_us)) {
    HttpResponse out;
    out.status = ex.response.status;
    out.headers = from_httplib_headers(ex.response.headers);
    // cpp-httplib skips the response handler for HEAD and 204 (there is no body), but the
    // contract is that on_head always sees the head.
    if (ex.ok && request.on_head && !ex.head_delivered) request.on_head(out.status, out.headers);
    out.body = std::move(ex.response.body);  // empty when streamed
    return out;
  }
  if (reason == StopReason::Cancelled) return failure(Outcome::Cancelled, "request cancelled");
  // Our own read timeout equals the time left, so a read that timed out on its own also
  // lands here, after the deadline.
  if (reason == StopReason::Timeout || Clock::now() >= deadline) {
    return failure(Outcome::Timeout, timeout_text(request.timeout));
  }
  // Host and port only: the path and query may carry secrets, so may headers and body.
  return failure(Outcome::Network, "request to " + target.host_port + " failed: " +
                                       httplib::to_string(ex.error) +
                                       connection.error_detail(ex.error));
}

}  // namespace

HttpResponse HttpClient::send(const HttpRequest& request) {
  if (observer_ == nullptr) return send_unobserved(request);
  const std::string traceparent = observer_->http_started(request);
  const auto start = Clock::now();
  HttpResponse response = send_unobserved(request, traceparent);
  observer_->http_done(request, response, Clock::now() - start, traceparent);
  return response;
}

HttpResponse HttpClient::send_unobserved(const HttpRequest& request, const std::string& traceparent) {
  const Clock::time_point start = Clock::now();
  auto method = parse_method(request.method);
  if (!method) return failure(Outcome::InvalidRequest, method.error());
  auto target = parse_url(request.url);
  if (!target) return failure(Outcome::InvalidRequest, target.error());
  if (request.timeout.count() <= 0 || request.connect_timeout.count() <= 0) {
    return failure(Outcome::InvalidRequest, "timeouts must be positive");
  }
  auto headers = to_httplib_headers(request, *target, traceparent);
  if (!headers) return failure(Outcome::InvalidRequest, headers.error());

  // Cheap early exit on the caller's thread; from here on only the watcher polls it.
  if (request.cancelled && request.cancelled()) {
    return failure(Outcome::Cancelled, "request cancelled");
  }

  const Clock::time_point deadline = start + request.timeout;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  const auto remaining = std::max(std::chrono::milliseconds(1), left);
  auto connection = make_connection(*target, request.connect_timeout, remaining);
  if (!connection) {
    return failure(Outcome::Network,
                   "request to " + target->host_port + " failed: " + connection.error());
  }

  httplib::Request req;
  req.method = std::move(*method);
  req.path = target->path;
  req.headers = std::move(*headers);
  req.body = request.body;

  Impl::Active active;
  active.connection = connection->get();
  active.cancelled = &request.cancelled;
  active.deadline = deadline;
  Exchange ex = [&] {
    Impl::Registration registration(*impl_, active);
    return exchange((*connection)->client(), request, std::move(req), active.reason);
  }();
  // Unregistered: the reason can no longer change under us.
  return shape(ex, request, *target, **connection, active.reason.load(), deadline);
}

}  // namespace mcph::services
