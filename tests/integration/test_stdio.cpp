// The real build/mcp-host binary over stdio, driven as an MCP client drives it.
#include <filesystem>
#include <fstream>
#include <set>

#include "host_fixture.hpp"
#include "process.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;

const char* kPlugins = R"(  - name: echo
    library: example-echo
  - name: counter
    library: example-counter
  - name: svc
    library: test-services
    credentials: { api_token: "${MCPH_TEST_TOKEN}" }
)";

class StdioTest : public ::testing::Test {
 protected:
  void SetUp() override { write_config(kPlugins); }
  void write_config(const std::string& plugins, const std::string& server = "") {
    config_path = dir.str() + "/mcp-host.yaml";
    std::ofstream(config_path) << config_yaml(dir.str() + "/state", plugins, server);
  }
  std::unique_ptr<Process> spawn(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {MCPH_BINARY, "serve", "--config", config_path};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(argv, std::vector<std::string>{"MCPH_TEST_TOKEN=tok-VERY-SECRET-99"});
  }
  static json req(json id, const std::string& method, json params = json::object()) {
    return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
  }
  static void handshake(Process& p, const std::string& version = "2025-11-25") {
    p.send(req(0, "initialize", {{"protocolVersion", version}, {"capabilities", json::object()},
                                 {"clientInfo", {{"name", "test"}, {"version", "1"}}}}));
    json r = p.read_response(0);
    ASSERT_EQ(r["result"]["protocolVersion"], version) << r;
    p.send(json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  }

  TempDir dir;
  std::string config_path;
};

TEST_F(StdioTest, LegacyHandshakeListAndCall) {
  auto p = spawn();
  handshake(*p);
  p->send(req(1, "tools/list"));
  json tools = p->read_response(1)["result"]["tools"];
  ASSERT_EQ(tools.size(), 9u);
  EXPECT_EQ(tools[0]["name"], "echo");
  p->send(req(2, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "over stdio"}}}}));
  EXPECT_EQ(p->read_response(2)["result"]["content"][0]["text"], "over stdio");
  p->close_stdin();
  EXPECT_EQ(p->wait(), 0);
}

TEST_F(StdioTest, ModernDiscoverAndCall) {
  auto p = spawn();
  json meta{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
            {"io.modelcontextprotocol/clientCapabilities", json::object()}};
  // Claude Code's opening probe uses a string id.
  p->send(req("server-discover-probe-1", "server/discover", {{"_meta", meta}}));
  json r = p->read_response("server-discover-probe-1");
  EXPECT_EQ(r["result"]["supportedVersions"][0], "2026-07-28");
  p->send(req(0, "tools/call", {{"name", "add"}, {"arguments", {{"a", 20}, {"b", 22}}}, {"_meta", meta}}));
  r = p->read_response(0);
  EXPECT_EQ(r["result"]["structuredContent"]["sum"], 42);
  EXPECT_EQ(r["result"]["resultType"], "complete");
}

TEST_F(StdioTest, ProgressIncreasesUntilTheResult) {
  auto p = spawn();
  handshake(*p);
  p->send(req(3, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 5}, {"delay_ms", 5}}},
                                {"_meta", {{"progressToken", "p1"}}}}));
  std::vector<json> notes;
  json r = p->read_response(3, &notes);
  EXPECT_EQ(r["result"]["structuredContent"]["counted"], 5);
  ASSERT_EQ(notes.size(), 5u);
  double last = 0;
  for (const auto& n : notes) {
    EXPECT_EQ(n["method"], "notifications/progress");
    EXPECT_GT(n["params"]["progress"].get<double>(), last);
    last = n["params"]["progress"];
  }
  EXPECT_EQ(last, 5);
}

