// codesphere plugin: small pure helpers (no host, no network) shared by the other files and
// unit-tested directly: ID coercion, secret redaction, time parsing, short formatting.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace codesphere {

using json = nlohmann::json;

// An ID as the tools accept it: a non-negative integer, or a string of 1-18 digits (the old
// server typed every ID as a string, so users' prompts pass "42"). Upstream IDs are numbers
// (reference §2.1 "Path IDs are numeric"). nullopt for anything else.
std::optional<std::int64_t> coerce_id(const json& value);

// Replaces every occurrence of `secret` (when it is at least 4 characters long) with
// [REDACTED], and also anything that looks like a bearer token or an API key assignment
// (the old server's two patterns, reference §1.3). Used on every upstream text we surface.
std::string redact(std::string text, std::string_view secret);

// Collapses whitespace runs to one space, trims, and cuts to `max` bytes (adding "…") without
// splitting a UTF-8 sequence. For quoting upstream bodies in one-line error messages.
std::string one_line(std::string_view text, std::size_t max = 300);

// RFC 3339 / ISO 8601 date-time ("2026-02-15T10:00:00.123Z", "+02:00" offsets) to
// milliseconds since the Unix epoch. nullopt if it does not parse.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text);

// An HTTP-date in the preferred IMF-fixdate form ("Sun, 06 Nov 1994 08:49:37 GMT") to
// milliseconds since the Unix epoch. The two obsolete forms (RFC 850, asctime) are not
// accepted: no current server sends them, and a caller falls back to its own default.
std::optional<std::int64_t> parse_http_date_ms(std::string_view text);

// Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date. For a date, the wait is
// measured against the response's own Date header when there is one (the same clock), else
// against `now_ms`. Negative waits become 0. nullopt when absent or unparsable.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::optional<std::string_view> date_header,
                                                           std::int64_t now_ms);

// "850 ms", "12.3 s", "4 min 5 s": elapsed and timeout texts in progress and errors.
std::string format_duration(std::chrono::milliseconds d);

// Tolerant readers for upstream JSON: the field when it has the expected type, else the
// fallback (also when `obj` is not an object). nlohmann's value() throws on a type mismatch
// such as null, which would turn an odd upstream answer into an internal error.
std::string text_field(const json& obj, const char* key, const std::string& fallback = {});
bool flag_field(const json& obj, const char* key, bool fallback = false);
json number_field(const json& obj, const char* key, const json& fallback);
json object_field(const json& obj, const char* key);  // {} unless an object

// Milliseconds since the Unix epoch, now (system clock).
std::int64_t now_ms();

}  // namespace codesphere
