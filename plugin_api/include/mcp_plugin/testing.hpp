// mcp_plugin/testing.hpp — a fake host for plugin unit tests (header-only, C++17).
//
// Loads a plugin library the way mcp-host does (one entry symbol, ABI check, create with
// settings), and gives it a host whose services are in memory: credentials you set, a
// key-value state you can inspect, scripted outbound HTTP (match method and URL, answer
// with status, headers and body, or a body in chunks for SSE; every request recorded), and
// captured progress and log messages; resources, prompts and completions; input from the
// client (you play the client: look at the input requests a call made and run it again
// with answers). No network, no running host. Usable from any test framework: failures are
// exceptions (std::runtime_error) or values you assert on.
//
//   mcph::testing::FakeHost host;
//   host.credentials["api_token"] = "t0k";
//   host.http.on("GET", "https://api.example.com/items", {200, {}, R"([1,2])"});
//   auto plugin = mcph::testing::Plugin::load("build/plugins/libmine.so", host, {{"limit", 5}});
//   auto r = plugin.call("list_items", {});
//   assert(!r.is_error() && r.result["structuredContent"]["items"].size() == 2);
//   assert(host.http.requests().at(0).header("Authorization") == "Bearer t0k");
#ifndef MCP_PLUGIN_TESTING_HPP
#define MCP_PLUGIN_TESTING_HPP

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mcp_plugin/abi.h"

namespace mcph::testing {

using json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

inline std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A scripted answer to one outbound request.
struct HttpReply {
  HttpReply(int status_code = 200, Headers response_headers = {}, std::string response_body = {})
      : status(status_code), headers(std::move(response_headers)), body(std::move(response_body)) {}
  // A request that gets no response: fails with `status` (e.g. MCPH_ERR_UNAVAILABLE).
  static HttpReply fail(mcph_status st, std::string text) {
    HttpReply r(0);
    r.failure = st;
    r.failure_text = std::move(text);
    return r;
  }

  int status = 200;
  Headers headers;
  std::string body;
  // When set, the body is delivered in these pieces (to a streaming request, one
  // on_body call each; to a plain one, joined). Models Server-Sent Events.
  std::vector<std::string> chunks;
  // When set, no response arrives: the request fails with this status (e.g.
  // MCPH_ERR_UNAVAILABLE for a refused connection) and this text.
  mcph_status failure = MCPH_OK;
  std::string failure_text;
  // Wait this long before answering (the request still ends early when its call is
  // cancelled, as with the real host).
  std::chrono::milliseconds delay{0};
};

struct RecordedRequest {
  std::string method;
  std::string url;
  Headers headers;
  std::string body;
  std::string trace_link;  // mcph_http_request.trace_link (ABI 1.4), as the plugin passed it

  std::optional<std::string> header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (lower(k) == lower(name)) return v;
    }
    return std::nullopt;
  }
};

// Scripted outbound HTTP. Routes match on method and URL (exact, or a prefix when the
// pattern ends in '*'). A route answers with its replies in order and repeats the last
// one. Unmatched requests fail with MCPH_ERR_UNAVAILABLE "no route". Thread-safe.
class FakeHttp {
 public:
  FakeHttp& on(const std::string& method, const std::string& url, HttpReply reply) {
    std::lock_guard lock(mutex_);
    for (auto& r : routes_) {
      if (r.method == method && r.url == url) {
        r.replies.push_back(std::move(reply));
        return *this;
      }
    }
    routes_.push_back(Route{method, url, {std::move(reply)}});
    return *this;
  }
  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    routes_.clear();
    requests_.clear();
  }

  // Used by the fake host: records the request and picks the reply.
  std::optional<HttpReply> answer(RecordedRequest request) {
    std::lock_guard lock(mutex_);
    requests_.push_back(request);
    for (auto& r : routes_) {
      const bool prefix = !r.url.empty() && r.url.back() == '*';
      const bool match = prefix ? request.url.compare(0, r.url.size() - 1, r.url, 0, r.url.size() - 1) == 0
                                : request.url == r.url;
      if (r.method != request.method || !match) continue;
      HttpReply reply = r.replies.front();
      if (r.replies.size() > 1) r.replies.pop_front();
      return reply;
    }
    return std::nullopt;
  }

 private:
  struct Route {
    std::string method;
    std::string url;
    std::deque<HttpReply> replies;
  };
  mutable std::mutex mutex_;
  std::vector<Route> routes_;
  std::vector<RecordedRequest> requests_;
};

struct LogLine {
  mcph_log_level level;
  std::string message;
};

// The host side. Keep it alive longer than every Plugin loaded with it.
class FakeHost {
 public:
  FakeHost() = default;
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  std::map<std::string, std::string> credentials;  // what credential() finds
  std::string principal;                            // what call_principal() reports
  json client_capabilities = json::object();        // what call_client_capabilities() reports
  FakeHttp http;

