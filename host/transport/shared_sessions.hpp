// Legacy sessions that every replica can serve (store.backend: postgresql), so a load
// balancer need not be sticky.
//
// What a request needs of its session travels in the session id: "s1." + the session's
// fixed part (negotiated version, client capabilities, the user, its expiry) sealed with
// AES-256-GCM under a key the replicas share. Any replica opens it without a database read,
// and a replica serves it even while the store is down. The key rotates with the others
// (`mcp-host keys rotate`): an id sealed before the last rotation still opens. Only what a client may change
// later lives in the store, one row per session written when it changes (log level,
// resource subscriptions) or ends (DELETE), and a replica reads it once, when the session
// first reaches it. Rows and events name a session by its handle (a hash of the id): the
// id itself is a bearer secret and is stored nowhere.
//
// Events (StateStore::publish) tell the replicas holding a session what happened elsewhere:
// its state changed, it ended, or a message arrived for it (a client's answer to a request
// the host sent, or a cancellation) that belongs to a call running on another replica.
//
// A session lives kLifetime from initialize unless DELETEd: with several replicas no one
// sees a session's last use, so server.http.session_idle_timeout_ms only frees a replica's
// memory (the next request brings the session back).
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/engine.hpp"
#include "result.hpp"
#include "store/keyring.hpp"
#include "store/state_store.hpp"

namespace mcph::transport {

class SharedSessions {
 public:
  static constexpr std::chrono::hours kLifetime{24};
  static constexpr std::string_view kChanged = "session.changed";  // body: handle
  static constexpr std::string_view kEnded = "session.ended";      // body: handle
  static constexpr std::string_view kMessage = "session.message";  // body: handle "\n" JSON message

  // What the id carries.
  struct Sealed {
    std::string version;
    nlohmann::json client_capabilities = nlohmann::json::object();
    std::string principal;  // the signed-in user, or empty
    std::string client;     // who it counts against (server.http.max_sessions_per_client)
    int64_t expires = 0;    // Unix seconds
  };
  // What the store adds.
  struct Row {
    bool ended = false;
    int log_level = 1;
    std::vector<std::string> subscriptions;
  };

  explicit SharedSessions(store::StateStore& store) : store_(store) {}

  static bool is_sealed(std::string_view id) { return id.starts_with("s1."); }
  static std::string handle(std::string_view id);

  // A new id carrying `s` (its expiry set to kLifetime from now), or empty while the shared
  // key cannot be read (the store is down): the caller then opens a session of its own.
  std::string seal(Sealed& s);
  // The id's content when this deployment sealed it and it has not expired.
  std::optional<Sealed> open(std::string_view id);

  // The session's row: nullopt when it has none (nothing changed since initialize).
  Result<std::optional<Row>> load(const std::string& handle);
  // Records a change and tells the other replicas.
  Status save(const std::string& handle, const protocol::SessionState& state, int64_t expires);
  Status end(const std::string& handle, int64_t expires);
  // Hands `message` to the replicas holding the session. One too large for an event
  // travels through the store (the event names its row, kept kRelayLifetime).
  Status relay(const std::string& handle, const nlohmann::json& message);
  // The message in a kMessage event's body after the handle and its newline, or nullopt
  // (malformed, or gone).
  std::optional<nlohmann::json> relayed(std::string_view text);
  // Erases the rows of sessions past their expiry, and relayed messages past theirs; the
  // number erased.
  size_t purge();
  static constexpr std::chrono::minutes kRelayLifetime{5};

 private:
  std::shared_ptr<store::Keyring> keys();  // null while the store cannot be read

  store::StateStore& store_;
  std::mutex mutex_;
  std::shared_ptr<store::Keyring> keys_;  // guarded by mutex_; read from the store once
};

}  // namespace mcph::transport
