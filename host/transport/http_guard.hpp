// The checks every HTTP request passes before the protocol sees it: Host and Origin
// (DNS-rebinding protection, mcp-spec §4.3) and, when configured, a bearer token compared
// in constant time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace mcph::transport {

struct Denial {
  int status = 0;              // 0: allowed; else 401 or 403
  std::string message;         // safe to show the client
  std::string www_authenticate;  // for 401
};

class HttpGuard {
 public:
  explicit HttpGuard(const config::HttpConfig& config);

  // Host must be a loopback name (localhost, 127.0.0.1, [::1]) or in allowed_hosts; an
  // Origin, when present, must be http(s) on a loopback name or in allowed_origins.
  Denial check_origin(std::string_view host, const std::string* origin) const;
  // When bearer tokens are configured, `authorization` must be "Bearer <one of them>".
  Denial check_token(const std::string* authorization) const;
  bool requires_token() const { return !token_hashes_.empty(); }

 private:
  std::vector<std::string> hosts_;    // lower case, without port or brackets
  std::vector<std::string> origins_;  // lower case, exact
  std::vector<std::string> token_hashes_;  // SHA-256 of each token
};

// The effective auth mode: as configured, or bearer when tokens are set, else none.
std::string auth_mode(const config::HttpAuthConfig& auth);

// "name:port" / "[v6]:port" / "name" -> the lower-cased name without brackets or port;
// "" when the text is not a well-formed host (e.g. "localhost:80@evil.example").
std::string host_name(std::string_view host_header);

}  // namespace mcph::transport
