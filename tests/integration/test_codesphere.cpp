// The codesphere plugin through the real build/mcp-host binary over stdio, against the fake
// Codesphere API (tests/fakes/codesphere_fake.py on 127.0.0.1, port 0). Every test checks
// what the plugin asked upstream (method, path, body) as well as what the client got, and
// that the token never shows up in anything the host writes.
#include <algorithm>
#include <csignal>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "codesphere_fake.hpp"
#include "host_fixture.hpp"
#include "process.hpp"
#include "protocol/schema.hpp"
#include "services/http_client.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kToken = "cs-test-TOKEN-7f3a9d";

// --- The fake API -------------------------------------------------------------------------------

class FakeCodesphere : public CodesphereFake {
 public:
  FakeCodesphere() : CodesphereFake({kToken}) {}
};

// "GET /teams" for each recorded request, in order.
std::vector<std::string> lines_of(const std::vector<json>& requests) {
  std::vector<std::string> out;
  for (const auto& r : requests) out.push_back(r["method"].get<std::string>() + " " + r["path"].get<std::string>());
  return out;
}

using Lines = std::vector<std::string>;

// --- The host -----------------------------------------------------------------------------------

struct Outcome {
  json result;              // the JSON-RPC result (null if none arrived)
  std::vector<json> notes;  // notifications before it
  std::chrono::milliseconds took{0};

  bool is_error() const { return result.value("isError", false); }
  std::string text() const {
    std::string t;
    for (const auto& c : result.value("content", json::array())) t += c.value("text", "");
    return t;
  }
  json sc() const { return result.value("structuredContent", json()); }
  std::vector<std::string> progress_messages() const {
    std::vector<std::string> out;
    for (const auto& n : notes) {
      if (n.value("method", "") == "notifications/progress") out.push_back(n["params"].value("message", ""));
    }
    return out;
  }
};

class Host {
 public:
  Host(const std::string& config, bool with_token) {
    std::vector<std::string> env;
    if (with_token) env.push_back("CS_TEST_TOKEN=" + kToken);
    proc_ = std::make_unique<Process>(std::vector<std::string>{MCPH_BINARY, "serve", "--config", config}, env);
    send(json{{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
              {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                          {"clientInfo", {{"name", "test"}, {"version", "1"}}}}}});
    read_response(0);
    send(json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
    send(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}});
    tools_ = read_response(1)["result"]["tools"];
    for (const auto& t : tools_) {
      if (!t.contains("outputSchema")) continue;
      auto s = protocol::Schema::compile(t["outputSchema"]);
      EXPECT_TRUE(s.ok()) << t["name"];
      if (s) schemas_[t["name"]] = *s;
    }
  }

  const json& tools() const { return tools_; }
  Process& process() { return *proc_; }
  void send(const json& m) { proc_->send(m); }

  json read(std::chrono::milliseconds timeout) {
    auto line = proc_->read_line(timeout);
    if (!line) return json();
    transcript_ += *line + "\n";
    return json::parse(*line, nullptr, false);
  }

  json read_response(const json& id, std::vector<json>* notes = nullptr, std::chrono::milliseconds timeout = 20s) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      json m = read(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
      if (m.is_null()) break;
      if (m.contains("id") && m["id"] == id) return m;
      if (notes) notes->push_back(m);
    }
    return json();
  }

  // One tools/call; with `progress` the call carries a progress token.
  Outcome call(const std::string& tool, const json& args, bool progress = false) {
    const int id = next_id_++;
    json params{{"name", tool}, {"arguments", args}};
    if (progress) params["_meta"] = {{"progressToken", "p" + std::to_string(id)}};
    const auto t0 = Clock::now();
    send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", params}});
    Outcome o;
    o.result = read_response(id, &o.notes).value("result", json());
    o.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    // A successful result must match the tool's outputSchema.
    if (!o.is_error() && o.result.contains("structuredContent") && schemas_.count(tool)) {
      EXPECT_EQ(schemas_[tool]->validate(o.result["structuredContent"]), "") << tool << ": " << o.result.dump();
    }
    return o;
  }
  int next_id() { return next_id_++; }

  // Everything the host wrote: stdout lines read so far and all of stderr.
  std::string everything() {
    // Drain what is still buffered on stdout without waiting for more.
    while (read(1ms).is_object()) {
    }
    return transcript_ + proc_->stderr_text();
  }

 private:
  std::unique_ptr<Process> proc_;
  json tools_;
  std::map<std::string, std::shared_ptr<const protocol::Schema>> schemas_;
  std::string transcript_;
  int next_id_ = 10;
};

// --- The fixture ---------------------------------------------------------------------------------

class CodesphereTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { fake_ = new FakeCodesphere(); }
  static void TearDownTestSuite() {
    delete fake_;
    fake_ = nullptr;
  }

  void SetUp() override {
    ASSERT_GT(fake_->port(), 0) << "the fake Codesphere API did not start";
    fake_->reset();
  }

  void TearDown() override {
    for (auto& h : hosts_) {
      const std::string all = h->everything();
      EXPECT_EQ(all.find(kToken), std::string::npos) << "the token leaked:\n" << all;
    }
    for (const auto& r : fake_->requests()) {
      EXPECT_TRUE(r["auth"].get<bool>() || !with_token_) << "request without the token: " << r;
    }
  }

  // Settings the tests share; `extra` lines override or add (YAML, 6-space indent).
  std::string settings(const std::string& extra) const {
    std::map<std::string, std::string> s = {
        {"base_url", fake_->base() + "/api"}, {"poll_interval_ms", "20"},  {"retry_backoff_ms", "10"},
        {"request_timeout_ms", "1000"},       {"prepare_timeout_ms", "5000"}, {"run_timeout_ms", "5000"},
        {"create_timeout_ms", "5000"},        {"logs_timeout_ms", "800"},    {"max_retries", "2"},
        {"max_retry_after_ms", "2000"}};
    std::istringstream in(extra);
    for (std::string line; std::getline(in, line);) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      s[line.substr(0, colon)] = line.substr(colon + 2);
    }
    std::string out;
    for (const auto& [k, v] : s) out += "      " + k + ": " + v + "\n";
    return out;
  }

  Host& start(const std::string& extra_settings = "", bool with_token = true, const std::string& server_yaml = "") {
    with_token_ = with_token;
    const std::string plugins = "  - name: codesphere\n    library: codesphere\n"
                                "    credentials: { api_token: \"${CS_TEST_TOKEN:-}\" }\n    settings:\n" +
                                settings(extra_settings);
    const std::string path = dir_.str() + "/mcp-host-" + std::to_string(hosts_.size()) + ".yaml";
    std::ofstream(path) << config_yaml(dir_.str() + "/state", plugins, server_yaml);
    hosts_.push_back(std::make_unique<Host>(path, with_token));
    return *hosts_.back();
  }

  static json body_of(const std::vector<json>& requests, const std::string& method_path) {
    for (const auto& r : requests) {
      if (r["method"].get<std::string>() + " " + r["path"].get<std::string>() == method_path) return r["body"];
    }
    return json("<no such request>");
  }

  static FakeCodesphere* fake_;
  TempDir dir_;
  std::vector<std::unique_ptr<Host>> hosts_;
  bool with_token_ = true;
};

