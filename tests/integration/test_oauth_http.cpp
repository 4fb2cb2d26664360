// Per-user credentials over HTTP: the real binary in auth.mode oauth, the codesphere plugin
// against the fake Codesphere API with two users' keys. A client discovers the server from a
// bare 401, registers, fills in the form as a person would, trades the code for tokens and
// calls tools; every upstream request carries the right user's key; revoking one user leaves
// the other working; neither key ever reaches the log or the database in clear.
#include <filesystem>
#include <fstream>
#include <regex>

#include "haproxy.hpp"
#include "oauth_client.hpp"
#include "postgres.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const char* kAlice = "key-alice-1111";
const char* kBob = "key-bob-2222";

class FakeApi {
 public:
  FakeApi()
      : proc_({"/usr/bin/env", "python3", std::string(MCPH_SOURCE_DIR) + "/tests/fakes/codesphere_fake.py", "--port", "0",
               "--token", kAlice, "--token", kBob, "--exit-on-stdin-eof"}) {
    auto line = proc_.read_line(15s);
    if (line && line->rfind("PORT ", 0) == 0) port_ = std::stoi(line->substr(5));
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Which user (0 Alice, 1 Bob, -1 nobody) each recorded request was made as.
  std::vector<int> users() {
    std::vector<int> out;
    for (const auto& req : take()) out.push_back(req.value("user", -2));
    return out;
  }
  // The recorded requests ("GET /teams", ...), forgotten once read.
  std::vector<std::string> paths() {
    std::vector<std::string> out;
    for (const auto& req : take()) out.push_back(req["method"].get<std::string>() + " " + req["path"].get<std::string>());
    return out;
  }
  void set_state(const json& state) {
    httplib::Client c("127.0.0.1", port_);
    c.Post("/_fake/state", state.dump(), "application/json");
  }

 private:
  json take() {  // the requests since the last take (a reset would also reset the fake's state)
    httplib::Client c("127.0.0.1", port_);
    const json all = body_json(c.Get("/_fake/requests"))["requests"];
    json fresh = json::array();
    for (size_t i = seen_; i < all.size(); ++i) fresh.push_back(all[i]);
    seen_ = all.size();
    return fresh;
  }
  Process proc_;
  size_t seen_ = 0;
  int port_ = 0;
};

class OAuthHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host = std::make_unique<HttpHost>("  - name: cs\n    library: codesphere\n    settings: { base_url: \"" + api.base() +
                                          "/api\", team_id: 1 }\n",
                                      "    auth: { mode: oauth }\n");
    c = host->client();
    c->set_follow_location(false);
    oauth = std::make_unique<OAuthClient>(*c, host->url() + "/mcp");
  }

  // The whole sign-in, as a client and a person do it (picking `team` if asked). Returns
  // the token response.
  json sign_in(const std::string& key, const std::string& client_name = "Test", const std::string& team = "") {
    auto started = oauth->start(client_name);
    EXPECT_NE(started.page->body.find("Codesphere API token"), std::string::npos) << "the plugin's declared field";
    auto done = oauth->post(started.page, {{"cs.api_token", key}});
    if (!team.empty()) {
      EXPECT_EQ(done->status, 200) << done->body;
      EXPECT_NE(done->body.find("<select"), std::string::npos) << done->body;
      done = oauth->post(done, {{"cs.team_id", team}});
    }
    return oauth->finish(done, started);
  }
  httplib::Result call(const std::string& access_token, const std::string& tool, const json& args = json::object()) {
    return oauth->call(access_token, tool, args);
  }

  FakeApi api;
  std::unique_ptr<HttpHost> host;
  std::unique_ptr<httplib::Client> c;
  std::unique_ptr<OAuthClient> oauth;
};

