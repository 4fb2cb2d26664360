// The OAuth 2.1 authorization server without sockets: discovery, registration, the form,
// PKCE, codes, tokens, rotation, revocation, and the attacks the RFCs name, each refused with
// the status they give. The database and the logs never hold a user's key in clear.
#include <sys/stat.h>

#include <fstream>
#include <regex>

#include "auth/oauth.hpp"
#include "host_fixture.hpp"
#include "services/crypto.hpp"
#include "store/state_store.hpp"

namespace mcph::auth {
namespace {

using json = nlohmann::json;

const char* kUserKey = "cs-user-key-AAAA-1111";

std::string verifier_for(int n) { return std::string(43, static_cast<char>('a' + n)); }
std::string challenge_of(const std::string& v) { return crypto::b64url(crypto::sha256(v)); }

std::string header(const Answer& a, const std::string& name) {
  for (const auto& [k, v] : a.headers) {
    if (k == name) return v;
  }
  return "";
}

class OAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = store::StateStore::open(dir.str() + "/state");
    ASSERT_TRUE(st) << st.error();
    store = std::move(*st);
    options.issuer = "http://127.0.0.1:8080";
    options.mcp_path = "/mcp";
    options.signing_key = crypto::random_bytes(32);
    options.encryption_keys = std::make_shared<store::Keyring>(crypto::random_bytes(32));
    options.fields = [] { return std::vector<auth::FormField>{{"cs", "api_token", "Codesphere API token", "From Settings > API <keys>", true}}; };
    options.users = &users;
    restart();
  }
  void restart() {
    server.reset();
    server = std::make_unique<OAuthServer>(options, *store);
  }

  std::string register_client(const std::string& redirect = "http://127.0.0.1/callback", const std::string& name = "Test client") {
    Answer a = server->register_client(json{{"redirect_uris", {redirect}}, {"client_name", name}, {"token_endpoint_auth_method", "none"}}.dump());
    EXPECT_EQ(a.status, 201) << a.body;
    return json::parse(a.body).value("client_id", "");
  }
  Params authorize_params(const std::string& client, const std::string& verifier, const std::string& redirect = "http://127.0.0.1:5555/callback") {
    return {{"response_type", "code"}, {"client_id", client}, {"redirect_uri", redirect},
            {"code_challenge", challenge_of(verifier)}, {"code_challenge_method", "S256"}, {"state", "xyz"},
            {"resource", "http://127.0.0.1:8080/mcp"}};
  }
  // Fills in the form as a person would: the page's hidden fields, the cookie, the key.
  Answer submit(const Params& query, const std::string& key = kUserKey, const std::string& address = "10.0.0.1") {
    Answer page = server->authorize_form(query);
    EXPECT_EQ(page.status, 200) << page.body;
    return post(page, {{"cs.api_token", key}}, address);
  }
  // Submits a rendered form `page` with its hidden fields and cookie, plus `fields`.
  Answer post(const Answer& page, const Params& fields, const std::string& address = "10.0.0.1") {
    Params form = fields;
    std::regex hidden(R"re(<input type="hidden" name="([^"]+)" value="([^"]*)">)re");
    for (auto it = std::sregex_iterator(page.body.begin(), page.body.end(), hidden); it != std::sregex_iterator(); ++it) {
      form.emplace((*it)[1], testing::html_unescape((*it)[2]));
    }
    const std::string cookie = header(page, "Set-Cookie");
    return server->authorize_submit(form, cookie.substr(0, cookie.find(';')), address);
  }
  static std::string code_of(const Answer& redirect) {
    std::smatch m;
    const std::string location = header(redirect, "Location");
    return std::regex_search(location, m, std::regex("code=([^&]+)")) ? m[1].str() : "";
  }
  Answer exchange(const std::string& client, const std::string& code, const std::string& verifier,
                  const std::string& redirect = "http://127.0.0.1:5555/callback") {
    return server->token({{"grant_type", "authorization_code"}, {"client_id", client}, {"code", code},
                          {"code_verifier", verifier}, {"redirect_uri", redirect}, {"resource", "http://127.0.0.1:8080/mcp"}});
  }
  json login(const std::string& client, const std::string& key = kUserKey) {
    const std::string v = verifier_for(1);
    Answer r = submit(authorize_params(client, v), key);
    EXPECT_EQ(r.status, 302) << r.body;
    Answer t = exchange(client, code_of(r), v);
    EXPECT_EQ(t.status, 200) << t.body;
    return json::parse(t.body);
  }

