#include "protocol/request_state.hpp"

#include <algorithm>

#include "services/crypto.hpp"

namespace mcph::protocol {
namespace {

using crypto::b64url;
using crypto::sha256;

bool unb64url(std::string_view in, std::string& out) {
  auto r = crypto::unb64url(in);
  if (r) out = std::move(*r);
  return r.has_value();
}


int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

RequestStateSealer::RequestStateSealer(std::string key) : keys_(std::make_shared<store::Keyring>(std::move(key))) {}

RequestStateSealer::RequestStateSealer(std::shared_ptr<const store::Keyring> keys)
    : keys_(keys ? std::move(keys) : std::make_shared<store::Keyring>()) {}

// Token: b64url(payload) "." b64url(HMAC(payload)), payload = expiry "." b64url(sha256(binding))
// "." b64url(state).
std::string RequestStateSealer::seal(std::string_view state, std::string_view binding, std::chrono::seconds ttl) const {
  const std::string payload = std::to_string(now_s() + ttl.count()) + "." + b64url(sha256(binding)) + "." + b64url(state);
  return b64url(payload) + "." + b64url(crypto::hmac_sha256(keys_->current(), payload));
}

Result<std::string> RequestStateSealer::open(std::string_view token, std::string_view binding) const {
  const Error tampered{"requestState failed its integrity check (altered, or from another server run); start the request over without it"};
  const size_t dot = token.find('.');
  std::string payload, tag;
  if (dot == std::string_view::npos || !unb64url(token.substr(0, dot), payload) || !unb64url(token.substr(dot + 1), tag)) {
    return tampered;
  }
  const auto keys = keys_->all();
  if (std::none_of(keys.begin(), keys.end(), [&](const std::string& k) { return crypto::equal(tag, crypto::hmac_sha256(k, payload)); })) {
    return tampered;
  }
  // Authentic from here on: the fields are ours.
  const size_t a = payload.find('.');
  const size_t b = a == std::string::npos ? a : payload.find('.', a + 1);
  if (b == std::string::npos) return tampered;
  if (std::stoll(payload.substr(0, a)) < now_s()) return Error{"requestState has expired; start the request over without it"};
  if (payload.substr(a + 1, b - a - 1) != b64url(sha256(binding))) {
    return Error{"requestState belongs to another request (a different tool, arguments or user)"};
  }
  std::string state;
  if (!unb64url(std::string_view(payload).substr(b + 1), state)) return tampered;
  return state;
}

}  // namespace mcph::protocol
