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

std::string string_member(const json& obj, std::string_view key) {
  const json* value = member(obj, key);
  return value != nullptr && value->is_string() ? value->get_ref<const std::string&>() : std::string();
}

bool valid_id(const json& id) { return id.is_string() || id.is_number_integer(); }

MetaView::MetaView(const json& meta) {
  if (meta.is_object()) {
    object_ = &meta;
  } else if (auto text = json_text::written_text(meta)) {
    written_ = json_text::members_of(*text);
  }
}

MetaView MetaView::of(const json& message) {
  if (!message.is_object()) return {};
  auto params = message.find("params");
  if (params == message.end() || !params->is_object()) return {};
  auto meta = params->find("_meta");
  return meta != params->end() ? MetaView(*meta) : MetaView();
}

bool MetaView::contains(std::string_view key) const {
  if (object_ != nullptr) return object_->find(key) != object_->end();
  return written_.find(key) != nullptr;
}

std::optional<json> MetaView::find(std::string_view key) const {
  if (object_ != nullptr) {
    auto it = object_->find(key);
    return it != object_->end() ? std::optional<json>(*it) : std::nullopt;
  }
  const std::string_view* text = written_.find(key);
  return text != nullptr ? json_text::parse(*text) : std::nullopt;  // (checked when it was read)
}

bool MetaView::is_string(std::string_view key, std::string_view value) const {
  if (object_ != nullptr) {
    auto it = object_->find(key);
    return it != object_->end() && is_text(*it, value);
  }
  const std::string_view* text = written_.find(key);
  if (text == nullptr || text->empty() || text->front() != '"') return false;
  if (text->find('\\') != std::string_view::npos) return is_text(json_text::parse(*text).value_or(json()), value);  // escaped
  return text->size() == value.size() + 2 && text->substr(1, value.size()) == value;
}

bool MetaView::is_empty_object(std::string_view key) const {
  if (object_ != nullptr) {
    auto it = object_->find(key);
    return it != object_->end() && it->is_object() && it->empty();
  }
  const std::string_view* text = written_.find(key);
  return text != nullptr && *text == "{}";  // (a written object has no whitespace)
}

}  // namespace mcph::protocol
