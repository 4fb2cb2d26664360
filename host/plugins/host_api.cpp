// The host services table (mcph_host_api) that every plugin receives. Each function checks
// its arguments, never throws (no exception may cross the C boundary), and copies what
// the plugin hands over before returning.
#include <algorithm>
#include <random>

#include <spdlog/spdlog.h>

#include "json/bounded.hpp"
#include "plugins/instance.hpp"
#include "services/http_client.hpp"
#include "store/state_store.hpp"
#include "version.hpp"

namespace mcph::plugins {

bool valid_tool_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

namespace {

using nlohmann::json;

std::string_view view(mcph_str s) { return s.data ? std::string_view(s.data, s.len) : std::string_view(); }
void give(mcph_sink sink, void* user, std::string_view data) {
  if (sink != nullptr) sink(user, mcph_str{data.data(), data.size()});
}

spdlog::level::level_enum spd_level(mcph_log_level level) {
  if (level <= MCPH_LOG_DEBUG) return spdlog::level::debug;
  if (level <= MCPH_LOG_NOTICE) return spdlog::level::info;
  if (level == MCPH_LOG_WARNING) return spdlog::level::warn;
  if (level == MCPH_LOG_ERROR) return spdlog::level::err;
  return spdlog::level::critical;
}

bool registering(mcph_host_instance* hi, const char* what) {
  if (hi->registering) return true;
  spdlog::error("[{}] {} called outside create(); ignored", hi->name, what);
  return false;
}

void fail_registration(mcph_host_instance* hi, const std::string& why) {
  if (hi->create_error.empty()) hi->create_error = why;
  spdlog::error("[{}] {}", hi->name, why);
}

// Parses an optional JSON text field of a tool definition.
bool parse_field(mcph_host_instance* hi, const std::string& what, const char* field, mcph_str text,
                 json& out) {
  if (text.len == 0) return true;
  auto parsed = json_text::parse(view(text));
  out = parsed ? std::move(*parsed) : json();
  if (!out.is_object()) {
    fail_registration(hi, what + ": " + field + " is not a JSON object");
    return false;
  }
  return true;
}

mcph_status register_tool(mcph_host_instance* hi, const mcph_tool_def* def) {
  if (hi == nullptr || def == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  if (!registering(hi, "register_tool")) return MCPH_ERR_FAILED_PRECONDITION;
  mcph_tool_def d{};
  std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
  std::string name(view(d.name));
  if (!valid_tool_name(name)) {
    fail_registration(hi, "invalid tool name '" + name + "' (use 1-128 of A-Z a-z 0-9 _ . -)");
    return MCPH_ERR_INVALID_ARGUMENT;
  }
  if (d.handler == nullptr) {
    fail_registration(hi, "tool '" + name + "' has no handler");
    return MCPH_ERR_INVALID_ARGUMENT;
  }
  for (const auto& t : hi->tools) {
    if (t.name == name) {
      fail_registration(hi, "tool '" + name + "' is registered twice");
      return MCPH_ERR_INVALID_ARGUMENT;
    }
  }
  Tool tool;
  tool.name = name;
  tool.title = view(d.title);
  tool.description = view(d.description);
  tool.input_schema = json{{"type", "object"}, {"additionalProperties", false}};
  const std::string what = "tool '" + name + "'";
  if (!parse_field(hi, what, "input_schema", d.input_schema, tool.input_schema) ||
      !parse_field(hi, what, "output_schema", d.output_schema, tool.output_schema) ||
      !parse_field(hi, what, "annotations", d.annotations, tool.annotations)) {
    return MCPH_ERR_INVALID_ARGUMENT;
  }
  if (tool.input_schema.value("type", json()) != "object") {
    fail_registration(hi, "tool '" + name + "': input_schema must have \"type\": \"object\"");
    return MCPH_ERR_INVALID_ARGUMENT;
  }
  if (d.task_support > MCPH_TASK_SUPPORT_REQUIRED) {
    fail_registration(hi, "tool '" + name + "': task_support must be one of MCPH_TASK_SUPPORT_*");
    return MCPH_ERR_INVALID_ARGUMENT;
  }
  tool.task_support = static_cast<TaskSupport>(d.task_support);
  tool.handler = d.handler;
  tool.user = d.user;
  hi->tools.push_back(std::move(tool));
  return MCPH_OK;
}

// Splits an RFC 6570 template into literals and {variable} names; only simple
// expansions ({name}) are supported. Empty on success, else what is wrong.
std::string split_template(const std::string& t, Resource& r) {
  r.literals.assign(1, "");
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '}') return "unbalanced '}'";
    if (t[i] != '{') {
      r.literals.back().push_back(t[i]);
      continue;
    }
    size_t end = t.find('}', i);
    if (end == std::string::npos) return "unbalanced '{'";
    std::string var = t.substr(i + 1, end - i - 1);
    if (var.empty() || !std::all_of(var.begin(), var.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; })) {
      return "'{" + var + "}' is not a simple {name} expression (operators like + # / ? are not supported)";
    }
    if (i > 0 && t[i - 1] == '}') return "two variables need a literal between them";
    r.variables.push_back(var);
    r.literals.emplace_back();
    i = end;
  }
  if (r.variables.empty()) return "has no {variable}; register it as a fixed uri";
  return "";
}

