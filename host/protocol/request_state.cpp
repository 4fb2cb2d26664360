#include "protocol/request_state.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdexcept>

namespace mcph::protocol {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

bool unb64url(std::string_view in, std::string& out) {
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = c == '\0' ? nullptr : std::char_traits<char>::find(kAlphabet, 64, c);
    if (p == nullptr) return false;
    acc = (acc << 6) | static_cast<uint32_t>(p - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

std::string sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

RequestStateSealer::RequestStateSealer() {
  if (RAND_bytes(key_.data(), static_cast<int>(key_.size())) != 1) throw std::runtime_error("RAND_bytes failed");
}

std::string RequestStateSealer::mac(std::string_view payload) const {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(payload.data()),
       payload.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

// Token: b64url(payload) "." b64url(HMAC(payload)), payload = expiry "." b64url(sha256(binding))
// "." b64url(state).
std::string RequestStateSealer::seal(std::string_view state, std::string_view binding, std::chrono::seconds ttl) const {
  const std::string payload = std::to_string(now_s() + ttl.count()) + "." + b64url(sha256(binding)) + "." + b64url(state);
  return b64url(payload) + "." + b64url(mac(payload));
}

Result<std::string> RequestStateSealer::open(std::string_view token, std::string_view binding) const {
  const Error tampered{"requestState failed its integrity check (altered, or from another server run); start the request over without it"};
  const size_t dot = token.find('.');
  std::string payload, tag;
  if (dot == std::string_view::npos || !unb64url(token.substr(0, dot), payload) || !unb64url(token.substr(dot + 1), tag)) {
    return tampered;
  }
  const std::string expected = mac(payload);
  if (tag.size() != expected.size() || CRYPTO_memcmp(tag.data(), expected.data(), tag.size()) != 0) return tampered;
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
