// The few cryptographic primitives the host uses, over OpenSSL: hashes and MACs, random
// bytes, base64url, and AES-256-GCM. Byte strings travel as std::string.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mcph::crypto {

std::string sha256(std::string_view data);                             // 32 bytes
std::string hmac_sha256(std::string_view key, std::string_view data);  // 32 bytes
std::string random_bytes(size_t n);                                    // from OpenSSL's CSPRNG; throws if it fails
bool equal(std::string_view a, std::string_view b);                    // constant time for equal lengths

std::string b64url(std::string_view bytes);  // RFC 4648 §5, no padding
std::optional<std::string> unb64url(std::string_view text);
std::string hex(std::string_view bytes);

// AES-256-GCM with a random 96-bit nonce: nonce | ciphertext | tag. `aad` is authenticated,
// not stored. `key` is 32 bytes.
std::string seal(std::string_view key, std::string_view plaintext, std::string_view aad);
std::optional<std::string> open(std::string_view key, std::string_view sealed, std::string_view aad);

}  // namespace mcph::crypto
