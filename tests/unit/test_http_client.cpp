#include "services/http_client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <strings.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace mcph::services {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Outcome = HttpResponse::Outcome;

// Pieces the streaming endpoint sends; each waits until the client has seen the previous
// ones, which proves the client streams instead of buffering (and keeps TCP from merging).
const std::vector<std::string> kChunks = {"one", "two", "three"};

std::string header_value(const Headers& headers, const std::string& name) {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return {};
}

std::chrono::milliseconds elapsed_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// Runs a cpp-httplib server on a free loopback port in a background thread.
class TestServer {
 public:
  explicit TestServer(std::unique_ptr<httplib::Server> server) : server_(std::move(server)) {}

  // Returns false if the address cannot be bound (e.g. no IPv6 on this machine).
  bool start(const std::string& host) {
    port_ = server_->bind_to_any_port(host);
    if (port_ <= 0) return false;
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // Server::stop() is a no-op until listen has set is_running (httplib.h 0.11.4), so
    // wait for it; otherwise a quick TearDown could leave listen running forever.
    const auto deadline = Clock::now() + 5s;
    while (!server_->is_running() && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    return server_->is_running();
  }

  void stop() {
    if (!thread_.joinable()) return;
    server_->stop();
    thread_.join();
  }

  ~TestServer() { stop(); }

  httplib::Server& server() { return *server_; }
  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(std::make_unique<httplib::Server>());
    add_routes(server_->server());
    ASSERT_TRUE(server_->start("127.0.0.1"));
  }

  void TearDown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();  // releases handlers parked in /slow, /stream and /endless
    server_->stop();
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

  // Server side: waits until `ready` or the test ends; false if the test ended first.
  bool wait_server(const std::function<bool()>& ready, std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, limit, [&] { return stopping_ || ready(); });
    return !stopping_ && ready();
  }

  // Client side: record what on_body received and let the server know.
  void received(const char* data, size_t len) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      streamed_.append(data, len);
    }
    wake_.notify_all();
  }

  std::string streamed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return streamed_;
  }

  void add_routes(httplib::Server& server) {
    server.Get("/json", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("X-Test", "yes");
      res.set_content(R"({"ok":true})", "application/json");
    });
    server.Get("/target", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(req.target, "text/plain");
    });
    server.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.set_header("X-Echo-Custom", req.get_header_value("X-Custom"));
      res.set_header("X-Echo-Content-Type", req.get_header_value("Content-Type"));
      res.set_content(req.body, "application/octet-stream");
    });
    server.Get("/fail", [](const httplib::Request&, httplib::Response& res) {
      res.status = 500;
      res.set_content("boom", "text/plain");
    });
    server.Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
      wait_server([] { return false; }, 2s);
      res.set_content("late", "text/plain");
    });
    server.Get("/stream", [this](const httplib::Request&, httplib::Response& res) {
      res.set_header("X-Stream", "yes");
      auto next = std::make_shared<size_t>(0);
      res.set_chunked_content_provider("text/plain", [this, next](size_t, httplib::DataSink& sink) {
        if (*next == kChunks.size()) {
          sink.done();
          return true;
        }
        std::string sent_before;
        for (size_t i = 0; i < *next; ++i) sent_before += kChunks[i];
        if (!wait_server([&] { return streamed_ == sent_before; }, 5s)) return false;
        sink.write(kChunks[*next].data(), kChunks[*next].size());
        ++*next;
        return true;
      });
    });
    // Never ends: a small chunk every 20 ms, so no single read ever times out.
    server.Get("/endless", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/plain", [this](size_t, httplib::DataSink& sink) {
        if (!sink.write("tick\n", 5)) return false;  // the client went away
        wait_server([] { return false; }, 20ms);      // a pause, cut short by TearDown
        return !stopping();
      });
    });
    server.Get("/empty", [](const httplib::Request&, httplib::Response& res) {
      res.status = 204;
    });
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }

  HttpClient client_;
  std::unique_ptr<TestServer> server_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::string streamed_;   // guarded by mutex_
};

