// MCP tasks through the real binary: over stdio and Streamable HTTP, in both eras (2026-07-28
// with the tasks extension, 2025-11-25 with params.task): a slow call polled to completion,
// its cancel, an input round inside a task, another user's task id refused (HTTP with
// OAuth), and restarts in the middle (a host-run task then ends failed, saying why).
#include <algorithm>
#include <fstream>
#include <mutex>
#include <thread>

#include "http_host.hpp"
#include "oauth_client.hpp"
#include "postgres.hpp"
#include "process.hpp"
#include "rpc.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const char* kPlugins = "  - name: fixtures\n    library: conformance-fixtures\n";
const json kTasksCaps{{"extensions", {{"io.modelcontextprotocol/tasks", json::object()}}}, {"elicitation", json::object()}};

json meta26() {
  return json{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"}, {"io.modelcontextprotocol/clientCapabilities", kTasksCaps}};
}
bool terminal(const json& status) { return status == "completed" || status == "failed" || status == "cancelled"; }

// ---- stdio ---------------------------------------------------------------------------------

class StdioTasks : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg = dir.str() + "/mcp-host.yaml";
    std::ofstream(cfg) << config_yaml(dir.str() + "/state", kPlugins, "  shutdown_grace_ms: 100\n");
    spawn();
  }
  void spawn() {
    p = std::make_unique<Process>(std::vector<std::string>{MCPH_BINARY, "serve", "--config", cfg});
    json r = ask(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", {{"elicitation", json::object()}}},
                                       {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
    ASSERT_EQ(r["result"]["protocolVersion"], "2025-11-25") << r << p->stderr_text();
    EXPECT_TRUE(r["result"]["capabilities"].contains("tasks")) << r;
  }
  json ask(const json& request, std::vector<json>* skipped = nullptr) {
    p->send(request);
    return p->read_response(request["id"], skipped, 15s);
  }
  // A 2026-07-28 request with the tasks extension declared.
  json modern(const std::string& method, json params) {
    params["_meta"] = meta26();
    return ask(req(++id, method, std::move(params)));
  }
  json poll(const std::string& task, const std::string& until = "") {
    json r;
    for (int i = 0; i < 300; ++i) {
      r = modern("tasks/get", {{"taskId", task}})["result"];
      if (r["status"] == until || terminal(r["status"])) break;
      std::this_thread::sleep_for(20ms);
    }
    return r;
  }

  TempDir dir;
  std::string cfg;
  std::unique_ptr<Process> p;
  int id = 100;
};

TEST_F(StdioTasks, ModernSlowCallCancelAndInputRound) {
  json created = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0.2}, {"label", "one"}}}})["result"];
  ASSERT_EQ(created["resultType"], "task") << created;
  json done = poll(created["taskId"]);
  EXPECT_EQ(done["status"], "completed") << done;
  EXPECT_EQ(done["result"]["content"][0]["text"], "computed one");

  json slow = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}})["result"];
  EXPECT_FALSE(modern("tasks/cancel", {{"taskId", slow["taskId"]}}).contains("error"));
  EXPECT_EQ(poll(slow["taskId"])["status"], "cancelled");

  json asking = modern("tools/call", {{"name", "confirm_delete"}, {"arguments", {{"filename", "c.txt"}}}})["result"];
  json waiting = poll(asking["taskId"], "input_required");
  ASSERT_EQ(waiting["status"], "input_required") << waiting;
  const std::string key = waiting["inputRequests"].begin().key();
  modern("tasks/update", {{"taskId", asking["taskId"]}, {"inputResponses", {{key, {{"action", "accept"}, {"content", {{"confirm", true}}}}}}}});
  EXPECT_EQ(poll(asking["taskId"])["result"]["content"][0]["text"], "Deleted c.txt");
}

