// Test support: JSON-RPC messages as a test writes them, and what it reads back.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace mcph::testing {

inline nlohmann::json req(nlohmann::json id, const std::string& method, nlohmann::json params = nlohmann::json::object()) {
  return nlohmann::json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
}
inline nlohmann::json call(nlohmann::json id, const std::string& tool, nlohmann::json args = nlohmann::json::object()) {
  return req(id, "tools/call", {{"name", tool}, {"arguments", args}});
}
// The first text block of a tools/call response.
inline std::string text_of(const nlohmann::json& r) { return r["result"]["content"][0]["text"]; }
inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace mcph::testing
