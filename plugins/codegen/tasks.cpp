#include "tasks.hpp"

#include <algorithm>
#include <cctype>
#include <array>

namespace codegen {

RunClass classify_status(std::string_view raw) {
  // codegen.md §B.4. The spec types status as a free string; these come from the official
  // CLI's status maps. Lower-case and US spellings are accepted too (outdated SDK docs).
  // EVALUATION is uncertain (§E) and treated as still running: a wrong "running" costs a
  // few more polls up to the deadline, a wrong "finished" would report a false outcome.
  // Unknown or empty statuses are non-terminal for the same reason.
  static constexpr std::array<std::string_view, 2> kSuccess{"COMPLETE", "COMPLETED"};
  static constexpr std::array<std::string_view, 11> kFailure{
      "ERROR",   "FAILED",    "FAILURE", "CANCELLED",           "CANCELED",      "STOPPED",
      "TIMEOUT", "TIMED_OUT", "EXPIRED", "MAX_ITERATIONS_REACHED", "OUT_OF_TOKENS"};
  while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.front()))) raw.remove_prefix(1);
  while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.remove_suffix(1);
  for (auto s : kSuccess) {
    if (iequals(raw, s)) return RunClass::Success;
  }
  for (auto s : kFailure) {
    if (iequals(raw, s)) return RunClass::Failure;
  }
  return RunClass::NonTerminal;
}

const char* to_string(TaskState s) {
  switch (s) {
    case TaskState::Pending: return "pending";
    case TaskState::Running: return "running";
    case TaskState::Completed: return "completed";
    case TaskState::Failed: return "failed";
    case TaskState::TimedOut: return "timed_out";
  }
  return "running";
}

std::optional<TaskState> task_state_from(std::string_view s) {
  for (auto st : {TaskState::Pending, TaskState::Running, TaskState::Completed, TaskState::Failed, TaskState::TimedOut}) {
    if (s == to_string(st)) return st;
  }
  return std::nullopt;
}

