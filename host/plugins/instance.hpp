// One plugin instance: a library created with one YAML entry's settings and credentials,
// the tools, resources and prompts it registered, and the host services it may use.
//
// Instance is the seam the engine talks to. Two runners fill it: in_process.hpp calls the
// library inside the host; isolation/process_instance.hpp runs the same library in a
// supervised child process. Handlers are named by HandlerRef (kind + index), never by
// function pointer, so a request means the same thing on both sides of a process boundary.
// Also defines mcph_call, the host's side of one request as plugins see it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "mcp_plugin/abi.h"
#include "plugins/library.hpp"
#include "plugins/secrets.hpp"
#include "result.hpp"

namespace mcph::store {
class StateStore;
}
namespace mcph::services {
class HttpService;
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

// Whether a tool's calls may run as MCP tasks (mcph_tool_def.task_support).
enum class TaskSupport : uint8_t { kDefault, kForbidden, kOptional, kRequired };

struct Tool {
  std::string name;  // as the plugin registered it (before tool_prefix)
  std::string title;
  std::string description;
  nlohmann::json input_schema;   // always an object
  nlohmann::json output_schema;  // null when none
  nlohmann::json annotations;    // null when none
  TaskSupport task_support = TaskSupport::kDefault;  // the plugin's own default
  mcph_tool_handler handler = nullptr;  // in-process only (null behind a process boundary)
  void* user = nullptr;
};

// A resource (fixed uri) or resource template (uri_template), as registered.
struct Resource {
  std::string uri;
  std::string uri_template;
  std::string name;
  std::string title;
  std::string description;
  std::string mime_type;
  nlohmann::json annotations;  // null when none
  mcph_tool_handler read = nullptr;      // in-process only
  mcph_tool_handler complete = nullptr;  // in-process only; may be null
  void* user = nullptr;
  bool completes = false;                // it has a complete handler
  // uri_template split at its {variables}: literals.size() == variables.size() + 1.
  std::vector<std::string> literals;
  std::vector<std::string> variables;

  // For templates: true if `uri` matches, with the variables' values in `values`.
  bool match(std::string_view uri, nlohmann::json& values) const;
};

struct Prompt {
  std::string name;  // as the plugin registered it (before tool_prefix)
  std::string title;
  std::string description;
  nlohmann::json arguments;  // array of {name, description?, required?}; empty array when none
  mcph_tool_handler get = nullptr;       // in-process only
  mcph_tool_handler complete = nullptr;  // in-process only; may be null
  void* user = nullptr;
  bool completes = false;                // it has a complete handler
};

// Which handler of an instance a request runs.
struct HandlerRef {
  enum class Kind : uint8_t { kTool, kRead, kResourceComplete, kPrompt, kPromptComplete, kCredentialCheck };
  Kind kind = Kind::kTool;
  uint32_t index = 0;  // into tools(), resources() or prompts(); 0 for the credential check
};

// A credential each user brings (host->register_user_credential).
struct UserCredential {
  std::string key;
  std::string label;
  std::string help;
  bool secret = true;
};

// The user behind a request, when the transport knows one (HTTP with OAuth): an opaque,
// stable principal id and their credentials, instance name -> key -> value.
struct Caller {
  std::string principal;
  std::map<std::string, std::map<std::string, std::string>> credentials;
  std::string grant;  // the OAuth grant it came from
};

// Hears that a resource changed (host->resource_updated). Thread-safe.
class ResourceListener {
 public:
  virtual ~ResourceListener() = default;
  virtual void resource_updated(const std::string& uri) = 0;
};

// The users the transport knows, for work plugins do on their behalf outside a call
// (host->user_credential). The OAuth server answers while it runs; before and after, and
// without OAuth, nobody is known. Thread-safe.
class UserDirectory {
 public:
  using Lookup = std::function<std::optional<Caller>(const std::string& principal)>;
  void set(Lookup lookup) {
    std::unique_lock lock(mutex_);
    lookup_ = std::move(lookup);
  }
  std::optional<Caller> find(const std::string& principal) const {
    std::shared_lock lock(mutex_);
    return lookup_ ? lookup_(principal) : std::nullopt;
  }

