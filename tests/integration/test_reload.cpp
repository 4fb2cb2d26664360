// Live reconfiguration through the real binary: the YAML is rewritten under a running host
// and reloaded (mcp-host reload, SIGHUP, reload.watch). Over stdio and HTTP, in both eras: a
// long call on a removed instance completes, new calls to its tools are unknown, and the
// client is told the list changed. A token rotated in a ${file:} reaches the fake
// Codesphere API on the next call; a broken file changes nothing and says where.
#include <algorithm>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "codesphere_fake.hpp"
#include "http_host.hpp"
#include "process.hpp"
#include "rpc.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kEcho = "  - name: echo\n    library: example-echo\n";
const std::string kFixtures = "  - name: fix\n    library: conformance-fixtures\n    tool_prefix: fx_\n";

json meta26() {
  return json{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
              {"io.modelcontextprotocol/clientCapabilities", json::object()}};
}
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A configuration file the test rewrites, and `mcp-host reload` for it.
class ReloadTest : public ::testing::Test {
 protected:
  std::string cfg() const { return dir.str() + "/mcp-host.yaml"; }
  void write(const std::string& plugins, const std::string& server = "", const std::string& top = "") {
    // Replaced by rename, as editors and deploy tools do.
    const std::string tmp = cfg() + ".new";
    std::ofstream(tmp) << top << config_yaml(dir.str() + "/state", plugins, server);
    std::filesystem::rename(tmp, cfg());
  }
  // Runs `mcp-host reload` and returns its exit code and everything it printed.
  std::pair<int, std::string> reload() {
    Process p({MCPH_BINARY, "reload", "--config", cfg()});
    std::string out;
    while (auto line = p.read_line(30s)) out += *line + "\n";
    const auto code = p.wait(30s);
    return {code.value_or(-1), out + p.stderr_text()};
  }
  std::unique_ptr<Process> serve(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv{MCPH_BINARY, "serve", "--config", cfg()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Process>(argv);
  }

  TempDir dir;
};

// ---- stdio ---------------------------------------------------------------------------------

TEST_F(ReloadTest, StdioLegacyRemovedInstanceFinishesItsCallAndTheClientIsTold) {
  write(kEcho + kFixtures);
  auto p = serve();
  p->send(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  json init = p->read_response(0);
  ASSERT_EQ(init["result"]["capabilities"]["tools"]["listChanged"], true) << init << p->stderr_text();
  EXPECT_EQ(init["result"]["capabilities"]["prompts"]["listChanged"], true);

  p->send(call(1, "fx_slow_compute", {{"seconds", 1.0}, {"label", "long"}}));
  // stdio takes lines in order: once the ping is answered, the call has begun.
  p->send(req(2000, "ping"));
  std::vector<json> early;
  ASSERT_TRUE(p->read_response(2000, &early).contains("result"));
  write(kEcho);
  auto [code, out] = reload();
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(contains(out, "removed fix")) << out;
  EXPECT_TRUE(contains(out, "1 unchanged")) << out;

  std::vector<json> seen = early;
  p->send(call(2, "fx_greet", {{"name", "x"}}));
  json after = p->read_response(2, &seen);
  EXPECT_EQ(after["error"]["code"], -32602) << after;
  EXPECT_TRUE(contains(after["error"].value("message", ""), "Unknown tool")) << after;
  p->send(call(3, "echo", {{"text", "kept"}}));
  EXPECT_EQ(text_of(p->read_response(3, &seen)), "kept");  // the unchanged instance serves on
  // (Under load the long call may end before the echo's answer comes: then it is in `seen`.)
  auto early_answer = std::find_if(seen.begin(), seen.end(), [](const json& m) { return m.value("id", json()) == 1; });
  json long_call = early_answer != seen.end() ? *early_answer : p->read_response(1, &seen);
  EXPECT_EQ(text_of(long_call), "computed long") << long_call << p->stderr_text();
  EXPECT_TRUE(std::any_of(seen.begin(), seen.end(), [](const json& m) { return m.value("method", "") == "notifications/tools/list_changed"; }));

  // Put back by SIGHUP: the tool is there again, under a new instance.
  write(kEcho + kFixtures);
  p->signal(SIGHUP);
  json greet;
  for (int i = 0; i < 100 && !greet.contains("result"); ++i) {
    std::this_thread::sleep_for(50ms);
    p->send(call(10 + i, "fx_greet", {{"name", "again"}}));
    greet = p->read_response(10 + i);
  }
  EXPECT_EQ(text_of(greet), "Hello, again!") << greet << p->stderr_text();
  p->close_stdin();
  EXPECT_EQ(p->wait(15s), 0) << p->stderr_text();
}

// The stdio reader waits for input with nothing of a reload's old configuration in hand: a
// removed instance ends while its client says nothing.
TEST_F(ReloadTest, ARemovedInstanceEndsWhileTheStdioClientIsQuiet) {
  write(kEcho + kFixtures);
  auto p = serve({"--log-level", "info"});
  p->send(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  ASSERT_TRUE(p->read_response(0).contains("result")) << p->stderr_text();
  write(kEcho);
  auto [code, out] = reload();
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(eventually([&] { return contains(p->stderr_text(), "instance 'fix' (removed or replaced) drained; ending it"); }, 5s))
      << p->stderr_text();
  p->close_stdin();
  EXPECT_EQ(p->wait(15s), 0) << p->stderr_text();
}

// A reload still running when the host stops (SIGHUP, then end of input at once) is done
// before the host drains: it swaps its registry into an engine that is still there. (Under
// ASan the engine's use after its end failed this test before the fix.)
TEST_F(ReloadTest, AReloadRunningAtShutdownEndsBeforeTheHost) {
  write(kEcho);
  auto p = serve();
  p->send(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  ASSERT_TRUE(p->read_response(0).contains("result")) << p->stderr_text();
  write(kEcho + "  - name: slow\n    library: test-hostile\n    settings: { create_delay_ms: 500 }\n");
  p->signal(SIGHUP);
  std::this_thread::sleep_for(150ms);  // the reload is creating the slow instance
  p->close_stdin();
  EXPECT_EQ(p->wait(15s), 0) << p->stderr_text();
  EXPECT_TRUE(contains(p->stderr_text(), "reloaded")) << p->stderr_text();
}

TEST_F(ReloadTest, StdioModernListenStreamHearsTheChange) {
  write(kEcho + kFixtures, "  list_ttl_ms: 5000\n");
  auto p = serve();
  p->send(req(0, "tools/list", {{"_meta", meta26()}}));
  EXPECT_EQ(p->read_response(0)["result"]["ttlMs"], 5000);  // what a client may cache, as configured
  p->send(req("listen:0", "subscriptions/listen", {{"notifications", {{"toolsListChanged", true}}}, {"_meta", meta26()}}));
  json ack = p->read();
  ASSERT_EQ(ack["method"], "notifications/subscriptions/acknowledged") << ack << p->stderr_text();
  EXPECT_EQ(ack["params"]["notifications"]["toolsListChanged"], true) << ack;

  p->send(req(1, "tools/call", {{"name", "fx_slow_compute"}, {"arguments", {{"seconds", 1.0}, {"label", "long"}}}, {"_meta", meta26()}}));
  p->send(req(2000, "tools/list", {{"_meta", meta26()}}));  // answered: the call has begun
  ASSERT_TRUE(p->read_response(2000).contains("result"));
  write(kEcho, "  list_ttl_ms: 5000\n");
  p->signal(SIGHUP);
  json changed;
  std::vector<json> seen;
  for (int i = 0; i < 100 && changed.is_null(); ++i) {
    p->send(req(100 + i, "tools/list", {{"_meta", meta26()}}));
    json list = p->read_response(100 + i, &seen);
    for (const auto& m : seen) {
      if (m.value("method", "") == "notifications/tools/list_changed") changed = m;
    }
    if (changed.is_null()) std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(changed.is_null()) << p->stderr_text();
  EXPECT_EQ(changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen:0") << changed;
  p->send(req(2, "tools/call", {{"name", "fx_greet"}, {"arguments", {{"name", "x"}}}, {"_meta", meta26()}}));
  EXPECT_TRUE(contains(p->read_response(2)["error"].value("message", ""), "Unknown tool"));
  EXPECT_EQ(text_of(p->read_response(1)), "computed long") << p->stderr_text();
}

TEST_F(ReloadTest, ABrokenFileChangesNothingAndNamesTheLine) {
  write(kEcho + kFixtures);
  auto p = serve();
  p->send(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  ASSERT_TRUE(p->read_response(0).contains("result")) << p->stderr_text();
  // Line 10: the fixtures entry's third line (after state_dir, plugin_paths, server x2, plugins, echo x2, fix x2).
  write(kEcho + "  - name: fix\n    library: conformance-fixtures\n    tool_prefx: fx_\n");
  auto [code, out] = reload();
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(contains(out, "mcp-host.yaml:10: unknown key 'tool_prefx'")) << out;
  EXPECT_TRUE(contains(out, "still serving the previous configuration")) << out;
  p->send(call(1, "fx_greet", {{"name", "still"}}));
  EXPECT_EQ(text_of(p->read_response(1)), "Hello, still!");
  EXPECT_TRUE(contains(p->stderr_text(), "mcp-host.yaml:10: unknown key 'tool_prefx'")) << p->stderr_text();

  // A plugin that cannot load (built for another ABI) is as good as a broken file: nothing changes.
  write(kEcho + kFixtures + "  - name: bad\n    library: test-bad-major\n");
  std::tie(code, out) = reload();
  EXPECT_EQ(code, 1) << out;
  EXPECT_TRUE(contains(out, "'bad'")) << out;
  p->send(call(2, "fx_greet", {{"name", "still"}}));
  EXPECT_EQ(text_of(p->read_response(2)), "Hello, still!");
}

TEST_F(ReloadTest, ServerSettingsNeedARestartAndLongNamesAreWarnedAbout) {
  write(kEcho);
  auto p = serve();
  p->send(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  ASSERT_TRUE(p->read_response(0).contains("result")) << p->stderr_text();
  const std::string prefix(48, 'p');
  write(kEcho + "  - name: long\n    library: example-echo\n    tool_prefix: " + prefix + "_\n", "  call_timeout_ms: 1234\n");
  auto [code, out] = reload();
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(contains(out, "added long")) << out;
  EXPECT_TRUE(contains(out, "server (limits and timeouts) changed in the file; it takes effect only after a restart")) << out;
  EXPECT_TRUE(contains(out, "warning: tool '" + prefix + "_echo' (instance 'long'): Claude Code calls it")) << out;
}

TEST_F(ReloadTest, NoRunningHostIsAClearError) {
  write(kEcho);
  auto [code, out] = reload();
  EXPECT_EQ(code, 1);
  EXPECT_TRUE(contains(out, "no mcp-host is serving with state_dir " + dir.str() + "/state")) << out;
}

// A token rotated in the file a ${file:} names: reload.watch sees it, the next call carries
// it, and the session never noticed.
TEST_F(ReloadTest, ARotatedTokenReachesTheApiOnTheNextCall) {
  CodesphereFake fake({"tok-old-4f1c", "tok-new-9b2e"});
  ASSERT_GT(fake.port(), 0);
  const std::string token = dir.str() + "/token";
  std::ofstream(token) << "tok-old-4f1c\n";
  write("  - name: codesphere\n    library: codesphere\n    credentials: { api_token: \"${file:token}\" }\n"
        "    settings: { base_url: \"" + fake.base() + "/api\" }\n",
        "", "reload: { watch: true }\n");
  auto p = serve();
  p->send(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  ASSERT_TRUE(p->read_response(0).contains("result")) << p->stderr_text();
  auto last_user = [&] {
    auto reqs = fake.requests();
    return reqs.empty() ? -2 : reqs.back()["user"].get<int>();
  };
  p->send(call(1, "list_teams"));
  json r = p->read_response(1);
  EXPECT_FALSE(r["result"].value("isError", false)) << r;
  EXPECT_EQ(last_user(), 0);

  {
    std::ofstream(token + ".new") << "tok-new-9b2e\n";
    std::filesystem::rename(token + ".new", token);
  }
  int user = -2;
  for (int i = 0; i < 100 && user != 1; ++i) {
    std::this_thread::sleep_for(50ms);
    p->send(call(10 + i, "list_teams"));
    r = p->read_response(10 + i);
    user = last_user();
  }
  EXPECT_EQ(user, 1) << p->stderr_text();
  EXPECT_FALSE(r["result"].value("isError", false)) << r;
  // The reload logs what it did just after the swap that the call above may already have seen.
  std::string log = p->stderr_text();
  for (int i = 0; i < 100 && !contains(log, "replaced codesphere"); ++i) {
    std::this_thread::sleep_for(50ms);
    log = p->stderr_text();
  }
  EXPECT_TRUE(contains(log, "replaced codesphere")) << log;
  EXPECT_FALSE(contains(log, "tok-old-4f1c") || contains(log, "tok-new-9b2e")) << log;
}

// ---- HTTP ----------------------------------------------------------------------------------

// Reads an SSE response on its own connection, collecting its messages until `done` says so.
class SseReader {
 public:
  SseReader(int port, httplib::Request request, std::function<bool(const std::vector<json>&)> done) {
    thread_ = std::thread([this, port, request = std::move(request), done = std::move(done)]() mutable {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(20, 0);
      request.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
        std::lock_guard lock(mutex_);
        for (auto& m : sse_messages(std::string(data, len))) messages_.push_back(std::move(m));
        return !done(messages_);
      };
      c.send(request);
    });
  }
  ~SseReader() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  std::vector<json> messages() {
    std::lock_guard lock(mutex_);
    return messages_;
  }

 private:
  std::mutex mutex_;
  std::vector<json> messages_;
  std::thread thread_;
};

bool has_method(const std::vector<json>& messages, const std::string& method) {
  return std::any_of(messages.begin(), messages.end(), [&](const json& m) { return m.value("method", "") == method; });
}

class HttpReloadTest : public ReloadTest {
 protected:
  void SetUp() override {
    write(kEcho + kFixtures, "  http:\n    listen: 127.0.0.1:0\n");
    p = serve({"--transport", "http"});
    const std::regex url_re("at http://127\\.0\\.0\\.1:([0-9]+)/");
    std::smatch m;
    for (int i = 0; i < 500 && port == 0; ++i) {
      const std::string err = p->stderr_text();
      if (std::regex_search(err, m, url_re)) port = std::stoi(m[1]);
      else std::this_thread::sleep_for(10ms);
    }
    ASSERT_GT(port, 0) << p->stderr_text();
  }
  httplib::Request post(const json& body, httplib::Headers headers) {
    httplib::Request r;
    r.method = "POST";
    r.path = "/mcp";
    r.headers = std::move(headers);
    r.headers.emplace("Accept", "application/json, text/event-stream");
    r.headers.emplace("Content-Type", "application/json");
    r.body = body.dump();
    return r;
  }
  json send(const json& body, const httplib::Headers& headers) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(20, 0);
    auto r = c.send(post(body, headers));
    if (!r) return json();
    if (r->get_header_value("Content-Type").starts_with("text/event-stream")) {
      auto messages = sse_messages(r->body);
      return messages.empty() ? json() : messages.back();
    }
    return json::parse(r->body, nullptr, false);
  }
  // Waits (up to 10 s) until /healthz shows `ready`: no guessing how long the host takes.
  bool until_health(const std::function<bool(const json&)>& ready) {
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; i < 500; ++i) {
      if (ready(body_json(c.Get("/healthz")))) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  static bool fix_is_busy(const json& health) {
    for (const auto& i : health.value("plugins", json::array())) {
      if (i.value("name", "") == "fix" && i.value("calls_in_flight", 0) > 0) return true;
    }
    return false;
  }
  static httplib::Headers modern(const std::string& method, const std::string& name = "") {
    httplib::Headers h{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", method}};
    if (!name.empty()) h.emplace("Mcp-Name", name);
    return h;
  }
  std::unique_ptr<Process> p;
  int port = 0;
};

TEST_F(HttpReloadTest, LegacySessionHearsListChangedOnItsStream) {
  httplib::Client c("127.0.0.1", port);
  auto init = c.Post("/mcp", httplib::Headers{{"Accept", "application/json, text/event-stream"}},
                     req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                           {"clientInfo", {{"name", "t"}, {"version", "1"}}}}).dump(),
                     "application/json");
  ASSERT_TRUE(init && init->status == 200);
  const std::string sid = init->get_header_value("Mcp-Session-Id");
  const httplib::Headers session{{"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", "2025-11-25"}};
  httplib::Request get;
  get.method = "GET";
  get.path = "/mcp";
  get.headers = session;
  get.headers.emplace("Accept", "text/event-stream");
  SseReader stream(port, get, [](const std::vector<json>& m) { return has_method(m, "notifications/tools/list_changed"); });
  ASSERT_TRUE(until_health([](const json& h) { return h["http"].value("streams", 0) > 0; })) << "the GET stream did not open";

  auto long_call = std::async(std::launch::async, [&] { return send(call(1, "fx_slow_compute", {{"seconds", 2.0}, {"label", "long"}}), session); });
  ASSERT_TRUE(until_health(fix_is_busy)) << "the long call did not start";
  write(kEcho, "  http:\n    listen: 127.0.0.1:0\n");
  auto [code, out] = reload();
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(contains(send(call(2, "fx_greet", {{"name", "x"}}), session)["error"].value("message", ""), "Unknown tool"));
  EXPECT_EQ(text_of(long_call.get()), "computed long") << p->stderr_text();
  stream.join();
  EXPECT_TRUE(has_method(stream.messages(), "notifications/tools/list_changed")) << p->stderr_text();
}

TEST_F(HttpReloadTest, ModernListenStreamHearsListChanged) {
  const json listen = req("listen:0", "subscriptions/listen", {{"notifications", {{"toolsListChanged", true}, {"promptsListChanged", true}}}, {"_meta", meta26()}});
  SseReader stream(port, post(listen, modern("subscriptions/listen")),
                   [](const std::vector<json>& m) { return has_method(m, "notifications/tools/list_changed"); });
  auto call26 = [&](int id, const std::string& tool, const json& args) {
    return send(req(id, "tools/call", {{"name", tool}, {"arguments", args}, {"_meta", meta26()}}), modern("tools/call", tool));
  };
  auto long_call = std::async(std::launch::async, [&] { return call26(1, "fx_slow_compute", {{"seconds", 2.0}, {"label", "long"}}); });
  ASSERT_TRUE(until_health(fix_is_busy)) << "the long call did not start";
  for (int i = 0; i < 500 && stream.messages().empty(); ++i) std::this_thread::sleep_for(20ms);  // the listen ack came
  write(kEcho, "  http:\n    listen: 127.0.0.1:0\n");
  auto [code, out] = reload();
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(contains(call26(2, "fx_greet", {{"name", "x"}})["error"].value("message", ""), "Unknown tool"));
  // While its call runs, /healthz lists the removed instance as draining.
  httplib::Client c("127.0.0.1", port);
  const json health = body_json(c.Get("/healthz"));
  const auto& list = health["plugins"];
  auto fix = std::find_if(list.begin(), list.end(), [](const json& i) { return i["name"] == "fix"; });
  ASSERT_NE(fix, list.end()) << health;
  EXPECT_EQ((*fix)["state"], "draining") << health;
  EXPECT_EQ((*fix)["calls_in_flight"], 1) << health;
  EXPECT_EQ(text_of(long_call.get()), "computed long") << p->stderr_text();
  stream.join();
  const auto messages = stream.messages();
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages[0]["method"], "notifications/subscriptions/acknowledged");
  EXPECT_EQ(messages[0]["params"]["notifications"], json({{"toolsListChanged", true}, {"promptsListChanged", true}}));
  EXPECT_TRUE(has_method(messages, "notifications/tools/list_changed")) << p->stderr_text();
  for (const auto& m : messages) EXPECT_EQ(m["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen:0") << m;
}

}  // namespace
}  // namespace mcph::testing