  testing::TempDir dir;
  std::unique_ptr<store::StateStore> store;
  OAuthOptions options;
  plugins::UserDirectory users;
  std::unique_ptr<OAuthServer> server;
};

TEST_F(OAuthTest, DiscoveryDocuments) {
  EXPECT_EQ(server->metadata_path(), "/.well-known/oauth-protected-resource/mcp");
  json prm = json::parse(server->protected_resource_metadata().body);
  EXPECT_EQ(prm["resource"], "http://127.0.0.1:8080/mcp");
  EXPECT_EQ(prm["authorization_servers"][0], "http://127.0.0.1:8080");
  json as = json::parse(server->authorization_server_metadata().body);
  EXPECT_EQ(as["code_challenge_methods_supported"], json::array({"S256"}));
  EXPECT_EQ(as["token_endpoint"], "http://127.0.0.1:8080/token");
  EXPECT_EQ(server->challenge(), "Bearer resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\"");
}

TEST_F(OAuthTest, TheWholeFlowCarriesTheUsersCredentials) {
  const std::string client = register_client();
  const std::string v = verifier_for(1);
  Answer r = submit(authorize_params(client, v));
  ASSERT_EQ(r.status, 302) << r.body;
  const std::string location = header(r, "Location");
  EXPECT_TRUE(location.starts_with("http://127.0.0.1:5555/callback?code=")) << location;  // loopback port may vary
  EXPECT_NE(location.find("state=xyz"), std::string::npos);
  EXPECT_NE(location.find("iss=http%3A%2F%2F127.0.0.1%3A8080"), std::string::npos);
  Answer t = exchange(client, code_of(r), v);
  ASSERT_EQ(t.status, 200) << t.body;
  json tokens = json::parse(t.body);
  EXPECT_EQ(header(t, "Cache-Control"), "no-store");
  auto caller = server->authenticate("Bearer " + tokens["access_token"].get<std::string>());
  ASSERT_TRUE(caller);
  EXPECT_EQ(caller->credentials.at("cs").at("api_token"), kUserKey);
  EXPECT_TRUE(caller->principal.starts_with("u-"));
  EXPECT_EQ(caller->principal.find(kUserKey), std::string::npos);
  EXPECT_FALSE(server->authenticate("Bearer nope"));
  EXPECT_FALSE(server->authenticate(tokens["access_token"].get<std::string>()));  // no scheme

  // Refresh rotates; the old refresh token coming back revokes the whole grant.
  Answer r1 = server->token({{"grant_type", "refresh_token"}, {"client_id", client}, {"refresh_token", tokens["refresh_token"]}});
  ASSERT_EQ(r1.status, 200) << r1.body;
  json rotated = json::parse(r1.body);
  EXPECT_NE(rotated["refresh_token"], tokens["refresh_token"]);
  EXPECT_TRUE(server->authenticate("Bearer " + rotated["access_token"].get<std::string>()));
  Answer reuse = server->token({{"grant_type", "refresh_token"}, {"client_id", client}, {"refresh_token", tokens["refresh_token"]}});
  EXPECT_EQ(reuse.status, 400);
  EXPECT_EQ(json::parse(reuse.body)["error"], "invalid_grant");
  EXPECT_FALSE(server->authenticate("Bearer " + rotated["access_token"].get<std::string>())) << "reuse must revoke the grant";
  EXPECT_EQ(server->token({{"grant_type", "refresh_token"}, {"client_id", client}, {"refresh_token", rotated["refresh_token"]}}).status, 400);
}

