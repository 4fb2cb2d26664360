// The MCP protocol engine, transport-agnostic: JSON-RPC validation, era selection
// (legacy 2024-11-05 ... 2025-11-25 with initialize and sessions; modern 2026-07-28,
// stateless with per-request _meta), and the methods. Transports hand it parsed messages
// with a ReplyChannel and write what it returns.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "plugins/registry.hpp"
#include "protocol/jsonrpc.hpp"
#include "protocol/listeners.hpp"
#include "protocol/request_state.hpp"
#include "protocol/schema.hpp"
#include "protocol/scheduler.hpp"
#include "store/state_store.hpp"
#include "tasks/task_table.hpp"

namespace mcph::tasks {
class TaskService;
}

namespace mcph::protocol {

inline constexpr const char* kModernVersion = "2026-07-28";
// 2026-07-28's per-request _meta keys. string_views: a lookup compares them without strlen.
inline constexpr std::string_view kMetaVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view kMetaCapabilities = "io.modelcontextprotocol/clientCapabilities";
inline constexpr std::string_view kMetaClientInfo = "io.modelcontextprotocol/clientInfo";
// Newest first; the first is what a legacy client asking for something else gets.
inline const std::vector<std::string> kLegacyVersions = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                         "2024-11-05"};

// Validates the per-request _meta of a 2026-07-28 message (protocol version supported,
// client capabilities present, log level valid); when valid, *log_level and *capabilities
// (if given) get its log level (if it has one) and client capabilities (null for {}).
// Transports that answer these faults differently (HTTP: status 400) call it before handing
// the message over.
std::optional<RpcError> check_modern_meta(const MetaView& meta, int* log_level = nullptr, json* capabilities = nullptr);

// Where notifications about a request go (stdout, or that POST's SSE stream), and for
// transports using Engine::submit, the response too. Thread-safe.
class ReplyChannel {
 public:
  virtual ~ReplyChannel() = default;
  virtual void send(const json& message) = 0;
  // False when a request sent here could never reach the client (an HTTP answer that is
  // plain JSON): input requests then fail at once instead of waiting for an answer.
  virtual bool carries_requests() const { return true; }
  // The signed-in user who sent the request (HTTP with OAuth), or null.
  virtual const plugins::Caller* caller() const { return nullptr; }
  // Whether a tool's result may come in a response still as the text its plugin wrote
  // (json_text::written): true for a channel, and an Engine::handle or submit caller, that
  // only writes responses out with json_text::dump (and reads no more of them than "error").
  virtual bool takes_written() const { return false; }
  // The HTTP status that carries `answer` (null: none) to the client; 0 when not HTTP.
  virtual int http_status(const json& /*answer*/, bool /*request*/) const { return 0; }
  // Engine::submit calls this once the request is over: after its response, or when a
  // cancelled request ends without one.
  virtual void close() {}
};

// What one request came to, for telemetry and the audit log (host/telemetry/).
struct RequestRecord {
  std::string method;
  std::string tool;      // tools/call: the tool's public name
  std::string prompt;    // prompts/get
  std::string uri;       // resources/read
  std::string instance;  // the plugin instance that served it, when one did
  json id;               // null for notifications
  std::string version;   // the protocol revision it was served under
  std::chrono::steady_clock::duration duration{};
  std::optional<int> error_code;  // the JSON-RPC error it got
  std::string error_message;      // ... and its message
  bool is_error = false;          // a result with isError: true (a tool error)
  const plugins::Caller* caller = nullptr;  // the signed-in user (HTTP with OAuth), or null
  std::chrono::system_clock::time_point started_at;
  std::string session;  // the legacy session's label (Session::label()), or ""
  std::string client_name, client_version;  // clientInfo: initialize's, or 2026-07-28 _meta's
  std::string parent, tracestate;  // params._meta.traceparent and tracestate, as the client sent them
  // This request's own trace context (a W3C traceparent), when the observer chose one in
  // request_started: the plugin call carries it, so its outbound HTTP requests join the trace.
  std::string trace;
  json arguments;       // tools/call arguments, only when the instance opted in (record_arguments)
  int http_status = 0;  // the HTTP status that carried the answer; 0 on stdio
};

