#include "transport/http_guard.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "services/crypto.hpp"

namespace mcph::transport {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool is_loopback_name(const std::string& name) {
  return name == "localhost" || name == "127.0.0.1" || name == "::1";
}

}  // namespace

std::string host_name(std::string_view host) {
  // RFC 9110 Host: uri-host [ ":" port ]. Anything else ("localhost:80@evil.example", a path,
  // spaces) is malformed and names no host: "" matches nothing allowed.
  auto is_port = [](std::string_view p) {
    return !p.empty() && p.size() <= 5 && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  std::string_view name = host, port;
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return "";
    name = host.substr(1, close - 1);
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && !(rest.front() == ':' && is_port(rest.substr(1)))) return "";
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; })) {
      return "";
    }
    return lower(name);
  }
  const size_t colon = name.find(':');
  // More than one colon without brackets is a bare IPv6 address.
  if (colon != std::string_view::npos && name.find(':', colon + 1) == std::string_view::npos) {
    port = name.substr(colon + 1);
    name = name.substr(0, colon);
    if (!is_port(port)) return "";
  }
  const bool v6 = name.find(':') != std::string_view::npos;
  if (name.empty() || !std::all_of(name.begin(), name.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || (v6 && c == ':');
      })) {
    return "";
  }
  return lower(name);
}

HttpGuard::HttpGuard(const config::HttpConfig& config) {
  for (const auto& h : config.allowed_hosts) hosts_.push_back(host_name(h));
  for (const auto& o : config.allowed_origins) origins_.push_back(lower(o));
  for (const auto& t : config.auth.bearer_tokens) {
    if (!t.empty()) token_hashes_.push_back(crypto::sha256(t));
  }
}

Denial HttpGuard::check_origin(std::string_view host, const std::string* origin) const {
  const std::string name = host_name(host);
  if (name.empty()) return {403, "Forbidden: the Host header is malformed", {}};
  if (!is_loopback_name(name) && std::find(hosts_.begin(), hosts_.end(), name) == hosts_.end()) {
    return {403, "Forbidden: Host '" + name + "' is not allowed (add it to server.http.allowed_hosts)", {}};
  }
  if (origin == nullptr) return {};  // not a browser
  const std::string o = lower(*origin);
  if (std::find(origins_.begin(), origins_.end(), o) != origins_.end()) return {};
  for (const char* scheme : {"http://", "https://"}) {
    if (o.starts_with(scheme) && is_loopback_name(host_name(std::string_view(o).substr(std::strlen(scheme))))) return {};
  }
  return {403, "Forbidden: Origin is not allowed (add it to server.http.allowed_origins)", {}};
}

std::string auth_mode(const config::HttpAuthConfig& auth) {
  if (!auth.mode.empty()) return auth.mode;
  return auth.bearer_tokens.empty() ? "none" : "bearer";
}

Denial HttpGuard::check_token(const std::string* authorization) const {
  if (token_hashes_.empty()) return {};
  constexpr std::string_view kScheme = "bearer ";
  if (authorization == nullptr || authorization->size() <= kScheme.size() ||
      lower(std::string_view(*authorization).substr(0, kScheme.size())) != kScheme) {
    return {401, "Unauthorized: send Authorization: Bearer <token>", "Bearer realm=\"mcp-host\""};
  }
  // Hash first so the comparison time depends on neither the token's length nor content;
  // compare against every token without stopping early.
  const std::string presented = crypto::sha256(std::string_view(*authorization).substr(kScheme.size()));
  bool match = false;
  for (const auto& h : token_hashes_) match |= crypto::equal(h, presented);
  if (match) return {};
  return {401, "Unauthorized: invalid bearer token", "Bearer realm=\"mcp-host\", error=\"invalid_token\""};
}

}  // namespace mcph::transport
