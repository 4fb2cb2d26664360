// The protocol engine without sockets: JSON-RPC validation, both eras, pagination,
// argument validation, result shaping, progress, logging and cancellation, against the
// real example plugins of this build.
#include <cstring>
#include <optional>
#include <thread>

#include "host_fixture.hpp"
#include "json/bounded.hpp"

namespace mcph::protocol {
namespace {

using testing::RecordingChannel;
using json = nlohmann::json;

const char* kPlugins = R"(  - name: echo
    library: example-echo
  - name: counter
    library: example-counter
  - name: svc
    library: test-services
    credentials: { api_token: "sk-test-SECRET-1234" }
)";

json meta26(json extra = json::object()) {
  json m{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
         {"io.modelcontextprotocol/clientCapabilities", json::object()}};
  m.update(extra);
  return m;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override { load(""); }
  void load(const std::string& server_yaml) {
    engine.reset();
    ASSERT_EQ(host.load(kPlugins, server_yaml), "");
    EngineOptions opts;
    opts.page_size = host.config->server.page_size;
    opts.call_timeout = std::chrono::milliseconds(host.config->server.call_timeout_ms);
    engine = std::make_unique<Engine>(*host.registry, opts);
  }
  void TearDown() override {
    if (host.registry) host.registry->begin_shutdown();
    engine.reset();
  }

  json request(const std::string& method, json params = json::object(), json id = 1) {
    return engine->handle(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}, *session,
                          channel);
  }
  json initialize(const std::string& version = "2025-11-25") {
    return request("initialize", {{"protocolVersion", version}, {"capabilities", json::object()},
                                  {"clientInfo", {{"name", "t"}, {"version", "1"}}}});
  }
  json call(const std::string& tool, json args, json extra_params = json::object()) {
    json params{{"name", tool}, {"arguments", args}};
    params.update(extra_params);
    return request("tools/call", params);
  }
  static std::string text_of(const json& response) { return response["result"]["content"][0]["text"]; }

  testing::HostFixture host;
  std::unique_ptr<Engine> engine;
  std::shared_ptr<Session> session = std::make_shared<Session>();
  std::shared_ptr<RecordingChannel> channel = std::make_shared<RecordingChannel>();
};

TEST_F(EngineTest, RejectsMalformedJsonRpc) {
  EXPECT_EQ(engine->handle(json::array({1}), *session, channel)["error"]["code"], code::kInvalidRequest);
  EXPECT_EQ(engine->handle(json("hi"), *session, channel)["error"]["code"], code::kInvalidRequest);
  EXPECT_EQ(engine->handle(json{{"id", 1}, {"method", "ping"}}, *session, channel)["error"]["code"],
            code::kInvalidRequest);  // no jsonrpc member
  json r = engine->handle(json{{"jsonrpc", "2.0"}, {"id", 7}, {"method", 42}}, *session, channel);
  EXPECT_EQ(r["error"]["code"], code::kInvalidRequest);
  EXPECT_EQ(r["id"], 7);  // a readable id is echoed
  r = engine->handle(json{{"jsonrpc", "2.0"}, {"id", nullptr}, {"method", "ping"}}, *session, channel);
  EXPECT_EQ(r["error"]["code"], code::kInvalidRequest);
  EXPECT_TRUE(r["id"].is_null());
  r = engine->handle(json{{"jsonrpc", "2.0"}, {"id", 1.5}, {"method", "ping"}}, *session, channel);
  EXPECT_EQ(r["error"]["code"], code::kInvalidRequest);
  r = engine->handle(json{{"jsonrpc", "2.0"}, {"id", 2}, {"method", "ping"}, {"params", json::array()}}, *session, channel);
  EXPECT_EQ(r["error"]["code"], code::kInvalidParams);
}

TEST_F(EngineTest, NotificationsAndResponsesGetNoAnswer) {
  EXPECT_TRUE(engine->handle(json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, *session, channel).is_null());
  EXPECT_TRUE(engine->handle(json{{"jsonrpc", "2.0"}, {"id", 3}, {"result", json::object()}}, *session, channel).is_null());
}

