// The real build/mcp-host binary over Streamable HTTP on 127.0.0.1 (port 0): every rule of
// the transport with its status code and JSON-RPC error code.
#include <sys/socket.h>

#include <thread>

#include "http_host.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;

const char* kPlugins = R"(  - name: echo
    library: example-echo
  - name: counter
    library: example-counter
)";

const json kMeta{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                 {"io.modelcontextprotocol/clientCapabilities", json::object()}};
const char* kSse = "application/json, text/event-stream";

json rpc(json id, const std::string& method, json params = json::object()) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
}

json init_request(const std::string& version = "2025-11-25") {
  return rpc(0, "initialize", {{"protocolVersion", version}, {"capabilities", json::object()},
                               {"clientInfo", {{"name", "t"}, {"version", "1"}}}});
}

// Headers a 2026-07-28 client sends for `method` (and `name` for tools/call).
httplib::Headers modern_headers(const std::string& method, const std::string& name = "") {
  httplib::Headers h{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", method}, {"Accept", kSse}};
  if (!name.empty()) h.emplace("Mcp-Name", name);
  return h;
}

json modern(json id, const std::string& method, json params = json::object()) {
  params["_meta"] = kMeta;
  return rpc(id, method, params);
}

class HttpTest : public ::testing::Test {
 protected:
  // Opens a legacy session and returns its id.
  std::string initialize(httplib::Client& c, const std::string& version = "2025-11-25") {
    auto r = c.Post("/mcp", httplib::Headers{{"Accept", kSse}}, init_request(version).dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return "";
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(body_json(r)["result"]["protocolVersion"], version);
    std::string sid = r->get_header_value("Mcp-Session-Id");
    auto note = c.Post("/mcp", session_headers(sid, version),
                       json({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}).dump(), "application/json");
    EXPECT_EQ(note->status, 202);
    return sid;
  }
  static httplib::Headers session_headers(const std::string& sid, const std::string& version = "2025-11-25") {
    return {{"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", version}, {"Accept", kSse}};
  }
};

TEST_F(HttpTest, LegacySessionLifecycle) {
  HttpHost host(kPlugins);
  auto c = host.client();
  std::string sid = initialize(*c);
  ASSERT_EQ(sid.size(), 64u);
  for (char ch : sid) EXPECT_TRUE(ch >= 0x21 && ch <= 0x7e);

  auto r = c->Post("/mcp", session_headers(sid), rpc(1, "tools/list").dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(body_json(r)["result"]["tools"].size(), 3u);

  r = c->Post("/mcp", rpc(2, "tools/list").dump(), "application/json");  // no session id
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(body_json(r)["error"]["code"], -32600);
  r = c->Post("/mcp", session_headers("nope"), rpc(3, "tools/list").dump(), "application/json");
  EXPECT_EQ(r->status, 404);
  r = c->Post("/mcp", session_headers(sid, "2024-01-01"), rpc(4, "tools/list").dump(), "application/json");
  EXPECT_EQ(r->status, 400);  // an unsupported protocol version
  r = c->Post("/mcp", session_headers(sid, "2025-03-26"), rpc(4, "tools/list").dump(), "application/json");
  EXPECT_EQ(r->status, 200);  // supported, though not the session's: served under the session's rules
  // No MCP-Protocol-Version header: taken as 2025-03-26-era client, still served.
  r = c->Post("/mcp", httplib::Headers{{"Mcp-Session-Id", sid}}, rpc(5, "ping").dump(), "application/json");
  EXPECT_EQ(r->status, 200);

  r = c->Delete("/mcp", httplib::Headers{{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r->status, 200);
  r = c->Post("/mcp", session_headers(sid), rpc(6, "tools/list").dump(), "application/json");
  EXPECT_EQ(r->status, 404);
  r = c->Delete("/mcp", httplib::Headers{{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r->status, 404);
}

TEST_F(HttpTest, LegacyGetOpensTheSessionStream) {
  HttpHost host(kPlugins);
  auto c = host.client();
  std::string sid = initialize(*c);
  EXPECT_EQ(c->Get("/mcp")->status, 405);  // no session: nothing to stream
  // Read only the head of the stream, then hang up.
  httplib::Client sc("127.0.0.1", host.port());
  std::string content_type;
  auto r = sc.Get("/mcp", httplib::Headers{{"Mcp-Session-Id", sid}, {"Accept", "text/event-stream"}},
                  [&](const httplib::Response& res) {
                    content_type = res.get_header_value("Content-Type");
                    return false;
                  },
                  [](const char*, size_t) { return true; });
  EXPECT_EQ(content_type, "text/event-stream");
}

TEST_F(HttpTest, Batch20250326) {
  HttpHost host(kPlugins);
  auto c = host.client();
  std::string sid = initialize(*c, "2025-03-26");
  json batch = json::array({rpc(1, "ping"), rpc(2, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "b"}}}})});
  auto r = c->Post("/mcp", session_headers(sid, "2025-03-26"), batch.dump(), "application/json");
  ASSERT_TRUE(r);
  json body = body_json(r);
  ASSERT_TRUE(body.is_array()) << r->body;
  EXPECT_EQ(body[1]["result"]["content"][0]["text"], "b");
}

TEST_F(HttpTest, ModernStatelessRequests) {
  HttpHost host(kPlugins);
  auto c = host.client();
  auto r = c->Post("/mcp", modern_headers("server/discover"), modern(1, "server/discover").dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->get_header_value("Mcp-Session-Id").empty());  // never minted in 2026-07-28
  EXPECT_EQ(body_json(r)["result"]["supportedVersions"][0], "2026-07-28");

  r = c->Post("/mcp", modern_headers("tools/call", "echo"),
              modern(2, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "hi"}}}}).dump(), "application/json");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body_json(r)["result"]["content"][0]["text"], "hi");
  EXPECT_EQ(body_json(r)["result"]["resultType"], "complete");

  // Non-ASCII names travel base64-encoded; "echo" as =?base64?ZWNobw==?= must match too.
  r = c->Post("/mcp", modern_headers("tools/call", "=?base64?ZWNobw==?="),
              modern(3, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "b64"}}}}).dump(), "application/json");
  EXPECT_EQ(r->status, 200) << r->body;

  // A notification: 202, and Mcp-Method may be missing (Claude Code's cancel omits it).
  json note{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 9}, {"_meta", kMeta}}}};
  r = c->Post("/mcp", httplib::Headers{{"MCP-Protocol-Version", "2026-07-28"}}, note.dump(), "application/json");
  EXPECT_EQ(r->status, 202);
}

