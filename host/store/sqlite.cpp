#include "store/state_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

namespace mcph::store {
namespace fs = std::filesystem;

namespace {

// 1: kv. 2: leases.
constexpr int kSchemaVersion = 2;

// ---- RAII for the SQLite handles --------------------------------------------------------

struct DbClose {
  // close_v2 rather than close: it never fails with SQLITE_BUSY, so a forgotten statement
  // cannot leak the connection (our statements are finalized first anyway, see Impl).
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;

struct StmtFinalize {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// One use of a cached statement. Resetting at the end matters beyond reuse: a SELECT that
// is left un-reset keeps its WAL read transaction open and stops checkpoints from ever
// finishing (SQLite docs, "wal.html", section 6). Clearing the bindings drops the pointers
// we bound with SQLITE_STATIC, which point into the caller's buffers.
class StmtUse {
 public:
  explicit StmtUse(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StmtUse() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StmtUse(const StmtUse&) = delete;
  StmtUse& operator=(const StmtUse&) = delete;

  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

// sqlite3_bind_text/blob bind SQL NULL when the pointer is null, and an empty string_view
// may well have data() == nullptr; value is NOT NULL, so hand SQLite a real empty buffer.
const char* non_null(std::string_view s) { return s.data() != nullptr ? s.data() : ""; }

// SQLITE_STATIC is safe: every bound buffer outlives the statement's use (StmtUse clears
// the bindings before the caller's arguments go away).
int bind_text(sqlite3_stmt* stmt, int index, std::string_view text) {
  return sqlite3_bind_text64(stmt, index, non_null(text), text.size(), SQLITE_STATIC,
                             SQLITE_UTF8);
}

int bind_blob(sqlite3_stmt* stmt, int index, std::string_view bytes) {
  return sqlite3_bind_blob64(stmt, index, non_null(bytes), bytes.size(), SQLITE_STATIC);
}

std::string_view column_bytes(sqlite3_stmt* stmt, int column) {
  // Ask for the pointer before the size (SQLite docs, "column_blob": the size is only
  // meaningful after the conversion the pointer call may do). Empty blobs come back as null.
  const void* data = sqlite3_column_blob(stmt, column);
  const int size = sqlite3_column_bytes(stmt, column);
  if (data == nullptr || size <= 0) return {};
  return {static_cast<const char*>(data), static_cast<size_t>(size)};
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// ---- Files ----------------------------------------------------------------------------

// SQLite creates new databases with 0644 & ~umask (SQLITE_DEFAULT_FILE_PERMISSIONS), so we
// create the file ourselves first. The -wal and -shm files SQLite makes later copy the
// database file's mode (os_unix.c, findCreateFileMode), so they end up 0600 as well.
Status ensure_private_file(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Error{"state store: cannot open " + file.string() + ": " + std::strerror(errno)};
  }
  const int rc = ::fchmod(fd, 0600);
  const int saved_errno = errno;
  ::close(fd);
  if (rc != 0) {
    return Error{"state store: cannot chmod " + file.string() + ": " + std::strerror(saved_errno)};
  }
  return Ok{};
}

}  // namespace

// The state may hold plugin credentials, so the folder we create is private to the user.
// An existing folder is left as it is: the operator chose it.
Status ensure_private_dir(const std::string& path) {
  const fs::path dir(path);
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return Ok{};
  if (dir.has_parent_path()) {
    fs::create_directories(dir.parent_path(), ec);
    if (ec) {
      return Error{"state store: cannot create " + dir.parent_path().string() + ": " +
                   ec.message()};
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Error{"state store: cannot create " + dir.string() + ": " + std::strerror(errno)};
  }
  // mkdir's mode is filtered by the umask; 0700 survives any sane umask, but say it exactly.
  if (::chmod(dir.c_str(), 0700) != 0) {
    return Error{"state store: cannot chmod " + dir.string() + ": " + std::strerror(errno)};
  }
  return Ok{};
}

// ---- Impl ------------------------------------------------------------------------------

// Thread-safety: there is exactly one sqlite3 connection, opened with SQLITE_OPEN_NOMUTEX,
// and every use of it (and of the cached statements, which belong to it) happens with
// `mutex` held. Writes are short autocommit transactions, so one connection is plenty; the
// mutex also makes the statement cache safe, which SQLite's own serialized mode would not
// (a statement's bindings and cursor are per statement, not per call).
struct SqliteImpl {
  std::string path;  // for error messages
  std::mutex mutex;
  mutable std::atomic<uint64_t> errors{0};  // operations that failed
  // Declared before the statements so that it is destroyed after them.
  DbPtr db;
  StmtPtr get_stmt;
  StmtPtr put_stmt;
  StmtPtr erase_stmt;
  StmtPtr list_range_stmt;  // prefix with a successor: key >= prefix AND key < successor
  StmtPtr list_tail_stmt;   // no successor (empty or all-0xFF prefix): key >= prefix
  StmtPtr insert_new_stmt;  // put_if: only when absent
  StmtPtr update_if_stmt;   // put_if: only when the value is the expected one
  StmtPtr erase_if_stmt;
  StmtPtr acquire_stmt;
  StmtPtr release_stmt;

  Error sqlite_error(const std::string& what) const {
    errors.fetch_add(1, std::memory_order_relaxed);
    return Error{"state store " + path + ": " + what + ": " + sqlite3_errmsg(db.get())};
  }

  Status exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db.get(), sql, nullptr, nullptr, &message) == SQLITE_OK) return Ok{};
    std::string text = message != nullptr ? message : sqlite3_errmsg(db.get());
    sqlite3_free(message);
    return Error{"state store " + path + ": " + sql + ": " + text};
  }

