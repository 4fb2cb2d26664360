// The requestState token of 2026-07-28 input_required results (MRTR, mcp-spec §2.12).
// The client echoes it back and may have changed it, so it is sealed: the plugin's state,
// an expiry and a hash of what the request was (method, name, principal, arguments),
// authenticated with HMAC-SHA256. The key is drawn at start-up, unless the host shares a
// keyring with its replicas through the store (store.backend: postgresql): then a token
// sealed by one replica opens on any other, after a restart and after a key rotation.
// Otherwise a token does not survive a restart: the client gets a clear error and starts
// the request over.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "result.hpp"
#include "store/keyring.hpp"

namespace mcph::protocol {

class RequestStateSealer {
 public:
  // `key`: 32 bytes, or empty to draw a random one.
  explicit RequestStateSealer(std::string key = {});
  // Seals with the keyring's current key; opens with any of its keys.
  explicit RequestStateSealer(std::shared_ptr<const store::Keyring> keys);

  // `binding` is what the request was; open() must be given the same to accept it.
  std::string seal(std::string_view state, std::string_view binding, std::chrono::seconds ttl) const;
  // The state sealed in `token`, or why it is refused (tampered, expired, other request).
  Result<std::string> open(std::string_view token, std::string_view binding) const;

 private:
  std::shared_ptr<const store::Keyring> keys_;
};

}  // namespace mcph::protocol
