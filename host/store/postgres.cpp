// The PostgreSQL store: one database shared by every replica (libpq).
//
// Connections come from a bounded pool (store.pool_size); each prepares the statements
// once when it connects and runs them in binary format, so a value's bytes travel as they
// are. A connection that breaks is dropped; a call that finds its connection broken tries
// once more on a fresh one (except put_if, whose first attempt may have landed). While the
// server cannot be reached, calls fail at once with the cause and the time of the next try
// (backoff from 100 ms doubling to 5 s) instead of each waiting for a connect timeout; the
// first call after the backoff tries again, so the host recovers on its own.
//
// Events: publish() is NOTIFY on channel mcph_events, its payload "<origin>\n<topic>\n<body>"
// (origin: this process, whose listeners heard the event already). One more connection,
// outside the pool, LISTENs on a thread of its own from the first subscribe() on; when it
// breaks, it reconnects with the same backoff and then tells listeners kResync.
//
// Schema: mcph_meta (schema_version), mcph_kv (ns, key bytea, value bytea), mcph_leases.
// Migrations run in one transaction under an advisory lock, so replicas that start at once
// take turns and each finds the schema either absent or complete.
#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "services/crypto.hpp"
#include "store/state_store.hpp"

namespace mcph::store {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kSchemaVersion = 1;
constexpr long long kMigrationLock = 0x6d637068'00000001;  // "mcph", 1: pg_advisory_xact_lock's key
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);

// Type OIDs (pg_type.dat): parameters are typed so the statements need no casts.
constexpr Oid kText = 25, kBytea = 17, kInt8 = 20;

struct Statement {
  const char* name;
  const char* sql;
  std::vector<Oid> types;
};

const Statement kStatements[] = {
    {"get", "SELECT value FROM mcph_kv WHERE ns = $1 AND key = $2", {kText, kBytea}},
    {"put",
     "INSERT INTO mcph_kv(ns, key, value) VALUES($1, $2, $3) "
     "ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value, updated_at = now()",
     {kText, kBytea, kBytea}},
    {"erase", "DELETE FROM mcph_kv WHERE ns = $1 AND key = $2", {kText, kBytea}},
    {"list_range", "SELECT key, value FROM mcph_kv WHERE ns = $1 AND key >= $2 AND key < $3 ORDER BY key",
     {kText, kBytea, kBytea}},
    {"list_tail", "SELECT key, value FROM mcph_kv WHERE ns = $1 AND key >= $2 ORDER BY key", {kText, kBytea}},
    {"insert_new", "INSERT INTO mcph_kv(ns, key, value) VALUES($1, $2, $3) ON CONFLICT(ns, key) DO NOTHING",
     {kText, kBytea, kBytea}},
    {"update_if", "UPDATE mcph_kv SET value = $3, updated_at = now() WHERE ns = $1 AND key = $2 AND value = $4",
     {kText, kBytea, kBytea, kBytea}},
    {"erase_if", "DELETE FROM mcph_kv WHERE ns = $1 AND key = $2 AND value = $3", {kText, kBytea, kBytea}},
    // Taken when free, expired or already the owner's, judged by the database's clock.
    {"acquire",
     "INSERT INTO mcph_leases(ns, name, owner, expires_at) "
     "VALUES($1, $2, $3, clock_timestamp() + $4 * interval '1 millisecond') "
     "ON CONFLICT(ns, name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
     "WHERE mcph_leases.owner = excluded.owner OR mcph_leases.expires_at <= clock_timestamp()",
     {kText, kText, kText, kInt8}},
    {"release", "DELETE FROM mcph_leases WHERE ns = $1 AND name = $2 AND owner = $3", {kText, kText, kText}},
    {"notify", "SELECT pg_notify('mcph_events', $1)", {kText}},
};

const char* const kMigration[] = {
    "CREATE TABLE IF NOT EXISTS mcph_meta(key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS mcph_kv(ns text NOT NULL, key bytea NOT NULL, value bytea NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY(ns, key))",
    "CREATE TABLE IF NOT EXISTS mcph_leases(ns text NOT NULL, name text NOT NULL, owner text NOT NULL,"
    " expires_at timestamptz NOT NULL, PRIMARY KEY(ns, name))",
};

struct ResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultFree>;

