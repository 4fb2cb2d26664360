#include "tasks/task_service.hpp"

#include <spdlog/spdlog.h>

#include "protocol/jsonrpc.hpp"

namespace mcph::tasks {
namespace {

namespace code = protocol::code;
using RpcError = protocol::RpcError;

constexpr std::string_view kNs = "tasks";
// Each replica holds a lease while it runs; a task whose owner's lease lapsed is an orphan.
constexpr std::chrono::milliseconds kReplicaLease{10000};
constexpr std::chrono::milliseconds kStartUpDelay{100};  // see the constructor
constexpr std::chrono::milliseconds kProgressEvery{250};
// Waiters re-read their task this often even without an event (events are at most once).
constexpr std::chrono::milliseconds kRecheck{1000};

constexpr const char* kDied = "the mcp-host process running this task ended before it finished; run it again";

std::string replica_lease(const std::string& replica) { return "replica/" + replica; }

RpcError unavailable(const std::string& why) { return {code::kInternalError, "the task store is unavailable: " + why, nullptr}; }

RpcError not_found(const std::string& method) { return {code::kInvalidParams, method + ": no such task (unknown, expired, or not yours)", nullptr}; }

json rpc_error(const RpcError& e) {
  json j{{"code", e.code}, {"message", e.message}};
  if (!e.data.is_null()) j["data"] = e.data;
  return j;
}

}  // namespace

bool declares_extension(const json& caps) {
  if (!caps.is_object()) return false;
  auto ext = caps.find("extensions");
  return ext != caps.end() && ext->is_object() && ext->contains(kExtension);
}

TaskService::TaskService(store::StateStore& store, ServiceOptions options)
    : store_(store), options_(options), table_(store, options.limits), replica_(plugins::replica_id()) {
  events_ = store_.subscribe([this](std::string_view topic, std::string_view body) {
    if (topic == kChanged) on_event(body);
    if (topic == store::StateStore::kResync) on_event("");
  });
  // The store's first use (opening SQLite, reading its schema, writing the lease: ~120 page
  // faults, ~3 ms of CPU here) happens on the housekeeper thread, kStartUpDelay after the
  // host starts: off the path to the first answer, and not taking one of two cores from
  // it (1.1 ms off a cold start with two in-process instances, 2.0 ms with two isolated
  // ones; medians of 30). table() asks for it at once and waits for it; a host that stops
  // before then never opens the store for it.
  housekeeper_ = std::thread([this] { housekeeping(); });
}

TaskService::~TaskService() {
  {
    std::lock_guard lock(stop_mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  housekeeper_.join();
  events_.reset();
  if (leased_) (void)store_.release(kNs, replica_lease(replica_), replica_);
}

void TaskService::start_up() {
  bool skip;
  {
    std::unique_lock lock(stop_mutex_);
    stop_cv_.wait_for(lock, kStartUpDelay, [this] { return stop_ || wanted_; });
    // A host this short-lived (a health check) leaves the store alone: the next start fails
    // what its predecessor left.
    skip = stop_ && !wanted_;
  }
  if (!skip) {
    leased_ = true;
    if (auto held = store_.acquire(kNs, replica_lease(replica_), replica_, kReplicaLease); !held) {
      spdlog::warn("tasks: could not take this replica's lease: {}", held.error());
    }
    // This replica keeps its id across restarts (state_dir/replica.key): tasks it owns now
    // were run by the process before this one, and died with it.
    size_t orphans = 0;
    if (auto live = table_.live(); live) {
      for (const auto& [id, owner] : *live) {
        if (owner == replica_ && table_.fail(id, rpc_error({code::kInternalError, kDied, nullptr}))) ++orphans;
      }
    }
    if (orphans > 0) spdlog::info("tasks: {} task(s) left unfinished by this host's previous run failed", orphans);
  }
  {
    std::lock_guard lock(stop_mutex_);
    started_ = true;
  }
  stop_cv_.notify_all();
}

TaskTable& TaskService::table() {
  if (!started_.load()) {
    std::unique_lock lock(stop_mutex_);
    wanted_ = true;
    stop_cv_.notify_all();
    stop_cv_.wait(lock, [this] { return started_.load(); });
  }
  return table_;
}

void TaskService::housekeeping() {
  start_up();  // (after a skipped start-up stop_ is set: the loop below does not run)
  auto next_purge = std::chrono::steady_clock::now();
  std::unique_lock lock(stop_mutex_);
  while (!stop_) {
    lock.unlock();
    (void)store_.acquire(kNs, replica_lease(replica_), replica_, kReplicaLease);
    reap();
    // Events arrive at most once: whoever waits for a task's end looks again now and then.
    std::vector<std::string> awaited;
    {
      std::lock_guard guard(mutex_);
      for (const auto& [id, fns] : awaiting_) awaited.push_back(id);
    }
    for (const auto& id : awaited) on_event(id, /*waiters_only=*/true);
    if (std::chrono::steady_clock::now() >= next_purge) {
      purge();
      next_purge = std::chrono::steady_clock::now() + std::chrono::minutes(10);
    }
    lock.lock();
    stop_cv_.wait_for(lock, kReplicaLease / 3, [this] { return stop_; });
  }
}

void TaskService::changed(const std::string& id) {
  if (auto st = store_.publish(kChanged, id); !st) spdlog::warn("tasks: change of a task not announced: {}", st.error());
}

// A task changed somewhere (or, with an empty id, anything may have): wake whoever waits.
void TaskService::on_event(std::string_view id_view, bool waiters_only) {
  const std::string id(id_view);
  std::atomic<bool>* running = nullptr;
  bool awaited = false, watched = false;
  {
    std::lock_guard lock(mutex_);
    ++generation_;
    if (auto it = running_.find(id); it != running_.end()) running = it->second;
    awaited = awaiting_.contains(id) || (id.empty() && !awaiting_.empty());
    watched = !waiters_only && watchers_.contains(id);
  }
  changed_cv_.notify_all();
  if (id.empty() || (!running && !awaited && !watched)) return;
  auto t = table().load(id);
  if (!t || !t->has_value()) return;
  const Task& task = **t;
  std::vector<ResultFn> done;
  std::vector<std::function<void(const Task&)>> fns;
  {
    std::lock_guard lock(mutex_);
    if (auto it = running_.find(id); it != running_.end() && task.status == Status::kCancelled) it->second->store(true);
    if (terminal(task.status)) {
      if (auto it = awaiting_.find(id); it != awaiting_.end()) {
        done = std::move(it->second);
        awaiting_.erase(it);
      }
    }
    auto [b, e] = watchers_.equal_range(id);
    // A periodic look tells watchers only of the end (which they may have missed).
    for (auto it = b; it != e && (!waiters_only || terminal(task.status)); ++it) fns.push_back(it->second);
    if (terminal(task.status)) watchers_.erase(id);
  }
  for (auto& fn : fns) fn(task);
  for (auto& fn : done) {
    if (task.status == Status::kFailed) {
      fn(RpcError{task.error.value("code", code::kInternalError), task.error.value("message", std::string("the task failed")),
                  task.error.value("data", json())},
         json());
    } else if (task.status == Status::kCancelled) {
      fn(RpcError{code::kInvalidParams, "the task was cancelled", nullptr}, json());
    } else {
      fn(std::nullopt, task.result);
    }
  }
}

Result<Task> TaskService::create(const std::string& principal, const std::string& tool) {
  auto t = table().create(principal, tool, replica_);
  if (t) created_.fetch_add(1, std::memory_order_relaxed);
  return t;
}

void TaskService::count_end(const Result<Task>& t) {
  if (!t) return;
  if (t->status == Status::kCompleted) completed_.fetch_add(1, std::memory_order_relaxed);
  if (t->status == Status::kFailed) failed_.fetch_add(1, std::memory_order_relaxed);
  if (t->status == Status::kCancelled) cancelled_.fetch_add(1, std::memory_order_relaxed);
}

TaskService::Counts TaskService::counts() {
  Counts c{created_.load(), completed_.load(), failed_.load(), cancelled_.load(), 0};
  std::lock_guard lock(mutex_);
  c.running = running_.size();
  return c;
}

Result<Task> TaskService::hand_over(const std::string& id, const std::string& principal, const std::string& tool,
                                    const std::string& instance, const std::string& handle) {
  if (id.empty()) {
    auto t = table().create(principal, tool, "", [&](Task& t) {
      t.instance = instance;
      t.handle = handle;
    });
    if (t) created_.fetch_add(1, std::memory_order_relaxed);
    return t;
  }
  if (auto st = table().bind_handle(instance, handle, id); !st) return Error{st.error()};
  auto t = table().update(id, [&](Task& t) {
    t.owner.clear();
    t.instance = instance;
    t.handle = handle;
    return true;
  });
  if (t) (void)table().disown(*t, replica_);  // the live index must no longer name this replica
  return t;
}

json TaskService::wire(const Task& t, bool modern, bool created) const {
  json j{{"taskId", t.id}, {"status", name(t.status)}, {"createdAt", iso8601(t.created_ms)}, {"lastUpdatedAt", iso8601(t.updated_ms)}};
  if (!t.status_message.empty()) j["statusMessage"] = t.status_message;
  if (modern) {
    j["ttlMs"] = t.ttl_ms;
    j["pollIntervalMs"] = options_.poll_interval.count();
  } else {
    j["ttl"] = t.ttl_ms;
    j["pollInterval"] = options_.poll_interval.count();
  }
  if (created || !modern) return j;
  if (t.status == Status::kInputRequired && t.input_requests.is_object()) j["inputRequests"] = t.input_requests;
  if (t.status == Status::kCompleted) {
    j["result"] = t.result;
    if (j["result"].is_object()) j["result"].erase("resultType");
  }
  if (t.status == Status::kFailed) j["error"] = t.error;
  return j;
}

void TaskService::attach(const std::string& id, std::atomic<bool>* cancelled) {
  std::lock_guard lock(mutex_);
  running_[id] = cancelled;
}

void TaskService::detach(const std::string& id) {
  std::lock_guard lock(mutex_);
  running_.erase(id);
  last_progress_.erase(id);
}

void TaskService::finish(const std::string& id, const json& response) {
  auto current = table().load(id);
  if (current && current->has_value() && !(*current)->handle.empty()) return;  // a plugin finishes it
  Result<Task> t = Error{""};
  if (response.is_object() && response.contains("error")) {
    t = table().fail(id, response["error"]);
  } else if (response.is_object() && response.contains("result")) {
    const json& r = response["result"];
    if (shutting_down_ && r.value("isError", false)) {
      t = table().fail(id, rpc_error({code::kInternalError, "mcp-host shut down before the task finished; run it again", nullptr}));
    } else {
      t = table().complete(id, r);
    }
  } else {  // cancelled: no response
    t = table().update(id, [](Task& t) {
      t.status = Status::kCancelled;
      return true;
    });
  }
  if (!t) spdlog::warn("tasks: the outcome of task {}… was not recorded: {}", id.substr(0, 8), t.error());
  if (current && current->has_value() && !terminal((*current)->status)) count_end(t);
  changed(id);
}

void TaskService::progress(const std::string& id, const std::string& message) {
  {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    auto& last = last_progress_[id];
    if (now - last < kProgressEvery) return;
    last = now;
  }
  auto t = table().update(id, [&](Task& t) {
    if (t.status_message == message) return false;
    t.status_message = message;
    return true;
  });
  if (t) changed(id);
}

std::optional<std::string> TaskService::ask(const std::string& id, const json& requests, const mcph_call& call, json& answers) {
  auto t = table().update(id, [&](Task& t) {
    t.ask(requests);
    return true;
  });
  if (!t) return "the task's input request could not be recorded: " + t.error();
  changed(id);
  std::unique_lock lock(mutex_);
  for (;;) {
    if (call.is_cancelled()) return "the task ended while it waited for input";
    const uint64_t seen = generation_;
    lock.unlock();
    auto now = table().load(id);
    if (now && now->has_value()) {
      const Task& task = **now;
      if (terminal(task.status)) return "the task ended while it waited for input";
      if (task.status == Status::kInputRequired && task.input_requests.is_object() && task.input_requests.empty()) {
        answers = task.round_answers();
        auto back = table().update(id, [](Task& t) {
          t.status = Status::kWorking;
          t.input_requests = json();
          t.answers = json();
          return true;
        });
        if (back) changed(id);
        return std::nullopt;
      }
    }
    lock.lock();
    changed_cv_.wait_for(lock, kRecheck, [&] { return generation_ != seen; });
  }
}

void TaskService::set_waiting(const std::string& id, bool waiting) {
  auto t = table().update(id, [&](Task& t) {
    t.status = waiting ? Status::kInputRequired : Status::kWorking;
    return true;
  });
  if (t) changed(id);
}

Result<std::optional<Task>> TaskService::find(const json& params, const std::string& principal, std::optional<RpcError>& err) {
  const json& id = params.value("taskId", json());
  if (!id.is_string() || id.get_ref<const std::string&>().empty()) {
    err = RpcError{code::kInvalidParams, "params.taskId (a string) is required", nullptr};
    return std::optional<Task>();
  }
  auto t = table().get(id.get<std::string>(), principal);
  if (!t) {
    err = unavailable(t.error());
    return t;
  }
  // A host-run task whose replica died is failed now rather than left working forever.
  if (t->has_value() && !terminal((*t)->status) && !(*t)->owner.empty() && (*t)->owner != replica_ &&
      !owner_alive((*t)->owner)) {
    auto failed = table().fail((*t)->id, rpc_error({code::kInternalError, kDied, nullptr}));
    if (failed) {
      changed((*t)->id);
      return std::optional<Task>(std::move(*failed));
    }
  }
  return t;
}

std::optional<RpcError> TaskService::handle(const std::string& method, const json& params, const std::string& principal,
                                            bool modern, json& result) {
  std::optional<RpcError> err;
  if (method == "tasks/list" && !modern) {
    auto all = table().list(principal);
    if (!all) return unavailable(all.error());
    size_t start = 0;
    if (auto c = params.find("cursor"); c != params.end() && !c->is_null()) {
      try {
        start = c->is_string() ? std::stoul(c->get<std::string>()) : SIZE_MAX;
      } catch (const std::exception&) {
        start = SIZE_MAX;
      }
      if (start > all->size()) return RpcError{code::kInvalidParams, "tasks/list: invalid cursor", nullptr};
    }
    const size_t end = std::min(all->size(), start + 100);
    result = json{{"tasks", json::array()}};
    for (size_t i = start; i < end; ++i) result["tasks"].push_back(wire((*all)[i], false, false));
    if (end < all->size()) result["nextCursor"] = std::to_string(end);
    return std::nullopt;
  }
  if (method != "tasks/get" && method != "tasks/update" && method != "tasks/cancel") {
    return RpcError{code::kMethodNotFound, "Method not found: " + method, nullptr};
  }
  auto t = find(params, principal, err);
  if (err) return err;
  if (!t->has_value()) return not_found(method);
  const std::string id = (*t)->id;
  if (method == "tasks/get") {
    result = wire(**t, modern, false);
    return std::nullopt;
  }
  if (method == "tasks/update") {
    if (!modern) return RpcError{code::kMethodNotFound, "Method not found: tasks/update", nullptr};
    const json& responses = params.value("inputResponses", json());
    if (!responses.is_object()) return RpcError{code::kInvalidParams, "tasks/update: params.inputResponses (an object) is required", nullptr};
    // Answers to keys the task does not wait for are ignored (SEP-2663): eventually consistent.
    auto u = table().update(id, [&](Task& t) {
      if (t.status != Status::kInputRequired || !t.input_requests.is_object()) return false;
      bool any = false;
      for (const auto& [key, r] : responses.items()) {
        if (!t.input_requests.contains(key) || !r.is_object()) continue;
        t.input_requests.erase(key);
        if (!t.answers.is_object()) t.answers = json::object();
        t.answers[key] = r;
        any = true;
      }
      return any;
    });
    if (!u) return unavailable(u.error());
    changed(id);
    result = json::object();
    return std::nullopt;
  }
  // tasks/cancel: the task is cancelled at once; its handler hears it and stops.
  const bool was_terminal = terminal((*t)->status);
  if (was_terminal && !modern) return RpcError{code::kInvalidParams, "tasks/cancel: the task already ended (" + std::string(name((*t)->status)) + ")", nullptr};
  auto c = table().update(id, [](Task& t) {
    t.status = Status::kCancelled;
    t.input_requests = json();
    return true;
  });
  if (!c) return unavailable(c.error());
  if (!was_terminal) {
    count_end(c);
    changed(id);
  }
  result = modern ? json::object() : wire(*c, false, false);
  return std::nullopt;
}

void TaskService::await_result(const json& params, const std::string& principal, ResultFn done) {
  std::optional<RpcError> err;
  auto t = find(params, principal, err);
  if (err) return done(err, json());
  if (!t->has_value()) return done(not_found("tasks/result"), json());
  const std::string id = (*t)->id;
  {
    std::lock_guard lock(mutex_);
    awaiting_[id].push_back(std::move(done));
  }
  on_event(id);  // it may have ended already (or just now)
}

bool TaskService::owned(const std::string& id, const std::string& principal) {
  auto t = table().get(id, principal);
  return t && t->has_value();
}

void TaskService::watch(const std::string& id, std::function<void(const Task&)> fn) {
  std::lock_guard lock(mutex_);
  watchers_.emplace(id, std::move(fn));
}

size_t TaskService::purge() {
  const size_t n = table().purge();
  if (n > 0) spdlog::info("tasks: removed {} expired task(s)", n);
  return n;
}

bool TaskService::owner_alive(const std::string& owner) {
  if (owner == replica_) return true;
  // Taking the owner's lease succeeds only when it lapsed; held for a millisecond, it harms nobody.
  auto taken = store_.acquire(kNs, replica_lease(owner), "reaper/" + replica_, std::chrono::milliseconds(1));
  return !taken || !*taken;  // when unsure, alive
}

size_t TaskService::reap() {
  auto live = table().live();
  if (!live) return 0;
  size_t n = 0;
  std::map<std::string, bool> alive;
  for (const auto& [id, owner] : *live) {
    if (owner.empty() || owner == replica_) continue;
    auto [it, fresh] = alive.emplace(owner, true);
    if (fresh) it->second = owner_alive(owner);
    if (it->second) continue;
    auto t = table().fail(id, rpc_error({code::kInternalError, kDied, nullptr}));
    if (t) {
      changed(id);
      ++n;
    }
  }
  if (n > 0) spdlog::info("tasks: {} task(s) of a stopped replica failed", n);
  return n;
}

Result<std::optional<Task>> TaskService::by_handle(const std::string& instance, const std::string& handle) {
  auto id = table().find_handle(instance, handle);
  if (!id) return Error{id.error()};
  if (!id->has_value()) return std::optional<Task>();
  return table().load(**id);
}

mcph_status TaskService::update(const std::string& instance, const std::string& handle, const json& u) {
  auto t = by_handle(instance, handle);
  if (!t) return MCPH_ERR_UNAVAILABLE;
  if (!t->has_value()) return MCPH_ERR_NOT_FOUND;
  if (terminal((*t)->status)) return MCPH_ERR_FAILED_PRECONDITION;
  const auto status = parse_status(u.value("status", ""));
  if (!status || *status == Status::kCancelled) return MCPH_ERR_INVALID_ARGUMENT;
  const json& message = u.value("message", json());
  if (!message.is_null() && !message.is_string()) return MCPH_ERR_INVALID_ARGUMENT;
  Result<Task> r = Error{""};
  if (*status == Status::kCompleted) {
    const json& result = u.value("result", json());
    if (!result.is_object()) return MCPH_ERR_INVALID_ARGUMENT;
    json shaped = result;
    if (!shaped.contains("content")) shaped["content"] = json::array();
    r = table().complete((*t)->id, std::move(shaped));
  } else if (*status == Status::kFailed) {
    r = table().fail((*t)->id, rpc_error({code::kInternalError, message.is_string() ? message.get<std::string>() : "the task failed", nullptr}));
  } else {
    const json& requests = u.value("inputRequests", json());
    if (*status == Status::kInputRequired && (!requests.is_object() || requests.empty())) return MCPH_ERR_INVALID_ARGUMENT;
    r = table().update((*t)->id, [&](Task& t) {
      if (message.is_string()) t.status_message = message.get<std::string>();
      if (*status == Status::kInputRequired) {
        t.ask(requests);
      } else {
        t.status = *status;
        t.input_requests = json();
        t.answers = json();
      }
      return true;
    });
  }
  if (!r) return MCPH_ERR_UNAVAILABLE;
  changed((*t)->id);
  if (terminal(r->status) && r->status != *status) return MCPH_ERR_FAILED_PRECONDITION;
  count_end(r);
  return MCPH_OK;
}

mcph_status TaskService::get(const std::string& instance, const std::string& handle, json& out) {
  auto t = by_handle(instance, handle);
  if (!t) return MCPH_ERR_UNAVAILABLE;
  if (!t->has_value()) return MCPH_ERR_NOT_FOUND;
  out = json{{"status", name((*t)->status)}, {"inputResponses", (*t)->round_answers()}};
  return MCPH_OK;
}

}  // namespace mcph::tasks
