// The local control socket: how `mcp-host reload` reaches running hosts. Each serving host
// listens on <state_dir>/control/<pid>.sock (the folder 0700, the socket 0600, and a peer
// of another user is refused), so every stdio host a client started with the same
// state_dir has its own. A request is one line ("reload"); the answer one JSON line,
// {"ok": bool, "message": "..."}.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "result.hpp"

namespace mcph::reload {

class ControlServer {
 public:
  // Answers each request line with handler(line) (its JSON answer), one connection at a time.
  static Result<std::unique_ptr<ControlServer>> start(const std::string& state_dir,
                                                      std::function<nlohmann::json(const std::string&)> handler);
  ~ControlServer();  // stops listening and removes the socket
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  const std::string& path() const { return path_; }

 private:
  ControlServer() = default;
  void run();
  void serve(int fd);

  int listen_ = -1;
  int wake_[2] = {-1, -1};
  std::string path_;
  std::function<nlohmann::json(const std::string&)> handler_;
  std::thread thread_;
};

// What one running host answered (or why it could not be asked).
struct ControlReply {
  int pid = 0;
  bool ok = false;
  std::string message;
};

// Sends `command` to every host listening under `state_dir` and collects their answers
// (sockets whose host is gone are removed). Empty: no host is running there. Each answer
// may take up to `timeout` (a reload creates plugin instances).
std::vector<ControlReply> ask_all(const std::string& state_dir, const std::string& command, std::chrono::milliseconds timeout);

}  // namespace mcph::reload
