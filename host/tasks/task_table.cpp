#include "tasks/task_table.hpp"

#include <algorithm>
#include <ctime>

#include "services/crypto.hpp"

namespace mcph::tasks {
namespace {

constexpr std::string_view kNs = "tasks";
constexpr const char* kNames[] = {"working", "input_required", "completed", "failed", "cancelled"};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::string task_key(std::string_view id) { return "task/" + std::string(id); }
std::string user_prefix(std::string_view principal) { return "user/" + std::string(principal) + "/"; }
bool expired(const Task& t, int64_t now) { return t.created_ms + t.ttl_ms < now; }

}  // namespace

std::string_view name(Status s) { return kNames[static_cast<int>(s)]; }

std::optional<Status> parse_status(std::string_view s) {
  for (int i = 0; i < 5; ++i) {
    if (s == kNames[i]) return static_cast<Status>(i);
  }
  return std::nullopt;
}

std::string iso8601(int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return buf;
}

json Task::to_json() const {
  json j{{"id", id},           {"principal", principal},   {"tool", tool},       {"owner", owner},
         {"status", name(status)}, {"created", created_ms}, {"updated", updated_ms}, {"ttl", ttl_ms}};
  if (!status_message.empty()) j["message"] = status_message;
  if (!result.is_null()) j["result"] = result;
  if (!error.is_null()) j["error"] = error;
  if (!input_requests.is_null()) j["input"] = input_requests;
  if (cancel_requested) j["cancel"] = true;
  return j;
}

std::optional<Task> Task::from_json(const json& j) {
  if (!j.is_object()) return std::nullopt;
  auto status = parse_status(j.value("status", ""));
  if (!status) return std::nullopt;
  Task t;
  t.id = j.value("id", "");
  t.principal = j.value("principal", "");
  t.tool = j.value("tool", "");
  t.owner = j.value("owner", "");
  t.status = *status;
  t.status_message = j.value("message", "");
  t.created_ms = j.value("created", int64_t{0});
  t.updated_ms = j.value("updated", int64_t{0});
  t.ttl_ms = j.value("ttl", int64_t{0});
  t.result = j.value("result", json());
  t.error = j.value("error", json());
  t.input_requests = j.value("input", json());
  t.cancel_requested = j.value("cancel", false);
  return t;
}

Result<Task> TaskTable::create(const std::string& principal, const std::string& tool, const std::string& owner) {
  auto mine = list(principal);
  if (!mine) return Error{mine.error()};
  const auto live = std::count_if(mine->begin(), mine->end(), [](const Task& t) { return !terminal(t.status); });
  if (static_cast<size_t>(live) >= limits_.max_per_user) {
    return Error{"too many tasks in progress (" + std::to_string(live) + "; tasks.max_per_user): wait for one to finish"};
  }
  Task t;
  t.id = crypto::b64url(crypto::random_bytes(32));
  t.principal = principal;
  t.tool = tool;
  t.owner = owner;
  t.created_ms = t.updated_ms = now_ms();
  t.ttl_ms = limits_.ttl.count();
  if (auto st = store_.put(kNs, user_prefix(principal) + t.id, ""); !st) return Error{st.error()};
  if (auto st = store_.put(kNs, task_key(t.id), t.to_json().dump()); !st) return Error{st.error()};
  return t;
}

Result<std::optional<Task>> TaskTable::get(const std::string& id, const std::string& principal) {
  auto row = store_.get(kNs, task_key(id));
  if (!row) return Error{row.error()};
  if (!row->has_value()) return std::optional<Task>();
  auto t = Task::from_json(json::parse(**row, nullptr, false));
  // Another user's task is, to this one, a task that does not exist.
  if (!t || t->principal != principal || expired(*t, now_ms())) return std::optional<Task>();
  return t;
}

Result<Task> TaskTable::update(const std::string& id, const std::function<bool(Task&)>& change) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto row = store_.get(kNs, task_key(id));
    if (!row) return Error{row.error()};
    if (!row->has_value()) return Error{"task " + id + " not found"};
    auto t = Task::from_json(json::parse(**row, nullptr, false));
    if (!t) return Error{"task " + id + " is unreadable"};
    if (terminal(t->status)) return *t;  // ended: never changes again
    if (!change(*t)) return *t;
    t->updated_ms = std::max(now_ms(), t->updated_ms);
    auto written = store_.put_if(kNs, task_key(id), **row, t->to_json().dump());
    if (!written) return Error{written.error()};
    if (*written) return *t;
  }
  return Error{"task " + id + " keeps changing; try again"};
}

Result<Task> TaskTable::complete(const std::string& id, json result) {
  const size_t bytes = result.dump().size();
  if (bytes > limits_.max_result_bytes) {
    return fail(id, json{{"code", -32603},
                         {"message", "the task's result is " + std::to_string(bytes) + " bytes, over the bound of " +
                                         std::to_string(limits_.max_result_bytes)}});
  }
  return update(id, [&](Task& t) {
    t.status = Status::kCompleted;
    t.result = std::move(result);
    t.input_requests = json();
    return true;
  });
}

Result<Task> TaskTable::fail(const std::string& id, json error) {
  return update(id, [&](Task& t) {
    t.status = Status::kFailed;
    t.error = std::move(error);
    t.input_requests = json();
    return true;
  });
}

Result<std::vector<Task>> TaskTable::list(const std::string& principal) {
  std::vector<std::string> ids;
  const std::string prefix = user_prefix(principal);
  auto st = store_.list(kNs, prefix, [&](std::string_view key, std::string_view) {
    ids.emplace_back(key.substr(prefix.size()));
    return true;
  });
  if (!st) return Error{st.error()};
  std::vector<Task> out;
  for (const auto& id : ids) {
    auto t = get(id, principal);
    if (!t) return Error{t.error()};
    if (t->has_value()) out.push_back(std::move(**t));
  }
  std::sort(out.begin(), out.end(), [](const Task& a, const Task& b) { return a.created_ms > b.created_ms; });
  return out;
}

size_t TaskTable::purge() {
  std::vector<std::pair<std::string, std::string>> gone;  // (id, principal)
  const int64_t now = now_ms();
  (void)store_.list(kNs, "task/", [&](std::string_view, std::string_view value) {
    auto t = Task::from_json(json::parse(value, nullptr, false));
    if (t && expired(*t, now)) gone.emplace_back(t->id, t->principal);
    return true;
  });
  for (const auto& [id, principal] : gone) {
    (void)store_.erase(kNs, task_key(id));
    (void)store_.erase(kNs, user_prefix(principal) + id);
  }
  return gone.size();
}

}  // namespace mcph::tasks
