// libFuzzer: JSON-RPC framing and Engine::handle, both eras, batches and cancellation,
// against the example plugins. Each input is lines; each line one message on one session.
#include <filesystem>

#include "fuzz_support.hpp"
#include "json/bounded.hpp"
#include "plugins/registry.hpp"
#include "protocol/engine.hpp"
#include "services/http_client.hpp"
#include "store/state_store.hpp"

namespace {

using namespace mcph;

class NullChannel final : public protocol::ReplyChannel {
 public:
  void send(const nlohmann::json& m) override { (void)json_text::dump(m); }
  bool carries_requests() const override { return false; }  // never wait for a client
};

struct World {
  std::shared_ptr<const config::Config> config;
  std::unique_ptr<store::StateStore> state;
  services::HttpClient http;
  std::unique_ptr<plugins::Registry> registry;
  std::unique_ptr<protocol::Engine> engine;

  World() {
    const std::string dir = fuzz::temp_dir("engine");
    auto c = config::load_string("state_dir: " + dir + "\nplugin_paths: [" MCPH_PLUGIN_DIR "]\nplugins:\n"
                                 "  - { name: echo, library: example-echo }\n  - { name: counter, library: example-counter }\n",
                                 dir);
    if (!c) fuzz::die(c.error());
    config = *c;
    auto st = store::StateStore::open(config->state_dir);
    if (!st) fuzz::die(st.error());
    state = std::move(*st);
    auto reg = plugins::Registry::load(*config, plugins::Services{state.get(), &http, nullptr});
    if (!reg) fuzz::die(reg.error());
    registry = std::move(*reg);
    protocol::EngineOptions o;
    o.call_timeout = std::chrono::milliseconds(200);
    engine = std::make_unique<protocol::Engine>(*registry, o);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  auto session = std::make_shared<protocol::Session>();
  auto channel = std::make_shared<NullChannel>();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto message = json_text::parse_request(line);  // as the stdio transport reads a line
    if (!message) continue;
    const auto reply = world.engine->handle(*message, *session, channel);
    (void)json_text::dump(reply);
  }
  return 0;
}