// libpq's messages end with a newline and may span lines; one line reads better in a log.
std::string one_line(const char* text) {
  std::string s = text != nullptr ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// Parameters as libpq wants them: pointers, lengths and formats (all binary but integers).
class Params {
 public:
  Params& text(std::string_view v) { return add(v, 1); }
  Params& bytes(std::string_view v) { return add(v, 1); }
  Params& integer(long long v) {
    numbers_.push_back(std::to_string(v));
    return add(numbers_.back(), 0);
  }
  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  Params& add(std::string_view v, int format) {
    values_.push_back(v.data() != nullptr ? v.data() : "");
    lengths_.push_back(static_cast<int>(v.size()));
    formats_.push_back(format);
    return *this;
  }
  std::deque<std::string> numbers_;  // stable addresses
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

class PostgresStore final : public StateStore {
 public:
  explicit PostgresStore(const config::StoreConfig& cfg) : cfg_(cfg) {
    location_ = describe(cfg.url);
  }
  ~PostgresStore() override {
    if (listener_.joinable()) {
      stopping_ = true;
      const uint64_t one = 1;
      (void)!::write(wake_, &one, sizeof one);
      listener_.join();
    }
    if (wake_ >= 0) ::close(wake_);
    for (PGconn* c : idle_) PQfinish(c);
  }

  std::string backend() const override { return "postgresql"; }
  std::optional<PoolUse> pool_use() override {
    std::lock_guard lock(mutex_);
    return PoolUse{open_ - static_cast<int>(idle_.size()), open_, cfg_.pool_size};
  }
  std::string location() const override { return location_; }

  uint64_t errors() const override { return errors_.load(std::memory_order_relaxed); }
  Status check() override {
    auto r = run(true, "check", [](PGconn* c) -> Result<int> {
      ResultPtr q(PQexec(c, "SELECT 1"));
      if (!q || PQresultStatus(q.get()) != PGRES_TUPLES_OK) return Error{one_line(PQerrorMessage(c))};
      return 0;
    });
    if (!r) return Error{r.error()};
    return Ok{};
  }

  Result<std::optional<std::string>> get(std::string_view ns, std::string_view key) override {
    return run(true, "get", [&](PGconn* c) -> Result<std::optional<std::string>> {
      auto r = exec(c, "get", Params().text(ns).bytes(key), PGRES_TUPLES_OK);
      if (!r) return Error{r.error()};
      if (PQntuples(r->get()) == 0) return std::optional<std::string>();
      return std::optional<std::string>(column(r->get(), 0, 0));
    });
  }

  Status put(std::string_view ns, std::string_view key, std::string_view value) override {
    return status(run(true, "put", [&](PGconn* c) { return affected(c, "put", Params().text(ns).bytes(key).bytes(value)); }));
  }

  Status erase(std::string_view ns, std::string_view key) override {
    return status(run(true, "erase", [&](PGconn* c) { return affected(c, "erase", Params().text(ns).bytes(key)); }));
  }

  Status list(std::string_view ns, std::string_view prefix,
              const std::function<bool(std::string_view key, std::string_view value)>& each) override {
    const std::optional<std::string> upper = prefix_successor(prefix);
    // The rows are read whole, then handed out without a connection held.
    auto rows = run(true, "list", [&](PGconn* c) -> Result<ResultPtr> {
      Params p;
      p.text(ns).bytes(prefix);
      if (upper) p.bytes(*upper);
      return exec(c, upper ? "list_range" : "list_tail", p, PGRES_TUPLES_OK);
    });
    if (!rows) return Error{rows.error()};
    PGresult* r = rows->get();
    for (int i = 0; i < PQntuples(r); ++i) {
      if (!each(column(r, i, 0), column(r, i, 1))) break;
    }
    return Ok{};
  }

  Result<bool> put_if(std::string_view ns, std::string_view key, std::optional<std::string_view> expected,
                      std::optional<std::string_view> value) override {
    return run(false, "put_if", [&](PGconn* c) -> Result<bool> {
      if (!expected && !value) {  // "erase if absent": true when it is absent
        auto r = exec(c, "get", Params().text(ns).bytes(key), PGRES_TUPLES_OK);
        if (!r) return Error{r.error()};
        return PQntuples(r->get()) == 0;
      }
      Result<long> n = !expected ? affected(c, "insert_new", Params().text(ns).bytes(key).bytes(*value))
                       : value   ? affected(c, "update_if", Params().text(ns).bytes(key).bytes(*value).bytes(*expected))
                                 : affected(c, "erase_if", Params().text(ns).bytes(key).bytes(*expected));
      if (!n) return Error{n.error()};
      return *n > 0;
    });
  }

  Result<bool> acquire(std::string_view ns, std::string_view name, std::string_view owner,
                       std::chrono::milliseconds ttl) override {
    return run(true, "acquire", [&](PGconn* c) -> Result<bool> {
      auto n = affected(c, "acquire", Params().text(ns).text(name).text(owner).integer(ttl.count()));
      if (!n) return Error{n.error()};
      return *n > 0;
    });
  }

  Status each_row(const std::function<bool(std::string_view, std::string_view, std::string_view)>& each) override {
    auto rows = run(true, "each_row", [&](PGconn* c) -> Result<ResultPtr> {
      ResultPtr r(PQexecParams(c, "SELECT ns, key, value FROM mcph_kv ORDER BY ns, key", 0, nullptr, nullptr, nullptr, nullptr, 1));
      if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) return Error{one_line(PQerrorMessage(c))};
      return r;
    });
    if (!rows) return Error{rows.error()};
    for (int i = 0; i < PQntuples(rows->get()); ++i) {
      if (!each(column(rows->get(), i, 0), column(rows->get(), i, 1), column(rows->get(), i, 2))) break;
    }
    return Ok{};
  }

  Status release(std::string_view ns, std::string_view name, std::string_view owner) override {
    return status(run(true, "release", [&](PGconn* c) { return affected(c, "release", Params().text(ns).text(name).text(owner)); }));
  }

 protected:
  // Sent again on a fresh connection if the first broke: an event may then arrive twice,
  // which every event's listener takes in its stride (they are idempotent).
  Status broadcast(std::string_view topic, std::string_view body) override {
    std::string payload = origin_;
    payload.append("\n").append(topic).append("\n").append(body);
    return status(run(true, "publish", [&](PGconn* c) { return exec(c, "notify", Params().text(payload), PGRES_TUPLES_OK); }));
  }

  // Returns once the first LISTEN is in place (or failed): a host that serves requests
  // hears every event published after.
  void start_listening() override {
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    listener_ = std::thread([this] { listen_loop(); });
    std::unique_lock lock(mutex_);
    listen_cv_.wait_for(lock, std::chrono::milliseconds(cfg_.connect_timeout_ms) + std::chrono::seconds(1), [&] { return listen_tried_; });
  }

 private:
  // Waits up to `ms` for the socket `fd` (or -1: none) to be readable; false once stopping.
  bool wait_readable(int fd, int ms) {
    pollfd fds[2] = {{wake_, POLLIN, 0}, {fd, POLLIN, 0}};
    (void)::poll(fds, fd >= 0 ? 2 : 1, ms);
    return !stopping_;
  }

  void listen_loop() {
    auto backoff = kFirstBackoff;
    bool heard = false, tried = false;
    while (!stopping_) {
      auto c = connect();
      if (c) {
        ResultPtr r(PQexec(*c, "LISTEN mcph_events"));
        if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
          PQfinish(*c);
          c = Error{"LISTEN failed"};
        }
      }
      if (!std::exchange(tried, true)) {
        std::lock_guard lock(mutex_);
        listen_tried_ = true;
        listen_cv_.notify_all();
      }
      if (!c) {
        if (!wait_readable(-1, static_cast<int>(backoff.count()))) return;
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      backoff = kFirstBackoff;
      if (std::exchange(heard, true)) deliver(kResync, "");  // events may have been missed
      while (wait_readable(PQsocket(*c), 5000) && PQconsumeInput(*c) == 1) {
        while (PGnotify* n = PQnotifies(*c)) {
          const std::string_view payload(n->extra);
          const size_t a = payload.find('\n'), b = a == std::string_view::npos ? a : payload.find('\n', a + 1);
          if (b != std::string_view::npos && payload.substr(0, a) != origin_) {
            deliver(payload.substr(a + 1, b - a - 1), payload.substr(b + 1));
          }
          PQfreemem(n);
        }
      }
      PQfinish(*c);
    }
  }

  template <typename T>
  static Status status(const Result<T>& r) {
    if (!r) return Error{r.error()};
    return Ok{};
  }

  static std::string column(PGresult* r, int row, int col) {
    return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
  }

  // postgresql://user@host:port/db, from the URL without its password.
  static std::string describe(const std::string& url) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
    if (err != nullptr) PQfreemem(err);
    if (opts == nullptr) return "postgresql (unparsable URL)";
    std::string user, host, port, db;
    for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
      if (o->val == nullptr) continue;
      if (std::strcmp(o->keyword, "user") == 0) user = o->val;
      if (std::strcmp(o->keyword, "host") == 0) host = o->val;
      if (std::strcmp(o->keyword, "port") == 0) port = o->val;
      if (std::strcmp(o->keyword, "dbname") == 0) db = o->val;
    }
    PQconninfoFree(opts);
    return "postgresql://" + (user.empty() ? "" : user + "@") + (host.empty() ? "localhost" : host) +
           (port.empty() ? "" : ":" + port) + "/" + db;
  }

  Result<ResultPtr> exec(PGconn* c, const char* stmt, const Params& p, ExecStatusType want) {
    ResultPtr r(PQexecPrepared(c, stmt, p.size(), p.values(), p.lengths(), p.formats(), 1));
    if (!r || PQresultStatus(r.get()) != want) {
      return Error{std::string(stmt) + ": " + one_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c))};
    }
    return r;
  }

  Result<long> affected(PGconn* c, const char* stmt, const Params& p) {
    auto r = exec(c, stmt, p, PGRES_COMMAND_OK);
    if (!r) return Error{r.error()};
    return std::atol(PQcmdTuples(r->get()));
  }

  // A new connection, with the schema migrated (once per process) and the statements prepared.
  Result<PGconn*> connect() {
    const std::string timeout = std::to_string(std::max(1, cfg_.connect_timeout_ms / 1000));
    const std::string options = "-c statement_timeout=" + std::to_string(cfg_.statement_timeout_ms);
    // expand_dbname: the URL is the dbname entry; the entries after it override its parts.
    // TCP keepalives: a server that vanished without closing (a lost machine) is noticed
    // within about 25 s, by the pool and by the events listener, which otherwise waits.
    const char* keys[] = {"dbname", "connect_timeout", "application_name", "options",
                          "keepalives_idle", "keepalives_interval", "keepalives_count", nullptr};
    const char* values[] = {cfg_.url.c_str(), timeout.c_str(), "mcp-host", options.c_str(), "10", "5", "3", nullptr};
    PGconn* c = PQconnectdbParams(keys, values, 1);
    if (c == nullptr) return Error{"out of memory"};
    if (PQstatus(c) != CONNECTION_OK) {
      std::string why = one_line(PQerrorMessage(c));
      PQfinish(c);
      return Error{why};
    }
    // The server's notices ("relation ... already exists, skipping") are not the host's news.
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    auto fail = [&](const std::string& why) -> Result<PGconn*> {
      PQfinish(c);
      return Error{why};
    };
    if (!migrated_.load()) {
      if (auto st = migrate(c); !st) return fail(st.error());
      migrated_ = true;
    }
    for (const auto& s : kStatements) {
      ResultPtr r(PQprepare(c, s.name, s.sql, static_cast<int>(s.types.size()), s.types.data()));
      if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        return fail(std::string("prepare ") + s.name + ": " + one_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c)));
      }
    }
    return c;
  }

  Status migrate(PGconn* c) {
    auto simple = [&](const std::string& sql) -> Result<ResultPtr> {
      ResultPtr r(PQexec(c, sql.c_str()));
      const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        return Error{"migration: " + one_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c))};
      }
      return r;
    };
    auto body = [&]() -> Status {
      if (auto r = simple("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")"); !r) return Error{r.error()};
      for (const char* sql : kMigration) {
        if (auto r = simple(sql); !r) return Error{r.error()};
      }
      auto r = simple("INSERT INTO mcph_meta(key, value) VALUES('schema_version', '" + std::to_string(kSchemaVersion) +
                      "') ON CONFLICT(key) DO NOTHING");
      if (!r) return Error{r.error()};
      auto v = simple("SELECT value FROM mcph_meta WHERE key = 'schema_version'");
      if (!v) return Error{v.error()};
      const int version = PQntuples(v->get()) == 1 ? std::atoi(PQgetvalue(v->get(), 0, 0)) : 0;
      // Later versions migrate here, one step at a time. A newer schema is not ours to write.
      if (version != kSchemaVersion) {
        return Error{"schema_version " + std::to_string(version) + " is not supported (this host knows " +
                     std::to_string(kSchemaVersion) + ")"};
      }
      return Ok{};
    };
    if (auto r = simple("BEGIN"); !r) return Error{r.error()};
    Status st = body();
    if (auto r = simple(st ? "COMMIT" : "ROLLBACK"); !r && st) return Error{r.error()};
    return st;
  }

  // A connection from the pool (or a new one, while under pool_size); an error at once
  // while the server is known to be down.
  Result<PGconn*> take() {
    std::unique_lock lock(mutex_);
    const auto wait_until = Clock::now() + std::chrono::milliseconds(cfg_.connect_timeout_ms);
    for (;;) {
      if (!idle_.empty()) {
        PGconn* c = idle_.back();
        idle_.pop_back();
        return c;
      }
      if (Clock::now() < retry_at_) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - Clock::now()).count();
        return Error{down_reason_ + "; trying again in " + std::to_string(ms) + " ms"};
      }
      if (open_ < cfg_.pool_size) break;
      if (pool_cv_.wait_until(lock, wait_until) == std::cv_status::timeout && idle_.empty()) {
        return Error{"every connection (store.pool_size: " + std::to_string(cfg_.pool_size) + ") stayed busy for " +
                     std::to_string(cfg_.connect_timeout_ms) + " ms"};
      }
    }
    ++open_;
    lock.unlock();
    auto c = connect();
    lock.lock();
    if (!c) {
      --open_;
      backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, std::chrono::milliseconds(kMaxBackoff));
      retry_at_ = Clock::now() + backoff_;
      down_reason_ = "cannot reach " + location_ + ": " + c.error();
      pool_cv_.notify_all();
      return Error{down_reason_};
    }
    backoff_ = std::chrono::milliseconds(0);
    return *c;
  }

  void give_back(PGconn* c) {
    std::lock_guard lock(mutex_);
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE) {
      idle_.push_back(c);
    } else {
      PQfinish(c);
      --open_;
    }
    pool_cv_.notify_one();
  }

  // Runs `op` on a pooled connection; once more on a fresh one when the connection turned
  // out broken and `retry` allows it. Errors say "store <location>: <what>: <why>".
  template <typename Op>
  auto run(bool retry, const char* what, Op op) -> decltype(op(nullptr)) {
    for (int attempt = 0;; ++attempt) {
      auto c = take();
      if (!c) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        return Error{"store unavailable: " + c.error()};
      }
      auto r = op(*c);
      const bool broken = PQstatus(*c) != CONNECTION_OK;
      give_back(*c);
      if (r || !broken || !retry || attempt > 0) {
        if (!r) {
          errors_.fetch_add(1, std::memory_order_relaxed);
          return Error{"store " + location_ + ": " + what + ": " + r.error()};
        }
        return r;
      }
    }
  }

  const config::StoreConfig cfg_;
  std::string location_;
  std::atomic<uint64_t> errors_{0};
  std::atomic<bool> migrated_{false};
  std::mutex mutex_;
  std::condition_variable pool_cv_;
  std::vector<PGconn*> idle_;           // guarded by mutex_
  int open_ = 0;                        // guarded by mutex_: connections in use or idle
  Clock::time_point retry_at_{};        // guarded by mutex_: no new connection before this
  std::chrono::milliseconds backoff_{0};  // guarded by mutex_
  std::string down_reason_;             // guarded by mutex_
  const std::string origin_ = crypto::hex(crypto::random_bytes(8));  // this process, in NOTIFY payloads
  std::thread listener_;
  std::atomic<bool> stopping_{false};
  int wake_ = -1;  // eventfd: wakes the listener to stop
  std::condition_variable listen_cv_;
  bool listen_tried_ = false;  // guarded by mutex_: the listener's first connection was tried
};

}  // namespace

std::unique_ptr<StateStore> make_postgres_store(const config::StoreConfig& cfg) {
  return std::make_unique<PostgresStore>(cfg);
}

}  // namespace mcph::store
