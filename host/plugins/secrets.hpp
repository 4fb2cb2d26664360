// The secret values one plugin instance knows (its secret YAML credentials, and the secret
// credentials of users who called it), and their removal from what leaves the host: log
// lines, error texts and results.
//
// Results are redacted as JSON values, never as serialised text: a secret is looked for in
// the decoded strings (and object keys), so one containing '"' or '\' is found, the result
// stays valid JSON, and a number that happens to equal a digits-only credential stays a
// number. The walk keeps its own stack: no recursion over a value from outside.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mcph::plugins {

inline constexpr std::string_view kRedacted = "[REDACTED]";

// Longest first, as redact_text wants them.
void sort_longest_first(std::vector<std::string>& secrets);
// Replaces every occurrence of each secret in `text` (sorted longest first); true if any
// was found.
bool redact_text(std::string& text, const std::vector<std::string>& secrets);
// The same inside every string and object key of `value`.
bool redact_json(nlohmann::json& value, const std::vector<std::string>& secrets);

// Shorter values are not treated as secrets: they would redact ordinary words and numbers,
// and no real credential is that short.
inline bool worth_redacting(std::string_view value) { return value.size() >= 4; }

// Thread-safe.
class Secrets {
 public:
  void set_fixed(std::vector<std::string> values);  // the instance's own, before any call
  void add_user(const std::string& value) const;  // a user's, once seen (a cache: const)
  // The instance's secrets and every user's seen so far (for logs, which are not tied to
  // one caller).
  std::vector<std::string> all() const;
  const std::vector<std::string>& fixed() const { return fixed_; }
  bool redact(std::string& text) const { return redact_text(text, all()); }

 private:
  std::vector<std::string> fixed_;  // written once, before the instance serves
  mutable std::mutex mutex_;
  mutable std::set<std::string> users_;  // guarded by mutex_
};

}  // namespace mcph::plugins