 private:
  mutable std::shared_mutex mutex_;
  Lookup lookup_;  // guarded by mutex_
};

// Where plugins report on the tasks they took over (host->task_update, task_get); the task
// service (host/tasks/) implements it. Thread-safe.
class TaskReports {
 public:
  virtual ~TaskReports() = default;
  // host->task_update for the task `instance` took over under `handle`.
  virtual mcph_status update(const std::string& instance, const std::string& handle, const nlohmann::json& update) = 0;
  // host->task_get: the task as the plugin sees it, or MCPH_ERR_NOT_FOUND.
  virtual mcph_status get(const std::string& instance, const std::string& handle, nlohmann::json& out) = 0;
};

struct Services {
  store::StateStore* state = nullptr;  // may be null (no state_dir): state_* then fail
  services::HttpService* http = nullptr;
  const UserDirectory* users = nullptr;   // may be null: nobody is known
  TaskReports* tasks = nullptr;           // may be null: no tasks (task_* then fail)
  // 0 for an instance made at start; a reload's replacement gets the reload's number, so
  // its leases are its own while the instance it replaces drains (see lease_owner()).
  int generation = 0;
};

class Instance;

}  // namespace mcph::plugins

// The host's side of one request to a plugin (opaque to plugins). Filled by the caller of
// Instance::run; the outcome fields are written by the plugin through the host API.
struct mcph_call {
  std::atomic<bool> cancelled{false};
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  mcph::plugins::CallEvents* events = nullptr;  // may be null
  std::string principal;                        // empty for stdio and static tokens
  const mcph::plugins::Caller* caller = nullptr;  // the user, when known (OAuth); outlives the call
  std::string traceparent;  // the request's trace context (W3C), or "": its outbound HTTP joins the trace
  // The client's capabilities (an object; null for none), shared with its session.
  std::shared_ptr<const nlohmann::json> client_capabilities;
  // This round's input: answers to earlier input requests (an object, key -> result; null
  // for none) and the state the handler kept in the previous round.
  nlohmann::json input_responses;
  std::optional<std::string> state;
  // The input's parsed form, when the caller has it (see ParsedInput); outlives the call.
  const nlohmann::json* input_value = nullptr;

  // Set by the runner: the instance whose handler runs (for its secrets and shutdown).
  const mcph_host_instance* host = nullptr;
  // Outcome, written on the handler thread.
  bool has_outcome = false;
  bool is_error = false;
  mcph_status error_status = MCPH_OK;
  // The result object (when !is_error), or its text as the plugin wrote it
  // (json_text::written): read it through json_text::built().
  nlohmann::json result;
  std::string error_text;   // the failure's text (when is_error)
  nlohmann::json input_requests;  // key -> {method, params}; null for none
  std::optional<std::string> next_state;
  std::string missing_capability;  // set when an input request needs an undeclared capability
  // MCP tasks: whether the handler may hand the call over as a task (the client supports
  // tasks and the tool does not forbid them), and the handle it did so under
  // (host->call_continue_as_task; the handler then leaves no outcome).
  bool may_hand_over = false;
  std::string task_handle;

  // Clears the outcome for another round.
  void reset_outcome();

  bool is_cancelled() const;
};

// The host's side of a plugin instance, as plugins see it (mcph_host_instance*).
struct mcph_host_instance {
  std::string name;
  std::map<std::string, std::string> credentials;
  mcph::plugins::Services services;
  bool registering = false;  // true only inside create()
  std::vector<mcph::plugins::Tool> tools;
  std::vector<mcph::plugins::Resource> resources;
  std::vector<mcph::plugins::Prompt> prompts;
  std::vector<mcph::plugins::UserCredential> user_credentials;
  mcph_tool_handler credential_check = nullptr;  // host->register_credential_check (in-process)
  void* credential_check_user = nullptr;
  bool has_credential_check = false;
  // Set by the protocol engine: tells subscribed clients that a resource changed. Guarded:
  // a plugin thread may be inside it while the engine goes away.
  mutable std::shared_mutex listener_mutex;
  mutable mcph::plugins::ResourceListener* listener = nullptr;
  std::string create_error;
  std::set<std::string> public_credentials;  // YAML credential keys declared not secret (1.3)
  // The instance's secret credential values (all of them while create() runs, before the
  // plugin could declare any public), and users' secret ones seen since.
  mcph::plugins::Secrets secrets;
  std::atomic<bool> shutting_down{false};
  // A reload removed or replaced it: it finishes its calls but may take no lease.
  std::atomic<bool> retired{false};

