#include "isolation/child.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "isolation/sandbox.hpp"
#include "isolation/wire.hpp"
#include "json/bounded.hpp"
#include "plugins/in_process.hpp"
#include "services/http_client.hpp"
#include "store/state_store.hpp"

namespace mcph::isolation {
namespace {

using nlohmann::json;

// How long a call may run while its thread still leads (see Child::lazy_).
constexpr long kLazyLimitNs = 2'000'000;

class Child;

// Log lines of the plugin and the runner go to the host's log, in its format.
class ForwardSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ForwardSink(Channel& ch) : ch_(ch) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    ch_.send(Msg::kLog, 0, json{{"level", static_cast<int>(msg.level)}}, std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  Channel& ch_;
};

class Child {
 public:
  explicit Child(int fd) : ch_(fd) {}
  int serve();

  // A service request to the host; the frames it answers with (streamed HTTP parts, then
  // the kReply) go to `on_frame` on this thread. The kReply, or an error if the host is gone.
  // `stop` is polled while waiting: true sends kHttpStop {cancel: true} once.
  std::optional<Frame> ask(const json& head, std::string_view body, const std::function<void(Frame&)>& on_frame = {},
                           const std::function<bool()>& stop = {});
  Channel& channel() { return ch_; }

 private:
  struct Slot {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<Frame> frames;
    bool gone = false;
  };
  struct Call;
  void create(const Frame& f);
  std::shared_ptr<Call> take_call(Frame& f);  // null if malformed (answered already)
  bool read_head_member(Call& c, std::string_view key, std::string_view value);
  void run_call(const std::shared_ptr<Call>& c);
  void send_result(const Call& c);
  void follow(bool main_thread);
  std::shared_ptr<Call> read_until_call();
  void hand_off_reading();
  void hand_off_locked();
  void stand_by();
  void watch_cpu(double limit_s);
  void end_all_slots();

  Channel ch_;
  std::unique_ptr<plugins::InProcessInstance> instance_;  // set once by create()
  std::atomic<plugins::InProcessInstance*> live_{nullptr};  // instance_, once created
  std::atomic<bool> creating_{false};
  std::string instance_name_;  // set before live_
  std::unique_ptr<store::StateStore> state_;
  std::unique_ptr<services::HttpService> http_;
  std::unique_ptr<plugins::TaskReports> tasks_;
  plugins::UserDirectory users_;
  std::unique_ptr<plugins::ResourceListener> listener_;

  std::mutex mutex_;
  std::unordered_map<uint32_t, std::shared_ptr<Slot>> slots_;  // guarded by mutex_
  uint32_t next_slot_ = 0;                                     // guarded by mutex_
  std::unordered_map<uint32_t, std::shared_ptr<Call>> calls_;  // guarded by mutex_
  std::condition_variable calls_done_;                         // a call left calls_
  bool host_gone_ = false;                                     // guarded by mutex_

