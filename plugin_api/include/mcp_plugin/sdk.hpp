// mcp_plugin/sdk.hpp — an optional, header-only C++17 layer over abi.h.
//
//   class Hello : public mcph::sdk::Plugin {
//    public:
//     Hello(mcph::sdk::Host& host, const nlohmann::json& settings) : Plugin(host) {
//       tool(mcph::sdk::ToolSpec("hello").description("Say hello")
//                .input({{"type", "object"}, {"properties", {{"who", {{"type", "string"}}}}}}),
//            [](mcph::sdk::Call& call, const nlohmann::json& args) {
//              return mcph::sdk::text("Hello, " + args.value("who", "world") + "!");
//            });
//     }
//   };
//   MCPH_SDK_PLUGIN(Hello, "hello", "1.0.0", "Says hello")
//
// What it does for you: tools, resources and prompts as lambdas over nlohmann::json; typed
// access to the host services; input from the client (elicitation, sampling, roots) as
// one call; every exception becomes a tool error (or a create error) so none crosses the
// C boundary; one macro exports the entry point.
//
// Tool handler return values: a JSON object with a "content" array is passed through as
// the MCP CallToolResult; anything else becomes structuredContent plus a text copy of it.
// Throw mcph::sdk::ToolError(message, status) for a failure the model should read (for
// resources and prompts it becomes a JSON-RPC error; MCPH_ERR_NOT_FOUND = "not found").
#ifndef MCP_PLUGIN_SDK_HPP
#define MCP_PLUGIN_SDK_HPP

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mcp_plugin/abi.h"

namespace mcph::sdk {

using json = nlohmann::json;

inline mcph_str str(std::string_view s) { return mcph_str{s.data(), s.size()}; }
inline std::string_view view(mcph_str s) { return s.data ? std::string_view(s.data, s.len) : std::string_view(); }

// A tool failure with a status; its message becomes the isError result's text.
class ToolError : public std::runtime_error {
 public:
  explicit ToolError(const std::string& message, mcph_status status = MCPH_ERR_INVALID_ARGUMENT)
      : std::runtime_error(message), status_(status) {}
  mcph_status status() const { return status_; }

 private:
  mcph_status status_;
};

// A CallToolResult with one text block.
inline json text(const std::string& t, bool is_error = false) {
  json r{{"content", json::array({json{{"type", "text"}, {"text", t}}})}};
  if (is_error) r["isError"] = true;
  return r;
}

// A CallToolResult with structuredContent and a short readable text.
inline json structured(json value, const std::string& summary) {
  json r = text(summary);
  r["structuredContent"] = std::move(value);
  return r;
}

// Input requests for Call::input (MCP elicitation/create, sampling/createMessage, roots/list).
inline json elicitation(const std::string& message, json requested_schema) {
  return json{{"method", "elicitation/create"}, {"params", {{"message", message}, {"requestedSchema", std::move(requested_schema)}}}};
}
inline json sampling(const std::string& prompt, int max_tokens) {
  return json{{"method", "sampling/createMessage"},
              {"params", {{"messages", json::array({json{{"role", "user"}, {"content", {{"type", "text"}, {"text", prompt}}}}})},
                          {"maxTokens", max_tokens}}}};
}
inline json roots() { return json{{"method", "roots/list"}, {"params", json::object()}}; }

// A ReadResourceResult with one text content (the host fills in the uri).
inline json resource_text(const std::string& text, const std::string& mime_type = {}) {
  json c{{"text", text}};
  if (!mime_type.empty()) c["mimeType"] = mime_type;
  return json{{"contents", json::array({c})}};
}

// A GetPromptResult with one user message.
inline json prompt_text(const std::string& text, const std::string& description = {}) {
  json r{{"messages", json::array({json{{"role", "user"}, {"content", {{"type", "text"}, {"text", text}}}}})}};
  if (!description.empty()) r["description"] = description;
  return r;
}

// Thrown by Call::await_input(): the handler ends here and runs again with the answers.
struct InputRequired {};
// Thrown by Call::hand_over(): the call continues as a task the plugin finishes later.
struct HandedOver {};

namespace detail {
inline void to_string_sink(void* user, mcph_str data) { static_cast<std::string*>(user)->assign(view(data)); }
}  // namespace detail

struct HttpResponse {
  mcph_status status = MCPH_OK;  // MCPH_OK when a response arrived (any HTTP status)
  int code = 0;                  // HTTP status code, 0 when none
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string error;  // transport error text