TEST_F(StdioTest, CancelStopsASlowCallPromptly) {
  auto p = spawn();
  handshake(*p);
  p->send(req(4, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 1000}, {"delay_ms", 20}}},
                                {"_meta", {{"progressToken", 4}}}}));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p->read()["method"], "notifications/progress");
  p->send(json{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"},
               {"params", {{"requestId", 4}, {"reason", "user pressed stop"}}}});
  // Within a moment the progress stops; a ping is answered and call 4 never is.
  const auto t0 = std::chrono::steady_clock::now();
  p->send(req(5, "ping"));
  std::vector<json> before;
  ASSERT_FALSE(p->read_response(5, &before).is_null());
  EXPECT_LE(before.size(), 3u);  // at most a step or two that were already under way
  EXPECT_FALSE(p->read(std::chrono::milliseconds(300)).is_object()) << "output after cancellation";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

// A tool that has been quick runs on the reader itself (no hand-off); when one of its calls
// turns slow, another thread takes over the reading within a few ms: other requests are
// answered, progress goes out as it happens, and a cancel still reaches the call.
TEST_F(StdioTest, AQuickToolTurnedSlowHoldsNothingUp) {
  auto p = spawn({"--log-level", "debug"});
  handshake(*p);
  for (int id = 10; id < 15; ++id) {  // quick calls: the tool is learned as quick
    p->send(req(id, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 1}, {"delay_ms", 0}}}}));
    ASSERT_EQ(p->read_response(id)["result"]["structuredContent"]["counted"], 1);
  }
  const auto t0 = std::chrono::steady_clock::now();
  p->send(req(20, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 100}, {"delay_ms", 20}}},
                                 {"_meta", {{"progressToken", 20}}}}));
  ASSERT_EQ(p->read()["method"], "notifications/progress");  // as it happens, not with the answer
  p->send(req(21, "ping"));
  std::vector<json> between;
  ASSERT_FALSE(p->read_response(21, &between).is_null());
  p->send(req(22, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "meanwhile"}}}}));
  EXPECT_EQ(p->read_response(22, &between)["result"]["content"][0]["text"], "meanwhile");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));  // the call takes 2 s
  for (const auto& m : between) EXPECT_NE(m.value("id", json()), 20) << "the slow call ended early";
  p->send(json{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 20}}}});
  p->send(req(23, "ping"));
  ASSERT_FALSE(p->read_response(23).is_null());
  const json after = p->read(std::chrono::milliseconds(300));
  EXPECT_FALSE(after.is_object() && after.value("id", json()) == 20) << after;
  p->close_stdin();
  EXPECT_EQ(p->wait(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1900));
  // (An isolated instance's call also runs on the reader when no other line waits, if its
  // tool has been quick: under ASan and load its quick calls take about the 5 ms that
  // counts as quick, so there it may have gone to a worker instead.)
  const char* isolation = std::getenv("MCP_HOST_ISOLATION");
  if (isolation == nullptr || std::string(isolation) != "process") {
    EXPECT_NE(p->stderr_text().find("stdio: a call on the reader runs long; another thread reads now"), std::string::npos);
  }
}

// Only calls may overtake one another: a message that changes the session (initialize) is
// done before the next line is read, however long it takes. (A 2 MB initialize takes the
// reader well past the 1 ms after which a standby relieves a reader busy with a call.)
TEST_F(StdioTest, ALongInitializeIsDoneBeforeTheCallAfterIt) {
  for (int round = 0; round < 2; ++round) {
    auto p = spawn();
    json init = req(0, "initialize", {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()},
                                      {"clientInfo", {{"name", "test"}, {"version", "1"}}}});
    init["params"]["capabilities"]["experimental"]["padding"] = std::vector<std::string>(2 * 1024, std::string(1000, 'x'));
    p->write_raw(init.dump() + "\n" + json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}.dump() + "\n" +
                 req(1, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "after"}}}}).dump() + "\n");
    auto answers = p->read_responses(2, std::chrono::seconds(30));  // (in the order they come: a wrong one may come first)
    EXPECT_EQ(answers["0"]["result"]["protocolVersion"], "2025-06-18") << answers["0"];
    EXPECT_EQ(answers["1"]["result"]["content"][0]["text"], "after") << answers["1"];
  }
}

