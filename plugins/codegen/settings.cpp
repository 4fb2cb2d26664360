#include "settings.hpp"

#include <cstdlib>
#include <stdexcept>

namespace codegen {

namespace {

int64_t read_int(const json& s, const char* key, int64_t fallback, int64_t min, int64_t max) {
  auto it = s.find(key);
  if (it == s.end()) return fallback;
  if (!it->is_number_integer()) throw std::runtime_error(std::string("settings.") + key + " must be an integer");
  const int64_t v = it->get<int64_t>();
  if (v < min || v > max) {
    throw std::runtime_error(std::string("settings.") + key + " must be between " + std::to_string(min) + " and " +
                             std::to_string(max) + " (got " + std::to_string(v) + ")");
  }
  return v;
}

// https anywhere; plain http only to a loopback address (the fake API in tests). A tool can
// never change the URL (§D.2: base_url injection sends the bearer token anywhere).
std::string check_base_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  // The old server's default ended in /v1 (§A.3); our paths carry /v1 themselves (§B.1).
  if (url.size() >= 3 && url.compare(url.size() - 3, 3, "/v1") == 0) url.resize(url.size() - 3);
  auto host_of = [](const std::string& rest) {
    std::string h = rest.substr(0, rest.find('/'));
    if (!h.empty() && h.front() == '[') return h.substr(0, h.find(']') + 1);
    return h.substr(0, h.find(':'));
  };
  if (url.rfind("https://", 0) == 0 && url.size() > 8) return url;
  if (url.rfind("http://", 0) == 0) {
    const std::string h = host_of(url.substr(7));
    if (h == "127.0.0.1" || h == "localhost" || h == "[::1]") return url;
    throw std::runtime_error("settings.base_url must use https (plain http only to 127.0.0.1, localhost or [::1])");
  }
  throw std::runtime_error("settings.base_url must be an https:// URL");
}

constexpr const char* kKeys[] = {"base_url",          "poll_interval_ms",   "poll_max_interval_ms",
                                 "deadline_ms",       "timed_out_poll_interval_ms", "resume_grace_ms",
                                 "retention_ms",      "get_budget_per_30s", "list_max_pages",
                                 "request_timeout_ms", "max_resume_chars",   "lease_ms"};

std::string cfg_key(const std::string& principal, const char* name) { return "cfg/" + hex(principal) + "/" + name; }

}  // namespace

Settings Settings::parse(const json& s) {
  Settings out;
  if (s.is_null()) return out;
  if (!s.is_object()) throw std::runtime_error("settings must be a mapping");
  for (auto it = s.begin(); it != s.end(); ++it) {
    bool known = false;
    for (const char* k : kKeys) known = known || it.key() == k;
    if (!known) {
      std::string list;
      for (const char* k : kKeys) list += (list.empty() ? "" : ", ") + std::string(k);
      throw std::runtime_error("unknown setting '" + it.key() + "' (known: " + list + ")");
    }
  }
  if (auto it = s.find("base_url"); it != s.end()) {
    if (!it->is_string()) throw std::runtime_error("settings.base_url must be a string");
    out.base_url = it->get<std::string>();
  }
  out.base_url = check_base_url(out.base_url);
  constexpr int64_t hour = 3600 * 1000, day = 24 * hour;
  out.timing.poll_interval_ms = read_int(s, "poll_interval_ms", 5000, 10, hour);
  out.timing.poll_max_interval_ms =
      read_int(s, "poll_max_interval_ms", std::max<int64_t>(60000, out.timing.poll_interval_ms),
               out.timing.poll_interval_ms, hour);
  out.timing.deadline_ms = read_int(s, "deadline_ms", hour, 1, 30 * day);
  out.timing.timed_out_poll_interval_ms = read_int(s, "timed_out_poll_interval_ms", 300000, 10, day);
  out.timing.resume_grace_ms = read_int(s, "resume_grace_ms", 120000, 0, day);
  out.retention_ms = read_int(s, "retention_ms", 7 * day, 1, 365 * day);
  // Upstream: 60 per 30 s; 59 is the most we allow so we always stay under it.
  out.get_budget_per_30s = read_int(s, "get_budget_per_30s", 50, 1, 59);
  out.list_max_pages = read_int(s, "list_max_pages", 5, 1, 50);
  out.request_timeout_ms = read_int(s, "request_timeout_ms", 30000, 100, 300000);
  out.max_resume_chars = read_int(s, "max_resume_chars", 40000, 1000, 1000000);
  out.lease_ms = read_int(s, "lease_ms", 15000, 300, hour);
  return out;
}

ConfigStore::ConfigStore(const mcph::sdk::Host& host, Redactor& redactor) : host_(host), redactor_(redactor) {
  if (const char* env = std::getenv("CODEGEN_API_TOKEN"); env != nullptr) redactor_.add(env);
  // Tokens set at runtime in an earlier run must be redacted from the first message on.
  const std::string mine = cfg_key("", "");
  for (const auto& [key, value] : host_.state_list("cfg/")) {
    if (key.size() > 10 && key.compare(key.size() - 10, 10, "/api_token") == 0) redactor_.add(value);
    // A signed-in user's, saved in clear by an older version: their sign-in answers now.
    if (key.rfind(mine, 0) != 0) host_.state_delete(key);
  }
}

Credentials ConfigStore::resolve(const std::string& principal, const mcph::sdk::Call* call) const {
  Credentials c;
  std::optional<std::string> org_text;
  auto with_org = [&] {
    if (org_text) {
      c.org_id = positive_int(std::string_view(*org_text));
      if (!c.org_id) c.org_error = "the configured org_id (" + c.org_source + ") is not a positive integer";
    }
    return c;
  };
  if (!principal.empty()) {
    auto own = [&](const char* key) { return call ? call->credential(key) : host_.user_credential(principal, key); };
    if ((c.token = own("api_token"))) c.token_source = "user";
    if ((org_text = own("org_id"))) c.org_source = "user";
    return with_org();
  }

  const char* env_token = std::getenv("CODEGEN_API_TOKEN");
  const char* env_org = std::getenv("CODEGEN_ORG_ID");
  auto cred = [&](const char* key) { return call ? call->credential(key) : host_.credential(key); };

  if (auto rt = host_.state_get(cfg_key("", "api_token")); rt && !rt->empty()) {
    c.token = *rt;
    c.token_source = "runtime";
  } else if (auto y = cred("api_token")) {
    c.token = *y;
    // The default config writes ${CODEGEN_API_TOKEN:-}: report the real origin.
    c.token_source = env_token != nullptr && *y == env_token ? "environment" : "yaml";
  } else if (env_token != nullptr && *env_token != '\0') {
    c.token = env_token;
    c.token_source = "environment";
  }

  if (auto rt = host_.state_get(cfg_key("", "org_id")); rt && !rt->empty()) {
    org_text = *rt;
    c.org_source = "runtime";
  } else if (auto y = cred("org_id")) {
    org_text = *y;
    c.org_source = env_org != nullptr && *y == env_org ? "environment" : "yaml";
  } else if (env_org != nullptr && *env_org != '\0') {
    org_text = env_org;
    c.org_source = "environment";
  }
  return with_org();
}

bool ConfigStore::set_token(const std::string& token) const {
  redactor_.add(token);  // before anything could echo it
  return host_.state_put(cfg_key("", "api_token"), token);
}

bool ConfigStore::set_org(int64_t org_id) const { return host_.state_put(cfg_key("", "org_id"), std::to_string(org_id)); }

}  // namespace codegen
