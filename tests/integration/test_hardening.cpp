// Hardening: what a hostile client, a hostile input or a misbehaving plugin must never do to
// the host (crash it, stall it, exhaust it, leak a secret). Each test is the regression test
// of one numbered item of the hardening issue, against the real binary over stdio and HTTP.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <tuple>

#include "http_host.hpp"
#include "rpc.hpp"
#include "stdio_host.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string nested(int depth, const std::string& inner = "1") { return std::string(depth, '[') + inner + std::string(depth, ']'); }

const char* kTwoInstances = R"(  - name: echo
    library: example-echo
  - name: bad
    library: test-hostile
    credentials: { api_token: "12345", org_id: "777777" }
)";

// The two instances most hardening tests run.
class StdioHost : public mcph::testing::StdioHost {
 public:
  explicit StdioHost(const std::string& plugins = kTwoInstances, const std::string& server = "")
      : mcph::testing::StdioHost(plugins, server) {}
};

// ---- 1. Nesting is bounded while parsing --------------------------------------------------

TEST(Hardening, DeepNestingOverStdioIsAnErrorNotACrash) {
  StdioHost host;
  // params nesting 60k deep, a 100k-deep top-level array, a cancel whose requestId nests 65k.
  host.p().write_raw(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":)" + nested(60000) + "}}\n");
  json r = host.p().read();
  EXPECT_EQ(r["error"]["code"], -32600) << r;
  EXPECT_NE(r["error"]["message"].get<std::string>().find("levels deep"), std::string::npos);
  host.p().write_raw(nested(100000) + "\n");
  EXPECT_EQ(host.p().read()["error"]["code"], -32600);
  host.p().write_raw(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":)" + nested(65000) + "}}\n");
  EXPECT_EQ(host.p().read()["error"]["code"], -32600);
  // Nesting that real messages use still works.
  host.p().send(call(2, "echo", {{"text", "ok"}, {"extra", json::parse(nested(40))}}));
  EXPECT_TRUE(host.p().read_response(2).contains("result"));
  host.expect_alive();
}

