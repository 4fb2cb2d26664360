#include "protocol/engine.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <functional>
#include <future>
#include <tuple>
#include <limits>
#include <thread>

#include <spdlog/spdlog.h>

#include "json/bounded.hpp"
#include "services/crypto.hpp"
#include "tasks/task_channel.hpp"
#include "tasks/task_service.hpp"
#include "version.hpp"

namespace mcph::protocol {
namespace {

// RFC 5424 levels in MCP's spelling, indexed by mcph_log_level.
constexpr std::array<const char*, 8> kLevels = {"debug", "info", "notice", "warning",
                                                "error", "critical", "alert", "emergency"};
constexpr std::string_view kMetaLogLevel = "io.modelcontextprotocol/logLevel";
constexpr std::string_view kMetaServerInfo = "io.modelcontextprotocol/serverInfo";
// Legacy eras: how often one request may ask the client for input before we give up.
constexpr int kMaxInputRounds = 8;
// 2026-07-28: how long a client may take to answer an input_required result.
constexpr std::chrono::seconds kRequestStateTtl{3600};

// clientInfo's name and version, for telemetry (bounded: clients choose them).
void read_client_info(const json& info, std::string& name, std::string& version) {
  if (!info.is_object()) return;
  auto text = [&](const char* key) {
    auto v = info.find(key);
    return v != info.end() && v->is_string() ? v->get_ref<const std::string&>().substr(0, 128) : std::string();
  };
  name = text("name");
  version = text("version");
}

int level_index(const json& name) {
  if (!name.is_string()) return -1;
  for (size_t i = 0; i < kLevels.size(); ++i) {
    if (name == kLevels[i]) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

// Sends progress and log notifications for one call, in order, and none after it ended.
// (Outside the anonymous namespace: Session::InFlight holds one.)
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

namespace {

RpcError invalid_params(std::string message) { return {code::kInvalidParams, std::move(message), nullptr}; }

// -32021 for something only a client that declared the tasks extension may have.
RpcError needs_tasks_extension(std::string what) {
  return {code::kMissingClientCapability, std::move(what) + " needs the client capability extensions[\"" + std::string(tasks::kExtension) + "\"]",
          json{{"requiredCapabilities", {{"extensions", {{tasks::kExtension, json::object()}}}}}}};
}

// Where `item` sits in `list` (an instance's tools, resources or prompts).
template <typename T>
uint32_t index_in(const std::vector<T>& list, const T* item) {
  return static_cast<uint32_t>(item - list.data());
}

}  // namespace

std::optional<RpcError> check_modern_meta(const MetaView& meta, int* log_level, json* capabilities) {
  if (!meta.is_string(kMetaVersion, kModernVersion)) {
    auto v = meta.find(kMetaVersion);
    if (!v || !v->is_string()) return invalid_params("_meta." + std::string(kMetaVersion) + " must be a string");
    return RpcError{code::kUnsupportedVersion, "Unsupported protocol version",
                    json{{"supported", json::array({kModernVersion})}, {"requested", *v}}};
  }
  json caps;  // null for none ({}, as most clients send)
  if (!meta.is_empty_object(kMetaCapabilities)) {
    caps = meta.find(kMetaCapabilities).value_or(json());
    if (!caps.is_object()) {
      return invalid_params("missing required _meta." + std::string(kMetaCapabilities) + " (an object; {} for none)");
    }
  }
  if (auto level = meta.find(kMetaLogLevel)) {
    const int l = level_index(*level);
    if (l < 0) return invalid_params("_meta." + std::string(kMetaLogLevel) + " is not a log level");
    if (log_level != nullptr) *log_level = l;
  }
  if (capabilities != nullptr) *capabilities = std::move(caps);
  return std::nullopt;
}

struct Session::InFlight {
  mcph_call call;  // call.cancelled is set only by the client's notifications/cancelled
  std::function<void()> on_cancel;  // a subscriptions/listen stream: ends it
  std::atomic<bool> answered{false};  // its response went out (the handler's, or at the deadline)
  std::shared_ptr<CallReporter> reporter;
};

void Session::forget(const std::string& key, const std::shared_ptr<InFlight>& call) {
  std::lock_guard lock(mutex_);
  auto it = in_flight_.find(key);
  if (it != in_flight_.end() && it->second == call) in_flight_.erase(it);
}

Session::~Session() {
  if (observer_ != nullptr) observer_->session_done(version_, std::chrono::steady_clock::now() - started_);
}

bool Session::initialized() const {
  std::lock_guard lock(mutex_);
  return initialized_;
}

std::string Session::version() const {
  std::lock_guard lock(mutex_);
  return version_;
}

bool Session::may_be_asked() const { return may_be_asked_.load(std::memory_order_relaxed); }

void Session::set_client_capabilities(const json& caps) {
  client_capabilities_ = std::make_shared<const json>(caps.is_object() ? caps : json::object());
  const json& c = *client_capabilities_;
  may_be_asked_ = c.contains("elicitation") || c.contains("sampling") || c.contains("roots");
}

void Session::set_channel(std::shared_ptr<ReplyChannel> channel) {
  std::lock_guard lock(mutex_);
  channel_ = std::move(channel);
}

SessionState Session::state() const {
  std::lock_guard lock(mutex_);
  return SessionState{version_, *client_capabilities_, log_level_.load(), {subscriptions_.begin(), subscriptions_.end()}};
}

void Session::cancel(const json& request_id) {
  std::function<void()> end_stream;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(json_text::dump(request_id));
    // Unknown or finished ids MAY be ignored (mcp-spec §2.8).
    if (it == in_flight_.end()) return;
    it->second->call.cancelled = true;
    if (it->second->on_cancel) {
      end_stream = std::move(it->second->on_cancel);
      in_flight_.erase(it);
    }
  }
  if (end_stream) end_stream();
}

struct Engine::Request {
  json id;
  std::string method;
  // An object (the request's, or {} when it had none), without its _meta. A call to a
  // child process drops it once it has started (Engine::start).
  json params;
  json progress_token;    // params._meta.progressToken (a string or an integer), or null
  bool modern = false;    // served statelessly under 2026-07-28
  std::string version;    // the revision whose rules apply
  int log_level = -1;     // minimum level of notifications/message, -1 for none
  std::shared_ptr<const json> client_capabilities;  // an object, or null for none
  std::shared_ptr<ReplyChannel> channel;
  std::shared_ptr<const Catalog> catalog;  // what it is served from, kept while it runs
  std::string trace;      // its trace context (RequestRecord::trace), or ""
  const RequestRecord* record = nullptr;  // the observer's; valid until it is prepared (or its task started)
};

// A request that runs plugin code, ready to go to a worker.
struct Engine::Prepared {
  json response;          // ready answer (null for none) unless `call` is set
  Request req;
  enum class Kind { kTool, kRead, kPrompt, kComplete } kind = Kind::kTool;
  const plugins::Instance* instance = nullptr;
  plugins::HandlerRef handler;
  std::string what;       // e.g. "tool 'echo'", for messages
  std::string name;       // the tool or prompt's public name, or the URI
  const plugins::Resource* resource = nullptr;  // kRead
  std::string input;      // validated input, as JSON text for the plugin
  json input_value;       // the same, parsed (the host API reads it: plugins::ParsedInput)
  json input_responses;   // 2026-07-28 retries: the client's answers (null for none)
  std::optional<std::string> state;       // ... and the state unsealed from requestState
  std::string key;        // in-flight key (the id's JSON text; "task:<id>" for a task)
  std::shared_ptr<Session::InFlight> call;
  const plugins::Registry::Entry* tool = nullptr;  // kTool
  // MCP tasks: the task this call runs as (the client gets `task` at once), whether its
  // plugin may hand it over, and (legacy tasks/result) that the answer waits for a task.
  std::string task_id;
  json task;
  bool may_hand_over = false;
  bool awaits_task = false;
  bool listening = false;  // subscriptions/listen: the stream stays open, with no answer yet
  bool ready = false;      // the call has its input and caller (Engine::ready)

  void aim(Kind k, const plugins::Instance* i, plugins::HandlerRef h, std::string n, json in) {
    static constexpr const char* kWhat[] = {"tool", "resource", "prompt", "completion for"};
    kind = k;
    instance = i;
    handler = h;
    what = std::string(kWhat[static_cast<int>(k)]) + " '" + n + "'";
    name = std::move(n);
    input = json_text::dump(in);
    input_value = std::move(in);
  }
};

namespace {

// Whether a request's client declared the tasks extension (2026-07-28: per request).
bool declares_tasks(const std::shared_ptr<const json>& client_capabilities) {
  return client_capabilities && tasks::declares_extension(*client_capabilities);
}

// The tools' input schemas, compiled once per catalog.
std::vector<std::shared_ptr<const Schema>> compile_schemas(const plugins::Registry& registry) {
  std::vector<std::shared_ptr<const Schema>> out;
  out.reserve(registry.tools().size());
  for (const auto& entry : registry.tools()) {
    auto schema = Schema::compile(entry.tool->input_schema);
    if (!schema) {
      // The plugin gave a schema we cannot enforce: refuse every call rather than pass
      // unchecked input. The validator (mcp-host plugin check) reports it earlier.
      spdlog::error("tool '{}': input schema rejected: {}", entry.public_name, schema.error());
      out.push_back(nullptr);
      continue;
    }
    out.push_back(*schema);
  }
  return out;
}

}  // namespace

Engine::Engine(const plugins::Registry& registry, EngineOptions options)
    : Engine(std::shared_ptr<const plugins::Registry>(&registry, [](const plugins::Registry*) {}), options) {}

Engine::Engine(std::shared_ptr<const plugins::Registry> registry, EngineOptions options)
    : options_(options),
      sealer_(options.request_state_keys),
      scheduler_({options.max_concurrent_calls, options.max_queued_calls}) {
  swap(std::move(registry));
  if (options_.events != nullptr) {
    events_ = options_.events->subscribe([this](std::string_view topic, std::string_view body) {
      if (topic == kResourceUpdated) notify_subscribers(std::string(body));
    });
  }
}

Engine::~Engine() {
  // Calls started on other processes finish on their readers' threads, with this engine.
  // (Each ends by its deadline: past it, its process is ended.)
  while (started_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  end_streams();
  for (const auto& inst : catalog()->registry->instances()) inst->set_listener(nullptr);  // waits for a running notice
  scheduler_.stop();
}

std::shared_ptr<const Engine::Catalog> Engine::catalog() const {
  std::lock_guard lock(catalog_mutex_);
  return catalog_;
}

std::vector<std::string> Engine::swap(std::shared_ptr<const plugins::Registry> next) {
  auto fresh = std::make_shared<const Catalog>(Catalog{next, compile_schemas(*next)});
  // Fairness: by default one instance may run three quarters of the calls at once, so a
  // flood of slow calls to one plugin always leaves threads for the others.
  const size_t default_cap = std::max<size_t>(1, (options_.max_concurrent_calls * 3 + 3) / 4);
  for (const auto& inst : next->instances()) {
    const int cap = inst->config().max_concurrent_calls;
    scheduler_.set_cap(inst.get(), cap > 0 ? static_cast<size_t>(cap) : default_cap);
    inst->set_listener(this);
  }
  std::shared_ptr<const Catalog> before;
  {
    std::lock_guard lock(catalog_mutex_);
    before = std::exchange(catalog_, fresh);
  }
  if (!before) return {};
  for (const auto& inst : before->registry->instances()) {
    if (next->instance(inst->name()) != inst.get()) inst->set_listener(nullptr);
  }
  // Which lists a client would now see differently, and who is told.
  struct Watched {
    const char* name;
    std::vector<const char*> methods;
    Listeners::List list;
  };
  const Watched watched[] = {{"tools", {"tools/list"}, Listeners::List::kTools},
                             {"prompts", {"prompts/list"}, Listeners::List::kPrompts},
                             {"resources", {"resources/list", "resources/templates/list"}, Listeners::List::kResources}};
  std::vector<std::string> changed;
  for (const auto& w : watched) {
    if (std::none_of(w.methods.begin(), w.methods.end(), [&](const char* m) { return whole_list(before, m) != whole_list(fresh, m); })) continue;
    changed.push_back(w.name);
    const std::string method = std::string("notifications/") + w.name + "/list_changed";
    tell_sessions(make_notification(method.c_str(), json::object()), [](const Session&) { return true; });
    listeners_.list_changed(w.list);
  }
  return changed;
}

json Engine::whole_list(const std::shared_ptr<const Catalog>& catalog, const std::string& method) const {
  Request req;
  req.method = method;
  req.version = kLegacyVersions.front();  // shows the most (titles, annotations, task support)
  req.catalog = catalog;
  json all = json::array();
  for (;;) {
    json page;
    if (list(req, page)) break;
    for (auto& [key, value] : page.items()) {
      if (value.is_array()) all.insert(all.end(), value.begin(), value.end());
    }
    if (!page.contains("nextCursor")) break;
    req.params["cursor"] = page["nextCursor"];
  }
  return all;
}

void Engine::resource_updated(const std::string& uri) {
  if (options_.events == nullptr) return notify_subscribers(uri);
  if (auto st = options_.events->publish(kResourceUpdated, uri); !st) {  // heard here already
    spdlog::warn("resource update of {} not sent to other replicas: {}", uri, st.error());
  }
}

void Engine::restore(const std::shared_ptr<Session>& session, const SessionState& state) {
  {
    std::lock_guard lock(session->mutex_);
    session->initialized_ = true;
    session->version_ = state.version;
    session->set_client_capabilities(state.client_capabilities);
    session->log_level_ = state.log_level;
    session->subscriptions_ = {state.subscriptions.begin(), state.subscriptions.end()};
    if (session->asked_prefix_ == "mcph-") session->asked_prefix_ = "mcph-" + crypto::hex(crypto::random_bytes(6)) + "-";
  }
  track(session);
}

size_t Engine::sessions_open() {
  std::lock_guard lock(sessions_mutex_);
  std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
  return sessions_.size();
}

void Engine::track(const std::shared_ptr<Session>& session) {
  std::lock_guard lock(sessions_mutex_);
  if (std::none_of(sessions_.begin(), sessions_.end(), [&](const auto& w) { return w.lock() == session; })) {
    sessions_.push_back(session);
  }
}

void Engine::tell_sessions(const json& notice, const std::function<bool(const Session&)>& wants) {
  std::vector<std::shared_ptr<ReplyChannel>> to;
  {
    std::lock_guard lock(sessions_mutex_);
    std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
    for (const auto& w : sessions_) {
      auto s = w.lock();
      if (!s) continue;
      std::lock_guard session_lock(s->mutex_);
      if (s->channel_ && wants(*s)) to.push_back(s->channel_);
    }
  }
  for (const auto& channel : to) channel->send(notice);  // outside the locks: a send may block
}

void Engine::notify_subscribers(const std::string& uri) {
  tell_sessions(make_notification("notifications/resources/updated", json{{"uri", uri}}),
                [&](const Session& s) { return s.subscriptions_.contains(uri); });
  listeners_.resource_updated(uri);
}

const json& Engine::server_info(const std::string& version) const {
  static const json titled{{"name", "mcp-host"}, {"version", kVersion}, {"title", "mcp-host"}};
  static const json plain{{"name", "mcp-host"}, {"version", kVersion}};
  return version >= "2025-06-18" ? titled : plain;  // (built once: every 2026-07-28 answer carries it)
}

// What this host offers depends on what the plugins registered: a capability without
// anything behind it would be a promise the methods then break (-32601).
json Engine::capabilities(const std::string& version, const plugins::Registry& registry) const {
  const bool modern = version == kModernVersion;
  // Lists change when the configuration is reloaded (host/reload/); clients are told.
  json c{{"tools", json{{"listChanged", true}}}, {"logging", json::object()}};
  if (options_.tasks != nullptr && modern) c["extensions"][tasks::kExtension] = json::object();
  if (options_.tasks != nullptr && !modern && version >= "2025-11-25") {
    c["tasks"] = json{{"list", json::object()}, {"cancel", json::object()}, {"requests", {{"tools", {{"call", json::object()}}}}}};
  }
  if (offers_prompts(registry)) c["prompts"] = json{{"listChanged", true}};
  if (offers_resources(registry)) {
    c["resources"] = json{{"listChanged", true}};
    // Legacy resources/subscribe; 2026-07-28 subscriptions/listen (resourceSubscriptions).
    c["resources"]["subscribe"] = true;
  }
  if (offers_completions(registry)) c["completions"] = json::object();
  return c;
}

bool Engine::wait_idle(std::chrono::steady_clock::time_point until) const {
  while (entered_.load() > 0) {  // rare and short at shutdown: a look every millisecond will do
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return scheduler_.wait_idle(until);
}

json Engine::handle(json message, Session& session, const std::shared_ptr<ReplyChannel>& channel) {
  const Entered entered(entered_);
  if (options_.observer == nullptr || !message.is_object()) return handle_unobserved(message, session, channel);
  const auto started = std::chrono::steady_clock::now();
  RequestRecord record = record_of(message, session, channel.get());
  options_.observer->request_started(record);
  json response = handle_unobserved(message, session, channel, &record);
  observe(record, response, started, *channel);
  return response;
}

json Engine::handle_unobserved(json& message, Session& session, const std::shared_ptr<ReplyChannel>& channel,
                               const RequestRecord* record) {
  std::shared_ptr<Session> shared = session.weak_from_this().lock();
  auto wait = [](auto start) {
    auto promise = std::make_shared<std::promise<json>>();
    auto answer = promise->get_future();
    start([promise](json r) { promise->set_value(std::move(r)); });
    return answer.get();
  };
  if (message.is_array()) {
    return wait([&](Done done) { run_batch(message, session, channel, std::move(done)); });
  }
  Prepared p = prepare_guarded(message, session, channel, record);
  if (p.awaits_task) return wait([&](Done done) { await_task(p.req, std::move(done)); });
  if (p.listening) return json();
  if (!p.call) return std::move(p.response);
  if (!p.task_id.empty()) return wait([&](Done done) { start_task(std::move(p), shared, std::move(done)); });
  if (!shared) return execute_guarded(p, session);
  // (Past its deadline the call counts as stuck and frees its slot; its answer is still the
  // one the handler returns, as this thread is the one that runs it.)
  if (auto entry = scheduler_.try_enter(p.instance, p.call->call.deadline, [] {})) {
    json r = execute_guarded(p, session);
    scheduler_.leave(entry);
    return r;
  }
  return wait([&](Done done) { schedule(std::make_shared<Prepared>(std::move(p)), shared, std::move(done)); });
}

void Engine::submit(json message, const std::shared_ptr<Session>& session,
                    const std::shared_ptr<ReplyChannel>& channel, Here here) {
  const Entered entered(entered_);
  auto finish = [channel](json r) {
    if (!r.is_null()) channel->send(r);
    channel->close();
  };
  if (options_.observer == nullptr || !message.is_object()) return submit_unobserved(here, message, session, channel, std::move(finish));
  const auto started = std::chrono::steady_clock::now();
  auto record = std::make_shared<RequestRecord>(record_of(message, *session, channel.get()));
  options_.observer->request_started(*record);
  submit_unobserved(here, message, session, channel, [this, record, started, channel, finish = std::move(finish)](json r) {
    observe(*record, r, started, *channel);
    finish(std::move(r));
  }, record.get());
}

void Engine::submit_unobserved(Here here, json& message, const std::shared_ptr<Session>& session,
                               const std::shared_ptr<ReplyChannel>& channel, Done finish, const RequestRecord* record) {
  if (message.is_array()) return run_batch(message, *session, channel, std::move(finish));
  Prepared p = prepare_guarded(message, *session, channel, record);
  if (p.awaits_task) return await_task(p.req, std::move(finish));
  if (p.listening) return;  // the channel stays open until the client ends the stream
  if (!p.call) return finish(std::move(p.response));
  if (!p.task_id.empty()) return start_task(std::move(p), session, std::move(finish));
  schedule(std::make_shared<Prepared>(std::move(p)), session, std::move(finish), here);
}

// What the closures of one scheduled call share: its deadline's, its worker's or the thread
// that hears its outcome. They capture this once (a shared_ptr) rather than each a copy of
// the call, its session and the transport's callback: every copy of a std::function is an
// allocation and a count on each shared_ptr it holds (~20 such copies per call before).
struct Engine::Flight {
  std::shared_ptr<Prepared> p;
  std::shared_ptr<Session> session;
  Done done;

  void finish(json r) {
    if (!p->call->answered.exchange(true)) done(std::move(r));
  }
};

void Engine::schedule(std::shared_ptr<Prepared> call, std::shared_ptr<Session> session, Done done, Here here) {
  auto f = std::make_shared<Flight>();
  f->p = std::move(call);
  f->session = std::move(session);
  f->done = std::move(done);
  Prepared& p = *f->p;
  const auto deadline = p.call->call.deadline;
  auto expired = [this, f] { expire(*f); };
  const bool local = p.instance->in_process();
  // A call to another process runs here only when it is alone on its instance (it then
  // looks for its answer without sleeping); with others in flight it joins them below.
  if ((here == Here::kAlways && (local || p.instance->in_flight() == 0)) || (here == Here::kInProcess && local)) {
    if (auto entry = scheduler_.try_enter(p.instance, deadline, expired)) {
      f->finish(execute_guarded(p, *f->session));
      scheduler_.leave(entry);
      return;
    }
  } else if (!local) {
    // A call to another process holds no thread while it waits: its frame goes out from
    // this thread (or, when its instance has no free slot, from a worker once it has), and
    // the thread that reads the child's answer finishes it.
    if (auto entry = scheduler_.try_enter(p.instance, deadline, expired)) return launch(f, entry);
    auto run = [this, f](const Scheduler::Entry& entry) { launch(f, entry); };
    if (!scheduler_.submit_detached(p.instance, deadline, std::move(run), std::move(expired))) busy(*f);
    return;
  }
  auto run = [this, f] { f->finish(execute_guarded(*f->p, *f->session)); };
  if (!scheduler_.submit(p.instance, deadline, std::move(run), std::move(expired))) busy(*f);
}

void Engine::expire(Flight& f) {
  Prepared& p = *f.p;
  if (p.call->answered.load()) return;
  p.call->reporter->close();
  f.session->forget(p.key, p.call);
  if (scheduler_.stopping()) return f.finish(late_answer(p, MCPH_ERR_UNAVAILABLE, "mcp-host is shutting down; " + p.what + " did not run"));
  f.finish(late_answer(p, MCPH_ERR_DEADLINE_EXCEEDED, p.what + " did not finish within " + std::to_string(timeout_of(p).count()) + " ms"));
}

// A call to another process, with a slot of its instance (`entry`): started, returning at
// once. Cancelled while it waited, it is over (no answer); when its process is not up, a
// worker waits for it.
void Engine::launch(const std::shared_ptr<Flight>& f, const Scheduler::Entry& entry) {
  Prepared& p = *f->p;
  if (!ready(p, *f->session)) {
    f->finish(json());
    return scheduler_.leave(entry);
  }
  if (start(f, entry)) return;
  scheduler_.leave(entry);
  auto wait = [this, f] { f->finish(execute_guarded(*f->p, *f->session)); };
  if (!scheduler_.submit(p.instance, p.call->call.deadline, std::move(wait), [this, f] { expire(*f); })) busy(*f);
}

void Engine::busy(Flight& f) {
  Prepared& p = *f.p;
  p.call->reporter->close();
  f.session->forget(p.key, p.call);
  f.finish(late_answer(p, MCPH_ERR_RESOURCE_EXHAUSTED,
                       "mcp-host is busy: too many calls are waiting for plugin instance '" + p.instance->name() +
                           "' (server.max_queued_calls); try again shortly"));
}

// Starts a ready call on its instance without waiting (plugins::Instance::start). The first
// round is settled on the thread that hears the outcome; a handler that asks a legacy client
// for input (which waits for the client) goes on with its next rounds on a worker. False
// when the instance cannot start it now.
bool Engine::start(const std::shared_ptr<Flight>& f, const Scheduler::Entry& entry) {
  Prepared& p = *f->p;
  // What the child's call does not need is freed now, by the thread that parsed it: freed
  // by the thread that hears the answer, each block would be a cross-thread free, and
  // mimalloc's owner thread walks those back one by one (9.7 % of the host's CPU at 64 in
  // flight, perf; 5.4 % after this). The request's params, and the input's parsed form (the child
  // parses its own copy; later rounds send the text again).
  p.req.params = nullptr;
  p.input_value = nullptr;
  p.call->call.input_value = nullptr;
  started_.fetch_add(1);
  // `done` lets go of the call (and with it the catalog it pins) before it counts the call
  // as over: the thread that ran it (an isolated instance's reader) may keep the closure a
  // while, and ~Engine returning must mean that nothing of the call is left. At shutdown the
  // host then drops the registry, which ends the instances; ending one flushes the answers
  // its reader holds. (A closure that kept the catalog kept the registry alive past that:
  // the host could exit with an answer unwritten.)
  auto done = [this, f = f, entry = entry]() mutable {  // (copies it may reset)
    Prepared& p = *f->p;
    Session& session = *f->session;
    bool settled = true;
    json answer = guarded(p, session, [&] {
      json out;
      settled = settle(p, out);
      return settled ? conclude(p, session, std::move(out)) : json();
    });
    if (settled) f->finish(std::move(answer));
    scheduler_.leave(entry);
    if (!settled) {
      auto rounds = [this, f] {
        f->finish(guarded(*f->p, *f->session, [&] {
          json out;
          return ask(*f->p, *f->session, 1, out) ? execute(*f->p, *f->session, 2) : conclude(*f->p, *f->session, std::move(out));
        }));
      };
      if (!scheduler_.submit(p.instance, p.call->call.deadline, std::move(rounds), [this, f] { expire(*f); })) busy(*f);
    }
    entry.reset();  // (its job holds closures that hold the call)
    f.reset();
    started_.fetch_sub(1);
  };
  if (p.instance->start(p.what, p.handler, p.input, p.call->call, std::move(done))) return true;
  started_.fetch_sub(1);
  return false;
}

// The answer for a call that did not get one from its handler: at its deadline, or when it
// could not be queued. Tools answer with a tool error the model can read, the rest with a
// JSON-RPC error.
json Engine::late_answer(Prepared& p, mcph_status status, std::string text) const {
  mcph_call late;
  late.has_outcome = late.is_error = true;
  late.error_status = status;
  late.error_text = std::move(text);
  return answer(p, late);
}

Engine::Prepared Engine::prepare_guarded(json& message, Session& session, const std::shared_ptr<ReplyChannel>& channel,
                                         const RequestRecord* record) {
  try {
    return prepare(message, session, channel, record);
  } catch (const std::exception& e) {
    spdlog::error("internal error while reading a request: {}", e.what());
  } catch (...) {
    spdlog::error("internal error while reading a request");
  }
  Prepared p;
  const json* id = message.is_object() && message.contains("id") && valid_id(message["id"]) ? &message["id"] : nullptr;
  p.response = make_error(id ? *id : json(), {code::kInternalError, "Internal error", nullptr});
  return p;
}

template <typename Work>
json Engine::guarded(Prepared& p, Session& session, Work&& work) {
  try {
    return work();
  } catch (const std::exception& e) {
    spdlog::error("{}: internal error: {}", p.what, e.what());
  } catch (...) {
    spdlog::error("{}: internal error", p.what);
  }
  p.call->reporter->close();
  session.forget(p.key, p.call);
  return make_error(p.req.id, {code::kInternalError, "Internal error", nullptr});
}

json Engine::execute_guarded(Prepared& p, Session& session) {
  return guarded(p, session, [&] { return ready(p, session) ? execute(p, session, 1) : json(); });
}

// 2025-03-26 batches: their calls run concurrently, like single requests; the answers come
// back as one array, in the batch's order, once all are in.
void Engine::run_batch(json& batch, Session& session, const std::shared_ptr<ReplyChannel>& channel, Done done) {
  // Batches exist only in 2025-03-26 (added there, removed in 2025-06-18; mcp-spec §1).
  if (session.version() != "2025-03-26") {
    return done(make_error(nullptr, {code::kInvalidRequest, "Invalid Request: JSON-RPC batches are only accepted in protocol version 2025-03-26", nullptr}));
  }
  if (batch.empty()) return done(make_error(nullptr, {code::kInvalidRequest, "Invalid Request: empty batch", nullptr}));
  if (batch.size() > kMaxBatch) {
    return done(make_error(nullptr, {code::kInvalidRequest, "Invalid Request: a batch holds at most " + std::to_string(kMaxBatch) + " messages", nullptr}));
  }
  struct Collector {
    std::mutex mutex;
    std::vector<json> answers;
    size_t pending;
    Done done;
  };
  auto c = std::make_shared<Collector>();
  c->answers.resize(batch.size());
  c->pending = batch.size() + 1;  // + 1 until every entry is started
  c->done = std::move(done);
  auto complete = [c](size_t i, json r) {
    std::unique_lock lock(c->mutex);
    if (i < c->answers.size()) c->answers[i] = std::move(r);
    if (--c->pending > 0) return;
    json out = json::array();
    for (auto& a : c->answers) {
      if (!a.is_null()) out.push_back(std::move(a));
    }
    lock.unlock();
    c->done(out.empty() ? json() : std::move(out));
  };
  std::shared_ptr<Session> shared = session.weak_from_this().lock();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].is_object()) {
      complete(i, make_error(nullptr, {code::kInvalidRequest, "Invalid Request: batch entries must be objects", nullptr}));
      continue;
    }
    Prepared p = prepare_guarded(batch[i], session, channel);
    if (!p.call) {
      complete(i, std::move(p.response));
    } else if (shared) {
      schedule(std::make_shared<Prepared>(std::move(p)), shared, [complete, i](json r) { complete(i, std::move(r)); });
    } else {
      complete(i, execute_guarded(p, session));
    }
  }
  complete(batch.size(), json());
}

Engine::Prepared Engine::prepare(json& m, Session& session, const std::shared_ptr<ReplyChannel>& channel,
                                 const RequestRecord* record) {
  Prepared p;
  if (!m.is_object()) {
    p.response = make_error(nullptr, {code::kInvalidRequest, "Invalid Request: expected a JSON-RPC object", nullptr});
    return p;
  }
  const json* id_it = member(m, "id");
  const bool has_id = id_it != nullptr;
  const json id = has_id && valid_id(*id_it) ? *id_it : json();
  if (has_id && id.is_null()) {
    p.response = make_error(nullptr, {code::kInvalidRequest, "Invalid Request: id must be a string or an integer", nullptr});
    return p;
  }
  const json* version_it = member(m, "jsonrpc");
  if (version_it == nullptr || !is_text(*version_it, "2.0")) {
    p.response = make_error(id, {code::kInvalidRequest, "Invalid Request: jsonrpc must be \"2.0\"", nullptr});
    return p;
  }
  const json* method_it = member(m, "method");
  if (method_it == nullptr) {
    if (has_id && (m.contains("result") || m.contains("error"))) {  // an answer to one of our requests
      std::lock_guard lock(session.mutex_);
      auto it = session.asked_.find(json_text::dump(id));
      if (it != session.asked_.end() && it->second.is_null()) {
        it->second = m;
        session.answered_.notify_all();
      }
      return p;
    }
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
  req.record = record;
  if (record != nullptr) req.trace = record->trace;
  req.method = method_it->get<std::string>();
  req.channel = channel;
  req.catalog = catalog();
  const plugins::Registry& registry = *req.catalog->registry;
  if (json* params = member(m, "params"); params != nullptr && !params->is_null()) {
    if (!params->is_object()) {
      p.response = make_error(id, invalid_params("params must be an object"));
      return p;
    }
    req.params = std::move(*params);  // (the message is the engine's own)
  } else {
    req.params = json::object();
  }
  json meta;  // params._meta: an object, or as json_text::parse_request kept it (written)
  if (auto it = req.params.find(std::string_view("_meta")); it != req.params.end() && (it->is_object() || json_text::written_text(*it))) {
    meta = std::move(*it);
    req.params.erase(it);
  }
  if (auto err = read_meta(req, meta, session)) {
    p.response = make_error(id, *err);
    return p;
  }
  std::optional<RpcError> err;
  if (req.method == "tools/call") {
    err = prepare_tool(req, p);
  } else if (req.method == "resources/read" && offers_resources(registry)) {
    err = prepare_read(req, p);
  } else if (req.method == "prompts/get" && offers_prompts(registry)) {
    err = prepare_prompt(req, p);
  } else if (req.method == "completion/complete" && offers_completions(registry)) {
    err = prepare_complete(req, p);
  } else if (req.method == "tasks/result" && options_.tasks != nullptr && !req.modern && req.version >= "2025-11-25") {
    p.awaits_task = true;
    return p;
  } else if (req.method == "subscriptions/listen" && req.modern) {
    if (auto e = listen(req, session)) {
      p.response = make_error(id, *e);
    } else {
      p.listening = true;
    }
    return p;
  } else {
    p.response = dispatch(req, session);
    return p;
  }
  if (!err && p.response.is_null() && p.kind == Prepared::Kind::kTool) err = plan_task(req, session, p);
  if (!err && p.response.is_null()) err = begin(req, session, p);
  if (err) {
    p.response = make_error(id, *err);
    if (!p.task_id.empty()) options_.tasks->finish(p.task_id, p.response);
    p.task_id.clear();
  }
  return p;
}

RequestRecord Engine::record_of(const json& m, const Session& session, const ReplyChannel* channel) const {
  RequestRecord r;
  r.started_at = std::chrono::system_clock::now();
  r.session = session.label();
  if (auto method = m.find("method"); method != m.end() && method->is_string()) r.method = method->get<std::string>();
  if (auto id = m.find("id"); id != m.end()) r.id = *id;
  r.caller = channel != nullptr ? channel->caller() : nullptr;
  auto params = m.find("params");
  if (params != m.end() && params->is_object()) {
    static const json none;
    auto member = [&](const char* key) -> const json& {
      auto it = params->find(key);
      return it != params->end() ? *it : none;
    };
    const json& name = member("name");
    const json& uri = member("uri");
    const auto catalog = this->catalog();
    if (r.method == "tools/call" && name.is_string()) {
      r.tool = name.get<std::string>();
      if (const auto* e = catalog->registry->find(r.tool)) {
        r.instance = e->instance->name();
        if (e->instance->config().record_arguments) r.arguments = params->value("arguments", json::object());
      }
    } else if (r.method == "prompts/get" && name.is_string()) {
      r.prompt = name.get<std::string>();
      if (const auto* e = catalog->registry->find_prompt(r.prompt)) r.instance = e->instance->name();
    } else if (uri.is_string() && r.method.starts_with("resources/")) {
      r.uri = uri.get<std::string>();
      json values;
      if (const auto* e = catalog->registry->find_resource(r.uri, values)) r.instance = e->instance->name();
    }
    const MetaView meta = MetaView::of(m);
    if (auto v = meta.find(kMetaVersion); v && v->is_string()) r.version = v->get<std::string>();
    if (auto v = meta.find(kMetaClientInfo)) read_client_info(*v, r.client_name, r.client_version);
    if (auto v = meta.find("traceparent"); v && v->is_string()) r.parent = v->get<std::string>();
    if (auto v = meta.find("tracestate"); v && v->is_string()) r.tracestate = v->get<std::string>();
  }
  const bool initialize = r.method == "initialize" && params != m.end() && params->is_object();
  if (initialize) read_client_info(params->value("clientInfo", json()), r.client_name, r.client_version);
  if (r.client_name.empty() || r.version.empty()) {  // a legacy session's, under one lock
    std::lock_guard lock(session.mutex_);
    if (r.client_name.empty() && !initialize) {
      r.client_name = session.client_name_;
      r.client_version = session.client_version_;
    }
    if (r.version.empty()) r.version = session.version_;
  }
  if (r.version.empty() && initialize) {
    r.version = params->value("protocolVersion", json("")).is_string() ? params->value("protocolVersion", "") : "";
  }
  return r;
}

void Engine::observe(RequestRecord& r, const json& response, std::chrono::steady_clock::time_point started,
                     const ReplyChannel& channel) const {
  r.duration = std::chrono::steady_clock::now() - started;
  r.http_status = channel.http_status(response, !r.id.is_null());
  if (response.is_object()) {
    if (auto error = response.find("error"); error != response.end() && error->is_object()) {
      if (auto code = error->find("code"); code != error->end() && code->is_number_integer()) r.error_code = code->get<int>();
      if (auto m = error->find("message"); m != error->end() && m->is_string()) r.error_message = m->get_ref<const std::string&>().substr(0, 256);
    } else if (auto result = response.find("result"); result != response.end() && result->is_object()) {
      auto is_error = result->find("isError");
      r.is_error = is_error != result->end() && *is_error == true;
    } else if (auto text = result != response.end() ? json_text::written_text(*result) : std::nullopt) {  // (as written)
      const json_text::ScannedObject members = json_text::members_of(*text);
      const std::string_view* is_error = members.find("isError");
      r.is_error = is_error != nullptr && *is_error == "true";
    }
  }
  options_.observer->request_done(r);
}

void Engine::on_notification(const json& m, Session& session) {
  const std::string& method = m["method"].get_ref<const std::string&>();
  if (method != "notifications/cancelled") return;  // initialized, progress, roots: nothing to do
  auto params = m.find("params");
  if (params == m.end() || !params->is_object() || !params->contains("requestId")) return;
  session.cancel((*params)["requestId"]);
}

std::optional<RpcError> Engine::read_meta(Request& req, const json& meta, Session& session) const {
  // A 2026-07-28 client sends the same _meta with every request (its era, its name, its
  // capabilities), and json_text::parse_request keeps it as its text. The last one this
  // thread found valid is remembered with what it said: the same text says the same, so
  // it is not read again (measured: ~1,100 of the ~2,500 instructions a 2026-07-28 echo
  // call cost more than a legacy one, scripts/bench.sh).
  struct Said {
    std::string text;  // empty: none yet
    int log_level = -1;
    std::shared_ptr<const json> capabilities;
    json progress_token;
  };
  thread_local Said last;
  const auto text = json_text::written_text(meta);
  if (text && !last.text.empty() && *text == last.text) {
    req.modern = true;
    req.version = kModernVersion;
    req.log_level = last.log_level;
    req.client_capabilities = last.capabilities;
    req.progress_token = last.progress_token;
    return std::nullopt;
  }
  const MetaView view(meta);
  if (auto err = select_era(req, view, session)) return err;
  if (auto t = view.find("progressToken"); t && (t->is_string() || t->is_number_integer())) req.progress_token = std::move(*t);
  constexpr size_t kMaxRemembered = 4096;  // (a client's _meta is ~200 bytes)
  if (text && req.modern && text->size() <= kMaxRemembered) {
    last = {std::string(*text), req.log_level, req.client_capabilities, req.progress_token};
  }
  return std::nullopt;
}

std::optional<RpcError> Engine::select_era(Request& req, const MetaView& meta, Session& session) const {
  if (meta.contains(kMetaVersion)) {
    // Modern request: served statelessly under 2026-07-28 (mcp-spec §2.1, §2.2).
    json caps;
    if (auto err = check_modern_meta(meta, &req.log_level, &caps)) return err;
    static const auto kNone = std::make_shared<const json>(json::object());
    req.client_capabilities = caps.is_null() ? kNone : std::make_shared<const json>(std::move(caps));
    req.modern = true;
    req.version = kModernVersion;
    return std::nullopt;  // a modern initialize is answered -32601: removed in 2026-07-28
  }
  if (req.method == "initialize") return std::nullopt;  // opens a legacy session
  {
    std::lock_guard lock(session.mutex_);
    if (session.initialized_) {
      req.version = session.version_;
      req.client_capabilities = session.client_capabilities_;
      req.log_level = session.log_level_.load();
      return std::nullopt;
    }
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
  const plugins::Registry& registry = *req.catalog->registry;
  if (m == "initialize" && !req.modern) {
    result = initialize(req, session);
    if (result.is_null()) err = invalid_params("initialize: params.protocolVersion (a string) is required");
  } else if (m == "tools/list" || (m == "prompts/list" && offers_prompts(registry)) ||
             ((m == "resources/list" || m == "resources/templates/list") && offers_resources(registry))) {
    err = list(req, result);
  } else if (!req.modern && (m == "resources/subscribe" || m == "resources/unsubscribe") && offers_resources(registry)) {
    err = subscribe(req, session);
    if (!err) result = json::object();
    if (!err && session.on_change_) session.on_change_();
  } else if (req.modern && m == "server/discover") {
    result = discover(req);
  } else if (!req.modern && m == "ping") {
    result = json::object();
  } else if (!req.modern && m == "logging/setLevel") {
    int level = level_index(req.params.value("level", json()));
    if (level < 0) {
      err = invalid_params("logging/setLevel: level must be one of debug, info, notice, warning, error, critical, alert, emergency");
    } else {
      session.log_level_ = level;
      result = json::object();
      if (session.on_change_) session.on_change_();
    }
  } else if (options_.tasks != nullptr && m.starts_with("tasks/") && (req.modern || req.version >= "2025-11-25")) {
    err = task_method(req, result);
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
  const json& caps = req.params.value("capabilities", json::object());
  {
    std::lock_guard lock(session.mutex_);
    session.initialized_ = true;
    session.version_ = version;
    session.set_client_capabilities(caps);
    read_client_info(req.params.value("clientInfo", json()), session.client_name_, session.client_version_);
    if (session.observer_ == nullptr) session.started_ = std::chrono::steady_clock::now();
    session.observer_ = options_.observer;
  }
  session.log_level_ = MCPH_LOG_INFO;
  req.version = version;
  if (auto self = session.weak_from_this().lock()) track(self);
  return json{{"protocolVersion", version}, {"capabilities", capabilities(version, *req.catalog->registry)}, {"serverInfo", server_info(version)}};
}

json Engine::discover(const Request& req) const {
  return json{{"supportedVersions", json::array({kModernVersion})},
              {"capabilities", capabilities(kModernVersion, *req.catalog->registry)},
              {"ttlMs", options_.list_ttl.count()},
              {"cacheScope", "private"}};
}

std::optional<RpcError> Engine::subscribe(const Request& req, Session& session) {
  const plugins::Registry& registry = *req.catalog->registry;
  const json& uri = req.params.value("uri", json());
  if (!uri.is_string() || uri.get_ref<const std::string&>().empty()) return invalid_params(req.method + ": params.uri (a string) is required");
  json values;
  if (registry.find_resource(uri.get_ref<const std::string&>(), values) == nullptr) {
    return RpcError{req.version >= kModernVersion ? code::kInvalidParams : code::kResourceNotFound, "Resource not found",
                    json{{"uri", uri}}};
  }
  {
    std::lock_guard lock(session.mutex_);
    if (req.method == "resources/unsubscribe") {
      session.subscriptions_.erase(uri.get<std::string>());
      return std::nullopt;
    }
    session.subscriptions_.insert(uri.get<std::string>());
  }
  return std::nullopt;
}

// Cursors are decimal offsets into the (fixed) list.
std::optional<RpcError> Engine::page(const Request& req, size_t total, size_t& start, size_t& end) const {
  start = 0;
  if (auto c = req.params.find("cursor"); c != req.params.end() && !c->is_null()) {
    const std::string* s = c->is_string() ? &c->get_ref<const std::string&>() : nullptr;
    auto [ptr, ec] = s ? std::from_chars(s->data(), s->data() + s->size(), start)
                       : std::from_chars_result{nullptr, std::errc::invalid_argument};
    if (!s || s->empty() || ec != std::errc() || ptr != s->data() + s->size() || start > total) {
      return invalid_params(req.method + ": invalid cursor");
    }
  }
  end = std::min(total, start + options_.page_size);
  return std::nullopt;
}

std::optional<RpcError> Engine::list(const Request& req, json& result) const {
  const plugins::Registry& registry = *req.catalog->registry;
  const std::string& v = req.version;
  const bool titles = v >= "2025-06-18";
  auto describe = [&](json& j, const std::string& title, const std::string& description) {
    if (titles && !title.empty()) j["title"] = title;
    if (!description.empty()) j["description"] = description;
  };
  auto resource = [&](const plugins::Registry::ResourceEntry& e, const char* key) {
    const auto& r = *e.item;
    json j{{key, e.public_name}, {"name", r.name}};
    describe(j, r.title, r.description);
    if (!r.mime_type.empty()) j["mimeType"] = r.mime_type;
    if (r.annotations.is_object()) j["annotations"] = r.annotations;
    return j;
  };
  std::function<json(size_t)> item;
  size_t total = 0;
  const char* field = nullptr;
  if (req.method == "tools/list") {
    field = "tools";
    total = registry.tools().size();
    item = [&](size_t i) {
      const auto& e = registry.tools()[i];
      const auto& t = *e.tool;
      json j{{"name", e.public_name}};
      describe(j, t.title, t.description);
      j["inputSchema"] = t.input_schema;
      // outputSchema arrived in 2025-06-18, whose schema requires an object root.
      if (titles && t.output_schema.is_object() && (req.modern || t.output_schema.value("type", json()) == "object")) {
        j["outputSchema"] = t.output_schema;
      }
      if (v >= "2025-03-26" && t.annotations.is_object()) j["annotations"] = t.annotations;
      // 2025-11-25 tasks: which tools take params.task (absent: forbidden).
      if (options_.tasks != nullptr && !req.modern && v >= "2025-11-25") {
        if (e.task_support == plugins::TaskSupport::kOptional) j["execution"] = json{{"taskSupport", "optional"}};
        if (e.task_support == plugins::TaskSupport::kRequired) j["execution"] = json{{"taskSupport", "required"}};
      }
      return j;
    };
  } else if (req.method == "prompts/list") {
    field = "prompts";
    total = registry.prompts().size();
    item = [&](size_t i) {
      const auto& e = registry.prompts()[i];
      json j{{"name", e.public_name}};
      describe(j, e.item->title, e.item->description);
      if (!e.item->arguments.empty()) j["arguments"] = e.item->arguments;
      return j;
    };
  } else if (req.method == "resources/list") {
    field = "resources";
    total = registry.resources().size();
    item = [&](size_t i) { return resource(registry.resources()[i], "uri"); };
  } else {
    field = "resourceTemplates";
    total = registry.templates().size();
    item = [&](size_t i) { return resource(registry.templates()[i], "uriTemplate"); };
  }
  size_t start = 0, end = 0;
  if (auto err = page(req, total, start, end)) return err;
  json items = json::array();
  for (size_t i = start; i < end; ++i) items.push_back(item(i));
  result = json{{field, std::move(items)}};
  if (end < total) result["nextCursor"] = std::to_string(end);
  if (req.modern) {
    result["ttlMs"] = options_.list_ttl.count();  // lists change only at a reload; "private" is the safe scope
    result["cacheScope"] = "private";
  }
  return std::nullopt;
}

std::optional<RpcError> Engine::prepare_tool(Request& req, Prepared& p) {
  const plugins::Registry& registry = *req.catalog->registry;
  const json* name = member(req.params, "name");
  if (name == nullptr || !name->is_string()) return invalid_params("tools/call: params.name (a string) is required");
  const auto* entry = registry.find(name->get_ref<const std::string&>());
  if (entry == nullptr) return invalid_params("Unknown tool: " + name->get<std::string>());
  json* a = member(req.params, "arguments");
  json args = a != nullptr && !a->is_null() ? std::move(*a) : json::object();
  if (!args.is_object()) return invalid_params("tools/call: params.arguments must be an object");

  // A bad argument is a tool error the model can read and correct (mcp-spec §2.4).
  const auto& validator = req.catalog->validators[static_cast<size_t>(entry - registry.tools().data())];
  std::string problem = validator ? validator->validate(args) : "the tool's input schema is invalid; see the host log";
  if (!problem.empty()) {
    json r = shape_result(plugins::error_result("Invalid arguments for tool '" + entry->public_name + "': " + problem), req.version);
    finish_result(r, req);
    p.response = make_result(req.id, std::move(r));
    return std::nullopt;
  }
  p.aim(Prepared::Kind::kTool, entry->instance, {plugins::HandlerRef::Kind::kTool, index_in(entry->instance->tools(), entry->tool)},
        entry->public_name, std::move(args));
  p.tool = entry;
  return std::nullopt;
}

std::optional<RpcError> Engine::prepare_read(Request& req, Prepared& p) {
  const plugins::Registry& registry = *req.catalog->registry;
  const json& uri = req.params.value("uri", json());
  if (!uri.is_string() || uri.get_ref<const std::string&>().empty()) return invalid_params("resources/read: params.uri (a string) is required");
  json values;
  const auto* entry = registry.find_resource(uri.get_ref<const std::string&>(), values);
  if (entry == nullptr) {
    // 2026-07-28 (SEP-2164): -32602 with the URI; earlier revisions: -32002.
    return RpcError{req.modern ? code::kInvalidParams : code::kResourceNotFound, "Resource not found", json{{"uri", uri}}};
  }
  json input{{"uri", uri}};
  if (!values.is_null()) input["variables"] = std::move(values);
  p.aim(Prepared::Kind::kRead, entry->instance, {plugins::HandlerRef::Kind::kRead, index_in(entry->instance->resources(), entry->item)},
        uri, std::move(input));
  p.resource = entry->item;
  return std::nullopt;
}

std::optional<RpcError> Engine::prepare_prompt(Request& req, Prepared& p) {
  const plugins::Registry& registry = *req.catalog->registry;
  const json& name = req.params.value("name", json());
  if (!name.is_string()) return invalid_params("prompts/get: params.name (a string) is required");
  const auto* entry = registry.find_prompt(name.get_ref<const std::string&>());
  if (entry == nullptr) return invalid_params("Unknown prompt: " + name.get<std::string>());
  json args = req.params.value("arguments", json::object());
  if (args.is_null()) args = json::object();
  if (!args.is_object()) return invalid_params("prompts/get: params.arguments must be an object");
  for (const auto& [k, v] : args.items()) {
    if (!v.is_string()) return invalid_params("prompts/get: argument '" + k + "' must be a string");
  }
  for (const auto& a : entry->item->arguments) {
    if (a.value("required", false) && !args.contains(a["name"].get<std::string>())) {
      return invalid_params("prompts/get: missing required argument '" + a["name"].get<std::string>() + "' of prompt '" +
                            entry->public_name + "'");
    }
  }
  p.aim(Prepared::Kind::kPrompt, entry->instance, {plugins::HandlerRef::Kind::kPrompt, index_in(entry->instance->prompts(), entry->item)},
        entry->public_name, std::move(args));
  return std::nullopt;
}

std::optional<RpcError> Engine::prepare_complete(Request& req, Prepared& p) {
  const plugins::Registry& registry = *req.catalog->registry;
  const json& ref = req.params.value("ref", json());
  const json& argument = req.params.value("argument", json());
  if (!ref.is_object() || !ref.value("type", json()).is_string()) return invalid_params("completion/complete: params.ref {type, ...} is required");
  if (!argument.is_object() || !argument.value("name", json()).is_string() || !argument.value("value", json()).is_string()) {
    return invalid_params("completion/complete: params.argument {name, value} (strings) is required");
  }
  const std::string type = ref["type"];
  // The prompt or template whose argument this completes.
  const plugins::Instance* instance = nullptr;
  const plugins::Prompt* prompt = nullptr;
  const plugins::Resource* resource = nullptr;
  std::string name;
  if (type == "ref/prompt" && ref.value("name", json()).is_string()) {
    const auto* e = registry.find_prompt(ref["name"].get_ref<const std::string&>());
    if (e == nullptr) return invalid_params("Unknown prompt: " + ref["name"].get<std::string>());
    std::tie(instance, prompt, name) = std::tuple(e->instance, e->item, e->public_name);
  } else if (type == "ref/resource" && ref.value("uri", json()).is_string()) {
    const std::string& uri = ref["uri"].get_ref<const std::string&>();
    auto it = std::find_if(registry.templates().begin(), registry.templates().end(), [&](const auto& e) { return e.public_name == uri; });
    json values;
    if (it != registry.templates().end()) {
      std::tie(instance, resource, name) = std::tuple(it->instance, it->item, uri);
    } else if (registry.find_resource(uri, values) == nullptr) {  // a fixed resource has nothing to complete
      return invalid_params("Unknown resource template: " + uri);
    }
  } else {
    return invalid_params("completion/complete: ref must be {type: \"ref/prompt\", name} or {type: \"ref/resource\", uri}");
  }
  if (prompt ? !prompt->completes : resource ? !resource->completes : true) {  // nothing to suggest
    json r{{"completion", {{"values", json::array()}, {"total", 0}, {"hasMore", false}}}};
    finish_result(r, req);
    p.response = make_result(req.id, std::move(r));
    return std::nullopt;
  }
  json input{{"argument", argument}};
  if (auto c = req.params.find("context"); c != req.params.end() && c->is_object()) input["context"] = *c;
  const plugins::HandlerRef target = prompt ? plugins::HandlerRef{plugins::HandlerRef::Kind::kPromptComplete, index_in(instance->prompts(), prompt)}
                                         : plugins::HandlerRef{plugins::HandlerRef::Kind::kResourceComplete, index_in(instance->resources(), resource)};
  p.aim(Prepared::Kind::kComplete, instance, target, name, std::move(input));
  return std::nullopt;
}

// Registers the request in flight (so a cancel finds it) and takes in a 2026-07-28 retry's
// inputResponses and requestState.
std::optional<RpcError> Engine::begin(Request& req, Session& session, Prepared& p) {
  if (req.modern) {
    if (const json* r = member(req.params, "inputResponses")) {
      if (!r->is_object()) return invalid_params("inputResponses must be an object (key -> the input request's result)");
      for (const auto& [k, v] : r->items()) {
        if (!v.is_object()) return invalid_params("inputResponses." + k + " must be an object (the result of that input request)");
      }
      p.input_responses = *r;
    }
    if (const json* t = member(req.params, "requestState"); t != nullptr && !t->is_null()) {
      if (!t->is_string()) return invalid_params("requestState must be a string");
      auto state = sealer_.open(t->get_ref<const std::string&>(), binding(p));
      if (!state) return invalid_params(state.error());
      p.state = std::move(*state);
    }
  }
  p.key = json_text::dump(req.id);
  p.call = std::make_shared<Session::InFlight>();
  // The deadline counts from now: time spent waiting for a thread is part of it.
  p.call->call.deadline = std::chrono::steady_clock::now() + options_.call_timeout;
  p.call->call.may_hand_over = p.may_hand_over;
  p.call->call.traceparent = req.trace;
  json token = req.progress_token;
  if (!p.task_id.empty()) {
    // The client has its task: the call reports to the task from now on, and its id may be
    // reused by the client at once.
    p.key = "task:" + p.task_id;
    p.call->call.deadline = std::chrono::steady_clock::now() + timeout_of(p);
    std::shared_ptr<ReplyChannel> session_channel;
    if (!req.modern) {
      std::lock_guard lock(session.mutex_);
      session_channel = session.channel_;
    }
    const plugins::Caller* caller = req.channel->caller();
    req.channel = std::make_shared<tasks::TaskChannel>(*options_.tasks, p.task_id, caller ? std::optional(*caller) : std::nullopt,
                                                       std::move(session_channel), token);
    token = p.task_id;
    req.log_level = -1;
  }
  p.call->reporter = std::make_shared<CallReporter>(req.channel, token, req.version >= "2025-03-26" || !p.task_id.empty(), req.log_level);
  std::lock_guard lock(session.mutex_);
  if (!session.in_flight_.emplace(p.key, p.call).second) {
    p.call.reset();
    return RpcError{code::kInvalidRequest, "Invalid Request: id " + p.key + " is already used by a request in flight", nullptr};
  }
  return std::nullopt;
}

// What a requestState is bound to: this method, this tool, prompt or URI, this input, this user.
std::string Engine::binding(const Prepared& p) const {
  const plugins::Caller* caller = p.req.channel->caller();
  return p.req.method + '\n' + p.name + '\n' + p.input + '\n' + (caller ? caller->principal : std::string());
}

// Gives the call its caller and this round's input, once. False (no answer) when its
// client cancelled it while it waited: the handler never starts.
bool Engine::ready(Prepared& p, Session& session) {
  const Request& req = p.req;
  mcph_call& call = p.call->call;
  if (call.cancelled.load()) {
    session.forget(p.key, p.call);
    return false;
  }
  if (p.ready) return true;
  p.ready = true;
  call.events = p.call->reporter.get();
  call.client_capabilities = std::move(req.client_capabilities);  // (read before this: plan_task, listen)
  if (const plugins::Caller* caller = req.channel->caller()) {
    call.caller = caller;
    call.principal = caller->principal;
  }
  call.input_responses = std::move(p.input_responses);
  call.state = std::move(p.state);
  call.input_value = &p.input_value;
  return true;
}

// Runs the handler from round `round` on until the call is settled; its answer.
json Engine::execute(Prepared& p, Session& session, int round) {
  json out;
  for (;; ++round) {
    plugins::DoneBatch::flush();  // this thread runs or waits for the handler: what it holds goes out first
    p.instance->run(p.what, p.handler, p.input, p.call->call);
    if (settle(p, out) || !ask(p, session, round, out)) break;
  }
  return conclude(p, session, std::move(out));
}

// After a round of the handler: true, with the call's answer in `out` (none if it was
// cancelled), when that round settled it; false when the host must get the input it asked
// for from the client (or its task) and run it again.
bool Engine::settle(Prepared& p, json& out) {
  const Request& req = p.req;
  mcph_call& call = p.call->call;
  if (call.cancelled.load()) return true;
  if (!call.task_handle.empty()) {  // the plugin finishes it later, as a task
    out = handed_over(p, call);
    return true;
  }
  if (!call.missing_capability.empty()) {
    out = make_error(req.id, {code::kMissingClientCapability,
                              p.what + " needs the client capability '" + call.missing_capability + "', which the client did not declare",
                              json{{"requiredCapabilities", json{{call.missing_capability, json::object()}}}}});
    return true;
  }
  if (call.input_requests.empty()) {
    out = answer(p, call);
    return true;
  }
  if (req.modern && p.task_id.empty()) {  // the client asks the user and retries (MRTR)
    out = make_result(req.id, input_required(p, call));
    return true;
  }
  return false;
}

// Older revisions: asks the client for round `round`'s input ourselves (a 2026-07-28 task
// waits for the answers the client sends with tasks/update), for the next round. False,
// with the answer in `out` (none if it was cancelled), when there is no next round.
bool Engine::ask(Prepared& p, Session& session, int round, json& out) {
  const Request& req = p.req;
  mcph_call& call = p.call->call;
  json answers;
  std::optional<std::string> failure;
  if (round == kMaxInputRounds) {
    failure = p.what + " asked for input " + std::to_string(round) + " times; giving up";
  } else if (req.modern) {
    failure = options_.tasks->ask(p.task_id, call.input_requests, call, answers);
  } else {
    if (!p.task_id.empty()) options_.tasks->set_waiting(p.task_id, true);
    failure = ask_client(session, req, call, answers);
    if (!p.task_id.empty()) options_.tasks->set_waiting(p.task_id, false);
  }
  if (failure) {
    call.reset_outcome();
    call.has_outcome = call.is_error = true;
    call.error_status = MCPH_ERR_FAILED_PRECONDITION;
    call.error_text = *failure;
    out = answer(p, call);
    return false;
  }
  if (call.cancelled.load()) return false;
  call.input_responses = std::move(answers);
  call.state = call.next_state;
  return true;
}

// The call is over: the client hears no more of it. Its answer, none when it was cancelled
// (mcp-spec §2.8: no further messages).
json Engine::conclude(Prepared& p, Session& session, json out) {
  p.call->reporter->close();
  session.forget(p.key, p.call);
  if (p.call->call.cancelled.load()) return json();
  return out;
}

// Sends this round's input requests to a legacy client as real requests and waits for
// every answer. nullopt with the answers (key -> result), or why it failed.
std::optional<std::string> Engine::ask_client(Session& session, const Request& req, mcph_call& call, json& answers) {
  if (!req.channel->carries_requests()) {
    return "this connection cannot carry requests to the client; send the request with Accept: text/event-stream";
  }
  std::vector<std::pair<std::string, json>> asked;  // key, request id
  {
    std::lock_guard lock(session.mutex_);
    for (const auto& [key, r] : call.input_requests.items()) {
      json id = session.asked_prefix_ + std::to_string(++session.asked_count_);
      session.asked_.emplace(json_text::dump(id), json());
      asked.emplace_back(key, id);
    }
  }
  for (const auto& [key, id] : asked) {
    const json& r = call.input_requests[key];
    req.channel->send(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", r["method"]}, {"params", r["params"]}});
  }
  std::unique_lock lock(session.mutex_);
  auto all_answered = [&] {
    return std::all_of(asked.begin(), asked.end(), [&](const auto& a) { return !session.asked_[json_text::dump(a.second)].is_null(); });
  };
  while (!all_answered()) {
    if (call.is_cancelled()) {
      std::vector<json> open;
      for (const auto& [key, id] : asked) {
        auto it = session.asked_.find(json_text::dump(id));
        if (it->second.is_null()) open.push_back(id);
        session.asked_.erase(it);
      }
      lock.unlock();
      for (const auto& id : open) {
        req.channel->send(make_notification("notifications/cancelled", json{{"requestId", id}, {"reason", "the request that needed it ended"}}));
      }
      if (call.cancelled.load()) return std::nullopt;
      return "the client did not answer in time";
    }
    session.answered_.wait_for(lock, std::chrono::milliseconds(100));
  }
  std::optional<std::string> failure;
  answers = json::object();
  for (const auto& [key, id] : asked) {
    auto it = session.asked_.find(json_text::dump(id));
    json m = std::move(it->second);
    session.asked_.erase(it);
    const std::string& method = call.input_requests[key]["method"].get_ref<const std::string&>();
    if (m.contains("error") || !m.value("result", json()).is_object()) {
      const json& e = m.value("error", json::object());
      failure = "the client answered " + method + " with an error: " + (e.is_object() ? e.value("message", std::string("(no message)")) : "(invalid)");
    } else {
      answers[key] = m["result"];
    }
  }
  return failure;
}

json Engine::input_required(const Prepared& p, const mcph_call& call) const {
  json r{{"resultType", "input_required"}, {"inputRequests", call.input_requests}};
  if (call.next_state) r["requestState"] = sealer_.seal(*call.next_state, binding(p), kRequestStateTtl);
  r["_meta"][kMetaServerInfo] = server_info(p.req.version);
  return r;
}

// The finished request's response, shaped for its method and revision.
json Engine::answer(Prepared& p, mcph_call& call) const {
  const Request& req = p.req;
  if (p.kind == Prepared::Kind::kTool) {
    // A task distinguishes a tool's own error (completed, isError) from a broken handler
    // (failed, with a JSON-RPC error): a bug, an exception, a crashed plugin process.
    if (call.is_error && call.error_status == MCPH_ERR_INTERNAL && !p.task_id.empty()) {
      return make_error(req.id, {code::kInternalError, call.error_text, nullptr});
    }
    json result;
    if (!call.is_error) {
      if (pass_on(p, call.result)) return make_result(req.id, std::move(call.result));
      result = json_text::built(std::move(call.result));
    } else if (std::chrono::steady_clock::now() >= call.deadline) {
      result = plugins::error_result(p.what + " did not finish within " + std::to_string(timeout_of(p).count()) +
                                     " ms and was cancelled");
    } else {
      result = plugins::error_result(call.error_text);
    }
    result = shape_result(std::move(result), req.version);
    finish_result(result, req);
    return make_result(req.id, std::move(result));
  }
  // Resources, prompts and completions fail as JSON-RPC errors.
  if (call.is_error) {
    const bool not_found = call.error_status == MCPH_ERR_NOT_FOUND;
    if (not_found && p.kind == Prepared::Kind::kRead) {
      return make_error(req.id, {req.modern ? code::kInvalidParams : code::kResourceNotFound, "Resource not found: " + call.error_text,
                                 json{{"uri", p.name}}});
    }
    const int c = not_found || call.error_status == MCPH_ERR_INVALID_ARGUMENT ? code::kInvalidParams : code::kInternalError;
    return make_error(req.id, {c, call.error_text, nullptr});
  }
  json result = json_text::built(std::move(call.result));
  auto invalid = [&](const char* what) {
    spdlog::error("{} returned an invalid result: {}", p.what, what);
    return make_error(req.id, {code::kInternalError, p.what + " returned an invalid result: " + what, nullptr});
  };
  if (p.kind == Prepared::Kind::kRead) {
    json& contents = result["contents"];
    if (!contents.is_array() || contents.empty()) return invalid("\"contents\" must be a non-empty array");
    for (auto& c : contents) {
      if (!c.is_object() || !(c.contains("text") || c.contains("blob"))) return invalid("every content needs \"text\" or \"blob\"");
      if (!c.contains("uri")) c["uri"] = p.name;
      if (!c.contains("mimeType") && !p.resource->mime_type.empty()) c["mimeType"] = p.resource->mime_type;
    }
    if (req.modern && !result.contains("ttlMs")) {
      result["ttlMs"] = 0;  // resources may change at any time unless the plugin says otherwise
      result["cacheScope"] = "private";
    }
  } else if (p.kind == Prepared::Kind::kPrompt) {
    if (!result.value("messages", json()).is_array()) return invalid("\"messages\" must be an array");
  } else {
    json& values = result["values"];
    if (!values.is_array()) return invalid("\"values\" must be an array of strings");
    if (values.size() > 100) {  // the spec's cap
      values.erase(values.begin() + 100, values.end());
      result["hasMore"] = true;
    }
    result = json{{"completion", std::move(result)}};
  }
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

// Whether a tool's `result`, still the text its plugin wrote (json_text::written), goes out
// as it is (with 2026-07-28's members added to that text): to a channel that only writes it
// out, outside a task (which keeps its result), when shape_result() would change nothing
// and finish_result() would only add members. Otherwise it is built and shaped.
bool Engine::pass_on(const Prepared& p, json& result) const {
  const Request& req = p.req;
  const auto text = json_text::written_text(result);
  if (!text || !p.task_id.empty() || req.channel == nullptr || !req.channel->takes_written()) return false;
  const json_text::ScannedObject scanned = json_text::members_of(*text);
  const std::string_view* content = scanned.find("content");
  if (content == nullptr || !content->starts_with('[')) return false;
  if (const std::string_view* structured = scanned.find("structuredContent")) {
    if (req.version < "2025-06-18" || (req.version < kModernVersion && !structured->starts_with('{'))) return false;
  }
  if (!req.modern) return true;
  if (scanned.find("resultType") != nullptr || scanned.find("_meta") != nullptr) return false;
  static const std::string members = R"(,"resultType":"complete","_meta":{")" + std::string(kMetaServerInfo) +
                                     "\":" + json_text::dump(server_info(kModernVersion)) + "}}";
  auto& bytes = result.get_binary();
  bytes.pop_back();  // its closing brace (it has members: content)
  const auto* from = reinterpret_cast<const std::uint8_t*>(members.data());  // (within its kWrittenRoom)
  bytes.insert(bytes.end(), from, from + members.size());
  return true;
}

void Engine::finish_result(json& result, const Request& req) const {
  if (!req.modern) return;
  result["resultType"] = "complete";
  result["_meta"][kMetaServerInfo] = server_info(req.version);
}

// subscriptions/listen (mcp-spec §2.11): the filter's honoured part is acknowledged; the
// stream lives until the client cancels it (Session::cancel) or the host ends.
std::optional<RpcError> Engine::listen(Request& req, Session& session) {
  const plugins::Registry& registry = *req.catalog->registry;
  if (!req.channel->carries_requests()) {
    return RpcError{code::kInvalidRequest, "subscriptions/listen needs a stream: send it with Accept: text/event-stream", nullptr};
  }
  const json& n = req.params.value("notifications", json::object());
  if (!n.is_object()) return invalid_params("subscriptions/listen: params.notifications must be an object");
  ListenFilter f;
  for (const char* key : {"toolsListChanged", "promptsListChanged", "resourcesListChanged"}) {
    if (n.contains(key) && !n[key].is_boolean()) return invalid_params(std::string("subscriptions/listen: ") + key + " must be true or false");
  }
  // Lists change when the configuration is reloaded (Engine::swap); a list this host has
  // none of yet may get some then, so each one asked for is honoured.
  f.tools = n.value("toolsListChanged", false);
  f.prompts = n.value("promptsListChanged", false);
  f.resources = n.value("resourcesListChanged", false);
  const json& uris = n.value("resourceSubscriptions", json::array());
  const json& ids = n.value("taskIds", json::array());
  if (!uris.is_array() || !ids.is_array()) return invalid_params("subscriptions/listen: resourceSubscriptions and taskIds must be arrays");
  for (const auto& u : uris) {
    json values;
    if (!u.is_string()) return invalid_params("subscriptions/listen: resourceSubscriptions must hold URIs (strings)");
    if (registry.find_resource(u.get_ref<const std::string&>(), values) != nullptr) f.uris.insert(u.get<std::string>());
  }
  const plugins::Caller* caller = req.channel->caller();
  const std::string principal = caller ? caller->principal : std::string();
  if (!ids.empty()) {
    if (options_.tasks == nullptr || !declares_tasks(req.client_capabilities)) {
      return needs_tasks_extension("subscriptions/listen with taskIds");
    }
    for (const auto& t : ids) {
      if (!t.is_string()) return invalid_params("subscriptions/listen: taskIds must hold task ids (strings)");
      if (options_.tasks->owned(t.get<std::string>(), principal)) f.task_ids.push_back(t.get<std::string>());
    }
  }
  const std::string key = json_text::dump(req.id);
  {
    std::lock_guard lock(session.mutex_);
    if (session.in_flight_.contains(key)) return RpcError{code::kInvalidRequest, "Invalid Request: id " + key + " is already used by a request in flight", nullptr};
  }
  std::string why;
  auto stream = listeners_.open(req.id, req.channel, f, principal, options_.max_listens_per_user, why);
  if (!stream) return RpcError{code::kInvalidRequest, why, nullptr};
  for (const auto& id : stream->filter.task_ids) {
    options_.tasks->watch(id, [this, service = options_.tasks, weak = std::weak_ptr<Listeners::Stream>(stream)](const tasks::Task& t) {
      if (auto s = weak.lock()) listeners_.send(*s, "notifications/tasks", service->wire(t, true, false));
    });
  }
  auto in = std::make_shared<Session::InFlight>();
  in->on_cancel = [this, weak = std::weak_ptr<Listeners::Stream>(stream)] {
    if (auto s = weak.lock()) listeners_.close(s);
  };
  std::lock_guard lock(session.mutex_);
  session.in_flight_.emplace(key, std::move(in));
  return std::nullopt;
}

// ---- MCP tasks: the engine's side (the tasks themselves live in host/tasks/) --------------

std::optional<RpcError> Engine::plan_task(Request& req, Session& session, Prepared& p) {
  using plugins::TaskSupport;
  if (options_.tasks == nullptr) return std::nullopt;
  const TaskSupport support = p.tool->task_support;
  // 2026-07-28: the client declares the extension (per request); 2025-11-25: params.task.
  const bool client_takes = req.modern ? declares_tasks(req.client_capabilities)
                                       : req.version >= "2025-11-25" && req.params.value("task", json()).is_object();
  const bool host_runs = support == TaskSupport::kOptional || support == TaskSupport::kRequired;
  if (!client_takes) {
    if (support != TaskSupport::kRequired) return std::nullopt;
    if (!req.modern) return RpcError{code::kMethodNotFound, p.what + " runs only as a task: call it with params.task", nullptr};
    return needs_tasks_extension(p.what + " runs only as a task, so it");
  }
  if (!req.modern && !host_runs) return RpcError{code::kMethodNotFound, p.what + " does not support tasks", nullptr};
  p.may_hand_over = support != TaskSupport::kForbidden;
  // A session whose calls run on the caller's thread cannot run one in the background.
  if (!host_runs || !session.weak_from_this().lock()) return std::nullopt;
  const plugins::Caller* caller = req.channel->caller();
  auto t = options_.tasks->create(caller ? caller->principal : std::string(), p.name);
  if (!t) {
    json r = shape_result(plugins::error_result(p.what + " could not start as a task: " + t.error()), req.version);
    finish_result(r, req);
    p.response = make_result(req.id, std::move(r));
    return std::nullopt;
  }
  p.task_id = t->id;
  p.task = task_reply(*t, req);
  return std::nullopt;
}

std::chrono::milliseconds Engine::timeout_of(const Prepared& p) const {
  return p.task_id.empty() ? options_.call_timeout : options_.tasks->options().timeout;
}

// CreateTaskResult: flat with resultType "task" (2026-07-28), {task} before.
json Engine::task_reply(const tasks::Task& t, const Request& req) const {
  if (!req.modern) return json{{"task", options_.tasks->wire(t, false, true)}};
  json r = options_.tasks->wire(t, true, true);
  r["resultType"] = "task";
  r["_meta"][kMetaServerInfo] = server_info(req.version);
  return r;
}

void Engine::start_task(Prepared p, const std::shared_ptr<Session>& session, Done respond) {
  tasks::TaskService* service = options_.tasks;
  const std::string id = p.task_id;
  json reply = make_result(p.req.id, std::move(p.task));
  if (!p.req.modern) {  // notifications/tasks/status on the session's own stream
    service->watch(id, [service, weak = std::weak_ptr<Session>(session)](const tasks::Task& t) {
      auto s = weak.lock();
      if (!s) return;
      std::shared_ptr<ReplyChannel> channel;
      {
        std::lock_guard lock(s->mutex_);
        channel = s->channel_;
      }
      if (channel) channel->send(make_notification("notifications/tasks/status", service->wire(t, false, false)));
    });
  }
  service->attach(id, &p.call->call.cancelled);
  // The work has a trace context of its own when the observer gives it one.
  std::shared_ptr<const RequestRecord> record;
  std::string trace;
  if (options_.observer != nullptr && p.req.record != nullptr) {
    record = std::make_shared<RequestRecord>(*p.req.record);
    trace = options_.observer->task_started(*record);
    p.call->call.traceparent = trace;
  }
  respond(std::move(reply));
  const auto started = std::chrono::steady_clock::now();
  schedule(std::make_shared<Prepared>(std::move(p)), session, [this, service, id, record, trace, started](json r) {
    service->detach(id);
    service->finish(id, r);
    if (record) options_.observer->task_done(*record, trace, std::chrono::steady_clock::now() - started, r);
  });
}

json Engine::handed_over(Prepared& p, const mcph_call& call) {
  const plugins::Caller* caller = p.req.channel->caller();
  auto t = options_.tasks->hand_over(p.task_id, caller ? caller->principal : std::string(), p.name, p.instance->name(),
                                     call.task_handle);
  if (!p.task_id.empty()) return json();  // the client has its task already
  if (!t) {
    spdlog::error("{}: the task it handed over was not recorded: {}", p.what, t.error());
    json r = shape_result(plugins::error_result(p.what + " could not continue as a task: " + t.error()), p.req.version);
    finish_result(r, p.req);
    return make_result(p.req.id, std::move(r));
  }
  return make_result(p.req.id, task_reply(*t, p.req));
}

std::optional<RpcError> Engine::task_method(const Request& req, json& result) {
  if (req.modern) {
    // SEP-2663 removed these two; the rest need the extension declared.
    if (req.method == "tasks/result" || req.method == "tasks/list") return RpcError{code::kMethodNotFound, "Method not found: " + req.method, nullptr};
    if (!declares_tasks(req.client_capabilities)) {
      return needs_tasks_extension(req.method);
    }
  }
  const plugins::Caller* caller = req.channel->caller();
  return options_.tasks->handle(req.method, req.params, caller ? caller->principal : std::string(), req.modern, result);
}

void Engine::await_task(const Request& req, Done done) {
  const plugins::Caller* caller = req.channel->caller();
  options_.tasks->await_result(req.params, caller ? caller->principal : std::string(),
                               [id = req.id, task = req.params.value("taskId", json()), done = std::move(done)](std::optional<RpcError> err, json r) {
                                 if (err) return done(make_error(id, *err));
                                 if (!r.is_object()) r = json::object();
                                 r["_meta"][tasks::kRelatedTask] = json{{"taskId", task}};
                                 done(make_result(id, std::move(r)));
                               });
}

}  // namespace mcph::protocol
