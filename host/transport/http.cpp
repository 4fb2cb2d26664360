#include "transport/http.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "auth/oauth.hpp"
#include "json/bounded.hpp"
#include "services/crypto.hpp"
#include "store/state_store.hpp"
#include "transport/http_guard.hpp"
#include "transport/http_listener.hpp"
#include "transport/quick_calls.hpp"
#include "transport/shared_sessions.hpp"
#include "version.hpp"

namespace mcph::transport {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace code = protocol::code;
using protocol::kMetaVersion;

// SSE comment lines keep proxies from timing a quiet stream out and, for 2026-07-28, are
// how a vanished client is noticed (the write fails) so its call can be cancelled.
constexpr auto kKeepAlive = std::chrono::seconds(10);
// A call that has said nothing for this long is switched to SSE (if the client takes it),
// so keep-alive comments can flow.
constexpr auto kUpgradeAfter = std::chrono::seconds(2);

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

bool is_response(const json& m) { return m.contains("id") && (m.contains("result") || m.contains("error")); }

// Messages for one request (notifications, then its response), handed from the worker
// that runs the call to the HTTP thread that writes them.
class Mailbox final : public protocol::ReplyChannel {
 public:
  explicit Mailbox(bool carries_requests = true, std::shared_ptr<const plugins::Caller> caller = nullptr,
                   size_t limit = SIZE_MAX, bool modern = false)
      : carries_requests_(carries_requests), caller_(std::move(caller)), limit_(limit), modern_(modern) {}
  bool carries_requests() const override { return carries_requests_; }
  const plugins::Caller* caller() const override { return caller_.get(); }
  bool takes_written() const override { return true; }  // (what reads an answer's result builds it)
  int http_status(const json& answer, bool request) const override;
  void send(const json& message) override {
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      if (queue_.size() >= limit_) queue_.pop_front();  // nobody reads: keep the newest
      queue_.push_back(message);
      ready_.store(true, std::memory_order_release);
    }
    cv_.notify_one();
  }
  // The next message, or nullopt after `timeout` or once closed and empty.
  std::optional<json> pop(Clock::duration timeout) {
    // Most answers come back within microseconds; yielding a few times first saves the
    // sleep and wake-up of a condition variable on the hot path (measured: +25% req/s).
    if (timeout > Clock::duration::zero()) {
      for (int i = 0; i < 64 && !ready_.load(std::memory_order_acquire); ++i) std::this_thread::yield();
    }
    std::unique_lock lock(mutex_);
    auto arrived = [&] { return !queue_.empty() || closed_; };
    // (wait_for even with no time left sleeps in the kernel once: a system call per quick call)
    if (!(timeout > Clock::duration::zero() ? cv_.wait_for(lock, timeout, arrived) : arrived()) || queue_.empty()) return std::nullopt;
    json m = std::move(queue_.front());
    queue_.pop_front();
    ready_.store(!queue_.empty(), std::memory_order_relaxed);
    return m;
  }
  void close() override {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      ready_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }
  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<json> queue_;  // guarded by mutex_
  bool closed_ = false;     // guarded by mutex_
  std::atomic<bool> ready_{false};  // queue_ is not empty (a hint, read without the lock)
  const bool carries_requests_;
  const std::shared_ptr<const plugins::Caller> caller_;
  const size_t limit_;
  const bool modern_;  // answers a 2026-07-28 request (its errors have their own statuses)
};

// A legacy session: the engine's state plus what HTTP needs to expire and end it.
struct HttpSession {
  std::shared_ptr<protocol::Session> session = std::make_shared<protocol::Session>();
  // The GET stream's messages; bounded, since a client may never open the stream (and each
  // replica holding a shared session hears its resource updates).
  std::shared_ptr<Mailbox> events = std::make_shared<Mailbox>(true, nullptr, 1000);
  std::atomic<int64_t> last_used_ms{now_ms()};
  std::atomic<int> requests{0};  // HTTP requests in progress on it
  std::string principal;         // with OAuth: the user who opened it (nobody else may use it)
  std::string client;            // who it counts against (max_sessions_per_client)
  std::string handle;            // a session every replica serves (SharedSessions), else empty
  int64_t expires = 0;           // with a handle: when its sealed id expires (Unix s)
};

// What telemetry calls a session (mcp.session.id): the id grants use of the session, so
// traces and the audit log get a hash of it, the same on every replica.
std::string label_of(const std::string& session_id) { return crypto::hex(crypto::sha256(session_id)).substr(0, 32); }

// Session ids: 32 random bytes from OpenSSL's CSPRNG as hex — visible ASCII as required.
std::string new_session_id() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return "";
  static const char* kHex = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

// What the access log line says about a request (set by the handler, same thread).
struct AccessInfo {
  Clock::time_point start;
  std::string mcp_method;
  std::string tool;
};
thread_local AccessInfo t_access;
// The signed-in user of the request this thread serves (HTTP with OAuth), set by pre_route.
thread_local std::shared_ptr<const plugins::Caller> t_caller;