TEST_F(HttpTest, ModernHeaderRules) {
  HttpHost host(kPlugins);
  auto c = host.client();
  auto expect = [&](const httplib::Headers& h, const json& body, int status, int code) {
    auto r = c->Post("/mcp", h, body.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(body_json(r)["error"]["code"], code) << r->body;
    if (body.contains("id")) {
      EXPECT_EQ(body_json(r)["id"], body["id"]);
    }
  };
  json call = modern(1, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "x"}}}});
  expect({{"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}}, call, 400, -32020);  // no version header
  expect({{"MCP-Protocol-Version", "2025-11-25"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}}, call, 400, -32020);
  expect({{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Name", "echo"}}, call, 400, -32020);  // no Mcp-Method
  expect(modern_headers("tools/list", "echo"), call, 400, -32020);                           // wrong Mcp-Method
  expect(modern_headers("tools/call"), call, 400, -32020);                                    // no Mcp-Name
  expect(modern_headers("tools/call", "add"), call, 400, -32020);                             // wrong Mcp-Name
  // Header names are case-insensitive and values are trimmed.
  auto r = c->Post("/mcp", httplib::Headers{{"mcp-protocol-version", " 2026-07-28 "}, {"MCP-METHOD", "tools/call"},
                                            {"mcp-name", "echo "}},
                   call.dump(), "application/json");
  EXPECT_EQ(r->status, 200) << r->body;

  json bad_version = call;
  bad_version["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "2099-01-01";
  expect({{"MCP-Protocol-Version", "2099-01-01"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}}, bad_version, 400, -32022);
  json no_caps = call;
  no_caps["params"]["_meta"].erase("io.modelcontextprotocol/clientCapabilities");
  expect(modern_headers("tools/call", "echo"), no_caps, 400, -32602);
  expect(modern_headers("no/such"), modern(2, "no/such"), 404, -32601);
  expect(modern_headers("ping"), modern(3, "ping"), 404, -32601);  // removed in 2026-07-28
  // Ordinary errors stay HTTP 200.
  auto unknown = c->Post("/mcp", modern_headers("tools/call", "nope"), modern(4, "tools/call", {{"name", "nope"}}).dump(),
                         "application/json");
  EXPECT_EQ(unknown->status, 200);
  EXPECT_EQ(body_json(unknown)["error"]["code"], -32602);
  // GET and DELETE have no meaning without a legacy session.
  EXPECT_EQ(c->Get("/mcp")->status, 405);
  EXPECT_EQ(c->Delete("/mcp")->status, 405);
}

TEST_F(HttpTest, MalformedBodies) {
  HttpHost host(kPlugins);
  auto c = host.client();
  auto r = c->Post("/mcp", "{not json", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(body_json(r)["error"]["code"], -32700);
  r = c->Post("/mcp", "42", "application/json");
  EXPECT_EQ(r->status, 400);
}

TEST_F(HttpTest, ProgressTurnsTheAnswerIntoAnSseStream) {
  HttpHost host(kPlugins);
  auto c = host.client();
  json call = modern(1, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 3}, {"delay_ms", 20}}}});
  call["params"]["_meta"]["progressToken"] = "p";
  auto r = c->Post("/mcp", modern_headers("tools/call", "slow_count"), call.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  EXPECT_EQ(r->get_header_value("X-Accel-Buffering"), "no");
  auto messages = sse_messages(r->body);
  ASSERT_EQ(messages.size(), 4u) << r->body;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(messages[i]["params"]["progress"], i + 1);
  EXPECT_EQ(messages[3]["result"]["structuredContent"]["counted"], 3);

  // A client that takes only JSON gets JSON: the answer without the notifications.
  auto h = modern_headers("tools/call", "slow_count");
  h.erase("Accept");
  h.emplace("Accept", "application/json");
  r = c->Post("/mcp", h, call.dump(), "application/json");
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(body_json(r)["result"]["structuredContent"]["counted"], 3);
}

TEST_F(HttpTest, QuickToolsRunInlineAndStillDeliverTheirNotifications) {
  HttpHost host(std::string(kPlugins) + "  - name: svc\n    library: test-services\n");
  auto c = host.client();
  std::string sid = initialize(*c);
  // The first calls teach the host that `log` is quick; later ones run on the HTTP thread.
  // Either way the log notification (legacy default level: info) comes before the answer.
  for (int i = 1; i <= 6; ++i) {
    auto r = c->Post("/mcp", session_headers(sid),
                     rpc(i, "tools/call", {{"name", "log"}, {"arguments", {{"level", 1}, {"message", "m" + std::to_string(i)}}}}).dump(),
                     "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->get_header_value("Content-Type"), "text/event-stream") << "call " << i;
    auto messages = sse_messages(r->body);
    ASSERT_EQ(messages.size(), 2u) << r->body;
    EXPECT_EQ(messages[0]["method"], "notifications/message");
    EXPECT_EQ(messages[0]["params"]["data"], "m" + std::to_string(i));
    EXPECT_EQ(messages[1]["id"], i);
  }
}

TEST_F(HttpTest, ALongSilentCallMovesToAStream) {
  HttpHost host(kPlugins);
  auto c = host.client();
  // No progress token, so nothing to report; after two seconds the answer still moves to
  // SSE (so keep-alive comments can flow and a vanished client is noticed).
  auto r = c->Post("/mcp", modern_headers("tools/call", "slow_count"),
                   modern(1, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 5}, {"delay_ms", 500}}}}).dump(),
                   "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  auto messages = sse_messages(r->body);
  ASSERT_EQ(messages.size(), 1u) << r->body;
  EXPECT_EQ(messages[0]["result"]["structuredContent"]["counted"], 5);
}

// Polls /healthz until no call is in flight; returns how long that took.
// The calls the plugins are running now (/healthz).
int calls_in_flight(httplib::Client& c) {
  const json h = body_json(c.Get("/healthz"));
  int busy = 0;
  for (const auto& p : h["plugins"]) busy += p["calls_in_flight"].get<int>();
  return busy;
}

std::chrono::milliseconds wait_for_idle(httplib::Client& c) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    if (calls_in_flight(c) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
}

TEST_F(HttpTest, ClosingTheModernStreamCancelsTheCall) {
  HttpHost host(kPlugins);
  json call = modern(1, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 10000}, {"delay_ms", 10}}}});
  call["params"]["_meta"]["progressToken"] = 1;
  httplib::Client sc("127.0.0.1", host.port());
  int events = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = "/mcp";
  req.headers = modern_headers("tools/call", "slow_count");
  req.body = call.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    events += static_cast<int>(sse_messages(std::string(data, len)).size());
    return events < 3;  // hang up after a few progress events
  };
  sc.send(req);
  EXPECT_GE(events, 3);
  auto c = host.client();
  json h = body_json(c->Get("/healthz"));
  EXPECT_LT(wait_for_idle(*c), std::chrono::milliseconds(2000));  // the plugin saw the cancellation
  EXPECT_NE(host.process().stderr_text().find("POST /mcp 200 mcp=tools/call tool=slow_count"), std::string::npos);
}

