// JSON text that comes from outside the host (a client's message, a plugin's result, an
// upstream's body): parsed with a nesting limit checked *before* a value is built, and
// written without ever throwing. Both read and write exactly as nlohmann's json::parse and
// json::dump do, only faster (bounded.cpp says how; fuzz_json holds them to it): every
// request, result and isolation frame passes through here.
//
// Why the limit is checked first: copying, comparing and dumping a nlohmann::json value
// recurse, so a 60k-deep array would parse and then overflow the stack on its first copy.
// No MCP message needs more than a few dozen levels; kMaxDepth is far above that and far
// below what any thread's stack takes (measured: dump() needs ~200 bytes of stack per level).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mcph::json_text {

using nlohmann::json;

inline constexpr int kMaxDepth = 128;

enum class ParseFailure { kNone, kSyntax, kTooDeep };

// The value of `text` as json::parse reads it, or nullopt with the reason in *why; nesting
// deeper than max_depth fails before it is built. Never throws.
std::optional<json> parse(std::string_view text, ParseFailure* why = nullptr, int max_depth = kMaxDepth);

// The length of the well-formed UTF-8 sequence that `s` starts with (its first byte is
// 0x80 or above), or 0 when RFC 3629 does not allow it (overlong forms, surrogates, past
// U+10FFFF, cut short).
size_t utf8_length(std::string_view s);

// What a client is told about a failed parse.
std::string describe(ParseFailure why);

// Compact JSON text, as json::dump(-1, ' ', false, error_handler_t::replace) writes it:
// invalid UTF-8 in strings becomes U+FFFD instead of an exception.
std::string dump(const json& value);

}  // namespace mcph::json_text