TEST_F(StdioTest, MalformedLinesAreAnsweredAndServingContinues) {
  auto p = spawn();
  p->write_raw("{this is not json\n");
  json r = p->read();
  EXPECT_EQ(r["error"]["code"], -32700);
  EXPECT_TRUE(r["id"].is_null());
  p->write_raw("[]\n\n   \n");
  EXPECT_EQ(p->read()["error"]["code"], -32600);
  handshake(*p);
  p->send(req(6, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "alive"}}}}));
  EXPECT_EQ(p->read_response(6)["result"]["content"][0]["text"], "alive");
}

TEST_F(StdioTest, FailingHandlersYieldToolErrorsAndServingContinues) {
  auto p = spawn();
  handshake(*p);
  p->send(req(7, "tools/call", {{"name", "fail"}, {"arguments", {{"mode", "throw"}}}}));
  json r = p->read_response(7);
  EXPECT_TRUE(r["result"]["isError"].get<bool>());
  p->send(req(8, "tools/call", {{"name", "fail"}, {"arguments", {{"mode", "tool_error"}}}}));
  EXPECT_EQ(p->read_response(8)["result"]["content"][0]["text"], "upstream said no");
  p->send(req(9, "tools/call", {{"name", "fail"}, {"arguments", {{"mode", "secret"}}}}));
  r = p->read_response(9);
  EXPECT_EQ(r.dump().find("VERY-SECRET"), std::string::npos) << r;
  p->send(req(10, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "ok"}}}}));
  EXPECT_EQ(p->read_response(10)["result"]["content"][0]["text"], "ok");
  p->close_stdin();
  EXPECT_EQ(p->wait(), 0);
  EXPECT_EQ(p->stderr_text().find("VERY-SECRET"), std::string::npos);
}

TEST_F(StdioTest, ManyConcurrentCallsAllAnswered) {
  auto p = spawn();
  handshake(*p);
  std::string batch;
  for (int i = 100; i < 164; ++i) {
    batch += req(i, "tools/call", {{"name", "echo"}, {"arguments", {{"text", std::to_string(i)}}}}).dump() + "\n";
  }
  p->write_raw(batch);
  std::set<int> seen;
  for (int i = 0; i < 64; ++i) {
    json r = p->read();
    ASSERT_TRUE(r.is_object());
    EXPECT_EQ(r["result"]["content"][0]["text"], std::to_string(r["id"].get<int>()));
    seen.insert(r["id"].get<int>());
  }
  EXPECT_EQ(seen.size(), 64u);
}

// Lines as the pipe delivers them: several in one read, one cut across two reads, and a
// last one without a newline before the end of input. Each is answered (calls run
// together, so the first three answers may come in any order).
TEST_F(StdioTest, LinesCutAcrossReadsAndALastLineWithoutNewlineAreAllAnswered) {
  auto p = spawn();
  handshake(*p);
  auto line = [](int id) { return req(id, "tools/call", {{"name", "echo"}, {"arguments", {{"text", std::to_string(id)}}}}).dump(); };
  const std::string cut = line(4);
  p->write_raw(line(1) + "\n" + line(2) + "\n" + line(3) + "\n" + cut.substr(0, cut.size() / 2));
  auto first = p->read_responses(3);
  ASSERT_EQ(first.size(), 3u);
  for (int id = 1; id <= 3; ++id) EXPECT_EQ(first[std::to_string(id)]["result"]["content"][0]["text"], std::to_string(id));
  p->write_raw(cut.substr(cut.size() / 2) + "\n" + line(5));
  EXPECT_EQ(p->read_response(4)["result"]["content"][0]["text"], "4");
  p->close_stdin();
  EXPECT_EQ(p->read_response(5)["result"]["content"][0]["text"], "5");
  EXPECT_EQ(p->wait(), 0);
}

