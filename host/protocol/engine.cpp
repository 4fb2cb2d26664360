#include "protocol/engine.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>

#include <spdlog/spdlog.h>

#include "version.hpp"

namespace mcph::protocol {
namespace {

// RFC 5424 levels in MCP's spelling, indexed by mcph_log_level.
constexpr std::array<const char*, 8> kLevels = {"debug", "info", "notice", "warning",
                                                "error", "critical", "alert", "emergency"};
constexpr const char* kMetaVersion = "io.modelcontextprotocol/protocolVersion";
constexpr const char* kMetaCapabilities = "io.modelcontextprotocol/clientCapabilities";
constexpr const char* kMetaLogLevel = "io.modelcontextprotocol/logLevel";
constexpr const char* kMetaServerInfo = "io.modelcontextprotocol/serverInfo";
// Lists do not change while the host runs; "private" is the safe scope (mcp-spec §2.6).
constexpr int kListTtlMs = 60000;

int level_index(const json& name) {
  if (!name.is_string()) return -1;
  for (size_t i = 0; i < kLevels.size(); ++i) {
    if (name == kLevels[i]) return static_cast<int>(i);
  }
  return -1;
}

// Sends progress and log notifications for one call, in order, and none after it ended.
class CallReporter final : public plugins::CallEvents {
 public:
  CallReporter(std::shared_ptr<ReplyChannel> channel, json token, bool with_message, int min_level)
      : channel_(std::move(channel)), token_(std::move(token)), with_message_(with_message),
        min_level_(min_level) {}

  void progress(double progress, double total, std::string_view message) override {
    if (token_.is_null() || !std::isfinite(progress)) return;
    std::lock_guard lock(mutex_);
    if (done_ || progress <= last_) return;  // progress MUST increase (mcp-spec §2.7)
    last_ = progress;
    json params{{"progressToken", token_}, {"progress", progress}};
    if (total > 0 && std::isfinite(total)) params["total"] = total;
    if (with_message_ && !message.empty()) params["message"] = std::string(message);
    channel_->send(make_notification("notifications/progress", std::move(params)));
  }

  void log(mcph_log_level level, std::string_view logger, const json& data) override {
    if (min_level_ < 0 || level < min_level_) return;
    level = std::clamp<mcph_log_level>(level, 0, kLevels.size() - 1);
    json params{{"level", kLevels[level]}, {"data", data}};
    if (!logger.empty()) params["logger"] = std::string(logger);
    std::lock_guard lock(mutex_);
    if (done_) return;
    channel_->send(make_notification("notifications/message", std::move(params)));
  }

  void close() {
    std::lock_guard lock(mutex_);
    done_ = true;
  }

