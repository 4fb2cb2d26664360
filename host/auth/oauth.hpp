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
#include <functional>
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
#include "store/keyring.hpp"
#include "store/state_store.hpp"

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

// What a plugin instance's credential check said about what a user typed
// (register_credential_check): accepted (perhaps with more values to keep), a choice the
// user must make, or refused with a message for the form.
struct CheckOutcome {
  enum class Kind { kAccepted, kChoose, kRefused, kUnavailable };
  Kind kind = Kind::kAccepted;
  std::string message;                        // kRefused, kUnavailable
  std::map<std::string, std::string> values;  // kAccepted: more values to keep (not secret)
  json choose = json::array();                // kChoose: [{key, label, help, options: [{value, label}]}]
};
// Runs the check of `instance` with `entered` (key -> value); an instance without a check
// accepts.
using CredentialCheck = std::function<CheckOutcome(const std::string& instance, const std::map<std::string, std::string>& entered)>;
// The check of one plugin instance, run as the ABI says: a handler call whose credential()
// answers with `entered`.
CheckOutcome run_credential_check(const plugins::Instance& instance, const std::map<std::string, std::string>& entered);

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
  // Users' credentials at rest: sealed with the current key, opened with any (replicas:
  // shared and rotated, `mcp-host keys rotate`). Required.
  std::shared_ptr<const store::Keyring> encryption_keys;
  // The form's fields: asked each time (a reload may add or remove plugin instances).
  std::function<std::vector<FormField>()> fields;
  CredentialCheck check;                 // null: everything entered is accepted
  plugins::UserDirectory* users = nullptr;  // answered by this server while it lives
  // Hears each sign-in's outcome: "granted", "refused" (a plugin refused the credentials)
  // or "unavailable" (the plugin could not check them). Null: nobody (telemetry).
  std::function<void(const char* outcome)> on_sign_in;
};

class OAuthServer {
 public:
  OAuthServer(OAuthOptions options, store::StateStore& store);
  ~OAuthServer();
  OAuthServer(const OAuthServer&) = delete;
  OAuthServer& operator=(const OAuthServer&) = delete;

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
  // POST /authorize from `address`: the submitted form. Plugins check what was entered;
  // then it redirects to the client with a code, or shows the form again (an error, or a
  // choice to make).
  Answer authorize_submit(const Params& form, std::string_view cookie_header, const std::string& address = {});
  Answer token(const Params& form);
  Answer revoke(const Params& form);

  // The caller behind "Authorization: Bearer <token>", or null (answer 401). Cached in
  // memory and shared, not copied: the database is read once per token per kRecheck.
  std::shared_ptr<const Caller> authenticate(std::string_view authorization);
  // The user `principal` while they hold a grant (for plugins' work outside a call).
  std::optional<Caller> user(const std::string& principal);

  // Bounds the posts one address may make to /register, /authorize and /token: false (answer
  // 429) beyond kPostsPerMinute in the last minute. Generous on purpose: a person who
  // mistypes a key a few times is never locked out; a flood is.
  static constexpr int kPostsPerMinute = 30;
  bool admit(const std::string& address);
  static Answer too_many();
  // Failed credential checks one client may see from one address in kFailureWindow before
  // it must wait (never longer than the window: nobody is locked out for good).
  static constexpr int kFailures = 10;
  static constexpr std::chrono::seconds kFailureWindow{15 * 60};

  // Erases expired codes, tokens and abandoned sign-in forms; how many. The HTTP transport
  // calls it every few minutes.
  size_t purge();

  // For `mcp-host auth list|revoke`.
  std::vector<json> grants();
  bool revoke_grant(const std::string& id);

 private:
  std::vector<FormField> form_fields() const { return options_.fields ? options_.fields() : std::vector<FormField>{}; }
  static constexpr std::chrono::seconds kRecheck{30};
  static constexpr std::string_view kRevokedEvent = "oauth.revoked";  // body: the grant id
  struct Cached {
    std::shared_ptr<const Caller> caller;
    std::chrono::system_clock::time_point expires;
  };
  // What the form carries between its steps, kept in the store (credentials sealed) so no
  // secret goes back into a page.
  struct Pending {
    json credentials;  // instance -> key -> value
    std::string principal;
    json choose;       // [{instance, key, label, help, options}]
    std::string client_id;
    int64_t expires = 0;
  };
  struct FormView {
    std::string error;
    std::map<std::string, std::string> refill;  // field name -> value (never secrets)
    std::string pending;                        // a choice step: its Pending id
    json choose = json::array();
  };
  std::optional<Answer> check_request(const Params& q) const;
  Answer form_page(int status, const Params& q, const std::string& nonce, const FormView& view) const;
  Answer finish(const Params& form, const json& credentials, const std::string& principal);
  std::optional<Caller> open_grant(const std::string& grant_id, const json& grant) const;
  std::string seal_secret(std::string_view plain, std::string_view aad) const;
  std::optional<std::string> open_secret(std::string_view sealed_b64, std::string_view aad) const;
  int failure_wait(const std::string& key);  // seconds to wait, 0 when under the bound
  void failed(const std::string& key);
  Answer error_page(int status, const std::string& message) const;
  Answer redirect_error(const std::string& redirect_uri, const std::string& state, const std::string& error,
                        const std::string& description) const;
  std::optional<json> load(const std::string& key) const;
  void save(const std::string& key, const json& value);
  void erase(const std::string& key);
  std::string csrf(const std::string& nonce, const Params& params) const;
  json issue_tokens(const std::string& grant_id, json& grant);
  void drop_grant(const std::string& grant_id);
  void forget_grant(const std::string& grant_id);  // from the caches

  OAuthOptions options_;
  store::StateStore& store_;
  std::string resource_;
  std::mutex cache_mutex_;
  std::unordered_map<std::string, Cached> cache_;  // token hash -> caller; guarded by cache_mutex_
  std::unordered_map<std::string, Cached> users_;  // principal -> caller; guarded by cache_mutex_
  std::mutex posts_mutex_;
  std::unordered_map<std::string, std::vector<int64_t>> posts_;     // address -> times (s); guarded by posts_mutex_
  std::unordered_map<std::string, std::vector<int64_t>> failures_;  // client+address -> times; guarded by posts_mutex_
  store::StateStore::Subscription events_;  // last: unsubscribed before the rest goes
};

// Seals again, under `to`, the credentials of every grant and pending sign-in form in
// `store` that opens under one of `from` (for `mcp-host keys rotate`); how many.
Result<size_t> reseal_credentials(store::StateStore& store, const store::Keyring& from, const std::string& to);

// Loads a 32-byte key from `path` (raw or base64url), or creates one there (mode 0600) if
// the file does not exist.
Result<std::string> load_or_create_key(const std::string& path);

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string url_encode(std::string_view s);
// Parses application/x-www-form-urlencoded text (also query strings).
Params parse_form(std::string_view text);

}  // namespace mcph::auth