  // Case-insensitive header lookup.
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k.size() == name.size() &&
          std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
        return v;
      }
    }
    return std::nullopt;
  }
};

struct HttpRequest {
  HttpRequest() = default;
  HttpRequest(std::string m, std::string u) : method(std::move(m)), url(std::move(u)) {}

  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  uint32_t timeout_ms = 0;          // 0: host default
  uint32_t connect_timeout_ms = 0;  // 0: host default
  // (host ABI 1.4) For a request made outside a call on behalf of one (a poller): that
  // call's Call::trace_context(). Its span then links to the call's. Ignored with a call.
  std::string trace_link;
  // Optional streaming: return false to stop reading.
  std::function<bool(int code, const std::vector<std::pair<std::string, std::string>>& headers)> on_head;
  std::function<bool(std::string_view chunk)> on_body;
};

class Call;

// The host services for one plugin instance. [Thread-safe unless noted.]
class Host {
 public:
  Host(const mcph_host_api* api, mcph_host_instance* hi) : api_(api), hi_(hi) {}

  const mcph_host_api& api() const { return *api_; }
  mcph_host_instance* handle() const { return hi_; }

  void log(mcph_log_level level, std::string_view message) const { api_->log(hi_, level, str(message)); }
  void debug(std::string_view m) const { log(MCPH_LOG_DEBUG, m); }
  void info(std::string_view m) const { log(MCPH_LOG_INFO, m); }
  void warn(std::string_view m) const { log(MCPH_LOG_WARNING, m); }
  void error(std::string_view m) const { log(MCPH_LOG_ERROR, m); }

  // The instance's own credential (YAML); use Call::credential inside a handler.
  std::optional<std::string> credential(std::string_view key) const { return credential_for(nullptr, key); }

  std::optional<std::string> state_get(std::string_view key) const {
    std::string out;
    return api_->state_get(hi_, str(key), detail::to_string_sink, &out) == MCPH_OK ? std::optional(out) : std::nullopt;
  }
  bool state_put(std::string_view key, std::string_view value) const {
    return api_->state_put(hi_, str(key), str(value)) == MCPH_OK;
  }
  bool state_delete(std::string_view key) const { return api_->state_delete(hi_, str(key)) == MCPH_OK; }
  // Every (key, value) whose key starts with prefix, in key order.
  std::vector<std::pair<std::string, std::string>> state_list(std::string_view prefix) const {
    std::vector<std::pair<std::string, std::string>> out;
    api_->state_list(hi_, str(prefix), [](void* u, mcph_str k, mcph_str v) {
      static_cast<decltype(out)*>(u)->emplace_back(view(k), view(v));
      return true;
    }, &out);
    return out;
  }

  // [host ABI 1.3] Compare-and-set, atomic across replicas sharing the store: when the
  // key's value is `expected` (nullopt: absent), set it to `value` (nullopt: delete it).
  // true when written; false when the value was another (read again) or the store failed.
  // A host before 1.3 runs one replica: there it reads, compares and writes (not atomic
  // against this instance's own threads).
  bool state_put_if(std::string_view key, std::optional<std::string_view> expected,
                    std::optional<std::string_view> value) const {
    if (!MCPH_HOST_HAS(api_, state_put_if)) {
      const auto current = state_get(key);
      if (current.has_value() != expected.has_value() || (current && *current != *expected)) return false;
      return value ? state_put(key, *value) : state_delete(key);
    }
    const mcph_str e = expected ? str(*expected) : mcph_str{};
    const mcph_str v = value ? str(*value) : mcph_str{};
    return api_->state_put_if(hi_, str(key), expected ? &e : nullptr, value ? &v : nullptr) == MCPH_OK;
  }
  // [host ABI 1.3] Hold the lease `name` for `ttl` (true), or not while another replica
  // does (false); renew by calling again before `ttl` passes. Exactly one replica holds a
  // lease at a time: do a piece of background work only while holding its lease. A host
  // before 1.3 runs one replica: always true there.
  bool lease_acquire(std::string_view name, std::chrono::milliseconds ttl) const {
    if (!MCPH_HOST_HAS(api_, lease_acquire)) return true;
    return api_->lease_acquire(hi_, str(name), static_cast<uint32_t>(std::max<int64_t>(1, ttl.count()))) == MCPH_OK;
  }
  void lease_release(std::string_view name) const {
    if (MCPH_HOST_HAS(api_, lease_release)) api_->lease_release(hi_, str(name));
  }

