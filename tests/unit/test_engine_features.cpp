// ABI 1.1 through the protocol engine, against the conformance-fixtures plugin: resources
// and templates, prompts, completion, input from the client in both eras (2026-07-28
// input_required with a sealed requestState; real requests to legacy clients), resource
// subscriptions; and a plugin built against the frozen 1.0 header still serving.
#include <future>
#include <thread>

#include "host_fixture.hpp"
#include "plugins/library.hpp"

namespace mcph::protocol {
namespace {

using testing::RecordingChannel;
using json = nlohmann::json;

const char* kPlugins = R"(  - name: fixtures
    library: conformance-fixtures
  - name: old
    library: test-echo-abi10
    tool_prefix: old_
)";

json meta26(json caps = json::object()) {
  return json{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
              {"io.modelcontextprotocol/clientCapabilities", std::move(caps)}};
}

class FeaturesTest : public ::testing::Test {
 protected:
  void SetUp() override { load(kPlugins); }
  void load(const std::string& plugins) {
    engine.reset();
    host = std::make_unique<testing::HostFixture>();
    ASSERT_EQ(host->load(plugins), "");
    engine = std::make_unique<Engine>(*host->registry, EngineOptions{});
    session = std::make_shared<Session>();
    session->set_channel(channel);
  }
  void TearDown() override {
    if (host && host->registry) host->registry->begin_shutdown();
    engine.reset();
  }

  json message(const std::string& method, json params, json id) {
    return json{{"jsonrpc", "2.0"}, {"id", std::move(id)}, {"method", method}, {"params", std::move(params)}};
  }
  json request(const std::string& method, json params = json::object(), json id = 1) {
    return engine->handle(message(method, std::move(params), std::move(id)), *session, channel);
  }
  // A 2026-07-28 request (stateless: any session will do).
  json modern(const std::string& method, json params = json::object(), json caps = json::object()) {
    params["_meta"] = meta26(std::move(caps));
    Session fresh;
    return engine->handle(message(method, std::move(params), 1), fresh, channel);
  }
  json initialize(json caps = json::object()) {
    return request("initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", std::move(caps)},
                                  {"clientInfo", {{"name", "t"}, {"version", "1"}}}});
  }
  static std::string text_of(const json& response) { return response["result"]["content"][0]["text"]; }

  std::unique_ptr<testing::HostFixture> host;
  std::unique_ptr<Engine> engine;
  std::shared_ptr<Session> session;
  std::shared_ptr<RecordingChannel> channel = std::make_shared<RecordingChannel>();
};

TEST_F(FeaturesTest, APluginBuiltAgainstTheFrozen10HeaderStillServes) {
  auto lib = plugins::Library::load("test-echo-abi10", {MCPH_PLUGIN_DIR});
  ASSERT_TRUE(lib) << lib.error();
  EXPECT_EQ((*lib)->descriptor().abi_major, 1);
  EXPECT_EQ((*lib)->descriptor().abi_minor, 0);  // really built with the 1.0 header
  EXPECT_GT(MCPH_ABI_MINOR, 0);
  initialize();
  json r = request("tools/call", {{"name", "old_echo"}, {"arguments", {{"text", "still here"}}}});
  EXPECT_EQ(text_of(r), "still here") << r;
  r = request("tools/call", {{"name", "old_add"}, {"arguments", {{"a", 2}, {"b", 3}}}});
  EXPECT_EQ(r["result"]["structuredContent"]["sum"], 5) << r;
}

TEST_F(FeaturesTest, CapabilitiesFollowWhatThePluginsRegistered) {
  json caps = initialize()["result"]["capabilities"];
  EXPECT_EQ(caps["prompts"]["listChanged"], true);  // a reload may change them; clients are told
  EXPECT_EQ(caps["tools"]["listChanged"], true);
  EXPECT_EQ(caps["resources"]["subscribe"], true);
  EXPECT_TRUE(caps.contains("completions"));
  json modern_caps = modern("server/discover")["result"]["capabilities"];
  EXPECT_TRUE(modern_caps.contains("resources"));
  EXPECT_EQ(modern_caps["resources"]["subscribe"], true);  // 2026: through subscriptions/listen (resourceSubscriptions)

  // Tools only: no promises about prompts or resources, and their methods do not exist.
  load("  - name: old\n    library: test-echo-abi10\n");
  caps = initialize()["result"]["capabilities"];
  EXPECT_FALSE(caps.contains("prompts"));
  EXPECT_FALSE(caps.contains("resources"));
  EXPECT_FALSE(caps.contains("completions"));
  EXPECT_EQ(request("prompts/list", json::object(), 2)["error"]["code"], code::kMethodNotFound);
  EXPECT_EQ(request("resources/read", {{"uri", "test://static-text"}}, 3)["error"]["code"], code::kMethodNotFound);
}

