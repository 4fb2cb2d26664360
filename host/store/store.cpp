#include "config/config.hpp"
#include "services/crypto.hpp"
#include "store/libpq.hpp"
#include "store/state_store.hpp"

#include <vector>

namespace mcph::store {

std::unique_ptr<StateStore> make_postgres_store(const config::StoreConfig& cfg);  // postgres.cpp

Result<std::unique_ptr<StateStore>> StateStore::open(const config::StoreConfig& cfg, const std::string& state_dir) {
  if (cfg.backend == "postgresql") {
    if (std::string error = load_libpq(); !error.empty()) return Error{error};
    return make_postgres_store(cfg);
  }
  return open(state_dir);
}

std::string shared_key_slot(std::string_view name) { return "key/" + std::string(name); }

Result<std::string> shared_key(StateStore& store, std::string_view name, size_t bytes) {
  const std::string key = shared_key_slot(name);
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto current = store.get("host", key);
    if (!current) return Error{current.error()};
    if (current->has_value() && (*current)->size() == bytes) return **current;
    const std::string fresh = crypto::random_bytes(bytes);
    // Absent: ours if nobody wrote one meanwhile. Malformed: replaced, once.
    auto written = current->has_value() ? store.put_if("host", key, **current, fresh) : store.put_if("host", key, std::nullopt, fresh);
    if (!written) return Error{written.error()};
    if (*written) return fresh;
  }
  return Error{"the shared key '" + std::string(name) + "' keeps changing in the store"};
}

Result<size_t> copy_rows(StateStore& from, StateStore& to, const std::function<void(size_t)>& progress) {
  struct Row {
    std::string ns, key, value;
  };
  std::vector<Row> rows;  // read whole first: `each` may not call into a store
  auto st = from.each_row([&](std::string_view ns, std::string_view key, std::string_view value) {
    rows.push_back({std::string(ns), std::string(key), std::string(value)});
    return true;
  });
  if (!st) return Error{"reading " + from.location() + ": " + st.error()};
  for (size_t i = 0; i < rows.size(); ++i) {
    if (auto w = to.put(rows[i].ns, rows[i].key, rows[i].value); !w) return Error{"writing: " + w.error()};
    if (progress && (i + 1) % 10000 == 0) progress(i + 1);
  }
  for (const auto& r : rows) {
    auto back = to.get(r.ns, r.key);
    if (!back) return Error{"checking: " + back.error()};
    if (!back->has_value() || **back != r.value) return Error{"checking: " + r.ns + " row differs after the copy"};
  }
  return rows.size();
}

size_t erase_where(StateStore& store, std::string_view ns, std::string_view prefix,
                   const std::function<bool(std::string_view value)>& gone) {
  std::vector<std::string> keys;
  (void)store.list(ns, prefix, [&](std::string_view key, std::string_view value) {
    if (gone(value)) keys.emplace_back(key);
    return true;
  });
  for (const auto& key : keys) (void)store.erase(ns, key);
  return keys.size();
}

std::optional<std::string> prefix_successor(std::string_view prefix) {
  std::string upper(prefix);
  while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xFF) upper.pop_back();
  if (upper.empty()) return std::nullopt;
  upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
  return upper;
}

}  // namespace mcph::store