FakeCodesphere* CodesphereTest::fake_ = nullptr;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// --- Discovery -----------------------------------------------------------------------------------

TEST_F(CodesphereTest, ListsTheToolsWithOutputSchemasAndAnnotations) {
  Host& h = start();
  std::map<std::string, json> by_name;
  for (const auto& t : h.tools()) by_name[t["name"]] = t;
  ASSERT_EQ(by_name.size(), 15u);
  for (const char* read_only : {"list_teams", "list_plans", "list_workspaces", "get_workspace_status", "view_logs", "list_domains",
                                "list_env_vars"}) {
    EXPECT_TRUE(by_name[read_only]["annotations"]["readOnlyHint"].get<bool>()) << read_only;
  }
  for (const char* destructive : {"stop_workspace", "switch_domain", "delete_workspace"}) {
    EXPECT_TRUE(by_name[destructive]["annotations"]["destructiveHint"].get<bool>()) << destructive;
  }
  for (const auto& [name, t] : by_name) EXPECT_EQ(t["outputSchema"]["type"], "object") << name;
  EXPECT_TRUE(fake_->requests().empty());  // listing tools costs no upstream call
}

TEST_F(CodesphereTest, ListTeams) {
  Host& h = start();
  auto o = h.call("list_teams", json::object());
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(o.sc()["items"], json::parse(R"([{"id":1,"name":"Alpha","role":"Admin","defaultDataCenterId":1}])"));
  EXPECT_EQ(o.sc()["defaultTeamId"], 1);
  EXPECT_TRUE(contains(o.text(), "1 Alpha (Admin)")) << o.text();
  auto reqs = fake_->requests();
  EXPECT_EQ(lines_of(reqs), Lines{"GET /teams"});
  EXPECT_EQ(reqs[0]["accept"], "application/json");
  EXPECT_TRUE(reqs[0]["body"].is_null());
}

TEST_F(CodesphereTest, ListPlans) {
  Host& h = start();
  auto o = h.call("list_plans", json::object());
  ASSERT_FALSE(o.is_error()) << o.text();
  ASSERT_EQ(o.sc()["items"].size(), 3u);
  EXPECT_EQ(o.sc()["items"][0]["title"], "Micro");
  EXPECT_EQ(o.sc()["items"][0]["ramGiB"], 1.0);
  EXPECT_EQ(o.sc()["items"][0]["ssdGiB"], 10.0);
  EXPECT_TRUE(o.sc()["items"][2]["deprecated"].get<bool>());
  EXPECT_TRUE(contains(o.text(), "3 Legacy") && contains(o.text(), "(deprecated)")) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /metadata/workspace-plans"});
}

TEST_F(CodesphereTest, ListWorkspacesUsesTheOnlyTeam) {
  Host& h = start();
  auto o = h.call("list_workspaces", json::object());
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(o.sc()["teamId"], 1);
  ASSERT_EQ(o.sc()["items"].size(), 3u);
  const json web = o.sc()["items"][0];
  EXPECT_EQ(web["id"], 101);
  EXPECT_EQ(web["url"], "https://101-3000.dev.5.codesphere.com");
  EXPECT_EQ(web["branch"], "main");
  EXPECT_EQ(web["gitUrl"], "https://github.com/acme/web.git");
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /teams", "GET /workspaces/team/1"}));
}