  Result<StmtPtr> prepare(const char* sql) {
    sqlite3_stmt* raw = nullptr;
    // PERSISTENT: these live as long as the store, which tells SQLite not to take them
    // from its small lookaside allocator.
    if (sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) !=
        SQLITE_OK) {
      sqlite3_finalize(raw);
      return sqlite_error(std::string("prepare \"") + sql + "\"");
    }
    return StmtPtr(raw);
  }

  std::string open_error;  // set once opening failed

  Status ensure_open();
  Status configure();
  Status migrate();
  Status prepare_all();
};

Status SqliteImpl::configure() {
  // busy_timeout first, so that switching to WAL waits for another process's lock instead
  // of failing at once.
  if (auto s = exec("PRAGMA busy_timeout=5000"); !s) return s;
  // journal_mode answers with the mode actually in force; a database on a file system
  // without shared memory support would silently stay in rollback mode.
  auto stmt = prepare("PRAGMA journal_mode=WAL");
  if (!stmt) return Error{stmt.error()};
  StmtUse use(stmt->get());
  // Switching a new file to WAL needs it alone, and SQLite answers BUSY at once (without
  // its busy handler) while another connection opens it too: wait for that one, up to 5 s.
  for (int attempt = 0;; ++attempt) {
    const int rc = sqlite3_step(use.get());
    if (rc == SQLITE_ROW) break;
    sqlite3_reset(use.get());
    if ((rc & 0xff) != SQLITE_BUSY || attempt == 250) return sqlite_error("PRAGMA journal_mode=WAL");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string_view mode = column_bytes(use.get(), 0);
  if (mode != "wal") {
    return Error{"state store " + path + ": cannot enable WAL (journal_mode is " +
                 std::string(mode) + ")"};
  }
  // NORMAL in WAL mode: a commit is written to the WAL before returning but not fsynced,
  // so it survives the host being killed (the data is in the OS page cache) though not a
  // power cut (SQLite docs, "pragma.html#pragma_synchronous").
  if (auto s = exec("PRAGMA synchronous=NORMAL"); !s) return s;
  // Deleted content is overwritten with zeros, not left in free pages: a revoked grant's
  // sealed credentials, a spent token's hash, a plugin's deleted value.
  return exec("PRAGMA secure_delete=ON");
}

Status SqliteImpl::migrate() {
  // IMMEDIATE takes the write lock up front, so two hosts opening a fresh file at once
  // cannot both decide to create the schema.
  if (auto s = exec("BEGIN IMMEDIATE"); !s) return s;
  auto status = [&]() -> Status {
    if (auto s = exec("CREATE TABLE IF NOT EXISTS meta("
                      "key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID");
        !s) {
      return s;
    }
    if (auto s = exec("CREATE TABLE IF NOT EXISTS kv("
                      "ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
                      " updated_at INTEGER, PRIMARY KEY(ns, key)) WITHOUT ROWID");
        !s) {
      return s;
    }
    if (auto s = exec("CREATE TABLE IF NOT EXISTS leases("
                      "ns TEXT NOT NULL, name TEXT NOT NULL, owner TEXT NOT NULL,"
                      " expires_at INTEGER NOT NULL, PRIMARY KEY(ns, name)) WITHOUT ROWID");
        !s) {
      return s;
    }
    const std::string seed = "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '" +
                             std::to_string(kSchemaVersion) + "')";
    if (auto s = exec(seed.c_str()); !s) return s;

    auto stmt = prepare("SELECT value FROM meta WHERE key = 'schema_version'");
    if (!stmt) return Error{stmt.error()};
    StmtUse use(stmt->get());
    if (sqlite3_step(use.get()) != SQLITE_ROW) return sqlite_error("read schema_version");
    const int version = sqlite3_column_int(use.get(), 0);
    // 1 -> 2 added the leases table (created above).
    if (version == 1) {
      if (auto s = exec("UPDATE meta SET value = '2' WHERE key = 'schema_version'"); !s) return s;
      return Ok{};
    }
    // A newer file must not be written by an older host that does not know its layout.
    if (version != kSchemaVersion) {
      return Error{"state store " + path + ": schema_version " + std::to_string(version) +
                   " is not supported (this host knows " + std::to_string(kSchemaVersion) +
                   ")"};
    }
    return Ok{};
  }();
  if (!status) {
    (void)exec("ROLLBACK");
    return status;
  }
  return exec("COMMIT");
}

Status SqliteImpl::prepare_all() {
  struct Target {
    StmtPtr* slot;
    const char* sql;
  };
  const Target targets[] = {
      {&get_stmt, "SELECT value FROM kv WHERE ns = ?1 AND key = ?2"},
      {&put_stmt,
       "INSERT INTO kv(ns, key, value, updated_at) VALUES(?1, ?2, ?3, ?4) "
       "ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value, "
       "updated_at = excluded.updated_at"},
      {&erase_stmt, "DELETE FROM kv WHERE ns = ?1 AND key = ?2"},
      {&list_range_stmt,
       "SELECT key, value FROM kv WHERE ns = ?1 AND key >= ?2 AND key < ?3 ORDER BY key"},
      {&list_tail_stmt, "SELECT key, value FROM kv WHERE ns = ?1 AND key >= ?2 ORDER BY key"},
      {&insert_new_stmt,
       "INSERT INTO kv(ns, key, value, updated_at) VALUES(?1, ?2, ?3, ?4) ON CONFLICT(ns, key) DO NOTHING"},
      {&update_if_stmt, "UPDATE kv SET value = ?3, updated_at = ?4 WHERE ns = ?1 AND key = ?2 AND value = ?5"},
      {&erase_if_stmt, "DELETE FROM kv WHERE ns = ?1 AND key = ?2 AND value = ?3"},
      // Taken when free, expired or already the owner's; otherwise no row changes.
      {&acquire_stmt,
       "INSERT INTO leases(ns, name, owner, expires_at) VALUES(?1, ?2, ?3, ?4 + ?5) "
       "ON CONFLICT(ns, name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
       "WHERE leases.owner = excluded.owner OR leases.expires_at <= ?4"},
      {&release_stmt, "DELETE FROM leases WHERE ns = ?1 AND name = ?2 AND owner = ?3"},
  };
  for (const auto& target : targets) {
    auto stmt = prepare(target.sql);
    if (!stmt) return Error{stmt.error()};
    *target.slot = std::move(*stmt);
  }
  return Ok{};
}

// ---- SqliteStateStore ------------------------------------------------------------------

class SqliteStateStore final : public StateStore {
 public:
  explicit SqliteStateStore(std::unique_ptr<SqliteImpl> impl) : impl_(std::move(impl)) {}
  std::string backend() const override { return "sqlite"; }
  std::string location() const override { return impl_->path; }
  Status check() override;
  uint64_t errors() const override;
  Result<std::optional<std::string>> get(std::string_view ns, std::string_view key) override;
  Status put(std::string_view ns, std::string_view key, std::string_view value) override;
  Status erase(std::string_view ns, std::string_view key) override;
  Status list(std::string_view ns, std::string_view prefix,
              const std::function<bool(std::string_view key, std::string_view value)>& each) override;
  Result<bool> put_if(std::string_view ns, std::string_view key, std::optional<std::string_view> expected,
                      std::optional<std::string_view> value) override;
  Result<bool> acquire(std::string_view ns, std::string_view name, std::string_view owner,
                       std::chrono::milliseconds ttl) override;
  Status release(std::string_view ns, std::string_view name, std::string_view owner) override;
  Status each_row(const std::function<bool(std::string_view, std::string_view, std::string_view)>& each) override;

 private:
  std::unique_ptr<SqliteImpl> impl_;
};

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& dir) {
  const fs::path folder(dir);
  const fs::path file = folder / "state.db";
  if (auto s = ensure_private_dir(folder.string()); !s) return Error{s.error()};
  if (auto s = ensure_private_file(file); !s) return Error{s.error()};

  auto impl = std::make_unique<SqliteImpl>();
  impl->path = file.string();
  return std::unique_ptr<StateStore>(new SqliteStateStore(std::move(impl)));
}

// The database opens on first use, not at start-up: a host whose plugins keep no state
// never pays for SQLite (and its start stays fast). Called with the mutex held.
Status SqliteImpl::ensure_open() {
  if (db) return Ok{};
  if (!open_error.empty()) {
    errors.fetch_add(1, std::memory_order_relaxed);
    return Error{open_error};
  }
  // A failed open counts as one failed operation, however many of its steps failed; a
  // metrics export reading the count meanwhile sees no error while the open goes well.
  const uint64_t errors_before = errors.load(std::memory_order_relaxed);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  db.reset(raw);  // sqlite3_open_v2 may hand back a handle even when it fails
  Status st = Ok{};
  if (rc != SQLITE_OK) {
    st = Error{"state store " + path + ": open: " + (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc))};
  } else {
    sqlite3_extended_result_codes(raw, 1);
    st = configure();
    if (st) st = migrate();
    if (st) st = prepare_all();
  }
  if (!st) {
    // Remember the failure: every later use reports the same cause without retrying.
    open_error = st.error();
    get_stmt.reset();
    put_stmt.reset();
    erase_stmt.reset();
    list_range_stmt.reset();
    list_tail_stmt.reset();
    insert_new_stmt.reset();
    update_if_stmt.reset();
    erase_if_stmt.reset();
    acquire_stmt.reset();
    release_stmt.reset();
    db.reset();
  }
  errors.store(errors_before + (st ? 0 : 1), std::memory_order_relaxed);
  return st;
}

uint64_t SqliteStateStore::errors() const { return impl_->errors.load(std::memory_order_relaxed); }

Status SqliteStateStore::check() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->ensure_open();
}

