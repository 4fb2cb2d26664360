#include "reload/watcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

namespace mcph::reload {

namespace fs = std::filesystem;

Result<std::unique_ptr<Watcher>> Watcher::start(const std::vector<std::string>& files, std::function<void()> changed) {
  std::unique_ptr<Watcher> w(new Watcher());
  w->changed_ = std::move(changed);
  w->inotify_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (w->inotify_ < 0) return Error{std::string("inotify: ") + std::strerror(errno)};
  if (::pipe2(w->wake_, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno)};
  std::set<std::string> dirs;
  for (const auto& f : files) {
    const fs::path p(f);
    dirs.insert(p.parent_path().string());
    w->names_.push_back(p.filename().string());
  }
  constexpr uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB;
  for (const auto& d : dirs) {
    if (::inotify_add_watch(w->inotify_, d.c_str(), kEvents) < 0) {
      return Error{"cannot watch " + d + ": " + std::strerror(errno)};
    }
  }
  Watcher* self = w.get();
  w->thread_ = std::thread([self] { self->run(); });
  return w;
}

Watcher::~Watcher() {
  if (thread_.joinable()) {
    const char byte = 0;
    (void)!::write(wake_[1], &byte, 1);
    thread_.join();
  }
  for (int fd : {inotify_, wake_[0], wake_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

void Watcher::run() {
  constexpr int kQuietMs = 200;
  bool pending = false;
  for (;;) {
    pollfd fds[2] = {{inotify_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    const int n = ::poll(fds, 2, pending ? kQuietMs : -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN) != 0) return;
    if (n == 0) {  // quiet for kQuietMs after a change
      pending = false;
      changed_();
      continue;
    }
    alignas(inotify_event) char buffer[16384];
    for (;;) {
      const ssize_t got = ::read(inotify_, buffer, sizeof buffer);
      if (got <= 0) break;
      for (ssize_t at = 0; at < got;) {
        const auto* e = reinterpret_cast<const inotify_event*>(buffer + at);
        const std::string name = e->len > 0 ? std::string(e->name) : std::string();
        // A file we read, or a ConfigMap's "..data" link swapped over it.
        if (std::find(names_.begin(), names_.end(), name) != names_.end() || name.starts_with("..")) pending = true;
        at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      }
    }
  }
}

}  // namespace mcph::reload
