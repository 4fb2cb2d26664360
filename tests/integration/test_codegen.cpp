// The codegen plugin through the real build/mcp-host over stdio, against the fake Codegen
// API (tests/fakes/codegen_fake.py, a separate process on 127.0.0.1 port 0 that keeps its
// state while the host is restarted or killed). Nothing sleeps "long enough": every wait
// polls for an observable condition with a deadline.
#include <fstream>
#include <functional>
#include <set>

#include "codegen_fake.hpp"
#include "host_fixture.hpp"
#include "http_host.hpp"
#include "postgres.hpp"
#include "process.hpp"
#include "services/http_client.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kEnvToken = "env-TOKEN-7f3a9c2e51";
constexpr const char* kRuntimeToken = "rt-RUNTIME-b81d44e0aa";

class CodegenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GT(fake.port(), 0) << "the fake Codegen API did not start";
    write_config();
  }

  // `top`: more top-level keys (e.g. a shared store).
  void write_config(const std::string& extra_settings = "", const std::string& top = "") {
    config_path = dir.str() + "/mcp-host.yaml";
    const std::string plugins =
        "  - name: codegen\n"
        "    library: codegen\n"
        "    credentials: { api_token: \"${CODEGEN_API_TOKEN:-}\", org_id: \"${CODEGEN_ORG_ID:-}\" }\n"
        "    settings: { base_url: \"" + fake.url() + "\", poll_interval_ms: 20, poll_max_interval_ms: 100, "
        "resume_grace_ms: 5000, get_budget_per_30s: 59" + extra_settings + " }\n";
    std::ofstream(config_path) << top << config_yaml(dir.str() + "/state", plugins);
  }

  std::unique_ptr<Process> spawn() {
    auto p = std::make_unique<Process>(
        std::vector<std::string>{MCPH_BINARY, "serve", "--config", config_path, "--log-level", "debug"},
        std::vector<std::string>{std::string("CODEGEN_API_TOKEN=") + kEnvToken, "CODEGEN_ORG_ID=42"});
    p->send(json{{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
                 {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                             {"clientInfo", {{"name", "test"}, {"version", "1"}}}}}});
    json r = p->read_response(0);
    EXPECT_EQ(r["result"]["protocolVersion"], "2025-11-25") << r;
    p->send(json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
    return p;
  }

  // Stops a host cleanly, keeping what it wrote to stderr.
  void stop(std::unique_ptr<Process>& p) {
    p->close_stdin();
    EXPECT_EQ(p->wait(15s), 0);
    stderr_seen += p->stderr_text();
    p.reset();
  }
  void kill9(std::unique_ptr<Process>& p) {
    p->signal(SIGKILL);
    EXPECT_EQ(p->wait(), 128 + SIGKILL);
    stderr_seen += p->stderr_text();
    p.reset();
  }

  // A tools/call; returns the CallToolResult (or the whole message for a JSON-RPC error).
  json call(Process& p, const std::string& tool, const json& args) {
    const int id = ++next_id;
    p.send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", {{"name", tool}, {"arguments", args}}}});
    std::vector<json> skipped;
    json r = p.read_response(id, &skipped, 20s);
    for (const auto& s : skipped) stdout_seen += s.dump() + "\n";
    stdout_seen += r.dump() + "\n";
    return r.contains("result") ? r["result"] : r;
  }
  json sc(Process& p, const std::string& tool, const json& args) { return call(p, tool, args)["structuredContent"]; }

  json start(Process& p, const json& args) {
    json r = call(p, "codegen_new", args);
    EXPECT_FALSE(r.value("isError", false)) << r;
    return r["structuredContent"];
  }

  // Polls codegen_task_status until the task is in one of `states`.
  json wait_state(Process& p, const std::string& task_id, const std::set<std::string>& states,
                  std::chrono::milliseconds timeout = 15s) {
    json last;
    eventually([&] {
      last = sc(p, "codegen_task_status", {{"task_id", task_id}});
      return states.count(last.value("state", "")) > 0;
    }, timeout);
    EXPECT_TRUE(states.count(last.value("state", ""))) << "task " << task_id << ": " << last;
    return last;
  }

  // With the orchestrator active, a further child finishes: no resume may go out (in
  // particular not the earlier batch again) while the poller watches the orchestrator;
  // once it is idle exactly one more resume carries only that child.
  void expect_exactly_one_more_resume(Process& p, int64_t orch, size_t resumes_so_far, const std::string& not_again) {
    ASSERT_EQ(fake.run(orch)["status"], "ACTIVE");
    fake.script_next({{"polls", 0}, {"final", "COMPLETE"}, {"result", "probe child done"}});
    const json probe = start(p, {{"query", "probe"}, {"orchestrator_run_id", orch}});
    wait_state(p, probe["task_id"], {"completed"});
    const size_t gets = fake.gets_of(orch);
    ASSERT_TRUE(eventually([&] { return fake.gets_of(orch) >= gets + 3; })) << "the orchestrator was not watched";
    EXPECT_EQ(fake.resumes_of(orch), resumes_so_far) << "a resume went out while the orchestrator was active";
    fake.update(orch, {{"status", "COMPLETE"}});
    ASSERT_TRUE(eventually([&] { return fake.resumes_of(orch) >= resumes_so_far + 1; }));
    const json resumes = fake.run(orch)["resumes"];
    ASSERT_EQ(resumes.size(), resumes_so_far + 1);
    const std::string last = resumes.back()["prompt"];
    EXPECT_NE(last.find("BEGIN CHILD RUN " + std::to_string(probe["agent_run_id"].get<int64_t>())), std::string::npos);
    EXPECT_EQ(last.find(not_again), std::string::npos) << "a result was delivered twice:\n" << last;
  }

  void expect_no_secrets(Process* p = nullptr) {
    std::string err = stderr_seen + (p ? p->stderr_text() : "");
    for (const char* secret : {kEnvToken, kRuntimeToken}) {
      EXPECT_EQ(stdout_seen.find(secret), std::string::npos) << "token on stdout";
      EXPECT_EQ(err.find(secret), std::string::npos) << "token on stderr";
    }
  }

  CodegenFake fake{{kEnvToken}};
  TempDir dir;
  std::string config_path;
  std::string stdout_seen, stderr_seen;
  int next_id = 0;
};

