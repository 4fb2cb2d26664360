#include "client.hpp"

#include <algorithm>
#include <cctype>
#include <thread>

namespace codesphere {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kMaxRedirects = 5;
constexpr std::size_t kMaxErrorBody = 64 * 1024;  // of an error answer on a stream
constexpr milliseconds kMaxBackoff{10000};
constexpr milliseconds kSleepSlice{50};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_redirect(int code) { return code == 301 || code == 302 || code == 303 || code == 307 || code == 308; }

struct UrlParts {
  std::string scheme, host, port, path;  // host lower-cased; port "" when default
};

std::optional<UrlParts> split_url(std::string_view url) {
  UrlParts p;
  auto colon = url.find("://");
  if (colon == std::string_view::npos) return std::nullopt;
  p.scheme = std::string(url.substr(0, colon));
  std::transform(p.scheme.begin(), p.scheme.end(), p.scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  if (p.scheme != "http" && p.scheme != "https") return std::nullopt;
  std::string_view rest = url.substr(colon + 3);
  const auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  p.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // userinfo: never ours
  const auto port_colon = authority.rfind(':');
  if (port_colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    p.port = std::string(authority.substr(port_colon + 1));
    authority = authority.substr(0, port_colon);
  }
  p.host = std::string(authority);
  std::transform(p.host.begin(), p.host.end(), p.host.begin(), [](unsigned char c) { return std::tolower(c); });
  if ((p.scheme == "http" && p.port == "80") || (p.scheme == "https" && p.port == "443")) p.port.clear();
  if (p.host.empty()) return std::nullopt;
  return p;
}

std::string origin(const UrlParts& p) { return p.scheme + "://" + p.host + (p.port.empty() ? "" : ":" + p.port); }

}  // namespace

// --- Pure helpers ---------------------------------------------------------------------------

std::optional<std::string> resolve_location(std::string_view current_url, std::string_view location) {
  if (location.empty()) return std::nullopt;
  if (location.find("://") != std::string_view::npos) {
    return split_url(location) ? std::optional(std::string(location)) : std::nullopt;
  }
  auto cur = split_url(current_url);
  if (!cur) return std::nullopt;
  if (location.rfind("//", 0) == 0) return cur->scheme + ":" + std::string(location);
  if (location.front() == '/') return origin(*cur) + std::string(location);
  std::string dir = cur->path.substr(0, cur->path.find_first_of("?#"));
  dir = dir.substr(0, dir.rfind('/') + 1);
  return origin(*cur) + dir + std::string(location);
}

bool may_send_token(std::string_view base_url, std::string_view url) {
  auto base = split_url(base_url);
  auto target = split_url(url);
  if (!base || !target) return false;
  if (origin(*base) == origin(*target)) return true;
  constexpr std::string_view kCloud = "codesphere.com";
  const std::string& h = target->host;
  const bool cloud = h == kCloud || (h.size() > kCloud.size() + 1 && h.compare(h.size() - kCloud.size(), kCloud.size(), kCloud) == 0 &&
                                     h[h.size() - kCloud.size() - 1] == '.');
  return cloud && target->scheme == "https" && target->port.empty();
}

std::string path_segment(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '~' || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::optional<std::string> Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

// --- Client ---------------------------------------------------------------------------------

struct Client::Hooks {
  std::function<bool(std::string_view)> on_chunk;
  int code = 0;
  bool delivered = false;   // a byte of a 200 body reached on_chunk
  bool stopped = false;     // on_chunk returned false
  std::string error_body;   // the body of a non-200 answer (capped)
};

void Client::check_cancelled() const {
  if (call_.cancelled()) throw CancelledError();
}

void Client::sleep(milliseconds d) const {
  const auto until = Clock::now() + d;
  for (;;) {
    check_cancelled();
    const auto left = until - Clock::now();
    if (left <= Clock::duration::zero()) return;
    std::this_thread::sleep_for(std::min<Clock::duration>(kSleepSlice, left));
  }
}

milliseconds Client::backoff(int attempt) const {
  milliseconds d = settings_.retry_backoff;
  for (int i = 0; i < attempt && d < kMaxBackoff; ++i) d *= 2;
  return std::min(d, kMaxBackoff);
}

milliseconds Client::rate_limit_wait(const sdk::HttpResponse& r, int attempt, const std::string& what) const {
  const auto value = r.header("Retry-After");
  const auto date = r.header("Date");
  std::optional<milliseconds> wait;
  if (value) wait = parse_retry_after(*value, date ? std::optional<std::string_view>(*date) : std::nullopt, now_ms());
  const milliseconds d = wait.value_or(backoff(attempt));
  if (d > settings_.max_retry_after) {
    throw UpstreamError("Codesphere is rate-limiting requests (429) on " + what + " and asks to wait " +
                            format_duration(d) + ", longer than max_retry_after_ms (" +
                            format_duration(settings_.max_retry_after) + "); try again later.",
                        MCPH_ERR_RESOURCE_EXHAUSTED, 429, true);
  }
  return d;
}

sdk::HttpRequest Client::build(const std::string& method, const std::string& url, const std::string& body,
                               milliseconds timeout, bool with_token, Hooks* hooks) const {
  sdk::HttpRequest req(method, url);
  if (with_token) req.headers.emplace_back("Authorization", "Bearer " + token_);
  req.headers.emplace_back("Accept", hooks ? "text/event-stream" : "application/json");
  req.headers.emplace_back("User-Agent", "mcp-host-codesphere/1.0");
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  req.body = body;
  req.timeout_ms = static_cast<uint32_t>(std::max<milliseconds::rep>(1, timeout.count()));
  if (hooks) {
    hooks->code = 0;
    hooks->error_body.clear();
    req.on_head = [hooks](int code, const std::vector<std::pair<std::string, std::string>>&) {
      hooks->code = code;
      return true;
    };
    req.on_body = [hooks](std::string_view chunk) {
      if (hooks->code == 200) {
        hooks->delivered = hooks->delivered || !chunk.empty();
        if (hooks->on_chunk(chunk)) return true;
        hooks->stopped = true;
        return false;
      }
      if (is_redirect(hooks->code)) return false;  // the Location header is all we need
      hooks->error_body.append(chunk.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, hooks->error_body.size())));
      return hooks->error_body.size() < kMaxErrorBody;
    };
  }
  return req;
}

