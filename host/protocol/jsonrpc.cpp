#include "protocol/jsonrpc.hpp"

namespace mcph::protocol {

namespace {

// {"jsonrpc": "2.0", k1: v1, k2: v2}, built in place (an initializer list builds each pair
// as a temporary array first, a measurable share of a quick call's answer).
json envelope(const char* k1, json v1, const char* k2, json v2) {
  json m(json::value_t::object);
  auto& o = m.get_ref<json::object_t&>();
  o.emplace("jsonrpc", "2.0");
  o.emplace(k1, std::move(v1));
  o.emplace(k2, std::move(v2));
  return m;
}

}  // namespace

json make_result(const json& id, json result) { return envelope("id", id, "result", std::move(result)); }

json make_error(const json& id, const RpcError& error) {
  json err{{"code", error.code}, {"message", error.message}};
  if (!error.data.is_null()) err["data"] = error.data;
  return envelope("id", id, "error", std::move(err));
}

json make_notification(const char* method, json params) { return envelope("method", method, "params", std::move(params)); }

std::string string_member(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

bool valid_id(const json& id) { return id.is_string() || id.is_number_integer(); }

}  // namespace mcph::protocol
