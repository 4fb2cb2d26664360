// MCP tasks through the protocol engine (host/tasks/), against the conformance-fixtures
// plugin and a real SQLite store: the 2026-07-28 extension (create, poll, cancel, input
// through tasks/update, another user's id, a client without the extension), 2025-11-25
// tasks (params.task, tasks/result waiting, tasks/list, status notifications, a real
// elicitation request inside a task), a plugin handing a call over, limits and expiry, and
// the tasks of a replica that went away.
#include <future>
#include <thread>

#include "host_fixture.hpp"
#include "tasks/task_service.hpp"

namespace mcph::protocol {
namespace {

using json = nlohmann::json;
using testing::RecordingChannel;
using namespace std::chrono_literals;

const char* kPlugins = R"(  - name: fixtures
    library: conformance-fixtures
    task_support: { greet: optional, test_tool_with_progress: optional }
)";

// A channel whose requests come from a signed-in user.
class UserChannel final : public ReplyChannel {
 public:
  explicit UserChannel(std::string principal) { caller_.principal = std::move(principal); }
  void send(const json&) override {}
  const plugins::Caller* caller() const override { return &caller_; }

 private:
  plugins::Caller caller_;
};

json tasks_caps() { return json{{"extensions", {{"io.modelcontextprotocol/tasks", json::object()}}}, {"elicitation", json::object()}}; }

class TasksTest : public ::testing::Test {
 protected:
  void SetUp() override { load({}); }
  void load(tasks::ServiceOptions options) {
    TearDown();
    host = std::make_unique<testing::HostFixture>();
    options.poll_interval = 50ms;
    ASSERT_EQ(host->load(kPlugins, "", options), "");
    EngineOptions eo;
    eo.tasks = host->tasks.get();
    engine = std::make_unique<Engine>(*host->registry, eo);
    session = std::make_shared<Session>();
    session->set_channel(channel);
  }
  void TearDown() override {
    if (host && host->registry) host->registry->begin_shutdown();
    engine.reset();
    host.reset();
  }

  static json message(const std::string& method, json params, json id = 1) {
    return json{{"jsonrpc", "2.0"}, {"id", std::move(id)}, {"method", method}, {"params", std::move(params)}};
  }
  // A 2026-07-28 request, as `who` (nullptr: nobody signed in).
  json modern(const std::string& method, json params, json caps = tasks_caps(), std::shared_ptr<ReplyChannel> who = nullptr) {
    params["_meta"] = json{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                           {"io.modelcontextprotocol/clientCapabilities", std::move(caps)}};
    return engine->handle(message(method, std::move(params)), *std::make_shared<Session>(), who ? who : channel);
  }
  json legacy(const std::string& method, json params, json id = 1) {
    return engine->handle(message(method, std::move(params), std::move(id)), *session, channel);
  }
  void initialize(json caps = json::object()) {
    legacy("initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", std::move(caps)}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}});
  }
  // Polls tasks/get until the task is in `status` (or ended).
  json wait_status(const std::string& id, const std::string& status, std::shared_ptr<ReplyChannel> who = nullptr) {
    json r;
    for (int i = 0; i < 500; ++i) {
      r = modern("tasks/get", {{"taskId", id}}, tasks_caps(), who);
      const std::string s = r["result"].value("status", "");
      if (s == status || s == "completed" || s == "failed" || s == "cancelled") return r;
      std::this_thread::sleep_for(20ms);
    }
    return r;
  }

  std::unique_ptr<testing::HostFixture> host;
  std::unique_ptr<Engine> engine;
  std::shared_ptr<Session> session;
  std::shared_ptr<RecordingChannel> channel = std::make_shared<RecordingChannel>();
};

