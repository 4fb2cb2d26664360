// Keys that seal what clients or the store hold for a while (requestState, legacy session
// ids, OAuth grants' credentials): the current key seals; the one it replaced still opens,
// so a rotation logs nobody out. A shared keyring lives in the store (replicas on
// PostgreSQL) and follows a rotation made anywhere: `mcp-host keys rotate` publishes
// kKeyRotated and every replica reloads.
//
// One generation back is kept: what was sealed two rotations ago no longer opens.
// requestState lives minutes and OAuth grants are sealed again by the rotation itself;
// a legacy session id older than two rotations ends (its client initializes again).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "result.hpp"
#include "store/state_store.hpp"

namespace mcph::store {

inline constexpr std::string_view kKeyRotated = "key.rotated";  // body: the key's name

class Keyring {
 public:
  // One key of this process's own (32 bytes; empty: drawn now). It never rotates.
  explicit Keyring(std::string key = {});
  // These keys, the first current (e.g. the keys a rotation replaced). Not shared.
  explicit Keyring(std::vector<std::string> keys);
  // The keyring `name` shared through `store` (drawn by whichever replica asks first).
  static Result<std::shared_ptr<Keyring>> shared(StateStore& store, std::string name);

  std::string current() const;
  std::vector<std::string> all() const;  // current first

  // AES-256-GCM (crypto::seal): sealed under the current key, opened under whichever key
  // of the ring sealed it.
  std::string seal(std::string_view plaintext, std::string_view aad) const;
  std::optional<std::string> open(std::string_view sealed, std::string_view aad) const;

 private:
  Status reload();

  StateStore* store_ = nullptr;
  std::string name_;
  mutable std::mutex mutex_;
  std::vector<std::string> keys_;  // guarded by mutex_
  StateStore::Subscription events_;
};

// Draws a new current key for the shared keyring `name`, keeps the old one as the previous
// generation, and tells every replica. Returns the keys before the rotation (current first).
Result<std::vector<std::string>> rotate_shared_key(StateStore& store, std::string_view name);

}  // namespace mcph::store