TEST(Hardening, DeepNestingOverHttpIsA400) {
  HttpHost host(kTwoInstances);
  auto c = host.client();
  auto r = c->Post("/mcp", R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":)" + nested(60000) + "}}",
                   "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(body_json(r)["error"]["code"], -32600);
  auto h = c->Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}

TEST(Hardening, APluginsOverDeepResultIsRefusedAtTheSource) {
  StdioHost host;
  host.p().send(call(1, "deep", {{"depth", 50000}}));
  json r = host.p().read_response(1);
  EXPECT_EQ(r["result"]["isError"], true) << r;
  EXPECT_NE(text_of(r).find("refused"), std::string::npos) << r;
  host.expect_alive();
}

// ---- 2. Redaction keeps JSON intact -------------------------------------------------------

TEST(Hardening, RedactionWalksTheValueAndNeverTouchesNumbers) {
  StdioHost host;  // api_token "12345" (secret), org_id "777777" (declared public)
  host.p().send(call(1, "mirror", {{"value", {{"sum", 12345}, {"text", "total 12345 in all"}, {"org", 777777}}}}));
  json r = host.p().read_response(1);
  ASSERT_TRUE(r.contains("result")) << r;
  const json& s = r["result"]["structuredContent"];
  EXPECT_EQ(s["value"]["sum"], 12345);              // a number stays that number
  EXPECT_EQ(s["value"]["text"], "total [REDACTED] in all");
  EXPECT_EQ(s["value"]["org"], 777777);
  EXPECT_EQ(s["sentence"], "token [REDACTED] for org 777777");  // org_id is not a secret
  EXPECT_TRUE(s.contains("key-[REDACTED]")) << s;    // keys too
  EXPECT_EQ(text_of(r), "mirrored; the token is [REDACTED]");
  EXPECT_EQ(r.dump().find("12345\""), std::string::npos);
  host.expect_alive();
}

TEST(Hardening, SecretsWithQuotesAndBackslashesAreRedacted) {
  StdioHost host(R"(  - name: echo
    library: example-echo
  - name: bad
    library: test-hostile
    credentials: { api_token: 'ab"c\d-tok' }
)");
  host.p().send(call(1, "mirror", {{"value", "x"}}));
  json r = host.p().read_response(1);
  ASSERT_TRUE(r.contains("result")) << r;
  EXPECT_EQ(r["result"]["structuredContent"]["sentence"], "token [REDACTED] for org ");
  EXPECT_EQ(text_of(r), "mirrored; the token is [REDACTED]");
  EXPECT_EQ(r.dump().find("ab\\\"c"), std::string::npos) << r;
}

// ---- 3. Exceptions on the request path are JSON-RPC errors -----------------------------

TEST(Hardening, WrongTypesAreErrorsWithoutInternalText) {
  HttpHost host(kTwoInstances);
  auto c = host.client();
  httplib::Headers modern{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "5"}};
  for (const std::string body : {R"({"jsonrpc":"2.0","id":1,"method":5})", R"({"method":5})",
                                 R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]})",
                                 R"({"jsonrpc":"2.0","id":{"a":1},"method":"ping"})"}) {
    for (const auto& headers : {httplib::Headers{}, modern}) {
      auto r = c->Post("/mcp", headers, body, "application/json");
      ASSERT_TRUE(r) << body;
      EXPECT_EQ(r->status, 400) << body << " -> " << r->body;
      EXPECT_FALSE(r->has_header("EXCEPTION_WHAT")) << body;
      const int code = body_json(r)["error"].value("code", 0);
      EXPECT_TRUE(code == -32600 || code == -32602 || code == -32020) << body << " -> " << r->body;
    }
  }
  StdioHost stdio;
  stdio.p().write_raw(R"({"jsonrpc":"2.0","id":1,"method":5})" "\n");
  EXPECT_EQ(stdio.p().read()["error"]["code"], -32600);
  stdio.expect_alive();
}

// ---- 4, 5. Slow clients and oversized requests -----------------------------------------

// A raw TCP client, for requests no HTTP library would send.
class Raw {
 public:
  explicit Raw(int port, const char* from = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (from != nullptr) {  // another loopback address: another client
      sockaddr_in src{};
      src.sin_family = AF_INET;
      inet_pton(AF_INET, from, &src.sin_addr);
      ::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Raw() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool send(const std::string& data) { return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()); }
  // What arrives until the peer closes or `timeout` passes.
  std::string read_all(std::chrono::milliseconds timeout) {
    std::string out;
    const auto until = Clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return out;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

const std::string kPing = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}})";
httplib::Headers ping_headers() { return {{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}}; }