TEST_F(CodegenTest, ToolsAreListedWithSchemasAndAnnotations) {
  auto p = spawn();
  p->send(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}});
  json tools = p->read_response(1)["result"]["tools"];
  std::set<std::string> names;
  for (const auto& t : tools) {
    names.insert(t["name"]);
    EXPECT_EQ(t["inputSchema"]["type"], "object") << t;
    EXPECT_EQ(t["outputSchema"]["properties"]["status"]["enum"], json({"success", "error"})) << t;
    EXPECT_TRUE(t["annotations"].contains("readOnlyHint")) << t;
  }
  EXPECT_EQ(names, (std::set<std::string>{"codegen_new", "codegen_resume", "codegen_task_status", "codegen_list",
                                          "codegen_config"}));
  stop(p);
}

TEST_F(CodegenTest, NewRunsToCompletion) {
  auto p = spawn();
  fake.script_next({{"polls", 2}, {"final", "COMPLETE"}, {"result", "All tests pass"}});
  const json started = start(*p, {{"query", "Add a README"}, {"repo", "acme/app"}, {"branch", "main"}, {"pr", 7},
                                  {"task", "docs"}});
  EXPECT_EQ(started["status"], "success");
  const int64_t run = started["agent_run_id"];
  EXPECT_EQ(started["web_url"], "https://codegen.com/agent/trace/" + std::to_string(run));
  EXPECT_EQ(started["state"], "running");
  EXPECT_EQ(started["task_id"].get<std::string>().size(), 36u);
  EXPECT_TRUE(started["message"].is_string());

  // The real create endpoint with the old server's prompt and metadata (§A.2, §B.2).
  json creates = fake.requests("^/v1/organizations/42/agent/run$", "POST");
  ASSERT_EQ(creates.size(), 1u);
  EXPECT_TRUE(creates[0]["auth_ok"].get<bool>());
  EXPECT_EQ(creates[0]["body"]["prompt"], "Repository: acme/app\nBranch: main\nPR: #7\nTask: docs\nQuery: Add a README");
  EXPECT_EQ(creates[0]["body"]["metadata"]["repo"], "acme/app");
  EXPECT_EQ(creates[0]["body"]["metadata"]["pr"], 7);

  const json done = wait_state(*p, started["task_id"], {"completed", "failed"});
  EXPECT_EQ(done["state"], "completed");
  EXPECT_EQ(done["result"], "All tests pass");
  EXPECT_EQ(done["upstream_status"], "COMPLETE");
  EXPECT_EQ(done["agent_run_id"], run);
  EXPECT_TRUE(done["completed_at"].is_string());
  EXPECT_TRUE(done["created_at"].is_string());
  EXPECT_EQ(done["metadata"]["repo"], "acme/app");
  EXPECT_TRUE(done["error"].is_null());
  const json gets = fake.requests("/agent/run/" + std::to_string(run) + "$", "GET");
  EXPECT_GE(gets.size(), 3u);  // ACTIVE, ACTIVE, COMPLETE
  for (const auto& g : gets) EXPECT_TRUE(g["auth_ok"].get<bool>());

  // A run that ends in ERROR is failed, with the raw status kept (§D.6).
  fake.script_next({{"polls", 1}, {"final", "ERROR"}});
  const json bad = start(*p, {{"query", "break things"}});
  const json failed = wait_state(*p, bad["task_id"], {"completed", "failed"});
  EXPECT_EQ(failed["state"], "failed");
  EXPECT_EQ(failed["upstream_status"], "ERROR");
  EXPECT_NE(failed["error"].get<std::string>().find("ERROR"), std::string::npos) << failed;
  stop(p);
}

