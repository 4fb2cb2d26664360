#include "transport/http_listener.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace mcph::transport {
namespace {

using Clock = std::chrono::steady_clock;

// How long a worker waits for the next request on a connection it just answered before
// handing the connection back to the loop (and the loop to a worker again: two wake-ups).
// A client with requests in flight sends the next within microseconds when it has the CPU;
// with many connections busy on few cores it is often 1–5 ms later, so while at least
// half the workers are free a worker waits the longer time (32 connections on 2 cores:
// p99 3.5–8.4 ms at 1 ms, 1.4–4.2 ms at 5 ms). With fewer free it waits the shorter one,
// so lingering workers do not leave other connections' requests without one (503). A
// client that pauses costs a worker this much, once.
constexpr auto kLinger = std::chrono::microseconds(1000);
constexpr auto kLingerWhileSpare = std::chrono::microseconds(5000);
// How long a refused connection is drained before it is closed (so the client reads our
// answer instead of a reset).
constexpr auto kClosingDrain = std::chrono::seconds(2);
constexpr auto kSweepEvery = std::chrono::milliseconds(100);

// The reason phrase of a status line (clients go by the code; RFC 9112 §4).
const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : "Error";
  }
}

// An answer written by the loop itself: a JSON-RPC error, as the handlers would write it.
std::string canned(int status, const std::string& message) {
  const int code = status == 503 ? -32603 : -32000;
  nlohmann::json body{{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", {{"code", code}, {"message", message}}}};
  const std::string text = body.dump();
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) +
                    "\r\nContent-Type: application/json\r\nConnection: close\r\n";
  if (status == 503) out += "Retry-After: 1\r\n";
  return out + "Content-Length: " + std::to_string(text.size()) + "\r\n\r\n" + text;
}

std::string address_text(const sockaddr_storage& a, int& port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    port = ntohs(in->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    port = ntohs(in6->sin6_port);
  }
  return buf;
}

}  // namespace

struct Listener::Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  bool handshake_done = false;
  std::string buf;  // the request being read (and any that follows it)
  RequestFramer framer;
  bool peer_closed = false;
  bool parked = false;    // owned by the loop (else by a worker)
  bool closing = false;   // answered and refused: draining input until closed
  Clock::time_point idle_since = Clock::now();
  Clock::time_point request_started{};  // first byte of the current request
  Clock::time_point head_done_at{};
  size_t served = 0;
  std::string remote_ip, local_ip;
  int remote_port = 0, local_port = 0;

  explicit Conn(const RequestFramer::Limits& limits) : framer(limits) {}
  ~Conn() {
    if (ssl != nullptr) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
  }
};

struct Listener::Direct {
  std::string path;
  Handler handler;
  httplib::Logger logged;
};

struct Listener::Impl {
  Listener& owner;
  Options options;
  SSL_CTX* tls = nullptr;
  const int epoll, wake;
  int listen_fd = -1;
  std::atomic<bool> stopping{false};

  std::mutex mutex;
  std::condition_variable work_cv, idle_cv;
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns;  // guarded by mutex
  std::deque<Conn*> ready;                                  // whole requests for workers; guarded
  std::atomic<size_t> busy{0};                              // workers serving; changed under mutex, read by serve()
  std::vector<std::thread> workers;
  std::vector<Direct> direct;                               // route_directly(): set before serve()

  // Tags for the two non-connection fds in epoll.
  char listen_tag = 0, wake_tag = 0;

