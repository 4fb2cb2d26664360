// The plugin test harness (mcp_plugin/testing.hpp) against this build's plugins: loading,
// tools, calls, scripted HTTP (plain and chunked), progress, cancellation, state, logs;
// resources, prompts, completion and input rounds (ABI 1.1).
// Links neither the host nor its libraries: only the header, as a plugin author would.
#include <gtest/gtest.h>

#include <thread>

#include "mcp_plugin/testing.hpp"

namespace {

using mcph::testing::FakeHost;
using mcph::testing::HttpReply;
using mcph::testing::Plugin;
using json = nlohmann::json;

std::string lib(const std::string& name) { return std::string(MCPH_PLUGIN_DIR) + "/lib" + name + ".so"; }

TEST(Harness, LoadsAndCallsTheCExample) {
  FakeHost host;
  auto p = Plugin::load(lib("example-echo"), host);
  ASSERT_EQ(p.tools().size(), 2u);
  EXPECT_EQ(p.tools()[0]["name"], "echo");
  EXPECT_EQ(p.tools()[1]["outputSchema"]["required"][0], "sum");
  EXPECT_EQ(p.call("echo", {{"text", "hi \"there\""}}).text(), "hi \"there\"");
  auto r = p.call("add", {{"a", 2}, {"b", 40}});
  EXPECT_FALSE(r.is_error());
  EXPECT_EQ(r.structured()["sum"], 42);
  EXPECT_THROW(p.call("nope"), std::runtime_error);
}

TEST(Harness, CapturesProgressAndCancelsFromAnotherThread) {
  FakeHost host;
  auto p = Plugin::load(lib("example-counter"), host);
  auto r = p.call("slow_count", {{"n", 3}, {"delay_ms", 1}});
  ASSERT_EQ(r.progress.size(), 3u);
  EXPECT_EQ(r.progress[2]["progress"], 3);
  EXPECT_EQ(r.progress[2]["total"], 3);

  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  r = p.call("slow_count", {{"n", 10000}, {"delay_ms", 10}}, {&cancel});
  canceller.join();
  EXPECT_TRUE(r.is_error());
  EXPECT_EQ(r.text(), "cancelled");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(Harness, RefusesBrokenPluginsWithTheReason) {
  FakeHost host;
  try {
    Plugin::load(lib("test-bad-major"), host);
    FAIL() << "loaded a plugin with the wrong major";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("ABI 2.3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Plugin::load(lib("test-no-entry"), host), std::runtime_error);
  EXPECT_THROW(Plugin::load(lib("test-duplicate-tool"), host), std::runtime_error);
  try {
    Plugin::load(lib("test-services"), host, {{"fail_create", true}});
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("fail_create"), std::string::npos) << e.what();
  }
}

// ABI 1.3: compare-and-set, and leases with this fake host as one replica of several.
TEST(Harness, PutIfAndLeasesActAsOneReplica) {
  FakeHost host;
  auto p = Plugin::load(lib("test-services"), host);
  auto ok = [&](const json& args) { return p.call("state", args).structured().value("ok", false); };
  EXPECT_TRUE(ok({{"op", "put_if"}, {"key", "k"}, {"expected", nullptr}, {"value", "1"}}));
  EXPECT_FALSE(ok({{"op", "put_if"}, {"key", "k"}, {"expected", nullptr}, {"value", "2"}}));
  EXPECT_TRUE(ok({{"op", "put_if"}, {"key", "k"}, {"expected", "1"}, {"value", "2"}}));
  EXPECT_EQ(host.state().at("k"), "2");
  EXPECT_TRUE(ok({{"op", "put_if"}, {"key", "k"}, {"expected", "2"}, {"value", nullptr}}));
  EXPECT_EQ(host.state().count("k"), 0u);

  host.hold_lease_elsewhere("poller", std::chrono::milliseconds(300));
  EXPECT_FALSE(ok({{"op", "lease_acquire"}, {"key", "poller"}, {"ttl_ms", 1000}}));
  EXPECT_EQ(host.lease_holder("poller"), "other");
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_TRUE(ok({{"op", "lease_acquire"}, {"key", "poller"}, {"ttl_ms", 1000}})) << "expired elsewhere";
  EXPECT_EQ(host.lease_holder("poller"), "this");
  EXPECT_TRUE(ok({{"op", "lease_release"}, {"key", "poller"}}));
  EXPECT_EQ(host.lease_holder("poller"), std::nullopt);
}

TEST(Harness, AHandlerHandsItsCallOverAsATask) {
  FakeHost host;
  host.client_capabilities = {{"elicitation", json::object()}};
  auto p = Plugin::load(lib("conformance-fixtures"), host);
  mcph::testing::CallOptions first;
  auto round1 = p.call("test_tool_with_task", json::object(), first);
  ASSERT_TRUE(round1.needs_input());
  mcph::testing::CallOptions second;
  second.input_responses = {{"user_name", {{"action", "accept"}, {"content", {{"name", "Ada"}}}}}};
  second.state = round1.state;
  // A client without tasks: answered in the call.
  EXPECT_EQ(p.call("test_tool_with_task", json::object(), second).text(), "Hello, Ada!");
  // With tasks: handed over, then finished by the plugin's own thread.
  second.as_task = true;
  auto handed = p.call("test_tool_with_task", json::object(), second);
  ASSERT_FALSE(handed.task_handle.empty());
  EXPECT_TRUE(handed.result.is_null());
  json report = json::object();
  for (int i = 0; i < 200 && report.value("status", "") != "completed"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    report = host.tasks()[handed.task_handle];
  }
  EXPECT_EQ(report["result"]["content"][0]["text"], "Hello, Ada!") << report;
}

TEST(Harness, ScriptedHttpIsRecordedAndAnswered) {
  FakeHost host;
  host.http.on("GET", "https://api.example.com/items", HttpReply{200, {{"X-Test", "1"}}, R"([1,2])"});
  host.http.on("GET", "https://api.example.com/flaky*", HttpReply{500, {}, "oops"});
  host.http.on("GET", "https://api.example.com/flaky*", HttpReply{200, {}, "ok"});
  auto p = Plugin::load(lib("test-services"), host);
  auto r = p.call("fetch", {{"url", "https://api.example.com/items"}});
  EXPECT_EQ(r.structured()["code"], 200);
  EXPECT_EQ(r.structured()["body"], "[1,2]");
  // Replies of one route come in order; the last repeats.
  EXPECT_EQ(p.call("fetch", {{"url", "https://api.example.com/flaky/1"}}).structured()["code"], 500);
  EXPECT_EQ(p.call("fetch", {{"url", "https://api.example.com/flaky/2"}}).structured()["body"], "ok");
  EXPECT_EQ(p.call("fetch", {{"url", "https://api.example.com/flaky/3"}}).structured()["body"], "ok");
  // No route: a network failure, as the real host reports a refused connection.
  r = p.call("fetch", {{"url", "https://elsewhere.example/"}});
  EXPECT_TRUE(r.is_error());
  EXPECT_NE(r.text().find("no route"), std::string::npos);
  auto reqs = host.http.requests();
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[3].url, "https://api.example.com/flaky/3");
}

TEST(Harness, ChunkedBodiesStreamInPieces) {
  FakeHost host;
  HttpReply sse{200, {{"Content-Type", "text/event-stream"}}, ""};
  sse.chunks = {"data: one\n\n", "data: two\n\n", "data: three\n\n"};
  host.http.on("GET", "https://api.example.com/logs", sse);
  auto p = Plugin::load(lib("test-services"), host);
  auto r = p.call("stream", {{"url", "https://api.example.com/logs"}});
  EXPECT_EQ(r.structured()["code"], 200);
  EXPECT_EQ(r.structured()["chunks"], json({"data: one\n\n", "data: two\n\n", "data: three\n\n"}));
  r = p.call("stream", {{"url", "https://api.example.com/logs"}, {"max_chunks", 1}});
  EXPECT_EQ(r.structured()["chunks"].size(), 1u);  // the plugin stopped reading
}

TEST(Harness, StateCredentialsPrincipalAndLogs) {
  FakeHost host;
  host.credentials["api_token"] = "sk-harness";
  host.principal = "user-7";
  host.set_state("seeded", "yes");
  auto p = Plugin::load(lib("test-services"), host);
  EXPECT_EQ(p.call("state", {{"op", "put"}, {"key", "k"}, {"value", "v"}}).structured()["ok"], true);
  EXPECT_EQ(host.state().at("k"), "v");
  EXPECT_EQ(p.call("state", {{"op", "get"}, {"key", "seeded"}}).structured()["value"], "yes");
  EXPECT_EQ(p.call("state", {{"op", "list"}, {"key", ""}}).structured()["items"].size(), 2u);
  p.call("state", {{"op", "delete"}, {"key", "k"}});
  EXPECT_EQ(host.state().count("k"), 0u);
  auto who = p.call("whoami").structured();
  EXPECT_EQ(who["has_token"], true);
  EXPECT_EQ(who["principal"], "user-7");
  auto r = p.call("log", {{"level", 4}, {"message", "careful"}});
  ASSERT_EQ(r.logs.size(), 1u);
  EXPECT_EQ(r.logs[0]["data"], "careful");
  EXPECT_FALSE(host.logs().empty());  // the plugin's own log line
}

TEST(Harness, TwoPluginsShareOneHost) {
  FakeHost host;
  auto echo = Plugin::load(lib("example-echo"), host);
  auto fixtures = Plugin::load(lib("conformance-fixtures"), host);
  EXPECT_EQ(echo.call("echo", {{"text", "first"}}).text(), "first");  // still its own tools
  EXPECT_EQ(fixtures.call("test_simple_text").text(), "This is a simple text response for testing.");
  EXPECT_EQ(echo.tools().size(), 2u);
  EXPECT_TRUE(echo.resources().empty());
}

TEST(Harness, ResourcesPromptsAndCompletion) {
  FakeHost host;
  auto p = Plugin::load(lib("conformance-fixtures"), host);
  ASSERT_EQ(p.resources().size(), 4u);
  EXPECT_EQ(p.resources()[3]["uriTemplate"], "test://template/{id}/data");
  EXPECT_EQ(p.read("test://static-text").result["contents"][0]["text"], "This is the content of the static text resource.");
  auto r = p.read("test://template/9/data");
  EXPECT_EQ(json::parse(r.result["contents"][0]["text"].get<std::string>())["id"], "9");
  r = p.read("test://template/missing/data");
  EXPECT_TRUE(r.is_error());
  EXPECT_EQ(r.error_status, MCPH_ERR_NOT_FOUND);
  EXPECT_THROW(p.read("test://elsewhere"), std::runtime_error);

  r = p.get_prompt("test_prompt_with_arguments", {{"arg1", "a"}, {"arg2", "b"}});
  EXPECT_EQ(r.result["messages"][0]["content"]["text"], "Prompt with arguments: arg1='a', arg2='b'");
  EXPECT_EQ(p.complete("test_prompt_with_arguments", "arg1", "par").result["values"], (json{"paris", "park", "party"}));
  EXPECT_EQ(p.complete("test://template/{id}/data", "id", "2").result["values"], (json{"200"}));
}

TEST(Harness, InputRoundsPlayTheClient) {
  FakeHost host;
  host.client_capabilities = {{"elicitation", json::object()}};
  auto p = Plugin::load(lib("conformance-fixtures"), host);
  auto first = p.call("test_input_required_result_request_state");
  ASSERT_TRUE(first.needs_input());
  EXPECT_EQ(first.input_requests["confirm"]["method"], "elicitation/create");
  ASSERT_TRUE(first.state.has_value());

  mcph::testing::CallOptions again;
  again.input_responses = {{"confirm", {{"action", "accept"}, {"content", {{"ok", true}}}}}};
  again.state = first.state;
  auto second = p.call("test_input_required_result_request_state", json::object(), again);
  EXPECT_FALSE(second.needs_input());
  EXPECT_EQ(second.text(), "state-ok: confirmed");

  // Asking through a capability the client lacks is recorded, not answered.
  auto missing = p.call("test_missing_capability");
  EXPECT_EQ(missing.missing_capability, "sampling");
  EXPECT_FALSE(missing.needs_input());
  // resource_updated() is recorded too.
  p.call("test_touch_watched_resource");
  EXPECT_EQ(host.updated_resources(), std::vector<std::string>{"test://watched-resource"});
}

}  // namespace