TEST_F(CodegenTest, ResumeTracksTheNewOutcomeNotTheOldOne) {
  const int64_t run = fake.seed({{"status", "COMPLETE"}, {"result", "v1"},
                                 {"resume_script", {{"polls", 2}, {"final", "COMPLETE"}, {"result", "v2"}}}});
  // The resume's answer and the first GET after it still show the old outcome (as the real
  // API may: how fast a resumed run turns active is undocumented, §D.7, §E).
  const json stale = {{"id", run}, {"organization_id", 42}, {"status", "COMPLETE"}, {"result", "v1"},
                      {"web_url", "https://codegen.com/agent/trace/" + std::to_string(run)}};
  fake.fault({{"method", "POST"}, {"path", "/agent/run/resume$"}, {"apply", true}, {"status", 200}, {"body", stale}});
  fake.fault({{"method", "GET"}, {"path", "/agent/run/" + std::to_string(run) + "$"}, {"status", 200}, {"body", stale}});
  auto p = spawn();
  json r = call(*p, "codegen_resume", {{"agent_run_id", std::to_string(run)}, {"query", "also do X"}, {"task", "follow-up"}});
  ASSERT_FALSE(r.value("isError", false)) << r;
  const json started = r["structuredContent"];
  EXPECT_EQ(started["agent_run_id"], run);
  EXPECT_EQ(started["kind"], "resume");
  json resumes = fake.requests("^/v1/organizations/42/agent/run/resume$", "POST");
  ASSERT_EQ(resumes.size(), 1u);
  EXPECT_EQ(resumes[0]["body"], json({{"agent_run_id", run}, {"prompt", "Task: follow-up\nQuery: also do X"},
                                      {"images", json::array()}}));
  const json done = wait_state(*p, started["task_id"], {"completed", "failed"});
  EXPECT_EQ(done["result"], "v2");
  EXPECT_GE(fake.gets_of(run), 4u);  // the stale COMPLETE, ACTIVE twice, COMPLETE

  // An unknown run: the API's {message, status_code} body is surfaced, no task is made.
  r = call(*p, "codegen_resume", {{"agent_run_id", 99999}, {"query", "x"}});
  EXPECT_TRUE(r.value("isError", false));
  EXPECT_EQ(r["structuredContent"]["status"], "error");
  EXPECT_EQ(r["structuredContent"]["error"], "Codegen API 404: Agent run not found.");
  stop(p);
}

TEST_F(CodegenTest, ListFiltersAcrossPages) {
  // Oldest first: 6 COMPLETE acme/app, 220 ACTIVE other/x, 2 ERROR acme/app (newest).
  fake.post("/_fake/runs", {{"org_id", 42}, {"count", 6}, {"status", "COMPLETE"}, {"metadata", {{"repo", "acme/app"}}}});
  fake.post("/_fake/runs", {{"org_id", 42}, {"count", 220}, {"status", "ACTIVE"}, {"metadata", {{"repo", "other/x"}}}});
  fake.post("/_fake/runs", {{"org_id", 42}, {"count", 2}, {"status", "ERROR"}, {"metadata", {{"repo", "acme/app"}}}});
  fake.post("/_fake/runs", {{"org_id", 7}, {"count", 3}, {"status", "COMPLETE"}, {"metadata", {{"repo", "acme/app"}}}});
  auto p = spawn();

  json l = sc(*p, "codegen_list", {{"status", "complete"}, {"repo", "ACME/app"}, {"limit", 5}});
  EXPECT_EQ(l["status"], "success");
  ASSERT_EQ(l["runs"].size(), 5u) << l;
  for (const auto& run : l["runs"]) {
    EXPECT_EQ(run["status"], "COMPLETE");
    EXPECT_EQ(run["metadata"]["repo"], "acme/app");
  }
  EXPECT_EQ(l["total"], 5);
  EXPECT_EQ(l["limit"], 5);
  EXPECT_EQ(l["pages_scanned"], 3);
  EXPECT_EQ(l["complete"], true);
  json pages = fake.requests("^/v1/organizations/42/agent/runs$", "GET");
  ASSERT_EQ(pages.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(pages[i]["query"]["skip"], std::to_string(100 * i));
    EXPECT_EQ(pages[i]["query"]["limit"], "100");
  }

  // The failed class, to the end of the list.
  l = sc(*p, "codegen_list", {{"status", "failed"}, {"repo", "acme/app"}});
  EXPECT_EQ(l["runs"].size(), 2u);
  EXPECT_EQ(l["complete"], true);
  EXPECT_EQ(l["upstream_total"], 228);

  // No filter: one page of `limit` (default 20), newest first.
  const size_t before = fake.requests("^/v1/organizations/42/agent/runs$", "GET").size();
  l = sc(*p, "codegen_list", json::object());
  EXPECT_EQ(l["runs"].size(), 20u);
  EXPECT_EQ(l["limit"], 20);
  EXPECT_GT(l["runs"][0]["id"].get<int64_t>(), l["runs"][1]["id"].get<int64_t>());
  pages = fake.requests("^/v1/organizations/42/agent/runs$", "GET");
  ASSERT_EQ(pages.size(), before + 1);
  EXPECT_EQ(pages.back()["query"]["limit"], "20");

  // limit > 100 never reaches the API (the host checks the schema) ...
  json r = call(*p, "codegen_list", {{"limit", 101}});
  EXPECT_TRUE(r.value("isError", false)) << r;
  EXPECT_EQ(fake.requests("^/v1/organizations/42/agent/runs$", "GET").size(), before + 1);
  // ... where it would be a 422 with FastAPI's detail array (the fake is faithful, §B.2).
  auto [status, body] = fake.send("GET", "/v1/organizations/42/agent/runs?limit=101", nullptr, kEnvToken);
  EXPECT_EQ(status, 422);
  EXPECT_EQ(body["detail"][0]["loc"], json({"query", "limit"}));

  // A page cap: with list_max_pages 1, a filter that matches nothing on page one says so.
  stop(p);
  write_config(", list_max_pages: 1");
  p = spawn();
  l = sc(*p, "codegen_list", {{"status", "COMPLETE"}, {"repo", "acme/app"}});
  EXPECT_EQ(l["runs"].size(), 0u);
  EXPECT_EQ(l["complete"], false);
  EXPECT_NE(l["message"].get<std::string>().find("list_max_pages"), std::string::npos);
  stop(p);
}