TEST_F(StdioTest, EofExitsZeroAfterFinishingCalls) {
  auto p = spawn();
  handshake(*p);
  p->send(req(11, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 3}, {"delay_ms", 50}}}}));
  p->close_stdin();
  EXPECT_EQ(p->read_response(11)["result"]["structuredContent"]["counted"], 3);
  EXPECT_EQ(p->wait(), 0);
}

TEST_F(StdioTest, SigtermCancelsLongCallsAfterTheGracePeriodAndExitsZero) {
  write_config(kPlugins, "  shutdown_grace_ms: 200\n");
  auto p = spawn();
  handshake(*p);
  p->send(req(12, "tools/call", {{"name", "slow_count"}, {"arguments", {{"n", 10000}, {"delay_ms", 10}}},
                                 {"_meta", {{"progressToken", 1}}}}));
  ASSERT_EQ(p->read()["method"], "notifications/progress");  // the call is running
  const auto t0 = std::chrono::steady_clock::now();
  p->signal(SIGTERM);
  json r = p->read_response(12);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.is_object());
  EXPECT_TRUE(r["result"]["isError"].get<bool>()) << r;
  EXPECT_EQ(r["result"]["content"][0]["text"], "cancelled") << r;
  EXPECT_EQ(p->wait(), 0);
  EXPECT_GE(waited, std::chrono::milliseconds(150));  // the grace period was given
  EXPECT_LT(waited, std::chrono::seconds(3));
}

TEST_F(StdioTest, NothingButMcpOnStdout) {
  write_config(kPlugins);
  auto p = spawn({"--log-level", "debug"});
  handshake(*p);
  p->send(req(13, "tools/call", {{"name", "log"}, {"arguments", {{"level", 1}, {"message", "hi"}}}}));
  std::vector<json> other;
  ASSERT_FALSE(p->read_response(13, &other).is_null());
  for (const auto& m : other) EXPECT_EQ(m["jsonrpc"], "2.0");
  p->close_stdin();
  EXPECT_EQ(p->wait(), 0);
  EXPECT_NE(p->stderr_text().find("log tool called"), std::string::npos);  // plugin log went to stderr
}

TEST_F(StdioTest, StateSurvivesKill9) {
  auto call = [](Process& p, int id, json args) {
    p.send(req(id, "tools/call", {{"name", "state"}, {"arguments", args}}));
    return p.read_response(id)["result"]["structuredContent"];
  };
  {
    auto p = spawn();
    handshake(*p);
    ASSERT_EQ(call(*p, 1, {{"op", "put"}, {"key", "run/1"}, {"value", "started"}})["ok"], true);
    p->signal(SIGKILL);
    EXPECT_EQ(p->wait(), 128 + SIGKILL);
  }
  auto p = spawn();
  handshake(*p);
  json got = call(*p, 2, {{"op", "get"}, {"key", "run/1"}});
  EXPECT_EQ(got["found"], true);
  EXPECT_EQ(got["value"], "started");
  EXPECT_EQ(call(*p, 3, {{"op", "list"}, {"key", "run/"}})["items"], json({{"run/1", "started"}}));
}

