#include "errors.hpp"

namespace codesphere {

namespace {

std::string string_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return {};
}

}  // namespace

std::optional<Problem> parse_problem(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  Problem p;
  if (auto it = j.find("status"); it != j.end()) {
    if (it->is_number_integer()) p.status = it->get<int>();
    else if (auto id = coerce_id(*it)) p.status = static_cast<int>(*id);
  }
  p.title = string_field(j, "title");
  p.detail = string_field(j, "detail");
  p.trace_id = string_field(j, "traceId");
  if (p.detail.empty()) {
    // Not the documented shape: take what other APIs and proxies use (PY's list, §2.2).
    for (const char* key : {"message", "error", "reason"}) {
      if (std::string v = string_field(j, key); !v.empty()) {
        p.detail = v;
        break;
      }
    }
  }
  if (p.status == 0 && p.title.empty() && p.detail.empty() && p.trace_id.empty()) return std::nullopt;
  return p;
}

std::string describe_problem(const Problem& p) {
  std::string out;
  if (p.status != 0) out += std::to_string(p.status);
  if (!p.title.empty()) out += (out.empty() ? "" : " ") + ("(" + one_line(p.title, 200) + ")");
  if (!p.detail.empty() && p.detail != p.title) out += (out.empty() ? "" : ": ") + one_line(p.detail, 500);
  if (!p.trace_id.empty()) out += (out.empty() ? "" : " ") + ("(trace ID: " + one_line(p.trace_id, 100) + ")");
  return out;
}

std::string http_error_message(std::string_view method, std::string_view path, int status, std::string_view body,
                               std::string_view secret) {
  std::string advice;
  if (status == 401) {
    advice = "Codesphere rejected the API token (401): it is invalid or expired. Set a valid CODESPHERE_API_TOKEN "
             "(or credentials.api_token). ";
  } else if (status == 403) {
    advice = "The Codesphere API token lacks the rights for this (403): use a token of a user who may access "
             "this team or workspace. ";
  } else if (status == 429) {
    advice = "Codesphere is rate-limiting requests (429); try again later. ";
  }
  std::string where = std::string(method) + " " + std::string(path);
  std::string text = advice + "Codesphere API error " + std::to_string(status);
  if (auto p = parse_problem(body)) {
    // "... 404 (Workspace is not found.) on GET /x: detail (trace ID: t)"
    if (!p->title.empty()) text += " (" + one_line(p->title, 200) + ")";
    text += " on " + where;
    if (!p->detail.empty() && p->detail != p->title) text += ": " + one_line(p->detail, 500);
    if (!p->trace_id.empty()) text += " (trace ID: " + one_line(p->trace_id, 100) + ")";
  } else {
    text += " on " + where;
    if (std::string b = one_line(body); !b.empty()) text += ": " + b;
  }
  return redact(std::move(text), secret);
}

mcph_status status_for_http(int status) {
  switch (status) {
    case 400:
    case 422: return MCPH_ERR_INVALID_ARGUMENT;
    case 401: return MCPH_ERR_UNAUTHENTICATED;
    case 403: return MCPH_ERR_PERMISSION_DENIED;
    case 404: return MCPH_ERR_NOT_FOUND;
    case 409: return MCPH_ERR_FAILED_PRECONDITION;
    case 429: return MCPH_ERR_RESOURCE_EXHAUSTED;
    default: return status >= 500 ? MCPH_ERR_UNAVAILABLE : MCPH_ERR_INTERNAL;
  }
}

bool is_retryable_status(int status) { return status == 500 || status == 502 || status == 503 || status == 504; }

}  // namespace codesphere