TEST_F(OAuthHttpTest, DiscoveryStartsFromABare401) {
  auto r = c->Post("/mcp", json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}}.dump(), "application/json");
  EXPECT_EQ(r->status, 401);
  const std::string challenge = r->get_header_value("WWW-Authenticate");
  EXPECT_NE(challenge.find("resource_metadata=\"" + host->url() + "/.well-known/oauth-protected-resource/mcp\""), std::string::npos)
      << challenge;
  for (const char* path : {"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"}) {
    auto prm = c->Get(path);
    ASSERT_EQ(prm->status, 200) << path;
    EXPECT_EQ(body_json(prm)["resource"], host->url() + "/mcp");
  }
  auto as = c->Get("/.well-known/oauth-authorization-server");
  EXPECT_EQ(body_json(as)["authorization_endpoint"], host->url() + "/authorize");
  EXPECT_EQ(c->Get("/healthz")->status, 200);  // no token needed
  r = c->Post("/mcp", httplib::Headers{{"Authorization", "Bearer made-up"}}, "{}", "application/json");
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->get_header_value("WWW-Authenticate").find("error=\"invalid_token\""), std::string::npos);
}

// Two replicas on one PostgreSQL store behind one public issuer: a user signs in on A and
// the token works on B, with their credentials; /readyz and /healthz report the store.
TEST_F(OAuthHttpTest, ATokenFromOneReplicaWorksOnAnother) {
  PostgresServer pg;
  const std::string top = "store: { backend: postgresql, url: \"" + pg.url("oauth") + "\" }\n";
  const std::string plugins = "  - name: cs\n    library: codesphere\n    settings: { base_url: \"" + api.base() + "/api\", team_id: 1 }\n";
  const std::string http = "    auth: { mode: oauth, oauth: { issuer: \"http://mcp.example\" } }\n";
  HttpHost a(plugins, http, "", {}, top), b(plugins, http, "", {}, top);
  auto ca = a.client(), cb = b.client();
  ca->set_follow_location(false);
  OAuthClient on_a(*ca, "http://mcp.example/mcp"), on_b(*cb, "http://mcp.example/mcp");
  auto started = on_a.start();
  auto done = on_a.post(started.page, {{"cs.api_token", kAlice}});
  const json tokens = on_a.finish(done, started);
  api.users();
  auto r = on_b.call(tokens["access_token"], "list_teams");
  ASSERT_EQ(r->status, 200) << r->body << b.process().stderr_text();
  EXPECT_FALSE(body_json(r)["result"].value("isError", false)) << r->body;
  EXPECT_EQ(api.users(), std::vector<int>{0}) << "B called upstream as Alice";

  // Revoked on A (B holds the token in its cache): refused on B within a second.
  const std::string token = tokens["access_token"];
  ASSERT_EQ(ca->Post("/revoke", "token=" + token, "application/x-www-form-urlencoded")->status, 200);
  const auto revoked = std::chrono::steady_clock::now();
  int status = 200;
  while (status != 401 && std::chrono::steady_clock::now() - revoked < std::chrono::seconds(5)) {
    status = on_b.call(token, "list_teams")->status;
    if (status != 401) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(status, 401) << a.process().stderr_text() << "\n----\n" << b.process().stderr_text();
  EXPECT_LT(std::chrono::steady_clock::now() - revoked, std::chrono::seconds(1)) << "B heard of the revocation late";

  auto ready = cb->Get("/readyz");
  EXPECT_EQ(ready->status, 200) << ready->body;
  const json health = body_json(cb->Get("/healthz"));
  EXPECT_EQ(health["store"]["backend"], "postgresql");
  EXPECT_EQ(health["store"]["reachable"], true);
  EXPECT_EQ(health["store"]["pool"]["size"], 8);
  EXPECT_GE(health["store"]["pool"]["open"], 1);
  EXPECT_LE(health["store"]["pool"]["busy"], health["store"]["pool"]["open"]);
  pg.stop();
  ready = cb->Get("/readyz");
  EXPECT_EQ(ready->status, 503) << ready->body;
  EXPECT_NE(ready->body.find("not ready"), std::string::npos);
  EXPECT_EQ(ready->body.find("s3cret-pw"), std::string::npos);
  EXPECT_EQ(body_json(cb->Get("/healthz"))["store"]["reachable"], false);
}

// Three replicas behind HAProxy (round robin, no stickiness): a sign-in spread over them
// (register on A, the form posted to B, the code traded on C) gives a token every replica
// honours, calls through the balancer reach all three as the right user, and a revocation
// on one replica is refused by all of them within a second.
TEST_F(OAuthHttpTest, ThreeReplicasBehindHaproxyShareSignInsAndRevocations) {
  PostgresServer pg;
  const std::string top = "store: { backend: postgresql, url: \"" + pg.url("lb") + "\" }\n";
  const std::string plugins = "  - name: cs\n    library: codesphere\n    settings: { base_url: \"" + api.base() + "/api\", team_id: 1 }\n";
  const std::string http = "    auth: { mode: oauth, oauth: { issuer: \"http://mcp.example\" } }\n";
  std::vector<std::unique_ptr<HttpHost>> replicas;
  for (int i = 0; i < 3; ++i) replicas.push_back(std::make_unique<HttpHost>(plugins, http, "", std::vector<std::string>{}, top));
  HaProxy lb({replicas[0]->port(), replicas[1]->port(), replicas[2]->port()});
  std::vector<std::unique_ptr<httplib::Client>> direct;
  std::vector<std::unique_ptr<OAuthClient>> on;
  for (auto& r : replicas) {
    direct.push_back(r->client());
    direct.back()->set_follow_location(false);
    on.push_back(std::make_unique<OAuthClient>(*direct.back(), "http://mcp.example/mcp"));
  }
  auto started = on[0]->start();
  auto done = on[1]->post(started.page, {{"cs.api_token", kBob}});
  const json tokens = on[2]->finish(done, started);
  ASSERT_TRUE(tokens.contains("access_token")) << tokens;
  api.users();

  httplib::Client through("127.0.0.1", lb.port());
  through.set_read_timeout(10, 0);
  OAuthClient via_lb(through, "http://mcp.example/mcp");
  for (int i = 0; i < 6; ++i) {
    auto r = via_lb.call(tokens["access_token"], "list_teams");
    ASSERT_TRUE(r) << lb.process().stderr_text();
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_FALSE(body_json(r)["result"].value("isError", false)) << r->body;
  }
  EXPECT_EQ(api.users(), std::vector<int>(6, 1)) << "every call went upstream as Bob";
  for (auto& r : replicas) {
    EXPECT_NE(r->process().stderr_text().find("mcp=tools/call tool=list_teams"), std::string::npos) << "a replica the balancer never used";
  }

  ASSERT_EQ(on[1]->revoke(tokens)->status, 200);
  const auto revoked = std::chrono::steady_clock::now();
  int refused = 0;  // in a row, through the balancer: once three, every replica refuses
  while (refused < 3 && std::chrono::steady_clock::now() - revoked < 5s) {
    refused = via_lb.call(tokens["access_token"], "list_teams")->status == 401 ? refused + 1 : 0;
  }
  EXPECT_EQ(refused, 3);
  EXPECT_LT(std::chrono::steady_clock::now() - revoked, 1s);
  for (auto& c : on) EXPECT_EQ(c->call(tokens["access_token"], "list_teams")->status, 401);
}

// `mcp-host keys rotate` on replicas: nobody is logged out. A token keeps working on a
// replica that starts after one rotation and after two (so the users' credentials were
// sealed again, not merely opened with the previous key); a legacy session opened before a
// rotation still opens, and one opened two rotations back ends, as documented. A single
// host on SQLite is told the command is not for it.
TEST_F(OAuthHttpTest, KeysRotateLogsNobodyOut) {
  PostgresServer pg;
  const std::string top = "store: { backend: postgresql, url: \"" + pg.url("rotate") + "\" }\n";
  const std::string plugins = "  - name: cs\n    library: codesphere\n    settings: { base_url: \"" + api.base() + "/api\", team_id: 1 }\n";
  const std::string http = "    auth: { mode: oauth, oauth: { issuer: \"http://mcp.example\" } }\n";
  auto replica = [&] { return std::make_unique<HttpHost>(plugins, http, "", std::vector<std::string>{}, top); };
  auto a = replica();
  auto ca = a->client();
  ca->set_follow_location(false);
  OAuthClient on_a(*ca, "http://mcp.example/mcp");
  auto started = on_a.start();
  const json tokens = on_a.finish(on_a.post(started.page, {{"cs.api_token", kAlice}}), started);
  const std::string bearer = "Bearer " + tokens["access_token"].get<std::string>();
  auto open_session = [&](HttpHost& h) {
    auto r = h.client()->Post("/mcp", httplib::Headers{{"Authorization", bearer}, {"Accept", "application/json, text/event-stream"}},
                              json{{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
                                   {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                               {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}}.dump(),
                              "application/json");
    return r ? r->get_header_value("Mcp-Session-Id") : "";
  };
  auto ping = [&](HttpHost& h, const std::string& sid) {
    return h.client()->Post("/mcp", httplib::Headers{{"Authorization", bearer}, {"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", "2025-11-25"}},
                            json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}}.dump(), "application/json")->status;
  };
  const std::string old_session = open_session(*a);
  ASSERT_TRUE(old_session.starts_with("s1."));
  auto rotate = [&] {
    auto [code, out] = run_command({MCPH_BINARY, "keys", "rotate", "--config", a->config_path()});
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("rotated  request_state"), std::string::npos) << out;
    EXPECT_NE(out.find("rotated  oauth_encryption.key (1 grants"), std::string::npos) << out;
    EXPECT_EQ(out.find("s3cret-pw"), std::string::npos) << out;
  };
  rotate();
  auto b = replica();  // knows only the keys as they are now
  auto cb = b->client();
  OAuthClient on_b(*cb, "http://mcp.example/mcp");
  auto r = on_b.call(tokens["access_token"], "list_teams");
  EXPECT_EQ(r->status, 200) << r->body << b->process().stderr_text();
  EXPECT_FALSE(body_json(r)["result"].value("isError", false)) << r->body;
  EXPECT_EQ(ping(*b, old_session), 200) << "a session sealed before the rotation";
  const std::string newer_session = open_session(*b);

  rotate();
  auto c = replica();
  auto cc = c->client();
  OAuthClient on_c(*cc, "http://mcp.example/mcp");
  r = on_c.call(tokens["access_token"], "list_teams");
  EXPECT_EQ(r->status, 200) << r->body << c->process().stderr_text();
  EXPECT_FALSE(body_json(r)["result"].value("isError", false)) << r->body;
  // A replica running through both rotations seals with the newest key: a sign-in on it
  // opens on a replica that knows only the last two.
  auto bob_started = on_a.start();
  const json bob = on_a.finish(on_a.post(bob_started.page, {{"cs.api_token", kBob}}), bob_started);
  api.users();
  r = on_c.call(bob["access_token"], "list_teams");
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(body_json(r)["result"].value("isError", false)) << r->body << c->process().stderr_text();
  EXPECT_EQ(api.users(), std::vector<int>{1}) << "as Bob";
  EXPECT_EQ(ping(*c, newer_session), 200) << "one rotation back";
  EXPECT_EQ(ping(*c, old_session), 404) << "two rotations back";

  HttpHost single(plugins, http);
  auto [code, out] = run_command({MCPH_BINARY, "keys", "rotate", "--config", single.config_path()});
  EXPECT_EQ(code, 1);
}

