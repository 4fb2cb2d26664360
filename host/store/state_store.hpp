// Durable key-value state for plugin instances (one namespace per instance) and the host
// itself (OAuth: namespace "oauth"; shared keys: "host"), with the two coordination
// primitives replicas need: compare-and-set and leases, and the events they must hear at
// once (publish/subscribe).
//
// StateStore is the seam every backend fills, and the contract tests
// (tests/integration/test_store_contract.cpp) run the same cases against each:
//   - sqlite.cpp: the embedded default, one file under state_dir (WAL mode,
//     synchronous=NORMAL: a committed write survives kill -9 of the host);
//   - postgres.cpp: shared by every replica (libpq, a bounded pool, prepared statements,
//     reconnect with backoff; while the server is down, calls fail at once with a clear
//     error instead of waiting);
//   - an isolated plugin's child process gets one that forwards to its host (isolation/).
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "result.hpp"

namespace mcph::config {
struct StoreConfig;
}

namespace mcph::store {

class StateStore {
 public:
  // The SQLite store: creates `dir` (0700) and `dir`/state.db (0600) if needed. The
  // database itself opens on first use; check() opens it now and reports any problem.
  static Result<std::unique_ptr<StateStore>> open(const std::string& dir);
  // The store the configuration names: SQLite under `state_dir`, or PostgreSQL at its URL
  // (connections open on first use; check() connects and runs the migrations now).
  static Result<std::unique_ptr<StateStore>> open(const config::StoreConfig& cfg, const std::string& state_dir);
  virtual ~StateStore() = default;

  // "sqlite" or "postgresql".
  virtual std::string backend() const = 0;
  // Where it is, without secrets: a path, or postgresql://user@host:port/db.
  virtual std::string location() const = 0;
  // Reachable and migrated (opens or connects if needed).
  virtual Status check() = 0;
  // A connection pool's use (PostgreSQL), for /healthz; nullopt for a store without one.
  struct PoolUse {
    int busy = 0;  // connections running a statement now
    int open = 0;  // busy or idle
    int size = 0;  // store.pool_size
  };
  virtual std::optional<PoolUse> pool_use() { return std::nullopt; }
  // Operations that failed since it opened (telemetry: mcp_host_store_errors_total).
  virtual uint64_t errors() const { return 0; }

  virtual Result<std::optional<std::string>> get(std::string_view ns, std::string_view key) = 0;
  virtual Status put(std::string_view ns, std::string_view key, std::string_view value) = 0;
  virtual Status erase(std::string_view ns, std::string_view key) = 0;
  // Keys starting with prefix, in byte order; `each` returns false to stop. `each` must not
  // call back into the store and should be quick.
  virtual Status list(std::string_view ns, std::string_view prefix,
                      const std::function<bool(std::string_view key, std::string_view value)>& each) = 0;

  // Every row of every namespace, in (namespace, key) order: for copying a store
  // (`mcp-host store migrate`). Same rules for `each` as list().
  virtual Status each_row(
      const std::function<bool(std::string_view ns, std::string_view key, std::string_view value)>& each) = 0;

  // Compare-and-set: when the key's value is `expected` (nullopt: the key is absent), sets
  // it to `value` (nullopt: erases it) and answers true; otherwise changes nothing and
  // answers false. Atomic across every process sharing the store.
  virtual Result<bool> put_if(std::string_view ns, std::string_view key, std::optional<std::string_view> expected,
                              std::optional<std::string_view> value) = 0;

  // Leases: `owner` holds lease `name` (in `ns`) until `ttl` from now when it is free,
  // expired, or already its own (a renewal); true then, false while another owner holds it.
  // Expiry is judged by one clock for all replicas (the database's, for PostgreSQL).
  virtual Result<bool> acquire(std::string_view ns, std::string_view name, std::string_view owner,
                               std::chrono::milliseconds ttl) = 0;
  // Gives the lease up if `owner` holds it (no error otherwise).
  virtual Status release(std::string_view ns, std::string_view name, std::string_view owner) = 0;