 private:
  std::shared_ptr<ReplyChannel> channel_;
  json token_;
  bool with_message_;
  int min_level_;  // -1: the client did not ask for logs
  std::mutex mutex_;
  double last_ = -std::numeric_limits<double>::infinity();  // guarded by mutex_
  bool done_ = false;                                       // guarded by mutex_
};

RpcError invalid_params(std::string message) { return {code::kInvalidParams, std::move(message), nullptr}; }

}  // namespace

std::optional<RpcError> check_modern_meta(const json& meta, int* log_level) {
  const json& v = meta.value(kMetaVersion, json());
  if (!v.is_string()) return invalid_params("_meta." + std::string(kMetaVersion) + " must be a string");
  if (v != kModernVersion) {
    return RpcError{code::kUnsupportedVersion, "Unsupported protocol version",
                    json{{"supported", json::array({kModernVersion})}, {"requested", v}}};
  }
  auto caps = meta.find(kMetaCapabilities);
  if (caps == meta.end() || !caps->is_object()) {
    return invalid_params("missing required _meta." + std::string(kMetaCapabilities) + " (an object; {} for none)");
  }
  if (auto level = meta.find(kMetaLogLevel); level != meta.end()) {
    const int l = level_index(*level);
    if (l < 0) return invalid_params("_meta." + std::string(kMetaLogLevel) + " is not a log level");
    if (log_level != nullptr) *log_level = l;
  }
  return std::nullopt;
}

struct Session::InFlight {
  mcph_call call;  // call.cancelled is set only by the client's notifications/cancelled
};

bool Session::initialized() const {
  std::lock_guard lock(mutex_);
  return initialized_;
}

std::string Session::version() const {
  std::lock_guard lock(mutex_);
  return version_;
}

void Session::cancel(const json& request_id) {
  std::lock_guard lock(mutex_);
  auto it = in_flight_.find(request_id.dump());
  // Unknown or finished ids MAY be ignored (mcp-spec §2.8).
  if (it != in_flight_.end()) it->second->call.cancelled = true;
}

struct Engine::Request {
  json id;
  std::string method;
  json params = json::object();
  json meta;              // params._meta, null when absent
  bool modern = false;    // served statelessly under 2026-07-28
  std::string version;    // the revision whose rules apply
  int log_level = -1;     // minimum level of notifications/message, -1 for none
  std::shared_ptr<ReplyChannel> channel;
};

struct Engine::Prepared {
  json response;          // ready answer (null for none) unless `call` is set
  Request req;
  const plugins::Registry::Entry* entry = nullptr;
  std::string arguments;  // validated arguments, as JSON text for the plugin
  std::string key;        // in-flight key (the id's JSON text)
  std::shared_ptr<Session::InFlight> call;
};

Engine::Engine(const plugins::Registry& registry, EngineOptions options)
    : registry_(registry), options_(options), pool_(options.max_concurrent_calls) {
  validators_.reserve(registry_.tools().size());
  for (const auto& entry : registry_.tools()) {
    auto schema = Schema::compile(entry.tool->input_schema);
    if (!schema) {
      // The plugin gave a schema we cannot enforce: refuse every call rather than pass
      // unchecked input. The validator (mcp-host plugin check) reports it earlier.
      spdlog::error("tool '{}': input schema rejected: {}", entry.public_name, schema.error());
      validators_.push_back(nullptr);
      continue;
    }
    validators_.push_back(*schema);
  }
}

Engine::~Engine() { pool_.stop(); }

json Engine::server_info(const std::string& version) const {
  json info{{"name", "mcp-host"}, {"version", kVersion}};
  if (version >= "2025-06-18") info["title"] = "mcp-host";
  return info;
}

json Engine::capabilities() const {
  return json{{"tools", json{{"listChanged", false}}}, {"logging", json::object()}};
}

json Engine::handle(const json& message, Session& session, const std::shared_ptr<ReplyChannel>& channel) {
  if (message.is_array()) return handle_batch(message, session, channel);
  Prepared p = prepare(message, session, channel);
  return p.call ? execute(p, session) : std::move(p.response);
}

void Engine::submit(const json& message, const std::shared_ptr<Session>& session,
                    const std::shared_ptr<ReplyChannel>& channel) {
  auto finish = [channel](const json& r) {
    if (!r.is_null()) channel->send(r);
    channel->close();
  };
  if (message.is_array()) {  // 2025-03-26 batches: rare; run whole on a worker
    pool_.post([this, message, session, channel, finish] { finish(handle_batch(message, *session, channel)); });
    return;
  }
  auto p = std::make_shared<Prepared>(prepare(message, *session, channel));
  if (!p->call) return finish(p->response);
  pool_.post([this, p, session, finish] { finish(execute(*p, *session)); });
}

json Engine::handle_batch(const json& batch, Session& session, const std::shared_ptr<ReplyChannel>& channel) {
  // Batches exist only in 2025-03-26 (added there, removed in 2025-06-18; mcp-spec §1).
  if (session.version() != "2025-03-26") {
    return make_error(nullptr, {code::kInvalidRequest, "Invalid Request: JSON-RPC batches are only accepted in protocol version 2025-03-26", nullptr});
  }
  if (batch.empty()) return make_error(nullptr, {code::kInvalidRequest, "Invalid Request: empty batch", nullptr});
  json out = json::array();
  for (const auto& m : batch) {
    json r = m.is_object() ? handle(m, session, channel)
                           : make_error(nullptr, {code::kInvalidRequest, "Invalid Request: batch entries must be objects", nullptr});
    if (!r.is_null()) out.push_back(std::move(r));
  }
  return out.empty() ? json() : out;
}

Engine::Prepared Engine::prepare(const json& m, Session& session, const std::shared_ptr<ReplyChannel>& channel) {
  Prepared p;
  if (!m.is_object()) {
    p.response = make_error(nullptr, {code::kInvalidRequest, "Invalid Request: expected a JSON-RPC object", nullptr});
    return p;
  }
  auto id_it = m.find("id");
  const bool has_id = id_it != m.end();
  const json id = has_id && valid_id(*id_it) ? *id_it : json();
  if (has_id && id.is_null()) {
    p.response = make_error(nullptr, {code::kInvalidRequest, "Invalid Request: id must be a string or an integer", nullptr});
    return p;
  }
  auto version_it = m.find("jsonrpc");
  if (version_it == m.end() || *version_it != "2.0") {
    p.response = make_error(id, {code::kInvalidRequest, "Invalid Request: jsonrpc must be \"2.0\"", nullptr});
    return p;
  }
  auto method_it = m.find("method");
  if (method_it == m.end()) {
    if (has_id && (m.contains("result") || m.contains("error"))) return p;  // a response: we sent no request
    p.response = make_error(id, {code::kInvalidRequest, "Invalid Request: method is missing", nullptr});
    return p;
  }
  if (!method_it->is_string()) {
    p.response = make_error(id, {code::kInvalidRequest, "Invalid Request: method must be a string", nullptr});
    return p;
  }
  if (!has_id) {
    on_notification(m, session);
    return p;
  }

  Request& req = p.req;
  req.id = id;
  req.method = method_it->get<std::string>();
  req.channel = channel;
  if (auto params = m.find("params"); params != m.end() && !params->is_null()) {
    if (!params->is_object()) {
      p.response = make_error(id, invalid_params("params must be an object"));
      return p;
    }
    req.params = *params;
  }
  if (auto meta = req.params.find("_meta"); meta != req.params.end() && meta->is_object()) req.meta = *meta;

  if (auto err = select_era(req, session)) {
    p.response = make_error(id, *err);
    return p;
  }
  if (req.method == "tools/call") {
    if (auto err = begin_call(req, session, p)) p.response = make_error(id, *err);
    return p;
  }
  p.response = dispatch(req, session);
  return p;
}

void Engine::on_notification(const json& m, Session& session) {
  const std::string& method = m["method"].get_ref<const std::string&>();
  if (method != "notifications/cancelled") return;  // initialized, progress, roots: nothing to do
  auto params = m.find("params");
  if (params == m.end() || !params->is_object() || !params->contains("requestId")) return;
  session.cancel((*params)["requestId"]);
}

std::optional<RpcError> Engine::select_era(Request& req, Session& session) const {
  if (req.meta.is_object() && req.meta.contains(kMetaVersion)) {
    // Modern request: served statelessly under 2026-07-28 (mcp-spec §2.1, §2.2).
    if (auto err = check_modern_meta(req.meta, &req.log_level)) return err;
    req.modern = true;
    req.version = kModernVersion;
    return std::nullopt;  // a modern initialize is answered -32601: removed in 2026-07-28
  }
  if (req.method == "initialize") return std::nullopt;  // opens a legacy session
  if (session.initialized()) {
    req.version = session.version();
    req.log_level = session.log_level_.load();
    return std::nullopt;
  }
  if (req.method == "ping") return std::nullopt;  // allowed before initialize
  if (req.method == "server/discover") {
    return invalid_params("server/discover needs _meta." + std::string(kMetaVersion) + " = \"" + kModernVersion + "\"");
  }
  // Neither a session nor the 2026-07-28 _meta: the required _meta key is missing (§2.1).
  return invalid_params("missing _meta." + std::string(kMetaVersion) + " = \"" + kModernVersion +
                        "\" (or send initialize first, for protocol 2025-11-25 and earlier)");
}

json Engine::dispatch(Request& req, Session& session) {
  json result;
  std::optional<RpcError> err;
  const std::string& m = req.method;
  if (m == "initialize" && !req.modern) {
    result = initialize(req, session);
    if (result.is_null()) err = invalid_params("initialize: params.protocolVersion (a string) is required");
  } else if (m == "tools/list") {
    err = list_tools(req, result);
  } else if (req.modern && m == "server/discover") {
    result = discover();
  } else if (!req.modern && m == "ping") {
    result = json::object();
  } else if (!req.modern && m == "logging/setLevel") {
    int level = level_index(req.params.value("level", json()));
    if (level < 0) {
      err = invalid_params("logging/setLevel: level must be one of debug, info, notice, warning, error, critical, alert, emergency");
    } else {
      session.log_level_ = level;
      result = json::object();
    }
  } else if (!req.modern && m == "server/discover") {
    err = invalid_params("server/discover needs _meta." + std::string(kMetaVersion) + " = \"" + kModernVersion + "\"");
  } else {
    err = RpcError{code::kMethodNotFound, "Method not found: " + m, nullptr};
  }
  if (err) return make_error(req.id, *err);
  finish_result(result, req);
  return make_result(req.id, std::move(result));
}

json Engine::initialize(Request& req, Session& session) {
  const json& requested = req.params.value("protocolVersion", json());
  if (!requested.is_string()) return json();
  // Negotiation: echo a version we support, else offer our newest legacy one (LIFE25N).
  auto it = std::find(kLegacyVersions.begin(), kLegacyVersions.end(), requested.get<std::string>());
  const std::string version = it != kLegacyVersions.end() ? *it : kLegacyVersions.front();
  {
    std::lock_guard lock(session.mutex_);
    session.initialized_ = true;
    session.version_ = version;
  }
  session.log_level_ = MCPH_LOG_INFO;
  req.version = version;
  return json{{"protocolVersion", version}, {"capabilities", capabilities()}, {"serverInfo", server_info(version)}};
}

json Engine::discover() const {
  return json{{"supportedVersions", json::array({kModernVersion})},
              {"capabilities", capabilities()},
              {"ttlMs", kListTtlMs},
              {"cacheScope", "private"}};
}

std::optional<RpcError> Engine::list_tools(const Request& req, json& result) const {
  size_t start = 0;
  if (auto c = req.params.find("cursor"); c != req.params.end() && !c->is_null()) {
    const std::string* s = c->is_string() ? &c->get_ref<const std::string&>() : nullptr;
    auto [ptr, ec] = s ? std::from_chars(s->data(), s->data() + s->size(), start)
                       : std::from_chars_result{nullptr, std::errc::invalid_argument};
    if (!s || s->empty() || ec != std::errc() || ptr != s->data() + s->size() || start > registry_.tools().size()) {
      return invalid_params("tools/list: invalid cursor");
    }
  }
  const auto& all = registry_.tools();
  const size_t end = std::min(all.size(), start + options_.page_size);
  json tools = json::array();
  const std::string& v = req.version;
  for (size_t i = start; i < end; ++i) {
    const auto& e = all[i];
    const auto& t = *e.tool;
    json j{{"name", e.public_name}};
    if (v >= "2025-06-18" && !t.title.empty()) j["title"] = t.title;
    if (!t.description.empty()) j["description"] = t.description;
    j["inputSchema"] = t.input_schema;
    // outputSchema arrived in 2025-06-18, whose schema requires an object root.
    if (v >= "2025-06-18" && t.output_schema.is_object() &&
        (req.modern || t.output_schema.value("type", json()) == "object")) {
      j["outputSchema"] = t.output_schema;
    }
    if (v >= "2025-03-26" && t.annotations.is_object()) j["annotations"] = t.annotations;
    tools.push_back(std::move(j));
  }
  result = json{{"tools", std::move(tools)}};
  if (end < all.size()) result["nextCursor"] = std::to_string(end);
  if (req.modern) {
    result["ttlMs"] = kListTtlMs;
    result["cacheScope"] = "private";
  }
  return std::nullopt;
}

std::optional<RpcError> Engine::begin_call(Request& req, Session& session, Prepared& p) {
  const json& name = req.params.value("name", json());
  if (!name.is_string()) return invalid_params("tools/call: params.name (a string) is required");
  p.entry = registry_.find(name.get_ref<const std::string&>());
  if (p.entry == nullptr) return invalid_params("Unknown tool: " + name.get<std::string>());
  json args = req.params.value("arguments", json::object());
  if (args.is_null()) args = json::object();
  if (!args.is_object()) return invalid_params("tools/call: params.arguments must be an object");

  // A bad argument is a tool error the model can read and correct (mcp-spec §2.4).
  const auto& validator = validators_[static_cast<size_t>(p.entry - registry_.tools().data())];
  std::string problem = validator ? validator->validate(args) : "the tool's input schema is invalid; see the host log";
  if (!problem.empty()) {
    json r = shape_result(plugins::error_result("Invalid arguments for tool '" + p.entry->public_name + "': " + problem), req.version);
    finish_result(r, req);
    p.response = make_result(req.id, std::move(r));
    return std::nullopt;
  }
  p.arguments = args.dump();
  p.key = req.id.dump();
  p.call = std::make_shared<Session::InFlight>();
  {
    std::lock_guard lock(session.mutex_);
    if (!session.in_flight_.emplace(p.key, p.call).second) {
      p.call.reset();
      return RpcError{code::kInvalidRequest, "Invalid Request: id " + p.key + " is already used by a request in flight", nullptr};
    }
  }
  return std::nullopt;
}

json Engine::execute(Prepared& p, Session& session) {
  const Request& req = p.req;
  json token;
  if (auto t = req.meta.find("progressToken"); req.meta.is_object() && t != req.meta.end() &&
                                               (t->is_string() || t->is_number_integer())) {
    token = *t;
  }
  CallReporter reporter(req.channel, token, req.version >= "2025-03-26", req.log_level);
  mcph_call& call = p.call->call;
  call.events = &reporter;
  const auto started = std::chrono::steady_clock::now();
  call.deadline = started + options_.call_timeout;

  running_.fetch_add(1);
  json result = p.entry->instance->call(*p.entry->tool, p.arguments, call);
  running_.fetch_sub(1);
  reporter.close();
  {
    std::lock_guard lock(session.mutex_);
    session.in_flight_.erase(p.key);
  }
  // A cancelled request gets no response (mcp-spec §2.8: no further messages).
  if (call.cancelled.load()) return json();
  if (result.value("isError", false) && std::chrono::steady_clock::now() >= call.deadline) {
    result = plugins::error_result("tool '" + p.entry->public_name + "' did not finish within " +
                                   std::to_string(options_.call_timeout.count()) + " ms and was cancelled");
  }
  result = shape_result(std::move(result), req.version);
  finish_result(result, req);
  return make_result(req.id, std::move(result));
}

json Engine::shape_result(json r, const std::string& version) const {
  auto structured = r.find("structuredContent");
  if (!r.contains("content") || !r["content"].is_array()) {
    json content = json::array();
    if (structured != r.end()) content.push_back(json{{"type", "text"}, {"text", structured->dump()}});
    r["content"] = std::move(content);
    structured = r.find("structuredContent");
  }
  if (structured != r.end()) {
    // structuredContent: none before 2025-06-18; objects only until 2026-07-28.
    if (version < "2025-06-18" || (version < kModernVersion && !structured->is_object())) r.erase(structured);
  }
  return r;
}

void Engine::finish_result(json& result, const Request& req) const {
  if (!req.modern) return;
  result["resultType"] = "complete";
  result["_meta"][kMetaServerInfo] = server_info(req.version);
}

}  // namespace mcph::protocol
