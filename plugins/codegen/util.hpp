// codegen plugin: small helpers shared by every part (time, ids, key encoding, redaction).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace codegen {

using json = nlohmann::json;

// Wall-clock milliseconds since the epoch. Durable times (deadlines, next poll, retention)
// use the wall clock because they must mean the same thing after a restart.
int64_t now_ms();
// Milliseconds of the steady clock, for in-process measures (rate limiter windows).
int64_t steady_ms();

// "2025-06-21T11:20:04.338Z" (UTC). The old server wrote local time without a zone
// (codegen.md §A.4); a zone-qualified time is unambiguous for clients.
std::string iso8601(int64_t epoch_ms);

// A random UUID (version 4), the task id format the old server used (§A.2).
std::string new_uuid();

// Lower-case hex of arbitrary bytes. Principals are opaque strings that may contain '/', so
// they are hex-encoded inside state keys: "task/<hex>/" can never be a prefix of another
// principal's keys.
std::string hex(std::string_view bytes);

// A positive integer from a JSON integer or a string of digits (the old server accepted
// "123" for ids, §A.2); nullopt for anything else (including 0, negatives, overflow).
std::optional<int64_t> positive_int(const json& v);
std::optional<int64_t> positive_int(std::string_view s);

// At most max_bytes of `s`, cut on a UTF-8 character boundary.
std::string truncate_utf8(std::string_view s, size_t max_bytes);

// JSON text that never throws on invalid UTF-8 (upstream text is untrusted).
std::string dump(const json& j);

// ASCII case-insensitive equality / lower-casing.
bool iequals(std::string_view a, std::string_view b);
std::string lower(std::string_view s);

// Replaces every known secret with "[REDACTED]". The host redacts the credentials it
// handed out (YAML); tokens set at runtime with codegen_config are unknown to the host, so
// the plugin redacts them itself from every message, error and log line (§D.1).
// Thread-safe.
class Redactor {
 public:
  void add(const std::string& secret);
  std::string apply(std::string text) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> secrets_;
};

}  // namespace codegen
