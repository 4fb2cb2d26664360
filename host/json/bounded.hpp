// JSON text that comes from outside the host (a client's message, a plugin's result, an
// upstream's body): parsed with a nesting limit checked *before* a value is built, and
// written without ever throwing.
//
// Why the limit is checked first: nlohmann::json parses iteratively, but copying, comparing
// and dumping a value recurse, so a 60k-deep array parses fine and then overflows the stack
// on its first copy. No MCP message needs more than a few dozen levels; kMaxDepth is far
// above that and far below what any thread's stack takes (measured: dump() needs ~200 bytes
// of stack per level).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mcph::json_text {

using nlohmann::json;

inline constexpr int kMaxDepth = 128;

enum class ParseFailure { kNone, kSyntax, kTooDeep };

// The deepest nesting of arrays and objects in `text` (brackets inside strings do not
// count), scanning no further than max_depth + 1.
int depth(std::string_view text, int max_depth = kMaxDepth);

// The value of `text`, or nullopt with the reason in *why. Never throws.
std::optional<json> parse(std::string_view text, ParseFailure* why = nullptr, int max_depth = kMaxDepth);

// What a client is told about a failed parse.
std::string describe(ParseFailure why);

// Compact JSON text; invalid UTF-8 in strings becomes U+FFFD instead of an exception.
std::string dump(const json& value);

}  // namespace mcph::json_text