  // ---- Events ----------------------------------------------------------------------------
  // The few things every replica must hear at once: a revoked grant, a resource update, a
  // message for a legacy session whose call runs elsewhere. publish() hands the event to
  // this process's listeners before it returns and, with PostgreSQL, to every other
  // replica's through NOTIFY (milliseconds on a LAN). Delivery is at most once: a replica
  // whose listening connection broke hears kResync when it is back, and must then drop
  // what it cached (events in between are lost). Topic and body are text, together at most
  // kMaxEvent bytes.
  static constexpr size_t kMaxEvent = 7900;  // NOTIFY's payload limit is 8000 bytes
  static constexpr std::string_view kResync = "store.resync";
  using EventFn = std::function<void(std::string_view topic, std::string_view body)>;
  class Subscription;
  Status publish(std::string_view topic, std::string_view body);
  // `fn` hears every event (from any thread) until the Subscription is destroyed; once its
  // destructor returns, `fn` runs no more. `fn` may publish but must not block for long.
  [[nodiscard]] Subscription subscribe(EventFn fn);

 protected:
  // Sends an event to the other processes sharing the store (none for SQLite).
  virtual Status broadcast(std::string_view topic, std::string_view body);
  // Called once, at the first subscribe(): start hearing other processes' events.
  virtual void start_listening() {}
  // Hands an event to this process's listeners (a backend's listener thread calls it).
  void deliver(std::string_view topic, std::string_view body);

 private:
  struct Listener {
    std::recursive_mutex mutex;  // held while fn runs, so unsubscribing waits for it
    EventFn fn;                  // guarded by mutex; empty once unsubscribed
  };
  std::mutex listeners_mutex_;
  std::vector<std::shared_ptr<Listener>> listeners_;  // guarded by listeners_mutex_
  bool listening_ = false;                             // guarded by listeners_mutex_
};

class StateStore::Subscription {
 public:
  Subscription() = default;
  Subscription(StateStore* store, std::shared_ptr<Listener> l) : store_(store), listener_(std::move(l)) {}
  Subscription(Subscription&& o) noexcept : store_(o.store_), listener_(std::move(o.listener_)) {}
  Subscription& operator=(Subscription&& o) noexcept;
  ~Subscription() { reset(); }
  void reset();

 private:
  StateStore* store_ = nullptr;
  std::shared_ptr<Listener> listener_;
};

// A secret every replica sharing the store must hold the same (a sealing or signing key):
// `bytes` random bytes drawn and stored once under ("host", "key/<name>"), read by the
// others; replicas that race keep the first one written.
Result<std::string> shared_key(StateStore& store, std::string_view name, size_t bytes = 32);
// Where shared_key keeps `name`, in namespace "host" (for copying keys in from elsewhere).
std::string shared_key_slot(std::string_view name);

// Copies every row of `from` into `to` (overwriting what `to` holds under the same key),
// then reads each back from `to` and compares: the number of rows, or the first problem.
// `progress` hears the count every 10,000 rows.
Result<size_t> copy_rows(StateStore& from, StateStore& to, const std::function<void(size_t)>& progress = {});

// Erases the rows of `ns` under `prefix` whose value `gone` accepts (expired ones, say),
// reading them whole first as list() wants; how many. A store that cannot be read now
// erases nothing (a purge tries again later).
size_t erase_where(StateStore& store, std::string_view ns, std::string_view prefix,
                   const std::function<bool(std::string_view value)>& gone);

// Creates `dir` (and its parents) private to the user (0700); an existing folder is left as
// the operator made it. The SQLite store's folder, and state_dir with any backend.
Status ensure_private_dir(const std::string& dir);

// The smallest string greater than every string that starts with `prefix`, in byte order:
// trailing 0xFF bytes cannot be incremented, so they are dropped and the byte before them
// is bumped ("a\xFF" -> "b"). An empty prefix, or one made only of 0xFF bytes, has no upper
// bound (nullopt). For range scans in both backends.
std::optional<std::string> prefix_successor(std::string_view prefix);

}  // namespace mcph::store