TEST_F(EngineTest, PingWorksBeforeInitialize) {
  EXPECT_EQ(request("ping")["result"], json::object());
}

TEST_F(EngineTest, RequestsBeforeInitializeWithoutModernMetaAreRefused) {
  json r = request("tools/list");
  EXPECT_EQ(r["error"]["code"], code::kInvalidParams);  // the required _meta is missing
  EXPECT_NE(r["error"]["message"].get<std::string>().find("initialize"), std::string::npos);
}

TEST_F(EngineTest, LegacyVersionNegotiation) {
  for (const char* v : {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}) {
    json r = initialize(v);
    EXPECT_EQ(r["result"]["protocolVersion"], v);
    EXPECT_EQ(session->version(), v);
  }
  json r = initialize("2031-01-01");  // unknown: we offer our newest legacy version
  EXPECT_EQ(r["result"]["protocolVersion"], "2025-11-25");
  EXPECT_EQ(r["result"]["serverInfo"]["name"], "mcp-host");
  EXPECT_TRUE(r["result"]["capabilities"].contains("tools"));
  EXPECT_EQ(request("initialize", {{"capabilities", json::object()}})["error"]["code"], code::kInvalidParams);
}

TEST_F(EngineTest, ModernDiscover) {
  json r = request("server/discover", {{"_meta", meta26()}});
  ASSERT_TRUE(r.contains("result")) << r;
  EXPECT_EQ(r["result"]["supportedVersions"], json::array({"2026-07-28"}));
  EXPECT_EQ(r["result"]["resultType"], "complete");
  EXPECT_TRUE(r["result"]["ttlMs"].is_number_integer());
  EXPECT_EQ(r["result"]["cacheScope"], "private");
  EXPECT_EQ(r["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcp-host");
  EXPECT_FALSE(session->initialized());  // stateless
}

TEST_F(EngineTest, ModernMetaValidation) {
  json m = meta26();
  m.erase("io.modelcontextprotocol/clientCapabilities");
  EXPECT_EQ(request("server/discover", {{"_meta", m}})["error"]["code"], code::kInvalidParams);
  json r = request("tools/list", {{"_meta", meta26({{"io.modelcontextprotocol/protocolVersion", "2099-01-01"}})}});
  EXPECT_EQ(r["error"]["code"], code::kUnsupportedVersion);
  EXPECT_EQ(r["error"]["data"]["requested"], "2099-01-01");
  EXPECT_EQ(r["error"]["data"]["supported"], json::array({"2026-07-28"}));
  EXPECT_EQ(request("tools/list", {{"_meta", meta26({{"io.modelcontextprotocol/logLevel", "loud"}})}})["error"]["code"],
            code::kInvalidParams);
  EXPECT_EQ(request("server/discover")["error"]["code"], code::kInvalidParams);  // no _meta at all
}

TEST_F(EngineTest, ModernRemovedAndUnknownMethods) {
  for (const char* m : {"initialize", "ping", "logging/setLevel", "resources/subscribe", "no/such/method"}) {
    EXPECT_EQ(request(m, {{"_meta", meta26()}})["error"]["code"], code::kMethodNotFound) << m;
  }
  initialize();
  EXPECT_EQ(request("no/such/method")["error"]["code"], code::kMethodNotFound);
}

TEST_F(EngineTest, ToolsListPerEra) {
  initialize("2025-03-26");
  json tools = request("tools/list")["result"]["tools"];
  ASSERT_EQ(tools.size(), 9u);
  EXPECT_EQ(tools[0]["name"], "echo");
  EXPECT_FALSE(tools[0].contains("title"));  // titles arrived in 2025-06-18
  EXPECT_TRUE(tools[0].contains("annotations"));
  EXPECT_FALSE(tools[1].contains("outputSchema"));
  initialize("2024-11-05");
  EXPECT_FALSE(request("tools/list")["result"]["tools"][0].contains("annotations"));
  initialize("2025-11-25");
  tools = request("tools/list")["result"]["tools"];
  EXPECT_EQ(tools[0]["title"], "Echo");
  EXPECT_EQ(tools[1]["outputSchema"]["type"], "object");
  json modern = request("tools/list", {{"_meta", meta26()}})["result"];
  EXPECT_EQ(modern["tools"].size(), 9u);
  EXPECT_EQ(modern["resultType"], "complete");
  EXPECT_EQ(modern["cacheScope"], "private");
  EXPECT_TRUE(modern.contains("ttlMs"));
}

TEST_F(EngineTest, ToolsListPagination) {
  load("  page_size: 3\n");
  initialize();
  std::vector<std::string> names;
  json cursor;
  int pages = 0;
  do {
    json params = cursor.is_null() ? json::object() : json{{"cursor", cursor}};
    json r = request("tools/list", params)["result"];
    for (auto& t : r["tools"]) names.push_back(t["name"]);
    cursor = r.value("nextCursor", json());
    ++pages;
  } while (!cursor.is_null() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names.size(), 9u);
  EXPECT_EQ(names.front(), "echo");
  EXPECT_EQ(names.back(), "log");
  for (json bad : {json("abc"), json("-1"), json("999"), json(3), json("")}) {
    EXPECT_EQ(request("tools/list", {{"cursor", bad}})["error"]["code"], code::kInvalidParams) << bad;
  }
}

TEST_F(EngineTest, CallsTools) {
  initialize();
  EXPECT_EQ(text_of(call("echo", {{"text", "héllo \"world\"\n"}})), "héllo \"world\"\n");
  json r = call("add", {{"a", 2}, {"b", 3.5}});
  EXPECT_EQ(r["result"]["structuredContent"]["sum"], 5.5);
  EXPECT_EQ(text_of(r), "5.5");
  EXPECT_FALSE(r["result"].contains("resultType"));
}

TEST_F(EngineTest, ArgumentsAreValidatedAgainstTheSchema) {
  initialize();
  json r = call("add", {{"a", "two"}, {"b", 3}});
  EXPECT_TRUE(r["result"]["isError"].get<bool>());
  EXPECT_NE(text_of(r).find("/a"), std::string::npos) << text_of(r);
  r = call("echo", json::object());
  EXPECT_TRUE(r["result"]["isError"].get<bool>());
  EXPECT_NE(text_of(r).find("text"), std::string::npos) << text_of(r);
  r = call("echo", {{"text", "x"}, {"extra", 1}});
  EXPECT_NE(text_of(r).find("extra"), std::string::npos) << text_of(r);
}

TEST_F(EngineTest, ProtocolFaultsInToolsCall) {
  initialize();
  json r = call("nope", json::object());
  EXPECT_EQ(r["error"]["code"], code::kInvalidParams);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("nope"), std::string::npos);
  EXPECT_EQ(request("tools/call", {{"name", "echo"}, {"arguments", json::array()}})["error"]["code"], code::kInvalidParams);
  EXPECT_EQ(request("tools/call", {{"arguments", json::object()}})["error"]["code"], code::kInvalidParams);
}