TEST_F(CodesphereTest, TeamIdAsAStringOrFromSettingsSkipsTheLookup) {
  Host& h = start();
  auto o = h.call("list_workspaces", {{"teamId", "1"}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /workspaces/team/1"});
  fake_->reset();
  Host& h2 = start("team_id: 1");
  o = h2.call("list_workspaces", json::object());
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /workspaces/team/1"});
}

TEST_F(CodesphereTest, SeveralTeamsAskForTeamId) {
  fake_->state({{"teams", json::parse(R"([{"id":1,"name":"Alpha","role":0,"defaultDataCenterId":1},
                                          {"id":2,"name":"Beta","role":1,"defaultDataCenterId":1}])")}});
  Host& h = start();
  auto o = h.call("list_workspaces", json::object());
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "1 (Alpha), 2 (Beta)") && contains(o.text(), "Pass teamId")) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /teams"});
  o = h.call("list_teams", json::object());
  EXPECT_TRUE(o.sc()["defaultTeamId"].is_null());
  EXPECT_EQ(o.sc()["items"][1]["role"], "Member");
}

TEST_F(CodesphereTest, BadIdsAreRefusedBeforeAnyRequest) {
  Host& h = start();
  for (const json& bad : {json("12a"), json(-1), json(1.5), json(true)}) {
    auto o = h.call("get_workspace_status", {{"workspaceId", bad}});
    EXPECT_TRUE(o.is_error()) << bad;
    EXPECT_TRUE(contains(o.text(), "Invalid arguments")) << o.text();
  }
  EXPECT_TRUE(h.call("deploy", {{"workspaceId", 1}, {"remote", "../x"}}).is_error());
  EXPECT_TRUE(h.call("switch_domain", {{"workspaceId", 1}, {"domainName", "a/b"}}).is_error());
  EXPECT_TRUE(fake_->requests().empty());
}

// --- Status ----------------------------------------------------------------------------------------

TEST_F(CodesphereTest, WorkspaceStatusWithPipelineStages) {
  Host& h = start();
  auto o = h.call("get_workspace_status", {{"workspaceId", "101"}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(o.sc()["isRunning"], true);
  EXPECT_EQ(o.sc()["workspace"]["name"], "web");
  EXPECT_EQ(o.sc()["ideUrl"], fake_->base() + "/ide/teams/1/workspaces/101");
  EXPECT_EQ(o.sc()["pipeline"]["prepare"]["state"], "success");
  EXPECT_EQ(o.sc()["pipeline"]["run"]["state"], "running");
  EXPECT_EQ(o.sc()["pipeline"]["run"]["entries"][0]["server"], "codesphere-ide");
  EXPECT_EQ(o.sc()["pipeline"]["prepare"]["entries"][0]["steps"], json({"success", "success", "success"}));
  EXPECT_TRUE(contains(o.text(), "prepare: success") && contains(o.text(), "run: running")) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()),
            (Lines{"GET /workspaces/101", "GET /workspaces/101/status", "GET /workspaces/101/pipeline/prepare",
                   "GET /workspaces/101/pipeline/test", "GET /workspaces/101/pipeline/run"}));
}

TEST_F(CodesphereTest, StatusOfASleepingWorkspaceSkipsThePipeline) {
  Host& h = start();
  auto o = h.call("get_workspace_status", {{"workspaceId", 103}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(o.sc()["isRunning"], false);
  EXPECT_TRUE(o.sc()["pipeline"].is_null());
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /workspaces/103", "GET /workspaces/103/status"}));
}

TEST_F(CodesphereTest, UnknownWorkspaceSurfacesTheProblemWithItsTraceId) {
  Host& h = start();
  auto o = h.call("get_workspace_status", {{"workspaceId", 999}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "Codesphere API error 404 (Not Found) on GET /workspaces/999: Workspace is not found. (trace ID: trace-"))
      << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /workspaces/999"});  // a 404 is not retried
}

// --- deploy ------------------------------------------------------------------------------------------

TEST_F(CodesphereTest, DeployWaitsForPrepareThenForRunWithProgress) {
  Host& h = start();
  auto o = h.call("deploy", {{"workspaceId", 101}}, true);
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()),
            (Lines{"POST /workspaces/101/git/pull/origin", "POST /workspaces/101/pipeline/prepare/start",
                   "GET /workspaces/101/pipeline/prepare", "GET /workspaces/101/pipeline/prepare",
                   "GET /workspaces/101/pipeline/prepare", "POST /workspaces/101/landscape/deploy",
                   "POST /workspaces/101/pipeline/run/stop", "POST /workspaces/101/pipeline/run/start",
                   "GET /workspaces/101/pipeline/run", "GET /workspaces/101/pipeline/run", "GET /workspaces/101"}));
  EXPECT_EQ(o.sc()["gitPull"]["ok"], true);
  EXPECT_EQ(o.sc()["prepare"]["state"], "success");
  EXPECT_EQ(o.sc()["run"], json({{"mode", "run"}, {"state", "running"}}));
  EXPECT_EQ(o.sc()["url"], "https://101-3000.dev.5.codesphere.com");
  EXPECT_TRUE(contains(o.text(), "prepare succeeded") && contains(o.text(), "run stage running")) << o.text();
  // Progress at every poll: stage, state, elapsed; values only grow; the total is fixed.
  auto msgs = o.progress_messages();
  ASSERT_EQ(msgs.size(), 5u);
  EXPECT_TRUE(contains(msgs[0], "prepare: waiting, ") && contains(msgs[0], " elapsed")) << msgs[0];
  EXPECT_TRUE(contains(msgs[1], "prepare: running, ")) << msgs[1];
  EXPECT_TRUE(contains(msgs[2], "prepare: success, ")) << msgs[2];
  EXPECT_TRUE(contains(msgs[3], "run: waiting, ")) << msgs[3];
  EXPECT_TRUE(contains(msgs[4], "run: running, ")) << msgs[4];
  double last = 0;
  for (const auto& n : o.notes) {
    EXPECT_GT(n["params"]["progress"].get<double>(), last);
    last = n["params"]["progress"];
    EXPECT_GE(n["params"]["total"].get<double>(), last);
  }
}

// A client that takes tasks (2025-11-25 params.task) gets deploy as a task: answered at
// once, its progress the task's status message, the deploy's result the task's.
TEST_F(CodesphereTest, DeployIsATaskForClientsThatTakeThem) {
  Host& h = start();
  h.send(json{{"jsonrpc", "2.0"}, {"id", 50}, {"method", "tools/call"},
              {"params", {{"name", "deploy"}, {"arguments", {{"workspaceId", 101}}}, {"task", json::object()}}}});
  const json created = h.read_response(50);
  const std::string task = created["result"]["task"]["taskId"];
  ASSERT_FALSE(task.empty()) << created;
  EXPECT_EQ(created["result"]["task"]["status"], "working");
  h.send(json{{"jsonrpc", "2.0"}, {"id", 51}, {"method", "tasks/result"}, {"params", {{"taskId", task}}}});
  const json result = h.read_response(51);
  EXPECT_EQ(result["result"]["structuredContent"]["run"], json({{"mode", "run"}, {"state", "running"}})) << result;
  EXPECT_EQ(result["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], task);
  h.send(json{{"jsonrpc", "2.0"}, {"id", 52}, {"method", "tasks/get"}, {"params", {{"taskId", task}}}});
  const json got = h.read_response(52);
  EXPECT_EQ(got["result"]["status"], "completed");
  EXPECT_TRUE(contains(got["result"].value("statusMessage", ""), " elapsed")) << got;  // a progress message
}

TEST_F(CodesphereTest, DeployALandscapeWithAProfile) {
  Host& h = start();
  auto o = h.call("deploy", {{"workspaceId", "102"}, {"profile", "prod"}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()),
            (Lines{"POST /workspaces/102/git/pull/origin", "POST /workspaces/102/pipeline/prepare/start/prod",
                   "GET /workspaces/102/pipeline/prepare", "GET /workspaces/102/pipeline/prepare",
                   "GET /workspaces/102/pipeline/prepare", "POST /workspaces/102/landscape/deploy/prod",
                   "GET /workspaces/102/pipeline/run", "GET /workspaces/102/pipeline/run", "GET /workspaces/102"}));
  EXPECT_EQ(o.sc()["run"]["mode"], "landscape");
}

TEST_F(CodesphereTest, DeployFailureNamesTheFailedStep) {
  fake_->pipeline({{"workspaceId", 101}, {"stage", "prepare"}, {"script", {"waiting", "running", "failure"}}, {"failStep", 2}});
  Host& h = start();
  auto o = h.call("deploy", {{"workspaceId", 101}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "prepare failed at step 2 (failure) on server codesphere-ide (workspace 101")) << o.text();
  EXPECT_TRUE(contains(o.text(), R"(view_logs {"workspaceId": 101, "stage": "prepare", "step": 2})")) << o.text();
  auto reqs = lines_of(fake_->requests());
  EXPECT_EQ(reqs.back(), "GET /workspaces/101/pipeline/prepare");  // run was not touched
  EXPECT_EQ(std::count(reqs.begin(), reqs.end(), "GET /workspaces/101/pipeline/prepare"), 3);
}

TEST_F(CodesphereTest, DeployIgnoresThePreviousRunsResult) {
  // Right after the start upstream still shows yesterday's failure for two polls.
  fake_->pipeline({{"workspaceId", 101}, {"stage", "prepare"}, {"state", "failure"}, {"lag", 2}});
  Host& h = start();
  auto o = h.call("deploy", {{"workspaceId", 101}, {"skipPrepare", false}}, true);
  ASSERT_FALSE(o.is_error()) << o.text();
  auto reqs = lines_of(fake_->requests());
  EXPECT_EQ(std::count(reqs.begin(), reqs.end(), "GET /workspaces/101/pipeline/prepare"), 5);
  auto msgs = o.progress_messages();
  ASSERT_GE(msgs.size(), 2u);
  EXPECT_TRUE(contains(msgs[0], "prepare: waiting (previous run)")) << msgs[0];
}

TEST_F(CodesphereTest, DeployTimesOutAndSaysTheStageGoesOn) {
  fake_->pipeline({{"workspaceId", 101}, {"stage", "prepare"}, {"script", {"running"}}});
  Host& h = start("prepare_timeout_ms: 300");
  auto o = h.call("deploy", {{"workspaceId", 101}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "The prepare stage of workspace 101 is still running after") &&
              contains(o.text(), "(settings.prepare_timeout_ms). It goes on upstream"))
      << o.text();
  EXPECT_GE(o.took, 300ms);
  EXPECT_LT(o.took, 3s);
  for (const auto& r : lines_of(fake_->requests())) EXPECT_FALSE(contains(r, "/stop")) << r;  // nothing was stopped
}

TEST_F(CodesphereTest, CancellingADeployStopsPollingPromptly) {
  fake_->pipeline({{"workspaceId", 101}, {"stage", "prepare"}, {"script", {"running"}}});
  Host& h = start();
  const int id = h.next_id();
  h.send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"},
              {"params", {{"name", "deploy"}, {"arguments", {{"workspaceId", 101}}}, {"_meta", {{"progressToken", 1}}}}}});
  for (int i = 0; i < 2; ++i) ASSERT_EQ(h.read(10s)["method"], "notifications/progress");
  h.send(json{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", id}, {"reason", "stop"}}}});
  h.send(json{{"jsonrpc", "2.0"}, {"id", 5000}, {"method", "ping"}});
  std::vector<json> before;
  ASSERT_TRUE(h.read_response(5000, &before).is_object());
  const auto polls = [&] {
    auto reqs = lines_of(fake_->requests());
    return std::count(reqs.begin(), reqs.end(), "GET /workspaces/101/pipeline/prepare");
  };
  const auto after_cancel = polls();
  // At 20 ms per poll a wait that kept going would poll ~15 more times in 300 ms.
  EXPECT_FALSE(h.read(300ms).is_object()) << "output after cancellation";
  EXPECT_LE(polls() - after_cancel, 1);
  for (const auto& m : before) EXPECT_NE(m.value("id", json()), id) << "a cancelled call must not be answered";
  for (const auto& r : lines_of(fake_->requests())) EXPECT_FALSE(contains(r, "/stop")) << r;
}

TEST_F(CodesphereTest, AShutdownDuringAWaitAnswersThatTheStageGoesOn) {
  // The text of a cancelled wait reaches the client when the host cancels (shutdown).
  fake_->pipeline({{"workspaceId", 101}, {"stage", "prepare"}, {"script", {"running"}}});
  Host& h = start("", true, "  shutdown_grace_ms: 100\n");
  const int id = h.next_id();
  h.send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"},
              {"params", {{"name", "deploy"}, {"arguments", {{"workspaceId", 101}}}, {"_meta", {{"progressToken", 1}}}}}});
  ASSERT_EQ(h.read(10s)["method"], "notifications/progress");
  const auto t0 = Clock::now();
  h.process().signal(SIGTERM);
  json r = h.read_response(id);
  ASSERT_TRUE(r.is_object());
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_TRUE(r["result"]["isError"].get<bool>());
  const std::string text = r["result"]["content"][0]["text"];
  EXPECT_TRUE(contains(text, "Cancelled while waiting for the prepare stage of workspace 101") &&
              contains(text, "The prepare stage goes on upstream"))
      << text;
  EXPECT_EQ(h.process().wait(), 0);
}

TEST_F(CodesphereTest, ACancelIsNoticedInTheMiddleOfALongPollInterval) {
  // Waits sleep in short slices: with a 5 s interval a cancel must not wait for the next poll.
  fake_->pipeline({{"workspaceId", 101}, {"stage", "prepare"}, {"script", {"running"}}});
  Host& h = start("poll_interval_ms: 5000", true, "  shutdown_grace_ms: 50\n");
  const int id = h.next_id();
  h.send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"},
              {"params", {{"name", "deploy"}, {"arguments", {{"workspaceId", 101}}}}}});
  const auto deadline = Clock::now() + 10s;
  while (lines_of(fake_->requests()).size() < 2 && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(lines_of(fake_->requests()).back(), "POST /workspaces/101/pipeline/prepare/start");  // now sleeping
  const auto t0 = Clock::now();
  h.process().signal(SIGTERM);
  json r = h.read_response(id);
  ASSERT_TRUE(r.is_object());
  EXPECT_LT(Clock::now() - t0, 1500ms);
  EXPECT_TRUE(contains(r["result"]["content"][0]["text"], "The prepare stage goes on upstream")) << r;
  EXPECT_EQ(lines_of(fake_->requests()).size(), 2u);  // it never polled
}

TEST_F(CodesphereTest, DeployWithoutWaitingOnlyStartsPrepare) {
  Host& h = start();
  auto o = h.call("deploy", {{"workspaceId", 101}, {"waitForPrepare", false}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()),
            (Lines{"POST /workspaces/101/git/pull/origin", "POST /workspaces/101/pipeline/prepare/start", "GET /workspaces/101"}));
  EXPECT_EQ(o.sc()["prepare"]["state"], "started");
  EXPECT_EQ(o.sc()["run"]["state"], "not restarted");
  EXPECT_TRUE(contains(o.text(), "skipPrepare=true")) << o.text();
}

TEST_F(CodesphereTest, DeploySkippingPrepareWithAnotherRemote) {
  Host& h = start();
  auto o = h.call("deploy", {{"workspaceId", 101}, {"skipPrepare", true}, {"remote", "upstream"}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()),
            (Lines{"POST /workspaces/101/git/pull/upstream", "POST /workspaces/101/landscape/deploy",
                   "POST /workspaces/101/pipeline/run/stop", "POST /workspaces/101/pipeline/run/start",
                   "GET /workspaces/101/pipeline/run", "GET /workspaces/101/pipeline/run", "GET /workspaces/101"}));
  EXPECT_EQ(o.sc()["prepare"]["state"], "skipped");
}

TEST_F(CodesphereTest, AFailedGitPullIsReportedAndTheDeployGoesOn) {
  Host& h = start();
  auto o = h.call("deploy", {{"workspaceId", 101}, {"skipPrepare", true}, {"remote", "nope"}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(o.sc()["gitPull"]["ok"], false);
  EXPECT_TRUE(contains(o.sc()["gitPull"]["error"], "git error: remote nope not found")) << o.sc();
  EXPECT_TRUE(contains(o.text(), "deploying the code already in the workspace")) << o.text();
  EXPECT_EQ(lines_of(fake_->requests())[0], "POST /workspaces/101/git/pull/nope");  // a POST: sent once
  EXPECT_EQ(lines_of(fake_->requests())[1], "POST /workspaces/101/landscape/deploy");
}

// --- stop / restart ----------------------------------------------------------------------------------

TEST_F(CodesphereTest, StopWorkspace) {
  Host& h = start();
  auto o = h.call("stop_workspace", {{"workspaceId", 101}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(o.sc(), json({{"workspaceId", 101}, {"stopped", true}}));
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"POST /workspaces/101/pipeline/run/stop"});
  o = h.call("get_workspace_status", {{"workspaceId", 101}});
  EXPECT_EQ(o.sc()["pipeline"]["run"]["state"], "aborted");
}

TEST_F(CodesphereTest, RestartWaitsUntilRunIsUp) {
  Host& h = start();
  auto o = h.call("restart_workspace", {{"workspaceId", "101"}}, true);
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()),
            (Lines{"POST /workspaces/101/pipeline/run/stop", "POST /workspaces/101/pipeline/run/start",
                   "GET /workspaces/101/pipeline/run", "GET /workspaces/101/pipeline/run", "GET /workspaces/101"}));
  EXPECT_EQ(o.sc()["run"]["state"], "running");
  EXPECT_EQ(o.progress_messages().size(), 2u);
}

TEST_F(CodesphereTest, RestartReportsARunFailure) {
  fake_->pipeline({{"workspaceId", 101}, {"stage", "run"}, {"script", {"waiting", "failure"}}, {"failStep", 0}});
  Host& h = start();
  auto o = h.call("restart_workspace", {{"workspaceId", 101}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "run failed at step 0 (failure) on server codesphere-ide")) << o.text();
}

// --- create_workspace ----------------------------------------------------------------------------

TEST_F(CodesphereTest, CreateWorkspaceWaitsUntilItRuns) {
  Host& h = start();
  auto o = h.call("create_workspace",
                  {{"gitUrl", "https://github.com/acme/new.git"}, {"name", "new"}, {"planId", "8"}, {"branch", "dev"}}, true);
  ASSERT_FALSE(o.is_error()) << o.text();
  auto reqs = fake_->requests();
  EXPECT_EQ(lines_of(reqs), (Lines{"GET /teams", "POST /workspaces", "GET /workspaces/201/status", "GET /workspaces/201/status"}));
  EXPECT_EQ(body_of(reqs, "POST /workspaces"),
            json::parse(R"({"teamId":1,"name":"new","planId":8,"isPrivateRepo":false,"replicas":1,
                            "gitUrl":"https://github.com/acme/new.git","initialBranch":"dev"})"));
  EXPECT_EQ(o.sc()["workspace"]["id"], 201);
  EXPECT_EQ(o.sc()["isRunning"], true);
  ASSERT_EQ(o.progress_messages().size(), 2u);
  EXPECT_TRUE(contains(o.progress_messages()[0], "workspace: starting"));
  EXPECT_TRUE(contains(o.progress_messages()[1], "workspace: running"));
}

TEST_F(CodesphereTest, CreateWorkspaceWithoutWaiting) {
  Host& h = start();
  auto o = h.call("create_workspace", {{"gitUrl", "g"}, {"name", "n"}, {"planId", 20}, {"teamId", 1},
                                       {"isPrivateRepo", true}, {"waitForRunning", false}});
  ASSERT_FALSE(o.is_error()) << o.text();
  auto reqs = fake_->requests();
  EXPECT_EQ(lines_of(reqs), Lines{"POST /workspaces"});
  EXPECT_EQ(body_of(reqs, "POST /workspaces"),
            json::parse(R"({"teamId":1,"name":"n","planId":20,"isPrivateRepo":true,"replicas":1,"gitUrl":"g","initialBranch":"main"})"));
  EXPECT_TRUE(o.sc()["isRunning"].is_null());
}

TEST_F(CodesphereTest, CreateWorkspaceTimesOutButSaysItWasCreated) {
  fake_->state({{"startPolls", 100000}});
  Host& h = start("create_timeout_ms: 200");
  auto o = h.call("create_workspace", {{"gitUrl", "g"}, {"name", "n"}, {"planId", 8}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "Workspace 201 was created. It is not running yet after") &&
              contains(o.text(), "goes on starting upstream"))
      << o.text();
  EXPECT_LT(o.took, 3s);
}

TEST_F(CodesphereTest, AFailedCreateIsNeverRetried) {
  fake_->fault({{"method", "POST"}, {"path", "/workspaces"}, {"kind", "status"}, {"status", 503}});
  Host& h = start();
  auto o = h.call("create_workspace", {{"gitUrl", "g"}, {"name", "n"}, {"planId", 8}, {"teamId", 1}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "Codesphere API error 503 (Service Unavailable) on POST /workspaces") &&
              contains(o.text(), "may or may not have been carried out"))
      << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"POST /workspaces"});
}