// Mcp-Name and Mcp-Param-* values that are not plain ASCII arrive as =?base64?...?=
// (mcp-spec §4.2, 2026-07-28 routing headers).
std::string decode_header_value(const std::string& v) {
  if (!(v.size() >= 12 && v.starts_with("=?base64?") && v.ends_with("?="))) return v;
  const std::string b64 = v.substr(9, v.size() - 11);
  std::string out(b64.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return v;
  size_t pad = 0;
  for (size_t i = b64.size(); i > 0 && b64[i - 1] == '='; --i) ++pad;
  out.resize(static_cast<size_t>(n) - std::min<size_t>(pad, static_cast<size_t>(n)));
  return out;
}

std::string trimmed(std::string s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// A request header's value (the first, as cpp-httplib's find gives it), or null. A request
// has a handful of headers, looked at in order with their names' lengths compared first
// (iequals): cpp-httplib's own find builds a std::string of the name and compares names
// through tolower() a character at a time (perf, 32 connections: tolower took ~5 % of the
// host's CPU, this lookup a part of it).
const std::string* header(const httplib::Request& req, std::string_view name) {
  for (const auto& [key, value] : req.headers) {
    if (iequals(key, name)) return &value;
  }
  return nullptr;
}
// Its value, or "" when there is none.
std::string_view header_or_empty(const httplib::Request& req, std::string_view name) {
  const std::string* v = header(req, name);
  return v != nullptr ? std::string_view(*v) : std::string_view();
}

// HTTP status for a JSON-RPC error under 2026-07-28 (mcp-spec §4.2 status map). Ordinary
// method errors (an unknown tool's -32602) stay 200; _meta faults are answered 400 before
// the engine runs (post_modern).
int modern_status(int error_code) {
  switch (error_code) {
    case code::kMethodNotFound: return 404;
    case code::kHeaderMismatch:
    case code::kMissingClientCapability:
    case code::kUnsupportedVersion:
    case code::kParseError:
    case code::kInvalidRequest: return 400;
    default: return 200;
  }
}

int legacy_status(int error_code) {
  return error_code == code::kParseError || error_code == code::kInvalidRequest ? 400 : 200;
}

// The HTTP status that carries a JSON-RPC answer (a result, an error, or a batch array).
int status_for(const json& answer, bool modern) {
  if (!answer.is_object() || !answer.contains("error")) return 200;
  const int c = answer["error"].value("code", 0);
  return modern ? modern_status(c) : legacy_status(c);
}

int Mailbox::http_status(const json& answer, bool request) const {
  if (answer.is_null()) return request ? 204 : 202;  // a request the client cancelled; a notification
  return status_for(answer, modern_);
}

}  // namespace

struct HttpTransport::Impl {
  protocol::Engine& engine;
  const config::HttpConfig config;
  std::function<json()> health;
  std::function<std::string()> metrics;  // null: no /metrics
  std::function<void(int, const std::string&)> refused;  // hears requests pre_route refused; may be null
  HttpGuard guard{config};
  std::unique_ptr<Listener> server;
  std::string url;

  std::mutex sessions_mutex;
  std::unordered_map<std::string, std::shared_ptr<HttpSession>> sessions;  // guarded by sessions_mutex
  std::atomic<int> streams{0};
  std::atomic<bool> stopping{false};
  ToolSpeeds speeds;
  std::optional<auth::OAuthOptions> oauth_options;
  store::StateStore* store = nullptr;
  std::unique_ptr<auth::OAuthServer> oauth;  // set by bind() in mode oauth
  std::mutex sweep_mutex;
  std::condition_variable sweep_cv;
  std::thread sweeper;
  std::unique_ptr<SharedSessions> shared;  // store.backend postgresql: any replica serves a session
  store::StateStore::Subscription session_events;  // with `shared`; last: unsubscribed first

  Impl(protocol::Engine& e, const config::HttpConfig& c, std::function<json()> h)
      : engine(e), config(c), health(std::move(h)) {}

  // ---- Replies --------------------------------------------------------------------------

  static void reply_json(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(json_text::dump(body), "application/json");
  }
  static void reply_error(httplib::Response& res, int status, const json& id, int code, const std::string& message) {
    reply_json(res, status, protocol::make_error(id, {code, message, nullptr}));
  }
  static void reply_accepted(httplib::Response& res) { res.status = 202; }

  bool take_stream() {
    if (streams.fetch_add(1) < config.max_streams) return true;
    streams.fetch_sub(1);
    return false;
  }

  // ---- Sessions -------------------------------------------------------------------------

  // Sessions are kept under their id, or a shared session under its handle (so events,
  // which name the handle, find it).
  std::string key_of(const std::string& id) const {
    return shared && SharedSessions::is_sealed(id) ? SharedSessions::handle(id) : id;
  }

  std::shared_ptr<HttpSession> find_session(const std::string& id) {
    const std::string key = key_of(id);
    const std::string principal = t_caller ? t_caller->principal : "";
    {
      std::lock_guard lock(sessions_mutex);
      auto it = sessions.find(key);
      if (it != sessions.end()) {
        // Another user's session is, to this one, a session that does not exist.
        if (it->second->principal != principal) return nullptr;
        it->second->last_used_ms = now_ms();
        return it->second;
      }
    }
    return key != id ? revive(id, key, principal) : nullptr;
  }

  std::shared_ptr<HttpSession> make_session(const std::string& client, const std::string& principal) {
    auto s = std::make_shared<HttpSession>();
    s->session->set_channel(s->events);
    s->client = client;
    s->principal = principal;
    return s;
  }

  // A shared session opened elsewhere (or expired here): from its id, and its row if it has
  // one. While the store is down the id alone serves (a DELETE or subscription made on
  // another replica meanwhile is not seen).
  std::shared_ptr<HttpSession> revive(const std::string& id, const std::string& handle, const std::string& principal) {
    auto sealed = shared->open(id);
    if (!sealed || sealed->principal != principal) return nullptr;
    protocol::SessionState state;
    state.version = sealed->version;
    state.client_capabilities = sealed->client_capabilities;
    if (auto row = shared->load(handle); !row) {
      spdlog::warn("http: session state unavailable, serving the session from its id: {}", row.error());
    } else if (row->has_value()) {
      if ((*row)->ended) return nullptr;
      state.log_level = (*row)->log_level;
      state.subscriptions = std::move((*row)->subscriptions);
    }
    (void)make_room(sealed->client);
    auto s = make_session(sealed->client, principal);
    s->session->set_label(label_of(id));
    share(s, handle, sealed->expires);
    engine.restore(s->session, state);
    std::lock_guard lock(sessions_mutex);
    return sessions.emplace(handle, s).first->second;  // another request may have revived it first
  }

  // Makes `s` a shared session: changes its client makes are recorded for the replicas.
  void share(const std::shared_ptr<HttpSession>& s, const std::string& handle, int64_t expires) {
    s->handle = handle;
    s->expires = expires;
    s->session->on_change([this, weak = std::weak_ptr<HttpSession>(s)] {
      auto h = weak.lock();
      if (!h) return;
      if (auto st = shared->save(h->handle, h->session->state(), h->expires); !st) {
        spdlog::warn("http: a session's change stays on this replica: {}", st.error());
      }
    });
  }

  std::shared_ptr<HttpSession> local_session(std::string_view key) {
    std::lock_guard lock(sessions_mutex);
    auto it = sessions.find(std::string(key));
    return it == sessions.end() ? nullptr : it->second;
  }

  // What other replicas tell about the shared sessions this one holds.
  void on_session_event(std::string_view topic, std::string_view body) {
    if (topic == SharedSessions::kEnded) {
      end_session(std::string(body));
    } else if (topic == SharedSessions::kChanged) {
      if (auto s = local_session(body)) reload(s);
    } else if (topic == SharedSessions::kMessage) {
      const size_t nl = body.find('\n');
      auto s = nl == std::string_view::npos ? nullptr : local_session(body.substr(0, nl));
      if (!s) return;  // not held here
      // An answer or a cancellation: it has no reply.
      if (auto msg = shared->relayed(body.substr(nl + 1))) (void)engine.handle(*msg, *s->session, s->events);
    } else if (topic == store::StateStore::kResync) {  // changes may have been missed
      std::vector<std::shared_ptr<HttpSession>> all;
      {
        std::lock_guard lock(sessions_mutex);
        for (const auto& [k, s] : sessions) {
          if (!s->handle.empty()) all.push_back(s);
        }
      }
      for (auto& s : all) reload(s);
    }
  }

  void reload(const std::shared_ptr<HttpSession>& s) {
    auto row = shared->load(s->handle);
    if (!row || !row->has_value()) return;
    if ((*row)->ended) return end_session(s->handle);
    protocol::SessionState state = s->session->state();
    state.log_level = (*row)->log_level;
    state.subscriptions = std::move((*row)->subscriptions);
    engine.restore(s->session, state);
  }

  void end_session(const std::string& key) {
    std::shared_ptr<HttpSession> s;
    {
      std::lock_guard lock(sessions_mutex);
      auto it = sessions.find(key);
      if (it == sessions.end()) return;
      s = it->second;
      sessions.erase(it);
    }
    s->events->close();
  }

  // Drops sessions idle past the timeout (never one with a request in progress).
  void sweep() {
    const int64_t cutoff = now_ms() - config.session_idle_timeout_ms;
    std::vector<std::shared_ptr<HttpSession>> expired;
    {
      std::lock_guard lock(sessions_mutex);
      for (auto it = sessions.begin(); it != sessions.end();) {
        if (it->second->last_used_ms < cutoff && it->second->requests == 0) {
          expired.push_back(it->second);
          it = sessions.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& s : expired) s->events->close();
    if (!expired.empty()) spdlog::debug("http: {} idle sessions expired", expired.size());
  }

  void sweep_loop() {
    const auto period = std::chrono::milliseconds(std::clamp(config.session_idle_timeout_ms / 4, 100, 5000));
    auto purge_at = Clock::now() + std::chrono::minutes(1);
    std::unique_lock lock(sweep_mutex);
    while (!sweep_cv.wait_for(lock, period, [&] { return stopping.load(); })) {
      lock.unlock();
      sweep();
      if (Clock::now() >= purge_at) {  // every replica does it: erasing twice is harmless
        if (size_t n = shared ? shared->purge() : 0; n > 0) spdlog::debug("http: {} expired shared sessions purged", n);
        if (size_t n = oauth ? oauth->purge() : 0; n > 0) spdlog::debug("oauth: {} expired codes, tokens and forms purged", n);
        purge_at = Clock::now() + std::chrono::minutes(10);
      }
      lock.lock();
    }
  }

  // ---- One request's answer ---------------------------------------------------------------

  // Runs a request through the engine and answers it: JSON when the response comes first,
  // an SSE stream once a notification arrives or the call runs long (if the client
  // accepts SSE and a stream slot is free).
  void exchange(const httplib::Request& req, httplib::Response& res, const json& msg,
                const std::shared_ptr<protocol::Session>& session, bool modern, std::shared_ptr<HttpSession> owner) {
    const bool sse_ok = header_or_empty(req, "Accept").find("text/event-stream") != std::string_view::npos;
    const std::string tool = tool_of(msg);
    // Run the call on this thread, skipping the hand-off to a worker (which costs about a
    // third of the throughput), when the tool has been quick so far: there is neither a
    // long silence to fill with keep-alives nor time for the client to hang up.
    // Notifications it sends are delivered ahead of the answer. Not for a legacy client the
    // call might ask for input: that request must reach it while the call waits. (A quick
    // tool whose handler hangs for good holds this connection until it returns: the one
    // case the deadline answer does not cover in process; plugin isolation covers it.)
    const bool inline_call = !tool.empty() && speeds.quick(tool) && !session->may_be_asked();
    auto mailbox = std::make_shared<Mailbox>(sse_ok && !inline_call, t_caller, SIZE_MAX, modern);
    if (inline_call) {
      const auto started = Clock::now();
      json r = engine.handle(msg, *session, mailbox);
      speeds.record(tool, Clock::now() - started);
      if (r.is_null()) {
        res.status = 204;  // cancelled by the client
        return;
      }
      std::deque<json> notes;
      while (auto n = mailbox->pop(Clock::duration::zero())) notes.push_back(std::move(*n));
      if (!notes.empty() && sse_ok && take_stream()) {
        notes.push_back(std::move(r));
        mailbox->close();
        return start_sse(res, mailbox, std::move(notes), [] {}, std::move(owner));
      }
      return reply_json(res, status_for(r, modern), r);
    }
    const auto started = Clock::now();
    engine.submit(msg, session, mailbox);
    auto try_stream_at = Clock::now() + kUpgradeAfter;
    std::deque<json> early;  // notifications seen before deciding
    for (;;) {
      const auto wait = sse_ok ? std::max<Clock::duration>(try_stream_at - Clock::now(), Clock::duration::zero())
                               : Clock::duration(kKeepAlive);
      auto m = mailbox->pop(wait);
      if (m && is_response(*m)) {
        speeds.record(tool, Clock::now() - started);
        reply_json(res, status_for(*m, modern), *m);
        return;
      }
      if (!m && mailbox->closed()) {  // cancelled by the client: there is no answer to give
        res.status = 204;
        return;
      }
      if (!sse_ok) continue;  // no stream can carry notifications: only the answer matters
      if (m) {
        early.push_back(std::move(*m));
        if (early.size() > 1000) early.pop_front();  // waiting for a stream slot: keep the newest
      }
      if (early.empty() && Clock::now() < try_stream_at) continue;
      if (take_stream()) break;
      // No free stream slot: the answer stays JSON unless one frees up soon.
      try_stream_at = Clock::now() + std::chrono::milliseconds(100);
    }
    start_sse(res, mailbox, std::move(early), [session, id = msg["id"], modern] {
      // 2026-07-28: a closed response stream is the cancellation (mcp-spec §2.8).
      // Legacy: a disconnect is not a cancellation (TR25N); the call runs on.
      if (modern) session->cancel(id);
    }, std::move(owner));
  }

  void start_sse(httplib::Response& res, std::shared_ptr<Mailbox> mailbox, std::deque<json> early,
                 std::function<void()> on_disconnect, std::shared_ptr<HttpSession> owner) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    if (owner) owner->requests.fetch_add(1);
    auto pending = std::make_shared<std::deque<json>>(std::move(early));
    res.set_chunked_content_provider(
        "text/event-stream",
        [mailbox, pending, on_disconnect](size_t, httplib::DataSink& sink) {
          auto write = [&](const std::string& text) {
            if (sink.write(text.data(), text.size())) return true;
            on_disconnect();
            return false;
          };
          for (;;) {
            std::optional<json> m;
            if (!pending->empty()) {
              m = std::move(pending->front());
              pending->pop_front();
            } else {
              m = mailbox->pop(kKeepAlive);
            }
            if (!m) {
              if (mailbox->closed()) break;
              if (!write(": keep-alive\n\n")) return false;
              continue;
            }
            if (!write("event: message\ndata: " + json_text::dump(*m) + "\n\n")) {
              return false;
            }
            if (is_response(*m)) break;
          }
          sink.done();
          return true;
        },
        [this, owner](bool) {
          streams.fetch_sub(1);
          if (owner) owner->requests.fetch_sub(1);
        });
  }

  // ---- Methods --------------------------------------------------------------------------

  void post(const httplib::Request& req, httplib::Response& res) {
    json_text::ParseFailure why;
    auto parsed = json_text::parse_request(req.body, &why);
    if (!parsed) {
      return why == json_text::ParseFailure::kTooDeep
                 ? reply_error(res, 400, nullptr, code::kInvalidRequest, "Invalid Request: " + json_text::describe(why))
                 : reply_error(res, 400, nullptr, code::kParseError, "Parse error: the body is not valid JSON");
    }
    const json& msg = *parsed;
    t_access.mcp_method = protocol::string_member(msg, "method");
    t_access.tool = tool_of(msg);
    // A 2026-07-28 message names its protocol version in params._meta (mcp-spec §2.1); a
    // modern client may also be told by its version header, its body then lacking _meta.
    const protocol::MetaView meta = protocol::MetaView::of(msg);
    const std::string* v = header(req, "MCP-Protocol-Version");
    if (meta.contains(kMetaVersion) || (v != nullptr && trimmed(*v) >= protocol::kModernVersion)) {
      return post_modern(req, res, msg, meta);
    }
    return post_legacy(req, res, msg);
  }

  // 2026-07-28: stateless; routing headers must agree with the body (mcp-spec §4.2).
  void post_modern(const httplib::Request& req, httplib::Response& res, const json& msg, const protocol::MetaView& meta) {
    const json id = msg.contains("id") && protocol::valid_id(msg["id"]) ? msg["id"] : json();
    const bool is_request = msg.contains("id");
    auto mismatch = [&](const std::string& what) {
      reply_error(res, 400, id, code::kHeaderMismatch, "Header mismatch: " + what);
    };
    if (!msg.is_object()) return reply_error(res, 400, nullptr, code::kInvalidRequest, "Invalid Request: expected a JSON-RPC object");
    if (!meta.contains(kMetaVersion)) {
      return reply_error(res, 400, id, code::kInvalidParams,
                         "missing _meta." + std::string(kMetaVersion) + " (required in every 2026-07-28 request)");
    }
    const auto meta_version = meta.find(kMetaVersion);
    const std::string body_version = meta_version && meta_version->is_string() ? meta_version->get<std::string>() : "";
    const std::string* version = header(req, "MCP-Protocol-Version");
    if (version == nullptr) return mismatch("the MCP-Protocol-Version header is required");
    if (trimmed(*version) != body_version) {
      return mismatch("MCP-Protocol-Version header '" + trimmed(*version) + "' differs from _meta." + std::string(kMetaVersion));
    }
    const std::string method = msg.value("method", json()).is_string() ? msg["method"].get<std::string>() : "";
    const std::string* mcp_method = header(req, "Mcp-Method");
    // Notifications may omit Mcp-Method (Claude Code's cancel does, mcp-spec §11).
    if (mcp_method == nullptr && is_request) return mismatch("the Mcp-Method header is required");
    if (mcp_method != nullptr && trimmed(*mcp_method) != method) {
      return mismatch("Mcp-Method header '" + trimmed(*mcp_method) + "' differs from the body's method");
    }
    const char* name_key = method == "tools/call" || method == "prompts/get"                            ? "name"
                           : method == "resources/read"                                                 ? "uri"
                           : method == "tasks/get" || method == "tasks/update" || method == "tasks/cancel" ? "taskId"
                                                                                                        : nullptr;
    if (name_key != nullptr && is_request) {
      const std::string* mcp_name = header(req, "Mcp-Name");
      const json& body_name = msg["params"].value(name_key, json());
      if (mcp_name == nullptr) return mismatch("the Mcp-Name header is required for " + method);
      if (!body_name.is_string() || decode_header_value(trimmed(*mcp_name)) != body_name.get<std::string>()) {
        return mismatch("Mcp-Name header differs from params." + std::string(name_key));
      }
    }
    if (is_request) {
      if (auto err = protocol::check_modern_meta(meta)) {
        return reply_json(res, 400, protocol::make_error(id, *err));
      }
    }
    auto session = std::make_shared<protocol::Session>();  // stateless: nothing outlives the request
    if (!is_request) {
      engine.handle(msg, *session, std::make_shared<Mailbox>(true, nullptr, SIZE_MAX, true));
      return reply_accepted(res);
    }
    exchange(req, res, msg, session, true, nullptr);
  }

  void post_legacy(const httplib::Request& req, httplib::Response& res, const json& msg) {
    const json id = msg.is_object() && msg.contains("id") && protocol::valid_id(msg["id"]) ? msg["id"] : json();
    if (protocol::string_member(msg, "method") == "initialize") return initialize(req, res, msg);

    const std::string* sid = header(req, "Mcp-Session-Id");
    if (sid == nullptr) {
      return reply_error(res, 400, id, code::kInvalidRequest,
                         "Bad Request: Mcp-Session-Id header is required (send initialize first), or use protocol "
                         "2026-07-28 with _meta." + std::string(kMetaVersion));
    }
    auto s = find_session(*sid);
    if (!s) return reply_error(res, 404, id, code::kInvalidRequest, "Session not found or expired: initialize again");
    // MCP-Protocol-Version: absent means 2025-03-26; an unsupported one is refused (the
    // spec's MUST). A supported one other than the session's is served under the session's
    // rules, as the reference SDK does and the 0.1.16 conformance suite expects.
    if (const std::string* v = header(req, "MCP-Protocol-Version");
        v != nullptr && std::find(protocol::kLegacyVersions.begin(), protocol::kLegacyVersions.end(), trimmed(*v)) ==
                            protocol::kLegacyVersions.end()) {
      return reply_error(res, 400, id, code::kInvalidRequest,
                         "Bad Request: unsupported MCP-Protocol-Version '" + trimmed(*v) + "' (this session speaks " +
                             s->session->version() + ")");
    }
    s->requests.fetch_add(1);
    struct Done {
      HttpSession& s;
      ~Done() {
        s.last_used_ms = now_ms();
        s.requests.fetch_sub(1);
      }
    } done{*s};
    const bool request = msg.is_object() && msg.contains("id") && msg.contains("method");
    if (msg.is_array()) {  // 2025-03-26 batch: answered as one JSON array
      json r = engine.handle(msg, *s->session, s->events);
      if (r.is_null()) return reply_accepted(res);
      return reply_json(res, status_for(r, false), r);
    }
    if (!request) {  // notifications and responses
      json r = engine.handle(msg, *s->session, s->events);
      // An answer to the host's request, or a cancellation, may belong to a call running on
      // another replica.
      if (!s->handle.empty() && msg.is_object() &&
          (!msg.contains("method") || protocol::string_member(msg, "method") == "notifications/cancelled")) {
        if (auto st = shared->relay(s->handle, msg); !st) spdlog::warn("http: not passed to other replicas: {}", st.error());
      }
      if (r.is_object() && r.contains("error")) return reply_json(res, status_for(r, false), r);
      return reply_accepted(res);
    }
    exchange(req, res, msg, s->session, false, s);
  }

  // Makes room for one more session of `client`: its own least recently used session goes
  // once it holds max_sessions_per_client, and the host's least recently used one once the
  // host holds max_sessions. Only sessions with no request in progress are ever evicted (a
  // client that lost one just initializes again); false when none could go.
  bool make_room(const std::string& client) {
    std::vector<std::shared_ptr<HttpSession>> evicted;
    bool ok = true;
    {
      std::lock_guard lock(sessions_mutex);
      auto evict_lru = [&](bool own_only) {
        auto victim = sessions.end();
        for (auto it = sessions.begin(); it != sessions.end(); ++it) {
          if ((own_only && it->second->client != client) || it->second->requests > 0) continue;
          if (victim == sessions.end() || it->second->last_used_ms < victim->second->last_used_ms) victim = it;
        }
        if (victim == sessions.end()) return false;
        evicted.push_back(victim->second);
        sessions.erase(victim);
        return true;
      };
      const auto own = static_cast<size_t>(std::count_if(sessions.begin(), sessions.end(), [&](const auto& e) { return e.second->client == client; }));
      if (own >= static_cast<size_t>(config.max_sessions_per_client)) ok = evict_lru(true);
      if (ok && sessions.size() >= static_cast<size_t>(config.max_sessions)) ok = evict_lru(false);
    }
    for (auto& s : evicted) s->events->close();
    if (!evicted.empty()) spdlog::debug("http: evicted {} idle sessions to make room", evicted.size());
    return ok;
  }

  void initialize(const httplib::Request& req, httplib::Response& res, const json& msg) {
    // A client is its user (OAuth), or else its address.
    const std::string client = t_caller ? "user:" + t_caller->principal : "addr:" + req.remote_addr;
    if (!make_room(client)) {
      res.set_header("Retry-After", "5");
      return reply_error(res, 503, msg.value("id", json()), code::kInternalError,
                         "Service Unavailable: too many sessions in use (server.http.max_sessions)");
    }
    auto s = make_session(client, t_caller ? t_caller->principal : "");
    json r = engine.handle(msg, *s->session, s->events);
    if (r.is_object() && r.contains("result")) {
      std::string sid;
      if (shared) {
        SharedSessions::Sealed sealed{s->session->version(), s->session->state().client_capabilities, s->principal, client};
        sid = shared->seal(sealed);
        if (!sid.empty()) share(s, SharedSessions::handle(sid), sealed.expires);
      }
      if (sid.empty()) sid = new_session_id();
      if (sid.empty()) return reply_error(res, 500, msg["id"], code::kInternalError, "cannot create a session id");
      s->session->set_label(label_of(sid));
      {
        std::lock_guard lock(sessions_mutex);
        sessions.emplace(s->handle.empty() ? sid : s->handle, s);
      }
      res.set_header("Mcp-Session-Id", sid);
    }
    reply_json(res, status_for(r, false), r);
  }

  // GET: the legacy session's server-to-client stream; 405 without a session (2026-07-28
  // has none, mcp-spec §4.2).
  void get(const httplib::Request& req, httplib::Response& res) {
    const std::string* sid = header(req, "Mcp-Session-Id");
    if (sid == nullptr) {
      res.set_header("Allow", "POST");
      return reply_error(res, 405, nullptr, -32000, "Method Not Allowed: GET needs an Mcp-Session-Id (legacy sessions)");
    }
    auto s = find_session(*sid);
    if (!s) return reply_error(res, 404, nullptr, code::kInvalidRequest, "Session not found or expired: initialize again");
    if (header_or_empty(req, "Accept").find("text/event-stream") == std::string_view::npos) {
      return reply_error(res, 406, nullptr, code::kInvalidRequest, "Not Acceptable: GET needs Accept: text/event-stream");
    }
    if (!take_stream()) {
      res.set_header("Retry-After", "5");
      return reply_error(res, 503, nullptr, code::kInternalError, "Service Unavailable: too many open streams (server.http.max_streams)");
    }
    start_sse(res, s->events, {}, [] {}, s);
  }

  void del(const httplib::Request& req, httplib::Response& res) {
    const std::string* sid = header(req, "Mcp-Session-Id");
    if (sid == nullptr) {
      res.set_header("Allow", "POST");
      return reply_error(res, 405, nullptr, -32000, "Method Not Allowed: DELETE needs an Mcp-Session-Id (legacy sessions)");
    }
    auto s = find_session(*sid);
    if (!s) return reply_error(res, 404, nullptr, code::kInvalidRequest, "Session not found or expired");
    end_session(key_of(*sid));
    if (!s->handle.empty()) {  // every replica ends it
      if (auto st = shared->end(s->handle, s->expires); !st) {
        return reply_error(res, 503, nullptr, code::kInternalError, "Service Unavailable: the session cannot be ended now: " + st.error());
      }
    }
    res.status = 200;
  }

  // The Codegen MCP server's {"command","args"} envelope (codegen.md §A.1), generic: the
  // command names a tool by prefix. Well-formed envelopes are answered 200 like the old
  // server, with the tool's structured result or {"status":"error","error","details"}.
  void command(const config::CommandEndpoint& endpoint, const httplib::Request& req, httplib::Response& res) {
    auto fail = [&](int status, const std::string& error, const std::string& details) {
      reply_json(res, status, json{{"status", "error"}, {"error", error}, {"details", details}});
    };
    const json env = json_text::parse(req.body).value_or(json());
    if (!env.is_object()) return fail(400, "Invalid JSON", "the body must be a JSON object (nested at most " +
                                                           std::to_string(json_text::kMaxDepth) + " levels deep)");
    const json& command = env.value("command", json());
    const json args = env.value("args", json::object());
    if (!command.is_string()) return fail(400, "Invalid request", "\"command\" (a string) is required");
    if (!args.is_object()) return fail(400, "Invalid request", "\"args\" must be an object");
    const std::string tool = endpoint.tool_prefix + command.get<std::string>();
    t_access.mcp_method = "tools/call";
    t_access.tool = tool;
    json meta{{kMetaVersion, protocol::kModernVersion}, {protocol::kMetaCapabilities, json::object()}};
    json call{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
              {"params", {{"name", tool}, {"arguments", args}, {"_meta", meta}}}};
    protocol::Session session;
    json r = engine.handle(call, session, std::make_shared<Mailbox>(true, t_caller));
    if (r.contains("error")) {
      if (r["error"].value("message", "").starts_with("Unknown tool")) {
        return fail(200, "Unknown command", "Command '" + command.get<std::string>() + "' is not supported.");
      }
      return fail(200, r["error"].value("message", "error"), r["error"].value("data", json()).dump());
    }
    const json result = json_text::built(r["result"]);
    if (result.contains("structuredContent") && result["structuredContent"].is_object()) {
      return reply_json(res, 200, result["structuredContent"]);
    }
    std::string text;
    for (const auto& block : result.value("content", json::array())) {
      if (protocol::string_member(block, "type") == "text") text += protocol::string_member(block, "text");
    }
    if (result.value("isError", json()) == true) return fail(200, text, text);
    reply_json(res, 200, json{{"status", "success"}, {"result", text}});
  }

  // ---- OAuth (server.http.auth.mode: oauth) ----------------------------------------------

  static void write(httplib::Response& res, const auth::Answer& a) {
    res.status = a.status;
    for (const auto& [k, v] : a.headers) res.set_header(k, v);
    if (!a.body.empty() || a.status != 302) res.set_content(a.body, a.content_type);
  }

  void routes_oauth() {
    auto metadata = [this](const httplib::Request&, httplib::Response& res) { write(res, oauth->protected_resource_metadata()); };
    server->Get(oauth->metadata_path(), metadata);
    server->Get("/.well-known/oauth-protected-resource", metadata);
    server->Get("/.well-known/oauth-authorization-server", [this](const httplib::Request&, httplib::Response& res) {
      write(res, oauth->authorization_server_metadata());
    });
    // Posts are bounded per address (OAuthServer::admit).
    auto post = [this](const char* path, auto answer) {
      server->Post(path, [this, answer](const httplib::Request& req, httplib::Response& res) {
        write(res, oauth->admit(req.remote_addr) ? answer(req) : auth::OAuthServer::too_many());
      });
    };
    post("/register", [this](const httplib::Request& req) { return oauth->register_client(req.body); });
    server->Get("/authorize", [this](const httplib::Request& req, httplib::Response& res) {
      write(res, oauth->authorize_form(auth::parse_form(req.target.substr(std::min(req.target.size(), req.target.find('?') + 1)))));
    });
    post("/authorize", [this](const httplib::Request& req) {
      return oauth->authorize_submit(auth::parse_form(req.body), req.get_header_value("Cookie"), req.remote_addr);
    });
    post("/token", [this](const httplib::Request& req) { return oauth->token(auth::parse_form(req.body)); });
    server->Post("/revoke", [this](const httplib::Request& req, httplib::Response& res) { write(res, oauth->revoke(auth::parse_form(req.body))); });
  }

  // ---- Wiring ---------------------------------------------------------------------------

  httplib::Server::HandlerResponse pre_route(const httplib::Request& req, httplib::Response& res) {
    t_access = AccessInfo{Clock::now(), "", ""};
    t_caller.reset();
    // Only OAuth tells endpoints apart; without it nothing is computed here per request.
    const bool protected_path = oauth && (req.path == config.path ||
                                          std::any_of(config.command_endpoints.begin(), config.command_endpoints.end(),
                                                      [&](const auto& e) { return e.path == req.path; }));
    // The Host header is checked everywhere (DNS rebinding). Origin guards the MCP endpoints;
    // the authorization server's pages and endpoints are for browsers and browser-based
    // clients by design (a form post from a page with Referrer-Policy: no-referrer even says
    // "Origin: null"), and /authorize carries its own CSRF protection.
    // A load balancer's readiness check may send no Host, or the replica's own address: it
    // is exempt (it only says ready or not). /healthz, which says more, is not.
    const bool ready_probe = req.path == "/readyz";
    Denial d = ready_probe ? Denial{} : guard.check_origin(header_or_empty(req, "Host"), oauth && !protected_path ? nullptr : header(req, "Origin"));
    if (d.status == 0 && oauth) {
      // OAuth: the MCP endpoints need a token; discovery, the authorization server's own
      // endpoints and /healthz do not.
      if (protected_path) {
        const std::string* authorization = header(req, "Authorization");
        if (auto caller = authorization ? oauth->authenticate(*authorization) : nullptr) {
          t_caller = std::move(caller);
        } else {
          d = {401, authorization ? "Unauthorized: the access token is invalid, expired or revoked" : "Unauthorized: sign in (OAuth)",
               oauth->challenge(authorization ? "invalid_token" : "")};
        }
      }
    } else if (d.status == 0 && !ready_probe && req.path != "/healthz" && req.path != "/metrics") {
      d = guard.check_token(header(req, "Authorization"));
    }
    if (d.status == 0) return httplib::Server::HandlerResponse::Unhandled;
    if (!d.www_authenticate.empty()) res.set_header("WWW-Authenticate", d.www_authenticate);
    if (refused) refused(d.status, d.message);
    reply_error(res, d.status, nullptr, -32000, d.message);
    return httplib::Server::HandlerResponse::Handled;
  }

  void access_log(const httplib::Request& req, const httplib::Response& res) {
    if (!spdlog::should_log(spdlog::level::debug)) return;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t_access.start).count();
    // Never headers or bodies: they carry tokens and user data.
    spdlog::debug("http {} {} {} mcp={} tool={} {:.2f}ms", req.method, req.path, res.status,
                  t_access.mcp_method.empty() ? "-" : t_access.mcp_method, t_access.tool.empty() ? "-" : t_access.tool, ms);
  }

  void configure() {
    Listener::Options o;
    o.workers = static_cast<size_t>(config.worker_threads);
    o.max_connections = static_cast<size_t>(config.max_connections);
    o.limits.max_head_bytes = static_cast<size_t>(config.max_header_bytes);
    o.limits.max_headers = static_cast<size_t>(config.max_headers);
    o.limits.max_body_bytes = static_cast<size_t>(config.max_body_bytes);
    o.header_timeout = std::chrono::milliseconds(config.header_timeout_ms);
    o.body_timeout = std::chrono::milliseconds(config.body_timeout_ms);
    o.idle_timeout = std::chrono::milliseconds(config.keep_alive_timeout_ms);
    o.tls_cert = config.tls.cert;
    o.tls_key = config.tls.key;
    server = std::make_unique<Listener>(std::move(o));
    server->set_pre_routing_handler([this](const auto& req, auto& res) { return pre_route(req, res); });
    server->set_logger([this](const auto& req, const auto& res) { access_log(req, res); });
    // An error status without a body gets a JSON-RPC error as its body.
    auto explain = [](httplib::Response& res) {
      if (!res.body.empty() || res.status < 400) return;
      const std::string what = res.status == 413 ? "Payload Too Large (server.http.max_body_bytes)"
                               : res.status == 404 ? "Not Found"
                                                   : "HTTP error " + std::to_string(res.status);
      reply_error(res, res.status, nullptr, -32000, what);
    };
    server->set_error_handler([explain](const httplib::Request&, httplib::Response& res) { explain(res); });
    const std::string& path = config.path;
    server->Post(path, [this](const auto& req, auto& res) { post(req, res); });
    // The MCP calls themselves, past cpp-httplib's parser (Listener::route_directly): the
    // pre-routing guard, the handler, the error body and the access log, as the routes have.
    server->route_directly(
        path,
        [this, explain](const httplib::Request& req, httplib::Response& res) {
          if (pre_route(req, res) == httplib::Server::HandlerResponse::Unhandled) post(req, res);
          explain(res);
        },
        [this](const auto& req, const auto& res) { access_log(req, res); });
    server->Get(path, [this](const auto& req, auto& res) { get(req, res); });
    server->Delete(path, [this](const auto& req, auto& res) { del(req, res); });
    auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Allow", "GET, POST, DELETE");
      reply_error(res, 405, nullptr, -32000, "Method Not Allowed");
    };
    for (const auto& endpoint : config.command_endpoints) {
      server->Post(endpoint.path, [this, &endpoint](const auto& req, auto& res) { command(endpoint, req, res); });
    }
    server->Put(path, not_allowed);
    server->Patch(path, not_allowed);
    // Readiness, for a load balancer: 503 while the store cannot be reached, so requests go
    // to replicas that can serve them. (/healthz is liveness: it answers while the process
    // runs, and says what is wrong.)
    server->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      if (store != nullptr) {
        if (auto st = store->check(); !st) {
          reply_json(res, 503, json{{"status", "not ready"}, {"reason", st.error()}});
          return;
        }
      }
      reply_json(res, 200, json{{"status", "ready"}});
    });
    if (metrics) {
      server->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics(), "text/plain; version=0.0.4; charset=utf-8");
      });
    }
    server->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
      json h = health();
      std::lock_guard lock(sessions_mutex);
      h["http"] = {{"sessions", sessions.size()}, {"streams", streams.load()}};
      reply_json(res, 200, h);
    });
  }
};

