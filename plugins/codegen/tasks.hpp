// codegen plugin: task records (one per codegen_new / codegen_resume), their durable form in
// the host's key-value state, the upstream status mapping, and the pure state transitions
// the poller applies. Nothing here does I/O except TaskStore.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mcp_plugin/sdk.hpp"
#include "util.hpp"

namespace codegen {

// Where an upstream run status stands (codegen.md §B.4). Compared case-insensitively:
// the API sends upper case, outdated SDK docs and the old server use lower case.
enum class RunClass { NonTerminal, Success, Failure };
RunClass classify_status(std::string_view raw);

// A task's local state. `timed_out` is not terminal: the run may still finish, so it is
// polled slowly and can still become completed or failed (§D.5: never falsely "failed").
enum class TaskState { Pending, Running, Completed, Failed, TimedOut };
const char* to_string(TaskState s);
std::optional<TaskState> task_state_from(std::string_view s);
inline bool is_terminal(TaskState s) { return s == TaskState::Completed || s == TaskState::Failed; }

// Whether the task's outcome still has to be queued for its orchestrator. Written in two
// steps around the queue write, so a crash between them re-queues (idempotently) instead of
// losing the result or sending it twice (see Poller::finish).
enum class Notify { None, Needed, Queued };

struct TaskRecord {
  std::string task_id;
  std::string principal;  // who created it; only they can see it (the key is scoped too)
  std::string kind = "new";  // "new" | "resume"
  int64_t org_id = 0;
  int64_t agent_run_id = 0;
  std::optional<int64_t> orchestrator_run_id;
  TaskState state = TaskState::Running;
  std::string upstream_status;  // raw, as the API sent it ("" until known)
  json result;                   // the run's result text, or null
  std::optional<std::string> error;
  std::optional<std::string> web_url;
  json metadata = json::object();
  int64_t created_ms = 0;
  int64_t completed_ms = 0;  // 0 while not terminal
  int64_t deadline_ms = 0;   // past it a running task becomes timed_out
  // After a resume the run still shows its previous terminal status for a while; until the
  // run was seen non-terminal (or resume_grace passed since resumed_ms) a terminal status
  // is not the new outcome (§D.7).
  bool await_active = false;
  int64_t resumed_ms = 0;
  // Polling schedule (wall clock, so it survives restarts).
  int64_t next_poll_ms = 0;
  int64_t interval_ms = 0;
  int64_t polls = 0;
  int64_t last_polled_ms = 0;
  int errors = 0;          // consecutive failed polls
  // The call that started it continues as an MCP task (host ABI 1.3, Call::hand_over under
  // task_id): its outcome and progress are reported to the host, and a cancel stops the tracking.
  bool mcp_task = false;
  // The trace context of the call that started it (host ABI 1.4), or "": its polls' spans
  // link to that call's.
  std::string trace;
  std::string last_error;  // the last poll failure, for task_status (redacted)
  std::string paused;      // why it is not polled now ("" when it is): its user signed out
  Notify notify = Notify::None;
};

json to_json(const TaskRecord& t);
// Tolerant of missing optional fields; nullopt when required ones are missing or mistyped.
std::optional<TaskRecord> task_from_json(const json& j);

// State keys. Every record is scoped by the caller's principal (hex-encoded).
inline constexpr std::string_view kTaskPrefix = "task/";
std::string task_key(std::string_view principal, std::string_view task_id);
// Which principal created a run through this plugin: one principal must never poll or
// resume another's runs, nor link them as orchestrator, nor see them in a list.
std::string owner_key(int64_t org_id, int64_t run_id);

// Poll timing, from the settings.
struct Timing {
  int64_t poll_interval_ms = 5000;
  int64_t poll_max_interval_ms = 60000;
  int64_t deadline_ms = 3600000;
  int64_t timed_out_poll_interval_ms = 300000;
  int64_t resume_grace_ms = 120000;
};

// Applies one successful GET of the task's run. Returns true if the task became terminal
// (completed or failed). Sets the next poll time with backoff: the interval resets to the
// base when the status changed and grows by half up to the maximum while it does not.
bool apply_observation(TaskRecord& t, const json& run, int64_t now, const Timing& timing);
// A failed poll (network, 5xx, 429, auth...): remember why, back off.
void apply_poll_failure(TaskRecord& t, const std::string& why, int64_t retry_at, int64_t now, const Timing& timing);
// Moves a non-terminal task past its deadline to timed_out (and its slow poll interval).
void apply_deadline(TaskRecord& t, int64_t now, const Timing& timing);
// Marks a task failed without an upstream status (e.g. the run no longer exists).
void fail_task(TaskRecord& t, const std::string& why, int64_t now);

// Finished tasks whose completion is older than the retention are pruned; running and
// timed_out ones never are, nor any whose orchestrator notification is not yet queued.
bool should_prune(const TaskRecord& t, int64_t now, int64_t retention_ms);

// The task as codegen_task_status reports it (the old server's fields, §A.2, kept).
json task_view(const TaskRecord& t);

// Durable task records in the host's state. Thread-safe (the host's state is).
class TaskStore {
 public:
  explicit TaskStore(const mcph::sdk::Host& host) : host_(host) {}
  bool put(const TaskRecord& t) const;
  std::optional<TaskRecord> get(std::string_view principal, std::string_view task_id) const;
  std::vector<TaskRecord> all() const;
  void erase(const TaskRecord& t) const;
  // New tasks, for the replica that polls: a handler marks the task it started ("new/"
  // + its key), and the poller's rescan reads and clears the marks, so it reads what is
  // new rather than every task in the store.
  void mark_new(const TaskRecord& t) const;
  std::vector<TaskRecord> take_new() const;

  // Run ownership (see owner_key): "" when the run was not created through this plugin.
  std::optional<std::string> owner(int64_t org_id, int64_t run_id) const;
  void set_owner(int64_t org_id, int64_t run_id, std::string_view principal) const;

 private:
  const mcph::sdk::Host& host_;
};

}  // namespace codegen
