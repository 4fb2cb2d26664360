// Pipeline tools: deploy, stop_workspace, restart_workspace.
#include "pipeline.hpp"
#include "tools.hpp"
#include "waiting.hpp"

namespace codesphere {

namespace {

using std::chrono::milliseconds;

// What one deploy/restart did so far, for the result and for error texts.
struct Report {
  std::vector<std::string> steps;
  void add(std::string s) { steps.push_back(std::move(s)); }
  std::string joined() const {
    std::string out;
    for (const auto& s : steps) out += (out.empty() ? "" : "; ") + s;
    return out;
  }
};

bool auth_or_missing(const UpstreamError& e) {
  return e.http_status() == 401 || e.http_status() == 403 || e.http_status() == 404;
}

// The workspace's name and URLs for a result; a failure here does not undo a deploy.
void add_workspace_info(Env& env, std::int64_t ws, json& out) {
  out["name"] = nullptr;
  out["url"] = nullptr;
  out["ideUrl"] = nullptr;
  try {
    const json w = env.client.get(ws_path(ws)).body;
    if (!w.is_object()) return;
    const json s = workspace_summary(w);
    out["name"] = s["name"];
    out["url"] = s["url"];
    if (s["teamId"].is_number_integer()) {
      const std::string ide = env.settings.ide_url(s["teamId"].get<std::int64_t>(), ws);
      if (!ide.empty()) out["ideUrl"] = ide;
    }
  } catch (const CancelledError&) {
    throw;
  } catch (const UpstreamError&) {
  }
}

// POST .../git/pull/{remote}. Failure is reported, not fatal: a workspace whose repository
// was never cloned has nothing to pull (the old server's reason, §1.5), and the deploy then
// builds what is there. Token and not-found errors stop everything, as nothing else would work.
json git_pull(Env& env, std::int64_t ws, const std::string& remote, Report& report) {
  try {
    env.client.send("POST", ws_path(ws) + "/git/pull/" + path_segment(remote));
    report.add("git pull " + remote + ": ok");
    return json{{"ok", true}};
  } catch (const UpstreamError& e) {
    if (auth_or_missing(e)) throw;
    report.add("git pull " + remote + " failed (" + std::string(e.what()) + "); deploying the code already in the workspace");
    return json{{"ok", false}, {"error", e.what()}};
  }
}

// Starts the run stage the way the workspace needs: a landscape (multi-server deployment) is
// deployed with POST .../landscape/deploy[/{profile}]; upstream answers 400 for a workspace
// that is not one, which then gets run stop + start (the old server's order, §1.5). Only a
// 400 means "not a landscape": other errors fail the deploy instead of guessing.
std::pair<std::string, std::optional<std::int64_t>> start_run(Env& env, std::int64_t ws, const std::string& profile,
                                                              Report& report) {
  std::string path = ws_path(ws) + "/landscape/deploy";
  if (!profile.empty()) path += "/" + path_segment(profile);
  try {
    const Response r = env.client.send("POST", path);
    report.add("landscape deployed");
    const auto date = r.header("Date");
    return {"landscape", date ? parse_http_date_ms(*date) : std::nullopt};
  } catch (const UpstreamError& e) {
    if (e.http_status() != 400) throw;
  }
  try {
    env.client.send("POST", ws_path(ws) + "/pipeline/run/stop");
  } catch (const UpstreamError& e) {
    if (auth_or_missing(e)) throw;  // nothing running to stop is fine
  }
  auto started = start_stage(env, ws, Stage::Run, profile);
  report.add("run stage restarted");
  return {"run", started};
}

std::string profile_arg(const json& args) { return args.value("profile", std::string()); }

json deploy(Env& env, const json& args) {
  const std::int64_t ws = id_arg(args, "workspaceId");
  const std::string remote = args.value("remote", std::string("origin"));
  const bool skip_prepare = args.value("skipPrepare", false);
  const bool wait = args.value("waitForPrepare", true);
  const std::string profile = profile_arg(args);
  const auto& s = env.settings;
  Progress progress(env.call, (skip_prepare ? 0 : Progress::polls(s.prepare_timeout, s.poll_interval)) +
                                  Progress::polls(s.run_timeout, s.poll_interval));
  Report report;
  json out{{"workspaceId", ws}};
  out["gitPull"] = git_pull(env, ws, remote, report);

  if (skip_prepare) {
    out["prepare"] = json{{"state", "skipped"}};
    report.add("prepare skipped");
  } else {
    const auto started = start_stage(env, ws, Stage::Prepare, profile);
    if (!wait) {
      // Safe choice (the old server started run at once, on the previous build): without
      // waiting we cannot know when prepare is done, so run is left alone.
      report.add("prepare started; not waiting (waitForPrepare=false), so the run stage was not restarted");
      out["prepare"] = json{{"state", "started"}};
      out["run"] = json{{"mode", nullptr}, {"state", "not restarted"}};
      out["steps"] = report.steps;
      add_workspace_info(env, ws, out);
      return sdk::structured(std::move(out), "Deploy of workspace " + std::to_string(ws) + " started: " + report.joined() +
                                                 ". When prepare has succeeded (get_workspace_status), run deploy with "
                                                 "skipPrepare=true to start the new build.");
    }
    StageWait w = wait_for_stage(env, progress, ws, Stage::Prepare, s.prepare_timeout, started);
    if (w.verdict.outcome == Verdict::Outcome::Failed) throw_stage_failure(ws, Stage::Prepare, w, report.joined());
    if (w.timed_out) throw_stage_timeout(ws, Stage::Prepare, w, "prepare_timeout_ms", report.joined());
    report.add("prepare succeeded in " + format_duration(w.elapsed));
    out["prepare"] = json{{"state", "success"}};
  }

  auto [mode, run_started] = start_run(env, ws, profile, report);
  json run{{"mode", mode}, {"state", "started"}};
  if (wait) {
    StageWait w = wait_for_stage(env, progress, ws, Stage::Run, s.run_timeout, run_started);
    if (w.verdict.outcome == Verdict::Outcome::Failed) throw_stage_failure(ws, Stage::Run, w, report.joined());
    if (w.timed_out) throw_stage_timeout(ws, Stage::Run, w, "run_timeout_ms", report.joined());
    run["state"] = w.verdict.state;
    report.add("run stage " + w.verdict.state);
  }
  out["run"] = std::move(run);
  out["steps"] = report.steps;
  add_workspace_info(env, ws, out);
  std::string text = "Deployed workspace " + std::to_string(ws) + ": " + report.joined() + ".";
  if (out["url"].is_string()) text += " URL: " + out["url"].get<std::string>();
  return sdk::structured(std::move(out), text);
}

json deploy_schema() {
  return json{{"type", "object"},
              {"properties",
               {{"workspaceId", {{"type", "integer"}}},
                {"name", nullable("string")},
                {"url", nullable("string")},
                {"ideUrl", nullable("string")},
                {"gitPull",
                 {{"type", "object"},
                  {"properties", {{"ok", {{"type", "boolean"}}}, {"error", {{"type", "string"}}}}},
                  {"required", {"ok"}}}},
                {"prepare",
                 {{"type", "object"}, {"properties", {{"state", {{"enum", {"success", "skipped", "started"}}}}}}}},
                {"run",
                 {{"type", "object"},
                  {"properties",
                   {{"mode", {{"enum", {"landscape", "run", nullptr}}}}, {"state", {{"type", "string"}}}}}}},
                {"steps", {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
              {"required", {"workspaceId", "gitPull", "prepare", "run", "steps"}}};
}

json stop_workspace(Env& env, const json& args) {
  const std::int64_t ws = id_arg(args, "workspaceId");
  env.client.send("POST", ws_path(ws) + "/pipeline/run/stop");
  return sdk::structured(json{{"workspaceId", ws}, {"stopped", true}},
                         "Stopped the run stage of workspace " + std::to_string(ws) + ".");
}

json restart_workspace(Env& env, const json& args) {
  const std::int64_t ws = id_arg(args, "workspaceId");
  Progress progress(env.call, Progress::polls(env.settings.run_timeout, env.settings.poll_interval));
  Report report;
  try {
    env.client.send("POST", ws_path(ws) + "/pipeline/run/stop");
    report.add("run stage stopped");
  } catch (const UpstreamError& e) {
    if (auth_or_missing(e)) throw;
    report.add("stop skipped (" + std::string(e.what()) + ")");  // e.g. nothing was running
  }
  const auto started = start_stage(env, ws, Stage::Run, "");
  report.add("run stage started");
  StageWait w = wait_for_stage(env, progress, ws, Stage::Run, env.settings.run_timeout, started);
  if (w.verdict.outcome == Verdict::Outcome::Failed) throw_stage_failure(ws, Stage::Run, w, report.joined());
  if (w.timed_out) throw_stage_timeout(ws, Stage::Run, w, "run_timeout_ms", report.joined());
  report.add("run stage " + w.verdict.state + " after " + format_duration(w.elapsed));
  json out{{"workspaceId", ws}, {"run", {{"state", w.verdict.state}}}, {"steps", report.steps}};
  add_workspace_info(env, ws, out);
  std::string text = "Restarted workspace " + std::to_string(ws) + " without rebuilding: " + report.joined() + ".";
  if (out["url"].is_string()) text += " URL: " + out["url"].get<std::string>();
  return sdk::structured(std::move(out), text);
}

}  // namespace

void register_pipeline_tools(Registry& r) {
  const json ws_arg = id_schema("Workspace ID");

  r.add(sdk::ToolSpec("deploy")
            .title("Deploy workspace")
            .description(
                "Deploy a workspace: git pull from `remote`, run the prepare stage (build) and wait for it to succeed, "
                "then start the run stage (a landscape is deployed instead, with `profile` if given) and wait until "
                "it is up. Waiting is bounded by settings (prepare_timeout_ms, run_timeout_ms) and reports progress; "
                "a failure names the failed step. skipPrepare=true starts run directly. waitForPrepare=false only "
                "starts the first stage and returns (run is not restarted before prepare is known to be done).")
            .input(object_schema(
                {{"workspaceId", ws_arg},
                 {"remote",
                  {{"type", "string"}, {"pattern", "^[A-Za-z0-9._-]+$"}, {"default", "origin"}, {"description", "Git remote to pull from"}}},
                 {"skipPrepare", {{"type", "boolean"}, {"default", false}, {"description", "Do not run the prepare stage"}}},
                 {"waitForPrepare",
                  {{"type", "boolean"}, {"default", true}, {"description", "Wait for prepare (and then run) to finish"}}},
                 {"profile",
                  {{"type", "string"},
                   {"pattern", "^[A-Za-z0-9_-]+$"},
                   {"description", "CI profile: uses ci.<profile>.yml for the stages and the landscape"}}}},
                {"workspaceId"}))
            .output(deploy_schema())
            .annotations(write_annotations("Deploy workspace", false, false))
            .task_support(MCPH_TASK_SUPPORT_OPTIONAL),  // minutes: clients that take tasks get one
        deploy);

  r.add(sdk::ToolSpec("stop_workspace")
            .title("Stop workspace")
            .description("Stop a workspace's running application by stopping its run stage.")
            .input(object_schema({{"workspaceId", ws_arg}}, {"workspaceId"}))
            .output(json{{"type", "object"},
                         {"properties", {{"workspaceId", {{"type", "integer"}}}, {"stopped", {{"type", "boolean"}}}}},
                         {"required", {"workspaceId", "stopped"}}})
            .annotations(write_annotations("Stop workspace", true, true)),
        stop_workspace);

  r.add(sdk::ToolSpec("restart_workspace")
            .title("Restart workspace")
            .description("Restart a workspace's application without rebuilding: stop the run stage, start it again, "
                         "and wait until it is up (bounded by settings.run_timeout_ms, with progress).")
            .input(object_schema({{"workspaceId", ws_arg}}, {"workspaceId"}))
            .output(json{{"type", "object"},
                         {"properties",
                          {{"workspaceId", {{"type", "integer"}}},
                           {"name", nullable("string")},
                           {"url", nullable("string")},
                           {"ideUrl", nullable("string")},
                           {"run", {{"type", "object"}, {"properties", {{"state", {{"type", "string"}}}}}}},
                           {"steps", {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
                         {"required", {"workspaceId", "run", "steps"}}})
            .annotations(write_annotations("Restart workspace", false, false))
            .task_support(MCPH_TASK_SUPPORT_OPTIONAL),
        restart_workspace);
}

}  // namespace codesphere