TEST_F(CodegenTest, ConfigGetSetNeverLeaksTheToken) {
  auto p = spawn();
  json g = sc(*p, "codegen_config", {{"action", "get"}, {"key", "api_token"}});
  EXPECT_EQ(g["status"], "success");
  EXPECT_EQ(g["set"], true);
  EXPECT_EQ(g["source"], "environment");  // YAML ${CODEGEN_API_TOKEN:-} from the environment
  g = sc(*p, "codegen_config", {{"action", "get"}, {"key", "org_id"}});
  EXPECT_EQ(g["value"], 42);
  EXPECT_EQ(g["source"], "environment");

  json s = sc(*p, "codegen_config", {{"action", "set"}, {"key", "api-token"}, {"value", kRuntimeToken}});
  EXPECT_EQ(s["status"], "success") << s;
  g = sc(*p, "codegen_config", {{"action", "get"}, {"key", "api_token"}});
  EXPECT_EQ(g["source"], "runtime");
  EXPECT_EQ(g["set"], true);

  // The runtime token is the one used from now on.
  fake.post("/_fake/token", {{"token", kRuntimeToken}});
  fake.script_next({{"polls", 0}});
  const json started = start(*p, {{"query", "with the runtime token"}});
  EXPECT_TRUE(fake.requests("^/v1/organizations/42/agent/run$", "POST").back()["auth_ok"].get<bool>());
  wait_state(*p, started["task_id"], {"completed"});

  // An upstream that quotes the credential back: the host does not know a runtime token,
  // so the plugin must redact it itself.
  fake.fault({{"method", "POST"}, {"path", "/agent/run$"}, {"status", 401}, {"echo_auth", true}});
  json r = call(*p, "codegen_new", {{"query", "x"}});
  EXPECT_TRUE(r.value("isError", false));
  EXPECT_NE(r["structuredContent"]["error"].get<std::string>().find("[REDACTED]"), std::string::npos) << r;

  EXPECT_EQ(sc(*p, "codegen_config", {{"action", "set"}, {"key", "org_id"}, {"value", "43"}})["status"], "success");
  g = sc(*p, "codegen_config", {{"action", "get"}, {"key", "org_id"}});
  EXPECT_EQ(g["value"], 43);
  EXPECT_EQ(g["source"], "runtime");
  r = call(*p, "codegen_config", {{"action", "set"}, {"key", "org_id"}, {"value", "abc"}});
  EXPECT_TRUE(r.value("isError", false));
  EXPECT_EQ(r["structuredContent"]["error"], "org_id must be a positive integer");
  // base_url is not settable by a tool (§D.2): the schema refuses the key.
  r = call(*p, "codegen_config", {{"action", "set"}, {"key", "base_url"}, {"value", "http://evil.example"}});
  EXPECT_TRUE(r.value("isError", false)) << r;
  EXPECT_TRUE(sc(*p, "codegen_config", {{"action", "get"}, {"key", "api_token"}})["base_url"] == fake.url());

  // Set values survive a restart.
  stop(p);
  p = spawn();
  g = sc(*p, "codegen_config", {{"action", "get"}, {"key", "api_token"}});
  EXPECT_EQ(g["source"], "runtime");
  stop(p);
  expect_no_secrets();
}

