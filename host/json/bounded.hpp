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

#include <array>
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

// A JSON object's text, checked as parse() checks it but not built: its top-level members
// as written. For a plugin's result, passed on to the client as it came (see written())
// instead of built and written again.
struct ScannedObject {
  struct Member {
    std::string_view key;    // as written, without its quotes
    std::string_view value;  // the value's text
  };
  // The top level's, in order: the first kMaxMembers of them (a result has a few).
  static constexpr size_t kMaxMembers = 8;
  std::array<Member, kMaxMembers> members;
  size_t size = 0;  // members in use; more than kMaxMembers: kMaxMembers
  // Whether the text can stand for its value as it is, inside a message line: no
  // whitespace between tokens, no byte order mark, no top-level key escaped or repeated
  // (parse() keeps the later of two; a client might not), and no more than kMaxMembers of
  // them (to compare). Keys deeper down pass as they are.
  bool verbatim = false;
  // The value of the top-level member `key` (compared as written), or null.
  const std::string_view* find(std::string_view key) const;
};

// `text` checked as parse() would read it (same grammar, same nesting limit), when it is
// an object; nullopt otherwise (why: as parse() says, kSyntax for a value not an object).
std::optional<ScannedObject> scan_object(std::string_view text, ParseFailure* why = nullptr, int max_depth = kMaxDepth);

// The members of a text scan_object() called verbatim, found again without checking it
// again (a written() value's text): the same ScannedObject, verbatim. The members of the
// _meta parse_request kept last on this thread are known, and handed back at once.
ScannedObject members_of(std::string_view verbatim_text);

// A client's JSON-RPC message, as parse() reads it but for one member: params._meta, when it
// is an object whose text can stand as written (ScannedObject::verbatim), is kept as that
// text (written()), not built. A 2026-07-28 request carries three long keys there, which
// cost more to build than the rest of an echo call's message; protocol::MetaView reads it
// either way. A client sends the same _meta with every request: the last one kept on a
// thread is remembered, and the same bytes again are taken without checking them again.
std::optional<json> parse_request(std::string_view text, ParseFailure* why = nullptr);

// A value kept as the JSON text it was written as (a verbatim ScannedObject's text): dump()
// writes that text as it is, so a result passes from a plugin to the client without being
// built and written again. It is a json binary value of subtype kWrittenSubtype; code that
// reads the value must take built() of it first (nlohmann's own dump() would write the bytes
// as a list of numbers).
inline constexpr std::uint8_t kWrittenSubtype = 0x4A;  // 'J'
// Bytes a written() value holds beyond its text, so that members appended to it (a
// 2026-07-28 result's) need not move it.
inline constexpr size_t kWrittenRoom = 128;
json written(std::string_view text);
// The text of a written() value; nullopt for any other value.
std::optional<std::string_view> written_text(const json& value);
// The value itself: a written() one parsed, any other as it is.
json built(json value);
// The object `text` holds, as a plugin's result is taken: written() when the text can stand
// as it is (ScannedObject::verbatim), built otherwise; nullopt when it is not an object.
std::optional<json> object_as_given(std::string_view text);

// What a client is told about a failed parse.
std::string describe(ParseFailure why);

// Compact JSON text, as json::dump(-1, ' ', false, error_handler_t::replace) writes it:
// invalid UTF-8 in strings becomes U+FFFD instead of an exception.
std::string dump(const json& value);
// `text` as a JSON string, quoted and escaped as dump() writes one, appended to `out`.
void append_string(std::string& out, std::string_view text);

}  // namespace mcph::json_text