Result<std::optional<std::string>> SqliteStateStore::get(std::string_view ns, std::string_view key) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto s = impl_->ensure_open(); !s) return Error{s.error()};
  StmtUse use(impl_->get_stmt.get());
  if (bind_text(use.get(), 1, ns) != SQLITE_OK || bind_text(use.get(), 2, key) != SQLITE_OK) {
    return impl_->sqlite_error("get: bind");
  }
  const int rc = sqlite3_step(use.get());
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return impl_->sqlite_error("get");
  return std::optional<std::string>(std::string(column_bytes(use.get(), 0)));
}

Status SqliteStateStore::put(std::string_view ns, std::string_view key, std::string_view value) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto s = impl_->ensure_open(); !s) return s;
  StmtUse use(impl_->put_stmt.get());
  if (bind_text(use.get(), 1, ns) != SQLITE_OK || bind_text(use.get(), 2, key) != SQLITE_OK ||
      bind_blob(use.get(), 3, value) != SQLITE_OK ||
      sqlite3_bind_int64(use.get(), 4, now_ms()) != SQLITE_OK) {
    return impl_->sqlite_error("put: bind");
  }
  // Autocommit: when step returns DONE the transaction is committed to the WAL.
  if (sqlite3_step(use.get()) != SQLITE_DONE) return impl_->sqlite_error("put");
  return Ok{};
}