TEST_F(FeaturesTest, ResourcesListReadAndTemplates) {
  initialize();
  json r = request("resources/list");
  ASSERT_EQ(r["result"]["resources"].size(), 3u) << r;
  EXPECT_EQ(r["result"]["resources"][0], (json{{"uri", "test://static-text"}, {"name", "Static text"},
                                                {"description", "A text resource"}, {"mimeType", "text/plain"}}));
  r = request("resources/templates/list");
  EXPECT_EQ(r["result"]["resourceTemplates"][0]["uriTemplate"], "test://template/{id}/data") << r;

  r = request("resources/read", {{"uri", "test://static-text"}});
  EXPECT_EQ(r["result"]["contents"][0], (json{{"text", "This is the content of the static text resource."},
                                              {"uri", "test://static-text"}, {"mimeType", "text/plain"}}));
  r = request("resources/read", {{"uri", "test://template/123/data"}});
  EXPECT_EQ(json::parse(r["result"]["contents"][0]["text"].get<std::string>())["data"], "Data for ID: 123") << r;
  EXPECT_EQ(r["result"]["contents"][0]["uri"], "test://template/123/data");

  // Unknown: -32002 before 2026, -32602 since; both name the URI.
  r = request("resources/read", {{"uri", "test://nope"}});
  EXPECT_EQ(r["error"]["code"], code::kResourceNotFound);
  EXPECT_EQ(r["error"]["data"]["uri"], "test://nope");
  r = modern("resources/read", {{"uri", "test://nope"}});
  EXPECT_EQ(r["error"]["code"], code::kInvalidParams);
  EXPECT_EQ(r["error"]["data"]["uri"], "test://nope");
  // A template matched, but the plugin says the object does not exist.
  r = modern("resources/read", {{"uri", "test://template/missing/data"}});
  EXPECT_EQ(r["error"]["code"], code::kInvalidParams) << r;
  EXPECT_NE(r["error"]["message"].get<std::string>().find("no data for id missing"), std::string::npos) << r;
  // Variables never span '/'.
  EXPECT_EQ(request("resources/read", {{"uri", "test://template/1/2/data"}})["error"]["code"], code::kResourceNotFound);
  // 2026-07-28 reads carry caching fields.
  r = modern("resources/read", {{"uri", "test://static-text"}});
  EXPECT_EQ(r["result"]["ttlMs"], 0);
  EXPECT_EQ(r["result"]["resultType"], "complete");
}

TEST_F(FeaturesTest, PromptsCheckTheirArguments) {
  initialize();
  json r = request("prompts/list");
  ASSERT_GE(r["result"]["prompts"].size(), 4u);
  r = request("prompts/get", {{"name", "test_prompt_with_arguments"}, {"arguments", {{"arg1", "hello"}, {"arg2", "world"}}}});
  EXPECT_EQ(r["result"]["messages"][0]["content"]["text"], "Prompt with arguments: arg1='hello', arg2='world'") << r;
  r = request("prompts/get", {{"name", "test_prompt_with_arguments"}, {"arguments", {{"arg1", "hello"}}}});
  EXPECT_EQ(r["error"]["code"], code::kInvalidParams);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("'arg2'"), std::string::npos) << r;
  r = request("prompts/get", {{"name", "test_prompt_with_arguments"}, {"arguments", {{"arg1", 1}, {"arg2", "x"}}}});
  EXPECT_EQ(r["error"]["code"], code::kInvalidParams);
  EXPECT_EQ(request("prompts/get", {{"name", "nope"}})["error"]["code"], code::kInvalidParams);
}