// --- view_logs -------------------------------------------------------------------------------------------

TEST_F(CodesphereTest, LogsOfAFinishedStageAreReadToTheEnd) {
  Host& h = start();
  auto o = h.call("view_logs", {{"workspaceId", 101}, {"stage", "prepare"}, {"lines", 6}});
  ASSERT_FALSE(o.is_error()) << o.text();
  auto reqs = fake_->requests();
  EXPECT_EQ(lines_of(reqs), Lines{"GET /workspaces/101/logs/prepare/0"});
  EXPECT_EQ(reqs[0]["accept"], "text/event-stream");
  ASSERT_EQ(o.sc()["items"].size(), 6u);
  EXPECT_EQ(o.sc()["totalReceived"], 30);
  EXPECT_EQ(o.sc()["complete"], true);
  EXPECT_EQ(o.sc()["items"][0]["data"], "prepare step 0 line 24\n");
  EXPECT_EQ(o.sc()["items"][0]["kind"], "E");
  EXPECT_TRUE(contains(o.text(), "Last 6 of 30 entries")) << o.text();
  EXPECT_TRUE(contains(o.text(), "Z [E] prepare step 0 line 24\n")) << o.text();
  EXPECT_TRUE(contains(o.text(), "Z [I] prepare step 0 line 29")) << o.text();
  EXPECT_EQ(fake_->streams()["closedByServer"], 1);
}

