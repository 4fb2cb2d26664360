// The old server's later tools (reference §1.5), done safely: list_env_vars (values masked
// unless asked for), git_pull, scale_workspace, delete_workspace (needs confirm: true).
#include "tools.hpp"

namespace codesphere {

namespace {

json list_env_vars(Env& env, const json& args) {
  const std::int64_t ws = id_arg(args, "workspaceId");
  const bool show = args.value("showValues", false);
  const json list = env.client.get(ws_path(ws) + "/env-vars").body;
  json items = json::array();
  std::string text;
  for (const auto& v : list.is_array() ? list : json::array()) {
    if (!v.is_object() || !v.contains("name") || !v["name"].is_string()) continue;
    // The old server printed every value, secrets included (§3.6); names are usually enough.
    json item{{"name", v["name"]}};
    const std::string value = v.contains("value") && v["value"].is_string() ? v["value"].get<std::string>() : std::string();
    if (show) item["value"] = value;
    text += "\n- " + v["name"].get<std::string>() + (show ? "=" + value : "");
    items.push_back(std::move(item));
  }
  std::string head = std::to_string(items.size()) + " environment variables of workspace " + std::to_string(ws);
  head += show ? ":" : " (values hidden; pass showValues=true to see them):";
  return sdk::structured(json{{"items", std::move(items)}, {"workspaceId", ws}}, head + text);
}

json git_pull(Env& env, const json& args) {
  const std::int64_t ws = id_arg(args, "workspaceId");
  const std::string remote = args.value("remote", std::string("origin"));
  const std::string branch = args.value("branch", std::string());
  std::string path = ws_path(ws) + "/git/pull/" + path_segment(remote);
  // A branch such as feature/x travels as one encoded segment (feature%2Fx): the route is
  // /git/pull/{remote}/{branch} (§2.3). Whether upstream decodes it is not documented (§4
  // style uncertainty); sending the slash raw would surely hit another route.
  if (!branch.empty()) path += "/" + path_segment(branch);
  env.client.send("POST", path);
  json head;
  try {
    const json h = env.client.get(ws_path(ws) + "/git/head").body;
    if (h.is_object() && h.contains("head") && h["head"].is_string()) head = h["head"];
  } catch (const CancelledError&) {
    throw;
  } catch (const UpstreamError&) {
    // The pull happened; not knowing the new head is no reason to report a failure.
  }
  json out{{"workspaceId", ws}, {"remote", remote}, {"branch", branch.empty() ? json() : json(branch)}, {"head", head}};
  std::string text = "Pulled " + remote + (branch.empty() ? "" : " " + branch) + " into workspace " + std::to_string(ws) + ".";
  if (head.is_string()) text += " HEAD: " + head.get<std::string>();
  return sdk::structured(std::move(out), text + " Run deploy to build and start it.");
}

json scale_workspace(Env& env, const json& args) {
  const std::int64_t ws = id_arg(args, "workspaceId");
  const std::int64_t replicas = int_arg(args, "replicas", 1, 1, 1000);
  // PATCH since the old server's last fix (it used PUT before, §1.3). For on-demand
  // workspaces replicas >= 1 also wakes them up (CSGO, §2.4).
  env.client.send("PATCH", ws_path(ws), json{{"replicas", replicas}});
  return sdk::structured(json{{"workspaceId", ws}, {"replicas", replicas}},
                         "Workspace " + std::to_string(ws) + " scaled to " + std::to_string(replicas) + " replica" +
                             (replicas == 1 ? "." : "s."));
}

json delete_workspace(Env& env, const json& args) {
  const std::int64_t ws = id_arg(args, "workspaceId");
  if (args.value("confirm", false) != true) {  // the schema requires it too
    throw sdk::ToolError("delete_workspace needs confirm: true (deleting a workspace cannot be undone)");
  }
  // Read it first: the answer names what is deleted, and an unknown ID fails before DELETE.
  const json w = env.client.get(ws_path(ws)).body;
  const std::string name = text_field(w, "name");
  env.client.send("DELETE", ws_path(ws));
  return sdk::structured(json{{"workspaceId", ws}, {"name", name}, {"deleted", true}},
                         "Deleted workspace " + std::to_string(ws) + (name.empty() ? "" : " (" + name + ")") + ".");
}

}  // namespace

void register_more_tools(Registry& r) {
  const json ws_arg = id_schema("Workspace ID");
  r.add(sdk::ToolSpec("list_env_vars")
            .title("List environment variables")
            .description("List a workspace's environment variable names. Values are hidden unless showValues is true "
                         "(they often hold secrets).")
            .input(object_schema({{"workspaceId", ws_arg},
                                  {"showValues", {{"type", "boolean"}, {"default", false}, {"description", "Include the values"}}}},
                                 {"workspaceId"}))
            .output(list_schema(json{{"type", "object"},
                                     {"properties", {{"name", {{"type", "string"}}}, {"value", {{"type", "string"}}}}},
                                     {"required", {"name"}}},
                                {{"workspaceId", {{"type", "integer"}}}}))
            .annotations(read_only_annotations("List environment variables")),
        list_env_vars);

  r.add(sdk::ToolSpec("git_pull")
            .title("Git pull")
            .description("Pull the latest commits into a workspace from a remote (default origin), optionally a "
                         "branch, and report the new HEAD. Does not rebuild: use deploy for that.")
            .input(object_schema(
                {{"workspaceId", ws_arg},
                 {"remote", {{"type", "string"}, {"pattern", "^[A-Za-z0-9._-]+$"}, {"default", "origin"}}},
                 {"branch", {{"type", "string"}, {"pattern", "^[A-Za-z0-9._/-]+$"}, {"description", "Branch to pull"}}}},
                {"workspaceId"}))
            .output(json{{"type", "object"},
                         {"properties",
                          {{"workspaceId", {{"type", "integer"}}},
                           {"remote", {{"type", "string"}}},
                           {"branch", nullable("string")},
                           {"head", nullable("string")}}},
                         {"required", {"workspaceId", "remote", "head"}}})
            .annotations(write_annotations("Git pull", false, false)),
        git_pull);

  r.add(sdk::ToolSpec("scale_workspace")
            .title("Scale workspace")
            .description("Set the number of replicas of a workspace (horizontal scaling; 1 also wakes an on-demand "
                         "workspace).")
            .input(object_schema({{"workspaceId", ws_arg},
                                  {"replicas",
                                   {{"type", {"integer", "string"}},
                                    {"pattern", "^[0-9]+$"},
                                    {"minimum", 1},
                                    {"maximum", 1000},
                                    {"description", "Number of replicas (at least 1)"}}}},
                                 {"workspaceId", "replicas"}))
            .output(json{{"type", "object"},
                         {"properties", {{"workspaceId", {{"type", "integer"}}}, {"replicas", {{"type", "integer"}}}}},
                         {"required", {"workspaceId", "replicas"}}})
            .annotations(write_annotations("Scale workspace", false, true)),
        scale_workspace);

  r.add(sdk::ToolSpec("delete_workspace")
            .title("Delete workspace")
            .description("Permanently delete a workspace. This cannot be undone, so confirm must be true.")
            .input(object_schema({{"workspaceId", ws_arg},
                                  {"confirm",
                                   {{"const", true},
                                    {"description", "Must be true: the workspace and its files are deleted for good"}}}},
                                 {"workspaceId", "confirm"}))
            .output(json{{"type", "object"},
                         {"properties",
                          {{"workspaceId", {{"type", "integer"}}}, {"name", {{"type", "string"}}}, {"deleted", {{"type", "boolean"}}}}},
                         {"required", {"workspaceId", "deleted"}}})
            .annotations(write_annotations("Delete workspace", true, true)),
        delete_workspace);
}

}  // namespace codesphere