TEST_F(CodegenTest, RateLimitsServerErrorsAndBothErrorShapes) {
  auto p = spawn();
  // 429 on create, {message, status_code} body: surfaced, and never retried (§D.10).
  fake.fault({{"method", "POST"}, {"path", "/agent/run$"}, {"status", 429},
              {"body", {{"message", "Rate limit exceeded. Please try again later."}, {"status_code", 429}}}});
  json r = call(*p, "codegen_new", {{"query", "x"}});
  EXPECT_TRUE(r.value("isError", false));
  EXPECT_EQ(r["structuredContent"]["error"], "Codegen API 429: Rate limit exceeded. Please try again later.");
  EXPECT_TRUE(r["structuredContent"]["details"].is_string());
  EXPECT_EQ(fake.requests("/agent/run$", "POST").size(), 1u);

  // A {detail: "..."} body on list: surfaced; 403 is not retried.
  fake.fault({{"method", "GET"}, {"path", "/agent/runs$"}, {"status", 403}, {"body", {{"detail", "You shall not pass"}}}});
  r = call(*p, "codegen_list", json::object());
  EXPECT_TRUE(r.value("isError", false));
  EXPECT_EQ(r["structuredContent"]["error"], "Codegen API 403: You shall not pass");
  EXPECT_EQ(fake.requests("/agent/runs$", "GET").size(), 1u);

  // 5xx twice, then 429 with Retry-After: 0: the GET is retried and succeeds.
  fake.fault({{"method", "GET"}, {"path", "/agent/runs$"}, {"status", 503}, {"count", 2},
              {"body", {{"detail", "upstream down"}}}});
  r = call(*p, "codegen_list", json::object());
  EXPECT_FALSE(r.value("isError", false)) << r;
  EXPECT_EQ(fake.requests("/agent/runs$", "GET").size(), 4u);
  fake.fault({{"method", "GET"}, {"path", "/agent/runs$"}, {"status", 429}, {"headers", {{"Retry-After", "0"}}}});
  r = call(*p, "codegen_list", json::object());
  EXPECT_FALSE(r.value("isError", false)) << r;
  EXPECT_EQ(fake.requests("/agent/runs$", "GET").size(), 6u);

  // The poller rides out 503s and a 429 too.
  fake.script_next({{"polls", 1}, {"result", "survived"}});
  const json started = start(*p, {{"query", "flaky upstream"}});
  const std::string path = "/agent/run/" + std::to_string(started["agent_run_id"].get<int64_t>()) + "$";
  fake.fault({{"method", "GET"}, {"path", path}, {"status", 502}, {"count", 2}});
  fake.fault({{"method", "GET"}, {"path", path}, {"status", 429}, {"headers", {{"Retry-After", "0"}}}});
  const json done = wait_state(*p, started["task_id"], {"completed", "failed"});
  EXPECT_EQ(done["result"], "survived");
  size_t faulted = 0;
  for (const auto& q : fake.requests(path, "GET")) faulted += q["fault"].get<bool>();
  EXPECT_EQ(faulted, 3u);
  stop(p);
}

TEST_F(CodegenTest, OrchestratorGetsOneBatchedResumeOnlyWhenIdle) {
  const int64_t orch = fake.seed({{"status", "ACTIVE"}, {"resume_script", {{"polls", nullptr}}}});
  auto p = spawn();
  fake.script_next({{"polls", 1}, {"result", "A: implemented the parser"}});
  const json a = start(*p, {{"query", "child A"}, {"orchestrator_run_id", orch}});
  fake.script_next({{"polls", 2}, {"final", "ERROR"}});
  const json b = start(*p, {{"query", "child B"}, {"orchestrator_run_id", std::to_string(orch)}});
  EXPECT_EQ(a["orchestrator_run_id"], orch);
  EXPECT_EQ(wait_state(*p, a["task_id"], {"completed", "failed"})["state"], "completed");
  EXPECT_EQ(wait_state(*p, b["task_id"], {"completed", "failed"})["state"], "failed");

  // Both results wait while the orchestrator is active: watched, never resumed.
  const size_t gets = fake.gets_of(orch);
  ASSERT_TRUE(eventually([&] { return fake.gets_of(orch) >= gets + 3; }));
  EXPECT_EQ(fake.resumes_of(orch), 0u);

  // Idle: ONE resume with both children, delimited, each once.
  fake.update(orch, {{"status", "COMPLETE"}, {"result", "waiting for children"}});
  ASSERT_TRUE(eventually([&] { return fake.resumes_of(orch) >= 1; }));
  const json resumes = fake.run(orch)["resumes"];
  ASSERT_EQ(resumes.size(), 1u);
  const std::string prompt = resumes[0]["prompt"];
  const std::string ida = std::to_string(a["agent_run_id"].get<int64_t>());
  const std::string idb = std::to_string(b["agent_run_id"].get<int64_t>());
  for (const std::string& id : {ida, idb}) {
    const std::string begin = "===== BEGIN CHILD RUN " + id + " =====";
    EXPECT_NE(prompt.find(begin), std::string::npos) << prompt;
    EXPECT_EQ(prompt.find(begin), prompt.rfind(begin)) << "child " << id << " twice";
    EXPECT_NE(prompt.find("===== END CHILD RUN " + id + " ====="), std::string::npos);
    EXPECT_NE(prompt.find("web_url: https://codegen.com/agent/trace/" + id), std::string::npos);
  }
  EXPECT_NE(prompt.find("A: implemented the parser"), std::string::npos);
  EXPECT_NE(prompt.find("status: completed (upstream COMPLETE)"), std::string::npos);
  EXPECT_NE(prompt.find("status: failed (upstream ERROR)"), std::string::npos);
  const json posts = fake.requests("/agent/run/resume$", "POST");
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0]["body"]["agent_run_id"], orch);

  expect_exactly_one_more_resume(*p, orch, 1, "A: implemented the parser");
  stop(p);
}