  // Threads take turns reading the socket (leader/followers): the one reading (the leader)
  // runs a call it reads itself, so a call starts without waking a second thread first.
  std::mutex pool_mutex_;
  std::condition_variable pool_cv_;
  bool leading_ = false;  // guarded by pool_mutex_: some thread reads the socket
  int idle_ = 0;          // guarded by pool_mutex_: followers waiting to lead
  // It runs the call while it still leads (lazily) instead of waking a follower, which
  // costs more than a quick call, even with more frames waiting (a host with many calls in
  // flight sends them back to back: one thread then serves them all in turn). The standby
  // thread hands the reading on if the call outlasts kLazyLimit; a service request from the
  // call hands it on at once (the answer must be read).
  int timer_ = -1;                 // timerfd the standby thread waits on
  std::once_flag standby_started_;  // at the first call (a thread less while the child starts)
  bool lazy_ = false;              // guarded by pool_mutex_
  std::thread::id lazy_thread_;    // guarded by pool_mutex_
  std::chrono::steady_clock::time_point lazy_since_;  // guarded: when the lazy call started
  // Guarded: the timer runs. It is set once for a run of quick calls, not per call (two
  // system calls per call otherwise); when it fires, the standby looks at the call running
  // then and sets it again for that call's remaining time.
  bool timer_set_ = false;
  // Calls read since the leader last waited for the socket. After one alone it looks for
  // the next for kSpin before it sleeps: a client with one call in flight sends it within
  // that (measured: 95–97 % of looks find it). After a batch of them it sleeps at once: with
  // many in flight the host's next batch comes later (60 % of looks missed it), and a look
  // that misses takes the CPU the host needs to send it. The leader's.
  int calls_read_ = 0;
  void set_timer(long ns) {
    const itimerspec t{{0, 0}, {0, ns}};
    timerfd_settime(timer_, 0, &t, nullptr);
    timer_set_ = true;
  }
};

// A call running here; its events become frames.
struct Child::Call final : plugins::CallEvents {
  Call(Channel& ch, uint32_t id) : ch(ch), id(id) {}
  void progress(double progress, double total, std::string_view message) override {
    ch.send(Msg::kProgress, id, json{{"progress", progress}, {"total", total}, {"message", message}});
  }
  void log(mcph_log_level level, std::string_view logger, const json& data) override {
    ch.send(Msg::kCallLog, id, json{{"level", static_cast<int>(level)}, {"logger", logger}}, json_text::dump(data));
  }
  Channel& ch;
  uint32_t id;
  plugins::InProcessInstance* inst = nullptr;  // alive while the call is in calls_
  mcph_call call;
  plugins::Caller caller;
  std::string what, input;
  plugins::HandlerRef ref;
  std::atomic<bool> started{false};
  clockid_t cpu_clock{};
  bool over_cpu = false;  // watcher thread only
};

class RemoteStore final : public store::StateStore {
 public:
  explicit RemoteStore(Child& child) : child_(child) {}
  std::string backend() const override { return "host"; }
  std::string location() const override { return "the host's store"; }
  Status check() override { return Ok{}; }
  Result<std::optional<std::string>> get(std::string_view ns, std::string_view key) override {
    auto r = child_.ask(json{{"op", "state_get"}, {"key", key}}, {});
    if (auto e = failure(r, ns)) return Error{*e};
    if (!r->head.value("found", false)) return std::optional<std::string>();
    return std::optional<std::string>(std::move(r->body));
  }
  Status put(std::string_view ns, std::string_view key, std::string_view value) override {
    auto r = child_.ask(json{{"op", "state_put"}, {"key", key}}, value);
    if (auto e = failure(r, ns)) return Error{*e};
    return Ok{};
  }
  Status erase(std::string_view ns, std::string_view key) override {
    auto r = child_.ask(json{{"op", "state_delete"}, {"key", key}}, {});
    if (auto e = failure(r, ns)) return Error{*e};
    return Ok{};
  }
  Status list(std::string_view ns, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& each) override {
    auto r = child_.ask(json{{"op", "state_list"}, {"key", prefix}}, {});
    if (auto e = failure(r, ns)) return Error{*e};
    read_pairs(r->body, each);
    return Ok{};
  }
  Result<bool> put_if(std::string_view ns, std::string_view key, std::optional<std::string_view> expected,
                      std::optional<std::string_view> value) override {
    std::string body;
    append_pair(body, expected.value_or(""), value.value_or(""));
    auto r = child_.ask(json{{"op", "state_put_if"}, {"key", key}, {"has_expected", expected.has_value()}, {"has_value", value.has_value()}},
                        body);
    if (auto e = failure(r, ns)) return Error{*e};
    return r->head.value("done", false);
  }
  Result<bool> acquire(std::string_view ns, std::string_view name, std::string_view owner,
                       std::chrono::milliseconds ttl) override {
    auto r = child_.ask(json{{"op", "lease_acquire"}, {"key", name}, {"owner", owner}, {"ttl_ms", ttl.count()}}, {});
    if (auto e = failure(r, ns)) return Error{*e};
    return r->head.value("held", false);
  }
  Status each_row(const std::function<bool(std::string_view, std::string_view, std::string_view)>&) override {
    return Error{"not available to a plugin"};
  }
  Status release(std::string_view ns, std::string_view name, std::string_view owner) override {
    auto r = child_.ask(json{{"op", "lease_release"}, {"key", name}, {"owner", owner}}, {});
    if (auto e = failure(r, ns)) return Error{*e};
    return Ok{};
  }