// A single host on SQLite moves to PostgreSQL with `mcp-host store migrate`: a user signed
// in before keeps working on the new host, with their own credentials, without signing in
// again; the command refuses a target whose keys differ, and never prints the password.
TEST_F(OAuthHttpTest, StoreMigrateKeepsEverySignedInUser) {
  PostgresServer pg;
  const std::string plugins = "  - name: cs\n    library: codesphere\n    settings: { base_url: \"" + api.base() + "/api\", team_id: 1 }\n";
  const std::string http = "    auth: { mode: oauth, oauth: { issuer: \"http://mcp.example\" } }\n";
  auto single = std::make_unique<HttpHost>(plugins, http);
  const std::string state_dir = std::filesystem::path(single->config_path()).parent_path().string() + "/state";
  auto cs = single->client();
  cs->set_follow_location(false);
  OAuthClient on_single(*cs, "http://mcp.example/mcp");
  auto started = on_single.start();
  const json tokens = on_single.finish(on_single.post(started.page, {{"cs.api_token", kAlice}}), started);
  single->process().signal(SIGTERM);
  ASSERT_EQ(single->process().wait(15s), 0);

  const std::string url = pg.url("migrated");
  Process migrate({MCPH_BINARY, "store", "migrate", "--from", "sqlite:" + state_dir}, {"MCP_HOST_STORE_URL=" + url});
  ASSERT_EQ(migrate.wait(30s), 0) << migrate.stderr_text();
  const std::string out = *migrate.read_line(1s);
  EXPECT_NE(out.find("and 2 OAuth keys from " + state_dir + "/state.db to postgresql://postgres@127.0.0.1:"), std::string::npos) << out;
  EXPECT_EQ((out + migrate.stderr_text()).find("s3cret-pw"), std::string::npos);

  HttpHost replica(plugins, http, "", {}, "store: { backend: postgresql, url: \"" + url + "\" }\n");
  auto cr = replica.client();
  OAuthClient on_replica(*cr, "http://mcp.example/mcp");
  api.users();
  auto r = on_replica.call(tokens["access_token"], "list_teams");
  ASSERT_EQ(r->status, 200) << r->body << replica.process().stderr_text();
  EXPECT_FALSE(body_json(r)["result"].value("isError", false)) << r->body;
  EXPECT_EQ(api.users(), std::vector<int>{0}) << "Alice's own key, unsealed with the migrated keys";

  // A second migration into a store whose keys are now another host's is refused.
  HttpHost other(plugins, http);
  other.process().signal(SIGTERM);
  ASSERT_EQ(other.process().wait(15s), 0);
  const std::string other_dir = std::filesystem::path(other.config_path()).parent_path().string() + "/state";
  Process again({MCPH_BINARY, "store", "migrate", "--from", "sqlite:" + other_dir, "--to", url});
  EXPECT_EQ(again.wait(30s), 1);
  EXPECT_NE(again.stderr_text().find("already has another OAuth"), std::string::npos) << again.stderr_text();
}

