// mcp-host as an OAuth 2.1 authorization server for its own MCP endpoint (mcp-spec §5):
// protected-resource and authorization-server metadata (RFC 9728, RFC 8414), dynamic client
// registration (RFC 7591), the authorization code flow with PKCE S256 behind a small
// credentials form, refresh tokens rotated on every use (reuse revokes the grant), and
// revocation (RFC 7009). What a user types into the form (their upstream credentials) is
// stored encrypted (AES-256-GCM) with their grant; tokens are stored only as hashes.
//
// Transport-agnostic: each endpoint takes the request's parts and returns an Answer that
// transport/http.cpp writes. State lives in the host's StateStore (namespace "oauth").
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "plugins/instance.hpp"
#include "result.hpp"

namespace mcph::services {
class StateStore;
}

namespace mcph::auth {

using json = nlohmann::json;
using Params = std::multimap<std::string, std::string>;  // query or form parameters

// A value the credentials form asks each user for, declared by a plugin instance.
struct FormField {
  std::string instance;  // plugin instance name
  std::string key;       // credential key the plugin looks up
  std::string label;
  std::string help;
  bool secret = true;
};

// Who is calling, from a valid access token: an opaque, stable principal id and the
// credentials they entered (instance -> key -> value).
using Caller = plugins::Caller;

struct Answer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct OAuthOptions {
  std::string issuer;    // public base URL, e.g. https://mcp.example.com (no trailing slash)
  std::string mcp_path;  // e.g. /mcp
  std::chrono::seconds access_ttl{3600};
  std::chrono::seconds refresh_ttl{30 * 24 * 3600};
  std::chrono::seconds code_ttl{60};
  std::string signing_key;     // 32 bytes: CSRF tokens, principal ids
  std::string encryption_key;  // 32 bytes: users' credentials at rest
  std::vector<FormField> fields;
};

class OAuthServer {
 public:
  OAuthServer(OAuthOptions options, services::StateStore& store);

  // This server's MCP URL: the audience every token is bound to (RFC 8707).
  const std::string& resource() const { return resource_; }
  // The paths it serves, for routing.
  std::string metadata_path() const;  // /.well-known/oauth-protected-resource<mcp path>
  // The challenge a 401 carries.
  std::string challenge(std::string_view error = {}) const;

  Answer protected_resource_metadata() const;
  Answer authorization_server_metadata() const;
  Answer register_client(std::string_view body);
  // GET /authorize: the credentials form (or an error page / error redirect).
  Answer authorize_form(const Params& query);
  // POST /authorize: the submitted form; redirects to the client with a code.
  Answer authorize_submit(const Params& form, std::string_view cookie_header);
  Answer token(const Params& form);
  Answer revoke(const Params& form);

  // The caller behind "Authorization: Bearer <token>", or nullopt (answer 401). Cached in
  // memory: the database is read once per token.
  std::optional<Caller> authenticate(std::string_view authorization);

  // Bounds the posts one address may make to /register, /authorize and /token: false (answer
  // 429) beyond kPostsPerMinute in the last minute. Generous on purpose: a person who
  // mistypes a key a few times is never locked out; a flood is.
  static constexpr int kPostsPerMinute = 30;
  bool admit(const std::string& address);
  static Answer too_many();

  // For `mcp-host auth list|revoke`.
  std::vector<json> grants();
  bool revoke_grant(const std::string& id);

 private:
  static constexpr std::chrono::seconds kRecheck{30};
  struct Cached {
    Caller caller;
    std::chrono::system_clock::time_point expires;
  };
  Answer error_page(int status, const std::string& message) const;
  Answer redirect_error(const std::string& redirect_uri, const std::string& state, const std::string& error,
                        const std::string& description) const;
  std::optional<json> load(const std::string& key);
  void save(const std::string& key, const json& value);
  void erase(const std::string& key);
  std::string csrf(const std::string& nonce, const Params& params) const;
  json issue_tokens(const std::string& grant_id, json& grant);
  void drop_grant(const std::string& grant_id);

  OAuthOptions options_;
  services::StateStore& store_;
  std::string resource_;
  std::mutex cache_mutex_;
  std::unordered_map<std::string, Cached> cache_;  // token hash -> caller; guarded by cache_mutex_
  std::mutex posts_mutex_;
  std::unordered_map<std::string, std::vector<int64_t>> posts_;  // address -> times (s); guarded by posts_mutex_
};

// Loads a 32-byte key from `path` (raw or base64url), or creates one there (mode 0600) if
// the file does not exist.
Result<std::string> load_or_create_key(const std::string& path);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string url_encode(std::string_view s);
// Parses application/x-www-form-urlencoded text (also query strings).
Params parse_form(std::string_view text);

}  // namespace mcph::auth
