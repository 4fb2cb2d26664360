// Reading an outbound request's URL: the client's (http_client.cpp) and telemetry's, outside
// the HTTP stack so that telemetry needs no module to name a request's server.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "services/http_client.hpp"

namespace mcph::services {

namespace detail {

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// RFC 9110 section 5.6.2: token characters.
bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace detail

namespace {

using detail::ascii_lower;

bool is_reg_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_';
}

Result<int> parse_port(std::string_view text, int default_port) {
  // RFC 3986 section 3.2.3 allows an empty port after the colon: it means the default.
  if (text.empty()) return default_port;
  if (text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Error{"invalid port in URL"};
  }
  const int port = std::stoi(std::string(text));
  if (port < 1 || port > 65535) return Error{"port out of range in URL"};
  return port;
}

// Splits "host[:port]" / "[v6]:port" into target.host and target.port.
Status parse_authority(std::string_view authority, int default_port, HttpTarget& target) {
  if (authority.find('@') != std::string_view::npos) {
    // Credentials in URLs end up in logs; plugins must send an Authorization header.
    return Error{"user info in URLs is not supported"};
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error{"unterminated IPv6 address in URL"};
    target.host = std::string(authority.substr(1, close - 1));
    in6_addr addr{};
    if (inet_pton(AF_INET6, target.host.c_str(), &addr) != 1) {
      return Error{"invalid IPv6 address in URL"};
    }
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return Error{"invalid characters after IPv6 address"};
    if (!rest.empty()) port_text = rest.substr(1);
  } else {
    const size_t colon = authority.find(':');
    target.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    if (target.host.empty()) return Error{"URL has no host"};
    if (!std::all_of(target.host.begin(), target.host.end(), is_reg_name_char)) {
      return Error{"invalid host in URL (IPv6 addresses need brackets)"};
    }
  }
  auto port = parse_port(port_text, default_port);
  if (!port) return Error{port.error()};
  target.port = *port;
  return Ok{};
}

// Keeps the path and query as the caller encoded them (we turn cpp-httplib's own encoding
// off, see make_connection) and only percent-encodes bytes >= 0x80. Spaces and control
// characters are refused: written raw they would break or smuggle the request line.
Result<std::string> parse_path(std::string_view rest) {
  rest = rest.substr(0, rest.find('#'));  // the fragment is never sent (RFC 9110 4.2.4)
  std::string path;
  if (rest.empty() || rest.front() != '/') path = "/";
  for (char c : rest) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7F) return Error{"URL contains a space or control character"};
    if (byte < 0x80) {
      path += c;
      continue;
    }
    static constexpr char kHex[] = "0123456789ABCDEF";
    path += '%';
    path += kHex[byte >> 4];
    path += kHex[byte & 0xF];
  }
  return path;
}

}  // namespace

Result<HttpTarget> parse_url(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return Error{"URL must be absolute (http:// or https://)"};
  const std::string scheme = ascii_lower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") {
    return Error{"unsupported URL scheme (only http and https)"};
  }
  HttpTarget target;
  target.https = scheme == "https";
  const int default_port = target.https ? 443 : 80;

  const std::string_view rest = url.substr(sep + 3);
  const size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  if (auto s = parse_authority(rest.substr(0, authority_end), default_port, target); !s) {
    return Error{s.error()};
  }
  auto path = parse_path(rest.substr(authority_end));
  if (!path) return Error{path.error()};
  target.path = std::move(*path);

  const bool ipv6 = target.host.find(':') != std::string::npos;
  const std::string host = ipv6 ? "[" + target.host + "]" : target.host;
  target.host_port = host + ":" + std::to_string(target.port);
  target.authority = target.port == default_port ? host : target.host_port;
  return target;
}

}  // namespace mcph::services
