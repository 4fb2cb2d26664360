#include "poller.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <vector>

namespace codegen {

Poller::Poller(const mcph::sdk::Host& host, const Settings& settings, Api& api, const ConfigStore& config,
               const TaskStore& store)
    : host_(host),
      settings_(settings),
      api_(api),
      config_(config),
      store_(store),
      orch_(host, api, config, settings),
      thread_([this] { run(); }) {}

Poller::~Poller() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  // An HTTP request in flight ends promptly: the host cancels plugin requests when it
  // begins shutting down, before destroy() runs.
  if (thread_.joinable()) thread_.join();
}

void Poller::track(const TaskRecord& t) {
  {
    std::lock_guard lock(mutex_);
    tasks_[task_key(t.principal, t.task_id)] = t;
    poked_ = true;
  }
  wake_.notify_all();
}

void Poller::signed_in(const std::string& principal) {
  {
    std::lock_guard lock(mutex_);
    bool any = false;
    for (auto& [key, t] : tasks_) {
      if (t.principal != principal || t.paused.empty()) continue;
      t.next_poll_ms = 0;
      any = true;
    }
    if (!any) return;
    poked_ = true;
  }
  wake_.notify_all();
}

bool Poller::stopping() {
  std::lock_guard lock(mutex_);
  return stop_;
}

void Poller::startup(int64_t now) {
  // Non-terminal tasks resume polling at once (§D.4: the old server never did). Finished
  // children whose outcome was not yet queued (a crash between the two writes in finish())
  // are queued now, before any delivery, so nothing is lost and nothing sent twice.
  for (TaskRecord& t : store_.all()) {
    const std::string key = task_key(t.principal, t.task_id);
    if (!is_terminal(t.state)) {
      t.next_poll_ms = now;
      std::lock_guard lock(mutex_);
      tasks_.try_emplace(key, t);
    } else if (t.notify == Notify::Needed) {
      if (orch_.enqueue(t, now)) {
        t.notify = Notify::Queued;
        store_.put(t);
      }
    }
  }
  orch_.load(now);
  prune(now);
}

void Poller::save(const std::string& key, const TaskRecord& t) {
  store_.put(t);
  std::lock_guard lock(mutex_);
  tasks_[key] = t;
}

// A task whose call continues as an MCP task tells the host how it stands: working (with
// the upstream status) while it runs, completed when the run ended (a failed run is the
// tool's own error: completed with isError, its text saying why).
void Poller::report(const TaskRecord& t) {
  if (!t.mcp_task) return;
  json update;
  if (t.state == TaskState::Completed) {
    const std::string text = t.result.is_string() ? t.result.get<std::string>() : "Agent run " + std::to_string(t.agent_run_id) + " completed.";
    update = {{"status", "completed"}, {"result", {{"content", {{{"type", "text"}, {"text", text}}}}}}};
  } else if (t.state == TaskState::Failed) {
    update = {{"status", "completed"},
              {"result", {{"content", {{{"type", "text"}, {"text", "Agent run " + std::to_string(t.agent_run_id) + " failed: " + t.error.value_or("unknown error")}}}},
                          {"isError", true}}}};
  } else {
    update = {{"status", "working"},
              {"message", "agent run " + std::to_string(t.agent_run_id) + (t.upstream_status.empty() ? "" : ": " + t.upstream_status) +
                              (t.state == TaskState::TimedOut ? " (past its deadline; still watched)" : "")}};
  }
  const mcph_status st = host_.task_update(t.task_id, update);
  if (st != MCPH_OK && st != MCPH_ERR_FAILED_PRECONDITION && st != MCPH_ERR_NOT_FOUND) {
    host_.warn("task " + t.task_id + ": the host did not take its report (status " + std::to_string(st) + ")");
  }
}

