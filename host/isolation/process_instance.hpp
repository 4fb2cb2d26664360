// The child-process runner (isolation: process): the same plugin library, loaded by
// mcp-host-plugin in a supervised child process, behind the same Instance seam. The host
// keeps every service (state, HTTP, users' credentials) and serves the child's requests
// over a socketpair (wire.hpp).
//
// Supervision: a child that crashes, exits, breaks the pipe, goes over limits.memory_mb,
// or ignores the cancellation of a call past its deadline (or cpu_seconds_per_call) is
// ended; every call in flight on it gets a tool error saying which plugin died and how, and
// a new child is started after restart.backoff_ms (doubling while it keeps failing). More
// than restart.max_per_minute crashes in a minute and the instance is failed: its calls
// answer so at once, until the configuration is reloaded. Children never outlive the host
// (PR_SET_PDEATHSIG).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "plugins/instance.hpp"

namespace mcph::isolation {

class ProcessInstance final : public plugins::Instance {
 public:
  // Starts the child and creates the instance in it (under cfg.create_timeout_ms). Errors
  // name the instance and say what the child reported.
  static Result<std::unique_ptr<ProcessInstance>> create(const config::PluginConfig& cfg,
                                                         const std::vector<std::string>& search_dirs,
                                                         plugins::Services services);
  // Asks the child to end its calls and stop (shutdown_grace), then SIGKILL.
  ~ProcessInstance() override;

  void run(const std::string& what, plugins::HandlerRef handler, const std::string& input, mcph_call& call) const override;
  // The call's frame goes out and this returns; the incarnation's reader thread finishes it
  // (its answer, or the process's death) and runs `done`.
  bool start(const std::string& what, plugins::HandlerRef handler, const std::string& input, mcph_call& call,
             std::function<void()> done) const override;
  // While calls started here are in flight and none waits, their answers may be read by
  // the lender (the incarnation's reader thread stays off while lenders come back within
  // kLendFresh), so a transport's reader finishes them itself.
  std::unique_ptr<LentReader> lend_reader() const override;
  void begin_shutdown() override;
  int in_flight() const override;
  plugins::InstanceHealth health() const override;
  bool in_process() const override { return false; }

 private:
  struct Impl;
  ProcessInstance() = default;
  std::unique_ptr<Impl> impl_;
};

// Starts the child process of every enabled isolated instance in `config` now, without
// waiting: it execs and loads its libraries (~10 ms here) while the host opens its store,
// and the first ProcessInstance::create of that name takes it up. end_prestarted() ends
// the ones none took up (the host calls it once its registry is loaded, or failed to).
void prestart(const config::Config& config);
void end_prestarted();

// Where mcp-host-plugin is: $MCP_HOST_PLUGIN_RUNNER, else beside this executable, its
// parent folder (build/tests -> build), or ../lib/mcp-host. Empty when none exists.
std::string runner_path();

}  // namespace mcph::isolation