// A user who refreshes all month does not grow the store: rotated refresh tokens and
// expired access tokens leave it, and a rotated token coming back after many rotations is
// still caught (it names its grant). purge() clears expired rows nobody will ask for.
TEST_F(OAuthTest, RefreshesDoNotGrowTheStoreAndOldTokensAreStillCaught) {
  options.access_ttl = std::chrono::seconds(1);
  restart();
  const std::string client = register_client();
  json tokens = login(client);
  auto rows = [&] {
    size_t n = 0;
    (void)store->list("oauth", "", [&](std::string_view, std::string_view) { return ++n > 0; });
    return n;
  };
  const size_t after_login = rows();
  const std::string early = tokens["refresh_token"];
  for (int i = 0; i < 40; ++i) {
    if (i == 20) std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // the first access tokens expire
    Answer r = server->token({{"grant_type", "refresh_token"}, {"client_id", client}, {"refresh_token", tokens["refresh_token"]}});
    ASSERT_EQ(r.status, 200) << r.body;
    tokens = json::parse(r.body);
  }
  EXPECT_LE(rows(), after_login + 21) << "at most the access tokens of the last second stay";
  Answer reuse = server->token({{"grant_type", "refresh_token"}, {"client_id", client}, {"refresh_token", early}});
  EXPECT_EQ(reuse.status, 400);
  EXPECT_NE(reuse.body.find("reuse detected"), std::string::npos) << reuse.body;
  EXPECT_FALSE(server->authenticate("Bearer " + tokens["access_token"].get<std::string>())) << "the grant is revoked";
  Answer guess = server->token({{"grant_type", "refresh_token"}, {"client_id", client}, {"refresh_token", "rt1.g-nope.x"}});
  EXPECT_EQ(guess.status, 400);
  EXPECT_NE(guess.body.find("unknown"), std::string::npos) << guess.body;

  // purge() takes every expired token (and codes after a grace, and abandoned forms).
  json other = login(client);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // expiry is in whole seconds
  EXPECT_GE(server->purge(), 1u) << "the expired access token";
  EXPECT_TRUE(server->token({{"grant_type", "refresh_token"}, {"client_id", client}, {"refresh_token", other["refresh_token"]}}).status == 200)
      << "live refresh tokens stay";
}

TEST_F(OAuthTest, SamePrincipalForTheSameKeyAndRevocationIsPerGrant) {
  const std::string client = register_client();
  json a = login(client), a2 = login(client), b = login(client, "another-users-key-BBBB");
  auto ca = server->authenticate("Bearer " + a["access_token"].get<std::string>());
  auto ca2 = server->authenticate("Bearer " + a2["access_token"].get<std::string>());
  auto cb = server->authenticate("Bearer " + b["access_token"].get<std::string>());
  ASSERT_TRUE(ca && ca2 && cb);
  EXPECT_EQ(ca->principal, ca2->principal);
  EXPECT_NE(ca->principal, cb->principal);
  EXPECT_EQ(server->grants().size(), 3u);
  EXPECT_EQ(server->revoke({{"token", a["refresh_token"]}}).status, 200);
  EXPECT_FALSE(server->authenticate("Bearer " + a["access_token"].get<std::string>()));
  EXPECT_TRUE(server->authenticate("Bearer " + b["access_token"].get<std::string>()));
  EXPECT_EQ(server->revoke({{"token", "unknown"}}).status, 200);  // RFC 7009
  EXPECT_TRUE(server->revoke_grant(cb->grant));
  EXPECT_FALSE(server->authenticate("Bearer " + b["access_token"].get<std::string>()));
  EXPECT_EQ(server->grants().size(), 1u);
}

TEST_F(OAuthTest, RegistrationValidatesEveryField) {
  auto status = [&](const json& body) { return server->register_client(body.dump()).status; };
  EXPECT_EQ(status(json{{"redirect_uris", {"http://evil.example/cb"}}}), 400);        // http off loopback
  EXPECT_EQ(status(json{{"redirect_uris", {"https://app.example/cb#frag"}}}), 400);   // fragment
  EXPECT_EQ(status(json{{"redirect_uris", json::array()}}), 400);
  EXPECT_EQ(status(json{{"redirect_uris", {"https://app.example/cb"}}, {"grant_types", {"client_credentials"}}}), 400);
  EXPECT_EQ(status(json{{"redirect_uris", {"https://app.example/cb"}}, {"token_endpoint_auth_method", "client_secret_basic"}}), 400);
  EXPECT_EQ(status(json{{"redirect_uris", {"https://app.example/cb"}}, {"client_name", std::string(300, 'x')}}), 400);
  EXPECT_EQ(server->register_client("not json").status, 400);
  EXPECT_EQ(status(json{{"redirect_uris", {"https://app.example/cb"}}}), 201);
}

