// Per-user credentials over HTTP: the real binary in auth.mode oauth, the codesphere plugin
// against the fake Codesphere API with two users' keys. A client discovers the server from a
// bare 401, registers, fills in the form as a person would, trades the code for tokens and
// calls tools; every upstream request carries the right user's key; revoking one user leaves
// the other working; neither key ever reaches the log or the database in clear.
#include <fstream>
#include <regex>

#include "http_host.hpp"
#include "auth/oauth.hpp"
#include "services/crypto.hpp"

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

std::string form(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += (out.empty() ? "" : "&") + auth::url_encode(k) + "=" + auth::url_encode(v);
  return out;
}

class OAuthHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host = std::make_unique<HttpHost>("  - name: cs\n    library: codesphere\n    settings: { base_url: \"" + api.base() +
                                          "/api\", team_id: 1 }\n",
                                      "    auth: { mode: oauth }\n");
    c = host->client();
    c->set_follow_location(false);
  }

  // Posts the form `page` as a person would: its hidden fields and cookie, plus `typed`.
  httplib::Result post_form(const httplib::Result& page, std::vector<std::pair<std::string, std::string>> typed) {
    std::regex hidden(R"re(<input type="hidden" name="([^"]+)" value="([^"]*)">)re");
    for (auto it = std::sregex_iterator(page->body.begin(), page->body.end(), hidden); it != std::sregex_iterator(); ++it) {
      typed.emplace_back((*it)[1], html_unescape((*it)[2]));
    }
    const std::string cookie = page->get_header_value("Set-Cookie");
    return c->Post("/authorize", httplib::Headers{{"Cookie", cookie.substr(0, cookie.find(';'))}}, form(typed),
                   "application/x-www-form-urlencoded");
  }

  // The whole sign-in, as a client and a person do it (picking `team` if asked). Returns
  // the token response.
  json sign_in(const std::string& key, const std::string& client_name = "Test", const std::string& team = "") {
    const std::string verifier = crypto::b64url(crypto::random_bytes(40));
    const std::string challenge = crypto::b64url(crypto::sha256(verifier));
    auto reg = c->Post("/register", json{{"redirect_uris", {"http://127.0.0.1/callback"}}, {"client_name", client_name}}.dump(),
                       "application/json");
    EXPECT_EQ(reg->status, 201) << reg->body;
    const std::string client_id = body_json(reg)["client_id"];
    const std::string query = form({{"response_type", "code"}, {"client_id", client_id},
                                    {"redirect_uri", "http://127.0.0.1:4242/callback"}, {"code_challenge", challenge},
                                    {"code_challenge_method", "S256"}, {"state", "s1"}, {"resource", host->url() + "/mcp"}});
    auto page = c->Get("/authorize?" + query);
    EXPECT_EQ(page->status, 200) << page->body;
    EXPECT_NE(page->body.find("Codesphere API token"), std::string::npos) << "the plugin's declared field";
    auto done = post_form(page, {{"cs.api_token", key}});
    if (!team.empty()) {
      EXPECT_EQ(done->status, 200) << done->body;
      EXPECT_NE(done->body.find("<select"), std::string::npos) << done->body;
      done = post_form(done, {{"cs.team_id", team}});
    }
    EXPECT_EQ(done->status, 302) << done->body;
    std::smatch m;
    const std::string location = done->get_header_value("Location");
    EXPECT_TRUE(std::regex_search(location, m, std::regex("code=([^&]+)"))) << location;
    auto token = c->Post("/token", form({{"grant_type", "authorization_code"}, {"client_id", client_id}, {"code", m[1]},
                                         {"code_verifier", verifier}, {"redirect_uri", "http://127.0.0.1:4242/callback"},
                                         {"resource", host->url() + "/mcp"}}),
                         "application/x-www-form-urlencoded");
    EXPECT_EQ(token->status, 200) << token->body;
    json t = body_json(token);
    t["client_id"] = client_id;
    return t;
  }

  httplib::Result call(const std::string& access_token, const std::string& tool, const json& args = json::object()) {
    json meta{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"}, {"io.modelcontextprotocol/clientCapabilities", json::object()}};
    json msg{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"}, {"params", {{"name", tool}, {"arguments", args}, {"_meta", meta}}}};
    return c->Post("/mcp",
                   httplib::Headers{{"Authorization", "Bearer " + access_token}, {"MCP-Protocol-Version", "2026-07-28"},
                                    {"Mcp-Method", "tools/call"}, {"Mcp-Name", tool}, {"Accept", "application/json"}},
                   msg.dump(), "application/json");
  }

  FakeApi api;
  std::unique_ptr<HttpHost> host;
  std::unique_ptr<httplib::Client> c;
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

TEST_F(OAuthHttpTest, TwoUsersEachCallWithTheirOwnKey) {
  json alice = sign_in(kAlice), bob = sign_in(kBob);
  api.users();  // forget what the sign-ins did
  auto r = call(alice["access_token"], "list_teams");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(body_json(r)["result"].value("isError", false)) << r->body;
  EXPECT_EQ(body_json(r)["result"]["structuredContent"]["items"][0]["name"], "Alpha") << r->body;
  EXPECT_EQ(api.users(), std::vector<int>{0});
  r = call(bob["access_token"], "list_teams");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(api.users(), std::vector<int>{1});

  // Revoking Alice leaves Bob working.
  auto rv = c->Post("/revoke", form({{"token", alice["refresh_token"]}, {"client_id", alice["client_id"]}}),
                    "application/x-www-form-urlencoded");
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
  auto reg = c->Post("/register", json{{"redirect_uris", {"http://127.0.0.1/callback"}}}.dump(), "application/json");
  const std::string client_id = body_json(reg)["client_id"];
  const std::string query = form({{"response_type", "code"}, {"client_id", client_id}, {"redirect_uri", "http://127.0.0.1:4242/callback"},
                                  {"code_challenge", crypto::b64url(crypto::sha256(std::string(43, 'v')))},
                                  {"code_challenge_method", "S256"}, {"state", "s1"}});
  auto refused = post_form(c->Get("/authorize?" + query), {{"cs.api_token", "key-mallory-3333"}});
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