  // The durable state, for inspection and seeding. Thread-safe accessors.
  std::map<std::string, std::string> state() const {
    std::lock_guard lock(mutex_);
    return state_;
  }
  void set_state(const std::string& key, const std::string& value) {
    std::lock_guard lock(mutex_);
    state_[key] = value;
  }
  // Leases (ABI 1.3): this FakeHost is one replica. Make another replica hold `name` for
  // `ttl`, as if it ran beside this one; and see who holds what ("this" or "other").
  void hold_lease_elsewhere(const std::string& name, std::chrono::milliseconds ttl) {
    std::lock_guard lock(mutex_);
    leases_[name] = {"other", std::chrono::steady_clock::now() + ttl};
  }
  std::optional<std::string> lease_holder(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = leases_.find(name);
    if (it == leases_.end() || it->second.second <= std::chrono::steady_clock::now()) return std::nullopt;
    return it->second.first;
  }
  std::vector<LogLine> logs() const {
    std::lock_guard lock(mutex_);
    return logs_;
  }
  // Signed-in users, for Host::user_credential (principal -> key -> value). Remove one to
  // play its revocation. Thread-safe: a plugin's poller may be asking meanwhile.
  void set_user(const std::string& principal, std::map<std::string, std::string> creds) {
    std::lock_guard lock(mutex_);
    users_[principal] = std::move(creds);
  }
  void remove_user(const std::string& principal) {
    std::lock_guard lock(mutex_);
    users_.erase(principal);
  }

  // Tasks (ABI 1.3): what the plugin last reported with task_update for each handle it
  // handed a call over under ({"status": ..., ...}); play the client cancelling one, or
  // answering its input requests (what task_get then shows).
  std::map<std::string, json> tasks() const {
    std::lock_guard lock(mutex_);
    return tasks_;
  }
  void cancel_task(const std::string& handle) {
    std::lock_guard lock(mutex_);
    if (tasks_.count(handle) > 0) tasks_[handle] = json{{"status", "cancelled"}};
  }
  void answer_task(const std::string& handle, json responses) {
    std::lock_guard lock(mutex_);
    if (tasks_.count(handle) > 0) tasks_[handle]["inputResponses"] = std::move(responses);
  }

  // The URIs the plugin reported with resource_updated(), in order.
  std::vector<std::string> updated_resources() const {
    std::lock_guard lock(mutex_);
    return updated_;
  }

  const mcph_host_api* api() const { return &api_; }

 private:
  friend class Plugin;
  friend struct CallState;

  mutable std::mutex mutex_;
  std::map<std::string, std::string> state_;
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> leases_;  // name -> owner, expiry
  std::vector<LogLine> logs_;
  bool registering_ = false;
  // What the plugin being created registers; Plugin::load takes it over, so several plugins
  // (or instances) can share one FakeHost.
  struct Registered {
    std::vector<json> tools;           // as MCP lists them
    std::vector<mcph_tool_def> defs;   // their handlers and user data
    std::vector<json> resources;       // uri or uriTemplate, name, ...
    std::vector<mcph_resource_def> resource_defs;
    std::vector<json> prompts;
    std::vector<mcph_prompt_def> prompt_defs;
    std::vector<json> user_credentials;  // {key, label, help, secret}
    std::map<std::string, bool> declared_credentials;  // key -> secret (declare_credential)
    mcph_tool_handler credential_check = nullptr;
    void* credential_check_user = nullptr;
  } registered_;
  std::vector<std::string> updated_;
  std::map<std::string, json> tasks_;  // handle -> last report
  std::map<std::string, std::map<std::string, std::string>> users_;
  std::string create_error_;

  static FakeHost& self(mcph_host_instance* hi) { return *reinterpret_cast<FakeHost*>(hi); }
  static std::string s(mcph_str v) { return v.data ? std::string(v.data, v.len) : std::string(); }
  static void give(mcph_sink sink, void* user, const std::string& v) {
    if (sink) sink(user, mcph_str{v.c_str(), v.size()});
  }
  static json parse_or(mcph_str text, json fallback) {
    if (text.len == 0) return fallback;
    json j = json::parse(s(text), nullptr, false);
    return j.is_discarded() ? json() : j;
  }
  static mcph_status find(mcph_str text, mcph_str pointer, json& out) {
    json doc = json::parse(s(text), nullptr, false);
    if (doc.is_discarded()) return MCPH_ERR_INVALID_ARGUMENT;
    try {
      json::json_pointer p(s(pointer));
      if (!doc.contains(p)) return MCPH_ERR_NOT_FOUND;
      out = doc.at(p);
    } catch (const json::exception&) {
      return MCPH_ERR_INVALID_ARGUMENT;
    }
    return MCPH_OK;
  }

  static mcph_status register_tool(mcph_host_instance* hi, const mcph_tool_def* def);
  static mcph_status http_request(mcph_host_instance* hi, const mcph_http_request* request,
                                  void (*on_response)(void*, const mcph_http_response*), void* user);

  const mcph_host_api api_ = make_api();
  static mcph_host_api make_api();
};

// What one call produced.
struct CallResult {
  json result;                  // the result the plugin gave (for a failure: isError + its text)
  std::vector<json> progress;   // {"progress", "total", "message"} in order
  std::vector<json> logs;       // {"level", "logger", "data"} in order
  mcph_status error_status = MCPH_OK;  // the status of call_error, for failures
  // Input from the client that the handler asked for (key -> {"method", "params"}); when
  // not empty, run the call again with CallOptions::input_responses (and state).
  json input_requests = json::object();
  std::optional<std::string> state;  // what the handler kept with call_set_state
  std::string missing_capability;    // an input request needed a capability the client lacks
  std::string task_handle;           // the handler handed the call over as a task (CallOptions::as_task)