// Hears about every request the engine answered, on the thread that answered it, and about
// every legacy session that ended. Thread-safe; must not block.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  // Before the request runs, with its request side filled in; may set record.trace.
  virtual void request_started(RequestRecord&) {}
  virtual void request_done(const RequestRecord& record) = 0;
  virtual void session_done(const std::string& version, std::chrono::steady_clock::duration lasted) = 0;
  // The work behind an MCP task (a tools/call answered at once with a task) runs on after
  // its request's record: it began, on behalf of `request` (that record, trace set), and
  // may get a trace context of its own, which its plugin call carries instead; it ended
  // with `response`.
  virtual std::string task_started(const RequestRecord& request) { return request.trace; }
  virtual void task_done(const RequestRecord& /*request*/, const std::string& /*trace*/,
                         std::chrono::steady_clock::duration /*took*/, const json& /*response*/) {}
};

// What a legacy session is beyond this process (replicas serve one session together):
// what initialize settled, and what the client changed since.
struct SessionState {
  std::string version;
  json client_capabilities = json::object();
  int log_level = 1;  // MCPH_LOG_INFO
  std::vector<std::string> subscriptions;
};

// Legacy-era state: one per stdio process or per HTTP Mcp-Session-Id. Also tracks the
// requests in flight on it, so notifications/cancelled can find them, the requests the
// host sent to the client (legacy elicitation, sampling, roots) until they are answered,
// and the resources the client subscribed to.
class Session : public std::enable_shared_from_this<Session> {
 public:
  struct InFlight;
  bool initialized() const;
  std::string version() const;  // negotiated legacy version, empty before initialize
  // True if the host may send this session's client requests (a legacy client that
  // declared elicitation, sampling or roots).
  bool may_be_asked() const;
  // Cancels a request in flight on this session, as notifications/cancelled does; its
  // response is then never sent. Unknown or finished ids are ignored.
  void cancel(const json& request_id);
  // Forgets the request `key` in flight, if it is still `call` (the id may have been reused
  // by a newer request once this one was answered).
  void forget(const std::string& key, const std::shared_ptr<InFlight>& call);
  // Where messages that belong to no request go (resource updates): stdout, or the HTTP
  // session's GET stream. Unset: they are dropped.
  void set_channel(std::shared_ptr<ReplyChannel> channel);
  SessionState state() const;
  // What telemetry calls this session (mcp.session.id): an HTTP session's id, hashed, since
  // the id itself lets its holder use the session. Empty for stdio. Set before it serves.
  void set_label(std::string label) { label_ = std::move(label); }
  const std::string& label() const { return label_; }
  // Called (on the request's thread) after logging/setLevel, resources/subscribe or
  // unsubscribe changed state(). Set it before the session serves requests.
  void on_change(std::function<void()> fn) { on_change_ = std::move(fn); }

 private:
  friend class Engine;
  std::function<void()> on_change_;
  std::string label_;
  mutable std::mutex mutex_;
  bool initialized_ = false;                 // guarded by mutex_
  std::string version_;                      // guarded by mutex_
  // initialize's capabilities, shared with each request's call (never changed: replaced).
  std::shared_ptr<const json> client_capabilities_ = std::make_shared<const json>(json::object());  // guarded by mutex_
  // may_be_asked(), set with client_capabilities_ (read per request without the mutex: with
  // many connections on one session, the mutex is what they queue for).
  std::atomic<bool> may_be_asked_{false};
  void set_client_capabilities(const json& caps);  // with mutex_ held
  std::string client_name_, client_version_;  // initialize's clientInfo; guarded by mutex_
  std::atomic<int> log_level_{1};            // MCPH_LOG_INFO until logging/setLevel
  std::unordered_map<std::string, std::shared_ptr<InFlight>> in_flight_;  // guarded by mutex_
  std::shared_ptr<ReplyChannel> channel_;    // guarded by mutex_
  std::set<std::string, std::less<>> subscriptions_;  // guarded by mutex_
  int64_t asked_count_ = 0;                  // guarded by mutex_
  std::string asked_prefix_ = "mcph-";       // guarded by mutex_: ids of requests to the client
  std::unordered_map<std::string, json> asked_;  // id -> answer (null until it comes); guarded by mutex_
  std::condition_variable answered_;
  // Telemetry: when initialize ran, and who hears that the session ended.
  std::chrono::steady_clock::time_point started_;
  RequestObserver* observer_ = nullptr;  // set with started_, under mutex_