  // [host ABI 1.3] Reports on the task a handler handed over under `handle`
  // (Call::continue_as_task): {"status": "working", "message": ...}, {"status":
  // "input_required", "inputRequests": {...}}, {"status": "completed", "result": {...}} or
  // {"status": "failed", "message": ...}. MCPH_ERR_FAILED_PRECONDITION once the task ended
  // (the client cancelled it), MCPH_ERR_NOT_FOUND when no task has the handle.
  mcph_status task_update(std::string_view handle, const json& update) const {
    if (!MCPH_HOST_HAS(api_, task_update)) return MCPH_ERR_UNSUPPORTED;
    const std::string u = update.dump(-1, ' ', false, json::error_handler_t::replace);
    return api_->task_update(hi_, str(handle), str(u));
  }
  // [host ABI 1.3] That task as the host keeps it: {"status": ..., "inputResponses": {...}};
  // nullopt when there is none. Status "cancelled": the client cancelled it; stop the work.
  std::optional<json> task_get(std::string_view handle) const {
    std::string out;
    if (!MCPH_HOST_HAS(api_, task_get) || api_->task_get(hi_, str(handle), detail::to_string_sink, &out) != MCPH_OK) {
      return std::nullopt;
    }
    return json::parse(out, nullptr, false);
  }

  // Outbound HTTP; `call` (optional) makes the request end when that call is cancelled.
  HttpResponse http(const HttpRequest& req, const Call* call = nullptr) const;

  // [host ABI 1.2] The credential `key` of the user `principal` (Call::principal() of one
  // of their calls), for work done on their behalf outside a call, e.g. a poller. nullopt
  // once that user was revoked, for an unknown user, and when the transport knows no users.
  // Ask each time you need it; do not keep the value.
  std::optional<std::string> user_credential(std::string_view principal, std::string_view key) const {
    std::string out;
    if (api_->abi_minor < 2 || api_->struct_size <= offsetof(mcph_host_api, user_credential)) return std::nullopt;
    return api_->user_credential(hi_, str(principal), str(key), detail::to_string_sink, &out) == MCPH_OK ? std::optional(out)
                                                                                                        : std::nullopt;
  }

  std::optional<std::string> credential_for(mcph_call* call, std::string_view key) const {
    std::string out;
    return api_->credential(hi_, call, str(key), detail::to_string_sink, &out) == MCPH_OK ? std::optional(out)
                                                                                        : std::nullopt;
  }

 private:
  const mcph_host_api* api_;
  mcph_host_instance* hi_;
};

// One request in progress (a tool call, resource read, prompt or completion). Valid only
// while the handler runs.
class Call {
 public:
  Call(Host& host, mcph_call* call) : host_(host), call_(call) {}

  Host& host() const { return host_; }
  mcph_call* handle() const { return call_; }
  bool cancelled() const { return host_.api().call_cancelled(call_); }
  // Throws ToolError(CANCELLED) when the call was cancelled: a one-line check between steps.
  void check_cancelled() const {
    if (cancelled()) throw ToolError("cancelled", MCPH_ERR_CANCELLED);
  }
  void progress(double progress, double total = 0, std::string_view message = {}) const {
    host_.api().call_progress(call_, progress, total, str(message));
  }
  // A notifications/message to the client (if its level lets it through).
  void log(mcph_log_level level, const json& data, std::string_view logger = {}) const {
    const std::string d = data.dump();
    host_.api().call_log(call_, level, str(logger), str(d));
  }
  // The caller's credential (per user when the transport knows users).
  std::optional<std::string> credential(std::string_view key) const { return host_.credential_for(call_, key); }
  std::string principal() const {
    std::string out;
    host_.api().call_principal(call_, detail::to_string_sink, &out);
    return out;
  }
  HttpResponse http(const HttpRequest& req) const { return host_.http(req, this); }