sdk::HttpResponse Client::follow(std::string method, const std::string& path, const std::string& body,
                                 milliseconds timeout, Hooks* hooks) {
  std::string url = settings_.base_url + path;
  std::string payload = body;
  for (int hop = 0;; ++hop) {
    check_cancelled();
    sdk::HttpResponse r = call_.http(build(method, url, payload, timeout, true, hooks));
    if (r.status != MCPH_OK || !is_redirect(r.code)) return r;
    const auto location = r.header("Location");
    const auto next = location ? resolve_location(url, *location) : std::nullopt;
    if (!next || hop + 1 > kMaxRedirects) {
      throw UpstreamError("Codesphere answered " + method + " " + path + " with a redirect (" + std::to_string(r.code) +
                              ") that cannot be followed" + (next ? " (too many redirects)" : ""),
                          MCPH_ERR_UNAVAILABLE, r.code, false);
    }
    if (!may_send_token(settings_.base_url, *next)) {
      const auto host = split_url(*next);
      throw UpstreamError("Codesphere redirected " + method + " " + path + " to another host (" +
                              (host ? host->host : std::string("?")) +
                              "); the API token is not sent there. Check settings.base_url.",
                          MCPH_ERR_FAILED_PRECONDITION, r.code, false);
    }
    if (r.code == 303) {
      method = "GET";
      payload.clear();
    }
    url = *next;
  }
}

Response Client::get(const std::string& path) { return exchange("GET", path, json()); }

Response Client::send(const std::string& method, const std::string& path, const json& body) {
  return exchange(method, path, body);
}

