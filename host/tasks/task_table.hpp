// MCP tasks' records (issue 17): what a task is, kept in the state store so any replica
// answers for it and a restart loses none. The engine's task methods (tasks/get, update,
// cancel; legacy tasks/result and tasks/list) and whatever runs a task (the host, for any
// tool call; a plugin, for work that outlives the process) read and move them through here.
//
// Rows, namespace "tasks": "task/<id>" the task as JSON; "user/<principal>/<id>" an empty
// index row for the legacy tasks/list; "live/<principal>/<id>" while the task is
// unfinished, holding its owner, for the bounds (a user's unfinished tasks, all of them:
// scans that stop at the bound and never read a finished task) and for finding the tasks of
// a replica that died; "handle/<instance>/<handle>" -> id for tasks a plugin took over;
// "exp/<when>/<id>", in time order, so that removing expired tasks reads only those.
// Task ids are
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
  std::string instance;   // plugin-durable: the instance that took it over, and its handle
  std::string handle;
  Status status = Status::kWorking;
  std::string status_message;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t ttl_ms = 0;       // kept this long after creation, then removed
  json result;              // completed: what the call would have returned
  json error;               // failed: a JSON-RPC error object
  json input_requests;      // input_required: what the task waits for (wire keys)
  json answers;             // the client's answers to them so far (wire keys)
  int input_round = 0;      // makes wire keys unique for the task's lifetime

  // Opens a round of input requests (key -> {method, params}): input_required, under wire
  // keys "<round>.<key>", unique for the task's lifetime; no answers yet.
  void ask(const json& requests);
  // The client's answers to the current round, under the handler's own keys.
  json round_answers() const;

  json to_json() const;
  static std::optional<Task> from_json(const json& j);
};

struct TaskLimits {
  size_t max_per_user = 100;                               // tasks.max_per_user
  size_t max_total = 10000;                                // tasks.max_total
  std::chrono::milliseconds ttl = std::chrono::hours(24);  // tasks.ttl_ms
  size_t max_result_bytes = 4 * 1024 * 1024;               // a bigger result fails the task
};

class TaskTable {
 public:
  using Limits = TaskLimits;
  explicit TaskTable(store::StateStore& store, Limits limits = {}) : store_(store), limits_(limits) {}

  // A new task in `working`, in the store before this returns (a client may ask for it at
  // once, from any replica). Refused when the principal holds max_per_user unfinished
  // tasks, or the store max_total. `prepare` may fill in more before it is written.
  Result<Task> create(const std::string& principal, const std::string& tool, const std::string& owner,
                      const std::function<void(Task&)>& prepare = {});
  // The task `id` whoever made it (for its runner), if it exists.
  Result<std::optional<Task>> load(const std::string& id);
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
  // The task a plugin took over under (instance, handle): its id.
  Result<std::optional<std::string>> find_handle(const std::string& instance, const std::string& handle);
  mcph::Status bind_handle(const std::string& instance, const std::string& handle, const std::string& id);
  // The unfinished task `t` no longer belongs to the replica `owner` (a plugin took it over).
  mcph::Status disown(const Task& t, const std::string& owner);
  // Removes expired tasks; how many.
  size_t purge();
  // The unfinished tasks and their owners (the live index), for finding orphans.
  Result<std::vector<std::pair<std::string, std::string>>> live();

  const Limits& limits() const { return limits_; }

 private:
  store::StateStore& store_;
  Limits limits_;
};

// RFC 3339 UTC with milliseconds, as tasks' createdAt and lastUpdatedAt are written.
std::string iso8601(int64_t unix_ms);

}  // namespace mcph::tasks
