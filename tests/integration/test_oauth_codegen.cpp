// The codegen plugin with per-user credentials: the real binary over HTTP in auth.mode oauth
// against the fake Codegen API (tests/fakes/codegen_fake.py) with two users' tokens and the
// operator's. Both users sign in through the form (where the plugin checks their token),
// each starts a run; every upstream request, the poller's included, carries the right
// user's token and never the operator's; one user cannot read the other's task; revoking
// one stops the polling of their run and leaves the other working; no token reaches the log
// or the state database in clear.
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

#include "codegen_fake.hpp"
#include "oauth_client.hpp"
#include "postgres.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const char* kAlice = "cg-alice-token-1111";
const char* kBob = "cg-bob-token-2222";
const char* kOperator = "cg-operator-token-9999";  // the YAML's: no signed-in user's work may use it

class OAuthCodegenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host = std::make_unique<HttpHost>(
        "  - name: cg\n    library: codegen\n    credentials: { api_token: \"" + std::string(kOperator) +
            "\", org_id: \"42\" }\n    settings: { base_url: \"" + api.url() +
            "\", poll_interval_ms: 50, poll_max_interval_ms: 200, get_budget_per_30s: 59 }\n",
        "    auth: { mode: oauth }\n");
    c = host->client();
    c->set_follow_location(false);
    oauth = std::make_unique<OAuthClient>(*c, host->url() + "/mcp");
  }

  // The form's first page for a newly registered client (it asks for codegen's fields).
  OAuthClient::Started start_sign_in() {
    auto started = oauth->start();
    EXPECT_NE(started.page->body.find("Codegen API token"), std::string::npos) << "the plugin's declared field";
    EXPECT_NE(started.page->body.find("Codegen organisation id"), std::string::npos);
    return started;
  }
  httplib::Result post_form(const httplib::Result& page, Fields typed) { return oauth->post(page, std::move(typed)); }

  // The whole sign-in, as a client and a person do it. Returns the token response.
  json sign_in(const std::string& token, const std::string& org = "42") {
    auto started = start_sign_in();
    return oauth->finish(post_form(started.page, {{"cg.api_token", token}, {"cg.org_id", org}}), started);
  }
  httplib::Result call(const std::string& access_token, const std::string& tool, const json& args = json::object()) {
    return oauth->call(access_token, tool, args);
  }
  // A tool's result (status 200 and a result expected).
  json result(const std::string& access_token, const std::string& tool, const json& args = json::object()) {
    auto r = call(access_token, tool, args);
    EXPECT_EQ(r->status, 200) << r->body;
    return body_json(r)["result"];
  }

  // The fake's GETs of run `id` made as `user` with a seq above `after`.
  size_t polls(int64_t id, int user, int64_t after = 0) {
    size_t n = 0;
    for (const auto& r : api.requests()) {
      n += r["method"] == "GET" && r["path"].get<std::string>().ends_with("/agent/run/" + std::to_string(id)) &&
           r["user"] == user && r["seq"].get<int64_t>() > after;
    }
    return n;
  }

  CodegenFake api{{kAlice, kBob, kOperator}};
  std::unique_ptr<HttpHost> host;
  std::unique_ptr<httplib::Client> c;
  std::unique_ptr<OAuthClient> oauth;
};

TEST_F(OAuthCodegenTest, TheSignInChecksTheTokenWithCodegen) {
  auto s = start_sign_in();
  auto refused = post_form(s.page, {{"cg.api_token", "cg-mallory-token-3333"}, {"cg.org_id", "42"}});
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(refused->body.find("did not accept this API token (HTTP 401)"), std::string::npos) << refused->body;
  EXPECT_EQ(refused->body.find("cg-mallory-token-3333"), std::string::npos);
  EXPECT_TRUE(refused->get_header_value("Location").empty());
  auto again = start_sign_in();
  auto no_number = post_form(again.page, {{"cg.api_token", kAlice}, {"cg.org_id", "forty-two"}});
  EXPECT_EQ(no_number->status, 400);
  EXPECT_NE(no_number->body.find("positive whole number"), std::string::npos) << no_number->body;
  const json reqs = api.requests();
  ASSERT_EQ(reqs.size(), 1u) << reqs;  // only the first attempt reached Codegen
  EXPECT_EQ(reqs[0]["path"], "/v1/organizations/42/agent/runs");
  EXPECT_EQ(reqs[0]["user"], -1);
}