  // The owner of its leases: "<replica>/<name>", with "@<generation>" for a reload's
  // replacement (so it does not share the lease of the instance it replaces).
  std::string lease_owner() const;
  // Replaces every secret in `text` with "[REDACTED]"; true if it found one.
  bool redact(std::string& text) const { return secrets.redact(text); }
  // The values of `caller`'s credentials for this instance that are secret (declared with
  // secret = true); they become secrets of the instance from now on.
  std::vector<std::string> caller_secrets(const mcph::plugins::Caller& caller) const;
  // What a handler running for `caller` (may be null) could have seen: the instance's
  // secrets and the caller's, longest first.
  std::vector<std::string> secrets_for(const mcph::plugins::Caller* caller) const;
  // Makes the YAML credentials not declared public (public_credentials) the fixed secrets.
  void fix_credential_secrets();
};

namespace mcph::plugins {

// The table every plugin gets (host_api.cpp).
const mcph_host_api& host_api();

// While a handler runs on this thread: the parsed form of the input text it was given.
// json_get and json_string asked about those very bytes (same address, same length) read
// it instead of parsing the text again, which was a tenth of a quick call's time.
class ParsedInput {
 public:
  ParsedInput(const std::string& text, const nlohmann::json* value);
  ~ParsedInput();
  ParsedInput(const ParsedInput&) = delete;
  ParsedInput& operator=(const ParsedInput&) = delete;
  // The parsed value when `text` is the current handler's input, else null.
  static const nlohmann::json* of(const char* text, size_t size);

 private:
  const char* text_;
  size_t size_;
  const nlohmann::json* value_;
  const ParsedInput* outer_;
};

// This process among the replicas sharing a store: random, drawn once. The owner of an
// instance's leases is "<replica>/<instance>". An isolated instance's child process takes
// its host's (set_replica_id), so its leases are the host's.
std::string replica_id();
void set_replica_id(const std::string& id);

// A thread that finishes several started calls in a row (an isolated instance's reader,
// with the answers of one read) holds a DoneBatch meanwhile: output that can wait (a
// transport's answers on stdout, the frames of the calls it starts meanwhile) is held until
// the batch ends, so many answers cost one write. Only for a thread that does nothing slow
// while it holds one (the engine calls flush() before it runs or waits for a handler). The
// stdio reader holds one over the lines of one read, so the calls it starts on an isolated
// instance go out in one frame write. Nested ones are one.
class DoneBatch {
 public:
  DoneBatch();
  ~DoneBatch();  // runs the flushes asked for, in order
  DoneBatch(const DoneBatch&) = delete;
  DoneBatch& operator=(const DoneBatch&) = delete;
  // With a batch open on this thread: flush(owner.get()) runs when it ends (once per
  // owner, which is kept alive until then), and true. Without: false; send now.
  static bool defer(const std::shared_ptr<void>& owner, void (*flush)(void*));
  // Whether a batch is open on this thread (to ask before making an owner to defer with).
  static bool open();
  // Runs the flushes asked for so far on this thread's batch, which stays open.
  static void flush();

 private:
  bool outermost_;
  std::vector<std::pair<std::shared_ptr<void>, void (*)(void*)>> flushes_;
};

// Where an instance runs and how it fares; /healthz and `mcp-host tools` show it.
struct InstanceHealth {
  std::string mode = "none";  // isolation: none | process
  std::string state = "running";  // running | restarting | failed | stopping
  int pid = 0;                // the child process (process mode), 0 otherwise
  int restarts = 0;
  std::string last_failure;   // empty when none
};

class Instance {
 public:
  // Destroying an instance waits for its calls in flight (call begin_shutdown() first to
  // end long ones), then ends the plugin instance.
  virtual ~Instance() = default;
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  const std::string& name() const { return host_.name; }
  const config::PluginConfig& config() const { return config_; }
  // The library as loaded (path, and the name and version it reports).
  const std::string& library_path() const { return library_path_; }
  const std::string& library_name() const { return library_name_; }
  const std::string& library_version() const { return library_version_; }
  // The library file as it was when the instance was made (a reload compares it).
  const FileId& library_id() const { return library_id_; }
  const std::vector<Tool>& tools() const { return host_.tools; }
  const std::vector<Resource>& resources() const { return host_.resources; }
  const std::vector<Prompt>& prompts() const { return host_.prompts; }
  const std::vector<UserCredential>& user_credentials() const { return host_.user_credentials; }
  bool has_credential_check() const { return host_.has_credential_check; }
  const mcph_host_instance& host_instance() const { return host_; }

