// Test support: run the real mcp-host binary as a child process with pipes, as an MCP
// client would (line-delimited JSON on stdin/stdout, logs on stderr).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace mcph::testing {

class Process {
 public:
  // argv[0] is the program. Extra environment entries are "NAME=value".
  explicit Process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in_ = in[1];
    out_ = out[0];
    err_ = err[0];
    fcntl(out_, F_SETFL, O_NONBLOCK);
    fcntl(err_, F_SETFL, O_NONBLOCK);
  }
  ~Process() {
    if (pid_ > 0 && !exit_code_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : {in_, out_, err_}) {
      if (fd >= 0) close(fd);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }

  void write_raw(const std::string& text) {
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::write(in_, text.data() + off, text.size() - off);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  void send(const nlohmann::json& message) { write_raw(message.dump() + "\n"); }
  void close_stdin() {
    if (in_ >= 0) close(in_);
    in_ = -1;
  }

  // The next stdout line, or nullopt after `timeout` or at EOF.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = out_buf_.find('\n'); nl != std::string::npos) {
        std::string line = out_buf_.substr(0, nl);
        out_buf_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[65536];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n == 0) return std::nullopt;
      if (n > 0) out_buf_.append(buf, static_cast<size_t>(n));
    }
  }

  // The next stdout message (parsed), or null json.
  nlohmann::json read(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto line = read_line(timeout);
    return line ? nlohmann::json::parse(*line, nullptr, false) : nlohmann::json();
  }

  // Reads messages until one has this id; the others go to `skipped`.
  nlohmann::json read_response(const nlohmann::json& id, std::vector<nlohmann::json>* skipped = nullptr,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto m = read(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
      if (m.is_null()) break;
      if (m.contains("id") && m["id"] == id) return m;
      if (skipped) skipped->push_back(m);
    }
    return nullptr;
  }

  // Reads until `count` responses (messages with an id) have come, in whatever order (calls
  // that run side by side, deadlines that count from each call's start), by id; fewer if
  // `timeout` passes first. Other messages are dropped. Keyed by the id as text: a string
  // id as itself, a number as its digits.
  std::map<std::string, nlohmann::json> read_responses(size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::map<std::string, nlohmann::json> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
      auto m = read(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
      if (m.is_null()) break;
      if (!m.contains("id")) continue;
      const nlohmann::json& id = m["id"];
      out[id.is_string() ? id.get<std::string>() : id.dump()] = std::move(m);
    }
    return out;
  }

  // Everything written to stderr so far.
  std::string stderr_text() {
    char buf[65536];
    for (ssize_t n; (n = ::read(err_, buf, sizeof buf)) > 0;) err_buf_.append(buf, static_cast<size_t>(n));
    return err_buf_;
  }

  // Waits for exit; the exit code, 128+signal, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!exit_code_) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      stderr_text();  // keep the pipe drained
    }
    return exit_code_;
  }

  void signal(int sig) { kill(pid_, sig); }

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::string out_buf_, err_buf_;
  std::optional<int> exit_code_;
};

// Runs a command to completion and returns (exit code, stdout).
inline std::pair<int, std::string> run_command(const std::vector<std::string>& argv,
                                               const std::vector<std::string>& env = {}) {
  Process p(argv, env);
  p.close_stdin();
  std::string out;
  while (auto line = p.read_line(std::chrono::seconds(30))) out += *line + "\n";
  auto code = p.wait(std::chrono::seconds(30));
  return {code.value_or(-1), out + p.stderr_text()};
}

// A loopback TCP port nothing listens on now, for a server that takes its port as given.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("no free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// Polls `pred` every 20 ms until it holds or `timeout` passes: for what another process
// does in its own time (a poller's requests, a log line).
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace mcph::testing