TEST_F(HttpTest, ASlowCallDoesNotBlockOthers) {
  HttpHost host(kPlugins);
  std::thread slow([&] {
    auto c = host.client();
    c->Post("/mcp", modern_headers("tools/call", "slow_count"),
            modern(1, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 50}, {"delay_ms", 20}}}}).dump(),
            "application/json");
  });
  auto c = host.client();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c->Post("/mcp", modern_headers("tools/call", "echo"),
                   modern(2, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "quick"}}}}).dump(), "application/json");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(300));
  EXPECT_EQ(body_json(r)["result"]["content"][0]["text"], "quick");
  slow.join();
}

TEST_F(HttpTest, HostAndOriginValidation) {
  HttpHost host(kPlugins, "    allowed_origins: [\"https://app.example.com\"]\n    allowed_hosts: [mcp.internal]\n");
  auto c = host.client();
  auto post = [&](httplib::Headers h) {
    return c->Post("/mcp", h, modern(1, "server/discover").dump(), "application/json")->status;
  };
  auto h = modern_headers("server/discover");
  EXPECT_EQ(post(h), 200);
  auto with = [&](const char* k, const char* v) {
    auto x = h;
    x.erase(k);
    x.emplace(k, v);
    return x;
  };
  EXPECT_EQ(post(with("Host", "evil.example:80")), 403);
  EXPECT_EQ(post(with("Host", "localhost:1234")), 200);
  EXPECT_EQ(post(with("Host", "[::1]:8080")), 200);
  EXPECT_EQ(post(with("Host", "mcp.internal")), 200);
  EXPECT_EQ(post(with("Origin", "http://evil.example")), 403);
  EXPECT_EQ(post(with("Origin", "http://localhost:6274")), 200);
  EXPECT_EQ(post(with("Origin", "https://app.example.com")), 200);
  EXPECT_EQ(post(with("Origin", "https://app.example.com.evil.io")), 403);
  EXPECT_EQ(c->Get("/healthz", httplib::Headers{{"Host", "evil.example"}})->status, 403);
  // A load balancer's readiness check may name the replica's own address, or no host at all.
  EXPECT_EQ(c->Get("/readyz", httplib::Headers{{"Host", "10.0.0.7:8080"}})->status, 200);
}

