// Durable key-value state for plugin instances (one namespace per instance) and the host
// itself (OAuth: namespace "oauth"). StateStore is the seam every backend fills; open()
// makes the embedded one: one SQLite database under state_dir (WAL mode,
// synchronous=NORMAL: a committed write survives kill -9 of the host). An isolated plugin's
// child process gets a StateStore that forwards to its host (isolation/). Thread-safe.
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
  // The SQLite store: creates `dir` (0700) and `dir`/state.db (0600) if needed. The
  // database itself opens on first use; check() opens it now and reports any problem.
  static Result<std::unique_ptr<StateStore>> open(const std::string& dir);
  virtual ~StateStore() = default;
  virtual Status check() = 0;

  virtual Result<std::optional<std::string>> get(std::string_view ns, std::string_view key) = 0;
  virtual Status put(std::string_view ns, std::string_view key, std::string_view value) = 0;
  virtual Status erase(std::string_view ns, std::string_view key) = 0;
  // Keys starting with prefix, in key order; `each` returns false to stop. `each` must not
  // call back into the store and should be quick.
  virtual Status list(std::string_view ns, std::string_view prefix,
                      const std::function<bool(std::string_view key, std::string_view value)>& each) = 0;
};

}  // namespace mcph::services
