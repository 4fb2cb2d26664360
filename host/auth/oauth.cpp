#include "auth/oauth.hpp"

#include "json/bounded.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "json/bounded.hpp"
#include "services/crypto.hpp"
#include "store/state_store.hpp"

namespace mcph::auth {
namespace {

constexpr const char* kNs = "oauth";

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string token_key(const char* kind, std::string_view token) {
  return std::string(kind) + "/" + crypto::hex(crypto::sha256(token));
}

std::string new_token() { return crypto::b64url(crypto::random_bytes(32)); }

// A refresh token names its grant ("rt1.<grant>.<random>"): once rotated, its row is gone,
// and a reuse is still told from a guess by the grant it names.
std::string new_refresh_token(const std::string& grant_id) { return "rt1." + grant_id + "." + new_token(); }
std::string grant_of_refresh_token(std::string_view token) {
  if (!token.starts_with("rt1.")) return "";
  const size_t dot = token.find('.', 4);
  return dot == std::string_view::npos ? "" : std::string(token.substr(4, dot - 4));
}

// The row naming a user's newest grant.
std::string user_key(const std::string& principal) { return "user/" + principal; }

const std::string* param(const Params& p, const std::string& name) {
  auto it = p.find(name);
  return it == p.end() ? nullptr : &it->second;
}
std::string param_or(const Params& p, const std::string& name) {
  const std::string* v = param(p, name);
  return v ? *v : std::string();
}

std::string html(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Answer json_answer(int status, const json& body) {
  Answer a;
  a.status = status;
  a.body = body.dump();
  a.headers = {{"Cache-Control", "no-store"}};
  return a;
}

Answer oauth_error(int status, const std::string& error, const std::string& description) {
  return json_answer(status, json{{"error", error}, {"error_description", description}});
}

// An absolute URI split the way redirect matching needs it.
struct Uri {
  std::string scheme, host, port, rest;  // rest: path and query
  bool ok = false;
};
Uri split(std::string_view u) {
  Uri out;
  const size_t colon = u.find("://");
  if (colon == std::string::npos || u.find('#') != std::string::npos) return out;
  out.scheme = std::string(u.substr(0, colon));
  std::string_view after = u.substr(colon + 3);
  const size_t slash = after.find_first_of("/?");
  std::string_view authority = after.substr(0, slash);
  out.rest = slash == std::string::npos ? "/" : std::string(after.substr(slash));
  if (authority.empty() || authority.find('@') != std::string::npos) return out;
  size_t port_colon = authority.rfind(':');
  if (authority.front() == '[') port_colon = authority.find("]:") == std::string::npos ? std::string::npos : authority.find("]:") + 1;
  out.host = std::string(authority.substr(0, port_colon));
  if (port_colon != std::string::npos) out.port = std::string(authority.substr(port_colon + 1));
  std::transform(out.host.begin(), out.host.end(), out.host.begin(), [](unsigned char c) { return std::tolower(c); });
  out.ok = !out.host.empty();
  return out;
}
bool loopback(const Uri& u) { return u.host == "127.0.0.1" || u.host == "[::1]" || u.host == "localhost"; }

// OAuth 2.1: https redirects, or http to a loopback address (native apps).
bool allowed_redirect(const std::string& uri) {
  const Uri u = split(uri);
  return u.ok && (u.scheme == "https" || (u.scheme == "http" && loopback(u)));
}

// Exact match, except that a loopback redirect's port may vary (OAuth 2.1 §8.4.2).
bool redirect_matches(const std::string& registered, const std::string& presented) {
  if (registered == presented) return true;
  const Uri a = split(registered), b = split(presented);
  return a.ok && b.ok && a.scheme == "http" && b.scheme == "http" && loopback(a) && a.host == b.host && a.rest == b.rest;
}

}  // namespace

std::string url_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Params parse_form(std::string_view text) {
  Params out;
  auto decode = [](std::string_view s) {
    std::string r;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') {
        r += ' ';
      } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                 std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        r += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        r += s[i];
      }
    }
    return r;
  };
  while (!text.empty()) {
    const size_t amp = text.find('&');
    std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    out.emplace(decode(pair.substr(0, eq)), eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1)));
  }
  return out;
}

Result<std::string> load_or_create_key(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    if (text.size() == 32) return text;
    if (auto raw = crypto::unb64url(text); raw && raw->size() == 32) return *raw;
    return Error{path + ": a key must be 32 bytes (raw, or base64url without padding)"};
  }
  const std::string key = crypto::random_bytes(32);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Error{"cannot create key file " + path + ": " + std::strerror(errno)};
  const std::string text = crypto::b64url(key) + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) return Error{"cannot write key file " + path};
  return key;
}

OAuthServer::OAuthServer(OAuthOptions options, store::StateStore& store)
    : options_(std::move(options)), store_(store), resource_(options_.issuer + options_.mcp_path) {
  if (options_.users) options_.users->set([this](const std::string& principal) { return user(principal); });
  // Replicas forget a revoked grant at once (and everything, when events may have been lost).
  events_ = store_.subscribe([this](std::string_view topic, std::string_view body) {
    if (topic == kRevokedEvent) forget_grant(std::string(body));
    if (topic == store::StateStore::kResync) {
      std::lock_guard lock(cache_mutex_);
      cache_.clear();
      users_.clear();
    }
  });
}

OAuthServer::~OAuthServer() {
  if (options_.users) options_.users->set(nullptr);
}

std::string OAuthServer::metadata_path() const { return "/.well-known/oauth-protected-resource" + options_.mcp_path; }

