#include "tasks/task_table.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <random>
#include <thread>

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
std::string live_key(const Task& t) { return "live/" + t.principal + "/" + t.id; }
std::string handle_key(std::string_view instance, std::string_view handle) {
  return "handle/" + std::string(instance) + "/" + std::string(handle);
}

// "exp/<unix ms, 15 digits>/<id>": byte order is time order.
std::string expiry_key(int64_t at_ms, std::string_view id) {
  char ms[16];
  std::snprintf(ms, sizeof ms, "%015lld", static_cast<long long>(at_ms));
  return "exp/" + std::string(ms) + "/" + std::string(id);
}

// Counts rows under `prefix` whose value `counts` accepts, up to `limit`.
Result<size_t> count(store::StateStore& store, std::string_view prefix, size_t limit,
                     const std::function<bool(std::string_view)>& counts) {
  size_t n = 0;
  auto st = store.list(kNs, prefix, [&](std::string_view, std::string_view value) {
    if (counts(value)) ++n;
    return n < limit;
  });
  if (!st) return Error{st.error()};
  return n;
}
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

void Task::ask(const json& requests) {
  ++input_round;
  status = Status::kInputRequired;
  input_requests = json::object();
  for (const auto& [key, r] : requests.items()) input_requests[std::to_string(input_round) + "." + key] = r;
  answers = json::object();
}

json Task::round_answers() const {
  json out = json::object();
  const std::string prefix = std::to_string(input_round) + ".";
  if (!answers.is_object()) return out;
  for (const auto& [key, a] : answers.items()) {
    if (key.starts_with(prefix)) out[key.substr(prefix.size())] = a;
  }
  return out;
}

json Task::to_json() const {
  json j{{"id", id},           {"principal", principal},   {"tool", tool},       {"owner", owner},
         {"status", name(status)}, {"created", created_ms}, {"updated", updated_ms}, {"ttl", ttl_ms}};
  if (!status_message.empty()) j["message"] = status_message;
  if (!instance.empty()) j["instance"] = instance;
  if (!handle.empty()) j["handle"] = handle;
  if (!result.is_null()) j["result"] = result;
  if (!error.is_null()) j["error"] = error;
  if (!input_requests.is_null()) j["input"] = input_requests;
  if (!answers.is_null()) j["answers"] = answers;
  if (input_round != 0) j["round"] = input_round;
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
  t.instance = j.value("instance", "");
  t.handle = j.value("handle", "");
  t.answers = j.value("answers", json());
  t.input_round = j.value("round", 0);
  t.created_ms = j.value("created", int64_t{0});
  t.updated_ms = j.value("updated", int64_t{0});
  t.ttl_ms = j.value("ttl", int64_t{0});
  t.result = j.value("result", json());
  t.error = j.value("error", json());
  t.input_requests = j.value("input", json());
  return t;
}

Result<Task> TaskTable::create(const std::string& principal, const std::string& tool, const std::string& owner,
                               const std::function<void(Task&)>& prepare) {
  auto mine = count(store_, "live/" + principal + "/", limits_.max_per_user, [](std::string_view) { return true; });
  if (!mine) return Error{mine.error()};
  if (*mine >= limits_.max_per_user) {
    return Error{"too many unfinished tasks (" + std::to_string(*mine) + "; tasks.max_per_user): wait for one to finish"};
  }
  auto all = count(store_, "live/", limits_.max_total, [](std::string_view) { return true; });
  if (!all) return Error{all.error()};
  if (*all >= limits_.max_total) return Error{"the host holds too many unfinished tasks (tasks.max_total); try again later"};
  Task t;
  t.id = crypto::b64url(crypto::random_bytes(32));
  t.principal = principal;
  t.tool = tool;
  t.owner = owner;
  t.created_ms = t.updated_ms = now_ms();
  t.ttl_ms = limits_.ttl.count();
  if (prepare) prepare(t);
  if (auto st = store_.put(kNs, live_key(t), t.owner); !st) return Error{st.error()};
  if (auto st = store_.put(kNs, user_prefix(principal) + t.id, ""); !st) return Error{st.error()};
  if (auto st = store_.put(kNs, expiry_key(t.created_ms + t.ttl_ms, t.id), ""); !st) return Error{st.error()};
  if (!t.handle.empty()) {
    if (auto st = store_.put(kNs, handle_key(t.instance, t.handle), t.id); !st) return Error{st.error()};
  }
  if (auto st = store_.put(kNs, task_key(t.id), t.to_json().dump()); !st) return Error{st.error()};
  return t;
}