 public:
  ~Session();
};

struct EngineOptions {
  size_t page_size = 100;
  std::chrono::milliseconds call_timeout{300000};
  size_t max_concurrent_calls = 64;  // over all plugin instances
  size_t max_queued_calls = 1000;    // per plugin instance; beyond it a call is refused at once
  std::shared_ptr<const store::Keyring> request_state_keys;  // shared by replicas; null: drawn at start-up
  // When set, resource updates travel through its events, so subscribers on every replica
  // sharing the store hear them (topic kResourceUpdated).
  store::StateStore* events = nullptr;
  // MCP tasks (host/tasks/): when set, tools/call may be answered with a task, and the
  // tasks/* methods exist. Null: no tasks, as before.
  tasks::TaskService* tasks = nullptr;
  size_t max_listens_per_user = 16;  // subscriptions/listen streams one principal may hold open
  // ttlMs of 2026-07-28 lists and server/discover: how long a client may keep them. They
  // change only when the configuration is reloaded; clients that listen hear it at once.
  std::chrono::milliseconds list_ttl{60000};
  RequestObserver* observer = nullptr;  // outlives the engine and every session; null: nobody
};

inline constexpr std::string_view kResourceUpdated = "resource.updated";  // body: the URI

// JSON-RPC batches (2025-03-26) hold at most this many messages.
inline constexpr size_t kMaxBatch = 1000;

class Engine final : public plugins::ResourceListener {
 public:
  // Serves `registry` (the caller keeps it until the engine is gone).
  Engine(const plugins::Registry& registry, EngineOptions options);
  Engine(std::shared_ptr<const plugins::Registry> registry, EngineOptions options);
  ~Engine() override;  // waits for submitted calls (cancel them first: Registry::begin_shutdown)

  // Handles one message (object or, for 2025-03-26 sessions, a batch array) and returns
  // the response, or null when there is none (notifications, responses, calls the client
  // cancelled). Plugin code runs on the calling thread when its instance has a free slot,
  // else the call waits its turn; either way this returns by the call's deadline only if
  // the handler does (use submit() where the deadline must hold). A session not owned by a
  // shared_ptr always runs its calls on the calling thread.
  // (Both take the message by value: a transport done with it moves it in, and the engine
  // takes its params apart without copying them.)
  json handle(json message, Session& session, const std::shared_ptr<ReplyChannel>& channel);

  // Like handle(), but the response goes to channel->send(), followed by channel->close().
  // Quick methods are answered on the calling thread; calls are registered here (so a
  // cancel read right after finds them) and then wait their turn on the scheduler. A call
  // still running at its deadline is answered then, whether or not its handler returns.
  // `here`: run a call on the calling thread when its instance has a free slot, as
  // handle() does (a quick call then costs no hand-off), and schedule it otherwise. A call
  // run here and still running at its deadline is answered then too, from the watchdog,
  // while this thread is still in its handler.
  enum class Here {
    kNever,
    kInProcess,  // only a call whose instance runs in this process (one to another process
                 // would hold this thread while it waits for the answer)
    kAlways,     // whatever its instance: this thread has nothing else to do meanwhile
  };
  void submit(json message, const std::shared_ptr<Session>& session,
              const std::shared_ptr<ReplyChannel>& channel, Here here = Here::kNever);

  // What the engine serves: the plugins' registry and its tools' compiled input schemas.
  // A request keeps the catalog it began with for as long as it runs.
  struct Catalog {
    std::shared_ptr<const plugins::Registry> registry;
    std::vector<std::shared_ptr<const Schema>> validators;  // parallel to registry->tools()
  };
  std::shared_ptr<const Catalog> catalog() const;

  // Serves `next` from now on (a reload): new requests see it, requests that began before
  // keep the catalog they began with. Clients hear which lists changed: legacy sessions by
  // notifications/{tools,prompts,resources}/list_changed on their stream, 2026-07-28 ones on
  // the subscriptions/listen streams that asked. Instances `next` no longer serves stop
  // hearing resource updates. Returns the names of the lists that changed.
  std::vector<std::string> swap(std::shared_ptr<const plugins::Registry> next);