void Poller::finish(const std::string& key, TaskRecord& t, int64_t now) {
  report(t);
  // Two writes around the queue write (see Notify): terminal first, then queued.
  t.notify = t.orchestrator_run_id ? Notify::Needed : Notify::None;
  store_.put(t);
  if (t.notify == Notify::Needed && orch_.enqueue(t, now)) {
    t.notify = Notify::Queued;
    store_.put(t);
  }
  {
    std::lock_guard lock(mutex_);
    tasks_.erase(key);
  }
  host_.info("task " + t.task_id + " (agent run " + std::to_string(t.agent_run_id) + ") " +
             to_string(t.state) + (t.upstream_status.empty() ? "" : " with status " + t.upstream_status));
}

void Poller::poll(const std::string& key) {
  TaskRecord t;
  {
    std::lock_guard lock(mutex_);
    auto it = tasks_.find(key);
    if (it == tasks_.end()) return;
    t = it->second;
  }
  const int64_t now = now_ms();
  const Timing& timing = settings_.timing;
  const Credentials creds = config_.resolve(t.principal, nullptr);
  if (!creds.token && !t.principal.empty()) {
    // Its user was revoked (or, just after a start, the host cannot tell yet): never poll as
    // anyone else. No request now; look again later, or at their next call.
    if (t.paused.empty()) host_.info("task " + t.task_id + " paused: its user is no longer signed in");
    t.paused = "paused: the user who started it is no longer signed in; polling resumes when they sign in again";
    t.next_poll_ms = now + timing.poll_max_interval_ms;
    save(key, t);
    return;
  }
  if (!t.paused.empty()) {
    host_.info("task " + t.task_id + " polled again: its user is signed in");
    t.paused.clear();
  }
  if (!creds.token) {
    apply_poll_failure(t, "no Codegen API token is configured (codegen_config set api_token)", 0, now, timing);
    t.next_poll_ms = std::max(t.next_poll_ms, now + timing.poll_max_interval_ms);
    save(key, t);
    return;
  }
  // A client that cancelled the MCP task no longer wants the outcome. Codegen has no way to
  // stop a single run (codegen.md: ban and remove-from-pr act on a whole PR), so the run may
  // still finish upstream; this host stops following it.
  if (t.mcp_task) {
    if (auto task = host_.task_get(t.task_id); task && task->value("status", "") == "cancelled") {
      fail_task(t, "cancelled by the client; the agent run itself may still finish upstream (Codegen cannot stop a single run)", now);
      finish(key, t, now);
      return;
    }
  }
  // The org the run was created in, whatever org_id is configured now.
  ApiResult r = api_.get_run(Auth{*creds.token, t.org_id}, t.agent_run_id, nullptr, t.trace);
  if (!r.ok()) {
    const ApiError& e = *r.err;
    if (e.budget) {
      // Refused locally: nothing was sent; try when the budget has room.
      std::lock_guard lock(mutex_);
      if (auto it = tasks_.find(key); it != tasks_.end()) {
        it->second.next_poll_ms = now + std::max<int64_t>(1, e.retry_at - steady_ms());
      }
      return;
    }
    if (e.http == 404) {
      fail_task(t, "the agent run was not found upstream (" + e.error + ")", now);
      finish(key, t, now);
      return;
    }
    const int64_t retry_at = e.retry_at > 0 ? now + (e.retry_at - steady_ms()) : 0;
    apply_poll_failure(t, e.error, retry_at, now, timing);
    // Credentials or request rejected: it will not fix itself soon.
    if (!e.retryable) t.next_poll_ms = std::max(t.next_poll_ms, now + timing.poll_max_interval_ms);
    if (t.errors == 1 || t.errors % 10 == 0) {
      host_.warn("polling agent run " + std::to_string(t.agent_run_id) + " failed: " + e.error);
    }
    save(key, t);
    return;
  }
  const std::string before = t.upstream_status;
  if (apply_observation(t, r.body, now, timing)) {
    finish(key, t, now);
  } else {
    if (t.upstream_status != before) report(t);
    save(key, t);
  }
}