std::string OAuthServer::challenge(std::string_view error) const {
  std::string c = "Bearer resource_metadata=\"" + options_.issuer + metadata_path() + "\"";
  if (!error.empty()) c += ", error=\"" + std::string(error) + "\"";
  return c;
}

// ---- Storage ------------------------------------------------------------------------------

std::optional<json> OAuthServer::load(const std::string& key) const {
  auto r = store_.get(kNs, key);
  if (!r || !r->has_value()) return std::nullopt;
  json j = json::parse(**r, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}
void OAuthServer::save(const std::string& key, const json& value) {
  if (auto st = store_.put(kNs, key, value.dump()); !st) spdlog::error("oauth: cannot store {}: {}", key.substr(0, key.find('/')), st.error());
}
void OAuthServer::erase(const std::string& key) { (void)store_.erase(kNs, key); }

// ---- Discovery ----------------------------------------------------------------------------

Answer OAuthServer::protected_resource_metadata() const {
  return json_answer(200, json{{"resource", resource_},
                               {"authorization_servers", json::array({options_.issuer})},
                               {"bearer_methods_supported", json::array({"header"})},
                               {"resource_name", "mcp-host"}});
}

Answer OAuthServer::authorization_server_metadata() const {
  const std::string& i = options_.issuer;
  return json_answer(200, json{{"issuer", i},
                               {"authorization_endpoint", i + "/authorize"},
                               {"token_endpoint", i + "/token"},
                               {"registration_endpoint", i + "/register"},
                               {"revocation_endpoint", i + "/revoke"},
                               {"response_types_supported", json::array({"code"})},
                               {"grant_types_supported", json::array({"authorization_code", "refresh_token"})},
                               {"code_challenge_methods_supported", json::array({"S256"})},
                               {"token_endpoint_auth_methods_supported", json::array({"none"})},
                               {"revocation_endpoint_auth_methods_supported", json::array({"none"})},
                               {"authorization_response_iss_parameter_supported", true}});
}

// ---- Registration (RFC 7591) --------------------------------------------------------------

Answer OAuthServer::register_client(std::string_view body) {
  const json m = json_text::parse(body).value_or(json());
  auto bad = [](const std::string& why) { return oauth_error(400, "invalid_client_metadata", why); };
  if (!m.is_object()) return bad("the body must be a JSON object");
  const json& uris = m.value("redirect_uris", json());
  if (!uris.is_array() || uris.empty() || uris.size() > 10) return bad("redirect_uris must be an array of 1 to 10 URIs");
  for (const auto& u : uris) {
    if (!u.is_string() || u.get_ref<const std::string&>().size() > 2000 || !allowed_redirect(u.get<std::string>())) {
      return json_answer(400, json{{"error", "invalid_redirect_uri"},
                                   {"error_description", "redirect URIs must be https, or http on a loopback address, without a fragment"}});
    }
  }
  for (const char* list : {"grant_types", "response_types"}) {
    if (!m.contains(list)) continue;
    if (!m[list].is_array()) return bad(std::string(list) + " must be an array");
    for (const auto& v : m[list]) {
      if (!v.is_string() || (v != "authorization_code" && v != "refresh_token" && v != "code")) {
        return bad(std::string(list) + ": only authorization_code, refresh_token and code are supported");
      }
    }
  }
  const json& name = m.value("client_name", json(""));
  if (!name.is_string() || name.get_ref<const std::string&>().size() > 200) return bad("client_name must be a string of at most 200 characters");
  if (m.contains("token_endpoint_auth_method") && m["token_endpoint_auth_method"] != "none") {
    return bad("only public clients (token_endpoint_auth_method \"none\", with PKCE) are supported");
  }
  const std::string id = "c-" + crypto::b64url(crypto::random_bytes(16));
  json client{{"client_id", id},
              {"client_id_issued_at", now_s()},
              {"client_name", name},
              {"redirect_uris", uris},
              {"grant_types", json::array({"authorization_code", "refresh_token"})},
              {"response_types", json::array({"code"})},
              {"token_endpoint_auth_method", "none"}};
  save("client/" + id, client);
  return json_answer(201, client);
}

// ---- Authorization ------------------------------------------------------------------------

Answer OAuthServer::error_page(int status, const std::string& message) const {
  Answer a;
  a.status = status;
  a.content_type = "text/html; charset=utf-8";
  a.body = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>mcp-host: cannot authorize</title>"
           "<main><h1>Cannot authorize</h1><p>" + html(message) + "</p></main></html>";
  a.headers = {{"Content-Security-Policy", "default-src 'none'"}, {"Cache-Control", "no-store"}};
  return a;
}

Answer OAuthServer::redirect_error(const std::string& redirect_uri, const std::string& state, const std::string& error,
                                   const std::string& description) const {
  Answer a;
  a.status = 302;
  std::string to = redirect_uri + (redirect_uri.find('?') == std::string::npos ? "?" : "&") + "error=" + url_encode(error) +
                   "&error_description=" + url_encode(description) + "&iss=" + url_encode(options_.issuer);
  if (!state.empty()) to += "&state=" + url_encode(state);
  a.headers = {{"Location", to}, {"Cache-Control", "no-store"}};
  return a;
}

// The form's hidden request parameters, in a fixed order. "pending" names the state of a
// second step (a choice), kept on this side.
constexpr const char* kRequestParams[] = {"response_type", "client_id", "redirect_uri", "code_challenge",
                                          "code_challenge_method", "state", "resource", "scope", "pending"};

std::string OAuthServer::csrf(const std::string& nonce, const Params& params) const {
  std::string data = "csrf\n" + nonce;
  for (const char* p : kRequestParams) {
    data += '\n';  // (appended apart: g++ 12 warns, wrongly, about "\n" + a temporary string)
    data += param_or(params, p);
  }
  return crypto::b64url(crypto::hmac_sha256(options_.signing_key, data));
}

std::optional<Answer> OAuthServer::check_request(const Params& q) const {
  // Client and redirect URI first: until both are known good, errors are shown here, never
  // sent to an unverified redirect (RFC 6749 §4.1.2.1).
  const std::string client_id = param_or(q, "client_id");
  const auto client = client_id.empty() ? std::nullopt : load("client/" + client_id);
  if (!client) return error_page(400, "Unknown client. Register the client first (its client_id is not known here).");
  const std::string redirect = param_or(q, "redirect_uri");
  const auto& uris = (*client)["redirect_uris"];
  if (std::none_of(uris.begin(), uris.end(), [&](const json& u) { return redirect_matches(u.get<std::string>(), redirect); })) {
    return error_page(400, "The redirect URI is not registered for this client.");
  }
  const std::string state = param_or(q, "state");
  if (param_or(q, "response_type") != "code") return redirect_error(redirect, state, "unsupported_response_type", "only response_type=code");
  const std::string challenge = param_or(q, "code_challenge");
  if (challenge.empty() || param_or(q, "code_challenge_method") != "S256") {
    return redirect_error(redirect, state, "invalid_request", "PKCE with code_challenge_method=S256 is required");
  }
  if (challenge.size() != 43) return redirect_error(redirect, state, "invalid_request", "code_challenge must be a base64url SHA-256");
  if (const std::string r = param_or(q, "resource"); !r.empty() && r != resource_) {
    return redirect_error(redirect, state, "invalid_target", "this server issues tokens only for " + resource_);
  }
  return std::nullopt;
}

Answer OAuthServer::form_page(int status, const Params& q, const std::string& nonce, const FormView& view) const {
  const auto client = load("client/" + param_or(q, "client_id"));
  const std::string client_name = client ? client->value("client_name", std::string()) : std::string();
  Params hidden = q;
  hidden.erase("pending");
  if (!view.pending.empty()) hidden.emplace("pending", view.pending);
  std::string page =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">"
      "<title>Connect to mcp-host</title><style>body{font:16px system-ui,sans-serif;max-width:34rem;margin:2rem auto;"
      "padding:0 1rem}label{display:block;margin-top:1rem;font-weight:600}input,select{width:100%;padding:.5rem;font:inherit}"
      ".help{color:#555;font-size:.9rem;margin:.25rem 0}.error{color:#a00;border-left:4px solid #a00;padding-left:.75rem}"
      "button{margin-top:1.5rem;padding:.6rem 1.2rem;font:inherit}</style>"
      "</head><body><main><h1>Connect " + html(client_name.empty() ? "an MCP client" : client_name) + "</h1>";
  page += view.pending.empty()
              ? "<p>Enter your own credentials. They are stored encrypted, used only for your calls, and never shown again.</p>"
              : "<p>Your credentials were accepted. One more choice:</p>";
  if (!view.error.empty()) page += "<p class=\"error\" role=\"alert\" id=\"error\">" + html(view.error) + "</p>";
  page += "<form method=\"post\" action=\"/authorize\">";
  for (const char* p : kRequestParams) {
    page += "<input type=\"hidden\" name=\"" + std::string(p) + "\" value=\"" + html(param_or(hidden, p)) + "\">";
  }
  page += "<input type=\"hidden\" name=\"csrf\" value=\"" + csrf(nonce, hidden) + "\">";
  const std::string described = view.error.empty() ? "" : " aria-describedby=\"error\"";
  auto label = [&](const std::string& id, const std::string& text, const std::string& help) {
    page += "<label for=\"" + id + "\">" + html(text) + "</label>";
    if (!help.empty()) page += "<p class=\"help\" id=\"" + id + "-help\">" + html(help) + "</p>";
    return help.empty() ? described : " aria-describedby=\"" + id + "-help\"";
  };
  if (view.pending.empty()) {
    const auto fields = form_fields();
    for (size_t i = 0; i < fields.size(); ++i) {
      const auto& f = fields[i];
      const std::string id = "f" + std::to_string(i), name = f.instance + "." + f.key;
      const std::string aria = label(id, f.label, f.help);
      auto refill = view.refill.find(name);
      page += "<input id=\"" + id + "\" name=\"" + html(name) + "\" type=\"" + (f.secret ? "password" : "text") + "\"" +
              (refill != view.refill.end() && !f.secret ? " value=\"" + html(refill->second) + "\"" : "") +
              " autocomplete=\"off\" required" + aria + ">";
    }
  }
  for (size_t i = 0; i < view.choose.size(); ++i) {
    const json& c = view.choose[i];
    const std::string id = "c" + std::to_string(i);
    const std::string aria = label(id, c.value("label", ""), c.value("help", ""));
    page += "<select id=\"" + id + "\" name=\"" + html(c.value("instance", "") + "." + c.value("key", "")) + "\" required" + aria + ">";
    for (const auto& o : c["options"]) {
      page += "<option value=\"" + html(o["value"].get<std::string>()) + "\">" + html(o["label"].get<std::string>()) + "</option>";
    }
    page += "</select>";
  }
  page += "<button type=\"submit\">Connect</button></form></main></body></html>";
  Answer a;
  a.status = status;
  a.content_type = "text/html; charset=utf-8";
  a.body = std::move(page);
  // Browsers apply form-action to the redirect that follows the post too, so the client's
  // (registered, checked) redirect origin is allowed as well, if it is a plain origin.
  std::string form_action = "'self'";
  if (const Uri r = split(param_or(q, "redirect_uri")); r.ok) {
    const std::string origin = r.scheme + "://" + r.host + (r.port.empty() ? "" : ":" + r.port);
    if (std::all_of(origin.begin(), origin.end(), [](unsigned char c) { return std::isalnum(c) || std::strchr(":/.-[]", c); })) {
      form_action += " " + origin;
    }
  }
  a.headers = {{"Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action " + form_action + "; frame-ancestors 'none'"},
               {"X-Frame-Options", "DENY"},
               {"Referrer-Policy", "no-referrer"},
               {"Cache-Control", "no-store"},
               {"Set-Cookie", "mcph_csrf=" + nonce + "; Path=/authorize; HttpOnly; SameSite=Strict; Max-Age=900"}};
  return a;
}

Answer OAuthServer::authorize_form(const Params& q) {
  if (auto bad = check_request(q)) return *bad;
  Params first = q;
  first.erase("pending");
  return form_page(200, first, crypto::b64url(crypto::random_bytes(16)), {});
}

namespace {

std::string trim(std::string s) {
  const auto space = [](unsigned char c) { return std::isspace(c); };
  s.erase(s.begin(), std::find_if_not(s.begin(), s.end(), space));
  s.erase(std::find_if_not(s.rbegin(), s.rend(), space).base(), s.end());
  return s;
}

// A plugin's message may quote what it was given; the form never shows a value entered.
std::string scrub(std::string message, const json& credentials) {
  for (const auto& [instance, keys] : credentials.items()) {
    for (const auto& [k, v] : keys.items()) {
      const std::string& value = v.get_ref<const std::string&>();
      for (size_t pos; value.size() >= 4 && (pos = message.find(value)) != std::string::npos;) message.replace(pos, value.size(), "[REDACTED]");
    }
  }
  return message;
}

}  // namespace

Answer OAuthServer::authorize_submit(const Params& form, std::string_view cookie_header, const std::string& address) {
  // The same checks as the form, then CSRF: the cookie's nonce and the form's token must
  // belong together and to these very parameters.
  if (auto bad = check_request(form)) return *bad;
  std::string nonce;
  for (std::string_view rest = cookie_header; !rest.empty();) {
    const size_t semi = rest.find(';');
    std::string_view c = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    while (!c.empty() && c.front() == ' ') c.remove_prefix(1);
    if (c.starts_with("mcph_csrf=")) nonce = std::string(c.substr(10));
  }
  if (nonce.empty() || !crypto::equal(param_or(form, "csrf"), csrf(nonce, form))) {
    return error_page(403, "This form expired or did not come from this server. Go back to your MCP client and connect again.");
  }
  const std::string client_id = param_or(form, "client_id");
  const std::string failure_key = client_id + "\n" + address;
  if (const int wait = failure_wait(failure_key); wait > 0) {
    Answer a = error_page(429, "Too many attempts with credentials that were not accepted. Please wait " +
                                   std::to_string((wait + 59) / 60) + " minute(s), then connect again from your MCP client.");
    a.headers.emplace_back("Retry-After", std::to_string(wait));
    return a;
  }
  Params first = form;
  first.erase("pending");

  // What the user entered: the fields of the first step, or a choice on top of them.
  json creds = json::object();
  std::string principal;
  FormView view;
  if (const std::string id = param_or(form, "pending"); !id.empty()) {
    // Kept in the store (any replica may get the next step), its credentials sealed, and
    // used once.
    const std::string key = token_key("pending", id);
    Pending p;
    if (auto row = load(key)) {
      erase(key);
      auto plain = open_secret(row->value("credentials", std::string()), key);
      p.credentials = plain ? json::parse(*plain, nullptr, false) : json();
      p.principal = row->value("principal", std::string());
      p.choose = row->value("choose", json::array());
      p.client_id = row->value("client_id", std::string());
      p.expires = row->value("expires", int64_t{0});
    }
    if (p.client_id != client_id || p.expires < now_s() || !p.credentials.is_object()) {
      view.error = "This form expired. Please enter your credentials again.";
      return form_page(400, first, nonce, view);
    }
    creds = std::move(p.credentials);
    principal = std::move(p.principal);
    for (const auto& c : p.choose) {
      const std::string picked = param_or(form, c["instance"].get<std::string>() + "." + c["key"].get<std::string>());
      const auto& opts = c["options"];
      if (std::none_of(opts.begin(), opts.end(), [&](const json& o) { return o["value"] == picked; })) {
        view.error = "Please choose one of the offered values for \"" + c["label"].get<std::string>() + "\".";
        return form_page(400, first, nonce, view);
      }
      creds[c["instance"].get<std::string>()][c["key"].get<std::string>()] = picked;
    }
  } else {
    for (const auto& f : form_fields()) {
      const std::string name = f.instance + "." + f.key;
      const std::string value = trim(param_or(form, name));
      if (!f.secret) view.refill[name] = value;
      if (value.empty() || value.size() > 4096) {
        view.error = value.empty() ? "Please fill in \"" + f.label + "\"." : "\"" + f.label + "\" is too long.";
        return form_page(400, first, nonce, view);
      }
      creds[f.instance][f.key] = value;
    }
    // The principal: stable for the same credentials, opaque, and useless to an attacker.
    // From what the user typed only, so a later choice (a default team) keeps it.
    if (!creds.empty()) principal = "u-" + crypto::hex(crypto::hmac_sha256(options_.signing_key, "principal\n" + creds.dump())).substr(0, 32);
  }

  // Each plugin checks its part before anything is issued.
  json choose = json::array();
  if (options_.check) {
    for (const auto& [instance, keys] : creds.items()) {
      std::map<std::string, std::string> entered;
      for (const auto& [k, v] : keys.items()) entered[k] = v.get<std::string>();
      CheckOutcome out = options_.check(instance, entered);
      if (out.kind == CheckOutcome::Kind::kRefused || out.kind == CheckOutcome::Kind::kUnavailable) {
        const bool refused = out.kind == CheckOutcome::Kind::kRefused;
        if (refused) failed(failure_key);
        if (options_.on_sign_in) options_.on_sign_in(refused ? "refused" : "unavailable");
        spdlog::info("oauth: credentials for {} {} for client {}", instance, refused ? "refused" : "not checked (upstream unavailable)", client_id);
        view.error = scrub(out.message, creds);
        return form_page(refused ? 400 : 503, first, nonce, view);
      }
      for (const auto& [k, v] : out.values) creds[instance][k] = v;
      for (auto c : out.choose) {
        c["instance"] = instance;
        choose.push_back(std::move(c));
      }
    }
  }
  if (!choose.empty()) {
    FormView step;
    step.pending = crypto::b64url(crypto::random_bytes(16));
    step.choose = choose;
    const std::string key = token_key("pending", step.pending);
    save(key, json{{"credentials", seal_secret(creds.dump(), key)},
                   {"principal", principal},
                   {"choose", choose},
                   {"client_id", client_id},
                   {"expires", now_s() + 600}});
    return form_page(200, first, nonce, step);
  }
  return finish(form, creds, principal);
}

// Everything checked: the grant, its credentials sealed, and a code for the client.
Answer OAuthServer::finish(const Params& form, const json& creds, const std::string& user_principal) {
  const std::string grant_id = "g-" + crypto::b64url(crypto::random_bytes(16));
  // Without any credentials to tell users apart, each grant is its own user.
  const std::string principal = !user_principal.empty()
                                    ? user_principal
                                    : "u-" + crypto::hex(crypto::hmac_sha256(options_.signing_key, "grant\n" + grant_id)).substr(0, 32);
  const std::string client_id = param_or(form, "client_id");
  save("grant/" + grant_id, json{{"client_id", client_id},
                                 {"principal", principal},
                                 {"created", now_s()},
                                 {"credentials", seal_secret(creds.dump(), grant_id)}});
  save(user_key(principal), json{{"grant", grant_id}});  // their newest grant, for user()
  const std::string code = new_token();
  save(token_key("code", code), json{{"grant", grant_id},
                                     {"client_id", client_id},
                                     {"redirect_uri", param_or(form, "redirect_uri")},
                                     {"challenge", param_or(form, "code_challenge")},
                                     {"expires", now_s() + options_.code_ttl.count()}});
  if (options_.on_sign_in) options_.on_sign_in("granted");
  const std::string redirect = param_or(form, "redirect_uri");
  std::string to = redirect + (redirect.find('?') == std::string::npos ? "?" : "&") + "code=" + url_encode(code) +
                   "&iss=" + url_encode(options_.issuer);
  if (const std::string state = param_or(form, "state"); !state.empty()) to += "&state=" + url_encode(state);
  Answer a;
  a.status = 302;
  a.headers = {{"Location", to}, {"Cache-Control", "no-store"}, {"Set-Cookie", "mcph_csrf=; Path=/authorize; Max-Age=0"}};
  spdlog::info("oauth: client {} authorized (grant {})", client_id, grant_id);
  return a;
}

int OAuthServer::failure_wait(const std::string& key) {
  const int64_t now = now_s();
  std::lock_guard lock(posts_mutex_);
  auto it = failures_.find(key);
  if (it == failures_.end()) return 0;
  std::erase_if(it->second, [&](int64_t t) { return t <= now - kFailureWindow.count(); });
  if (it->second.size() < static_cast<size_t>(kFailures)) return 0;
  return static_cast<int>(it->second.front() + kFailureWindow.count() - now);
}

void OAuthServer::failed(const std::string& key) {
  std::lock_guard lock(posts_mutex_);
  if (failures_.size() > 10000) failures_.clear();  // bounded memory; a reset only forgives
  failures_[key].push_back(now_s());
}

// ---- Tokens -------------------------------------------------------------------------------

json OAuthServer::issue_tokens(const std::string& grant_id, json& grant) {
  const std::string access = new_token(), refresh = new_refresh_token(grant_id);
  // The grant lists its live tokens; expired and rotated ones leave the list and the store
  // here, so a user who refreshes every hour does not grow the store.
  json live = json::array();
  for (const auto& t : grant.value("tokens", json::array())) {
    const std::string key = t.get<std::string>();
    auto row = load(key);
    if (row && row->value("expires", int64_t{0}) >= now_s() && !row->value("used", false)) {
      live.push_back(key);
    } else if (row) {
      erase(key);
    }
  }
  grant["tokens"] = std::move(live);
  // Each token names its audience (RFC 8707): this server's MCP URL, and no other.
  save(token_key("access", access), json{{"grant", grant_id}, {"aud", resource_}, {"expires", now_s() + options_.access_ttl.count()}});
  save(token_key("refresh", refresh), json{{"grant", grant_id}, {"aud", resource_}, {"expires", now_s() + options_.refresh_ttl.count()}});
  // The grant keeps the hashes of its live tokens, so revoking it can find them.
  grant["tokens"].push_back(token_key("access", access));
  grant["tokens"].push_back(token_key("refresh", refresh));
  save("grant/" + grant_id, grant);
  return json{{"access_token", access}, {"token_type", "Bearer"}, {"expires_in", options_.access_ttl.count()}, {"refresh_token", refresh}};
}

void OAuthServer::drop_grant(const std::string& grant_id) {
  if (auto grant = load("grant/" + grant_id)) {
    for (const auto& t : grant->value("tokens", json::array())) erase(t.get<std::string>());
  }
  erase("grant/" + grant_id);
  forget_grant(grant_id);
  if (auto st = store_.publish(kRevokedEvent, grant_id); !st) {
    spdlog::warn("oauth: other replicas keep grant {} for up to {} s: {}", grant_id, kRecheck.count(), st.error());
  }
}

void OAuthServer::forget_grant(const std::string& grant_id) {
  std::lock_guard lock(cache_mutex_);
  std::erase_if(cache_, [&](const auto& kv) { return kv.second.caller->grant == grant_id; });
  std::erase_if(users_, [&](const auto& kv) { return kv.second.caller->grant == grant_id; });
}

Answer OAuthServer::token(const Params& form) {
  const std::string type = param_or(form, "grant_type");
  const std::string client_id = param_or(form, "client_id");
  if (client_id.empty() || !load("client/" + client_id)) return oauth_error(401, "invalid_client", "unknown client_id");
  if (const std::string r = param_or(form, "resource"); !r.empty() && r != resource_) {
    return oauth_error(400, "invalid_target", "this server issues tokens only for " + resource_);
  }
  if (type == "authorization_code") {
    const std::string key = token_key("code", param_or(form, "code"));
    auto code = load(key);
    if (!code) return oauth_error(400, "invalid_grant", "unknown or expired code");
    if (code->value("used", false)) {  // a code used twice: someone has it who should not
      drop_grant((*code)["grant"]);
      erase(key);
      return oauth_error(400, "invalid_grant", "the code was already used; its tokens are revoked");
    }
    (*code)["used"] = true;
    save(key, *code);
    if ((*code)["expires"].get<int64_t>() < now_s()) return oauth_error(400, "invalid_grant", "the code has expired");
    if ((*code)["client_id"] != client_id) return oauth_error(400, "invalid_grant", "the code was issued to another client");
    if ((*code)["redirect_uri"] != param_or(form, "redirect_uri")) return oauth_error(400, "invalid_grant", "redirect_uri differs from the authorization request");
    const std::string verifier = param_or(form, "code_verifier");
    const bool verifier_ok = verifier.size() >= 43 && verifier.size() <= 128 &&
                             std::all_of(verifier.begin(), verifier.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~'; });
    if (!verifier_ok || !crypto::equal(crypto::b64url(crypto::sha256(verifier)), (*code)["challenge"].get<std::string>())) {
      return oauth_error(400, "invalid_grant", "code_verifier does not match the code_challenge");
    }
    const std::string grant_id = (*code)["grant"];
    auto grant = load("grant/" + grant_id);
    if (!grant) return oauth_error(400, "invalid_grant", "the grant was revoked");
    return json_answer(200, issue_tokens(grant_id, *grant));
  }
  if (type == "refresh_token") {
    const std::string presented = param_or(form, "refresh_token");
    const std::string key = token_key("refresh", presented);
    auto raw = store_.get(kNs, key);
    auto refresh = raw && raw->has_value() ? std::optional<json>(json::parse(**raw, nullptr, false)) : std::nullopt;
    if (!refresh || !refresh->is_object()) {
      // A rotated token comes back: its grant is compromised (RFC 9700 §4.14.2).
      const std::string named = grant_of_refresh_token(presented);
      if (auto grant = named.empty() ? std::nullopt : load("grant/" + named); grant && (*grant)["client_id"] == client_id) {
        spdlog::warn("oauth: a rotated refresh token came back for grant {}; revoking the grant", named);
        drop_grant(named);
        return oauth_error(400, "invalid_grant", "refresh token reuse detected; the grant is revoked, authorize again");
      }
      return oauth_error(400, "invalid_grant", "unknown, expired or revoked refresh token");
    }
    if (refresh->value("aud", resource_) != resource_) return oauth_error(400, "invalid_grant", "the refresh token was issued for another resource");
    const std::string grant_id = (*refresh)["grant"];
    auto grant = load("grant/" + grant_id);
    if (!grant || (*grant)["client_id"] != client_id) return oauth_error(400, "invalid_grant", "the refresh token belongs to another client");
    if (refresh->value("used", false)) {  // rotation (rows written before tokens named their grant)
      spdlog::warn("oauth: refresh token reused for grant {}; revoking the grant", grant_id);
      drop_grant(grant_id);
      return oauth_error(400, "invalid_grant", "refresh token reuse detected; the grant is revoked, authorize again");
    }
    if ((*refresh)["expires"].get<int64_t>() < now_s()) return oauth_error(400, "invalid_grant", "the refresh token has expired");
    // Rotated: the row goes. Of two refreshes racing with one token (two replicas), one wins.
    auto won = store_.put_if(kNs, key, **raw, std::nullopt);
    if (!won) return oauth_error(503, "temporarily_unavailable", "the store cannot be reached; try again");
    if (!*won) return oauth_error(400, "invalid_grant", "this refresh token was just used; use the newest one");
    return json_answer(200, issue_tokens(grant_id, *grant));
  }
  return oauth_error(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token");
}

Answer OAuthServer::revoke(const Params& form) {
  const std::string token = param_or(form, "token");
  for (const char* kind : {"access", "refresh"}) {
    if (auto t = load(token_key(kind, token))) drop_grant((*t)["grant"]);
  }
  return json_answer(200, json::object());  // RFC 7009: 200 whether or not the token was known
}

std::shared_ptr<const Caller> OAuthServer::authenticate(std::string_view authorization) {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() <= kScheme.size() || !std::equal(kScheme.begin(), kScheme.end(), authorization.begin(),
                                                             [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    return nullptr;
  }
  const std::string key = token_key("access", authorization.substr(kScheme.size()));
  const auto now = std::chrono::system_clock::now();
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      if (it->second.expires > now) return it->second.caller;
      cache_.erase(it);  // stale: read the store again below
    }
  }
  auto access = load(key);
  if (!access || (*access)["expires"].get<int64_t>() < now_s()) return nullptr;
  // A token minted for another resource (another issuer or path sharing this state) is not
  // for us, whoever minted it.
  if (access->value("aud", resource_) != resource_) return nullptr;
  const std::string grant_id = (*access)["grant"];
  auto grant = load("grant/" + grant_id);
  auto opened = grant ? open_grant(grant_id, *grant) : std::nullopt;
  if (!opened) return nullptr;
  auto caller = std::make_shared<const Caller>(std::move(*opened));
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() > 100000) cache_.clear();  // bounded: a cache, not a store
  // Read again after kRecheck, so a grant revoked by a process whose event did not reach
  // this one (`mcp-host auth revoke` beside a SQLite host) stops working here within that
  // time; replicas on PostgreSQL hear kRevokedEvent at once.
  const auto expires = std::chrono::system_clock::time_point(std::chrono::seconds((*access)["expires"].get<int64_t>()));
  cache_[key] = Cached{caller, std::min(expires, now + kRecheck)};
  return caller;
}

std::optional<Caller> OAuthServer::open_grant(const std::string& grant_id, const json& grant) const {
  auto plain = open_secret(grant.value("credentials", std::string()), grant_id);
  if (!plain) {
    spdlog::error("oauth: the credentials of grant {} cannot be decrypted (was encryption_key changed?)", grant_id);
    return std::nullopt;
  }
  Caller caller;
  caller.principal = grant.value("principal", std::string());
  caller.grant = grant_id;
  const json creds = json::parse(*plain, nullptr, false);
  if (!creds.is_object()) return std::nullopt;
  for (const auto& [instance, keys] : creds.items()) {
    for (const auto& [k, v] : keys.items()) {
      if (v.is_string()) caller.credentials[instance][k] = v.get<std::string>();
    }
  }
  return caller;
}

std::string OAuthServer::seal_secret(std::string_view plain, std::string_view aad) const {
  return crypto::b64url(options_.encryption_keys->seal(plain, aad));
}

std::optional<std::string> OAuthServer::open_secret(std::string_view sealed_b64, std::string_view aad) const {
  auto sealed = crypto::unb64url(sealed_b64);
  return sealed ? options_.encryption_keys->open(*sealed, aad) : std::nullopt;
}

Result<size_t> reseal_credentials(store::StateStore& store, const store::Keyring& from, const std::string& to) {
  std::vector<std::pair<std::string, json>> rows;  // read whole first: list() may not call back into the store
  for (const char* prefix : {"grant/", "pending/"}) {
    auto st = store.list(kNs, prefix, [&](std::string_view k, std::string_view v) {
      json j = json::parse(v, nullptr, false);
      if (j.is_object() && j.contains("credentials")) rows.emplace_back(std::string(k), std::move(j));
      return true;
    });
    if (!st) return Error{st.error()};
  }
  size_t n = 0;
  for (auto& [key, row] : rows) {
    // The AAD binds the credentials to their row: the grant id, or the pending row's key.
    const std::string aad = key.starts_with("grant/") ? key.substr(6) : key;
    auto sealed = crypto::unb64url(row.value("credentials", std::string()));
    auto plain = sealed ? from.open(*sealed, aad) : std::nullopt;
    if (!plain) continue;  // not ours to read (or already under `to`)
    row["credentials"] = crypto::b64url(crypto::seal(to, *plain, aad));
    if (auto st = store.put(kNs, key, row.dump()); !st) return Error{st.error()};
    ++n;
  }
  return n;
}

std::optional<Caller> OAuthServer::user(const std::string& principal) {
  const auto now = std::chrono::system_clock::now();
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = users_.find(principal); it != users_.end() && it->second.expires > now) return *it->second.caller;
  }
  // Any live grant of theirs will do: the newest (a user who signed in again may have
  // entered a new key). The index row names it; when it is missing (a grant made before the
  // index) or names a revoked grant, every grant is read and the index repaired.
  std::string best_id;
  json best;
  if (auto index = load(user_key(principal))) {
    best_id = index->value("grant", "");
    if (auto g = load("grant/" + best_id); g && g->value("principal", "") == principal) best = std::move(*g);
  }
  if (best.is_null()) {
    (void)store_.list(kNs, "grant/", [&](std::string_view key, std::string_view value) {
      json g = json::parse(value, nullptr, false);
      if (g.is_object() && g.value("principal", "") == principal && (best.is_null() || g.value("created", 0) >= best.value("created", 0))) {
        best_id = std::string(key.substr(6));
        best = std::move(g);
      }
      return true;
    });
    if (!best.is_null()) save(user_key(principal), json{{"grant", best_id}});
  }
  auto caller = best.is_null() ? std::nullopt : open_grant(best_id, best);
  std::lock_guard lock(cache_mutex_);
  if (!caller) {
    users_.erase(principal);
    return std::nullopt;
  }
  if (users_.size() > 10000) users_.clear();
  users_[principal] = Cached{std::make_shared<const Caller>(*caller), now + kRecheck};  // revoked elsewhere: noticed within kRecheck
  return caller;
}