  // ---- Input from the client (host ABI 1.1; see "Input from the client" in abi.h) ----

  // The client's capabilities, e.g. {"elicitation":{},"sampling":{}}.
  json client_capabilities() const {
    if (!host_1_1()) return json::object();
    std::string out;
    host_.api().call_client_capabilities(call_, detail::to_string_sink, &out);
    return json::parse(out, nullptr, false);
  }
  // The client's answer to input request `key` if this round has it; otherwise asks for
  // it (`request` from elicitation(), sampling() or roots()) and returns nullopt. Ask for
  // everything you need, then call await_input() if anything was missing:
  //   auto name = call.input("name", sdk::elicitation("Your name?", schema));
  //   if (!name) call.await_input();
  std::optional<json> input(std::string_view key, const json& request) const {
    if (!host_1_1()) throw ToolError("this host is too old to ask the client for input (needs ABI 1.1)", MCPH_ERR_UNSUPPORTED);
    std::string out;
    if (host_.api().call_input_response(call_, str(key), detail::to_string_sink, &out) == MCPH_OK) {
      return json::parse(out, nullptr, false);
    }
    const std::string r = request.dump();
    host_.api().call_request_input(call_, str(key), str(r));
    return std::nullopt;
  }
  // Ends the handler; it runs again when the client has answered every input request.
  [[noreturn]] void await_input() const { throw InputRequired{}; }

  // ---- Tasks (host ABI 1.3; see "Tasks" in abi.h) ----

  // True when this call may continue as a task the plugin finishes later (the client
  // supports tasks). Then start the work and call hand_over(handle); otherwise answer now.
  bool can_hand_over() const {
    return MCPH_HOST_HAS(&host_.api(), call_continue_as_task) &&
           host_.api().call_continue_as_task(call_, mcph_str{}) != MCPH_ERR_UNSUPPORTED;
  }
  // Ends the handler: the call continues as a task; report on it with
  // Host::task_update(handle, ...) from any thread, even after a restart.
  [[noreturn]] void hand_over(std::string_view handle) const {
    const mcph_status st = MCPH_HOST_HAS(&host_.api(), call_continue_as_task)
                               ? host_.api().call_continue_as_task(call_, str(handle))
                               : MCPH_ERR_UNSUPPORTED;
    if (st != MCPH_OK) throw ToolError("this call cannot continue as a task", st);
    throw HandedOver{};
  }
  // ---- Tracing (host ABI 1.4) ----

  // The call's trace context (a W3C traceparent), or "" when the host traces nothing or
  // is older. Keep it with work that outlives the handler and pass it as
  // HttpRequest::trace_link on the requests that work makes later.
  std::string trace_context() const {
    std::string out;
    if (MCPH_HOST_HAS(&host_.api(), call_trace_context)) host_.api().call_trace_context(call_, detail::to_string_sink, &out);
    return out;
  }

  // State kept from the previous round (set_state), if any; protected by the host.
  std::optional<std::string> state() const {
    std::string out;
    if (!host_1_1() || host_.api().call_state(call_, detail::to_string_sink, &out) != MCPH_OK) return std::nullopt;
    return out;
  }
  void set_state(std::string_view state) const {
    if (host_1_1()) host_.api().call_set_state(call_, str(state));
  }

 private:
  bool host_1_1() const { return host_.api().abi_minor >= 1 && host_.api().struct_size > offsetof(mcph_host_api, resource_updated); }
  Host& host_;
  mcph_call* call_;
};