Response Client::exchange(const std::string& method, const std::string& path, const json& body) {
  const bool idempotent = method == "GET";
  const std::string what = method + " " + path;
  const std::string payload = body.is_null() ? std::string() : body.dump();
  for (int attempt = 0;; ++attempt) {
    const bool may_retry = attempt < settings_.max_retries;
    sdk::HttpResponse r = follow(method, path, payload, settings_.request_timeout, nullptr);
    if (r.status == MCPH_ERR_CANCELLED) throw CancelledError();
    if (r.status != MCPH_OK) {
      // No answer: refused, dropped, or too slow.
      if (idempotent && may_retry) {
        sleep(backoff(attempt));
        continue;
      }
      const bool timeout = r.status == MCPH_ERR_DEADLINE_EXCEEDED;
      std::string text = "Could not reach Codesphere for " + what + ": " +
                         (r.error.empty() ? std::string(timeout ? "timed out" : "no answer") : r.error);
      text += idempotent ? " (after " + std::to_string(attempt + 1) + " attempts)"
                         : ". The request may or may not have been carried out; check before repeating it.";
      throw UpstreamError(safe(text), timeout ? MCPH_ERR_DEADLINE_EXCEEDED : MCPH_ERR_UNAVAILABLE, 0, true);
    }
    if (r.code == 429 && may_retry) {
      sleep(rate_limit_wait(r, attempt, what));
      continue;
    }
    if (idempotent && is_retryable_status(r.code) && may_retry) {
      sleep(backoff(attempt));
      continue;
    }
    if (r.code < 200 || r.code >= 300) {
      std::string text = http_error_message(method, path, r.code, r.body, token_);
      if (!idempotent && r.code >= 500) {
        text += ". The request may or may not have been carried out; check before repeating it.";
      }
      throw UpstreamError(text, status_for_http(r.code), r.code, r.code >= 500 || r.code == 429);
    }
    Response out;
    out.code = r.code;
    out.headers = std::move(r.headers);
    if (r.body.find_first_not_of(" \t\r\n") == std::string::npos) return out;  // 200/204 without a body
    out.body = json::parse(r.body, nullptr, false);
    if (out.body.is_discarded()) {
      // Not retried even for GET: a broken body is rarely transient, and the text says so.
      throw UpstreamError(safe("Codesphere answered " + what + " with a body that is not valid JSON: " + one_line(r.body, 200)),
                          MCPH_ERR_INTERNAL, r.code, false);
    }
    return out;
  }
}

StreamEnd Client::stream(const std::string& path, milliseconds budget,
                         const std::function<bool(std::string_view)>& on_chunk) {
  const std::string what = "GET " + path;
  const auto deadline = Clock::now() + budget;
  Hooks hooks;
  hooks.on_chunk = on_chunk;
  for (int attempt = 0;; ++attempt) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left <= milliseconds(0)) return StreamEnd{StreamEnd::Reason::Deadline};
    const bool may_retry = attempt < settings_.max_retries && !hooks.delivered;
    // The host's deadline for this attempt is its own start + `left`, never earlier than
    // attempt_start + left (our `deadline` can be up to 1 ms later: `left` is rounded down).
    const auto attempt_start = Clock::now();
    sdk::HttpResponse r = follow("GET", path, "", left, &hooks);
    if (r.status == MCPH_ERR_CANCELLED) throw CancelledError();
    if (hooks.code == 200 || r.code == 200) {
      if (hooks.stopped) return StreamEnd{StreamEnd::Reason::StoppedByReader};
      if (r.status == MCPH_ERR_DEADLINE_EXCEEDED) return StreamEnd{StreamEnd::Reason::Deadline};
      if (r.status != MCPH_OK) {
        // The stream broke. What arrived is still worth showing; before the first byte it
        // is a plain network failure and is retried.
        if (hooks.delivered || !may_retry) return StreamEnd{StreamEnd::Reason::Dropped};
        sleep(backoff(attempt));
        continue;
      }
      // The host reports a body without Content-Length that its own deadline or a cancel
      // cut short as a normal end (the socket shutdown reads as EOF), so check both here.
      check_cancelled();
      if (Clock::now() >= attempt_start + left) return StreamEnd{StreamEnd::Reason::Deadline};
      return StreamEnd{StreamEnd::Reason::Closed};
    }
    if (r.status != MCPH_OK) {
      if (r.status == MCPH_ERR_DEADLINE_EXCEEDED) {
        throw UpstreamError("Codesphere did not answer " + what + " within " + format_duration(budget),
                            MCPH_ERR_DEADLINE_EXCEEDED, 0, true);
      }
      if (may_retry) {
        sleep(backoff(attempt));
        continue;
      }
      throw UpstreamError(safe("Could not reach Codesphere for " + what + ": " + r.error), MCPH_ERR_UNAVAILABLE, 0, true);
    }
    const int code = r.code ? r.code : hooks.code;
    if (code == 429 && may_retry) {
      sleep(rate_limit_wait(r, attempt, what));
      continue;
    }
    if (is_retryable_status(code) && may_retry) {
      sleep(backoff(attempt));
      continue;
    }
    const std::string& body = hooks.error_body.empty() ? r.body : hooks.error_body;
    throw UpstreamError(http_error_message("GET", path, code, body, token_), status_for_http(code), code,
                        code >= 500 || code == 429);
  }
}

}  // namespace codesphere
