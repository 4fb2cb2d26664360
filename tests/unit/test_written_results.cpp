// A tool's result passed on as its plugin wrote it (json_text::written): to a channel that
// only writes answers out, the result's text goes into the answer as it is, and the answer
// means what the built and shaped result means; whatever the host must change in a result
// (a 2026-07-28 _meta beside the plugin's own, structuredContent an older revision lacks,
// a secret, text that cannot stand in one line) is built as before. Against the real
// engine and the test-hostile plugin's "raw" tool, which hands its `text` over unchanged.
#include "host_fixture.hpp"
#include "json/bounded.hpp"

namespace mcph::protocol {
namespace {

using json = nlohmann::json;

constexpr const char* kToken = "tok-SECRET-9876";

class Records final : public RequestObserver {
 public:
  void request_done(const RequestRecord& record) override {
    std::lock_guard lock(mutex);
    if (record.method == "tools/call") tool_errors.push_back(record.is_error);
  }
  void session_done(const std::string&, std::chrono::steady_clock::duration) override {}
  std::mutex mutex;
  std::vector<bool> tool_errors;
};

class WrittenResults : public ::testing::Test {
 protected:
  void SetUp() override {
    // "raw" sees a secret; "free_raw" none (a result with an escape is then not built).
    ASSERT_EQ(host.load(std::string("  - name: bad\n    library: test-hostile\n    credentials: { api_token: \"") + kToken +
                        "\" }\n  - name: free\n    library: test-hostile\n    tool_prefix: free_\n"),
              "");
    EngineOptions opts;
    opts.observer = &records;
    engine = std::make_unique<Engine>(*host.registry, opts);
  }
  void TearDown() override {
    host.registry->begin_shutdown();
    engine.reset();
  }

