#include "plugins/instance.hpp"

#include <spdlog/spdlog.h>

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

bool mcph_host_instance::redact(std::string& text) const {
  bool changed = false;
  auto scrub = [&](const std::string& secret) {
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 10)) {
      text.replace(pos, secret.size(), "[REDACTED]");
      changed = true;
    }
  };
  for (const auto& secret : secrets) scrub(secret);
  std::lock_guard lock(user_secrets_mutex);
  for (const auto& secret : user_secrets) scrub(secret);
  return changed;
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
  for (const auto& [key, value] : cfg.credentials) {
    // Very short values would redact ordinary words; credentials are never that short.
    if (value.size() >= 4) self->host_.secrets.push_back(value);
  }

  const std::string settings = cfg.settings.dump();
  const auto& d = self->library_->descriptor();
  self->host_.registering = true;
  mcph_status st = d.create(&host_api(), &self->host_, mcph_str{settings.c_str(), settings.size()},
                            &self->plugin_instance_);
  self->host_.registering = false;
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
  if (call.caller != nullptr) {  // this user's credentials are secrets here from now on
    if (auto it = call.caller->credentials.find(host_.name); it != call.caller->credentials.end()) {
      std::lock_guard lock(host_.user_secrets_mutex);
      for (const auto& [key, value] : it->second) {
        if (value.size() >= 4) host_.user_secrets.insert(value);
      }
    }
  }
  in_flight_.fetch_add(1);
  mcph_status st = handler(plugin_instance_, user, &call, mcph_str{input.c_str(), input.size()});
  if (in_flight_.fetch_sub(1) == 1) {
    std::lock_guard lock(drain_mutex_);
    drained_.notify_all();
  }
  if (!call.input_requests.empty() || !call.missing_capability.empty()) return;  // another round
  if (call.has_outcome && !call.is_error) {
    if (host_.secrets.empty() && call.caller == nullptr) return;
    // Redact on the text; "[REDACTED]" needs no escaping, so the JSON stays valid.
    std::string text = call.result.dump(-1, ' ', false, json::error_handler_t::replace);
    if (host_.redact(text)) call.result = json::parse(text, nullptr, false);
    return;
  }
  if (!call.has_outcome) {
    call.has_outcome = call.is_error = true;
    call.error_status = st == MCPH_OK ? MCPH_ERR_INTERNAL : st;
    call.error_text = what + (st == MCPH_OK ? " returned no result" : std::string(" failed: ") + status_name(st));
  }
  host_.redact(call.error_text);
}

}  // namespace mcph::plugins
