#include "transport/shared_sessions.hpp"

#include <spdlog/spdlog.h>

#include "json/bounded.hpp"
#include "services/crypto.hpp"

namespace mcph::transport {
namespace {

using json = nlohmann::json;

constexpr std::string_view kNs = "host";
constexpr std::string_view kAad = "mcp-host legacy session";

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string row_key(const std::string& handle) { return "session/" + handle; }

}  // namespace

std::string SharedSessions::handle(std::string_view id) { return crypto::hex(crypto::sha256(id)).substr(0, 40); }

std::shared_ptr<store::Keyring> SharedSessions::keys() {
  std::lock_guard lock(mutex_);
  if (!keys_) {
    if (auto k = store::Keyring::shared(store_, "legacy_session"); k) {
      keys_ = std::move(*k);
    } else {
      spdlog::warn("http: legacy sessions stay on this replica until the store is back: {}", k.error());
    }
  }
  return keys_;
}

std::string SharedSessions::seal(Sealed& s) {
  auto k = keys();
  if (!k) return "";
  s.expires = now_s() + std::chrono::duration_cast<std::chrono::seconds>(kLifetime).count();
  const json payload{{"v", s.version}, {"c", s.client_capabilities}, {"p", s.principal}, {"k", s.client}, {"e", s.expires}};
  return "s1." + crypto::b64url(k->seal(payload.dump(), kAad));
}

std::optional<SharedSessions::Sealed> SharedSessions::open(std::string_view id) {
  if (!is_sealed(id) || id.size() > 8192) return std::nullopt;
  auto k = keys();
  auto bytes = crypto::unb64url(id.substr(3));
  auto plain = k && bytes ? k->open(*bytes, kAad) : std::nullopt;
  if (!plain) return std::nullopt;
  const json p = json::parse(*plain, nullptr, false);
  if (!p.is_object()) return std::nullopt;
  Sealed s;
  s.version = p.value("v", "");
  s.client_capabilities = p.value("c", json::object());
  s.principal = p.value("p", "");
  s.client = p.value("k", "");
  s.expires = p.value("e", int64_t{0});
  if (s.expires < now_s()) return std::nullopt;
  return s;
}

Result<std::optional<SharedSessions::Row>> SharedSessions::load(const std::string& handle) {
  auto got = store_.get(kNs, row_key(handle));
  if (!got) return Error{got.error()};
  if (!got->has_value()) return std::optional<Row>();
  const json j = json::parse(**got, nullptr, false);
  Row r;
  if (j.is_object()) {
    r.ended = j.value("ended", false);
    r.log_level = j.value("log", 1);
    for (const auto& uri : j.value("subs", json::array())) {
      if (uri.is_string()) r.subscriptions.push_back(uri.get<std::string>());
    }
  }
  return std::optional<Row>(std::move(r));
}

// Two replicas changing one session at the same instant may lose one change (the last row
// written wins): a client's subscribe calls arrive one after another in practice.
Status SharedSessions::save(const std::string& handle, const protocol::SessionState& state, int64_t expires) {
  const json row{{"log", state.log_level}, {"subs", state.subscriptions}, {"exp", expires}};
  if (auto st = store_.put(kNs, row_key(handle), row.dump()); !st) return st;
  return store_.publish(kChanged, handle);
}

Status SharedSessions::end(const std::string& handle, int64_t expires) {
  if (auto st = store_.put(kNs, row_key(handle), json{{"ended", true}, {"exp", expires}}.dump()); !st) return st;
  return store_.publish(kEnded, handle);
}

Status SharedSessions::relay(const std::string& handle, const json& message) {
  std::string text = json_text::dump(message);
  if (handle.size() + text.size() + 1 + kMessage.size() > store::StateStore::kMaxEvent) {
    const std::string key = "relay/" + crypto::hex(crypto::random_bytes(12));
    const int64_t exp = now_s() + std::chrono::duration_cast<std::chrono::seconds>(kRelayLifetime).count();
    if (auto st = store_.put(kNs, key, json{{"exp", exp}, {"message", text}}.dump()); !st) return st;
    text = "@" + key;
  }
  return store_.publish(kMessage, handle + "\n" + text);
}

std::optional<json> SharedSessions::relayed(std::string_view text) {
  std::string stored;
  if (text.starts_with("@relay/")) {  // too large for the event: in the store
    auto row = store_.get(kNs, text.substr(1));
    if (!row || !row->has_value()) return std::nullopt;
    stored = json::parse(**row, nullptr, false).value("message", "");
    text = stored;
  }
  return json_text::parse(text);
}

size_t SharedSessions::purge() {
  const int64_t now = now_s();
  size_t n = 0;
  for (const char* prefix : {"session/", "relay/"}) {
    n += store::erase_where(store_, kNs, prefix, [&](std::string_view v) {
      const json j = json::parse(v, nullptr, false);
      return !j.is_object() || j.value("exp", int64_t{0}) < now;
    });
  }
  return n;
}

}  // namespace mcph::transport
