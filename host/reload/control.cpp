#include "reload/control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "store/state_store.hpp"

namespace mcph::reload {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxRequest = 1024;
constexpr size_t kMaxAnswer = 1024 * 1024;

std::string os_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// A Unix socket's address holds at most 107 bytes of path; a longer one is reached through
// its folder's descriptor (/proc/self/fd/N/name), which `dir_fd` then keeps open.
Result<sockaddr_un> address_of(const std::string& path, int& dir_fd) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string usable = path;
  if (usable.size() >= sizeof addr.sun_path) {
    dir_fd = ::open(fs::path(path).parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return Error{os_error("cannot open " + fs::path(path).parent_path().string())};
    usable = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + fs::path(path).filename().string();
    if (usable.size() >= sizeof addr.sun_path) return Error{"socket name too long: " + path};
  }
  std::memcpy(addr.sun_path, usable.c_str(), usable.size() + 1);
  return addr;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads one line (without its newline) until `deadline`; empty on timeout or EOF first.
std::string read_line(int fd, Clock::time_point deadline, size_t max) {
  std::string line;
  char c = 0;
  while (line.size() < max) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return "";
    const ssize_t n = ::read(fd, &c, 1);
    if (n <= 0) return "";
    if (c == '\n') return line;
    line += c;
  }
  return line;
}

bool write_all(int fd, const std::string& text) {
  for (size_t at = 0; at < text.size();) {
    const ssize_t n = ::send(fd, text.data() + at, text.size() - at, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::string& state_dir,
                                                            std::function<json(const std::string&)> handler) {
  const std::string dir = state_dir + "/control";
  if (auto st = store::ensure_private_dir(dir); !st) return Error{st.error()};
  std::unique_ptr<ControlServer> s(new ControlServer());
  s->handler_ = std::move(handler);
  s->path_ = dir + "/" + std::to_string(::getpid()) + ".sock";
  Fd dir_fd;
  auto addr = address_of(s->path_, dir_fd.fd);
  if (!addr) return Error{addr.error()};
  ::unlink(addr->sun_path);  // a socket named with our pid is a dead host's
  s->listen_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_ < 0) return Error{os_error("socket")};
  if (::bind(s->listen_, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) return Error{os_error("cannot bind " + s->path_)};
  if (::chmod(addr->sun_path, 0600) != 0 || ::listen(s->listen_, 8) != 0) return Error{os_error("cannot listen on " + s->path_)};
  if (::pipe2(s->wake_, O_CLOEXEC) != 0) return Error{os_error("pipe")};
  ControlServer* self = s.get();
  s->thread_ = std::thread([self] { self->run(); });
  return s;
}

ControlServer::~ControlServer() {
  if (thread_.joinable()) {
    const char byte = 0;
    (void)!::write(wake_[1], &byte, 1);
    thread_.join();
  }
  if (listen_ >= 0) {
    ::close(listen_);
    std::error_code ignored;
    fs::remove(path_, ignored);
  }
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

void ControlServer::run() {
  for (;;) {
    pollfd fds[2] = {{listen_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if ((fds[1].revents & POLLIN) != 0) return;
    Fd conn{::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC)};
    if (conn.fd >= 0) serve(conn.fd);
  }
}

void ControlServer::serve(int fd) {
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || peer.uid != ::geteuid()) {
    spdlog::warn("control socket: refused a connection from uid {}", peer.uid);
    return;
  }
  const std::string line = read_line(fd, Clock::now() + std::chrono::seconds(5), kMaxRequest);
  json answer;
  if (line.empty()) return;
  try {
    answer = handler_(line);
  } catch (...) {
    answer = json{{"ok", false}, {"message", "internal error"}};
  }
  write_all(fd, answer.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

std::vector<ControlReply> ask_all(const std::string& state_dir, const std::string& command, std::chrono::milliseconds timeout) {
  std::vector<ControlReply> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(state_dir + "/control", ec)) {
    const fs::path path = entry.path();
    if (path.extension() != ".sock") continue;
    ControlReply reply;
    try {
      reply.pid = std::stoi(path.stem().string());
    } catch (...) {
      continue;
    }
    Fd dir_fd, sock{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    auto addr = address_of(path.string(), dir_fd.fd);
    if (!addr || sock.fd < 0) continue;
    if (::connect(sock.fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
      if (errno == ECONNREFUSED || errno == ENOENT) fs::remove(path, ec);  // its host is gone
      continue;
    }
    if (!write_all(sock.fd, command + "\n")) continue;
    const std::string line = read_line(sock.fd, Clock::now() + timeout, kMaxAnswer);
    const json answer = json::parse(line, nullptr, false);
    if (answer.is_object()) {
      reply.ok = answer.value("ok", false);
      reply.message = answer.value("message", "");
    } else {
      reply.message = "no answer within " + std::to_string(timeout.count() / 1000) + " s";
    }
    out.push_back(std::move(reply));
  }
  return out;
}

}  // namespace mcph::reload