CheckOutcome run_credential_check(const plugins::Instance& instance, const std::map<std::string, std::string>& entered) {
  CheckOutcome out;
  if (!instance.has_credential_check()) return out;
  plugins::Caller caller;
  caller.credentials[instance.name()] = entered;
  mcph_call call;
  call.caller = &caller;
  call.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  instance.check_credentials(call);
  if (call.is_error) {
    out.kind = call.error_status == MCPH_ERR_UNAVAILABLE || call.error_status == MCPH_ERR_CANCELLED ? CheckOutcome::Kind::kUnavailable
                                                                                                     : CheckOutcome::Kind::kRefused;
    out.message = call.error_text.empty() ? "These credentials were not accepted." : call.error_text;
    return out;
  }
  // The answer's shape is the plugin's promise (abi.h); anything else is the plugin's bug,
  // said once in the log and shown to the user as "cannot check".
  auto broken = [&](const std::string& why) {
    spdlog::error("[{}] credential check: {}", instance.name(), why);
    out.kind = CheckOutcome::Kind::kUnavailable;
    out.message = "The credentials could not be checked (a plugin error; see the host log).";
    return out;
  };
  const json r = json_text::built(std::move(call.result));
  auto text = [](const json& obj, const char* key) -> const std::string* {
    auto it = obj.is_object() ? obj.find(key) : obj.end();
    return obj.is_object() && it != obj.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
  };
  if (!r.is_object()) return broken("the result must be a JSON object");
  if (r.contains("values")) {
    if (!r["values"].is_object()) return broken("'values' must be an object of strings");
    for (const auto& [k, v] : r["values"].items()) {
      if (!v.is_string() || !plugins::valid_tool_name(k) || v.get_ref<const std::string&>().size() > 4096) {
        return broken("'values' must map keys ([A-Za-z0-9_.-]) to strings of at most 4096 bytes");
      }
      out.values[k] = v.get<std::string>();
    }
  }
  if (r.contains("choose")) {
    if (!r["choose"].is_array()) return broken("'choose' must be an array");
    for (const auto& c : r["choose"]) {
      const json opts = c.is_object() ? c.value("options", json()) : json();
      const std::string* key = text(c, "key");
      if (!key || !plugins::valid_tool_name(*key) || !text(c, "label") || !opts.is_array() || opts.empty() || opts.size() > 100 ||
          std::any_of(opts.begin(), opts.end(), [&](const json& o) { return !text(o, "value") || !text(o, "label"); })) {
        return broken("each 'choose' entry needs a key, a label and 1-100 options {value, label} (strings)");
      }
      const std::string* help = text(c, "help");
      out.choose.push_back(json{{"key", *key}, {"label", *text(c, "label")}, {"help", help ? *help : ""}, {"options", opts}});
    }
    if (!out.choose.empty()) out.kind = CheckOutcome::Kind::kChoose;
  }
  return out;
}