inline HttpResponse Host::http(const HttpRequest& req, const Call* call) const {
  std::vector<mcph_http_header> headers;
  headers.reserve(req.headers.size());
  for (const auto& [k, v] : req.headers) headers.push_back({str(k), str(v)});
  struct Ctx {
    const HttpRequest* req;
    HttpResponse* res;
  };
  HttpResponse res;
  Ctx ctx{&req, &res};
  mcph_http_request r{};
  r.struct_size = sizeof r;
  r.method = str(req.method);
  r.url = str(req.url);
  r.headers = headers.data();
  r.header_count = headers.size();
  r.body = str(req.body);
  r.timeout_ms = req.timeout_ms;
  r.connect_timeout_ms = req.connect_timeout_ms;
  r.call = call ? call->handle() : nullptr;
  r.trace_link = str(req.trace_link);
  r.user = &ctx;
  if (req.on_head) {
    r.on_head = [](void* u, const mcph_http_response* head) noexcept {
      auto* c = static_cast<Ctx*>(u);
      std::vector<std::pair<std::string, std::string>> h;
      for (size_t i = 0; i < head->header_count; ++i) h.emplace_back(view(head->headers[i].name), view(head->headers[i].value));
      try {
        return c->req->on_head(head->status, h);
      } catch (...) {
        return false;
      }
    };
  }
  if (req.on_body) {
    r.on_body = [](void* u, mcph_str chunk) noexcept {
      try {
        return static_cast<Ctx*>(u)->req->on_body(view(chunk));
      } catch (...) {
        return false;
      }
    };
  }
  res.status = api_->http_request(hi_, &r, [](void* u, const mcph_http_response* out) {
    auto* c = static_cast<Ctx*>(u);
    c->res->code = out->status;
    for (size_t i = 0; i < out->header_count; ++i) c->res->headers.emplace_back(view(out->headers[i].name), view(out->headers[i].value));
    c->res->body.assign(view(out->body));
    c->res->error.assign(view(out->error));
  }, &ctx);
  return res;
}

// A tool's description, built fluently:
//   ToolSpec("add").title("Add").description("a + b").input(schema).output(schema)
class ToolSpec {
 public:
  explicit ToolSpec(std::string name) : name_(std::move(name)) {}
  ToolSpec& title(std::string t) { title_ = std::move(t); return *this; }
  ToolSpec& description(std::string d) { description_ = std::move(d); return *this; }
  ToolSpec& input(json schema) { input_ = std::move(schema); return *this; }          // default: no arguments
  ToolSpec& output(json schema) { output_ = std::move(schema); return *this; }        // structuredContent schema
  ToolSpec& annotations(json a) { annotations_ = std::move(a); return *this; }        // MCP ToolAnnotations
  // Whether clients that support MCP tasks get a task for a call (MCPH_TASK_SUPPORT_*;
  // host ABI 1.3, the YAML may override it).
  ToolSpec& task_support(uint32_t t) { task_support_ = t; return *this; }

 private:
  friend class Plugin;
  uint32_t task_support_ = MCPH_TASK_SUPPORT_DEFAULT;
  std::string name_, title_, description_;
  json input_ = json{{"type", "object"}, {"additionalProperties", false}};
  json output_, annotations_;  // null: none
};

// A resource, or with a template ("docs://{team}/{page}") a family of them:
//   ResourceSpec::fixed("notes://today", "Today's notes").mime_type("text/markdown")
//   ResourceSpec::templated("docs://{team}/{page}", "Team docs")
class ResourceSpec {
 public:
  static ResourceSpec fixed(std::string uri, std::string name) { return ResourceSpec(std::move(uri), {}, std::move(name)); }
  static ResourceSpec templated(std::string uri_template, std::string name) {
    return ResourceSpec({}, std::move(uri_template), std::move(name));
  }
  ResourceSpec& title(std::string t) { title_ = std::move(t); return *this; }
  ResourceSpec& description(std::string d) { description_ = std::move(d); return *this; }
  ResourceSpec& mime_type(std::string m) { mime_type_ = std::move(m); return *this; }
  ResourceSpec& annotations(json a) { annotations_ = std::move(a); return *this; }