HttpTransport::HttpTransport(protocol::Engine& engine, const config::HttpConfig& config, std::function<json()> health,
                             std::optional<auth::OAuthOptions> oauth, store::StateStore* store)
    : impl_(std::make_unique<Impl>(engine, config, std::move(health))) {
  impl_->oauth_options = std::move(oauth);
  impl_->store = store;
}

void HttpTransport::serve_metrics(std::function<std::string()> metrics) { impl_->metrics = std::move(metrics); }
void HttpTransport::on_refused(std::function<void(int, const std::string&)> fn) { impl_->refused = std::move(fn); }

HttpTransport::~HttpTransport() {
  stop();
  if (impl_->sweeper.joinable()) impl_->sweeper.join();
}

Result<std::string> HttpTransport::bind() {
  const auto& c = impl_->config;
  if (c.tls.cert.empty() != c.tls.key.empty()) return Error{"server.http.tls needs both cert and key"};
  const std::string mode = auth_mode(c.auth);
  if (mode == "bearer" && c.auth.bearer_tokens.empty()) return Error{"server.http.auth.mode is bearer but bearer_tokens is empty"};
  if (mode != "bearer" && !c.auth.bearer_tokens.empty()) return Error{"server.http.auth.bearer_tokens is set but auth.mode is " + mode};
  if (mode == "oauth" && (!impl_->oauth_options || impl_->store == nullptr)) return Error{"OAuth needs its keys and the state store"};
  const bool want_oauth = mode == "oauth";
  if (impl_->store != nullptr && impl_->store->backend() == "postgresql") {
    impl_->shared = std::make_unique<SharedSessions>(*impl_->store);
    impl_->session_events = impl_->store->subscribe([impl = impl_.get()](std::string_view topic, std::string_view body) {
      impl->on_session_event(topic, body);
    });
  }
  impl_->configure();
  if (!impl_->server->is_valid()) return Error{"cannot start the HTTPS server: check server.http.tls cert and key"};
  const size_t colon = c.listen.rfind(':');
  std::string host = c.listen.substr(0, colon);
  const int port = std::stoi(c.listen.substr(colon + 1));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto bound_port = impl_->server->bind(host, port);
  if (!bound_port) return Error{"cannot listen on " + c.listen + ": " + bound_port.error()};
  const int bound = *bound_port;
  const std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  impl_->url = (c.tls.cert.empty() ? "http://" : "https://") + shown_host + ":" + std::to_string(bound);
  if (want_oauth) {
    auto options = *impl_->oauth_options;
    if (options.issuer.empty()) options.issuer = impl_->url;  // the address it listens on
    options.mcp_path = c.path;
    impl_->oauth = std::make_unique<auth::OAuthServer>(std::move(options), *impl_->store);
    impl_->routes_oauth();
  }
  if (host != "127.0.0.1" && host != "::1" && host != "localhost") {
    spdlog::warn("listening beyond loopback on {}{}", c.listen,
                 mode != "none" ? "" : " WITHOUT authentication (set server.http.auth.mode: oauth or bearer)");
  }
  return impl_->url;
}

void HttpTransport::run() {
  impl_->sweeper = std::thread([this] { impl_->sweep_loop(); });
  impl_->server->serve();
}

void HttpTransport::stop() {
  if (impl_->stopping.exchange(true)) return;
  {
    std::lock_guard lock(impl_->sweep_mutex);
  }
  impl_->sweep_cv.notify_all();
  impl_->engine.end_streams();  // their final answers, while the connections are still up
  if (impl_->server) impl_->server->shutdown();
  // Idle GET streams end now; request streams end with their call.
  std::lock_guard lock(impl_->sessions_mutex);
  for (auto& [id, s] : impl_->sessions) s->events->close();
}

}  // namespace mcph::transport
