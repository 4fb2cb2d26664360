#include "plugins/instance.hpp"

#include <algorithm>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "json/bounded.hpp"

bool mcph_call::is_cancelled() const {
  if (cancelled.load(std::memory_order_relaxed)) return true;
  if (host != nullptr && host->shutting_down.load(std::memory_order_relaxed)) return true;
  return std::chrono::steady_clock::now() >= deadline;
}

void mcph_call::reset_outcome() {
  has_outcome = false;
  is_error = false;
  error_status = MCPH_OK;
  result = nullptr;
  error_text.clear();
  input_requests = nullptr;
  next_state.reset();
  missing_capability.clear();
  task_handle.clear();
}

std::vector<std::string> mcph_host_instance::caller_secrets(const mcph::plugins::Caller& caller) const {
  std::vector<std::string> out;
  auto inst = caller.credentials.find(name);
  if (inst == caller.credentials.end()) return out;
  for (const auto& declared : user_credentials) {
    if (!declared.secret) continue;
    auto v = inst->second.find(declared.key);
    if (v == inst->second.end() || !mcph::plugins::worth_redacting(v->second)) continue;
    out.push_back(v->second);
    secrets.add_user(v->second);
  }
  return out;
}

std::string mcph_host_instance::lease_owner() const {
  const std::string owner = mcph::plugins::replica_id() + "/" + name;
  return services.generation > 0 ? owner + "@" + std::to_string(services.generation) : owner;
}

std::vector<std::string> mcph_host_instance::secrets_for(const mcph::plugins::Caller* caller) const {
  std::vector<std::string> out = secrets.fixed();
  if (caller != nullptr) {
    auto mine = caller_secrets(*caller);
    out.insert(out.end(), mine.begin(), mine.end());
    mcph::plugins::sort_longest_first(out);
  }
  return out;
}

void mcph_host_instance::fix_credential_secrets() {
  std::vector<std::string> values;
  for (const auto& [key, value] : credentials) {
    if (!public_credentials.contains(key) && mcph::plugins::worth_redacting(value)) values.push_back(value);
  }
  secrets.set_fixed(std::move(values));
}

namespace mcph::plugins {

namespace {
thread_local DoneBatch* open_batch = nullptr;
}  // namespace

DoneBatch::DoneBatch() : outermost_(open_batch == nullptr) {
  if (outermost_) open_batch = this;
}

DoneBatch::~DoneBatch() {
  if (!outermost_) return;
  open_batch = nullptr;  // what the flushes send goes out at once
  for (auto& [owner, flush] : flushes_) flush(owner.get());
}

bool DoneBatch::open() { return open_batch != nullptr; }

void DoneBatch::flush() {
  DoneBatch* b = open_batch;
  if (b == nullptr || b->flushes_.empty()) return;
  open_batch = nullptr;  // as in ~DoneBatch
  for (auto& [owner, run] : std::exchange(b->flushes_, {})) run(owner.get());
  open_batch = b;
}

bool DoneBatch::defer(const std::shared_ptr<void>& owner, void (*flush)(void*)) {
  DoneBatch* b = open_batch;
  if (b == nullptr) return false;
  for (const auto& f : b->flushes_) {
    if (f.first == owner) return true;
  }
  b->flushes_.emplace_back(owner, flush);
  return true;
}

using nlohmann::json;

bool Resource::match(std::string_view uri, json& values) const {
  if (literals.empty()) return false;  // a fixed URI, not a template
  // Backtracking over where each variable ends: variables match 1+ characters other
  // than '/', literals match exactly. Templates are short; so is the search.
  std::vector<std::string> found(variables.size());
  auto go = [&](auto&& self, size_t i, std::string_view rest) -> bool {
    if (!rest.starts_with(literals[i])) return false;
    rest.remove_prefix(literals[i].size());
    if (i == variables.size()) return rest.empty();
    for (size_t n = 1; n <= rest.size() && rest[n - 1] != '/'; ++n) {
      found[i] = std::string(rest.substr(0, n));
      if (self(self, i + 1, rest.substr(n))) return true;
    }
    return false;
  };
  if (!go(go, 0, uri)) return false;
  values = json::object();
  for (size_t i = 0; i < variables.size(); ++i) values[variables[i]] = found[i];
  return true;
}

json error_result(const std::string& text) {
  return json{{"content", json::array({json{{"type", "text"}, {"text", text}}})}, {"isError", true}};
}

const char* status_name(mcph_status status) {
  switch (status) {
    case MCPH_OK: return "OK";
    case MCPH_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case MCPH_ERR_NOT_FOUND: return "NOT_FOUND";
    case MCPH_ERR_UNAUTHENTICATED: return "UNAUTHENTICATED";
    case MCPH_ERR_PERMISSION_DENIED: return "PERMISSION_DENIED";
    case MCPH_ERR_UNAVAILABLE: return "UNAVAILABLE";
    case MCPH_ERR_CANCELLED: return "CANCELLED";
    case MCPH_ERR_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case MCPH_ERR_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case MCPH_ERR_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case MCPH_ERR_INTERNAL: return "INTERNAL";
    case MCPH_ERR_UNSUPPORTED: return "UNSUPPORTED";
    default: return "UNKNOWN";
  }
}

void Instance::finish(const std::string& what, mcph_status st, mcph_call& call) const {
  if (!call.input_requests.empty() || !call.missing_capability.empty()) return;  // another round
  if (!call.task_handle.empty()) {  // handed over as a task: the plugin reports later
    call.has_outcome = call.is_error = false;
    call.result = nullptr;
    return;
  }
  if (!call.has_outcome) {
    call.has_outcome = call.is_error = true;
    call.error_status = st == MCPH_OK ? MCPH_ERR_INTERNAL : st;
    call.error_text = what + (st == MCPH_OK ? " returned no result" : std::string(" failed: ") + status_name(st));
  }
  // The secrets this handler could have seen: the instance's and this caller's own.
  const std::vector<std::string> secrets = host_.secrets_for(call.caller);
  if (call.is_error) {
    redact_text(call.error_text, secrets);
  } else if (!secrets.empty()) {
    // Text with no escape holds a secret in a string only where it holds it as written.
    const auto text = json_text::written_text(call.result);
    auto holds = [&](const std::string& s) { return !s.empty() && text->find(s) != std::string_view::npos; };
    const bool clean = text && text->find('\\') == std::string_view::npos && std::none_of(secrets.begin(), secrets.end(), holds);
    if (clean) return;
    call.result = json_text::built(std::move(call.result));
    redact_json(call.result, secrets);
  }
}

void Instance::notify_resource_updated(const std::string& uri) const {
  std::shared_lock lock(host_.listener_mutex);
  if (host_.listener != nullptr) host_.listener->resource_updated(uri);
}

}  // namespace mcph::plugins