  bool is_error() const { return result.value("isError", false); }
  bool needs_input() const { return !input_requests.empty(); }
  // All text blocks, joined.
  std::string text() const {
    std::string t;
    for (const auto& b : result.value("content", json::array())) {
      if (b.value("type", "") == "text") t += b.value("text", "");
    }
    return t;
  }
  json structured() const { return result.value("structuredContent", json()); }
};

// The fake host's side of one call (cast to mcph_call*).
struct CallState {
  std::atomic<bool>* cancel = nullptr;
  std::mutex mutex;
  CallResult out;
  bool has_outcome = false;
  FakeHost* host = nullptr;
  std::optional<std::string> principal;
  const std::map<std::string, std::string>* credentials = nullptr;
  const std::vector<json>* declared = nullptr;  // the plugin's user credentials
  json capabilities;
  json input_responses;
  std::optional<std::string> state;
  bool as_task = false;
  std::string trace_context;
};

struct CallOptions {
  CallOptions() = default;
  CallOptions(std::atomic<bool>* c) : cancel(c) {}  // NOLINT: {&flag} reads well in tests

  // Cancel from another thread: set it to true while the call runs.
  std::atomic<bool>* cancel = nullptr;
  // A later round: the client's answers to the input requests (key -> result) and the
  // state the previous round kept (CallResult::state).
  json input_responses = json::object();
  std::optional<std::string> state;
  // The client takes MCP tasks for this call: Call::hand_over works (ABI 1.3).
  bool as_task = false;
  // What Call::trace_context() answers (ABI 1.4); "" as when the host traces nothing.
  std::string trace_context;
  // Overrides FakeHost::client_capabilities for this call.
  std::optional<json> client_capabilities;
  // A call by a signed-in user: overrides FakeHost::principal and FakeHost::credentials
  // (with a principal but no credentials, the keys the plugin declared per user are unset).
  std::optional<std::string> principal;
  std::optional<std::map<std::string, std::string>> credentials;
};