TEST_F(TasksTest, ModernSlowCallIsATaskPolledToCompletion) {
  json r = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0.3}, {"label", "pi"}}}});
  const json& t = r["result"];
  ASSERT_EQ(t.value("resultType", ""), "task") << r;
  EXPECT_EQ(t["status"], "working");
  EXPECT_EQ(t["taskId"].get<std::string>().size(), 43u);  // 32 random bytes, base64url
  EXPECT_EQ(t["pollIntervalMs"], 50);
  EXPECT_TRUE(t["ttlMs"].is_number_integer());
  EXPECT_FALSE(t.contains("result"));
  // Durable at once: the very next tasks/get knows it.
  json now = modern("tasks/get", {{"taskId", t["taskId"]}});
  EXPECT_EQ(now["result"]["taskId"], t["taskId"]) << now;
  json done = wait_status(t["taskId"], "completed");
  EXPECT_EQ(done["result"]["status"], "completed") << done;
  EXPECT_EQ(done["result"]["result"]["content"][0]["text"], "computed pi");
  EXPECT_EQ(done["result"]["resultType"], "complete");
}

TEST_F(TasksTest, ModernCancelEndsTheTaskAndIsIdempotent) {
  json r = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}});
  const std::string id = r["result"]["taskId"];
  json ack = modern("tasks/cancel", {{"taskId", id}});
  EXPECT_EQ(ack["result"], (json{{"resultType", "complete"}, {"_meta", ack["result"]["_meta"]}})) << ack;
  EXPECT_EQ(modern("tasks/get", {{"taskId", id}})["result"]["status"], "cancelled");
  // The handler heard it and stopped: the engine has no call running any more.
  EXPECT_TRUE(engine->wait_idle(std::chrono::steady_clock::now() + 5s));
  EXPECT_EQ(modern("tasks/get", {{"taskId", id}})["result"]["status"], "cancelled");  // terminal stays
  EXPECT_FALSE(modern("tasks/cancel", {{"taskId", id}}).contains("error"));
}

TEST_F(TasksTest, ModernInputRoundThroughTasksUpdate) {
  json r = modern("tools/call", {{"name", "confirm_delete"}, {"arguments", {{"filename", "a.txt"}}}});
  const std::string id = r["result"]["taskId"];
  json waiting = wait_status(id, "input_required");
  ASSERT_EQ(waiting["result"]["status"], "input_required") << waiting;
  const json& requests = waiting["result"]["inputRequests"];
  ASSERT_EQ(requests.size(), 1u);
  const std::string key = requests.begin().key();
  EXPECT_EQ(requests[key]["method"], "elicitation/create");
  // An unknown key is ignored; the real answer resumes the handler.
  EXPECT_FALSE(modern("tasks/update", {{"taskId", id}, {"inputResponses", {{"nope", {{"action", "accept"}}}}}}).contains("error"));
  EXPECT_EQ(modern("tasks/get", {{"taskId", id}})["result"]["status"], "input_required");
  modern("tasks/update", {{"taskId", id}, {"inputResponses", {{key, {{"action", "accept"}, {"content", {{"confirm", true}}}}}}}});
  json done = wait_status(id, "completed");
  EXPECT_EQ(done["result"]["result"]["content"][0]["text"], "Deleted a.txt") << done;
}

TEST_F(TasksTest, AnotherUsersTaskDoesNotExist) {
  auto alice = std::make_shared<UserChannel>("alice"), bob = std::make_shared<UserChannel>("bob");
  json r = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}}, tasks_caps(), alice);
  const std::string id = r["result"]["taskId"];
  EXPECT_EQ(modern("tasks/get", {{"taskId", id}}, tasks_caps(), alice)["result"]["status"], "working");
  for (const char* method : {"tasks/get", "tasks/cancel", "tasks/update"}) {
    json refused = modern(method, {{"taskId", id}, {"inputResponses", json::object()}}, tasks_caps(), bob);
    EXPECT_EQ(refused["error"]["code"], -32602) << method << refused;
    EXPECT_EQ(refused.dump().find("slow_compute"), std::string::npos);  // nothing about it leaks
  }
  EXPECT_EQ(modern("tasks/get", {{"taskId", id}}, tasks_caps(), alice)["result"]["status"], "working");  // bob cancelled nothing
  modern("tasks/cancel", {{"taskId", id}}, tasks_caps(), alice);
}