Status SqliteStateStore::erase(std::string_view ns, std::string_view key) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto s = impl_->ensure_open(); !s) return s;
  StmtUse use(impl_->erase_stmt.get());
  if (bind_text(use.get(), 1, ns) != SQLITE_OK || bind_text(use.get(), 2, key) != SQLITE_OK) {
    return impl_->sqlite_error("erase: bind");
  }
  if (sqlite3_step(use.get()) != SQLITE_DONE) return impl_->sqlite_error("erase");
  return Ok{};
}

// `each` runs with the store's mutex held and with a read transaction open, so it must not
// call back into this StateStore (std::mutex is not recursive: that would deadlock) and
// should be quick. The views it gets are valid only during that call.
Status SqliteStateStore::list(
    std::string_view ns, std::string_view prefix,
    const std::function<bool(std::string_view key, std::string_view value)>& each) {
  const std::optional<std::string> upper = prefix_successor(prefix);
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto s = impl_->ensure_open(); !s) return s;
  StmtUse use(upper ? impl_->list_range_stmt.get() : impl_->list_tail_stmt.get());
  if (bind_text(use.get(), 1, ns) != SQLITE_OK || bind_text(use.get(), 2, prefix) != SQLITE_OK ||
      (upper && bind_text(use.get(), 3, *upper) != SQLITE_OK)) {
    return impl_->sqlite_error("list: bind");
  }
  for (;;) {
    const int rc = sqlite3_step(use.get());
    if (rc == SQLITE_DONE) return Ok{};
    if (rc != SQLITE_ROW) return impl_->sqlite_error("list");
    if (!each(column_bytes(use.get(), 0), column_bytes(use.get(), 1))) return Ok{};
  }
}