 private:
  // The host serves only this instance's namespace: the child cannot name another.
  static std::optional<std::string> failure(const std::optional<Frame>& r, std::string_view) {
    if (!r) return "the host is gone";
    if (r->head.value("ok", false)) return std::nullopt;
    return r->head.value("error", std::string("state store unavailable"));
  }
  Child& child_;
};

// host->task_update and task_get, answered by the host's task service.
class RemoteTasks final : public plugins::TaskReports {
 public:
  explicit RemoteTasks(Child& child) : child_(child) {}
  mcph_status update(const std::string&, const std::string& handle, const json& update) override {
    auto r = child_.ask(json{{"op", "task_update"}, {"key", handle}}, update.dump());
    return r ? static_cast<mcph_status>(r->head.value("status", static_cast<int>(MCPH_ERR_UNAVAILABLE))) : MCPH_ERR_UNAVAILABLE;
  }
  mcph_status get(const std::string&, const std::string& handle, json& out) override {
    auto r = child_.ask(json{{"op", "task_get"}, {"key", handle}}, {});
    if (!r) return MCPH_ERR_UNAVAILABLE;
    const auto st = static_cast<mcph_status>(r->head.value("status", static_cast<int>(MCPH_ERR_UNAVAILABLE)));
    if (st == MCPH_OK) out = json::parse(r->body, nullptr, false);
    return st;
  }

 private:
  Child& child_;
};

class RemoteHttp final : public services::HttpService {
 public:
  explicit RemoteHttp(Child& child) : child_(child) {}
  services::HttpResponse send(const services::HttpRequest& req) override {
    services::HttpResponse res;
    json head{{"op", "http"},
              {"method", req.method},
              {"url", req.url},
              {"headers", req.headers},
              {"timeout_ms", req.timeout.count()},
              {"connect_timeout_ms", req.connect_timeout.count()},
              {"stream_head", static_cast<bool>(req.on_head)},
              {"stream_body", static_cast<bool>(req.on_body)}};
    if (!req.traceparent.empty()) head["traceparent"] = req.traceparent;
    if (!req.trace_link.empty()) head["trace_link"] = req.trace_link;
    bool reading = true;  // false once a callback said stop
    auto on_frame = [&](Frame& f) {
      if (!reading) return;
      if (f.type == Msg::kHttpHead && req.on_head) {
        services::Headers headers;
        for (const auto& h : f.head.value("headers", json::array())) headers.emplace_back(h.at(0), h.at(1));
        reading = req.on_head(f.head.value("status", 0), headers);
      } else if (f.type == Msg::kHttpBody && req.on_body) {
        reading = req.on_body(f.body.data(), f.body.size());
      }
      if (!reading) child_.channel().send(Msg::kHttpStop, f.id, json{{"cancel", false}});
    };
    auto r = child_.ask(head, req.body, on_frame, req.cancelled);
    if (!r) {
      res.outcome = services::HttpResponse::Outcome::Network;
      res.error = "the host is gone";
      return res;
    }
    res.outcome = static_cast<services::HttpResponse::Outcome>(r->head.value("outcome", 3));
    res.status = r->head.value("status", 0);
    res.error = r->head.value("error", "");
    for (const auto& h : r->head.value("headers", json::array())) res.headers.emplace_back(h.at(0), h.at(1));
    res.body = std::move(r->body);
    return res;
  }

 private:
  Child& child_;
};

class RemoteListener final : public plugins::ResourceListener {
 public:
  explicit RemoteListener(Channel& ch) : ch_(ch) {}
  void resource_updated(const std::string& uri) override { ch_.send(Msg::kResourceUpdated, 0, nullptr, uri); }