  // (The epoll set and its wake-up exist from the start: shutdown() may come from another
  // thread at any time, even before serve().)
  Impl(Listener& l, Options o)
      : owner(l), options(std::move(o)), epoll(epoll_create1(EPOLL_CLOEXEC)), wake(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &wake_tag;
    epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &ev);
  }
  ~Impl() {
    if (tls != nullptr) SSL_CTX_free(tls);
    for (int fd : {epoll, wake}) {
      if (fd >= 0) ::close(fd);
    }
  }

  // ---- Reading ------------------------------------------------------------------------

  enum class Read { kOk, kClosed, kError };

  // Reads what is there without blocking, never more than the limits could accept. A
  // plain read that leaves room in the chunk took all there was: no second recv() to be told
  // so (both callers wait for more level-triggered, so nothing that comes later is missed).
  Read read_available(Conn& c) {
    const size_t cap = options.limits.max_head_bytes + options.limits.max_body_bytes + 64 * 1024;
    char chunk[65536];
    for (;;) {
      if (c.buf.size() > cap) return Read::kOk;  // the framer refuses it
      ssize_t n;
      if (c.ssl != nullptr) {
        n = SSL_read(c.ssl, chunk, sizeof chunk);
        if (n <= 0) {
          const int e = SSL_get_error(c.ssl, static_cast<int>(n));
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Read::kOk;
          ERR_clear_error();
          return e == SSL_ERROR_ZERO_RETURN ? Read::kClosed : Read::kError;
        }
      } else {
        n = ::recv(c.fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? Read::kOk : Read::kError;
        if (n == 0) return Read::kClosed;
      }
      if (c.buf.empty() && !c.framer.started()) c.request_started = Clock::now();
      c.buf.append(chunk, static_cast<size_t>(n));
      if (c.ssl == nullptr && static_cast<size_t>(n) < sizeof chunk) return Read::kOk;
    }
  }

  // Frames what was read; answers 100 Continue itself (cpp-httplib would answer it again
  // when it processes the request, so the header goes).
  RequestFramer::Outcome frame(Conn& c) {
    auto o = c.framer.feed(c.buf);
    if (c.framer.head_done() && c.head_done_at == Clock::time_point{}) c.head_done_at = Clock::now();
    if (o.state != RequestFramer::State::kError && c.framer.expect_end() > c.framer.expect_begin()) {
      if (o.state == RequestFramer::State::kNeedMore && c.framer.body_pending()) {
        write_all(c, "HTTP/1.1 100 Continue\r\n\r\n", std::chrono::milliseconds(0));
      }
      const size_t len = c.framer.expect_end() - c.framer.expect_begin();
      c.buf.erase(c.framer.expect_begin(), len);
      c.framer.expect_removed();
      if (o.state == RequestFramer::State::kComplete) o.length -= len;
    }
    return o;
  }

  // ---- Writing ------------------------------------------------------------------------

  // Blocks (polling a non-blocking socket) until all is written or `timeout` passes. The
  // loop thread writes only small answers, with no time to wait: it must never block.
  bool write_all(Conn& c, std::string_view data, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
      ssize_t n;
      short wait_for = POLLOUT;
      if (c.ssl != nullptr) {
        n = SSL_write(c.ssl, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 30)));
        if (n <= 0) {
          const int e = SSL_get_error(c.ssl, static_cast<int>(n));
          if (e == SSL_ERROR_WANT_READ) {
            wait_for = POLLIN;
          } else if (e != SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            return false;
          }
          n = 0;
        }
      } else {
        n = ::send(c.fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
        if (n < 0) n = 0;
      }
      data.remove_prefix(static_cast<size_t>(n));
      if (data.empty()) break;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{c.fd, wait_for, 0};
      if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) return false;
    }
    return true;
  }

  // ---- Connections --------------------------------------------------------------------

  void arm(Conn& c, bool add) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    if (c.ssl != nullptr && !c.handshake_done) ev.events |= EPOLLOUT;  // a handshake may want to write
    ev.data.ptr = &c;
    if (epoll_ctl(epoll, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &ev) != 0) {
      spdlog::debug("http: epoll_ctl: {}", std::strerror(errno));
    }
  }

  // Hands a connection (back) to the loop. Armed under the lock: the sweep may not end it
  // in between.
  void park(Conn& c, bool add = false) {
    std::lock_guard lock(mutex);
    c.parked = true;
    if (c.buf.empty() && !c.framer.started()) c.idle_since = Clock::now();
    if (c.buf.capacity() > 64 * 1024 && c.buf.size() < 4096) c.buf.shrink_to_fit();
    arm(c, add);
  }

  void close_conn(Conn* c) {
    std::unique_ptr<Conn> gone;
    {
      std::lock_guard lock(mutex);
      auto it = conns.find(c);
      if (it == conns.end()) return;
      gone = std::move(it->second);
      conns.erase(it);
    }
    if (gone->ssl != nullptr && gone->handshake_done) SSL_shutdown(gone->ssl);  // best effort, non-blocking
  }

  // Answers a request the loop refuses and drains the connection for a moment, so the
  // client reads the answer rather than a reset. Loop thread (or a worker handing over).
  void refuse(Conn& c, int status, const std::string& message) {
    write_all(c, canned(status, message), std::chrono::milliseconds(0));
    ::shutdown(c.fd, SHUT_WR);
    c.buf.clear();
    c.buf.shrink_to_fit();
    c.closing = true;
    c.idle_since = Clock::now();
    park(c);
  }

  // ---- The loop -----------------------------------------------------------------------

  void accept_all() {
    for (;;) {
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) spdlog::warn("http: accept: {}", std::strerror(errno));
        return;
      }
      size_t open = 0;
      {
        std::lock_guard lock(mutex);
        open = conns.size();
      }
      if (open >= options.max_connections) {
        const std::string refusal = canned(503, "Service Unavailable: too many connections (server.http.max_connections)");
        [[maybe_unused]] ssize_t n = ::send(fd, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto conn = std::make_unique<Conn>(options.limits);
      conn->fd = fd;
      conn->remote_ip = address_text(addr, conn->remote_port);
      sockaddr_storage local{};
      socklen_t local_len = sizeof local;
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0) conn->local_ip = address_text(local, conn->local_port);
      if (tls != nullptr) {
        conn->ssl = SSL_new(tls);
        if (conn->ssl == nullptr || SSL_set_fd(conn->ssl, fd) != 1) continue;  // ~Conn closes fd
        SSL_set_accept_state(conn->ssl);
      }
      Conn* c = conn.get();
      {
        std::lock_guard lock(mutex);
        conns.emplace(c, std::move(conn));
      }
      c->request_started = Clock::now();  // a new connection must start its request in time
      park(*c, /*add=*/true);
    }
  }

  // A parked connection has something to read (or hung up). Loop thread.
  void on_event(Conn& c) {
    {
      std::lock_guard lock(mutex);
      c.parked = false;
    }
    if (c.closing) {  // discard until the client closes
      char sink[16384];
      ssize_t n;
      while ((n = ::recv(c.fd, sink, sizeof sink, 0)) > 0) {
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return close_conn(&c);
      return park(c);
    }
    if (c.ssl != nullptr && !c.handshake_done) {
      const int r = SSL_do_handshake(c.ssl);
      if (r != 1) {
        const int e = SSL_get_error(c.ssl, r);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return park(c);
        return close_conn(&c);
      }
      c.handshake_done = true;
    }
    const Read r = read_available(c);
    if (r == Read::kError) return close_conn(&c);
    if (r == Read::kClosed) c.peer_closed = true;
    if (c.buf.empty() && !c.framer.started()) {
      return c.peer_closed ? close_conn(&c) : park(c);
    }
    const auto o = frame(c);
    if (o.state == RequestFramer::State::kError) return refuse(c, o.status, o.message);
    if (o.state == RequestFramer::State::kComplete) return dispatch(c);
    if (c.peer_closed) return close_conn(&c);  // it will never be whole
    park(c);
  }

  // A whole request: to a free worker, or 503 at once when there is none.
  void dispatch(Conn& c) {
    {
      std::lock_guard lock(mutex);
      if (!stopping && busy + ready.size() < options.workers) {
        ready.push_back(&c);
        work_cv.notify_one();
        return;
      }
    }
    refuse(c, 503, stopping ? "Service Unavailable: the server is stopping"
                            : "Service Unavailable: every worker is busy (server.http.worker_threads)");
  }

  // Ends connections whose request is late, idle ones, and refused ones drained long enough.
  void sweep() {
    const auto now = Clock::now();
    std::vector<std::pair<Conn*, int>> late;  // 0: close quietly, 408: answer first
    {
      std::lock_guard lock(mutex);
      for (auto& [p, c] : conns) {
        if (!c->parked) continue;
        if (c->closing) {
          if (now - c->idle_since > kClosingDrain) late.emplace_back(p, 0);
        } else if (c->buf.empty() && !c->framer.started()) {  // nothing asked: close quietly
          const bool fresh = c->served == 0;
          if (now - (fresh ? c->request_started : c->idle_since) > (fresh ? options.header_timeout : options.idle_timeout)) {
            late.emplace_back(p, 0);
          }
        } else if (!c->framer.head_done()) {
          if (now - c->request_started > options.header_timeout) late.emplace_back(p, 408);
        } else if (now - c->head_done_at > options.body_timeout) {
          late.emplace_back(p, 408);
        }
      }
    }
    for (auto [c, status] : late) {
      if (status == 0 || (c->ssl != nullptr && !c->handshake_done)) {
        close_conn(c);
        continue;
      }
      {
        std::lock_guard lock(mutex);
        c->parked = false;
      }
      refuse(*c, 408, c->framer.head_done() ? "Request Timeout: the body took longer than server.http.body_timeout_ms"
                                            : "Request Timeout: the head took longer than server.http.header_timeout_ms");
    }
  }

  void loop() {
    epoll_event events[128];
    auto next_sweep = Clock::now() + kSweepEvery;
    while (!stopping.load()) {
      const int n = epoll_wait(epoll, events, 128, static_cast<int>(kSweepEvery.count()));
      if (n < 0 && errno != EINTR) {
        spdlog::error("http: epoll_wait: {}", std::strerror(errno));
        break;
      }
      for (int i = 0; i < n; ++i) {
        void* tag = events[i].data.ptr;
        if (tag == &listen_tag) {
          accept_all();
        } else if (tag == &wake_tag) {
          uint64_t v;
          [[maybe_unused]] ssize_t r = ::read(wake, &v, sizeof v);
        } else {
          on_event(*static_cast<Conn*>(tag));
        }
      }
      if (Clock::now() >= next_sweep) {
        sweep();
        next_sweep = Clock::now() + kSweepEvery;
      }
    }
  }

  // ---- Workers ------------------------------------------------------------------------

  void worker() {
    std::unique_lock lock(mutex);
    for (;;) {
      work_cv.wait(lock, [&] { return stopping.load() || !ready.empty(); });
      if (ready.empty()) break;
      Conn* c = ready.front();
      ready.pop_front();
      ++busy;
      lock.unlock();
      serve(*c);
      lock.lock();
      --busy;
      idle_cv.notify_all();
    }
  }

  // Serves the whole request in c.buf, then any that follow while the client keeps sending.
  void serve(Conn& c) {
    RequestFramer::Outcome o = c.framer.feed(c.buf);
    for (;;) {
      const bool last = stopping.load() || c.served + 1 >= options.keep_alive_max || c.peer_closed;
      const bool closed = !owner.process(c, o.length) || last;
      ++c.served;
      c.buf.erase(0, o.length);
      c.framer.reset();
      c.request_started = c.head_done_at = {};
      if (closed) return close_conn(&c);
      // The next request: already here, or arriving within the linger.
      const bool spare = busy.load(std::memory_order_relaxed) * 2 <= options.workers;
      const auto until = Clock::now() + (spare ? kLingerWhileSpare : kLinger);
      for (;;) {
        if (!c.buf.empty()) {
          if (!c.framer.started()) c.request_started = Clock::now();
          o = frame(c);
          if (o.state == RequestFramer::State::kError) return refuse(c, o.status, o.message);
          if (o.state == RequestFramer::State::kComplete) break;
        }
        const auto left = std::chrono::duration_cast<std::chrono::microseconds>(until - Clock::now());
        const bool buffered = c.ssl != nullptr && SSL_pending(c.ssl) > 0;
        if (left.count() <= 0 && !buffered) return park(c);
        if (!buffered) {
          pollfd p{c.fd, POLLIN, 0};
          const timespec ts{0, static_cast<long>(std::max<int64_t>(left.count(), 0) * 1000)};
          if (::ppoll(&p, 1, &ts, nullptr) <= 0) return park(c);
        }
        const Read r = read_available(c);
        if (r == Read::kError) return close_conn(&c);
        if (r == Read::kClosed) {
          c.peer_closed = true;
          if (c.buf.empty()) return close_conn(&c);
        }
      }
    }
  }
};