TEST_F(StdioTasks, LegacyTaskWithResultCancelAndARealElicitation) {
  json r = ask(req(1, "tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0.2}, {"label", "two"}}}, {"task", json::object()}}));
  const std::string task = r["result"]["task"]["taskId"];
  std::vector<json> skipped;
  json result = ask(req(2, "tasks/result", {{"taskId", task}}), &skipped);
  EXPECT_EQ(result["result"]["content"][0]["text"], "computed two") << result;
  EXPECT_EQ(result["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], task);

  json slow = ask(req(3, "tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}, {"task", json::object()}}));
  EXPECT_EQ(ask(req(4, "tasks/cancel", {{"taskId", slow["result"]["task"]["taskId"]}}))["result"]["status"], "cancelled");

  // Input inside a task: the host sends elicitation/create on stdout, marked with the task.
  json asking = ask(req(5, "tools/call", {{"name", "confirm_delete"}, {"arguments", {{"filename", "d.txt"}}}, {"task", json::object()}}));
  const std::string t = asking["result"]["task"]["taskId"];
  json elicit;
  // Polled on a deadline, not a count: an isolated plugin or a busy machine takes longer.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (int i = 0; elicit.is_null() && std::chrono::steady_clock::now() < deadline; ++i) {
    skipped.clear();
    ask(req(100 + i, "tasks/get", {{"taskId", t}}), &skipped);
    for (const auto& m : skipped) {
      if (m.value("method", "") == "elicitation/create") elicit = m;
    }
    if (elicit.is_null()) std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(elicit.is_null()) << "no elicitation request";
  EXPECT_EQ(elicit["params"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], t);
  p->send(json{{"jsonrpc", "2.0"}, {"id", elicit["id"]}, {"result", {{"action", "accept"}, {"content", {{"confirm", true}}}}}});
  EXPECT_EQ(text_of(ask(req(6, "tasks/result", {{"taskId", t}}))), "Deleted d.txt");
}

TEST_F(StdioTasks, ARestartInTheMiddleFailsAHostRunTaskSayingWhy) {
  // Shut down (EOF): the handler is cancelled after the grace period; the task says so.
  json a = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}})["result"];
  p->close_stdin();
  EXPECT_EQ(p->wait(15s), 0);
  spawn();
  json after = poll(a["taskId"]);
  EXPECT_EQ(after["status"], "failed") << after;
  EXPECT_NE(after["error"]["message"].get<std::string>().find("shut down before the task finished"), std::string::npos) << after;
  // Killed (-9): nothing could be written; the next start fails what its predecessor left.
  json b = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}})["result"];
  p->signal(SIGKILL);
  p->wait();
  spawn();
  json killed = poll(b["taskId"]);
  EXPECT_EQ(killed["status"], "failed") << killed;
  EXPECT_NE(killed["error"]["message"].get<std::string>().find("ended before it finished"), std::string::npos) << killed;
}

// ---- HTTP ----------------------------------------------------------------------------------

class HttpTasks : public ::testing::Test {
 protected:
  void SetUp() override {
    host = std::make_unique<HttpHost>(kPlugins, "    auth: { mode: oauth }\n");
    c = host->client();
    c->set_follow_location(false);
    oauth = std::make_unique<OAuthClient>(*c, host->url() + "/mcp");
  }
  // A user of their own (no credentials to type: each grant is a user).
  std::string sign_in() {
    auto started = oauth->start();
    return oauth->finish(oauth->post(started.page, {}), started)["access_token"];
  }
  json modern(const std::string& token, const std::string& method, json params, const std::string& name) {
    params["_meta"] = meta26();
    auto r = c->Post("/mcp",
                     httplib::Headers{{"Authorization", "Bearer " + token}, {"MCP-Protocol-Version", "2026-07-28"},
                                      {"Mcp-Method", method}, {"Mcp-Name", name}, {"Accept", "application/json"}},
                     req(1, method, std::move(params)).dump(), "application/json");
    return r ? body_json(r) : json();
  }
  json task_call(const std::string& token, const std::string& method, const std::string& task, json more = json::object()) {
    more["taskId"] = task;
    return modern(token, method, std::move(more), task);
  }
  json poll(const std::string& token, const std::string& task, const std::string& until = "") {
    json r;
    for (int i = 0; i < 300; ++i) {
      r = task_call(token, "tasks/get", task)["result"];
      if (r["status"] == until || terminal(r["status"])) break;
      std::this_thread::sleep_for(20ms);
    }
    return r;
  }

  std::unique_ptr<HttpHost> host;
  std::unique_ptr<httplib::Client> c;
  std::unique_ptr<OAuthClient> oauth;
};

