// codesphere plugin: the upstream error shape and how failures read (pure; unit-tested).
//
// Codesphere answers every documented 4xx with {status, title, detail?, traceId}
// (reference §2.2); log streams deliver the same object as a `problem` event (§2.7).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mcp_plugin/abi.h"
#include "util.hpp"

namespace codesphere {

struct Problem {
  int status = 0;
  std::string title;
  std::string detail;
  std::string trace_id;
};

// The problem in an error body, if it is a JSON object with any of status/title/detail/
// traceId. Bodies of other shapes (PY reads message|error|detail, §2.2) give their first
// message-like string as `detail`.
std::optional<Problem> parse_problem(std::string_view body);

// "404 (Workspace is not found.): detail (trace ID: t-1)" — the problem's own words, in the
// order CSGO prints them (§2.2). Empty parts are left out.
std::string describe_problem(const Problem& p);

// The message for a non-2xx answer to `method path`, e.g.
//   Codesphere API error 404 (Workspace is not found.) on GET /workspaces/9 (trace ID: t-1)
// 401 and 403 first say what to do about the token. A body that is not a problem is quoted
// (one line, cut short). Everything is redacted with `secret`.
std::string http_error_message(std::string_view method, std::string_view path, int status, std::string_view body,
                               std::string_view secret);

// The host status a tool error gets for an upstream HTTP status.
mcph_status status_for_http(int status);

// Statuses worth retrying for an idempotent request: the gateway/overload family CSGO
// retries (500, 502, 503, 504; §2.2). 429 is handled on its own (Retry-After).
bool is_retryable_status(int status);

// The error every tool answers when no token is configured.
inline constexpr std::string_view kMissingToken =
    "No Codesphere API token is configured: set CODESPHERE_API_TOKEN (or credentials.api_token in the codesphere "
    "plugin's entry of the mcp-host config). Create a token in Codesphere under your avatar → User Settings → "
    "API Keys.";

}  // namespace codesphere