// What cpp-httplib reads and writes for one request: the request's bytes from the buffer
// (nothing beyond it), the response to the socket. cpp-httplib writes a response's head and
// its body separately; a head that announces a Content-Length waits for its body, so a
// plain answer is one send, not two (a system call is most of a quick call's cost on a VM).
// Streamed heads (SSE, chunked) go at once: their body may take minutes.
class Listener::ConnStream final : public httplib::Stream {
 public:
  ConnStream(Impl& impl, Conn& conn, size_t length) : impl_(impl), conn_(conn), length_(length) {}
  using httplib::Stream::write;

  bool is_readable() const override { return pos_ < length_; }
  bool is_writable() const override {
    pollfd p{conn_.fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) <= 0 || (p.revents & (POLLERR | POLLHUP)) != 0) return false;
    char c;
    const ssize_t n = ::recv(conn_.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n != 0;  // 0: the client closed its side
  }
  ssize_t read(char* ptr, size_t size) override {
    if (size == 1 && pos_ < length_) {  // cpp-httplib reads the head a byte at a time
      *ptr = conn_.buf[pos_++];
      return 1;
    }
    const size_t n = std::min(size, length_ - pos_);
    std::memcpy(ptr, conn_.buf.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    const std::string_view data(ptr, size);
    if (!wrote_ && head_.empty() && sized_head(data)) {
      head_ = data;
      return static_cast<ssize_t>(size);
    }
    wrote_ = true;
    if (!head_.empty()) {
      head_ += data;
      return send(head_) ? static_cast<ssize_t>(size) : -1;
    }
    return send(data) ? static_cast<ssize_t>(size) : -1;
  }
  // The head still held (a response without a body). False if the client is gone.
  bool flush() { return head_.empty() || send(head_); }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = conn_.remote_ip;
    port = conn_.remote_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = conn_.local_ip;
    port = conn_.local_port;
  }
  socket_t socket() const override { return conn_.fd; }
  bool failed() const { return failed_; }

