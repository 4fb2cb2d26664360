// codesphere plugin: what every tool file shares — the per-call context, registration, JSON
// Schema pieces, argument readers, and the small upstream helpers several tools need.
//
// Tool files (one per area):
//   tools_workspaces.cpp  list_teams, list_plans, list_workspaces, get_workspace_status,
//                         create_workspace
//   tools_pipeline.cpp    deploy, stop_workspace, restart_workspace
//   tools_logs.cpp        view_logs
//   tools_domains.cpp     switch_domain, list_domains
//   tools_more.cpp        list_env_vars, git_pull, scale_workspace, delete_workspace
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "client.hpp"
#include "settings.hpp"

namespace codesphere {

// One tool call: the host call, the settings, and a client holding the caller's token.
struct Env {
  sdk::Call& call;
  const Settings& settings;
  Client client;
};

using ToolFn = std::function<json(Env& env, const json& args)>;

// Implemented by the plugin: wraps `fn` so it runs only with a token (else the tool answers
// kMissingToken) and registers it with the host.
class Registry {
 public:
  virtual void add(const sdk::ToolSpec& spec, ToolFn fn) = 0;

 protected:
  ~Registry() = default;
};

void register_workspace_tools(Registry& r);
void register_pipeline_tools(Registry& r);
void register_log_tools(Registry& r);
void register_domain_tools(Registry& r);
void register_more_tools(Registry& r);

// --- Schemas --------------------------------------------------------------------------------

// An ID argument: an integer or a numeric string (the old server's IDs were strings).
json id_schema(const std::string& description);
// {"type":"object","properties":...,"required":...,"additionalProperties":false}
json object_schema(json properties, json required = json::array());
// The output shape of a list: {"items": [item...]} plus extra properties.
json list_schema(json item, json extra_properties = json::object());
json nullable(const std::string& type);  // {"type": [type, "null"]}
// The workspace summary every tool reports (see workspace_summary()).
json workspace_schema();
// Annotations: read-only tools, and the ones that change or remove things.
json read_only_annotations(const std::string& title);
json write_annotations(const std::string& title, bool destructive, bool idempotent);

// --- Arguments ------------------------------------------------------------------------------

// The ID in args[key] (validated by the schema; this also turns "42" into 42). Throws a
// ToolError naming the argument if it is missing or not an ID.
std::int64_t id_arg(const json& args, const char* key);
std::optional<std::int64_t> optional_id_arg(const json& args, const char* key);
// An integer argument that may also arrive as a numeric string, within [min, max].
std::int64_t int_arg(const json& args, const char* key, std::int64_t fallback, std::int64_t min, std::int64_t max);

// --- Upstream helpers -----------------------------------------------------------------------

// The team to use: the teamId argument, else the team the user picked when signing in
// (OAuth), else settings.team_id, else the only team the token
// sees. Several teams: a ToolError listing them and asking for teamId.
std::int64_t resolve_team(Env& env, const json& args);

// The fields of a workspace object (§2.4) that tools show, plus its dev-domain URL.
json workspace_summary(const json& ws);
// "https://<devDomain>" or null (the old server's "<id>-3000.codesphere.com" fallback was
// wrong for real dev domains, §1.5, so none is invented).
json workspace_url(const json& ws);

std::string ws_path(std::int64_t workspace_id);  // "/workspaces/<id>"

}  // namespace codesphere