// A loaded plugin with one instance. Move-only; unloads on destruction.
class Plugin {
 public:
  // Loads `path`, checks its ABI and creates an instance with `settings`. Throws
  // std::runtime_error naming what went wrong (missing entry symbol, wrong major,
  // create failure with the plugin's own message).
  static Plugin load(const std::string& path, FakeHost& host, const json& settings = json::object()) {
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) throw std::runtime_error("cannot load " + path + ": " + dlerror());
    Plugin p(lib, host);
    auto entry = reinterpret_cast<mcph_plugin_entry_fn>(dlsym(lib, MCPH_ENTRY_SYMBOL));
    if (!entry) throw std::runtime_error(path + " has no " MCPH_ENTRY_SYMBOL " function");
    const mcph_plugin_descriptor* d = entry(MCPH_ABI_MAJOR, MCPH_ABI_MINOR);
    if (!d) throw std::runtime_error(path + " refused this host's ABI");
    if (d->abi_major != MCPH_ABI_MAJOR) {
      throw std::runtime_error(path + " was built for ABI " + std::to_string(d->abi_major) + "." +
                               std::to_string(d->abi_minor) + ", the harness speaks " +
                               std::to_string(MCPH_ABI_MAJOR) + "." + std::to_string(MCPH_ABI_MINOR));
    }
    std::memcpy(&p.desc_, d, std::min<size_t>(d->struct_size, sizeof p.desc_));
    const std::string text = settings.dump();
    host.registering_ = true;
    host.registered_ = {};
    host.create_error_.clear();
    mcph_status st = p.desc_.create(host.api(), reinterpret_cast<mcph_host_instance*>(&host),
                                    mcph_str{text.c_str(), text.size()}, &p.instance_);
    host.registering_ = false;
    p.reg_ = std::move(host.registered_);
    if (st != MCPH_OK) throw std::runtime_error("create failed: " + (host.create_error_.empty() ? std::to_string(st) : host.create_error_));
    p.created_ = true;
    if (!host.create_error_.empty()) throw std::runtime_error("registration failed: " + host.create_error_);
    return p;
  }

  Plugin(Plugin&& o) noexcept
      : lib_(o.lib_), host_(o.host_), desc_(o.desc_), instance_(o.instance_), created_(o.created_), reg_(std::move(o.reg_)) {
    o.lib_ = nullptr;
    o.created_ = false;
  }
  Plugin& operator=(Plugin&&) = delete;
  ~Plugin() {
    if (created_) desc_.destroy(instance_);
    if (lib_) dlclose(lib_);
  }

  const mcph_plugin_descriptor& descriptor() const { return desc_; }
  // Each tool as MCP lists it: name, title, description, inputSchema, outputSchema, annotations.
  const std::vector<json>& tools() const { return reg_.tools; }

  // Resources and resource templates as MCP lists them; prompts likewise.
  const std::vector<json>& resources() const { return reg_.resources; }
  const std::vector<json>& prompts() const { return reg_.prompts; }
  // The credentials the plugin asks each user for ({key, label, help, secret}).
  const std::vector<json>& user_credentials() const { return reg_.user_credentials; }
  // What the plugin said of its YAML credentials with declare_credential: key -> secret.
  const std::map<std::string, bool>& declared_credentials() const { return reg_.declared_credentials; }

  // Runs the plugin's credential check (ABI 1.2) as the sign-in form would, with `entered`
  // (key -> what the user typed) answering call.credential(). The result is what the
  // check returned ({}, {"values"}, {"choose"}) or an error with the form's message.
  CallResult check_credentials(const std::map<std::string, std::string>& entered) {
    if (!reg_.credential_check) throw std::runtime_error("the plugin registered no credential check");
    CallOptions options;
    options.credentials = entered;
    return run(reg_.credential_check, reg_.credential_check_user, json::object(), options);
  }

  // Runs a tool's handler on this thread, as the host would after validating `args`
  // (the harness does not validate them: test your schema with `mcp-host plugin check`).
  CallResult call(const std::string& tool, const json& args = json::object(), CallOptions options = {}) {
    const auto& tools = reg_.tools;
    auto it = std::find_if(tools.begin(), tools.end(), [&](const json& t) { return t["name"] == tool; });
    if (it == tools.end()) throw std::runtime_error("no tool named " + tool);
    const mcph_tool_def& def = reg_.defs[static_cast<size_t>(it - tools.begin())];
    return run(def.handler, def.user, args, options);
  }

  // Reads a resource: a fixed URI, or one matching a template ({name} variables match
  // anything but '/').
  CallResult read(const std::string& uri, CallOptions options = {}) {
    for (size_t i = 0; i < reg_.resources.size(); ++i) {
      const json& r = reg_.resources[i];
      json input{{"uri", uri}};
      if (r.contains("uri") ? r["uri"] != uri : !match(r["uriTemplate"].get<std::string>(), uri, input["variables"])) continue;
      return run(reg_.resource_defs[i].read, reg_.resource_defs[i].user, input, options);
    }
    throw std::runtime_error("no resource matches " + uri);
  }

  CallResult get_prompt(const std::string& name, const json& args = json::object(), CallOptions options = {}) {
    const mcph_prompt_def& d = prompt(name);
    return run(d.get, d.user, args, options);
  }

  // Completion of a prompt's argument, or (ref is a uriTemplate) of a template variable.
  CallResult complete(const std::string& ref, const std::string& argument, const std::string& value,
                      const json& context_arguments = json::object()) {
    json input{{"argument", {{"name", argument}, {"value", value}}}, {"context", {{"arguments", context_arguments}}}};
    for (size_t i = 0; i < reg_.resources.size(); ++i) {
      if (reg_.resources[i].value("uriTemplate", "") != ref) continue;
      const auto& d = reg_.resource_defs[i];
      if (!d.complete) throw std::runtime_error(ref + " has no completion");
      return run(d.complete, d.user, input, {});
    }
    const mcph_prompt_def& d = prompt(ref);
    if (!d.complete) throw std::runtime_error(ref + " has no completion");
    return run(d.complete, d.user, input, {});
  }

 private:
  Plugin(void* lib, FakeHost& host) : lib_(lib), host_(&host) {}

  const mcph_prompt_def& prompt(const std::string& name) const {
    for (size_t i = 0; i < reg_.prompts.size(); ++i) {
      if (reg_.prompts[i]["name"] == name) return reg_.prompt_defs[i];
    }
    throw std::runtime_error("no prompt named " + name);
  }

  // RFC 6570 {name} templates, as the host matches them.
  static bool match(const std::string& tmpl, const std::string& uri, json& vars) {
    vars = json::object();
    size_t t = 0, u = 0;
    while (t < tmpl.size()) {
      if (tmpl[t] != '{') {
        if (u >= uri.size() || uri[u] != tmpl[t]) return false;
        ++t, ++u;
        continue;
      }
      const size_t close = tmpl.find('}', t);
      const std::string name = tmpl.substr(t + 1, close - t - 1);
      t = close + 1;
      const char stop = t < tmpl.size() ? tmpl[t] : '\0';
      const size_t start = u;
      while (u < uri.size() && uri[u] != '/' && uri[u] != stop) ++u;
      if (u == start) return false;
      vars[name] = uri.substr(start, u - start);
    }
    return u == uri.size();
  }

  CallResult run(mcph_tool_handler handler, void* user, const json& input, const CallOptions& options) {
    CallState state;
    state.cancel = options.cancel;
    state.host = host_;
    state.principal = options.principal;
    if (options.credentials) state.credentials = &*options.credentials;
    state.declared = &reg_.user_credentials;
    state.capabilities = options.client_capabilities.value_or(host_->client_capabilities);
    state.input_responses = options.input_responses;
    state.state = options.state;
    state.as_task = options.as_task;
    state.trace_context = options.trace_context;
    const std::string text = input.dump();
    mcph_status st = handler(instance_, user, reinterpret_cast<mcph_call*>(&state), mcph_str{text.c_str(), text.size()});
    if (!state.out.task_handle.empty()) {
      state.out.result = nullptr;
      return std::move(state.out);
    }
    if (!state.has_outcome && state.out.input_requests.empty() && state.out.missing_capability.empty()) {
      state.out.error_status = st == MCPH_OK ? MCPH_ERR_INTERNAL : st;
      state.out.result = json{{"content", json::array({json{{"type", "text"}, {"text", st == MCPH_OK
                                                                                         ? "handler returned no result"
                                                                                         : "handler failed: " + std::to_string(st)}}})},
                              {"isError", true}};
    }
    return std::move(state.out);
  }
  void* lib_;
  FakeHost* host_;
  mcph_plugin_descriptor desc_{};
  void* instance_ = nullptr;
  bool created_ = false;
  FakeHost::Registered reg_;
};