 private:
  static bool sized_head(std::string_view d) {
    return d.starts_with("HTTP/1.") && d.ends_with("\r\n\r\n") && d.find("\r\nContent-Length: ") != std::string_view::npos;
  }
  bool send(std::string_view data) {
    if (failed_ || !impl_.write_all(conn_, data, impl_.options.write_timeout)) failed_ = true;
    head_.clear();
    return !failed_;
  }
  Impl& impl_;
  Conn& conn_;
  size_t length_;
  size_t pos_ = 0;
  bool failed_ = false;
  bool wrote_ = false;  // something went out: nothing more is held
  std::string head_;    // a sized response head waiting for its body
};

bool Listener::process(Conn& conn, size_t length) {
  ConnStream stream(*impl_, conn, length);
  bool connection_closed = false;
  const bool last = impl_->stopping.load() || conn.served + 1 >= impl_->options.keep_alive_max;
  if (!impl_->direct.empty()) {
    if (auto plain = parse_plain_request(std::string_view(conn.buf).substr(0, length)); plain && plain->method == "POST") {
      for (const Direct& route : impl_->direct) {
        if (plain->target == route.path) return process_plain(stream, conn, *plain, route, last);
      }
    }
  }
  const bool ok = process_request(stream, last, connection_closed, nullptr);
  const bool sent = stream.flush();
  return ok && sent && !connection_closed && !stream.failed();
}

