// libFuzzer: redaction over JSON values. Input: a secret, a newline, JSON. The result must
// stay valid JSON, with every number as it was, and the secret in no string or key.
#include <algorithm>

#include "json/bounded.hpp"
#include "plugins/secrets.hpp"

namespace {

using nlohmann::json;

// Every number, sorted (redacting a key may move its member within the object).
std::vector<json> numbers(const json& v) {
  std::vector<json> out;
  std::vector<const json*> stack{&v};
  while (!stack.empty()) {
    const json* j = stack.back();
    stack.pop_back();
    if (j->is_number()) out.push_back(*j);
    if (j->is_structured()) {
      for (auto it = j->rbegin(); it != j->rend(); ++it) stack.push_back(&*it);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return 0;
  const std::string secret(text.substr(0, nl));
  if (!mcph::plugins::worth_redacting(secret)) return 0;
  auto value = mcph::json_text::parse(text.substr(nl + 1));
  if (!value) return 0;
  json redacted = *value;
  mcph::plugins::redact_json(redacted, {secret});
  if (numbers(redacted) != numbers(*value)) __builtin_trap();
  if (!mcph::json_text::parse(mcph::json_text::dump(redacted))) __builtin_trap();
  // Where the secret shares no character with the marker, no occurrence can be left (nor
  // be formed across a marker's edge).
  if (secret.find_first_of("[REDACT]") != std::string::npos) return 0;
  std::vector<const json*> stack{&redacted};
  while (!stack.empty()) {
    const json* j = stack.back();
    stack.pop_back();
    if (j->is_string() && j->get_ref<const std::string&>().find(secret) != std::string::npos) __builtin_trap();
    if (j->is_object()) {
      for (const auto& item : j->items()) {
        if (item.key().find(secret) != std::string::npos) __builtin_trap();
        stack.push_back(&item.value());
      }
    } else if (j->is_array()) {
      for (const auto& e : *j) stack.push_back(&e);
    }
  }
  std::string line(text.substr(nl + 1));
  mcph::plugins::redact_text(line, {secret});
  return 0;
}
