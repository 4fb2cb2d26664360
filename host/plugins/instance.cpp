#include "plugins/instance.hpp"

#include <spdlog/spdlog.h>

bool mcph_call::is_cancelled() const {
  if (cancelled.load(std::memory_order_relaxed)) return true;
  if (instance != nullptr && instance->shutting_down()) return true;
  return std::chrono::steady_clock::now() >= deadline;
}

bool mcph_host_instance::redact(std::string& text) const {
  bool changed = false;
  for (const auto& secret : secrets) {
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 10)) {
      text.replace(pos, secret.size(), "[REDACTED]");
      changed = true;
    }
  }
  return changed;
}

namespace mcph::plugins {

using nlohmann::json;

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

json Instance::call(const Tool& tool, const std::string& arguments_json, mcph_call& call) const {
  call.instance = this;
  in_flight_.fetch_add(1);
  mcph_status st = tool.handler(plugin_instance_, tool.user, &call,
                                mcph_str{arguments_json.c_str(), arguments_json.size()});
  if (in_flight_.fetch_sub(1) == 1) {
    std::lock_guard lock(drain_mutex_);
    drained_.notify_all();
  }

  if (call.has_outcome && !call.is_error) {
    if (host_.secrets.empty()) return std::move(call.result);
    // Redact on the text; "[REDACTED]" needs no escaping, so the JSON stays valid.
    std::string text = call.result.dump(-1, ' ', false, json::error_handler_t::replace);
    if (!host_.redact(text)) return std::move(call.result);
    return json::parse(text, nullptr, false);
  }
  std::string text;
  if (call.has_outcome && call.is_error) {
    text = std::move(call.error_text);
  } else if (st == MCPH_OK) {
    text = "tool '" + tool.name + "' returned no result";
  } else {
    text = std::string("tool '") + tool.name + "' failed: " + status_name(st);
  }
  host_.redact(text);
  return error_result(text);
}

}  // namespace mcph::plugins
