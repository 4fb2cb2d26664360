// What an MCP client and a person at a browser do with mcp-host in auth.mode oauth, for the
// integration tests: register a client, open the sign-in form, post it (hidden fields and
// cookie included, plus what the person types), trade the code for tokens, call a tool.
#pragma once

#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "auth/oauth.hpp"
#include "http_host.hpp"
#include "services/crypto.hpp"

namespace mcph::testing {

using Fields = std::vector<std::pair<std::string, std::string>>;

inline std::string form(const Fields& fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += (out.empty() ? "" : "&") + auth::url_encode(k) + "=" + auth::url_encode(v);
  return out;
}

class OAuthClient {
 public:
  // `c` must not follow redirects; `mcp_url` is the server's MCP URL (the tokens' audience).
  OAuthClient(httplib::Client& c, std::string mcp_url) : c_(c), mcp_url_(std::move(mcp_url)) {}

  static constexpr const char* kRedirect = "http://127.0.0.1:4242/callback";

  // A newly registered client's first form page, with the client's id and PKCE verifier.
  struct Started {
    httplib::Result page;
    std::string client_id, verifier;
  };
  Started start(const std::string& client_name = "Test") {
    const std::string verifier = crypto::b64url(crypto::random_bytes(40));
    auto reg = c_.Post("/register", nlohmann::json{{"redirect_uris", {"http://127.0.0.1/callback"}}, {"client_name", client_name}}.dump(),
                       "application/json");
    EXPECT_EQ(reg->status, 201) << reg->body;
    const std::string client_id = body_json(reg)["client_id"];
    const std::string query = form({{"response_type", "code"}, {"client_id", client_id}, {"redirect_uri", kRedirect},
                                    {"code_challenge", crypto::b64url(crypto::sha256(verifier))},
                                    {"code_challenge_method", "S256"}, {"state", "s1"}, {"resource", mcp_url_}});
    auto page = c_.Get("/authorize?" + query);
    EXPECT_EQ(page->status, 200) << page->body;
    return Started{std::move(page), client_id, verifier};
  }

  // Posts the form `page` as a person would: its hidden fields and cookie, plus `typed`.
  httplib::Result post(const httplib::Result& page, Fields typed) {
    std::regex hidden(R"re(<input type="hidden" name="([^"]+)" value="([^"]*)">)re");
    for (auto it = std::sregex_iterator(page->body.begin(), page->body.end(), hidden); it != std::sregex_iterator(); ++it) {
      typed.emplace_back((*it)[1], html_unescape((*it)[2]));
    }
    const std::string cookie = page->get_header_value("Set-Cookie");
    return c_.Post("/authorize", httplib::Headers{{"Cookie", cookie.substr(0, cookie.find(';'))}}, form(typed),
                   "application/x-www-form-urlencoded");
  }

  // The redirect `done` (a 302 with a code) traded for tokens; the token response, with
  // the client's id added as "client_id".
  nlohmann::json finish(const httplib::Result& done, const Started& s) {
    EXPECT_EQ(done->status, 302) << done->body;
    std::smatch m;
    const std::string location = done->get_header_value("Location");
    EXPECT_TRUE(std::regex_search(location, m, std::regex("code=([^&]+)"))) << location;
    auto issued = c_.Post("/token", form({{"grant_type", "authorization_code"}, {"client_id", s.client_id}, {"code", m[1]},
                                          {"code_verifier", s.verifier}, {"redirect_uri", kRedirect}, {"resource", mcp_url_}}),
                          "application/x-www-form-urlencoded");
    EXPECT_EQ(issued->status, 200) << issued->body;
    nlohmann::json t = body_json(issued);
    t["client_id"] = s.client_id;
    return t;
  }

  // A stateless (2026-07-28) tools/call with an access token.
  httplib::Result call(const std::string& access_token, const std::string& tool, const nlohmann::json& args = nlohmann::json::object()) {
    nlohmann::json meta{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                        {"io.modelcontextprotocol/clientCapabilities", nlohmann::json::object()}};
    nlohmann::json msg{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
                       {"params", {{"name", tool}, {"arguments", args}, {"_meta", meta}}}};
    return c_.Post("/mcp",
                   httplib::Headers{{"Authorization", "Bearer " + access_token}, {"MCP-Protocol-Version", "2026-07-28"},
                                    {"Mcp-Method", "tools/call"}, {"Mcp-Name", tool}, {"Accept", "application/json"}},
                   msg.dump(), "application/json");
  }

  httplib::Result revoke(const nlohmann::json& tokens) {
    return c_.Post("/revoke", form({{"token", tokens["refresh_token"]}, {"client_id", tokens["client_id"]}}),
                   "application/x-www-form-urlencoded");
  }

 private:
  httplib::Client& c_;
  std::string mcp_url_;
};

}  // namespace mcph::testing
