#include "json/bounded.hpp"

namespace mcph::json_text {

int depth(std::string_view text, int max_depth) {
  int level = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // whatever is escaped cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++level > deepest && (deepest = level) > max_depth) return deepest;
        break;
      case ']':
      case '}': --level; break;
      default: break;
    }
  }
  return deepest;
}

std::optional<json> parse(std::string_view text, ParseFailure* why, int max_depth) {
  auto fail = [&](ParseFailure f) -> std::optional<json> {
    if (why != nullptr) *why = f;
    return std::nullopt;
  };
  if (depth(text, max_depth) > max_depth) return fail(ParseFailure::kTooDeep);
  json value = json::parse(text, nullptr, false);
  if (value.is_discarded()) return fail(ParseFailure::kSyntax);
  if (why != nullptr) *why = ParseFailure::kNone;
  return value;
}

std::string describe(ParseFailure why) {
  if (why == ParseFailure::kTooDeep) {
    return "the JSON nests arrays and objects more than " + std::to_string(kMaxDepth) + " levels deep";
  }
  return "the text is not valid JSON";
}

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace mcph::json_text
