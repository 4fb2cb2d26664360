// libcrypto is opened the first time a hash, MAC or cipher is needed, not when mcp-host
// starts: linked, it cost a stdio host ~150 page faults (30 % of `mcp-host --version`'s,
// by perf) and 3,000 symbol bindings before main (it is built with BIND_NOW). Random
// bytes come from the kernel (getrandom), which is where OpenSSL's own generator seeds
// from, so a host that only makes ids and keys never opens it. The same pattern as
// store/libpq.cpp, but with pointers of our own rather than forwarders named as in
// OpenSSL: the HTTP stack (http_stack/) links libssl, and forwarders would stand in for
// OpenSSL's own functions inside it.
#include "services/crypto.hpp"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include <cerrno>
#include <memory>
#include <stdexcept>

namespace mcph::crypto {
namespace {

#define MCPH_LIBCRYPTO_FUNCTIONS(X)                                                                          \
  X(SHA256) X(HMAC) X(EVP_sha256) X(EVP_aes_256_gcm) X(EVP_CIPHER_CTX_new) X(EVP_CIPHER_CTX_free)            \
  X(EVP_CIPHER_CTX_ctrl) X(EVP_EncryptInit_ex) X(EVP_EncryptUpdate) X(EVP_EncryptFinal_ex) X(EVP_DecryptInit_ex) \
  X(EVP_DecryptUpdate) X(EVP_DecryptFinal_ex)

struct Api {
#define MCPH_POINTER(name) decltype(&::name) name = nullptr;
  MCPH_LIBCRYPTO_FUNCTIONS(MCPH_POINTER)
#undef MCPH_POINTER
};

// Throws when libcrypto cannot be opened: every caller is on a path that reports errors.
const Api& lib() {
  static const Api loaded = [] {
    Api a;
    void* handle = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);  // kept open for the process's life
    if (handle == nullptr) {
      const char* why = dlerror();
      throw std::runtime_error("mcp-host needs libcrypto (Debian: libssl3), which could not be loaded: " +
                               std::string(why != nullptr ? why : "unknown error"));
    }
#define MCPH_LOOKUP(name)                                                               \
  a.name = reinterpret_cast<decltype(a.name)>(dlsym(handle, #name));                    \
  if (a.name == nullptr) throw std::runtime_error("libcrypto.so.3 has no " #name);
    MCPH_LIBCRYPTO_FUNCTIONS(MCPH_LOOKUP)
#undef MCPH_LOOKUP
    return a;
  }();
  return loaded;
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

std::string sha256(std::string_view data) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  lib().SHA256(bytes(data), data.size(), reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  const Api& c = lib();
  c.HMAC(c.EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes(data), data.size(),
         reinterpret_cast<unsigned char*>(out.data()), &len);
  out.resize(len);
  return out;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  for (size_t got = 0; got < n;) {  // short only past 256 bytes or when a signal interrupts
    const ssize_t r = getrandom(out.data() + got, n - got, 0);
    if (r < 0 && errno != EINTR) throw std::runtime_error("getrandom failed");
    if (r > 0) got += static_cast<size_t>(r);
  }
  return out;
}

bool equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;  // every byte is read whatever the others hold (as CRYPTO_memcmp)
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

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

std::optional<std::string> unb64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = c == '\0' ? nullptr : std::char_traits<char>::find(kAlphabet, 64, c);
    if (p == nullptr) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(p - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string hex(std::string_view in) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(in.size() * 2);
  for (unsigned char c : in) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

namespace {
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&::EVP_CIPHER_CTX_free)>;
constexpr size_t kNonce = 12, kTag = 16;
}  // namespace

std::string seal(std::string_view key, std::string_view plaintext, std::string_view aad) {
  const Api& c = lib();
  Ctx ctx(c.EVP_CIPHER_CTX_new(), c.EVP_CIPHER_CTX_free);
  const std::string nonce = random_bytes(kNonce);
  std::string out = nonce;
  out.resize(kNonce + plaintext.size() + kTag);
  auto* cipher = reinterpret_cast<unsigned char*>(out.data()) + kNonce;
  int len = 0;
  if (!ctx || key.size() != 32 || c.EVP_EncryptInit_ex(ctx.get(), c.EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce)) != 1 ||
      c.EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
      c.EVP_EncryptUpdate(ctx.get(), cipher, &len, bytes(plaintext), static_cast<int>(plaintext.size())) != 1 ||
      c.EVP_EncryptFinal_ex(ctx.get(), cipher + len, &len) != 1 ||
      c.EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, cipher + plaintext.size()) != 1) {
    throw std::runtime_error("AES-GCM encryption failed");
  }
  return out;
}

std::optional<std::string> open(std::string_view key, std::string_view sealed, std::string_view aad) {
  if (key.size() != 32 || sealed.size() < kNonce + kTag) return std::nullopt;
  const Api& c = lib();
  Ctx ctx(c.EVP_CIPHER_CTX_new(), c.EVP_CIPHER_CTX_free);
  const std::string_view nonce = sealed.substr(0, kNonce);
  const std::string_view cipher = sealed.substr(kNonce, sealed.size() - kNonce - kTag);
  std::string tag(sealed.substr(sealed.size() - kTag));
  std::string out(cipher.size(), '\0');
  int len = 0;
  if (!ctx || c.EVP_DecryptInit_ex(ctx.get(), c.EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce)) != 1 ||
      c.EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) != 1 ||
      c.EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, bytes(cipher),
                          static_cast<int>(cipher.size())) != 1 ||
      c.EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) != 1 ||
      c.EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1) {
    return std::nullopt;
  }
  return out;
}

}  // namespace mcph::crypto
