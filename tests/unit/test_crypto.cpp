// The host's cryptographic primitives (services/crypto.cpp) against published test vectors:
// libcrypto is opened at first use, random bytes come from getrandom, and the comparison
// is our own loop, so each is checked here rather than trusted to OpenSSL's own tests.
#include <gtest/gtest.h>

#include <set>

#include "services/crypto.hpp"

namespace mcph::crypto {
namespace {

TEST(Crypto, Sha256MatchesFips180) {
  EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Crypto, HmacSha256MatchesRfc4231) {
  // Test case 2: a key shorter than the block, text with spaces.
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a key longer than the block (hashed first).
  EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Crypto, SealedTextOpensOnlyWithItsKeyAndAad) {
  const std::string key(32, 'k'), other(32, 'o');
  const std::string sealed = seal(key, "a refresh token", "user:42");
  ASSERT_EQ(sealed.size(), 12 + 15 + 16u);  // nonce, ciphertext, tag
  EXPECT_EQ(open(key, sealed, "user:42"), "a refresh token");
  EXPECT_NE(seal(key, "a refresh token", "user:42"), sealed);  // a fresh nonce each time
  EXPECT_EQ(open(other, sealed, "user:42"), std::nullopt);
  EXPECT_EQ(open(key, sealed, "user:43"), std::nullopt);
  std::string tampered = sealed;
  tampered[14] ^= 1;
  EXPECT_EQ(open(key, tampered, "user:42"), std::nullopt);
  EXPECT_EQ(open(key, sealed.substr(0, 27), "user:42"), std::nullopt);
  EXPECT_EQ(open(std::string(16, 'k'), sealed, "user:42"), std::nullopt);  // not a 256-bit key
  EXPECT_EQ(open(key, seal(key, "", ""), ""), "");
}

TEST(Crypto, EqualComparesEveryByteAndTheLength) {
  EXPECT_TRUE(equal("", ""));
  EXPECT_TRUE(equal("same bytes", "same bytes"));
  EXPECT_FALSE(equal("same bytes", "same bytez"));
  EXPECT_FALSE(equal("Xame bytes", "same bytes"));
  EXPECT_FALSE(equal("same", "same bytes"));
  EXPECT_FALSE(equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(Crypto, RandomBytesAreAsManyAsAskedAndDiffer) {
  EXPECT_EQ(random_bytes(0), "");
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(random_bytes(16));
  EXPECT_EQ(seen.size(), 100u);
  const std::string big = random_bytes(100000);  // past getrandom's 256-byte guarantee
  ASSERT_EQ(big.size(), 100000u);
  std::set<char> values(big.begin(), big.end());
  EXPECT_EQ(values.size(), 256u);  // every byte value appears (missing one: odds ~1e-168)
}

TEST(Crypto, Base64UrlRoundTripsAndRefusesOtherAlphabets) {
  const std::string bytes("\xfb\xff\x00\x10 mcp", 8);
  EXPECT_EQ(b64url(bytes), "-_8AECBtY3A");
  EXPECT_EQ(unb64url("-_8AECBtY3A"), bytes);
  EXPECT_EQ(unb64url("+/8A"), std::nullopt);  // standard base64's characters
  EXPECT_EQ(unb64url("ab=="), std::nullopt);
}

}  // namespace
}  // namespace mcph::crypto