void Poller::prune(int64_t now) {
  for (const TaskRecord& t : store_.all()) {
    if (should_prune(t, now, settings_.retention_ms)) store_.erase(t);
  }
  orch_.prune(now);
  next_prune_ = now + std::clamp<int64_t>(settings_.retention_ms / 4, 1000, 3600 * 1000);
}

// Replicas sharing a store run one poller each, but only the holder of the lease "poller"
// polls and delivers: each task is polled by one replica and an orchestrator resumed once.
// The holder renews it every lease_ms / 3 (settings); when it dies another takes over within lease_ms
// and starts as after a restart (startup: every non-terminal task, every unfinished
// delivery, from the store). The holder also picks up, every kRescanMs, tasks that other
// replicas' handlers started (marked new: TaskStore::take_new).
bool Poller::lead(int64_t now) {
  if (leading_) {
    if (!renew(now)) return false;
    if (now >= rescan_at_) rescan(now);
    return true;
  }
  if (!host_.lease_acquire("poller", std::chrono::milliseconds(settings_.lease_ms))) return false;
  renew_at_ = now + settings_.lease_ms / 3;
  {
    std::lock_guard lock(mutex_);
    tasks_.clear();  // what this replica knew may be stale: the store has the truth
  }
  startup(now);
  leading_ = true;
  rescan_at_ = now + kRescanMs;
  host_.info("this replica polls the tasks (lease 'poller')");
  return true;
}

// While leading: renews the lease when due; false once it is lost.
bool Poller::renew(int64_t now) {
  if (!leading_) return false;
  if (now < renew_at_) return true;
  renew_at_ = now + settings_.lease_ms / 3;
  if (host_.lease_acquire("poller", std::chrono::milliseconds(settings_.lease_ms))) return true;
  leading_ = false;
  host_.warn("another replica polls the tasks now (lease 'poller' lost)");
  return false;
}

void Poller::rescan(int64_t now) {
  for (const TaskRecord& t : store_.take_new()) {
    if (is_terminal(t.state)) continue;
    std::lock_guard lock(mutex_);
    tasks_.try_emplace(task_key(t.principal, t.task_id), t);
  }
  rescan_at_ = now + kRescanMs;
}

void Poller::run() noexcept {
  auto stop = [this] { return stopping(); };
  for (;;) {
    int64_t pause_ms = 0;
    try {
      if (stop()) return;
      if (!lead(now_ms())) {
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, std::chrono::milliseconds(settings_.lease_ms / 3), [this] { return stop_; });
        continue;
      }
      std::vector<std::string> due;
      {
        std::lock_guard lock(mutex_);
        const int64_t now = now_ms();
        for (const auto& [key, t] : tasks_) {
          if (t.next_poll_ms <= now) due.push_back(key);
        }
      }
      for (const auto& key : due) {
        if (stop()) return;
        poll(key);
      }
      // Before delivering (a resume is the one thing that must not happen twice): still ours?
      orch_.run_due(now_ms(), [&] { return stop() || !renew(now_ms()); });
      if (now_ms() >= next_prune_) prune(now_ms());
    } catch (const std::exception& e) {
      // Never let an exception end the thread (or cross into the host); slow down instead.
      host_.error(std::string("poller error: ") + e.what());
      pause_ms = 1000;
    } catch (...) {
      host_.error("poller error");
      pause_ms = 1000;
    }

    std::unique_lock lock(mutex_);
    int64_t next = std::min({orch_.next_due(), next_prune_, renew_at_});  // renew the lease in time
    for (const auto& [key, t] : tasks_) next = std::min(next, t.next_poll_ms);
    const int64_t wait = std::clamp<int64_t>(std::max(next - now_ms(), pause_ms), 1, 1000);
    wake_.wait_for(lock, std::chrono::milliseconds(wait), [this] { return stop_ || poked_; });
    poked_ = false;
    if (stop_) return;
  }
}

}  // namespace codegen
