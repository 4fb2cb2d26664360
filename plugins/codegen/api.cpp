#include "api.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>

namespace codegen {

namespace {

constexpr int64_t kMaxCallWaitMs = 10000;   // a tool call waits this long for the budget at most
constexpr int64_t kMaxRetryDelayMs = 5000;  // and never sleeps longer than this between retries
constexpr int kCallAttempts = 3;

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// Sleeps until `until` (steady ms) in short slices; false if the call was cancelled.
bool sleep_until(int64_t until, const mcph::sdk::Call* call) {
  for (;;) {
    if (call != nullptr && call->cancelled()) return false;
    const int64_t left = until - steady_ms();
    if (left <= 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(left, 10)));
  }
}

ApiError cancelled_error() {
  ApiError e;
  e.code = MCPH_ERR_CANCELLED;
  e.error = "cancelled";
  e.details = "the call was cancelled before the Codegen API answered";
  return e;
}

}  // namespace

std::string error_body_text(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (auto m = j.find("message"); m != j.end() && m->is_string() && !m->get<std::string>().empty()) {
      return truncate_utf8(m->get<std::string>(), 1000);
    }
    if (auto d = j.find("detail"); d != j.end()) {
      if (d->is_string()) return truncate_utf8(d->get<std::string>(), 1000);
      if (d->is_array()) {
        // FastAPI's HTTPValidationError: [{"loc": [...], "msg": "...", "type": "..."}]
        std::string out;
        for (const auto& item : *d) {
          if (!item.is_object()) continue;
          std::string loc;
          for (const auto& part : item.value("loc", json::array())) {
            loc += (loc.empty() ? "" : ".") + (part.is_string() ? part.get<std::string>() : dump(part));
          }
          out += (out.empty() ? "" : "; ") + (loc.empty() ? "" : loc + ": ") + item.value("msg", std::string("invalid"));
        }
        if (!out.empty()) return truncate_utf8(out, 1000);
      }
    }
  }
  return truncate_utf8(trim(body), 300);
}

int64_t retry_after_ms(const std::optional<std::string>& header) {
  if (!header) return -1;
  auto secs = positive_int(std::string_view(trim(*header)));
  if (trim(*header) == "0") return 0;
  if (!secs) return -1;
  return std::min<int64_t>(*secs, 3600) * 1000;
}

ApiError http_error(int status, std::string_view body, const std::optional<std::string>& retry_after,
                    const std::string& what) {
  ApiError e;
  e.http = status;
  const std::string text = error_body_text(body);
  e.error = "Codegen API " + std::to_string(status) + (text.empty() ? "" : ": " + text);
  std::string hint;
  switch (status) {
    case 400:
    case 422: e.code = MCPH_ERR_INVALID_ARGUMENT; break;
    case 401:
      e.code = MCPH_ERR_UNAUTHENTICATED;
      hint = "; check the API token (codegen_config get shows whether one is set and where from)";
      break;
    case 402:
      e.code = MCPH_ERR_FAILED_PRECONDITION;
      hint = "; the organisation's plan allows no more agent runs";
      break;
    case 403:
      e.code = MCPH_ERR_PERMISSION_DENIED;
      hint = "; check the token and org_id (codegen_config get)";
      break;
    case 404: e.code = MCPH_ERR_NOT_FOUND; break;
    case 408: e.code = MCPH_ERR_UNAVAILABLE; e.retryable = true; break;
    case 409: e.code = MCPH_ERR_FAILED_PRECONDITION; break;
    case 429:
      e.code = MCPH_ERR_RESOURCE_EXHAUSTED;
      e.retryable = true;
      hint = "; rate limited by the Codegen API, try again later";
      break;
    default:
      if (status >= 500) {
        e.code = MCPH_ERR_UNAVAILABLE;
        e.retryable = true;
      } else {
        e.code = MCPH_ERR_INVALID_ARGUMENT;
      }
  }
  e.details = what + " answered HTTP " + std::to_string(status) + (text.empty() ? "" : " (" + text + ")") + hint;
  if (const int64_t ra = retry_after_ms(retry_after); ra >= 0) e.retry_at = steady_ms() + ra;
  return e;
}

std::string Api::clean(std::string text, const Auth& auth) const {
  if (auth.token.size() >= 4) {
    for (size_t pos = text.find(auth.token); pos != std::string::npos; pos = text.find(auth.token, pos + 10)) {
      text.replace(pos, auth.token.size(), "[REDACTED]");
    }
  }
  return redactor_.apply(std::move(text));
}