 private:
  friend class Plugin;
  ResourceSpec(std::string uri, std::string tmpl, std::string name)
      : uri_(std::move(uri)), template_(std::move(tmpl)), name_(std::move(name)) {}
  std::string uri_, template_, name_, title_, description_, mime_type_;
  json annotations_;
};

// A prompt: PromptSpec("review").description("Review code").argument("code", "The code", true)
class PromptSpec {
 public:
  explicit PromptSpec(std::string name) : name_(std::move(name)) {}
  PromptSpec& title(std::string t) { title_ = std::move(t); return *this; }
  PromptSpec& description(std::string d) { description_ = std::move(d); return *this; }
  PromptSpec& argument(const std::string& name, const std::string& description = {}, bool required = false) {
    json a{{"name", name}};
    if (!description.empty()) a["description"] = description;
    if (required) a["required"] = true;
    arguments_.push_back(std::move(a));
    return *this;
  }

 private:
  friend class Plugin;
  std::string name_, title_, description_;
  json arguments_ = json::array();
};

using Handler = std::function<json(Call& call, const json& args)>;
// Reads a resource: the URI asked for and, for templates, its variables ({"team": "a"}).
// Return a ReadResourceResult ({"contents": [...]}, e.g. resource_text(...)).
using ReadHandler = std::function<json(Call& call, const std::string& uri, const json& variables)>;
// Gets a prompt from its (string) arguments. Return a GetPromptResult ({"messages": [...]},
// e.g. prompt_text(...)).
using PromptHandler = std::function<json(Call& call, const json& args)>;
// Suggests values for an argument or template variable; return up to 100 strings.
using CompleteHandler = std::function<std::vector<std::string>(Call& call, const std::string& argument,
                                                               const std::string& value, const json& context)>;

// Base class of a plugin instance. Register tools, resources and prompts from the constructor.
class Plugin {
 public:
  explicit Plugin(Host& host) : host_(host) {}
  virtual ~Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  Host& host() const { return host_; }

 protected:
  // [constructor only] Registers a tool. Throws std::runtime_error if the host refuses it.
  void tool(const ToolSpec& spec, Handler handler) {
    mcph_tool_def def{};
    def.struct_size = sizeof def;
    def.handler = &Plugin::dispatch;
    def.user = entry([handler = std::move(handler)](Call& call, const json& args) {
      json result = handler(call, args);
      if (!(result.is_object() && result.contains("content") && result["content"].is_array())) {
        result = structured(result, result.dump());
      }
      return result;
    });
    const std::string in = spec.input_.dump();
    const std::string out = spec.output_.is_null() ? std::string() : spec.output_.dump();
    const std::string ann = spec.annotations_.is_null() ? std::string() : spec.annotations_.dump();
    def.name = str(spec.name_);
    def.title = str(spec.title_);
    def.description = str(spec.description_);
    def.input_schema = str(in);
    def.output_schema = str(out);
    def.annotations = str(ann);
    def.task_support = spec.task_support_;
    check(host_.api().register_tool(host_.handle(), &def), "tool '" + spec.name_ + "'");
  }

  // [constructor only; host ABI 1.1] Registers a resource or resource template, and for a
  // template optionally the completion of its variables.
  void resource(const ResourceSpec& spec, ReadHandler read, CompleteHandler complete = nullptr) {
    need_1_1("resources");
    mcph_resource_def def{};
    def.struct_size = sizeof def;
    def.read = &Plugin::dispatch;
    def.complete = complete ? &Plugin::dispatch_complete : nullptr;
    def.user = entry([read = std::move(read)](Call& call, const json& in) {
      return read(call, in.value("uri", ""), in.value("variables", json::object()));
    }, std::move(complete));
    const std::string ann = spec.annotations_.is_null() ? std::string() : spec.annotations_.dump();
    def.uri = str(spec.uri_);
    def.uri_template = str(spec.template_);
    def.name = str(spec.name_);
    def.title = str(spec.title_);
    def.description = str(spec.description_);
    def.mime_type = str(spec.mime_type_);
    def.annotations = str(ann);
    check(host_.api().register_resource(host_.handle(), &def), "resource '" + spec.uri_ + spec.template_ + "'");
  }

