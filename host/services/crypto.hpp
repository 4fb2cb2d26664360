// The few cryptographic primitives the host uses: hashes, MACs and AES-256-GCM over OpenSSL's
// libcrypto (opened at first use), random bytes from the kernel, base64url. Byte strings
// travel as std::string; a missing libcrypto is an exception that says so.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mcph::crypto {

std::string sha256(std::string_view data);                             // 32 bytes
std::string hmac_sha256(std::string_view key, std::string_view data);  // 32 bytes
std::string random_bytes(size_t n);                                    // from the kernel's CSPRNG (getrandom); throws if it fails
bool equal(std::string_view a, std::string_view b);                    // constant time for equal lengths

std::string b64url(std::string_view bytes);  // RFC 4648 §5, no padding
std::optional<std::string> unb64url(std::string_view text);
std::string hex(std::string_view bytes);

// AES-256-GCM with a random 96-bit nonce: nonce | ciphertext | tag. `aad` is authenticated,
// not stored. `key` is 32 bytes.
std::string seal(std::string_view key, std::string_view plaintext, std::string_view aad);
std::optional<std::string> open(std::string_view key, std::string_view sealed, std::string_view aad);

}  // namespace mcph::crypto
