#include "transport/stdio.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "json/bounded.hpp"
#include "plugins/instance.hpp"
#include "plugins/registry.hpp"
#include "transport/quick_calls.hpp"

namespace mcph::transport {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Lines longer than this are refused rather than buffered without bound.
constexpr size_t kMaxLine = 16 * 1024 * 1024;
// A reader busy with one call this long is relieved by a standby thread, which looks this
// often while input comes; after kQuiet without any it sleeps until the next.
constexpr auto kTakeOver = std::chrono::milliseconds(1);
constexpr auto kQuiet = std::chrono::milliseconds(100);
// Threads that may be busy with calls that turned out slow, beyond which the reader waits.
constexpr size_t kMaxReaders = 64;
// After a read that brought one line alone, the reader looks for the next this long before
// it sleeps: a client with one call at a time sends its next within that, and waking a
// sleeping thread costs more (on a VM a wake-up from idle is a hypervisor exit). After a
// read of several it sleeps at once: their client has more in flight, and a look that
// misses takes a CPU others need. (The isolation child does the same: isolation/wire.hpp.)
constexpr auto kSpin = std::chrono::microseconds(60);
// Isolated instances whose answers one wait of the reader reads at most (the rest are read
// by their own threads).
constexpr size_t kMaxLent = 16;

// Writes whole lines to stdout from any thread. The reader's own lines wait in a batch
// until it has handled what it read (one write for the answers to a whole read); any
// other thread's line is written at once, with whatever waits before it. Under load the
// first writer becomes the flusher and writes everything queued meanwhile in one system
// call, so 64 calls in flight do not cost 64 writes (measured in scripts/bench.sh). A
// thread in a plugins::DoneBatch (the reader of an isolated instance's answers) has its
// lines written when the batch ends.
class StdoutChannel final : public protocol::ReplyChannel, public std::enable_shared_from_this<StdoutChannel> {
 public:
  explicit StdoutChannel(int fd) : fd_(fd) {}
  bool takes_written() const override { return true; }
  void send(const json& message) override {
    // Invalid UTF-8 from a plugin becomes U+FFFD instead of throwing here.
    std::string line = json_text::dump(message);
    line.push_back('\n');
    std::unique_lock lock(mutex_);
    pending_ += line;
    if (std::this_thread::get_id() == batching_) return;  // flushed when the reader is done
    if (plugins::DoneBatch::open() &&
        plugins::DoneBatch::defer(shared_from_this(), [](void* self) { static_cast<StdoutChannel*>(self)->flush_queued(); })) {
      return;
    }
    flush(lock);
  }
  // Lines this thread sends wait for the next flush().
  void batch_here() {
    std::lock_guard lock(mutex_);
    batching_ = std::this_thread::get_id();
  }
  // Writes what waits; no thread's lines wait any more.
  void flush() {
    std::unique_lock lock(mutex_);
    batching_ = std::thread::id();
    flush(lock);
  }
  // Writes what waits (the reader's batch still waits for flush()).
  void flush_queued() {
    std::unique_lock lock(mutex_);
    flush(lock);
  }

 private:
  void flush(std::unique_lock<std::mutex>& lock) {
    if (flushing_) return;  // the flusher will take it
    flushing_ = true;
    while (!pending_.empty()) {
      std::string out;
      out.swap(pending_);
      lock.unlock();
      write_all(out);
      lock.lock();
    }
    flushing_ = false;
  }
  void write_all(const std::string& text) {
    const char* p = text.data();
    size_t left = text.size();
    while (left > 0 && !broken_) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        broken_ = true;  // the client went away; nothing more to say
        return;
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }

  int fd_;
  std::mutex mutex_;
  std::string pending_;           // guarded by mutex_
  bool flushing_ = false;         // guarded by mutex_
  std::thread::id batching_;      // guarded by mutex_
  std::atomic<bool> broken_{false};
};

}  // namespace

