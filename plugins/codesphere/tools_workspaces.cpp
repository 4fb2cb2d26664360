// Discovery and workspaces: list_teams, list_plans, list_workspaces, get_workspace_status,
// create_workspace.
#include <cmath>
#include <cstdio>

#include "pipeline.hpp"
#include "tools.hpp"
#include "waiting.hpp"

namespace codesphere {

namespace {

using std::chrono::milliseconds;

// --- list_teams -----------------------------------------------------------------------------

std::string role_name(const json& role) {
  // SPEC: Role{0:'Admin',1:'Member'}; CSGO also treats -1 as Admin (§2.4, §4).
  if (!role.is_number_integer()) return "unknown";
  const int r = role.get<int>();
  return r == 0 || r == -1 ? "Admin" : r == 1 ? "Member" : "unknown";
}

json list_teams(Env& env, const json&) {
  const json teams = env.client.get("/teams").body;
  json items = json::array();
  std::string text;
  for (const auto& t : teams.is_array() ? teams : json::array()) {
    if (!t.is_object()) continue;
    json item{{"id", coerce_id(t.value("id", json())).value_or(0)},
              {"name", text_field(t, "name")},
              {"role", role_name(t.value("role", json()))},
              {"defaultDataCenterId", t.contains("defaultDataCenterId") && t["defaultDataCenterId"].is_number_integer()
                                          ? t["defaultDataCenterId"]
                                          : json()}};
    text += "\n- " + item["id"].dump() + " " + item["name"].get<std::string>() + " (" + item["role"].get<std::string>() + ")";
    items.push_back(std::move(item));
  }
  json default_team = env.settings.team_id ? json(*env.settings.team_id)
                                           : items.size() == 1 ? items[0]["id"] : json();
  std::string summary = std::to_string(items.size()) + (items.size() == 1 ? " team:" : " teams:") + text;
  if (!default_team.is_null()) summary += "\nDefault team (used when teamId is omitted): " + default_team.dump();
  else if (items.size() > 1) summary += "\nNo default team: pass teamId (or set settings.team_id).";
  return sdk::structured(json{{"items", std::move(items)}, {"defaultTeamId", default_team}}, summary);
}

json team_schema() {
  return json{{"type", "object"},
              {"properties",
               {{"id", {{"type", "integer"}}},
                {"name", {{"type", "string"}}},
                {"role", {{"enum", {"Admin", "Member", "unknown"}}}},
                {"defaultDataCenterId", nullable("integer")}}},
              {"required", {"id", "name", "role"}}};
}

// --- list_plans -----------------------------------------------------------------------------

double gib(const json& bytes) {
  // CSGO divides RAM and SSD by 1024^3 to show GiB (§2.8; the unit is inferred, §4).
  if (!bytes.is_number()) return 0;
  return std::round(bytes.get<double>() / (1024.0 * 1024.0 * 1024.0) * 10.0) / 10.0;
}

json list_plans(Env& env, const json&) {
  const json plans = env.client.get("/metadata/workspace-plans").body;
  json items = json::array();
  std::string text;
  for (const auto& p : plans.is_array() ? plans : json::array()) {
    if (!p.is_object()) continue;
    const json c = object_field(p, "characteristics");
    json item{{"id", coerce_id(p.value("id", json())).value_or(0)},
              {"title", text_field(p, "title")},
              {"priceUsd", number_field(p, "priceUsd", 0)},
              {"cpu", number_field(c, "CPU", 0)},
              {"gpu", number_field(c, "GPU", 0)},
              {"ramGiB", gib(c.value("RAM", json()))},
              {"ssdGiB", gib(c.value("SSD", json()))},
              {"onDemand", flag_field(c, "onDemand")},
              {"maxReplicas", number_field(p, "maxReplicas", 1).is_number_integer() ? number_field(p, "maxReplicas", 1) : json(1)},
              {"deprecated", flag_field(p, "deprecated")}};
    char line[256];
    std::snprintf(line, sizeof line, "\n- %s %s: %s CPU, %.1f GiB RAM, %.1f GiB SSD, $%s/month%s%s",
                  item["id"].dump().c_str(), item["title"].get<std::string>().c_str(), item["cpu"].dump().c_str(),
                  item["ramGiB"].get<double>(), item["ssdGiB"].get<double>(), item["priceUsd"].dump().c_str(),
                  item["onDemand"].get<bool>() ? ", on demand" : "", item["deprecated"].get<bool>() ? " (deprecated)" : "");
    text += line;
    items.push_back(std::move(item));
  }
  return sdk::structured(json{{"items", std::move(items)}},
                         std::to_string(items.size()) + " workspace plans (planId for create_workspace):" + text);
}

json plan_schema() {
  return json{{"type", "object"},
              {"properties",
               {{"id", {{"type", "integer"}}},
                {"title", {{"type", "string"}}},
                {"priceUsd", {{"type", "number"}}},
                {"cpu", {{"type", "number"}}},
                {"gpu", {{"type", "number"}}},
                {"ramGiB", {{"type", "number"}}},
                {"ssdGiB", {{"type", "number"}}},
                {"onDemand", {{"type", "boolean"}}},
                {"maxReplicas", {{"type", "integer"}}},
                {"deprecated", {{"type", "boolean"}}}}},
              {"required", {"id", "title", "deprecated"}}};
}

// --- list_workspaces ------------------------------------------------------------------------

std::string workspace_line(const json& s) {
  std::string line = s["id"].dump() + " " + s["name"].get<std::string>();
  if (s["url"].is_string()) line += " " + s["url"].get<std::string>();
  if (s["gitUrl"].is_string()) {
    line += " (" + s["gitUrl"].get<std::string>();
    if (s["branch"].is_string()) line += " @ " + s["branch"].get<std::string>();
    line += ")";
  }
  return line;
}

json list_workspaces(Env& env, const json& args) {
  const std::int64_t team = resolve_team(env, args);
  const json list = env.client.get("/workspaces/team/" + std::to_string(team)).body;
  json items = json::array();
  std::string text;
  for (const auto& ws : list.is_array() ? list : json::array()) {
    if (!ws.is_object()) continue;
    json s = workspace_summary(ws);
    text += "\n- " + workspace_line(s);
    items.push_back(std::move(s));
  }
  return sdk::structured(json{{"items", std::move(items)}, {"teamId", team}},
                         std::to_string(items.size()) + " workspaces in team " + std::to_string(team) +
                             (items.empty() ? "." : ":") + text);
}

// --- get_workspace_status -------------------------------------------------------------------

json stage_status(Env& env, std::int64_t ws, Stage stage) {
  try {
    const json body = env.client.get(ws_path(ws) + "/pipeline/" + std::string(to_string(stage))).body;
    const auto entries = parse_pipeline(body);
    json list = json::array();
    for (const auto& e : entries) {
      json steps = json::array();
      for (State s : e.steps) steps.push_back(to_string(s));
      list.push_back(json{{"server", e.server},
                          {"replica", e.replica},
                          {"state", e.state == State::Unknown ? e.state_text : std::string(to_string(e.state))},
                          {"steps", std::move(steps)}});
    }
    return json{{"state", summarize(stage, entries)}, {"entries", std::move(list)}};
  } catch (const CancelledError&) {
    throw;
  } catch (const UpstreamError& e) {
    // One stage's status failing should not hide the rest (the old server did the same, §1.5).
    return json{{"state", "unavailable"}, {"entries", json::array()}, {"error", e.what()}};
  }
}

json get_workspace_status(Env& env, const json& args) {
  const std::int64_t ws = id_arg(args, "workspaceId");
  const json workspace = env.client.get(ws_path(ws)).body;
  const json status = env.client.get(ws_path(ws) + "/status").body;
  const json running = status.is_object() && status.contains("isRunning") && status["isRunning"].is_boolean()
                           ? status["isRunning"]
                           : json();
  json summary = workspace_summary(workspace.is_object() ? workspace : json::object());
  json out{{"workspace", summary}, {"isRunning", running}, {"url", summary["url"]}};
  const auto team = summary["teamId"].is_number_integer() ? summary["teamId"].get<std::int64_t>() : -1;
  const std::string ide = team >= 0 ? env.settings.ide_url(team, ws) : std::string();
  out["ideUrl"] = ide.empty() ? json() : json(ide);
  std::string text = "Workspace " + std::to_string(ws) + " " + summary["name"].get<std::string>() + ": " +
                     (running.is_null() ? "running state unknown" : running.get<bool>() ? "running" : "not running");
  if (summary["url"].is_string()) text += ", " + summary["url"].get<std::string>();
  if (running == false) {
    // The pipeline endpoints answer 400 "Workspace is not running" for a sleeping one (§2.5).
    out["pipeline"] = nullptr;
    text += "\nPipeline: not available while the workspace is not running.";
  } else {
    json pipeline = json::object();
    for (Stage s : {Stage::Prepare, Stage::Test, Stage::Run}) {
      json st = stage_status(env, ws, s);
      text += "\n" + std::string(to_string(s)) + ": " + st["state"].get<std::string>();
      pipeline[std::string(to_string(s))] = std::move(st);
    }
    out["pipeline"] = std::move(pipeline);
  }
  return sdk::structured(std::move(out), text);
}

json status_schema() {
  json entry{{"type", "object"},
             {"properties",
              {{"server", {{"type", "string"}}},
               {"replica", {{"type", "string"}}},
               {"state", {{"type", "string"}}},
               {"steps", {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
             {"required", {"server", "state", "steps"}}};
  json stage{{"type", "object"},
             {"properties",
              {{"state", {{"type", "string"}, {"description", "waiting|running|success|failure|aborted|not started|unavailable"}}},
               {"entries", {{"type", "array"}, {"items", entry}}},
               {"error", {{"type", "string"}}}}},
             {"required", {"state", "entries"}}};
  return json{{"type", "object"},
              {"properties",
               {{"workspace", workspace_schema()},
                {"isRunning", nullable("boolean")},
                {"url", nullable("string")},
                {"ideUrl", nullable("string")},
                {"pipeline",
                 {{"type", {"object", "null"}},
                  {"properties", {{"prepare", stage}, {"test", stage}, {"run", stage}}}}}}},
              {"required", {"workspace", "isRunning", "pipeline"}}};
}

// --- create_workspace -----------------------------------------------------------------------

json create_workspace(Env& env, const json& args) {
  const std::int64_t team = resolve_team(env, args);
  const std::int64_t plan = id_arg(args, "planId");
  const json body{{"teamId", team},
                  {"name", args.at("name")},
                  {"planId", plan},
                  {"isPrivateRepo", args.value("isPrivateRepo", false)},
                  {"replicas", 1},
                  {"gitUrl", args.at("gitUrl")},
                  {"initialBranch", args.value("branch", std::string("main"))}};
  // POST: never retried (a retry after a lost answer would create a second workspace).
  const json created = env.client.send("POST", "/workspaces", body).body;
  if (!created.is_object() || !created.contains("id")) {
    throw sdk::ToolError(env.client.safe("Codesphere accepted the workspace but answered without its id: " +
                                         one_line(created.dump(), 200) + ". Check list_workspaces."),
                         MCPH_ERR_INTERNAL);
  }
  json summary = workspace_summary(created);
  const std::int64_t ws = summary["id"].get<std::int64_t>();
  json out{{"workspace", summary}, {"url", summary["url"]}, {"isRunning", nullptr}};
  const std::string ide = env.settings.ide_url(team, ws);
  out["ideUrl"] = ide.empty() ? json() : json(ide);
  std::string text = "Created workspace " + std::to_string(ws) + " " + summary["name"].get<std::string>() + " in team " +
                     std::to_string(team) + ".";
  if (args.value("waitForRunning", true)) {
    Progress progress(env.call, Progress::polls(env.settings.create_timeout, env.settings.poll_interval));
    const std::string created_text = "Workspace " + std::to_string(ws) + " was created.";
    RunningWait w = wait_for_running(env, progress, ws, env.settings.create_timeout, created_text);
    if (w.timed_out) {
      throw sdk::ToolError(created_text + " It is not running yet after " + format_duration(w.elapsed) +
                               " (settings.create_timeout_ms); it goes on starting upstream. Check it with "
                               "get_workspace_status.",
                           MCPH_ERR_DEADLINE_EXCEEDED);
    }
    out["isRunning"] = true;
    text += " It is running (after " + format_duration(w.elapsed) + ").";
  } else {
    text += " Not waiting for it to run (waitForRunning=false).";
  }
  if (summary["url"].is_string()) text += " URL: " + summary["url"].get<std::string>();
  text += " Next: deploy it with deploy {\"workspaceId\": " + std::to_string(ws) + "}.";
  return sdk::structured(std::move(out), text);
}

}  // namespace

void register_workspace_tools(Registry& r) {
  const json team_arg = id_schema("Team ID; defaults to settings.team_id, else the token's only team (see list_teams)");

  r.add(sdk::ToolSpec("list_teams")
            .title("List teams")
            .description("List the Codesphere teams the API token can see, with your role in each. Use a team's id "
                         "as teamId in the other tools.")
            .input(object_schema(json::object()))
            .output(list_schema(team_schema(), {{"defaultTeamId", nullable("integer")}}))
            .annotations(read_only_annotations("List teams")),
        list_teams);

  r.add(sdk::ToolSpec("list_plans")
            .title("List workspace plans")
            .description("List the workspace plans (id, title, CPU, RAM and SSD in GiB, price, on-demand, "
                         "deprecated). create_workspace needs a planId from here.")
            .input(object_schema(json::object()))
            .output(list_schema(plan_schema()))
            .annotations(read_only_annotations("List workspace plans")),
        list_plans);

  r.add(sdk::ToolSpec("list_workspaces")
            .title("List workspaces")
            .description("List all workspaces of a team with their URL and git repository and branch. Use "
                         "get_workspace_status for whether one is running and its pipeline state.")
            .input(object_schema({{"teamId", team_arg}}))
            .output(list_schema(workspace_schema(), {{"teamId", {{"type", "integer"}}}}))
            .annotations(read_only_annotations("List workspaces")),
        list_workspaces);

  r.add(sdk::ToolSpec("get_workspace_status")
            .title("Workspace status")
            .description("Get a workspace's details, whether it is running, its URLs, and the state of each pipeline "
                         "stage (prepare, test, run) per server (waiting, running, success, failure, aborted).")
            .input(object_schema({{"workspaceId", id_schema("Workspace ID")}}, {"workspaceId"}))
            .output(status_schema())
            .annotations(read_only_annotations("Workspace status")),
        get_workspace_status);

  r.add(sdk::ToolSpec("create_workspace")
            .title("Create workspace")
            .description("Create a Codesphere workspace from a git repository (one replica). By default waits until "
                         "it runs (bounded by settings.create_timeout_ms, with progress). Find planId with list_plans. "
                         "It is not deployed yet: run deploy afterwards.")
            .input(object_schema(
                {{"gitUrl", {{"type", "string"}, {"minLength", 1}, {"description", "Git repository URL to clone"}}},
                 {"name", {{"type", "string"}, {"minLength", 1}, {"maxLength", 256}, {"description", "Workspace name"}}},
                 {"planId", id_schema("Plan ID (see list_plans)")},
                 {"branch", {{"type", "string"}, {"minLength", 1}, {"default", "main"}, {"description", "Branch to check out"}}},
                 {"teamId", team_arg},
                 {"isPrivateRepo", {{"type", "boolean"}, {"default", false}, {"description", "The repository is private"}}},
                 {"waitForRunning",
                  {{"type", "boolean"}, {"default", true}, {"description", "Wait until the workspace is running"}}}},
                {"gitUrl", "name", "planId"}))
            .output(json{{"type", "object"},
                         {"properties",
                          {{"workspace", workspace_schema()},
                           {"isRunning", nullable("boolean")},
                           {"url", nullable("string")},
                           {"ideUrl", nullable("string")}}},
                         {"required", {"workspace", "isRunning"}}})
            .annotations(write_annotations("Create workspace", false, false)),
        create_workspace);
}

}  // namespace codesphere