 private:
  Channel& ch_;
};

std::optional<Frame> Child::ask(const json& head, std::string_view body, const std::function<void(Frame&)>& on_frame,
                                const std::function<bool()>& stop) {
  {
    std::lock_guard lock(pool_mutex_);  // a lazily run call hands the reading on: its answer must be read
    if (lazy_ && lazy_thread_ == std::this_thread::get_id()) hand_off_locked();
  }
  auto slot = std::make_shared<Slot>();
  uint32_t id;
  {
    std::lock_guard lock(mutex_);
    if (host_gone_) return std::nullopt;
    do id = ++next_slot_; while (id == 0 || slots_.contains(id));
    slots_.emplace(id, slot);
  }
  auto forget = [&] {
    std::lock_guard lock(mutex_);
    slots_.erase(id);
  };
  if (!ch_.send(Msg::kService, id, head, body)) {
    forget();
    return std::nullopt;
  }
  bool stop_sent = false;
  std::unique_lock lock(slot->mutex);
  for (;;) {
    if (stop) {
      slot->cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return !slot->frames.empty() || slot->gone; });
    } else {
      slot->cv.wait(lock, [&] { return !slot->frames.empty() || slot->gone; });
    }
    while (!slot->frames.empty()) {
      Frame f = std::move(slot->frames.front());
      slot->frames.pop_front();
      if (f.type == Msg::kReply) {
        lock.unlock();
        forget();
        return f;
      }
      if (on_frame) {
        lock.unlock();
        on_frame(f);
        lock.lock();
      }
    }
    if (slot->gone) break;
    if (stop && !stop_sent && stop()) {
      stop_sent = true;
      ch_.send(Msg::kHttpStop, id, json{{"cancel", true}});
    }
  }
  lock.unlock();
  forget();
  return std::nullopt;
}

void Child::end_all_slots() {
  std::lock_guard lock(mutex_);
  host_gone_ = true;
  for (auto& [id, slot] : slots_) {
    std::lock_guard slot_lock(slot->mutex);
    slot->gone = true;
    slot->cv.notify_all();
  }
}

void Child::hand_off_reading() {
  std::lock_guard lock(pool_mutex_);
  hand_off_locked();
}

void Child::hand_off_locked() {
  ch_.flush_held();  // the results waited for this thread's next read, which will not come soon
  leading_ = false;
  lazy_ = false;
  if (idle_ > 0) {
    pool_cv_.notify_one();
  } else {
    std::thread([this] { follow(false); }).detach();
  }
}

// Hands the reading on when a lazily run call outlasts its limit.
void Child::stand_by() {
  for (;;) {
    uint64_t expirations;
    if (::read(timer_, &expirations, sizeof expirations) < 0 && errno != EINTR) return;
    std::lock_guard lock(pool_mutex_);
    timer_set_ = false;
    if (!lazy_) continue;
    const long ran = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - lazy_since_).count();
    if (ran >= kLazyLimitNs) {
      hand_off_locked();
    } else {
      set_timer(kLazyLimitNs - ran);
    }
  }
}

void Child::create(const Frame& f) {
  const json& h = f.head;
  config::PluginConfig cfg;
  json result{{"ok", false}};
  try {
    cfg.name = h.at("name");
    cfg.library = h.at("library");
    cfg.credentials = h.at("credentials").get<std::map<std::string, std::string>>();
    cfg.settings = h.at("settings");
    cfg.create_timeout_ms = h.at("create_timeout_ms");
    spdlog::set_level(static_cast<spdlog::level::level_enum>(h.value("log_level", 2)));
    if (auto replica = h.value("replica", ""); !replica.empty()) plugins::set_replica_id(replica);  // its leases are its host's
    auto lib = plugins::Library::load(cfg.library, h.at("search_dirs").get<std::vector<std::string>>());
    if (!lib) {
      result["error"] = lib.error();
    } else {
      state_ = std::make_unique<RemoteStore>(*this);
      http_ = std::make_unique<RemoteHttp>(*this);
      if (h.value("tasks", false)) tasks_ = std::make_unique<RemoteTasks>(*this);
      users_.set([this, name = cfg.name](const std::string& principal) -> std::optional<plugins::Caller> {
        auto r = ask(json{{"op", "user"}, {"principal", principal}}, {});
        if (!r || !r->head.value("found", false)) return std::nullopt;
        plugins::Caller c;
        c.principal = principal;
        c.credentials[name] = r->head.at("credentials").get<std::map<std::string, std::string>>();
        return c;
      });
      auto inst = plugins::InProcessInstance::create(cfg, *lib, plugins::Services{state_.get(), http_.get(), &users_, tasks_.get()});
      if (!inst) {
        result["error"] = inst.error();
      } else {
        instance_ = std::move(*inst);
        instance_name_ = cfg.name;
        listener_ = std::make_unique<RemoteListener>(ch_);
        instance_->set_listener(listener_.get());
        live_ = instance_.get();
        result = {{"ok", true},
                  {"library", {{"path", instance_->library_path()}, {"name", instance_->library_name()}, {"version", instance_->library_version()}}},
                  {"registration", registration_to_json(instance_->host_instance())}};
        const double cpu = h.value("cpu_seconds_per_call", 0.0);
        if (cpu > 0) std::thread([this, cpu] { watch_cpu(cpu); }).detach();
        if (h.value("sandbox", "none") == "strict") {
          if (auto st = enter_strict_sandbox(); !st) result = {{"ok", false}, {"error", "could not enter sandbox: strict: " + st.error()}};
        }
      }
    }
  } catch (const json::exception& e) {
    result["error"] = std::string("malformed create frame: ") + e.what();
  }
  ch_.send(Msg::kCreated, 0, result);
}

