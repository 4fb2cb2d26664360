#include "isolation/process_instance.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/dll/runtime_symbol_info.hpp>
#include <spdlog/spdlog.h>

#include "isolation/wire.hpp"
#include "json/bounded.hpp"
#include "services/http_client.hpp"
#include "store/state_store.hpp"

namespace mcph::isolation {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// How long a call that was cancelled for its deadline (or CPU) may take to return before
// its process is ended; and how long a stopping child may take to exit.
constexpr auto kKillGrace = std::chrono::milliseconds(1000);
constexpr auto kExitGrace = std::chrono::milliseconds(2000);
// Outbound HTTP requests one child may have running at once.
constexpr int kMaxHttpRequests = 256;
// How soon the reader thread takes up reading again after the last call stopped waiting.
constexpr auto kReaderLinger = std::chrono::milliseconds(5);
// How long after a transport's reader last lent the reading (lend_reader) the reader thread
// keeps off it: the lender comes back for it after each batch of input it handles.
constexpr auto kLendFresh = std::chrono::milliseconds(2);
// How often a waiting call looks at its cancellation, deadline and CPU.
constexpr auto kWatchEvery = std::chrono::milliseconds(20);

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// Forks every child from one thread that lives as long as the process: PR_SET_PDEATHSIG
// fires when the *thread* that forked ends, not the process, so a child forked by a
// short-lived thread would die with it.
class Spawner {
 public:
  static Spawner& get() {
    static Spawner* spawner = new Spawner();  // never destroyed: children may outlive main()
    return *spawner;
  }
  struct Request {
    std::string path;
    std::vector<std::string> args;
    int fd;  // becomes the child's fd 3
    rlim_t open_files;
  };
  // The child's pid, once it has been forked; `r.fd` is closed then.
  std::future<Result<pid_t>> spawn(Request r) {
    auto done = std::make_shared<std::promise<Result<pid_t>>>();
    auto answer = done->get_future();
    {
      std::lock_guard lock(mutex_);
      jobs_.emplace_back([done, r = std::move(r)] {
        done->set_value(fork_exec(r));
        ::close(r.fd);
      });
    }
    cv_.notify_one();
    return answer;
  }

 private:
  Spawner() {
    std::thread([this] {
      // Every signal blocked on this thread, and so in a child until it has run execv: a
      // handler of the host must never run in a vfork()ed child, which shares its memory.
      // mcp-host-plugin unblocks them first thing.
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_SETMASK, &all, nullptr);
      for (;;) {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return !jobs_.empty(); });
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        job();
      }
    }).detach();
  }

  static Result<pid_t> fork_exec(const Request& r) {
    std::vector<char*> argv;
    for (const auto& a : r.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    // vfork: the child shares the host's memory until execv (no copy of its page tables,
    // which cost milliseconds for a large host) and runs only system calls meanwhile.
    const pid_t pid = vfork();
    if (pid < 0) return Error{std::string("vfork: ") + std::strerror(errno)};
    if (pid == 0) {
      // Only async-signal-safe calls from here to execv.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the host died before prctl
      prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      const rlimit no_core{0, 0};
      setrlimit(RLIMIT_CORE, &no_core);  // a crash dump would hold the plugin's secrets
      if (r.open_files > 0) {
        const rlimit files{r.open_files, r.open_files};
        setrlimit(RLIMIT_NOFILE, &files);
      }
      const int sock = fcntl(r.fd, F_DUPFD, 10);
      const int null_fd = open("/dev/null", O_RDONLY);
      if (sock < 0 || null_fd < 0) _exit(127);
      dup2(null_fd, 0);  // never the host's stdin: that is the MCP stream on stdio
      dup2(2, 1);        // nor its stdout: a plugin's printf goes to the log instead
      dup2(sock, 3);
      syscall(SYS_close_range, 4u, ~0u, 0u);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
};

// Children prestart() started ahead of their instances, by instance name.
struct Prestarted {
  int fd;  // the host's end of its socketpair
  std::future<Result<pid_t>> pid;
};
std::mutex prestarted_mutex;
std::map<std::string, Prestarted> prestarted;  // guarded by prestarted_mutex

// Starts mcp-host-plugin for the instance `cfg` describes; it waits for its kCreate frame.
Result<Prestarted> spawn_child(const config::PluginConfig& cfg, const std::string& runner) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return Error{std::string("socketpair: ") + std::strerror(errno)};
  return Prestarted{fds[0], Spawner::get().spawn({runner, {runner, "--instance", cfg.name}, fds[1], static_cast<rlim_t>(cfg.limits.open_files)})};
}

std::optional<Prestarted> take_prestarted(const std::string& name) {
  std::lock_guard lock(prestarted_mutex);
  auto it = prestarted.find(name);
  if (it == prestarted.end()) return std::nullopt;
  Prestarted p = std::move(it->second);
  prestarted.erase(it);
  return p;
}

// A call waiting for its child's answer. Guarded by its Incarnation's mutex.
struct Pending {
  mcph_call* call = nullptr;
  std::condition_variable cv;  // its answer arrived, it failed, or the read token is free for it
  bool done = false;
  bool over_cpu = false;
  std::string failure;  // set when the child died or was ended
  // Its watch (ProcessInstance::Impl::next_step).
  bool cancel_sent = false;
  Clock::time_point kill_at = Clock::time_point::max();
  std::string kill_reason;
  // A call started without a thread waiting for it (ProcessInstance::start): what it is,
  // and what runs when it is over. Empty for run()'s calls.
  std::string what;
  std::function<void()> on_done;
};

// What a waiting call needs now.
enum class Step { kWait, kCancel, kKill };

// A kResult frame's outcome, parsed before it is handed to its call.
struct Outcome {
  bool has_outcome = false, is_error = false;
  mcph_status error_status = MCPH_OK;
  std::string error_text, missing_capability, task_handle;
  json input_requests, result;
  std::optional<std::string> next_state;

  // The head holds only what is set (send_result), and a plain result has none: its members
  // are read as they come, not looked up one by one.
  explicit Outcome(Frame& f) {
    if (f.head.is_null()) has_outcome = true;  // a plain result
    if (f.head.is_object()) {
      for (auto& [key, v] : *f.head.get_ptr<json::object_t*>()) {
        if (key == "has_outcome" && v.is_boolean()) {
          has_outcome = v.get<bool>();
        } else if (key == "is_error" && v.is_boolean()) {
          is_error = v.get<bool>();
        } else if (key == "error_status" && v.is_number_integer()) {
          error_status = static_cast<mcph_status>(v.get<int>());
        } else if (key == "error_text" && v.is_string()) {
          error_text = std::move(*v.get_ptr<std::string*>());
        } else if (key == "input_requests" && v.is_object()) {
          input_requests = std::move(v);
        } else if (key == "missing_capability" && v.is_string()) {
          missing_capability = std::move(*v.get_ptr<std::string*>());
        } else if (key == "task_handle" && v.is_string()) {
          task_handle = std::move(*v.get_ptr<std::string*>());
        } else if (key == "next_state" && v.is_string()) {
          next_state = std::move(*v.get_ptr<std::string*>());
        }
      }
    }
    if (has_outcome && !is_error) {
      // Checked as the plugin's own call_result checked it; kept as the text it is when it
      // can stand as it is (json_text::written), as in process.
      if (auto given = json_text::object_as_given(f.body)) {
        result = std::move(*given);
      } else {
        is_error = true;
        error_status = MCPH_ERR_INTERNAL;
        error_text = "the plugin's process sent a malformed result";
      }
    }
  }
  void move_to(mcph_call& call) {
    call.has_outcome = has_outcome;
    call.is_error = is_error;
    call.error_status = error_status;
    call.error_text = std::move(error_text);
    call.input_requests = std::move(input_requests);
    call.missing_capability = std::move(missing_capability);
    call.task_handle = std::move(task_handle);
    if (next_state) call.next_state = std::move(next_state);
    if (!result.is_null()) call.result = std::move(result);
  }
};

}  // namespace