// A loopback port with nothing listening: bind, read the port, close.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(HttpClientTest, GetJson) {
  HttpRequest request;
  request.url = url("/json");
  const HttpResponse response = client_.send(request);
  ASSERT_EQ(response.outcome, Outcome::Ok) << response.error;
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"({"ok":true})");
  EXPECT_EQ(header_value(response.headers, "x-test"), "yes");
  EXPECT_EQ(header_value(response.headers, "Content-Type"), "application/json");
  EXPECT_TRUE(response.error.empty());
}

TEST_F(HttpClientTest, PathAndQueryAreSentAsGiven) {
  HttpRequest request;
  request.url = url("/target?q=a+b%2Fc&x=1,2#fragment");
  const HttpResponse response = client_.send(request);
  ASSERT_EQ(response.outcome, Outcome::Ok) << response.error;
  EXPECT_EQ(response.body, "/target?q=a+b%2Fc&x=1,2");
}

TEST_F(HttpClientTest, PostEchoesBodyAndHeader) {
  HttpRequest request;
  request.method = "POST";
  request.url = url("/echo");
  request.headers = {{"X-Custom", "hello"}};
  request.body = R"({"n":1})";
  const HttpResponse response = client_.send(request);
  ASSERT_EQ(response.outcome, Outcome::Ok) << response.error;
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, request.body);
  EXPECT_EQ(header_value(response.headers, "X-Echo-Custom"), "hello");
  EXPECT_EQ(header_value(response.headers, "X-Echo-Content-Type"), "application/json");
}

TEST_F(HttpClientTest, PostKeepsCallersContentTypeAndBinaryBody) {
  HttpRequest request;
  request.method = "post";
  request.url = url("/echo");
  request.headers = {{"content-type", "application/octet-stream"}};
  request.body = std::string("a\0b\r\nc", 6);
  const HttpResponse response = client_.send(request);
  ASSERT_EQ(response.outcome, Outcome::Ok) << response.error;
  EXPECT_EQ(response.body, request.body);
  EXPECT_EQ(header_value(response.headers, "X-Echo-Content-Type"), "application/octet-stream");
}

TEST_F(HttpClientTest, ServerErrorIsAnOkExchange) {
  HttpRequest request;
  request.url = url("/fail");
  const HttpResponse response = client_.send(request);
  EXPECT_EQ(response.outcome, Outcome::Ok) << response.error;
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body, "boom");
}

TEST_F(HttpClientTest, HeadAndNoContentStillReachOnHead) {
  for (const auto& [method, path, status] :
       {std::tuple<std::string, std::string, int>{"HEAD", "/json", 200}, {"GET", "/empty", 204}}) {
    int seen_status = 0;
    HttpRequest request;
    request.method = method;
    request.url = url(path);
    request.on_head = [&](int s, const Headers&) {
      seen_status = s;
      return true;
    };
    const HttpResponse response = client_.send(request);
    EXPECT_EQ(response.outcome, Outcome::Ok) << method << " " << response.error;
    EXPECT_EQ(response.status, status) << method;
    EXPECT_EQ(seen_status, status) << method;
    EXPECT_TRUE(response.body.empty()) << method;
  }
}

TEST_F(HttpClientTest, StreamsChunksInOrderAfterHead) {
  std::vector<std::string> events;
  HttpRequest request;
  request.url = url("/stream");
  request.on_head = [&](int status, const Headers& headers) {
    events.push_back("head " + std::to_string(status) + " " + header_value(headers, "X-Stream"));
    return true;
  };
  request.on_body = [&](const char* data, size_t len) {
    events.emplace_back(data, len);
    received(data, len);
    return true;
  };
  const HttpResponse response = client_.send(request);
  ASSERT_EQ(response.outcome, Outcome::Ok) << response.error;
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(response.body.empty()) << "streamed bodies are not collected";
  EXPECT_EQ(events, (std::vector<std::string>{"head 200 yes", "one", "two", "three"}));
}