TEST_F(CodegenTest, OrchestratorResumeIsRetriedOn429And5xx) {
  const int64_t orch = fake.seed({{"status", "COMPLETE"}, {"resume_script", {{"polls", nullptr}}}});
  fake.fault({{"method", "POST"}, {"path", "/agent/run/resume$"}, {"status", 429},
              {"body", {{"message", "Rate limit exceeded. Please try again later."}, {"status_code", 429}}}});
  fake.fault({{"method", "POST"}, {"path", "/agent/run/resume$"}, {"status", 503}, {"body", {{"detail", "busy"}}}});
  auto p = spawn();
  fake.script_next({{"polls", 0}, {"result", "first child's result"}});
  start(*p, {{"query", "child"}, {"orchestrator_run_id", orch}});
  ASSERT_TRUE(eventually([&] { return fake.resumes_of(orch) >= 1; }));
  EXPECT_EQ(fake.requests("/agent/run/resume$", "POST").size(), 3u);  // 429, 503, then delivered
  EXPECT_EQ(fake.resumes_of(orch), 1u);
  expect_exactly_one_more_resume(*p, orch, 1, "first child's result");
  stop(p);
}

TEST_F(CodegenTest, Kill9MidTaskThenRestartCompletesAndResumesOnce) {
  const int64_t orch = fake.seed({{"status", "COMPLETE"}, {"resume_script", {{"polls", nullptr}}}});
  fake.script_next({{"polls", nullptr}});  // runs until the test says otherwise
  auto p = spawn();
  const json child = start(*p, {{"query", "long child"}, {"orchestrator_run_id", orch}});
  const int64_t run = child["agent_run_id"];
  ASSERT_TRUE(eventually([&] { return fake.gets_of(run) >= 2; }));
  kill9(p);

  fake.update(run, {{"script", {{"polls", 1}, {"final", "COMPLETE"}, {"result", "C finished after restart"}}}});
  p = spawn();
  const json done = wait_state(*p, child["task_id"], {"completed", "failed"});
  EXPECT_EQ(done["result"], "C finished after restart");
  ASSERT_TRUE(eventually([&] { return fake.resumes_of(orch) >= 1; }));
  EXPECT_NE(fake.run(orch)["resumes"][0]["prompt"].get<std::string>().find("C finished after restart"),
            std::string::npos);
  expect_exactly_one_more_resume(*p, orch, 1, "C finished after restart");
  stop(p);
  expect_no_secrets();
}