TEST_F(EngineTest, HandlerFailuresBecomeToolErrors) {
  initialize();
  json r = call("fail", {{"mode", "throw"}});
  EXPECT_TRUE(r["result"]["isError"].get<bool>());
  EXPECT_EQ(text_of(r), "internal error: boom");
  r = call("fail", {{"mode", "tool_error"}});
  EXPECT_EQ(text_of(r), "upstream said no");
  EXPECT_EQ(text_of(call("echo", {{"text", "still serving"}})), "still serving");
}

TEST_F(EngineTest, SecretsAreRedactedFromResults) {
  initialize();
  json r = call("fail", {{"mode", "secret"}});
  EXPECT_EQ(r.dump().find("SECRET"), std::string::npos) << r;
  EXPECT_NE(text_of(r).find("[REDACTED]"), std::string::npos);
}

TEST_F(EngineTest, ResultShapePerEra) {
  initialize("2025-03-26");
  json r = call("add", {{"a", 1}, {"b", 1}})["result"];
  EXPECT_FALSE(r.contains("structuredContent"));
  EXPECT_EQ(r["content"][0]["text"], "2");
  r = request("tools/call", {{"name", "add"}, {"arguments", {{"a", 1}, {"b", 1}}}, {"_meta", meta26()}})["result"];
  EXPECT_EQ(r["structuredContent"]["sum"], 2);
  EXPECT_EQ(r["resultType"], "complete");
  EXPECT_EQ(r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcp-host");
}

TEST_F(EngineTest, ProgressIsReportedAndIncreases) {
  initialize();
  json r = call("slow_count", {{"n", 5}, {"delay_ms", 1}}, {{"_meta", {{"progressToken", "tok"}}}});
  EXPECT_EQ(r["result"]["structuredContent"]["counted"], 5);
  double last = 0;
  int seen = 0;
  for (const auto& m : channel->messages()) {
    ASSERT_EQ(m["method"], "notifications/progress");
    EXPECT_EQ(m["params"]["progressToken"], "tok");
    EXPECT_GT(m["params"]["progress"].get<double>(), last);
    EXPECT_EQ(m["params"]["total"], 5);
    last = m["params"]["progress"];
    ++seen;
  }
  EXPECT_EQ(seen, 5);
  channel = std::make_shared<RecordingChannel>();
  call("slow_count", {{"n", 3}, {"delay_ms", 1}});  // no token: no progress
  EXPECT_TRUE(channel->messages().empty());
}

TEST_F(EngineTest, CancellationStopsACallAndSuppressesItsResponse) {
  initialize();
  engine->submit(json{{"jsonrpc", "2.0"}, {"id", "slow"}, {"method", "tools/call"},
                      {"params", {{"name", "slow_count"}, {"arguments", {{"n", 10000}, {"delay_ms", 10}}},
                                  {"_meta", {{"progressToken", 1}}}}}},
                 session, channel);
  ASSERT_FALSE(channel->wait_for([](const json& m) { return m.value("method", "") == "notifications/progress"; }).is_null());
  const auto t0 = std::chrono::steady_clock::now();
  engine->submit(json{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", "slow"}}}},
                 session, channel);
  while (engine->running() > 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(engine->running(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  // The engine still answers, and never answered the cancelled request.
  engine->submit(json{{"jsonrpc", "2.0"}, {"id", 9}, {"method", "ping"}}, session, channel);
  ASSERT_FALSE(channel->wait_for([](const json& m) { return m.value("id", json()) == 9; }).is_null());
  for (const auto& m : channel->messages()) EXPECT_NE(m.value("id", json()), "slow") << m;
}

TEST_F(EngineTest, DuplicateInFlightIdIsRefused) {
  initialize();
  json slow{{"jsonrpc", "2.0"}, {"id", 5}, {"method", "tools/call"},
            {"params", {{"name", "slow_count"}, {"arguments", {{"n", 10000}, {"delay_ms", 10}}}, {"_meta", {{"progressToken", 1}}}}}};
  engine->submit(slow, session, channel);
  ASSERT_FALSE(channel->wait_for([](const json& m) { return m.value("method", "") == "notifications/progress"; }).is_null());
  json r = engine->handle(slow, *session, channel);
  EXPECT_EQ(r["error"]["code"], code::kInvalidRequest);
  engine->submit(json{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 5}}}}, session, channel);
}

TEST_F(EngineTest, CallTimeoutCancelsTheHandler) {
  load("  call_timeout_ms: 100\n");
  initialize();
  json r = call("slow_count", {{"n", 10000}, {"delay_ms", 10}});
  EXPECT_TRUE(r["result"]["isError"].get<bool>());
  EXPECT_NE(text_of(r).find("did not finish within 100 ms"), std::string::npos) << r;
}

TEST_F(EngineTest, LegacyLoggingFollowsSetLevel) {
  initialize();
  auto logs = [&] {
    int n = 0;
    for (const auto& m : channel->messages()) n += m.value("method", "") == "notifications/message";
    return n;
  };
  call("log", {{"level", MCPH_LOG_INFO}, {"message", "hello"}});
  EXPECT_EQ(logs(), 1);  // info is the default threshold
  EXPECT_EQ(request("logging/setLevel", {{"level", "error"}})["result"], json::object());
  call("log", {{"level", MCPH_LOG_WARNING}, {"message", "quiet"}});
  EXPECT_EQ(logs(), 1);
  call("log", {{"level", MCPH_LOG_CRITICAL}, {"message", "loud"}});
  ASSERT_EQ(logs(), 2);
  json last = channel->messages().back();
  EXPECT_EQ(last["params"]["level"], "critical");
  EXPECT_EQ(last["params"]["logger"], "test");
  EXPECT_EQ(last["params"]["data"], "loud");
  EXPECT_EQ(request("logging/setLevel", {{"level", "verbose"}})["error"]["code"], code::kInvalidParams);
}

TEST_F(EngineTest, ModernLoggingOnlyWhenRequested) {
  request("tools/call", {{"name", "log"}, {"arguments", {{"level", 7}, {"message", "x"}}}, {"_meta", meta26()}});
  EXPECT_TRUE(channel->messages().empty());
  request("tools/call", {{"name", "log"}, {"arguments", {{"level", 1}, {"message", "x"}}},
                         {"_meta", meta26({{"io.modelcontextprotocol/logLevel", "debug"}})}});
  ASSERT_EQ(channel->messages().size(), 1u);
  EXPECT_EQ(channel->messages()[0]["params"]["level"], "info");
}

TEST_F(EngineTest, BatchesOnlyIn20250326) {
  initialize("2025-06-18");
  json batch = json::array({json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}});
  EXPECT_EQ(engine->handle(batch, *session, channel)["error"]["code"], code::kInvalidRequest);
  initialize("2025-03-26");
  batch.push_back(json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  batch.push_back(json{{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"},
                       {"params", {{"name", "echo"}, {"arguments", {{"text", "b"}}}}}});
  json r = engine->handle(batch, *session, channel);
  ASSERT_TRUE(r.is_array());
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1]["result"]["content"][0]["text"], "b");
  EXPECT_EQ(engine->handle(json::array(), *session, channel)["error"]["code"], code::kInvalidRequest);
}

// The stdio transport reads a message with json_text::parse_request, which keeps a compact
// params._meta as its text; HTTP builds it. The engine must answer both alike: every
// 2026-07-28 check, the log level, the client's capabilities and a progress token. A
// written one is read twice: the second time the engine remembers what the same text said.
TEST_F(EngineTest, MetaIsReadAlikeWhetherBuiltOrKeptAsWritten) {
  const std::vector<json> params = {
      {{"name", "echo"}, {"arguments", {{"text", "hi"}}}, {"_meta", meta26()}},
      {{"name", "echo"}, {"arguments", {{"text", "hi"}}}, {"_meta", meta26({{"io.modelcontextprotocol/protocolVersion", "2099-01-01"}})}},
      {{"name", "echo"}, {"arguments", {{"text", "hi"}}}, {"_meta", meta26({{"io.modelcontextprotocol/protocolVersion", 7}})}},
      {{"name", "echo"}, {"arguments", {{"text", "hi"}}}, {"_meta", meta26({{"io.modelcontextprotocol/clientCapabilities", 1}})}},
      {{"name", "echo"}, {"arguments", {{"text", "hi"}}}, {"_meta", {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"}}}},
      {{"name", "echo"}, {"arguments", {{"text", "hi"}}}, {"_meta", meta26({{"io.modelcontextprotocol/logLevel", "loud"}})}},
      {{"name", "log"}, {"arguments", {{"level", 1}, {"message", "x"}}}, {"_meta", meta26({{"io.modelcontextprotocol/logLevel", "debug"}})}},
      {{"name", "slow_count"}, {"arguments", {{"n", 3}, {"delay_ms", 1}}}, {"_meta", meta26({{"progressToken", "tok"}})}},
      {{"name", "slow_count"}, {"arguments", {{"n", 2}, {"delay_ms", 1}}}, {"_meta", {{"progressToken", 9}}}},  // legacy, below
  };
  initialize();  // (for the last, a legacy call with a progress token)
  // The answer and notifications to `text` read with its _meta written; asserts the same
  // with it built.
  auto both = [&](const std::string& text) {
    json answer[3], note[3];
    for (const int round : {0, 1, 2}) {
      const bool keep = round > 0;
      json message = *(keep ? json_text::parse_request(text) : json_text::parse(text));
      EXPECT_EQ(json_text::written_text(message["params"]["_meta"]).has_value(), keep) << text;
      channel = std::make_shared<RecordingChannel>();
      answer[round] = engine->handle(message, *session, channel);
      note[round] = channel->messages();
    }
    for (const int round : {1, 2}) {
      EXPECT_EQ(answer[0], answer[round]) << text;
      EXPECT_EQ(note[0], note[round]) << text;
    }
    return std::pair{answer[1], note[1]};
  };
  std::vector<json> answers, notes;
  for (const json& p : params) {
    auto [answer, note] = both(json_text::dump(json{{"jsonrpc", "2.0"}, {"id", 5}, {"method", "tools/call"}, {"params", p}}));
    answers.push_back(answer);
    notes.push_back(note);
  }
  // A version written with an escape, and capabilities declared, are read as well (built).
  std::string text = json_text::dump(json{{"jsonrpc", "2.0"}, {"id", 5}, {"method", "tools/call"}, {"params", params[0]}});
  text.replace(text.find("2026-07-28"), 10, "2026\\u002d07-28");
  EXPECT_EQ(both(text).first["result"]["content"][0]["text"], "hi");
  text = json_text::dump(json{{"jsonrpc", "2.0"}, {"id", 5}, {"method", "tools/call"},
                              {"params", {{"name", "echo"}, {"arguments", {{"text", "hi"}}},
                                          {"_meta", meta26({{"io.modelcontextprotocol/clientCapabilities", {{"roots", json::object()}}}})}}}});
  EXPECT_EQ(both(text).first["result"]["content"][0]["text"], "hi");
  // The cases reach what they test.
  EXPECT_EQ(answers[0]["result"]["content"][0]["text"], "hi");
  EXPECT_EQ(answers[1]["error"]["code"], code::kUnsupportedVersion);
  for (size_t i : {2, 3, 4, 5}) EXPECT_EQ(answers[i]["error"]["code"], code::kInvalidParams) << i;
  ASSERT_EQ(notes[6].size(), 1u);
  EXPECT_EQ(notes[6][0]["method"], "notifications/message");
  ASSERT_EQ(notes[7].size(), 3u);
  EXPECT_EQ(notes[7][0]["params"]["progressToken"], "tok");
  ASSERT_EQ(notes[8].size(), 2u);
  EXPECT_EQ(notes[8][0]["params"]["progressToken"], 9);
}

// json_get on the input a handler is running with reads the host's parsed value (same
// bytes at the same address); any other text, or the same text elsewhere, is parsed.
TEST(ParsedInputTest, TheHostApiReadsAHandlersOwnInputWithoutParsingIt) {
  const auto& api = plugins::host_api();
  auto get = [&](const std::string& doc, const char* pointer) {
    std::string out;
    const mcph_status st = api.json_get(mcph_str{doc.data(), doc.size()}, mcph_str{pointer, std::strlen(pointer)},
                                        [](void* user, mcph_str s) { static_cast<std::string*>(user)->assign(s.data, s.len); }, &out);
    return st == MCPH_OK ? out : "status " + std::to_string(st);
  };
  const std::string input = R"({"text":"from the text"})";
  const json parsed{{"text", "from the parsed value"}};  // differs only to tell which was read
  {
    const plugins::ParsedInput scope(input, &parsed);
    EXPECT_EQ(get(input, "/text"), "\"from the parsed value\"");
    EXPECT_EQ(get(std::string(input), "/text"), "\"from the text\"");  // the same text, another buffer
    EXPECT_EQ(get(input, "/missing"), "status " + std::to_string(MCPH_ERR_NOT_FOUND));
    {
      const std::string inner = R"({"text":"inner"})";
      const plugins::ParsedInput nested(inner, nullptr);  // a runner without a parsed value
      EXPECT_EQ(get(inner, "/text"), "\"inner\"");
      EXPECT_EQ(get(input, "/text"), "\"from the text\"");
    }
    EXPECT_EQ(get(input, "/text"), "\"from the parsed value\"");
  }
  EXPECT_EQ(get(input, "/text"), "\"from the text\"");
  EXPECT_EQ(get("{not json", "/text"), "status " + std::to_string(MCPH_ERR_INVALID_ARGUMENT));
}

// json_get and json_string follow RFC 6901 whether the pointer names a top-level member
// (looked up directly) or anything else (json_pointer).
TEST(ParsedInputTest, JsonGetAndJsonStringFollowRfc6901) {
  const auto& api = plugins::host_api();
  const auto sink = [](void* user, mcph_str s) { static_cast<std::string*>(user)->assign(s.data, s.len); };
  auto call = [&](auto fn, const std::string& doc, const char* pointer) {
    std::string out;
    const mcph_status st = fn(mcph_str{doc.data(), doc.size()}, mcph_str{pointer, std::strlen(pointer)}, sink, &out);
    return st == MCPH_OK ? out : "status " + std::to_string(st);
  };
  const auto not_found = "status " + std::to_string(MCPH_ERR_NOT_FOUND);
  const auto invalid = "status " + std::to_string(MCPH_ERR_INVALID_ARGUMENT);
  const std::string doc = R"({"a":{"b":[10,{"c":true}]},"x/y":1,"t~":2,"":3,"s":"é\n"})";
  const json parsed = json::parse(doc);
  for (const bool known : {false, true}) {  // the text parsed here, or the handler's parsed input
    std::optional<plugins::ParsedInput> scope;
    if (known) scope.emplace(doc, &parsed);
    EXPECT_EQ(call(api.json_get, doc, "/s"), "\"é\\n\"");
    EXPECT_EQ(call(api.json_get, doc, "/a/b/1/c"), "true");
    EXPECT_EQ(call(api.json_get, doc, "/x~1y"), "1");
    EXPECT_EQ(call(api.json_get, doc, "/t~0"), "2");
    EXPECT_EQ(call(api.json_get, doc, "/"), "3");
    EXPECT_EQ(call(api.json_get, doc, ""), parsed.dump());
    EXPECT_EQ(call(api.json_get, doc, "/nope"), not_found);
    EXPECT_EQ(call(api.json_get, doc, "/a/b/2"), not_found);
    EXPECT_EQ(call(api.json_get, doc, "/s/x"), not_found);
    EXPECT_EQ(call(api.json_get, doc, "s"), invalid);
    EXPECT_EQ(call(api.json_string, doc, "/s"), "é\n");
    EXPECT_EQ(call(api.json_string, doc, "/a"), invalid);
    EXPECT_EQ(call(api.json_string, doc, "/nope"), not_found);
  }
  EXPECT_EQ(call(api.json_get, std::string("[1,2]"), "/1"), "2");
}

// A call's client capabilities, input answers and input requests are null until set (no
// allocation per call): the host API reads them as {} and "none", and sets them in place.
TEST(CallStateTest, UnsetCapabilitiesAndInputReadAsEmpty) {
  const auto& api = plugins::host_api();
  const auto sink = [](void* user, mcph_str s) { static_cast<std::string*>(user)->assign(s.data, s.len); };
  mcph_call call;
  std::string out;
  api.call_client_capabilities(&call, sink, &out);
  EXPECT_EQ(out, "{}");
  EXPECT_EQ(api.call_input_response(&call, mcph_str{"q", 1}, sink, &out), MCPH_ERR_NOT_FOUND);
  const std::string ask = R"({"method":"elicitation/create","params":{"message":"?"}})";
  EXPECT_EQ(api.call_request_input(&call, mcph_str{"q", 1}, mcph_str{ask.data(), ask.size()}), MCPH_ERR_UNSUPPORTED);
  EXPECT_EQ(call.missing_capability, "elicitation");
  EXPECT_TRUE(call.input_requests.empty());

  call.client_capabilities = std::make_shared<const json>(json{{"elicitation", json::object()}});
  api.call_client_capabilities(&call, sink, &out);
  EXPECT_EQ(json::parse(out), (json{{"elicitation", json::object()}}));
  EXPECT_EQ(api.call_request_input(&call, mcph_str{"q", 1}, mcph_str{ask.data(), ask.size()}), MCPH_OK);
  EXPECT_EQ(call.input_requests["q"]["method"], "elicitation/create");
  call.input_responses = json{{"q", {{"action", "accept"}}}};
  EXPECT_EQ(api.call_input_response(&call, mcph_str{"q", 1}, sink, &out), MCPH_OK);
  EXPECT_EQ(json::parse(out)["action"], "accept");
  call.reset_outcome();
  EXPECT_TRUE(call.input_requests.empty());
}


// An instance in another process, as the engine sees one: start() returns at once and
// `done` runs later on a thread of the instance's own (an isolated instance's reader),
// which may keep the closure a while after it ran.
class StartedElsewhere final : public plugins::Instance {
 public:
  StartedElsewhere() {
    host_.name = "far";
    plugins::Tool later;
    later.name = "later";
    later.input_schema = json{{"type", "object"}};
    host_.tools.push_back(std::move(later));
  }
  void run(const std::string&, plugins::HandlerRef, const std::string&, mcph_call& call) const override {
    call.has_outcome = true;
    call.result = plugins::error_result("ran here");
  }
  bool start(const std::string&, plugins::HandlerRef, const std::string&, mcph_call& call,
             std::function<void()> done) const override {
    std::lock_guard lock(mutex_);
    call_ = &call;
    done_ = std::move(done);
    started_.notify_all();
    return true;
  }
  int in_flight() const override { return call_ != nullptr ? 1 : 0; }
  bool in_process() const override { return false; }
  // Waits for the started call; gives it an outcome and hands over its closure.
  std::function<void()> answer(const std::string& text) const {
    std::unique_lock lock(mutex_);
    started_.wait_for(lock, std::chrono::seconds(10), [&] { return call_ != nullptr; });
    if (call_ == nullptr) return nullptr;
    call_->has_outcome = true;
    call_->result = json{{"content", json::array({{{"type", "text"}, {"text", text}}})}};
    return std::exchange(done_, nullptr);
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable started_;
  mutable mcph_call* call_ = nullptr;
  mutable std::function<void()> done_;
};

TEST(StartedCallTest, OnceTheEngineIsGoneNoStartedCallHoldsItsRegistry) {
  // At shutdown the host waits for the engine, then drops the registry: that ends the
  // instances, and ending one flushes what its reader thread holds (the last answers). Were
  // the reader's closure still holding the call's catalog, the registry would outlive the
  // host's hold on it and the process could exit with an answer unwritten.
  auto far = std::make_shared<StartedElsewhere>();
  auto built = plugins::Registry::build({far});
  ASSERT_TRUE(built) << built.error();
  std::shared_ptr<const plugins::Registry> registry = std::move(*built);
  auto engine = std::make_unique<Engine>(registry, EngineOptions{});
  auto session = std::make_shared<Session>();
  auto channel = std::make_shared<RecordingChannel>();
  engine->handle(json{{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
                      {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                  {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}},
                 *session, channel);
  engine->submit(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"}, {"params", {{"name", "later"}, {"arguments", json::object()}}}},
                 session, channel);
  std::function<void()> done = far->answer("from afar");
  ASSERT_TRUE(done);
  done();  // the reader thread finishes the call; it still holds the closure
  const json r = channel->wait_for([](const json& m) { return m.value("id", json()) == 1; });
  EXPECT_EQ(r["result"]["content"][0]["text"], "from afar") << r;
  engine.reset();  // as the host's close(): returns once started calls are over
  EXPECT_EQ(registry.use_count(), 1) << "a started call's closure still holds the registry after its engine is gone";
}

}  // namespace
}  // namespace mcph::protocol