// ---- The fake host's table ----------------------------------------------------------------

inline mcph_status FakeHost::register_tool(mcph_host_instance* hi, const mcph_tool_def* def) {
  FakeHost& h = self(hi);
  if (!h.registering_) return MCPH_ERR_FAILED_PRECONDITION;
  mcph_tool_def d{};
  std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
  const std::string name = s(d.name);
  for (const auto& t : h.registered_.tools) {
    if (t["name"] == name) {
      h.create_error_ = "tool '" + name + "' is registered twice";
      return MCPH_ERR_INVALID_ARGUMENT;
    }
  }
  if (name.empty() || d.handler == nullptr) {
    h.create_error_ = "tool without a name or handler";
    return MCPH_ERR_INVALID_ARGUMENT;
  }
  json t{{"name", name}, {"inputSchema", parse_or(d.input_schema, json{{"type", "object"}})}};
  if (d.title.len) t["title"] = s(d.title);
  if (d.description.len) t["description"] = s(d.description);
  if (d.output_schema.len) t["outputSchema"] = parse_or(d.output_schema, json());
  if (d.annotations.len) t["annotations"] = parse_or(d.annotations, json());
  h.registered_.tools.push_back(std::move(t));
  h.registered_.defs.push_back(d);
  return MCPH_OK;
}