TEST_F(FeaturesTest, CompletionForPromptsAndTemplates) {
  initialize();
  json r = request("completion/complete", {{"ref", {{"type", "ref/prompt"}, {"name", "test_prompt_with_arguments"}}},
                                           {"argument", {{"name", "arg1"}, {"value", "pa"}}}});
  EXPECT_EQ(r["result"]["completion"]["values"], (json{"paris", "park", "party"})) << r;
  r = request("completion/complete", {{"ref", {{"type", "ref/resource"}, {"uri", "test://template/{id}/data"}}},
                                      {"argument", {{"name", "id"}, {"value", "12"}}}});
  EXPECT_EQ(r["result"]["completion"]["values"], (json{"123", "124"})) << r;
  // A prompt without a completer, and a fixed resource: no suggestions, not an error.
  r = request("completion/complete", {{"ref", {{"type", "ref/prompt"}, {"name", "test_simple_prompt"}}},
                                      {"argument", {{"name", "x"}, {"value", ""}}}});
  EXPECT_EQ(r["result"]["completion"]["values"], json::array()) << r;
  r = request("completion/complete", {{"ref", {{"type", "ref/resource"}, {"uri", "test://static-text"}}},
                                      {"argument", {{"name", "x"}, {"value", ""}}}});
  EXPECT_EQ(r["result"]["completion"]["values"], json::array()) << r;
  r = request("completion/complete", {{"ref", {{"type", "ref/prompt"}, {"name", "nope"}}}, {"argument", {{"name", "x"}, {"value", ""}}}});
  EXPECT_EQ(r["error"]["code"], code::kInvalidParams);
  r = request("completion/complete", {{"ref", {{"type", "ref/prompt"}, {"name", "test_simple_prompt"}}}});
  EXPECT_EQ(r["error"]["code"], code::kInvalidParams);  // no argument
}

TEST_F(FeaturesTest, ModernInputRequiredRoundTripWithSealedState) {
  const json caps{{"elicitation", json::object()}};
  const json tool{{"name", "test_input_required_result_request_state"}, {"arguments", json::object()}};
  json r = modern("tools/call", tool, caps)["result"];
  ASSERT_EQ(r["resultType"], "input_required") << r;
  EXPECT_EQ(r["inputRequests"]["confirm"]["method"], "elicitation/create");
  const std::string state = r["requestState"];
  EXPECT_EQ(state.find("round-1"), std::string::npos) << "the plugin's state must not be readable as is: " << state;

  json retry = tool;
  retry["inputResponses"] = {{"confirm", {{"action", "accept"}, {"content", {{"ok", true}}}}}};
  retry["requestState"] = state;
  r = modern("tools/call", retry, caps);
  EXPECT_EQ(r["result"]["resultType"], "complete");
  EXPECT_EQ(text_of(r), "state-ok: confirmed") << r;

  // Tampered, truncated, or replayed against another tool: refused
  // before the plugin runs.
  for (const std::string& bad : {state + "x", state.substr(0, state.size() - 2), std::string("garbage")}) {
    retry["requestState"] = bad;
    r = modern("tools/call", retry, caps);
    EXPECT_EQ(r["error"]["code"], code::kInvalidParams) << bad;
    EXPECT_NE(r["error"]["message"].get<std::string>().find("integrity"), std::string::npos) << r;
  }
  json other = retry;
  other["requestState"] = state;
  other["name"] = "test_input_required_result_tampered_state";
  r = modern("tools/call", other, caps);
  EXPECT_EQ(r["error"]["code"], code::kInvalidParams);
  EXPECT_NE(r["error"]["message"].get<std::string>().find("another request"), std::string::npos) << r;

  // Malformed inputResponses are protocol errors.
  other = tool;
  other["inputResponses"] = {{"confirm", 12345}};
  EXPECT_EQ(modern("tools/call", other, caps)["error"]["code"], code::kInvalidParams);
  other["inputResponses"] = nullptr;
  EXPECT_EQ(modern("tools/call", other, caps)["error"]["code"], code::kInvalidParams);
}

TEST_F(FeaturesTest, AskingForAnUndeclaredCapabilityIsMissingClientCapability) {
  json r = modern("tools/call", {{"name", "test_missing_capability"}, {"arguments", json::object()}});
  EXPECT_EQ(r["error"]["code"], code::kMissingClientCapability) << r;
  EXPECT_EQ(r["error"]["data"]["requiredCapabilities"], (json{{"sampling", json::object()}}));
  initialize();  // no capabilities: legacy clients get the same error
  r = request("tools/call", {{"name", "test_missing_capability"}, {"arguments", json::object()}});
  EXPECT_EQ(r["error"]["code"], code::kMissingClientCapability) << r;
  // A plugin that looks first adapts instead.
  r = modern("tools/call", {{"name", "test_input_required_result_capabilities"}, {"arguments", json::object()}},
             {{"sampling", json::object()}});
  EXPECT_EQ(r["result"]["inputRequests"]["answer"]["method"], "sampling/createMessage") << r;
}