void prestart(const config::Config& config) {
  std::string runner;
  std::lock_guard lock(prestarted_mutex);
  for (const auto& entry : config.plugins) {
    if (!entry.enabled || entry.isolation != "process" || prestarted.contains(entry.name)) continue;
    if (runner.empty() && (runner = runner_path()).empty()) return;  // ProcessInstance::create says so
    if (auto child = spawn_child(entry, runner)) prestarted.emplace(entry.name, std::move(*child));
  }
}

void end_prestarted() {
  std::map<std::string, Prestarted> left;
  {
    std::lock_guard lock(prestarted_mutex);
    left.swap(prestarted);
  }
  for (auto& [name, child] : left) {
    if (auto pid = child.pid.get()) {  // it has created nothing yet: nothing to end gently
      ::kill(*pid, SIGKILL);
      waitpid(*pid, nullptr, 0);
    }
    ::close(child.fd);
  }
}

std::string runner_path() {
  if (const char* env = std::getenv("MCP_HOST_PLUGIN_RUNNER"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  const fs::path exe_dir = boost::dll::program_location(ec).parent_path();
  if (ec) return "";
  for (const fs::path& candidate : {exe_dir / "mcp-host-plugin", exe_dir.parent_path() / "mcp-host-plugin",
                                    exe_dir.parent_path() / "lib" / "mcp-host" / "mcp-host-plugin"}) {
    if (fs::is_regular_file(candidate, ec)) return candidate.lexically_normal().string();
  }
  return "";
}

// One child process and the calls and service requests on it.
//
// Reading the socket is a token (`reading`) that one thread holds at a time: a call waiting
// for its answer takes it and reads, so the answer it waits for wakes no other thread;
// frames for others it hands on as it meets them. When no call waits, the incarnation's own
// reader thread holds it, for the child's log lines, service requests and its death. A
// call that starts while that thread waits in poll() kicks it (an eventfd) to let go.
struct Incarnation {
  pid_t pid = 0;
  std::unique_ptr<Channel> ch;
  int kick = -1;  // eventfd: a call wants the read token from the reader thread
  std::thread reader;
  std::mutex mutex;
  std::condition_variable cv;
  using Calls = std::unordered_map<uint32_t, std::shared_ptr<Pending>>;
  Calls calls;                                                                // guarded by mutex
  std::unordered_map<uint32_t, std::shared_ptr<std::atomic<int>>> http_stops;  // 1 stop reading, 2 cancel; guarded
  int http_running = 0;                                                       // guarded by mutex
  std::optional<Frame> created;                                               // guarded by mutex
  bool dead = false;                                                          // guarded by mutex
  std::string kill_reason;                                                    // guarded by mutex
  std::atomic<bool> gone{false};  // dead, for HTTP cancel checks without the lock
  // The read token, guarded by mutex.
  bool reading = false;
  bool reader_reads = false;  // the reader thread holds it
  bool ended = false;         // a read failed: the channel is over; the reader thread reports it
  Clock::time_point lent_at;  // when a transport's reader last asked for it (lend_reader)
  int waiting = 0;            // calls waiting for an answer
  int started = 0;            // calls started without a waiting thread (the reader thread watches them)
  std::vector<Pending*> idle; // of them, those waiting without the token
  std::condition_variable reader_cv;

  ~Incarnation() {
    if (kick >= 0) ::close(kick);
  }

  // With the lock held: the call at `it` is over (answered, or its process is gone). A
  // thread waiting for it is woken; a started call, which none waits for, is taken off the
  // list into `started`, to be finished outside the lock. The next entry.
  Calls::iterator end_call(Calls::iterator it, std::vector<std::shared_ptr<Pending>>& started) {
    if (!it->second->on_done) {
      it->second->cv.notify_one();
      return std::next(it);
    }
    started.push_back(std::move(it->second));
    --this->started;
    return calls.erase(it);
  }

  // Wakes the reader thread from poll() (it then lets go of the read token if a call waits
  // for it, and looks at started calls).
  void kick_reader() const {
    const uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(kick, &one, sizeof one);
  }

  // Ends the process (the reader then reports the death, with `reason`).
  void kill(const std::string& reason) {
    {
      std::lock_guard lock(mutex);
      if (dead || !kill_reason.empty()) return;
      kill_reason = reason;
    }
    ::kill(pid, SIGKILL);
  }

  // Lets go of the read token (with the lock held): to a call waiting without it; the
  // reader thread takes it up once no call waits (or at once to report the end).
  void release_token() {
    reading = reader_reads = false;
    while (!idle.empty() && (idle.back()->done || !idle.back()->failure.empty())) idle.pop_back();
    if (ended) {
      reader_cv.notify_one();  // it reports the end
    } else if (!idle.empty()) {
      idle.back()->cv.notify_one();
      idle.pop_back();
    }
  }

  // A thread other than the reader thread (a waiting call, a lender) lets go of the token
  // after its read, with the lock held: a failed read (`failed`) or a frame that broke the
  // protocol (`broken`) ends the channel, which the reader thread reads again and reports
  // as the death; a broken frame's process is ended.
  void hand_back(std::unique_lock<std::mutex>& lock, bool failed, const std::string& broken) {
    if (failed || !broken.empty()) ended = true;
    release_token();
    if (broken.empty()) return;
    lock.unlock();  // (kill takes it)
    kill("broke the protocol (" + broken + ")");
    lock.lock();
  }

  // Waits up to `timeout` for a frame (with the token held, without the lock), after
  // looking for it for `spin` without sleeping. Ok with `got` false when none came.
  Status read_frame(Frame& f, bool& got, int timeout_ms, bool watch_kick, Clock::duration spin = {}) {
    got = false;
    if (!ch->readable_within(spin)) {
      pollfd fds[2] = {{ch->fd(), POLLIN, 0}, {kick, POLLIN, 0}};
      const int n = ::poll(fds, watch_kick ? 2 : 1, timeout_ms);
      if (watch_kick && (fds[1].revents & POLLIN) != 0) {
        uint64_t count;
        [[maybe_unused]] auto r = ::read(kick, &count, sizeof count);
      }
      if (n <= 0 || fds[0].revents == 0) return Ok{};
    }
    got = true;
    return ch->read(f);
  }
};

struct ProcessInstance::Impl {
  ProcessInstance& self;
  config::PluginConfig cfg;
  std::vector<std::string> dirs;
  plugins::Services services;
  std::string runner;
  json registration;  // as the first child reported it: every restart must match

  mutable std::mutex mutex;
  mutable std::condition_variable cv;          // state or current changed
  std::shared_ptr<Incarnation> current;        // guarded by mutex; null unless running
  std::string state = "running";               // guarded by mutex
  int restarts = 0;                            // guarded by mutex
  std::string last_failure;                    // guarded by mutex
  std::deque<Clock::time_point> crashes;       // guarded by mutex: within the last minute
  std::vector<std::shared_ptr<Incarnation>> dead;  // guarded by mutex: readers to join
  bool stopping = false;                       // guarded by mutex
  std::thread supervisor;
  std::atomic<uint32_t> next_call{0};
  std::atomic<int> in_flight{0};

  Impl(ProcessInstance& s, const config::PluginConfig& c, std::vector<std::string> d, plugins::Services sv)
      : self(s), cfg(c), dirs(std::move(d)), services(sv) {}

  Result<std::shared_ptr<Incarnation>> start();
  void read_loop(const std::shared_ptr<Incarnation>& inc);
  std::string dispatch(const std::shared_ptr<Incarnation>& inc, Frame& f);
  void on_service(const std::shared_ptr<Incarnation>& inc, Frame& f);
  void serve_http(std::shared_ptr<Incarnation> inc, uint32_t id, Frame f);
  void on_death(const std::shared_ptr<Incarnation>& inc, const std::string& broken);
  std::string call_head(const std::string& what, plugins::HandlerRef handler, const mcph_call& call) const;
  uint32_t send_call(const std::shared_ptr<Incarnation>& inc, const std::shared_ptr<Pending>& p, const std::string& what,
                     plugins::HandlerRef handler, const std::string& input);
  Step next_step(Pending& p, Clock::time_point now) const;
  void watch_started(const std::shared_ptr<Incarnation>& inc);
  void conclude(const Pending& p, const std::string& what, mcph_call& call);
  void finish_started(Pending& p);
  void fail(mcph_call& call, mcph_status status, const std::string& text) const;
  void supervise();
  std::string health_text() const;
  struct Lent;
};

// The read token, lent to a transport's reader while it waits for its input. What it reads
// is served as the reader thread would serve it; the token goes back when it is destroyed,
// as a waiting call's does (Incarnation::hand_back).
struct ProcessInstance::Impl::Lent final : plugins::Instance::LentReader {
  Lent(Impl& i, std::shared_ptr<Incarnation> c) : impl(i), inc(std::move(c)) {}
  ~Lent() override {
    std::unique_lock lock(inc->mutex);
    inc->hand_back(lock, failed, broken);
  }
  int fd() const override { return inc->ch->fd(); }
  void serve() override {
    plugins::DoneBatch batch;  // the answers of what came go out together
    Frame f;
    do {
      bool got = false;
      auto st = inc->read_frame(f, got, 0, false);
      if (!st) {
        failed = true;
        return;
      }
      if (!got) return;
      broken = impl.dispatch(inc, f);
    } while (broken.empty() && inc->ch->buffered());
  }

  Impl& impl;
  std::shared_ptr<Incarnation> inc;
  bool failed = false;  // a read failed
  std::string broken;   // what a frame broke
};

Result<std::shared_ptr<Incarnation>> ProcessInstance::Impl::start() {
  if (runner.empty()) return Error{"mcp-host-plugin (the child-process runner) was not found beside mcp-host; set MCP_HOST_PLUGIN_RUNNER"};
  auto inc = std::make_shared<Incarnation>();
  inc->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (inc->kick < 0) return Error{std::string("eventfd: ") + std::strerror(errno)};
  auto child = take_prestarted(cfg.name);
  if (!child) {
    auto spawned = spawn_child(cfg, runner);
    if (!spawned) return Error{spawned.error()};
    child = std::move(*spawned);
  }
  inc->ch = std::make_unique<Channel>(child->fd);
  auto pid = child->pid.get();
  if (!pid) return Error{pid.error()};
  inc->pid = *pid;
  inc->reader = std::thread([this, inc] { read_loop(inc); });
  json head{{"name", cfg.name},
            {"library", cfg.library},
            {"search_dirs", dirs},
            {"credentials", cfg.credentials},
            {"settings", cfg.settings},
            {"create_timeout_ms", cfg.create_timeout_ms},
            {"cpu_seconds_per_call", cfg.limits.cpu_seconds_per_call},
            {"sandbox", cfg.sandbox},
            {"replica", plugins::replica_id()},
            {"tasks", services.tasks != nullptr},
            {"log_level", static_cast<int>(spdlog::get_level())}};
  inc->ch->send(Msg::kCreate, 0, head);
  std::unique_lock lock(inc->mutex);
  // The child's own create() deadline, plus the time it takes to start.
  const auto limit = std::chrono::milliseconds(cfg.create_timeout_ms) + std::chrono::seconds(2);
  if (!inc->cv.wait_for(lock, limit, [&] { return inc->created.has_value() || inc->dead; })) {
    lock.unlock();
    inc->kill("did not finish starting");
    inc->reader.join();
    return Error{"plugin instance '" + cfg.name + "' did not finish starting within " + std::to_string(cfg.create_timeout_ms) +
                 " ms (plugins[].create_timeout_ms); its process was ended"};
  }
  if (inc->dead) {
    const std::string why = inc->kill_reason;
    lock.unlock();
    inc->reader.join();
    return Error{"plugin instance '" + cfg.name + "': its process " + why + " while starting"};
  }
  const json result = inc->created->head;
  lock.unlock();
  if (!result.value("ok", false)) {
    inc->kill("failed to start");
    inc->reader.join();
    std::string why = result.value("error", "the plugin failed to start");
    return Error{why};
  }
  return inc;
}

void ProcessInstance::Impl::read_loop(const std::shared_ptr<Incarnation>& inc) {
  Frame f;
  std::string broken;
  auto watched = Clock::now();
  // The answers of started calls whose results came in one read go out together (one write
  // to stdout for them all); the batch ends when no frame is left buffered.
  std::optional<plugins::DoneBatch> batch;
  for (;;) {
    bool lead = false, started = false;
    {
      std::unique_lock lock(inc->mutex);
      // (Not while a transport's reader lends it: see lend_reader.)
      auto free = [&] {
        return !inc->reading && (inc->ended || (inc->waiting == 0 && Clock::now() - inc->lent_at >= kLendFresh));
      };
      if (batch && !free()) {  // it never sleeps holding answers
        lock.unlock();
        batch.reset();
        lock.lock();
      }
      // Calls do not wake this thread when they are done (that would cost a wake-up per
      // call): it looks again every 5 ms, and at once when the channel ended.
      lead = inc->reader_cv.wait_for(lock, kReaderLinger, free);
      if (lead) inc->reading = inc->reader_reads = true;
      started = inc->started > 0;
    }
    // Calls started without a waiting thread are watched from here.
    if (started && Clock::now() - watched >= kWatchEvery) {
      watch_started(inc);
      watched = Clock::now();
    }
    if (!lead) continue;
    bool got = false;
    // With started calls it sleeps no longer than their next watch. (It does not look for
    // their answers without sleeping first, as a lone waiting call does: under load that
    // takes the CPU the child needs to answer; measured slower at 64 in flight.)
    auto st = started ? inc->read_frame(f, got, static_cast<int>(kWatchEvery.count()), true) : inc->read_frame(f, got, -1, true);
    if (st && got) {
      if (!batch) batch.emplace();
      broken = dispatch(inc, f);  // under the token: a frame is served before the next is read
    }
    const bool more = st && got && inc->ch->buffered();  // (the read side is the token holder's)
    {
      std::lock_guard lock(inc->mutex);
      if (!st || !broken.empty()) inc->ended = true;
      inc->release_token();
    }
    if (!more) batch.reset();
    if (!st) {
      if (st.error() != "closed") broken = st.error();
      break;
    }
    if (!broken.empty()) break;
  }
  batch.reset();
  on_death(inc, broken);
}

// Serves one frame from the child; what broke the protocol, if it did.
std::string ProcessInstance::Impl::dispatch(const std::shared_ptr<Incarnation>& inc, Frame& f) {
  switch (f.type) {
    case Msg::kCreated: {
      std::lock_guard lock(inc->mutex);
      inc->created = std::move(f);
      inc->cv.notify_all();
      break;
    }
    case Msg::kResult: {
      Outcome outcome(f);  // parsed before the lock
      std::vector<std::shared_ptr<Pending>> started;
      {
        std::lock_guard lock(inc->mutex);
        if (auto it = inc->calls.find(f.id); it != inc->calls.end() && !it->second->done) {
          outcome.move_to(*it->second->call);
          it->second->done = true;
          inc->end_call(it, started);
        }
      }
      for (auto& p : started) finish_started(*p);  // no thread waits for it: it is finished here
      break;
    }
    case Msg::kOverCpu: {
      std::lock_guard lock(inc->mutex);
      if (auto it = inc->calls.find(f.id); it != inc->calls.end()) {
        it->second->over_cpu = true;
        it->second->cv.notify_one();
      }
      break;
    }
    case Msg::kProgress:
    case Msg::kCallLog: {
      std::lock_guard lock(inc->mutex);  // the call stays registered (and its events alive) meanwhile
      auto it = inc->calls.find(f.id);
      // Nothing more for a call its client cancelled (the child may not know yet).
      if (it == inc->calls.end() || it->second->call->events == nullptr || it->second->call->cancelled.load()) break;
      plugins::CallEvents* events = it->second->call->events;
      if (f.type == Msg::kProgress) {
        events->progress(f.head.value("progress", 0.0), f.head.value("total", 0.0), f.head.value("message", ""));
      } else {
        json data = json_text::parse(f.body).value_or(json(f.body));
        events->log(static_cast<mcph_log_level>(f.head.value("level", 0)), f.head.value("logger", ""), data);
      }
      break;
    }
    case Msg::kLog:
      spdlog::log(static_cast<spdlog::level::level_enum>(std::clamp(f.head.value("level", 2), 0, 6)), "{}", f.body);
      break;
    case Msg::kService:
      on_service(inc, f);
      break;
    case Msg::kHttpStop: {
      std::lock_guard lock(inc->mutex);
      if (auto it = inc->http_stops.find(f.id); it != inc->http_stops.end()) {
        it->second->store(f.head.value("cancel", false) ? 2 : 1);
      }
      break;
    }
    case Msg::kResourceUpdated:
      self.notify_resource_updated(f.body);
      break;
    default:
      return "sent an unknown frame";
  }
  return "";
}

void ProcessInstance::Impl::on_service(const std::shared_ptr<Incarnation>& inc, Frame& f) {
  const std::string op = f.head.value("op", "");
  const std::string key = f.head.value("key", "");
  json reply{{"ok", true}};
  std::string body;
  auto fail = [&](const std::string& why) { reply = {{"ok", false}, {"error", why}}; };
  store::StateStore* state = services.state;
  // The store namespace is this instance's name: a child cannot reach another's state.
  if ((op.starts_with("state_") || op.starts_with("lease_")) && state == nullptr) {
    fail("no state store (set state_dir)");
  } else if (op == "state_put_if") {
    std::optional<std::string_view> expected, value;
    read_pairs(f.body, [&](std::string_view e, std::string_view v) {
      if (f.head.value("has_expected", false)) expected = e;
      if (f.head.value("has_value", false)) value = v;
      return false;
    });
    if (auto r = state->put_if(cfg.name, key, expected, value); !r) {
      fail(r.error());
    } else {
      reply["done"] = *r;
    }
  } else if (op == "lease_acquire" && self.retired()) {
    reply["held"] = false;  // its replacement leads from now on
  } else if (op == "lease_acquire") {
    // The owner is this host's, whatever the child says: it cannot take another replica's.
    if (auto r = state->acquire(cfg.name, key, self.host_instance().lease_owner(), std::chrono::milliseconds(f.head.value("ttl_ms", int64_t{0}))); !r) {
      fail(r.error());
    } else {
      reply["held"] = *r;
    }
  } else if (op == "lease_release") {
    if (auto r = state->release(cfg.name, key, self.host_instance().lease_owner()); !r) fail(r.error());
  } else if (op == "state_get") {
    auto r = state->get(cfg.name, key);
    if (!r) {
      fail(r.error());
    } else if (r->has_value()) {
      reply["found"] = true;
      body = std::move(**r);
    }
  } else if (op == "state_put") {
    if (auto r = state->put(cfg.name, key, f.body); !r) fail(r.error());
  } else if (op == "state_delete") {
    if (auto r = state->erase(cfg.name, key); !r) fail(r.error());
  } else if (op == "state_list") {
    auto r = state->list(cfg.name, key, [&](std::string_view k, std::string_view v) {
      append_pair(body, k, v);
      return true;
    });
    if (!r) fail(r.error());
  } else if (op == "task_update" || op == "task_get") {
    // The instance is this one, whatever the child says: it cannot report on another's tasks.
    mcph_status st = MCPH_ERR_UNSUPPORTED;
    if (services.tasks != nullptr && op == "task_update") {
      json update = json::parse(f.body, nullptr, false);
      if (update.is_object()) plugins::redact_json(update, self.host_instance().secrets.all());  // as in the host
      st = update.is_object() ? services.tasks->update(cfg.name, key, update) : MCPH_ERR_INVALID_ARGUMENT;
    } else if (services.tasks != nullptr) {
      json out;
      st = services.tasks->get(cfg.name, key, out);
      if (st == MCPH_OK) body = out.dump();
    }
    reply["status"] = st;
  } else if (op == "user") {
    // Only this instance's credentials of that user travel.
    reply = {{"found", false}};
    if (services.users != nullptr) {
      if (auto caller = services.users->find(f.head.value("principal", "")); caller) {
        if (auto it = caller->credentials.find(cfg.name); it != caller->credentials.end()) {
          reply = {{"found", true}, {"credentials", it->second}};
        }
      }
    }
  } else if (op == "http") {
    bool admitted = false;
    {
      std::lock_guard lock(inc->mutex);
      if (inc->http_running < kMaxHttpRequests) {
        ++inc->http_running;
        admitted = true;
        inc->http_stops[f.id] = std::make_shared<std::atomic<int>>(0);
      }
    }
    if (admitted) {
      std::thread([this, inc, id = f.id, frame = std::move(f)]() mutable { serve_http(inc, id, std::move(frame)); }).detach();
      return;
    }
    reply = {{"outcome", static_cast<int>(services::HttpResponse::Outcome::Network)},
             {"error", "too many outbound requests at once (" + std::to_string(kMaxHttpRequests) + ")"}};
  } else {
    fail("unknown service '" + op + "'");
  }
  inc->ch->send(Msg::kReply, f.id, reply, body);
}

void ProcessInstance::Impl::serve_http(std::shared_ptr<Incarnation> inc, uint32_t id, Frame f) {
  std::shared_ptr<std::atomic<int>> stop;
  {
    std::lock_guard lock(inc->mutex);
    stop = inc->http_stops[id];
  }
  services::HttpRequest req;
  const json& h = f.head;
  req.method = h.value("method", "GET");
  req.url = h.value("url", "");
  for (const auto& kv : h.value("headers", json::array())) {
    if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string()) req.headers.emplace_back(kv[0], kv[1]);
  }
  req.body = std::move(f.body);
  req.timeout = std::chrono::milliseconds(h.value("timeout_ms", 30000));
  req.connect_timeout = std::chrono::milliseconds(h.value("connect_timeout_ms", 10000));
  req.traceparent = h.value("traceparent", "");
  req.trace_link = h.value("trace_link", "");
  req.cancelled = [this, inc, stop] { return stop->load() == 2 || inc->gone.load() || self.shutting_down(); };
  if (h.value("stream_head", false)) {
    req.on_head = [inc, id, stop](int status, const services::Headers& headers) {
      inc->ch->send(Msg::kHttpHead, id, json{{"status", status}, {"headers", headers}});
      return stop->load() == 0;
    };
  }
  if (h.value("stream_body", false)) {
    req.on_body = [inc, id, stop](const char* data, size_t len) {
      inc->ch->send(Msg::kHttpBody, id, nullptr, std::string_view(data, len));
      return stop->load() == 0;
    };
  }
  services::HttpResponse res;
  if (services.http == nullptr) {
    res.outcome = services::HttpResponse::Outcome::InvalidRequest;
    res.error = "no HTTP client";
  } else {
    req.origin = cfg.name;
    res = services.http->send(req);
  }
  self.host_.redact(res.error);
  inc->ch->send(Msg::kReply, id,
                json{{"outcome", static_cast<int>(res.outcome)}, {"status", res.status}, {"headers", res.headers}, {"error", res.error}},
                res.body);
  std::lock_guard lock(inc->mutex);
  inc->http_stops.erase(id);
  --inc->http_running;
  inc->cv.notify_all();
}

// The child is gone (or the channel broke): find out how, fail its calls, and let the
// supervisor decide whether to start another.
void ProcessInstance::Impl::on_death(const std::shared_ptr<Incarnation>& inc, const std::string& broken) {
  inc->gone = true;
  inc->ch->shutdown();
  if (!broken.empty()) inc->kill("broke the protocol (" + broken + ")");
  int status = 0;
  // A dying process closes its files before it can be reaped: give it a moment to finish.
  pid_t r = 0;
  for (int i = 0; i < 500 && (r = waitpid(inc->pid, &status, WNOHANG)) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (r == 0) {  // the channel broke but the process lives on: end it
    {
      std::lock_guard lock(inc->mutex);
      if (inc->kill_reason.empty()) inc->kill_reason = broken.empty() ? "closed its connection" : broken;
    }
    ::kill(inc->pid, SIGKILL);
    r = waitpid(inc->pid, &status, 0);
  }
  std::string how;
  {
    std::lock_guard lock(inc->mutex);
    if (!inc->kill_reason.empty()) {
      how = inc->kill_reason;
    } else if (r > 0 && WIFSIGNALED(status)) {
      how = "crashed (" + signal_name(WTERMSIG(status)) + ")";
    } else if (r > 0 && WIFEXITED(status)) {
      how = "exited with status " + std::to_string(WEXITSTATUS(status));
    } else {
      how = "ended";
    }
  }
  // The supervisor's decision, so the calls' errors can say what happens next.
  std::string next;
  {
    std::lock_guard lock(mutex);
    const bool was_current = current == inc;
    if (was_current) current.reset();
    dead.push_back(inc);
    if (was_current && !stopping) {
      const auto now = Clock::now();
      crashes.push_back(now);
      while (!crashes.empty() && now - crashes.front() > std::chrono::minutes(1)) crashes.pop_front();
      last_failure = how;
      if (static_cast<int>(crashes.size()) > cfg.restart.max_per_minute) {
        state = "failed";
        next = "; it failed " + std::to_string(crashes.size()) + " times within a minute and stays stopped until the configuration is reloaded";
      } else {
        state = "restarting";
        next = "; restarting";
      }
      spdlog::error("plugin instance '{}' (pid {}) {}{}", cfg.name, inc->pid, how, next);
    }
    cv.notify_all();
  }
  std::vector<std::shared_ptr<Pending>> started;
  {
    std::lock_guard lock(inc->mutex);
    inc->dead = true;
    if (inc->kill_reason.empty()) inc->kill_reason = how;
    for (auto it = inc->calls.begin(); it != inc->calls.end();) {
      it->second->failure = how + next;
      it = inc->end_call(it, started);
    }
    inc->cv.notify_all();
  }
  for (auto& p : started) finish_started(*p);
}

// A call's frame head: what runs, for whom, until when, with what from earlier rounds.
std::string ProcessInstance::Impl::call_head(const std::string& what, plugins::HandlerRef handler, const mcph_call& call) const {
  // Written as text member by member: building it as a json object first, then writing that
  // out, took ~2,500 instructions of every call under callgrind; this takes ~400.
  const int64_t deadline_ms =
      call.deadline == Clock::time_point::max()
          ? int64_t{1} << 40
          : std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(call.deadline - Clock::now()).count());
  std::string head = "{\"kind\":" + std::to_string(static_cast<int>(handler.kind)) + ",\"index\":" + std::to_string(handler.index) +
                     ",\"deadline_ms\":" + std::to_string(deadline_ms) + ",\"what\":";
  json_text::append_string(head, what);
  auto key = [&](const char* name) { head.append(",\"").append(name).append("\":"); };
  auto text = [&](const char* name, const std::string& value) {
    key(name);
    json_text::append_string(head, value);
  };
  auto value = [&](const char* name, const json& v) {
    key(name);
    head += json_text::dump(v);
  };
  // The rest only when not empty (the child reads what is missing as empty): a quick call's
  // head is read and written once per call on each side.
  if (!call.principal.empty()) text("principal", call.principal);
  if (call.client_capabilities && !call.client_capabilities->empty()) value("client_capabilities", *call.client_capabilities);
  if (!call.input_responses.empty()) value("input_responses", call.input_responses);
  if (call.may_hand_over) value("may_hand_over", true);
  if (call.state) text("state", *call.state);
  if (!call.traceparent.empty()) text("traceparent", call.traceparent);
  if (call.caller != nullptr) {  // only this user's credentials for this instance travel
    auto it = call.caller->credentials.find(cfg.name);
    value("caller", it == call.caller->credentials.end() ? json::object() : json(it->second));
  }
  head += '}';
  return head;
}

// Lists call `p` on `inc` and sends its frame; its id, or 0 (nothing sent) when the process
// is dead already. A started call (p->on_done) is watched by the reader thread from now on.
uint32_t ProcessInstance::Impl::send_call(const std::shared_ptr<Incarnation>& inc, const std::shared_ptr<Pending>& p,
                                          const std::string& what, plugins::HandlerRef handler, const std::string& input) {
  const uint32_t id = next_call.fetch_add(1) + 1;
  {
    std::lock_guard lock(inc->mutex);
    if (inc->dead) return 0;
    inc->calls.emplace(id, p);
    // The reader thread may be asleep without a timeout: it watches started calls from now.
    if (p->on_done && inc->started++ == 0 && inc->reader_reads) inc->kick_reader();
  }
  in_flight.fetch_add(1);
  // A started call, by a thread that finishes calls (the next call of a lane a finished one
  // left): its frame goes out with the others that thread starts meanwhile, in one send. (A
  // waiting call's frame never waits: its thread waits for the answer.)
  const bool hold = p->on_done && plugins::DoneBatch::open() &&
                    plugins::DoneBatch::defer(inc, [](void* i) { static_cast<Incarnation*>(i)->ch->flush_held(); });
  inc->ch->send_written(Msg::kCall, id, call_head(what, handler, *p->call), input, hold);  // a failed send shows up as the child's death
  return id;
}

// With the incarnation's lock held: what a waiting call needs now. Its cancellation goes
// once (cancelled by its client, past its deadline or CPU, or the host stops); past its
// deadline or CPU and still running kKillGrace later, its process is ended (once).
Step ProcessInstance::Impl::next_step(Pending& p, Clock::time_point now) const {
  const bool expired = now >= p.call->deadline;
  if (!p.cancel_sent && (p.call->cancelled.load() || expired || p.over_cpu || self.shutting_down())) {
    p.cancel_sent = true;
    return Step::kCancel;
  }
  if (p.kill_at == Clock::time_point::max() && (expired || p.over_cpu)) {
    p.kill_at = now + kKillGrace;
    p.kill_reason = p.over_cpu ? "was ended because a call used more than " + json(cfg.limits.cpu_seconds_per_call).dump() +
                                     " s of CPU (limits.cpu_seconds_per_call) and ignored its cancellation"
                               : "was ended because a call ignored its cancellation past its deadline";
  }
  if (now < p.kill_at) return Step::kWait;
  p.kill_at = Clock::time_point::max() - std::chrono::hours(1);
  return Step::kKill;
}

// The reader thread's watch over the calls started without a waiting thread.
void ProcessInstance::Impl::watch_started(const std::shared_ptr<Incarnation>& inc) {
  std::vector<std::pair<uint32_t, std::string>> cancel, kill;
  {
    std::lock_guard lock(inc->mutex);
    const auto now = Clock::now();
    for (auto& [id, p] : inc->calls) {
      if (!p->on_done) continue;
      const Step step = next_step(*p, now);
      if (step == Step::kCancel) cancel.emplace_back(id, "");
      if (step == Step::kKill) kill.emplace_back(id, p->kill_reason);
    }
  }
  for (const auto& c : cancel) inc->ch->send(Msg::kCancel, c.first);  // never under the lock
  for (const auto& k : kill) inc->kill(k.second);
}

void ProcessInstance::Impl::fail(mcph_call& call, mcph_status status, const std::string& text) const {
  call.has_outcome = call.is_error = true;
  call.error_status = status;
  call.error_text = "plugin '" + cfg.name + "' " + text;
}

// A call's wait is over (its Pending no longer listed): the error that says why it has no
// outcome, when it has none.
void ProcessInstance::Impl::conclude(const Pending& p, const std::string& what, mcph_call& call) {
  in_flight.fetch_sub(1);
  if (!p.failure.empty()) {  // e.g. "crashed (SIGSEGV)" + "; restarting"
    call.reset_outcome();
    const size_t semi = p.failure.find("; ");
    fail(call, MCPH_ERR_UNAVAILABLE, p.failure.substr(0, semi) + " during " + what + (semi == std::string::npos ? "" : p.failure.substr(semi)));
  } else if (p.over_cpu) {
    call.reset_outcome();
    fail(call, MCPH_ERR_RESOURCE_EXHAUSTED, "used more than " + json(cfg.limits.cpu_seconds_per_call).dump() +
                                                " s of CPU (limits.cpu_seconds_per_call) in " + what + "; cancelled");
  }
}

// A started call is over (answered, or its process died): its owner hears it.
void ProcessInstance::Impl::finish_started(Pending& p) {
  conclude(p, p.what, *p.call);
  std::exchange(p.on_done, nullptr)();
}

void ProcessInstance::Impl::supervise() {
  int failures_in_row = 0;
  std::unique_lock lock(mutex);
  while (!stopping) {
    cv.wait_for(lock, std::chrono::milliseconds(100));
    // Reap readers of ended children.
    for (auto& inc : std::exchange(dead, {})) {
      lock.unlock();
      if (inc->reader.joinable()) inc->reader.join();
      lock.lock();
    }
    if (stopping) break;
    if (state == "running" && current && cfg.limits.memory_mb > 0) {
      // Resident memory, checked every 100 ms (RLIMIT_AS would count address space, not use).
      const auto inc = current;
      lock.unlock();
      long pages = 0;
      if (FILE* f = std::fopen(("/proc/" + std::to_string(inc->pid) + "/statm").c_str(), "r")) {
        long size = 0;
        if (std::fscanf(f, "%ld %ld", &size, &pages) != 2) pages = 0;
        std::fclose(f);
      }
      const long mib = pages * sysconf(_SC_PAGESIZE) / (1024 * 1024);
      if (mib > cfg.limits.memory_mb) {
        inc->kill("was ended for going over its memory limit (" + std::to_string(mib) + " MiB resident; limits.memory_mb: " +
                  std::to_string(cfg.limits.memory_mb) + ")");
      }
      lock.lock();
      continue;
    }
    if (state != "restarting") continue;
    // Back off: backoff_ms, doubling with each failure in a row, at most 30 s.
    const auto delay = std::chrono::milliseconds(std::min<long long>(
        static_cast<long long>(cfg.restart.backoff_ms) << std::min(failures_in_row, 16), 30000));
    if (cv.wait_for(lock, delay, [&] { return stopping; })) break;
    lock.unlock();
    auto inc = start();
    std::string problem;
    if (inc && (*inc)->created->head.value("registration", json()) != registration) {
      problem = "registered different tools, resources or prompts after restarting; reload the configuration to pick them up";
    }
    lock.lock();
    if (inc && problem.empty() && !stopping) {
      current = *inc;
      state = "running";
      ++restarts;
      failures_in_row = 0;
      spdlog::info("plugin instance '{}' restarted (pid {})", cfg.name, current->pid);
      cv.notify_all();
      continue;
    }
    if (inc) {
      lock.unlock();
      (*inc)->kill(problem.empty() ? "stopping" : problem);
      lock.lock();
    }
    if (stopping) break;
    ++failures_in_row;
    last_failure = problem.empty() ? inc.error() : problem;
    crashes.push_back(Clock::now());
    if (!problem.empty() || static_cast<int>(crashes.size()) > cfg.restart.max_per_minute) {
      state = "failed";
      spdlog::error("plugin instance '{}' failed: {}", cfg.name, last_failure);
    } else {
      spdlog::error("plugin instance '{}' could not restart: {}", cfg.name, last_failure);
    }
    cv.notify_all();
  }
}

std::string ProcessInstance::Impl::health_text() const {
  if (state == "failed") {
    return "is failed (" + last_failure + "); fix the plugin and reload the configuration";
  }
  if (stopping) return "is shutting down";
  return "is restarting after it " + last_failure;
}

Result<std::unique_ptr<ProcessInstance>> ProcessInstance::create(const config::PluginConfig& cfg,
                                                                 const std::vector<std::string>& search_dirs,
                                                                 plugins::Services services) {
  std::unique_ptr<ProcessInstance> self(new ProcessInstance());
  self->impl_ = std::make_unique<Impl>(*self, cfg, search_dirs, services);
  Impl& impl = *self->impl_;
  impl.runner = runner_path();
  self->config_ = cfg;
  self->host_.name = cfg.name;
  self->host_.credentials = cfg.credentials;
  self->host_.services = services;
  self->host_.fix_credential_secrets();  // every credential, until the plugin declares some public
  auto inc = impl.start();
  if (!inc) {
    std::string why = inc.error();
    self->host_.redact(why);  // the child's message may quote a credential
    if (why.starts_with("plugin instance '")) return Error{why};
    return Error{"plugin '" + cfg.name + "' (line " + std::to_string(cfg.line) + ", isolation: process): " + why};
  }
  const json& created = (*inc)->created->head;
  const json& lib = created.value("library", json::object());
  self->library_path_ = lib.value("path", cfg.library);
  self->library_id_ = plugins::file_id(self->library_path_);
  self->library_name_ = lib.value("name", "");
  self->library_version_ = lib.value("version", "");
  impl.registration = created.value("registration", json::object());
  if (auto st = registration_from_json(impl.registration, self->host_); !st) {
    (*inc)->kill("sent a malformed registration");
    (*inc)->reader.join();
    return Error{"plugin instance '" + cfg.name + "': " + st.error()};
  }
  self->host_.fix_credential_secrets();
  impl.current = *inc;
  impl.supervisor = std::thread([&impl] { impl.supervise(); });
  return self;
}

ProcessInstance::~ProcessInstance() {
  Impl& impl = *impl_;
  std::shared_ptr<Incarnation> inc;
  {
    std::lock_guard lock(impl.mutex);
    impl.stopping = true;
    impl.state = "stopping";
    inc = impl.current;
    impl.cv.notify_all();
  }
  if (impl.supervisor.joinable()) impl.supervisor.join();
  if (inc) {
    // The child cancels its calls, runs the plugin's destroy() and exits; else SIGKILL.
    inc->ch->send(Msg::kShutdown, 0);
    std::unique_lock lock(inc->mutex);
    if (!inc->cv.wait_for(lock, kExitGrace, [&] { return inc->dead; })) {
      lock.unlock();
      inc->kill("did not stop within " + std::to_string(kExitGrace.count()) + " ms; killed");
      lock.lock();
      inc->cv.wait(lock, [&] { return inc->dead; });
    }
    // Service threads still answering the child end quickly: it is gone.
    inc->cv.wait(lock, [&] { return inc->http_running == 0; });
  }
  std::vector<std::shared_ptr<Incarnation>> dead;
  {
    std::lock_guard lock(impl.mutex);
    dead = std::exchange(impl.dead, {});
  }
  for (auto& d : dead) {
    if (d->reader.joinable()) d->reader.join();
    std::unique_lock lock(d->mutex);
    d->cv.wait(lock, [&] { return d->http_running == 0; });
  }
}

void ProcessInstance::begin_shutdown() {
  Instance::begin_shutdown();
  std::lock_guard lock(impl_->mutex);
  impl_->cv.notify_all();
}

int ProcessInstance::in_flight() const { return impl_->in_flight.load(); }

plugins::InstanceHealth ProcessInstance::health() const {
  std::lock_guard lock(impl_->mutex);
  plugins::InstanceHealth h;
  h.mode = "process";
  h.state = impl_->state;
  h.pid = impl_->current ? impl_->current->pid : 0;
  h.restarts = impl_->restarts;
  h.last_failure = impl_->last_failure;
  return h;
}

void ProcessInstance::run(const std::string& what, plugins::HandlerRef handler, const std::string& input, mcph_call& call) const {
  Impl& impl = *impl_;
  call.host = &host_;
  call.reset_outcome();
  // A child that is restarting gets until the call's deadline to come back.
  std::shared_ptr<Incarnation> inc;
  {
    std::unique_lock lock(impl.mutex);
    impl.cv.wait_until(lock, call.deadline, [&] {
      return impl.current != nullptr || impl.state == "failed" || impl.stopping || shutting_down() || call.cancelled.load();
    });
    inc = impl.current;
    if (!inc || shutting_down()) {
      impl.fail(call, MCPH_ERR_UNAVAILABLE, shutting_down() ? "is shutting down" : impl.health_text());
      return;
    }
  }
  auto p = std::make_shared<Pending>();
  p->call = &call;
  const uint32_t id = impl.send_call(inc, p, what, handler, input);
  if (id == 0) {
    std::lock_guard lock(inc->mutex);
    impl.fail(call, MCPH_ERR_UNAVAILABLE, inc->kill_reason + " before " + what + " could start");
    return;
  }

  bool spun = false;
  std::unique_lock lock(inc->mutex);
  ++inc->waiting;
  if (inc->reader_reads) inc->kick_reader();  // ask the reader thread for the token
  while (!p->done && p->failure.empty()) {
    const auto now = Clock::now();
    if (const Step step = impl.next_step(*p, now); step != Step::kWait) {
      lock.unlock();  // never hold the lock on a socket write
      if (step == Step::kCancel) {
        inc->ch->send(Msg::kCancel, id);
      } else {
        inc->kill(p->kill_reason);
      }
      lock.lock();
      continue;
    }
    const auto wake = std::min(now + kWatchEvery, p->kill_at);
    if (inc->reading || inc->ended) {
      inc->idle.push_back(p.get());
      p->cv.wait_until(lock, wake);
      if (auto it = std::find(inc->idle.begin(), inc->idle.end(), p.get()); it != inc->idle.end()) inc->idle.erase(it);
      continue;
    }
    inc->reading = true;  // this call reads until its answer comes
    // A call alone on its instance looks for its answer for kSpin before it sleeps (once);
    // with other calls waiting the CPU is theirs.
    const bool spin = !spun && inc->waiting == 1;
    spun = true;
    lock.unlock();
    Frame f;
    bool got = false;
    const int timeout_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wake - Clock::now()).count());
    auto st = inc->read_frame(f, got, std::max(timeout_ms, 0), false, spin ? kSpin : Clock::duration::zero());
    std::string broken = st && got ? impl.dispatch(inc, f) : std::string();
    lock.lock();
    inc->hand_back(lock, !st, broken);
  }
  // The reader thread reads for the started calls once no call waits.
  if (--inc->waiting == 0 && inc->started > 0) inc->reader_cv.notify_one();
  inc->calls.erase(id);
  lock.unlock();
  impl.conclude(*p, what, call);
}

