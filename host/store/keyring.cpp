#include "store/keyring.hpp"

#include "services/crypto.hpp"

namespace mcph::store {
namespace {

constexpr size_t kKeyBytes = 32;

std::string previous_slot(std::string_view name) { return shared_key_slot(name) + ".previous"; }

}  // namespace

Keyring::Keyring(std::string key) { keys_.push_back(key.size() == kKeyBytes ? std::move(key) : crypto::random_bytes(kKeyBytes)); }

Keyring::Keyring(std::vector<std::string> keys) : keys_(std::move(keys)) {
  if (keys_.empty()) keys_.push_back(crypto::random_bytes(kKeyBytes));
}

std::string Keyring::seal(std::string_view plaintext, std::string_view aad) const {
  return crypto::seal(current(), plaintext, aad);
}

std::optional<std::string> Keyring::open(std::string_view sealed, std::string_view aad) const {
  for (const auto& k : all()) {
    if (auto plain = crypto::open(k, sealed, aad)) return plain;
  }
  return std::nullopt;
}

Result<std::shared_ptr<Keyring>> Keyring::shared(StateStore& store, std::string name) {
  auto ring = std::make_shared<Keyring>();
  ring->store_ = &store;
  ring->name_ = std::move(name);
  if (auto st = ring->reload(); !st) return Error{st.error()};
  std::weak_ptr<Keyring> weak = ring;
  ring->events_ = store.subscribe([weak](std::string_view topic, std::string_view body) {
    auto r = weak.lock();
    if (r && ((topic == kKeyRotated && body == r->name_) || topic == StateStore::kResync)) (void)r->reload();
  });
  return ring;
}

Status Keyring::reload() {
  auto current = shared_key(*store_, name_, kKeyBytes);
  if (!current) return Error{current.error()};
  std::vector<std::string> keys{*current};
  auto previous = store_->get("host", previous_slot(name_));
  if (!previous) return Error{previous.error()};
  if (previous->has_value() && (*previous)->size() == kKeyBytes && **previous != *current) keys.push_back(**previous);
  std::lock_guard lock(mutex_);
  keys_ = std::move(keys);
  return Ok{};
}

std::string Keyring::current() const {
  std::lock_guard lock(mutex_);
  return keys_.front();
}

std::vector<std::string> Keyring::all() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

Result<std::vector<std::string>> rotate_shared_key(StateStore& store, std::string_view name) {
  auto old = shared_key(store, name, kKeyBytes);
  if (!old) return Error{old.error()};
  auto previous = store.get("host", previous_slot(name));
  if (!previous) return Error{previous.error()};
  std::vector<std::string> before{*old};
  if (previous->has_value() && (*previous)->size() == kKeyBytes) before.push_back(**previous);
  // The previous generation first: a replica reloading in between already opens both.
  if (auto st = store.put("host", previous_slot(name), *old); !st) return Error{st.error()};
  auto swapped = store.put_if("host", shared_key_slot(name), *old, crypto::random_bytes(kKeyBytes));
  if (!swapped) return Error{swapped.error()};
  if (!*swapped) return Error{"the key '" + std::string(name) + "' changed meanwhile (another rotation?); run it again"};
  if (auto st = store.publish(kKeyRotated, name); !st) return Error{"rotated, but replicas were not told (restart them): " + st.error()};
  return before;
}

}  // namespace mcph::store