bool OAuthServer::admit(const std::string& address) {
  const int64_t now = now_s();
  std::lock_guard lock(posts_mutex_);
  if (posts_.size() > 10000) posts_.clear();  // bounded memory; a reset only forgives
  auto& times = posts_[address];
  std::erase_if(times, [&](int64_t t) { return t <= now - 60; });
  if (times.size() >= static_cast<size_t>(kPostsPerMinute)) return false;
  times.push_back(now);
  return true;
}

Answer OAuthServer::too_many() {
  Answer a = oauth_error(429, "slow_down", "too many attempts from this address; wait a minute");
  a.headers.emplace_back("Retry-After", "60");
  return a;
}

std::vector<json> OAuthServer::grants() {
  std::vector<std::pair<std::string, json>> found;  // collected first: no store calls inside list()
  (void)store_.list(kNs, "grant/", [&](std::string_view key, std::string_view value) {
    json g = json::parse(value, nullptr, false);
    if (g.is_object()) found.emplace_back(std::string(key.substr(6)), std::move(g));
    return true;
  });
  std::vector<json> out;
  for (auto& [id, g] : found) {
    auto client = load("client/" + g.value("client_id", std::string()));
    out.push_back(json{{"grant", id}, {"principal", g["principal"]}, {"client_id", g["client_id"]},
                       {"client_name", client ? client->value("client_name", "") : ""}, {"created", g["created"]}});
  }
  return out;
}

size_t OAuthServer::purge() {
  const int64_t now = now_s();
  size_t n = 0;
  // Codes stay a while after they expire, so a second use is still seen as one.
  const std::pair<const char*, int64_t> kinds[] = {{"code/", 600}, {"access/", 0}, {"refresh/", 0}, {"pending/", 0}};
  for (const auto& [prefix, grace] : kinds) {
    const int64_t g = grace;
    n += store::erase_where(store_, kNs, prefix, [&](std::string_view value) {
      const json row = json::parse(value, nullptr, false);
      return !row.is_object() || row.value("expires", int64_t{0}) + g < now;
    });
  }
  return n;
}

bool OAuthServer::revoke_grant(const std::string& id) {
  if (!load("grant/" + id)) return false;
  drop_grant(id);
  return true;
}

}  // namespace mcph::auth