  // [constructor only; host ABI 1.1] Registers a prompt.
  void prompt(const PromptSpec& spec, PromptHandler get, CompleteHandler complete = nullptr) {
    need_1_1("prompts");
    mcph_prompt_def def{};
    def.struct_size = sizeof def;
    def.get = &Plugin::dispatch;
    def.complete = complete ? &Plugin::dispatch_complete : nullptr;
    def.user = entry(std::move(get), std::move(complete));
    const std::string args = spec.arguments_.dump();
    def.name = str(spec.name_);
    def.title = str(spec.title_);
    def.description = str(spec.description_);
    def.arguments = str(args);
    check(host_.api().register_prompt(host_.handle(), &def), "prompt '" + spec.name_ + "'");
  }

  // [constructor only; host ABI 1.1] Declares a credential each user brings: over HTTP with
  // OAuth the host's sign-in form asks every user for it, and call.credential(key) answers
  // with the caller's own value. Returns false (and does nothing) on an older host.
  bool user_credential(const std::string& key, const std::string& label, const std::string& help = {}, bool secret = true) {
    if (host_.api().abi_minor < 1 || host_.api().struct_size <= offsetof(mcph_host_api, register_user_credential)) return false;
    mcph_user_credential_def def{};
    def.struct_size = sizeof def;
    def.key = str(key);
    def.label = str(label);
    def.help = str(help);
    def.secret = secret;
    check(host_.api().register_user_credential(host_.handle(), &def), "user credential '" + key + "'");
    return true;
  }

  // [constructor only; host ABI 1.2] Checks what a user typed on the sign-in form before
  // anything is issued. `check` reads the values with call.credential(key) and returns
  // json::object() to accept, {"values": {...}} to accept and keep more (non-secret)
  // values, or {"choose": [{"key", "label", "help"?, "options": [{"value", "label"}]}]} to
  // let the user pick; throw ToolError to refuse, with a message for the form (status
  // MCPH_ERR_UNAVAILABLE: "try again later", not counted as a failed attempt). Returns
  // false (and does nothing) on an older host.
  bool credential_check(std::function<json(Call& call)> fn) {
    if (host_.api().abi_minor < 2 || host_.api().struct_size <= offsetof(mcph_host_api, register_credential_check)) return false;
    Entry* e = entry([fn = std::move(fn)](Call& call, const json&) { return fn(call); });
    check(host_.api().register_credential_check(host_.handle(), &Plugin::dispatch, e), "credential check");
    return true;
  }

  // [constructor only; host ABI 1.3] Says whether the YAML credential `key` is a secret.
  // Undeclared keys are secrets: the host redacts their values from logs and results.
  // Declare identifiers that are not secret (an organisation id) with secret = false, so
  // results that mention them stay intact. Returns false (and does nothing) on an older host.
  bool declare_credential(const std::string& key, bool secret) {
    if (!MCPH_HOST_HAS(&host_.api(), declare_credential)) return false;
    check(host_.api().declare_credential(host_.handle(), str(key), secret), "credential '" + key + "'");
    return true;
  }

  // [any thread; host ABI 1.1] Tells subscribed clients that the resource at `uri` changed.
  void resource_updated(std::string_view uri) const {
    if (host_.api().abi_minor >= 1) host_.api().resource_updated(host_.handle(), str(uri));
  }

 private:
  using Fn = std::function<json(Call&, const json&)>;
  struct Entry {
    Plugin* self;
    Fn fn;
    CompleteHandler complete;
  };

  Entry* entry(Fn fn, CompleteHandler complete = nullptr) {
    entries_.push_back(std::make_unique<Entry>(Entry{this, std::move(fn), std::move(complete)}));
    return entries_.back().get();
  }
  void need_1_1(const char* what) const {
    if (host_.api().abi_minor < 1) throw std::runtime_error(std::string("this host is too old for ") + what + " (needs ABI 1.1)");
  }
  static void check(mcph_status st, const std::string& what) {
    if (st != MCPH_OK) throw std::runtime_error("the host refused " + what + " (see the host log)");
  }