TEST_F(CodesphereTest, LogsOfARunningStageStopAtTheDeadlineAndTheClientLeaves) {
  Host& h = start();
  auto o = h.call("view_logs", {{"workspaceId", 101}, {"lines", 31}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /workspaces/101/pipeline/run", "GET /workspaces/101/logs/run/0"}));
  EXPECT_EQ(o.sc()["complete"], false);
  // 30 history entries, then one live entry every 100 ms while the 800 ms read lasts; the
  // last 31 are kept.
  EXPECT_GE(o.sc()["totalReceived"].get<int>(), 32);
  ASSERT_EQ(o.sc()["items"].size(), 31u);
  EXPECT_TRUE(contains(o.sc()["items"][30]["data"], "run step 0 live line")) << o.sc()["items"][30];
  EXPECT_TRUE(contains(o.text(), "still open at the read deadline")) << o.text();
  EXPECT_GE(o.took, 700ms);
  EXPECT_LT(o.took, 4s);
  // The fake notices the client left at its next write (every 100 ms).
  const auto deadline = Clock::now() + 5s;
  while (fake_->streams()["closedByClient"] != 1 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(fake_->streams()["closedByClient"], 1);
  EXPECT_EQ(fake_->streams()["open"], 0);
}

TEST_F(CodesphereTest, LandscapeRunLogsPickAServer) {
  Host& h = start();
  auto o = h.call("view_logs", {{"workspaceId", 102}, {"lines", "3"}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /workspaces/102/pipeline/run", "GET /workspaces/102/logs/run/0/server/app"}));
  EXPECT_EQ(o.sc()["server"], "app");
  EXPECT_EQ(o.sc()["servers"], json({"app", "api"}));
  EXPECT_TRUE(contains(o.text(), "pass server to see another")) << o.text();
  fake_->reset();
  o = h.call("view_logs", {{"workspaceId", 102}, {"server", "api"}, {"step", 1}, {"lines", 1}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /workspaces/102/logs/run/1/server/api"});
}

TEST_F(CodesphereTest, ALogProblemEventIsAToolError) {
  Host& h = start();
  auto o = h.call("view_logs", {{"workspaceId", 103}, {"stage", "test"}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "Codesphere reported a problem for the test logs of workspace 103: 400 (Bad Request): "
                                 "Workspace is not running (trace ID: trace-"))
      << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /workspaces/103/logs/test/0"});
}

TEST_F(CodesphereTest, ServerLogsExistOnlyForRun) {
  Host& h = start();
  auto o = h.call("view_logs", {{"workspaceId", 102}, {"stage", "prepare"}, {"server", "app"}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "server applies only to stage \"run\"")) << o.text();
  EXPECT_TRUE(fake_->requests().empty());
}

TEST_F(CodesphereTest, ALogStreamThatFailsBeforeItsFirstByteIsRetried) {
  fake_->fault({{"method", "GET"}, {"path", "/workspaces/101/logs/prepare/0"}, {"kind", "status"}, {"status", 502}});
  Host& h = start();
  auto o = h.call("view_logs", {{"workspaceId", 101}, {"stage", "prepare"}, {"lines", 1}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /workspaces/101/logs/prepare/0", "GET /workspaces/101/logs/prepare/0"}));
  EXPECT_EQ(o.sc()["items"][0]["data"], "prepare step 0 line 29\n");
}

// --- switch_domain / list_domains ------------------------------------------------------------------------

TEST_F(CodesphereTest, SwitchDomainChangesOnePathAndKeepsTheOthers) {
  Host& h = start();
  auto o = h.call("switch_domain", {{"domainName", "shop.example.com"}, {"workspaceId", "103"}});
  ASSERT_FALSE(o.is_error()) << o.text();
  auto reqs = fake_->requests();
  EXPECT_EQ(lines_of(reqs), (Lines{"GET /teams", "GET /domains/team/1/domain/shop.example.com",
                                   "PUT /domains/team/1/domain/shop.example.com/workspace-connections"}));
  EXPECT_EQ(body_of(reqs, "PUT /domains/team/1/domain/shop.example.com/workspace-connections"),
            json::parse(R"({"/":[103],"/api":[102]})"));
  EXPECT_EQ(o.sc()["before"], json::parse(R"({"/":[101],"/api":[102]})"));
  EXPECT_EQ(o.sc()["after"], json::parse(R"({"/":[103],"/api":[102]})"));
  EXPECT_TRUE(contains(o.text(), "Before: / → [101]; /api → [102]") && contains(o.text(), "After:  / → [103]; /api → [102]"))
      << o.text();
  // A new path is added next to the others.
  fake_->reset();
  o = h.call("switch_domain", {{"domainName", "shop.example.com"}, {"workspaceId", 101}, {"path", "/beta"}, {"teamId", 1}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(body_of(fake_->requests(), "PUT /domains/team/1/domain/shop.example.com/workspace-connections"),
            json::parse(R"({"/":[101],"/api":[102],"/beta":[101]})"));
}

TEST_F(CodesphereTest, SwitchingAnUnknownDomainChangesNothing) {
  Host& h = start();
  auto o = h.call("switch_domain", {{"domainName", "nope.example.com"}, {"workspaceId", 101}, {"teamId", 1}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "Domain not found.")) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /domains/team/1/domain/nope.example.com"});
}

TEST_F(CodesphereTest, ListDomains) {
  Host& h = start("team_id: 1");
  auto o = h.call("list_domains", json::object());
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /domains/team/1"});
  ASSERT_EQ(o.sc()["items"].size(), 1u);
  EXPECT_EQ(o.sc()["items"][0]["routing"], json::parse(R"({"/":[101],"/api":[102]})"));
  EXPECT_EQ(o.sc()["items"][0]["verified"], true);
}

// --- The old server's later tools ------------------------------------------------------------------

TEST_F(CodesphereTest, EnvVarValuesAreHiddenUnlessAskedFor) {
  Host& h = start();
  auto o = h.call("list_env_vars", {{"workspaceId", 101}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(o.sc()["items"], json::parse(R"([{"name":"NODE_ENV"},{"name":"API_SECRET"}])"));
  EXPECT_FALSE(contains(o.result.dump(), "s3cr3t-value"));
  o = h.call("list_env_vars", {{"workspaceId", "101"}, {"showValues", true}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(o.sc()["items"][1], json({{"name", "API_SECRET"}, {"value", "s3cr3t-value"}}));
  EXPECT_TRUE(contains(o.text(), "API_SECRET=s3cr3t-value")) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /workspaces/101/env-vars", "GET /workspaces/101/env-vars"}));
}

TEST_F(CodesphereTest, GitPullWithABranchReportsTheHead) {
  Host& h = start();
  auto o = h.call("git_pull", {{"workspaceId", 101}, {"branch", "feature/x"}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"POST /workspaces/101/git/pull/origin/feature%2Fx", "GET /workspaces/101/git/head"}));
  EXPECT_EQ(o.sc(), json::parse(R"({"workspaceId":101,"remote":"origin","branch":"feature/x","head":"3f2a9c1e"})"));
  fake_->reset();
  o = h.call("git_pull", {{"workspaceId", 103}});  // not running: upstream's 400, surfaced
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "400 (Bad Request) on POST /workspaces/103/git/pull/origin: Workspace is not running")) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"POST /workspaces/103/git/pull/origin"});
}

TEST_F(CodesphereTest, ScaleWorkspacePatchesTheReplicas) {
  Host& h = start();
  auto o = h.call("scale_workspace", {{"workspaceId", 101}, {"replicas", "3"}});
  ASSERT_FALSE(o.is_error()) << o.text();
  auto reqs = fake_->requests();
  EXPECT_EQ(lines_of(reqs), Lines{"PATCH /workspaces/101"});
  EXPECT_EQ(body_of(reqs, "PATCH /workspaces/101"), json({{"replicas", 3}}));
  EXPECT_EQ(o.sc(), json({{"workspaceId", 101}, {"replicas", 3}}));
  EXPECT_TRUE(h.call("scale_workspace", {{"workspaceId", 101}, {"replicas", 0}}).is_error());
  EXPECT_EQ(fake_->requests().size(), 1u);
}

TEST_F(CodesphereTest, DeleteWorkspaceNeedsConfirm) {
  Host& h = start();
  for (const json& args : {json{{"workspaceId", 102}}, json{{"workspaceId", 102}, {"confirm", false}}}) {
    auto o = h.call("delete_workspace", args);
    ASSERT_TRUE(o.is_error()) << args;
    EXPECT_TRUE(contains(o.text(), "confirm")) << o.text();
  }
  EXPECT_TRUE(fake_->requests().empty());
  auto o = h.call("delete_workspace", {{"workspaceId", 102}, {"confirm", true}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /workspaces/102", "DELETE /workspaces/102"}));
  EXPECT_TRUE(contains(o.text(), "Deleted workspace 102 (shop).")) << o.text();
  o = h.call("delete_workspace", {{"workspaceId", 102}, {"confirm", true}});  // gone now
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "Workspace is not found.")) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()).back(), "GET /workspaces/102");  // no second DELETE
}

// --- Faults ---------------------------------------------------------------------------------------------

TEST_F(CodesphereTest, AGet500IsRetriedWithBackoff) {
  fake_->fault({{"method", "GET"}, {"path", "/teams"}, {"kind", "status"}, {"status", 500}});
  Host& h = start();
  auto o = h.call("list_teams", json::object());
  ASSERT_FALSE(o.is_error()) << o.text();
  auto reqs = fake_->requests();
  EXPECT_EQ(lines_of(reqs), (Lines{"GET /teams", "GET /teams"}));
  EXPECT_EQ(reqs[0]["fault"], "status");
}

TEST_F(CodesphereTest, AGetThatKeepsFailingGivesUpAfterTheRetries) {
  fake_->fault({{"method", "GET"}, {"path", "/teams"}, {"kind", "status"}, {"status", 500}, {"times", 10},
                {"detail", "database on fire"}});
  Host& h = start();
  auto o = h.call("list_teams", json::object());
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "Codesphere API error 500 (Internal Server Error) on GET /teams: database on fire (trace ID: "))
      << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /teams", "GET /teams", "GET /teams"}));  // max_retries 2
}

TEST_F(CodesphereTest, A429HonoursRetryAfter) {
  fake_->fault({{"method", "GET"}, {"path", "/teams"}, {"kind", "rate_limit"}, {"retryAfter", "1"}});
  Host& h = start();
  auto o = h.call("list_teams", json::object());
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /teams", "GET /teams"}));
  EXPECT_GE(o.took, 950ms);  // Retry-After: 1, not the 10 ms backoff
  EXPECT_LT(o.took, 5s);
}

TEST_F(CodesphereTest, A429OnAPostIsRepeatedOnlyAfterRetryAfter) {
  fake_->fault({{"method", "POST"}, {"path", "/workspaces/101/pipeline/run/stop"}, {"kind", "rate_limit"}, {"retryAfter", "0"}});
  Host& h = start();
  auto o = h.call("stop_workspace", {{"workspaceId", 101}});
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()),
            (Lines{"POST /workspaces/101/pipeline/run/stop", "POST /workspaces/101/pipeline/run/stop"}));
}

TEST_F(CodesphereTest, A429AskingTooLongFailsAtOnce) {
  fake_->fault({{"method", "GET"}, {"path", "/teams"}, {"kind", "rate_limit"}, {"retryAfter", "120"}});
  Host& h = start();
  auto o = h.call("list_teams", json::object());
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "rate-limiting") && contains(o.text(), "asks to wait 2 min 0 s")) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /teams"});
  EXPECT_LT(o.took, 2s);
}

TEST_F(CodesphereTest, ASlowGetTimesOutAndIsRetried) {
  fake_->fault({{"method", "GET"}, {"path", "/teams"}, {"kind", "slow"}, {"delayMs", 2500}});
  Host& h = start();
  auto o = h.call("list_teams", json::object());
  ASSERT_FALSE(o.is_error()) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /teams", "GET /teams"}));
  EXPECT_GE(o.took, 950ms);  // request_timeout_ms 1000
  EXPECT_LT(o.took, 2400ms);  // did not wait for the slow answer
}

TEST_F(CodesphereTest, ASlowPostIsNotRepeated) {
  fake_->fault({{"method", "POST"}, {"path", "/workspaces/101/pipeline/run/stop"}, {"kind", "slow"}, {"delayMs", 2500}});
  Host& h = start();
  auto o = h.call("stop_workspace", {{"workspaceId", 101}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "Could not reach Codesphere for POST /workspaces/101/pipeline/run/stop") &&
              contains(o.text(), "may or may not have been carried out"))
      << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"POST /workspaces/101/pipeline/run/stop"});
}