TEST_F(HttpTest, BearerTokens) {
  HttpHost host(kPlugins, "    auth: { bearer_tokens: [\"${MCPH_TEST_BEARER}\"] }\n", "",
                {"MCPH_TEST_BEARER=s3cret-bearer-token"});
  auto c = host.client();
  auto h = modern_headers("server/discover");
  auto r = c->Post("/mcp", h, modern(1, "server/discover").dump(), "application/json");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->get_header_value("WWW-Authenticate").rfind("Bearer", 0), 0u);
  h.emplace("Authorization", "Bearer wrong");
  r = c->Post("/mcp", h, modern(1, "server/discover").dump(), "application/json");
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->get_header_value("WWW-Authenticate").find("invalid_token"), std::string::npos);
  h.erase("Authorization");
  h.emplace("Authorization", "Bearer s3cret-bearer-token");
  r = c->Post("/mcp", h, modern(1, "server/discover").dump(), "application/json");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(c->Get("/healthz")->status, 200);  // health needs no token
  EXPECT_EQ(host.process().stderr_text().find("s3cret"), std::string::npos);  // never logged
}

TEST_F(HttpTest, BodyLimit) {
  HttpHost host(kPlugins, "    max_body_bytes: 2048\n");
  auto c = host.client();
  json big = modern(1, "tools/call", {{"name", "echo"}, {"arguments", {{"text", std::string(4096, 'x')}}}});
  auto r = c->Post("/mcp", modern_headers("tools/call", "echo"), big.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST_F(HttpTest, FullWorkerPoolAnswers503) {
  HttpHost host(kPlugins, "    worker_threads: 2\n");
  // Two connections each hold a worker with a slow call...
  std::vector<std::thread> busy;
  for (int i = 0; i < 2; ++i) {
    busy.emplace_back([&, i] {
      auto c = host.client();
      c->Post("/mcp", modern_headers("tools/call", "slow_count"),
              modern(i, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 30}, {"delay_ms", 20}}}}).dump(),
              "application/json");
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  // ...so a third is turned away at once instead of hanging.
  const auto t0 = std::chrono::steady_clock::now();
  auto r = host.client()->Post("/mcp", modern_headers("server/discover"), modern(9, "server/discover").dump(),
                               "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  for (auto& t : busy) t.join();
}

TEST_F(HttpTest, StreamCapAnswers503) {
  HttpHost host(kPlugins, "    max_streams: 1\n");
  auto c = host.client();
  std::string sid = initialize(*c);
  // The first GET stream takes the only slot and stays open...
  std::atomic<bool> opened{false};
  std::thread holder([&] {
    httplib::Client sc("127.0.0.1", host.port());
    sc.set_read_timeout(1, 0);
    sc.Get("/mcp", httplib::Headers{{"Mcp-Session-Id", sid}, {"Accept", "text/event-stream"}},
           [&](const httplib::Response&) { opened = true; return true; }, [](const char*, size_t) { return true; });
  });
  const auto t0 = std::chrono::steady_clock::now();
  while (!opened && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(opened);
  // ...so a second one is refused at once.
  auto r = c->Get("/mcp", httplib::Headers{{"Mcp-Session-Id", sid}, {"Accept", "text/event-stream"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  // Deleting the session ends its stream.
  EXPECT_EQ(c->Delete("/mcp", httplib::Headers{{"Mcp-Session-Id", sid}})->status, 200);
  holder.join();
}

TEST_F(HttpTest, ServesHttpsWithConfiguredCertificate) {
  TempDir certs;
  const std::string key = certs.str() + "/key.pem", cert = certs.str() + "/cert.pem";
  auto [code, out] = run_command({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                                  "-out", cert, "-subj", "/CN=localhost", "-days", "1"});
  ASSERT_EQ(code, 0) << out;
  HttpHost host(kPlugins, "    tls: { cert: " + cert + ", key: " + key + " }\n");
  ASSERT_NE(host.port(), 0);
  httplib::SSLClient c("127.0.0.1", host.port());
  c.enable_server_certificate_verification(false);  // self-signed, for this test only
  auto r = c.Post("/mcp", modern_headers("server/discover"), modern(1, "server/discover").dump(), "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body_json(r)["result"]["resultType"], "complete");
}

TEST_F(HttpTest, CommandEnvelopeMapsCommandsToTools) {
  HttpHost host(kPlugins,
                "    command_endpoints: [{ path: /cmd, tool_prefix: \"\" }]\n"
                "    auth: { bearer_tokens: [tok-123456] }\n");
  auto c = host.client();
  httplib::Headers auth{{"Authorization", "Bearer tok-123456"}};
  auto r = c->Post("/cmd", auth, R"({"command":"add","args":{"a":1,"b":2}})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body_json(r), json({{"sum", 3}}));  // the tool's structured result
  r = c->Post("/cmd", auth, R"({"command":"echo","args":{"text":"hi"}})", "application/json");
  EXPECT_EQ(body_json(r), json({{"status", "success"}, {"result", "hi"}}));
  r = c->Post("/cmd", auth, R"({"command":"nope","args":{}})", "application/json");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body_json(r)["error"], "Unknown command");
  r = c->Post("/cmd", auth, R"({"command":"add","args":{"a":"x","b":2}})", "application/json");
  EXPECT_EQ(body_json(r)["status"], "error");
  EXPECT_NE(body_json(r)["error"].get<std::string>().find("/a"), std::string::npos) << r->body;
  r = c->Post("/cmd", auth, "{oops", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(body_json(r)["error"], "Invalid JSON");
  // Same auth and Origin rules as /mcp.
  EXPECT_EQ(c->Post("/cmd", R"({"command":"add","args":{"a":1,"b":2}})", "application/json")->status, 401);
  httplib::Headers evil{{"Authorization", "Bearer tok-123456"}, {"Origin", "http://evil.example"}};
  EXPECT_EQ(c->Post("/cmd", evil, R"({"command":"add","args":{"a":1,"b":2}})", "application/json")->status, 403);
}

TEST_F(HttpTest, IdleSessionsExpireAndReinitializeWorks) {
  HttpHost host(kPlugins, "    session_idle_timeout_ms: 1000\n");
  auto c = host.client();
  std::string sid = initialize(*c);
  // Watch the session count on /healthz (touching the session would keep it alive).
  const auto t0 = std::chrono::steady_clock::now();
  while (body_json(c->Get("/healthz"))["http"]["sessions"] != 0 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900));
  const int status = c->Post("/mcp", session_headers(sid), rpc(1, "ping").dump(), "application/json")->status;
  EXPECT_EQ(status, 404);
  std::string again = initialize(*c);
  EXPECT_NE(again, sid);
  EXPECT_EQ(c->Post("/mcp", session_headers(again), rpc(2, "ping").dump(), "application/json")->status, 200);
}

TEST_F(HttpTest, SigtermFinishesInFlightCallsAndExitsZero) {
  HttpHost host(kPlugins);
  json result;
  std::thread caller([&] {
    auto c = host.client();
    auto r = c->Post("/mcp", httplib::Headers{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"},
                                              {"Mcp-Name", "slow_count"}},
                     modern(1, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 5}, {"delay_ms", 40}}}}).dump(),
                     "application/json");
    result = body_json(r);
  });
  // SIGTERM once the call runs (not after a fixed pause: a slow build, ThreadSanitizer's
  // say, may not have started it yet).
  auto c = host.client();
  const auto t0 = std::chrono::steady_clock::now();
  while (calls_in_flight(*c) == 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  host.process().signal(SIGTERM);
  caller.join();
  EXPECT_EQ(result["result"]["structuredContent"]["counted"], 5) << result;  // finished within the grace period
  EXPECT_EQ(host.process().wait(), 0);
}

}  // namespace
}  // namespace mcph::testing