TEST_F(OAuthHttpTest, TwoUsersEachCallWithTheirOwnKey) {
  json alice = sign_in(kAlice), bob = sign_in(kBob);
  api.users();  // forget what the sign-ins did
  // Both counted, by outcome only: no user shows in the metrics.
  const std::string metrics = host->client()->Get("/metrics")->body;
  EXPECT_NE(metrics.find("mcp_host_oauth_sign_ins_total{outcome=\"granted\"} 2\n"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find(kAlice), std::string::npos);
  auto r = call(alice["access_token"], "list_teams");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(body_json(r)["result"].value("isError", false)) << r->body;
  EXPECT_EQ(body_json(r)["result"]["structuredContent"]["items"][0]["name"], "Alpha") << r->body;
  EXPECT_EQ(api.users(), std::vector<int>{0});
  r = call(bob["access_token"], "list_teams");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(api.users(), std::vector<int>{1});

  // Revoking Alice leaves Bob working.
  auto rv = oauth->revoke(alice);
  EXPECT_EQ(rv->status, 200);
  EXPECT_EQ(call(alice["access_token"], "list_teams")->status, 401);
  EXPECT_EQ(call(bob["access_token"], "list_teams")->status, 200);
  EXPECT_EQ(api.users(), std::vector<int>{1});

  // Refresh gives Bob a new pair that works; the old refresh token then revokes the grant.
  auto refreshed = c->Post("/token", form({{"grant_type", "refresh_token"}, {"client_id", bob["client_id"]},
                                           {"refresh_token", bob["refresh_token"]}}),
                           "application/x-www-form-urlencoded");
  ASSERT_EQ(refreshed->status, 200) << refreshed->body;
  EXPECT_EQ(call(body_json(refreshed)["access_token"], "list_teams")->status, 200);

  // Neither key is in the log, nor in clear in the database.
  const std::string log = host->process().stderr_text();
  EXPECT_EQ(log.find(kAlice), std::string::npos);
  EXPECT_EQ(log.find(kBob), std::string::npos);
}

TEST_F(OAuthHttpTest, TheKeyIsCheckedWithCodesphereAndSeveralTeamsAreAChoice) {
  // A key Codesphere does not know: the form again, with why, and nothing issued.
  auto refused = oauth->post(oauth->start().page, {{"cs.api_token", "key-mallory-3333"}});
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(refused->body.find("did not accept this API token (HTTP 401)"), std::string::npos) << refused->body;
  EXPECT_EQ(refused->body.find("key-mallory-3333"), std::string::npos);
  EXPECT_TRUE(refused->get_header_value("Location").empty());
  EXPECT_EQ(api.paths(), std::vector<std::string>{"GET /teams"});

  // Alice sees two teams: she picks the second, and tools use it when she names none.
  json alpha = {{"id", 1}, {"defaultDataCenterId", 1}, {"name", "Alpha"}, {"isFirst", true}, {"role", 0}};
  json beta = alpha;
  beta["id"] = 2;
  beta["name"] = "Beta";
  api.set_state({{"teams", {alpha, beta}}});
  json alice = sign_in(kAlice, "Test", "2");
  api.paths();
  auto r = call(alice["access_token"], "list_workspaces");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(body_json(r)["result"].value("isError", false)) << r->body;
  EXPECT_EQ(api.paths(), std::vector<std::string>{"GET /workspaces/team/2"}) << "her pick, not the YAML's team_id 1";
  r = call(alice["access_token"], "list_workspaces", {{"teamId", 1}});
  EXPECT_EQ(api.paths(), std::vector<std::string>{"GET /workspaces/team/1"});
}

TEST_F(OAuthHttpTest, GrantsAreListedAndRevokedFromTheCommandLine) {
  json alice = sign_in(kAlice, "alice-laptop"), bob = sign_in(kBob, "bob-laptop");
  auto [status, out] = run_command({MCPH_BINARY, "auth", "list", "--config", host->config_path(), "--log-level", "off"});
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("2 grants"), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("(g-[A-Za-z0-9_-]+) .*alice-laptop"))) << out;
  EXPECT_EQ(out.find(kAlice), std::string::npos);  // never a credential
  const std::string grant = m[1];
  auto revoke = run_command({MCPH_BINARY, "auth", "revoke", grant, "--config", host->config_path(), "--log-level", "off"});
  ASSERT_EQ(revoke.first, 0) << revoke.second;
  EXPECT_EQ(call(alice["access_token"], "list_teams")->status, 401);  // never used, so never cached
  EXPECT_EQ(call(bob["access_token"], "list_teams")->status, 200);
  auto again = run_command({MCPH_BINARY, "auth", "revoke", grant, "--config", host->config_path(), "--log-level", "off"});
  EXPECT_NE(again.first, 0) << again.second;
}

}  // namespace
}  // namespace mcph::testing