// Claude Code refuses tool names over 64 characters once it adds mcp__<server>__:
// check-config says which tools a long prefix pushes over, and still passes.
TEST_F(StdioTest, CheckConfigWarnsOfToolNamesTooLongForClaudeCode) {
  testing::TempDir dir;
  const std::string prefix = "an_unusually_long_prefix_for_one_team_here_";  // 43 characters
  const std::string cfg = dir.str() + "/mcp-host.yaml";
  std::ofstream(cfg) << testing::config_yaml(dir.str() + "/state",
                                             "  - { name: echo, library: example-echo, tool_prefix: " + prefix + " }\n");
  auto [code, out] = run_command({MCPH_BINARY, "check-config", "--config", cfg});
  EXPECT_EQ(code, 0) << out;
  // mcp__mcp-host__ (15) + the prefix (43) + "echo" (4) = 62: fits; + "add" is shorter still;
  // a longer tool of the same instance would not. Only names over 64 are named.
  EXPECT_EQ(out.find("warn tool '" + prefix + "echo'"), std::string::npos) << out;
  const std::string longer = prefix + "xyz";  // 46 + echo = 65 with the server's part
  std::ofstream(cfg) << testing::config_yaml(dir.str() + "/state",
                                             "  - { name: echo, library: example-echo, tool_prefix: " + longer + " }\n");
  std::tie(code, out) = run_command({MCPH_BINARY, "check-config", "--config", cfg});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("warn tool '" + longer + "echo' (instance 'echo'): Claude Code calls it mcp__mcp-host__" + longer +
                     "echo, 65 characters, over its 64"),
            std::string::npos)
      << out;
}

