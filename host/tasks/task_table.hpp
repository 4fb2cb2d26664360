// MCP tasks' records (issue 17): what a task is, kept in the state store so any replica
// answers for it and a restart loses none. The engine's task methods (tasks/get, update,
// cancel; legacy tasks/result and tasks/list) and whatever runs a task (the host, for any
// tool call; a plugin, for work that outlives the process) read and move them through here.
//
// Rows, namespace "tasks": "task/<id>" the task as JSON; "user/<principal>/<id>" an empty
// index row, for a user's count (tasks.max_per_user) and the legacy tasks/list. Task ids are
// 32 random bytes: unguessable. A task belongs to the principal that made it: to anyone
// else it does not exist. Moves are compare-and-set on the row, so two replicas updating
// one task never lose each other's change, and a terminal task never changes again.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "result.hpp"
#include "store/state_store.hpp"

namespace mcph::tasks {

using json = nlohmann::json;

enum class Status { kWorking, kInputRequired, kCompleted, kFailed, kCancelled };
std::string_view name(Status s);
std::optional<Status> parse_status(std::string_view s);
inline bool terminal(Status s) { return s == Status::kCompleted || s == Status::kFailed || s == Status::kCancelled; }

struct Task {
  std::string id;
  std::string principal;  // who made it ("" without sign-in)
  std::string tool;       // the tool it runs
  std::string owner;      // the replica running it (host-made tasks), or "" (plugin-durable)
  Status status = Status::kWorking;
  std::string status_message;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t ttl_ms = 0;       // kept this long after creation, then removed
  json result;              // completed: what the call would have returned
  json error;               // failed: a JSON-RPC error object
  json input_requests;      // input_required: what the task waits for
  bool cancel_requested = false;

  json to_json() const;
  static std::optional<Task> from_json(const json& j);
};

struct TaskLimits {
  size_t max_per_user = 100;                               // tasks.max_per_user
  std::chrono::milliseconds ttl = std::chrono::hours(24);  // tasks.ttl_ms
  size_t max_result_bytes = 4 * 1024 * 1024;               // a bigger result fails the task
};

class TaskTable {
 public:
  using Limits = TaskLimits;
  explicit TaskTable(store::StateStore& store, Limits limits = {}) : store_(store), limits_(limits) {}

  // A new task in `working`, in the store before this returns (a client may ask for it at
  // once, from any replica). Refused when the principal holds max_per_user live tasks.
  Result<Task> create(const std::string& principal, const std::string& tool, const std::string& owner);
  // The task, if `principal` made it and it has not expired.
  Result<std::optional<Task>> get(const std::string& id, const std::string& principal);
  // Applies `change` to the task (retried on a concurrent change). `change` returns false to
  // leave it as it is. A terminal task is never changed; the task as it ends up.
  Result<Task> update(const std::string& id, const std::function<bool(Task&)>& change);
  // Ends the task `completed` with `result` (failed, when the result is over the bound).
  Result<Task> complete(const std::string& id, json result);
  Result<Task> fail(const std::string& id, json error);
  // The principal's tasks, newest first (the legacy tasks/list).
  Result<std::vector<Task>> list(const std::string& principal);
  // Removes expired tasks; how many.
  size_t purge();

  const Limits& limits() const { return limits_; }

 private:
  store::StateStore& store_;
  Limits limits_;
};

// RFC 3339 UTC with milliseconds, as tasks' createdAt and lastUpdatedAt are written.
std::string iso8601(int64_t unix_ms);

}  // namespace mcph::tasks
