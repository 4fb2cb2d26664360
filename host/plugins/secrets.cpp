#include "plugins/secrets.hpp"

#include <algorithm>

namespace mcph::plugins {

using nlohmann::json;

bool redact_text(std::string& text, const std::vector<std::string>& secrets) {
  bool changed = false;
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + kRedacted.size())) {
      text.replace(pos, secret.size(), kRedacted);
      changed = true;
    }
  }
  return changed;
}

bool redact_json(json& value, const std::vector<std::string>& secrets) {
  if (secrets.empty()) return false;
  bool changed = false;
  std::vector<json*> stack{&value};
  while (!stack.empty()) {
    json* v = stack.back();
    stack.pop_back();
    if (v->is_string()) {
      changed |= redact_text(v->get_ref<std::string&>(), secrets);
    } else if (v->is_array()) {
      for (auto& item : *v) stack.push_back(&item);
    } else if (v->is_object()) {
      bool key_has_secret = false;
      for (const auto& item : v->items()) {
        std::string key = item.key();
        if ((key_has_secret = redact_text(key, secrets))) break;
      }
      if (key_has_secret) {  // keys cannot be renamed in place: rebuild the object
        json rebuilt = json::object();
        for (auto& item : v->items()) {
          std::string key = item.key();
          redact_text(key, secrets);
          // Two keys may redact to the same text ("[REDACTED]" beside "12345"): keep both.
          const std::string base = key;
          for (int n = 2; rebuilt.contains(key); ++n) key = base + " #" + std::to_string(n);
          rebuilt[key] = std::move(item.value());
        }
        *v = std::move(rebuilt);
        changed = true;
      }
      for (auto& item : v->items()) stack.push_back(&item.value());
    }
  }
  return changed;
}

void sort_longest_first(std::vector<std::string>& secrets) {
  // A secret inside a longer one must not be replaced first: that would leave the rest of
  // the longer one readable.
  std::sort(secrets.begin(), secrets.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

void Secrets::set_fixed(std::vector<std::string> values) {
  sort_longest_first(values);
  fixed_ = std::move(values);
}

void Secrets::add_user(const std::string& value) const {
  if (!worth_redacting(value)) return;
  std::lock_guard lock(mutex_);
  users_.insert(value);
}

std::vector<std::string> Secrets::all() const {
  std::vector<std::string> out = fixed_;
  std::lock_guard lock(mutex_);
  out.insert(out.end(), users_.begin(), users_.end());
  sort_longest_first(out);
  return out;
}

}  // namespace mcph::plugins
