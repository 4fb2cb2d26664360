#include "tools.hpp"

namespace codesphere {

json id_schema(const std::string& description) {
  return json{{"type", {"integer", "string"}},
              {"pattern", "^[0-9]+$"},
              {"minimum", 0},
              {"description", description + " (an integer, or a numeric string)"}};
}

json object_schema(json properties, json required) {
  return json{{"type", "object"},
              {"properties", std::move(properties)},
              {"required", std::move(required)},
              {"additionalProperties", false}};
}

json list_schema(json item, json extra_properties) {
  json props = std::move(extra_properties);
  props["items"] = json{{"type", "array"}, {"items", std::move(item)}};
  return json{{"type", "object"}, {"properties", std::move(props)}, {"required", {"items"}}};
}

json nullable(const std::string& type) { return json{{"type", {type, "null"}}}; }

json workspace_schema() {
  return json{{"type", "object"},
              {"properties",
               {{"id", {{"type", "integer"}}},
                {"name", {{"type", "string"}}},
                {"teamId", nullable("integer")},
                {"planId", nullable("integer")},
                {"replicas", nullable("integer")},
                {"gitUrl", nullable("string")},
                {"branch", nullable("string")},
                {"devDomain", nullable("string")},
                {"url", nullable("string")},
                {"createdAt", nullable("string")}}},
              {"required", {"id", "name"}}};
}

json read_only_annotations(const std::string& title) {
  return json{{"title", title}, {"readOnlyHint", true}, {"openWorldHint", true}};
}

json write_annotations(const std::string& title, bool destructive, bool idempotent) {
  return json{{"title", title},
              {"readOnlyHint", false},
              {"destructiveHint", destructive},
              {"idempotentHint", idempotent},
              {"openWorldHint", true}};
}

std::optional<std::int64_t> optional_id_arg(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return std::nullopt;
  auto id = coerce_id(*it);
  if (!id) throw sdk::ToolError(std::string(key) + " must be a numeric ID (an integer or a string of digits)");
  return id;
}

std::int64_t id_arg(const json& args, const char* key) {
  auto id = optional_id_arg(args, key);
  if (!id) throw sdk::ToolError(std::string(key) + " is required");
  return *id;
}

std::int64_t int_arg(const json& args, const char* key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
  auto v = optional_id_arg(args, key);
  const std::int64_t n = v.value_or(fallback);
  if (n < min || n > max) {
    throw sdk::ToolError(std::string(key) + " must be from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return n;
}

std::int64_t resolve_team(Env& env, const json& args) {
  if (auto id = optional_id_arg(args, "teamId")) return *id;
  // The default team the user picked when signing in (OAuth), then the YAML's.
  if (auto user_team = env.call.credential("team_id")) {
    if (auto id = coerce_id(json(*user_team))) return *id;
  }
  if (env.settings.team_id) return *env.settings.team_id;
  // The old server silently took the first team (§1.2); with several teams that guesses.
  // Not cached: the token (and so the teams) belongs to the caller of each call.
  const json teams = env.client.get("/teams").body;
  if (!teams.is_array() || teams.empty()) {
    throw sdk::ToolError("The Codesphere API token sees no teams; pass teamId or create a team first.",
                         MCPH_ERR_FAILED_PRECONDITION);
  }
  if (teams.size() == 1 && teams[0].contains("id")) {
    if (auto id = coerce_id(teams[0]["id"])) return *id;
  }
  std::string list;
  for (const auto& t : teams) {
    if (!list.empty()) list += ", ";
    list += (t.contains("id") ? t["id"].dump() : std::string("?")) + " (" + text_field(t, "name", "?") + ")";
  }
  throw sdk::ToolError(env.client.safe("The token sees several teams: " + list +
                                       ". Pass teamId, or set settings.team_id for a default."),
                       MCPH_ERR_INVALID_ARGUMENT);
}

namespace {

json field_or_null(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? json() : *it;
}

}  // namespace

json workspace_url(const json& ws) {
  auto it = ws.find("devDomain");
  if (it == ws.end() || !it->is_string() || it->get<std::string>().empty()) return json();
  return "https://" + it->get<std::string>();
}

json workspace_summary(const json& ws) {
  json out{{"id", ws.contains("id") ? coerce_id(ws["id"]).value_or(0) : 0},
           {"name", text_field(ws, "name")}};
  for (const char* key : {"teamId", "planId", "replicas", "gitUrl", "devDomain", "createdAt"}) {
    out[key] = field_or_null(ws, key);
  }
  out["branch"] = field_or_null(ws, "initialBranch");
  out["url"] = workspace_url(ws);
  // Keep the schema's promises even when upstream sends something unexpected.
  for (const char* key : {"teamId", "planId", "replicas"}) {
    if (!out[key].is_null() && !out[key].is_number_integer()) out[key] = nullptr;
  }
  for (const char* key : {"gitUrl", "branch", "devDomain", "createdAt"}) {
    if (!out[key].is_null() && !out[key].is_string()) out[key] = nullptr;
  }
  return out;
}

std::string ws_path(std::int64_t workspace_id) { return "/workspaces/" + std::to_string(workspace_id); }

}  // namespace codesphere