TEST_F(HttpClientTest, OnBodyReturningFalseStopsAndStaysOk) {
  int calls = 0;
  HttpRequest request;
  request.url = url("/stream");
  request.on_body = [&](const char* data, size_t len) {
    ++calls;
    received(data, len);
    return false;
  };
  const auto start = Clock::now();
  const HttpResponse response = client_.send(request);
  EXPECT_EQ(response.outcome, Outcome::Ok) << response.error;
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(streamed(), "one");
  EXPECT_TRUE(response.error.empty());
  EXPECT_LT(elapsed_since(start), 1s) << "did not wait for the rest of the stream";
}

TEST_F(HttpClientTest, OnHeadReturningFalseStopsAndStaysOk) {
  bool body_called = false;
  HttpRequest request;
  request.url = url("/stream");
  request.on_head = [](int, const Headers&) { return false; };
  request.on_body = [&](const char*, size_t) { return body_called = true; };
  const HttpResponse response = client_.send(request);
  EXPECT_EQ(response.outcome, Outcome::Ok) << response.error;
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(header_value(response.headers, "X-Stream"), "yes");
  EXPECT_FALSE(body_called);
}

TEST_F(HttpClientTest, WholeRequestTimeoutWhileWaitingForHead) {
  HttpRequest request;
  request.url = url("/slow");
  request.timeout = 200ms;
  const auto start = Clock::now();
  const HttpResponse response = client_.send(request);
  const auto took = elapsed_since(start);
  EXPECT_EQ(response.outcome, Outcome::Timeout) << response.error;
  EXPECT_EQ(response.error, "request timed out after 200 ms");
  EXPECT_EQ(response.status, 0);
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 1s);
}

// Data keeps arriving, so no single read times out: only the watcher can end this.
TEST_F(HttpClientTest, WholeRequestTimeoutWhileStreaming) {
  size_t bytes = 0;
  HttpRequest request;
  request.url = url("/endless");
  request.timeout = 300ms;
  request.on_body = [&](const char*, size_t len) {
    bytes += len;
    return true;
  };
  const auto start = Clock::now();
  const HttpResponse response = client_.send(request);
  const auto took = elapsed_since(start);
  EXPECT_EQ(response.outcome, Outcome::Timeout) << response.error;
  EXPECT_EQ(response.error, "request timed out after 300 ms");
  EXPECT_GT(bytes, 0u);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 1s);
}

TEST_F(HttpClientTest, CancelWhileWaitingForHead) {
  const auto start = Clock::now();
  HttpRequest request;
  request.url = url("/slow");
  request.cancelled = [start] { return Clock::now() - start >= 100ms; };
  const HttpResponse response = client_.send(request);
  const auto took = elapsed_since(start);
  EXPECT_EQ(response.outcome, Outcome::Cancelled) << response.error;
  EXPECT_EQ(response.error, "request cancelled");
  EXPECT_EQ(response.status, 0);
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 1s);
}

TEST_F(HttpClientTest, CancelWhileStreaming) {
  std::atomic<bool> cancel{false};
  HttpRequest request;
  request.url = url("/endless");
  request.on_body = [&](const char*, size_t) {
    cancel = true;  // cancel from "elsewhere" once data flows; keep accepting it
    return true;
  };
  request.cancelled = [&] { return cancel.load(); };
  const auto start = Clock::now();
  const HttpResponse response = client_.send(request);
  EXPECT_EQ(response.outcome, Outcome::Cancelled) << response.error;
  EXPECT_EQ(response.error, "request cancelled");
  EXPECT_LT(elapsed_since(start), 1s);
}

TEST_F(HttpClientTest, AlreadyCancelledNeverConnects) {
  HttpRequest request;
  request.url = url("/json");
  request.cancelled = [] { return true; };
  const HttpResponse response = client_.send(request);
  EXPECT_EQ(response.outcome, Outcome::Cancelled);
  EXPECT_EQ(response.error, "request cancelled");
}