TEST_F(OAuthTest, TheAttacksAreRefused) {
  const std::string client = register_client();
  const std::string v = verifier_for(2);
  // PKCE missing or plain: an error redirect, no form.
  Params q = authorize_params(client, v);
  q.erase("code_challenge");
  EXPECT_NE(header(server->authorize_form(q), "Location").find("error=invalid_request"), std::string::npos);
  q = authorize_params(client, v);
  q.erase("code_challenge_method");
  q.emplace("code_challenge_method", "plain");
  EXPECT_NE(header(server->authorize_form(q), "Location").find("error=invalid_request"), std::string::npos);
  // A redirect URI that was not registered: never redirected to.
  Answer page = server->authorize_form(authorize_params(client, v, "https://attacker.example/cb"));
  EXPECT_EQ(page.status, 400);
  EXPECT_TRUE(header(page, "Location").empty());
  page = server->authorize_form(authorize_params(client, v, "http://127.0.0.1:5555/other"));  // path differs
  EXPECT_EQ(page.status, 400);
  // Another audience.
  q = authorize_params(client, v);
  q.erase("resource");
  q.emplace("resource", "https://other.example/mcp");
  EXPECT_NE(header(server->authorize_form(q), "Location").find("error=invalid_target"), std::string::npos);

  // Wrong verifier; then the code is spent.
  Answer r = submit(authorize_params(client, v));
  const std::string code = code_of(r);
  Answer t = exchange(client, code, verifier_for(3));
  EXPECT_EQ(t.status, 400);
  EXPECT_EQ(json::parse(t.body)["error"], "invalid_grant");
  EXPECT_EQ(exchange(client, code, v).status, 400) << "a code is single-use, even after a failed try";
  // Code reuse after success revokes what it produced.
  r = submit(authorize_params(client, v));
  const std::string code2 = code_of(r);
  Answer ok = exchange(client, code2, v);
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(exchange(client, code2, v).status, 400);
  EXPECT_FALSE(server->authenticate("Bearer " + json::parse(ok.body)["access_token"].get<std::string>()));
  // Another client, another redirect URI, another audience at the token endpoint.
  const std::string other = register_client("http://127.0.0.1/callback", "Other");
  r = submit(authorize_params(client, v));
  EXPECT_EQ(exchange(other, code_of(r), v).status, 400);
  r = submit(authorize_params(client, v));
  EXPECT_EQ(exchange(client, code_of(r), v, "http://127.0.0.1:5555/elsewhere").status, 400);
  r = submit(authorize_params(client, v));
  EXPECT_EQ(server->token({{"grant_type", "authorization_code"}, {"client_id", client}, {"code", code_of(r)}, {"code_verifier", v},
                           {"redirect_uri", "http://127.0.0.1:5555/callback"}, {"resource", "https://other.example/mcp"}}).status, 400);
  EXPECT_EQ(server->token({{"grant_type", "password"}, {"client_id", client}}).status, 400);
  EXPECT_EQ(server->token({{"grant_type", "authorization_code"}, {"client_id", "nobody"}}).status, 401);
}