inline mcph_status FakeHost::http_request(mcph_host_instance* hi, const mcph_http_request* request,
                                          void (*on_response)(void*, const mcph_http_response*), void* user) {
  FakeHost& h = self(hi);
  mcph_http_request r{};
  std::memcpy(&r, request, std::min<size_t>(request->struct_size, sizeof r));
  RecordedRequest rec{s(r.method), s(r.url), {}, s(r.body), r.call == nullptr ? s(r.trace_link) : ""};
  for (size_t i = 0; i < r.header_count; ++i) rec.headers.emplace_back(s(r.headers[i].name), s(r.headers[i].value));
  auto* call = reinterpret_cast<CallState*>(r.call);
  auto cancelled = [&] { return call && call->cancel && call->cancel->load(); };
  auto reply = h.http.answer(rec);
  auto finish = [&](mcph_status st, int status, const Headers& headers, const std::string& body, const std::string& err) {
    std::vector<mcph_http_header> hs;
    for (const auto& [k, v] : headers) hs.push_back({{k.c_str(), k.size()}, {v.c_str(), v.size()}});
    mcph_http_response out{sizeof out, status, hs.data(), hs.size(), {body.c_str(), body.size()}, {err.c_str(), err.size()}};
    if (on_response) on_response(user, &out);
    return st;
  };
  if (!reply) return finish(MCPH_ERR_UNAVAILABLE, 0, {}, "", "fake http: no route for " + rec.method + " " + rec.url);
  const auto until = std::chrono::steady_clock::now() + reply->delay;
  while (std::chrono::steady_clock::now() < until) {
    if (cancelled()) return finish(MCPH_ERR_CANCELLED, 0, {}, "", "request cancelled");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (reply->failure != MCPH_OK) return finish(reply->failure, 0, {}, "", reply->failure_text);
  std::string body = reply->body;
  for (const auto& c : reply->chunks) body += c;
  if (r.on_body == nullptr) return finish(MCPH_OK, reply->status, reply->headers, body, "");
  std::vector<mcph_http_header> hs;
  for (const auto& [k, v] : reply->headers) hs.push_back({{k.c_str(), k.size()}, {v.c_str(), v.size()}});
  mcph_http_response head{sizeof head, reply->status, hs.data(), hs.size(), {}, {}};
  if (r.on_head && !r.on_head(r.user, &head)) return finish(MCPH_OK, reply->status, reply->headers, "", "");
  std::vector<std::string> pieces = reply->chunks;
  if (pieces.empty() && !reply->body.empty()) pieces.push_back(reply->body);
  for (const auto& piece : pieces) {
    if (cancelled()) return finish(MCPH_ERR_CANCELLED, 0, {}, "", "request cancelled");
    if (!r.on_body(r.user, mcph_str{piece.c_str(), piece.size()})) break;
  }
  return finish(MCPH_OK, reply->status, reply->headers, "", "");
}

inline mcph_host_api FakeHost::make_api() {
  mcph_host_api a{};
  a.struct_size = sizeof a;
  a.abi_major = MCPH_ABI_MAJOR;
  a.abi_minor = MCPH_ABI_MINOR;
  a.host_version = MCPH_LIT("fake-host");
  a.register_tool = &FakeHost::register_tool;
  a.set_create_error = [](mcph_host_instance* hi, mcph_str m) { self(hi).create_error_ = s(m); };
  a.log = [](mcph_host_instance* hi, mcph_log_level level, mcph_str m) {
    std::lock_guard lock(self(hi).mutex_);
    self(hi).logs_.push_back({level, s(m)});
  };
  a.call_result = [](mcph_call* c, mcph_str text) -> mcph_status {
    json r = json::parse(s(text), nullptr, false);
    if (r.is_discarded() || !r.is_object()) return MCPH_ERR_INVALID_ARGUMENT;
    auto* st = reinterpret_cast<CallState*>(c);
    std::lock_guard lock(st->mutex);
    st->out.result = std::move(r);
    st->has_outcome = true;
    return MCPH_OK;
  };
  a.call_error = [](mcph_call* c, mcph_status status, mcph_str m) -> mcph_status {
    auto* st = reinterpret_cast<CallState*>(c);
    std::lock_guard lock(st->mutex);
    st->out.error_status = status;
    st->out.result = json{{"content", json::array({json{{"type", "text"}, {"text", s(m)}}})}, {"isError", true}};
    st->has_outcome = true;
    return MCPH_OK;
  };
  a.call_progress = [](mcph_call* c, double p, double total, mcph_str m) {
    auto* st = reinterpret_cast<CallState*>(c);
    std::lock_guard lock(st->mutex);
    json e{{"progress", p}};
    if (total > 0) e["total"] = total;
    if (m.len) e["message"] = s(m);
    st->out.progress.push_back(std::move(e));
  };
  a.call_log = [](mcph_call* c, mcph_log_level level, mcph_str logger, mcph_str data) {
    auto* st = reinterpret_cast<CallState*>(c);
    std::lock_guard lock(st->mutex);
    json d = json::parse(s(data), nullptr, false);
    st->out.logs.push_back(json{{"level", level}, {"logger", s(logger)}, {"data", d.is_discarded() ? json(s(data)) : d}});
  };
  a.call_cancelled = [](mcph_call* c) {
    auto* st = reinterpret_cast<CallState*>(c);
    return st == nullptr || (st->cancel != nullptr && st->cancel->load());
  };
  a.credential = [](mcph_host_instance* hi, mcph_call* c, mcph_str key, mcph_sink sink, void* user) -> mcph_status {
    auto* st = reinterpret_cast<CallState*>(c);
    // As the host does: a signed-in user's declared key never falls back to the instance's.
    if (st && st->principal && !st->principal->empty() && !st->credentials && st->declared &&
        std::any_of(st->declared->begin(), st->declared->end(), [&](const json& d) { return d["key"] == s(key); })) {
      return MCPH_ERR_NOT_FOUND;
    }
    const auto& creds = st && st->credentials ? *st->credentials : self(hi).credentials;
    auto it = creds.find(s(key));
    if (it == creds.end() || it->second.empty()) return MCPH_ERR_NOT_FOUND;
    give(sink, user, it->second);
    return MCPH_OK;
  };
  a.call_principal = [](mcph_call* c, mcph_sink sink, void* user) {
    auto* st = reinterpret_cast<CallState*>(c);
    if (st && st->host) give(sink, user, st->principal.value_or(st->host->principal));
  };
  a.state_get = [](mcph_host_instance* hi, mcph_str key, mcph_sink sink, void* user) -> mcph_status {
    std::lock_guard lock(self(hi).mutex_);
    auto it = self(hi).state_.find(s(key));
    if (it == self(hi).state_.end()) return MCPH_ERR_NOT_FOUND;
    give(sink, user, it->second);
    return MCPH_OK;
  };
  a.state_put = [](mcph_host_instance* hi, mcph_str key, mcph_str value) -> mcph_status {
    std::lock_guard lock(self(hi).mutex_);
    self(hi).state_[s(key)] = s(value);
    return MCPH_OK;
  };
  a.state_delete = [](mcph_host_instance* hi, mcph_str key) -> mcph_status {
    std::lock_guard lock(self(hi).mutex_);
    self(hi).state_.erase(s(key));
    return MCPH_OK;
  };
  a.state_list = [](mcph_host_instance* hi, mcph_str prefix, bool (*each)(void*, mcph_str, mcph_str),
                    void* user) -> mcph_status {
    std::lock_guard lock(self(hi).mutex_);
    const std::string p = s(prefix);
    for (auto it = self(hi).state_.lower_bound(p); it != self(hi).state_.end() && it->first.compare(0, p.size(), p) == 0; ++it) {
      if (!each(user, {it->first.c_str(), it->first.size()}, {it->second.c_str(), it->second.size()})) break;
    }
    return MCPH_OK;
  };
  a.state_put_if = [](mcph_host_instance* hi, mcph_str key, const mcph_str* expected, const mcph_str* value) -> mcph_status {
    std::lock_guard lock(self(hi).mutex_);
    auto& state = self(hi).state_;
    auto it = state.find(s(key));
    if ((it != state.end()) != (expected != nullptr) || (expected && it->second != s(*expected))) return MCPH_ERR_FAILED_PRECONDITION;
    if (value) {
      state[s(key)] = s(*value);
    } else if (it != state.end()) {
      state.erase(it);
    }
    return MCPH_OK;
  };
  a.lease_acquire = [](mcph_host_instance* hi, mcph_str name, uint32_t ttl_ms) -> mcph_status {
    if (ttl_ms == 0) return MCPH_ERR_INVALID_ARGUMENT;
    std::lock_guard lock(self(hi).mutex_);
    const auto now = std::chrono::steady_clock::now();
    auto& lease = self(hi).leases_[s(name)];
    if (lease.first == "other" && lease.second > now) return MCPH_ERR_FAILED_PRECONDITION;
    lease = {"this", now + std::chrono::milliseconds(ttl_ms)};
    return MCPH_OK;
  };
  a.lease_release = [](mcph_host_instance* hi, mcph_str name) -> mcph_status {
    std::lock_guard lock(self(hi).mutex_);
    auto it = self(hi).leases_.find(s(name));
    if (it != self(hi).leases_.end() && it->second.first == "this") self(hi).leases_.erase(it);
    return MCPH_OK;
  };
  a.http_request = &FakeHost::http_request;
  a.json_get = [](mcph_str text, mcph_str pointer, mcph_sink sink, void* user) -> mcph_status {
    json v;
    mcph_status st = find(text, pointer, v);
    if (st == MCPH_OK) give(sink, user, v.dump());
    return st;
  };
  a.json_string = [](mcph_str text, mcph_str pointer, mcph_sink sink, void* user) -> mcph_status {
    json v;
    mcph_status st = find(text, pointer, v);
    if (st != MCPH_OK) return st;
    if (!v.is_string()) return MCPH_ERR_INVALID_ARGUMENT;
    give(sink, user, v.get<std::string>());
    return MCPH_OK;
  };
  a.json_quote = [](mcph_str text, mcph_sink sink, void* user) { give(sink, user, json(s(text)).dump()); };
  // 1.1
  a.register_resource = [](mcph_host_instance* hi, const mcph_resource_def* def) -> mcph_status {
    FakeHost& h = self(hi);
    if (!h.registering_) return MCPH_ERR_FAILED_PRECONDITION;
    mcph_resource_def d{};
    std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
    if ((d.uri.len == 0) == (d.uri_template.len == 0) || d.name.len == 0 || d.read == nullptr) {
      h.create_error_ = "resource needs exactly one of uri and uri_template, a name and a read handler";
      return MCPH_ERR_INVALID_ARGUMENT;
    }
    json r{{d.uri.len ? "uri" : "uriTemplate", s(d.uri.len ? d.uri : d.uri_template)}, {"name", s(d.name)}};
    if (d.title.len) r["title"] = s(d.title);
    if (d.description.len) r["description"] = s(d.description);
    if (d.mime_type.len) r["mimeType"] = s(d.mime_type);
    if (d.annotations.len) r["annotations"] = parse_or(d.annotations, json());
    h.registered_.resources.push_back(std::move(r));
    h.registered_.resource_defs.push_back(d);
    return MCPH_OK;
  };
  a.register_prompt = [](mcph_host_instance* hi, const mcph_prompt_def* def) -> mcph_status {
    FakeHost& h = self(hi);
    if (!h.registering_) return MCPH_ERR_FAILED_PRECONDITION;
    mcph_prompt_def d{};
    std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
    if (d.name.len == 0 || d.get == nullptr) {
      h.create_error_ = "prompt without a name or get handler";
      return MCPH_ERR_INVALID_ARGUMENT;
    }
    json p{{"name", s(d.name)}};
    if (d.title.len) p["title"] = s(d.title);
    if (d.description.len) p["description"] = s(d.description);
    if (d.arguments.len) p["arguments"] = parse_or(d.arguments, json::array());
    h.registered_.prompts.push_back(std::move(p));
    h.registered_.prompt_defs.push_back(d);
    return MCPH_OK;
  };
  a.call_client_capabilities = [](mcph_call* c, mcph_sink sink, void* user) {
    give(sink, user, reinterpret_cast<CallState*>(c)->capabilities.dump());
  };
  a.call_request_input = [](mcph_call* c, mcph_str key, mcph_str request) -> mcph_status {
    auto* st = reinterpret_cast<CallState*>(c);
    json r = json::parse(s(request), nullptr, false);
    if (key.len == 0 || !r.is_object() || !r.value("method", json()).is_string()) return MCPH_ERR_INVALID_ARGUMENT;
    const std::string m = r["method"];
    const char* cap = m == "elicitation/create" ? "elicitation" : m == "sampling/createMessage" ? "sampling" : m == "roots/list" ? "roots" : nullptr;
    if (cap == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
    std::lock_guard lock(st->mutex);
    if (!st->capabilities.contains(cap)) {
      if (st->out.missing_capability.empty()) st->out.missing_capability = cap;
      return MCPH_ERR_UNSUPPORTED;
    }
    st->out.input_requests[s(key)] = std::move(r);
    return MCPH_OK;
  };
  a.call_input_response = [](mcph_call* c, mcph_str key, mcph_sink sink, void* user) -> mcph_status {
    auto* st = reinterpret_cast<CallState*>(c);
    auto it = st->input_responses.find(s(key));
    if (it == st->input_responses.end()) return MCPH_ERR_NOT_FOUND;
    give(sink, user, it->dump());
    return MCPH_OK;
  };
  a.call_set_state = [](mcph_call* c, mcph_str state) -> mcph_status {
    if (state.len > 16 * 1024) return MCPH_ERR_INVALID_ARGUMENT;
    reinterpret_cast<CallState*>(c)->out.state = s(state);
    return MCPH_OK;
  };
  a.call_state = [](mcph_call* c, mcph_sink sink, void* user) -> mcph_status {
    auto* st = reinterpret_cast<CallState*>(c);
    if (!st->state) return MCPH_ERR_NOT_FOUND;
    give(sink, user, *st->state);
    return MCPH_OK;
  };
  a.call_continue_as_task = [](mcph_call* c, mcph_str handle) -> mcph_status {
    auto* st = reinterpret_cast<CallState*>(c);
    if (!st->as_task) return MCPH_ERR_UNSUPPORTED;
    if (handle.len == 0 || handle.len > 128) return MCPH_ERR_INVALID_ARGUMENT;
    st->out.task_handle = s(handle);
    std::lock_guard lock(st->host->mutex_);
    st->host->tasks_[s(handle)] = json{{"status", "working"}};
    return MCPH_OK;
  };
  a.task_update = [](mcph_host_instance* hi, mcph_str handle, mcph_str update) -> mcph_status {
    json u = json::parse(s(update), nullptr, false);
    const std::string status = u.is_object() ? u.value("status", "") : "";
    if (status != "working" && status != "input_required" && status != "completed" && status != "failed") return MCPH_ERR_INVALID_ARGUMENT;
    std::lock_guard lock(self(hi).mutex_);
    auto it = self(hi).tasks_.find(s(handle));
    if (it == self(hi).tasks_.end()) return MCPH_ERR_NOT_FOUND;
    const std::string now = it->second.value("status", "");
    if (now == "completed" || now == "failed" || now == "cancelled") return MCPH_ERR_FAILED_PRECONDITION;
    it->second = std::move(u);
    return MCPH_OK;
  };
  a.task_get = [](mcph_host_instance* hi, mcph_str handle, mcph_sink sink, void* user) -> mcph_status {
    std::lock_guard lock(self(hi).mutex_);
    auto it = self(hi).tasks_.find(s(handle));
    if (it == self(hi).tasks_.end()) return MCPH_ERR_NOT_FOUND;
    give(sink, user, json{{"status", it->second.value("status", "")},
                          {"inputResponses", it->second.value("inputResponses", json::object())}}.dump());
    return MCPH_OK;
  };
  a.resource_updated = [](mcph_host_instance* hi, mcph_str uri) {
    std::lock_guard lock(self(hi).mutex_);
    self(hi).updated_.push_back(s(uri));
  };
  a.register_user_credential = [](mcph_host_instance* hi, const mcph_user_credential_def* def) -> mcph_status {
    FakeHost& h = self(hi);
    if (!h.registering_) return MCPH_ERR_FAILED_PRECONDITION;
    mcph_user_credential_def d{};
    std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
    if (d.key.len == 0 || d.label.len == 0) {
      h.create_error_ = "user credential without a key or label";
      return MCPH_ERR_INVALID_ARGUMENT;
    }
    h.registered_.user_credentials.push_back(json{{"key", s(d.key)}, {"label", s(d.label)}, {"help", s(d.help)}, {"secret", d.secret}});
    return MCPH_OK;
  };
  a.register_credential_check = [](mcph_host_instance* hi, mcph_tool_handler check, void* user) -> mcph_status {
    FakeHost& h = self(hi);
    if (!h.registering_) return MCPH_ERR_FAILED_PRECONDITION;
    if (check == nullptr || h.registered_.credential_check != nullptr) {
      h.create_error_ = "register_credential_check: none, or a second one";
      return MCPH_ERR_INVALID_ARGUMENT;
    }
    h.registered_.credential_check = check;
    h.registered_.credential_check_user = user;
    return MCPH_OK;
  };
  a.declare_credential = [](mcph_host_instance* hi, mcph_str key, bool secret) -> mcph_status {
    FakeHost& h = self(hi);
    if (!h.registering_) return MCPH_ERR_FAILED_PRECONDITION;
    if (key.len == 0) return MCPH_ERR_INVALID_ARGUMENT;
    h.registered_.declared_credentials[s(key)] = secret;
    return MCPH_OK;
  };
  a.user_credential = [](mcph_host_instance* hi, mcph_str principal, mcph_str key, mcph_sink sink, void* user) -> mcph_status {
    FakeHost& h = self(hi);
    std::string value;
    {
      std::lock_guard lock(h.mutex_);
      auto u = h.users_.find(s(principal));
      if (u == h.users_.end()) return MCPH_ERR_NOT_FOUND;
      auto v = u->second.find(s(key));
      if (v == u->second.end() || v->second.empty()) return MCPH_ERR_NOT_FOUND;
      value = v->second;
    }
    give(sink, user, value);
    return MCPH_OK;
  };
  a.call_trace_context = [](mcph_call* c, mcph_sink sink, void* user) -> mcph_status {
    auto* st = reinterpret_cast<CallState*>(c);
    if (st == nullptr || st->trace_context.empty()) return MCPH_ERR_NOT_FOUND;
    give(sink, user, st->trace_context);
    return MCPH_OK;
  };
  return a;
}

}  // namespace mcph::testing

#endif  // MCP_PLUGIN_TESTING_HPP