// A plain request to a direct route. By callgrind, per MCP call at 8 connections, cpp-httplib's
// process_request took ~70,000 of the host's ~122,000 instructions: the head read through
// Stream::read a byte at a time, every header compare folding case through tolower(), the
// router's regular expressions, and the response's head built with a dozen header
// lookups. Here the head is read once (parse_plain_request) and the answer written at once.
bool Listener::process_plain(ConnStream& stream, Conn& conn, const PlainRequest& plain, const Direct& route, bool last) {
  httplib::Request req;
  req.method = plain.method;
  req.target = plain.target;
  req.path = plain.target;
  req.version = "HTTP/1.1";
  for (const auto& [name, value] : plain.headers) req.headers.emplace(name, value);
  req.body = plain.body;
  req.remote_addr = conn.remote_ip;
  req.remote_port = conn.remote_port;
  req.local_addr = conn.local_ip;
  req.local_port = conn.local_port;
  httplib::Response res;
  route.handler(req, res);
  if (res.status == -1) res.status = 200;
  const bool close = last || plain.close;
  const bool chunked = res.is_chunked_content_provider_;
  if (res.content_provider_ && !chunked) {  // (set_content_provider with a length: no direct handler uses it)
    spdlog::error("http: a direct route answered with a sized content provider; 500");
    if (res.content_provider_resource_releaser_) res.content_provider_resource_releaser_(false);
    res = httplib::Response();
    res.status = 500;
  }
  std::string out = "HTTP/1.1 " + std::to_string(res.status) + " " + reason(res.status) + "\r\n";
  for (const auto& [name, value] : res.headers) {
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (close) out += "Connection: close\r\n";
  if (!chunked) {  // (204, a cancelled call, has neither a body nor a Content-Length: RFC 9110 §8.6)
    if (res.status != 204) out.append("Content-Length: ").append(std::to_string(res.body.size())).append("\r\n");
    out.append("\r\n").append(res.status != 204 ? res.body : std::string());
    const bool sent = stream.write(out.data(), out.size()) >= 0 && stream.flush();
    route.logged(req, res);
    return sent && !close && !stream.failed();
  }
  // A stream (SSE): chunks as the provider writes them, until it is done or the client gone.
  out += "Transfer-Encoding: chunked\r\n\r\n";
  bool ok = stream.write(out.data(), out.size()) >= 0, more = true;
  size_t offset = 0;
  httplib::DataSink sink;
  sink.write = [&](const char* data, size_t n) {
    if (ok && n > 0) {
      char size[24];
      const int len = std::snprintf(size, sizeof size, "%zx\r\n", n);
      std::string chunk(size, static_cast<size_t>(len));
      chunk.append(data, n).append("\r\n");
      ok = stream.write(chunk.data(), chunk.size()) >= 0;
      offset += n;
    }
    return ok;
  };
  sink.is_writable = [&] { return ok && stream.is_writable(); };
  sink.done = [&] {
    more = false;
    ok = ok && stream.write("0\r\n\r\n", 5) >= 0;
  };
  while (ok && more && !impl_->stopping.load()) {
    if (!res.content_provider_(offset, 0, sink)) ok = false;
  }
  res.content_provider_success_ = ok && !more;
  route.logged(req, res);
  return res.content_provider_success_ && !close && !stream.failed();
}

void Listener::route_directly(const std::string& path, Handler handler, httplib::Logger logged) {
  impl_->direct.push_back({path, std::move(handler), std::move(logged)});
}

Listener::Listener(Options options) : impl_(std::make_unique<Impl>(*this, std::move(options))) {
  set_payload_max_length(impl_->options.limits.max_body_bytes);
  auto& o = impl_->options;
  if (o.tls_cert.empty()) return;
  impl_->tls = SSL_CTX_new(TLS_server_method());
  if (impl_->tls == nullptr) return;
  SSL_CTX_set_min_proto_version(impl_->tls, TLS1_2_VERSION);
  SSL_CTX_set_mode(impl_->tls, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(impl_->tls, o.tls_cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(impl_->tls, o.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(impl_->tls) != 1) {
    ERR_clear_error();
    SSL_CTX_free(impl_->tls);
    impl_->tls = nullptr;
  }
}

Listener::~Listener() = default;

bool Listener::is_valid() const { return impl_->options.tls_cert.empty() || impl_->tls != nullptr; }

Result<int> Listener::bind(const std::string& host, int port) {
  const int bound = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
  if (bound <= 0) return Error{std::strerror(errno)};
  impl_->listen_fd = svr_sock_;
  // cpp-httplib listens with a backlog of 5 (Debian builds it so): a burst of connections
  // beyond that while this thread is busy had its SYNs dropped, and each client retried
  // after 1 s. Listening again sets the backlog (up to net.core.somaxconn).
  ::listen(impl_->listen_fd, SOMAXCONN);
  return bound;
}

void Listener::serve() {
  Impl& m = *impl_;
  if (m.listen_fd < 0) return;
  fcntl(m.listen_fd, F_SETFL, fcntl(m.listen_fd, F_GETFL) | O_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &m.listen_tag;
  epoll_ctl(m.epoll, EPOLL_CTL_ADD, m.listen_fd, &ev);
  for (size_t i = 0; i < m.options.workers; ++i) m.workers.emplace_back([&m] { m.worker(); });
  m.loop();
  // Stopping: no new connections; idle ones close; requests in progress finish.
  const int fd = svr_sock_.exchange(INVALID_SOCKET);
  if (fd >= 0) ::close(fd);
  {
    std::lock_guard lock(m.mutex);
    m.work_cv.notify_all();
  }
  for (auto& t : m.workers) t.join();
  m.workers.clear();
  std::lock_guard lock(m.mutex);
  m.conns.clear();
  m.ready.clear();
}

void Listener::shutdown() {
  impl_->stopping = true;
  if (impl_->wake >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(impl_->wake, &one, sizeof one);
  }
  std::lock_guard lock(impl_->mutex);
  impl_->work_cv.notify_all();
}

}  // namespace mcph::transport
