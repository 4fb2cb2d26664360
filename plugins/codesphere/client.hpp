// codesphere plugin: HTTP to the Codesphere public API, always through the host
// (Call::http), so a cancelled call also aborts its request.
//
// What every request gets (reference §2.1): `Authorization: Bearer <token>`, JSON in and
// out, the settings' request timeout. Failures become ToolErrors whose text is the upstream
// problem {status,title,detail,traceId} (§2.2), with the token redacted.
//
// Retries:
//  - GET is idempotent: network errors, timeouts and 500/502/503/504 are retried with
//    exponential backoff (retry_backoff_ms × 2^attempt, at most max_retries times).
//  - 429 on any method waits for Retry-After (seconds or an HTTP-date; capped by
//    max_retry_after_ms) and then repeats the request: a rate-limited request was refused,
//    not carried out, so repeating it is not "blind".
//  - Other methods are never repeated after an error: a POST that timed out may have
//    started a pipeline or created a workspace, and doing it twice is worse than reporting.
//  - Redirects (the API may send a client to another data center, §2.1) are followed up to
//    5 times, keeping the token only for the configured API origin and https hosts under
//    codesphere.com; anywhere else the request stops with an error rather than leak it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "mcp_plugin/sdk.hpp"
#include "settings.hpp"

namespace codesphere {

namespace sdk = mcph::sdk;

// The call was cancelled (by the client, its deadline, or host shutdown).
class CancelledError : public sdk::ToolError {
 public:
  CancelledError() : sdk::ToolError("cancelled", MCPH_ERR_CANCELLED) {}
};

// An upstream failure. transient: worth polling again later (no answer, 5xx, 429).
class UpstreamError : public sdk::ToolError {
 public:
  UpstreamError(const std::string& message, mcph_status status, int http_status, bool transient)
      : sdk::ToolError(message, status), http_status_(http_status), transient_(transient) {}
  int http_status() const { return http_status_; }  // 0 when no answer arrived
  bool transient() const { return transient_; }

 private:
  int http_status_;
  bool transient_;
};

struct Response {
  int code = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  json body;  // null for an empty body

  std::optional<std::string> header(std::string_view name) const;
};

// How a log stream ended.
struct StreamEnd {
  enum class Reason { Closed, StoppedByReader, Deadline, Dropped };
  Reason reason = Reason::Closed;
};

class Client {
 public:
  Client(const sdk::Call& call, const Settings& settings, std::string token)
      : call_(call), settings_(settings), token_(std::move(token)) {}

  // GET base_url + path, retried as described above. Throws UpstreamError/CancelledError.
  Response get(const std::string& path);
  // Any other method, sent once (429 excepted). `body` null = no body.
  Response send(const std::string& method, const std::string& path, const json& body = json());

  // GET an SSE stream: each chunk of a 200 answer goes to on_chunk (false stops reading)
  // until the stream closes or `budget` passes. Transient failures before the first byte are
  // retried like get(); an error status throws UpstreamError with the body's problem.
  StreamEnd stream(const std::string& path, std::chrono::milliseconds budget,
                   const std::function<bool(std::string_view)>& on_chunk);

  // Sleeps in slices of at most 50 ms; throws CancelledError as soon as the call is cancelled.
  void sleep(std::chrono::milliseconds d) const;
  void check_cancelled() const;

  // Upstream text made safe to show: the token (and token-like strings) redacted.
  std::string safe(std::string text) const { return redact(std::move(text), token_); }
  const Settings& settings() const { return settings_; }

 private:
  struct Hooks;  // streaming callbacks for one attempt
  Response exchange(const std::string& method, const std::string& path, const json& body);
  sdk::HttpResponse follow(std::string method, const std::string& path, const std::string& body,
                           std::chrono::milliseconds timeout, Hooks* hooks);
  sdk::HttpRequest build(const std::string& method, const std::string& url, const std::string& body,
                         std::chrono::milliseconds timeout, bool with_token, Hooks* hooks) const;
  std::chrono::milliseconds backoff(int attempt) const;
  std::chrono::milliseconds rate_limit_wait(const sdk::HttpResponse& r, int attempt, const std::string& what) const;

  const sdk::Call& call_;
  const Settings& settings_;
  std::string token_;
};

// --- Pure helpers (unit-tested) ------------------------------------------------------------

// The absolute URL a Location header points to, resolved against the URL it came from
// (absolute URLs and absolute paths; relative paths are resolved against the directory).
std::optional<std::string> resolve_location(std::string_view current_url, std::string_view location);

// Whether the token may go to `url`: the base URL's own origin, or https on codesphere.com
// or one of its subdomains (the data-center hosts of the cloud).
bool may_send_token(std::string_view base_url, std::string_view url);

// "/workspaces/7/pipeline/run" with each segment's characters outside [A-Za-z0-9._~-]
// percent-encoded (the old server pasted arguments into paths unencoded, §1.3).
std::string path_segment(std::string_view segment);

}  // namespace codesphere