// One statement, so atomic: SQLite's write lock covers every process on the file.
Result<bool> SqliteStateStore::put_if(std::string_view ns, std::string_view key, std::optional<std::string_view> expected,
                                      std::optional<std::string_view> value) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto s = impl_->ensure_open(); !s) return Error{s.error()};
  if (!expected && !value) {  // "erase if absent": true when it is absent
    StmtUse use(impl_->get_stmt.get());
    if (bind_text(use.get(), 1, ns) != SQLITE_OK || bind_text(use.get(), 2, key) != SQLITE_OK) return impl_->sqlite_error("put_if: bind");
    const int rc = sqlite3_step(use.get());
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return impl_->sqlite_error("put_if");
    return rc == SQLITE_DONE;
  }
  sqlite3_stmt* stmt = !expected ? impl_->insert_new_stmt.get() : value ? impl_->update_if_stmt.get() : impl_->erase_if_stmt.get();
  StmtUse use(stmt);
  bool ok = bind_text(stmt, 1, ns) == SQLITE_OK && bind_text(stmt, 2, key) == SQLITE_OK;
  if (!expected) {
    ok = ok && bind_blob(stmt, 3, *value) == SQLITE_OK && sqlite3_bind_int64(stmt, 4, now_ms()) == SQLITE_OK;
  } else if (value) {
    ok = ok && bind_blob(stmt, 3, *value) == SQLITE_OK && sqlite3_bind_int64(stmt, 4, now_ms()) == SQLITE_OK &&
         bind_blob(stmt, 5, *expected) == SQLITE_OK;
  } else {
    ok = ok && bind_blob(stmt, 3, *expected) == SQLITE_OK;
  }
  if (!ok) return impl_->sqlite_error("put_if: bind");
  if (sqlite3_step(stmt) != SQLITE_DONE) return impl_->sqlite_error("put_if");
  return sqlite3_changes(impl_->db.get()) > 0;
}

Result<bool> SqliteStateStore::acquire(std::string_view ns, std::string_view name, std::string_view owner,
                                       std::chrono::milliseconds ttl) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto s = impl_->ensure_open(); !s) return Error{s.error()};
  StmtUse use(impl_->acquire_stmt.get());
  if (bind_text(use.get(), 1, ns) != SQLITE_OK || bind_text(use.get(), 2, name) != SQLITE_OK ||
      bind_text(use.get(), 3, owner) != SQLITE_OK || sqlite3_bind_int64(use.get(), 4, now_ms()) != SQLITE_OK ||
      sqlite3_bind_int64(use.get(), 5, ttl.count()) != SQLITE_OK) {
    return impl_->sqlite_error("acquire: bind");
  }
  if (sqlite3_step(use.get()) != SQLITE_DONE) return impl_->sqlite_error("acquire");
  return sqlite3_changes(impl_->db.get()) > 0;
}

Status SqliteStateStore::release(std::string_view ns, std::string_view name, std::string_view owner) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto s = impl_->ensure_open(); !s) return s;
  StmtUse use(impl_->release_stmt.get());
  if (bind_text(use.get(), 1, ns) != SQLITE_OK || bind_text(use.get(), 2, name) != SQLITE_OK ||
      bind_text(use.get(), 3, owner) != SQLITE_OK) {
    return impl_->sqlite_error("release: bind");
  }
  if (sqlite3_step(use.get()) != SQLITE_DONE) return impl_->sqlite_error("release");
  return Ok{};
}

Status SqliteStateStore::each_row(const std::function<bool(std::string_view, std::string_view, std::string_view)>& each) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto s = impl_->ensure_open(); !s) return s;
  auto stmt = impl_->prepare("SELECT ns, key, value FROM kv ORDER BY ns, key");
  if (!stmt) return Error{stmt.error()};
  StmtUse use(stmt->get());
  for (;;) {
    const int rc = sqlite3_step(use.get());
    if (rc == SQLITE_DONE) return Ok{};
    if (rc != SQLITE_ROW) return impl_->sqlite_error("each_row");
    if (!each(column_bytes(use.get(), 0), column_bytes(use.get(), 1), column_bytes(use.get(), 2))) return Ok{};
  }
}

}  // namespace mcph::store