// codegen_new called as an MCP task (2025-11-25 params.task): the task ends when the agent
// run does, with its result text, even when the host is killed (-9) in between: the run
// lives upstream and the plugin's task survives the restart. A cancelled task stops the
// polling (Codegen has no endpoint to stop a single run).
TEST_F(CodegenTest, NewCalledAsATaskEndsWithTheRunAcrossAKill9) {
  fake.script_next({{"polls", nullptr}});  // runs until the test says otherwise
  auto p = spawn();
  auto as_task = [&](Process& host, const json& args) {
    const int id = ++next_id;
    host.send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"},
                   {"params", {{"name", "codegen_new"}, {"arguments", args}, {"task", json::object()}}}});
    return host.read_response(id, nullptr, 20s);
  };
  auto task_rpc = [&](Process& host, const std::string& method, const std::string& task) {
    const int id = ++next_id;
    host.send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", {{"taskId", task}}}});
    return host.read_response(id, nullptr, 20s);
  };
  const json created = as_task(*p, {{"query", "long work"}});
  const std::string task = created["result"]["task"]["taskId"];
  ASSERT_FALSE(task.empty()) << created;
  json gets;
  ASSERT_TRUE(eventually([&] { return (gets = fake.requests("/agent/run/[0-9]+$", "GET")).size() >= 2; }));
  const std::string path = gets[0]["path"];
  const int64_t run = std::stoll(path.substr(path.rfind('/') + 1));
  EXPECT_EQ(task_rpc(*p, "tasks/get", task)["result"]["status"], "working");
  kill9(p);

  fake.update(run, {{"script", {{"polls", 1}, {"final", "COMPLETE"}, {"result", "done after the restart"}}}});
  p = spawn();
  json result = task_rpc(*p, "tasks/result", task);  // waits for the end
  EXPECT_EQ(result["result"]["content"][0]["text"], "done after the restart") << result;
  EXPECT_EQ(task_rpc(*p, "tasks/get", task)["result"]["status"], "completed");

  // Cancelled: the host stops following the run.
  fake.script_next({{"polls", nullptr}});
  const std::string second = as_task(*p, {{"query", "never mind"}})["result"]["task"]["taskId"];
  ASSERT_TRUE(eventually([&] { return fake.requests("/agent/run/[0-9]+$", "GET").size() > gets.size() + 3; }));
  EXPECT_EQ(task_rpc(*p, "tasks/cancel", second)["result"]["status"], "cancelled");
  std::this_thread::sleep_for(300ms);  // a poll that was under way may still land
  const size_t after_cancel = fake.requests("/agent/run/[0-9]+$", "GET").size();
  std::this_thread::sleep_for(500ms);  // 25 poll intervals
  EXPECT_EQ(fake.requests("/agent/run/[0-9]+$", "GET").size(), after_cancel) << "still polling a cancelled task";
  stop(p);
  expect_no_secrets();
}