// The input side. Threads take turns as the reader: it reads stdin, splits lines and
// handles them one by one. A call to a tool that has been quick runs right there on the
// reader (no hand-off to a worker: the cost of most calls), its answer batched with the
// others of that read; other calls go to the engine's workers. If a call on the reader
// takes longer than kTakeOver, a standby thread becomes the reader, so input, cancellation
// and the client's answers keep flowing; the old reader finishes its call and stands by
// (the call is answered at its deadline meanwhile, by the engine's watchdog). Only a tool
// call is ever relieved: every other message (initialize above all) is done before the next
// line is read, so the session's order holds.
// run()'s own thread only waits, so it returns at end of input even if a call never does.
struct StdioTransport::Impl {
  Impl(protocol::Engine& e, int in, std::shared_ptr<StdoutChannel> o) : engine(e), in_fd(in), out(std::move(o)) {}
  protocol::Engine& engine;
  int in_fd;
  std::shared_ptr<StdoutChannel> out;
  std::shared_ptr<protocol::Session> session = std::make_shared<protocol::Session>();
  int wake[2] = {-1, -1};
  ToolSpeeds speeds;

  std::mutex mutex;
  std::condition_variable changed;    // for the standbys
  std::condition_variable over;       // for run(): `ended`
  // What was read; bytes from `handled` on are not yet handled (lines are taken from the
  // front without moving the rest: with 64 requests buffered, erasing each line moved the
  // ones behind it, 7,400 instructions per 2026-07-28 call). Guarded by mutex.
  std::string buffer;
  size_t handled = 0;
  size_t scanned = 0;                 // bytes of buffer already searched for '\n'
  size_t lines_read = 0;              // lines taken since the last read
  bool skipping = false;              // discarding the rest of an over-long line
  bool eof = false, ended = false;    // end of input seen; every line handled (or stop())
  std::thread::id reader;             // whose turn it is
  bool reading = false;               // the reader waits for input
  Clock::time_point last_input;       // when it last got some
  bool busy = false;                  // the reader is running a call
  uint64_t calls = 0;                 // calls the readers ran, to tell one long call from many
  size_t standing_by = 0;
  size_t asleep = 0;                  // of them, those that wait for the next input
  std::vector<std::thread> threads;   // joined by ~StdioTransport