std::unique_ptr<plugins::Instance::LentReader> ProcessInstance::lend_reader() const {
  std::shared_ptr<Incarnation> inc;
  {
    std::lock_guard lock(impl_->mutex);
    inc = impl_->current;
  }
  if (!inc) return nullptr;
  {
    std::lock_guard lock(inc->mutex);
    // Nothing to read for; a call that waits reads its own answer; or the channel is over.
    if (inc->started == 0 || inc->waiting > 0 || inc->ended) return nullptr;
    inc->lent_at = Clock::now();  // the reader thread keeps off (and lets go after its next frame)
    if (inc->reading) return nullptr;
    inc->reading = true;
  }
  return std::make_unique<Impl::Lent>(*impl_, std::move(inc));
}

bool ProcessInstance::start(const std::string& what, plugins::HandlerRef handler, const std::string& input, mcph_call& call,
                            std::function<void()> done) const {
  Impl& impl = *impl_;
  std::shared_ptr<Incarnation> inc;
  {
    std::lock_guard lock(impl.mutex);
    if (!impl.current || shutting_down()) return false;  // run() waits for a restart, or says why not
    inc = impl.current;
  }
  call.host = &host_;
  call.reset_outcome();
  auto p = std::make_shared<Pending>();
  p->call = &call;
  p->what = what;
  p->on_done = std::move(done);
  return impl.send_call(inc, p, what, handler, input) != 0;
}

}  // namespace mcph::isolation