TEST_F(HttpTasks, ModernTasksBelongToTheirUser) {
  const std::string alice = sign_in(), bob = sign_in();
  json created = modern(alice, "tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0.3}, {"label", "a"}}}}, "slow_compute");
  const std::string id = created["result"]["taskId"];
  ASSERT_EQ(created["result"]["resultType"], "task") << created;
  json refused = task_call(bob, "tasks/get", id);
  EXPECT_EQ(refused["error"]["code"], -32602) << refused;
  EXPECT_EQ(task_call(bob, "tasks/cancel", id)["error"]["code"], -32602);
  EXPECT_EQ(poll(alice, id)["result"]["content"][0]["text"], "computed a");

  // The routing header must name the task.
  json mismatch = modern(alice, "tasks/get", {{"taskId", id}}, "another-task");
  EXPECT_EQ(mismatch["error"]["code"], -32020) << mismatch;

  json slow = modern(alice, "tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}}, "slow_compute");
  EXPECT_EQ(task_call(alice, "tasks/cancel", slow["result"]["taskId"])["result"]["resultType"], "complete");
  EXPECT_EQ(poll(alice, slow["result"]["taskId"])["status"], "cancelled");

  json asking = modern(alice, "tools/call", {{"name", "confirm_delete"}, {"arguments", {{"filename", "e.txt"}}}}, "confirm_delete");
  const std::string t = asking["result"]["taskId"];
  json waiting = poll(alice, t, "input_required");
  ASSERT_EQ(waiting["status"], "input_required") << waiting;
  const std::string key = waiting["inputRequests"].begin().key();
  task_call(alice, "tasks/update", t, {{"inputResponses", {{key, {{"action", "accept"}, {"content", {{"confirm", false}}}}}}}});
  EXPECT_EQ(poll(alice, t)["result"]["content"][0]["text"], "Kept e.txt");
}

// subscriptions/listen over HTTP: an SSE response that stays open; the ack first, then the
// task's changes and the resource's updates, each marked with the stream's id; hanging up
// ends it.
TEST_F(HttpTasks, AListenStreamCarriesTaskAndResourceNotifications) {
  const std::string alice = sign_in();
  json created = modern(alice, "tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0.5}}}}, "slow_compute");
  const std::string task = created["result"]["taskId"];
  json listen = req("listen:0", "subscriptions/listen",
                    {{"notifications", {{"resourceSubscriptions", {"test://watched-resource"}}, {"taskIds", {task}}}}, {"_meta", meta26()}});
  std::mutex mutex;
  std::vector<json> events;
  std::thread reader([&] {
    httplib::Client sc("127.0.0.1", host->port());
    httplib::Request r;
    r.method = "POST";
    r.path = "/mcp";
    r.headers = {{"Authorization", "Bearer " + alice}, {"MCP-Protocol-Version", "2026-07-28"},
                 {"Mcp-Method", "subscriptions/listen"}, {"Accept", "application/json, text/event-stream"}};
    r.body = listen.dump();
    r.set_header("Content-Type", "application/json");
    r.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      std::lock_guard lock(mutex);
      for (auto& m : sse_messages(std::string(data, len))) events.push_back(std::move(m));
      // Hang up once the resource update came.
      return std::none_of(events.begin(), events.end(), [](const json& m) { return m.value("method", "") == "notifications/resources/updated"; });
    };
    sc.send(r);
  });
  auto seen = [&](const std::string& method, const std::string& status = "") {
    std::lock_guard lock(mutex);
    return std::any_of(events.begin(), events.end(), [&](const json& m) {
      return m.value("method", "") == method && (status.empty() || m["params"].value("status", "") == status);
    });
  };
  for (int i = 0; i < 300 && !seen("notifications/tasks", "completed"); ++i) std::this_thread::sleep_for(20ms);
  modern(alice, "tools/call", {{"name", "test_touch_watched_resource"}}, "test_touch_watched_resource");
  reader.join();  // it hung up once the update came: the rest reads `events` alone
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0]["method"], "notifications/subscriptions/acknowledged") << events[0];
  EXPECT_EQ(events[0]["params"]["notifications"]["taskIds"], json({task}));
  EXPECT_TRUE(seen("notifications/tasks", "completed"));
  EXPECT_TRUE(seen("notifications/resources/updated"));
  for (const auto& e : events) EXPECT_EQ(e["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen:0") << e;
}

TEST_F(HttpTasks, LegacySessionTasksWithResultAndCancel) {
  const std::string alice = sign_in(), bob = sign_in();
  auto open = [&](const std::string& token) {
    auto r = c->Post("/mcp", httplib::Headers{{"Authorization", "Bearer " + token}, {"Accept", "application/json, text/event-stream"}},
                     req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                           {"clientInfo", {{"name", "t"}, {"version", "1"}}}}).dump(),
                     "application/json");
    return r->get_header_value("Mcp-Session-Id");
  };
  const std::string sa = open(alice), sb = open(bob);
  auto post = [&](const std::string& token, const std::string& sid, const json& m) {
    auto r = c->Post("/mcp", httplib::Headers{{"Authorization", "Bearer " + token}, {"Mcp-Session-Id", sid},
                                              {"MCP-Protocol-Version", "2025-11-25"}, {"Accept", "application/json"}},
                     m.dump(), "application/json");
    return r ? body_json(r) : json();
  };
  json created = post(alice, sa, req(1, "tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0.3}, {"label", "l"}}}, {"task", json::object()}}));
  const std::string id = created["result"]["task"]["taskId"];
  ASSERT_FALSE(id.empty()) << created;
  EXPECT_EQ(post(bob, sb, req(2, "tasks/get", {{"taskId", id}}))["error"]["code"], -32602);
  EXPECT_EQ(post(bob, sb, req(3, "tasks/list"))["result"]["tasks"].size(), 0u);
  json result = post(alice, sa, req(4, "tasks/result", {{"taskId", id}}));
  EXPECT_EQ(result["result"]["content"][0]["text"], "computed l") << result;
  EXPECT_EQ(post(alice, sa, req(5, "tasks/list"))["result"]["tasks"].size(), 1u);
  json slow = post(alice, sa, req(6, "tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}, {"task", json::object()}}));
  EXPECT_EQ(post(alice, sa, req(7, "tasks/cancel", {{"taskId", slow["result"]["task"]["taskId"]}}))["result"]["status"], "cancelled");
}

// Two replicas on one PostgreSQL store, over HTTP: a task one of them runs is answered by
// the other; when its replica shuts down the task fails saying so, and when its replica is
// killed (-9) the other fails it once the dead one's lease lapsed (10 s).
TEST(HttpTaskReplicas, TheTasksOfAReplicaThatStopsFailOnTheOther) {
  PostgresServer pg;
  const std::string top = "store: { backend: postgresql, url: \"" + pg.url("tasks") + "\" }\n";
  auto a = std::make_unique<HttpHost>(kPlugins, "", "  shutdown_grace_ms: 100\n", std::vector<std::string>{}, top);
  HttpHost b(kPlugins, "", "", {}, top);
  auto post = [](HttpHost& h, const std::string& method, json params, const std::string& name) {
    params["_meta"] = meta26();
    auto c = h.client();
    auto r = c->Post("/mcp", httplib::Headers{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", method}, {"Mcp-Name", name},
                                              {"Accept", "application/json"}},
                     req(1, method, std::move(params)).dump(), "application/json");
    return r ? body_json(r) : json();
  };
  auto on_b = [&](const std::string& id) { return post(b, "tasks/get", {{"taskId", id}}, id)["result"]; };
  const std::string first = post(*a, "tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}}, "slow_compute")["result"]["taskId"];
  EXPECT_EQ(on_b(first)["status"], "working");  // any replica answers for it
  a->process().signal(SIGTERM);
  EXPECT_EQ(a->process().wait(15s), 0);
  json after = on_b(first);
  EXPECT_EQ(after["status"], "failed") << after;
  EXPECT_NE(after["error"]["message"].get<std::string>().find("shut down"), std::string::npos) << after;

  a = std::make_unique<HttpHost>(kPlugins, "", "", std::vector<std::string>{}, top);
  const std::string second = post(*a, "tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}}, "slow_compute")["result"]["taskId"];
  a->process().signal(SIGKILL);
  a->process().wait();
  json killed;
  for (int i = 0; i < 100; ++i) {  // up to 20 s: the lease is 10 s
    killed = on_b(second);
    if (killed["status"] != "working") break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(killed["status"], "failed") << killed;
  EXPECT_NE(killed["error"]["message"].get<std::string>().find("ended before it finished"), std::string::npos) << killed;
}

}  // namespace
}  // namespace mcph::testing