TEST_F(TasksTest, AClientWithoutTheExtensionGetsEverythingAsBefore) {
  json r = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0}}}}, json::object());
  EXPECT_EQ(r["result"]["resultType"], "complete") << r;
  EXPECT_EQ(r["result"]["content"][0]["text"], "computed result");
  json required = modern("tools/call", {{"name", "failing_job"}}, json::object());
  EXPECT_EQ(required["error"]["code"], -32021) << required;
  EXPECT_TRUE(required["error"]["data"]["requiredCapabilities"]["extensions"].contains("io.modelcontextprotocol/tasks"));
  EXPECT_EQ(modern("tasks/get", {{"taskId", "x"}}, json::object())["error"]["code"], -32021);
  EXPECT_EQ(modern("tasks/list", json::object())["error"]["code"], -32601);  // removed in 2026-07-28
  EXPECT_EQ(modern("tasks/get", {{"taskId", "no-such-task"}})["error"]["code"], -32602);
  json discover = modern("server/discover", json::object());
  EXPECT_TRUE(discover["result"]["capabilities"]["extensions"].contains("io.modelcontextprotocol/tasks")) << discover;
  EXPECT_FALSE(discover["result"]["capabilities"].contains("tasks"));
  // Legacy before 2025-11-25: no tasks at all, sync as before.
  legacy("initialize", {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}});
  json old = legacy("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0}}}, {"task", json::object()}});
  EXPECT_EQ(old["result"]["content"][0]["text"], "computed result") << old;
  EXPECT_EQ(legacy("tasks/get", {{"taskId", "x"}})["error"]["code"], -32601);
}

TEST_F(TasksTest, ABrokenHandlerFailsTheTaskAToolErrorCompletesIt) {
  json broke = modern("tools/call", {{"name", "protocol_error_job"}});
  json failed = wait_status(broke["result"]["taskId"], "failed");
  EXPECT_EQ(failed["result"]["status"], "failed") << failed;
  EXPECT_EQ(failed["result"]["error"]["code"], -32603);
  EXPECT_NE(failed["result"]["error"]["message"].get<std::string>().find("broke on purpose"), std::string::npos);
  EXPECT_FALSE(failed["result"].contains("result"));
  json tool_error = modern("tools/call", {{"name", "failing_job"}});
  json completed = wait_status(tool_error["result"]["taskId"], "completed");
  EXPECT_EQ(completed["result"]["result"]["isError"], true) << completed;
}

TEST_F(TasksTest, APluginHandsTheCallOverAndFinishesItLater) {
  json round1 = modern("tools/call", {{"name", "test_tool_with_task"}});
  ASSERT_EQ(round1["result"]["resultType"], "input_required") << round1;
  EXPECT_FALSE(round1["result"].contains("taskId"));
  const std::string key = round1["result"]["inputRequests"].begin().key();
  json round2 = modern("tools/call", {{"name", "test_tool_with_task"},
                                      {"inputResponses", {{key, {{"action", "accept"}, {"content", {{"name", "Alice"}}}}}}},
                                      {"requestState", round1["result"]["requestState"]}});
  ASSERT_EQ(round2["result"]["resultType"], "task") << round2;
  json done = wait_status(round2["result"]["taskId"], "completed");
  EXPECT_EQ(done["result"]["result"]["content"][0]["text"], "Hello, Alice!") << done;
  // Without the extension the same tool answers in the call.
  json again = modern("tools/call", {{"name", "test_tool_with_task"},
                                     {"inputResponses", {{key, {{"action", "accept"}, {"content", {{"name", "Bo"}}}}}}},
                                     {"requestState", round1["result"]["requestState"]}},
                      json{{"elicitation", json::object()}});
  EXPECT_EQ(again["result"]["resultType"], "complete") << again;
  EXPECT_EQ(again["result"]["content"][0]["text"], "Hello, Bo!");
}