TEST_F(OAuthCodegenTest, TwoUsersEachRunWithTheirOwnTokenAndARevokedOneStopsBeingPolled) {
  json alice = sign_in(kAlice), bob = sign_in(kBob);
  const std::string at = alice["access_token"], bt = bob["access_token"];

  // Each starts a run that stays active.
  api.script_next({{"polls", nullptr}});
  api.script_next({{"polls", nullptr}});
  json a = result(at, "codegen_new", {{"query", "alice's change"}, {"repo", "o/r"}});
  ASSERT_FALSE(a.value("isError", false)) << a;
  json b = result(bt, "codegen_new", {{"query", "bob's change"}, {"repo", "o/r"}});
  ASSERT_FALSE(b.value("isError", false)) << b;
  const int64_t a_run = a["structuredContent"]["agent_run_id"], b_run = b["structuredContent"]["agent_run_id"];
  const std::string a_task = a["structuredContent"]["task_id"], b_task = b["structuredContent"]["task_id"];
  ASSERT_TRUE(eventually([&] { return polls(a_run, 0) >= 2 && polls(b_run, 1) >= 2; }));

  // Every request so far, the sign-in checks included, came as the right user; none as the
  // operator and none without a known token.
  for (const auto& r : api.requests()) {
    const std::string path = r["path"], body = r["body"].dump();
    if (path.ends_with("/" + std::to_string(a_run)) || body.find("alice's") != std::string::npos) {
      EXPECT_EQ(r["user"], 0) << r;
    } else if (path.ends_with("/" + std::to_string(b_run)) || body.find("bob's") != std::string::npos) {
      EXPECT_EQ(r["user"], 1) << r;
    } else {
      EXPECT_TRUE(r["user"] == 0 || r["user"] == 1) << r;  // the two sign-in checks
    }
  }

  // Bob can neither read Alice's task nor see her run; his config is his sign-in.
  json status = result(bt, "codegen_task_status", {{"task_id", a_task}});
  EXPECT_TRUE(status.value("isError", false)) << status;
  EXPECT_EQ(status["structuredContent"]["error"], "task " + a_task + " not found");
  json listed = result(bt, "codegen_list", {{"repo", "o/r"}});
  ASSERT_FALSE(listed.value("isError", false)) << listed;
  ASSERT_EQ(listed["structuredContent"]["runs"].size(), 1u) << listed;
  EXPECT_EQ(listed["structuredContent"]["runs"][0]["id"], b_run);
  EXPECT_EQ(result(bt, "codegen_config", {{"action", "get"}, {"key", "api_token"}})["structuredContent"]["source"], "user");
  json set = result(bt, "codegen_config", {{"action", "set"}, {"key", "api_token"}, {"value", "cg-bob-new-token-4444"}});
  EXPECT_TRUE(set.value("isError", false)) << set;

  // Alice is revoked: her calls end, her run is no longer polled (once a poll that was in
  // flight is done: the poller is one thread, so after Bob's next poll), Bob's goes on.
  auto rv = oauth->revoke(alice);
  EXPECT_EQ(rv->status, 200);
  EXPECT_EQ(call(at, "codegen_task_status", {{"task_id", a_task}})->status, 401);
  const int64_t mark = api.requests().size();
  int64_t after = 0;
  ASSERT_TRUE(eventually([&] {
    for (const auto& r : api.requests()) {
      if (r["seq"].get<int64_t>() > mark && r["path"].get<std::string>().ends_with("/" + std::to_string(b_run))) {
        after = r["seq"];
        return true;
      }
    }
    return false;
  }));
  ASSERT_TRUE(eventually([&] { return polls(b_run, 1, after) >= 4; }));
  EXPECT_EQ(polls(a_run, 0, after), 0u);
  EXPECT_EQ(polls(a_run, 2), 0u);  // nor with the operator's token instead
  json mine = result(bt, "codegen_task_status", {{"task_id", b_task}});
  EXPECT_FALSE(mine.value("isError", false)) << mine;
  EXPECT_EQ(mine["structuredContent"]["state"], "running");
  EXPECT_TRUE(mine["structuredContent"]["paused"].is_null());
  EXPECT_FALSE(result(bt, "codegen_list", json::object()).value("isError", false));
  for (const auto& r : api.requests()) EXPECT_NE(r["user"], 2) << r;

  // No token in the log, nor in clear in the state database.
  const std::string log = host->process().stderr_text();
  for (const char* token : {kAlice, kBob, kOperator, "cg-bob-new-token-4444"}) EXPECT_EQ(log.find(token), std::string::npos) << token;
  const auto state_dir = std::filesystem::path(host->config_path()).parent_path() / "state";
  size_t files = 0;
  for (const auto& f : std::filesystem::directory_iterator(state_dir)) {
    const std::string name = f.path().filename();
    if (name != "state.db" && name != "state.db-wal") continue;
    ++files;
    std::ostringstream bytes;
    bytes << std::ifstream(f.path(), std::ios::binary).rdbuf();
    for (const char* token : {kAlice, kBob, "cg-bob-new-token-4444"}) {
      EXPECT_EQ(bytes.str().find(token), std::string::npos) << token << " in " << name;
    }
  }
  EXPECT_GE(files, 1u);
}