  // Calls running now (stuck ones included), in every session.
  int running() const { return static_cast<int>(scheduler_.running()); }
  // Running, waiting and stuck calls of one plugin instance (for /healthz).
  Scheduler::LaneStats calls(const plugins::Instance& instance) const { return scheduler_.stats(&instance); }
  // Waits until no call runs or waits and no handle() or submit() is still at work on
  // some thread (true), or until `until` passes (false).
  bool wait_idle(std::chrono::steady_clock::time_point until) const;

  // Legacy sessions open, and subscriptions/listen streams open (telemetry).
  size_t sessions_open();
  size_t streams_open() const { return listeners_.open_count(); }

  // Ends every subscriptions/listen stream with its final answer (the host is stopping).
  void end_streams() { listeners_.end_all(); }

  // Tells the sessions subscribed to `uri` (plugins call it through host->resource_updated),
  // on every replica with options.events.
  void resource_updated(const std::string& uri) override;

  // Makes `session` the legacy session `state` describes, as if initialize had run on it
  // (for a session another replica opened), or brings its log level and subscriptions up to
  // date. Requests the host sends its client get ids no other replica uses.
  void restore(const std::shared_ptr<Session>& session, const SessionState& state);

 private:
  struct Request;
  struct Prepared;

  using Done = std::function<void(json)>;
  // handle() and submit() without telling options.observer (they wrap these when it is set).
  // `record`: what the observer was told of the request (null: unobserved); its plugin call
  // carries record->trace. Read only while the request is prepared (and a task started).
  json handle_unobserved(json& message, Session& session, const std::shared_ptr<ReplyChannel>& channel,
                         const RequestRecord* record = nullptr);
  void submit_unobserved(Here here, json& message, const std::shared_ptr<Session>& session,
                         const std::shared_ptr<ReplyChannel>& channel, Done finish, const RequestRecord* record = nullptr);
  Prepared prepare(json& message, Session& session, const std::shared_ptr<ReplyChannel>& channel, const RequestRecord* record);
  Prepared prepare_guarded(json& message, Session& session, const std::shared_ptr<ReplyChannel>& channel,
                           const RequestRecord* record = nullptr);
  // A call's steps: its caller and input (once); its handler's rounds; what a round
  // settled; the input a legacy client gives for the next round; the answer once it is over.
  bool ready(Prepared& p, Session& session);
  json execute(Prepared& p, Session& session, int round);
  bool settle(Prepared& p, json& out);
  bool ask(Prepared& p, Session& session, int round, json& out);
  json conclude(Prepared& p, Session& session, json out);
  // `work`'s answer, or an internal error (logged, the call forgotten) when it throws.
  template <typename Work>
  json guarded(Prepared& p, Session& session, Work&& work);
  json execute_guarded(Prepared& p, Session& session);  // ready() and execute(), guarded
  // One scheduled call, shared by the closures that may answer it (see schedule()).
  struct Flight;
  bool start(const std::shared_ptr<Flight>& f, const Scheduler::Entry& entry);
  void launch(const std::shared_ptr<Flight>& f, const Scheduler::Entry& entry);
  void expire(Flight& f);  // its deadline passed, or the host stops, before it was answered
  void busy(Flight& f);    // its instance's queue is full
  // Runs a prepared call on the scheduler; `done` gets its answer exactly once: the
  // handler's, the deadline's, or "busy" when its instance's queue is full.
  // Runs a call on a worker, or with `here` on this thread if its instance has a free slot
  // (see submit()); either way it is answered at its deadline if its handler has not.
  void schedule(std::shared_ptr<Prepared> p, std::shared_ptr<Session> session, Done done, Here here = Here::kNever);
  void run_batch(json& batch, Session& session, const std::shared_ptr<ReplyChannel>& channel, Done done);
  json late_answer(Prepared& p, mcph_status status, std::string text) const;
  // MCP tasks (the work itself is host/tasks/'s): whether this tools/call becomes a task,
  // answering the client at once and running the call in the background; a call its
  // plugin handed over; the tasks/* methods; legacy tasks/result, which waits.
  std::optional<RpcError> plan_task(Request& req, Session& session, Prepared& p);
  void start_task(Prepared p, const std::shared_ptr<Session>& session, Done respond);
  json handed_over(Prepared& p, const mcph_call& call);
  json task_reply(const tasks::Task& t, const Request& req) const;
  std::chrono::milliseconds timeout_of(const Prepared& p) const;  // a call's, or a task's
  std::optional<RpcError> task_method(const Request& req, json& result);
  void await_task(const Request& req, Done done);
  void on_notification(const json& message, Session& session);
  // What options.observer hears: the request's side (before it runs), then its outcome.
  RequestRecord record_of(const json& message, const Session& session, const ReplyChannel* channel) const;
  void observe(RequestRecord& record, const json& response, std::chrono::steady_clock::time_point started,
               const ReplyChannel& channel) const;
  std::optional<RpcError> listen(Request& req, Session& session);  // subscriptions/listen
  void notify_subscribers(const std::string& uri);
  void track(const std::shared_ptr<Session>& session);  // hears resource updates and list changes
  // Sends `notice` on the stream of every tracked session `wants` picks (called with the
  // session's mutex held).
  void tell_sessions(const json& notice, const std::function<bool(const Session&)>& wants);
  // Everything a client sees of one list (all pages), to tell whether a reload changed it.
  json whole_list(const std::shared_ptr<const Catalog>& catalog, const std::string& method) const;