TEST(Hardening, SlowClientsDoNotDenyService) {
  HttpHost host(kTwoInstances, "    header_timeout_ms: 1500\n    body_timeout_ms: 1500\n");
  std::vector<std::unique_ptr<Raw>> slow;
  for (int i = 0; i < 70; ++i) {
    auto r = std::make_unique<Raw>(host.port());
    ASSERT_TRUE(r->connected());
    switch (i % 3) {  // a dribbled head, a dribbled body, a chunked body that never ends
      case 0: r->send("POST /mcp HTTP/1.1\r\nHost: localhost\r\n"); break;
      case 1: r->send("POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{"); break;
      default: r->send("POST /mcp HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n"); break;
    }
    slow.push_back(std::move(r));
  }
  for (auto& r : slow) r->send("x");  // a byte keeps each one "active"
  const auto t0 = Clock::now();
  auto c = host.client();
  auto r = c->Post("/mcp", ping_headers(), kPing, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_LT(seconds_since(t0), 2.0);
  // The dribblers get 408 once their time is up, and their connections close.
  const std::string answer = slow[0]->read_all(5s);
  EXPECT_NE(answer.find("408"), std::string::npos) << answer;
  EXPECT_NE(slow[1]->read_all(5s).find("408"), std::string::npos);
}

TEST(Hardening, ChunkedBodiesAndHeadersAreBoundedWhileRead) {
  HttpHost host(kTwoInstances, "    max_body_bytes: 65536\n");
  const long before = rss_kib(host.process().pid());
  {  // 64 MiB in chunks, far over max_body_bytes: refused once the limit is passed
    Raw r(host.port());
    r.send("POST /mcp HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string chunk = "10000\r\n" + std::string(0x10000, 'a') + "\r\n";
    bool refused = false;
    for (int i = 0; i < 1024 && !refused; ++i) refused = !r.send(chunk);
    EXPECT_NE(r.read_all(3s).find("413"), std::string::npos);
  }
  {  // a million headers: 431 long before the end
    Raw r(host.port());
    r.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n");
    std::string headers;
    for (int i = 0; i < 2000; ++i) headers += "X-H" + std::to_string(i) + ": v\r\n";
    for (int i = 0; i < 500 && r.send(headers); ++i) {
    }
    EXPECT_NE(r.read_all(3s).find("431"), std::string::npos);
  }
  const long after = rss_kib(host.process().pid());
  EXPECT_LT(after - before, 20 * 1024) << before << " -> " << after << " KiB";
  auto c = host.client();
  auto ok = c->Post("/mcp", ping_headers(), kPing, "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// A POST to the MCP endpoint in plain HTTP/1.1 is served without cpp-httplib's parser
// (Listener::route_directly); any other form of the same request goes through cpp-httplib.
// Every form gets the same answer, pipelined requests each get theirs, and "Connection:
// close" closes. (Bare LF line ends pass the framer and get cpp-httplib's 400, as before.)
TEST(Hardening, EveryFormOfAnMcpPostGetsTheSameAnswer) {
  HttpHost host(kTwoInstances);
  const std::string head = "POST /mcp HTTP/1.1\r\nHost: localhost\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n"
                           "Mcp-Name: echo\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n";
  const std::string length = "Content-Length: " + std::to_string(kPing.size()) + "\r\n";
  char chunk_size[16];
  std::snprintf(chunk_size, sizeof chunk_size, "%zx", kPing.size());
  const std::vector<std::pair<std::string, std::string>> forms = {
      {"plain", head + length + "\r\n" + kPing},
      {"lower-case names", "POST /mcp HTTP/1.1\r\nhost: localhost\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\n"
                           "mcp-name: echo\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\n"
                           "content-length: " + std::to_string(kPing.size()) + "\r\n\r\n" + kPing},
      {"chunked", head + "Transfer-Encoding: chunked\r\n\r\n" + chunk_size + "\r\n" + kPing + "\r\n0\r\n\r\n"},
      {"Expect: 100-continue", head + length + "Expect: 100-continue\r\n\r\n" + kPing},
  };
  // The text of the one answer a response carries.
  auto text_of = [](std::string_view response) {
    const size_t body = response.find("\r\n\r\n");
    if (!response.starts_with("HTTP/1.1 200 ") || body == std::string_view::npos) return std::string("not a 200: ") + std::string(response);
    const json answer = json::parse(response.substr(body + 4), nullptr, false);
    return answer.is_object() ? answer["result"]["content"][0].value("text", "") : "not JSON";
  };
  for (const auto& [what, request] : forms) {
    Raw r(host.port());
    ASSERT_TRUE(r.send(request + head + length + "Connection: close\r\n\r\n" + kPing)) << what;  // and a second, pipelined
    const auto t0 = Clock::now();
    std::string out = r.read_all(5s);
    EXPECT_LT(seconds_since(t0), 4.0) << what << ": the connection stayed open after Connection: close";
    if (out.starts_with("HTTP/1.1 100 Continue\r\n\r\n")) out.erase(0, std::strlen("HTTP/1.1 100 Continue\r\n\r\n"));
    const size_t second = out.find("HTTP/1.1 ", 1);
    ASSERT_NE(second, std::string::npos) << what << ":\n" << out;
    EXPECT_EQ(text_of(std::string_view(out).substr(0, second)), "hi") << what << ":\n" << out;
    EXPECT_EQ(text_of(std::string_view(out).substr(second)), "hi") << what << ":\n" << out;
    EXPECT_NE(out.find("Connection: close", second), std::string::npos) << what;
  }
}

TEST(Hardening, OverflowIsAnsweredWithoutReadingTheRequest) {
  HttpHost host(kTwoInstances, "    worker_threads: 2\n", "  max_concurrent_calls: 8\n");
  // Both workers busy with slow calls...
  std::vector<std::thread> busy;
  for (int i = 0; i < 2; ++i) {
    busy.emplace_back([&] {
      auto c = host.client();
      std::string body = kPing;
      body.replace(body.find("\"echo\""), 6, "\"slow\"");
      body.replace(body.find("{\"text\":\"hi\"}"), 13, "{\"ms\":1500}");
      auto h = ping_headers();
      h.erase("Mcp-Name");
      h.emplace("Mcp-Name", "slow");
      c->Post("/mcp", h, body, "application/json");
    });
  }
  std::this_thread::sleep_for(300ms);
  // ...dribbling clients wait without holding anything, and a whole request is refused at once.
  std::vector<std::unique_ptr<Raw>> slow;
  for (int i = 0; i < 10; ++i) {
    slow.push_back(std::make_unique<Raw>(host.port()));
    slow.back()->send("POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n");
  }
  const auto t0 = Clock::now();
  auto r = host.client()->Post("/mcp", ping_headers(), kPing, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_LT(seconds_since(t0), 0.5);
  for (auto& t : busy) t.join();
}

// A burst of connections waits in the kernel's queue for the listener to accept it: the
// queue is SOMAXCONN long, not cpp-httplib's 5 (past which a client's SYN is dropped and it
// retries after 1 s). `ss` shows a listening socket's backlog as its Send-Q.
TEST(Hardening, TheListenQueueTakesABurstOfConnections) {
  HttpHost host(kTwoInstances);
  std::string out;
  FILE* ss = ::popen(("ss -ltnH 'sport = :" + std::to_string(host.port()) + "'").c_str(), "r");
  ASSERT_NE(ss, nullptr);
  char chunk[512];
  while (size_t n = std::fread(chunk, 1, sizeof chunk, ss)) out.append(chunk, n);
  ASSERT_EQ(::pclose(ss), 0) << "ss (iproute2) failed: " << out;
  std::istringstream line(out);
  std::string state;
  long queued = -1, backlog = -1;
  line >> state >> queued >> backlog;
  EXPECT_EQ(state, "LISTEN") << out;
  EXPECT_GE(backlog, 128) << out;
}

// ---- 6. Fairness, bounded queues, deadlines that hold ----------------------------------

TEST(Hardening, ASlowFloodOnOneInstanceLeavesTheOthersFast) {
  StdioHost host(kTwoInstances, "  max_concurrent_calls: 4\n");
  for (int i = 0; i < 200; ++i) host.p().send(call("slow-" + std::to_string(i), "slow", {{"ms", 3000}}));
  const auto t0 = Clock::now();
  host.p().send(call("e", "echo", {{"text", "hi"}}));
  json r = host.p().read_response("e");
  EXPECT_EQ(text_of(r), "hi");
  EXPECT_LT(seconds_since(t0), 1.0);  // one instance may use 3 of the 4 threads, never the 4th
}

TEST(Hardening, BeyondItsQueueACallIsRefusedAtOnce) {
  StdioHost host(kTwoInstances, "  max_concurrent_calls: 2\n  max_queued_calls: 5\n");
  for (int i = 0; i < 20; ++i) host.p().send(call(i, "slow", {{"ms", 1000}}));
  // Two run (the instance's cap: 3/4 of 2, rounded up) and five wait; the other thirteen
  // are refused at once, before any of the slow ones could have finished.
  std::vector<bool> busy;
  for (int i = 0; i < 20; ++i) {
    json r = host.p().read(10s);
    ASSERT_FALSE(r.is_null()) << "answer " << i << " missing";
    busy.push_back(r["result"].value("isError", false) && text_of(r).find("busy") != std::string::npos);
  }
  EXPECT_EQ(std::count(busy.begin(), busy.end(), true), 13);
  EXPECT_EQ(std::count(busy.begin(), busy.begin() + 13, true), 13);
}

TEST(Hardening, AStuckHandlerIsAnsweredAtTheDeadlineAndEofStillExits) {
  StdioHost host(kTwoInstances, "  call_timeout_ms: 400\n  shutdown_grace_ms: 200\n");
  const auto t0 = Clock::now();
  host.p().send(call(1, "stall", {{"ms", 60000}}));
  json r = host.p().read_response(1);
  EXPECT_EQ(r["result"]["isError"], true) << r;
  EXPECT_NE(text_of(r).find("did not finish within 400 ms"), std::string::npos) << r;
  EXPECT_LT(seconds_since(t0), 1.5);
  host.expect_alive();
  // The id may be used again once answered.
  host.p().send(call(1, "echo", {{"text", "again"}}));
  EXPECT_EQ(text_of(host.p().read_response(1)), "again");
  host.p().close_stdin();
  const auto t1 = Clock::now();
  EXPECT_EQ(host.p().wait(10s), 0);
  EXPECT_LT(seconds_since(t1), 5.0);
  // In the host the handler is left behind; in a child process (MCP_HOST_ISOLATION=process)
  // the child is ended and restarted once the handler ignores its cancellation.
  const char* mode = std::getenv("MCP_HOST_ISOLATION");
  const bool isolated = mode != nullptr && std::string_view(mode) == "process";
  EXPECT_NE(host.p().stderr_text().find(isolated ? "ignored its cancellation past its deadline" : "ignore cancellation"),
            std::string::npos) << host.p().stderr_text();
}

TEST(Hardening, EightStuckHandlersDoNotBlockOtherCalls) {
  StdioHost host(kTwoInstances, "  max_concurrent_calls: 8\n  call_timeout_ms: 300\n");
  for (int i = 0; i < 8; ++i) host.p().send(call("s" + std::to_string(i), "stall", {{"ms", 8000}}));
  const auto answers = host.p().read_responses(8, 3s);  // each deadline counts from its own call's start
  ASSERT_EQ(answers.size(), 8u) << host.p().stderr_text();
  for (const auto& [id, r] : answers) ASSERT_EQ(r["result"]["isError"], true) << r;
  const auto t0 = Clock::now();
  host.expect_alive();
  EXPECT_LT(seconds_since(t0), 1.0);
}

// A tool that has been quick runs on the stdio reader itself; when one of its calls then
// hangs, another thread takes over the reading and the call is still answered at its
// deadline, while its handler goes on.
TEST(Hardening, AQuickToolThatHangsOnTheReaderIsAnsweredAtItsDeadline) {
  StdioHost host(kTwoInstances, "  call_timeout_ms: 300\n");
  for (int i = 0; i < 5; ++i) {
    json r = host.ask(call("q" + std::to_string(i), "stall", {{"ms", 0}}));
    ASSERT_EQ(text_of(r), "stalled") << r;
  }
  const auto t0 = Clock::now();
  host.p().send(call("hang", "stall", {{"ms", 8000}}));
  host.p().send(call("alive", "echo", {{"text", "still here"}}));  // while the hang holds the reader's old thread
  auto answers = host.p().read_responses(2, 3s);
  EXPECT_EQ(text_of(answers["alive"]), "still here") << answers["alive"];
  const json r = answers["hang"];
  EXPECT_EQ(r["result"]["isError"], true) << r << host.p().stderr_text();
  EXPECT_NE(text_of(r).find("did not finish within 300 ms"), std::string::npos) << r;
  EXPECT_LT(seconds_since(t0), 2.0);
}

TEST(Hardening, StuckCallsShowInHealthz) {
  HttpHost host(kTwoInstances, "", "  call_timeout_ms: 300\n");
  auto c = host.client();
  json body = req(1, "tools/call", {{"name", "stall"}, {"arguments", {{"ms", 4000}}}, {"_meta", {
      {"io.modelcontextprotocol/protocolVersion", "2026-07-28"}, {"io.modelcontextprotocol/clientCapabilities", json::object()}}}});
  auto r = c->Post("/mcp", {{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "stall"}},
                   body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(body_json(r)["result"]["isError"], true) << r->body;
  json h = body_json(c->Get("/healthz"));
  json bad;
  for (const auto& p : h["plugins"]) {
    if (p["name"] == "bad") bad = p;
  }
  EXPECT_EQ(bad["calls_stuck"], 1) << h;
}

// ---- 7. Config reads and plugin start are bounded; SIGTERM always ends the host ---------

class ConfigBounds : public ::testing::Test {
 protected:
  // check-config's exit code and output, and how long it took.
  std::tuple<int, std::string, double> check(const std::string& plugins) {
    const std::string cfg = dir.str() + "/c.yaml";
    std::ofstream(cfg) << config_yaml(dir.str() + "/state", plugins);
    const auto t0 = Clock::now();
    auto [code, out] = run_command({MCPH_BINARY, "check-config", "--config", cfg});
    return {code, out, seconds_since(t0)};
  }
  TempDir dir;
};

TEST_F(ConfigBounds, FileReferencesTakeOnlyBoundedRegularFiles) {
  auto [code, out, took] = check("  - { name: e, library: example-echo, credentials: { t: \"${file:/dev/zero}\" } }\n");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("not a regular file"), std::string::npos) << out;
  EXPECT_LT(took, 5.0);
  const std::string fifo = dir.str() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::tie(code, out, took) = check("  - { name: e, library: example-echo, credentials: { t: \"${file:" + fifo + "}\" } }\n");
  EXPECT_NE(out.find("not a regular file"), std::string::npos) << out;
  EXPECT_LT(took, 5.0);
  std::ofstream(dir.str() + "/big") << std::string(2 * 1024 * 1024, 'x');
  std::tie(code, out, took) = check("  - { name: e, library: example-echo, credentials: { t: \"${file:" + dir.str() + "/big}\" } }\n");
  EXPECT_NE(out.find("larger than 1048576 bytes"), std::string::npos) << out;
}

TEST_F(ConfigBounds, ClearMessagesForDeepYamlAndNonLibraries) {
  auto [code, out, took] = check("  - { name: e, library: example-echo, settings: { x: " + std::string(5000, '[') + std::string(5000, ']') + " } }\n");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("nests too deep"), std::string::npos) << out;
  std::ofstream(dir.str() + "/text.so") << "not a library\n";
  std::tie(code, out, took) = check("  - { name: e, library: " + dir.str() + "/text.so }\n");
  EXPECT_NE(out.find("no ELF header"), std::string::npos) << out;
}

TEST_F(ConfigBounds, CreateRunsUnderADeadline) {
  auto [code, out, took] = check("  - { name: h, library: test-hang-create, create_timeout_ms: 300 }\n");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("did not finish starting within 300 ms"), std::string::npos) << out;
  EXPECT_LT(took, 5.0);
}

TEST_F(ConfigBounds, SigtermEndsAHostStuckInCreate) {
  const std::string cfg = dir.str() + "/c.yaml";
  std::ofstream(cfg) << config_yaml(dir.str() + "/state", "  - { name: h, library: test-hang-create }\n");
  Process p({MCPH_BINARY, "serve", "--config", cfg});
  std::this_thread::sleep_for(300ms);
  const auto t0 = Clock::now();
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(5s), 128 + SIGTERM);
  EXPECT_LT(seconds_since(t0), 3.0);
}

// ---- 8. The smaller ones -----------------------------------------------------------------

TEST(Hardening, TheStdioLineLimitIsExact) {
  StdioHost host;
  const size_t limit = 16 * 1024 * 1024;
  // One byte over the limit, ending in the read that crosses it.
  host.p().write_raw("\"" + std::string(limit - 1, 'x') + "\"\n");
  json r = host.p().read(20s);
  EXPECT_EQ(r["error"]["code"], -32600) << r.dump().substr(0, 200);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("longer than"), std::string::npos);
  host.expect_alive();
}

TEST(Hardening, AHostHeaderWithUserinfoIsRefused) {
  HttpHost host(kTwoInstances);
  auto c = host.client();
  for (const char* bad : {"localhost:80@evil.example", "localhost/x", "localhost:8o", "[::1]x", "127.0.0.1 evil"}) {
    auto r = c->Get("/healthz", {{"Host", bad}});
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 403) << bad;
  }
  auto ok = c->Get("/healthz", {{"Host", "localhost:8080"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(Hardening, ASessionFloodEvictsOnlyTheFloodersOwnSessions) {
  HttpHost host(kTwoInstances, "    max_sessions: 50\n    max_sessions_per_client: 20\n");
  const std::string init = req(1, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                                  {"clientInfo", {{"name", "t"}, {"version", "1"}}}}).dump();
  auto raw_post = [&](const char* from, const std::string& extra_headers, const std::string& body) {
    Raw r(host.port(), from);
    r.send("POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n" +
           extra_headers + "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    return r.read_all(5s);
  };
  const std::string first = raw_post("127.0.0.2", "", init);
  const size_t at = first.find("Mcp-Session-Id: ");
  ASSERT_NE(at, std::string::npos) << first;
  const std::string sid = first.substr(at + 16, 64);
  auto c = host.client();
  for (int i = 0; i < 200; ++i) {  // one client opens session after session
    auto r = c->Post("/mcp", init, "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << i << " " << r->body;
  }
  const std::string ping = req(2, "ping").dump();
  EXPECT_NE(raw_post("127.0.0.2", "Mcp-Session-Id: " + sid + "\r\nMCP-Protocol-Version: 2025-11-25\r\n", ping).find("200 OK"),
            std::string::npos);
  EXPECT_NE(raw_post("127.0.0.3", "", init).find("Mcp-Session-Id: "), std::string::npos);
  json h = body_json(c->Get("/healthz"));
  EXPECT_LE(h["http"]["sessions"].get<int>(), 22) << h;
}

TEST(Hardening, BatchesAreBoundedAndRunConcurrently) {
  StdioHost host(kTwoInstances);
  // A 2025-03-26 session accepts batches.
  host.p().send(req("v", "initialize", {{"protocolVersion", "2025-03-26"}, {"capabilities", json::object()},
                                        {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  ASSERT_EQ(host.p().read_response("v")["result"]["protocolVersion"], "2025-03-26");
  json big = json::array();
  for (int i = 0; i < 1001; ++i) big.push_back(req(i, "ping"));
  host.p().send(big);
  json r = host.p().read(10s);
  EXPECT_EQ(r["error"]["code"], -32600) << r;
  json batch = json::array();
  for (int i = 0; i < 4; ++i) batch.push_back(call("b" + std::to_string(i), "slow", {{"ms", 600}}));
  const auto t0 = Clock::now();
  host.p().send(batch);
  r = host.p().read(10s);
  ASSERT_TRUE(r.is_array()) << r;
  EXPECT_EQ(r.size(), 4u);
  EXPECT_EQ(r[3]["id"], "b3");  // in the batch's order
  EXPECT_LT(seconds_since(t0), 1.5);  // not one after another (2.4 s)
}

}  // namespace
}  // namespace mcph::testing