TEST_F(CodesphereTest, MalformedJsonIsAClearError) {
  fake_->fault({{"method", "GET"}, {"path", "/workspaces/101"}, {"kind", "malformed"}});
  Host& h = start();
  auto o = h.call("get_workspace_status", {{"workspaceId", 101}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "Codesphere answered GET /workspaces/101 with a body that is not valid JSON: {\"id\": 1"))
      << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), Lines{"GET /workspaces/101"});
}

TEST_F(CodesphereTest, ADroppedConnectionIsRetriedForGetsOnly) {
  fake_->fault({{"method", "GET"}, {"path", "/metadata/workspace-plans"}, {"kind", "drop"}});
  fake_->fault({{"method", "POST"}, {"path", "/workspaces/101/pipeline/run/stop"}, {"kind", "drop"}});
  Host& h = start();
  auto o = h.call("list_plans", json::object());
  ASSERT_FALSE(o.is_error()) << o.text();
  o = h.call("stop_workspace", {{"workspaceId", 101}});
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "may or may not have been carried out")) << o.text();
  EXPECT_EQ(lines_of(fake_->requests()), (Lines{"GET /metadata/workspace-plans", "GET /metadata/workspace-plans",
                                                "POST /workspaces/101/pipeline/run/stop"}));
}