ApiResult Api::once(const Auth& auth, const std::string& method, const std::string& path, const std::string& body,
                    const mcph::sdk::Call* call, std::string_view link) {
  mcph::sdk::HttpRequest req(method, base_ + path);
  req.trace_link = link;
  req.headers = {{"Authorization", "Bearer " + auth.token},
                 {"Accept", "application/json"},
                 {"User-Agent", "mcp-host-codegen/1.0"}};
  if (!body.empty()) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body;
  }
  req.timeout_ms = timeout_ms_;
  req.connect_timeout_ms = std::min<uint32_t>(timeout_ms_, 10000);
  // Never the query or headers in texts: only the method and path (ids, no secrets).
  const std::string what = method + " " + path.substr(0, path.find('?'));
  mcph::sdk::HttpResponse res = call != nullptr ? call->http(req) : host_.http(req);

  ApiResult out;
  if (res.status != MCPH_OK) {
    if (res.status == MCPH_ERR_CANCELLED) {
      out.err = cancelled_error();
      out.err->maybe_applied = method != "GET";
      return out;
    }
    ApiError e;
    e.code = res.status == MCPH_ERR_DEADLINE_EXCEEDED ? MCPH_ERR_DEADLINE_EXCEEDED : MCPH_ERR_UNAVAILABLE;
    e.error = clean("Codegen API unreachable: " + (res.error.empty() ? std::string("no response") : res.error), auth);
    e.details = clean(what + " got no response (" + res.error + "); the base URL is " + base_, auth);
    if (method != "GET") {
      // Without an answer we cannot know whether the API acted (§D.10: never retry blindly).
      e.details += "; the request may still have taken effect: check codegen_list before trying again";
    }
    e.retryable = true;
    e.maybe_applied = method != "GET";
    out.err = std::move(e);
    return out;
  }
  if (res.code >= 200 && res.code < 300) {
    out.body = json::parse(res.body, nullptr, false);
    if (out.body.is_discarded() || !out.body.is_object()) {
      ApiError e;
      e.http = res.code;
      e.code = MCPH_ERR_UNAVAILABLE;
      e.error = "Codegen API returned a body that is not a JSON object";
      e.details = clean(what + " answered HTTP " + std::to_string(res.code) + ": " + truncate_utf8(res.body, 200), auth);
      e.retryable = method == "GET";
      out.body = json();
      out.err = std::move(e);
    }
    return out;
  }
  ApiError e = http_error(res.code, res.body, res.header("Retry-After"), what);
  e.error = clean(std::move(e.error), auth);
  e.details = clean(std::move(e.details), auth);
  if (res.code == 429 && method == "GET") {
    // The GET budget is org-wide upstream: hold every GET to this org back for a while.
    budget_.cool_down(auth.org_id, e.retry_at > 0 ? e.retry_at : steady_ms() + 2000);
  }
  out.err = std::move(e);
  return out;
}

ApiResult Api::get(const Auth& auth, const std::string& path, const mcph::sdk::Call* call, std::string_view link) {
  ApiResult last;
  for (int attempt = 0; attempt < (call != nullptr ? kCallAttempts : 1); ++attempt) {
    // The budget first: every GET of this plugin instance counts against the org's limit.
    for (;;) {
      int64_t retry_at = 0;
      const int64_t now = steady_ms();
      if (budget_.try_acquire(auth.org_id, now, call == nullptr, &retry_at)) break;
      if (call == nullptr || retry_at - now > kMaxCallWaitMs) {
        ApiError e;
        e.code = MCPH_ERR_RESOURCE_EXHAUSTED;
        e.budget = true;
        e.retryable = true;
        e.retry_at = retry_at;
        e.error = "request budget for organisation " + std::to_string(auth.org_id) + " is used up";
        e.details = "this plugin keeps every organisation under the Codegen API's limit of 60 GETs per 30 s; try "
                    "again in " + std::to_string((retry_at - now + 999) / 1000) + " s";
        last.err = std::move(e);
        return last;
      }
      if (!sleep_until(retry_at, call)) {
        last.err = cancelled_error();
        return last;
      }
    }
    last = once(auth, "GET", path, "", call, link);
    if (last.ok() || !last.err->retryable || call == nullptr || attempt + 1 == kCallAttempts) return last;
    // Backoff: Retry-After when given, else 250 ms, 500 ms, ...
    const int64_t now = steady_ms();
    const int64_t until = last.err->retry_at > 0 ? last.err->retry_at : now + (250LL << attempt);
    if (until - now > kMaxRetryDelayMs) return last;  // too long to keep a user waiting
    host_.debug("retrying " + path.substr(0, path.find('?')) + " after " + last.err->error);
    if (!sleep_until(until, call)) {
      last.err = cancelled_error();
      return last;
    }
  }
  return last;
}

ApiResult Api::get_run(const Auth& auth, int64_t run_id, const mcph::sdk::Call* call, std::string_view link) {
  return get(auth, "/v1/organizations/" + std::to_string(auth.org_id) + "/agent/run/" + std::to_string(run_id), call, link);
}

ApiResult Api::list_runs(const Auth& auth, int64_t skip, int64_t limit, const mcph::sdk::Call* call) {
  return get(auth,
             "/v1/organizations/" + std::to_string(auth.org_id) + "/agent/runs?skip=" + std::to_string(skip) +
                 "&limit=" + std::to_string(limit),
             call);
}

ApiResult Api::create_run(const Auth& auth, const json& body, const mcph::sdk::Call* call) {
  return once(auth, "POST", "/v1/organizations/" + std::to_string(auth.org_id) + "/agent/run", dump(body), call);
}

ApiResult Api::resume_run(const Auth& auth, int64_t run_id, const std::string& prompt, const mcph::sdk::Call* call,
                          std::string_view link) {
  // ResumeAgentRunInput (§B.3); the old server's /agent/run/{id}/resume does not exist (§C).
  const json body{{"agent_run_id", run_id}, {"prompt", prompt}, {"images", json::array()}};
  return once(auth, "POST", "/v1/organizations/" + std::to_string(auth.org_id) + "/agent/run/resume", dump(body), call, link);
}

}  // namespace codegen