  // Runs a handler with `input` (JSON text) on this thread and leaves the outcome in
  // `call`, secrets redacted; a handler that neither answered nor asked for input leaves an
  // error (is_error) saying so, naming `what` (e.g. "prompt 'greet'"). Returns when the
  // handler has returned, or (process mode) when its process died or was ended.
  virtual void run(const std::string& what, HandlerRef handler, const std::string& input, mcph_call& call) const = 0;
  // Like run(), but returns once the handler has started, when this instance can: `done`
  // runs once, on another thread, when `call` has its outcome (as run() leaves it). False,
  // with nothing started, when it cannot; the caller then uses run(). An instance in this
  // process cannot (its handler needs this thread); one in a child process can when its
  // process is up, so that a call waiting for another process holds no thread.
  virtual bool start(const std::string& /*what*/, HandlerRef /*handler*/, const std::string& /*input*/, mcph_call& /*call*/,
                     std::function<void()> /*done*/) const {
    return false;
  }
  // A transport's reader about to wait for input may read this instance's answers
  // meanwhile, instead of a thread of the instance's own: one hand-off less per call
  // started (an isolated instance's answers then wake no thread of the host but the one
  // that waits anyway). Null when there is nothing to read for, or another thread reads.
  class LentReader {
   public:
    virtual ~LentReader() = default;  // gives the reading back
    virtual int fd() const = 0;       // to poll beside the input
    virtual void serve() = 0;         // poll found fd() readable: reads what came, finishes its calls
  };
  virtual std::unique_ptr<LentReader> lend_reader() const { return nullptr; }
  // Runs the plugin's credential check (see register_credential_check) for `call.caller`.
  void check_credentials(mcph_call& call) const {
    run("credential check", {HandlerRef::Kind::kCredentialCheck, 0}, "{}", call);
  }
  // Who hears host->resource_updated (the protocol engine); null for nobody.
  void set_listener(ResourceListener* listener) const {
    std::unique_lock lock(host_.listener_mutex);
    host_.listener = listener;
  }

  // From now on every call_cancelled() of this instance is true.
  virtual void begin_shutdown() { host_.shutting_down = true; }
  // A reload removed or replaced it: it takes no new calls (the engine serves another
  // registry) and no lease; its calls in flight finish.
  void retire() { host_.retired = true; }
  bool retired() const { return host_.retired.load(std::memory_order_relaxed); }
  bool shutting_down() const { return host_.shutting_down.load(std::memory_order_relaxed); }
  virtual int in_flight() const = 0;
  virtual InstanceHealth health() const { return {}; }
  // False when its handlers run in another process (a call then mostly waits for it).
  virtual bool in_process() const { return true; }

 protected:
  Instance() = default;
  // What every runner does once a handler returned `status`: a missing outcome becomes an
  // error naming `what`; secrets (the instance's and the caller's) are redacted.
  void finish(const std::string& what, mcph_status status, mcph_call& call) const;
  // Tells the listener (if any) that `uri` changed.
  void notify_resource_updated(const std::string& uri) const;

  config::PluginConfig config_;
  std::string library_path_, library_name_, library_version_;
  FileId library_id_;
  mcph_host_instance host_;
};

// MCP tool (and prompt) names: 1-128 characters of [A-Za-z0-9_.-] (spec 2025-11-25).
bool valid_tool_name(std::string_view name);
// An MCP CallToolResult carrying one text block and isError: true.
nlohmann::json error_result(const std::string& text);
// The name MCP clients see for a status code, e.g. "UNAVAILABLE".
const char* status_name(mcph_status status);

}  // namespace mcph::plugins
