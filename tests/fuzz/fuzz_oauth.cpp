// libFuzzer: what the OAuth endpoints parse from outside: form and query text, client
// registration bodies, authorize and token requests.
#include "auth/oauth.hpp"
#include "fuzz_support.hpp"
#include "services/crypto.hpp"
#include "store/state_store.hpp"

namespace {

struct World {
  std::unique_ptr<mcph::store::StateStore> store;
  std::unique_ptr<mcph::auth::OAuthServer> server;
  World() {
    auto st = mcph::store::StateStore::open(mcph::fuzz::temp_dir("oauth"));
    if (!st) mcph::fuzz::die(st.error());
    store = std::move(*st);
    mcph::auth::OAuthOptions o;
    o.issuer = "http://127.0.0.1:8080";
    o.mcp_path = "/mcp";
    o.signing_key = mcph::crypto::random_bytes(32);
    o.encryption_keys = std::make_shared<mcph::store::Keyring>(mcph::crypto::random_bytes(32));
    o.fields = [] { return std::vector<mcph::auth::FormField>{{"svc", "api_token", "API token", "", true}}; };
    server = std::make_unique<mcph::auth::OAuthServer>(std::move(o), *store);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto form = mcph::auth::parse_form(text);
  // Encoding then parsing gives the value back.
  const auto round = mcph::auth::parse_form("v=" + mcph::auth::url_encode(text));
  if (round.size() != 1 || round.begin()->second != text) __builtin_trap();
  (void)world.server->authorize_form(form);
  (void)world.server->authorize_submit(form, text, "127.0.0.1");
  (void)world.server->token(form);
  (void)world.server->revoke(form);
  (void)world.server->authenticate(text);
  if (size < 2048) (void)world.server->register_client(text);
  return 0;
}