// Two replicas on PostgreSQL, two users: Alice's run (the child of her orchestrator run)
// started on one replica, Bob's on the other. The replica that polls is killed (-9) mid-poll
// and comes back; the other takes the poller's lease; both runs complete, Alice's
// orchestrator is resumed exactly once, and every request to Codegen carries the right
// user's token, never the other's or the operator's.
TEST(OAuthCodegenReplicas, TwoUsersRunsSurviveAKill9AndTheOrchestratorIsResumedOnce) {
  PostgresServer pg;
  CodegenFake api{{kAlice, kBob, kOperator}};
  const std::string top = "store: { backend: postgresql, url: \"" + pg.url("cg") + "\" }\n";
  const std::string plugins = "  - name: cg\n    library: codegen\n    credentials: { api_token: \"" + std::string(kOperator) +
                              "\", org_id: \"42\" }\n    settings: { base_url: \"" + api.url() +
                              "\", poll_interval_ms: 50, poll_max_interval_ms: 200, get_budget_per_30s: 59, lease_ms: 600 }\n";
  const std::string http = "    auth: { mode: oauth, oauth: { issuer: \"http://mcp.example\" } }\n";
  auto replica = [&] { return std::make_unique<HttpHost>(plugins, http, "", std::vector<std::string>{}, top); };
  std::unique_ptr<HttpHost> hosts[2] = {replica(), replica()};
  std::unique_ptr<httplib::Client> clients[2];
  std::unique_ptr<OAuthClient> on[2];
  auto connect = [&](int i) {
    clients[i] = hosts[i]->client();
    clients[i]->set_follow_location(false);
    on[i] = std::make_unique<OAuthClient>(*clients[i], "http://mcp.example/mcp");
  };
  connect(0);
  connect(1);
  auto sign_in = [&](int i, const char* token) {
    auto started = on[i]->start();
    return on[i]->finish(on[i]->post(started.page, {{"cg.api_token", token}, {"cg.org_id", "42"}}), started)["access_token"].get<std::string>();
  };
  const std::string alice = sign_in(0, kAlice), bob = sign_in(1, kBob);
  auto result = [&](int i, const std::string& token, const std::string& tool, const json& args) {
    auto r = on[i]->call(token, tool, args);
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r ? body_json(r)["result"] : json();
  };

  const int64_t orch = api.seed({{"status", "COMPLETE"}, {"resume_script", {{"polls", nullptr}}}});
  api.script_next({{"polls", nullptr}});
  api.script_next({{"polls", nullptr}});
  const json a = result(1, alice, "codegen_new", {{"query", "alice's child"}, {"orchestrator_run_id", orch}})["structuredContent"];
  const json b = result(0, bob, "codegen_new", {{"query", "bob's change"}})["structuredContent"];
  ASSERT_TRUE(a.contains("agent_run_id") && b.contains("agent_run_id")) << a << b;
  const int64_t a_run = a["agent_run_id"], b_run = b["agent_run_id"];
  auto gets = [&](int64_t run) {
    size_t n = 0;
    for (const auto& r : api.requests()) n += r["method"] == "GET" && r["path"].get<std::string>().ends_with("/agent/run/" + std::to_string(run));
    return n;
  };
  auto leader = [&]() -> int {
    for (int i = 0; i < 2; ++i) {
      if (hosts[i]->process().stderr_text().find("polls the tasks (lease 'poller')") != std::string::npos) return i;
    }
    return -1;
  };
  ASSERT_TRUE(eventually([&] { return leader() >= 0 && gets(a_run) >= 2 && gets(b_run) >= 2; }));
  const int first = leader(), other = 1 - first;
  hosts[first]->process().signal(SIGKILL);
  EXPECT_EQ(hosts[first]->process().wait(), 128 + SIGKILL);
  hosts[first] = replica();  // back, with a state_dir (and replica id) of its own
  connect(first);

  api.update(a_run, {{"script", {{"polls", 1}, {"final", "COMPLETE"}, {"result", "alice's done"}}}});
  api.update(b_run, {{"script", {{"polls", 1}, {"final", "COMPLETE"}, {"result", "bob's done"}}}});
  auto state_of = [&](int i, const std::string& token, const json& task) {
    return result(i, token, "codegen_task_status", {{"task_id", task}})["structuredContent"].value("state", "");
  };
  EXPECT_TRUE(eventually([&] { return state_of(other, alice, a["task_id"]) == "completed"; }, 20s));
  EXPECT_TRUE(eventually([&] { return state_of(first, bob, b["task_id"]) == "completed"; }, 20s));
  ASSERT_TRUE(eventually([&] { return api.run(orch)["resumes"].size() >= 1; }, 20s));
  std::this_thread::sleep_for(1500ms);  // a second resume, from either replica, would come by now
  EXPECT_EQ(api.run(orch)["resumes"].size(), 1u);

  for (const auto& r : api.requests()) {
    const std::string path = r["path"], body = r["body"].dump();
    EXPECT_NE(r["user"], 2) << "the operator's token: " << r;
    if (path.ends_with("/" + std::to_string(a_run)) || body.find("alice's") != std::string::npos ||
        body.find(std::to_string(orch)) != std::string::npos) {
      EXPECT_EQ(r["user"], 0) << r;
    } else if (path.ends_with("/" + std::to_string(b_run)) || body.find("bob's") != std::string::npos) {
      EXPECT_EQ(r["user"], 1) << r;
    }
  }
}

}  // namespace
}  // namespace mcph::testing