  // The answer's text as a transport writes it, and the same call's answer built (through
  // a channel that reads answers), for the plugin's result `text` under `version`.
  struct Answers {
    std::string line;
    json built;
  };
  Answers answer(const std::string& text, const std::string& version = "2025-11-25", const std::string& tool = "raw") {
    auto ask = [&](const std::shared_ptr<ReplyChannel>& channel) {
      json params{{"name", tool}, {"arguments", {{"text", text}}}};
      auto session = std::make_shared<Session>();
      if (version == kModernVersion) {
        params["_meta"] = json{{kMetaVersion, kModernVersion}, {kMetaCapabilities, json::object()}};
      } else {
        engine->handle(json{{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
                            {"params", {{"protocolVersion", version}, {"capabilities", json::object()},
                                        {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}},
                       *session, channel);
      }
      return engine->handle(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"}, {"params", params}}, *session, channel);
    };
    return {json_text::dump(ask(std::make_shared<testing::WritingChannel>())), ask(std::make_shared<testing::RecordingChannel>())};
  }

  testing::HostFixture host;
  Records records;
  std::unique_ptr<Engine> engine;
};

TEST_F(WrittenResults, GoOutAsThePluginWroteThem) {
  // Its members' order, a number's digits and an escape are the plugin's (a built result
  // would sort the keys and write 2.5 and é).
  const std::string text = R"({"content":[{"type":"text","text":"caf\u00e9"}],"zeta":2.50,"alpha":1})";
  const auto a = answer(text, "2025-11-25", "free_raw");
  EXPECT_EQ(a.line, R"({"id":1,"jsonrpc":"2.0","result":)" + text + "}");
  EXPECT_EQ(json::parse(a.line), a.built);  // the same answer
  EXPECT_EQ(a.built["result"]["content"][0]["text"], "café");
}

TEST_F(WrittenResults, GetTheMembersOf2026AddedToTheirText) {
  const std::string text = R"({"content":[{"type":"text","text":"hi"}],"b":1,"a":2})";
  const auto a = answer(text, kModernVersion);
  const std::string members = R"(,"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":)";
  EXPECT_EQ(a.line.substr(0, a.line.find(members)), R"({"id":1,"jsonrpc":"2.0","result":)" + text.substr(0, text.size() - 1)) << a.line;
  EXPECT_EQ(json::parse(a.line), a.built);
  EXPECT_EQ(a.built["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcp-host");
}

TEST_F(WrittenResults, AreBuiltWhenTheHostMustChangeThemOrTheyCannotStandInALine) {
  struct Case {
    const char* why;
    std::string text, version;
  };
  const std::vector<Case> cases = {
      {"whitespace (a stdio message is one line)", "{\n  \"content\": [ {\"type\": \"text\", \"text\": \"x\"} ]\n}", "2025-11-25"},
      {"a repeated key (the later one wins)", R"({"content":[],"k":1,"k":2})", "2025-11-25"},
      {"an escaped key", R"({"content":[],"\u006b":1})", "2025-11-25"},
      {"its own _meta, beside which serverInfo goes", R"({"content":[],"_meta":{"mine":1}})", std::string(kModernVersion)},
      {"its own resultType", R"({"content":[],"resultType":"other"})", std::string(kModernVersion)},
      {"structuredContent, which 2025-03-26 lacks", R"({"content":[],"structuredContent":{"a":1}})", "2025-03-26"},
      {"structuredContent not an object, before 2026-07-28", R"({"content":[],"structuredContent":[1]})", "2025-11-25"},
      {"no content, which the host makes", R"({"structuredContent":{"a":1}})", "2025-11-25"},
      {"a byte order mark", "\xEF\xBB\xBF{\"content\":[]}", "2025-11-25"},
  };
  for (const auto& c : cases) {
    const auto a = answer(c.text, c.version);
    EXPECT_EQ(a.line, json_text::dump(a.built)) << c.why;  // written from the built result
    EXPECT_EQ(a.line.find('\n'), std::string::npos) << c.why;
    EXPECT_TRUE(a.built["result"]["content"].is_array()) << c.why;
  }
  EXPECT_EQ(answer(R"({"content":[],"k":1,"k":2})").built["result"]["k"], 2);
  const json meta = answer(R"({"content":[],"_meta":{"mine":1}})", kModernVersion).built["result"]["_meta"];
  EXPECT_EQ(meta["mine"], 1);
  EXPECT_EQ(meta["io.modelcontextprotocol/serverInfo"]["name"], "mcp-host");
  EXPECT_FALSE(answer(R"({"content":[],"structuredContent":{"a":1}})", "2025-03-26").built["result"].contains("structuredContent"));
}

TEST_F(WrittenResults, HoldNoSecretHoweverItIsWritten) {
  for (const std::string& text : {std::string(R"({"content":[{"type":"text","text":"the token is )") + kToken + "\"}]}",
                                   std::string(R"({"content":[{"type":"text","text":"tok-SECRET-98\u0037\u0036"}]})")}) {
    const auto a = answer(text);
    EXPECT_EQ(a.line.find("SECRET"), std::string::npos) << a.line;
    EXPECT_NE(a.line.find("[REDACTED]"), std::string::npos) << a.line;
  }
}

TEST_F(WrittenResults, CountAsToolErrorsWhenTheySaySo) {
  answer(R"({"content":[],"isError":true})");
  answer(R"({"content":[],"isError":false})");
  std::lock_guard lock(records.mutex);
  // Each answer twice: written, then built.
  EXPECT_EQ(records.tool_errors, (std::vector<bool>{true, true, false, false}));
}

TEST_F(WrittenResults, ThatAreNotJsonObjectsAreThePluginsError) {
  for (const char* text : {"[1]", "{\"content\":[]", "{\"content\":[1e999]}", "{\"a\":\"\x01\"}"}) {
    const auto a = answer(text);
    EXPECT_EQ(a.built["result"]["isError"], true) << text;
    EXPECT_NE(a.built["result"]["content"][0]["text"].get<std::string>().find("refused"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace mcph::protocol
