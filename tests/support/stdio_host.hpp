// Test support: the real mcp-host binary over stdio with `plugins` (the `plugins:` list
// body), `server` (lines under `server:`) and `top` (more top-level keys, e.g. `store:`),
// initialized in the 2025-11-25 era.
#pragma once

#include <fstream>

#include "host_fixture.hpp"
#include "process.hpp"
#include "rpc.hpp"

namespace mcph::testing {

class StdioHost {
 public:
  explicit StdioHost(const std::string& plugins, const std::string& server = "", const std::string& top = "") {
    const std::string cfg = dir_.str() + "/mcp-host.yaml";
    std::ofstream(cfg) << top << config_yaml(dir_.str() + "/state", plugins, server);
    process_ = std::make_unique<Process>(std::vector<std::string>{MCPH_BINARY, "serve", "--config", cfg});
    process_->send(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", nlohmann::json::object()},
                                         {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
    EXPECT_EQ(process_->read_response(0)["result"]["protocolVersion"], "2025-11-25") << process_->stderr_text();
  }
  Process& p() { return *process_; }
  // Sends `request` and reads the response with its id (null json on timeout).
  nlohmann::json ask(const nlohmann::json& request, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    process_->send(request);
    return process_->read_response(request["id"], nullptr, timeout);
  }
  // The host still answers a plain call of the instance `echo`.
  void expect_alive() {
    nlohmann::json r = ask(call("alive", "echo", {{"text", "still here"}}));
    EXPECT_EQ(text_of(r), "still here") << r << process_->stderr_text();
  }

 private:
  TempDir dir_;
  std::unique_ptr<Process> process_;
};

}  // namespace mcph::testing
