// codegen plugin: YAML settings, and the credentials (API token, organisation id) with
// their precedence and origin. The key list with defaults is documented at the top of
// plugin.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "mcp_plugin/sdk.hpp"
#include "tasks.hpp"
#include "util.hpp"

namespace codegen {

struct Settings {
  std::string base_url = "https://api.codegen.com";
  Timing timing;
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;
  int64_t get_budget_per_30s = 50;
  int64_t list_max_pages = 5;
  int64_t request_timeout_ms = 30000;
  int64_t max_resume_chars = 40000;
  // Replicas on one store: the poller's lease; another replica takes over this long after
  // the polling one died.
  int64_t lease_ms = 15000;

  // Throws std::runtime_error with a message naming the key for unknown keys, wrong types
  // and values out of range (a typo must not silently fall back to a default).
  static Settings parse(const json& settings);
};

// Where a credential came from, as codegen_config get reports it.
//   "user"         the signed-in user's own, entered on the OAuth sign-in form
//   "runtime"      set with codegen_config set (kept in the host's state; no signed-in user)
//   "environment"  $CODEGEN_API_TOKEN / $CODEGEN_ORG_ID, read directly or through ${...} in YAML
//   "yaml"         the instance's `credentials:` in the host configuration
//   "none"         not set anywhere
struct Credentials {
  std::optional<std::string> token;
  std::string token_source = "none";
  std::optional<int64_t> org_id;
  std::string org_source = "none";
  std::string org_error;  // a configured org_id that is not a positive integer
};

// The credentials of a principal. A signed-in user (OAuth; a non-empty principal) has only
// their own, from the sign-in: in a call call.credential, outside one (the poller)
// host.user_credential, which answers only while they hold a grant. Never the operator's
// YAML or environment, so a revoked user's runs cannot go on with someone else's key.
// Without a user (the empty principal: stdio, static bearer tokens): runtime
// (codegen_config set) > YAML credentials (which the default config fills from the
// environment) > the environment variable itself. A value set at runtime wins because it
// was set deliberately and `get` reports the effective origin, so nothing is silently
// overridden (the old server let the environment silently win, §D.3). Thread-safe.
class ConfigStore {
 public:
  // Deletes runtime values an older version kept in clear for signed-in users.
  ConfigStore(const mcph::sdk::Host& host, Redactor& redactor);

  Credentials resolve(const std::string& principal, const mcph::sdk::Call* call) const;

  // codegen_config set, for the empty principal only (signed-in users sign in again).
  bool set_token(const std::string& token) const;
  bool set_org(int64_t org_id) const;

 private:
  const mcph::sdk::Host& host_;
  Redactor& redactor_;
};

}  // namespace codegen
