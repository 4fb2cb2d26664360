// Replicas of the real mcp-host binary on one PostgreSQL 15 database (started by the test),
// each request sent to whichever replica the test picks, as a load balancer without
// stickiness would: a legacy session opened on one replica is served by the others; its
// stream on one replica hears what happens on another; a 2026-07-28 input round starts on
// one and finishes on another.
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <atomic>
#include <thread>

#include "haproxy.hpp"
#include "http_host.hpp"
#include "postgres.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

PostgresServer& postgres() {
  static PostgresServer server;
  return server;
}

const char* kSse = "application/json, text/event-stream";
const char* kPlugins = "  - { name: fx, library: conformance-fixtures }\n";

json rpc(json id, const std::string& method, json params = json::object()) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
}

httplib::Headers session_headers(const std::string& sid) {
  return {{"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", "2025-11-25"}, {"Accept", kSse}};
}

// An SSE response read as it arrives, on a thread of its own.
class Stream {
 public:
  Stream(int port, httplib::Request req) : client_("127.0.0.1", port) {
    client_.set_read_timeout(30, 0);
    thread_ = std::thread([this, req]() mutable {
      std::string buffer;
      req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
        buffer.append(data, len);
        for (size_t end; (end = buffer.find("\n\n")) != std::string::npos; buffer.erase(0, end + 2)) {
          for (auto& m : sse_messages(buffer.substr(0, end + 1))) push(std::move(m));
        }
        return true;
      };
      auto r = client_.send(req);
      std::lock_guard lock(mutex_);
      status_ = r ? r->status : -1;
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~Stream() {
    client_.stop();
    thread_.join();
  }
  static httplib::Request get(const std::string& sid) {
    httplib::Request r;
    r.method = "GET";
    r.path = "/mcp";
    r.headers = {{"Mcp-Session-Id", sid}, {"Accept", "text/event-stream"}};
    return r;
  }
  static httplib::Request post(const httplib::Headers& headers, const json& body) {
    httplib::Request r;
    r.method = "POST";
    r.path = "/mcp";
    r.headers = headers;
    r.body = body.dump();
    r.set_header("Content-Type", "application/json");
    return r;
  }
  // The first message (not seen before) that `pred` accepts, or null after `within`.
  json wait_for(const std::function<bool(const json&)>& pred, std::chrono::milliseconds within = 5000ms) {
    std::unique_lock lock(mutex_);
    json found;
    cv_.wait_for(lock, within, [&] {
      for (auto it = messages_.begin(); it != messages_.end(); ++it) {
        if (pred(*it)) {
          found = *it;
          messages_.erase(it);
          return true;
        }
      }
      return ended_;
    });
    return found;
  }
  bool wait_end(std::chrono::milliseconds within) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, within, [&] { return ended_; });
  }

 private:
  void push(json m) {
    std::lock_guard lock(mutex_);
    messages_.push_back(std::move(m));
    cv_.notify_all();
  }
  httplib::Client client_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<json> messages_;  // guarded by mutex_
  bool ended_ = false;         // guarded by mutex_
  int status_ = 0;             // guarded by mutex_
  std::thread thread_;
};

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    top_ = "store: { backend: postgresql, url: \"" + postgres().url("replicas_" + std::to_string(::getpid()) + "_" + std::to_string(++n)) + "\" }\n";
    a_ = std::make_unique<HttpHost>(kPlugins, "", "", std::vector<std::string>{}, top_);
    b_ = std::make_unique<HttpHost>(kPlugins, "", "", std::vector<std::string>{}, top_);
  }
  std::string initialize(HttpHost& host, const json& capabilities = json::object()) {
    auto c = host.client();
    auto r = c->Post("/mcp", httplib::Headers{{"Accept", kSse}},
                     rpc(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", capabilities},
                                           {"clientInfo", {{"name", "t"}, {"version", "1"}}}}).dump(),
                     "application/json");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r ? r->get_header_value("Mcp-Session-Id") : "";
  }
  static httplib::Result post(HttpHost& host, const std::string& sid, const json& body) {
    return host.client()->Post("/mcp", session_headers(sid), body.dump(), "application/json");
  }

  std::string top_;
  std::unique_ptr<HttpHost> a_, b_;
};