// Two replicas on one PostgreSQL store: a task started on either is polled by the replica
// holding the poller lease; when that one is killed (-9) mid-poll the other takes over
// within lease_ms and the killed one restarts; the task completes and its orchestrator is
// resumed exactly once.
TEST_F(CodegenTest, ReplicasOnPostgresPollOnceAndTakeOverAfterKill9) {
  testing::PostgresServer pg;
  write_config(", lease_ms: 600", "store: { backend: postgresql, url: \"" + pg.url("codegen") + "\" }\n");
  const int64_t orch = fake.seed({{"status", "COMPLETE"}, {"resume_script", {{"polls", nullptr}}}});
  fake.script_next({{"polls", nullptr}});  // runs until the test says otherwise
  // Each replica has its own state_dir (its replica id lives there).
  std::ifstream in(config_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string state = dir.str() + "/state";
  text.replace(text.find(state), state.size(), state + "-b");
  const std::string config_a = config_path;
  config_path = dir.str() + "/replica-b.yaml";
  std::ofstream(config_path) << text;
  auto b = spawn();
  config_path = config_a;
  std::unique_ptr<Process> replicas[2] = {spawn(), std::move(b)};
  auto leader = [&]() -> int {
    for (int i = 0; i < 2; ++i) {
      if (replicas[i] && replicas[i]->stderr_text().find("polls the tasks (lease 'poller')") != std::string::npos) return i;
    }
    return -1;
  };
  ASSERT_TRUE(eventually([&] { return leader() >= 0; })) << replicas[0]->stderr_text() << replicas[1]->stderr_text();
  const int first = leader();
  const int other = 1 - first;
  // Started on the replica that does not poll: the leader picks it up from the store.
  const json child = start(*replicas[other], {{"query", "child on the other replica"}, {"orchestrator_run_id", orch}});
  const int64_t run = child["agent_run_id"];
  ASSERT_TRUE(eventually([&] { return fake.gets_of(run) >= 2; }));
  EXPECT_EQ(replicas[other]->stderr_text().find("polls the tasks (lease 'poller')"), std::string::npos)
      << "both replicas poll";
  kill9(replicas[first]);

  fake.update(run, {{"script", {{"polls", 1}, {"final", "COMPLETE"}, {"result", "finished on the survivor"}}}});
  const json done = wait_state(*replicas[other], child["task_id"], {"completed", "failed"});
  EXPECT_EQ(done["result"], "finished on the survivor");
  EXPECT_NE(replicas[other]->stderr_text().find("polls the tasks (lease 'poller')"), std::string::npos);
  // The killed replica comes back (its own state_dir, so its own replica id) once the
  // survivor holds the lease: it must not resume the orchestrator a second time.
  if (first == 1) config_path = dir.str() + "/replica-b.yaml";
  replicas[first] = spawn();
  config_path = config_a;
  ASSERT_TRUE(eventually([&] { return fake.resumes_of(orch) >= 1; }));
  expect_exactly_one_more_resume(*replicas[other], orch, 1, "finished on the survivor");
  stop(replicas[first]);
  stop(replicas[other]);
  expect_no_secrets();
}

TEST_F(CodegenTest, Kill9DuringTheResumeIsReconciledNotResent) {
  const int64_t orch = fake.seed({{"status", "COMPLETE"}, {"resume_script", {{"polls", nullptr}}}});
  // The API takes the resume but answers late: the host dies before it hears back.
  fake.fault({{"method", "POST"}, {"path", "/agent/run/resume$"}, {"delay_ms", 4000}});
  auto p = spawn();
  fake.script_next({{"polls", 0}, {"result", "delivered before the crash"}});
  start(*p, {{"query", "child"}, {"orchestrator_run_id", orch}});
  ASSERT_TRUE(eventually([&] { return fake.resumes_of(orch) >= 1; }));
  kill9(p);

  const size_t gets = fake.gets_of(orch);
  p = spawn();
  // On start the interrupted delivery is reconciled: the orchestrator is active again, so
  // the resume had arrived and is not sent a second time.
  ASSERT_TRUE(eventually([&] { return fake.gets_of(orch) > gets; }));
  expect_exactly_one_more_resume(*p, orch, 1, "delivered before the crash");
  stop(p);
}

TEST_F(CodegenTest, TimedOutTasksAreStillPolledAndCanComplete) {
  write_config(", deadline_ms: 150, timed_out_poll_interval_ms: 50");
  auto p = spawn();
  fake.script_next({{"polls", nullptr}});
  const json started = start(*p, {{"query", "slow"}});
  const json late = wait_state(*p, started["task_id"], {"timed_out", "failed", "completed"});
  EXPECT_EQ(late["state"], "timed_out");  // not "failed" (§D.5)
  EXPECT_EQ(late["upstream_status"], "ACTIVE");
  fake.update(started["agent_run_id"], {{"status", "COMPLETE"}, {"result", "late but fine"}});
  const json done = wait_state(*p, started["task_id"], {"completed", "failed"});
  EXPECT_EQ(done["state"], "completed");
  EXPECT_EQ(done["result"], "late but fine");
  stop(p);
}

TEST_F(CodegenTest, FinishedTasksArePrunedAfterTheRetention) {
  write_config(", retention_ms: 300");
  auto p = spawn();
  fake.script_next({{"polls", 0}});
  const json started = start(*p, {{"query", "short-lived"}});
  wait_state(*p, started["task_id"], {"completed"});
  json r;
  ASSERT_TRUE(eventually([&] {
    r = call(*p, "codegen_task_status", {{"task_id", started["task_id"]}});
    return r.value("isError", false);
  }));
  EXPECT_EQ(r["structuredContent"]["error"], "task " + started["task_id"].get<std::string>() + " not found");
  stop(p);
}


// The old server's {"command","args"} envelope over HTTP, mapped to the codegen_* tools.
TEST_F(CodegenTest, CommandEnvelopeOverHttp) {
  HttpHost host("  - name: codegen\n    library: codegen\n"
                "    credentials: { api_token: \"${CODEGEN_API_TOKEN:-}\", org_id: \"${CODEGEN_ORG_ID:-}\" }\n"
                "    settings: { base_url: \"" + fake.url() + "\", poll_interval_ms: 20 }\n",
                "    command_endpoints: [{ path: /codegen, tool_prefix: codegen_ }]\n", "",
                {std::string("CODEGEN_API_TOKEN=") + kEnvToken, "CODEGEN_ORG_ID=42"});
  auto c = host.client();
  auto post = [&](const json& body) {
    auto r = c->Post("/codegen", body.dump(), "application/json");
    EXPECT_TRUE(r);
    EXPECT_EQ(r ? r->status : 0, 200);
    stdout_seen += r ? r->body : "";
    return r ? json::parse(r->body, nullptr, false) : json();
  };
  json started = post({{"command", "new"}, {"args", {{"query", "fix it"}, {"repo", "acme/web"}}}});
  ASSERT_EQ(started["status"], "success") << started;
  ASSERT_TRUE(started["task_id"].is_string());
  EXPECT_TRUE(started["agent_run_id"].is_number_integer());
  json status;
  EXPECT_TRUE(eventually([&] {
    status = post({{"command", "task_status"}, {"args", {{"task_id", started["task_id"]}}}});
    return status.value("state", "") == "completed";
  })) << status;
  json unknown = post({{"command", "frobnicate"}, {"args", json::object()}});
  EXPECT_EQ(unknown["status"], "error");
  EXPECT_EQ(unknown["error"], "Unknown command");
  json cfg = post({{"command", "config"}, {"args", {{"action", "get"}, {"key", "api_token"}}}});
  EXPECT_EQ(cfg["status"], "success") << cfg;
  expect_no_secrets(&host.process());
}

}  // namespace
}  // namespace mcph::testing
