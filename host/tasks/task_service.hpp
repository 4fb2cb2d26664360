// MCP tasks as the protocol engine and plugins use them: a call answered at once with a
// task, run on (or handed over to a plugin), and polled until it ends.
//
// Two eras, one store (task_table.hpp):
//   - 2026-07-28, the extension io.modelcontextprotocol/tasks: tasks/get, tasks/update (the
//     client's answers to a task's input requests), tasks/cancel;
//   - 2025-11-25, experimental core tasks: tasks/get, tasks/result (waits for the end),
//     tasks/list, tasks/cancel, notifications/tasks/status.
// Who finishes a task:
//   - the host, for any tool whose task support is optional or required: the handler keeps
//     running on this replica after the client got its CreateTaskResult (owner = replica);
//     a replica that dies leaves such tasks to be failed by the others (reap());
//   - a plugin that handed the call over (host->call_continue_as_task): it reports later,
//     from any replica, through host->task_update (plugins::TaskReports).
// Every change is published as an event, so waiters on any replica (tasks/result, a handler
// waiting for input, a cancel) hear it at once. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "plugins/instance.hpp"
#include "protocol/jsonrpc.hpp"
#include "tasks/task_table.hpp"

namespace mcph::tasks {

inline constexpr const char* kExtension = "io.modelcontextprotocol/tasks";
inline constexpr const char* kRelatedTask = "io.modelcontextprotocol/related-task";
inline constexpr std::string_view kChanged = "task.changed";  // event body: the task id

struct ServiceOptions {
  TaskLimits limits;
  std::chrono::milliseconds poll_interval{1000};   // suggested to clients
  std::chrono::milliseconds timeout{3600 * 1000};  // a host-run task's handler is cancelled after this
};

// True if 2026-07-28 client capabilities declare the tasks extension.
bool declares_extension(const json& client_capabilities);

class TaskService final : public plugins::TaskReports {
 public:
  using RpcError = protocol::RpcError;
  TaskService(store::StateStore& store, ServiceOptions options);
  ~TaskService() override;  // releases this replica's lease: its unfinished tasks fail elsewhere at once

  const ServiceOptions& options() const { return options_; }

  // ---- The engine's side -------------------------------------------------------------

  // A new task for `tool` that this replica runs, durable before this returns.
  Result<Task> create(const std::string& principal, const std::string& tool);
  // The call `id` (a host-run task) or a call that was no task yet (id empty: one is made)
  // was handed over by its plugin under (instance, handle). The task.
  Result<Task> hand_over(const std::string& id, const std::string& principal, const std::string& tool,
                         const std::string& instance, const std::string& handle);
  // The wire form of a task: `created` for CreateTaskResult, else tasks/get's (with the
  // result, error or input requests its status carries).
  json wire(const Task& t, bool modern, bool created) const;

  // While a host-run task's handler runs here, a cancel of the task sets *cancelled.
  void attach(const std::string& id, std::atomic<bool>* cancelled);
  void detach(const std::string& id);
  // The handler ended; `response` is the JSON-RPC response the call would have had (null
  // when it was cancelled). A task a plugin took over ignores it.
  void finish(const std::string& id, const json& response);
  // A progress report: the task's status message (written at most every 250 ms).
  void progress(const std::string& id, const std::string& message);
  // 2026-07-28: the handler needs input. The task goes to input_required with `requests`
  // until tasks/update answered every one; nullopt with the answers (the handler's keys),
  // or why not (the call was cancelled or ran out of time).
  std::optional<std::string> ask(const std::string& id, const json& requests, const mcph_call& call, json& answers);
  // Legacy eras, where the host asks the client itself: marks the task input_required
  // (true) or working again (false).
  void set_waiting(const std::string& id, bool waiting);
  // From now on a host-run task whose handler fails fails with "mcp-host shut down".
  void begin_shutdown() { shutting_down_ = true; }

  // ---- The methods ---------------------------------------------------------------------

  // tasks/get, tasks/update, tasks/cancel; legacy also tasks/list. `principal` is the
  // caller's: another's task is unknown (-32602).
  std::optional<RpcError> handle(const std::string& method, const json& params, const std::string& principal, bool modern,
                                 json& result);
  // Legacy tasks/result: `done` gets the task's result (or its error) once it ended, at once
  // if it has; from whichever thread hears the end.
  using ResultFn = std::function<void(std::optional<RpcError> error, json result)>;
  void await_result(const json& params, const std::string& principal, ResultFn done);
  // True if `id` is an unexpired task of `principal`.
  bool owned(const std::string& id, const std::string& principal);
  // Calls `fn` with the task each time it changes, until it ends (legacy
  // notifications/tasks/status). `fn` must be quick.
  void watch(const std::string& id, std::function<void(const Task&)> fn);

  // ---- Housekeeping --------------------------------------------------------------------

  // Removes expired tasks; fails the unfinished host-run tasks of replicas that are gone.
  size_t purge();
  size_t reap();

  // ---- Telemetry -------------------------------------------------------------------------

  // Tasks this replica created and saw end, by how; and those whose work runs here now.
  struct Counts {
    uint64_t created = 0, completed = 0, failed = 0, cancelled = 0;
    size_t running = 0;
  };
  Counts counts();

  // ---- plugins::TaskReports --------------------------------------------------------------
  mcph_status update(const std::string& instance, const std::string& handle, const json& update) override;
  mcph_status get(const std::string& instance, const std::string& handle, json& out) override;

 private:
  struct Waiters;
  // `waiters_only`: a periodic look for tasks/result waiters, not a change to announce.
  void on_event(std::string_view id, bool waiters_only = false);
  void changed(const std::string& id);  // publish
  Result<std::optional<Task>> by_handle(const std::string& instance, const std::string& handle);
  Result<std::optional<Task>> find(const json& params, const std::string& principal, std::optional<RpcError>& err);
  bool owner_alive(const std::string& owner);
  void start_up();      // on the housekeeper thread, first (kStartUpDelay in, or when table() asks): this replica's lease, its predecessor's tasks
  void housekeeping();
  TaskTable& table();   // table_, once start_up() is done (every use but start_up's waits for it)
  void count_end(const Result<Task>& t);  // counts `t` if the write that gave it ended it

  store::StateStore& store_;
  ServiceOptions options_;
  TaskTable table_;
  const std::string replica_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<uint64_t> created_{0}, completed_{0}, failed_{0}, cancelled_{0};

  std::mutex mutex_;
  std::condition_variable changed_cv_;
  std::map<std::string, std::atomic<bool>*> running_;                           // guarded by mutex_
  std::map<std::string, std::vector<ResultFn>> awaiting_;                        // guarded by mutex_
  std::multimap<std::string, std::function<void(const Task&)>> watchers_;        // guarded by mutex_
  std::map<std::string, std::chrono::steady_clock::time_point> last_progress_;   // guarded by mutex_
  uint64_t generation_ = 0;                                                      // guarded by mutex_: bumped per event

  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;  // guarded by stop_mutex_
  bool wanted_ = false;  // guarded by stop_mutex_: table() waits for start_up()
  std::atomic<bool> started_{false};  // start_up() is done (stop_cv_ tells waiters)
  std::atomic<bool> leased_{false};   // start_up() took this replica's lease
  std::thread housekeeper_;
  store::StateStore::Subscription events_;  // last: unsubscribed first
};

}  // namespace mcph::tasks