TEST_F(TasksTest, LegacyTasksWithResultListCancelAndStatusNotifications) {
  initialize();
  json list = legacy("tools/list", json::object());
  bool saw_optional = false, saw_required = false;
  for (const auto& t : list["result"]["tools"]) {
    if (t["name"] == "slow_compute") saw_optional = t["execution"]["taskSupport"] == "optional";
    if (t["name"] == "failing_job") saw_required = t["execution"]["taskSupport"] == "required";
    if (t["name"] == "test_simple_text") {
      EXPECT_FALSE(t.contains("execution"));
    }
  }
  EXPECT_TRUE(saw_optional && saw_required) << list;
  EXPECT_EQ(legacy("tools/call", {{"name", "failing_job"}})["error"]["code"], -32601);  // required: call it as a task
  EXPECT_EQ(legacy("tools/call", {{"name", "test_simple_text"}, {"task", json::object()}})["error"]["code"], -32601);

  json r = legacy("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0.3}, {"label", "e"}}}, {"task", {{"ttl", 60000}}}});
  const json& task = r["result"]["task"];
  ASSERT_TRUE(task.is_object()) << r;
  EXPECT_EQ(task["status"], "working");
  EXPECT_TRUE(task.contains("ttl") && task.contains("pollInterval"));
  const std::string id = task["taskId"];
  // tasks/result waits for the end and carries the related-task _meta.
  json result = legacy("tasks/result", {{"taskId", id}}, 2);
  EXPECT_EQ(result["result"]["content"][0]["text"], "computed e") << result;
  EXPECT_EQ(result["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], id);
  json note = channel->wait_for([&](const json& m) {
    return m.value("method", "") == "notifications/tasks/status" && m["params"]["status"] == "completed";
  });
  EXPECT_EQ(note["params"]["taskId"], id) << note;
  json listed = legacy("tasks/list", json::object(), 3);
  ASSERT_EQ(listed["result"]["tasks"].size(), 1u) << listed;
  EXPECT_EQ(listed["result"]["tasks"][0]["taskId"], id);
  // Cancel: the cancelled task comes back; a finished one is -32602.
  json slow = legacy("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}, {"task", json::object()}}, 4);
  json cancelled = legacy("tasks/cancel", {{"taskId", slow["result"]["task"]["taskId"]}}, 5);
  EXPECT_EQ(cancelled["result"]["status"], "cancelled") << cancelled;
  EXPECT_EQ(legacy("tasks/cancel", {{"taskId", id}}, 6)["error"]["code"], -32602);
  EXPECT_EQ(legacy("tasks/result", {{"taskId", "nope"}}, 7)["error"]["code"], -32602);
}

TEST_F(TasksTest, LegacyProgressTokenStaysValidForTheTasksLife) {
  initialize();
  json r = legacy("tools/call", {{"name", "test_tool_with_progress"}, {"task", json::object()}, {"_meta", {{"progressToken", "p1"}}}});
  const std::string id = r["result"]["task"]["taskId"];
  ASSERT_FALSE(id.empty()) << r;
  json last = channel->wait_for([](const json& m) {
    return m.value("method", "") == "notifications/progress" && m["params"].value("progress", 0.0) == 100.0;
  });
  EXPECT_EQ(last["params"]["progressToken"], "p1") << last;
  EXPECT_EQ(last["params"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], id);
  json done = legacy("tasks/result", {{"taskId", id}}, 2);
  EXPECT_FALSE(done.contains("error")) << done;
}

TEST_F(TasksTest, LegacyInputInsideATaskIsARealRequestMarkedWithTheTask) {
  initialize(json{{"elicitation", json::object()}});
  json r = legacy("tools/call", {{"name", "confirm_delete"}, {"arguments", {{"filename", "b.txt"}}}, {"task", json::object()}});
  const std::string id = r["result"]["task"]["taskId"];
  json ask = channel->wait_for([](const json& m) { return m.value("method", "") == "elicitation/create"; });
  ASSERT_TRUE(ask.is_object()) << r;
  EXPECT_EQ(ask["params"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], id);
  EXPECT_EQ(legacy("tasks/get", {{"taskId", id}}, 2)["result"]["status"], "input_required");
  engine->handle(json{{"jsonrpc", "2.0"}, {"id", ask["id"]}, {"result", {{"action", "accept"}, {"content", {{"confirm", true}}}}}},
                 *session, channel);
  json result = legacy("tasks/result", {{"taskId", id}}, 3);
  EXPECT_EQ(result["result"]["content"][0]["text"], "Deleted b.txt") << result;
}

TEST_F(TasksTest, LimitsPerUserAndOnResults) {
  tasks::ServiceOptions o;
  o.limits.max_per_user = 2;
  o.limits.max_result_bytes = 1024;
  load(o);
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) ids.push_back(modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}})["result"]["taskId"]);
  json third = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 60}}}});
  EXPECT_EQ(third["result"]["isError"], true) << third;
  EXPECT_NE(third.dump().find("tasks.max_per_user"), std::string::npos);
  modern("tasks/cancel", {{"taskId", ids[0]}});  // a finished task no longer counts
  json fourth = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0}}}});
  EXPECT_EQ(fourth["result"]["resultType"], "task") << fourth;
  modern("tasks/cancel", {{"taskId", ids[1]}});
  // A result over max_result_bytes fails the task, clearly.
  json big = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0}, {"label", std::string(2000, 'x')}}}});
  json failed = wait_status(big["result"]["taskId"], "failed");
  EXPECT_EQ(failed["result"]["status"], "failed") << failed;
  EXPECT_NE(failed["result"]["error"]["message"].get<std::string>().find("over the bound"), std::string::npos);
}