// Opened on A, used on B; B's subscription and B's resource update reach the stream open
// on A; a forged or altered id is nobody's session; DELETE on B ends it on A too.
TEST_F(ReplicasTest, ALegacySessionIsServedByEveryReplica) {
  const std::string sid = initialize(*a_);
  ASSERT_TRUE(sid.starts_with("s1.")) << sid;
  auto r = post(*b_, sid, rpc(1, "tools/list"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(body_json(r)["result"]["tools"].empty());

  Stream stream(a_->port(), Stream::get(sid));
  r = post(*b_, sid, rpc(2, "resources/subscribe", {{"uri", "test://watched-resource"}}));
  ASSERT_EQ(r->status, 200) << r->body;
  r = post(*b_, sid, rpc(3, "tools/call", {{"name", "test_touch_watched_resource"}, {"arguments", json::object()}}));
  ASSERT_EQ(r->status, 200) << r->body;
  json note = stream.wait_for([](const json& m) { return m.value("method", "") == "notifications/resources/updated"; });
  ASSERT_TRUE(note.is_object()) << "the stream on A never heard B's update\n" << a_->process().stderr_text();
  EXPECT_EQ(note["params"]["uri"], "test://watched-resource");

  std::string altered = sid;
  altered[altered.size() / 2] = altered[altered.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(post(*b_, altered, rpc(4, "ping"))->status, 404);
  EXPECT_EQ(post(*b_, "s1.bm90IGEgc2Vzc2lvbg", rpc(5, "ping"))->status, 404);

  EXPECT_EQ(b_->client()->Delete("/mcp", httplib::Headers{{"Mcp-Session-Id", sid}})->status, 200);
  EXPECT_TRUE(stream.wait_end(3000ms)) << "A ends the session's stream";
  EXPECT_EQ(post(*a_, sid, rpc(6, "ping"))->status, 404);
  // A third replica that never saw the session knows it ended.
  HttpHost c(kPlugins, "", "", {}, top_);
  EXPECT_EQ(post(c, sid, rpc(7, "ping"))->status, 404);
}

// A call on A asks the client (legacy elicitation); the answer is POSTed to B and reaches
// the call on A, which answers on its stream.
TEST_F(ReplicasTest, AnAnswerPostedToAnotherReplicaReachesTheCall) {
  const std::string sid = initialize(*a_, {{"elicitation", json::object()}});
  ASSERT_FALSE(sid.empty());
  Stream call(a_->port(), Stream::post(session_headers(sid),
                                       rpc(1, "tools/call", {{"name", "test_elicitation"}, {"arguments", {{"message", "Who?"}}}})));
  json asked = call.wait_for([](const json& m) { return m.value("method", "") == "elicitation/create"; });
  ASSERT_TRUE(asked.is_object()) << a_->process().stderr_text();
  // Larger than an event may carry: it travels through the store.
  const std::string name = "ada-" + std::string(9000, 'x');
  auto r = post(*b_, sid, json{{"jsonrpc", "2.0"}, {"id", asked["id"]}, {"result", {{"action", "accept"}, {"content", {{"username", name}}}}}});
  ASSERT_EQ(r->status, 202) << r->body;
  json answer = call.wait_for([](const json& m) { return m.contains("result") || m.contains("error"); });
  ASSERT_TRUE(answer.is_object()) << "the call on A never heard the answer given to B\n" << b_->process().stderr_text();
  EXPECT_NE(answer.dump().find(name), std::string::npos) << answer.dump().substr(0, 300);
}

// 2026-07-28: requestState sealed by A opens on B, so an input round may finish anywhere.
TEST_F(ReplicasTest, AnInputRoundStartedOnOneReplicaFinishesOnAnother) {
  const json meta{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                  {"io.modelcontextprotocol/clientCapabilities", {{"elicitation", json::object()}}}};
  auto ask = [&](HttpHost& host, json params) {
    params["name"] = "test_input_required_result_request_state";
    params["arguments"] = json::object();
    params["_meta"] = meta;
    httplib::Headers h{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"},
                       {"Mcp-Name", "test_input_required_result_request_state"}, {"Accept", kSse}};
    return body_json(host.client()->Post("/mcp", h, rpc(1, "tools/call", params).dump(), "application/json"));
  };
  json first = ask(*a_, json::object());
  ASSERT_EQ(first["result"]["resultType"], "input_required") << first;
  json second = ask(*b_, {{"requestState", first["result"]["requestState"]},
                          {"inputResponses", {{"confirm", {{"action", "accept"}, {"content", {{"ok", true}}}}}}}});
  EXPECT_EQ(second["result"]["content"][0]["text"], "state-ok: confirmed") << second;
}

// Three replicas behind HAProxy (round robin, no stickiness). Every request may land on
// another replica.
class BalancedTest : public ::testing::Test {
 protected:
  void start(const std::string& plugins) {
    static int n = 0;
    url_ = postgres().url("balanced_" + std::to_string(::getpid()) + "_" + std::to_string(++n));
    const std::string top = "store: { backend: postgresql, url: \"" + url_ + "\" }\n";
    for (int i = 0; i < 3; ++i) {
      replicas_.push_back(std::make_unique<HttpHost>(plugins, "", "", std::vector<std::string>{}, top));
    }
    lb_ = std::make_unique<HaProxy>(std::vector<int>{replicas_[0]->port(), replicas_[1]->port(), replicas_[2]->port()});
  }
  static constexpr const char* kExamples = "  - { name: echo, library: example-echo }\n  - { name: counter, library: example-counter }\n";
  std::string url_;
  std::vector<std::unique_ptr<HttpHost>> replicas_;
  std::unique_ptr<HaProxy> lb_;
};

// The official TypeScript SDK client opens a legacy session through the balancer and keeps
// calling while its requests rotate over the replicas.
TEST_F(BalancedTest, TheTypeScriptSdkClientRotatesOverReplicas) {
  start(kExamples);
  Process client({"/bin/bash", std::string(MCPH_SOURCE_DIR) + "/tests/integration/ts_sdk/run.sh", "url", lb_->url() + "/mcp"});
  std::string out;
  while (auto line = client.read_line(120s)) out += *line + "\n";
  const auto code = client.wait(120s);
  EXPECT_EQ(code, 0) << out << client.stderr_text() << lb_->process().stderr_text();
  EXPECT_NE(out.find("url: "), std::string::npos) << out;
  for (auto& r : replicas_) {
    EXPECT_NE(r->process().stderr_text().find("mcp=tools/call tool=echo"), std::string::npos) << "a replica the balancer never used";
  }
}

// PostgreSQL stops for ten seconds under load through the balancer: requests that need it
// fail with a clear error or are served from what replicas hold (a session's sealed id),
// nothing crashes or hangs, and everything works again once it is back.
TEST_F(BalancedTest, ADatabaseOutageUnderLoadIsSurvived) {
  start(std::string(kExamples) + "  - { name: svc, library: test-services }\n");
  httplib::Client lb("127.0.0.1", lb_->port());
  lb.set_read_timeout(15, 0);
  auto r = lb.Post("/mcp", httplib::Headers{{"Accept", kSse}},
                   rpc(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                         {"clientInfo", {{"name", "t"}, {"version", "1"}}}}).dump(), "application/json");
  ASSERT_TRUE(r && r->status == 200);
  const std::string sid = r->get_header_value("Mcp-Session-Id");
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0}, unanswered{0};
  std::mutex mutex;
  std::set<std::string> failures;  // what a failing request said
  std::vector<std::thread> load;
  // The replicas log every request (debug): their stderr is read as they go, or a full
  // pipe would stall them.
  load.emplace_back([&] {
    while (!stop) {
      for (auto& h : replicas_) (void)h->process().stderr_text();
      std::this_thread::sleep_for(50ms);
    }
  });
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", lb_->port());
      c.set_read_timeout(15, 0);
      for (int i = 1000000 * (t + 1); !stop; ++i) {  // ids unique on the shared session
        // Legacy calls on the shared session: one needs nothing of the store, one writes a
        // plugin's state there.
        const json msg = i % 2 ? rpc(i, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "x"}}}})
                               : rpc(i, "tools/call", {{"name", "state"}, {"arguments", {{"op", "put"}, {"key", "k" + std::to_string(t)}, {"value", std::to_string(i)}}}});
        auto res = c.Post("/mcp", session_headers(sid), msg.dump(), "application/json");
        if (!res) {
          ++unanswered;
          continue;
        }
        const json body = body_json(res);
        const bool good = res->status == 200 && body.contains("result") && !body["result"].value("isError", false) &&
                          body["result"].value("structuredContent", json::object()).value("ok", true);
        (good ? ok : failed)++;
        if (!good) {
          std::lock_guard lock(mutex);
          failures.insert(std::to_string(res->status) + " " + res->body.substr(0, 160));
        }
        std::this_thread::sleep_for(5ms + std::chrono::milliseconds(t));
      }
    });
  }
  std::this_thread::sleep_for(1s);
  const int ok_before = ok.load();
  postgres().stop();
  std::this_thread::sleep_for(2s);
  // Straight to a replica (the balancer has taken them all out): a clear error, at once.
  auto direct = replicas_[0]->client();
  const auto asked = std::chrono::steady_clock::now();
  auto res = direct->Post("/mcp", session_headers(sid), rpc(7, "tools/call", {{"name", "state"}, {"arguments", {{"op", "put"}, {"key", "d"}, {"value", "1"}}}}).dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1s);
  EXPECT_EQ(body_json(res)["result"]["structuredContent"]["ok"], false) << res->body;
  EXPECT_EQ(direct->Get("/readyz")->status, 503);
  EXPECT_EQ(body_json(direct->Post("/mcp", session_headers(sid), rpc(8, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "still"}}}}).dump(), "application/json"))["result"]["content"][0]["text"], "still")
      << "what needs no store still works";
  std::this_thread::sleep_for(8s);
  postgres().start();
  const int failed_during = failed.load();
  // Back within the store's backoff (at most 5 s) and the balancer's checks.
  const int ok_at_restart = ok.load();
  EXPECT_TRUE(eventually([&] { return ok.load() > ok_at_restart + 50; }, 15s));
  std::this_thread::sleep_for(500ms);
  const int failed_after = failed.load();
  std::this_thread::sleep_for(1500ms);
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_GT(ok_before, 20);
  EXPECT_GT(failed_during, 0) << "the state tool needs the store";
  EXPECT_EQ(failed.load(), failed_after) << "no failures once recovered";
  EXPECT_EQ(unanswered.load(), 0) << "every request got an answer";
  for (const auto& f : failures) {
    EXPECT_EQ(f.find("s3cret-pw"), std::string::npos) << f;
  }
  for (auto& h : replicas_) EXPECT_FALSE(h->process().wait(0ms).has_value()) << "a replica died\n" << h->process().stderr_text();
  // The session works on every replica again (the balancer rotates them).
  for (int i = 0; i < 3; ++i) {  // ids below the load's
    auto res = lb.Post("/mcp", session_headers(sid), rpc(100 + i, "tools/call", {{"name", "state"}, {"arguments", {{"op", "get"}, {"key", "k0"}}}}).dump(), "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
    EXPECT_FALSE(body_json(res)["result"].value("isError", false)) << res->body;
    EXPECT_NE(res->body.find("found"), std::string::npos) << res->body;
  }
  std::string said;
  for (const auto& f : failures) said += f + "\n";
  std::fprintf(stderr, "during the outage: %d ok, %d failed; what failures said:\n%s", ok.load(), failed.load(), said.substr(0, 2000).c_str());
}

}  // namespace
}  // namespace mcph::testing