  // What params._meta says (the era, with its checks, and the progress token), into `req`.
  std::optional<RpcError> read_meta(Request& req, const json& meta, Session& session) const;
  std::optional<RpcError> select_era(Request& req, const MetaView& meta, Session& session) const;
  json dispatch(Request& req, Session& session);
  json initialize(Request& req, Session& session);
  json discover(const Request& req) const;
  std::optional<RpcError> subscribe(const Request& req, Session& session);
  std::optional<RpcError> page(const Request& req, size_t total, size_t& start, size_t& end) const;
  std::optional<RpcError> list(const Request& req, json& result) const;
  // Requests that run plugin code: tools/call, resources/read, prompts/get, completion.
  std::optional<RpcError> prepare_tool(Request& req, Prepared& p);
  std::optional<RpcError> prepare_read(Request& req, Prepared& p);
  std::optional<RpcError> prepare_prompt(Request& req, Prepared& p);
  std::optional<RpcError> prepare_complete(Request& req, Prepared& p);
  std::optional<RpcError> begin(Request& req, Session& session, Prepared& p);
  std::optional<std::string> ask_client(Session& session, const Request& req, mcph_call& call, json& answers);
  json answer(Prepared& p, mcph_call& call) const;
  json input_required(const Prepared& p, const mcph_call& call) const;
  std::string binding(const Prepared& p) const;
  json shape_result(json result, const std::string& version) const;
  bool pass_on(const Prepared& p, json& result) const;
  void finish_result(json& result, const Request& req) const;
  json capabilities(const std::string& version, const plugins::Registry& registry) const;
  // What the plugins registered decides which capabilities (and methods) exist.
  static bool offers_prompts(const plugins::Registry& r) { return !r.prompts().empty(); }
  static bool offers_resources(const plugins::Registry& r) { return !r.resources().empty() || !r.templates().empty(); }
  static bool offers_completions(const plugins::Registry& r) { return offers_prompts(r) || !r.templates().empty(); }
  const json& server_info(const std::string& version) const;

  mutable std::mutex catalog_mutex_;
  std::shared_ptr<const Catalog> catalog_;  // guarded by catalog_mutex_
  const EngineOptions options_;
  RequestStateSealer sealer_;
  std::mutex sessions_mutex_;
  std::vector<std::weak_ptr<Session>> sessions_;  // initialized legacy sessions; guarded by sessions_mutex_
  Listeners listeners_;
  Scheduler scheduler_;
  // handle() and submit() at work now: a transport's thread may still be inside one after
  // its input ended (stdio's reader), and the engine must outlive it.
  std::atomic<int> entered_{0};
  std::atomic<int> started_{0};  // calls started on other processes, not yet finished (Engine::start)
  struct Entered {
    explicit Entered(std::atomic<int>& n) : n_(n) { n_.fetch_add(1); }
    ~Entered() { n_.fetch_sub(1); }
    std::atomic<int>& n_;
  };
  store::StateStore::Subscription events_;  // last: unsubscribed first
};

}  // namespace mcph::protocol