TEST_F(TasksTest, ExpiredTasksAreRemoved) {
  tasks::ServiceOptions o;
  o.limits.ttl = 1000ms;
  load(o);
  json r = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0}}}});
  const std::string id = r["result"]["taskId"];
  EXPECT_EQ(wait_status(id, "completed")["result"]["ttlMs"], 1000);
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(modern("tasks/get", {{"taskId", id}})["error"]["code"], -32602);
  EXPECT_GE(host->tasks->purge(), 1u);
  size_t rows = 0;
  ASSERT_TRUE(host->state->list("tasks", "", [&](std::string_view, std::string_view) { return ++rows, true; }));
  EXPECT_EQ(rows, 0u);  // the task and its index rows
}

TEST_F(TasksTest, ARestartFailsItsPredecessorsTasksButNotItsOwn) {
  // The same replica id again (state_dir/replica.key): what the run before left is failed,
  // on the housekeeper thread; a task made the moment the service exists is this run's.
  plugins::set_replica_id("replica-r");
  auto before = std::make_unique<tasks::TaskService>(*host->state, tasks::ServiceOptions{});
  auto left = before->create("", "slow_compute");
  ASSERT_TRUE(left) << left.error();
  before.reset();  // (no begin_shutdown: as if the process had been killed)
  for (int round = 0; round < 5; ++round) {
    tasks::TaskService again(*host->state, tasks::ServiceOptions{});
    auto fresh = again.create("", "slow_compute");
    ASSERT_TRUE(fresh) << fresh.error();
    json out;
    ASSERT_FALSE(again.handle("tasks/get", {{"taskId", left->id}}, "", true, out));
    EXPECT_EQ(out["status"], "failed") << out;
    ASSERT_FALSE(again.handle("tasks/get", {{"taskId", fresh->id}}, "", true, out));
    EXPECT_EQ(out["status"], "working") << "round " << round << ": " << out;
    left = fresh;  // the next round's predecessor left this one
  }
}

TEST_F(TasksTest, TheTasksOfAReplicaThatStoppedFail) {
  // Replica "a" made a task and went away without finishing it; "b" answers for it.
  plugins::set_replica_id("replica-a");
  auto a = std::make_unique<tasks::TaskService>(*host->state, tasks::ServiceOptions{});
  auto t = a->create("", "slow_compute");
  ASSERT_TRUE(t) << t.error();
  a.reset();  // releases its lease
  plugins::set_replica_id("replica-b");
  tasks::TaskService b(*host->state, tasks::ServiceOptions{});
  json out;
  ASSERT_FALSE(b.handle("tasks/get", {{"taskId", t->id}}, "", true, out));
  EXPECT_EQ(out["status"], "failed") << out;
  EXPECT_NE(out["error"]["message"].get<std::string>().find("ended before it finished"), std::string::npos);
}