TEST_F(CodesphereTest, AuthFailuresSayWhatIsWrongWithTheToken) {
  fake_->fault({{"method", "GET"}, {"path", "/teams"}, {"kind", "status"}, {"status", 401}});
  fake_->fault({{"method", "GET"}, {"path", "/metadata/workspace-plans"}, {"kind", "status"}, {"status", 403}});
  Host& h = start();
  auto o = h.call("list_teams", json::object());
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "rejected the API token (401): it is invalid or expired")) << o.text();
  o = h.call("list_plans", json::object());
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "lacks the rights for this (403)")) << o.text();
  EXPECT_EQ(fake_->requests().size(), 2u);  // neither is retried
}

TEST_F(CodesphereTest, AnUpstreamTextThatEchoesTheTokenIsRedacted) {
  fake_->fault({{"method", "GET"}, {"path", "/teams"}, {"kind", "status"}, {"status", 400},
                {"detail", "bad header: Bearer " + kToken + " (token " + kToken + ")"}});
  Host& h = start();
  auto o = h.call("list_teams", json::object());
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "bad header: Bearer [REDACTED]")) << o.text();
  // TearDown checks that the token appears nowhere in stdout or stderr.
}

TEST_F(CodesphereTest, RedirectsKeepTheTokenOnlyForTheSameHost) {
  fake_->fault({{"method", "GET"}, {"path", "/teams"}, {"kind", "redirect"}, {"location", fake_->base() + "/api/teams"}});
  fake_->fault({{"method", "GET"}, {"path", "/metadata/workspace-plans"}, {"kind", "redirect"}, {"location", "http://elsewhere.invalid/api/x"}});
  Host& h = start();
  auto o = h.call("list_teams", json::object());
  ASSERT_FALSE(o.is_error()) << o.text();
  o = h.call("list_plans", json::object());
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "redirected GET /metadata/workspace-plans to another host (elsewhere.invalid); the API token is not sent there"))
      << o.text();
  auto reqs = fake_->requests();
  EXPECT_EQ(lines_of(reqs), (Lines{"GET /teams", "GET /teams", "GET /metadata/workspace-plans"}));
  EXPECT_TRUE(reqs[1]["auth"].get<bool>());
}