  // Runs `run` with every exception turned into the call's error.
  template <class F>
  static mcph_status guarded(Entry* e, mcph_call* c, mcph_str input, F run) noexcept {
    const mcph_host_api& api = e->self->host_.api();
    try {
      Call call(e->self->host_, c);
      json result = run(call, json::parse(view(input)));
      const std::string text = result.dump(-1, ' ', false, json::error_handler_t::replace);
      return api.call_result(c, str(text));
    } catch (const InputRequired&) {
      return MCPH_OK;  // the host asks the client and runs the handler again
    } catch (const HandedOver&) {
      return MCPH_OK;  // the plugin reports on the task later
    } catch (const ToolError& e) {
      api.call_error(c, e.status(), str(e.what()));
    } catch (const std::exception& e) {
      api.call_error(c, MCPH_ERR_INTERNAL, str(std::string("internal error: ") + e.what()));
    } catch (...) {
      api.call_error(c, MCPH_ERR_INTERNAL, MCPH_LIT("internal error: unknown exception"));
    }
    return MCPH_OK;
  }
  static mcph_status dispatch(void*, void* user, mcph_call* c, mcph_str input) noexcept {
    auto* e = static_cast<Entry*>(user);
    return guarded(e, c, input, [e](Call& call, const json& in) { return e->fn(call, in); });
  }
  static mcph_status dispatch_complete(void*, void* user, mcph_call* c, mcph_str input) noexcept {
    auto* e = static_cast<Entry*>(user);
    return guarded(e, c, input, [e](Call& call, const json& in) {
      const json& a = in.value("argument", json::object());
      json context = in.value("context", json::object()).value("arguments", json::object());
      return json{{"values", e->complete(call, a.value("name", ""), a.value("value", ""), context)}};
    });
  }

  Host& host_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

namespace detail {

// Owns the Host wrapper and the plugin object of one instance.
template <class P>
struct Instance {
  Host host;
  std::unique_ptr<P> plugin;
};

template <class P>
mcph_status create(const mcph_host_api* api, mcph_host_instance* hi, mcph_str settings, void** out) noexcept {
  auto inst = std::make_unique<Instance<P>>(Instance<P>{Host(api, hi), nullptr});
  try {
    json s = settings.len ? json::parse(view(settings)) : json::object();
    inst->plugin = std::make_unique<P>(inst->host, s);
  } catch (const std::exception& e) {
    api->set_create_error(hi, str(e.what()));
    return MCPH_ERR_INVALID_ARGUMENT;
  } catch (...) {
    api->set_create_error(hi, MCPH_LIT("unknown exception in create"));
    return MCPH_ERR_INTERNAL;
  }
  *out = inst.release();
  return MCPH_OK;
}

template <class P>
void destroy(void* instance) noexcept {
  try {
    delete static_cast<Instance<P>*>(instance);
  } catch (...) {
  }
}

}  // namespace detail
}  // namespace mcph::sdk

// Exports the entry point for plugin class P (constructor P(mcph::sdk::Host&, const json&)).
#define MCPH_SDK_PLUGIN(P, NAME, VERSION, DESCRIPTION)                                              \
  extern "C" MCPH_PLUGIN_EXPORT const mcph_plugin_descriptor* mcph_plugin_entry(uint16_t host_major, \
                                                                                 uint16_t) {        \
    static const mcph_plugin_descriptor d = {sizeof(mcph_plugin_descriptor),                         \
                                             MCPH_ABI_MAJOR,                                         \
                                             MCPH_ABI_MINOR,                                         \
                                             MCPH_LIT(NAME),                                         \
                                             MCPH_LIT(VERSION),                                      \
                                             MCPH_LIT(DESCRIPTION),                                  \
                                             &mcph::sdk::detail::create<P>,                          \
                                             &mcph::sdk::detail::destroy<P>};                        \
    return host_major == MCPH_ABI_MAJOR ? &d : nullptr;                                              \
  }

#endif  // MCP_PLUGIN_SDK_HPP
