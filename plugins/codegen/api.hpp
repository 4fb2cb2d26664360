// codegen plugin: the Codegen REST client (codegen.md §B), over the host's outbound HTTP.
// One base URL for every request (§D.9), real endpoints only (§B.2), bearer auth, error
// bodies of both shapes (§B.5), the token redacted from every text, connect and request
// timeouts, and retries with backoff only where a retry cannot duplicate work (§D.10).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "budget.hpp"
#include "mcp_plugin/sdk.hpp"
#include "util.hpp"

namespace codegen {

struct ApiError {
  int http = 0;              // HTTP status, 0 when no response arrived
  mcph_status code = MCPH_ERR_UNAVAILABLE;
  std::string error;         // short: "Codegen API 404: Agent run not found."
  std::string details;       // longer: request, status, what to do
  bool retryable = false;    // 429, 5xx, network: trying again later may work
  bool maybe_applied = false;  // no response: a POST may or may not have taken effect
  bool budget = false;       // refused locally by the request budget (nothing was sent)
  int64_t retry_at = 0;      // steady ms before which a retry is pointless (0: none)
};

struct ApiResult {
  json body;  // the parsed JSON body on success
  std::optional<ApiError> err;
  bool ok() const { return !err.has_value(); }
};

// The text of an error body: `message`, then a string `detail`, then FastAPI's array
// `detail` ("loc: msg; ..."), then the raw text (shortened). §B.5 says real bodies may use
// either shape.
std::string error_body_text(std::string_view body);
// Retry-After in milliseconds (seconds form only; the HTTP-date form is ignored), or -1.
int64_t retry_after_ms(const std::optional<std::string>& header);
// The ApiError for an HTTP error response (status >= 300).
ApiError http_error(int status, std::string_view body, const std::optional<std::string>& retry_after,
                    const std::string& what);

struct Auth {
  std::string token;
  int64_t org_id = 0;
};

class Api {
 public:
  Api(const mcph::sdk::Host& host, std::string base_url, OrgBudget& budget, Redactor& redactor,
      uint32_t timeout_ms)
      : host_(host), base_(std::move(base_url)), budget_(budget), redactor_(redactor), timeout_ms_(timeout_ms) {}

  // GETs. With a call: waits for the budget (up to a few seconds, cancellable) and retries
  // 429/5xx/network failures with backoff. Without one (the poller): one attempt that never
  // waits; a budget refusal comes back as an error with budget=true and retry_at set, so
  // the single poller thread is never blocked.
  // `link`: for background work (no call), the trace context of the call it serves
  // (Call::trace_context()): the request's span links to that call's.
  ApiResult get_run(const Auth& auth, int64_t run_id, const mcph::sdk::Call* call, std::string_view link = {});
  ApiResult list_runs(const Auth& auth, int64_t skip, int64_t limit, const mcph::sdk::Call* call);

  // POSTs: one attempt, never retried here. A retried create could start two runs (and
  // create is limited to 10 per minute, §D.10); the orchestrator retries resume itself,
  // with a durable intent that makes the retry safe (orchestrator.hpp).
  ApiResult create_run(const Auth& auth, const json& body, const mcph::sdk::Call* call);
  ApiResult resume_run(const Auth& auth, int64_t run_id, const std::string& prompt, const mcph::sdk::Call* call,
                       std::string_view link = {});

  const std::string& base_url() const { return base_; }

 private:
  ApiResult get(const Auth& auth, const std::string& path, const mcph::sdk::Call* call, std::string_view link = {});
  ApiResult once(const Auth& auth, const std::string& method, const std::string& path, const std::string& body,
                 const mcph::sdk::Call* call, std::string_view link = {});
  std::string clean(std::string text, const Auth& auth) const;

  const mcph::sdk::Host& host_;
  std::string base_;
  OrgBudget& budget_;
  Redactor& redactor_;
  uint32_t timeout_ms_;
};

}  // namespace codegen
