// Durable key-value state for plugin instances: one SQLite database under state_dir
// (WAL mode, synchronous=NORMAL: a committed write survives kill -9 of the host), one
// namespace per plugin instance. Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "result.hpp"

namespace mcph::services {

class StateStore {
 public:
  // Creates `dir` (0700) and `dir`/state.db (0600) if needed. The database itself opens
  // on first use; check() opens it now and reports any problem.
  static Result<std::unique_ptr<StateStore>> open(const std::string& dir);
  ~StateStore();
  Status check();

  Result<std::optional<std::string>> get(std::string_view ns, std::string_view key);
  Status put(std::string_view ns, std::string_view key, std::string_view value);
  Status erase(std::string_view ns, std::string_view key);
  // Keys starting with prefix, in key order; `each` returns false to stop.
  Status list(std::string_view ns, std::string_view prefix,
              const std::function<bool(std::string_view key, std::string_view value)>& each);

 private:
  struct Impl;
  explicit StateStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcph::services
