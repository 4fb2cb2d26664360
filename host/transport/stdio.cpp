#include "transport/stdio.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <atomic>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

#include "json/bounded.hpp"

namespace mcph::transport {
namespace {

using nlohmann::json;

// Lines longer than this are refused rather than buffered without bound.
constexpr size_t kMaxLine = 16 * 1024 * 1024;

// Writes whole lines to stdout from any thread. Under load the first writer becomes the
// flusher and writes everything queued meanwhile in one system call, so 64 calls in flight
// do not cost 64 writes (measured in scripts/bench.sh).
class StdoutChannel final : public protocol::ReplyChannel {
 public:
  explicit StdoutChannel(int fd) : fd_(fd) {}
  void send(const json& message) override {
    // Invalid UTF-8 from a plugin becomes U+FFFD instead of throwing here.
    std::string line = message.dump(-1, ' ', false, json::error_handler_t::replace);
    line.push_back('\n');
    std::unique_lock lock(mutex_);
    pending_ += line;
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

 private:
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
  std::atomic<bool> broken_{false};
};

}  // namespace

struct StdioTransport::Impl {
  protocol::Engine& engine;
  int in_fd;
  std::shared_ptr<StdoutChannel> out;
  std::shared_ptr<protocol::Session> session = std::make_shared<protocol::Session>();
  int wake[2] = {-1, -1};

  void on_line(std::string_view line) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
    json_text::ParseFailure why;
    auto message = json_text::parse(line, &why);
    if (!message) {
      out->send(why == json_text::ParseFailure::kTooDeep
                    ? protocol::make_error(nullptr, {protocol::code::kInvalidRequest, "Invalid Request: " + json_text::describe(why), nullptr})
                    : protocol::make_error(nullptr, {protocol::code::kParseError, "Parse error: the line is not valid JSON", nullptr}));
      return;
    }
    engine.submit(*message, session, out);
  }

  void too_long() {
    out->send(protocol::make_error(nullptr, {protocol::code::kInvalidRequest,
                                             "Invalid Request: message longer than " + std::to_string(kMaxLine) + " bytes", nullptr}));
  }
};

StdioTransport::StdioTransport(protocol::Engine& engine, int in_fd, int out_fd)
    : impl_(new Impl{engine, in_fd, std::make_shared<StdoutChannel>(out_fd)}) {
  impl_->session->set_channel(impl_->out);
  if (::pipe2(impl_->wake, O_CLOEXEC | O_NONBLOCK) != 0) spdlog::error("stdio: pipe2 failed: {}", std::strerror(errno));
}

StdioTransport::~StdioTransport() {
  for (int fd : impl_->wake) {
    if (fd >= 0) ::close(fd);
  }
}

void StdioTransport::stop() {
  char c = 1;
  [[maybe_unused]] ssize_t n = ::write(impl_->wake[1], &c, 1);
}

void StdioTransport::run() {
  struct EndSession {
    Impl& impl;
    ~EndSession() { impl.session.reset(); }  // calls still running hold it until they end
  } end{*impl_};
  std::string buffer;
  size_t scanned = 0;   // bytes of buffer already searched for '\n'
  bool skipping = false;  // discarding the rest of an over-long line
  char chunk[65536];
  for (;;) {
    pollfd fds[2] = {{impl_->in_fd, POLLIN, 0}, {impl_->wake[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("stdio: poll failed: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;  // stop()
    ssize_t n = ::read(impl_->in_fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // EOF (or a read error, which ends input just the same)
    buffer.append(chunk, static_cast<size_t>(n));

    size_t start = 0;
    for (size_t nl; (nl = buffer.find('\n', scanned)) != std::string::npos; scanned = start = nl + 1) {
      // Checked per line: a line may end in the very read that takes it past the limit.
      if (!skipping && nl - start > kMaxLine) {
        impl_->too_long();
      } else if (!skipping) {
        impl_->on_line(std::string_view(buffer).substr(start, nl - start));
      }
      skipping = false;
    }
    buffer.erase(0, start);
    scanned = buffer.size();
    if (!skipping && buffer.size() > kMaxLine) {
      impl_->too_long();
      skipping = true;
    }
    if (skipping) {
      buffer.clear();
      scanned = 0;
    }
  }
  if (!skipping && !buffer.empty()) impl_->on_line(buffer);  // a last line without '\n' (never over the limit here)
}

}  // namespace mcph::transport
