// One plugin instance: a library created with one YAML entry's settings and credentials,
// the tools it registered, and the host services it may use. Also defines mcph_call, the
// host's side of one tool call as plugins see it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "mcp_plugin/abi.h"
#include "plugins/library.hpp"
#include "result.hpp"

namespace mcph::services {
class StateStore;
class HttpClient;
}  // namespace mcph::services

namespace mcph::plugins {

// What a running call reports back to whoever made it; the protocol engine implements it.
// Thread-safe: a plugin may report from threads working for its handler.
class CallEvents {
 public:
  virtual ~CallEvents() = default;
  virtual void progress(double progress, double total, std::string_view message) = 0;
  virtual void log(mcph_log_level level, std::string_view logger, const nlohmann::json& data) = 0;
};

struct Tool {
  std::string name;  // as the plugin registered it (before tool_prefix)
  std::string title;
  std::string description;
  nlohmann::json input_schema;   // always an object
  nlohmann::json output_schema;  // null when none
  nlohmann::json annotations;    // null when none
  mcph_tool_handler handler = nullptr;
  void* user = nullptr;
};

struct Services {
  services::StateStore* state = nullptr;  // may be null (no state_dir): state_* then fail
  services::HttpClient* http = nullptr;
};

class Instance;

}  // namespace mcph::plugins

// The host's side of one tool call (opaque to plugins). Filled by the caller of
// Instance::call; the outcome fields are written by the plugin through the host API.
struct mcph_call {
  std::atomic<bool> cancelled{false};
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  mcph::plugins::CallEvents* events = nullptr;  // may be null
  std::string principal;                        // empty for stdio and static tokens

  // Set by Instance::call.
  const mcph::plugins::Instance* instance = nullptr;
  // Outcome, written on the handler thread.
  bool has_outcome = false;
  bool is_error = false;
  nlohmann::json result;    // the CallToolResult object (when !is_error)
  std::string error_text;   // the failure's text (when is_error)

  bool is_cancelled() const;
};

// The host's side of a plugin instance, as plugins see it (mcph_host_instance*).
struct mcph_host_instance {
  std::string name;
  std::map<std::string, std::string> credentials;
  mcph::plugins::Services services;
  bool registering = false;  // true only inside create()
  std::vector<mcph::plugins::Tool> tools;
  std::string create_error;
  std::vector<std::string> secrets;  // credential values, redacted from logs and results
  std::atomic<bool> shutting_down{false};

  // Replaces every secret in `text` with "[REDACTED]"; true if it found one.
  bool redact(std::string& text) const;
};

namespace mcph::plugins {

// The table every plugin gets (host_api.cpp).
const mcph_host_api& host_api();

class Instance {
 public:
  // Runs the plugin's create() with the entry's settings. Errors name the instance.
  static Result<std::unique_ptr<Instance>> create(const config::PluginConfig& cfg,
                                                  std::shared_ptr<Library> library,
                                                  Services services);
  // Cancels nothing by itself: call begin_shutdown() first to stop long calls. Waits for
  // in-flight calls, then runs the plugin's destroy().
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  const std::string& name() const { return host_.name; }
  const Library& library() const { return *library_; }
  const std::vector<Tool>& tools() const { return host_.tools; }
  const config::PluginConfig& config() const { return config_; }

  // Runs `tool`'s handler on this thread. Returns the CallToolResult JSON object the
  // plugin produced (or an isError result built from its failure), secrets redacted.
  nlohmann::json call(const Tool& tool, const std::string& arguments_json, mcph_call& call) const;

  // From now on every call_cancelled() of this instance is true.
  void begin_shutdown() { host_.shutting_down = true; }
  bool shutting_down() const { return host_.shutting_down.load(std::memory_order_relaxed); }
  int in_flight() const { return in_flight_.load(); }

 private:
  Instance() = default;
  config::PluginConfig config_;
  std::shared_ptr<Library> library_;
  mcph_host_instance host_;
  void* plugin_instance_ = nullptr;
  bool created_ = false;
  mutable std::atomic<int> in_flight_{0};
  mutable std::mutex drain_mutex_;
  mutable std::condition_variable drained_;
};

// An MCP CallToolResult carrying one text block and isError: true.
nlohmann::json error_result(const std::string& text);
// The name MCP clients see for a status code, e.g. "UNAVAILABLE".
const char* status_name(mcph_status status);

}  // namespace mcph::plugins
