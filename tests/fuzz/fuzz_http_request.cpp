// libFuzzer: the HTTP request path before any handler: framing of the head and body
// (Content-Length, chunked, pipelined requests, limits), the plain requests the listener
// reads itself (parse_plain_request), and the Host/Origin guard. The first byte picks where
// the bytes are split into two reads: framing must not depend on how the bytes arrive.
#include <string_view>

#include "transport/http_framer.hpp"
#include "transport/http_guard.hpp"

using mcph::transport::RequestFramer;

namespace {

RequestFramer::Outcome frame_in_two(std::string_view bytes, size_t split) {
  RequestFramer f({4096, 32, 65536});
  auto o = f.feed(bytes.substr(0, split));
  if (o.state != RequestFramer::State::kNeedMore) return o;
  return f.feed(bytes);
}

// A request the listener would serve without cpp-httplib: every part it hands on lies within
// the request, the body ends it, and nothing it hands on holds a line end.
void check_plain(std::string_view request) {
  const auto plain = mcph::transport::parse_plain_request(request);
  if (!plain) return;
  auto inside = [&](std::string_view part) {
    return part.empty() || (part.data() >= request.data() && part.data() + part.size() <= request.data() + request.size());
  };
  auto one_line = [](std::string_view part) { return part.find_first_of("\r\n") == std::string_view::npos; };
  if (plain->method.empty() || !plain->target.starts_with('/') || !inside(plain->method) || !inside(plain->target)) __builtin_trap();
  if (!request.ends_with(plain->body) || !inside(plain->body)) __builtin_trap();
  for (const auto& [name, value] : plain->headers) {
    if (name.empty() || !inside(name) || !inside(value) || !one_line(name) || !one_line(value)) __builtin_trap();
  }
}

void check_guard(std::string_view bytes) {
  static const mcph::config::HttpConfig config = [] {
    mcph::config::HttpConfig c;
    c.allowed_hosts = {"mcp.example.com"};
    c.allowed_origins = {"https://app.example.com"};
    c.auth.bearer_tokens = {"tok-123456"};
    return c;
  }();
  static const mcph::transport::HttpGuard guard(config);
  const std::string text(bytes.substr(0, 256));
  (void)guard.check_origin(text, &text);
  (void)guard.check_token(&text);
  const std::string name = mcph::transport::host_name(text);
  if (name.find_first_of("@/ ?#") != std::string::npos) __builtin_trap();  // never a malformed host
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = bytes.empty() ? 0 : data[0] % (bytes.size() + 1);
  RequestFramer whole({4096, 32, 65536});
  const auto a = whole.feed(bytes);
  const auto b = frame_in_two(bytes, split);
  if (a.state != b.state || a.status != b.status || (a.state == RequestFramer::State::kComplete && a.length != b.length)) {
    __builtin_trap();  // the same bytes framed two ways
  }
  if (a.state == RequestFramer::State::kComplete && a.length > bytes.size()) __builtin_trap();
  // Pipelined: frame what follows the first request too.
  if (a.state == RequestFramer::State::kComplete && a.length < bytes.size()) {
    RequestFramer next({4096, 32, 65536});
    (void)next.feed(bytes.substr(a.length));
  }
  if (a.state == RequestFramer::State::kComplete) check_plain(bytes.substr(0, a.length));
  check_plain(bytes);
  check_guard(bytes);
  return 0;
}
