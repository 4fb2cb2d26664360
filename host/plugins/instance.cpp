#include "plugins/instance.hpp"

#include <thread>

#include <spdlog/spdlog.h>

#include "json/bounded.hpp"

bool mcph_call::is_cancelled() const {
  if (cancelled.load(std::memory_order_relaxed)) return true;
  if (instance != nullptr && instance->shutting_down()) return true;
  return std::chrono::steady_clock::now() >= deadline;
}

void mcph_call::reset_outcome() {
  has_outcome = false;
  is_error = false;
  error_status = MCPH_OK;
  result = nullptr;
  error_text.clear();
  input_requests = nlohmann::json::object();
  next_state.reset();
  missing_capability.clear();
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

namespace mcph::plugins {

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

Result<std::unique_ptr<Instance>> Instance::create(const config::PluginConfig& cfg,
                                                   std::shared_ptr<Library> library,
                                                   Services services) {
  std::unique_ptr<Instance> self(new Instance());
  self->config_ = cfg;
  self->library_ = std::move(library);
  self->host_.name = cfg.name;
  self->host_.credentials = cfg.credentials;
  self->host_.services = services;
  // Until the plugin declares which credentials are public, every one is a secret.
  auto secret_values = [&](const std::set<std::string>& public_keys) {
    std::vector<std::string> values;
    for (const auto& [key, value] : cfg.credentials) {
      if (!public_keys.contains(key) && worth_redacting(value)) values.push_back(value);
    }
    return values;
  };
  self->host_.secrets.set_fixed(secret_values({}));

  // create() runs on a thread of its own, under a deadline: a plugin that hangs there must
  // not hang the host's start (nor keep SIGTERM from ending it). One that does is given up:
  // the instance (and its library) are left alone for good, since the thread still uses them.
  struct Pending {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    mcph_status status = MCPH_ERR_INTERNAL;
  };
  auto pending = std::make_shared<Pending>();
  Instance* raw = self.get();
  std::thread([raw, pending, settings = json_text::dump(cfg.settings)] {
    raw->host_.registering = true;
    const mcph_status st = raw->library_->descriptor().create(&host_api(), &raw->host_, mcph_str{settings.c_str(), settings.size()},
                                                             &raw->plugin_instance_);
    raw->host_.registering = false;
    std::lock_guard lock(pending->mutex);
    pending->status = st;
    pending->done = true;
    pending->cv.notify_all();
  }).detach();
  const auto timeout = std::chrono::milliseconds(cfg.create_timeout_ms);
  std::unique_lock wait_lock(pending->mutex);
  if (!pending->cv.wait_for(wait_lock, timeout, [&] { return pending->done; })) {
    (void)self.release();  // still in use by the thread inside create()
    return Error{"plugin instance '" + cfg.name + "' (" + raw->library_->path() + ") did not finish starting within " +
                 std::to_string(timeout.count()) + " ms (plugins[].create_timeout_ms); it is left disabled"};
  }
  const mcph_status st = pending->status;
  wait_lock.unlock();
  if (st == MCPH_OK) self->host_.secrets.set_fixed(secret_values(self->host_.public_credentials));
  if (st != MCPH_OK) {
    std::string why = self->host_.create_error.empty() ? status_name(st) : self->host_.create_error;
    self->host_.redact(why);
    return Error{"plugin instance '" + cfg.name + "' (" + self->library_->path() +
                 ") failed to start: " + why};
  }
  self->created_ = true;
  if (!self->host_.create_error.empty()) {
    // A registration error (e.g. a duplicate tool name) that the plugin ignored.
    std::string why = self->host_.create_error;
    self->host_.redact(why);
    return Error{"plugin instance '" + cfg.name + "' (" + self->library_->path() + "): " + why};
  }
  return self;
}

Instance::~Instance() {
  if (!created_) return;
  {
    std::unique_lock lock(drain_mutex_);
    drained_.wait(lock, [&] { return in_flight_.load() == 0; });
  }
  library_->descriptor().destroy(plugin_instance_);
}

void Instance::run(const std::string& what, mcph_tool_handler handler, void* user, const std::string& input,
                   mcph_call& call) const {
  call.instance = this;
  call.reset_outcome();
  in_flight_.fetch_add(1);
  mcph_status st = handler(plugin_instance_, user, &call, mcph_str{input.c_str(), input.size()});
  if (in_flight_.fetch_sub(1) == 1) {
    std::lock_guard lock(drain_mutex_);
    drained_.notify_all();
  }
  if (!call.input_requests.empty() || !call.missing_capability.empty()) return;  // another round
  if (!call.has_outcome) {
    call.has_outcome = call.is_error = true;
    call.error_status = st == MCPH_OK ? MCPH_ERR_INTERNAL : st;
    call.error_text = what + (st == MCPH_OK ? " returned no result" : std::string(" failed: ") + status_name(st));
  }
  // The secrets this handler could have seen: the instance's and this caller's own.
  std::vector<std::string> secrets = host_.secrets.fixed();
  if (call.caller != nullptr) {
    auto mine = host_.caller_secrets(*call.caller);
    secrets.insert(secrets.end(), mine.begin(), mine.end());
    sort_longest_first(secrets);
  }
  if (call.is_error) {
    redact_text(call.error_text, secrets);
  } else {
    redact_json(call.result, secrets);
  }
}

}  // namespace mcph::plugins