TEST_F(CodesphereTest, AWrongTokenIsRejectedUpstreamAndNeverShown) {
  // The real 401 path: the fake expects another token than the one configured.
  with_token_ = false;  // (TearDown: this test's requests lack the expected token)
  const std::string plugins = "  - name: codesphere\n    library: codesphere\n"
                              "    credentials: { api_token: \"wrong-token-value\" }\n    settings:\n" + settings("");
  const std::string path = dir_.str() + "/wrong.yaml";
  std::ofstream(path) << config_yaml(dir_.str() + "/state", plugins);
  hosts_.push_back(std::make_unique<Host>(path, false));
  auto o = hosts_.back()->call("list_teams", json::object());
  ASSERT_TRUE(o.is_error());
  EXPECT_TRUE(contains(o.text(), "rejected the API token (401): it is invalid or expired")) << o.text();
  EXPECT_FALSE(contains(hosts_.back()->everything(), "wrong-token-value"));
  auto reqs = fake_->requests();
  ASSERT_EQ(lines_of(reqs), Lines{"GET /teams"});
  EXPECT_FALSE(reqs[0]["auth"].get<bool>());
}

// --- No token -------------------------------------------------------------------------------------------

TEST_F(CodesphereTest, WithoutATokenThePluginLoadsAndEveryToolSaysHowToSetIt) {
  Host& h = start("", false);
  ASSERT_EQ(h.tools().size(), 15u);
  const json args_for = {
      {"list_teams", json::object()},
      {"list_plans", json::object()},
      {"list_workspaces", json::object()},
      {"get_workspace_status", {{"workspaceId", 1}}},
      {"create_workspace", {{"gitUrl", "g"}, {"name", "n"}, {"planId", 8}}},
      {"deploy", {{"workspaceId", 1}}},
      {"stop_workspace", {{"workspaceId", 1}}},
      {"restart_workspace", {{"workspaceId", 1}}},
      {"view_logs", {{"workspaceId", 1}}},
      {"switch_domain", {{"workspaceId", 1}, {"domainName", "a.example"}}},
      {"list_domains", json::object()},
      {"list_env_vars", {{"workspaceId", 1}}},
      {"git_pull", {{"workspaceId", 1}}},
      {"scale_workspace", {{"workspaceId", 1}, {"replicas", 2}}},
      {"delete_workspace", {{"workspaceId", 1}, {"confirm", true}}},
  };
  for (const auto& t : h.tools()) {
    const std::string name = t["name"];
    ASSERT_TRUE(args_for.contains(name)) << name;
    auto o = h.call(name, args_for[name]);
    EXPECT_TRUE(o.is_error()) << name;
    EXPECT_TRUE(contains(o.text(), "set CODESPHERE_API_TOKEN (or credentials.api_token")) << name << ": " << o.text();
  }
  EXPECT_TRUE(fake_->requests().empty());
}

}  // namespace
}  // namespace mcph::testing