namespace {

template <typename Int>
bool integer(std::string_view text, Int& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// The string a (checked) JSON value's text holds; nullopt when it is not a string.
std::optional<std::string> string_of(std::string_view text) {
  if (text.size() >= 2 && text.front() == '"' && text.find('\\') == std::string_view::npos) return std::string(text.substr(1, text.size() - 2));
  auto value = json_text::parse(text);
  if (!value || !value->is_string()) return std::nullopt;
  return std::move(value->get_ref<std::string&>());
}

}  // namespace

// One member of a call's head (ProcessInstance::Impl::call_head), from its value's text;
// false when that value is not what the key needs.
bool Child::read_head_member(Call& c, std::string_view key, std::string_view value) {
  auto text = [&](std::string& out) {
    auto s = string_of(value);
    if (s) out = std::move(*s);
    return s.has_value();
  };
  if (key == "kind") {
    int kind;
    if (!integer(value, kind)) return false;
    c.ref.kind = static_cast<plugins::HandlerRef::Kind>(kind);
  } else if (key == "index") {
    return integer(value, c.ref.index);
  } else if (key == "what") {
    return text(c.what);
  } else if (key == "deadline_ms") {
    int64_t ms;
    if (!integer(value, ms)) return false;
    c.call.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  } else if (key == "principal") {
    return text(c.call.principal);
  } else if (key == "traceparent") {
    return text(c.call.traceparent);
  } else if (key == "state") {
    std::string state;
    if (text(state)) c.call.state = std::move(state);
  } else if (key == "may_hand_over") {
    if (value != "true" && value != "false") return false;
    c.call.may_hand_over = value == "true";
  } else if (key == "client_capabilities" || key == "input_responses" || key == "caller") {
    auto v = json_text::parse(value);
    if (!v) return false;
    if (key == "client_capabilities") {
      c.call.client_capabilities = std::make_shared<const json>(std::move(*v));
    } else if (key == "input_responses") {
      c.call.input_responses = std::move(*v);
    } else if (v->is_object()) {
      c.caller.credentials[instance_name_] = v->get<std::map<std::string, std::string>>();  // (throws if not all strings)
      c.call.caller = &c.caller;
    }
  }
  return true;
}

std::shared_ptr<Child::Call> Child::take_call(Frame& f) {
  auto c = std::make_shared<Call>(ch_, f.id);
  c->input = std::move(f.body);
  // The head is read from its text, member by member: built as a json object first, it
  // took a third of the child's instructions for an echo call (callgrind). A head written
  // compact (as call_head writes it) with up to ScannedObject::kMaxMembers members is split
  // as it lies; any other is built, and its members written out again, to be read alike.
  const std::string_view head_text = f.head_text;
  int required = 0;
  auto read = [&](std::string_view key, std::string_view value) {
    if (!read_head_member(*c, key, value)) {
      c->call.error_text = "malformed call frame: its member '" + std::string(key) + "' is not what it should be";
      return false;
    }
    required += key == "kind" || key == "index" || key == "what" || key == "deadline_ms";
    return true;
  };
  try {
    if (auto scanned = json_text::scan_object(head_text); scanned && scanned->verbatim) {
      for (size_t i = 0; i < scanned->size; ++i) {
        if (!read(scanned->members[i].key, scanned->members[i].value)) break;
      }
    } else if (auto head = json_text::parse(head_text); head && head->is_object()) {
      for (const auto& [key, value] : head->items()) {
        if (!read(key, json_text::dump(value))) break;
      }
    } else {
      c->call.error_text = "malformed call frame: the head is not a JSON object";
    }
  } catch (const json::exception& e) {
    c->call.error_text = std::string("malformed call frame: ") + e.what();
  }
  if (required != 4 && c->call.error_text.empty()) c->call.error_text = "malformed call frame: kind, index, what or deadline_ms is missing";
  if (!c->call.error_text.empty()) {
    ch_.send(Msg::kResult, f.id, json{{"has_outcome", true}, {"is_error", true}, {"error_status", MCPH_ERR_INTERNAL}, {"error_text", c->call.error_text}});
    return nullptr;
  }
  c->caller.principal = c->call.principal;
  c->call.events = c.get();
  std::lock_guard lock(mutex_);  // with the shutdown's check: a registered call keeps the instance alive
  c->inst = live_.load();
  if (c->inst == nullptr) return nullptr;  // shutting down: the host hears of it when the process ends
  calls_[f.id] = c;
  return c;
}

void Child::run_call(const std::shared_ptr<Call>& c) {
  pthread_getcpuclockid(pthread_self(), &c->cpu_clock);
  c->started = true;
  c->inst->run(c->what, c->ref, c->input, c->call);
  send_result(*c);
  std::lock_guard lock(mutex_);  // after its result is sent or held: shutdown waits for it
  calls_.erase(c->id);
  calls_done_.notify_all();
}

void Child::send_result(const Call& c) {
  const mcph_call& o = c.call;
  // Only what is set (the host reads what is missing as unset); for a plain result (an
  // outcome and nothing else), nothing.
  json head;
  if (o.is_error) head["is_error"] = true;
  if (o.error_status != MCPH_OK) head["error_status"] = o.error_status;
  if (!o.error_text.empty()) head["error_text"] = o.error_text;
  if (!o.input_requests.empty()) head["input_requests"] = o.input_requests;
  if (!o.missing_capability.empty()) head["missing_capability"] = o.missing_capability;
  if (o.next_state) head["next_state"] = *o.next_state;
  if (!o.task_handle.empty()) head["task_handle"] = o.task_handle;
  if (!o.has_outcome || !head.is_null()) head["has_outcome"] = o.has_outcome;
  // (A result still as its plugin wrote it, json_text::written, goes as that text.)
  const std::string body = o.is_error || !o.has_outcome ? std::string() : json_text::dump(o.result);
  // The leader, with the next frame already read, holds the result in the channel: the
  // results of a run of calls go out together (one send) when it has no frame left to
  // serve, when the reading is handed on, or before the process exits.
  std::unique_lock lock(pool_mutex_);
  const bool hold = lazy_ && lazy_thread_ == std::this_thread::get_id() && ch_.buffered();
  if (!hold) lock.unlock();  // (one to hold goes in before the reading can be handed on and flushed)
  ch_.send(Msg::kResult, c.id, head, body, hold);
}

// Cancels a call whose handler thread used more CPU than `limit_s`, and tells the host,
// which ends the process if the handler goes on anyway.
void Child::watch_cpu(double limit_s) {
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::vector<std::shared_ptr<Call>> running;
    {
      std::lock_guard lock(mutex_);
      if (host_gone_) return;
      for (auto& [id, c] : calls_) running.push_back(c);
    }
    for (auto& c : running) {
      timespec ts{};
      if (c->over_cpu || !c->started || clock_gettime(c->cpu_clock, &ts) != 0) continue;
      if (static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9 <= limit_s) continue;
      c->over_cpu = true;
      c->call.cancelled = true;
      ch_.send(Msg::kOverCpu, c->id);
    }
  }
}