TEST_F(HttpClientTest, ConnectionRefusedIsNetworkError) {
  const int port = closed_port();
  HttpRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/json";
  const HttpResponse response = client_.send(request);
  EXPECT_EQ(response.outcome, Outcome::Network);
  EXPECT_EQ(response.status, 0);
  EXPECT_NE(response.error.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << response.error;
  EXPECT_NE(response.error.find(httplib::to_string(httplib::Error::Connection)),
            std::string::npos)
      << response.error;
}

TEST_F(HttpClientTest, ErrorsNeverShowQueryHeadersOrBody) {
  HttpRequest request;
  request.method = "POST";
  request.url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/p?token=secret";
  request.headers = {{"Authorization", "Bearer secret-header"}};
  request.body = "secret-body";
  HttpResponse response = client_.send(request);
  EXPECT_EQ(response.outcome, Outcome::Network);
  EXPECT_EQ(response.error.find("secret"), std::string::npos) << response.error;

  request.url = "http://127.0.0.1/has space?token=secret";
  response = client_.send(request);
  EXPECT_EQ(response.outcome, Outcome::InvalidRequest);
  EXPECT_EQ(response.error.find("secret"), std::string::npos) << response.error;

  request.url = url("/echo");
  request.headers = {{"X-Injected", "secret\r\nX-Evil: 1"}};
  response = client_.send(request);
  EXPECT_EQ(response.outcome, Outcome::InvalidRequest);
  EXPECT_EQ(response.error.find("secret"), std::string::npos) << response.error;
}

TEST_F(HttpClientTest, InvalidRequestsAreRejectedBeforeConnecting) {
  const std::string port = std::to_string(server_->port());
  for (const std::string& bad_url : std::vector<std::string>{
       "", "/relative", "127.0.0.1/json", "ftp://127.0.0.1/", "http://", "http:///path",
        "http://:80/", "http://host:99999/", "http://host:12ab/", "http://[::1/",
        "http://[not-v6]/", "http://::1/", "http://user:pw@127.0.0.1/", "http://ho st/",
        "http://127.0.0.1:" + port + "/a\nb"}) {
    HttpRequest request;
    request.url = bad_url;
    const HttpResponse response = client_.send(request);
    EXPECT_EQ(response.outcome, Outcome::InvalidRequest) << "'" << bad_url << "'";
    EXPECT_FALSE(response.error.empty()) << "'" << bad_url << "'";
  }
  for (const char* bad_method : {"TRACE", "CONNECT", "OPTIONS", "", "GET /x"}) {
    HttpRequest request;
    request.method = bad_method;
    request.url = url("/json");
    const HttpResponse response = client_.send(request);
    EXPECT_EQ(response.outcome, Outcome::InvalidRequest) << bad_method;
  }
  HttpRequest request;
  request.url = url("/json");
  request.headers = {{"Bad Name", "x"}};
  EXPECT_EQ(client_.send(request).outcome, Outcome::InvalidRequest);
  request.headers = {};
  request.timeout = 0ms;
  EXPECT_EQ(client_.send(request).outcome, Outcome::InvalidRequest);
}

TEST_F(HttpClientTest, ConcurrentRequestsShareOneClient) {
  constexpr int kThreads = 4;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      HttpRequest request;
      request.url = i % 2 == 0 ? url("/json") : url("/slow");
      request.timeout = i % 2 == 0 ? 5000ms : 150ms;
      const HttpResponse response = client_.send(request);
      if (response.outcome == (i % 2 == 0 ? Outcome::Ok : Outcome::Timeout)) ++ok;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), kThreads);
}

