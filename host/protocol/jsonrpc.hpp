// JSON-RPC 2.0 messages as MCP uses them: error codes, and the one place responses,
// errors and notifications are built.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "json/bounded.hpp"

namespace mcph::protocol {

using nlohmann::json;

// JSON-RPC and MCP error codes (mcp-spec §2.3).
namespace code {
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
inline constexpr int kResourceNotFound = -32002;         // 2025-11-25 and earlier
inline constexpr int kHeaderMismatch = -32020;           // 2026-07-28
inline constexpr int kMissingClientCapability = -32021;  // 2026-07-28
inline constexpr int kUnsupportedVersion = -32022;       // 2026-07-28
}  // namespace code

struct RpcError {
  int code;
  std::string message;
  json data;  // null when absent
};

json make_result(const json& id, json result);
json make_error(const json& id, const RpcError& error);
json make_notification(const char* method, json params);

// obj's member `key`, or null when obj is not an object or has none. (json::find walks
// json's own iterators: on a request's path, ~3x the instructions of the map's find.)
inline const json* member(const json& obj, std::string_view key) {
  const auto* members = obj.get_ptr<const json::object_t*>();
  if (members == nullptr) return nullptr;
  auto it = members->find(key);
  return it != members->end() ? &it->second : nullptr;
}
inline json* member(json& obj, std::string_view key) { return const_cast<json*>(member(std::as_const(obj), key)); }

// obj[key] when obj is an object holding a string there, else "". Never throws: for
// reading members of a message that may be malformed in any way.
std::string string_member(const json& obj, std::string_view key);

// A request id must be a string or an integer (MCP: never null, never fractional).
bool valid_id(const json& id);

// Whether `value` is the string `text`. (Comparing a json with a literal builds a json of the
// literal first: a heap allocation per comparison on the path of every request.)
inline bool is_text(const json& value, std::string_view text) {
  return value.is_string() && value.get_ref<const std::string&>() == text;
}

// A request's params._meta as json_text::parse_request leaves it: an object, or the object's
// text kept written. Reads either alike. A view: valid while that value lives; empty for
// anything else (absent, or not an object).
class MetaView {
 public:
  MetaView() = default;
  explicit MetaView(const json& meta);
  // params._meta of `message`, when it has one.
  static MetaView of(const json& message);
  bool contains(std::string_view key) const;
  // The member `key`'s value, built; nullopt when absent.
  std::optional<json> find(std::string_view key) const;
  // Whether the member `key` is the string `value`, and whether it is {}: tested on the
  // text, without building the member, for the values most requests carry.
  bool is_string(std::string_view key, std::string_view value) const;
  bool is_empty_object(std::string_view key) const;

 private:
  const json* object_ = nullptr;      // a built object
  json_text::ScannedObject written_;  // a written one's members (size 0: none)
};

}  // namespace mcph::protocol
