#include "waiting.hpp"

#include <cmath>

namespace codesphere {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

milliseconds since(Clock::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
}

// Sleeps until the next poll, never past the deadline. On cancellation throws `why`.
void pause(Env& env, milliseconds elapsed, milliseconds timeout, const std::function<std::string()>& why) {
  try {
    env.client.sleep(std::min(env.settings.poll_interval, std::max(milliseconds(0), timeout - elapsed)));
  } catch (const CancelledError&) {
    throw sdk::ToolError(why(), MCPH_ERR_CANCELLED);
  }
}

std::string stage_cancel_text(std::int64_t ws, Stage stage, const std::string& state, milliseconds elapsed) {
  const std::string s(to_string(stage));
  return "Cancelled while waiting for the " + s + " stage of workspace " + std::to_string(ws) + " (last state: " +
         state + ", " + format_duration(elapsed) + " elapsed). The " + s +
         " stage goes on upstream; check it with get_workspace_status.";
}

}  // namespace

double Progress::polls(milliseconds timeout, milliseconds interval) {
  return std::ceil(static_cast<double>(timeout.count()) / static_cast<double>(std::max<milliseconds::rep>(1, interval.count()))) + 1;
}

StageWait wait_for_stage(Env& env, Progress& progress, std::int64_t ws, Stage stage, milliseconds timeout,
                         std::optional<std::int64_t> started_after_ms) {
  const auto t0 = Clock::now();
  const std::string name(to_string(stage));
  const std::string path = ws_path(ws) + "/pipeline/" + name;
  StageWait w;
  w.verdict.state = "not started";
  for (;;) {
    // The first look comes after one interval: right after a start the status may still
    // describe the previous run (evaluate() also checks startedAt for that).
    pause(env, since(t0), timeout, [&] { return stage_cancel_text(ws, stage, w.verdict.state, since(t0)); });
    try {
      const json body = env.client.get(path).body;
      w.verdict = evaluate(stage, parse_pipeline(body), started_after_ms);
      w.last_error.clear();
    } catch (const CancelledError&) {
      throw sdk::ToolError(stage_cancel_text(ws, stage, w.verdict.state, since(t0)), MCPH_ERR_CANCELLED);
    } catch (const UpstreamError& e) {
      if (!e.transient()) throw;
      w.last_error = e.what();  // retried already by the client; keep polling until the timeout
    }
    w.elapsed = since(t0);
    std::string state = w.last_error.empty() ? w.verdict.state : "status unavailable";
    if (w.verdict.stale && w.last_error.empty()) state += " (previous run)";
    progress.report(name + ": " + state + ", " + format_duration(w.elapsed) + " elapsed");
    if (w.last_error.empty() && w.verdict.outcome != Verdict::Outcome::Pending) return w;
    if (w.elapsed >= timeout) {
      w.timed_out = true;
      return w;
    }
  }
}

RunningWait wait_for_running(Env& env, Progress& progress, std::int64_t ws, milliseconds timeout,
                             const std::string& what) {
  const auto t0 = Clock::now();
  RunningWait w;
  auto cancel_text = [&] {
    return "Cancelled while waiting for workspace " + std::to_string(ws) + " to run (" + format_duration(since(t0)) +
           " elapsed). " + what + " It goes on starting upstream; check it with get_workspace_status.";
  };
  for (;;) {
    std::string state;
    try {
      const json body = env.client.get(ws_path(ws) + "/status").body;
      w.running = flag_field(body, "isRunning");
      state = w.running ? "running" : "starting";
    } catch (const CancelledError&) {
      throw sdk::ToolError(cancel_text(), MCPH_ERR_CANCELLED);
    } catch (const UpstreamError& e) {
      if (!e.transient()) throw;
      state = "status unavailable";
    }
    w.elapsed = since(t0);
    progress.report("workspace: " + state + ", " + format_duration(w.elapsed) + " elapsed");
    if (w.running) return w;
    if (w.elapsed >= timeout) {
      w.timed_out = true;
      return w;
    }
    pause(env, w.elapsed, timeout, cancel_text);
  }
}

std::optional<std::int64_t> start_stage(Env& env, std::int64_t ws, Stage stage, const std::string& profile) {
  std::string path = ws_path(ws) + "/pipeline/" + std::string(to_string(stage)) + "/start";
  if (!profile.empty()) path += "/" + path_segment(profile);
  const Response r = env.client.send("POST", path);
  if (auto date = r.header("Date")) return parse_http_date_ms(*date);
  return std::nullopt;
}

void throw_stage_failure(std::int64_t ws, Stage stage, const StageWait& w, const std::string& done_so_far) {
  std::string text = describe_failure(stage, w.verdict) + " (workspace " + std::to_string(ws) + ", after " +
                     format_duration(w.elapsed) + ").";
  if (w.verdict.failed_step >= 0) {
    text += " See the step's logs with view_logs {\"workspaceId\": " + std::to_string(ws) + ", \"stage\": \"" +
            std::string(to_string(stage)) + "\", \"step\": " + std::to_string(w.verdict.failed_step);
    if (stage == Stage::Run && !w.verdict.failed_server.empty() && w.verdict.failed_server != kIdeServer) {
      text += ", \"server\": \"" + w.verdict.failed_server + "\"";
    }
    text += "}.";
  }
  if (!done_so_far.empty()) text += " Done before: " + done_so_far;
  throw sdk::ToolError(text, MCPH_ERR_FAILED_PRECONDITION);
}

void throw_stage_timeout(std::int64_t ws, Stage stage, const StageWait& w, const char* setting,
                         const std::string& done_so_far) {
  const std::string s(to_string(stage));
  std::string text = "The " + s + " stage of workspace " + std::to_string(ws) + " is still " + w.verdict.state +
                     " after " + format_duration(w.elapsed) + " (settings." + setting + "). It goes on upstream; " +
                     "check it with get_workspace_status.";
  if (!w.last_error.empty()) text += " Last status read failed: " + w.last_error;
  if (!done_so_far.empty()) text += " Done before: " + done_so_far;
  throw sdk::ToolError(text, MCPH_ERR_DEADLINE_EXCEEDED);
}

}  // namespace codesphere