TEST(HttpClientIpv6Test, BracketedLiteral) {
  auto server = std::make_unique<httplib::Server>();
  server->Get("/json", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.get_header_value("Host"), "text/plain");
  });
  TestServer running(std::move(server));
  if (!running.start("::1")) GTEST_SKIP() << "no IPv6 loopback here";
  HttpClient client;
  HttpRequest request;
  request.url = "http://[::1]:" + std::to_string(running.port()) + "/json";
  const HttpResponse response = client.send(request);
  ASSERT_EQ(response.outcome, Outcome::Ok) << response.error;
  EXPECT_EQ(response.body, "[::1]:" + std::to_string(running.port()));
}

TEST_F(HttpClientTest, HttpsToPlainHttpServerFailsTheHandshake) {
  HttpRequest request;
  request.url = "https://127.0.0.1:" + std::to_string(server_->port()) + "/json";
  const HttpResponse response = client_.send(request);
  EXPECT_EQ(response.outcome, Outcome::Network);
  EXPECT_NE(response.error.find(httplib::to_string(httplib::Error::SSLConnection)),
            std::string::npos)
      << response.error;
}

// ---- TLS: certificates are verified -------------------------------------------------------

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// A self-signed certificate for 127.0.0.1: valid except that nobody trusts its issuer.
std::pair<std::unique_ptr<X509, X509Free>, std::unique_ptr<EVP_PKEY, PkeyFree>> self_signed() {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (!key || !cert) return {};
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return {};
  return {std::move(cert), std::move(key)};
}

TEST(HttpClientTlsTest, UntrustedCertificateIsRejected) {
  auto [cert, key] = self_signed();
  ASSERT_TRUE(cert && key);
  auto server = std::make_unique<httplib::SSLServer>(cert.get(), key.get());
  ASSERT_TRUE(server->is_valid());
  server->Get("/json", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{}", "application/json");
  });
  TestServer running(std::move(server));
  ASSERT_TRUE(running.start("127.0.0.1"));

  HttpClient client;
  HttpRequest request;
  request.url = "https://127.0.0.1:" + std::to_string(running.port()) + "/json";
  const HttpResponse response = client.send(request);
  EXPECT_EQ(response.outcome, Outcome::Network);
  EXPECT_NE(response.error.find(httplib::to_string(httplib::Error::SSLServerVerification)),
            std::string::npos)
      << response.error;
  EXPECT_NE(response.error.find("self-signed"), std::string::npos) << response.error;
}


// A streamed body without Content-Length or chunking ends at EOF, so the socket shutdown
// that enforces a deadline looks like a normal end to cpp-httplib: it must still be
// reported as a timeout (and a cancel as a cancel), or a plugin takes a cut-off stream for
// a whole one.
TEST(HttpClientRawTest, DeadlineOnAnEofDelimitedStreamIsATimeout) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  std::atomic<bool> done{false};
  std::thread server([&] {
    for (int i = 0; i < 2; ++i) {
      const int conn = ::accept(listener, nullptr, nullptr);
      if (conn < 0) return;
      char buf[4096];
      [[maybe_unused]] ssize_t n = ::recv(conn, buf, sizeof buf, 0);
      const std::string head = "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: one\n\n";
      [[maybe_unused]] ssize_t w = ::send(conn, head.data(), head.size(), MSG_NOSIGNAL);
      while (!done) std::this_thread::sleep_for(5ms);  // keep the stream open
      ::close(conn);
    }
  });
  HttpClient client;
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/logs";
  req.timeout = 300ms;
  std::string got;
  req.on_body = [&](const char* data, size_t n) {
    got.append(data, n);
    return true;
  };
  HttpResponse r = client.send(req);
  EXPECT_EQ(r.outcome, Outcome::Timeout) << r.error;
  EXPECT_EQ(got, "data: one\n\n");

  std::atomic<bool> cancel{false};
  req.timeout = 10s;
  req.cancelled = [&] { return cancel.load(); };
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    cancel = true;
  });
  r = client.send(req);
  canceller.join();
  EXPECT_EQ(r.outcome, Outcome::Cancelled) << r.error;
  done = true;
  server.join();
  ::close(listener);
}

}  // namespace
}  // namespace mcph::services