namespace {

const char* notify_name(Notify n) {
  switch (n) {
    case Notify::None: return "none";
    case Notify::Needed: return "needed";
    case Notify::Queued: return "queued";
  }
  return "none";
}

Notify notify_from(std::string_view s) {
  if (s == "needed") return Notify::Needed;
  if (s == "queued") return Notify::Queued;
  return Notify::None;
}

json opt(const std::optional<std::string>& s) { return s ? json(*s) : json(); }

std::optional<std::string> opt_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

int64_t int_or(const json& j, const char* key, int64_t fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

// A run's result as text: the API sends a string; anything else is kept as JSON text.
json result_text(const json& run) {
  auto it = run.find("result");
  if (it == run.end() || it->is_null()) return nullptr;
  if (it->is_string()) return *it;
  return dump(*it);
}

void schedule(TaskRecord& t, int64_t now, bool changed, const Timing& timing) {
  if (t.state == TaskState::TimedOut) {
    t.interval_ms = timing.timed_out_poll_interval_ms;
  } else if (changed || t.interval_ms <= 0) {
    t.interval_ms = timing.poll_interval_ms;
  } else {
    t.interval_ms = std::min(timing.poll_max_interval_ms, std::max(t.interval_ms + t.interval_ms / 2, t.interval_ms + 1));
  }
  t.next_poll_ms = now + t.interval_ms;
}

}  // namespace

json to_json(const TaskRecord& t) {
  return json{{"v", 1},
              {"task_id", t.task_id},
              {"principal", t.principal},
              {"kind", t.kind},
              {"org_id", t.org_id},
              {"agent_run_id", t.agent_run_id},
              {"orchestrator_run_id", t.orchestrator_run_id ? json(*t.orchestrator_run_id) : json()},
              {"state", to_string(t.state)},
              {"upstream_status", t.upstream_status},
              {"result", t.result},
              {"error", opt(t.error)},
              {"web_url", opt(t.web_url)},
              {"metadata", t.metadata},
              {"created_ms", t.created_ms},
              {"completed_ms", t.completed_ms},
              {"deadline_ms", t.deadline_ms},
              {"await_active", t.await_active},
              {"resumed_ms", t.resumed_ms},
              {"next_poll_ms", t.next_poll_ms},
              {"interval_ms", t.interval_ms},
              {"polls", t.polls},
              {"last_polled_ms", t.last_polled_ms},
              {"errors", t.errors},
              {"last_error", t.last_error},
              {"paused", t.paused},
              {"notify", notify_name(t.notify)},
              {"mcp_task", t.mcp_task},
              {"trace", t.trace}};
}

std::optional<TaskRecord> task_from_json(const json& j) {
  if (!j.is_object()) return std::nullopt;
  TaskRecord t;
  auto id = opt_string(j, "task_id");
  auto principal = opt_string(j, "principal");
  auto state = task_state_from(j.value("state", ""));
  const int64_t org = int_or(j, "org_id", 0), run = int_or(j, "agent_run_id", 0);
  if (!id || id->empty() || !principal || !state || org <= 0 || run <= 0) return std::nullopt;
  t.task_id = *id;
  t.principal = *principal;
  t.kind = j.value("kind", "new") == "resume" ? "resume" : "new";
  t.org_id = org;
  t.agent_run_id = run;
  if (int64_t o = int_or(j, "orchestrator_run_id", 0); o > 0) t.orchestrator_run_id = o;
  t.state = *state;
  t.upstream_status = opt_string(j, "upstream_status").value_or("");
  t.result = j.contains("result") && (j["result"].is_string() || j["result"].is_null()) ? j["result"] : json();
  t.error = opt_string(j, "error");
  t.web_url = opt_string(j, "web_url");
  t.metadata = j.contains("metadata") && j["metadata"].is_object() ? j["metadata"] : json::object();
  t.created_ms = int_or(j, "created_ms", 0);
  t.completed_ms = int_or(j, "completed_ms", 0);
  t.deadline_ms = int_or(j, "deadline_ms", 0);
  t.await_active = j.value("await_active", false);
  t.resumed_ms = int_or(j, "resumed_ms", 0);
  t.next_poll_ms = int_or(j, "next_poll_ms", 0);
  t.interval_ms = int_or(j, "interval_ms", 0);
  t.polls = int_or(j, "polls", 0);
  t.last_polled_ms = int_or(j, "last_polled_ms", 0);
  t.errors = static_cast<int>(int_or(j, "errors", 0));
  t.last_error = opt_string(j, "last_error").value_or("");
  t.paused = opt_string(j, "paused").value_or("");
  t.notify = notify_from(j.value("notify", "none"));
  t.mcp_task = j.value("mcp_task", false);
  t.trace = opt_string(j, "trace").value_or("");
  return t;
}

std::string task_key(std::string_view principal, std::string_view task_id) {
  return std::string(kTaskPrefix) + hex(principal) + "/" + std::string(task_id);
}

std::string owner_key(int64_t org_id, int64_t run_id) {
  return "owner/" + std::to_string(org_id) + "/" + std::to_string(run_id);
}

bool apply_observation(TaskRecord& t, const json& run, int64_t now, const Timing& timing) {
  const std::string raw = run.contains("status") && run["status"].is_string() ? run["status"].get<std::string>() : "";
  RunClass cls = classify_status(raw);
  const bool changed = !iequals(raw, t.upstream_status);
  t.polls += 1;
  t.last_polled_ms = now;
  t.errors = 0;
  t.last_error.clear();
  t.upstream_status = raw;
  if (auto it = run.find("web_url"); it != run.end() && it->is_string()) t.web_url = it->get<std::string>();

  if (t.await_active) {
    if (cls == RunClass::NonTerminal) {
      t.await_active = false;  // the resumed run is running: its next terminal status counts
    } else if (now - t.resumed_ms < timing.resume_grace_ms) {
      cls = RunClass::NonTerminal;  // still the previous outcome (§D.7): keep waiting
    } else {
      t.await_active = false;  // never seen active within the grace: take what the API says
    }
  }

  if (cls == RunClass::Success) {
    t.state = TaskState::Completed;
    t.result = result_text(run);
    t.error.reset();
    t.completed_ms = now;
    return true;
  }
  if (cls == RunClass::Failure) {
    t.state = TaskState::Failed;
    t.result = result_text(run);
    std::string why = "the agent run ended with status " + raw;
    if (auto s = run.find("summary"); s != run.end() && s->is_string() && !s->get<std::string>().empty()) {
      why += ": " + truncate_utf8(s->get<std::string>(), 2000);
    }
    t.error = why;
    t.completed_ms = now;
    return true;
  }
  if (now >= t.deadline_ms) {
    t.state = TaskState::TimedOut;
  } else {
    t.state = iequals(raw, "PENDING") ? TaskState::Pending : TaskState::Running;
  }
  schedule(t, now, changed, timing);
  return false;
}

void apply_poll_failure(TaskRecord& t, const std::string& why, int64_t retry_at, int64_t now, const Timing& timing) {
  t.errors += 1;
  t.last_error = why;
  t.last_polled_ms = now;
  if (!is_terminal(t.state) && now >= t.deadline_ms) t.state = TaskState::TimedOut;
  // Exponential backoff on consecutive failures, never faster than the normal schedule.
  const int64_t base = t.state == TaskState::TimedOut ? timing.timed_out_poll_interval_ms : timing.poll_interval_ms;
  int64_t backoff = base;
  for (int i = 1; i < t.errors && backoff < timing.poll_max_interval_ms; ++i) backoff *= 2;
  backoff = std::max(base, std::min(backoff, std::max(timing.poll_max_interval_ms, base)));
  t.interval_ms = backoff;
  t.next_poll_ms = std::max(retry_at, now + backoff);
}

void apply_deadline(TaskRecord& t, int64_t now, const Timing& timing) {
  if (is_terminal(t.state) || t.state == TaskState::TimedOut || now < t.deadline_ms) return;
  t.state = TaskState::TimedOut;
  t.interval_ms = timing.timed_out_poll_interval_ms;
}

void fail_task(TaskRecord& t, const std::string& why, int64_t now) {
  t.state = TaskState::Failed;
  t.error = why;
  t.completed_ms = now;
}

bool should_prune(const TaskRecord& t, int64_t now, int64_t retention_ms) {
  return is_terminal(t.state) && t.notify != Notify::Needed && t.completed_ms > 0 &&
         now - t.completed_ms >= retention_ms;
}

json task_view(const TaskRecord& t) {
  return json{{"status", "success"},
              {"task_id", t.task_id},
              {"agent_run_id", t.agent_run_id},
              {"state", to_string(t.state)},
              {"result", t.result},
              {"error", opt(t.error)},
              {"created_at", iso8601(t.created_ms)},
              {"completed_at", t.completed_ms > 0 ? json(iso8601(t.completed_ms)) : json()},
              {"web_url", opt(t.web_url)},
              {"metadata", t.metadata},
              {"upstream_status", t.upstream_status.empty() ? json() : json(t.upstream_status)},
              {"kind", t.kind},
              {"orchestrator_run_id", t.orchestrator_run_id ? json(*t.orchestrator_run_id) : json()},
              {"polls", t.polls},
              {"last_polled_at", t.last_polled_ms > 0 ? json(iso8601(t.last_polled_ms)) : json()},
              {"last_error", t.last_error.empty() ? json() : json(t.last_error)},
              {"paused", t.paused.empty() ? json() : json(t.paused)}};
}

bool TaskStore::put(const TaskRecord& t) const { return host_.state_put(task_key(t.principal, t.task_id), dump(to_json(t))); }

std::optional<TaskRecord> TaskStore::get(std::string_view principal, std::string_view task_id) const {
  auto text = host_.state_get(task_key(principal, task_id));
  if (!text) return std::nullopt;
  auto t = task_from_json(json::parse(*text, nullptr, false));
  // The key is scoped, but check the record too: a principal never sees another's task.
  if (!t || t->principal != principal || t->task_id != task_id) return std::nullopt;
  return t;
}

std::vector<TaskRecord> TaskStore::all() const {
  std::vector<TaskRecord> out;
  for (const auto& [key, value] : host_.state_list(kTaskPrefix)) {
    auto t = task_from_json(json::parse(value, nullptr, false));
    if (!t || key != task_key(t->principal, t->task_id)) {
      host_.warn("ignoring a malformed task record in state (" + key + ")");
      continue;
    }
    out.push_back(std::move(*t));
  }
  return out;
}

void TaskStore::erase(const TaskRecord& t) const { host_.state_delete(task_key(t.principal, t.task_id)); }

namespace {
constexpr std::string_view kNewPrefix = "new/";
}  // namespace

void TaskStore::mark_new(const TaskRecord& t) const {
  host_.state_put(std::string(kNewPrefix) + task_key(t.principal, t.task_id), "");
}

std::vector<TaskRecord> TaskStore::take_new() const {
  std::vector<TaskRecord> out;
  for (const auto& [mark, unused] : host_.state_list(kNewPrefix)) {
    const std::string key = mark.substr(kNewPrefix.size());
    if (auto text = host_.state_get(key)) {
      auto t = task_from_json(json::parse(*text, nullptr, false));
      if (t && key == task_key(t->principal, t->task_id)) out.push_back(std::move(*t));
    }
    host_.state_delete(mark);  // after reading: a poller that dies in between finds it again
  }
  return out;
}

std::optional<std::string> TaskStore::owner(int64_t org_id, int64_t run_id) const {
  return host_.state_get(owner_key(org_id, run_id));
}

void TaskStore::set_owner(int64_t org_id, int64_t run_id, std::string_view principal) const {
  host_.state_put(owner_key(org_id, run_id), principal);
}

}  // namespace codegen
