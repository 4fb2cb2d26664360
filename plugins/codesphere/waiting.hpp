// codesphere plugin: bounded waiting for pipeline stages and for a workspace to run.
//
// Every wait polls at settings.poll_interval_ms, reports MCP progress at every poll
// ("prepare: running, 12.0 s elapsed"), sleeps in slices of at most 50 ms checking for
// cancellation, and ends at its timeout. A cancelled wait throws a ToolError that says the
// stage goes on upstream: the plugin stops watching, Codesphere does not stop working.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "pipeline.hpp"
#include "tools.hpp"

namespace codesphere {

// MCP progress for one call: a counter that only grows, over an estimated total.
class Progress {
 public:
  Progress(const sdk::Call& call, double total) : call_(call), total_(total) {}
  void report(const std::string& message) { call_.progress(++n_, total_, message); }
  // The most polls a wait of `timeout` makes at `interval`.
  static double polls(std::chrono::milliseconds timeout, std::chrono::milliseconds interval);

 private:
  const sdk::Call& call_;
  double n_ = 0;
  double total_;
};

struct StageWait {
  Verdict verdict;
  bool timed_out = false;
  std::chrono::milliseconds elapsed{0};
  std::string last_error;  // a status read that failed transiently (kept for the timeout text)
};

// Polls GET /workspaces/{id}/pipeline/{stage} until evaluate() says done or failed, or the
// timeout passes. Transient read failures are reported and polled again; others throw.
// started_after_ms: see evaluate().
StageWait wait_for_stage(Env& env, Progress& progress, std::int64_t workspace_id, Stage stage,
                         std::chrono::milliseconds timeout, std::optional<std::int64_t> started_after_ms);

struct RunningWait {
  bool running = false;
  bool timed_out = false;
  std::chrono::milliseconds elapsed{0};
};

// Polls GET /workspaces/{id}/status until isRunning (§2.4: CSGO and PY wait this way after
// creating a workspace). `what` names the situation in a cancellation message.
RunningWait wait_for_running(Env& env, Progress& progress, std::int64_t workspace_id,
                             std::chrono::milliseconds timeout, const std::string& what);

// Starts a stage: POST .../pipeline/{stage}/start[/{profile}]. Returns the upstream time of
// the start (the answer's Date header) for evaluate(), when there is one.
std::optional<std::int64_t> start_stage(Env& env, std::int64_t workspace_id, Stage stage, const std::string& profile);

// Throws the ToolError for a failed stage: where it failed, and which view_logs call shows why.
[[noreturn]] void throw_stage_failure(std::int64_t workspace_id, Stage stage, const StageWait& w,
                                      const std::string& done_so_far);
// Throws the ToolError for a stage still not done at its timeout (it goes on upstream).
[[noreturn]] void throw_stage_timeout(std::int64_t workspace_id, Stage stage, const StageWait& w,
                                      const char* setting, const std::string& done_so_far);

}  // namespace codesphere