  // `session`: the reader's own reference (run() drops the transport's at end of input,
  // maybe while this call still runs).
  // `more`: other lines wait to be read after this one.
  void on_line(std::string_view line, const std::shared_ptr<protocol::Session>& session, bool more) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
    json_text::ParseFailure why;
    auto message = json_text::parse_request(line, &why);
    if (!message) {
      out->send(why == json_text::ParseFailure::kTooDeep
                    ? protocol::make_error(nullptr, {protocol::code::kInvalidRequest, "Invalid Request: " + json_text::describe(why), nullptr})
                    : protocol::make_error(nullptr, {protocol::code::kParseError, "Parse error: the line is not valid JSON", nullptr}));
      return;
    }
    const std::string tool = tool_of(*message);
    if (tool.empty()) return engine.submit(std::move(*message), session, out);
    const auto started = Clock::now();
    if (!speeds.quick(tool) || session->may_be_asked()) {
      // To a worker. Its time is learned when its answer goes out (a tool is slow until it
      // has been quick a few times).
      return engine.submit(std::move(*message), session, std::make_shared<TimedChannel>(out, speeds, tool, started));
    }
    {
      std::lock_guard lock(mutex);
      busy = true;  // from now on a standby may relieve this reader
      ++calls;
    }
    // A call to an isolated instance waits for its process's answer: here only when no
    // other line waits meanwhile (one in flight; with more, workers overlap them).
    engine.submit(std::move(*message), session, out, more ? protocol::Engine::Here::kInProcess : protocol::Engine::Here::kAlways);
    speeds.record(tool, Clock::now() - started);
  }

  // Answers go to stdout; the time until the answer is the tool's speed.
  class TimedChannel final : public protocol::ReplyChannel {
   public:
    TimedChannel(std::shared_ptr<StdoutChannel> out, ToolSpeeds& speeds, std::string tool, Clock::time_point started)
        : out_(std::move(out)), speeds_(speeds), tool_(std::move(tool)), started_(started) {}
    bool takes_written() const override { return true; }
    void send(const json& message) override {
      if (message.contains("id") && (message.contains("result") || message.contains("error"))) {
        speeds_.record(tool_, Clock::now() - started_);
      }
      out_->send(message);
    }

   private:
    std::shared_ptr<StdoutChannel> out_;
    ToolSpeeds& speeds_;
    std::string tool_;
    Clock::time_point started_;
  };

  void too_long() {
    out->send(protocol::make_error(nullptr, {protocol::code::kInvalidRequest,
                                             "Invalid Request: message longer than " + std::to_string(kMaxLine) + " bytes", nullptr}));
  }

  // With mutex held: the next complete line to handle, if any; over-long ones are refused.
  std::optional<std::string> next_line(std::unique_lock<std::mutex>& lock) {
    for (size_t nl; (nl = buffer.find('\n', scanned)) != std::string::npos;) {
      const bool skipped = skipping;
      skipping = false;
      std::string line = buffer.substr(handled, nl - handled);
      handled = scanned = nl + 1;
      if (handled == buffer.size()) {
        buffer.clear();
        handled = scanned = 0;
      }
      if (skipped) continue;
      if (line.size() > kMaxLine) {
        lock.unlock();
        too_long();
        lock.lock();
        continue;
      }
      return line;
    }
    scanned = buffer.size();
    if (!skipping && buffer.size() - handled > kMaxLine) {
      lock.unlock();
      too_long();
      lock.lock();
      skipping = true;
    }
    if (skipping) {
      buffer.clear();
      handled = scanned = 0;
    }
    if (eof && !skipping && handled < buffer.size()) {  // a last line without '\n' (never over the limit here)
      std::string last = buffer.substr(handled);
      buffer.clear();
      handled = scanned = 0;
      return last;
    }
    return std::nullopt;
  }

  // With mutex held: whether another complete line is buffered. It looks from `scanned`
  // and remembers how far it got, so a long partial line is not searched again per line.
  bool line_waits() {
    const size_t nl = buffer.find('\n', scanned);
    scanned = nl == std::string::npos ? buffer.size() : nl;
    return nl != std::string::npos;
  }

  // With mutex held, as the reader: waits for input and appends it. False at its end.
  bool read_more(std::unique_lock<std::mutex>& lock) {
    reading = true;
    const bool lone = std::exchange(lines_read, 0) == 1;
    lock.unlock();
    char chunk[65536];
    ssize_t n = 0;
    bool stopped = false;
    const auto spin_until = lone ? Clock::now() + kSpin : Clock::time_point();
    for (;;) {
      out->flush();  // the answers to what was read so far (and to what the lent readers read)
      // While it waits, this thread reads the answers of the calls it started on isolated
      // instances (Instance::lend_reader): they then wake no other thread of the host. (A
      // lent reading keeps its process's channel, not the catalog: a reload's retired
      // instances end meanwhile, and the death of one's process ends its lending.)
      std::vector<std::unique_ptr<plugins::Instance::LentReader>> lent;
      std::array<pollfd, 2 + kMaxLent> fds;
      fds[0] = {in_fd, POLLIN, 0};
      fds[1] = {wake[0], POLLIN, 0};
      {
        const auto catalog = engine.catalog();  // held while it lends, not while it waits
        for (const auto& inst : catalog->registry->instances()) {
          if (lent.size() == kMaxLent) break;
          if (auto r = inst->lend_reader()) {
            fds[2 + lent.size()] = {r->fd(), POLLIN, 0};
            lent.push_back(std::move(r));
          }
        }
      }
      int ready;
      do {
        ready = ::poll(fds.data(), 2 + lent.size(), Clock::now() < spin_until ? 0 : -1);  // 0: looking, not sleeping
      } while (ready == 0 || (ready < 0 && errno == EINTR));
      for (size_t i = 0; ready > 0 && i < lent.size(); ++i) {
        if (fds[2 + i].revents != 0) lent[i]->serve();
      }
      lent.clear();  // the reading goes back
      if (ready < 0) {
        spdlog::error("stdio: poll failed: {}", std::strerror(errno));
        stopped = true;
        break;
      }
      if (fds[1].revents != 0) {  // stop()
        stopped = true;
        break;
      }
      if (fds[0].revents == 0) continue;  // only answers came: out they go, and it waits again
      n = ::read(in_fd, chunk, sizeof chunk);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      break;  // data, or EOF (a read error ends input just the same)
    }
    lock.lock();
    reading = false;
    if (stopped) return false;
    if (n <= 0) {
      eof = true;
      return true;  // the lines still buffered are handled first
    }
    if (handled > 0) {  // what was handled goes now, once per read
      buffer.erase(0, handled);
      scanned -= handled;
      handled = 0;
    }
    buffer.append(chunk, static_cast<size_t>(n));
    last_input = Clock::now();
    if (asleep > 0) changed.notify_all();  // standbys watch the reader while it works
    return true;
  }

  // One thread's life: the reader's turn when it has it, else standing by to take over.
  void serve() {
    const auto me = std::this_thread::get_id();
    // Over the lines of one read: the calls they start on isolated instances go to each
    // child in one write when the last of them is handled (or the reader is relieved).
    std::optional<plugins::DoneBatch> batch;
    std::unique_lock lock(mutex);
    while (!ended) {
      if (reader == me) {
        if (auto line = next_line(lock)) {
          ++lines_read;
          out->batch_here();
          const auto held = session;  // (copied under the mutex run() resets it under)
          const bool more = line_waits();
          lock.unlock();
          if (more && !batch) batch.emplace();
          on_line(*line, held, more);
          if (!more) batch.reset();
          lock.lock();
          if (reader == me) {
            busy = false;
          } else if (batch) {  // relieved meanwhile: stand by below, holding nothing
            lock.unlock();
            batch.reset();
            lock.lock();
          }
          continue;
        }
        if (eof || !read_more(lock)) {
          lock.unlock();
          out->flush();  // the last answers
          lock.lock();
          ended = true;
          changed.notify_all();
          over.notify_all();
        }
        continue;
      }
      // Standing by: watching every kTakeOver while input comes (not woken per read: that
      // wake-up would cost more than a quick call), asleep once it has stopped coming.
      ++standing_by;
      const uint64_t seen = calls;
      if (reading && Clock::now() - last_input > kQuiet) {
        ++asleep;
        changed.wait(lock);
        --asleep;
      } else {
        changed.wait_for(lock, kTakeOver);
      }
      --standing_by;
      if (!ended && reader != me && busy && calls == seen && !reading) {
        reader = me;  // the reader is stuck in one call: take its turn
        busy = false;
        spdlog::debug("stdio: a call on the reader runs long; another thread reads now");
        if (standing_by == 0 && threads.size() < kMaxReaders) threads.emplace_back([this] { serve(); });
        lock.unlock();
        out->flush();  // what the old reader batched (an input request its call waits on, say)
        lock.lock();
      }
    }
  }
};

