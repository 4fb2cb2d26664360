// Which calls a transport may run on its own thread instead of handing them to a worker
// (the hand-off costs more than a quick call itself): tools whose recent calls were quick.
// Both transports use it: HTTP runs such a call on the connection's thread, stdio on its
// reader (which another thread relieves if the call turns out slow, transport/stdio.cpp).
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "protocol/jsonrpc.hpp"

namespace mcph::transport {

// The tool a tools/call message names, else "".
inline std::string tool_of(const nlohmann::json& m) {
  const nlohmann::json* method = protocol::member(m, "method");
  if (method == nullptr || !protocol::is_text(*method, "tools/call")) return "";
  const nlohmann::json* params = protocol::member(m, "params");
  return params != nullptr ? protocol::string_member(*params, "name") : "";
}

// How long each tool's calls took lately (an exponential moving average). A tool counts as
// quick after a few calls averaging under 5 ms. Under load a quick call can take a few ms
// of scheduling delay, which only nudges the average; a call over 100 ms is plainly slow
// and counts fully at once.
class ToolSpeeds {
 public:
  using Clock = std::chrono::steady_clock;
  bool quick(const std::string& tool) {
    std::lock_guard lock(mutex_);
    auto it = stats_.find(tool);
    return it != stats_.end() && it->second.calls >= 3 && it->second.average_us < 5000;
  }
  void record(const std::string& tool, Clock::duration took) {
    if (tool.empty()) return;
    const double us = std::chrono::duration<double, std::micro>(took).count();
    std::lock_guard lock(mutex_);
    Stat& s = stats_[tool];
    s.average_us = s.calls == 0 || us > 100000 ? us : 0.8 * s.average_us + 0.2 * us;
    ++s.calls;
  }

 private:
  struct Stat {
    double average_us = 0;
    uint64_t calls = 0;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, Stat> stats_;  // guarded by mutex_
};

}  // namespace mcph::transport