// ---- subscriptions/listen (2026-07-28) --------------------------------------------------

TEST_F(TasksTest, ListenStreamCarriesResourceUpdatesAndTaskChangesUntilCancelled) {
  json created = modern("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0.3}}}});
  const std::string task = created["result"]["taskId"];
  auto stream = std::make_shared<RecordingChannel>();
  json listen = message("subscriptions/listen",
                        {{"notifications", {{"toolsListChanged", true},
                                            {"resourceSubscriptions", {"test://watched-resource", "test://no-such-thing"}},
                                            {"taskIds", {task, "not-a-task"}}}},
                         {"_meta", {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                                    {"io.modelcontextprotocol/clientCapabilities", tasks_caps()}}}},
                        "listen:0");
  EXPECT_TRUE(engine->handle(listen, *session, stream).is_null());  // no answer while it is open
  json ack = stream->wait_for([](const json& m) { return m.value("method", "") == "notifications/subscriptions/acknowledged"; });
  ASSERT_TRUE(ack.is_object());
  EXPECT_EQ(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen:0");
  // Honoured: the list change asked for (a reload may change the lists), the resource that
  // exists and the caller's own task; not what does not exist.
  EXPECT_EQ(ack["params"]["notifications"],
            (json{{"toolsListChanged", true}, {"resourceSubscriptions", {"test://watched-resource"}}, {"taskIds", {task}}})) << ack;

  json done = stream->wait_for([](const json& m) {
    return m.value("method", "") == "notifications/tasks" && m["params"]["status"] == "completed";
  });
  EXPECT_EQ(done["params"]["taskId"], task) << done;
  EXPECT_EQ(done["params"]["result"]["content"][0]["text"], "computed result");
  EXPECT_EQ(done["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen:0");

  modern("tools/call", {{"name", "test_touch_watched_resource"}});
  json update = stream->wait_for([](const json& m) { return m.value("method", "") == "notifications/resources/updated"; });
  EXPECT_EQ(update["params"]["uri"], "test://watched-resource") << update;
  EXPECT_EQ(update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen:0");

  // The client ends it (stdio: notifications/cancelled); nothing more arrives.
  engine->handle(json{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", "listen:0"}}}}, *session,
                 channel);
  const size_t seen = stream->messages().size();
  modern("tools/call", {{"name", "test_touch_watched_resource"}});
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(stream->messages().size(), seen);
}

TEST_F(TasksTest, ListenRefusesTaskIdsWithoutTheExtensionAndBoundsStreams) {
  json listen = message("subscriptions/listen",
                        {{"notifications", {{"taskIds", {"x"}}}},
                         {"_meta", {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                                    {"io.modelcontextprotocol/clientCapabilities", json::object()}}}},
                        7);
  EXPECT_EQ(engine->handle(listen, *session, channel)["error"]["code"], -32021);
  listen["params"]["notifications"] = json::object();
  std::vector<std::shared_ptr<RecordingChannel>> streams;
  for (int i = 0; i < 16; ++i) {
    listen["id"] = 100 + i;
    streams.push_back(std::make_shared<RecordingChannel>());
    EXPECT_TRUE(engine->handle(listen, *session, streams.back()).is_null()) << i;
  }
  listen["id"] = 200;
  json refused = engine->handle(listen, *session, channel);
  EXPECT_NE(refused["error"]["message"].get<std::string>().find("too many subscriptions/listen"), std::string::npos) << refused;
  json discover = modern("server/discover", json::object());
  EXPECT_EQ(discover["result"]["capabilities"]["resources"]["subscribe"], true);
}

}  // namespace
}  // namespace mcph::protocol