StdioTransport::StdioTransport(protocol::Engine& engine, int in_fd, int out_fd)
    : impl_(std::make_unique<Impl>(engine, in_fd, std::make_shared<StdoutChannel>(out_fd))) {
  impl_->session->set_channel(impl_->out);
  if (::pipe2(impl_->wake, O_CLOEXEC | O_NONBLOCK) != 0) spdlog::error("stdio: pipe2 failed: {}", std::strerror(errno));
}

StdioTransport::~StdioTransport() {
  stop();
  {
    std::lock_guard lock(impl_->mutex);
    impl_->ended = true;
    impl_->changed.notify_all();
  }
  for (;;) {  // a thread that takes over may add one
    std::unique_lock lock(impl_->mutex);
    if (impl_->threads.empty()) break;
    std::thread t = std::move(impl_->threads.back());
    impl_->threads.pop_back();
    lock.unlock();
    t.join();
  }
  for (int fd : impl_->wake) {
    if (fd >= 0) ::close(fd);
  }
}

void StdioTransport::stop() {
  char c = 1;
  [[maybe_unused]] ssize_t n = ::write(impl_->wake[1], &c, 1);
}

void StdioTransport::run() {
  Impl& impl = *impl_;
  std::unique_lock lock(impl.mutex);
  impl.threads.emplace_back([&impl] {
    {
      std::lock_guard first(impl.mutex);
      if (impl.reader == std::thread::id()) impl.reader = std::this_thread::get_id();
    }
    impl.serve();
  });
  impl.threads.emplace_back([&impl] { impl.serve(); });  // the first standby
  impl.over.wait(lock, [&] { return impl.ended; });
  // The session is over: it ends (its duration recorded) once the calls still running end.
  impl.session.reset();  // under the mutex: readers copy it under it too
}

}  // namespace mcph::transport