TEST_F(OAuthTest, TheFormEscapesEverythingAndNeedsItsCsrfCookie) {
  const std::string xss = "<script>alert(1)</script>\"'";
  const std::string client = register_client("http://127.0.0.1/callback", xss);
  Params q = authorize_params(client, verifier_for(4));
  q.erase("state");
  q.emplace("state", xss);
  Answer page = server->authorize_form(q);
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.body.find("<script>"), std::string::npos);
  EXPECT_NE(page.body.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(page.body.find("From Settings &gt; API &lt;keys&gt;"), std::string::npos);
  EXPECT_NE(header(page, "Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  // The post's redirect goes to the client: browsers check it against form-action too.
  EXPECT_NE(header(page, "Content-Security-Policy").find("form-action 'self' http://127.0.0.1:5555;"), std::string::npos)
      << header(page, "Content-Security-Policy");
  EXPECT_NE(page.body.find("type=\"password\""), std::string::npos);

  // A forged post: no cookie, a cookie for another form, or a tampered state.
  Params form = q;
  form.emplace("cs.api_token", kUserKey);
  form.emplace("csrf", "forged");
  EXPECT_EQ(server->authorize_submit(form, "").status, 403);
  EXPECT_EQ(server->authorize_submit(form, "mcph_csrf=abc").status, 403);
  // A valid submission whose state was changed after the form was rendered.
  const std::string cookie = header(page, "Set-Cookie");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(page.body, m, std::regex(R"re(name="csrf" value="([^"]+)")re")));
  Params tampered = authorize_params(client, verifier_for(4));  // state "xyz", not the rendered one
  tampered.emplace("cs.api_token", kUserKey);
  tampered.emplace("csrf", m[1].str());
  EXPECT_EQ(server->authorize_submit(tampered, cookie.substr(0, cookie.find(';'))).status, 403);
  // The key is never echoed into any page.
  Answer empty = submit(authorize_params(client, verifier_for(4)), "");
  EXPECT_EQ(empty.status, 400);
}

TEST_F(OAuthTest, AFloodOfPostsIsBoundedPerAddress) {
  int admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += server->admit("10.0.0.1");
  EXPECT_EQ(admitted, OAuthServer::kPostsPerMinute);
  EXPECT_TRUE(server->admit("10.0.0.2"));  // another address is not affected
  Answer a = OAuthServer::too_many();
  EXPECT_EQ(a.status, 429);
  EXPECT_EQ(header(a, "Retry-After"), "60");
}

TEST_F(OAuthTest, TheDatabaseHoldsNoKeyOrTokenInClear) {
  const std::string client = register_client();
  json tokens = login(client);
  server.reset();
  store.reset();  // flush and close
  for (const char* file : {"/state/state.db", "/state/state.db-wal"}) {
    std::ifstream in(dir.str() + file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(kUserKey), std::string::npos) << file;
    EXPECT_EQ(bytes.find(tokens["access_token"].get<std::string>()), std::string::npos) << file;
    EXPECT_EQ(bytes.find(tokens["refresh_token"].get<std::string>()), std::string::npos) << file;
  }
}

// A plugin's credential check, as the form runs it: here a stand-in for codesphere's (the
// real one is tested against the fake Codesphere API in test_oauth_http and the browser test).
class OAuthCheckTest : public OAuthTest {
 protected:
  void SetUp() override {
    OAuthTest::SetUp();
    options.check = [this](const std::string& instance, const std::map<std::string, std::string>& entered) {
      checked.push_back(instance + ":" + (entered.count("team_id") ? entered.at("team_id") : "-"));
      CheckOutcome out;
      const std::string key = entered.at("api_token");
      if (key.starts_with("unreachable")) {
        out.kind = CheckOutcome::Kind::kUnavailable;
        out.message = "Upstream is down; try again.";
      } else if (key.starts_with("bad")) {
        out.kind = CheckOutcome::Kind::kRefused;
        out.message = "The token " + key + " was refused <b>";  // a careless plugin quoting the key
      } else if (key.starts_with("one-team")) {
        out.values["team_id"] = "7";
      } else if (!entered.count("team_id")) {
        out.kind = CheckOutcome::Kind::kChoose;
        out.choose = json::array({{{"key", "team_id"}, {"label", "Default team"}, {"help", "Pick <one>"},
                                   {"options", {{{"value", "1"}, {"label", "Acme <1>"}}, {{"value", "2"}, {"label", "Beta (2)"}}}}}});
      }
      return out;
    };
    restart();
  }
  std::vector<std::string> checked;
};

TEST_F(OAuthCheckTest, ARefusedKeyShowsTheFormAgainWithTheMessageButNeverTheKey) {
  const std::string client = register_client();
  Answer r = submit(authorize_params(client, verifier_for(1)), "bad-secret-key-9999");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(header(r, "Location").empty());
  EXPECT_EQ(r.body.find("bad-secret-key-9999"), std::string::npos) << "the key must not come back into the page";
  EXPECT_NE(r.body.find("The token [REDACTED] was refused &lt;b&gt;"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("role=\"alert\""), std::string::npos);
  EXPECT_NE(r.body.find("type=\"password\""), std::string::npos);  // ready for another try
  // ...and the user tries again with the right key on the page they were given.
  Answer again = post(r, {{"cs.api_token", "one-team-key-1234"}});
  ASSERT_EQ(again.status, 302) << again.body;
  Answer t = exchange(client, code_of(again), verifier_for(1));
  ASSERT_EQ(t.status, 200) << t.body;
  auto caller = server->authenticate("Bearer " + json::parse(t.body)["access_token"].get<std::string>());
  ASSERT_TRUE(caller);
  EXPECT_EQ(caller->credentials.at("cs").at("team_id"), "7") << "values the check adds are kept with the user's";
  EXPECT_EQ(caller->credentials.at("cs").at("api_token"), "one-team-key-1234");
}

TEST_F(OAuthCheckTest, SeveralTeamsMeanAChoiceAndThePickIsKept) {
  const std::string client = register_client();
  Answer step = submit(authorize_params(client, verifier_for(1)), "multi-team-key-5678");
  ASSERT_EQ(step.status, 200) << step.body;
  EXPECT_NE(step.body.find("<select"), std::string::npos);
  EXPECT_NE(step.body.find("Acme &lt;1&gt;"), std::string::npos);
  EXPECT_NE(step.body.find("Pick &lt;one&gt;"), std::string::npos);
  EXPECT_EQ(step.body.find("multi-team-key-5678"), std::string::npos) << "the second step carries no secret";
  EXPECT_EQ(step.body.find("type=\"password\""), std::string::npos);
  // A value that was not offered is refused; the pending step is then spent.
  Answer forged = post(step, {{"cs.team_id", "99"}});
  EXPECT_EQ(forged.status, 400);
  EXPECT_NE(forged.body.find("choose one of the offered values"), std::string::npos);
  EXPECT_EQ(post(step, {{"cs.team_id", "2"}}).status, 400) << "a pending step is single-use";

  step = submit(authorize_params(client, verifier_for(1)), "multi-team-key-5678");
  Answer done = post(step, {{"cs.team_id", "2"}});
  ASSERT_EQ(done.status, 302) << done.body;
  EXPECT_EQ(checked.back(), "cs:2") << "the check runs again with the pick";
  Answer t = exchange(client, code_of(done), verifier_for(1));
  ASSERT_EQ(t.status, 200) << t.body;
  auto caller = server->authenticate("Bearer " + json::parse(t.body)["access_token"].get<std::string>());
  ASSERT_TRUE(caller);
  EXPECT_EQ(caller->credentials.at("cs").at("team_id"), "2");
  // The principal comes from the key alone: picking another team later is the same user.
  step = submit(authorize_params(client, verifier_for(1)), "multi-team-key-5678");
  t = exchange(client, code_of(post(step, {{"cs.team_id", "1"}})), verifier_for(1));
  auto same = server->authenticate("Bearer " + json::parse(t.body)["access_token"].get<std::string>());
  ASSERT_TRUE(same);
  EXPECT_EQ(same->principal, caller->principal);
  // A tampered pending id fails CSRF (it is bound like every other parameter).
  step = submit(authorize_params(client, verifier_for(1)), "multi-team-key-5678");
  std::string body = step.body;
  body = std::regex_replace(body, std::regex(R"re(name="pending" value="[^"]+")re"), R"(name="pending" value="forged")");
  Answer tampered = step;
  tampered.body = body;
  EXPECT_EQ(post(tampered, {{"cs.team_id", "1"}}).status, 403);
}

TEST_F(OAuthCheckTest, FailedAttemptsAreBoundedPerClientAndAddressButNeverForGood) {
  const std::string client = register_client();
  const std::string other = register_client("http://127.0.0.1/callback", "Other");
  for (int i = 0; i < OAuthServer::kFailures; ++i) {
    EXPECT_EQ(submit(authorize_params(client, verifier_for(1)), "bad-" + std::to_string(i) + "-xxxx").status, 400);
  }
  // The next attempt, even with the right key, waits (and says for how long).
  Answer wait = submit(authorize_params(client, verifier_for(1)), "one-team-key-1234");
  EXPECT_EQ(wait.status, 429);
  const int retry_after = std::stoi(header(wait, "Retry-After"));
  EXPECT_GT(retry_after, 0);
  EXPECT_LE(retry_after, OAuthServer::kFailureWindow.count()) << "bounded: nobody is locked out for good";
  EXPECT_NE(wait.body.find("Please wait"), std::string::npos);
  // Another address, or another client from the same address, is not affected.
  EXPECT_EQ(submit(authorize_params(client, verifier_for(1)), "one-team-key-1234", "10.0.0.2").status, 302);
  EXPECT_EQ(submit(authorize_params(other, verifier_for(1), "http://127.0.0.1:5555/callback"), "one-team-key-1234").status, 302);
  // An upstream that cannot answer is not the user's failure.
  for (int i = 0; i < 2 * OAuthServer::kFailures; ++i) {
    Answer down = submit(authorize_params(client, verifier_for(1)), "unreachable-key-1", "10.0.0.3");
    ASSERT_EQ(down.status, 503);
    EXPECT_NE(down.body.find("Upstream is down"), std::string::npos);
  }
  EXPECT_EQ(submit(authorize_params(client, verifier_for(1)), "one-team-key-1234", "10.0.0.3").status, 302);
}

TEST_F(OAuthTest, ATokenForAnotherAudienceIsRefused) {
  const std::string client = register_client();
  json tokens = login(client);
  ASSERT_TRUE(server->authenticate("Bearer " + tokens["access_token"].get<std::string>()));
  // The same state and keys serving another MCP URL: a token minted for the first is not
  // valid here, and neither is its refresh token.
  options.issuer = "https://other.example";
  restart();
  EXPECT_FALSE(server->authenticate("Bearer " + tokens["access_token"].get<std::string>()));
  Answer r = server->token({{"grant_type", "refresh_token"}, {"client_id", client}, {"refresh_token", tokens["refresh_token"]}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("another resource"), std::string::npos);
}

TEST_F(OAuthTest, PluginsFindASignedInUserOutsideACallUntilRevoked) {
  const std::string client = register_client();
  json a = login(client), b = login(client, "another-users-key-BBBB");
  auto ca = server->authenticate("Bearer " + a["access_token"].get<std::string>());
  auto cb = server->authenticate("Bearer " + b["access_token"].get<std::string>());
  ASSERT_TRUE(ca && cb);
  auto found = users.find(ca->principal);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->credentials.at("cs").at("api_token"), kUserKey);
  EXPECT_EQ(users.find(cb->principal)->credentials.at("cs").at("api_token"), "another-users-key-BBBB");
  EXPECT_FALSE(users.find("u-nobody"));
  // Signed in again (a new key): the newest grant is theirs to use; revoked, the older one.
  json a2 = login(client, kUserKey);
  auto ca2 = server->authenticate("Bearer " + a2["access_token"].get<std::string>());
  ASSERT_TRUE(ca2);
  ASSERT_EQ(ca2->principal, ca->principal);
  restart();  // nothing cached: the index finds it
  EXPECT_EQ(users.find(ca->principal)->grant, ca2->grant) << "the newest grant";
  ASSERT_TRUE(server->revoke_grant(ca2->grant));
  EXPECT_EQ(users.find(ca->principal)->grant, ca->grant) << "the older one, once the newest is revoked";
  ASSERT_TRUE(server->revoke_grant(ca->grant));
  EXPECT_FALSE(users.find(ca->principal)) << "a revoked user's credentials are gone at once";
  EXPECT_TRUE(users.find(cb->principal));
  server.reset();
  EXPECT_FALSE(users.find(cb->principal)) << "no server, nobody known";
}

TEST(OAuthKeys, CreatedOnceWithMode0600ThenReused) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/signing.key";
  auto k1 = load_or_create_key(path);
  ASSERT_TRUE(k1) << k1.error();
  EXPECT_EQ(k1->size(), 32u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto k2 = load_or_create_key(path);
  ASSERT_TRUE(k2);
  EXPECT_EQ(*k1, *k2);
  std::ofstream(dir.str() + "/short.key") << "tooshort";
  EXPECT_FALSE(load_or_create_key(dir.str() + "/short.key"));
}

TEST(OAuthForm, ParsesUrlEncoding) {
  Params p = parse_form("a=1&b=x+y&c=%3Cz%3E&d&=e");
  EXPECT_EQ(p.find("a")->second, "1");
  EXPECT_EQ(p.find("b")->second, "x y");
  EXPECT_EQ(p.find("c")->second, "<z>");
  EXPECT_EQ(p.find("d")->second, "");
}

}  // namespace
}  // namespace mcph::auth