TEST_F(StdioTest, CommandLineTools) {
  auto [code, out] = run_command({MCPH_BINARY, "tools", "--config", config_path}, {"MCPH_TEST_TOKEN=x"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("slow_count"), std::string::npos);
  EXPECT_NE(out.find("9 tools from 3 plugin instances"), std::string::npos) << out;
  EXPECT_EQ(out.find("as MCP tasks"), std::string::npos) << out;  // none of these plugins says so
  {
    TempDir dir;
    const std::string cfg = dir.str() + "/tasks.yaml";
    std::ofstream(cfg) << testing::config_yaml(dir.str() + "/state",
                                               "  - { name: counter, library: example-counter, task_support: { slow_count: required } }\n");
    std::tie(code, out) = run_command({MCPH_BINARY, "tools", "--config", cfg});
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("as MCP tasks: slow_count (required)"), std::string::npos) << out;
  }

  std::tie(code, out) = run_command({MCPH_BINARY, "call", "add", "--args", R"({"a":1,"b":2})", "--config", config_path},
                                    {"MCPH_TEST_TOKEN=x"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\"sum\": 3"), std::string::npos) << out;

  std::tie(code, out) = run_command({MCPH_BINARY, "call", "add", "--args", R"({"a":"x","b":2})", "--config", config_path},
                                    {"MCPH_TEST_TOKEN=x"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("/a"), std::string::npos) << out;

  std::tie(code, out) = run_command({MCPH_BINARY, "check-config", "--config", config_path}, {"MCPH_TEST_TOKEN=x"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("configuration OK: 3 plugin instances, 9 tools"), std::string::npos) << out;
  EXPECT_EQ(out.find("warn tool"), std::string::npos) << out;

  std::tie(code, out) = run_command({MCPH_BINARY, "--version"});
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("mcp-host 0."), std::string::npos) << out;
}

// The HTTP stack (cpp-httplib, libssl, libcrypto) is a module mcp-host opens only to serve
// or send HTTP: a stdio host never maps it, and a host without it still serves stdio and
// says clearly why it cannot serve HTTP.
TEST_F(StdioTest, TheHttpStackIsOpenedOnlyForHttp) {
  auto maps_of = [](pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  {
    auto p = spawn();
    handshake(*p);
    p->send(req(1, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "no HTTP here"}}}}));
    EXPECT_EQ(p->read_response(1)["result"]["content"][0]["text"], "no HTTP here");
    const std::string maps = maps_of(p->pid());
    ASSERT_NE(maps.find("/mcp-host\n"), std::string::npos) << "not the host's maps?";
    EXPECT_EQ(maps.find("mcp-host-http.so"), std::string::npos);
    EXPECT_EQ(maps.find("libcpp-httplib"), std::string::npos);
    EXPECT_EQ(maps.find("libssl"), std::string::npos);
    // A plugin's first outbound request opens it (port 1: refused at once).
    p->send(req(2, "tools/call", {{"name", "fetch"}, {"arguments", {{"url", "http://127.0.0.1:1/"}}}}));
    json r = p->read_response(2);
    EXPECT_EQ(r["result"]["isError"], true) << r;
    EXPECT_NE(maps_of(p->pid()).find("mcp-host-http.so"), std::string::npos);
    p->close_stdin();
    EXPECT_EQ(p->wait(), 0);
  }

  // mcp-host alone in a folder: no mcp-host-http.so beside it or in ../lib/mcp-host.
  const std::string lone = dir.str() + "/bin/mcp-host";
  std::filesystem::create_directories(dir.str() + "/bin");
  std::filesystem::copy_file(MCPH_BINARY, lone);
  std::filesystem::permissions(lone, std::filesystem::perms::owner_exec, std::filesystem::perm_options::add);
  // (every instance isolated, in CI's second pass: the runner is not beside the copy either)
  const std::string runner = "MCP_HOST_PLUGIN_RUNNER=" + std::filesystem::path(MCPH_BINARY).parent_path().string() + "/mcp-host-plugin";
  const std::vector<std::string> env = {"MCPH_TEST_TOKEN=x", runner};
  auto serve_http = [&](const std::string& module) {  // module: MCP_HOST_HTTP_MODULE, or "" for none
    std::vector<std::string> with = env;
    if (!module.empty()) with.push_back("MCP_HOST_HTTP_MODULE=" + module);
    return run_command({lone, "serve", "--config", config_path, "--transport", "http", "--listen", "127.0.0.1:0"}, with);
  };
  auto [code, out] = serve_http("");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("the HTTP stack (mcp-host-http.so) was not found beside mcp-host"), std::string::npos) << out;
  std::tie(code, out) = serve_http(dir.str() + "/nowhere.so");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("cannot open the HTTP stack " + dir.str() + "/nowhere.so"), std::string::npos) << out;
  // A library that is not the stack (a plugin) is refused by name.
  std::tie(code, out) = serve_http(std::string(MCPH_PLUGIN_DIR) + "/libexample-echo.so");
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("is not an mcp-host HTTP stack"), std::string::npos) << out;

  Process p({lone, "serve", "--config", config_path}, env);
  handshake(p);
  p.send(req(1, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "stdio still"}}}}));
  EXPECT_EQ(p.read_response(1)["result"]["content"][0]["text"], "stdio still");
  // A plugin's outbound request is told why there is no HTTP.
  p.send(req(2, "tools/call", {{"name", "fetch"}, {"arguments", {{"url", "http://127.0.0.1:1/"}}}}));
  json r = p.read_response(2);
  EXPECT_EQ(r["result"]["isError"], true) << r;
  EXPECT_NE(r.dump().find("mcp-host-http.so"), std::string::npos) << r;
  p.close_stdin();
  EXPECT_EQ(p.wait(), 0);
}

TEST_F(StdioTest, ConfigErrorsAreClearAndFailStartup) {
  std::ofstream(config_path) << "state_dir: /tmp/x\nserver:\n  transprt: stdio\n";
  auto [code, out] = run_command({MCPH_BINARY, "serve", "--config", config_path});
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find(":3:"), std::string::npos) << out;
  EXPECT_NE(out.find("transprt"), std::string::npos) << out;

  // A credential that references an unset variable names the variable, not a crash.
  write_config(kPlugins);
  std::tie(code, out) = run_command({MCPH_BINARY, "check-config", "--config", config_path});
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("MCPH_TEST_TOKEN"), std::string::npos) << out;

  write_config("  - name: bad\n    library: test-bad-major\n");
  std::tie(code, out) = run_command({MCPH_BINARY, "check-config", "--config", config_path});
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("ABI 2.3"), std::string::npos) << out;
}

}  // namespace
}  // namespace mcph::testing