int Child::serve() {
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("plugin", std::make_shared<ForwardSink>(ch_)));
  timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  follow(true);
  return 0;
}

// A thread of the child: waits to lead, then reads frames until it reads a call, which it
// runs while it still leads (the standby hands the reading on if the call takes longer than
// kLazyLimitNs). The main thread never retires; others do after 30 s idle.
void Child::follow(bool main_thread) {
  for (;;) {
    {
      std::unique_lock lock(pool_mutex_);
      ++idle_;
      const bool lead = pool_cv_.wait_for(lock, std::chrono::seconds(30), [&] { return !leading_; });
      --idle_;
      if (!lead) {
        if (main_thread) continue;
        return;  // someone else leads; this one has been idle long enough
      }
      leading_ = true;
    }
    for (;;) {  // while this thread leads
      std::shared_ptr<Call> call;
      while (!call) call = read_until_call();
      if (timer_ < 0) {  // no standby to relieve it: hand the reading on first
        hand_off_reading();
        run_call(call);
        break;
      }
      std::call_once(standby_started_, [this] { std::thread([this] { stand_by(); }).detach(); });
      {
        std::lock_guard lock(pool_mutex_);
        lazy_ = true;
        lazy_thread_ = std::this_thread::get_id();
        lazy_since_ = std::chrono::steady_clock::now();
        if (!timer_set_) set_timer(kLazyLimitNs);
      }
      run_call(call);
      std::unique_lock lock(pool_mutex_);
      if (!lazy_) break;  // the reading was handed on meanwhile: follow again
      lazy_ = false;
    }
  }
}
// The leader's loop: serves every frame but a call, which it returns.
std::shared_ptr<Child::Call> Child::read_until_call() {
  Frame f;
  for (;;) {
    if (!ch_.buffered()) {
      ch_.flush_held();  // nothing more read: the results held go now
      if (std::exchange(calls_read_, 0) <= 1) ch_.readable_within(kSpin);
    }
    if (!ch_.read(f)) break;  // the host is gone: nothing left to serve
    switch (f.type) {
      case Msg::kCreate:
        // On a thread of its own: create() may use host services, whose answers this
        // thread reads.
        if (!creating_.exchange(true)) std::thread([this, frame = std::move(f)] { create(frame); }).detach();
        break;
      case Msg::kCall:
        ++calls_read_;
        if (live_.load() != nullptr) {
          if (auto c = take_call(f)) return c;
        }
        break;
      case Msg::kCancel: {
        std::lock_guard lock(mutex_);
        if (auto it = calls_.find(f.id); it != calls_.end()) it->second->call.cancelled = true;
        break;
      }
      case Msg::kReply:
      case Msg::kHttpHead:
      case Msg::kHttpBody: {
        std::shared_ptr<Slot> slot;
        {
          std::lock_guard lock(mutex_);
          if (auto it = slots_.find(f.id); it != slots_.end()) slot = it->second;
        }
        if (slot) {
          std::lock_guard lock(slot->mutex);
          slot->frames.push_back(std::move(f));
          slot->cv.notify_all();
        }
        break;
      }
      case Msg::kShutdown:
        // Calls see call_cancelled(); the plugin's destroy() runs once they returned. This
        // thread keeps serving their service requests meanwhile.
        std::thread([this] {
          std::unique_lock lock(mutex_);
          if (live_.exchange(nullptr) != nullptr) {
            instance_->begin_shutdown();
            calls_done_.wait(lock, [&] { return calls_.empty(); });
            lock.unlock();
            instance_.reset();
          }
          ch_.flush_held();
          std::fflush(nullptr);
          _exit(0);
        }).detach();
        break;
      default:
        break;  // unknown frames from a newer host are ignored
    }
  }
  end_all_slots();
  std::fflush(nullptr);
  _exit(0);  // without destroy(): the host is gone and calls may still be running
}

}  // namespace

int serve_child(int fd) {
  Child child(fd);
  return child.serve();
}

}  // namespace mcph::isolation