Result<std::optional<Task>> TaskTable::load(const std::string& id) {
  auto row = store_.get(kNs, task_key(id));
  if (!row) return Error{row.error()};
  if (!row->has_value()) return std::optional<Task>();
  auto t = Task::from_json(json::parse(**row, nullptr, false));
  if (t && expired(*t, now_ms())) t.reset();
  return t;
}

Result<std::optional<std::string>> TaskTable::find_handle(const std::string& instance, const std::string& handle) {
  return store_.get(kNs, handle_key(instance, handle));
}

mcph::Status TaskTable::disown(const Task& t, const std::string& owner) {
  auto done = store_.put_if(kNs, live_key(t), owner, "");
  if (!done) return Error{done.error()};
  return Ok{};
}

mcph::Status TaskTable::bind_handle(const std::string& instance, const std::string& handle, const std::string& id) {
  return store_.put(kNs, handle_key(instance, handle), id);
}

Result<std::optional<Task>> TaskTable::get(const std::string& id, const std::string& principal) {
  auto t = load(id);
  if (!t) return t;
  // Another user's task is, to this one, a task that does not exist.
  if (!t->has_value() || (*t)->principal != principal) return std::optional<Task>();
  return t;
}

Result<Task> TaskTable::update(const std::string& id, const std::function<bool(Task&)>& change) {
  // Read, change, and write only if nobody wrote meanwhile. A writer that lost that race
  // waits a random while before it reads again, up to twice as long each time (40 µs to
  // 2.5 ms): writers that retried at once kept losing to each other (six threads changing
  // one task, under ASan: 8 runs in 200 had a writer lose 20 races in a row).
  thread_local std::minstd_rand random(std::random_device{}());
  for (int attempt = 0; attempt < 32; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::microseconds(random() % (20u << std::min(attempt, 7))));
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
    if (!*written) continue;
    if (terminal(t->status)) (void)store_.erase(kNs, live_key(*t));  // it counts unfinished tasks only
    return *t;
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
  // The expiry index is in time order: read it up to now, never a task that is not expired.
  std::vector<std::pair<std::string, std::string>> due;  // (index key, id)
  const int64_t now = now_ms();
  (void)store_.list(kNs, "exp/", [&](std::string_view key, std::string_view) {
    int64_t at = 0;
    if (key.size() < 4 + 15 + 1) return true;
    if (std::from_chars(key.data() + 4, key.data() + 4 + 15, at).ec != std::errc() || at >= now) return false;
    due.emplace_back(key, key.substr(4 + 15 + 1));
    return true;
  });
  for (const auto& [index, id] : due) {
    if (auto row = store_.get(kNs, task_key(id)); row && row->has_value()) {
      if (auto t = Task::from_json(json::parse(**row, nullptr, false))) {
        (void)store_.erase(kNs, user_prefix(t->principal) + id);
        (void)store_.erase(kNs, live_key(*t));
        if (!t->handle.empty()) (void)store_.erase(kNs, handle_key(t->instance, t->handle));
      }
    }
    (void)store_.erase(kNs, task_key(id));
    (void)store_.erase(kNs, index);
  }
  return due.size();
}

Result<std::vector<std::pair<std::string, std::string>>> TaskTable::live() {
  std::vector<std::pair<std::string, std::string>> out;
  auto st = store_.list(kNs, "live/", [&](std::string_view key, std::string_view owner) {
    out.emplace_back(key.substr(key.rfind('/') + 1), owner);
    return true;
  });
  if (!st) return Error{st.error()};
  return out;
}

}  // namespace mcph::tasks