mcph_status register_resource(mcph_host_instance* hi, const mcph_resource_def* def) {
  if (hi == nullptr || def == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  if (!registering(hi, "register_resource")) return MCPH_ERR_FAILED_PRECONDITION;
  mcph_resource_def d{};
  std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
  Resource r;
  r.uri = view(d.uri);
  r.uri_template = view(d.uri_template);
  r.name = view(d.name);
  const std::string label = "resource '" + (r.uri.empty() ? r.uri_template : r.uri) + "'";
  auto fail = [&](const std::string& why) {
    fail_registration(hi, label + ": " + why);
    return MCPH_ERR_INVALID_ARGUMENT;
  };
  if (r.uri.empty() == r.uri_template.empty()) return fail("set exactly one of uri and uri_template");
  if ((r.uri + r.uri_template).find(':') == std::string::npos) return fail("not an absolute URI (scheme:...)");
  if (r.name.empty()) return fail("name is required");
  if (d.read == nullptr) return fail("has no read handler");
  if (!r.uri_template.empty()) {
    if (std::string why = split_template(r.uri_template, r); !why.empty()) return fail("uri_template " + why);
  } else if (d.complete != nullptr) {
    return fail("complete is only for templates");
  }
  for (const auto& other : hi->resources) {
    if (other.uri == r.uri && other.uri_template == r.uri_template) return fail("is registered twice");
  }
  if (!parse_field(hi, label, "annotations", d.annotations, r.annotations)) return MCPH_ERR_INVALID_ARGUMENT;
  r.title = view(d.title);
  r.description = view(d.description);
  r.mime_type = view(d.mime_type);
  r.read = d.read;
  r.complete = d.complete;
  r.completes = d.complete != nullptr;
  r.user = d.user;
  hi->resources.push_back(std::move(r));
  return MCPH_OK;
}

mcph_status register_prompt(mcph_host_instance* hi, const mcph_prompt_def* def) {
  if (hi == nullptr || def == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  if (!registering(hi, "register_prompt")) return MCPH_ERR_FAILED_PRECONDITION;
  mcph_prompt_def d{};
  std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
  Prompt p;
  p.name = view(d.name);
  auto fail = [&](const std::string& why) {
    fail_registration(hi, "prompt '" + p.name + "': " + why);
    return MCPH_ERR_INVALID_ARGUMENT;
  };
  if (!valid_tool_name(p.name)) return fail("invalid name (use 1-128 of A-Z a-z 0-9 _ . -)");
  if (d.get == nullptr) return fail("has no get handler");
  for (const auto& other : hi->prompts) {
    if (other.name == p.name) return fail("is registered twice");
  }
  p.arguments = json::array();
  if (d.arguments.len > 0) {
    p.arguments = json_text::parse(view(d.arguments)).value_or(json());
    if (!p.arguments.is_array()) return fail("arguments is not a JSON array");
    for (const auto& a : p.arguments) {
      if (!a.is_object() || !a.contains("name") || !a["name"].is_string() || a["name"].get_ref<const std::string&>().empty()) {
        return fail("every argument needs a \"name\" (a non-empty string)");
      }
      if (a.contains("required") && !a["required"].is_boolean()) return fail("argument \"required\" must be true or false");
    }
  }
  p.title = view(d.title);
  p.description = view(d.description);
  p.get = d.get;
  p.complete = d.complete;
  p.completes = d.complete != nullptr;
  p.user = d.user;
  hi->prompts.push_back(std::move(p));
  return MCPH_OK;
}

void set_create_error(mcph_host_instance* hi, mcph_str message) {
  if (hi != nullptr) hi->create_error = view(message);
}

void log(mcph_host_instance* hi, mcph_log_level level, mcph_str message) {
  if (hi == nullptr) return;
  auto lvl = spd_level(level);
  if (!spdlog::should_log(lvl)) return;
  std::string text(view(message));
  hi->redact(text);
  spdlog::log(lvl, "[{}] {}", hi->name, text);
}

mcph_status call_result(mcph_call* call, mcph_str result_json) {
  if (call == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  // Checked here so a malformed (or absurdly deep) result is the plugin author's error at
  // the source. Checked, not built: a result whose text can stand as it is reaches the
  // client as the plugin wrote it (json_text::written).
  auto result = json_text::object_as_given(view(result_json));
  if (!result) return MCPH_ERR_INVALID_ARGUMENT;
  call->has_outcome = true;
  call->is_error = false;
  call->result = std::move(*result);
  return MCPH_OK;
}

mcph_status call_error(mcph_call* call, mcph_status status, mcph_str message) {
  if (call == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  call->has_outcome = true;
  call->is_error = true;
  call->error_status = status == MCPH_OK ? MCPH_ERR_INTERNAL : status;
  call->error_text.assign(view(message));
  if (call->error_text.empty()) call->error_text = status_name(status);
  return MCPH_OK;
}

// The secrets a call's notifications must not carry: the instance's and its caller's.
std::vector<std::string> call_secrets(const mcph_call* call) {
  return call->host == nullptr ? std::vector<std::string>() : call->host->secrets_for(call->caller);
}

void call_progress(mcph_call* call, double progress, double total, mcph_str message) {
  if (call == nullptr || call->events == nullptr) return;
  std::string text(view(message));
  if (!text.empty()) redact_text(text, call_secrets(call));
  call->events->progress(progress, total, text);
}

void call_log(mcph_call* call, mcph_log_level level, mcph_str logger, mcph_str data_json) {
  if (call == nullptr || call->events == nullptr) return;
  json data = json_text::parse(view(data_json)).value_or(json(std::string(view(data_json))));  // plain text is fine too
  redact_json(data, call_secrets(call));
  call->events->log(level, view(logger), data);
}

bool call_cancelled(mcph_call* call) { return call == nullptr || call->is_cancelled(); }

mcph_status credential(mcph_host_instance* hi, mcph_call* call, mcph_str key, mcph_sink sink, void* user) {
  if (hi == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  const std::string k(view(key));
  // A signed-in user's own value first. A key the plugin declared per user never falls
  // back to the instance's YAML value: one user must not call with another's credential.
  if (call != nullptr && call->caller != nullptr) {
    if (auto inst = call->caller->credentials.find(hi->name); inst != call->caller->credentials.end()) {
      if (auto v = inst->second.find(k); v != inst->second.end() && !v->second.empty()) {
        give(sink, user, v->second);
        return MCPH_OK;
      }
    }
    if (std::any_of(hi->user_credentials.begin(), hi->user_credentials.end(), [&](const auto& u) { return u.key == k; })) {
      return MCPH_ERR_NOT_FOUND;
    }
  }
  auto it = hi->credentials.find(k);
  if (it == hi->credentials.end() || it->second.empty()) return MCPH_ERR_NOT_FOUND;
  give(sink, user, it->second);
  return MCPH_OK;
}

void call_principal(mcph_call* call, mcph_sink sink, void* user) {
  if (call != nullptr) give(sink, user, call->principal);
}

mcph_status state_get(mcph_host_instance* hi, mcph_str key, mcph_sink sink, void* user) {
  if (hi == nullptr || hi->services.state == nullptr) return MCPH_ERR_UNAVAILABLE;
  auto r = hi->services.state->get(hi->name, view(key));
  if (!r) {
    spdlog::error("[{}] state_get: {}", hi->name, r.error());
    return MCPH_ERR_UNAVAILABLE;
  }
  if (!r->has_value()) return MCPH_ERR_NOT_FOUND;
  give(sink, user, **r);
  return MCPH_OK;
}

mcph_status state_put(mcph_host_instance* hi, mcph_str key, mcph_str value) {
  if (hi == nullptr || hi->services.state == nullptr) return MCPH_ERR_UNAVAILABLE;
  auto r = hi->services.state->put(hi->name, view(key), view(value));
  if (!r) spdlog::error("[{}] state_put: {}", hi->name, r.error());
  return r ? MCPH_OK : MCPH_ERR_UNAVAILABLE;
}

mcph_status state_delete(mcph_host_instance* hi, mcph_str key) {
  if (hi == nullptr || hi->services.state == nullptr) return MCPH_ERR_UNAVAILABLE;
  auto r = hi->services.state->erase(hi->name, view(key));
  if (!r) spdlog::error("[{}] state_delete: {}", hi->name, r.error());
  return r ? MCPH_OK : MCPH_ERR_UNAVAILABLE;
}

mcph_status state_list(mcph_host_instance* hi, mcph_str prefix,
                       bool (*each)(void*, mcph_str, mcph_str), void* user) {
  if (hi == nullptr || hi->services.state == nullptr) return MCPH_ERR_UNAVAILABLE;
  if (each == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  auto r = hi->services.state->list(hi->name, view(prefix), [&](std::string_view k, std::string_view v) {
    return each(user, mcph_str{k.data(), k.size()}, mcph_str{v.data(), v.size()});
  });
  if (!r) spdlog::error("[{}] state_list: {}", hi->name, r.error());
  return r ? MCPH_OK : MCPH_ERR_UNAVAILABLE;
}

std::mutex replica_mutex;
std::string replica;  // guarded by replica_mutex

mcph_status state_put_if(mcph_host_instance* hi, mcph_str key, const mcph_str* expected, const mcph_str* value) {
  if (hi == nullptr || hi->services.state == nullptr) return MCPH_ERR_UNAVAILABLE;
  auto opt = [](const mcph_str* s) { return s == nullptr ? std::nullopt : std::optional<std::string_view>(view(*s)); };
  auto r = hi->services.state->put_if(hi->name, view(key), opt(expected), opt(value));
  if (!r) {
    spdlog::error("[{}] state_put_if: {}", hi->name, r.error());
    return MCPH_ERR_UNAVAILABLE;
  }
  return *r ? MCPH_OK : MCPH_ERR_FAILED_PRECONDITION;
}

mcph_status lease_acquire(mcph_host_instance* hi, mcph_str name, uint32_t ttl_ms) {
  if (hi == nullptr || hi->services.state == nullptr) return MCPH_ERR_UNAVAILABLE;
  if (ttl_ms == 0) return MCPH_ERR_INVALID_ARGUMENT;
  if (hi->retired) return MCPH_ERR_FAILED_PRECONDITION;  // its replacement leads from now on
  auto r = hi->services.state->acquire(hi->name, view(name), hi->lease_owner(), std::chrono::milliseconds(ttl_ms));
  if (!r) {
    spdlog::error("[{}] lease_acquire: {}", hi->name, r.error());
    return MCPH_ERR_UNAVAILABLE;
  }
  return *r ? MCPH_OK : MCPH_ERR_FAILED_PRECONDITION;
}

mcph_status lease_release(mcph_host_instance* hi, mcph_str name) {
  if (hi == nullptr || hi->services.state == nullptr) return MCPH_ERR_UNAVAILABLE;
  auto r = hi->services.state->release(hi->name, view(name), hi->lease_owner());
  if (!r) spdlog::error("[{}] lease_release: {}", hi->name, r.error());
  return r ? MCPH_OK : MCPH_ERR_UNAVAILABLE;
}

std::vector<mcph_http_header> to_abi(const services::Headers& headers) {
  std::vector<mcph_http_header> out;
  out.reserve(headers.size());
  for (const auto& [k, v] : headers) out.push_back({{k.c_str(), k.size()}, {v.c_str(), v.size()}});
  return out;
}

mcph_status http_request(mcph_host_instance* hi, const mcph_http_request* request,
                         void (*on_response)(void*, const mcph_http_response*), void* user) {
  if (hi == nullptr || request == nullptr || hi->services.http == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  mcph_http_request r{};
  std::memcpy(&r, request, std::min<size_t>(request->struct_size, sizeof r));

  services::HttpRequest req;
  req.method = view(r.method);
  req.url = view(r.url);
  for (size_t i = 0; i < r.header_count; ++i) {
    req.headers.emplace_back(view(r.headers[i].name), view(r.headers[i].value));
  }
  req.body = view(r.body);
  if (r.timeout_ms > 0) req.timeout = std::chrono::milliseconds(r.timeout_ms);
  if (r.connect_timeout_ms > 0) req.connect_timeout = std::chrono::milliseconds(r.connect_timeout_ms);
  mcph_call* call = r.call;
  req.cancelled = [hi, call] { return hi->shutting_down.load() || (call != nullptr && call->is_cancelled()); };
  if (r.on_head != nullptr) {
    req.on_head = [&r](int status, const services::Headers& headers) {
      auto abi_headers = to_abi(headers);
      mcph_http_response head{sizeof(mcph_http_response), status, abi_headers.data(), abi_headers.size(), {}, {}};
      return r.on_head(r.user, &head);
    };
  }
  if (r.on_body != nullptr) {
    req.on_body = [&r](const char* data, size_t len) { return r.on_body(r.user, mcph_str{data, len}); };
  }

  req.origin = hi->name;
  if (call != nullptr) req.traceparent = call->traceparent;
  else req.trace_link = view(r.trace_link);  // zero (empty) from a plugin built before 1.4
  services::HttpResponse res = hi->services.http->send(req);
  hi->redact(res.error);
  if (on_response != nullptr) {
    auto abi_headers = to_abi(res.headers);
    mcph_http_response out{sizeof(mcph_http_response), res.status, abi_headers.data(), abi_headers.size(),
                           {res.body.data(), res.body.size()}, {res.error.data(), res.error.size()}};
    on_response(user, &out);
  }
  switch (res.outcome) {
    case services::HttpResponse::Outcome::Ok: return MCPH_OK;
    case services::HttpResponse::Outcome::Cancelled: return MCPH_ERR_CANCELLED;
    case services::HttpResponse::Outcome::Timeout: return MCPH_ERR_DEADLINE_EXCEEDED;
    case services::HttpResponse::Outcome::Network: return MCPH_ERR_UNAVAILABLE;
    case services::HttpResponse::Outcome::InvalidRequest: return MCPH_ERR_INVALID_ARGUMENT;
  }
  return MCPH_ERR_INTERNAL;
}

mcph_status call_trace_context(mcph_call* call, mcph_sink sink, void* user) {
  if (call == nullptr || call->traceparent.empty()) return MCPH_ERR_NOT_FOUND;
  give(sink, user, call->traceparent);
  return MCPH_OK;
}

void call_client_capabilities(mcph_call* call, mcph_sink sink, void* user) {
  if (call != nullptr) give(sink, user, call->client_capabilities ? call->client_capabilities->dump() : "{}");
}

// The client capability each input method needs.
const char* capability_for(const std::string& method) {
  if (method == "elicitation/create") return "elicitation";
  if (method == "sampling/createMessage") return "sampling";
  if (method == "roots/list") return "roots";
  return nullptr;
}

bool valid_input_key(std::string_view key) { return !key.empty() && key.size() <= 64 && valid_tool_name(key); }

mcph_status call_request_input(mcph_call* call, mcph_str key, mcph_str request_json) {
  if (call == nullptr || !valid_input_key(view(key))) return MCPH_ERR_INVALID_ARGUMENT;
  json request = json_text::parse(view(request_json)).value_or(json());
  if (!request.is_object() || !request.contains("method") || !request["method"].is_string()) return MCPH_ERR_INVALID_ARGUMENT;
  const char* capability = capability_for(request["method"].get_ref<const std::string&>());
  if (capability == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  if (!request.contains("params")) request["params"] = json::object();
  if (!request["params"].is_object()) return MCPH_ERR_INVALID_ARGUMENT;
  for (auto it = request.begin(); it != request.end();) {  // only {method, params} travel
    it = it.key() == "method" || it.key() == "params" ? std::next(it) : request.erase(it);
  }
  if (!call->client_capabilities || !call->client_capabilities->contains(capability)) {
    if (call->missing_capability.empty()) call->missing_capability = capability;
    return MCPH_ERR_UNSUPPORTED;
  }
  call->input_requests[std::string(view(key))] = std::move(request);
  return MCPH_OK;
}

mcph_status call_input_response(mcph_call* call, mcph_str key, mcph_sink sink, void* user) {
  if (call == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  auto it = call->input_responses.find(std::string(view(key)));
  if (it == call->input_responses.end()) return MCPH_ERR_NOT_FOUND;
  give(sink, user, it->dump());
  return MCPH_OK;
}

constexpr size_t kMaxStateBytes = 16 * 1024;

mcph_status call_set_state(mcph_call* call, mcph_str state) {
  if (call == nullptr || state.len > kMaxStateBytes) return MCPH_ERR_INVALID_ARGUMENT;
  call->next_state.emplace(view(state));
  return MCPH_OK;
}

mcph_status call_state(mcph_call* call, mcph_sink sink, void* user) {
  if (call == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  if (!call->state) return MCPH_ERR_NOT_FOUND;
  give(sink, user, *call->state);
  return MCPH_OK;
}

mcph_status register_user_credential(mcph_host_instance* hi, const mcph_user_credential_def* def) {
  if (hi == nullptr || def == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  if (!registering(hi, "register_user_credential")) return MCPH_ERR_FAILED_PRECONDITION;
  mcph_user_credential_def d{};
  std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
  UserCredential c{std::string(view(d.key)), std::string(view(d.label)), std::string(view(d.help)), d.secret};
  if (!valid_tool_name(c.key) || c.label.empty()) {
    fail_registration(hi, "user credential '" + c.key + "': needs a key (A-Z a-z 0-9 _ . -) and a label");
    return MCPH_ERR_INVALID_ARGUMENT;
  }
  if (std::any_of(hi->user_credentials.begin(), hi->user_credentials.end(), [&](const auto& u) { return u.key == c.key; })) {
    fail_registration(hi, "user credential '" + c.key + "' is declared twice");
    return MCPH_ERR_INVALID_ARGUMENT;
  }
  hi->user_credentials.push_back(std::move(c));
  return MCPH_OK;
}

mcph_status register_credential_check(mcph_host_instance* hi, mcph_tool_handler check, void* user) {
  if (hi == nullptr || check == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  if (!registering(hi, "register_credential_check")) return MCPH_ERR_FAILED_PRECONDITION;
  if (hi->has_credential_check) {
    fail_registration(hi, "register_credential_check: an instance has one credential check");
    return MCPH_ERR_INVALID_ARGUMENT;
  }
  hi->credential_check = check;
  hi->credential_check_user = user;
  hi->has_credential_check = true;
  return MCPH_OK;
}

mcph_status user_credential(mcph_host_instance* hi, mcph_str principal, mcph_str key, mcph_sink sink, void* user) {
  if (hi == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  if (hi->services.users == nullptr || principal.len == 0) return MCPH_ERR_NOT_FOUND;
  const auto caller = hi->services.users->find(std::string(view(principal)));
  if (!caller) return MCPH_ERR_NOT_FOUND;
  auto inst = caller->credentials.find(hi->name);
  if (inst == caller->credentials.end()) return MCPH_ERR_NOT_FOUND;
  auto v = inst->second.find(std::string(view(key)));
  if (v == inst->second.end() || v->second.empty()) return MCPH_ERR_NOT_FOUND;
  hi->caller_secrets(*caller);  // its secret values are the instance's secrets from now on
  give(sink, user, v->second);
  return MCPH_OK;
}

mcph_status declare_credential(mcph_host_instance* hi, mcph_str key, bool secret) {
  if (hi == nullptr || key.len == 0) return MCPH_ERR_INVALID_ARGUMENT;
  if (!registering(hi, "declare_credential")) return MCPH_ERR_FAILED_PRECONDITION;
  if (secret) {
    hi->public_credentials.erase(std::string(view(key)));
  } else {
    hi->public_credentials.insert(std::string(view(key)));
  }
  return MCPH_OK;
}

void resource_updated(mcph_host_instance* hi, mcph_str uri) {
  if (hi == nullptr) return;
  std::shared_lock lock(hi->listener_mutex);
  if (hi->listener != nullptr) hi->listener->resource_updated(std::string(view(uri)));
}

mcph_status call_continue_as_task(mcph_call* call, mcph_str handle) {
  if (call == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  if (!call->may_hand_over || call->host == nullptr || call->host->services.tasks == nullptr) return MCPH_ERR_UNSUPPORTED;
  if (handle.len == 0 || handle.len > 128) return MCPH_ERR_INVALID_ARGUMENT;
  call->task_handle = std::string(view(handle));
  return MCPH_OK;
}

mcph_status task_update(mcph_host_instance* hi, mcph_str handle, mcph_str update_json) {
  if (hi == nullptr || handle.len == 0) return MCPH_ERR_INVALID_ARGUMENT;
  if (hi->services.tasks == nullptr) return MCPH_ERR_UNSUPPORTED;
  auto update = json_text::parse(view(update_json));
  if (!update || !update->is_object()) return MCPH_ERR_INVALID_ARGUMENT;
  redact_json(*update, hi->secrets.all());  // what a client will read, like a result
  return hi->services.tasks->update(hi->name, std::string(view(handle)), *update);
}

mcph_status task_get(mcph_host_instance* hi, mcph_str handle, mcph_sink sink, void* user) {
  if (hi == nullptr || handle.len == 0) return MCPH_ERR_INVALID_ARGUMENT;
  if (hi->services.tasks == nullptr) return MCPH_ERR_UNSUPPORTED;
  json out;
  const mcph_status st = hi->services.tasks->get(hi->name, std::string(view(handle)), out);
  if (st == MCPH_OK) give(sink, user, json_text::dump(out));
  return st;
}

// Finds `pointer` in `doc_text`: *found points into the current handler's parsed input, or
// into `parsed` when the text had to be parsed here. NOT_FOUND / INVALID_ARGUMENT as
// documented in abi.h.
mcph_status find(mcph_str doc_text, mcph_str pointer, std::optional<json>& parsed, const json*& found) {
  const json* doc = ParsedInput::of(doc_text.data, doc_text.len);
  if (doc == nullptr) {
    if (!(parsed = json_text::parse(view(doc_text)))) return MCPH_ERR_INVALID_ARGUMENT;
    doc = &*parsed;
  }
  const std::string_view p = view(pointer);
  if (!p.empty() && p[0] != '/') return MCPH_ERR_INVALID_ARGUMENT;
  // A member of the top object ("/text": what handlers ask for) needs no json_pointer.
  if (doc->is_object() && p.size() > 1 && p.find_first_of("/~", 1) == std::string_view::npos) {
    const auto& members = doc->get_ref<const json::object_t&>();
    const auto it = members.find(p.substr(1));
    if (it == members.end()) return MCPH_ERR_NOT_FOUND;
    found = &it->second;
    return MCPH_OK;
  }
  try {
    json::json_pointer jp{std::string(p)};
    if (!doc->contains(jp)) return MCPH_ERR_NOT_FOUND;
    found = &doc->at(jp);
  } catch (const json::exception&) {
    return MCPH_ERR_INVALID_ARGUMENT;
  }
  return MCPH_OK;
}

mcph_status json_get(mcph_str doc_text, mcph_str pointer, mcph_sink sink, void* user) {
  std::optional<json> parsed;
  const json* value = nullptr;
  const mcph_status st = find(doc_text, pointer, parsed, value);
  if (st == MCPH_OK) give(sink, user, json_text::dump(*value));
  return st;
}

mcph_status json_string(mcph_str doc_text, mcph_str pointer, mcph_sink sink, void* user) {
  std::optional<json> parsed;
  const json* value = nullptr;
  const mcph_status st = find(doc_text, pointer, parsed, value);
  if (st != MCPH_OK) return st;
  if (!value->is_string()) return MCPH_ERR_INVALID_ARGUMENT;
  give(sink, user, value->get_ref<const std::string&>());
  return MCPH_OK;
}

void json_quote(mcph_str text, mcph_sink sink, void* user) {
  // Invalid UTF-8 becomes U+FFFD rather than an exception.
  give(sink, user, json_text::dump(json(std::string(view(text)))));
}

}  // namespace

namespace {
thread_local const ParsedInput* t_input = nullptr;  // the innermost on this thread
}  // namespace

ParsedInput::ParsedInput(const std::string& text, const json* value)
    : text_(text.data()), size_(text.size()), value_(value), outer_(t_input) {
  t_input = this;
}

ParsedInput::~ParsedInput() { t_input = outer_; }

const json* ParsedInput::of(const char* text, size_t size) {
  const ParsedInput* in = t_input;
  return in != nullptr && in->value_ != nullptr && text == in->text_ && size == in->size_ ? in->value_ : nullptr;
}

std::string replica_id() {
  std::lock_guard lock(replica_mutex);
  if (replica.empty()) {
    unsigned char bytes[8];
    std::random_device rd;
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
    static const char* hex = "0123456789abcdef";
    for (unsigned char b : bytes) (replica += hex[b >> 4]) += hex[b & 15];
  }
  return replica;
}

void set_replica_id(const std::string& id) {
  std::lock_guard lock(replica_mutex);
  replica = id;
}

const mcph_host_api& host_api() {
  static const mcph_host_api api = {
      sizeof(mcph_host_api), MCPH_ABI_MAJOR, MCPH_ABI_MINOR,
      {kVersion, std::char_traits<char>::length(kVersion)},
      register_tool, set_create_error, log,
      call_result, call_error, call_progress, call_log, call_cancelled, credential, call_principal,
      state_get, state_put, state_delete, state_list,
      http_request,
      json_get, json_string, json_quote,
      // 1.1
      register_resource, register_prompt,
      call_client_capabilities, call_request_input, call_input_response, call_set_state, call_state,
      resource_updated, register_user_credential,
      // 1.2
      register_credential_check, user_credential,
      // 1.3
      declare_credential,
      state_put_if,
      lease_acquire,
      lease_release,
      call_continue_as_task, task_update, task_get,
      // 1.4
      call_trace_context,
  };
  return api;
}

}  // namespace mcph::plugins