// Legacy eras: the host sends the client a real request and runs the handler again with
// the answer.
TEST_F(FeaturesTest, LegacyElicitationIsARealRequestToTheClient) {
  initialize({{"elicitation", json::object()}});
  engine->submit(message("tools/call", {{"name", "test_elicitation"}, {"arguments", {{"message", "Who?"}}}}, 7), session, channel);
  json asked = channel->wait_for([](const json& m) { return m.value("method", "") == "elicitation/create"; });
  ASSERT_TRUE(asked.is_object()) << "no elicitation/create request reached the client";
  EXPECT_EQ(asked["params"]["message"], "Who?");
  EXPECT_TRUE(asked.contains("id"));
  json answer{{"jsonrpc", "2.0"}, {"id", asked["id"]},
              {"result", {{"action", "accept"}, {"content", {{"username", "ada"}, {"email", "ada@example.com"}}}}}};
  EXPECT_TRUE(engine->handle(answer, *session, channel).is_null());
  json done = channel->wait_for([](const json& m) { return m.value("id", json()) == 7; });
  ASSERT_TRUE(done.is_object());
  EXPECT_NE(text_of(done).find("ada@example.com"), std::string::npos) << done;
}

TEST_F(FeaturesTest, LegacyClientErrorFailsTheToolReadably) {
  initialize({{"sampling", json::object()}});
  engine->submit(message("tools/call", {{"name", "test_sampling"}, {"arguments", {{"prompt", "hi"}}}}, 8), session, channel);
  json asked = channel->wait_for([](const json& m) { return m.value("method", "") == "sampling/createMessage"; });
  ASSERT_TRUE(asked.is_object());
  engine->handle(json{{"jsonrpc", "2.0"}, {"id", asked["id"]}, {"error", {{"code", -1}, {"message", "user rejected"}}}}, *session, channel);
  json done = channel->wait_for([](const json& m) { return m.value("id", json()) == 8; });
  ASSERT_TRUE(done.is_object());
  EXPECT_TRUE(done["result"].value("isError", false)) << done;
  EXPECT_NE(text_of(done).find("user rejected"), std::string::npos) << done;
}

TEST_F(FeaturesTest, LegacyCancelWhileWaitingForTheClientCancelsOurRequestToo) {
  initialize({{"roots", json::object()}});
  engine->submit(message("tools/call", {{"name", "test_input_required_result_list_roots"}, {"arguments", json::object()}}, 9),
                 session, channel);
  json asked = channel->wait_for([](const json& m) { return m.value("method", "") == "roots/list"; });
  ASSERT_TRUE(asked.is_object());
  session->cancel(9);
  json cancelled = channel->wait_for([](const json& m) { return m.value("method", "") == "notifications/cancelled"; });
  ASSERT_TRUE(cancelled.is_object());
  EXPECT_EQ(cancelled["params"]["requestId"], asked["id"]);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (const auto& m : channel->messages()) EXPECT_NE(m.value("id", json()), 9) << "a cancelled call must not answer";
  // A late answer to the abandoned request is ignored.
  EXPECT_TRUE(engine->handle(json{{"jsonrpc", "2.0"}, {"id", asked["id"]}, {"result", {{"roots", json::array()}}}}, *session, channel).is_null());
}

TEST_F(FeaturesTest, SubscribedSessionsHearOfResourceUpdates) {
  initialize();
  auto touch = [&](int id) {
    request("tools/call", {{"name", "test_touch_watched_resource"}, {"arguments", json::object()}}, id);
  };
  auto updates = [&] {
    int n = 0;
    for (const auto& m : channel->messages()) n += m.value("method", "") == "notifications/resources/updated";
    return n;
  };
  touch(1);
  EXPECT_EQ(updates(), 0);  // nobody subscribed
  EXPECT_EQ(request("resources/subscribe", {{"uri", "test://watched-resource"}}, 2)["result"], json::object());
  touch(3);
  ASSERT_EQ(updates(), 1);
  EXPECT_EQ(channel->wait_for([](const json& m) { return m.value("method", "") == "notifications/resources/updated"; })["params"]["uri"],
            "test://watched-resource");
  EXPECT_EQ(request("resources/unsubscribe", {{"uri", "test://watched-resource"}}, 4)["result"], json::object());
  touch(5);
  EXPECT_EQ(updates(), 1);
  EXPECT_EQ(request("resources/subscribe", {{"uri", "test://nope"}}, 6)["error"]["code"], code::kResourceNotFound);
}

}  // namespace
}  // namespace mcph::protocol
